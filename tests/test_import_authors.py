"""`semantic-palette import-authors`: a released folder becomes this project's checkpoints; bad folders
are one error each and write nothing."""
from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from authors import verify
from conftest import REPO
from image.chain import SynthesisChain
from layout.train import load_generator
from stages.generate import cli

REFERENCE = REPO.parent / "shared" / "reference" / "authors-checkpoints"
pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} not found")
FULL, PARTIAL, SEAN = (REFERENCE / name for name in ("cityscapes-full", "cityscapes-partial", "celeba-sean"))


def import_authors(folder, config, out, capsys):
    cli(["import-authors", str(folder), "--config", config, "--out", str(out)])
    return capsys.readouterr().out


def test_the_released_full_folder_becomes_a_chain_that_reproduces_the_authors(tmp_path, capsys):
    printed = import_authors(FULL, "cityscapes-full-128x256", tmp_path / "authors", capsys)
    assert printed.splitlines()[0] == ("seg_g_net_128.pth: layout generator (models/seg_generator ProGANGenerator), "
                                       "86 keys: 46 converted, 12 aliases of converted tensors, 28 unused dropped; "
                                       "212,466 parameters")
    assert "img_g_net_128.pth: GauGAN image generator (models/img_generator SPADEGenerator), 234 keys: 234 converted; " \
           "1,143,891 parameters" in printed
    assert "cond_estimator.pkl: palette GMM (scikit-learn GaussianMixture), 11 components" in printed
    report = {entry["file"]: entry for entry in json.loads((tmp_path / "authors" / "report.json").read_text())["files"]}
    unused = json.loads((REFERENCE / "description.json").read_text())["unused_parameters_in_fixture_forwards"]
    # What is dropped is exactly what the authors' own forward at 128 px leaves unused.
    assert sorted(report["seg_g_net_128.pth"]["dropped_unused"]) == sorted(unused["full.seg_g.level128.unused"])
    assert set(report["seg_d_net_128.pth"]["dropped_unused"]) < set(unused["full.seg_d.level128.unused"])

    fixtures = verify.read(FULL / "fixtures.pt")
    generator, level = load_generator(tmp_path / "authors" / "layout" / "128" / "checkpoint.pt")
    chain = SynthesisChain.from_stages(tmp_path / "authors" / "layout" / "128" / "checkpoint.pt",
                                       tmp_path / "authors" / "image" / "checkpoint.pt")
    g = fixtures["seg_g"]
    with torch.no_grad():
        final = generator(g["in.z"], g["in.sem_cond"], level)[-1]
        layouts = verify.soft_band(fixtures["img_g"]["in.label"], 35, *fixtures["img_g"]["in.band"].tolist())
        image = chain.image.generator(layouts)
    assert level == 5
    assert verify.error(g, "level128.out.segs.5.sem_seg", final.seg) < 1e-5
    assert verify.error(fixtures["img_g"], "out.img", image) < 1e-5


def test_either_naming_scheme_and_any_iteration_are_read(tmp_path, capsys):
    folder = tmp_path / "release"
    folder.mkdir()
    shutil.copy(PARTIAL / "seg_g_net_128.pth", folder / "seg_g_latest_net_300.pth")
    shutil.copy(PARTIAL / "seg_d_net_128.pth", folder / "seg_d_net_7.pth")
    printed = import_authors(folder, "cityscapes-partial-128x256", tmp_path / "out", capsys)
    assert printed.splitlines()[:2] == [
        "seg_g_latest_net_300.pth: layout completor (models/seg_completor ProGANGenerator), 286 keys: 180 converted, "
        "12 aliases of converted tensors, 94 unused dropped; 741,912 parameters",
        "seg_d_net_7.pth: layout critic (ProGANDiscriminator), 56 keys: 38 converted, 18 unused dropped; 9,193 parameters",
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["partial", "report.json"]


class NotATensor:
    pass


def bad_folder(tmp_path, case: str):
    folder = tmp_path / case
    folder.mkdir()
    if case == "truncated":
        (folder / "seg_g_net_128.pth").write_bytes((FULL / "seg_g_net_128.pth").read_bytes()[:100_000])
    elif case == "fewer_levels":
        state = torch.load(FULL / "seg_g_net_128.pth", weights_only=True)
        torch.save({k: v for k, v in state.items() if int(k.split(".")[1]) < 4}, folder / "seg_g_net_32.pth")
    elif case == "incomplete":
        state = torch.load(FULL / "seg_g_net_128.pth", weights_only=True)
        del state["blocks.3.conv2.weight"]
        torch.save(state, folder / "seg_g_net_128.pth")
    elif case == "other_objects":
        torch.save({"blocks.0.fc1.weight": NotATensor()}, folder / "seg_g_net_128.pth")
    elif case == "not_a_state_dict":
        torch.save({"model": {"weight": torch.zeros(1)}}, folder / "img_g_net_128.pth")
    else:
        (folder / "README.txt").write_text("no checkpoint here")
    return folder


@pytest.mark.parametrize("source, config, message", [
    ("empty", "cityscapes-full-128x256", r"empty: no checkpoint of the authors found; expected files named "
                                         r"\{seg_g,seg_d,img_g,img_d,img_d2\}_net_<iter>\.pth"),
    ("truncated", "cityscapes-full-128x256", r"seg_g_net_128\.pth: not a readable PyTorch file .*expected the state "
                                             r"dict of a layout generator .*\(is the file truncated\?\)"),
    ("fewer_levels", "cityscapes-full-128x256", r"seg_g_net_32\.pth: the generator has 4 levels \(up to 32 px high\); "
                                                r"this configuration needs 128 px"),
    ("incomplete", "cityscapes-full-128x256", r"seg_g_net_128\.pth: key 'blocks\.3\.conv2\.weight' not found; every "
                                              r"layout generator .* of the authors has it \(is the file incomplete\?\)"),
    ("other_objects", "cityscapes-full-128x256", r"seg_g_net_128\.pth: holds objects other than tensors, so it was "
                                                 r"not read"),
    ("not_a_state_dict", "cityscapes-full-128x256", r"img_g_net_128\.pth: not a state dict of the authors' networks; "
                                                    r"expected a GauGAN image generator"),
    (PARTIAL, "cityscapes-full-128x256", r"seg_g_net_128\.pth: holds a layout completor \(models/seg_completor "
                                         r"ProGANGenerator\); this configuration expects a layout generator"),
    (SEAN, "cityscapes-full-128x256", r"img_g_net_128\.pth: holds a SEAN image generator .*expects a GauGAN image "
                                      r"generator"),
    (FULL, "idd-128x256", r"seg_g_net_128\.pth: a network over 35 classes; idd has 40 \(is the file that of another "
                          r"dataset\?\)"),
])
def test_bad_folders_are_one_error_and_write_nothing(tmp_path, capsys, source, config, message):
    folder = bad_folder(tmp_path, source) if isinstance(source, str) else source
    with pytest.raises(SystemExit) as stop:
        import_authors(folder, config, tmp_path / "out", capsys)
    assert stop.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1
    assert re.search(message, error), error
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []

"""The authors' face-editing modes: for a face's class proportions s0 (CelebAMask-HQ classes), a
precondition and the edited proportions s1.

The completor is only asked for additions, Δ = max(s1 − s0, 0) (the authors' `--s_switch_cond`); the
decreases in each edit only keep s1 a distribution, and the completor decides what the new content
replaces. `new_classes` are the parts the edit creates: the demo styles them from the style bank, since
the source face has no appearance for them (the authors' `force_mean_idx`).

Where the authors' table breaks a palette, the edit here keeps it a distribution: `newbrows` takes the
doubled brows from the skin (the authors added them to the skin as well, so s1 summed to more than 1),
and `teeth` takes the lips it enlarges (their `--addition_mode` doubling) from the skin too. Every mode
also requires that the edit leaves no class negative (a face with too little background to give).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


Proportions = dict[str, float]  # class name -> proportion, as edits read and write them


@dataclass(frozen=True)
class FaceEdit:
    precondition: str  # in words, for the error message
    accepts: Callable[[Proportions], bool]
    edit: Callable[[Proportions], None]  # changes a copy of s0 in place into s1
    new_classes: tuple[str, ...] = ()


def _earrings(p):
    p["ear_r"], p["hair"] = 0.03, p["hair"] - 0.03


def _skin(p):
    p["skin"], p["background"] = p["skin"] + 0.06, p["background"] - 0.06


def _nose(p):
    p["skin"], p["nose"] = p["skin"] - 0.05, p["nose"] + 0.05


def _hat(p):
    p["hat"], p["hair"], p["background"] = 0.1, p["hair"] - 0.07, p["background"] - 0.03


def _glasses(p):
    p["eye_g"], p["skin"] = 0.06, p["skin"] - 0.06


def _open_eyes(p):
    p["l_eye"], p["r_eye"], p["skin"] = 0.01, 0.01, p["skin"] - 0.02


def _unbald(p):
    p["hair"], p["skin"], p["background"] = 0.2, p["skin"] - 0.15, p["background"] - 0.05


def _bald(p):
    hair = p["hair"]
    p["hair"], p["skin"], p["background"] = 0.0, p["skin"] + 0.75 * hair, p["background"] + 0.25 * hair


def _teeth(p):
    lips = p["u_lip"] + p["l_lip"]
    p["mouth"], p["u_lip"], p["l_lip"] = 0.02, 2 * p["u_lip"], 2 * p["l_lip"]
    p["skin"] -= 0.02 + lips


def _thin_brows(p):
    p["skin"] += p["l_brow"] + p["r_brow"] - 0.002
    p["l_brow"] = p["r_brow"] = 0.001


def _more_brows(p):
    p["skin"] -= 0.02 - p["l_brow"] - p["r_brow"]
    p["l_brow"] = p["r_brow"] = 0.01


def _new_brows(p):
    p["skin"] -= p["l_brow"] + p["r_brow"]
    p["l_brow"], p["r_brow"] = 2 * p["l_brow"], 2 * p["r_brow"]


def _long_hair(p):
    grow = 0.4 - p["hair"]
    p["hair"], p["skin"], p["background"] = 0.4, p["skin"] - 0.4 * grow, p["background"] - 0.6 * grow


# The table of image-finetune-demos.md §6.3, in the authors' order. `face` is handled by `edited_palette`:
# its s1 is a palette drawn from the dataset's GMM.
FACE_EDITS: dict[str, FaceEdit] = {
    "face": FaceEdit("none", lambda p: True, lambda p: None),
    "earrings": FaceEdit("no earring and hair >= 0.3", lambda p: p["ear_r"] == 0 and p["hair"] >= 0.3, _earrings,
                         ("ear_r",)),
    "skin": FaceEdit("hair <= 0.08", lambda p: p["hair"] <= 0.08, _skin),
    "nose": FaceEdit("hair <= 0.08", lambda p: p["hair"] <= 0.08, _nose),
    "hat": FaceEdit("no hat and hair >= 0.3", lambda p: p["hat"] == 0 and p["hair"] >= 0.3, _hat, ("hat",)),
    "glasses": FaceEdit("no eyeglasses", lambda p: p["eye_g"] == 0, _glasses, ("eye_g",)),
    "openeyes": FaceEdit("no eyes and no eyeglasses",
                         lambda p: p["l_eye"] == 0 and p["r_eye"] == 0 and p["eye_g"] == 0, _open_eyes,
                         ("l_eye", "r_eye")),
    "unbald": FaceEdit("no hair and no hat", lambda p: p["hair"] == 0 and p["hat"] == 0, _unbald, ("hair",)),
    "bald": FaceEdit("0.05 <= hair <= 0.15", lambda p: 0.05 <= p["hair"] <= 0.15, _bald),
    "teeth": FaceEdit("closed mouth (no mouth pixels)", lambda p: p["mouth"] == 0, _teeth, ("mouth",)),
    "eyebrows": FaceEdit("left brow >= 0.008", lambda p: p["l_brow"] >= 0.008, _thin_brows),
    "morebrows": FaceEdit("left brow <= 0.001", lambda p: p["l_brow"] <= 0.001, _more_brows),
    "newbrows": FaceEdit("none", lambda p: True, _new_brows),
    "hair": FaceEdit("0.15 <= hair <= 0.2", lambda p: 0.15 <= p["hair"] <= 0.2, _long_hair),
}


def edited_palette(mode: str, s0: np.ndarray, class_names: list[str],
                   sample_palette: Callable[[], np.ndarray] | None = None) -> np.ndarray | None:
    """s1 for a face with proportions `s0` (C, over `class_names`), or None when the face does not meet
    the mode's precondition or the edit would take more of a class than the face has. `face` needs
    `sample_palette` (a GMM draw)."""
    edit = FACE_EDITS[mode]
    before = dict(zip(class_names, map(float, s0)))
    if not edit.accepts(before):
        return None
    if mode == "face":
        if sample_palette is None:
            raise ValueError("the face mode draws its target palette: pass sample_palette")
        return np.asarray(sample_palette(), np.float32)
    after = dict(before)
    edit.edit(after)
    s1 = np.array([after[name] for name in class_names], np.float32)
    return np.clip(s1, 0, None) if s1.min() >= -1e-6 else None

import pytest
import yaml

from data.errors import InputError
from stages.params import load_params


def test_repository_params_load_as_typed_sections():
    params = load_params("params.yaml")
    assert params.data.dataset == "cityscapes" and params.data.root == "datasets/toycity"
    assert isinstance(params.palette.reg_covar, float) and params.palette.reg_covar == 1e-6
    assert params.palette.min_proportions == {} and params.palette.removed_classes == []


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["palette"].update(max_component=3), "params.yaml:palette: unknown key 'max_component'"),
    (lambda p: p["data"].pop("height"), "params.yaml:data: missing key 'height'"),
    (lambda p: p["data"].update(height="tall"), "params.yaml:data:height = 'tall'; expected an integer"),
    (lambda p: p["palette"].update(projection="round"), "params.yaml:palette:projection = 'round'; expected one of"),
    (lambda p: p.update(extra={}), "params.yaml: unknown key 'extra'"),
])
def test_bad_params_name_the_key(write_params, edit, message):
    path = write_params()
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(InputError) as error:
        load_params("params.yaml")
    assert message in str(error.value)


def test_exponent_without_dot_is_a_float(write_params):
    path = write_params()
    path.write_text(path.read_text().replace("reg_covar: 1.0e-06", "reg_covar: 1e-5"))
    assert load_params("params.yaml").palette.reg_covar == 1e-5

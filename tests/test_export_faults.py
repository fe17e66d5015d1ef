"""`a2qflow.export_qonnx` on the Brevitas models users get wrong: each ends in one A2QFlowError
naming the layer or module, the cause and the fix; no torch / Brevitas assertion reaches the user, and nothing is
written at the export path."""

from __future__ import annotations

import warnings

import pytest
import torch
from _byo_models import _act, _calibrate, _quant_kwargs
from torch import nn

from a2qflow import export_qonnx
from a2qflow.hw.errors import A2QFlowError


def _mlp(input_quant: str | None = "identity", weight_bits: int = 4, P: int = 12, last_quant_tensor: bool = False):
    """input quantizer -> QuantLinear(8, 6) A2Q -> QuantReLU -> QuantLinear(6, 3) A2Q (module names '0'.. '3')."""
    import brevitas.nn as qnn

    torch.manual_seed(0)
    mods: list[nn.Module] = []
    if input_quant == "identity":
        mods.append(_act(4, signed=True))
    elif input_quant == "relu":
        mods.append(qnn.QuantReLU(bit_width=4, return_quant_tensor=True))
    mods += [qnn.QuantLinear(8, 6, bias=True, **_quant_kwargs("a2q", weight_bits, P)), _act(4),
             qnn.QuantLinear(6, 3, bias=True, return_quant_tensor=last_quant_tensor, **_quant_kwargs("a2q", 4, 12))]
    return nn.Sequential(*mods)


X = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))


def _fails(tmp_path, net, x=X, path=None) -> str:
    path = path or tmp_path / "m.onnx"
    with pytest.raises(A2QFlowError) as e:
        export_qonnx(net, x, path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("export: ")
    assert not (tmp_path / "m.onnx").exists() and not list(tmp_path.glob(".*.tmp"))  # nothing written
    return msg


def _set_weight(net, value: float, index=(0, 0)) -> nn.Module:
    with torch.no_grad():
        net[1].weight[index] = value
    return net


def test_no_input_quantizer_says_add_a_quant_identity_before_the_layer(tmp_path):
    msg = _fails(tmp_path, _mlp(input_quant=None).eval())
    assert "layer '0' (QuantLinear) receives a float input" in msg
    assert "add a QuantIdentity input quantizer (return_quant_tensor=True) before layer '0'" in msg
    assert "No cached quant input" not in msg


def test_an_example_input_of_the_wrong_width_names_expected_and_given(tmp_path):
    msg = _fails(tmp_path, _calibrate(_mlp(), X), torch.randn(16, 9))
    assert "example_input of shape (16, 9)" in msg and "layer '1' (QuantLinear) expects 8 input features, got 9" in msg
    assert "mat1 and mat2" not in msg


def test_an_example_input_with_the_wrong_channels_names_the_conv(tmp_path):
    import brevitas.nn as qnn

    net = nn.Sequential(_act(4, signed=True), qnn.QuantConv2d(3, 4, 3, **_quant_kwargs("a2q", 4, 14)), _act(4),
                        nn.Flatten(), qnn.QuantLinear(4 * 4 * 4, 2, **_quant_kwargs("a2q", 4, 14)))
    _calibrate(net, torch.randn(8, 3, 6, 6))
    msg = _fails(tmp_path, net, torch.randn(8, 1, 6, 6))
    assert "layer '1' (QuantConv2d) expects 3 input channels, got 1" in msg


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_weights_name_the_layer_not_a_float_quantizer(value, tmp_path):
    msg = _fails(tmp_path, _set_weight(_calibrate(_mlp(), X), value))
    assert "layer '1' (QuantLinear) has 1 NaN / inf weight values" in msg and "minifloat" not in msg


def test_an_all_zero_a2q_layer_names_its_dead_channels(tmp_path):
    net = _calibrate(_mlp(), X)
    with torch.no_grad():
        net[1].weight.zero_()
    msg = _fails(tmp_path, net)
    assert "layer '1' (QuantLinear)" in msg and "output channel(s) [0, 1, 2, 3, 4, 5]" in msg
    assert "all zero" in msg and "minifloat" not in msg


def test_a_target_with_no_l1_budget_exports_with_a_warning_naming_the_layer_and_p(tmp_path):
    from a2qflow.hw.compiler.plan import AllZeroLayerWarning

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        export_qonnx(_calibrate(_mlp(P=3), X), X, tmp_path / "m.onnx")
    msgs = [str(x.message) for x in w if issubclass(x.category, AllZeroLayerWarning)]
    assert msgs and "layer n1: every integer weight is 0" in msgs[0] and "P=3 left it no L1 budget" in msgs[0]


def test_an_export_path_that_is_a_folder_is_one_line(tmp_path):
    (tmp_path / "out").mkdir()
    msg = _fails(tmp_path, _calibrate(_mlp(), X), path=tmp_path / "out")
    assert f"path {tmp_path / 'out'}: is a folder, not a file" in msg and "IsADirectoryError" not in msg


def test_a_quant_relu_as_input_quantizer_says_what_to_use_instead(tmp_path):
    msg = _fails(tmp_path, _calibrate(_mlp(input_quant="relu"), X))
    assert "module '0' (QuantReLU) is the model's input quantizer" in msg
    assert "replace it by brevitas.nn.QuantIdentity" in msg


def test_return_quant_tensor_on_the_last_module_names_it(tmp_path):
    msg = _fails(tmp_path, _calibrate(_mlp(last_quant_tensor=True), X))
    assert "set return_quant_tensor=False on module '3'" in msg


def test_one_bit_a2q_weights_are_refused_before_brevitas_makes_nan(tmp_path):
    msg = _fails(tmp_path, _mlp(weight_bits=1).eval())
    assert "layer '1' (QuantLinear) has 1-bit weights" in msg and "Brevitas' A2Q" in msg
    assert "use weight_bit_width >= 2" in msg


def test_the_good_model_still_exports(tmp_path):
    res = export_qonnx(_calibrate(_mlp(), X), X, tmp_path / "m.onnx")
    assert res["audit"]["ok"] and (tmp_path / "m.onnx").is_file()

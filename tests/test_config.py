"""Flow config: the example configs load, overrides resolve per layer, and every bad input is one clear line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from a2qflow.flows.config import dump_config, load_config, parse_config
from a2qflow.hw.compiler.bounds import l1_limit, l1_limit_zero_centered
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.quant import min_workable_acc_bits

CONFIGS = Path(__file__).resolve().parents[1] / "flows" / "configs"
BASE = yaml.safe_load((CONFIGS / "digits_mlp.yaml").read_text())


def cfg_with(**edits) -> dict:
    """BASE with dotted-path edits; a value of ... deletes the key."""
    d = copy.deepcopy(BASE)
    for path, value in edits.items():
        *head, last = path.split("__")
        node = d
        for k in head:
            node = node.setdefault(k, {})
        if value is ...:
            node.pop(last, None)
        else:
            node[last] = value
    return d


def error_of(d, source="cfg.yaml") -> str:
    with pytest.raises(A2QFlowError) as e:
        parse_config(d, source)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{source}: "), msg
    return msg


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_load_and_round_trip(path, tmp_path):
    cfg = load_config(path)
    again = tmp_path / "resolved.yaml"
    again.write_text(dump_config(cfg))
    assert load_config(again) == cfg


def test_default_demo_is_small_w4a4_a2q_p12():
    specs = load_config(CONFIGS / "digits_mlp.yaml").layer_specs()
    assert [s.name for s in specs] == ["fc0", "fc1", "fc2"]
    assert {(s.weight_quant, s.weight_bits, s.input_bits, s.input_signed, s.target_acc_bits) for s in specs} == {
        ("a2q", 4, 4, False, 12)}


def test_cnn_layer_names():
    specs = load_config(CONFIGS / "digits_cnn.yaml").layer_specs()
    assert [s.name for s in specs] == ["conv0", "conv1", "fc0"]


def test_per_layer_overrides_apply_only_to_their_layer():
    d = cfg_with(quant__layers={"fc1": {"acc_bits": 16, "weight_bits": 8, "input_bits": 6},
                                "fc2": {"weight_quant": "unconstrained"}},
                 quant__input_bits=8, quant__input_signed=True, quant__acc_bits=14)
    specs = {s.name: s for s in parse_config(d, "x").layer_specs()}
    assert (specs["fc0"].input_bits, specs["fc0"].input_signed, specs["fc0"].target_acc_bits) == (8, True, 14)
    assert (specs["fc1"].weight_bits, specs["fc1"].input_bits, specs["fc1"].target_acc_bits) == (8, 6, 16)
    assert specs["fc1"].input_signed is False  # hidden inputs come from unsigned QuantReLUs
    assert specs["fc2"].weight_quant == "unconstrained" and specs["fc2"].target_acc_bits is None


@pytest.mark.parametrize("edits, field, must_contain", [
    ({"quant__weight_quant": "a3q"}, "quant.weight_quant", ["'a3q' is not one of float, unconstrained, a2q, a2q+"]),
    ({"model__kind": "rnn"}, "model.kind", ["'rnn' is not one of mlp, cnn"]),
    ({"data__dataset": "imagenet"}, "data.dataset", ["'imagenet' is not one of digits, mnist5k, mnist, cifar10"]),
    ({"quant__layers": {"fc1": {"weight_quant": "a2"}}}, "quant.layers.fc1.weight_quant", ["float, unconstrained"]),
    ({"name": ...}, "name", ["required field is missing"]),
    ({"model": ...}, "model", ["required field is missing"]),
    ({"model__kind": ...}, "model.kind", ["required field is missing"]),
    ({"train__epochs": "many"}, "train.epochs", ["integer", "'many'"]),
    ({"model__hidden": [32, "wide"]}, "model.hidden[1]", ["integer", "'wide'"]),
    ({"quant__weight_bits": 1}, "quant.weight_bits", ["greater than or equal to 2"]),
    ({"quant__acc_bits": 64}, "quant.acc_bits", ["less than or equal to 63"]),
    ({"quant__input_signed": "perhaps"}, "quant.input_signed", ["boolean"]),
    ({"quant__acc_bit": 12}, "quant.acc_bit", ["unknown field 'acc_bit'", "acc_bits", "weight_quant"]),
    ({"quant__layers": {"fc1": {"acc_bit": 12}}}, "quant.layers.fc1.acc_bit",
     ["unknown field", "weight_quant, weight_bits, input_bits, acc_bits"]),
    ({"extra": 1}, "extra", ["name, seed, data, model, quant, train, hw"]),
    ({"quant": [1, 2]}, "quant", ["expected a mapping"]),
    ({"hw__target": "xc9"}, "hw.target", ["ice40-up5k"]),
    ({"quant__layers": {"fc7": {"acc_bits": 14}}}, "quant.layers.fc7", ["no layer 'fc7'", "fc0, fc1, fc2"]),
    ({"quant__acc_bits": None}, "quant.acc_bits", ["required for weight_quant a2q"]),
    ({"data__dataset": "mnist"}, "data.root", ["required for dataset mnist"]),
    ({"model__kind": "cnn", "model__conv_channels": [4, 4, 4, 4]}, "model.conv_channels", ["at most 3"]),
])
def test_bad_input_is_one_line_naming_file_and_field(edits, field, must_contain):
    msg = error_of(cfg_with(**edits))
    assert msg.startswith(f"cfg.yaml: {field}: "), msg
    for s in must_contain:
        assert s in msg, msg


@pytest.mark.parametrize("wq, bits, signed", [("a2q", 4, False), ("a2q", 8, False), ("a2q", 8, True),
                                              ("a2q+", 4, False), ("a2q+", 8, False)])
def test_p_below_what_a_layer_can_meet_is_rejected_with_the_minimum(wq, bits, signed):
    t = IntType(bits, signed)
    p_min = min_workable_acc_bits(wq, t)
    budget = l1_limit_zero_centered if wq == "a2q+" else l1_limit
    assert budget(p_min, t) >= 1 > budget(p_min - 1, t)  # the minimum is exactly where one weight fits
    ok = cfg_with(quant__weight_quant=wq, quant__input_bits=bits, quant__act_bits=4, quant__input_signed=signed,
                  quant__acc_bits=p_min)
    parse_config(ok, "cfg.yaml")
    msg = error_of(cfg_with(quant__weight_quant=wq, quant__input_bits=bits, quant__act_bits=4,
                            quant__input_signed=signed, quant__acc_bits=p_min - 1))
    assert msg.startswith("cfg.yaml: quant.acc_bits: ") and f"use acc_bits >= {p_min}" in msg, msg
    assert "fc0" in msg


def test_per_layer_p_too_small_names_the_override():
    msg = error_of(cfg_with(quant__layers={"fc2": {"acc_bits": 5}}))
    assert msg.startswith("cfg.yaml: quant.layers.fc2.acc_bits: P=5") and "use acc_bits >= 6" in msg, msg


def test_unconstrained_ignores_acc_bits():
    specs = parse_config(cfg_with(quant__weight_quant="unconstrained", quant__acc_bits=3), "x").layer_specs()
    assert all(s.target_acc_bits is None for s in specs)


def test_old_preset_name_baseline_loads_with_a_warning_naming_unconstrained(tmp_path):
    """`baseline` was the unconstrained preset's name: a config using it (globally or per layer) still loads, as
    "unconstrained", with one warning per field that names the file, the field and the new word."""
    from a2qflow.hw.errors import DeprecatedNameWarning

    p = tmp_path / "old.yaml"
    p.write_text(yaml.safe_dump(cfg_with(quant__weight_quant="baseline", quant__acc_bits=None,
                                         quant__layers={"fc1": {"weight_quant": "baseline"}})))
    with pytest.warns(DeprecatedNameWarning) as got:
        specs = load_config(p).layer_specs()
    assert {s.weight_quant for s in specs} == {"unconstrained"} and all(s.target_acc_bits is None for s in specs)
    msgs = sorted(str(w.message) for w in got)
    assert msgs == [f"{p}: quant.layers.fc1.weight_quant: 'baseline' is the old name of the weight quantizer "
                    "'unconstrained' (integer weights, no accumulator constraint); write 'unconstrained'",
                    f"{p}: quant.weight_quant: 'baseline' is the old name of the weight quantizer 'unconstrained' "
                    "(integer weights, no accumulator constraint); write 'unconstrained'"]


def test_new_preset_name_unconstrained_loads_without_a_warning(tmp_path):
    import warnings

    p = tmp_path / "new.yaml"
    p.write_text(yaml.safe_dump(cfg_with(quant__weight_quant="unconstrained", quant__acc_bits=None)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = load_config(p)
    assert {s.weight_quant for s in cfg.layer_specs()} == {"unconstrained"}
    assert "weight_quant: unconstrained" in dump_config(cfg)  # the resolved config spells the new word


def test_cli_prints_the_old_name_warning_as_one_line(tmp_path, capsys):
    from a2qflow.flows.cli import main

    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg_with(quant__weight_quant="baseline", quant__acc_bits=None)))
    assert main(["train", str(p), "--out", str(tmp_path / "out"), "--epochs", "0"]) == 2  # stops after loading
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (f"warning: {p}: quant.weight_quant: 'baseline' is the old name of the weight quantizer "
                      "'unconstrained' (integer weights, no accumulator constraint); write 'unconstrained'")
    assert err[1:] == ["error: --epochs: must be >= 1, got 0"]


def test_missing_file_yaml_errors_and_non_mapping(tmp_path):
    with pytest.raises(A2QFlowError, match=r"nope\.yaml: no such config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {kind: mlp\n")
    with pytest.raises(A2QFlowError) as e:
        load_config(bad)
    assert str(e.value).startswith(f"{bad}: invalid YAML at line") and "\n" not in str(e.value)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(A2QFlowError, match=r"list\.yaml: expected a mapping with keys name, seed"):
        load_config(lst)


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    from a2qflow.flows.cli import main

    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg_with(quant__weight_quant="a3q")))
    assert main(["train", str(p), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {p}: quant.weight_quant: 'a3q' is not one of float, unconstrained, a2q, a2q+"
    assert not (tmp_path / "out").exists()


def test_float_twin_recipe_without_a_float_twin_is_refused():
    msg = error_of(cfg_with(train__recipe="float_twin", train__float_reference=False))
    assert "train" in msg and "recipe float_twin needs float_reference: true" in msg
    auto = parse_config(cfg_with(train__float_reference=False), "x")
    assert auto.train.effective_recipe == "scratch"  # auto: no twin, so the quantized model trains from scratch
    assert parse_config(BASE, "x").train.effective_recipe == "float_twin"


def test_mnist5k_needs_no_root_but_mnist_does():
    assert parse_config(cfg_with(data__dataset="mnist5k"), "x").data.dataset == "mnist5k"
    assert "data.root: required for dataset mnist" in error_of(cfg_with(data__dataset="mnist"))

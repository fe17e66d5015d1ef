"""`train.recipe: block-replacement` (training.block_replacement): mixed models are exactly the quantized / float
networks at their ends, gradients reach quantized blocks through frozen float blocks, and a run trains, exports and
passes the audit (digits, a few epochs)."""

from __future__ import annotations

import json

import pytest
import torch
from _training_util import digits_config

from a2qflow.training.block_replacement import MixedModels, blocks
from a2qflow.training.config import ModelConfig, QuantConfig
from a2qflow.training.models import build_model
from a2qflow.training.quant import resolve_layer_specs


def _pair(kind: str):
    cfg = ModelConfig(kind=kind, hidden=[16], conv_channels=[4], batch_norm=kind == "cnn")
    specs = resolve_layer_specs(QuantConfig(acc_bits=14), cfg)
    torch.manual_seed(0)
    twin = build_model(cfg, specs, (1, 8, 8), 10, float_twin=True).eval()
    q = build_model(cfg, specs, (1, 8, 8), 10)
    q.load_state_dict(twin.state_dict(), strict=False)
    return q.eval(), twin, specs


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_blocks_hold_one_mac_layer_each_and_mixed_models_end_in_the_two_networks(kind):
    q, twin, specs = _pair(kind)
    bl = blocks(q)
    assert [[n for n in b if n in {s.name for s in specs}] for b in bl] == [[s.name] for s in specs]
    m = MixedModels(q, twin)
    x = torch.rand(6, 64) if kind == "mlp" else torch.rand(6, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(m.mixed(x, len(bl)), q(x))
        assert torch.equal(m.mixed(x, 0), twin(x))


def test_gradients_reach_quantized_blocks_through_float_blocks_and_never_the_partner():
    q, twin, _ = _pair("mlp")
    m = MixedModels(q, twin)
    x, y = torch.rand(8, 64), torch.randint(0, 10, (8,))
    torch.nn.functional.cross_entropy(m.mixed(x, 1), y).backward()  # fc0 quantized, fc1 / fc2 float
    assert q.fc0.weight.grad is not None and q.fc0.weight.grad.abs().sum() > 0
    assert q.fc1.weight.grad is None and all(p.grad is None for p in twin.parameters())
    assert not any(p.requires_grad for p in twin.parameters())
    assert all(k.startswith(("qnet.",)) for k in m.state_dict())  # the partner is not part of the trained model


def test_block_replacement_recipe_trains_exports_and_audits(tmp_path):
    from a2qflow.flows.config import parse_config
    from a2qflow.training.train import run_training

    cfg = parse_config(digits_config("br", quant={"acc_bits": 12},
                                     train={"epochs": 3, "float_reference": True, "recipe": "block-replacement",
                                            "calibration_batches": 20}), "<br>")
    m = run_training(cfg, tmp_path, progress=False)
    assert m["recipe"] == "block-replacement" and m["audit_ok"]
    assert set(m["phases"]) == {"float", "init", "finetune"}
    assert m["test_accuracy"] > 0.5
    assert json.loads((tmp_path / "audit.json").read_text())["ok"]


def test_block_replacement_without_the_float_reference_is_one_line():
    from a2qflow.flows.config import parse_config
    from a2qflow.hw.errors import A2QFlowError

    with pytest.raises(A2QFlowError) as e:
        parse_config(digits_config("br", train={"float_reference": False, "recipe": "block-replacement"}), "c.yaml")
    assert "train" in str(e.value) and "block-replacement" in str(e.value) and "\n" not in str(e.value)

"""The `quantize` stage of `a2qflow run` and the `a2qflow quantize` command: a config that starts from a float
checkpoint goes to a report like a trained one (digits MLP, a float twin trained here in ~1 s)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from _training_util import digits_config
from torch import nn

from a2qflow.flows.cli import main


def _float_checkpoint(path, hidden=(16,)) -> None:
    """A float state_dict of the digits MLP's float twin (the config's model), trained for a few epochs."""
    from a2qflow.training.config import DataConfig, ModelConfig
    from a2qflow.training.data import load_dataset
    from a2qflow.training.models import build_model
    from a2qflow.training.quant import LayerSpec

    model = ModelConfig(kind="mlp", hidden=list(hidden))
    specs = [LayerSpec(f"fc{i}", "float", 4, 4, False, None) for i in range(len(hidden) + 1)]
    sp = load_dataset(DataConfig(dataset="digits"))
    torch.manual_seed(0)
    twin = build_model(model, specs, sp.image_shape, sp.num_classes, float_twin=True)
    x, y = torch.tensor(sp.x_train.reshape(len(sp.x_train), -1)), torch.tensor(sp.y_train)
    opt = torch.optim.Adam(twin.parameters(), 0.01)
    for _ in range(10):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(twin(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    torch.save(twin.state_dict(), path)


@pytest.fixture(scope="module")
def ptq_config(tmp_path_factory):
    d = tmp_path_factory.mktemp("ptqcfg")
    _float_checkpoint(d / "float.pt")
    cfg = digits_config("digits_ptq", model={"kind": "mlp", "hidden": [16], "float_checkpoint": str(d / "float.pt")},
                        quant={"acc_bits": 11, "ptq": {"method": "axe-gpfq", "samples": 256}},
                        hw={"folding": {"default": {"simd": 8, "pe": 4}}})
    (d / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return d


def test_run_from_a_float_checkpoint_reaches_the_report(ptq_config, tmp_path):
    run = tmp_path / "run"
    rc = main(["run", str(ptq_config / "cfg.yaml"), "--out", str(run), "--stages", "quantize,compile,hls,csim,report",
               "--no-progress"])
    assert rc == 0
    m = json.loads((run / "train" / "metrics.json").read_text())
    assert m["recipe"] == "ptq" and m["ptq"]["method"] == "axe-gpfq" and m["audit_ok"]
    assert m["test_accuracy"] > 0.6 and m["float_test_accuracy"] > 0.85
    audit = json.loads((run / "train" / "audit.json").read_text())
    assert audit["ok"] and all(max(l["l1"]) <= l["l1_bound"] for l in audit["layers"])
    cs = json.loads((run / "build" / "csim" / "csim.json").read_text())
    assert cs["mismatches"] == 0 and cs["overflow_events"] == 0
    assert (run / "report" / "report.md").is_file()
    # up to date: a second run skips every stage
    assert main(["run", str(ptq_config / "cfg.yaml"), "--out", str(run), "--stages", "quantize,compile",
                 "--no-progress"]) == 0
    # the train stage does not exist for a float-checkpoint config: one line naming the stages that do
    assert main(["run", str(ptq_config / "cfg.yaml"), "--out", str(run), "--stages", "train", "--no-progress"]) == 2


def test_quantize_command_zero_shot_without_bn_and_bad_checkpoint(ptq_config, tmp_path, capsys):
    cfg = str(ptq_config / "cfg.yaml")
    assert main(["quantize", cfg, "--out", str(tmp_path / "q"), "--method", "rtn", "--no-progress"]) == 0
    assert json.loads((tmp_path / "q" / "metrics.json").read_text())["ptq"]["method"] == "rtn"
    assert np.load(tmp_path / "q" / "test_inputs.npy").shape[1:] == (64,)
    capsys.readouterr()
    assert main(["quantize", cfg, "--out", str(tmp_path / "z"), "--calibration", "zero-shot", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "BatchNorm" in err and "digits_ptq" in err
    _float_checkpoint(tmp_path / "wide.pt", hidden=(24,))
    assert main(["quantize", cfg, "--out", str(tmp_path / "w"), "--checkpoint", str(tmp_path / "wide.pt"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'fc0.weight'" in err and "(24, 64)" in err and "(16, 64)" in err
    assert not (tmp_path / "w" / "model.onnx").exists()

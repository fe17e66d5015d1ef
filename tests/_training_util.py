"""Helpers for tests that train small digits models (used by tests/conftest.py and the training tests)."""

from __future__ import annotations

import numpy as np


def digits_config(name: str, **over) -> dict:
    """A small digits config dict (W4/A4, A2Q, P=12 MLP 32-32-10) with nested overrides merged in."""
    d = {
        "name": name, "seed": 0,
        "data": {"dataset": "digits"},
        "model": {"kind": "mlp", "hidden": [32, 32]},
        "quant": {"weight_quant": "a2q", "weight_bits": 4, "input_bits": 4, "act_bits": 4, "acc_bits": 12},
        "train": {"epochs": 10, "batch_size": 64, "lr": 0.01, "float_reference": False},
    }
    for section, values in over.items():
        if isinstance(values, dict) and isinstance(d.get(section), dict):
            d[section] = {**d[section], **values}
        else:
            d[section] = values
    return d


def train_run(tmp_path_factory, name: str, **over):
    from a2qflow.flows.config import parse_config
    from a2qflow.training.train import run_training

    cfg = parse_config(digits_config(name, **over), f"<fixture {name}>")
    out = tmp_path_factory.mktemp(name)
    run_training(cfg, out, progress=False)
    return out


def torch_logits(out_dir, x: np.ndarray) -> np.ndarray:
    """Logits of the run's quantized torch model (rebuilt from config.yaml + model.pt)."""
    import torch

    from a2qflow.training.train import load_run

    _, net = load_run(out_dir)
    with torch.no_grad():
        return net(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()


def qonnx_logits(onnx_path, x: np.ndarray) -> np.ndarray:
    """Logits of qonnx.core.onnx_exec.execute_onnx on the exported file, all samples in one batch."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    m = ModelWrapper(str(onnx_path)).transform(ChangeBatchSize(len(x))).transform(InferShapes())
    out = execute_onnx(m, {m.graph.input[0].name: np.asarray(x, dtype=np.float32)})
    return out[m.graph.output[0].name]

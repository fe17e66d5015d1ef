"""`a2qflow quantize CONFIG` and the flow's `quantize` stage: post-training quantization of a float checkpoint.

The config's `model.float_checkpoint` is a state_dict of the config's float twin (training.models.build_model with
float_twin=True: the same layer names as the quantized model). It is loaded into the twin, quantized by
training.ptq with the config's `quant:` targets and its `quant.ptq` method / calibration, exported and audited.
The run folder holds what `a2qflow train` writes (model.pt, metrics.json, model.onnx, audit.json, test_inputs.npy,
test_labels.npy, config.yaml; metrics.json adds `ptq`), so compile, the simulators and the report apply unchanged.
Outputs are staged and moved into place only after the export and the audit passed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import TrainingJob


def load_float_checkpoint(path: Path, twin: nn.Module) -> None:
    """Load a float state_dict into the config's twin; a file that does not match is one line naming the key."""
    if not path.is_file():
        raise A2QFlowError(f"model.float_checkpoint: {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file; the user needs one line
        raise A2QFlowError(f"model.float_checkpoint: {path}: not a torch state_dict ({type(e).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise A2QFlowError(f"model.float_checkpoint: {path}: not a state_dict of tensors")
    own = twin.state_dict()
    for k, v in own.items():
        if k not in state:
            raise A2QFlowError(f"model.float_checkpoint: {path}: no {k!r} (layer {k.split('.')[0]}) for the "
                               f"config's model; the file has {', '.join(list(state)[:6])}")
        if tuple(state[k].shape) != tuple(v.shape):
            raise A2QFlowError(f"model.float_checkpoint: {path}: {k!r} (layer {k.split('.')[0]}) has shape "
                               f"{tuple(state[k].shape)}, the config's model needs {tuple(v.shape)}")
    extra = sorted(set(state) - set(own))
    if extra:
        raise A2QFlowError(f"model.float_checkpoint: {path}: {extra[0]!r} is not a tensor of the config's model "
                           f"(layer {extra[0].split('.')[0]}); check model.hidden / conv_channels / batch_norm")
    twin.load_state_dict(state)


def _data(cfg: TrainingJob):
    from a2qflow.training.data import load_dataset
    from a2qflow.training.models import model_input_shape

    splits = load_dataset(cfg.data)
    shape = model_input_shape(cfg.model, splits.image_shape)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a.reshape(len(a), *shape), dtype=np.float32))  # noqa: E731
    return splits, shape, {"x_train": t(splits.x_train), "x_val": t(splits.x_val), "x_test": t(splits.x_test),
                           "y_test": torch.from_numpy(splits.y_test)}


def quantize_checkpoint(cfg: TrainingJob, progress: bool = False):
    """Load the checkpoint into the twin and run PTQ; returns (PTQResult, twin, splits, input shape, data)."""
    from a2qflow.training.models import build_model
    from a2qflow.training.ptq import quantize_float_model

    if cfg.model.float_checkpoint is None:
        raise A2QFlowError("model.float_checkpoint: not set; post-training quantization starts from a float "
                           "state_dict of the config's float twin")
    splits, shape, data = _data(cfg)
    specs = cfg.layer_specs()
    twin = build_model(cfg.model, specs, splits.image_shape, splits.num_classes, float_twin=True)
    load_float_checkpoint(Path(cfg.model.float_checkpoint), twin)
    twin.eval()
    if cfg.quant.ptq.calibration == "data":
        gen = torch.Generator().manual_seed(cfg.seed)
        idx = torch.randperm(len(data["x_train"]), generator=gen)[: cfg.quant.ptq.samples]
        calib = data["x_train"][idx]
    else:
        calib = "zero-shot"
    res = quantize_float_model(twin, calib, method=cfg.quant.ptq.method, seed=cfg.seed,
                               samples=cfg.quant.ptq.samples, input_shape=splits.image_shape,
                               specs=specs, name=f"{cfg.name} (model.float_checkpoint)", progress=progress)
    return res, twin, splits, shape, data


def run_quantization(cfg: TrainingJob, out: Path, progress: bool = True) -> dict:
    """PTQ of the config's float checkpoint into `out` (the files `a2qflow train` writes); returns metrics.json."""
    import warnings

    from a2qflow.training.audit import audit_onnx
    from a2qflow.training.export import export_model, torch_integer_weights, weight_sparsity
    from a2qflow.training.fit import accuracy
    from a2qflow.training.train import _Determinism, _tool_versions, publish_run

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    t0 = time.perf_counter()
    try:
        with _Determinism(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            res, twin, splits, shape, data = quantize_checkpoint(cfg, progress)
            net = res.net
            acc = accuracy(net, data["x_test"], data["y_test"])
            flt = accuracy(twin, data["x_test"], data["y_test"])
            sparsity = weight_sparsity(torch_integer_weights(net, res.specs, data["x_val"][:8]), res.specs, net)
            torch.save(net.state_dict(), staging / "model.pt")
            export_model(net, res.specs, shape, staging / "model.onnx", cfg.data.dataset, data["x_val"][:8])
        audit = audit_onnx(staging / "model.onnx", raise_on_violation=False)
        audit["model"] = "model.onnx"
        if not audit["ok"]:
            raise A2QFlowError(audit["violations"][0].replace(str(staging), str(out)))
        metrics = {
            "name": cfg.name, "dataset": cfg.data.dataset, "seed": cfg.seed, "epochs": 0, "best_epoch": None,
            "seconds_per_epoch": None, "val_accuracy": accuracy(net, data["x_val"], torch.from_numpy(splits.y_val)),
            "test_accuracy": acc, "float_test_accuracy": flt, "input_shape": list(shape),
            "num_classes": splits.num_classes, "test_samples": int(len(splits.y_test)), "audit_ok": True,
            "tools": _tool_versions(), "recipe": "ptq", "float_to_quant_ratio": acc / flt if flt else None,
            "ptq": {"method": res.method, "calibration": res.calibration, "samples": cfg.quant.ptq.samples,
                    "checkpoint": str(cfg.model.float_checkpoint), "seconds": time.perf_counter() - t0,
                    "phase_seconds": res.seconds},
            "layers": {s.name: {"weight_quant": s.weight_quant, "weight_bits": s.weight_bits,
                                "input_bits": s.input_bits, "input_signed": s.input_signed,
                                "target_acc_bits": s.target_acc_bits, "weight_sparsity": sparsity[s.name],
                                "ptq": res.layers[s.name]} for s in res.specs},
        }
        publish_run(staging, out, cfg, audit, metrics, data["x_test"], splits.y_test)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return metrics

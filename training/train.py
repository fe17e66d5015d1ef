"""`a2qflow train`: train the configured QNN (and its float twin), export QONNX, audit it, write the run folder.

The phases (float twin, init, calibration, fine-tune) live in training.recipe, the training loop in training.fit
(`fit`, `accuracy`, re-exported here); this module owns determinism and the run folder.

Outputs in OUT (see docs/training.md): model.pt (best checkpoint by validation accuracy), metrics.json,
model.onnx, audit.json, test_inputs.npy / test_labels.npy (the test set, shaped and scaled as the model input),
config.yaml (the resolved config). Everything is produced in a staging folder inside OUT and only moved into
place (one os.replace per file) after the export and the audit have passed, so an interrupted or failed run
leaves no half-written output. Deterministic for a given seed: seeded torch / numpy, one torch thread unless
OMP_NUM_THREADS says otherwise, deterministic torch algorithms, a seeded batch order.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, atomic_write_text
from a2qflow.training.audit import audit_onnx
from a2qflow.training.config import DATASET_SHAPES, TrainingJob, dump_yaml
from a2qflow.training.data import Splits, load_dataset
from a2qflow.training.export import export_model, torch_integer_weights, weight_sparsity
from a2qflow.training.fit import FitResult as FitResult
from a2qflow.training.fit import accuracy
from a2qflow.training.fit import fit as fit
from a2qflow.training.fit import seed_everything as seed_everything
from a2qflow.training.models import build_model, model_input_shape
from a2qflow.training.recipe import RecipeResult, TwinCache, run_recipe

OUTPUTS = ("model.pt", "metrics.json", "model.onnx", "audit.json", "test_inputs.npy", "test_labels.npy",
           "config.yaml")


def _tensors(splits: Splits, input_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    def xs(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.reshape(len(a), *input_shape), dtype=np.float32))

    return {"x_train": xs(splits.x_train), "y_train": torch.from_numpy(splits.y_train),
            "x_val": xs(splits.x_val), "y_val": torch.from_numpy(splits.y_val),
            "x_test": xs(splits.x_test), "y_test": torch.from_numpy(splits.y_test)}


class _Determinism:
    """One torch thread (unless OMP_NUM_THREADS says otherwise) and deterministic kernels, restored on exit."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        self.det = torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or 1)))
        torch.use_deterministic_algorithms(True)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(self.det)
        return False


def run_training(cfg: TrainingJob, out: Path, progress: bool = True, twin_cache: TwinCache | None = None) -> dict:
    """Train (by the config's recipe, training.recipe), export, audit; write every output into `out` atomically.

    Args:
        cfg: the training job.
        out: run folder (created).
        progress: show rich progress bars on stderr.
        twin_cache: optional TwinCache shared between runs of one process (benchmarks): a float twin with the same
            data, model, train settings and seed is trained once. Results are identical with or without it.
    Returns:
        the metrics dict (also written as metrics.json).
    Raises A2QFlowError (and writes nothing) if the exported model breaks a layer's accumulator bound.
    """
    import warnings

    out = Path(out)
    specs = cfg.layer_specs()
    splits = load_dataset(cfg.data)
    input_shape = model_input_shape(cfg.model, splits.image_shape)
    data = _tensors(splits, input_shape)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    try:
        with _Determinism(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)  # Brevitas / torch.onnx chatter
            rr = run_recipe(cfg, specs, splits.image_shape, splits.num_classes, data, progress, twin_cache)
            net = rr.net
            test_acc = accuracy(net, data["x_test"], data["y_test"])
            ints = torch_integer_weights(net, specs, data["x_val"][:8])
            sparsity = weight_sparsity(ints, specs, net)
            torch.save(net.state_dict(), staging / "model.pt")
            export_model(net, specs, input_shape, staging / "model.onnx", cfg.data.dataset, data["x_val"][:8])
        audit = audit_onnx(staging / "model.onnx", raise_on_violation=False)
        audit["model"] = "model.onnx"  # beside audit.json; absolute paths go stale when a run folder moves
        metrics = _metrics(cfg, specs, rr, test_acc, sparsity, input_shape, splits, audit["ok"])
        if not audit["ok"]:
            more = f" (and {len(audit['violations']) - 1} more)" if len(audit["violations"]) > 1 else ""
            raise A2QFlowError(audit["violations"][0].replace(str(staging), str(out)) + more)
        publish_run(staging, out, cfg, audit, metrics, data["x_test"], splits.y_test)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return metrics


def publish_run(staging: Path, out: Path, cfg: TrainingJob, audit: dict, metrics: dict, x_test: torch.Tensor,
                y_test: np.ndarray) -> None:
    """Write the run's records beside model.pt / model.onnx in `staging`, then move every OUTPUTS file into `out`.

    Why one function: training and post-training quantization (training.ptq_job) publish the same run folder, so
    the flow's later stages read either the same way, and a run is only ever seen whole (each file renamed in
    after all of them were written).
    """
    atomic_write_json(staging / "audit.json", audit)
    atomic_write_json(staging / "metrics.json", metrics)
    np.save(staging / "test_inputs.npy", x_test.numpy().astype(np.float32))
    np.save(staging / "test_labels.npy", y_test.astype(np.int64))
    atomic_write_text(staging / "config.yaml", dump_yaml(cfg))
    for name in OUTPUTS:
        os.replace(staging / name, out / name)


def _metrics(cfg: TrainingJob, specs, rr: RecipeResult, test_acc: float, sparsity: dict, input_shape,
             splits: Splits, audit_ok: bool) -> dict:
    """metrics.json (keys are public: add, never rename; see docs/training.md)."""
    res = rr.fit
    return {
        "name": cfg.name, "dataset": cfg.data.dataset, "seed": cfg.seed, "epochs": cfg.train.epochs,
        "best_epoch": res.best_epoch, "seconds_per_epoch": res.seconds_per_epoch,
        "val_accuracy": res.val_accuracy, "test_accuracy": test_acc, "float_test_accuracy": rr.float_test_accuracy,
        "history": res.history, "input_shape": list(input_shape), "num_classes": splits.num_classes,
        "test_samples": int(len(splits.y_test)), "audit_ok": audit_ok, "tools": _tool_versions(),
        "layers": {s.name: {"weight_quant": s.weight_quant, "weight_bits": s.weight_bits,
                            "input_bits": s.input_bits, "input_signed": s.input_signed,
                            "target_acc_bits": s.target_acc_bits, "weight_sparsity": sparsity[s.name],
                            **({"init": rr.init[s.name].to_json()} if s.name in rr.init else {})}
                   for s in specs},
        "recipe": rr.recipe, "init": cfg.train.init, "phases": rr.phases,
        "float_to_quant_ratio": (test_acc / rr.float_test_accuracy) if rr.float_test_accuracy else None,
    }


def _tool_versions() -> dict[str, str]:
    """The versions behind the accuracies in metrics.json (every figure names the tool that produced it)."""
    from importlib.metadata import version

    return {"torch": torch.__version__, "brevitas": version("brevitas")}


def load_run(out: Path | str) -> tuple[TrainingJob, nn.Module]:
    """Rebuild a finished run's quantized torch model (eval mode) from OUT/config.yaml and OUT/model.pt."""
    import yaml

    out = Path(out)
    for name in ("config.yaml", "model.pt", "metrics.json"):
        if not (out / name).is_file():
            raise A2QFlowError(f"{out}: no {name} here; run `a2qflow train CONFIG.yaml --out {out}` first")
    saved = yaml.safe_load((out / "config.yaml").read_text())
    cfg = TrainingJob.model_validate({k: v for k, v in saved.items() if k != "hw"})  # hw: the flow's section

    metrics = json.loads((out / "metrics.json").read_text())
    net = build_model(cfg.model, cfg.layer_specs(), DATASET_SHAPES[cfg.data.dataset], int(metrics["num_classes"]))
    net.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    return cfg, net.eval()

"""Bring your own Brevitas model, end to end, on a model of a shape no test uses.

Builds a Brevitas CNN that neither the trainer nor the tests make (1x8x8 digits input, a padded k3 A2Q+ conv at
P = 10 with BatchNorm and max-pool, an unpadded k3 A2Q conv at P = 11, an A2Q linear layer with 5-bit weights at
P = 11, nested in a custom module), trains it briefly on scikit-learn's digits, then:
  - exports it with `a2qflow.export_qonnx` and with Brevitas' own `export_qonnx`;
  - compiles both (recording whether `a2qflow compile` printed the warning for the raw file);
  - runs `a2qflow audit` on both at the quantizers' own targets (exit codes);
  - C-simulates the a2qflow export on the test set, random and saturating inputs: mismatches vs the golden model,
    overflow events, top-1 agreement with torch;
  - executes BUILD/model_int.onnx in qonnx against the golden model (bit-exact accumulators).
Writes benchmarks/results/byo.json and byo.md.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/byo.py
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import publish  # noqa: E402

import a2qflow  # noqa: E402
from a2qflow.flows.cli import main as cli  # noqa: E402
from a2qflow.hw.compiler.golden_compare import compare_with_golden  # noqa: E402
from a2qflow.hw.compiler.ir import load_model  # noqa: E402


class Block(nn.Module):
    def __init__(self, conv, bn, act, pool=None):
        super().__init__()
        self.conv, self.bn, self.act, self.pool = conv, bn, act, pool or nn.Identity()

    def forward(self, x):
        return self.pool(self.act(self.bn(self.conv(x))))


class DigitsNet(nn.Module):
    """Nested blocks; A2Q+ then A2Q convolutions and an A2Q classifier (targets 10 / 11 / 11)."""

    def __init__(self):
        import brevitas.nn as qnn
        from brevitas.quant import (
            Int8AccumulatorAwareWeightQuant,
            Int8AccumulatorAwareZeroCenterWeightQuant,
            Uint8ActPerTensorFloat,
        )

        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.b1 = Block(qnn.QuantConv2d(1, 6, 3, padding=1, bias=False, weight_bit_width=4,
                                        weight_quant=Int8AccumulatorAwareZeroCenterWeightQuant,
                                        weight_accumulator_bit_width=10),
                        nn.BatchNorm2d(6), qnn.QuantReLU(bit_width=4, return_quant_tensor=True), nn.MaxPool2d(2))
        self.b2 = Block(qnn.QuantConv2d(6, 12, 3, bias=True, weight_bit_width=4,
                                        weight_quant=Int8AccumulatorAwareWeightQuant, weight_accumulator_bit_width=11),
                        nn.Identity(), qnn.QuantReLU(bit_width=3, return_quant_tensor=True))
        self.head = nn.Sequential(nn.Flatten(), qnn.QuantLinear(12 * 2 * 2, 10, bias=True, weight_bit_width=5,
                                                                weight_quant=Int8AccumulatorAwareWeightQuant,
                                                                weight_accumulator_bit_width=11))

    def forward(self, x):
        return self.head(self.b2(self.b1(self.inp(x))))


TARGETS = {"b1.conv": 10, "b2.conv": 11, "head.1": 11}


def data() -> tuple[torch.Tensor, ...]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    return x[perm[:1400]], y[perm[:1400]], x[perm[1400:]], y[perm[1400:]]


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 8) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    t0 = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for i in range(0, len(x), 64):
            opt.zero_grad()
            out = net(x[i:i + 64])
            nn.functional.cross_entropy(getattr(out, "value", out), y[i:i + 64]).backward()
            opt.step()
    net.eval()
    return time.perf_counter() - t0


def torch_logits(net: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = net(torch.from_numpy(np.asarray(x, dtype=np.float32)))
    return getattr(out, "value", out).numpy()


def run_cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli(args)
    return rc, err.getvalue()


def measure(work: Path) -> dict:
    from brevitas.export import export_qonnx as brevitas_export_qonnx

    torch.manual_seed(0)
    x_tr, y_tr, x_te, y_te = data()
    net = DigitsNet()
    train_s = train(net, x_tr, y_tr)
    a2q_file, raw_file = work / "model.onnx", work / "raw.onnx"
    res = a2qflow.export_qonnx(net, x_tr[:64], a2q_file)
    with torch.no_grad():
        brevitas_export_qonnx(net, args=x_tr[:1], export_path=str(raw_file), dynamo=False)
    rc_raw_compile, err_raw = run_cli(["compile", str(raw_file), "--out", str(work / "raw_build")])
    rc_compile, err_ok = run_cli(["compile", str(a2q_file), "--out", str(work / "build")])
    own = ",".join(f"{k}={v}" for k, v in TARGETS.items())
    rc_audit_raw, _ = run_cli(["audit", str(raw_file), "--acc-bits", own])
    rc_audit_a2q, _ = run_cli(["audit", str(a2q_file)])
    plan, raw_plan = a2qflow.load_plan(work / "build"), a2qflow.load_plan(work / "raw_build")
    rng = np.random.default_rng(0)
    sets = {"test set": x_te.numpy(), "random": rng.uniform(0, 1, (200, 1, 8, 8)).astype(np.float32),
            "saturating": rng.choice([-20.0, 20.0], (200, 1, 8, 8)).astype(np.float32)}
    model = load_model(work / "build")
    rows = {}
    for name, xs in sets.items():
        sim = a2qflow.csim(work / "build", xs)
        t = torch_logits(net, xs)
        xi = model.input_quant.quantize(xs)
        ints = qonnx_execute_int(work / "build" / "model_int.onnx", xi, model.mac_layers()[-1].name)
        rows[name] = {"samples": len(xs), "csim_mismatches_vs_golden": sim.summary.mismatches,
                      "overflow_events": sim.summary.overflow_events,
                      "top1_agreement_with_torch": float(np.mean(t.argmax(1) == sim.golden.logits.argmax(1))),
                      "model_int_qonnx_bit_exact": compare_with_golden(model, sim.golden.acc, ints, "qonnx").ok}
    rows["test set"]["accuracy_torch"] = float(np.mean(torch_logits(net, x_te.numpy()).argmax(1) == y_te.numpy()))
    layers = [{"name": l.name, "target_acc_bits": l.target_acc_bits, "acc_bits_exact": l.acc_bits_exact,
               "acc_bits_l1": l.acc_bits_l1, "acc_bits_datatype": l.acc_bits_datatype} for l in plan.layers]
    return {"train_seconds": round(train_s, 1), "layers": layers,
            "raw_export_exact_bits": {l.name: l.acc_bits_exact for l in raw_plan.layers},
            "export_audit_ok": res["audit"]["ok"],
            "raw_compile_exit": rc_raw_compile, "raw_compile_warning_lines": [
                l for l in err_raw.splitlines() if l.startswith("warning:")],
            "a2qflow_compile_warning_lines": [l for l in err_ok.splitlines() if l.startswith("warning:")],
            "audit_exit_raw_at_own_targets": rc_audit_raw, "audit_exit_a2qflow_export": rc_audit_a2q,
            "inputs": rows}


def qonnx_execute_int(path: Path, x_int: np.ndarray, last: str) -> np.ndarray:
    """The last layer's accumulators from qonnx' execution of model_int.onnx."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    m = ModelWrapper(str(path)).transform(ChangeBatchSize(len(x_int))).transform(InferShapes())
    ctx = execute_onnx(m, {"global_in": x_int.astype(np.float32)}, return_full_exec_context=True)
    return ctx[f"{last}_acc"].reshape(len(x_int), -1).astype(np.int64)


def markdown(r: dict) -> str:
    lines = [f"# Bring your own Brevitas model ({r['tool']})", "",
             "| layer | target P (quantizer) | exact | L1 | data type | exact of Brevitas' raw export |",
             "|---|---:|---:|---:|---:|---:|"]
    raw = list(r["raw_export_exact_bits"].values())
    for i, l in enumerate(r["layers"]):
        lines.append(f"| {l['name']} | {l['target_acc_bits']} | {l['acc_bits_exact']} | {l['acc_bits_l1']} | "
                     f"{l['acc_bits_datatype']} | {raw[i] if i < len(raw) else '-'} |")
    lines += ["", "| inputs | samples | C-sim mismatches vs golden | overflow events | top-1 agreement with torch "
              "| model_int.onnx in qonnx bit-exact |", "|---|---:|---:|---:|---:|---|"]
    for k, v in r["inputs"].items():
        lines.append(f"| {k} | {v['samples']} | {v['csim_mismatches_vs_golden']} | {v['overflow_events']} | "
                     f"{v['top1_agreement_with_torch']:.1%} | {v['model_int_qonnx_bit_exact']} |")
    lines += ["", f"Raw Brevitas export: `a2qflow compile` printed {len(r['raw_compile_warning_lines'])} warning "
              f"line(s); `a2qflow audit` at the quantizers' own targets exited {r['audit_exit_raw_at_own_targets']} "
              f"(a2qflow export: {r['audit_exit_a2qflow_export']}). Torch test accuracy after "
              f"{r['train_seconds']} s of training: {r['inputs']['test set']['accuracy_torch']:.1%}.", ""]
    return "\n".join(lines)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="a2qflow-byo-"))
    result = measure(work)
    result["tool"] = (f"brevitas {version('brevitas')}, torch {version('torch')}, qonnx {version('qonnx')} "
                      "execute_onnx, g++ C-sim, 1 thread")
    publish(ROOT / "benchmarks" / "results", "byo", result, markdown, echo=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

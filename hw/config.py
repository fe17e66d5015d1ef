"""Hardware section of a flow config (`hw:` in the YAML): part, clock, folding, open-flow target.

Strict on purpose (unknown keys are errors): a typo in a folding override must not silently fall back to the
default. Folding follows FINN: a MAC layer with C output channels and K-long dot products computes PE channels
in parallel, each over SIMD inputs per cycle; PE must divide C and SIMD must divide K (checked against the IR
when the hardware is generated, where C and K are known).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Folding(_Strict):
    simd: int = Field(1, ge=1, description="inputs consumed per cycle per PE; must divide the layer's K")
    pe: int = Field(1, ge=1, description="output channels computed in parallel; must divide the channel count")


class FoldingConfig(_Strict):
    default: Folding = Folding(simd=8, pe=4)  # a cap: each layer takes the largest divisors under it
    layers: dict[str, Folding] = {}
    target_cycles: int | None = Field(None, ge=1, description="cycles per inference to fold for: the solver "
                                                              "(hw/compiler/folding.py, after FINN's SetFolding) "
                                                              "picks SIMD / PE of every layer without an override; "
                                                              "replaces `default`")

    def for_layer(self, name: str) -> Folding:
        return self.layers.get(name, self.default)


# Part and board names reach Tcl scripts (run_hls.tcl, vivado.tcl): only these characters, so no config string can
# inject a command ([exec ...]), a variable ($x), a quote or a new line. Real names fit, e.g. xc7z020clg400-1,
# tul.com.tw:pynq-z2:part0:1.0.
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_.:-]+$"


class VitisConfig(_Strict):
    part: str = Field("xc7z020clg400-1", pattern=TOOL_NAME_PATTERN, max_length=128,
                      description="Xilinx part, e.g. xc7z020clg400-1 (letters, digits and _ . : - only)")
    clock_ns: float = Field(10.0, gt=0, allow_inf_nan=False)
    board: str | None = Field(None, pattern=TOOL_NAME_PATTERN, max_length=128,
                              description="Vivado board_part, e.g. tul.com.tw:pynq-z2:part0:1.0 (same characters)")


OpenTarget = Literal["ice40-up5k", "ice40-hx8k", "ecp5-25k", "ecp5-85k"]
Architecture = Literal["folded", "unrolled"]


class LayerHardware(_Strict):
    """Per-layer hardware overrides (`hw.layers.<name>`)."""

    architecture: Architecture | None = Field(
        None, description="folded (FINN-style MVAU, weights in memories) or unrolled (constant weights in logic, "
                          "one input vector per clock; dense layers, and conv layers named here: one window per clock)")


class ArchitectureConfig(_Strict):
    """Which datapath each MAC layer gets: the global default plus per-layer overrides.

    `unrolled` as the global default applies to dense layers; convolutions stay folded unless named in `layers`
    (an unrolled conv is the constant-weight dense unit on each window), and plan.json records that. An explicit
    per-layer `unrolled` on a depthwise conv, pool, add or requant is an error.
    """

    default: Architecture = "folded"
    layers: dict[str, Architecture] = {}
    pipeline_depth: int = Field(0, ge=0)
    pipeline_levels: int = Field(0, ge=0, description="> 0: each unrolled layer's pipeline depth is derived from "
                                                      "its tree, one register stage per this many adder levels "
                                                      "(overrides pipeline_depth)")

    def for_layer(self, name: str) -> Architecture:
        return self.layers.get(name, self.default)


DspPacking = Literal["auto", "off"]
DspFamilyName = Literal["dsp48e1", "dsp48e2", "sb_mac16"]


class DspConfig(_Strict):
    """`hw.dsp`: several MAC lanes per DSP slice where the proven accumulator width lets them fit (docs/rtl.md,
    packed lanes).

    `auto` packs every folded layer whose lanes fit the family's multiplier and accumulator (hw/compiler/dsp.py)
    and turns on the report's DSP-mapped synthesis; `off` (the default) keeps one lane per multiplier, so existing
    figures do not move unless asked.
    """

    packing: DspPacking = Field("off", description="auto: pack lanes wherever the proven width fits; off: one lane")
    family: DspFamilyName = Field("dsp48e1", description="DSP the lanes are fitted to: dsp48e1 (25x18, 48-bit acc), "
                                                         "dsp48e2 (27x18, 48) or sb_mac16 (16x16, 32)")
    max_slices: int | None = Field(None, ge=0, description="most DSP slices the packed layers may take (an iCE40 "
                                                           "UP5K has 8 SB_MAC16): the plan picks which layers "
                                                           "(plan.json dsp_slices), the rest stay one lane per "
                                                           "multiplier in logic; unset: no limit")


class HardwareConfig(_Strict):
    folding: FoldingConfig = FoldingConfig()
    vitis: VitisConfig = VitisConfig()
    target: OpenTarget = "ice40-up5k"
    clock_mhz: float = Field(12.0, gt=0, allow_inf_nan=False, description="open-flow clock constraint for nextpnr")
    xc7_dsp: bool = Field(False, description="also report xc7 synthesis with DSP inference (LUT-only is always run)")
    architecture: Architecture = Field("folded", description="datapath of every MAC layer unless hw.layers says "
                                                             "otherwise: folded | unrolled (dense layers only)")
    pipeline_depth: int | None = Field(None, ge=0, le=16, description="unrolled layers: register stages inside "
                                                                       "each adder tree, on top of the register "
                                                                       "between layers (unset: from "
                                                                       "hw.pipeline_levels)")
    pipeline_levels: int = Field(0, ge=0, le=64, description="unrolled layers without hw.pipeline_depth: a register "
                                                             "stage every this many adder levels of the layer's "
                                                             "deepest tree (0, the default: none, the trees are "
                                                             "combinational, as every published unrolled figure "
                                                             "was measured; 4 is a good start for a clock target)")
    layers: dict[str, LayerHardware] = {}
    dsp: DspConfig = DspConfig()
    baseline32: bool = Field(True, description="synth also builds the 32-bit design (BUILD/baseline32: the identical "
                                               "design at 32-bit accumulators, what the report's savings compare "
                                               "against); off halves synthesis time, e.g. for a sweep's qat32 "
                                               "points, whose planned design is already 32-bit")
    datatype_baseline: bool = Field(False, description="synth also builds the data-type design (BUILD/"
                                                      "baseline_datatype: every layer at its data-type-bound width, "
                                                      "what a designer without A2Q picks): a fairer comparison than 32")

    def architecture_config(self) -> ArchitectureConfig:
        """The architecture choice per layer as make_plan reads it."""
        explicit = self.pipeline_depth is not None
        return ArchitectureConfig(default=self.architecture, pipeline_depth=self.pipeline_depth if explicit else 0,
                                  pipeline_levels=0 if explicit else self.pipeline_levels,
                                  layers={k: v.architecture for k, v in self.layers.items()
                                          if v.architecture is not None})

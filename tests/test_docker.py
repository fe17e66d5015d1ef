"""docker/Dockerfile stays consistent with what CI exercises, without a Docker engine: it installs through the
Makefile target CI runs, copies every package pyproject.toml declares, and its entrypoint is the console script."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in (ROOT / "docker/Dockerfile").read_text().splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        ins, _, args = buf.partition(" ")
        out.append((ins.upper(), args.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a line continuation"
    return out


def make_targets() -> dict[str, list[str]]:
    """target -> prerequisites, from the Makefile's rule lines."""
    rules = {}
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.$()/-]+)\s*:(?!=)\s*(.*)$", line)
        if m and not line.startswith("\t"):
            rules[m.group(1)] = m.group(2).split()
    return rules


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_base_image_is_python_311_slim_and_meets_requires_python():
    ins = dockerfile()
    assert ins[0][0] == "FROM"
    image = ins[0][1]
    assert image == "python:3.11-slim"
    req = pyproject()["project"]["requires-python"]
    assert req == ">=3.11"


def test_every_make_call_uses_a_real_target_and_install_is_what_ci_runs():
    targets = make_targets()
    runs = [a for i, a in dockerfile() if i == "RUN"]
    commands = [c.split() for r in runs for c in re.split(r"&&|;|\|\|", r)]
    used = {a for c in commands if c and c[0] == "make" for a in c[1:] if "=" not in a and not a.startswith("-")}
    assert used, "the Dockerfile must install through the Makefile"
    assert used <= set(targets), f"unknown make targets {used - set(targets)}"
    assert "install" in used
    # CI: .ci/run -> make test, and test depends on install: the image runs exactly CI's install step
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^\s*make test\b", ci, re.M)
    assert "install" in targets["test"]
    # no pip install outside the Makefile (the image must not drift from CI's dependency set)
    assert not any(re.search(r"\bpip\d?\s+install\b", r) for r in runs)


def test_make_install_dry_run_resolves(tmp_path):
    """`make -n install` in a copy of the project: the recipe exists and calls pip on this pyproject."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed; the Makefile (and the Dockerfile) need it")
    for f in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / f, tmp_path / f)
    r = subprocess.run([make, "-n", "install", "PYTHON=python3.11"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "python3.11 -m venv .venv" in r.stdout and "pip install" in r.stdout and ".[test]" in r.stdout


def test_copies_every_declared_package_and_the_files_pip_needs():
    copies = [a.split() for i, a in dockerfile() if i == "COPY"]
    sources = {s.rstrip("/") for c in copies for s in c[:-1] if not s.startswith("--")}
    missing = [s for s in sources if not (ROOT / s).exists()]
    assert not missing, f"COPY sources missing from the repository: {missing}"
    top_packages = {p.split(".")[0] for p in pyproject()["tool"]["setuptools"]["packages"]}
    assert top_packages <= sources, f"packages not copied into the image: {top_packages - sources}"
    assert {"pyproject.toml", "Makefile", pyproject()["project"]["readme"]} <= sources


def test_entrypoint_is_the_declared_console_script_in_the_make_venv():
    ins = dict((i, a) for i, a in dockerfile())
    workdir = [a for i, a in dockerfile() if i == "WORKDIR"][-1]
    import json

    entry = json.loads(ins["ENTRYPOINT"])
    scripts = pyproject()["project"]["scripts"]
    venv = re.search(r"^VENV\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert entry == [f"{workdir}/{venv}/bin/a2qflow"] and "a2qflow" in scripts
    assert scripts["a2qflow"] == "a2qflow.flows.cli:main"
    # and that console script works in the venv the same target created here
    r = subprocess.run([str(ROOT / venv / "bin/a2qflow"), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "run" in r.stdout and "sweep" in r.stdout


def test_system_packages_cover_the_open_tools_needs():
    runs = " ".join(a for i, a in dockerfile() if i == "RUN")
    apt = re.search(r"apt-get install ([^&]+)", runs).group(1).split()
    assert {"g++", "make", "perl"} <= set(apt)  # C-sim; Verilator's generated build needs make + perl
    # the yowasp tools the image pre-compiles are the ones the project installs
    for tool in re.findall(r"\.venv/bin/(yowasp-[\w-]+)", runs):
        assert (ROOT / ".venv/bin" / tool).exists(), tool


def test_outputs_volume_and_docs():
    ins = dockerfile()
    assert any(i == "VOLUME" and "/runs" in a for i, a in ins)
    doc = (ROOT / "docker/README.md").read_text()
    for needle in ("docker build -f docker/Dockerfile", "-v", "/runs", "vitis_hls", "vivado", "settings64.sh"):
        assert needle in doc, needle

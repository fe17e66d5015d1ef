"""The package's shape, as users and maintainers rely on it: one `a2qflow` namespace, one-way dependencies,
small functions, and a docstring on every module saying what it owns."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import a2qflow

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"a2qflow": ROOT / "a2qflow", "training": ROOT / "training", "hw": ROOT / "hw",
                "hls_templates": ROOT / "hls_templates", "flows": ROOT / "flows"}
MAX_FUNCTION_LINES = 80


def _sources() -> list[Path]:
    return sorted(p for d in PACKAGE_DIRS.values() for p in d.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_only_the_a2qflow_namespace_is_importable_from_outside_the_repository(tmp_path):
    code = ("import importlib, sys\n"
            "bad = []\n"
            "for m in ('hw', 'training', 'flows', 'hls_templates'):\n"
            "    try:\n"
            "        importlib.import_module(m); bad.append(m)\n"
            "    except ImportError:\n"
            "        pass\n"
            "import a2qflow, a2qflow.hw.compiler.plan, a2qflow.training.config, a2qflow.flows.cli\n"
            "print(','.join(bad) or 'none', a2qflow.__version__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["none", a2qflow.__version__]


def test_version_flag_matches_the_package_and_no_arguments_prints_help(tmp_path):
    exe = Path(sys.executable).parent / "a2qflow"
    if not exe.is_file():
        pytest.skip("the a2qflow console script is not installed next to this Python")
    v = subprocess.run([str(exe), "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.strip() == f"a2qflow {a2qflow.__version__}"
    h = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True)
    assert h.returncode == 0 and "usage: a2qflow" in h.stdout and "compile" in h.stdout


@pytest.mark.parametrize("package, forbidden", [("hw", ("a2qflow.flows", "a2qflow.training")),
                                                ("training", ("a2qflow.flows",)),
                                                ("hls_templates", ("a2qflow.flows", "a2qflow.training"))])
def test_dependencies_point_one_way(package, forbidden):
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p in PACKAGE_DIRS[package].rglob("*.py")
           for m in _imports(p) if m.startswith(forbidden)]
    assert not bad, bad


@pytest.mark.parametrize("backend, forbidden", [
    ("compiler", ("a2qflow.hw.hls", "a2qflow.hw.rtl", "a2qflow.hw.synth")),
    ("hls", ("a2qflow.hw.rtl", "a2qflow.hw.synth")),
    ("rtl", ("a2qflow.hw.hls", "a2qflow.hw.synth"))])
def test_backends_do_not_import_each_other(backend, forbidden):
    """The compiler knows no backend and the HLS and RTL backends read the IR and the plan, never each other's
    code (function-level imports included); synth builds what they generated, and flows/ compares them."""
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p in (ROOT / "hw" / backend).rglob("*.py")
           for m in _imports(p) if m.startswith(forbidden)]
    assert not bad, bad


def test_no_function_is_longer_than_80_lines():
    long = []
    for p in _sources():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_every_module_says_what_it_owns():
    missing = [str(p.relative_to(ROOT)) for p in _sources() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, missing


def test_public_api_functions_document_args_returns_and_an_example():
    for name in ("export_qonnx", "audit", "compile", "load_plan", "csim", "rtlsim"):
        doc = getattr(a2qflow, name).__doc__ or ""
        assert all(word in doc for word in ("Args:", "Returns:", "Example:")), name

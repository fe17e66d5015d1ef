"""One content key for every cache: the inputs, the parameters and the source of the code that makes the artifact.

A cached artifact (a compiled C-sim testbench, a Verilator simulator, generated Verilog, a yosys count, a flow
stage's folder) is stale when any of three things changed: an input file, a parameter (flags, tool versions), or
the code that produced it. Hand-made keys tend to forget the third; BUILD/rtl's key once left out the generator's
own Python, so outside the pipeline an edit to the generator reused stale Verilog. `content_key` makes the three
explicit arguments, and `code_modules` follows imports, so a key never depends on a hand-kept list of helpers:
naming the module that produces the artifact hashes it and every a2qflow module it imports, at any depth
(function-level imports included). Templates and other package data are not imports: pass them as `files`
(`importlib.resources.files(package) / name` works as well as a Path).

Why not a cache library: joblib.Memory and diskcache key a Python function's return value by its arguments and at
most that one function's own source, not the helpers and templates it calls; our caches hold executables and
folders published atomically (`hw.files`), so only the key is shared here.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from a2qflow.hw.errors import A2QFlowError

KEY_FORMAT = 1  # bump when the way keys are computed changes (every cache is then rebuilt once)
ROOT_PACKAGE = "a2qflow"


class Readable(Protocol):
    """A Path or an importlib.resources Traversable: what `files` accepts."""

    name: str

    def read_bytes(self) -> bytes: ...


def _jsonable(value: Any) -> Any:
    """Parameters that JSON has no type for, in a form that does not depend on the process (no object ids)."""
    if isinstance(value, (Path, Enum)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "model_dump"):  # pydantic config sections
        return value.model_dump(mode="json")
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cache key parameter of type {type(value).__name__} has no stable text form")


def _update_file(h: "hashlib._Hash", label: str, f: Readable) -> None:
    h.update(b"file\0" + label.encode() + b"\0")
    data = f.read_bytes()
    h.update(len(data).to_bytes(8, "little") + data)


def _add_files(h: "hashlib._Hash", files: Iterable[Readable | str | tuple[str, Readable]]) -> None:
    """Each file by name (or the label it comes with) and bytes; a folder by every file below it (relative names,
    sorted)."""
    for f in files:
        if isinstance(f, tuple):
            _update_file(h, f[0], f[1])
            continue
        p = Path(f) if isinstance(f, str) else f
        if isinstance(p, Path) and p.is_dir():
            for sub in sorted(x for x in p.rglob("*") if x.is_file() and "__pycache__" not in x.parts):
                _update_file(h, f"{p.name}/{sub.relative_to(p).as_posix()}", sub)
        elif isinstance(p, Path) and not p.is_file():
            raise A2QFlowError(f"{p}: input file missing (needed for a cache key)")
        else:
            _update_file(h, p.name, p)


_PARSED: dict[tuple[str, int, int], list[str]] = {}


def _module_file(name: str) -> Path | None:
    """The source file of an a2qflow module (a package's __init__.py), or None when `name` is no module."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imported(name: str, path: Path) -> list[str]:
    """The a2qflow modules `name` imports anywhere in its file (cached per file version)."""
    st = path.stat()
    memo = (str(path), st.st_mtime_ns, st.st_size)
    if memo not in _PARSED:
        out = []
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                out += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                out += [base] + [f"{base}.{a.name}" for a in node.names]
        _PARSED[memo] = [m for m in out if m == ROOT_PACKAGE or m.startswith(ROOT_PACKAGE + ".")]
    return _PARSED[memo]


def code_files(modules: Iterable[str], follow_imports: bool = True) -> dict[str, Path]:
    """{module name: source file} of `modules` and every a2qflow module they import, transitively.

    Args:
        modules: dotted names of the modules that produce an artifact (e.g. "a2qflow.hw.rtl.generate").
        follow_imports: False keeps only the listed modules (for code that calls no other a2qflow module to make
            the artifact, e.g. a compiler invocation, where hashing every import would rebuild it for nothing).

    Returns:
        Every module reached, sorted by name. A listed name that is no a2qflow module is a one-line error.
    """
    todo, seen = list(modules), {}
    for m in todo:
        if not (m == ROOT_PACKAGE or m.startswith(ROOT_PACKAGE + ".")) or _module_file(m) is None:
            raise A2QFlowError(f"cache key: {m!r} is not an a2qflow module")
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue  # `from pkg import function`: the name after the dot is no module
        seen[name] = path
        if follow_imports:
            todo += [m for m in _imported(name, path) if m not in seen]
    return dict(sorted(seen.items()))


def content_key(*, files: Iterable[Readable | str | tuple[str, Readable]] = (),
                texts: Mapping[str, str | bytes] | None = None, code_modules: Iterable[str] = (),
                follow_imports: bool = True, params: Mapping[str, Any] | None = None, length: int = 64) -> str:
    """A hex key that changes when an input, a parameter or the producing code changes, and only then.

    Args:
        files: input files by name and content (not by location, so equal inputs elsewhere share an entry):
            Paths, importlib.resources Traversables (templates, Verilog library files), folders, or
            (label, file) pairs where the name alone is ambiguous.
        texts: inputs held in memory, {name: text}.
        code_modules: the a2qflow modules that produce the artifact; they and everything they import are hashed.
        follow_imports: False hashes only the listed modules (see `code_files`).
        params: JSON-able parameters (flags, tool versions, config sections); key order does not matter.
        length: hex digits returned (sha256: at most 64).

    Returns:
        The first `length` hex digits of a sha256 over all of the above.

    Example:
        >>> content_key(files=[build / "ir.json"], code_modules=["a2qflow.hw.rtl.generate"], params={"v": 1})
    """
    h = hashlib.sha256(f"a2qflow-content-key {KEY_FORMAT}\0".encode())
    h.update(b"params\0" + json.dumps(dict(params or {}), sort_keys=True, default=_jsonable).encode() + b"\0")
    _add_files(h, files)
    for name, text in sorted((texts or {}).items()):
        data = text.encode() if isinstance(text, str) else bytes(text)
        h.update(b"text\0" + name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    for name, path in code_files(code_modules, follow_imports).items():
        _update_file(h, name, path)
    return h.hexdigest()[:length]


def package_sources(packages: Iterable[str], suffixes: Iterable[str]) -> list[tuple[str, Path]]:
    """(label, file) of every source file of installed packages with the given suffixes, each file once: the
    `content_key(files=...)` pairs for when a whole package is the producing code (the flow pipeline's stamps)."""
    out, seen, suffixes = [], set(), tuple(suffixes)
    for pkg in packages:
        spec = importlib.util.find_spec(pkg)
        for root in (spec.submodule_search_locations or []) if spec else []:
            root = Path(root).resolve()
            for f in sorted(f for f in root.rglob("*") if f.is_file() and f.suffix in suffixes
                            and "__pycache__" not in f.parts):
                if f not in seen:
                    seen.add(f)
                    out.append((f"{pkg}/{f.relative_to(root).as_posix()}", f))
    return out

"""Files shared by every stage: atomic output (readers see the old file or the complete new one) and the cache.

Owns the write-to-temp-then-rename helpers (`atomic_write_*`, `staged_dir`), the one check of an output folder
(`ensure_out_dir`), the JSON encoder for numpy values, the one rule for a path stored in a result file
(`relative_path` / `resolve_path`: relative to the file's folder, so a moved folder needs no rewrite), and
the one cache folder of a2qflow (`cache_dir`: compiled C-sim headers, Verilator simulators).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from a2qflow.hw.errors import A2QFlowError

_UMASK = os.umask(0)
os.umask(_UMASK)


def ensure_out_dir(folder: Path | str, option: str = "--out") -> Path:
    """Create `folder` (and parents); an existing file, a path under a file or an unwritable place is one line."""
    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.exists() and not p.is_dir():
            what = "is a file" if p == folder else f"is under {p}, which is a file"
            raise A2QFlowError(f"{option} {folder}: {what}, not a folder; choose another {option} path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise A2QFlowError(f"{option} {folder}: cannot create the folder ({e.strerror}); choose a writable "
                           f"{option} path") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise A2QFlowError(f"{option} {folder}: the folder is not writable by this user; choose a writable "
                           f"{option} path or fix its permissions")
    return folder


def check_out_file(path: Path | str, option: str, example: str = "out.json") -> Path:
    """An output FILE path the user gave (`--json OUT.json`, export's path): a folder there, or a file where a
    parent folder should be, is one line naming the option, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise A2QFlowError(f"{option} {path}: is a folder, not a file; give a file path (e.g. {path / example})")
    for p in path.parents:
        if p.exists() and not p.is_dir():
            raise A2QFlowError(f"{option} {path}: is under {p}, which is a file, not a folder; choose another "
                               f"{option} path")
    return path


def relative_path(path: Path | str, base: Path | str) -> str:
    """`path` as a result file stores it: relative to the folder `base` (POSIX separators, `..` where outside).

    Why: an absolute path goes stale when a run folder moves (another disk, a Ray worker's temp folder renamed into
    the sweep folder); a relative one keeps naming the same file, with nothing to rewrite."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()


def resolve_path(path: Path | str, base: Path | str) -> Path:
    """A stored path read back: a relative one is joined to `base` (`..` steps folded: `RUN/report/../build` reads
    `RUN/build`), an absolute one (earlier files) stays as written."""
    p = Path(path)
    return p if p.is_absolute() else Path(os.path.normpath(Path(base) / p))


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write bytes so readers see the old or the new file, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs should read like any other file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_dir(dest: Path | str) -> Iterator[Path]:
    """Build a folder under a temp name beside `dest`; swap it in only when the block succeeds.

    Readers see the old folder or the complete new one. On any failure (or Ctrl-C) the temp folder is removed
    and `dest` is left as it was. The old folder is moved aside before the swap, so no moment has half of each.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        yield tmp
        tmp.chmod(0o777 & ~_UMASK)  # mkdtemp makes 0700
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old."))
            os.replace(dest, old / dest.name)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a half-written one."""
    atomic_write_bytes(Path(path), text.encode())


def atomic_write_json(path: Path | str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "model_dump"):  # a typed stage result (pydantic) nested in a plain dict
        return o.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_write_npy(path: Path | str, array: np.ndarray) -> None:
    """np.save, atomically (readers never see a truncated array)."""
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_npz(path: Path | str, arrays: dict[str, np.ndarray]) -> None:
    """np.savez of named arrays, atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def cache_dir(*parts: str) -> Path:
    """a2qflow's one cache folder: $A2QFLOW_CACHE, else $XDG_CACHE_HOME/a2qflow, else ~/.cache/a2qflow."""
    base = os.environ.get("A2QFLOW_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                           os.path.expanduser("~/.cache"), "a2qflow")
    return Path(base, *parts)

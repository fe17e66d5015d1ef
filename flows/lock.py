"""One a2qflow process per run folder: an exclusive lock on RUN (or a sweep's folder) for the whole run.

Why: two `a2qflow run` on one --out interleave their stages (a user saw "done" for P=12 while the folder held
P=16 results), and the second run's start-up cleanup deletes the first run's live scratch folder. The lock is an
flock(2) on RUN/.a2qflow.lock, a file holding the owner's pid: the kernel drops it when that process dies, so a
lock left behind by a killed run is simply taken over; a live holder makes a second run fail at once, naming it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import ensure_out_dir

LOCK_NAME = ".a2qflow.lock"


@contextmanager
def run_lock(folder: Path | str, option: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on `folder` for the duration of the block; fail at once if another process holds it.

    Args:
        folder: the run (or sweep) folder; created if missing.
        option: the CLI option that named the folder, for messages.
    Returns:
        the lock file's path (inside `folder`).
    """
    folder = ensure_out_dir(folder, option)
    with _hold(folder / LOCK_NAME, lambda who: f"{option} {folder}: in use by another a2qflow run ({who}); wait "
                                                f"for it to finish, or use another {option}") as path:
        yield path


@contextmanager
def _hold(path: Path, busy: Callable[[str], str]) -> Iterator[Path]:
    """flock(2) the lock file `path` (created if missing) for the block; `busy(who)` is the message when a live
    process holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise A2QFlowError(f"{path.parent}: cannot create the lock file {path.name} ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise A2QFlowError(f"{path}: cannot lock ({e.strerror})") from None
            holder = _read_pid(fd)
            raise A2QFlowError(busy(f"pid {holder}" if holder else "another process")) from None
        # ours now (a lock file left by a dead run is simply taken over): record our pid for the next one to name
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race with a waiting process)


# The options through which each single-stage command writes (or, for report's positional RUN, writes under).
# run / sweep / search hold run_lock on their own --out; every other command that writes takes the lock of each
# run folder its outputs land in, so it cannot replace a running flow's outputs (and a run started meanwhile is
# refused, naming it).
WRITES = {"train": ("out",), "compile": ("out",), "hls": ("build",), "csim": ("build",), "rtl": ("build",),
          "rtlsim": ("build",), "synth": ("build",), "bitstream": ("build",), "report": ("out", "path"),
          "audit": ("json",)}


def enclosing_runs(path: Path) -> list[Path]:
    """Every folder at or above `path` that is (or was) an a2qflow run or sweep folder (holds LOCK_NAME),
    outermost first."""
    path = Path(path).absolute()
    return [p for p in reversed([path, *path.parents]) if (p / LOCK_NAME).is_file()]


@contextmanager
def command_lock(command: str, args) -> Iterator[None]:
    """Hold the lock of every run folder the command's outputs land in (see WRITES) while it runs; one line
    naming the folder and its holder when a live a2qflow process is using it."""
    with ExitStack() as stack:
        seen: set[Path] = set()
        for dest in WRITES.get(command, ()):
            value = getattr(args, dest, None)
            if value is None:
                continue
            label = f"--{dest} {value}" if dest in ("out", "json") else str(value)
            for run in enclosing_runs(Path(value)):
                if run in seen or not os.access(run / LOCK_NAME, os.W_OK):  # not ours to write into anyway
                    continue
                seen.add(run)
                where = "is" if run == Path(value).absolute() else f"is inside {run}, which is"
                stack.enter_context(_hold(run / LOCK_NAME, lambda who, label=label, where=where: (
                    f"{label}: {where} in use by another a2qflow run ({who}); wait for it to finish, or write "
                    "somewhere else")))
        yield


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None

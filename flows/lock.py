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
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise A2QFlowError(f"{option} {folder}: cannot create the lock file {path.name} ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise A2QFlowError(f"{path}: cannot lock ({e.strerror})") from None
            holder = _read_pid(fd)
            who = f"pid {holder}" if holder else "another process"
            raise A2QFlowError(f"{option} {folder}: in use by another a2qflow run ({who}); wait for it to finish, "
                               f"or use another {option}") from None
        # ours now (a lock file left by a dead run is simply taken over): record our pid for the next one to name
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race with a waiting process)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None

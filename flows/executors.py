"""Where sweep and search points run: local processes or Ray tasks, behind one small interface.

Why: a sweep is a list of independent, resumable run folders. Running them in a local process pool caps a user at
one machine; Ray lets the same points run as tasks on a cluster the user already has. Both executors take the same
`PointTask`s and yield `(task, result)` as points finish, so flows/sweep.py and flows/search.py do not care which
one runs them.

How point folders reach the driver (Ray): through Ray's object store, not a shared file system. The driver packs a
point's existing folder (so finished stages are reused) into a tar.gz, the task unpacks it in a private temp folder
on whichever node runs it, runs the point's pipeline there, and returns the packed folder with the result; the
driver unpacks it into SWEEP/points/<name> (temp folder + rename, so a folder is whole or absent). Any cluster
works, with or without shared storage; the cost is one archive per point each way (a digits point is ~1 MB
without synthesis logs). Stamps hash contents and relative names only, so a folder built on a worker is "up to
date" on the driver and a re-run redoes nothing. A point's result is a pydantic model (flows/results.py) that Ray
pickles back; the task returns it with its paths relative to the point folder and the driver resolves them against
the folder it unpacked, and every file in the folder stores its paths relative to its own folder: nothing rewrites
text. The task tells the point function where the driver keeps the folder (`shown_as`), so failure messages name
that folder rather than the worker's temp folder.

A failed point (its flow raised) or a dead worker is recorded as `failed` with its reason; the others go on.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import tarfile
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from a2qflow.flows.lock import LOCK_NAME
from a2qflow.flows.results import FlowResult
from a2qflow.hw.errors import A2QFlowError

EXECUTORS = ("local", "ray")


@dataclass
class PointTask:
    """One unit of work: `fn(payload, run_dir, stages, *extra) -> FlowResult` over the run folder `run_dir`; on Ray
    it is called with `shown_as=` the driver's folder too (its messages name that folder).

    `meta` is the point's result row before it ran, returned as `failed` when its worker dies or its task raises."""

    name: str
    fn: Callable[..., FlowResult]
    payload: Any
    run_dir: Path
    stages: Sequence[str] = ()
    meta: FlowResult | dict = field(default_factory=dict)
    extra: tuple = ()


class Progress:
    """Points done / running / failed and elapsed time on one rich line (or nothing when disabled)."""

    def __init__(self, label: str, total: int, enabled: bool = True):
        self.label, self.total, self.enabled = label, total, enabled
        self.done = self.failed = self.running = 0
        self.t0 = time.perf_counter()
        self._p = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._p = RichProgress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                   TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                                   TextColumn("{task.description}"))
            self._p.__enter__()
            self._task = self._p.add_task("", total=self.total, counts=self.counts())
        return self

    def __exit__(self, *exc) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)

    def counts(self) -> str:
        return f"done {self.done} / running {self.running} / failed {self.failed}"

    def set_running(self, n: int) -> None:
        self.running = n
        if self._p is not None:
            self._p.update(self._task, counts=self.counts())

    def finished(self, name: str, status: str) -> None:
        if status == "failed":
            self.failed += 1
        self.done += 1
        if self._p is not None:
            self._p.update(self._task, advance=1, counts=self.counts(), description=f"{name}: {status}")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def failure(task: PointTask, reason: str) -> FlowResult | dict:
    """The result of a point whose worker died or whose task raised (the task's own `fn` never raises)."""
    if isinstance(task.meta, FlowResult):
        return task.meta.model_copy(update={"status": "failed", "reason": reason})
    return {**task.meta, "name": task.name, "status": "failed", "reason": reason}


class LocalExecutor:
    """The points in this process (jobs = 1) or in a pool of `jobs` spawned processes."""

    name = "local"

    def __init__(self, jobs: int = 1):
        if jobs < 1:
            raise A2QFlowError(f"--jobs {jobs}: must be at least 1")
        self.jobs = jobs

    def describe(self) -> dict:
        return {"kind": "local", "jobs": self.jobs}

    def run(self, tasks: list[PointTask], progress: Progress) -> Iterator[tuple[PointTask, FlowResult]]:
        if self.jobs == 1:
            for t in tasks:
                progress.set_running(1)
                yield t, t.fn(t.payload, str(t.run_dir), list(t.stages), *t.extra)
            return
        ctx = multiprocessing.get_context("spawn")  # torch + fork is unsafe; spawn costs ~2 s per worker
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx) as pool:
            futs = {pool.submit(t.fn, t.payload, str(t.run_dir), list(t.stages), *t.extra): t for t in tasks}
            pending = set(futs)
            while pending:
                progress.set_running(min(self.jobs, len(pending)))
                ready, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in ready:
                    try:
                        yield futs[f], f.result()
                    except Exception as e:  # noqa: BLE001 - a crashed worker: record it, keep the others
                        yield futs[f], failure(futs[f], f"{type(e).__name__}: {e}")


# ------------------------------------------------------------------------------------------------ Ray

def pack_dir(folder: Path) -> bytes | None:
    """tar.gz of a run folder (without scratch folders or its lock file), or None when it does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(folder.iterdir()):
            if p.name in (".tmp", ".trash", LOCK_NAME):
                continue
            tar.add(p, arcname=p.name)
    return buf.getvalue()


def safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract only regular files and folders that stay inside `dest`: tarfile's "data" filter where the Python has
    it (3.11.4+), else the same rules checked here (Debian 12 ships 3.11.2, which requires-python >= 3.11 admits).
    A point archive never needs links, devices or absolute paths, so any of them is refused."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = Path(dest).resolve()
    members = tar.getmembers()
    for m in members:
        target = (root / m.name).resolve()
        if not (m.isfile() or m.isdir()) or Path(m.name).is_absolute() or (target != root and root not in
                                                                          target.parents):
            raise A2QFlowError(f"point archive: member {m.name!r} is not a plain file inside the point folder")
        m.mode = (m.mode | 0o600) & 0o755  # what the "data" filter does: owner-writable, no set-id bits
    tar.extractall(dest, members=members)


def unpack_into(data: bytes, dest: Path) -> None:
    """Replace `dest` with the archive's contents: unpack beside it, then rename (whole or absent)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            safe_extract(tar, tmp / "new")
        if dest.exists():
            os.replace(dest, tmp / "old")
        os.replace(tmp / "new", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_packed(fn: Callable[..., FlowResult], payload: Any, archive: bytes | None, stages: list[str], name: str,
               extra: tuple = (), final_dir: str | None = None) -> tuple[FlowResult, bytes | None]:
    """Ray task body: unpack the point's folder, run it, and return (result, the packed folder).

    The result's paths are relative to the point folder (the driver resolves them against its own copy); `fn`
    is told `shown_as=final_dir`, where the driver keeps the folder, for the messages it writes."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="a2qflow-point-") as tmp:
        run = Path(tmp) / name
        if archive is not None:
            unpack_into(archive, run)
        res = fn(payload, str(run), stages, *extra, shown_as=final_dir)
        return res.relative_to(run), pack_dir(run)


CONNECT_TIMEOUT_S = 5.0  # a Ray head answers a TCP connect in milliseconds; ray.init itself retries for minutes


def check_ray_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in seconds, naming the address, when nothing answers there (ray.init would retry for minutes).

    HOST:PORT is the head's GCS address (`ray start --head --port=6379`). The Ray Client form ray://HOST:PORT needs
    `ray[client]` (grpcio), which a2qflow does not install: with grpcio missing it is refused here, with one line
    saying what to use instead."""
    import importlib.util
    import socket

    text = address.strip()
    if text in ("auto", "local"):
        return
    if text.startswith("ray://"):
        if importlib.util.find_spec("grpc") is None:
            raise A2QFlowError(f"--ray-address {address}: the Ray Client form (ray://) needs ray[client] (grpcio), "
                               "which a2qflow does not install; run the sweep on a node of the cluster with "
                               "--ray-address HEAD_IP:6379 (docs/flow.md)")
        text = text[len("ray://"):]
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise A2QFlowError(f"--ray-address {address}: expected HOST:PORT, e.g. 10.0.0.5:6379 (the head's "
                           "`ray start --head --port=6379`)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        why = "timed out" if isinstance(e, socket.timeout) else (e.strerror or type(e).__name__)
        raise A2QFlowError(f"--ray-address {address}: nothing answers at {host}:{port} ({why} within {timeout:g} s); "
                           "start the cluster there (`ray start --head --port=PORT`) or fix the address") from None


class RayExecutor:
    """Each point is a Ray task declaring `num_cpus`; a local Ray runtime unless `address` names a cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_point: float = 1.0, num_cpus: int | None = None):
        if cpus_per_point <= 0:
            raise A2QFlowError(f"--ray-cpus-per-point {cpus_per_point}: must be positive")
        if address:
            check_ray_address(address)
        self.address, self.cpus_per_point, self.num_cpus = address, cpus_per_point, num_cpus
        self._started = False

    def describe(self) -> dict:
        return {"kind": "ray", "address": self.address or "local", "cpus_per_point": self.cpus_per_point}

    def _init(self):
        try:
            import ray
        except ImportError:
            raise A2QFlowError("--executor ray: the `ray` package is not installed; run `make install` "
                               "(ray is a dependency of a2qflow)") from None
        if ray.is_initialized():
            return ray
        env = {"env_vars": {"OMP_NUM_THREADS": "1"}}
        try:
            if self.address:
                ray.init(address=self.address, runtime_env=env, log_to_driver=False, logging_level="ERROR")
            else:
                ray.init(num_cpus=self.num_cpus or os.cpu_count(), runtime_env=env, include_dashboard=False,
                         log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the cluster at {self.address}" if self.address else "a local Ray runtime"
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise A2QFlowError(f"--executor ray: could not connect to {where}: {msg}; check --ray-address "
                               "(the head's HEAD:6379) and that `ray status` works there") from None
        self._started = True
        return ray

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def capacity(self, ray) -> int:
        cpus = ray.cluster_resources().get("CPU", 1)
        return max(1, int(cpus // self.cpus_per_point))

    def run(self, tasks: list[PointTask], progress: Progress) -> Iterator[tuple[PointTask, FlowResult]]:
        ray = self._init()
        try:
            remote = ray.remote(num_cpus=self.cpus_per_point, max_retries=1)(run_packed)
            refs = {remote.options(name=f"a2qflow:{t.name}").remote(
                t.fn, t.payload, pack_dir(t.run_dir), list(t.stages), t.name, t.extra, str(t.run_dir)): t
                for t in tasks}
            pending = list(refs)
            cap = self.capacity(ray)
            while pending:
                progress.set_running(min(cap, len(pending)))
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    yield refs[ref], self._collect(ray, ref, refs[ref])
        finally:
            self.close()

    def _collect(self, ray, ref, task: PointTask) -> FlowResult:
        try:
            res, archive = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - a dead worker or node: record it, keep the others
            msg = str(e).strip().splitlines()
            return failure(task, f"ray: {type(e).__name__}: {msg[-1] if msg else ''}".strip())
        if archive is not None:
            unpack_into(archive, task.run_dir)
        return res.resolved(task.run_dir)  # its paths were relative to the point folder, now the driver's copy


def make_executor(kind: str, jobs: int = 1, ray_address: str | None = None, cpus_per_point: float = 1.0,
                  ray_num_cpus: int | None = None):
    """The executor for `--executor kind` (one-line error for an unknown kind or a misplaced option)."""
    if kind not in EXECUTORS:
        raise A2QFlowError(f"--executor {kind}: unknown; choose {' or '.join(EXECUTORS)}")
    if kind == "local":
        if ray_address:
            raise A2QFlowError("--ray-address is only used with --executor ray")
        return LocalExecutor(jobs)
    return RayExecutor(ray_address, cpus_per_point, ray_num_cpus)

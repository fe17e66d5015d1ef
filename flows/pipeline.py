"""Resumable stage framework: each stage writes one folder atomically, stamped with a hash of its inputs.

Why: a full run (train -> ... -> bitstream) takes minutes; a re-run must skip what is already done, and an
interrupted or failed stage must never leave a half-written folder that a later stage would trust.

A stage declares its inputs: config parts (any JSON-able value), files (hashed by content) and upstream stages
(their *output* digests, so a re-run upstream that changes its outputs re-runs everything below). Every stamp
also holds the digest of the whole installed a2qflow source (.py, templates, Verilog), so no code change can leave
a stale stage marked up to date. A stage is skipped only when its stamp matches AND its folder still holds
exactly the files it recorded (same output digest): a deleted or edited output is rebuilt, and so is what follows.
`run()` holds an exclusive lock on RUN (flows.lock) so two runs never share a folder. The stage function writes
into `ctx.out`, a path inside a private temp folder (RUN/.tmp/); on success the pipeline writes `stamp.json` into
it and renames it into place. The folder therefore exists, complete and stamped, or not at all.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from a2qflow.flows.lock import run_lock
from a2qflow.flows.results import RunRecord, StageRecord
from a2qflow.hw.cache_key import content_key, package_sources
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json

STAMP = "stamp.json"
STAMP_FORMAT = 2  # 2: code = digest of the whole package source; skipping also checks the output digest
SOURCE_PACKAGES = ("a2qflow", "a2qflow.training", "a2qflow.hw", "a2qflow.hls_templates", "a2qflow.flows")
SOURCE_SUFFIXES = (".py", ".j2", ".hpp", ".h", ".cpp", ".v", ".vh", ".sv", ".tcl")


@dataclass
class StageContext:
    """What a stage function gets: the run folder, where to write, and the outputs of its upstream stages."""

    run: Path  # the RUN folder
    name: str
    out: Path  # write here (inside a temp folder); becomes RUN/<stage.output> on success
    tmp: Path  # the private scratch folder holding `out`; deleted afterwards
    upstream: dict[str, Path]  # stage name -> its committed output folder
    params: dict[str, Any]  # run-wide parameters (the pipeline's `params`)
    note: Callable[[str], None] = lambda msg: None  # update the progress line
    dest: Path | None = None  # where `out` is renamed to on success (RUN/<stage.output>): paths a stage stores
    # relative to its own folder are computed against this, never against the temp folder


@dataclass
class Stage:
    """One step of a flow.

    `output` is the folder relative to RUN the stage owns (may be nested in an upstream stage's folder, e.g.
    `build/hls` inside `build`). `func(ctx)` fills ctx.out and may return a small JSON-able summary kept in the
    stamp. `inputs(params)` returns the config parts that matter; `files(params, upstream)` the input files
    hashed by content; `enabled(params)` may return a reason string to skip the stage (e.g. a vendor tool that is
    not installed). The code a stage runs is hashed for every stage alike: the whole package (package_source_digest).
    """

    name: str
    output: str
    func: Callable[[StageContext], dict | None]
    deps: Sequence[str] = ()
    after: Sequence[str] = ()  # optional upstream: hashed and passed when it ran, not required
    inputs: Callable[[dict], Any] = lambda params: None
    files: Callable[[dict, dict[str, Path]], Sequence[Path]] = lambda params, upstream: ()
    enabled: Callable[[dict], str | None] = lambda params: None
    description: str = ""


@dataclass
class PipelineRun:
    run: Path
    results: list[StageRecord] = field(default_factory=list)  # one per selected stage, as run.json lists them

    def status(self, name: str) -> str:
        for r in self.results:
            if r.name == name:
                return r.status
        return "not run"

    def ran(self) -> list[str]:
        return [r.name for r in self.results if r.status == "done"]

    def skipped(self) -> list[str]:
        return [r.name for r in self.results if r.status == "skipped"]


# ------------------------------------------------------------------------------------------------- hashing

def _sha256_file(path: Path, h: "hashlib._Hash") -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


def hash_files(paths: Sequence[Path], base: Path | None = None) -> str:
    """Content hash of files and folders (recursively, sorted; names relative to `base` or to each root)."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise A2QFlowError(f"{p}: input file missing")
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                if f.name == STAMP and f.parent == p:
                    continue
                h.update(str(f.relative_to(p)).encode() + b"\0")
                _sha256_file(f, h)
        else:
            h.update((str(p.relative_to(base)) if base else p.name).encode() + b"\0")
            _sha256_file(p, h)
    return h.hexdigest()


def output_digest(folder: Path, exclude: Sequence[Path] = ()) -> str:
    """Digest of a committed stage folder, excluding nested folders owned by other stages."""
    h = hashlib.sha256()
    excl = {Path(e).resolve() for e in exclude}
    for f in sorted(x for x in folder.rglob("*") if x.is_file()):
        if f.name == STAMP and f.parent == folder:
            continue
        if any(e == f.resolve() or e in f.resolve().parents for e in excl):
            continue
        h.update(str(f.relative_to(folder)).encode() + b"\0")
        _sha256_file(f, h)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def package_source_digest() -> str:
    """Content key of every source file of the installed a2qflow package (.py, Jinja templates, C++ headers,
    Verilog), through the one key helper (`hw.cache_key`).

    Why the whole package rather than a per-stage module list: a hand-written list misses imports (a helper module,
    a template) and goes stale when modules move, and then a changed stage is skipped as "up to date". Hashing all
    of it re-runs more than strictly needed after an edit, never less. Cached per process (~a few ms to compute).
    """
    return content_key(files=package_sources(SOURCE_PACKAGES, SOURCE_SUFFIXES))


def read_stamp(folder: Path) -> dict | None:
    p = Path(folder) / STAMP
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# ------------------------------------------------------------------------------------------------ pipeline

class Pipeline:
    """An ordered list of stages over one RUN folder. `run()` executes what is out of date."""

    def __init__(self, stages: Sequence[Stage], run: Path | str, params: dict | None = None,
                 command_hint: str | None = None, shown_as: Path | str | None = None):
        self.stages = list(stages)
        self.run_dir = Path(run)
        # where messages say the folder is: a Ray task runs in a worker's temp folder that the driver keeps elsewhere
        self.shown_dir = Path(shown_as) if shown_as is not None else self.run_dir
        self.params = params or {}
        self.command_hint = command_hint or f"re-run the same command with --out {self.shown_dir}"
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate stage names in {names}")
        for i, s in enumerate(self.stages):
            for d in (*s.deps, *s.after):
                if d not in names[:i]:
                    raise ValueError(f"stage {s.name}: dependency {d!r} must be an earlier stage of {names}")
        self._by_name = {s.name: s for s in self.stages}

    # -- selection
    def _check_stage_name(self, name: str, option: str) -> None:
        if name not in self._by_name:
            raise A2QFlowError(f"{option} {name}: unknown stage; stages are {', '.join(self._by_name)}")

    def select(self, only: Sequence[str] | None) -> list[Stage]:
        """The stages to consider: `only` and everything they need, in pipeline order."""
        if not only:
            return list(self.stages)
        for n in only:
            self._check_stage_name(n, "--stages")
        need: set[str] = set()

        def add(n: str) -> None:
            if n not in need:
                need.add(n)
                for d in self._by_name[n].deps:
                    add(d)

        for n in only:
            add(n)
        return [s for s in self.stages if s.name in need]

    def stage_dir(self, stage: Stage | str) -> Path:
        s = self._by_name[stage] if isinstance(stage, str) else stage
        return self.run_dir / s.output

    def _nested_outputs(self, stage: Stage) -> list[Path]:
        mine = Path(stage.output)
        return [self.run_dir / s.output for s in self.stages
                if s is not stage and mine in Path(s.output).parents]

    def input_hash(self, stage: Stage, upstream_digests: dict[str, str], upstream: dict[str, Path]) -> tuple[str, dict]:
        files = [Path(f) for f in stage.files(self.params, upstream)]
        desc = {
            "stage": stage.name,
            "format": STAMP_FORMAT,
            "inputs": stage.inputs(self.params),
            "files": {str(f): hash_files([f]) for f in files},
            "code": package_source_digest(),
            "upstream": {d: upstream_digests.get(d, "absent") for d in (*stage.deps, *stage.after)},
        }
        return content_key(params=desc), desc

    def _cleanup_leftovers(self) -> None:
        """Remove scratch folders of a run that was killed (never a committed stage folder)."""
        for sub in (".tmp", ".trash"):
            p = self.run_dir / sub
            if p.exists():
                shutil.rmtree(p, ignore_errors=True)

    def _commit(self, stage: Stage, built: Path) -> None:
        """Rename `built` to the stage's folder; an old folder is moved aside first and deleted afterwards."""
        dest = self.stage_dir(stage)
        dest.parent.mkdir(parents=True, exist_ok=True)
        trash = None
        if dest.exists():
            trash = Path(tempfile.mkdtemp(prefix=f"{stage.name}-", dir=self._scratch(".trash")))
            os.replace(dest, trash / "old")
        os.replace(built, dest)
        if trash is not None:
            # keep nested outputs of later stages in place? they are invalid now (upstream changed): drop them
            shutil.rmtree(trash, ignore_errors=True)

    def _scratch(self, sub: str) -> Path:
        p = self.run_dir / sub
        p.mkdir(parents=True, exist_ok=True)
        return p

    def run(self, only: Sequence[str] | None = None, redo_from: str | None = None, progress: bool = True,
            console=None) -> PipelineRun:
        """Run every selected stage that is out of date. `redo_from` forces that stage and all later ones.

        A failing stage raises A2QFlowError (its partial output removed, earlier stages kept) after writing
        RUN/run.json and RUN/logs/<stage>.log; KeyboardInterrupt cleans up the same way and propagates.
        """
        if redo_from is not None:
            self._check_stage_name(redo_from, "--from")
        selected = self.select(only)
        with run_lock(self.run_dir):
            try:
                return self._run_locked(selected, redo_from, progress, console)
            finally:
                for sub in (".tmp", ".trash"):  # scratch folders go when empty, on success and on failure alike
                    try:
                        (self.run_dir / sub).rmdir()
                    except OSError:
                        pass

    def outdated(self, only: Sequence[str] | None = None) -> list[str]:
        """The selected stages `run(only)` would execute now (nothing runs, no lock taken): a caller can skip a
        finished run without shipping it anywhere (the Ray executor does). Below an outdated stage all count."""
        digests: dict[str, str] = {}
        committed: dict[str, Path] = {}
        out = []
        for stage in self.select(only):
            if stage.enabled(self.params):
                continue
            if any(d not in digests for d in stage.deps):
                out.append(stage.name)
                continue
            upstream = {d: committed[d] for d in (*stage.deps, *stage.after) if d in committed}
            h, _ = self.input_hash(stage, digests, upstream)
            stamp = self._up_to_date(stage, h, False)
            if stamp is None:
                out.append(stage.name)
            else:
                digests[stage.name] = stamp["output_digest"]
                committed[stage.name] = self.stage_dir(stage)
        return out

    def _up_to_date(self, stage: Stage, h: str, forced: bool) -> dict | None:
        """The stage's stamp when it may be skipped: same input hash, and its folder still holds what it recorded."""
        dest = self.stage_dir(stage)
        stamp = read_stamp(dest)
        if forced or not stamp or stamp.get("input_hash") != h or "output_digest" not in stamp:
            return None
        try:
            actual = output_digest(dest, exclude=self._nested_outputs(stage))
        except OSError:
            return None
        return stamp if actual == stamp["output_digest"] else None

    def _run_locked(self, selected: list[Stage], redo_from: str | None, progress: bool, console) -> PipelineRun:
        self._cleanup_leftovers()
        order = [s.name for s in self.stages]
        force_at = order.index(redo_from) if redo_from is not None else None
        result = PipelineRun(self.run_dir)
        digests: dict[str, str] = {}
        committed: dict[str, Path] = {}

        with _Display(selected, progress, console) as display:
            for stage in selected:
                why_disabled = stage.enabled(self.params)
                if why_disabled:
                    result.results.append(StageRecord(name=stage.name, status="disabled", reason=why_disabled))
                    display.finish(stage.name, f"disabled: {why_disabled}")
                    continue
                missing = [d for d in stage.deps if d not in digests]
                if missing:
                    result.results.append(StageRecord(name=stage.name, status="not run",
                                                      reason=f"needs {', '.join(missing)}"))
                    display.finish(stage.name, f"not run: needs {', '.join(missing)}")
                    continue
                upstream = {d: committed[d] for d in (*stage.deps, *stage.after) if d in committed}
                h, _ = self.input_hash(stage, digests, upstream)
                dest = self.stage_dir(stage)
                forced = force_at is not None and order.index(stage.name) >= force_at
                stamp = self._up_to_date(stage, h, forced)
                if stamp is not None:
                    digests[stage.name] = stamp["output_digest"]
                    committed[stage.name] = dest
                    result.results.append(StageRecord(name=stage.name, status="skipped",
                                                      seconds=stamp.get("seconds", 0.0), input_hash=h,
                                                      reason="up to date", summary=stamp.get("summary")))
                    display.finish(stage.name, "up to date (skipped)")
                    continue
                sr = self._run_stage(stage, h, upstream, display)
                result.results.append(sr)
                self._write_run_json(result, selected)
                if sr.status == "failed":
                    log = self.shown_dir / "logs" / f"{stage.name}.log"
                    raise A2QFlowError(
                        f"stage {stage.name} failed: {sr.reason} (log: {log});"
                        f" earlier stages are kept; fix it and {self.command_hint} to resume from {stage.name}")
                digests[stage.name] = read_stamp(dest)["output_digest"]
                committed[stage.name] = dest
        self._write_run_json(result, selected)
        return result

    def _run_stage(self, stage: Stage, h: str, upstream: dict[str, Path], display: "_Display") -> StageRecord:
        tmp = Path(tempfile.mkdtemp(prefix=f"{stage.name}-", dir=self._scratch(".tmp")))
        out = tmp / Path(stage.output).name
        ctx = StageContext(run=self.run_dir, name=stage.name, out=out, tmp=tmp, upstream=upstream,
                           params=self.params, note=lambda msg: display.note(stage.name, msg),
                           dest=self.stage_dir(stage))
        display.start(stage.name)
        t0 = time.perf_counter()
        log = self.run_dir / "logs" / f"{stage.name}.log"
        try:
            summary = stage.func(ctx)
            out.mkdir(parents=True, exist_ok=True)
            seconds = time.perf_counter() - t0
            stamp = {"stage": stage.name, "input_hash": h, "seconds": round(seconds, 3),
                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "summary": summary,
                     "output_digest": output_digest(out)}
            atomic_write_json(out / STAMP, stamp)
            # nested stages' folders inside an old copy of this one are invalid now: they go with it
            self._commit(stage, out)
        except KeyboardInterrupt:
            shutil.rmtree(tmp, ignore_errors=True)
            display.finish(stage.name, "interrupted")
            raise
        except Exception as e:  # noqa: BLE001 - any stage failure becomes one line + a log file
            shutil.rmtree(tmp, ignore_errors=True)
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("".join(traceback.format_exception(e)))
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            msg = _unscratch(msg, tmp, self.shown_dir / Path(stage.output).parent, self.run_dir, self.shown_dir)
            reason = msg if isinstance(e, A2QFlowError) else f"{type(e).__name__}: {msg}"
            display.finish(stage.name, f"FAILED: {reason}")
            return StageRecord(name=stage.name, status="failed", seconds=time.perf_counter() - t0, input_hash=h,
                               reason=reason)
        shutil.rmtree(tmp, ignore_errors=True)
        log.unlink(missing_ok=True)
        display.finish(stage.name, f"done in {seconds:.1f} s")
        return StageRecord(name=stage.name, status="done", seconds=seconds, input_hash=h, summary=summary)

    def _write_run_json(self, result: PipelineRun, selected: list[Stage]) -> None:
        seen = {r.name for r in result.results}
        rows = [r.model_copy(update={"seconds": round(r.seconds, 3)}) for r in result.results]
        rows += [StageRecord(name=s.name, status="not run") for s in selected if s.name not in seen]
        RunRecord(run=str(self.run_dir), stages=rows).write(self.run_dir / "run.json")  # "run": "." (paths relative)


def _unscratch(message: str, tmp: Path, final: Path, run: Path, shown: Path) -> str:
    """A failed stage's one-line message naming folders as the user finds them afterwards.

    A stage works on a private copy (RUN/.tmp/<stage>-xxx) whose folder becomes `final` (the parent of the stage's
    output folder, where the user sees it), so a path inside the copy names the same file under `final`; paths
    under the run folder are named under `shown` (the folder the driver keeps, for a Ray task's temp folder). Only
    this message is rewritten: result files store paths relative to their own folder and need no rewrite."""
    for t in sorted({str(tmp.resolve()), str(tmp.absolute()), str(tmp)}, key=len, reverse=True):  # longest first
        message = message.replace(t, str(final))
    if shown != run:
        for t in sorted({str(run.resolve()), str(run.absolute()), str(run)}, key=len, reverse=True):
            message = message.replace(t, str(shown))
    return message


class _Display:
    """One rich progress display for the whole run: a line per stage with a spinner and elapsed time. When the
    output is not a terminal (`make demo > log`, CI), a live display would print nothing until the end: then each
    stage prints one plain line when it starts and one when it ends, with its seconds."""

    def __init__(self, stages: list[Stage], enabled: bool, console=None):
        self.enabled = enabled
        self.stages = stages
        self.console = console
        self.progress = None
        self.tasks: dict[str, int] = {}
        self.plain = False
        self.t0: dict[str, float] = {}

    def _line(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
            self.console.file.flush()
        else:
            print(text, flush=True)

    def __enter__(self) -> "_Display":
        if not self.enabled:
            return self
        import sys

        self.plain = not (self.console.is_terminal if self.console is not None else sys.stdout.isatty())
        if self.plain:
            return self
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.table import Column

        width = max(len(s.name) for s in self.stages)
        self.progress = Progress(SpinnerColumn(finished_text="[green]✓"),
                                 TextColumn("[bold]{task.fields[stage]}",
                                            table_column=Column(min_width=width, no_wrap=True)),
                                 TimeElapsedColumn(), TextColumn("{task.description}"), console=self.console,
                                 transient=False)
        self.progress.__enter__()
        for s in self.stages:
            self.tasks[s.name] = self.progress.add_task("waiting", stage=s.name, total=1, start=False)
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start(self, name: str) -> None:
        self.t0[name] = time.perf_counter()
        if self.plain:
            self._line(f"stage {name}: started")
        if self.progress is not None:
            self.progress.start_task(self.tasks[name])
            self.progress.update(self.tasks[name], description="running")

    def note(self, name: str, msg: str) -> None:
        if self.progress is not None:
            self.progress.update(self.tasks[name], description=msg)

    def finish(self, name: str, msg: str) -> None:
        if self.plain:
            took = f" after {time.perf_counter() - self.t0[name]:.1f} s" if name in self.t0 and \
                not msg.startswith("done in") else ""  # "done in N s" has its seconds already
            self._line(f"stage {name}: {msg}{took}")
        if self.progress is not None:
            tid = self.tasks[name]
            self.progress.update(tid, description=msg, completed=1)
            self.progress.stop_task(tid)

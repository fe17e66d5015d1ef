"""Sweeps on Ray: the same points give the same sweep.json as the local executor, point folders come back to the
driver through the object store (complete, stamped, resumable), and a failed point or a dead worker is recorded
with its reason while the other points finish. One local Ray runtime (2 CPUs) serves the module and is shut down
at the end."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from a2qflow.flows.executors import PointTask, Progress, RayExecutor, make_executor
from a2qflow.flows.results import PointResult, SweepSummary
from a2qflow.flows.sweep import run_sweep
from a2qflow.hw.errors import A2QFlowError

ROOT = Path(__file__).resolve().parents[1]
SAME = ("name", "method", "target_acc_bits", "weight_bits", "input_bits", "status", "accuracy", "accuracy_source",
        "torch_accuracy", "csim_accuracy", "acc_bits_built", "acc_bits_datatype", "overflow_events")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        yield ray
    finally:
        ray.shutdown()


def _tiny_config(tmp_path: Path) -> Path:
    d = yaml.safe_load((ROOT / "flows/configs/digits_mlp.yaml").read_text())
    d["model"]["hidden"] = [16]
    d["train"].update(epochs=2)
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_ray_sweep_equals_local_and_resumes(tmp_path, ray_runtime):
    cfg = _tiny_config(tmp_path)
    kw = dict(acc_bits=[11, 13], methods=["a2q"], stages=["csim"], progress=False)
    local = run_sweep(cfg, tmp_path / "local", **kw)
    ray = run_sweep(cfg, tmp_path / "ray", executor="ray", **kw)
    assert [{k: p[k] for k in SAME} for p in ray["points"]] == [{k: p[k] for k in SAME} for p in local["points"]]
    assert all(p["status"] == "ok" and p["csim_accuracy"] is not None for p in ray["points"])
    raw = json.loads((tmp_path / "ray" / "sweep.json").read_text())
    assert raw["executor"]["kind"] == "ray" and local.executor == {"kind": "local", "jobs": 1}
    assert [p["run"] for p in raw["points"]] == [f"points/{p.name}" for p in ray.points]  # relative to the sweep
    assert "a2qflow-point-" not in (tmp_path / "ray" / "sweep.json").read_text()  # no worker temp folder anywhere
    on_disk = SweepSummary.read(tmp_path / "ray" / "sweep.json")
    for p in on_disk.points:  # the folder came back to the driver, whole and stamped
        run = Path(p.run)
        assert run.parent == tmp_path / "ray" / "points"
        assert json.loads((run / "build" / "csim" / "stamp.json").read_text())["stage"] == "csim"
        assert json.loads((run / "run.json").read_text())["run"] == "."  # run.json names its own folder
    again = run_sweep(cfg, tmp_path / "ray", executor="ray", **kw)  # nothing missing: no task is shipped
    assert all(set(p["stages"].values()) == {"skipped"} for p in again["points"])
    assert [p["accuracy"] for p in again["points"]] == [p["accuracy"] for p in ray["points"]]
    shutil.move(tmp_path / "ray", tmp_path / "moved")  # another disk: the folder still names itself, and resumes
    moved = run_sweep(cfg, tmp_path / "moved", executor="ray", **kw)
    assert all(set(p.stages.values()) == {"skipped"} for p in moved.points)
    assert [Path(p.run).parent for p in moved.points] == [tmp_path / "moved" / "points"] * len(moved.points)
    assert [p.accuracy for p in moved.points] == [p.accuracy for p in ray.points]


def test_failed_point_and_dead_worker_are_recorded_and_others_finish(tmp_path, ray_runtime):
    def work(payload, run_dir, stages, shown_as=None):
        if payload == "raise":
            raise RuntimeError("bad point")
        if payload == "die":
            os._exit(1)  # the worker process dies
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "out.txt").write_text(payload)
        return PointResult(name=payload, method="m", status="ok", run=run_dir, reason=f"log: {shown_as}/logs/x.log")

    tasks = [PointTask(n, work, n, tmp_path / n, meta=PointResult(name=n, method="m", status="failed"))
             for n in ("good", "raise", "die")]
    got = {t.name: r for t, r in RayExecutor().run(tasks, Progress("t", 3, enabled=False))}
    good = got["good"]
    assert isinstance(good, PointResult) and good.status == "ok"  # a model came back over Ray, not a dict
    assert (tmp_path / "good" / "out.txt").read_text() == "good"
    assert Path(good.run) == tmp_path / "good"  # relative to the point folder on the worker, resolved on the driver
    assert good.reason == f"log: {tmp_path / 'good'}/logs/x.log"  # messages name the driver's folder
    assert "a2qflow-point-" not in good.model_dump_json()  # nothing names the worker's temp folder
    assert got["raise"].status == "failed" and "bad point" in got["raise"].reason
    assert got["die"].status == "failed" and got["die"].reason.startswith("ray:")
    assert got["die"].method == "m"  # the failed row keeps the point's fields
    assert ray_runtime.is_initialized()  # the executor leaves a runtime it did not start alone


def test_executor_options_are_checked():
    with pytest.raises(A2QFlowError, match="--executor dask: unknown; choose local or ray"):
        make_executor("dask")
    with pytest.raises(A2QFlowError, match="--ray-address is only used with --executor ray"):
        make_executor("local", ray_address="head:6379")
    with pytest.raises(A2QFlowError, match="--ray-cpus-per-point 0"):
        make_executor("ray", cpus_per_point=0)

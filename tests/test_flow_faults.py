"""Bad arguments to the multi-run commands and a Ray address where nothing listens: one line each,
before any point runs, and fast."""

from __future__ import annotations

import importlib.util
import socket
import time

import pytest
from test_faults import one_line, write_config


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["sweep", "search"])
def test_a_ray_address_with_nothing_listening_fails_in_seconds_naming_it(command, tmp_path, cli):
    cfg = write_config(tmp_path / "cfg.yaml")
    port = _closed_port()
    extra = ["--acc-bits", "12"] if command == "sweep" else ["--budget-luts", "2000"]
    t0 = time.perf_counter()
    rc, _, err = cli([command, cfg, *extra, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}",
                      "--out", tmp_path / "run", "--no-progress"], out=tmp_path / "run")
    one_line(rc, err, f"--ray-address 127.0.0.1:{port}: nothing answers at 127.0.0.1:{port}", "ray start --head")
    assert time.perf_counter() - t0 < 15
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("address, needle", [("nonsense", "expected HOST:PORT"), ("host:99999", "expected HOST:PORT"),
                                             ("ray://127.0.0.1:10001", "needs ray[client] (grpcio)")])
def test_malformed_or_unsupported_ray_addresses_are_one_line(address, needle, tmp_path, cli):
    if "ray://" in address and importlib.util.find_spec("grpc") is not None:
        pytest.skip("grpcio is installed: the Ray Client form is handed to Ray")
    cfg = write_config(tmp_path / "cfg.yaml")
    rc, _, err = cli(["sweep", cfg, "--acc-bits", "12", "--executor", "ray", "--ray-address", address,
                      "--out", tmp_path / "run"], out=tmp_path / "run")
    one_line(rc, err, f"--ray-address {address}:", needle)


SWEEP_ARGS = {
    "--epochs -1": (["--epochs", "-1"], ["--epochs -1: must be at least 1"]),
    "--epochs 0": (["--epochs", "0"], ["--epochs 0: must be at least 1"]),
    "--methods ''": (["--methods", ""], ["--methods '': empty", "a2q, a2q+, naive, qat32"]),
    "--methods ,": (["--methods", ","], ["--methods ',': empty"]),
    "--methods typo": (["--methods", "a2q,a3q"], ["--methods a3q: unknown"]),
    "--architecture ''": (["--architecture", ""], ["--architecture '': empty", "folded, unrolled"]),
    "--stages ''": (["--stages", ""], ["--stages '': empty"]),
    "--weight-bits 40": (["--weight-bits", "40"], ["--weight-bits '40'", "2..16"]),
    "--qat32-bits 1": (["--qat32-bits", "1"], ["--qat32-bits '1'", "2..16"]),
    "--jobs 0": (["--jobs", "0"], ["--jobs 0: must be at least 1"]),
}


SEARCH_ARGS = {
    "--epochs -1": (["--epochs", "-1"], ["--epochs -1: must be at least 1"]),
    "--sensitivity-epochs 0": (["--sensitivity-epochs", "0"], ["--sensitivity-epochs 0: must be at least 1"]),
    "--candidates 0": (["--candidates", "0"], ["--candidates 0: must be at least 1"]),
    "--p-steps x": (["--p-steps", "1,x"], ["--p-steps '1,x': expected comma-separated integers"]),
    "--p-steps -2": (["--p-steps", "-2"], ["--p-steps '-2'", "0..60"]),
    "--jobs 0": (["--jobs", "0"], ["--jobs 0: must be at least 1"]),
}


# the command, the argument it needs anyway, and its bad-argument cases
COMMAND_ARGS = {"sweep": (["--acc-bits", "12"], SWEEP_ARGS), "search": (["--budget-luts", "2000"], SEARCH_ARGS)}


@pytest.mark.parametrize("command, case", [(c, k) for c, (_, cases) in COMMAND_ARGS.items() for k in cases])
def test_arguments_are_checked_before_any_point_runs(command, case, tmp_path, cli):
    """One line naming the argument, and nothing ran: no run folder (sweep: no point recorded as failed; search:
    no sensitivity training)."""
    required, cases = COMMAND_ARGS[command]
    args, needles = cases[case]
    cfg = write_config(tmp_path / "cfg.yaml")
    rc, _, err = cli([command, cfg, *required, *args, "--out", tmp_path / "run", "--no-progress"],
                     out=tmp_path / "run")
    one_line(rc, err, *needles)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------ the run lock

@pytest.fixture()
def held_run(tmp_path):
    """RUN held by another process's run_lock (as `a2qflow run` holds it), with a compiled RUN/build inside."""
    import subprocess
    import sys

    from test_faults import HOLD, hand_onnx

    run = tmp_path / "run"
    run.mkdir()
    model = hand_onnx(tmp_path / "m.onnx")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield run, model, holder.pid
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", ["compile", "hls", "rtl", "report", "audit"])
def test_a_command_writing_into_a_busy_run_folder_fails_at_once_naming_the_holder(command, held_run, tmp_path,
                                                                                   cli):
    run, model, pid = held_run
    args = {"compile": ["compile", model, "--out", run / "build"], "hls": ["hls", run / "build"],
            "rtl": ["rtl", run / "build"], "report": ["report", run],
            "audit": ["audit", model, "--json", run / "train" / "audit.json"]}[command]
    t0 = time.perf_counter()
    rc, _, err = cli(args, out=[run])
    inside = "is in use" if command == "report" else f"is inside {run}, which is in use"
    one_line(rc, err, inside, f"pid {pid}")
    assert time.perf_counter() - t0 < 5
    assert not (run / "build").exists() and not (run / "train").exists()


def test_a_command_into_a_free_run_folder_takes_its_lock_and_works(tmp_path, cli):
    from test_faults import hand_onnx

    from a2qflow.flows.lock import LOCK_NAME

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text("999999\n")  # left by a finished run
    rc, _, err = cli(["compile", hand_onnx(tmp_path / "m.onnx"), "--out", run / "build"], out=[run])
    assert rc == 0, err
    assert (run / "build" / "plan.json").is_file()
    assert (run / LOCK_NAME).read_text().strip() == str(__import__("os").getpid())

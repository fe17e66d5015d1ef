"""Shared fixtures: finished training runs on 8x8 digits that later stages (compiler, HLS, RTL, flow) consume.

Each fixture is the folder of a completed `training.train.run_training` (model.onnx, model.pt, metrics.json,
audit.json, test_inputs.npy, test_labels.npy, config.yaml), trained once per test session with few epochs so
all three take well under a minute on one thread. `cli` runs the command line in-process and checks that a
command wrote nothing outside its outputs (the fault tests share it).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
from _training_util import train_run  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """OMP_NUM_THREADS above already gives torch one thread; pin it too if a test module imported torch."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def digits_mlp_a2q(tmp_path_factory):
    """MLP 64-32-32-10, W4/A4 unsigned, A2Q with P=12 on every layer (float twin trained too)."""
    return train_run(tmp_path_factory, "digits_mlp_a2q", train={"float_reference": True})


@pytest.fixture(scope="session")
def digits_cnn_a2q(tmp_path_factory):
    """CNN conv(1->8)+pool, conv(8->16)+pool, fc(64->10); W4/A4 unsigned, A2Q with P=12."""
    return train_run(tmp_path_factory, "digits_cnn_a2q",
                     model={"kind": "cnn", "conv_channels": [8, 16], "hidden": []}, train={"epochs": 6})


@pytest.fixture(scope="session")
def digits_mlp_unconstrained(tmp_path_factory):
    """The same MLP as digits_mlp_a2q with the `unconstrained` integer quantizer (no accumulator constraint)."""
    return train_run(tmp_path_factory, "digits_mlp_unconstrained", quant={"weight_quant": "unconstrained",
                                                                          "acc_bits": None})


def _snapshot(root: Path, skip: list[Path]) -> dict[str, tuple[int, int]]:
    """Every file under root (outside `skip`) with its size and mtime: what a failing command must not change."""
    skip = [s.resolve() for s in skip]
    out = {}
    for p in root.rglob("*"):
        rp = p.resolve()
        if any(rp == s or s in rp.parents for s in skip):
            continue
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture()
def cli(tmp_path, capsys, monkeypatch):
    """cli(args, out=...) -> (exit code, stdout, stderr); asserts nothing outside `out` was written."""
    from a2qflow.flows.cli import main

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("A2QFLOW_CACHE", str(tmp_path / "cache"))

    def run(args, out: Path | list[Path] | None = None):
        outs = [] if out is None else (out if isinstance(out, list) else [out])
        skip = [*outs, tmp_path / "cache"]
        before = _snapshot(tmp_path, skip)
        capsys.readouterr()
        rc = main([str(a) for a in args])
        res = capsys.readouterr()
        after = _snapshot(tmp_path, skip)
        changed = sorted(set(before.items()) ^ set(after.items()))
        assert not changed, f"written outside {outs}: {changed}"
        return rc, res.out, res.err

    return run

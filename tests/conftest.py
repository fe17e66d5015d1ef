"""Shared fixtures: finished training runs on 8x8 digits that later stages (compiler, HLS, RTL, flow) consume.

Each fixture is the folder of a completed `training.train.run_training` (model.onnx, model.pt, metrics.json,
audit.json, test_inputs.npy, test_labels.npy, config.yaml), trained once per test session with few epochs so
all three take well under a minute on one thread.
"""

from __future__ import annotations

import os

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
def digits_mlp_baseline(tmp_path_factory):
    """The same MLP as digits_mlp_a2q with the `baseline` integer quantizer (no accumulator constraint)."""
    return train_run(tmp_path_factory, "digits_mlp_baseline", quant={"weight_quant": "baseline", "acc_bits": None})

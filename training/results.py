"""Typed results of the training stage: what RUN/train/metrics.json and audit.json hold.

The flow's report and sweep read these models instead of guessing key names. Like every stage result they allow
extra keys (the JSON is a public interface: keys are added, never renamed).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

from a2qflow.hw.results import StageResult
from a2qflow.training.config import current_weight_quant


class LayerMetrics(BaseModel):
    """One MAC layer's quantization as trained (metrics.json `layers.<name>`)."""

    model_config = ConfigDict(extra="allow")

    weight_quant: str
    weight_bits: int | None = None
    input_bits: int | None = None
    input_signed: bool | None = None
    target_acc_bits: int | None = None
    weight_sparsity: float | None = None
    granularity: str | None = None
    rounding: str | None = None

    @field_validator("weight_quant", mode="before")
    @classmethod
    def _current_name(cls, v):
        """A metrics.json written before the preset rename says "baseline": read as "unconstrained" (silently:
        re-running the stage rewrites the file, there is nothing to edit)."""
        return current_weight_quant(v)


class TrainingMetrics(StageResult):
    """RUN/train/metrics.json: accuracies of the quantized model and its float twin, and per-layer quantization."""

    name: str
    dataset: str
    test_accuracy: float | None = None
    float_test_accuracy: float | None = None
    val_accuracy: float | None = None  # the validation split's (the search's sensitivity reads it; never the test)
    layers: dict[str, LayerMetrics] = {}


class AuditReport(StageResult):
    """RUN/train/audit.json: every channel's L1 norm against its layer's bound, read from the exported graph."""

    ok: bool
    violations: list[str] = []
    layers: list[dict] = []

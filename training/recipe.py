"""The training recipe: which phases run, in which order, and what each phase reached.

`float_twin` (default when `train.float_reference` is on):
  1. train the float twin (Adam, cosine schedule, best-validation epoch; `train.lr`, `train.epochs`);
  2. load its weights into the quantized model (same layer names);
  3. initialise every A2Q / A2Q+ layer (training.init: budget-aware, or Brevitas' formulas with `init: brevitas`);
  4. calibrate the activation quantizers: `train.calibration_batches` forward passes in training mode without
     gradients, which is what Brevitas' runtime-statistics scaling (`collect_stats_steps = 300`) needs before it
     fixes an activation range;
  5. fine-tune (Adam, `train.finetune_lr` (0.01), cosine, `train.finetune_epochs`, best-validation epoch).
`scratch`: build the quantized model, apply (3) to its random weights, train it (`train.lr`, `train.epochs`); the
float twin, when on, is trained only as the reference accuracy.
`block-replacement`: `float_twin` whose fine-tune (5) trains on the fully quantized model's loss plus the losses of
the mixed models "first k blocks quantized, the rest the frozen twin's float blocks" (training.block_replacement).

Each phase's validation / test accuracy goes to metrics.json under `phases`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
from torch import nn

from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import LayerSpec, TrainingJob
from a2qflow.training.init import LayerInit, init_model
from a2qflow.training.models import build_model


@dataclass
class TwinResult:
    """A trained float twin (kept by `TwinCache` so benchmark rows sharing a twin train it once)."""

    state: dict
    fit: object  # fit.FitResult
    test_accuracy: float


class TwinCache(dict):
    """In-process cache of float twins keyed by everything that decides the twin: data, model, train, seed."""

    @staticmethod
    def key(cfg: TrainingJob) -> str:
        t = cfg.train
        return json.dumps({"data": cfg.data.model_dump(mode="json"), "model": cfg.model.model_dump(mode="json"),
                           "train": [t.epochs, t.batch_size, t.lr, t.weight_decay], "seed": cfg.seed},
                          sort_keys=True)


@dataclass
class RecipeResult:
    net: nn.Module
    fit: object  # fit.FitResult of the last training phase of the quantized model
    recipe: str
    phases: dict = field(default_factory=dict)
    init: dict[str, LayerInit] = field(default_factory=dict)
    float_test_accuracy: float | None = None


def _phase(net: nn.Module, data: dict, extra: dict | None = None) -> dict:
    from a2qflow.training.fit import accuracy

    return {"val_accuracy": accuracy(net, data["x_val"], data["y_val"]),
            "test_accuracy": accuracy(net, data["x_test"], data["y_test"]), **(extra or {})}


def train_twin(cfg: TrainingJob, specs: list[LayerSpec], image_shape, num_classes: int, data: dict,
               progress: bool, cache: TwinCache | None) -> TwinResult:
    """Phase 1: the float twin, from `cache` when an identical one was trained in this process."""
    from a2qflow.training.fit import accuracy, fit, seed_everything

    key = TwinCache.key(cfg)
    if cache is not None and key in cache:
        return cache[key]
    seed_everything(cfg.seed)
    twin = build_model(cfg.model, specs, image_shape, num_classes, float_twin=True)
    res = fit(twin, data, cfg.train, cfg.seed, f"{cfg.name} (float twin)", progress)
    out = TwinResult({k: v.detach().clone() for k, v in twin.state_dict().items()}, res,
                     accuracy(twin, data["x_test"], data["y_test"]))
    if cache is not None:
        cache[key] = out
    return out


def load_twin_weights(net: nn.Module, state: dict) -> None:
    """Phase 2: copy every float-twin tensor into the same-named quantized tensor (weights, biases, batch norm)."""
    own = net.state_dict()
    missing = [k for k in state if k not in own or own[k].shape != state[k].shape]
    if missing:
        raise A2QFlowError(f"float twin and quantized model disagree on {missing[0]}; please report this")
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v)


def calibrate(net: nn.Module, x: torch.Tensor, batches: int, batch_size: int, seed: int) -> None:
    """Phase 4: `batches` no-grad forward passes in training mode on seeded random training batches.

    Brevitas' activation quantizers (ParameterFromRuntimeStatsScaling) average a range statistic over their
    first `collect_stats_steps` training-mode calls, then turn it into the learned scale; running them here
    lets the fine-tune start from ranges that fit the float twin's activations.
    """
    gen = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(batches):
            net(x[torch.randint(len(x), (batch_size,), generator=gen)])
    net.eval()


def run_recipe(cfg: TrainingJob, specs: list[LayerSpec], image_shape, num_classes: int, data: dict,
               progress: bool, cache: TwinCache | None = None) -> RecipeResult:
    """Train the quantized model by the config's recipe; see the module docstring for the phases."""
    from a2qflow.training.fit import fit, seed_everything

    tc = cfg.train
    recipe = tc.effective_recipe
    phases: dict = {}
    twin = None
    if tc.float_reference:
        twin = train_twin(cfg, specs, image_shape, num_classes, data, progress, cache)
        phases["float"] = {"val_accuracy": twin.fit.val_accuracy, "test_accuracy": twin.test_accuracy,
                           "best_epoch": twin.fit.best_epoch, "seconds_per_epoch": twin.fit.seconds_per_epoch}
    seed_everything(cfg.seed)
    net = build_model(cfg.model, specs, image_shape, num_classes)
    from_twin = recipe in ("float_twin", "block-replacement")
    if from_twin:
        load_twin_weights(net, twin.state)
    init = init_model(net, specs, budget_aware=tc.init == "budget")
    if from_twin:
        calibrate(net, data["x_train"], tc.calibration_batches, tc.batch_size, cfg.seed)
        phases["init"] = _phase(net, data, {"calibration_batches": tc.calibration_batches})
        epochs = tc.finetune_epochs or tc.epochs
        if recipe == "block-replacement":
            from a2qflow.training.block_replacement import fit_block_replacement

            partner = build_model(cfg.model, specs, image_shape, num_classes, float_twin=True)
            partner.load_state_dict(twin.state)
            res = fit_block_replacement(net, partner, data, tc, cfg.seed, tc.finetune_lr, epochs, progress)
        else:
            res = fit(net, data, tc, cfg.seed, f"{cfg.name} (fine-tune)", progress, lr=tc.finetune_lr, epochs=epochs)
        phases["finetune"] = _phase(net, data, {"best_epoch": res.best_epoch, "epochs": epochs,
                                                "lr": tc.finetune_lr})
    else:
        phases["init"] = _phase(net, data)
        res = fit(net, data, tc, cfg.seed, cfg.name, progress)
        phases["train"] = _phase(net, data, {"best_epoch": res.best_epoch, "epochs": tc.epochs, "lr": tc.lr})
    return RecipeResult(net, res, recipe, phases, init, twin.test_accuracy if twin is not None else None)

"""The training loop: Adam, a cosine schedule, cross-entropy, the best validation epoch kept; seeding; accuracy.

Its own module because both the recipe's phases (training.recipe, training.block_replacement) and the run folder
(training.train, which runs the recipe) need it: with the loop in train.py the recipe and train imported each
other.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import TrainConfig


@dataclass
class FitResult:
    best_epoch: int
    val_accuracy: float
    seconds_per_epoch: float
    history: list[float] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    """Top-1 accuracy in eval mode."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return correct / max(1, len(x))


def fit(net: nn.Module, data: dict[str, torch.Tensor], tc: TrainConfig, seed: int, label: str,
        progress: bool, lr: float | None = None, epochs: int | None = None) -> FitResult:
    """Adam + cosine schedule + cross-entropy; keeps (loads into `net`) the weights of the best validation epoch.

    `lr` / `epochs` override tc.lr / tc.epochs (the float-twin recipe's fine-tune uses its own).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    seed_everything(seed)
    lr = tc.lr if lr is None else lr
    epochs = tc.epochs if epochs is None else epochs
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    from rich.errors import LiveError

    def make(enabled: bool) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), disable=not enabled, transient=False)

    bar = make(progress)
    try:
        bar.start()
    except LiveError:  # a caller's own live display is active (e.g. the flow runner): stay quiet, don't crash
        bar = make(False)
        bar.start()
    with bar:
        task = bar.add_task(f"train {label}", total=epochs)
        return fit_epochs(
            net, lambda xb, yb: loss_fn(net(xb), yb), data, (opt, sched, gen), tc.batch_size, epochs,
            lambda epoch, loss: (f"train {label}: loss became {loss} in epoch {epoch}; lower the learning rate "
                                 f"(train.lr / train.finetune_lr, now {lr})"),
            lambda epoch, acc, best: bar.update(
                task, advance=1, description=f"train {label}  epoch {epoch}/{epochs}  val {acc:.1%}  best {best:.1%}"))


def fit_epochs(net: nn.Module, batch_loss, data: dict, optim: tuple, batch_size: int, epochs: int, nan_message,
               report) -> FitResult:
    """`epochs` of train_epoch, keeping the weights of the best validation epoch (restored at the end).

    Why one function: QAT (fit) and block-replacement fine-tuning keep the best epoch and stop on a non-finite loss
    the same way.

    Args:
        optim: (optimizer, scheduler, torch.Generator for the data order).
        nan_message: (epoch, loss) -> the one-line error when the loss is not finite.
        report: (epoch, validation accuracy, best so far) -> None, e.g. a progress-bar update.
    Returns:
        FitResult of the best epoch; `net` holds its weights, in eval mode.
    """
    opt, sched, gen = optim
    x, y = data["x_train"], data["y_train"]
    best_acc, best_epoch, best_state = -1.0, 0, None
    history: list[float] = []
    seconds = 0.0
    for epoch in range(1, epochs + 1):
        loss, took = train_epoch(net, batch_loss, x, y, opt, sched, gen, batch_size)
        seconds += took
        if not torch.isfinite(loss):
            raise A2QFlowError(nan_message(epoch, float(loss)))
        acc = accuracy(net, data["x_val"], data["y_val"])
        history.append(acc)
        if acc > best_acc:
            best_acc, best_epoch, best_state = acc, epoch, copy.deepcopy(net.state_dict())
        report(epoch, acc, best_acc)
    net.load_state_dict(best_state)
    net.eval()
    return FitResult(best_epoch, best_acc, seconds / epochs, history)


def train_epoch(net: nn.Module, batch_loss, x: torch.Tensor, y: torch.Tensor, opt, sched, gen: torch.Generator,
                batch_size: int) -> tuple[torch.Tensor, float]:
    """One epoch of minibatch SGD over a seeded permutation of (x, y), then one scheduler step.

    Why one function: the QAT loop (fit) and block-replacement fine-tuning (training.block_replacement) must walk
    the data in the same seeded order so that their seeds mean the same thing.

    Args:
        batch_loss: (x_batch, y_batch) -> scalar loss tensor.
    Returns:
        (the last batch's loss, seconds the epoch took).
    """
    t0 = time.perf_counter()
    net.train()
    order = torch.randperm(len(x), generator=gen)
    loss = torch.tensor(0.0)
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        loss = batch_loss(x[idx], y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sched.step()
    return loss, time.perf_counter() - t0

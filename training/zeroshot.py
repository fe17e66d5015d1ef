"""Data-free calibration: synthesise inputs whose BatchNorm statistics match the float model's running statistics.

ZeroQ (Y. Cai et al., "ZeroQ: A Novel Zero Shot Quantization Framework", CVPR 2020): start from random inputs and
minimise, over every BatchNorm layer l, ||mu_l(x) - running_mean_l||_2 + ||sigma_l(x) - sqrt(running_var_l)||_2,
where mu_l / sigma_l are the batch mean / standard deviation of the BN layer's input. The model is fixed; only the
inputs move. Inputs are parametrised through a sigmoid (tanh for signed inputs) so they stay in [0, 1] ([-1, 1]),
the range every a2qflow dataset is scaled to. Seeded and run with deterministic kernels: the same seed gives the
same calibration set.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from a2qflow.hw.errors import A2QFlowError

STEPS = 200
LR = 0.1
BATCH = 64


def bn_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """Every BatchNorm layer with running statistics, in registration order."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None]


def _bn_loss(stats: list[tuple[torch.Tensor, torch.Tensor]], bns: list) -> torch.Tensor:
    loss = torch.zeros(())
    for (mu, var), (_, bn) in zip(stats, bns):
        loss = loss + torch.linalg.vector_norm(mu - bn.running_mean) + \
            torch.linalg.vector_norm(var.clamp(min=0).sqrt() - bn.running_var.sqrt())
    return loss


def _hooks(bns: list, stats: list) -> list:
    def hook(mod, args):
        x = args[0]
        dims = [d for d in range(x.ndim) if d != 1]
        stats.append((x.mean(dims), x.var(dims, unbiased=False)))
    return [bn.register_forward_pre_hook(hook) for _, bn in bns]


def synthesize(model: nn.Module, input_shape: tuple[int, ...], samples: int = 256, seed: int = 0,
               signed: bool = False, steps: int = STEPS, progress: bool = False, name: str | None = None
               ) -> torch.Tensor:
    """A calibration set of `samples` inputs (samples, *input_shape) matched to the model's BN statistics.

    Args:
        model: the float model (not modified: a frozen deep copy is optimised through).
        input_shape: one input's shape without the batch dimension.
        samples: how many inputs; synthesised in batches of 64, each batch matched on its own (ZeroQ's batches).
        seed: seed of the random start.
        signed: inputs in [-1, 1] instead of [0, 1].
        steps: Adam steps per batch (lr 0.1).
        name: how the error names the model (default: its class name).
    Raises:
        A2QFlowError if the model has no BatchNorm layer with running statistics.
    """
    bns = bn_layers(model)
    if not bns:
        raise A2QFlowError(f"zero-shot calibration: model {name or type(model).__name__} has no BatchNorm layer, so "
                           "there are no statistics to synthesise inputs from; pass real calibration inputs")
    net = copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    bns = bn_layers(net)
    gen = torch.Generator().manual_seed(seed)
    squash = torch.tanh if signed else torch.sigmoid
    out = []
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("zero-shot calibration set", total=samples)
        for start in range(0, samples, BATCH):
            n = min(BATCH, samples - start)
            z = torch.randn(n, *input_shape, generator=gen, dtype=torch.float32).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=LR)
            for _ in range(steps):
                stats: list = []
                hooks = _hooks(bns, stats)
                try:
                    net(squash(z))
                finally:
                    for h in hooks:
                        h.remove()
                opt.zero_grad()
                _bn_loss(stats, bns).backward()
                opt.step()
            out.append(squash(z).detach())
            bar.advance(task, n)
    return torch.cat(out)

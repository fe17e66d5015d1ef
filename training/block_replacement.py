"""Block-replacement fine-tuning (`train.recipe: block-replacement`): the float partner guides the quantized network.

The idea (block-replacement QAT: a full-precision partner guides the low-precision network; mixed models are
formed by replacing blocks of the float network with quantized ones, so gradients and features flow through
full-precision blocks during training): split both networks into L blocks, one per MAC layer,

    block i = [the activation quantizer feeding layer i (input_quant / *_relu), pooling / flatten, layer i, its BN]

(the float twin has the same names, with nn.ReLU / nn.Identity in the quantizers' places), and train the quantized
blocks on
    loss = CE(Q_1 .. Q_L) + 1/(L-1) * sum_{k=1}^{L-1} CE(Q_1 .. Q_k F_{k+1} .. F_L)
where F are the frozen float twin's blocks (eval mode). Each mixed model's loss reaches the quantized blocks
1..k through float blocks, whose features are exact, so the early quantized blocks learn to produce what the float
network downstream expects; the last term set is the fully quantized model itself. Everything else is the
float-twin recipe (training.recipe): the twin is trained, loaded, budget-initialised and calibrated first, and the
fine-tune keeps the best validation epoch (Adam, cosine schedule, train.finetune_lr / finetune_epochs).
"""

from __future__ import annotations

import torch
from torch import nn

from a2qflow.hw.errors import A2QFlowError

ACTIVATION_SUFFIX = "_relu"


def blocks(net: nn.Sequential) -> list[list[str]]:
    """Module names of each block: a new block starts at input_quant and at every `*_relu` activation."""
    out: list[list[str]] = []
    for name, _ in net.named_children():
        if name == "input_quant" or name.endswith(ACTIVATION_SUFFIX):
            out.append([])
        if not out:
            raise A2QFlowError(f"block-replacement: module {name!r} comes before input_quant; please report this")
        out[-1].append(name)
    return out


class MixedModels(nn.Module):
    """The quantized network plus its frozen float partner; `losses(x, y)` is the block-replacement objective."""

    def __init__(self, qnet: nn.Sequential, twin: nn.Sequential):
        super().__init__()
        self.qnet = qnet
        self.twin = [twin.eval()]  # a list: not a submodule, so its parameters are neither trained nor saved
        for p in twin.parameters():
            p.requires_grad_(False)
        self.blocks = blocks(qnet)
        if [n for b in self.blocks for n in b] != [n for n, _ in twin.named_children()]:
            raise A2QFlowError("block-replacement: the float twin and the quantized model disagree on their layers; "
                               "please report this")

    def mixed(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Logits of the model whose first k blocks are quantized and the rest float."""
        q, f = self.qnet, self.twin[0]
        h = x
        for i, names in enumerate(self.blocks):
            src = q if i < k else f
            for n in names:
                h = getattr(src, n)(h)
                if i >= k and hasattr(h, "value"):  # a float block never sees a QuantTensor
                    h = h.value
        return h

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = nn.functional.cross_entropy
        L = len(self.blocks)
        loss = ce(self.qnet(x), y)
        if L > 1:
            loss = loss + sum(ce(self.mixed(x, k), y) for k in range(1, L)) / (L - 1)
        return loss


def fit_block_replacement(qnet: nn.Sequential, twin: nn.Sequential, data: dict, tc, seed: int, lr: float,
                          epochs: int, progress: bool = False):
    """Fine-tune `qnet` on the block-replacement loss; keeps the best validation epoch (like training.fit.fit).

    Returns training.fit.FitResult (best epoch, its validation accuracy, seconds per epoch, history).
    """
    from a2qflow.training.fit import fit_epochs, seed_everything

    seed_everything(seed)
    model = MixedModels(qnet, twin)
    opt = torch.optim.Adam(qnet.parameters(), lr=lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    from rich.console import Console
    from rich.errors import LiveError
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), disable=not progress, transient=True)
    try:
        bar.start()
    except LiveError:  # a caller's live display is active (the flow runner): stay quiet
        bar = Progress(disable=True)
    task = bar.add_task("block-replacement fine-tune", total=epochs)
    try:
        return fit_epochs(
            qnet, model.losses, data, (opt, sched, gen), tc.batch_size, epochs,
            lambda epoch, loss: (f"block-replacement: loss became {loss} in epoch {epoch}; lower train.finetune_lr "
                                 f"(now {lr})"),
            lambda epoch, acc, best: bar.update(
                task, advance=1, description=f"block-replacement fine-tune  val {acc:.1%}  best {best:.1%}"))
    finally:
        bar.stop()

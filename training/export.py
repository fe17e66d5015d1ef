"""QONNX export that carries the integer weights torch trained, plus the per-layer metadata the compiler needs.

The trap (brevitas 0.13.4, torch 2.13, both dynamo=True and dynamo=False): Brevitas' QONNX weight handler
writes the raw float weight `w` and a Quant node (scale = post_scale, rounding_mode=ROUND), so QONNX computes
round(w / post_scale). An A2Q / A2Q+ quantizer, however, computes round_to_zero(w / pre_scale) * post_scale,
where pre_scale carries the weight normalisation and the clamped L1 norm g. The two integers differ (on a small
A2Q MLP the graph's per-channel L1 was ~3x the bound and top-1 agreed with torch on ~30% of inputs).

The fix: after exporting, replace each quantized layer's weight initializer by q * s, where q are torch's own
integers (layer.quant_weight(quant_input).int()) and s is the Quant node's scale, after checking s equals
torch's post_scale. q * s lies on the Quant node's grid, so QONNX re-quantizes it to exactly q (checked here,
bit for bit, before the file is written). Plain integer quantizers export exactly; they go through the same
check. The accumulator width is not part of QONNX, so each layer's target P and datatypes go into the model's
metadata_props["a2qflow"] (JSON; keys documented in docs/training.md).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.audit import META_KEY, _Graph, quant_integers
from a2qflow.training.quant import LayerSpec


@dataclass
class TorchIntWeights:
    """One layer's quantized weights as torch computes them: value = q * scale (q int64, scale broadcastable)."""

    q: np.ndarray
    scale: np.ndarray
    bits: int


def capture_layer_inputs(net: torch.nn.Module, specs: list[LayerSpec], x: torch.Tensor) -> dict:
    """Run `net` once (eval, no grad) and return what each MAC layer received (a QuantTensor when quantized)."""
    seen: dict = {}
    hooks = [getattr(net, s.name).register_forward_pre_hook(
        lambda mod, args, name=s.name: seen.__setitem__(name, args[0])) for s in specs]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    return seen


def torch_integer_weights(net: torch.nn.Module, specs: list[LayerSpec], x: torch.Tensor) -> dict[str, TorchIntWeights]:
    """Integer weights of every quantized layer exactly as torch uses them in its forward pass."""
    inputs = capture_layer_inputs(net, specs, x)
    out = {}
    with torch.no_grad():
        for s in specs:
            if s.weight_quant == "float":
                continue
            layer = getattr(net, s.name)
            qt = layer.quant_weight(quant_input=inputs[s.name]) if layer.weight_quant.requires_quant_input \
                else layer.quant_weight()
            q = qt.int().detach().cpu().numpy().astype(np.int64)
            scale = qt.scale.detach().cpu().numpy().astype(np.float32)
            out[s.name] = TorchIntWeights(q=q, scale=scale, bits=int(qt.bit_width))
    return out


def weight_sparsity(ints: dict[str, TorchIntWeights], specs: list[LayerSpec], net: torch.nn.Module) -> dict:
    """Fraction of zero weights per layer (integers for quantized layers, exact zeros for float ones)."""
    res = {}
    for s in specs:
        if s.name in ints:
            res[s.name] = float(np.mean(ints[s.name].q == 0))
        else:
            res[s.name] = float((getattr(net, s.name).weight == 0).float().mean())
    return res


def metadata(specs: list[LayerSpec], input_shape: tuple[int, ...], dataset: str) -> dict:
    return {"layers": [{"name": s.name, "onnx_weight": f"{s.name}.weight", "weight_quant": s.weight_quant,
                        "target_acc_bits": s.target_acc_bits, "weight_bits": s.weight_bits,
                        "input_bits": s.input_bits, "input_signed": s.input_signed} for s in specs],
            "input_shape": list(input_shape), "dataset": dataset}


def _infer_shapes(model):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    return ModelWrapper(model).transform(InferShapes()).model


def export_model(net: torch.nn.Module, specs: list[LayerSpec], input_shape: tuple[int, ...], path: Path | str,
                 dataset: str, calib: torch.Tensor) -> dict:
    """Export `net` to QONNX at `path` (batch size 1, dynamo=False) with torch's integer weights and metadata.

    `calib` is any input batch (it only tells the A2Q quantizers the input datatype). Returns the metadata dict.
    Written atomically: a failure or interrupt leaves no (partial) file at `path`.
    """
    import onnx
    from brevitas.export import export_qonnx
    from onnx import numpy_helper

    path = Path(path)
    net = copy.deepcopy(net).eval()
    ints = torch_integer_weights(net, specs, calib)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with torch.no_grad():
            export_qonnx(net, args=torch.zeros(1, *input_shape), export_path=tmp, dynamo=False)
        model = onnx.load(tmp)
        g = _Graph(model)
        inits = {i.name: i for i in model.graph.initializer}
        meta = metadata(specs, input_shape, dataset)
        for s, m in zip(specs, meta["layers"]):
            wname = m["onnx_weight"]
            if wname not in inits:
                raise A2QFlowError(f"export: layer {s.name}: no initializer {wname!r} in the exported graph")
            users = g.consumers.get(wname, [])
            if len(users) != 1:
                raise A2QFlowError(f"export: layer {s.name}: weight {wname!r} feeds {len(users)} nodes, expected 1")
            if s.weight_quant == "float":
                continue
            qnode = users[0]
            if qnode.op_type != "Quant":
                raise A2QFlowError(f"export: layer {s.name}: weight {wname!r} feeds {qnode.op_type}, not Quant")
            tw = ints[s.name]
            qp = g.quant_params(qnode)
            s_graph = np.asarray(qp["scale"], dtype=np.float32)
            if qp["bits"] != tw.bits or not np.allclose(np.broadcast_to(s_graph, tw.scale.shape), tw.scale,
                                                        rtol=1e-6, atol=0):
                raise A2QFlowError(f"export: layer {s.name}: the Quant node's scale / bit width differ from torch's "
                                   f"post-scale; this Brevitas version exports A2Q differently (see training/export.py)")
            fixed = (tw.q.astype(np.float32) * s_graph).astype(np.float32)
            got = quant_integers(fixed, **qp)
            if not np.array_equal(got, tw.q):
                raise A2QFlowError(f"export: layer {s.name}: {int(np.sum(got != tw.q))} integer weights still differ "
                                   f"from torch after the rewrite")
            inits[wname].CopyFrom(numpy_helper.from_array(fixed, wname))
        keep = [(p.key, p.value) for p in model.metadata_props if p.key != META_KEY]
        del model.metadata_props[:]
        for k, v in keep:
            model.metadata_props.add(key=k, value=v)
        model.metadata_props.add(key=META_KEY, value=json.dumps(meta))
        model = _infer_shapes(model)  # so qonnx's execute_onnx runs the file as written; keeps tensor names
        onnx.save(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return meta

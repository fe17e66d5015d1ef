"""a2qflow.training: Brevitas QNNs under A2Q / A2Q+ accumulator constraints.

Quantizer presets (quant.py), models (models.py), datasets (data.py), the training recipe (train.py), QONNX export
with the Brevitas A2Q export fix (export.py) and the per-channel bound audit (audit.py). Imports a2qflow.hw (bounds,
errors), never a2qflow.flows.
"""

"""a2qflow.training: Brevitas QNNs under A2Q / A2Q+ accumulator constraints.

Quantizer presets (quant.py), models (models.py), datasets (data.py), the budget-aware A2Q / A2Q+ initialisation
(init.py), the training recipe's phases (recipe.py), the training loop and run folder (train.py), QONNX export
with the Brevitas A2Q export fix (export.py) and the per-channel bound audit (audit.py). Imports a2qflow.hw (bounds,
errors), never a2qflow.flows.
"""

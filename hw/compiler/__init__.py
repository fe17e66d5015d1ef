"""The compiler: QONNX frontend -> integer IR (ir.py) -> bounds (bounds.py) -> accumulator plan (plan.py, with the
thresholds fitted to each width, thresholds.py), and the integer golden model every backend is checked against
(reference.py), through one comparison that names layer, channel and sample (golden_compare.py).
"""

"""a2qflow.hw: the compiler (compiler/) and its backends (hls/, rtl/, synth/).

QONNX -> integer IR -> per-layer accumulator plan (the proven minimum widths) -> Vitis HLS C++ and Verilog ->
C-sim, Verilator, yosys / nextpnr, Vitis / Vivado. Shared pieces: errors.py (A2QFlowError), files.py (atomic
output, cache), cache_key.py (the one content key of every cache), tools.py (the tool runner), config.py (hardware
config models), results.py (typed stage results).
Never imports a2qflow.flows or a2qflow.training.
"""

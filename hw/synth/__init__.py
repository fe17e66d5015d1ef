"""Synthesis and vendor tools: yosys resource counts, planned vs 32-bit (yosys.py), nextpnr bitstreams with a self-test
shell (bitstream.py), and the Vitis HLS / Vivado runner with its report parsers (vitis.py).
"""

"""The RTL backend: Verilog generation from the plan (generate.py) over the library in verilog/, and Verilator
simulation against the golden model (sim.py).
"""

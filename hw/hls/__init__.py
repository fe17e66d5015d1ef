"""The HLS backend: typed design (design.py) built by one emitter per layer kind (emitters.py), rendered into a
Vitis HLS project (generate.py), and g++ C-simulation with an overflow monitor (csim.py).
"""

"""Verilog library (MVAU, sliding window, pooling, board self-test shell) and the Jinja2 templates of the generated
top."""

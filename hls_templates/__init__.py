"""Vitis HLS C++ library headers (*.hpp) and the Jinja2 templates (*.j2) a2qflow.hw.hls renders per build."""

"""a2qflow.flows: the user-facing layer. CLI (cli.py, commands/), flow config (config.py), resumable stage
pipeline (pipeline.py, stages.py), report (report.py, plots.py) and design-space sweeps (sweep.py).

Depends on a2qflow.training and a2qflow.hw; nothing below it imports this package.
"""

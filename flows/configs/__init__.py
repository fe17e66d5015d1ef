"""Ready-made flow configs (YAML), shipped as package data: `digits_mlp.yaml` is `make demo`'s."""

"""One module per `a2qflow` sub-command: each provides `help`, `add_arguments(parser)` and `run(args)`."""

"""`python -m a2qflow` runs the same CLI as the `a2qflow` command."""

import sys

from a2qflow.flows.cli import main

sys.exit(main())

"""`python -m pooldbapi`: the same as the `pooldbapi` command."""
import sys

from .cli import main

sys.exit(main())

"""``python -m striate``: the same command line as ``striate`` (see :mod:`striate.cli`)."""
import sys

from .cli import main

sys.exit(main())

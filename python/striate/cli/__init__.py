"""``striate.cli``: the ``striate`` command line (also ``python -m striate``), argument parsing only.

``main.py`` parses and dispatches (see its docstring for the commands and the error rules);
one module per command: ``train.py`` (``train`` and ``demo``: classification and
segmentation runs), ``evaluate.py`` (``eval``), ``folder.py`` (a user's own images and
``predict``), ``gan.py`` (the GAN tasks and ``sample``), ``bench.py``; ``options.py`` holds the
options and settings they share.
"""
from .main import build_parser, main

__all__ = ["main", "build_parser"]

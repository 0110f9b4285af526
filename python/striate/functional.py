"""``striate.functional``: an alias of :mod:`striate.nn.functional` (API.md section 3)."""
from .nn.functional import *  # noqa: F401,F403
from .nn.functional import __all__  # noqa: F401

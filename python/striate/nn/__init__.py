"""``striate.nn``: layers, containers and initialisation with ``torch.nn``'s names.

``striate.nn.functional`` holds the autograd-aware functions the layers call;
``striate.nn.init`` the initialisers; the layers live in ``striate.nn.modules``
and are re-exported here.
"""
from . import functional, init
from .modules import *  # noqa: F401,F403 - the public layer classes
from .modules import __all__ as _modules_all

__all__ = ["functional", "init"] + _modules_all

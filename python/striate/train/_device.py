"""Where a model's parameters live and batches moved there: shared by the loops and the figures."""
from __future__ import annotations

from ..tensor import Tensor, tensor


def _as_tensor(value, device):
    """value as a Tensor on device (a copy only when it is not one there already)."""
    t = value if isinstance(value, Tensor) else tensor(value)
    return t if t.device == device else t.to(device)


def _model_device(model) -> str:
    """The device of the model's first parameter ("cpu" without parameters)."""
    return next((p.device for p in model.parameters()), "cpu")

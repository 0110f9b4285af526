"""Loading weights trained elsewhere, and swapping the head for fine-tuning.

``load_pretrained`` reads a state dict from ``.safetensors`` or ``.npz``
(through ``striate.load``: no code in the file ever runs) or, when PyTorch is
installed, from a ``.pth``/``.pt`` file through
``torch.load(weights_only=True)``, PyTorch's restricted unpickler that
only rebuilds tensors and plain containers. Checkpoints that wrap the
weights (``{"state_dict": ...}``, ``{"model": ...}``, as training scripts
write them) are unwrapped, and a ``module.`` prefix on every key
(``nn.DataParallel``) is dropped. Every key is checked against the model
before anything is copied, and the report lists what did not fit.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import os
import pickle

import numpy as np

from .. import nn
from ..serialization import load
from ..tensor import Tensor

__all__ = ["LoadReport", "load_pretrained", "finetune"]

_WRAPPER_KEYS = ("state_dict", "model")
_TORCH_SUFFIXES = (".pth", ".pt")


@dataclass
class LoadReport:
    """What ``load_pretrained`` found.

    Attributes:
        missing_keys: names the model has and the file lacks (left as they were).
        unexpected_keys: names the file has and the model lacks (ignored).
        mismatched_keys: ``(name, shape in file, shape in model)`` for entries
            whose shapes differ (not copied).
        loaded_keys: names that were copied into the model.
    """

    missing_keys: list = field(default_factory=list)
    unexpected_keys: list = field(default_factory=list)
    mismatched_keys: list = field(default_factory=list)
    loaded_keys: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every model entry was loaded and the file held nothing else."""
        return not (self.missing_keys or self.unexpected_keys or self.mismatched_keys)

    def describe(self) -> str:
        """One line per kind of problem, or ``"all keys matched"``."""
        lines = []
        if self.missing_keys:
            lines.append(f"missing keys ({len(self.missing_keys)}): {', '.join(self.missing_keys)}")
        if self.unexpected_keys:
            lines.append(f"unexpected keys ({len(self.unexpected_keys)}): {', '.join(self.unexpected_keys)}")
        if self.mismatched_keys:
            lines.append(f"wrong-shape keys ({len(self.mismatched_keys)}): " + ", ".join(
                f"{k} (file {s_file}, model {s_model})" for k, s_file, s_model in self.mismatched_keys))
        return "\n".join(lines) or "all keys matched"


def _read(path: str):
    """The raw object stored in ``path``, chosen by its suffix."""
    if path.lower().endswith(_TORCH_SUFFIXES):
        try:
            import torch
        except ImportError:
            raise ValueError(f"load_pretrained: {path} is a PyTorch file; reading it needs torch "
                             "installed (or convert it to .safetensors)") from None
        # weights_only: PyTorch's restricted unpickler, which never calls arbitrary code
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ValueError(f"load_pretrained: {path} holds more than tensors and plain containers; "
                             f"refused without running it ({str(exc).splitlines()[0]})") from None
    return load(path)


def _unwrap(obj, path: str) -> Mapping:
    """The innermost state dict of a checkpoint that may be wrapped in {"state_dict"|"model": ...}."""
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            return obj
        obj = inner
    raise ValueError(f"load_pretrained: {path} holds a {type(obj).__name__}, not a state dict")


def _to_array(value, key: str, path: str) -> np.ndarray:
    """A numpy array from a striate Tensor, a torch tensor, an array or a number."""
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()  # numpy has no bfloat16; the model's copy casts anyway
        return value.numpy()
    if isinstance(value, (np.ndarray, np.generic, int, float)) and not isinstance(value, bool):
        return np.asarray(value)
    raise ValueError(f"load_pretrained: {path}: entry {key!r} is a {type(value).__name__}, "
                     "not an array")


def load_pretrained(model: nn.Module, path, strict: bool = True) -> LoadReport:
    """Load a state dict from a file into ``model``, checking every key first.

    Args:
        model: the module to fill (e.g. ``resnet18()``); its own names are the reference.
        path: a ``.safetensors``, ``.npz``, or (with torch installed) ``.pth``/``.pt`` file.
        strict: when True, any missing, unexpected or wrong-shape key raises
            and nothing is copied; when False, the matching entries are copied
            and the rest is reported.

    Returns:
        A :class:`LoadReport`.

    Raises:
        ValueError: the file cannot be read as a state dict, or (``strict``)
            the keys do not match; the message lists every offending key.
    """
    path = os.fspath(path)
    state = _unwrap(_read(path), path)
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    arrays = {str(k): _to_array(v, k, path) for k, v in state.items()}
    expected = model.state_dict()
    report = LoadReport(
        missing_keys=[k for k in expected if k not in arrays],
        unexpected_keys=[k for k in arrays if k not in expected],
        mismatched_keys=[(k, tuple(a.shape), tuple(expected[k].shape)) for k, a in arrays.items()
                         if k in expected and tuple(a.shape) != tuple(expected[k].shape)],
    )
    if strict and not report.ok:
        raise ValueError(f"load_pretrained: {path} does not fit {type(model).__name__}:\n"
                         + report.describe())
    wrong = {k for k, _, _ in report.mismatched_keys}
    matching = {k: a for k, a in arrays.items() if k in expected and k not in wrong}
    model.load_state_dict(matching, strict=False)
    report.loaded_keys = list(matching)
    return report


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The last ``Linear`` registered in ``model``: ``fc``, ``classifier.6``..., the classification head."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"finetune: {type(model).__name__} has no Linear layer to use as its head")
    return linears[-1]


def finetune(model: nn.Module, num_classes: int, freeze_backbone: bool = True) -> nn.Module:
    """Replace the classification head with a fresh ``Linear(in_features, num_classes)``.

    The head is the model's last Linear layer: ``fc`` for ResNet,
    ``classifier[-1]`` for AlexNet and VGG, the final Linear of ``lenet5`` and
    ``inception_net``. With ``freeze_backbone`` every other parameter gets
    ``requires_grad=False``, so an optimizer over
    ``[p for p in model.parameters() if p.requires_grad]`` trains only the head.
    (Batch-norm running statistics still update in train mode, as in PyTorch;
    call ``model.eval()`` on the backbone to keep them fixed.)

    Args:
        model: the network, modified in place.
        num_classes: outputs of the new head.
        freeze_backbone: freeze every parameter outside the head.

    Returns:
        ``model``.
    """
    name, old = _last_linear(model)
    head = nn.Linear(old.in_features, num_classes, bias=old.bias is not None,
                     device=old.weight.device, dtype=old.weight.dtype)
    parent_name, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, leaf, head)
    for param in model.parameters():
        param.requires_grad_(not freeze_backbone)
    for param in head.parameters():
        param.requires_grad_(True)
    return model

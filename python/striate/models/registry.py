"""``striate.models.registry``: networks by name, for the command line and for users.

``get_model("resnet18", num_classes=5)`` builds a network from its name, with
the keyword arguments its constructor takes; ``list_models()`` names them all,
``list_models("classify")`` or ``"segment"`` those of one task. The table holds
the networks a user trains on their own images: the classifiers (``lenet5`` and
``inception_net`` take ``in_channels``; AlexNet, VGG and ResNet want 3-channel
images) and the segmentation networks. GANs are built by their own trainers.
"""
from __future__ import annotations

from . import vgg as _vgg_module
from .alexnet import alexnet
from .inception import inception_net
from .lenet import lenet5
from .resnet import resnet18, resnet34, resnet50
from .segnet import segnet
from .unet import unet

# name -> (constructor, task, input channels it needs or None when it takes in_channels)
_MODELS = {
    "lenet5": (lenet5, "classify", None),
    "inception_net": (inception_net, "classify", None),
    "alexnet": (alexnet, "classify", 3),
    **{name: (getattr(_vgg_module, name), "classify", 3)
       for name in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")},
    "resnet18": (resnet18, "classify", 3),
    "resnet34": (resnet34, "classify", 3),
    "resnet50": (resnet50, "classify", 3),
    "unet": (unet, "segment", None),
    "segnet": (segnet, "segment", None),
}
TASKS = ("classify", "segment")


def list_models(task: str | None = None) -> list:
    """The registered names (of one task: "classify" or "segment"), in table order."""
    if task is not None and task not in TASKS:
        raise ValueError(f"list_models: task must be one of {', '.join(TASKS)}, got {task!r}")
    return [name for name, (_, t, _) in _MODELS.items() if task is None or t == task]


def _entry(op: str, name):
    if name not in _MODELS:
        raise ValueError(f"{op}: unknown model {name!r}; expected one of {', '.join(_MODELS)}")
    return _MODELS[name]


def model_task(name: str) -> str:
    """The task a registered network is for: "classify" or "segment"."""
    return _entry("model_task", name)[1]


def input_channels(name: str):
    """The image channels a registered network needs (3), or None when it takes ``in_channels``."""
    return _entry("input_channels", name)[2]


def get_model(name: str, **kwargs):
    """A fresh network by name; ``kwargs`` go to its constructor (``num_classes``, ``in_channels``...).

    Raises:
        ValueError: an unknown name, or an argument the constructor does not take.
    """
    constructor = _entry("get_model", name)[0]
    try:
        return constructor(**kwargs)
    except TypeError as exc:
        raise ValueError(f"get_model: {name} does not take {sorted(kwargs)}: {exc}") from None


__all__ = ["get_model", "list_models", "model_task", "input_channels", "TASKS"]

"""The layers of ``striate.nn``, one file per family as in ``torch.nn.modules``."""
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout, Dropout2d
from .embedding import Embedding
from .linear import Flatten, Identity, Linear
from .module import Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d
from .pooling import AvgPool2d, MaxPool2d, MaxUnpool2d, SumPool2d
from .pyramid import PyrDown, PyrUp
from .upsampling import Upsample

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Conv2d", "ConvTranspose2d",
    "MaxPool2d", "AvgPool2d", "SumPool2d", "MaxUnpool2d", "Dropout", "Dropout2d", "BatchNorm1d",
    "BatchNorm2d", "Linear", "Flatten", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Embedding", "Upsample", "PyrDown", "PyrUp",
]

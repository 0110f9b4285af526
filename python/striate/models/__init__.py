"""``striate.models``: ready-made networks and the pretrained-weights path.

- ``lenet5`` and ``inception_net``: small networks that train on MNIST on a CPU.
- ``alexnet``, ``vgg11``... ``vgg19_bn``, ``resnet18/34/50``: torchvision's
  architectures with torchvision's parameter and buffer names and shapes, so a
  torchvision ``state_dict`` loads unchanged through ``load_pretrained``.
- ``segnet`` and ``unet``: segmentation networks with per-pixel logits.
- ``MLPGenerator``/``MLPDiscriminator``, ``DCGenerator``/``DCDiscriminator`` and
  ``ImageConditionedGenerator``/``ImageConditionedDiscriminator``: GANs (see ``gan.py``).
- ``StageIGenerator``... ``stackgan_sample``: StackGAN, text to image in two stages
  (``stackgan.py``; captions embedded by ``striate.text.HashingTextEncoder``; trained by
  ``striate.train.fit_stackgan`` on ``striate.data.shapes_text_data``).
- ``LAPGAN``: a Laplacian pyramid of GANs (``lapgan.py``).
- ``finetune`` swaps the classification head and freezes the rest.
- ``registry``: ``get_model(name, **kwargs)`` and ``list_models(task)``, the
  networks by name (the command line's ``--model``).
"""
from ._layers import AdaptiveAvgPool2d, adaptive_avg_pool2d
from .alexnet import AlexNet, alexnet
from .attributes import ShapeAttributeNet
from .gan import (DCDiscriminator, DCGenerator, ImageConditionedDiscriminator, ImageConditionedGenerator,
                  MLPDiscriminator, MLPGenerator, dcgan_layout)
from .lapgan import LAPGAN, DetailDiscriminator
from .inception import InceptionBlock, InceptionNet, inception_net
from .lenet import LeNet5, lenet5
from .pretrained import LoadReport, finetune, load_pretrained
from .segnet import SegNet, segnet
from .stackgan import (ConditioningAugmentation, StageIDiscriminator, StageIGenerator, StageIIDiscriminator,
                       StageIIGenerator, stackgan_sample)
from .unet import UNet, unet, unet_output_size
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50
from . import registry
from .registry import get_model, list_models
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = [
    "LeNet5", "lenet5", "InceptionBlock", "InceptionNet", "inception_net", "AlexNet", "alexnet",
    "VGG", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50",
    "AdaptiveAvgPool2d", "adaptive_avg_pool2d", "LoadReport", "load_pretrained", "finetune",
    "SegNet", "segnet", "UNet", "unet", "unet_output_size",
    "MLPGenerator", "MLPDiscriminator", "DCGenerator", "DCDiscriminator", "ImageConditionedGenerator",
    "ImageConditionedDiscriminator", "dcgan_layout", "ShapeAttributeNet",
    "ConditioningAugmentation", "StageIGenerator", "StageIDiscriminator", "StageIIGenerator",
    "StageIIDiscriminator", "stackgan_sample",
    "LAPGAN", "DetailDiscriminator", "registry", "get_model", "list_models",
]

"""``striate.data``: datasets, the batch ``DataLoader`` and batch transforms.

Every dataset gives images as (N, C, H, W) float32 in [0, 1] and labels as
int64 (segmentation masks as (N, H, W) int64). ``MNIST5k`` ships inside the
package (see ``assets/README.md``).
"""
from . import transforms
from .dataset import Dataset, TensorDataset
from .datasets import Digits, IDXDataset, ImageFolder, MNIST5k
from .captions import ShapesText, shapes_text_data
from .loader import DataLoader
from .shapes import SegmentationFolder, Shapes

__all__ = ["Dataset", "TensorDataset", "DataLoader", "MNIST5k", "IDXDataset", "ImageFolder", "Digits",
           "Shapes", "SegmentationFolder", "transforms", "ShapesText", "shapes_text_data"]

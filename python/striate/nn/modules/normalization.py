"""``BatchNorm1d`` and ``BatchNorm2d`` with running statistics, as in ``torch.nn``.

Parameters ``weight`` (ones) and ``bias`` (zeros) when ``affine``; buffers
``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked``
(an int64 scalar) when ``track_running_stats``. In training the batch
statistics normalise and ``F.batch_norm`` updates the running ones in place
(``running = (1 - m) * running + m * batch``, the variance unbiased); with
``momentum=None`` m is ``1 / num_batches_tracked``, a cumulative average. In
eval the running statistics normalise (the batch ones if none are tracked).
"""
from __future__ import annotations

from .. import functional as F
from .. import init
from ...tensor import ones, tensor, zeros
from .module import Module, Parameter


class _BatchNorm(Module):
    _expected_dims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(ones(num_features, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(zeros(num_features, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", tensor(0, dtype="int64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, input) -> None:
        if input.dim() not in self._expected_dims:
            expected = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(f"expected {expected} input (got {input.dim()}D input)")

    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / self.num_batches_tracked.item()
        # eval uses the running statistics when there are any, else the batch's
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` input over all but the channel dimension.

    Args:
        num_features: C.
        eps: added to the variance for stability.
        momentum: weight of the batch statistics in the running ones; None
            for a cumulative average.
        affine: learn a per-channel scale (and shift, unless ``bias=False``).
        track_running_stats: keep running statistics for eval mode.
        device, dtype: where and in which precision to create the tensors.
        bias: (keyword only) with ``affine``, whether to learn the shift.
    """

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` input per channel; arguments as in :class:`BatchNorm1d`."""

    _expected_dims = (4,)

"""``striate.nn.functional``: autograd-aware functions (API.md section 3).

Names, signatures and semantics are ``torch.nn.functional``'s; striate adds
``sum_pool2d``, ``pyr_down``/``pyr_up``, the pyramid helpers, ``warp_affine`` and
``kl_normal``. Also importable as ``striate.functional``.

Kernel-backed functions and the numerically delicate ones (activations, softmax, batch
norm, NLL/BCE, resampling) are single primitives of :mod:`striate.nn._functions`;
everything else (linear, the other losses, the pyramids, eval-mode batch norm) is composed
of Tensor operations and gets its gradient from them. Arguments are checked here and errors
name the argument (``ValueError`` / ``TypeError``); geometry is checked by ``striate.ops``.
"""
from __future__ import annotations

import warnings

from ..autograd.grad_mode import no_grad
from ..random import next_dropout_stream
from ..tensor import arange
from . import _functions as P
from ._checks import _bool, _dim, _int, _number, _stride, _tensor
from ._resampling import (gaussian_pyramid, interpolate, laplacian_pyramid, laplacian_reconstruct, pyr_down, pyr_up,
                          warp_affine)

__all__ = [
    "conv2d", "conv_transpose2d", "pad", "max_pool2d", "avg_pool2d", "sum_pool2d", "max_unpool2d",
    "dropout", "linear", "relu", "leaky_relu", "sigmoid", "tanh", "logsigmoid", "softmax",
    "log_softmax", "batch_norm", "cross_entropy", "nll_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "dice_loss", "mse_loss", "l1_loss", "kl_normal", "interpolate",
    "pyr_down", "pyr_up", "gaussian_pyramid", "laplacian_pyramid", "laplacian_reconstruct",
    "warp_affine",
]


# ------------------------------------------------------------------ convolution, padding, pooling


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    Args:
        input: (N, C, H, W). weight: (K, C/groups, kh, kw). bias: (K,) or None.
        stride, dilation: int or pair. padding: int, pair, "same" or "valid".
        groups: channel groups. padding_mode: "zeros" (torch's F.conv2d), or
            ``torch.nn.Conv2d``'s "reflect", "replicate", "circular".

    Returns:
        (N, K, Ho, Wo) Tensor.
    """
    _tensor("conv2d", "input", input, 4)
    _tensor("conv2d", "weight", weight, 4)
    _tensor("conv2d", "bias", bias, 1, optional=True)
    return P.Conv2d.apply(input, weight, bias, stride=stride, padding=padding, dilation=dilation,
                          groups=groups, padding_mode=padding_mode)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    Args:
        input: (N, Cin, H, W). weight: (Cin, Cout/groups, kh, kw). bias: (Cout,) or None.

    Returns:
        (N, Cout, (H-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1, ...) Tensor.
    """
    _tensor("conv_transpose2d", "input", input, 4)
    _tensor("conv_transpose2d", "weight", weight, 4)
    _tensor("conv_transpose2d", "bias", bias, 1, optional=True)
    return P.ConvTranspose2d.apply(input, weight, bias, stride=stride, padding=padding,
                                   output_padding=output_padding, groups=groups, dilation=dilation)


def pad(input, pad, mode="constant", value=None):
    """Pad the last two dims of an (N, C, H, W) tensor, as ``torch.nn.functional.pad``.

    Args:
        pad: (left, right, top, bottom), or (left, right) in "constant" mode; non-negative.
        mode: "constant", "reflect", "replicate" or "circular" (PyTorch's size limits).
        value: fill value for "constant" (default 0).
    """
    op = "pad"
    _tensor(op, "input", input, 4)
    if not isinstance(pad, (tuple, list)) or len(pad) not in (2, 4) or (len(pad) == 2 and mode != "constant"):
        raise ValueError(f"{op}: pad must be (left, right, top, bottom) (or (left, right) in "
                         f"constant mode), got {pad!r}")
    if value is not None and mode != "constant":
        raise ValueError(f"{op}: mode {mode!r} takes no value, got value={value!r}")
    value = 0.0 if value is None else _number(op, "value", value)
    return P.Pad2d.apply(input, pad=tuple(pad) + (0, 0) * (len(pad) == 2), mode=mode, value=value)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling, as ``torch.nn.functional.max_pool2d``.

    Returns:
        y, or (y, indices) with ``return_indices=True``: int64 flat ``h*W + w`` argmax
        positions within each (n, c) plane (ties to the first cell in row-major order).
    """
    _tensor("max_pool2d", "input", input, 4)
    _bool("max_pool2d", "return_indices", return_indices)
    y, indices = P.MaxPool2d.apply(input, kernel_size=kernel_size, stride=_stride(stride), padding=padding,
                                   dilation=dilation, ceil_mode=ceil_mode)
    return (y, indices) if return_indices else y


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling, as ``torch.nn.functional.avg_pool2d``."""
    _tensor("avg_pool2d", "input", input, 4)
    return P.AvgPool2d.apply(input, kernel_size=kernel_size, stride=_stride(stride), padding=padding,
                             ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                             divisor_override=divisor_override)


def sum_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Sum over each window: ``avg_pool2d(..., divisor_override=1)`` (zero padding)."""
    _tensor("sum_pool2d", "input", input, 4)
    return P.AvgPool2d.apply(input, kernel_size=kernel_size, stride=_stride(stride), padding=padding,
                             ceil_mode=ceil_mode, count_include_pad=True, divisor_override=1)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Scatter input to its ``indices`` in a zero plane, as ``torch.nn.functional.max_unpool2d``.

    Args:
        indices: int64 Tensor from ``max_pool2d(..., return_indices=True)``.
        output_size: (H, W) or a full shape; default (H_in - 1) * stride - 2 * padding + kernel_size.
    """
    _tensor("max_unpool2d", "input", input, 4)
    _tensor("max_unpool2d", "indices", indices, 4, floating=False)
    return P.MaxUnpool2d.apply(input, indices, kernel_size=kernel_size, stride=_stride(stride),
                               padding=padding, output_size=output_size)


# ------------------------------------------------------------------ dropout, linear, activations


def dropout(input, p=0.5, training=True, inplace=False):
    """Inverted dropout, as ``torch.nn.functional.dropout``.

    In training each element is zeroed with probability p and the others are scaled by
    1/(1-p). The mask comes from the Philox kernel with the (seed, offset) of
    :func:`striate.random.next_dropout_stream` (every training-mode call takes the next
    offset), so ``striate.manual_seed`` reproduces it on any device. Not training (or
    p == 0) returns input itself. ``inplace`` is accepted for compatibility; the result is
    always a new tensor.
    """
    p = _number("dropout", "p", p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p (the dropout probability) must be between 0 and 1, got {p}")
    _tensor("dropout", "input", input)
    if not _bool("dropout", "training", training):
        return input
    seed, offset = next_dropout_stream()
    return input if p == 0.0 else P.Dropout.apply(input, p=p, seed=seed, offset=offset)


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``; input (..., in_features), weight (out_features, in_features)."""
    _tensor("linear", "input", input)
    _tensor("linear", "weight", weight, 2)
    _tensor("linear", "bias", bias, 1, optional=True)
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input's last dim must equal weight.shape[1] ({weight.shape[1]}), "
                         f"got input shape {input.shape}")
    return P.Linear.apply(input, weight, bias)


def relu(input, inplace=False):
    """max(input, 0); the gradient at 0 is 0. ``inplace`` is accepted; the result is new."""
    return P.ReLU.apply(_tensor("relu", "input", input))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """input where input > 0, else negative_slope * input. ``inplace`` is accepted; the result is new."""
    slope = _number("leaky_relu", "negative_slope", negative_slope)
    return P.LeakyReLU.apply(_tensor("leaky_relu", "input", input), negative_slope=slope)


def sigmoid(input):
    """1 / (1 + exp(-input)), computed without overflow."""
    return P.Sigmoid.apply(_tensor("sigmoid", "input", input))


def tanh(input):
    return P.Tanh.apply(_tensor("tanh", "input", input))


def logsigmoid(input):
    """log(sigmoid(input)), stable for large |input| (used by the logits BCE)."""
    return P.LogSigmoid.apply(_tensor("logsigmoid", "input", input))


def _softmax_input(op, input, dim, dtype):
    _tensor(op, "input", input)
    if dim is None:
        raise TypeError(f"{op}: dim must be given (PyTorch's implicit choice of dim is deprecated)")
    dim = _dim(op, input, dim)
    return (input if dtype is None else input.to(dtype=dtype)), dim


def softmax(input, dim=None, *, dtype=None):
    """exp(input) / sum(exp(input)) along dim (max-shifted, so it does not overflow).

    Args:
        dim: the axis to normalise (required). dtype: cast input to this dtype first.
    """
    x, dim = _softmax_input("softmax", input, dim, dtype)
    return P.Softmax.apply(x, dim=dim)


def log_softmax(input, dim=None, *, dtype=None):
    """input - logsumexp(input) along dim, computed stably (see :func:`softmax`)."""
    x, dim = _softmax_input("log_softmax", input, dim, dtype)
    return P.LogSoftmax.apply(x, dim=dim)


# ------------------------------------------------------------------ batch normalisation


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Batch normalisation over (N, ...) per channel (axis 1), as ``torch.nn.functional.batch_norm``.

    Args:
        input: (N, C) or (N, C, ...). running_mean, running_var: (C,) Tensors or None.
        weight, bias: (C,) affine parameters or None.
        training: normalise with the batch statistics (biased variance) and, when running
            statistics are given, update them in place:
            ``running = (1 - momentum) * running + momentum * batch`` with the *unbiased*
            batch variance. Otherwise normalise with the running statistics.
        eps: added to the variance.
    """
    op = "batch_norm"
    _tensor(op, "input", input)
    if input.ndim < 2:
        raise ValueError(f"{op}: input must be (N, C) or (N, C, ...), got shape {input.shape}")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if _tensor(op, name, t, 1, optional=True) is not None and t.shape != (C,):
            raise ValueError(f"{op}: {name} must have shape ({C},), got {t.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must both be given or both be None")
    momentum = _number(op, "momentum", momentum)
    eps = _number(op, "eps", eps, lo=0)
    cshape = (1, C) + (1,) * (input.ndim - 2)
    if not _bool(op, "training", training):
        if running_mean is None:
            raise ValueError(f"{op}: running_mean and running_var are required when training=False")
        y = (input - running_mean.detach().reshape(cshape)) / (running_var.detach().reshape(cshape) + eps).sqrt()
        y = y if weight is None else y * weight.reshape(cshape)
        return y if bias is None else y + bias.reshape(cshape)
    if input.numel() // C <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got input shape "
                         f"{input.shape}")
    y, mean, var = P.BatchNorm.apply(input, weight, bias, eps=eps)
    if running_mean is not None:
        with no_grad():
            running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            running_var.mul_(1 - momentum).add_(var, alpha=momentum)
    return y


# ------------------------------------------------------------------ losses

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(op, reduction, size_average=None, reduce=None):
    """The reduction, translating PyTorch's deprecated size_average/reduce like torch does."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
        warnings.warn(f"{op}: size_average and reduce are deprecated, use reduction={reduction!r}",
                      DeprecationWarning, stacklevel=3)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    return reduction


def _reduce(loss, reduction):
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def _class_inputs(op, input, target, weight, ignore_index, soft_ok=False):
    """Check (N, C, ...) scores and (N, ...) integer targets; (C,) / () are one sample."""
    _tensor(op, "input", input)
    _tensor(op, "target", target, floating=False)
    _int(op, "ignore_index", ignore_index)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must be (N, C, ...) or (C,), got a 0-D tensor")
    C = input.shape[1] if input.ndim > 1 else input.shape[0]
    if _tensor(op, "weight", weight, 1, optional=True) is not None and weight.shape != (C,):
        raise ValueError(f"{op}: weight must have shape ({C},) (one per class), got {weight.shape}")
    soft = soft_ok and target.dtype.kind == "f"
    if soft:
        if target.shape != input.shape:
            raise ValueError(f"{op}: class-probability target must have the input's shape {input.shape}, "
                             f"got {target.shape}")
        if ignore_index >= 0:
            raise ValueError(f"{op}: ignore_index is not supported with class-probability targets")
    else:
        if target.dtype.kind not in "iu":
            raise TypeError(f"{op}: target must hold integer class indices (int64), got {target.dtype}")
        expected = (input.shape[:1] + input.shape[2:]) if input.ndim > 1 else ()
        if target.shape != expected:
            raise ValueError(f"{op}: target must have shape {expected} for input {input.shape}, got {target.shape}")
    if input.ndim == 1:  # one unbatched sample
        return input.unsqueeze(0), target.unsqueeze(0), soft
    return input, target, soft


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood, as ``torch.nn.functional.nll_loss``.

    Args:
        input: (N, C) or (N, C, d1, ...) log-probabilities. target: (N) or (N, d1, ...) int64.
        weight: (C,) class weights. ignore_index: target value that contributes nothing.
        reduction: "none", "mean" (divided by the summed weights of the counted targets) or "sum".
    """
    reduction = _reduction("nll_loss", reduction, size_average, reduce)
    x, t, _ = _class_inputs("nll_loss", input, target, weight, ignore_index)
    loss = P.NLLLoss.apply(x, t, weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=0.0)
    return loss.reshape(()) if input.ndim == 1 and reduction == "none" else loss


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits, as ``torch.nn.functional.cross_entropy``.

    Args:
        input: (N, C) or (N, C, d1, ...) unnormalised scores (also (C,) for one sample).
        target: int64 class indices of shape (N) / (N, d1, ...), or class probabilities
            (a float tensor shaped like input).
        weight, ignore_index, reduction: as in :func:`nll_loss` (probability targets take
            the plain mean over the N * d1 * ... positions, as in torch).
        label_smoothing: eps in [0, 1]; the target becomes (1 - eps) * target + eps / C.
    """
    op = "cross_entropy"
    reduction = _reduction(op, reduction, size_average, reduce)
    eps = _number(op, "label_smoothing", label_smoothing, 0.0, 1.0)
    x, t, soft = _class_inputs(op, input, target, weight, ignore_index, soft_ok=True)
    logp = log_softmax(x, 1)
    if soft:
        C = x.shape[1]
        t = t if eps == 0 else t * (1 - eps) + eps / C
        per_class = logp * t
        if weight is not None:
            per_class = per_class * weight.reshape((1, C) + (1,) * (x.ndim - 2))
        loss = _reduce(-per_class.sum(1), reduction)
    else:
        loss = P.NLLLoss.apply(logp, t, weight, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=eps, op=op)
    return loss.reshape(()) if input.ndim == 1 and reduction == "none" else loss


def _pointwise_inputs(op, input, target):
    _tensor(op, "input", input)
    _tensor(op, "target", target)
    if target.shape != input.shape:
        raise ValueError(f"{op}: target must have the input's shape {input.shape}, got {target.shape}")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(target * log(input) + (1 - target) * log(1 - input)), logs clamped at -100 (torch).

    Args:
        input: probabilities in [0, 1]. target: same shape (soft targets allowed).
        weight: rescales each element; broadcast against input.
    """
    reduction = _reduction("binary_cross_entropy", reduction, size_average, reduce)
    _pointwise_inputs("binary_cross_entropy", input, target)
    loss = P.BinaryCrossEntropy.apply(input, target)
    if _tensor("binary_cross_entropy", "weight", weight, optional=True) is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """Sigmoid + binary cross entropy in one stable expression, as in torch:

    ``loss = (1 - target) * input - (1 + (pos_weight - 1) * target) * logsigmoid(input)``.

    Args:
        weight: rescales each element. pos_weight: weight of the positive term, broadcast
            along the last (class) dim.
    """
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(op, reduction, size_average, reduce)
    _pointwise_inputs(op, input, target)
    log_p = logsigmoid(input)
    if _tensor(op, "pos_weight", pos_weight, optional=True) is not None:
        log_p = log_p * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input - log_p
    if _tensor(op, "weight", weight, optional=True) is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def dice_loss(input, target, smooth=1.0, logits=True):
    """Soft Dice loss over classes: ``1 - mean_c (2 |P_c T_c| + smooth) / (|P_c| + |T_c| + smooth)``.

    Sums run over the batch and every pixel, so each class gets one score.

    Args:
        input: (N, C, H, W) logits (softmax over C is applied) or, with ``logits=False``,
            class probabilities.
        target: (N, H, W) int64 class labels, or a (N, C, H, W) float tensor of per-class
            probabilities (one-hot or soft).
        smooth: added to numerator and denominator; keeps classes absent from both finite.

    Returns:
        A scalar Tensor in [0, 1].
    """
    op = "dice_loss"
    _tensor(op, "input", input, ndim=4)
    _number(op, "smooth", smooth, lo=0)
    probs = softmax(input, dim=1) if logits else input
    if target.dtype.kind in "iu":
        if target.shape != (input.shape[0],) + tuple(input.shape[2:]):
            raise ValueError(f"{op}: label target must be (N, H, W) = "
                             f"{(input.shape[0],) + tuple(input.shape[2:])}, got {target.shape}")
        lo, hi = int(target.data.min()), int(target.data.max())
        if lo < 0 or hi >= input.shape[1]:
            raise ValueError(f"{op}: labels must lie in [0, {input.shape[1]}), got [{lo}, {hi}]")
        classes = arange(input.shape[1], device=input.device).reshape(1, -1, 1, 1)
        target = (target.to(input.device).unsqueeze(1) == classes).to(dtype=input.dtype)
    elif target.shape != input.shape:
        raise ValueError(f"{op}: probability target must have the input's shape {input.shape}, "
                         f"got {target.shape}")
    dims = (0, 2, 3)
    intersection = (probs * target).sum(dim=dims)
    score = (2 * intersection + smooth) / (probs.sum(dim=dims) + target.sum(dim=dims) + smooth)
    return 1 - score.mean()


def _regression_loss(op, input, target, size_average, reduce, reduction, weight, elementwise):
    reduction = _reduction(op, reduction, size_average, reduce)
    _tensor(op, "input", input)
    _tensor(op, "target", target)
    if target.shape != input.shape:
        warnings.warn(f"{op}: target size {target.shape} differs from input size {input.shape}; "
                      "they are broadcast, which is likely a mistake", UserWarning, stacklevel=3)
    loss = elementwise(input - target)
    if _tensor(op, "weight", weight, optional=True) is None:
        return _reduce(loss, reduction)
    if weight.shape != input.shape:
        raise ValueError(f"{op}: weight must have the input's shape {input.shape}, got {weight.shape}")
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" else _reduce(loss, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)^2, reduced; with weight, "mean" is sum(weight * err) / sum(weight) (torch)."""
    return _regression_loss("mse_loss", input, target, size_average, reduce, reduction, weight,
                            lambda d: d * d)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|, reduced like :func:`mse_loss`; the gradient at 0 is 0."""
    return _regression_loss("l1_loss", input, target, size_average, reduce, reduction, weight,
                            lambda d: d.abs())


def kl_normal(mu, logvar, reduction="batchmean"):
    """KL(N(mu, exp(logvar)) || N(0, I)) = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)).

    The VAE / StackGAN conditioning-augmentation term. Dim 0 is the batch.

    Args:
        mu, logvar: Tensors of the same shape (N, ...).
        reduction: "batchmean" (default): sum over all dims but the batch, then mean over
            the batch, i.e. the expected KL per sample; "sum": total over everything;
            "mean": mean over every element (StackGAN's reference code); "none": the
            per-sample KL, shape (N,).
    """
    op = "kl_normal"
    _tensor(op, "mu", mu)
    _tensor(op, "logvar", logvar)
    if mu.ndim == 0 or logvar.shape != mu.shape:
        raise ValueError(f"kl_normal: mu and logvar must have the same (N, ...) shape, got {mu.shape} "
                         f"and {logvar.shape}")
    if reduction not in ("batchmean", "sum", "mean", "none"):
        raise ValueError(f"{op}: reduction must be 'batchmean', 'sum', 'mean' or 'none', got {reduction!r}")
    kl = (1 + logvar - mu * mu - logvar.exp()) * -0.5
    if reduction == "mean":
        return kl.mean()
    per_sample = kl.reshape(mu.shape[0], -1).sum(1) if mu.ndim > 1 else kl
    return per_sample if reduction == "none" else per_sample.sum() if reduction == "sum" else per_sample.mean()

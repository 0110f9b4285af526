"""Differentiable primitives behind ``striate.nn.functional``, forward and backward side by side.

Kernel-backed Functions wrap a ``striate.ops`` forward and its backward. The others
(activations, softmax, batch norm, losses, resampling) compute with ``xp``, the array
module of their input (numpy or cupy), like ``striate.autograd.math``.

Conventions: positional arguments are the ones that can carry a gradient (a Tensor, or
None for an absent bias/weight); geometry and flags are keyword arguments. ``backward``
returns one gradient per positional argument, None where there is none, and *returns*
fresh arrays (the engine accumulates them). Arrays handed to ``striate.ops`` are made
C-contiguous and given the forward dtype (:func:`_c`): the engine may deliver strided
gradients.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from .._backend import array_module
from ..autograd.function import Function


def _c(a, dtype=None):
    """a as a C-contiguous array, cast to dtype when given."""
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    return array_module(a).ascontiguousarray(a)


def _kernel_input(x):
    """x for an ops kernel (float32/float64): float16 is computed in float32, as torch does on the CPU."""
    return _c(x, np.float32 if x.dtype == np.float16 else None)


def _like(y, x):
    """y cast back to x's dtype (float16 results of a float32 kernel)."""
    return y if y.dtype == x.dtype else y.astype(x.dtype)


def _channel_shape(x):
    """Shape (1, C, 1, ...) that broadcasts a per-channel vector against x (channels on axis 1)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


# ------------------------------------------------------------------ kernel-backed (striate.ops)


class Conv2d(Function):
    """ops.conv2d; inputs (x, weight, bias or None)."""

    def forward(self, x, w, b, **geo):
        self.x, self.w, self.geo = _c(x), _c(w), geo
        return ops.conv2d(self.x, self.w, None if b is None else _c(b), **geo)

    def backward(self, g):
        return ops.conv2d_backward(_c(g, self.x.dtype), self.x, self.w, **self.geo,
                                   needs=self.needs_input_grad)


class Linear(Function):
    """y = x @ w^T + b on ops.matmul; x (..., in), w (out, in), b (out,) or None."""

    def forward(self, x, w, b):
        self.shape = x.shape
        self.x2, self.w = _c(x.reshape(-1, x.shape[-1])), _c(w)
        y = ops.matmul(self.x2, self.w, trans_b=True)
        if b is not None:
            y += b
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, g):
        g2 = _c(g.reshape(-1, g.shape[-1]), self.w.dtype)
        need_x, need_w, need_b = self.needs_input_grad
        dx = ops.matmul(g2, self.w).reshape(self.shape) if need_x else None
        dw = ops.matmul(g2, self.x2, trans_a=True) if need_w else None
        db = g2.sum(axis=0) if need_b else None
        return dx, dw, db


class ConvTranspose2d(Function):
    """ops.conv_transpose2d; inputs (x, weight, bias or None)."""

    def forward(self, x, w, b, **geo):
        self.x, self.w, self.geo = _c(x), _c(w), geo
        return ops.conv_transpose2d(self.x, self.w, None if b is None else _c(b), **geo)

    def backward(self, g):
        return ops.conv_transpose2d_backward(_c(g, self.x.dtype), self.x, self.w, **self.geo,
                                             needs=self.needs_input_grad)


class Pad2d(Function):
    def forward(self, x, pad, mode, value):
        self.shape, self.dtype, self.pad, self.mode = x.shape, x.dtype, pad, mode
        return ops.pad2d(_c(x), pad, mode, value)

    def backward(self, g):
        return ops.pad2d_backward(_c(g, self.dtype), self.shape, self.pad, self.mode)


class MaxPool2d(Function):
    """Outputs (y, indices); indices are not differentiable."""

    def forward(self, x, **geo):
        self.shape, self.dtype, self.geo = x.shape, x.dtype, geo
        y, self.indices = ops.max_pool2d(_c(x), **geo)
        self.mark_non_differentiable(1)
        return y, self.indices

    def backward(self, g, _):
        return ops.max_pool2d_backward(_c(g, self.dtype), self.indices, self.shape, **self.geo)


class AvgPool2d(Function):
    """ops.avg_pool2d; sum pooling is this with divisor_override=1."""

    def forward(self, x, **geo):
        self.shape, self.dtype, self.geo = x.shape, x.dtype, geo
        return ops.avg_pool2d(_c(x), **geo)

    def backward(self, g):
        return ops.avg_pool2d_backward(_c(g, self.dtype), self.shape, **self.geo)


class MaxUnpool2d(Function):
    """Inputs (x, indices); indices get no gradient."""

    def forward(self, x, indices, **geo):
        self.dtype, self.indices = x.dtype, _c(indices)
        return ops.max_unpool2d(_c(x), self.indices, **geo)

    def backward(self, g):
        return ops.max_unpool2d_backward(_c(g, self.dtype), self.indices), None


class Dropout(Function):
    """Inverted dropout with the Philox mask of (seed, offset, element index)."""

    def forward(self, x, p, seed, offset):
        self.p, self.dtype = p, x.dtype
        y, self.mask = ops.dropout(_c(x), p, seed, offset)
        return y

    def backward(self, g):
        return ops.dropout_backward(_c(g, self.dtype), self.mask, self.p)


class PyrDown(Function):
    def forward(self, x, border):
        self.shape, self.dtype = x.shape, x.dtype
        return ops.pyr_down(_c(x), border)

    def backward(self, g):
        return ops.pyr_down_backward(_c(g, self.dtype), self.shape)


class PyrUp(Function):
    def forward(self, x, output_size):
        self.shape, self.dtype = x.shape, x.dtype
        return ops.pyr_up(_c(x), output_size)

    def backward(self, g):
        return ops.pyr_up_backward(_c(g, self.dtype), self.shape)


class WarpAffine(Function):
    """ops.warp_affine. Forward only: functional.warp_affine refuses inputs that need a gradient."""

    def forward(self, x, theta, **kw):
        return ops.warp_affine(_c(x), _c(theta), **kw)


# ------------------------------------------------------------------ activations


def _sigmoid(xp, x):
    """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class ReLU(Function):
    """max(x, 0), NaN propagating as in torch; the gradient at 0 is 0 (ops.relu)."""

    def forward(self, x):
        self.y = ops.relu(_kernel_input(x))
        return _like(self.y, x)

    def backward(self, g):
        return _like(ops.relu_backward(_c(g, self.y.dtype), self.y), g)


class LeakyReLU(Function):
    """x * slope(x): 1 for x > 0, else negative_slope (also the gradient at 0, as in torch)."""

    def forward(self, x, negative_slope):
        self.x, self.slope = _kernel_input(x), negative_slope
        return _like(ops.leaky_relu(self.x, negative_slope), x)

    def backward(self, g):
        return _like(ops.leaky_relu_backward(_c(g, self.x.dtype), self.x, self.slope), g)


class Sigmoid(Function):
    def forward(self, x):
        self.y = _sigmoid(array_module(x), x)
        return self.y

    def backward(self, g):
        return g * self.y * (1 - self.y)


class Tanh(Function):
    def forward(self, x):
        self.y = array_module(x).tanh(x)
        return self.y

    def backward(self, g):
        return g * (1 - self.y * self.y)


class LogSigmoid(Function):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), stable for any x."""

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, g):
        return g * _sigmoid(array_module(g), -self.x)


class Softmax(Function):
    def forward(self, x, dim):
        xp = array_module(x)
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        self.y, self.dim = e / e.sum(axis=dim, keepdims=True), dim
        return self.y

    def backward(self, g):
        y = self.y
        return y * (g - (g * y).sum(axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, dim):
        xp = array_module(x)
        z = x - x.max(axis=dim, keepdims=True)
        self.y, self.dim = z - xp.log(xp.exp(z).sum(axis=dim, keepdims=True)), dim
        return self.y

    def backward(self, g):
        return g - array_module(g).exp(self.y) * g.sum(axis=self.dim, keepdims=True)


# ------------------------------------------------------------------ normalisation


class BatchNorm(Function):
    """Training-mode batch normalisation over every axis except 1 (channels), on ops.batch_norm.

    Inputs (x, weight or None, bias or None). Outputs (y, batch mean, unbiased batch
    variance); the statistics are for the running update and are not differentiable.
    x is normalised with the biased variance, as in PyTorch.
    """

    def forward(self, x, weight, bias, eps):
        self.x, self.dtype = _kernel_input(x), x.dtype
        self.weight = None if weight is None else _c(weight, self.x.dtype)
        bias = None if bias is None else _c(bias, self.x.dtype)
        y, mean, var, self.invstd = ops.batch_norm(self.x, self.weight, bias, eps)
        self.mean = mean
        self.mark_non_differentiable(1, 2)
        return _like(y, x), _like(mean, x), _like(var, x)

    def backward(self, g, _mean, _var):
        grads = ops.batch_norm_backward(_c(g, self.x.dtype), self.x, self.weight, self.mean, self.invstd,
                                        needs=self.needs_input_grad)
        return tuple(None if d is None else d.astype(self.dtype, copy=False) for d in grads)


# ------------------------------------------------------------------ losses


class NLLLoss(Function):
    """Negative log-likelihood of class indices, PyTorch's nll_loss and cross_entropy formula.

    Inputs (logp, target, weight or None): logp (N, C, ...) log-probabilities, target
    (N, ...) integer classes. Per element, with w the class weights (ones by default),
    t its class, v = [t != ignore_index] and eps = label_smoothing:

        loss = v * ((1 - eps) * -w[t] * logp[t] + eps / C * -sum_c w[c] * logp[c])

    "mean" divides the sum by sum(v * w[t]) (NaN when that is 0, as in torch). Only logp
    gets a gradient (torch has none for the class weights either).
    """

    def forward(self, logp, target, weight, ignore_index, reduction, label_smoothing, op="nll_loss"):
        xp = array_module(logp)
        C = logp.shape[1]
        valid = target != ignore_index
        safe = xp.where(valid, target, 0)
        out_of_range = valid & ((target < 0) | (target >= C))
        if out_of_range.any():
            raise ValueError(f"{op}: target values must be in [0, {C}) or ignore_index "
                             f"({ignore_index}), got {int(target[out_of_range][0])}")
        w = xp.ones(C, logp.dtype) if weight is None else weight.astype(logp.dtype, copy=False)
        self.wt = xp.where(valid, w[safe], 0)  # weight of each element's class, 0 if ignored
        self.safe, self.valid, self.w = xp.expand_dims(safe, 1), valid, w
        self.eps, self.reduction, self.shape = label_smoothing, reduction, logp.shape
        picked = xp.where(valid, xp.take_along_axis(logp, self.safe, axis=1)[:, 0], 0)
        loss = -(1 - label_smoothing) * self.wt * picked
        if label_smoothing:
            smooth = -(logp * w.reshape(_channel_shape(logp))).sum(axis=1)
            loss = loss + xp.where(valid, label_smoothing / C * smooth, 0)
        if reduction == "none":
            return loss
        total = loss.sum()
        if reduction == "sum":
            return total
        self.denominator = float(self.wt.sum())
        return (total / self.denominator if self.denominator else xp.full((), xp.nan)).astype(logp.dtype)

    def backward(self, g):
        xp = array_module(g)
        C = self.shape[1]
        if self.reduction == "mean":
            g = g / self.denominator if self.denominator else xp.zeros_like(g)
        coef = xp.expand_dims(xp.broadcast_to(g, self.valid.shape), 1)  # (N, 1, ...)
        cshape = (1, C) + (1,) * (coef.ndim - 2)
        grad = xp.where(xp.arange(C).reshape(cshape) == self.safe,
                        -(1 - self.eps) * xp.expand_dims(self.wt, 1) * coef, 0)
        if self.eps:
            smooth = -self.eps / C * self.w.reshape(cshape)
            grad = grad + smooth * xp.where(xp.expand_dims(self.valid, 1), coef, 0)
        return grad.astype(g.dtype, copy=False), None, None


def _log_clamped(xp, v):
    """log(v) clamped below at -100 (log(0) = -100, without a warning), as torch's BCE does."""
    positive = v > 0
    return xp.where(positive, xp.maximum(xp.log(xp.where(positive, v, 1)), -100), -100).astype(v.dtype)


class BinaryCrossEntropy(Function):
    """Unreduced -(t log x + (1 - t) log(1 - x)), logs clamped at -100 like torch.

    The input gradient is torch's (x - t) / max(x (1 - x), eps) with eps = float32(1e-12)
    (torch's EPSILON is a float); the target gradient is log(1 - x) - log(x), both clamped.
    """

    EPS = float(np.float32(1e-12))

    def forward(self, x, t):
        xp = array_module(x)
        if not bool(((x >= 0) & (x <= 1)).all()):
            raise ValueError("binary_cross_entropy: all elements of input must be in [0, 1]")
        self.x, self.t = x, t
        self.log_x, self.log_1mx = _log_clamped(xp, x), _log_clamped(xp, 1 - x)
        return -(t * self.log_x + (1 - t) * self.log_1mx)

    def backward(self, g):
        xp = array_module(g)
        x, t = self.x, self.t
        gx = g * (x - t) / xp.maximum(x * (1 - x), self.EPS) if self.needs_input_grad[0] else None
        gt = g * (self.log_1mx - self.log_x) if self.needs_input_grad[1] else None
        return gx, gt


# ------------------------------------------------------------------ resampling (interpolate)


def resample_table(in_size, out_size, mode, align_corners, scale_factor, dtype):
    """Source cells and weights along one axis, computed as PyTorch's CPU upsample kernels do.

    Output cell r reads (1 - lam[r]) * x[i0[r]] + lam[r] * x[i1[r]] ("bilinear") or x[i0[r]]
    ("nearest", lam None). As in torch, an axis whose size does not change is copied, nearest
    doubling reads r // 2, other nearest indices are floor(r * scale) in float32
    (``nearest_idx``), and the bilinear source coordinate is computed in dtype's precision
    (``area_pixel_compute_source_index``) and floored in float32.

    Returns:
        (i0, i1, lam) numpy arrays of length out_size.
    """
    dst = np.arange(out_size)
    if out_size == in_size:
        return dst, dst, None
    if mode == "nearest":
        if out_size == 2 * in_size:
            i0 = dst // 2
        else:
            f32 = np.float32
            scale = f32(1.0 / scale_factor) if scale_factor is not None else f32(in_size) / f32(out_size)
            i0 = np.minimum(np.floor(dst.astype(f32) * scale).astype(np.int64), in_size - 1)
        return i0, i0, None
    real = np.dtype(dtype).type
    if align_corners:
        scale = real(in_size - 1) / real(out_size - 1) if out_size > 1 else real(0)
        src = dst.astype(dtype) * scale
    else:
        scale = real(1.0 / scale_factor) if scale_factor is not None else real(in_size) / real(out_size)
        src = np.maximum(scale * (dst.astype(dtype) + real(0.5)) - real(0.5), real(0))
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)
    lam = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    return i0, np.minimum(i0 + 1, in_size - 1), lam


def _resample_axis(x, table, axis):
    xp = array_module(x)
    i0, i1, lam = table
    y = xp.take(x, xp.asarray(i0), axis=axis)
    if lam is None:
        return y
    lam = xp.asarray(lam).reshape((-1,) + (1,) * (x.ndim - 1 - axis))
    return y * (1 - lam) + xp.take(x, xp.asarray(i1), axis=axis) * lam


def _resample_axis_adjoint(g, table, in_size, axis):
    """Transpose of _resample_axis along axis 2 or 3 of an NCHW gradient."""
    xp = array_module(g)
    i0, i1, lam = table
    out_size = len(i0)
    if lam is None and out_size % in_size == 0 and np.array_equal(i0, np.arange(out_size) // (out_size // in_size)):
        # Nearest upsampling by an integer factor: each source cell owns a block of outputs.
        return g.reshape(g.shape[:axis] + (in_size, out_size // in_size) + g.shape[axis + 1:]).sum(axis=axis + 1)
    a = np.zeros((out_size, in_size), dtype=g.dtype)  # the dense (out x in) interpolation matrix
    rows = np.arange(out_size)
    if lam is None:
        a[rows, i0] = 1
    else:
        a[rows, i0] += 1 - lam
        a[rows, i1] += lam
    a = xp.asarray(a)
    return g @ a if axis == 3 else xp.matmul(a.T, g)


class Resample2d(Function):
    """Separable resampling of each plane: along W with table cols, then along H with rows.

    This is the order of PyTorch's bilinear kernel, h0 * (w0 x00 + w1 x01) + h1 * (...).
    """

    def forward(self, x, rows, cols):
        self.rows, self.cols, self.in_hw = rows, cols, x.shape[2:]
        return _resample_axis(_resample_axis(x, cols, 3), rows, 2)

    def backward(self, g):
        gw = _resample_axis_adjoint(g, self.rows, self.in_hw[0], 2)
        return _resample_axis_adjoint(gw, self.cols, self.in_hw[1], 3)

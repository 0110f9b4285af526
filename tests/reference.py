"""Naive float64 numpy references for every striate op, written from the definitions.

These are deliberately plain (loops over output cells, explicit index rules)
so that each can be read against the documented semantics of PyTorch and
OpenCV. They are slow and only meant for the small shapes used by the tests.
Every function takes and returns float64 arrays in NCHW layout.

Conventions:
    pad2d pad          = (left, right, top, bottom), like torch.nn.functional.pad
    conv2d padding     = (top, bottom, left, right), may be asymmetric
    pool / conv pairs  = (along H, along W)
"""
from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------- helpers


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def reflect_index(i: int, n: int) -> int:
    """Reflection without repeating the edge (torch "reflect", OpenCV BORDER_REFLECT_101).

    Folds as often as needed, so any integer is mapped into [0, n).
    """
    if n == 1:
        return 0
    while i < 0 or i >= n:
        if i < 0:
            i = -i
        if i >= n:
            i = 2 * (n - 1) - i
    return i


def _pad_source(i: int, n: int, mode: str):
    """Index of the source cell that padded coordinate i (in the unpadded frame) copies."""
    if 0 <= i < n:
        return i
    if mode == "constant":
        return None
    if mode == "reflect":
        return reflect_index(i, n)
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    if mode == "circular":
        return i % n
    raise ValueError(mode)


# ----------------------------------------------------------------------- pad2d


def pad2d(x, pad, mode="constant", value=0.0):
    """torch.nn.functional.pad for a 4-D input with pad = (left, right, top, bottom)."""
    x = _f64(x)
    left, right, top, bottom = pad
    N, C, H, W = x.shape
    y = np.empty((N, C, H + top + bottom, W + left + right))
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            h = _pad_source(i - top, H, mode)
            w = _pad_source(j - left, W, mode)
            y[:, :, i, j] = value if (h is None or w is None) else x[:, :, h, w]
    return y


# ---------------------------------------------------------------------- conv2d


def conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Cross-correlation y[n, k, oh, ow] = b[k] + sum_{c,a,e} x_pad[n, g*Cg + c,
    oh*sh + a*dh, ow*sw + e*dw] * w[k, c, a, e], with zero padding (top, bottom, left, right)."""
    x, w = _f64(x), _f64(w)
    top, bottom, left, right = padding
    (sh, sw), (dh, dw) = stride, dilation
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    assert Cg * groups == C and K % groups == 0
    Kg = K // groups
    xp = np.zeros((N, C, H + top + bottom, W + left + right))
    xp[:, :, top:top + H, left:left + W] = x
    Ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    Wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((N, K, Ho, Wo))
    for g in range(groups):
        wg = w[g * Kg:(g + 1) * Kg]
        for oh in range(Ho):
            for ow in range(Wo):
                patch = xp[:, g * Cg:(g + 1) * Cg,
                           oh * sh:oh * sh + dh * (kh - 1) + 1:dh,
                           ow * sw:ow * sw + dw * (kw - 1) + 1:dw]
                y[:, g * Kg:(g + 1) * Kg, oh, ow] = np.einsum("ncij,kcij->nk", patch, wg)
    if b is not None:
        y += _f64(b)[None, :, None, None]
    return y


def conv_transpose2d(x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                     groups=1, dilation=(1, 1)):
    """Scatter form: y[n, g*Coutg + co, h*s - p + a*d, w*s - p + e*d] += x[n, ci, h, w] * w[ci, co, a, e]
    for ci in group g; cells outside the output are dropped."""
    x, w = _f64(x), _f64(w)
    N, Cin, H, W = x.shape
    _, Coutg, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    Cing = Cin // groups
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    y = np.zeros((N, Coutg * groups, Ho, Wo))
    for g in range(groups):
        xs = x[:, g * Cing:(g + 1) * Cing]
        ws = w[g * Cing:(g + 1) * Cing]
        for h in range(H):
            for ww in range(W):
                for a in range(kh):
                    for e in range(kw):
                        oh, ow = h * sh - ph + a * dh, ww * sw - pw + e * dw
                        if 0 <= oh < Ho and 0 <= ow < Wo:
                            y[:, g * Coutg:(g + 1) * Coutg, oh, ow] += xs[:, :, h, ww] @ ws[:, :, a, e]
    if b is not None:
        y += _f64(b)[None, :, None, None]
    return y


# --------------------------------------------------------------------- pooling


def pool_output_size(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length (ceil_mode never starts a window in the right padding)."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def max_pool2d(x, kernel, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    """Returns (y, indices). Windows start at o*s - p; cells outside the plane are skipped;
    the first maximum in row-major window order wins; a NaN always wins (so the last NaN)."""
    x = _f64(x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    Ho = pool_output_size(H, kh, sh, ph, dh, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, dw, ceil_mode)
    y = np.empty((N, C, Ho, Wo))
    idx = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    best, best_i = -math.inf, None
                    for a in range(kh):
                        h = oh * sh - ph + a * dh
                        if not 0 <= h < H:
                            continue
                        for e in range(kw):
                            w = ow * sw - pw + e * dw
                            if not 0 <= w < W:
                                continue
                            v = x[n, c, h, w]
                            if best_i is None or v > best or math.isnan(v):
                                best, best_i = v, h * W + w
                    y[n, c, oh, ow] = best
                    idx[n, c, oh, ow] = best_i
    return y, idx


def avg_pool2d(x, kernel, stride, padding=(0, 0), ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """PyTorch's average pooling: the window is first clipped to [-p, H + p) (that size is the
    count_include_pad divisor), then to the plane (that size is the other divisor)."""
    x = _f64(x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho = pool_output_size(H, kh, sh, ph, 1, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, 1, ceil_mode)
    y = np.zeros((N, C, Ho, Wo))
    for oh in range(Ho):
        for ow in range(Wo):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
            pool_size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            if h0 >= h1 or w0 >= w1:
                continue
            total = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3))
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = pool_size
            else:
                divisor = (h1 - h0) * (w1 - w0)
            y[:, :, oh, ow] = total / divisor
    return y


def max_unpool2d(x, indices, output_hw):
    """Zero planes of size output_hw with x written at its flat per-plane indices (in order)."""
    x = _f64(x)
    N, C = x.shape[:2]
    Ho, Wo = output_hw
    y = np.zeros((N, C, Ho * Wo))
    for n in range(N):
        for c in range(C):
            for v, i in zip(x[n, c].ravel(), indices[n, c].ravel()):
                y[n, c, i] = v
    return y.reshape(N, C, Ho, Wo)


# --------------------------------------------------------------------- dropout

_MASK32 = 0xFFFFFFFF


def philox4x32_10(counter, key):
    """Philox4x32-10 (Salmon et al., SC'11) on Python ints, 32-bit arithmetic by masking."""
    c0, c1, c2, c3 = (v & _MASK32 for v in counter)
    k0, k1 = (v & _MASK32 for v in key)
    for _ in range(10):
        prod0 = 0xD2511F53 * c0
        prod1 = 0xCD9E8D57 * c2
        hi0, lo0 = prod0 >> 32, prod0 & _MASK32
        hi1, lo1 = prod1 >> 32, prod1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + 0x9E3779B9) & _MASK32
        k1 = (k1 + 0xBB67AE85) & _MASK32
    return (c0, c1, c2, c3)


def dropout_threshold(p):
    """Keep iff the 32-bit word >= round(p * 2**32)."""
    return min(2**32, int(math.floor(p * 2.0**32 + 0.5)))


def dropout_mask(size, p, seed, offset):
    """uint8 keep mask of `size` elements: element i uses word i % 4 of
    philox(counter=(i//4 low, i//4 high, offset low, offset high), key=(seed low, seed high))."""
    threshold = dropout_threshold(p)
    mask = np.empty(size, dtype=np.uint8)
    for block in range((size + 3) // 4):
        words = philox4x32_10(
            (block & _MASK32, block >> 32, offset & _MASK32, offset >> 32),
            (seed & _MASK32, seed >> 32),
        )
        for u in range(4):
            i = 4 * block + u
            if i < size:
                mask[i] = words[u] >= threshold
    return mask


# --------------------------------------------------------------------- pyramid

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0])


def pyr_down(x):
    """cv2.pyrDown per plane: y[i, j] = sum_{a,e} k[a] k[e] / 256 *
    x[reflect101(2i + a - 2), reflect101(2j + e - 2)], output ((H+1)//2, (W+1)//2)."""
    x = _f64(x)
    H, W = x.shape[2:]
    Ho, Wo = (H + 1) // 2, (W + 1) // 2
    y = np.zeros(x.shape[:2] + (Ho, Wo))
    for a in range(5):
        rows = [reflect_index(2 * i + a - 2, H) for i in range(Ho)]
        for e in range(5):
            cols = [reflect_index(2 * j + e - 2, W) for j in range(Wo)]
            y += _BINOMIAL[a] * _BINOMIAL[e] / 256.0 * x[:, :, rows][:, :, :, cols]
    return y


def pyr_up(x, output_hw=None):
    """cv2.pyrUp per plane. Insert zeros (u[2t, 2s] = x[t, s]) on a 2H x 2W grid, filter it with
    4 * [1 4 6 4 1]^T [1 4 6 4 1] / 256 under reflect101 on that grid. An output of 2n - 1 is the
    crop; an output of 2n + 1 repeats row 2H - 2 (vertically) / column 2W - 1 (horizontally)."""
    x = _f64(x)
    H, W = x.shape[2:]
    Ho, Wo = output_hw if output_hw is not None else (2 * H, 2 * W)
    u = np.zeros(x.shape[:2] + (2 * H, 2 * W))
    u[:, :, ::2, ::2] = x
    full = np.zeros_like(u)
    for a in range(5):
        rows = [reflect_index(i + a - 2, 2 * H) for i in range(2 * H)]
        for e in range(5):
            cols = [reflect_index(j + e - 2, 2 * W) for j in range(2 * W)]
            full += _BINOMIAL[a] * _BINOMIAL[e] / 64.0 * u[:, :, rows][:, :, :, cols]
    rows = [i if i < 2 * H else 2 * H - 2 for i in range(Ho)]
    cols = [j if j < 2 * W else 2 * W - 1 for j in range(Wo)]
    return full[:, :, rows][:, :, :, cols]


# ------------------------------------------------------------------------ warp


def _grid_base(n, align_corners):
    """affine_grid's normalised coordinates of the n pixels along one side."""
    if n == 1:
        return np.zeros(1)
    if align_corners:
        return np.linspace(-1.0, 1.0, n)
    return (2.0 * np.arange(n) + 1.0) / n - 1.0


def _reflect_coord(c, lo, hi):
    """Mirror c into [lo, hi] (reflection at both ends, repeated)."""
    span = hi - lo
    if span <= 0:
        return 0.0
    t = (c - lo) % (2 * span)
    if t > span:
        t = 2 * span - t
    return lo + t


def _source_coord(c, n, padding_mode, align_corners):
    """grid_sample: normalised coordinate -> pixel coordinate, then border / reflection."""
    if align_corners:
        p = (c + 1.0) / 2.0 * (n - 1)
    else:
        p = ((c + 1.0) * n - 1.0) / 2.0
    if padding_mode == "reflection":
        p = _reflect_coord(p, 0.0, n - 1.0) if align_corners else _reflect_coord(p, -0.5, n - 0.5)
    if padding_mode in ("border", "reflection"):
        p = min(max(p, 0.0), n - 1.0)
    return p


def warp_affine(x, theta, output_hw=None, mode="bilinear", padding_mode="zeros",
                align_corners=False):
    """grid_sample(x, affine_grid(theta, (N, C, Ho, Wo), align_corners), mode, padding_mode,
    align_corners): output pixel (i, j) samples x at theta @ (x_j, y_i, 1)."""
    x, theta = _f64(x), _f64(theta)
    N, C, H, W = x.shape
    Ho, Wo = output_hw if output_hw is not None else (H, W)
    ys, xs = _grid_base(Ho, align_corners), _grid_base(Wo, align_corners)
    y = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        t = theta[n]
        for i in range(Ho):
            for j in range(Wo):
                gx = t[0, 0] * xs[j] + t[0, 1] * ys[i] + t[0, 2]
                gy = t[1, 0] * xs[j] + t[1, 1] * ys[i] + t[1, 2]
                px = _source_coord(gx, W, padding_mode, align_corners)
                py = _source_coord(gy, H, padding_mode, align_corners)
                if mode == "nearest":
                    cx, cy = int(np.rint(px)), int(np.rint(py))  # round half to even
                    if 0 <= cx < W and 0 <= cy < H:
                        y[n, :, i, j] = x[n, :, cy, cx]
                    continue
                x0, y0 = math.floor(px), math.floor(py)
                fx, fy = px - x0, py - y0
                for cy, wy in ((y0, 1.0 - fy), (y0 + 1, fy)):
                    for cx, wx in ((x0, 1.0 - fx), (x0 + 1, fx)):
                        if 0 <= cx < W and 0 <= cy < H:
                            y[n, :, i, j] += wy * wx * x[n, :, cy, cx]
    return y


# ------------------------------------------------------------------ batch_norm


def batch_norm(x, weight=None, bias=None, eps=1e-5):
    """Training-mode batch norm from the definition, channel by channel (axis 1).

    Returns (y, mean, unbiased variance, invstd) like ``striate.ops.batch_norm``.
    """
    x = _f64(x)
    C = x.shape[1]
    y = np.empty_like(x)
    mean, var, invstd = np.empty(C), np.empty(C), np.empty(C)
    for c in range(C):
        values = x[:, c].ravel()
        m = math.fsum(values) / values.size
        v = math.fsum((values - m) ** 2) / values.size
        mean[c], var[c], invstd[c] = m, v * values.size / (values.size - 1), 1 / math.sqrt(v + eps)
        w = 1.0 if weight is None else float(weight[c])
        b = 0.0 if bias is None else float(bias[c])
        y[:, c] = (x[:, c] - m) * invstd[c] * w + b
    return y, mean, var, invstd


def batch_norm_backward(dy, x, weight=None, eps=1e-5):
    """(dx, dweight, dbias) of :func:`batch_norm`, written from the chain rule per channel:
    dxhat = dy * w, dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))."""
    dy, x = _f64(dy), _f64(x)
    C = x.shape[1]
    dx, dw, db = np.empty_like(x), np.empty(C), np.empty(C)
    for c in range(C):
        xc, gc = x[:, c], dy[:, c]
        m = xc.mean()
        inv = 1 / math.sqrt(((xc - m) ** 2).mean() + eps)
        xhat = (xc - m) * inv
        w = 1.0 if weight is None else float(weight[c])
        dxhat = gc * w
        dx[:, c] = inv * (dxhat - dxhat.mean() - xhat * (dxhat * xhat).mean())
        dw[c], db[c] = (gc * xhat).sum(), gc.sum()
    return dx, dw, db

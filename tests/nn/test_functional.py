"""striate.nn.functional: a float64 gradcheck for every differentiable function (enumerated from
__all__), parity with torch.nn.functional (forward and gradients, float32 and float64), the
pyramids against OpenCV, dropout's Philox stream, and bad arguments."""
import inspect

import numpy as np
import pytest

import striate as st
import striate.nn.functional as F
import striate.ops as ops
from striate.autograd import gradcheck
from tests.checks import DTYPES, assert_close, tie_free, tol


@pytest.fixture(autouse=True)
def _keep_random_state():
    """Tests that reseed (dropout) leave the global random state as they found it."""
    state = st.get_rng_state()
    yield
    st.set_rng_state(state)


# ---------------------------------------------------------------------------- inputs


def _arr(shape, seed, lo=None, hi=None):
    """float64 normal samples, or uniform in [lo, hi)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) if lo is None else rng.uniform(lo, hi, shape)


def _off_zero(shape, seed, gap=0.1):
    """Normal samples at least `gap` away from 0, so the kinks of relu and |x| stay out of reach."""
    a = _arr(shape, seed)
    return a + np.sign(a) * gap


def _labels(shape, classes, seed, ignore=None):
    """int64 class indices; every third one set to `ignore` when given."""
    t = np.random.default_rng(seed).integers(0, classes, shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t.astype(np.int64)


def _g(shape, seed, lo=None, hi=None):
    """A float64 tensor that requires grad (the inputs gradcheck perturbs)."""
    return st.tensor(_arr(shape, seed, lo, hi), requires_grad=True)


def _k(a):
    """A constant tensor (class weights, targets, running statistics)."""
    return st.tensor(a)


def _seeded(fn, seed=7):
    """fn with the dropout stream reset before each call, so that every call draws the same mask."""
    def call(*args):
        st.manual_seed(seed)
        return fn(*args)
    return call


_POOL_X = tie_free(np.random.default_rng(0), (2, 2, 6, 6))
_UNPOOL_IDX = ops.max_pool2d(_POOL_X, 2)[1]
_LAPLACIAN = [level.numpy() for level in F.laplacian_pyramid(st.tensor(_arr((1, 2, 9, 7), 5)), 3)]

# ---------------------------------------------------------------------------- gradcheck table
# name -> [(case id, fn, inputs)]: gradcheck(fn, inputs) with float64 inputs; fn may return a tuple.

GRADCHECK = {
    "conv2d": [
        ("pad1", lambda x, w, b: F.conv2d(x, w, b, padding=1), (_g((2, 2, 5, 5), 0), _g((3, 2, 3, 3), 1), _g(3, 2))),
        ("stride2_dil2_groups2", lambda x, w: F.conv2d(x, w, stride=2, dilation=2, groups=2, padding=(1, 2)),
         (_g((1, 4, 7, 6), 3), _g((4, 2, 2, 3), 4))),
        ("same_reflect", lambda x, w: F.conv2d(x, w, padding="same", padding_mode="reflect"),
         (_g((1, 2, 5, 4), 5), _g((2, 2, 3, 2), 6))),
        ("circular", lambda x, w: F.conv2d(x, w, padding=1, padding_mode="circular"),
         (_g((1, 1, 4, 4), 7), _g((2, 1, 3, 3), 8))),
    ],
    "conv_transpose2d": [
        ("stride2_outpad", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
         (_g((2, 2, 3, 3), 0), _g((2, 3, 3, 3), 1), _g(3, 2))),
        ("groups_dilation", lambda x, w: F.conv_transpose2d(x, w, groups=2, dilation=2),
         (_g((1, 4, 3, 2), 3), _g((4, 1, 2, 2), 4))),
    ],
    "pad": [(m, lambda x, m=m: F.pad(x, (1, 2, 2, 1), mode=m), (_g((2, 2, 3, 4), 0),))
            for m in ("constant", "reflect", "replicate", "circular")]
    + [("left_right_value", lambda x: F.pad(x, (2, 1), value=1.5), (_g((1, 2, 3, 3), 1),))],
    "max_pool2d": [
        ("k2", lambda x: F.max_pool2d(x, 2), (st.tensor(_POOL_X, requires_grad=True),)),
        ("k3s2p1_ceil", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), (st.tensor(_POOL_X, requires_grad=True),)),
        ("dilation2_indices", lambda x: F.max_pool2d(x, 2, 1, dilation=2, return_indices=True)[0],
         (st.tensor(_POOL_X, requires_grad=True),)),
    ],
    "avg_pool2d": [
        ("k3s2p1_nopad", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
         (_g((2, 2, 6, 5), 0),)),
        ("divisor", lambda x: F.avg_pool2d(x, (2, 3), divisor_override=5), (_g((1, 2, 4, 6), 1),)),
    ],
    "sum_pool2d": [("k3s1p1", lambda x: F.sum_pool2d(x, 3, 1, 1), (_g((1, 2, 5, 4), 0),))],
    "max_unpool2d": [("k2", lambda x: F.max_unpool2d(x, _k(_UNPOOL_IDX), 2), (_g((2, 2, 3, 3), 0),))],
    "dropout": [("p0.4", _seeded(lambda x: F.dropout(x, 0.4)), (_g((3, 4, 5), 0),))],
    "linear": [
        ("bias", F.linear, (_g((3, 4), 0), _g((5, 4), 1), _g(5, 2))),
        ("batched_nobias", F.linear, (_g((2, 3, 4), 3), _g((2, 4), 4))),
    ],
    "relu": [("", F.relu, (st.tensor(_off_zero((3, 7), 0), requires_grad=True),))],
    "leaky_relu": [("0.2", lambda x: F.leaky_relu(x, 0.2), (st.tensor(_off_zero((3, 7), 0), requires_grad=True),))],
    "sigmoid": [("", F.sigmoid, (st.tensor(np.r_[_arr(10, 0), -30.0, 25.0], requires_grad=True),))],
    "tanh": [("", F.tanh, (_g((3, 5), 0),))],
    "logsigmoid": [("", F.logsigmoid, (st.tensor(np.r_[_arr(10, 0), -40.0, 40.0], requires_grad=True),))],
    "softmax": [("dim1", lambda x: F.softmax(x, 1), (_g((3, 4, 2), 0),)),
                ("dim-1_large", lambda x: F.softmax(x * 300, -1), (_g((2, 5), 1),))],
    "log_softmax": [("dim0", lambda x: F.log_softmax(x, 0), (_g((4, 3), 0),)),
                    ("dim1_large", lambda x: F.log_softmax(x * 300, 1), (_g((2, 5, 2), 1),))],
    "batch_norm": [
        ("train_nchw", lambda x, w, b: F.batch_norm(x, _k(np.zeros(3)), _k(np.ones(3)), w, b, training=True),
         (_g((2, 3, 3, 2), 0), _g(3, 1), _g(3, 2))),
        ("train_nc_plain", lambda x: F.batch_norm(x, None, None, training=True), (_g((5, 3), 3),)),
        ("eval", lambda x, w, b: F.batch_norm(x, _k(_arr(3, 4)), _k(_arr(3, 5, 0.5, 2)), w, b),
         (_g((2, 3, 2, 2), 6), _g(3, 7), _g(3, 8))),
    ],
    "cross_entropy": [
        ("mean", lambda x: F.cross_entropy(x, _k(_labels(4, 5, 0))), (_g((4, 5), 0),)),
        ("weight_ignore_smooth",
         lambda x: F.cross_entropy(x, _k(_labels(6, 4, 1, ignore=2)), _k(_arr(4, 2, 0.5, 2)), ignore_index=2,
                                   label_smoothing=0.2), (_g((6, 4), 3),)),
        ("pixels_none", lambda x: F.cross_entropy(x, _k(_labels((2, 3, 2), 3, 4, ignore=-100)), reduction="none",
                                                  label_smoothing=0.1), (_g((2, 3, 3, 2), 5),)),
        ("soft_targets", lambda x, t: F.cross_entropy(x, t, _k(_arr(4, 6, 0.5, 2)), label_smoothing=0.3,
                                                      reduction="sum"), (_g((3, 4), 7), _g((3, 4), 8, 0, 1))),
    ],
    "nll_loss": [
        ("sum_weight", lambda x: F.nll_loss(x, _k(_labels(5, 4, 0, ignore=1)), _k(_arr(4, 1, 0.5, 2)),
                                            ignore_index=1, reduction="sum"), (_g((5, 4), 2),)),
        ("pixels_mean", lambda x: F.nll_loss(x, _k(_labels((2, 2, 3), 3, 3))), (_g((2, 3, 2, 3), 4),)),
    ],
    "binary_cross_entropy": [
        ("weight", F.binary_cross_entropy, (_g((3, 4), 0, 0.05, 0.95), _g((3, 4), 1, 0, 1), _g(4, 2))),
    ],
    "binary_cross_entropy_with_logits": [
        ("pos_weight_weight",
         lambda x, t, w, pw: F.binary_cross_entropy_with_logits(x, t, w, pos_weight=pw, reduction="sum"),
         (st.tensor(np.r_[_arr(6, 0), -35.0, 30.0].reshape(2, 4), requires_grad=True), _g((2, 4), 1, 0, 1),
          _g(4, 2), _g(4, 3, 0.5, 3))),
    ],
    "dice_loss": [
        ("labels", lambda x: F.dice_loss(x, _k(_labels((2, 3, 3), 3, 0))), (_g((2, 3, 3, 3), 0),)),
        ("probabilities", lambda x, t: F.dice_loss(x, t, smooth=0.5, logits=False),
         (_g((1, 2, 3, 2), 1, 0.05, 0.95), _g((1, 2, 3, 2), 2, 0, 1))),
    ],
    "mse_loss": [("mean", F.mse_loss, (_g((3, 4), 0), _g((3, 4), 1))),
                 ("weight", lambda x, t, w: F.mse_loss(x, t, weight=w),
                  (_g((2, 3), 2), _g((2, 3), 3), _g((2, 3), 4, 0.5, 2)))],
    "l1_loss": [("sum", lambda x, t: F.l1_loss(x, t, reduction="sum"),
                 (st.tensor(_off_zero((3, 4), 0), requires_grad=True), _g((3, 4), 1, -0.05, 0.05)))],
    "kl_normal": [(r, lambda m, v, r=r: F.kl_normal(m, v, reduction=r), (_g((3, 4), 0), _g((3, 4), 1)))
                  for r in ("batchmean", "none")],
    "interpolate": [
        ("nearest_size", lambda x: F.interpolate(x, size=(7, 5)), (_g((1, 2, 4, 3), 0),)),
        ("nearest_x2", lambda x: F.interpolate(x, scale_factor=2), (_g((1, 2, 3, 2), 1),)),
        ("bilinear", lambda x: F.interpolate(x, size=(5, 7), mode="bilinear"), (_g((1, 2, 3, 4), 2),)),
        ("bilinear_corners_down",
         lambda x: F.interpolate(x, scale_factor=(0.6, 1.5), mode="bilinear", align_corners=True),
         (_g((2, 1, 5, 3), 3),)),
    ],
    "pyr_down": [("odd", F.pyr_down, (_g((1, 2, 7, 6), 0),))],
    "pyr_up": [("odd_out", lambda x: F.pyr_up(x, (7, 6)), (_g((1, 2, 4, 3), 0),))],
    "gaussian_pyramid": [("3", lambda x: tuple(F.gaussian_pyramid(x, 3)), (_g((1, 1, 9, 7), 0),))],
    "laplacian_pyramid": [("3", lambda x: tuple(F.laplacian_pyramid(x, 3)), (_g((1, 1, 9, 7), 0),))],
    "laplacian_reconstruct": [("3", lambda *levels: F.laplacian_reconstruct(list(levels)),
                               tuple(st.tensor(level, requires_grad=True) for level in _LAPLACIAN))],
}

# No gradient by design: warp_affine is an augmentation op (given tensors that need a gradient it raises).
NON_DIFFERENTIABLE = {"warp_affine"}


def test_every_public_function_has_a_gradcheck():
    public = {n for n, v in vars(F).items()
              if inspect.isfunction(v) and v.__module__ in (F.__name__, "striate.nn._resampling")
              and not n.startswith("_")}
    assert public == set(F.__all__), "striate.nn.functional.__all__ must list every public function"
    missing = set(F.__all__) - set(GRADCHECK) - NON_DIFFERENTIABLE
    assert not missing, f"functions without a gradcheck case: {sorted(missing)}"
    assert not set(GRADCHECK) - set(F.__all__) and not set(GRADCHECK) & NON_DIFFERENTIABLE
    assert all(GRADCHECK.values())


@pytest.mark.parametrize("fn,inputs", [pytest.param(fn, inputs, id=f"{name}-{cid}" if cid else name)
                                       for name, cases in GRADCHECK.items() for cid, fn, inputs in cases])
def test_gradcheck(fn, inputs):
    assert gradcheck(fn, inputs)


def test_every_name_of_the_api_contract_is_provided():
    """API.md section 3."""
    names = """conv2d conv_transpose2d pad max_pool2d avg_pool2d max_unpool2d dropout linear relu leaky_relu
        sigmoid tanh softmax log_softmax batch_norm cross_entropy nll_loss binary_cross_entropy
        binary_cross_entropy_with_logits mse_loss l1_loss interpolate sum_pool2d pyr_down pyr_up
        gaussian_pyramid laplacian_pyramid laplacian_reconstruct warp_affine kl_normal""".split()
    assert not set(names) - set(F.__all__)


def test_functional_alias():
    import striate.functional as alias

    assert alias.__all__ == F.__all__
    assert all(getattr(alias, n) is getattr(F, n) for n in F.__all__)


# ---------------------------------------------------------------------------- PyTorch parity


class Const:
    """A float input that gets no gradient (class weights, BCE weights, pos_weight)."""

    def __init__(self, a):
        self.a = np.asarray(a)


def _wrap(a, dtype, make):
    if isinstance(a, Const):
        return make(a.a.astype(dtype), False)
    a = np.asarray(a)
    return make(a.astype(dtype), True) if a.dtype.kind == "f" else make(a, False)


def assert_parity(torch, call, inputs, dtype, torch_call=None, scale=10):
    """call(F, *inputs) with striate's and (torch_call or call)(F, ...) with torch's functional
    agree: every output (values and dtype), and the gradient of every float input for random
    output weights."""
    import torch.nn.functional as TF

    xs = [_wrap(a, dtype, lambda v, g: st.tensor(v, requires_grad=g)) for a in inputs]
    ts = [_wrap(a, dtype, lambda v, g: torch.tensor(v, requires_grad=g)) for a in inputs]
    outs, touts = call(F, *xs), (torch_call or call)(TF, *ts)
    outs, touts = (outs, touts) if isinstance(outs, tuple) else ((outs,), (touts,))
    atol, rtol = tol(dtype, scale)
    rng = np.random.default_rng(0)
    total = ttotal = 0
    for i, (o, to) in enumerate(zip(outs, touts)):
        expected = to.detach().numpy()
        assert o.dtype == expected.dtype, f"output {i}: dtype {o.dtype} != {expected.dtype}"
        assert_close(o.numpy(), expected, atol, rtol, f"output {i}")
        if to.requires_grad:
            g = rng.standard_normal(to.shape).astype(dtype)
            total = total + (o * st.tensor(g)).sum()
            ttotal = ttotal + (to * torch.tensor(g)).sum()
    total.backward()
    ttotal.backward()
    for i, (x, tx) in enumerate(zip(xs, ts)):
        if tx.requires_grad:
            assert x.grad is not None, f"input {i} got no gradient"
            assert x.grad.dtype == x.dtype
            assert_close(x.grad.numpy(), tx.grad.numpy(), atol, rtol, f"grad of input {i}")


def _kl_torch(m, v):
    return (-0.5 * (1 + v - m * m - v.exp())).flatten(1).sum(1).mean()


# (id, call(F, *inputs), inputs, torch_call or None when call works with torch's F too)
PARITY = [
    ("conv2d", lambda F, x, w, b: F.conv2d(x, w, b, 2, 1), [_arr((2, 4, 7, 7), 0), _arr((6, 4, 3, 3), 1), _arr(6, 2)],
     None),
    ("conv2d_groups_dil_same", lambda F, x, w: F.conv2d(x, w, None, 1, "same", 2, 2),
     [_arr((2, 4, 6, 7), 3), _arr((4, 2, 3, 2), 4)], None),
    ("conv2d_reflect", lambda F, x, w, b: F.conv2d(x, w, b, padding=(1, 2), padding_mode="reflect"),
     [_arr((1, 3, 5, 6), 5), _arr((2, 3, 3, 3), 6), _arr(2, 7)],
     lambda F, x, w, b: F.conv2d(F.pad(x, (2, 2, 1, 1), mode="reflect"), w, b)),
    ("conv_transpose2d", lambda F, x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 2, 1),
     [_arr((2, 4, 4, 3), 0), _arr((4, 3, 3, 3), 1), _arr(6, 2)], None),
    ("conv_transpose2d_dil", lambda F, x, w: F.conv_transpose2d(x, w, dilation=2, stride=(1, 2)),
     [_arr((1, 2, 3, 4), 3), _arr((2, 3, 2, 3), 4)], None),
] + [
    (f"pad_{m}", lambda F, x, m=m: F.pad(x, (2, 1, 1, 2), mode=m), [_arr((2, 3, 4, 5), 0)], None)
    for m in ("constant", "reflect", "replicate", "circular")
] + [
    ("pad_value", lambda F, x: F.pad(x, (1, 3), value=-2.0), [_arr((1, 2, 3, 3), 1)], None),
    ("max_pool2d_indices", lambda F, x: F.max_pool2d(x, 3, 2, 1, return_indices=True), [_POOL_X], None),
    ("max_pool2d_ceil_dil", lambda F, x: F.max_pool2d(x, 2, (1, 2), 1, 2, True), [_POOL_X], None),
    ("avg_pool2d", lambda F, x: F.avg_pool2d(x, 3, 2, 1, True, False), [_arr((2, 3, 7, 6), 0)], None),
    ("avg_pool2d_divisor", lambda F, x: F.avg_pool2d(x, (2, 3), None, (1, 1), divisor_override=4),
     [_arr((1, 2, 5, 7), 1)], None),
    ("sum_pool2d", lambda F, x: F.sum_pool2d(x, 3, 2, 1), [_arr((2, 2, 7, 6), 2)],
     lambda F, x: F.avg_pool2d(x, 3, 2, 1, divisor_override=1)),
    ("max_unpool2d", lambda F, x, i: F.max_unpool2d(x, i, 2, output_size=(6, 6)), [_arr((2, 2, 3, 3), 3), _UNPOOL_IDX],
     None),
    ("linear", lambda F, x, w, b: F.linear(x, w, b), [_arr((2, 3, 4), 0), _arr((5, 4), 1), _arr(5, 2)], None),
    ("linear_nobias", lambda F, x, w: F.linear(x, w), [_arr((3, 4), 3), _arr((2, 4), 4)], None),
    ("relu", lambda F, x: F.relu(x), [np.r_[_arr(20, 0), 0.0]], None),
    ("leaky_relu", lambda F, x: F.leaky_relu(x, 0.2), [np.r_[_arr(20, 0), 0.0]], None),
    ("sigmoid", lambda F, x: F.sigmoid(x), [np.r_[_arr(20, 0), -90.0, 90.0, 0.0]], None),
    ("tanh", lambda F, x: F.tanh(x), [np.r_[_arr(20, 0), -30.0, 30.0]], None),
    ("logsigmoid", lambda F, x: F.logsigmoid(x), [np.r_[_arr(20, 0), -90.0, 90.0]], None),
    ("softmax", lambda F, x: F.softmax(x, 1), [_arr((3, 5, 2), 0) * 30], None),
    ("softmax_last", lambda F, x: F.softmax(x, dim=-1), [_arr((2, 3, 4), 1)], None),
    ("log_softmax", lambda F, x: F.log_softmax(x, 1), [_arr((3, 5, 2), 2) * 30], None),
    ("log_softmax_dim0", lambda F, x: F.log_softmax(x, dim=0), [_arr((4, 3), 3)], None),
] + [
    (f"cross_entropy_{r}", lambda F, x, t, r=r: F.cross_entropy(x, t, reduction=r), [_arr((5, 4), 0), _labels(5, 4, 1)],
     None)
    for r in ("mean", "sum", "none")
] + [
    ("cross_entropy_weight_ignore", lambda F, x, t, w: F.cross_entropy(x, t, w, ignore_index=1),
     [_arr((6, 4), 2), _labels(6, 4, 3, ignore=1), Const(_arr(4, 4, 0.5, 2))], None),
    ("cross_entropy_smooth_weight_ignore", lambda F, x, t, w: F.cross_entropy(x, t, w, label_smoothing=0.15),
     [_arr((7, 3), 5), _labels(7, 3, 6, ignore=-100), Const(_arr(3, 7, 0.5, 2))], None),
    ("cross_entropy_pixels", lambda F, x, t, w: F.cross_entropy(x, t, w, ignore_index=0, label_smoothing=0.1),
     [_arr((2, 4, 3, 5), 8), _labels((2, 3, 5), 4, 9), Const(_arr(4, 10, 0.5, 2))], None),
    ("cross_entropy_pixels_none", lambda F, x, t: F.cross_entropy(x, t, reduction="none", label_smoothing=0.2),
     [_arr((2, 3, 2, 2), 11), _labels((2, 2, 2), 3, 12, ignore=-100)], None),
    ("cross_entropy_soft", lambda F, x, t, w: F.cross_entropy(x, t, w, label_smoothing=0.2),
     [_arr((4, 3, 2), 13), _arr((4, 3, 2), 14, 0, 1), Const(_arr(3, 15, 0.5, 2))], None),
    ("cross_entropy_unbatched", lambda F, x, t: F.cross_entropy(x, t, reduction="none"), [_arr(5, 16), np.array(3)],
     None),
    ("nll_loss_weight_ignore", lambda F, x, t, w: F.nll_loss(x, t, w, ignore_index=2, reduction="sum"),
     [_arr((6, 4), 0), _labels(6, 4, 1, ignore=2), Const(_arr(4, 2, 0.5, 2))], None),
    ("nll_loss_pixels", lambda F, x, t, w: F.nll_loss(x, t, w),
     [_arr((2, 3, 2, 4), 3), _labels((2, 2, 4), 3, 4), Const(_arr(3, 5, 0.5, 2))], None),
] + [
    (f"binary_cross_entropy_{r}", lambda F, x, t, w, r=r: F.binary_cross_entropy(x, t, w, reduction=r),
     [np.r_[_arr(10, 0, 0.01, 0.99), 0.0, 1.0].reshape(3, 4), _arr((3, 4), 1, 0, 1), Const(_arr(4, 2))], None)
    for r in ("mean", "sum", "none")
] + [
    (f"bce_with_logits_{r}",
     lambda F, x, t, w, pw, r=r: F.binary_cross_entropy_with_logits(x, t, w, reduction=r, pos_weight=pw),
     [np.r_[_arr(10, 0) * 3, -60.0, 60.0].reshape(3, 4), _arr((3, 4), 1, 0, 1), Const(_arr((3, 1), 2)),
      Const(_arr(4, 3, 0.5, 3))], None)
    for r in ("mean", "sum", "none")
] + [
    ("bce_with_logits_plain", lambda F, x, t: F.binary_cross_entropy_with_logits(x, t),
     [_arr(5, 4) * 5, _arr(5, 5, 0, 1)], None),
] + [
    (f"{name}_{r}", lambda F, x, t, name=name, r=r: getattr(F, name)(x, t, reduction=r),
     [_arr((3, 4), 0), _arr((3, 4), 1)], None)
    for name in ("mse_loss", "l1_loss") for r in ("mean", "sum", "none")
] + [
    (f"{name}_weight", lambda F, x, t, w, name=name: getattr(F, name)(x, t, weight=w),
     [_arr((3, 4), 2), _arr((3, 4), 3), _arr((3, 4), 4, 0.1, 1)], None)
    for name in ("mse_loss", "l1_loss")
] + [
    ("kl_normal", lambda F, m, v: F.kl_normal(m, v), [_arr((4, 3, 2), 0), _arr((4, 3, 2), 1)],
     lambda F, m, v: _kl_torch(m, v)),
    ("kl_normal_mean", lambda F, m, v: F.kl_normal(m, v, reduction="mean"), [_arr((4, 3), 2), _arr((4, 3), 3)],
     lambda F, m, v: (-0.5 * (1 + v - m * m - v.exp())).mean()),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("call,inputs,torch_call", [pytest.param(c, i, tc, id=n) for n, c, i, tc in PARITY])
def test_matches_torch(torch, call, inputs, torch_call, dtype):
    assert_parity(torch, call, inputs, dtype, torch_call)


INTERPOLATE = [
    (dict(size=(7, 9)), "nearest"), (dict(size=(3, 2)), "nearest"), (dict(size=5), "nearest"),
    (dict(scale_factor=2), "nearest"), (dict(scale_factor=(1.7, 0.6)), "nearest"),
    (dict(scale_factor=2.5, recompute_scale_factor=True), "nearest"),
    (dict(scale_factor=(1.1, 2.05)), "nearest"),  # torch copies an unchanged axis and doubles by r // 2
] + [(dict(kw, align_corners=ac), "bilinear") for ac in (False, True)
     for kw in (dict(size=(7, 9)), dict(size=(3, 2)), dict(size=(1, 1)), dict(scale_factor=2),
                dict(scale_factor=(1.7, 0.6)), dict(scale_factor=1.3, recompute_scale_factor=True),
                dict(scale_factor=(1.1, 2.05)))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw,mode", INTERPOLATE, ids=[f"{m}-{kw}".replace(" ", "") for kw, m in INTERPOLATE])
def test_interpolate_matches_torch(torch, kw, mode, dtype):
    assert_parity(torch, lambda F, x: F.interpolate(x, mode=mode, **kw), [_arr((2, 3, 5, 6), 0)], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 2)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_torch(torch, shape, affine, dtype):
    """Two training steps (batch statistics; running update with the unbiased variance), then eval."""
    C = shape[1]
    initial = (_arr(C, 1), _arr(C, 2, 0.5, 2))
    stats = [st.tensor(a.astype(dtype)) for a in initial]
    tstats = [torch.tensor(a.astype(dtype)) for a in initial]
    params = [_arr(C, 3), _arr(C, 4)] if affine else []
    for step, training in enumerate((True, True, False)):
        def call(lib, x, *p):
            return lib.batch_norm(x, *(stats if lib is F else tstats), *p, training=training, momentum=0.3, eps=1e-3)
        assert_parity(torch, call, [_arr(shape, 10 + step) * 2 + 1] + params, dtype)
        for s, ts in zip(stats, tstats):
            assert_close(s.numpy(), ts.numpy(), *tol(dtype, 10), "running statistics")
    assert not np.allclose(stats[0].numpy(), initial[0])  # they were updated


def test_batch_norm_training_without_running_stats(torch):
    x = _arr((5, 2), 0)
    y = F.batch_norm(st.tensor(x), None, None, training=True)
    assert_close(y.numpy(), torch.nn.functional.batch_norm(torch.tensor(x), None, None, training=True).numpy(),
                 *tol(np.float64))


def test_mean_loss_with_every_target_ignored_is_nan_with_zero_gradient(torch):
    x = st.tensor(_arr((3, 4), 0), requires_grad=True)
    tx = torch.tensor(x.numpy(), requires_grad=True)
    target = np.full(3, 2)
    loss = F.cross_entropy(x, st.tensor(target), ignore_index=2)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(target), ignore_index=2)
    assert np.isnan(loss.item()) and np.isnan(tloss.item())
    loss.backward()
    tloss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_kernel_backed_functions_accept_strided_inputs():
    base = _arr((2, 3, 6, 5), 0)
    strided = st.from_numpy(base.transpose(0, 1, 3, 2))  # a non-contiguous view
    contiguous = st.tensor(np.ascontiguousarray(base.transpose(0, 1, 3, 2)))
    w = st.tensor(_arr((4, 3, 3, 3), 1))
    for fn in (lambda x: F.conv2d(x, w), lambda x: F.max_pool2d(x, 2), lambda x: F.avg_pool2d(x, 3),
               F.pyr_down, lambda x: F.pad(x, (1, 1, 1, 1), "reflect"), lambda x: F.interpolate(x, size=(3, 4))):
        np.testing.assert_array_equal(fn(strided).numpy(), fn(contiguous).numpy())


def test_regression_losses_warn_when_shapes_broadcast():
    with pytest.warns(UserWarning, match="broadcast"):
        loss = F.mse_loss(st.tensor(_arr((3, 1), 0)), st.tensor(_arr(3, 1)), reduction="none")
    assert loss.shape == (3, 3)


def test_legacy_size_average_and_reduce_map_to_reduction():
    x, t = st.tensor(_arr((3, 4), 0)), st.tensor(_arr((3, 4), 1))
    with pytest.warns(DeprecationWarning, match="reduction='sum'"):
        legacy = F.mse_loss(x, t, size_average=False)
    assert legacy.item() == F.mse_loss(x, t, reduction="sum").item()
    with pytest.warns(DeprecationWarning, match="reduction='none'"):
        assert F.l1_loss(x, t, reduce=False).shape == (3, 4)


# ---------------------------------------------------------------------------- dropout


def test_dropout_uses_the_philox_stream_and_its_gradient_is_the_mask():
    x = st.tensor(_arr((4, 5, 6), 0), requires_grad=True)
    st.manual_seed(123)
    y = F.dropout(x, 0.3)
    expected, mask = ops.dropout(x.numpy(), 0.3, 123, 0)  # the first call after manual_seed: offset 0
    np.testing.assert_array_equal(y.numpy(), expected)
    y.backward(st.ones(*x.shape, dtype="float64"))
    assert_close(x.grad.numpy(), mask / 0.7, *tol(np.float64))
    np.testing.assert_array_equal(F.dropout(x, 0.3).numpy(), ops.dropout(x.numpy(), 0.3, 123, 1)[0])
    st.manual_seed(123)
    np.testing.assert_array_equal(F.dropout(x, 0.3).numpy(), y.numpy())


def test_dropout_eval_and_edge_probabilities():
    x = st.tensor(_arr((3, 4), 0), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros((3, 4)))


# ---------------------------------------------------------------------------- pyramids


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw,levels", [((16, 16), 4), ((17, 23), 4), ((9, 5), 3), ((5, 7), 1), ((3, 2), 5)],
                         ids=str)
def test_laplacian_pyramid_reconstructs_exactly(hw, levels, dtype):
    x = st.tensor(_arr((2, 3) + hw, 0).astype(dtype))
    gaussian = F.gaussian_pyramid(x, levels)
    laplacian = F.laplacian_pyramid(x, levels)
    assert len(gaussian) == len(laplacian) == levels
    assert gaussian[0] is x
    for k in range(1, levels):
        assert gaussian[k].shape[2:] == tuple((n + 1) // 2 for n in gaussian[k - 1].shape[2:])
        assert laplacian[k - 1].shape == gaussian[k - 1].shape
    np.testing.assert_array_equal(laplacian[-1].numpy(), gaussian[-1].numpy())
    assert_close(F.laplacian_reconstruct(laplacian).numpy(), x.numpy(), *tol(dtype, 10))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", [(32, 32), (29, 21)], ids=str)
def test_gaussian_pyramid_matches_opencv(cv2, hw, dtype):
    x = _arr((1, 2) + hw, 1).astype(dtype)
    pyramid = F.gaussian_pyramid(st.tensor(x), 4)
    for c in range(2):
        level = x[0, c]
        for k in range(1, 4):
            level = cv2.pyrDown(level)
            assert_close(pyramid[k].numpy()[0, c], level, *tol(dtype, 10), f"level {k}")


# ---------------------------------------------------------------------------- warp_affine


def test_warp_affine_matches_torch_and_has_no_gradient(torch):
    x = _arr((2, 3, 5, 6), 0)
    theta = np.array([[[0.9, -0.2, 0.1], [0.3, 1.1, -0.2]], [[1.0, 0.0, 0.25], [0.0, -1.0, 0.0]]])
    for mode, padding_mode, corners in (("bilinear", "zeros", False), ("nearest", "border", True),
                                        ("bilinear", "reflection", True)):
        y = F.warp_affine(st.tensor(x), st.tensor(theta), (4, 7), mode, padding_mode, corners)
        grid = torch.nn.functional.affine_grid(torch.tensor(theta), (2, 3, 4, 7), align_corners=corners)
        expected = torch.nn.functional.grid_sample(torch.tensor(x), grid, mode, padding_mode, corners)
        assert_close(y.numpy(), expected.numpy(), *tol(np.float64, 1e3))
        assert not y.requires_grad
    needs_grad = st.tensor(x, requires_grad=True)
    with pytest.raises(RuntimeError, match="no gradient"):
        F.warp_affine(needs_grad, st.tensor(theta))
    with st.no_grad():
        assert not F.warp_affine(needs_grad, st.tensor(theta)).requires_grad
    assert not F.warp_affine(needs_grad.detach(), st.tensor(theta)).requires_grad


# ---------------------------------------------------------------------------- bad arguments

_X = st.tensor(_arr((2, 3, 4, 4), 0))
_W = st.tensor(_arr((2, 3, 3, 3), 1))
_Z = st.tensor(_arr((4, 3), 2))  # logits
_Y = st.tensor(_labels(4, 3, 3))  # labels
_THETA = st.tensor(np.zeros((2, 2, 3)))

BAD_CALLS = [
    ("conv2d numpy input", lambda: F.conv2d(_X.numpy(), _W), TypeError, "input must be a striate.Tensor"),
    ("conv2d 3-D input", lambda: F.conv2d(_X[0], _W), ValueError, "input must be 4-D"),
    ("conv2d int weight", lambda: F.conv2d(_X, st.tensor(np.ones((2, 3, 3, 3), np.int64))), TypeError, "weight"),
    ("conv2d padding", lambda: F.conv2d(_X, _W, padding="full"), ValueError, "padding"),
    ("conv2d padding_mode", lambda: F.conv2d(_X, _W, padding_mode="wrap"), ValueError, "padding_mode"),
    ("conv2d channels", lambda: F.conv2d(_X, st.tensor(_arr((2, 2, 3, 3), 0))), ValueError, "weight.shape[1]"),
    ("conv2d dtypes", lambda: F.conv2d(_X, _W.float()), TypeError, "weight"),
    ("pad length 3", lambda: F.pad(_X, (1, 1, 1)), ValueError, "pad must be"),
    ("pad 2 reflect", lambda: F.pad(_X, (1, 1), mode="reflect"), ValueError, "pad must be"),
    ("pad value with reflect", lambda: F.pad(_X, (1, 1, 1, 1), mode="reflect", value=1.0), ValueError, "value"),
    ("pad reflect too wide", lambda: F.pad(_X, (4, 0, 0, 0), mode="reflect"), ValueError, "reflect padding"),
    ("pad unknown mode", lambda: F.pad(_X, (1, 1, 1, 1), mode="wrap"), ValueError, "mode"),
    ("max_pool2d kernel 0", lambda: F.max_pool2d(_X, 0), ValueError, "kernel_size"),
    ("max_pool2d big padding", lambda: F.max_pool2d(_X, 2, padding=2), ValueError, "padding"),
    ("max_pool2d return_indices", lambda: F.max_pool2d(_X, 2, return_indices=1), TypeError, "return_indices"),
    ("avg_pool2d float kernel", lambda: F.avg_pool2d(_X, 2.5), TypeError, "kernel_size"),
    ("max_unpool2d float indices", lambda: F.max_unpool2d(_X, _X, 2), TypeError, "indices"),
    ("dropout p > 1", lambda: F.dropout(_X, 1.5), ValueError, "between 0 and 1"),
    ("dropout p < 0", lambda: F.dropout(_X, -0.1), ValueError, "between 0 and 1"),
    ("dropout p str", lambda: F.dropout(_X, "0.5"), TypeError, "p must be a number"),
    ("dropout training", lambda: F.dropout(_X, 0.5, training="yes"), TypeError, "training"),
    ("linear features", lambda: F.linear(_Z, st.tensor(_arr((2, 4), 0))), ValueError, "weight.shape[1]"),
    ("linear 1-D weight", lambda: F.linear(_Z, st.tensor(_arr(3, 0))), ValueError, "weight must be 2-D"),
    ("leaky_relu slope", lambda: F.leaky_relu(_X, "0.1"), TypeError, "negative_slope"),
    ("relu int", lambda: F.relu(st.tensor(np.arange(3))), TypeError, "floating-point"),
    ("softmax no dim", lambda: F.softmax(_X), TypeError, "dim must be given"),
    ("log_softmax dim range", lambda: F.log_softmax(_X, 4), ValueError, "dim (4) is out of range"),
    ("batch_norm eval without stats", lambda: F.batch_norm(_X, None, None), ValueError, "required when training"),
    ("batch_norm stat shape", lambda: F.batch_norm(_X, st.zeros(2), st.ones(2)), ValueError,
     "running_mean must have shape (3,)"),
    ("batch_norm one stat", lambda: F.batch_norm(_X, st.zeros(3), None, training=True), ValueError, "both"),
    ("batch_norm one value per channel", lambda: F.batch_norm(st.tensor(_arr((1, 3), 0)), None, None, training=True),
     ValueError, "more than 1 value"),
    ("cross_entropy float labels", lambda: F.cross_entropy(_Z, st.tensor(np.ones(4))), ValueError,
     "class-probability target"),
    ("cross_entropy target shape", lambda: F.cross_entropy(_Z, st.tensor(np.zeros(3, np.int64))), ValueError,
     "target must have shape (4,)"),
    ("cross_entropy label too big", lambda: F.cross_entropy(_Z, st.tensor(np.array([0, 1, 3, 0]))), ValueError,
     "cross_entropy: target values must be in [0, 3)"),
    ("nll_loss negative label", lambda: F.nll_loss(_Z, st.tensor(np.array([0, -1, 2, 0]))), ValueError, "got -1"),
    ("cross_entropy reduction", lambda: F.cross_entropy(_Z, _Y, reduction="avg"), ValueError, "reduction"),
    ("cross_entropy smoothing", lambda: F.cross_entropy(_Z, _Y, label_smoothing=1.5), ValueError, "label_smoothing"),
    ("cross_entropy weight shape", lambda: F.cross_entropy(_Z, _Y, st.ones(4)), ValueError,
     "weight must have shape (3,)"),
    ("cross_entropy soft ignore_index", lambda: F.cross_entropy(_Z, _Z, ignore_index=0), ValueError, "ignore_index"),
    ("nll_loss float ignore_index", lambda: F.nll_loss(_Z, _Y, ignore_index=1.0), TypeError, "ignore_index"),
    ("bce outside [0, 1]", lambda: F.binary_cross_entropy(_Z, _Z), ValueError, "in [0, 1]"),
    ("bce target shape", lambda: F.binary_cross_entropy(F.sigmoid(_Z), st.ones(4)), ValueError, "target must have"),
    ("bce logits int target", lambda: F.binary_cross_entropy_with_logits(_Z, _Y), TypeError, "target"),
    ("mse_loss weight shape", lambda: F.mse_loss(_Z, _Z, weight=st.ones(3)), ValueError, "weight must have"),
    ("l1_loss reduction", lambda: F.l1_loss(_Z, _Z, reduction=None), ValueError, "reduction"),
    ("kl_normal shapes", lambda: F.kl_normal(_Z, _X), ValueError, "same (N, ...) shape"),
    ("kl_normal reduction", lambda: F.kl_normal(_Z, _Z, reduction="batch"), ValueError, "reduction"),
    ("interpolate both", lambda: F.interpolate(_X, size=3, scale_factor=2), ValueError, "exactly one"),
    ("interpolate neither", lambda: F.interpolate(_X), ValueError, "exactly one"),
    ("interpolate mode", lambda: F.interpolate(_X, size=3, mode="bicubic"), ValueError, "mode"),
    ("interpolate corners nearest", lambda: F.interpolate(_X, size=3, align_corners=True), ValueError,
     "align_corners"),
    ("interpolate size 0", lambda: F.interpolate(_X, size=(0, 3)), ValueError, "size"),
    ("interpolate float size", lambda: F.interpolate(_X, size=2.5), TypeError, "size"),
    ("interpolate negative scale", lambda: F.interpolate(_X, scale_factor=-2), ValueError, "positive"),
    ("interpolate tiny scale", lambda: F.interpolate(_X, scale_factor=0.1), ValueError, "empty output"),
    ("interpolate 3 sizes", lambda: F.interpolate(_X, size=(2, 3, 4)), ValueError, "pair"),
    ("interpolate recompute with size", lambda: F.interpolate(_X, size=3, recompute_scale_factor=True), ValueError,
     "recompute"),
    ("pyr_up bad size", lambda: F.pyr_up(_X, (5, 5)), ValueError, "output_size"),
    ("gaussian_pyramid levels 0", lambda: F.gaussian_pyramid(_X, 0), ValueError, "levels"),
    ("gaussian_pyramid float levels", lambda: F.gaussian_pyramid(_X, 2.0), TypeError, "levels"),
    ("laplacian_reconstruct empty", lambda: F.laplacian_reconstruct([]), TypeError, "non-empty list"),
    ("laplacian_reconstruct sizes", lambda: F.laplacian_reconstruct([_X, _X]), ValueError, "output_size"),
    ("warp_affine theta shape", lambda: F.warp_affine(_X, st.zeros(2, 3, 2, dtype="float64")), ValueError, "theta"),
    ("warp_affine mode", lambda: F.warp_affine(_X, _THETA, mode="cubic"), ValueError, "mode"),
]


@pytest.mark.parametrize("call,exc,fragment", [pytest.param(c, e, f, id=n) for n, c, e, f in BAD_CALLS])
def test_bad_arguments_raise(call, exc, fragment):
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value)

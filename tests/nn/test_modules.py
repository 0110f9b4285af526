"""striate.nn layers against torch.nn: names, shapes, forward, gradients, running statistics.

Each layer is built in both libraries with the same arguments; PyTorch's
state_dict (as numpy arrays) is loaded into striate, and the outputs, the
input gradient and every parameter gradient for a random upstream gradient
must agree, in float32 (1e-5 relative to the largest value) and float64.
"""

import numpy as np
import pytest

import striate as st
import striate.nn as nn
from tests.checks import assert_close

RTOL = {np.float32: 1e-5, np.float64: 1e-10}
TORCH_DTYPE = {np.float32: "float32", np.float64: "float64"}


def close(actual, expected, dtype, what):
    """|a - e| <= rtol * (|e| + max|e|): relative to each element and to the largest one."""
    actual = actual.numpy() if hasattr(actual, "numpy") else np.asarray(actual)
    expected = expected.detach().numpy() if hasattr(expected, "detach") else np.asarray(expected)
    rtol = RTOL[dtype]
    assert_close(actual, expected, rtol * max(float(np.abs(expected).max(initial=0)), 1e-30), rtol, what)


def numpy_state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def signature(module):
    return [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in module.state_dict().items()]


def build_pair(torch, make, dtype, make_torch=None):
    """The same layer in both libraries, striate's loaded from PyTorch's state_dict.

    torch is seeded first: the weights (and so the float32 rounding the tolerances must
    cover) would otherwise depend on which tests ran before.
    """
    torch.manual_seed(0)
    t_mod = (make_torch or make)(torch.nn).to(getattr(torch, TORCH_DTYPE[dtype]))
    s_mod = make(nn).to(dtype=dtype)
    assert [n for n, _ in s_mod.named_parameters()] == [n for n, _ in t_mod.named_parameters()]
    assert [n for n, _ in s_mod.named_buffers()] == [n for n, _ in t_mod.named_buffers()]
    assert signature(s_mod) == signature(t_mod)
    if make_torch is None:
        assert repr(s_mod) == repr(t_mod)
    assert repr(s_mod.load_state_dict(numpy_state(t_mod))) == "<All keys matched successfully>"
    return s_mod, t_mod


def run_both(torch, s_mod, t_mod, inputs, dtype, backward=True, seed=0):
    """Forward both (inputs: numpy arrays); with backward, feed the same random upstream gradient."""
    s_in = [st.tensor(x, requires_grad=backward and x.dtype.kind == "f") for x in inputs]
    t_in = [torch.tensor(x, requires_grad=backward and x.dtype.kind == "f") for x in inputs]
    s_out, t_out = s_mod(*s_in), t_mod(*t_in)
    s_first = s_out[0] if isinstance(s_out, tuple) else s_out
    t_first = t_out[0] if isinstance(t_out, tuple) else t_out
    close(s_first, t_first, dtype, "output")
    if isinstance(s_out, tuple):  # MaxPool2d(return_indices=True)
        np.testing.assert_array_equal(s_out[1].numpy(), t_out[1].numpy())
    if backward:
        g = np.random.default_rng(seed).standard_normal(t_first.shape).astype(dtype)
        s_first.backward(st.tensor(g))
        t_first.backward(torch.tensor(g))
        for i, (s, t) in enumerate(zip(s_in, t_in)):
            if t.requires_grad:
                close(s.grad, t.grad, dtype, f"input {i} gradient")
        t_params = dict(t_mod.named_parameters())
        for name, p in s_mod.named_parameters():
            close(p.grad, t_params[name].grad, dtype, f"gradient of {name}")
    for (name, s), (_, t) in zip(s_mod.state_dict().items(), t_mod.state_dict().items()):
        close(s, t, dtype, f"state {name} after forward")  # running statistics
    return s_out, t_out


def lenet(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, bias=False), nn.BatchNorm2d(16), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 32), nn.LeakyReLU(0.1), nn.Dropout(0.5), nn.Linear(32, 10),
        nn.LogSoftmax(dim=1))


# (id, make(nn), input shape[, make for torch]); make receives torch.nn or striate.nn
CASES = [
    ("conv", lambda nn: nn.Conv2d(3, 8, 3, padding=1), (2, 3, 9, 9)),
    ("conv_stride_dilation_groups_nobias",
     lambda nn: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2, bias=False),
     (2, 4, 11, 10)),
    ("conv_same_reflect", lambda nn: nn.Conv2d(3, 4, (3, 5), padding="same", padding_mode="reflect"), (2, 3, 8, 9)),
    ("conv_same_dilated_zeros", lambda nn: nn.Conv2d(2, 3, 4, padding="same", dilation=2), (1, 2, 9, 8)),
    ("conv_same_even_kernel_reflect", lambda nn: nn.Conv2d(2, 3, (4, 2), padding="same", padding_mode="reflect"),
     (2, 2, 7, 6)),
    ("conv_same_even_dilated_circular",
     lambda nn: nn.Conv2d(2, 2, 2, padding="same", dilation=(3, 1), padding_mode="circular"), (1, 2, 6, 5)),
    ("conv_replicate_stride", lambda nn: nn.Conv2d(3, 4, 3, stride=2, padding=2, padding_mode="replicate"),
     (2, 3, 7, 8)),
    ("conv_circular_depthwise", lambda nn: nn.Conv2d(4, 8, 3, padding=(1, 2), groups=4, padding_mode="circular"),
     (2, 4, 6, 7)),
    ("conv_valid", lambda nn: nn.Conv2d(2, 3, 4, padding="valid"), (2, 2, 7, 6)),
    ("conv_transpose", lambda nn: nn.ConvTranspose2d(3, 5, 3), (2, 3, 5, 6)),
    ("conv_transpose_stride_output_padding_groups",
     lambda nn: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 5, 4)),
    ("conv_transpose_dilation_nobias",
     lambda nn: nn.ConvTranspose2d(2, 4, (2, 3), stride=(1, 3), padding=(0, 1), output_padding=(0, 2), dilation=2,
                                   bias=False), (2, 2, 4, 5)),
    ("maxpool", lambda nn: nn.MaxPool2d(2), (2, 3, 8, 7)),
    ("maxpool_padding_dilation_ceil", lambda nn: nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
     (2, 2, 9, 10)),
    ("maxpool_indices", lambda nn: nn.MaxPool2d((2, 3), stride=(2, 1), return_indices=True), (2, 2, 6, 7)),
    ("avgpool", lambda nn: nn.AvgPool2d(2), (2, 3, 8, 7)),
    ("avgpool_padding_ceil_exclude_pad",
     lambda nn: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 2, 8, 9)),
    ("avgpool_divisor", lambda nn: nn.AvgPool2d((2, 3), divisor_override=5), (1, 2, 6, 6)),
    ("sumpool", lambda nn: nn.SumPool2d(3, stride=2, padding=1), (2, 2, 7, 8),
     lambda tnn: tnn.AvgPool2d(3, stride=2, padding=1, divisor_override=1)),
    ("batchnorm2d", lambda nn: nn.BatchNorm2d(4), (3, 4, 5, 5)),
    ("batchnorm2d_momentum_none", lambda nn: nn.BatchNorm2d(4, momentum=None), (3, 4, 5, 5)),
    ("batchnorm2d_no_affine", lambda nn: nn.BatchNorm2d(4, affine=False), (3, 4, 5, 5)),
    ("batchnorm2d_no_bias", lambda nn: nn.BatchNorm2d(4, bias=False), (3, 4, 5, 5)),
    ("batchnorm2d_untracked", lambda nn: nn.BatchNorm2d(4, track_running_stats=False), (3, 4, 5, 5)),
    ("batchnorm1d_2d", lambda nn: nn.BatchNorm1d(6), (8, 6)),
    ("batchnorm1d_3d", lambda nn: nn.BatchNorm1d(6, eps=1e-3, momentum=0.3), (4, 6, 7)),
    ("linear", lambda nn: nn.Linear(7, 5), (4, 7)),
    ("linear_3d_nobias", lambda nn: nn.Linear(7, 5, bias=False), (2, 3, 7)),
    ("flatten", lambda nn: nn.Flatten(), (2, 3, 4, 5)),
    ("flatten_middle", lambda nn: nn.Flatten(1, 2), (2, 3, 4, 5)),
    ("flatten_all", lambda nn: nn.Flatten(0, -1), (2, 3, 4)),
    ("relu", lambda nn: nn.ReLU(), (3, 4, 5)),
    ("leaky_relu", lambda nn: nn.LeakyReLU(0.2), (3, 4, 5)),
    ("sigmoid", lambda nn: nn.Sigmoid(), (3, 4, 5)),
    ("tanh", lambda nn: nn.Tanh(), (3, 4, 5)),
    ("identity", lambda nn: nn.Identity(3, scale=2), (3, 4)),
    ("softmax", lambda nn: nn.Softmax(dim=1), (3, 4, 5)),
    ("log_softmax", lambda nn: nn.LogSoftmax(dim=-1), (3, 4, 5)),
    ("upsample_nearest", lambda nn: nn.Upsample(scale_factor=2), (2, 3, 4, 5)),
    ("upsample_nearest_size", lambda nn: nn.Upsample(size=(7, 11)), (2, 3, 4, 5)),
    ("upsample_bilinear", lambda nn: nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 4, 5)),
    ("upsample_bilinear_align_corners", lambda nn: nn.Upsample(size=(9, 7), mode="bilinear", align_corners=True),
     (2, 3, 4, 5)),
    ("lenet", lenet, (4, 1, 28, 28)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_torch(torch, case, dtype):
    _, make, shape, *make_torch = case
    s_mod, t_mod = build_pair(torch, make, dtype, *make_torch)
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    if case[0] == "lenet":  # train mode would draw different dropout masks
        s_mod[10].eval()
        t_mod[10].eval()
    run_both(torch, s_mod, t_mod, [x], dtype)
    s_mod.eval()
    t_mod.eval()
    run_both(torch, s_mod, t_mod, [x], dtype, backward=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm_running_stats_over_steps(torch, dtype, momentum):
    s_mod, t_mod = build_pair(torch, lambda nn: nn.BatchNorm2d(3, momentum=momentum), dtype)
    rng = np.random.default_rng(2)
    for step in range(5):
        x = (rng.standard_normal((4, 3, 3, 5)) * (step + 1) + step).astype(dtype)
        run_both(torch, s_mod, t_mod, [x], dtype, seed=step)
    assert s_mod.num_batches_tracked.item() == 5 and s_mod.num_batches_tracked.dtype == np.int64
    s_mod.eval()
    t_mod.eval()
    run_both(torch, s_mod, t_mod, [rng.standard_normal((2, 3, 4, 4)).astype(dtype)], dtype)


def test_batchnorm_rejects_wrong_rank():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(st.zeros(2, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(st.zeros(2, 3, 4, 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_conv_transpose_output_size(torch, dtype):
    s_mod, t_mod = build_pair(torch, lambda nn: nn.ConvTranspose2d(2, 3, 3, stride=3, padding=1), dtype)
    x = np.random.default_rng(3).standard_normal((2, 2, 4, 5)).astype(dtype)
    for size in [(10, 13), (12, 15), (2, 3, 11, 14)]:
        s_y = s_mod(st.tensor(x), output_size=size)
        close(s_y, t_mod(torch.tensor(x), output_size=size), dtype, f"output_size={size}")
    with pytest.raises(ValueError, match="output size"):
        s_mod(st.tensor(x), output_size=(13, 13))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_max_unpool_matches_torch(torch, dtype):
    pool = dict(kernel_size=2, stride=2)
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 6)).astype(dtype)
    _, indices = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **pool)
    values = np.random.default_rng(5).standard_normal(tuple(indices.shape)).astype(dtype)
    s_mod, t_mod = build_pair(torch, lambda nn: nn.MaxUnpool2d(**pool), dtype)
    run_both(torch, s_mod, t_mod, [values, indices.numpy()], dtype)
    s_y = s_mod(st.tensor(values), st.tensor(indices.numpy()), output_size=(7, 6))
    close(s_y, t_mod(torch.tensor(values), indices, output_size=(7, 6)), dtype, "unpool with output_size")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(torch, dtype, padding_idx):
    s_mod, t_mod = build_pair(torch, lambda nn: nn.Embedding(6, 4, padding_idx=padding_idx), dtype)
    indices = np.array([[0, 2, 5, 2], [5, 5, 1, 2]], dtype=np.int64)  # repeats: gradients add up
    run_both(torch, s_mod, t_mod, [indices], dtype)
    if padding_idx is not None:
        assert not s_mod.weight.grad.numpy()[padding_idx].any()
        fresh = nn.Embedding(6, 4, padding_idx=padding_idx)
        assert not fresh.weight.numpy()[padding_idx].any()


def test_embedding_from_pretrained():
    weights = np.arange(12, dtype=np.float32).reshape(4, 3)
    emb = nn.Embedding.from_pretrained(st.tensor(weights))
    assert not emb.weight.requires_grad
    np.testing.assert_array_equal(emb(st.tensor([3, 0])).numpy(), weights[[3, 0]])
    with pytest.raises(TypeError, match="integers"):
        emb(st.tensor([0.5]))


def test_pyramid_layers_match_opencv(cv2):
    x = np.random.default_rng(6).random((2, 3, 9, 12)).astype(np.float32)
    down = nn.PyrDown()(st.tensor(x)).numpy()
    up = nn.PyrUp()(st.tensor(x)).numpy()
    odd_up = nn.PyrUp()(st.tensor(x), output_size=(17, 23)).numpy()
    for n in range(2):
        for c in range(3):
            close(down[n, c], cv2.pyrDown(x[n, c]), np.float32, "PyrDown")
            close(up[n, c], cv2.pyrUp(x[n, c]), np.float32, "PyrUp")
            close(odd_up[n, c], cv2.pyrUp(x[n, c], dstsize=(23, 17)), np.float32, "PyrUp output_size")


def test_pyramid_layers_gradcheck():
    x = st.tensor(np.random.default_rng(7).random((1, 2, 6, 7)), dtype="float64", requires_grad=True)
    assert st.autograd.gradcheck(nn.PyrDown(), (x,))
    assert st.autograd.gradcheck(nn.PyrUp(), (x,))
    assert repr(nn.PyrDown()) == "PyrDown()"


# ------------------------------------------------------------------ dropout
@pytest.mark.parametrize("layer", [nn.Dropout, nn.Dropout2d])
def test_dropout_eval_is_identity_and_train_scales(layer):
    x = st.tensor(np.random.default_rng(8).random((4, 8, 5, 5)) + 1.0, requires_grad=True)
    module = layer(p=0.25)
    module.eval()
    assert module(x) is x
    module.train()
    st.manual_seed(11)
    y = module(x).numpy()
    dropped = y == 0
    kept = ~dropped
    np.testing.assert_allclose(y[kept], x.numpy()[kept] / 0.75, rtol=1e-6)
    assert 0.1 < dropped.mean() < 0.4
    if layer is nn.Dropout2d:  # one draw per (n, c) plane
        planes = dropped.reshape(4, 8, -1)
        assert (planes.all(axis=2) | ~planes.any(axis=2)).all()
    st.manual_seed(11)
    out = module(x)
    np.testing.assert_array_equal(out.numpy(), y)  # reproducible under manual_seed
    out.backward(st.ones(*out.shape))
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 1 / 0.75, 0.0), rtol=1e-6)


def test_dropout_extremes_and_validation():
    x = st.ones(3, 4, 2, 2)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
    assert not nn.Dropout(1.0)(x).numpy().any()
    assert not nn.Dropout2d(1.0)(x).numpy().any()
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(bad)
    assert repr(nn.Dropout2d(0.3)) == "Dropout2d(p=0.3, inplace=False)"


# ------------------------------------------------------------- whole models
def test_lenet_state_dict_round_trip(torch):
    """striate -> arrays -> torch and striate -> striate give identical outputs."""
    st.manual_seed(0)
    s_mod = lenet(nn).eval()
    t_mod = lenet(torch.nn).eval()
    t_mod.load_state_dict({k: torch.tensor(v.numpy()) for k, v in s_mod.state_dict().items()})
    x = np.random.default_rng(9).standard_normal((2, 1, 28, 28)).astype(np.float32)
    close(s_mod(st.tensor(x)), t_mod(torch.tensor(x)), np.float32, "torch loaded from striate")
    copy = lenet(nn).eval()
    copy.load_state_dict({k: v.numpy() for k, v in s_mod.state_dict().items()})
    np.testing.assert_array_equal(copy(st.tensor(x)).numpy(), s_mod(st.tensor(x)).numpy())

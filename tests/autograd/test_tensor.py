"""Tensor and the autograd engine against PyTorch and numerical gradients."""
import numpy as np
import pytest

import striate as st
from striate.autograd import gradcheck


def _pair(torch, shape, seed, dtype=np.float64):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return st.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / (b * b + 1)),
    ("matmul", lambda a, b: a @ b),
]
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1))]


@pytest.mark.parametrize("name,fn", BINARY[:4], ids=[b[0] for b in BINARY[:4]])
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
def test_broadcasting_arithmetic_matches_torch(torch, name, fn, shapes):
    a, ta = _pair(torch, shapes[0], 1)
    b, tb = _pair(torch, shapes[1], 2)
    y, ty = fn(a, b), fn(ta, tb)
    g = np.random.default_rng(3).standard_normal(ty.shape)
    y.backward(st.tensor(g, dtype="float64"))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 5)), ((2, 3, 4), (1, 4, 5))], ids=str)
def test_matmul_matches_torch(torch, shapes):
    a, ta = _pair(torch, shapes[0], 4)
    b, tb = _pair(torch, shapes[1], 5)
    (a @ b).sum().backward()
    (ta @ tb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)


UNARY = [
    ("exp", lambda t: t.exp()), ("log", lambda t: (t * t + 1).log()), ("sqrt", lambda t: (t * t + 1).sqrt()),
    ("abs", lambda t: t.abs()), ("neg", lambda t: -t), ("pow", lambda t: t ** 3),
    ("clamp", lambda t: t.clamp(-0.5, 0.7)), ("rsub", lambda t: 2.0 - t), ("rdiv", lambda t: 1.0 / (t * t + 1)),
    ("sum", lambda t: t.sum(1)), ("sum_keep", lambda t: t.sum((0, 2), keepdim=True)),
    ("mean", lambda t: t.mean()), ("mean_dim", lambda t: t.mean(-1)),
    ("max_dim", lambda t: t.max(1)), ("reshape", lambda t: t.reshape(4, 6)),
    ("permute", lambda t: t.permute(2, 0, 1)), ("transpose", lambda t: t.transpose(0, 2)),
    ("flatten", lambda t: t.flatten(1)), ("slice", lambda t: t[:, 1:, ::2]),
    ("int_index", lambda t: t[np.array([0, 1, 1])]), ("neg_step", lambda t: t[..., ::-1]),
    ("unsqueeze", lambda t: t.unsqueeze(1).squeeze(1)),
]


@pytest.mark.parametrize("name,fn", UNARY, ids=[u[0] for u in UNARY])
def test_unary_and_shape_ops_gradcheck(name, fn):
    x = st.tensor(np.random.default_rng(7).standard_normal((2, 3, 4)), dtype="float64", requires_grad=True)
    assert gradcheck(fn, (x,))


def _torch_equivalent(torch, name):
    return {
        "max_dim": lambda t: t.max(1).values,
        "int_index": lambda t: t[torch.tensor([0, 1, 1])],
        "neg_step": lambda t: t.flip(-1),
    }.get(name)


@pytest.mark.parametrize("name,fn", UNARY, ids=[u[0] for u in UNARY])
def test_unary_and_shape_ops_match_torch(torch, name, fn):
    x, tx = _pair(torch, (2, 3, 4), 8)
    tfn = _torch_equivalent(torch, name) or fn
    y, ty = fn(x), tfn(tx)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    g = np.random.default_rng(9).standard_normal(ty.shape)
    y.backward(st.tensor(g, dtype="float64"))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_full_max_shares_gradient_among_ties(torch):
    x = st.tensor([1.0, 3.0, 3.0, 2.0], dtype="float64", requires_grad=True)
    tx = torch.tensor([1.0, 3.0, 3.0, 2.0], dtype=torch.float64, requires_grad=True)
    x.max().backward()
    tx.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_cat_and_stack_gradcheck():
    a = st.tensor(np.random.default_rng(1).standard_normal((2, 3)), dtype="float64", requires_grad=True)
    b = st.tensor(np.random.default_rng(2).standard_normal((1, 3)), dtype="float64", requires_grad=True)
    assert gradcheck(lambda a, b: st.cat([a, b * 2], 0), (a, b))
    assert gradcheck(lambda a: st.stack([a, a * a], 1), (a,))


def test_gradients_accumulate_across_backward_calls():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_shared_subexpression_sums_both_paths(torch):
    x, tx = _pair(torch, (3,), 11)
    y = x * 2
    (y * y + y).sum().backward()
    ty = tx * 2
    (ty * ty + ty).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_no_grad_detach_and_requires_grad():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    with st.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    z = x.detach() * 2
    assert not z.requires_grad
    w = st.tensor([1.0, 2.0])
    assert not (w * 2).requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        (w * 2).sum().backward()
    with pytest.raises(TypeError, match="floating-point"):
        st.tensor([1, 2]).requires_grad_()


def test_backward_needs_gradient_for_non_scalars():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="gradient must be given"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="gradient shape"):
        (x * 2).backward(st.tensor([1.0, 2.0, 3.0]))


def test_factories_and_conversions():
    st.manual_seed(3)
    a = st.randn(2, 3)
    st.manual_seed(3)
    b = st.randn((2, 3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == np.float32 and a.device == "cpu"
    assert st.zeros(2, 3).shape == (2, 3) and st.ones(4).numpy().sum() == 4
    assert st.arange(5).dtype == np.int64 and st.arange(0.0, 1.0, 0.5).numel() == 2
    assert st.tensor([[1.5, 2.0]]).dtype == np.float32
    arr = np.arange(6.0).reshape(2, 3)
    assert st.from_numpy(arr).data is arr
    assert st.from_dlpack(arr).numpy().tolist() == arr.tolist()
    assert st.tensor(3.5).item() == 3.5
    assert st.tensor([1.0, 2.0]).to(dtype="float64").dtype == np.float64


def test_gradcheck_reports_a_wrong_backward():
    from striate.autograd import Function

    class WrongSquare(Function):
        def forward(self, a):
            self.a = a
            return a * a

        def backward(self, g):
            return g * self.a  # should be 2 * a

    x = st.tensor([0.5, -1.5], dtype="float64", requires_grad=True)
    with pytest.raises(AssertionError, match="analytical"):
        gradcheck(lambda t: WrongSquare.apply(t), (x,))
    assert gradcheck(lambda t: WrongSquare.apply(t), (x,), raise_exception=False) is False


def test_comparisons_and_argmax():
    x = st.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    assert (x > 1.5).numpy().tolist() == [[False, True, True], [True, False, True]]
    assert x.argmax(1).numpy().tolist() == [1, 0]
    assert x.argmax().item() == 3

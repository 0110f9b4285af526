"""Tensors, autograd, modules, optimizers and checkpoints on the GPU, compared with the CPU.

Skips without a usable GPU; with STRIATE_REQUIRE_CUDA=1 a skip is a failure (see conftest.py).
Only the layers above striate.ops are exercised here (elementwise, matmul, reductions,
indexing, Linear/ReLU, losses); each op family's kernels have their own tests/cuda file.
"""
import copy

import numpy as np
import pytest

import striate as st
import striate.nn as nn
import striate.nn.functional as F

RNG = np.random.default_rng(20261201)


def _random(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def _assert_same(gpu, cpu, rtol=1e-12, atol=1e-12):
    """A GPU Tensor (or array) equals its CPU counterpart within tolerance."""
    gpu = gpu.numpy() if isinstance(gpu, st.Tensor) else gpu
    cpu = cpu.numpy() if isinstance(cpu, st.Tensor) else cpu
    np.testing.assert_allclose(gpu, cpu, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ availability and moves


def test_cuda_is_available_and_built(cp):
    assert st.cuda.is_available() is True
    assert st.cuda.is_built() is True


def test_to_cuda_cpu_round_trip(cp):
    a = _random(3, 4, dtype=np.float32)
    x = st.tensor(a)
    for g in (x.to("cuda"), x.cuda(), x.to("cuda:0"), st.tensor(a, device="cuda")):
        assert g.device == "cuda" and isinstance(g.data, cp.ndarray)
        assert g.shape == (3, 4) and g.dtype == np.float32
        back = g.cpu()
        assert back.device == "cpu" and isinstance(back.data, np.ndarray)
        np.testing.assert_array_equal(back.data, a)
        np.testing.assert_array_equal(g.numpy(), a)  # numpy() copies from any device
    g = x.cuda()
    assert g.to("cuda") is g  # already there: no copy
    assert g.to("cuda", dtype="float64").dtype == np.float64
    assert g.to("cuda", dtype="float64").device == "cuda"
    assert st.tensor([[1.5]], device="cuda").item() == 1.5
    assert g.tolist() == a.tolist()


def test_factories_on_cuda(cp):
    for t in (st.zeros(2, 3, device="cuda"), st.ones((2, 3), device="cuda"),
              st.randn(2, 3, device="cuda"), st.rand(2, 3, device="cuda"),
              st.arange(6, device="cuda"), st.tensor(cp.ones(3)), st.from_dlpack(cp.ones(3))):
        assert t.device == "cuda" and isinstance(t.data, cp.ndarray)
    st.manual_seed(3)
    r_gpu = st.randn(4, 5, device="cuda")
    st.manual_seed(3)
    r_cpu = st.randn(4, 5)
    np.testing.assert_array_equal(r_gpu.numpy(), r_cpu.numpy())  # same generator on any device


def test_device_moves_are_differentiable(cp):
    x = st.tensor(_random(3, 4), requires_grad=True)
    (x.cuda() * 3).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 3.0))
    g = st.tensor(_random(3, 4), device="cuda", requires_grad=True)
    (g.cpu() * 2).sum().backward()
    assert g.grad.device == "cuda"
    np.testing.assert_array_equal(g.grad.numpy(), np.full((3, 4), 2.0))


def test_unknown_device_is_refused(cp):
    with pytest.raises(ValueError, match="unknown device"):
        st.zeros(2).to("tpu")


# ------------------------------------------------------------------ autograd on GPU tensors vs CPU

ELEMENTWISE = {
    "add": lambda a, b: a + b,
    "sub_broadcast": lambda a, b: a - b[0],
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
    "neg_pow": lambda a, b: (-a) ** 2 + b,
    "exp_log_sqrt": lambda a, b: (a.exp() + 1).log() + (b * b + 1).sqrt(),
    "abs_clamp": lambda a, b: a.abs() + b.clamp(-0.5, 0.5),
    "scalar_ops": lambda a, b: 2.0 * a - b / 3.0 + 1,
    "activations": lambda a, b: F.relu(a) + F.sigmoid(b) + F.tanh(a * b) + F.leaky_relu(b, 0.1),
    "softmax": lambda a, b: F.softmax(a, dim=1) * F.log_softmax(b, dim=0),
}

MATMUL_REDUCE = {
    "matmul_2d": lambda a, b: a @ b.T,
    "matmul_batched": lambda a, b: a.reshape(2, 3, 4) @ b.reshape(2, 4, 3),
    "matvec": lambda a, b: a @ b[0],
    "sum_mean": lambda a, b: a.sum(dim=1) + b.mean(dim=1),
    "sum_all_keepdim": lambda a, b: a.sum(dim=(0, 1), keepdim=True) * b,
    "max": lambda a, b: a.max(dim=0) + b.max(),
    "permute_transpose": lambda a, b: a.permute(1, 0) * b.transpose(0, 1),
    "cat_stack": lambda a, b: st.cat([a, b], dim=1).sum(1) + st.stack([a, b]).mean(0).sum(1),
}

INDEXING = {
    "basic_slices": lambda a, b: a[1:5, ::2] * b[:4, 1::2],
    "int_array_repeats": lambda a, b: a[np.array([0, 2, 0, 5])] + b[[1, 1, 1, 1]],
    "tuple_advanced": lambda a, b: a[np.array([0, 1, 1]), np.array([2, 3, 2])] * b[0, :3],
    "boolean_mask": lambda a, b: a[a.detach() > 0].sum() + b[:, 0],
    "ellipsis_none": lambda a, b: a[..., None, 1] * b[:, None, 2],
}


@pytest.mark.parametrize("name", sorted({**ELEMENTWISE, **MATMUL_REDUCE, **INDEXING}))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_autograd_gpu_matches_cpu(cp, name, dtype):
    fn = {**ELEMENTWISE, **MATMUL_REDUCE, **INDEXING}[name]
    a, b = _random(6, 4, dtype=dtype), _random(6, 4, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    outs, grads = [], []
    for device in ("cpu", "cuda"):
        x = st.tensor(a, device=device, requires_grad=True)
        y = st.tensor(b, device=device, requires_grad=True)
        out = fn(x, y)
        assert out.device == device
        weight = st.tensor(np.linspace(-1, 1, out.numel()).reshape(out.shape).astype(dtype), device=device)
        (out * weight).sum().backward()
        assert x.grad is None or x.grad.device == device
        outs.append(out.numpy())
        grads.append([None if t.grad is None else t.grad.numpy() for t in (x, y)])
    _assert_same(outs[1], outs[0], **tol)
    for g_gpu, g_cpu in zip(grads[1], grads[0]):
        assert (g_gpu is None) == (g_cpu is None)
        if g_cpu is not None:
            _assert_same(g_gpu, g_cpu, **tol)


def test_cpu_indices_index_a_gpu_tensor(cp):
    a = _random(5, 3)
    x = st.tensor(a, device="cuda", requires_grad=True)
    idx = st.tensor(np.array([4, 0, 4]))  # a CPU index tensor, as torch allows
    y = x[idx]
    assert y.device == "cuda"
    y.sum().backward()
    expected = np.zeros((5, 3))
    expected[0] = 1
    expected[4] = 2  # repeated indices accumulate
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_backward_with_a_host_gradient(cp):
    x = st.tensor(_random(2, 3), device="cuda", requires_grad=True)
    (x * 2).backward(np.ones((2, 3)))  # the gradient is placed on the tensor's device
    assert x.grad.device == "cuda"
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_gradcheck_on_gpu(cp):
    x = st.tensor(_random(3, 4), device="cuda", requires_grad=True)
    w = st.tensor(_random(4, 2), device="cuda", requires_grad=True)
    assert st.autograd.gradcheck(lambda a, b: F.tanh(a @ b).sum(dim=0), (x, w))


def test_inplace_updates_on_gpu(cp):
    t = st.zeros(3, device="cuda")
    t.add_(st.ones(3)).mul_(4).sub_(np.ones(3), alpha=2).div_(2)  # host operands are moved
    t.addcmul_(st.ones(3, device="cuda"), st.ones(3, device="cuda"), value=0.5)
    assert t.device == "cuda"
    np.testing.assert_array_equal(t.numpy(), np.full(3, 1.5))
    t.copy_(np.arange(3.0))
    np.testing.assert_array_equal(t.numpy(), np.arange(3.0))


# ------------------------------------------------------------------ modules, optimizers, checkpoints


def _model():
    st.manual_seed(7)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _train(model, opt, x, target, steps=5):
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
    return loss.item()


OPTIMIZERS = {
    "sgd": lambda params: st.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda params: st.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda params: st.optim.Adam(params, lr=1e-2),
    "adamw_amsgrad": lambda params: st.optim.AdamW(params, lr=1e-2, amsgrad=True),
}


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_module_to_cuda_trains_like_cpu(cp, opt_name):
    x, target = _random(32, 8, dtype=np.float32), RNG.integers(0, 4, 32)
    cpu_model = _model()
    gpu_model = copy.deepcopy(cpu_model).to("cuda")
    assert gpu_model is not None and all(p.device == "cuda" for p in gpu_model.parameters())
    loss_cpu = _train(cpu_model, OPTIMIZERS[opt_name](cpu_model.parameters()), st.tensor(x), st.tensor(target))
    gpu_opt = OPTIMIZERS[opt_name](gpu_model.parameters())
    loss_gpu = _train(gpu_model, gpu_opt, st.tensor(x, device="cuda"), st.tensor(target, device="cuda"))
    assert abs(loss_gpu - loss_cpu) <= 1e-4 * max(1.0, abs(loss_cpu))
    for (name, p_gpu), (_, p_cpu) in zip(gpu_model.named_parameters(), cpu_model.named_parameters()):
        assert p_gpu.device == "cuda" and p_gpu.grad.device == "cuda", name
        _assert_same(p_gpu, p_cpu, rtol=1e-4, atol=1e-5)
    for state in gpu_opt.state.values():
        for value in state.values():
            assert not isinstance(value, st.Tensor) or value.device == "cuda"


def test_module_cuda_and_cpu_moves_keep_buffers_and_grads(cp):
    m = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    m(st.randn(5, 4)).sum().backward()
    m.cuda()
    tensors = list(m.parameters()) + list(m.buffers()) + [p.grad for p in m.parameters()]
    assert all(t.device == "cuda" for t in tensors)
    y = m(st.randn(5, 4, device="cuda"))  # training-mode batch norm updates GPU running stats
    assert y.device == "cuda" and m[1].running_mean.device == "cuda"
    assert m[1].num_batches_tracked.item() == 2
    m.to("cpu", "float64")
    assert all(t.device == "cpu" for t in list(m.parameters()) + list(m.buffers()))
    assert m[0].weight.dtype == np.float64 and m[1].num_batches_tracked.dtype == np.int64


def test_embedding_on_gpu_with_cpu_indices(cp):
    st.manual_seed(1)
    cpu = nn.Embedding(10, 3, padding_idx=0)
    gpu = copy.deepcopy(cpu).cuda()
    idx = st.tensor(np.array([[0, 2, 9], [2, 2, 0]]))
    out_cpu, out_gpu = cpu(idx), gpu(idx)
    assert out_gpu.device == "cuda"
    _assert_same(out_gpu, out_cpu, rtol=0, atol=0)
    out_cpu.sum().backward()
    out_gpu.sum().backward()
    _assert_same(gpu.weight.grad, cpu.weight.grad, rtol=0, atol=0)


def test_save_load_gpu_state_dicts(cp, tmp_path):
    x, target = _random(16, 8, dtype=np.float32), RNG.integers(0, 4, 16)
    xg, tg = st.tensor(x, device="cuda"), st.tensor(target, device="cuda")
    model = _model().cuda()
    opt = st.optim.Adam(model.parameters(), lr=1e-2)
    _train(model, opt, xg, tg, steps=3)
    path = tmp_path / "ckpt.safetensors"
    st.save({"model": model.state_dict(), "optim": opt.state_dict(), "raw": cp.arange(4)}, path)
    state = st.load(path)
    assert all(t.device == "cpu" for t in state["model"].values())  # loads on the host
    np.testing.assert_array_equal(state["raw"], np.arange(4))
    for name, t in model.state_dict().items():
        np.testing.assert_array_equal(state["model"][name].numpy(), t.numpy())

    resumed = _model().cuda()
    resumed.load_state_dict(state["model"])
    resumed_opt = st.optim.Adam(resumed.parameters(), lr=1e-2)
    resumed_opt.load_state_dict(state["optim"])
    assert all(p.device == "cuda" for p in resumed.parameters())
    for s in resumed_opt.state.values():
        assert s["exp_avg"].device == "cuda" and isinstance(s["step"], int) and s["step"] == 3
    # Both continue identically: the checkpoint holds everything the update needs.
    _train(model, opt, xg, tg, steps=2)
    _train(resumed, resumed_opt, xg, tg, steps=2)
    for p, q in zip(model.parameters(), resumed.parameters()):
        _assert_same(q, p, rtol=1e-6, atol=1e-7)

    cpu_model = _model()
    cpu_model.load_state_dict(model.state_dict())  # GPU tensors load into a CPU model
    for p, q in zip(cpu_model.parameters(), model.parameters()):
        assert p.device == "cpu"
        np.testing.assert_array_equal(p.numpy(), q.numpy())

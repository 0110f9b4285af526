"""The Module machinery: registration, traversal, state_dict, modes, moves, containers, repr.

Traversal order, names and reprs are compared with torch.nn for the same
model definitions.
"""
import copy
from collections import OrderedDict

import numpy as np
import pytest

import striate as st
import striate.nn as nn
from tests.cuda.conftest import cupy_or_skip


def build(namespace=nn, ones=st.ones):
    """The same nested model in striate.nn or torch.nn (with torch.ones)."""
    class Net(namespace.Module):
        def __init__(self):
            super().__init__()
            self.scale = namespace.Parameter(ones(3))
            self.register_buffer("step", ones(1))
            self.register_buffer("cache", ones(2), persistent=False)
            self.features = namespace.Sequential(namespace.Conv2d(3, 4, 3), namespace.BatchNorm2d(4),
                                                 namespace.ReLU())
            self.heads = namespace.ModuleDict({"cls": namespace.Linear(4, 2),
                                               "box": namespace.Linear(4, 4, bias=False)})
            self.extra = namespace.ModuleList([namespace.Identity(), namespace.Linear(2, 2)])
            self.shared = self.features[0]  # the same module under two names

        def forward(self, x):
            return self.heads["cls"](self.features(x).mean((2, 3)))

    return Net()


def shapes(pairs):
    return [(name, tuple(t.shape)) for name, t in pairs]


def test_traversal_matches_torch(torch):
    s, t = build(), build(torch.nn, torch.ones)
    assert shapes(s.named_parameters()) == shapes(t.named_parameters())
    assert shapes(s.named_buffers()) == shapes(t.named_buffers())
    assert shapes(s.state_dict().items()) == shapes(t.state_dict().items())
    assert [n for n, _ in s.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in s.named_children()] == [n for n, _ in t.named_children()]
    assert len(list(s.parameters())) == len(list(t.parameters()))
    assert len(list(s.modules())) == len(list(t.modules()))
    assert [type(m).__name__ for m in s.children()] == [type(m).__name__ for m in t.children()]
    assert shapes(s.named_parameters(recurse=False)) == [("scale", (3,))]
    assert shapes(s.named_parameters(prefix="net")) == shapes(t.named_parameters(prefix="net"))
    assert shapes(s.named_parameters(remove_duplicate=False)) == shapes(t.named_parameters(remove_duplicate=False))
    assert "cache" not in s.state_dict() and "cache" in dict(s.named_buffers())
    assert repr(s) == repr(t)
    assert s.get_submodule("heads.cls") is s.heads["cls"]


def test_parameter_is_a_leaf_tensor_requiring_grad():
    p = nn.Parameter(st.zeros(2, 3))
    assert isinstance(p, st.Tensor) and p.requires_grad and p.is_leaf and p.shape == (2, 3)
    assert not nn.Parameter(st.zeros(2), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\n")
    y = (p * 2).sum()
    assert type(y) is st.Tensor
    y.backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full((2, 3), 2.0, np.float32))


def test_setattr_registers_and_unregisters():
    m = nn.Module()
    m.w = nn.Parameter(st.ones(2))
    m.child = nn.Linear(2, 2)
    m.register_buffer("stat", st.zeros(2))
    m.plain = st.zeros(1)  # a plain Tensor attribute is neither parameter nor buffer
    assert list(m._parameters) == ["w"] and list(m._modules) == ["child"] and list(m._buffers) == ["stat"]
    assert [n for n, _ in m.named_parameters()] == ["w", "child.weight", "child.bias"]
    m.stat = st.ones(2)  # reassigning a buffer keeps it a buffer
    np.testing.assert_array_equal(m.state_dict()["stat"].numpy(), [1, 1])
    with pytest.raises(TypeError, match="parameter 'w'"):
        m.w = st.ones(2)
    with pytest.raises(TypeError, match="buffer 'stat'"):
        m.stat = 3
    m.w = None
    assert "w" not in m.state_dict() and m.w is None
    m.child = nn.Parameter(st.ones(1))  # a name moves from modules to parameters
    assert "child" not in m._modules and m.child.shape == (1,)
    del m.child
    assert not hasattr(m, "child")
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", st.zeros(1))
    with pytest.raises(KeyError, match="contain"):
        m.add_module("a.b", nn.ReLU())
    with pytest.raises(TypeError, match="not a Module"):
        m.add_module("x", 3)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        m.missing


def test_assignment_before_init_is_refused():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(st.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()


def test_forward_is_required_and_call_runs_hooks():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(st.ones(1))
    m = nn.ReLU()
    seen = []
    pre = m.register_forward_pre_hook(lambda mod, args: (args[0] - 1,))
    post = m.register_forward_hook(lambda mod, args, out: seen.append(out.numpy()) or out * 10)
    np.testing.assert_array_equal(m(st.tensor([0.5, 3.0])).numpy(), [0.0, 20.0])
    np.testing.assert_array_equal(seen[0], [0.0, 2.0])
    pre.remove()
    post.remove()
    np.testing.assert_array_equal(m(st.tensor([0.5, 3.0])).numpy(), [0.5, 3.0])


# -------------------------------------------------------------- state dict
def test_load_state_dict_strict_and_non_strict(torch):
    s = build()
    state = {k: v.numpy() for k, v in build(torch.nn, torch.ones).state_dict().items()}
    result = s.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for name, value in s.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[name])
    partial = dict(state)
    del partial["heads.cls.bias"], partial["features.1.num_batches_tracked"]
    partial["heads.cls.gamma"] = np.zeros(2)
    with pytest.raises(RuntimeError) as err:
        s.load_state_dict(partial)
    message = str(err.value)
    assert 'Missing key(s) in state_dict: "features.1.num_batches_tracked", "heads.cls.bias"' in message
    assert 'Unexpected key(s) in state_dict: "heads.cls.gamma"' in message
    missing, unexpected = s.load_state_dict(partial, strict=False)
    assert missing == ["features.1.num_batches_tracked", "heads.cls.bias"]  # in model order
    assert unexpected == ["heads.cls.gamma"]
    assert "missing_keys=" in repr(s.load_state_dict(partial, strict=False))


def test_load_state_dict_shape_mismatch_names_the_key():
    m = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: .*\(2, 4\).*\(2, 3\)"):
        m.load_state_dict({"0.weight": np.zeros((2, 4)), "0.bias": np.zeros(2)})
    with pytest.raises(RuntimeError, match="size mismatch for 0.bias"):  # even when not strict
        m.load_state_dict({"0.bias": np.zeros(5)}, strict=False)
    with pytest.raises(RuntimeError, match="expected a Tensor or array"):
        m.load_state_dict({"0.weight": "zeros", "0.bias": np.zeros(2)})
    with pytest.raises(TypeError, match="dict-like"):
        m.load_state_dict([("0.bias", np.zeros(2))])


def test_load_state_dict_accepts_tensors_and_arrays_and_copies_in_place():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    weight = a.weight
    a.load_state_dict({"weight": b.weight.detach(), "bias": b.bias.numpy().astype(np.float64)})
    assert a.weight is weight and a.weight.dtype == np.float32 and a.weight.requires_grad
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    np.testing.assert_array_equal(a.bias.numpy(), b.bias.numpy())
    bn = nn.BatchNorm1d(2)
    bn.load_state_dict({"weight": np.ones(2), "bias": np.zeros(2), "running_mean": np.ones(2),
                        "running_var": np.ones(2), "num_batches_tracked": 7})
    assert bn.num_batches_tracked.item() == 7 and bn.num_batches_tracked.dtype == np.int64


def test_state_dict_shares_storage_and_keep_vars():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    assert isinstance(sd, OrderedDict) and list(sd) == ["weight", "bias"]
    assert not isinstance(sd["weight"], nn.Parameter) and not sd["weight"].requires_grad
    assert m.state_dict(keep_vars=True)["weight"] is m.weight
    with st.no_grad():
        m.weight.fill_(3.0)
    assert (sd["weight"].numpy() == 3.0).all()


def test_deepcopy_is_independent():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    clone = copy.deepcopy(m)
    with st.no_grad():
        clone[0].weight.fill_(0.0)
    assert m[0].weight.numpy().any()
    assert isinstance(clone[0].weight, nn.Parameter)


# ------------------------------------------------------ modes, moves, grads
def test_train_eval_propagate():
    m = build()
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.features.train()
    assert m.features[1].training and not m.heads.training and not m.training
    m.train()
    assert all(mod.training for mod in m.modules())
    with pytest.raises(ValueError, match="boolean"):
        m.train("no")


def test_to_dtype_converts_in_place_and_keeps_integer_buffers():
    m = build()
    params = list(m.parameters())
    m(st.randn(2, 3, 5, 5)).sum().backward()
    assert m.to(dtype="float64") is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert all(p.grad is None or p.grad.dtype == np.float64 for p in m.parameters())
    assert m.features[1].running_mean.dtype == np.float64
    assert m.features[1].num_batches_tracked.dtype == np.int64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())
    m.to(st.zeros(1, dtype="float64"))
    assert m.scale.dtype == np.float64 and m.scale.device == "cpu"
    m.to("cpu", "float32").cpu()
    assert m.scale.dtype == np.float32
    with pytest.raises(TypeError, match="floating-point"):
        m.to(dtype="int32")


def test_to_cuda_moves_parameters_and_buffers():
    cupy_or_skip()
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).to("cuda")
    assert all(t.device == "cuda" for t in list(m.parameters()) + list(m.buffers()))
    y = m(st.randn(2, 3, 6, 6).cuda())
    assert y.device == "cuda"
    m.cpu()
    assert all(t.device == "cpu" for t in list(m.parameters()) + list(m.buffers()))


def test_zero_grad_and_requires_grad():
    m = nn.Linear(3, 2)
    m(st.randn(4, 3)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is not None and not m.weight.grad.numpy().any()
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_apply_visits_children_first():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
    order = []
    assert m.apply(lambda mod: order.append(type(mod).__name__)) is m
    assert order == ["Linear", "ReLU", "Sequential", "Sequential"]


# -------------------------------------------------------------- containers
def test_sequential_indexing_and_editing(torch):
    layers = [nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and list(seq) == layers and seq[-1] is layers[2]
    sliced = seq[1:]
    assert isinstance(sliced, nn.Sequential) and list(sliced._modules) == ["1", "2"]
    x = st.randn(5, 4)
    np.testing.assert_array_equal(seq(x).numpy(), layers[2](layers[1](layers[0](x))).numpy())
    seq.append(nn.Tanh())
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear", "Tanh"] and list(seq._modules) == ["0", "1", "2"]
    seq[2] = nn.Sigmoid()
    assert isinstance(seq[2], nn.Sigmoid)
    seq.insert(-1, nn.ReLU())
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear", "ReLU", "Sigmoid"]
    with pytest.raises(IndexError):
        seq[4]
    named = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    t_named = torch.nn.Sequential(OrderedDict([("conv", torch.nn.Conv2d(1, 2, 3)), ("act", torch.nn.ReLU())]))
    assert [n for n, _ in named.named_parameters()] == ["conv.weight", "conv.bias"]
    assert repr(named) == repr(t_named)


def test_module_list_and_dict(torch):
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    blocks.append(nn.ReLU())
    blocks += [nn.Linear(2, 2)]
    assert len(blocks) == 5 and isinstance(blocks[-2], nn.ReLU)
    assert [n for n, _ in blocks.named_parameters()][:2] == ["0.weight", "0.bias"]
    t_blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU(), torch.nn.Linear(2, 2)])
    assert repr(blocks) == repr(t_blocks)  # folded "(0-2): 3 x Linear(...)"
    blocks.insert(0, nn.Tanh())
    assert isinstance(blocks[0], nn.Tanh) and isinstance(blocks[1], nn.Linear)
    assert isinstance(blocks[1:3], nn.ModuleList) and len(blocks[1:3]) == 2
    with pytest.raises(NotImplementedError):
        blocks(st.ones(1))
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads["b"] = nn.Linear(2, 3)
    heads.update([("c", nn.ReLU())])
    assert list(heads) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert isinstance(heads.pop("c"), nn.ReLU) and list(heads.keys()) == ["a", "b"]
    t_heads = torch.nn.ModuleDict({"a": torch.nn.Linear(2, 1), "b": torch.nn.Linear(2, 3)})
    assert repr(heads) == repr(t_heads)


def test_reprs_match_torch(torch):
    for make in [lambda nn: nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                 lambda nn: nn.Conv2d(4, 4, 5, padding="same", groups=2, padding_mode="reflect"),
                 lambda nn: nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1, groups=2, dilation=2),
                 lambda nn: nn.MaxPool2d(3, 2, 1, ceil_mode=True), lambda nn: nn.AvgPool2d((2, 3)),
                 lambda nn: nn.MaxUnpool2d(2), lambda nn: nn.Embedding(10, 3, padding_idx=-1),
                 lambda nn: nn.Upsample(scale_factor=2, mode="bilinear"), lambda nn: nn.Upsample(size=(4, 5)),
                 lambda nn: nn.LeakyReLU(0.2, True), lambda nn: nn.ReLU(inplace=True),
                 lambda nn: nn.BatchNorm1d(5, momentum=None, affine=False), lambda nn: nn.Dropout(0.1),
                 lambda nn: nn.Softmax(1), lambda nn: nn.Identity(), lambda nn: nn.Flatten(0, 2),
                 lambda nn: nn.Linear(3, 4, bias=False), lambda nn: nn.Sequential(),
                 lambda nn: nn.ModuleList()]:
        assert repr(make(nn)) == repr(make(torch.nn))
    assert repr(nn.SumPool2d(3, 2)) == "SumPool2d(kernel_size=3, stride=2, padding=0)"

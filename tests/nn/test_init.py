"""striate.nn.init and the layers' default initialisation: formulas, statistics, reproducibility."""
import math

import numpy as np
import pytest

import striate as st
import striate.nn as nn
from striate.nn import init


def test_calculate_gain_matches_torch(torch):
    for name in ["linear", "conv2d", "conv_transpose2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]:
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", 0.2))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)


@pytest.mark.parametrize("shape", [(5, 3), (8, 4, 3, 3), (4, 2, 5, 1), (3, 7, 2)])
def test_fan_in_and_fan_out_match_torch(torch, shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init._calculate_fan_in_and_fan_out(st.zeros(shape)) == expected


def test_fan_needs_two_dimensions():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(st.zeros(4))


def _uniform_bound_ok(values, bound):
    """Inside (-bound, bound), filling it (max near the bound), mean ~0, variance ~bound^2/3."""
    assert np.abs(values).max() <= bound * (1 + 1e-6)  # float32 rounding of float64 samples
    assert np.abs(values).max() > 0.95 * bound
    assert abs(values.mean()) < 0.05 * bound
    assert values.var() == pytest.approx(bound ** 2 / 3, rel=0.1)


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Conv2d(16, 32, 3), 16 * 9),
    (lambda: nn.Conv2d(16, 32, (3, 5), groups=4), 4 * 15),
    (lambda: nn.ConvTranspose2d(16, 32, 3, groups=2), 16 * 9),  # weight (16, 16, 3, 3): fan_in from shape[1]
    (lambda: nn.ConvTranspose2d(40, 8, 4), 8 * 16),
    (lambda: nn.Linear(300, 200), 300),
])
def test_default_init_of_weights_and_biases(make, fan_in):
    st.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)): sqrt(3) * sqrt(2 / 6) / sqrt(fan_in)
    _uniform_bound_ok(layer.weight.numpy(), bound)
    bias = layer.bias.numpy()
    assert np.abs(bias).max() <= bound and bias.std() > 0.2 * bound
    assert layer.weight.requires_grad and layer.weight.dtype == np.float32


def test_other_layers_default_init():
    st.manual_seed(0)
    emb = nn.Embedding(1000, 50).weight.numpy()
    assert abs(emb.mean()) < 0.02 and emb.std() == pytest.approx(1.0, rel=0.02)
    bn = nn.BatchNorm2d(5)
    assert (bn.weight.numpy() == 1).all() and (bn.bias.numpy() == 0).all()
    assert (bn.running_var.numpy() == 1).all() and (bn.running_mean.numpy() == 0).all()


def test_manual_seed_makes_init_reproducible():
    def weights():
        return [p.numpy() for p in nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 2), nn.Embedding(5, 2)).parameters()]

    st.manual_seed(123)
    first = weights()
    st.manual_seed(123)
    second = weights()
    st.manual_seed(124)
    third = weights()
    for a, b, c in zip(first, second, third):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_init_functions_statistics():
    st.manual_seed(1)
    w = st.zeros(256, 512)
    fan_in, fan_out = 512, 256
    _uniform_bound_ok(init.xavier_uniform_(w, gain=2.0).numpy(), 2.0 * math.sqrt(6 / (fan_in + fan_out)))
    assert init.xavier_normal_(w).numpy().std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    _uniform_bound_ok(init.kaiming_uniform_(w, nonlinearity="relu").numpy(), math.sqrt(6 / fan_in))
    _uniform_bound_ok(init.kaiming_uniform_(w, mode="fan_out").numpy(), math.sqrt(6 / fan_out))  # a=0: gain sqrt 2
    assert init.kaiming_normal_(w, a=0.2, mode="fan_out").numpy().std() == pytest.approx(
        init.calculate_gain("leaky_relu", 0.2) / math.sqrt(fan_out), rel=0.02)
    _uniform_bound_ok(init.uniform_(w, -3.0, 3.0).numpy(), 3.0)
    normal = init.normal_(w, mean=2.0, std=0.5).numpy()
    assert normal.mean() == pytest.approx(2.0, abs=0.01) and normal.std() == pytest.approx(0.5, rel=0.02)
    truncated = init.trunc_normal_(w, std=1.0, a=-0.5, b=1.0).numpy()
    assert truncated.min() >= -0.5 and truncated.max() <= 1.0 and truncated.max() > 0.99
    assert (init.constant_(w, 0.25).numpy() == 0.25).all()
    assert (init.ones_(w).numpy() == 1).all() and not init.zeros_(w).numpy().any()
    with pytest.raises(ValueError, match="fan_in, fan_out"):
        init.kaiming_uniform_(w, mode="fan_avg")


def test_init_on_parameters_records_no_graph_and_accepts_a_generator():
    p = nn.Parameter(st.zeros(3, 4))
    init.uniform_(p, 0.0, 1.0, generator=np.random.default_rng(5))
    expected = np.random.default_rng(5).uniform(0.0, 1.0, size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(p.numpy(), expected)
    assert p.requires_grad and p.is_leaf and p.grad is None
    assert init.kaiming_uniform_(st.zeros(0, 3)).shape == (0, 3)  # nothing to fill


def test_float64_layers_are_initialised_in_float64():
    layer = nn.Linear(3, 2, dtype="float64")
    assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
    assert np.abs(layer.weight.numpy()).max() <= 1 / math.sqrt(3)

"""LAPGAN: pyramid identities of the per-level data, coarse-to-fine sampling, the level models."""
import numpy as np
import pytest

import striate as st
import striate.nn.functional as F
from striate.models.lapgan import LAPGAN, DetailDiscriminator, level_data, pyramid_sizes
from striate.train import fit_lapgan
from tests.checks import assert_close


def _images(shape, seed=0):
    return st.tensor(np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32))


def _tiny(**kwargs):
    st.manual_seed(0)
    return LAPGAN(levels=3, channels=1, size=28, z_dim=8, hidden=(16,), level_z_dim=8, base=4, depth=2,
                  d_base=4, d_depth=2, **kwargs)


def test_pyramid_sizes():
    assert pyramid_sizes(28, 3) == [28, 14, 7]
    assert pyramid_sizes(27, 4) == [27, 14, 7, 4]
    with pytest.raises(ValueError, match="levels must be an int >= 1"):
        pyramid_sizes(28, 0)


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 3, 27, 19), (2, 1, 13, 13)])
def test_level_data_gives_the_laplacian_coefficients_and_reconstructs(shape):
    images, levels = _images(shape), 3
    laplacian = F.laplacian_pyramid(images, levels)
    pairs = [level_data(images, k, levels) for k in range(levels)]
    for k, (x, y) in enumerate(pairs[:-1]):
        assert x.shape == y.shape
        assert_close((x - y).numpy(), laplacian[k].numpy(), 1e-6, 1e-6, what=f"h_{k} = I_{k} - u(I_{k + 1})")
    top, none = pairs[-1]
    assert none is None
    assert np.array_equal(top.numpy(), laplacian[-1].numpy())
    rebuilt = F.laplacian_reconstruct([x - y for x, y in pairs[:-1]] + [top])
    assert_close(rebuilt.numpy(), images.numpy(), 1e-5, 1e-5, what="reconstruction")


def test_level_data_is_consistent_across_levels():
    images = _images((2, 1, 28, 28), 1)
    fine, coarse = level_data(images, 0, 3), level_data(images, 1, 3)
    assert np.array_equal(fine[0].numpy(), images.numpy())
    assert np.array_equal(coarse[0].numpy(), F.pyr_down(images).numpy())
    assert np.array_equal(fine[1].numpy(), F.pyr_up(coarse[0], output_size=(28, 28)).numpy())
    assert level_data(images, 2, 3)[0].shape == (2, 1, 7, 7)


def test_level_data_names_bad_arguments():
    with pytest.raises(ValueError, match=r"level must be an int in \[0, 3\)"):
        level_data(_images((1, 1, 28, 28)), 3, 3)
    with pytest.raises(ValueError, match=r"images must be \(N, 1, 28, 28\)"):
        _tiny().level_data(_images((1, 1, 14, 14)), 0)


def test_models_per_level():
    model = _tiny()
    assert model.sizes == [28, 14, 7]
    assert [g.conditional for g in model.generators] == [True, True, False]
    images = _images((4, 1, 28, 28))
    for k in range(3):
        x, y = model.level_data(images, k)
        g, d = model.generators[k], model.discriminators[k]
        z = st.randn(4, g.z_dim)
        fake = g(z) if y is None else g(z, y)
        assert fake.shape == x.shape
        assert (d(x) if y is None else d(x, y)).shape == (4,)
        if y is not None:             # G_k(z, y) = y + tanh(.): the detail is bounded by 1
            assert np.abs((fake - y).numpy()).max() <= 1.0


def test_detail_discriminator_judges_the_detail():
    st.manual_seed(2)
    d = DetailDiscriminator(1, base=4, depth=2)
    d.eval()
    x, y = _images((3, 1, 14, 14), 3), _images((3, 1, 14, 14), 4)
    assert_close(d(x, y).numpy(), d.judge(x - y, y).numpy(), 0, 0)
    with pytest.raises(ValueError, match="same shape"):
        d(x, _images((3, 1, 7, 7)))


def test_sample_runs_coarse_to_fine():
    model = _tiny()
    z = [st.randn(5, g.z_dim) for g in model.generators]
    levels = model.sample(5, z, return_levels=True)
    assert [tuple(i.shape) for i in levels] == [(5, 1, 28, 28), (5, 1, 14, 14), (5, 1, 7, 7)]
    assert model.training                                # the mode is restored
    model.eval()
    with st.no_grad():
        assert_close(levels[2].numpy(), model.generators[2](z[2]).numpy(), 0, 0)
        for k in (1, 0):
            up = F.pyr_up(levels[k + 1], output_size=(model.sizes[k],) * 2)
            assert_close(levels[k].numpy(), model.generators[k](z[k], up).numpy(), 0, 0)
    assert np.array_equal(model.sample(5, z).numpy(), levels[0].numpy())
    with pytest.raises(ValueError, match="z must hold 3"):
        model.sample(5, z[:2])


def test_lapgan_rejects_a_pyramid_too_small_for_its_discriminators():
    with pytest.raises(ValueError, match="smaller than the 2\\*\\*d_depth"):
        LAPGAN(levels=4, size=16, d_depth=3)


def _fit(out, epochs, levels=None):
    model = _tiny()
    images = st.tensor(np.random.default_rng(5).uniform(0, 1, (16, 1, 28, 28)).astype(np.float32))
    st.manual_seed(9)
    histories = fit_lapgan(model, images, epochs, out=str(out), batch_size=8, levels=levels, progress=False,
                           resume=True, n_samples=4)
    return model, histories


@pytest.mark.filterwarnings("ignore::striate.train.gan.GANWarning")
def test_fit_trains_every_level_and_resumes_an_interrupted_run(tmp_path):
    full, histories = _fit(tmp_path / "full", 2)
    assert sorted(histories) == [0, 1, 2]
    for k in range(3):
        for name in ("samples_epoch002.png", "losses.png", "history.json", "last.safetensors"):
            assert (tmp_path / "full" / f"level{k}" / name).exists(), (k, name)
    assert full.sample(3).shape == (3, 1, 28, 28)
    # interrupted: the coarsest level done, level 1 after one epoch, level 0 not started
    _fit(tmp_path / "cut", [2, 1, 2], levels=[2, 1])
    resumed, _ = _fit(tmp_path / "cut", 2)
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[key].numpy(), b[key].numpy()) for key in a)


def test_fit_names_bad_epochs():
    with pytest.raises(ValueError, match="epochs_per_level must be an int or 3 ints"):
        fit_lapgan(_tiny(), _images((2, 1, 28, 28)), [1, 1])


def test_dcgan_top_level():
    lap = LAPGAN(levels=2, channels=1, size=28, z_dim=8, coarse="dcgan", coarse_base=8, base=4, d_base=4)
    assert lap.sizes == [28, 14]
    assert type(lap.generators[1]).__name__ == "DCGenerator"
    assert type(lap.discriminators[1]).__name__ == "DCDiscriminator"
    st.manual_seed(0)
    levels = lap.sample(3, return_levels=True)
    assert [tuple(i.shape) for i in levels] == [(3, 1, 28, 28), (3, 1, 14, 14)]
    with pytest.raises(ValueError, match="coarse must be"):
        LAPGAN(levels=2, coarse="vae")

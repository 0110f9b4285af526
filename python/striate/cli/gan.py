"""The generative half of the ``striate`` command line: GAN training tasks and ``striate sample``.

    striate train --task gan|cgan|superres|lapgan --data mnist5k --epochs N --out runs/x
    striate train --task stackgan --data shapes --epochs N --out runs/x
    striate sample --checkpoint runs/x --n 64 --out grid.png [--label 7] [--caption "a red circle"]

``--epochs N``: StackGAN trains N epochs at stage I and N/8 (or ``--stage2-epochs``) at
stage II; LAPGAN (levels 28 <- 14, a DCGAN top) trains N epochs at the refinement level
and 3N at the top.

``sample`` for superres draws the first n held-out test digits: the grid holds the
14x14 inputs (nearest-upsampled), then the 28x28 outputs, then the originals.

Every task trains through the library (:func:`striate.train.fit_gan`,
:func:`striate.train.fit_lapgan`, :func:`striate.train.fit_stackgan`),
which write per-epoch sample grids, loss curves and resumable checkpoints in the
run folder. At the end the task writes ``generator.safetensors``: the trained
generator(s) with the settings needed to rebuild them under ``"meta"``; that is
what ``striate sample`` reads (give it the file or the run folder).

Images: MNIST5k digits (28x28, 4,000 train / 1,000 held-out test) and
single-shape ``Shapes`` (32x32, captions; without pixel noise for StackGAN).
``superres`` learns 14 -> 28 (2x2 box-downsampled digits back to full size) and
reports the held-out PSNR of its output next to bicubic (Pillow) and ``pyr_up``
upsampling.
"""
from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np

from ..train.gan import GANWarning
from ..train.loop import load_weights

GAN_TASKS = ("gan", "cgan", "superres", "lapgan", "stackgan")
GAN_DATA = {"gan": ("mnist5k",), "cgan": ("mnist5k",), "superres": ("mnist5k",), "lapgan": ("mnist5k",),
            "stackgan": ("shapes",)}
GAN_MODELS = {"gan": ("dcgan", "mlp"), "cgan": ("dcgan", "mlp"), "superres": ("imagecond",),
              "lapgan": ("lapgan",), "stackgan": ("stackgan",)}
# Defaults tuned for the 2-core CPU (each run well under 15 minutes).
GAN_DEFAULTS = {"gan": {"epochs": 20, "batch_size": 64, "lr": 2e-4},
                "cgan": {"epochs": 20, "batch_size": 64, "lr": 2e-4},
                "superres": {"epochs": 10, "batch_size": 64, "lr": 2e-4},
                "lapgan": {"epochs": 15, "batch_size": 64, "lr": 2e-4},
                "stackgan": {"epochs": 80, "batch_size": 64, "lr": 2e-4}}
Z_DIM = {"gan": 64, "cgan": 64, "superres": 16, "lapgan": 32, "stackgan": 32}
DCGAN_BASE = 32
SUPERRES_RECON_WEIGHT = 10.0
STACKGAN_TRAIN, STACKGAN_EMBED, STACKGAN_C_DIM, STACKGAN_LAMBDA = 4000, 128, 16, 2.0
# Captions as HashingTextEncoder(128, scale=sqrt(128)) rows; D gets 8 input-level text planes;
# stage II trains an eighth of stage I's epochs (it is ~6x slower per epoch).
STACKGAN_TEXT_SCALE, STACKGAN_TEXT_PLANES, STACKGAN_STAGE2_SHARE = 128 ** 0.5, 8, 8
# Pixel noise of the training Shapes (the dataset's default is 0.04): without it the GAN follows the
# captions better (held-out kind+colour 0.285 against 0.175 with it, same schedule; single-draw scores).
STACKGAN_NOISE = 0.0
# --word-classifier: the stage-II word classifier's supervised warm-up, in epochs over this many
# times the GAN's caption-image pairs (those are the first of them): 6 epochs over 12,000.
STACKGAN_WORD_WARMUP, STACKGAN_WORD_DATA = 6, 3
GENERATOR_FILE = "generator.safetensors"
# LAPGAN on 28x28 digits: levels 28 <- 14, the 14x14 top a DCGAN trained LAPGAN_COARSE_EPOCHS
# times as many epochs as the refinement level (an MLP on a 7x7 top of 3 levels gave poor
# class coverage within the time budget).
LAPGAN_LEVELS, LAPGAN_COARSE, LAPGAN_COARSE_EPOCHS = 2, "dcgan", 3


def add_train_options(parser) -> None:
    """Options only the GAN tasks read (``striate train``)."""
    group = parser.add_argument_group("GAN tasks (gan, cgan, superres, lapgan, stackgan)")
    group.add_argument("--k", type=int, default=1, help="discriminator steps per generator step (default 1)")
    group.add_argument("--loss", choices=("nonsaturating", "minimax"), default="nonsaturating",
                       help="generator loss (default nonsaturating)")
    group.add_argument("--z-dim", type=int, default=None, help="noise length (default per task)")
    group.add_argument("--word-weight", type=float, default=0.0,
                       help="stackgan: weight of the auxiliary caption-word term (default 0: the seed's "
                       "losses only); D then also names the caption's words from the image, and G is "
                       "trained to make them readable")
    group.add_argument("--stage2-epochs", type=int, default=None,
                       help="stackgan: stage-II epochs (default an eighth of --epochs)")
    group.add_argument("--stage2-pool", action="store_true",
                       help="stackgan: the stage-II discriminator downsamples by 3x3 conv + max-pool "
                       "instead of strided 4x4 convs (slower; reads the shape kind better)")
    group.add_argument("--word-classifier", action="store_true",
                       help="stackgan, with --word-weight: the stage-II discriminator names the words with "
                       f"a separate small conv net, first trained alone for {STACKGAN_WORD_WARMUP} epochs on "
                       f"{STACKGAN_WORD_DATA}x as many real caption-image pairs as the GAN's")
    group.add_argument("--word-freeze", action="store_true",
                       help="stackgan, with --word-classifier: keep the word classifier fixed after its warm-up "
                       "(a pretrained judge of G's words; each stage-II epoch is about a third faster)")
    group.add_argument("--stage2-lambda", type=float, default=None,
                       help=f"stackgan: the KL weight of stage II (default {STACKGAN_LAMBDA:g}, as stage I)")
    group.add_argument("--classifier", default=None,
                       help="digits.safetensors of experiments/gan_classifiers.py: record the class "
                       "histogram of the samples per epoch (mode-collapse check)")


def add_sample_parser(commands) -> None:
    sample = commands.add_parser("sample", help="draw samples from a trained generator into a PNG grid")
    sample.add_argument("--checkpoint", required=True,
                        help=f"a run folder or its {GENERATOR_FILE} (written by striate train --task gan|...)")
    sample.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--out", default="samples.png", help="the PNG grid (default samples.png)")
    sample.add_argument("--label", type=int, default=None, help="cgan: the class to draw (default: all, cycled)")
    sample.add_argument("--caption", default=None, help='stackgan: the text, e.g. "a red triangle"')
    sample.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    sample.add_argument("--nrow", type=int, default=8, help="images per row (default 8)")
    sample.add_argument("--scale", type=int, default=2, help="integer enlargement of each image (default 2)")


# ------------------------------------------------------------------------------ data
def mnist_images(train: bool, limit=None, seed: int = 0):
    """(images (N, 1, 28, 28) in [0, 1], labels) of MNIST5k as Tensors; limit picks a fixed subset."""
    from ..data import MNIST5k

    data = MNIST5k(train=train)
    pick = np.arange(len(data))
    if limit is not None and limit < len(data):
        pick = np.sort(np.random.default_rng(seed).permutation(len(data))[:limit])
    return data.get_batch(pick.astype(np.int64))


def downsample(images):
    """The 2x box downsampling that makes super-resolution's low-resolution inputs."""
    from ..nn import functional as F

    return F.avg_pool2d(images, 2)


# ------------------------------------------------------------------------------ models
def build_generator(meta: dict):
    """The generator a run's ``meta`` describes (untrained)."""
    from .. import models

    task, z = meta["task"], meta["z_dim"]
    if task in ("gan", "cgan"):
        classes = 10 if task == "cgan" else None
        if meta["model"] == "mlp":
            return models.MLPGenerator(z, (1, 28, 28), num_classes=classes)
        return models.DCGenerator(z, 1, 28, base=meta.get("base", DCGAN_BASE), num_classes=classes)
    if task == "superres":
        return models.ImageConditionedGenerator(z, 1, scale=2, base=meta.get("base", 32), residual=True)
    if task == "lapgan":
        return models.LAPGAN(levels=meta.get("levels", LAPGAN_LEVELS), channels=1, size=28, z_dim=z,
                             coarse=meta.get("coarse", LAPGAN_COARSE))
    if task == "stackgan":
        from ..models.stackgan import StageIGenerator, StageIIGenerator

        return (StageIGenerator(z, STACKGAN_EMBED, STACKGAN_C_DIM),
                StageIIGenerator(STACKGAN_EMBED, STACKGAN_C_DIM))
    raise ValueError(f"unknown GAN task {task!r}; expected one of {GAN_TASKS}")


def _build_discriminator(meta: dict):
    from .. import models

    task = meta["task"]
    classes = 10 if task == "cgan" else None
    if meta["model"] == "mlp":
        return models.MLPDiscriminator((1, 28, 28), num_classes=classes)
    if task in ("gan", "cgan"):
        return models.DCDiscriminator(1, 28, base=meta.get("base", DCGAN_BASE), num_classes=classes)
    return models.ImageConditionedDiscriminator(1, base=meta.get("base", 32))


def load_digit_classifier(path):
    """The LeNet-5 digit judge saved by experiments/gan_classifiers.py (None for no path), in eval mode."""
    if path is None:
        return None
    import striate as st
    from .. import models

    model = models.lenet5()
    model.load_state_dict(st.load(path))
    return model.eval()


def _save_generator(out, meta, state) -> str:
    import striate as st

    path = os.path.join(out, GENERATOR_FILE)
    st.save({"meta": meta, "state": state}, path)
    return path


def load_generator(checkpoint):
    """(generator, meta) from a run folder or its ``generator.safetensors``; stackgan gives (G0, G1)."""
    import striate as st

    path = os.path.join(checkpoint, GENERATOR_FILE) if os.path.isdir(checkpoint) else checkpoint
    if not os.path.isfile(path):
        raise ValueError(f"sample: {path} does not exist; train with "
                         f"`striate train --task gan|cgan|superres|lapgan|stackgan --out <run folder>` first")
    saved = st.load(path)
    meta = (saved.get("meta") if isinstance(saved, dict) else None) or {}
    if not isinstance(meta, dict) or meta.get("task") not in GAN_TASKS:
        raise ValueError(f"sample: {path} was not written by a GAN task of striate train "
                         f"({', '.join(GAN_TASKS)})")
    if "state" not in saved and "G" in saved and meta["task"] in ("gan", "cgan", "superres"):
        # fit_gan's resumable checkpoint (last.safetensors) of a single generator
        saved = {"state": saved["G"]}
    if "state" not in saved:
        raise ValueError(f"sample: {path} holds no generator; use the run folder's {GENERATOR_FILE}")
    model = build_generator(meta)
    if meta["task"] == "stackgan":
        load_weights(model[0], saved["state"]["G0"], path, "sample")
        load_weights(model[1], saved["state"]["G1"], path, "sample")
        for g in model:
            g.eval()
    else:
        load_weights(model, saved["state"], path, "sample")
        model.eval()
    return model, meta


# ------------------------------------------------------------------------------ training
def run(args) -> dict:
    """Train the GAN task args name; returns the figures printed at the end."""
    import striate as st

    defaults = GAN_DEFAULTS[args.task]
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.model = args.model or GAN_MODELS[args.task][0]
    args.data = args.data or GAN_DATA[args.task][0]
    if args.model not in GAN_MODELS[args.task]:
        raise ValueError(f"train: --model {args.model} is not a {args.task} model; "
                         f"choose from {', '.join(GAN_MODELS[args.task])}")
    if args.data not in GAN_DATA[args.task]:
        raise ValueError(f"train: --data {args.data} is not a {args.task} dataset; "
                         f"choose from {', '.join(GAN_DATA[args.task])}")
    if args.k < 1:
        raise ValueError(f"train: --k must be at least 1, got {args.k}")
    if args.task != "stackgan" and (args.word_weight or args.stage2_epochs is not None or args.stage2_pool
                                    or args.word_classifier or args.word_freeze or args.stage2_lambda is not None):
        raise ValueError("train: --word-weight, --word-classifier, --word-freeze, --stage2-epochs, "
                         "--stage2-lambda and --stage2-pool are stackgan options")
    if not args.word_weight >= 0:
        raise ValueError(f"train: --word-weight must be >= 0, got {args.word_weight}")
    if args.word_classifier and not args.word_weight:
        raise ValueError("train: --word-classifier needs --word-weight > 0")
    if args.word_freeze and not args.word_classifier:
        raise ValueError("train: --word-freeze needs --word-classifier")
    if args.stage2_lambda is not None and not args.stage2_lambda >= 0:
        raise ValueError(f"train: --stage2-lambda must be >= 0, got {args.stage2_lambda}")
    if args.stage2_epochs is not None and args.stage2_epochs < 1:
        raise ValueError(f"train: --stage2-epochs must be at least 1, got {args.stage2_epochs}")
    if args.threads is not None:
        st.set_num_threads(args.threads)
    st.manual_seed(args.seed)
    meta = {"task": args.task, "model": args.model, "data": args.data, "z_dim": args.z_dim or Z_DIM[args.task],
            "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "k": args.k,
            "loss": args.loss, "seed": args.seed, "limit": args.limit}
    os.makedirs(args.out, exist_ok=True)
    print(f"training {args.task} ({args.model}) on {args.data}: {args.epochs} epochs, batch {args.batch_size}, "
          f"Adam lr {args.lr:g}, k {args.k}, {args.loss} loss, z {meta['z_dim']}, "
          f"{st.get_num_threads()} threads", flush=True)
    began = time.perf_counter()
    train = {"lapgan": _train_lapgan, "stackgan": _train_stackgan}.get(args.task, _train_fit_gan)
    with warnings.catch_warnings():  # diagnostics are reported as one line each, never raised
        warnings.simplefilter("always", GANWarning)
        warnings.showwarning = _show_warning
        result = train(args, meta)
    result["seconds"] = round(time.perf_counter() - began, 1)
    print(f"training took {result['seconds']:.1f} s; wrote {args.out}/ ({GENERATOR_FILE}, samples.png, "
          f"losses.png, ...)", flush=True)
    for key, value in result.items():
        if key != "seconds":
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return result


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning ({category.__name__}): {message}", file=sys.stderr, flush=True)


def _train_fit_gan(args, meta) -> dict:
    from ..data import DataLoader, TensorDataset
    from ..train import fit_gan

    images, labels = mnist_images(True, args.limit, args.seed)
    G, D = build_generator(meta), _build_discriminator(meta)
    if args.task == "superres":
        dataset = TensorDataset(images, downsample(images))
        extra = {"reconstruction": "l1", "reconstruction_weight": SUPERRES_RECON_WEIGHT}
    else:
        dataset = TensorDataset(images, labels)
        extra = {}
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
    history = fit_gan(G, D, loader, k=args.k, loss=args.loss, epochs=args.epochs, lr=args.lr, out=args.out,
                      resume=args.resume, progress=args.progress, classifier=load_digit_classifier(args.classifier),
                      num_classes=10 if args.classifier else None, meta=meta, **extra)
    history.save(args.out)
    _save_generator(args.out, meta, G.state_dict())
    result = {"d_real": history["d_real"][-1], "d_fake": history["d_fake"][-1],
              "diversity_ratio": history["diversity_ratio"][-1]}
    if args.task == "superres":
        result.update(superres_psnr(G))
    return result


def superres_psnr(G, seed: int = 0) -> dict:
    """Held-out PSNR (dB) of G's 2x output against bicubic and pyr_up from the same 14x14 inputs."""
    import striate as st
    from ..metrics import bicubic_upsample, psnr
    from ..nn import functional as F

    images, _ = mnist_images(False)
    low = downsample(images)
    G.eval()
    rng = np.random.default_rng(seed)
    with st.no_grad():
        z = st.tensor(rng.standard_normal((low.shape[0], G.z_dim)).astype(np.float32))
        fake = (G(z, low * 2 - 1).numpy() + 1) / 2
        pyr = F.pyr_up(low, output_size=(28, 28)).numpy()
    truth = images.numpy()
    return {"psnr_gan": psnr(np.clip(fake, 0, 1), truth),
            "psnr_bicubic": psnr(bicubic_upsample(low.numpy(), 28), truth),
            "psnr_pyr_up": psnr(np.clip(pyr, 0, 1), truth)}


def _train_lapgan(args, meta) -> dict:
    from ..train import fit_lapgan, save_image_grid

    images, _ = mnist_images(True, args.limit, args.seed)
    meta.update(levels=LAPGAN_LEVELS, coarse=LAPGAN_COARSE)
    lap = build_generator(meta)
    epochs = [args.epochs] * (lap.levels - 1) + [LAPGAN_COARSE_EPOCHS * args.epochs]
    histories = fit_lapgan(lap, images, epochs, out=args.out, batch_size=args.batch_size, lr=args.lr,
                           progress=args.progress, resume=args.resume, k=args.k, loss=args.loss, meta=meta)
    _save_generator(args.out, meta, lap.state_dict())
    save_image_grid(lap.sample(64), os.path.join(args.out, "samples.png"), nrow=8)
    return {f"level{k}_d_real": h["d_real"][-1] for k, h in sorted(histories.items())}


def stackgan_encoder():
    """The caption encoder of the stackgan task (training, sampling and evaluation)."""
    from ..text import HashingTextEncoder

    return HashingTextEncoder(STACKGAN_EMBED, scale=STACKGAN_TEXT_SCALE)


def _train_stackgan(args, meta) -> dict:
    from ..data import DataLoader, TensorDataset
    from ..data import shapes_text_data
    from ..models.stackgan import StageIDiscriminator, StageIIDiscriminator, stackgan_sample
    from ..train import fit_stackgan
    from ..train import save_image_grid

    encoder = stackgan_encoder()
    n_train = args.limit or STACKGAN_TRAIN
    # with --word-classifier, the word warm-up reads STACKGAN_WORD_DATA pairs; the GAN the first n_train
    data = shapes_text_data(STACKGAN_WORD_DATA * n_train if args.word_classifier else n_train, encoder,
                            size=32, seed=args.seed, noise=STACKGAN_NOISE)
    G0, G1 = build_generator(meta)
    stage1_epochs = args.epochs
    stage2_epochs = (args.stage2_epochs if args.stage2_epochs is not None
                     else max(1, args.epochs // STACKGAN_STAGE2_SHARE))
    stage2_lambda = STACKGAN_LAMBDA if args.stage2_lambda is None else args.stage2_lambda
    meta.update(stage2_epochs=stage2_epochs, word_weight=args.word_weight, stage2_pool=args.stage2_pool,
                word_classifier=args.word_classifier, word_freeze=args.word_freeze, stage2_lambda=stage2_lambda)
    # With the word term D reads the caption's words from the image alone, so the caption
    # joins D at 4x4 only (no input-level text planes).
    words = len(data.vocabulary) if args.word_weight else 0
    planes = 0 if words else STACKGAN_TEXT_PLANES
    def pairs(images, n):
        return TensorDataset(images[:n], data.phi[:n], *((data.words[:n],) if words else ()))
    # The authors' KL weighting (lambda 2 on the per-element mean): a batch-mean KL at lambda 1
    # pulls the conditioning code to N(0, I) and the samples stop depending on the caption.
    # mismatch: D also learns to reject real images under a wrong caption (matching-aware D).
    options = {"lr": args.lr, "progress": args.progress, "resume": args.resume, "g_loss": args.loss,
               "lam": STACKGAN_LAMBDA, "kl_reduction": "mean", "mismatch": True, "word_weight": args.word_weight}
    fit_stackgan(1, G0, StageIDiscriminator(STACKGAN_EMBED, text_planes=planes, words=words),
                 DataLoader(pairs(data.small, n_train), args.batch_size, shuffle=True),
                 stage1_epochs, out=os.path.join(args.out, "stage1"), **options)
    warmup = {}
    if args.word_classifier:
        warmup = {"word_warmup": STACKGAN_WORD_WARMUP, "word_freeze": args.word_freeze,
                  "warmup_loader": DataLoader(pairs(data.large, len(data.captions)), args.batch_size, shuffle=True)}
    options["lam"] = stage2_lambda
    fit_stackgan(2, G1, StageIIDiscriminator(STACKGAN_EMBED, text_planes=planes, words=words, pool=args.stage2_pool,
                                             word_classifier=args.word_classifier),
                 DataLoader(pairs(data.large, n_train), args.batch_size, shuffle=True),
                 stage2_epochs, out=os.path.join(args.out, "stage2"), G0=G0, **options, **warmup)
    _save_generator(args.out, meta, {"G0": G0.state_dict(), "G1": G1.state_dict()})
    captions = list(data.captions[:32])
    s0, s1 = stackgan_sample(G0, G1, encoder, captions)
    save_image_grid(s0, os.path.join(args.out, "samples_stage1.png"), nrow=8)
    save_image_grid(s1, os.path.join(args.out, "samples.png"), nrow=8)
    return {"stage1_size": int(s0.shape[-1]), "stage2_size": int(s1.shape[-1])}


# ------------------------------------------------------------------------------ sampling
def sample(args) -> str:
    """Write a grid of args.n samples from a trained generator to args.out; returns the path."""
    import striate as st
    from ..train import save_image_grid

    if args.n < 1:
        raise ValueError(f"sample: --n must be at least 1, got {args.n}")
    model, meta = load_generator(args.checkpoint)
    task = meta["task"]
    if args.label is not None and task != "cgan":
        raise ValueError(f"sample: --label needs a cgan generator, {args.checkpoint} is {task}")
    if args.caption is not None and task != "stackgan":
        raise ValueError(f"sample: --caption needs a stackgan generator, {args.checkpoint} is {task}")
    if args.label is not None and not 0 <= args.label < 10:
        raise ValueError(f"sample: --label must be a digit 0..9, got {args.label}")
    rng = np.random.default_rng(args.seed)
    st.manual_seed(args.seed)
    with st.no_grad():
        if task == "lapgan":
            images = model.sample(args.n)
        elif task == "stackgan":
            from ..models.stackgan import stackgan_sample

            caption = args.caption or "a red circle in the centre"
            z = st.tensor(rng.standard_normal((args.n, model[0].z_dim)).astype(np.float32))
            images = stackgan_sample(model[0], model[1], stackgan_encoder(),
                                     [caption] * args.n, z=z)[1]
        else:
            z = st.tensor(rng.standard_normal((args.n, model.z_dim)).astype(np.float32))
            if task == "gan":
                images = model(z)
            elif task == "cgan":
                labels = (np.full(args.n, args.label) if args.label is not None else np.arange(args.n) % 10)
                images = model(z, st.tensor(labels.astype(np.int64)))
            else:  # superres: held-out test digits; rows of inputs, outputs, then the originals
                from ..nn import functional as F
                from ..tensor import cat

                truth = mnist_images(False)[0][:args.n] * 2 - 1
                low = downsample(truth)
                images = cat([F.interpolate(low, scale_factor=2, mode="nearest"), model(z, low), truth])
    save_image_grid(images, args.out, nrow=args.nrow, scale=args.scale)
    print(f"wrote {args.n} {task} samples to {args.out}")
    return args.out

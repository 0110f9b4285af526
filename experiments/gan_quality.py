"""Measure the sample quality of trained GAN runs with the independent classifiers.

Reads the run folders written by ``striate train --task gan|cgan|lapgan|stackgan|superres``
(their ``generator.safetensors``) and the classifiers of ``experiments/gan_classifiers.py``,
and reports the issue's acceptance figures:

- gan, lapgan: over 1,000 samples, the digit classifier's class histogram, the largest
  class share, the classes present and the mean max-softmax confidence;
- cgan: for each label y, 100 samples drawn for y; the fraction classified as y,
  averaged over the 10 labels;
- stackgan: for the captions of 1,000 held-out single-shape ``Shapes`` images (seed 11,
  never seen in training), each sampled with 5 noise draws, the fraction of the 5,000 Stage-II
  samples whose kind and colour the
  attribute classifier reads as the caption's (also the classifier's own score on the
  real images of those captions, for reference). When a U-Net segmentation run exists
  (``striate train --task segment --model unet --out runs/seg_unet``), the kind is read a
  second time, by a network of another design trained for another task: the class most
  of the U-Net's non-background pixels take. It guards against samples that fool the
  attribute classifier, or any classifier like it, without showing the shape;
- superres: held-out PSNR of the generator against bicubic and ``pyr_up``.

Writes experiments/results/gan_quality.{json,md}.

Run: ``python experiments/gan_quality.py --runs runs --classifiers runs/classifiers``;
``--tasks stackgan_words`` judges the run folder ``runs/stackgan_words`` by its own task
(read from its meta) and reports it under that name.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

import striate as st
from striate.cli import gan as cli_gan
from striate.data import Shapes
from striate.metrics import sample_class_stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_classifiers import (attribute_accuracy, load_attribute_classifier, load_digit_classifier,  # noqa: E402
                             shape_attribute_set)

N_SAMPLES, PER_LABEL, HELD_OUT = 1000, 100, 1000
STACKGAN_DRAWS = 5   # noise draws per held-out caption: 5,000 StackGAN samples (standard error ~0.007)
OUT = Path(__file__).resolve().parent / "results"


def _to_unit(images) -> np.ndarray:
    return np.clip((images.numpy() + 1) / 2, 0, 1).astype(np.float32)


def _noise(n, dim, seed):
    return st.tensor(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))


def _class_stats(digits, images) -> dict:
    stats = sample_class_stats(digits, st.tensor(images), 10)
    return {"histogram": [int(c) for c in stats["histogram"]], "max_share": float(stats["max_share"]),
            "classes_present": int(stats["classes_present"]),
            "mean_confidence": float(stats["mean_confidence"])}


def judge_gan(G, meta, digits, seed=0) -> dict:
    with st.no_grad():
        if meta["task"] == "lapgan":
            st.manual_seed(seed)
            images = G.sample(N_SAMPLES)
        else:
            images = G(_noise(N_SAMPLES, G.z_dim, seed))
    return _class_stats(digits, _to_unit(images))


def judge_cgan(G, digits, seed=0) -> dict:
    per_label = []
    for y in range(10):
        with st.no_grad():
            images = G(_noise(PER_LABEL, G.z_dim, seed + y), st.tensor(np.full(PER_LABEL, y, np.int64)))
            pred = digits(st.tensor(_to_unit(images))).numpy().argmax(1)
        per_label.append(float((pred == y).mean()))
    return {"per_label": per_label, "mean_agreement": float(np.mean(per_label))}


def segmenter_kinds(segmenter, images, batch: int = 200) -> np.ndarray:
    """Kind ids (0 ellipse, 1 rectangle, 2 triangle): the U-Net's majority non-background class."""
    kinds = []
    with st.no_grad():
        for i in range(0, len(images), batch):
            labels = segmenter(st.tensor(images[i:i + batch])).numpy().argmax(1)
            counts = np.stack([(labels == c).sum((1, 2)) for c in (1, 2, 3)], axis=1)
            kinds.append(counts.argmax(1))
    return np.concatenate(kinds)


def load_segmenter(path):
    """The segmentation network of a ``striate train --task segment`` checkpoint, or None if absent."""
    if not path or not os.path.isfile(path):
        return None
    from striate.cli import train as cli_train
    state = st.load(path)
    meta = state["meta"]
    model = cli_train.build_model(meta["model"], meta.get("num_classes"), meta.get("model_args"))
    model.load_state_dict(state["model"])
    return model.eval()


def held_out_captions() -> list:
    """The captions of the held-out single-shape images of ``shape_attribute_set(HELD_OUT, seed=11)``."""
    data = Shapes(HELD_OUT, size=32, seed=11, max_shapes=1)
    return [data.caption(i) for i in range(HELD_OUT)]


def stackgan_samples(G, captions, draws: int = STACKGAN_DRAWS):
    """(Stage-II samples in [0, 1], draw after draw: (draws * len(captions), 3, S, S), (Stage-I side,
    Stage-II side)). Draw d: z from ``numpy.random.default_rng(d)``, the conditioning
    augmentation's eps after ``striate.manual_seed(d)``."""
    from striate.models.stackgan import stackgan_sample

    encoder, out = cli_gan.stackgan_encoder(), []
    for draw in range(draws):
        st.manual_seed(draw)   # the conditioning augmentation's eps comes from the global generator
        s0, s1 = stackgan_sample(G[0], G[1], encoder, captions, z=_noise(len(captions), G[0].z_dim, draw))
        out.append(_to_unit(s1))
    return np.concatenate(out), (int(s0.shape[-1]), int(s1.shape[-1]))


def judge_stackgan(G, attributes, segmenter=None, draws: int = STACKGAN_DRAWS) -> dict:
    """Kind and colour of Stage-II samples for the held-out captions, over ``draws`` noise draws.

    Draw d uses z from ``numpy.random.default_rng(d)`` and the conditioning augmentation's eps
    after ``striate.manual_seed(d)``. Each draw samples every caption once, so the figures are
    fractions of draws x 1,000 samples; ``per_draw`` gives each draw's kind-and-colour score.
    """
    images, kinds, colours = shape_attribute_set(HELD_OUT, seed=11)
    captions = held_out_captions()
    samples, sides = stackgan_samples(G, captions, draws)
    per_draw = [attribute_accuracy(attributes, d, kinds, colours)["both_accuracy"]
                for d in np.split(samples, draws)]
    fake = attribute_accuracy(attributes, samples, np.tile(kinds, draws), np.tile(colours, draws))
    real = attribute_accuracy(attributes, images, kinds, colours)
    result = {"stage1_size": sides[0], "stage2_size": sides[1], "draws": draws,
              "samples": fake, "per_draw": per_draw, "real_images": real, "examples": captions[:8]}
    if segmenter is not None:
        result["segmenter_kind"] = {
            "samples": float((segmenter_kinds(segmenter, samples) == np.tile(kinds, draws)).mean()),
            "real_images": float((segmenter_kinds(segmenter, images) == kinds).mean())}
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="folder holding the run folders gan, cgan, ...")
    parser.add_argument("--classifiers", default="runs/classifiers")
    parser.add_argument("--tasks", default=",".join(cli_gan.GAN_TASKS))
    parser.add_argument("--segmenter", default="runs/seg_unet/last.safetensors",
                        help="a U-Net segmentation checkpoint for the second kind check (skipped if absent)")
    args = parser.parse_args(argv)
    digits = load_digit_classifier(args.classifiers)
    report = {}
    results_path = OUT / "gan_quality.json"
    if results_path.is_file():
        report = json.loads(results_path.read_text())
    for name in args.tasks.split(","):
        folder = os.path.join(args.runs, name)
        if not os.path.isfile(os.path.join(folder, cli_gan.GENERATOR_FILE)):
            print(f"{name}: no run in {folder}, skipped")
            continue
        G, meta = cli_gan.load_generator(folder)
        task = meta["task"]
        if task in ("gan", "lapgan"):
            result = judge_gan(G, meta, digits)
        elif task == "cgan":
            result = judge_cgan(G, digits)
        elif task == "stackgan":
            result = judge_stackgan(G, load_attribute_classifier(args.classifiers),
                                    segmenter=load_segmenter(args.segmenter))
        else:
            result = cli_gan.superres_psnr(G)
        result["meta"] = meta
        report[name] = result
        print(f"{name}: {json.dumps({k: v for k, v in result.items() if k != 'meta'})}", flush=True)
    OUT.mkdir(exist_ok=True)
    results_path.write_text(json.dumps(report, indent=1) + "\n")
    (OUT / "gan_quality.md").write_text(markdown(report))
    return report


def markdown(report: dict) -> str:
    lines = ["# GAN sample quality (experiments/gan_quality.py)", "",
             "| run | criterion | measured | target |", "|---|---|---|---|"]
    for task in ("gan", "lapgan"):
        if task in report:
            r = report[task]
            lines.append(f"| {task} | classes present / largest share / mean confidence (1,000 samples) | "
                         f"{r['classes_present']} / {r['max_share']:.3f} / {r['mean_confidence']:.3f} | "
                         f"10 / ≤ 0.25 / ≥ 0.8 |")
    if "cgan" in report:
        r = report["cgan"]
        lines.append(f"| cgan | samples for y classified as y (mean of 10 labels) | {r['mean_agreement']:.3f} | "
                     f"≥ 0.8 |")
    for name in sorted(n for n, r in report.items() if r.get("meta", {}).get("task") == "stackgan"):
        r = report[name]
        lines.append(f"| {name} | Stage-II samples with the caption's kind and colour | "
                     f"{r['samples']['both_accuracy']:.3f} (kind {r['samples']['kind_accuracy']:.3f}, colour "
                     f"{r['samples']['colour_accuracy']:.3f}; {r['draws']} draws of the 1,000 captions, each "
                     f"{min(r['per_draw']):.3f}-{max(r['per_draw']):.3f}; real images "
                     f"{r['real_images']['both_accuracy']:.3f}) | ≥ 0.7 |")
        if "segmenter_kind" in r:
            k = r["segmenter_kind"]
            lines.append(f"| {name} | second check: Stage-II samples whose kind the U-Net segmenter reads as the "
                         f"caption's | {k['samples']:.3f} (real images {k['real_images']:.3f}) | (none) |")
        lines.append(f"| {name} | Stage-II / Stage-I side | {r['stage2_size']} / {r['stage1_size']} | 2x |")
    if "superres" in report:
        r = report["superres"]
        lines.append(f"| superres | held-out PSNR (dB): GAN / bicubic / pyr_up | {r['psnr_gan']:.2f} / "
                     f"{r['psnr_bicubic']:.2f} / {r['psnr_pyr_up']:.2f} | GAN above both |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

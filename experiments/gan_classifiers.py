"""Train the two independent classifiers that judge GAN samples, and report their accuracy.

- ``digits.safetensors``: LeNet-5 trained on MNIST5k's 4,000 training digits (the
  ``striate demo`` recipe: 15 epochs, batch 32, Adam 2e-3, cosine schedule), scored on
  the 1,000 test digits. It judges DCGAN, cGAN and LAPGAN samples (class coverage,
  confidence, label agreement).
- ``shape_attributes.safetensors``: ``striate.models.ShapeAttributeNet`` trained on
  real single-shape ``Shapes`` images (32x32, seed 10) to name the shape's kind and
  colour, scored on a held-out set (seed 11). It judges StackGAN samples.

The classifiers see images in [0, 1]. Neither is ever trained on generated images.

Run: ``python experiments/gan_classifiers.py [--out runs/classifiers]`` (a few minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import striate as st
from striate import models, optim
from striate.data import DataLoader, MNIST5k, Shapes, TensorDataset
from striate.nn import functional as F
from striate.train import evaluate, fit

SHAPES_TRAIN, SHAPES_TEST = 6000, 1000


def train_digit_classifier(out: str, seed: int = 0) -> dict:
    st.manual_seed(seed)
    model = models.lenet5()
    opt = optim.Adam(model.parameters(), lr=2e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, 15)
    test = DataLoader(MNIST5k(train=False), batch_size=256)
    fit(model, DataLoader(MNIST5k(train=True), batch_size=32, shuffle=True), opt, 15, scheduler=sched,
        progress=True)
    result = evaluate(model, test)
    st.save(model.state_dict(), os.path.join(out, "digits.safetensors"))
    return {"test_accuracy": result["accuracy"]}


def shape_attribute_set(n: int, seed: int, size: int = 32):
    """Single-shape Shapes images in [0, 1] with (kind, colour) class ids."""
    data = Shapes(n, size=size, seed=seed, max_shapes=1)
    images = np.stack([data[i][0].numpy() for i in range(n)])
    attrs = [data.attributes(i)[0] for i in range(n)]
    kinds = np.array([Shapes.class_names.index(a["kind"]) - 1 for a in attrs], np.int64)
    colours = np.array([list(Shapes.colours).index(a["colour"]) for a in attrs], np.int64)
    return images, kinds, colours


def attribute_accuracy(model, images, kinds, colours, batch: int = 250) -> dict:
    model.eval()
    pk, pc = [], []
    with st.no_grad():
        for i in range(0, len(images), batch):
            k, c = model(st.tensor(images[i:i + batch]))
            pk.append(k.numpy().argmax(1))
            pc.append(c.numpy().argmax(1))
    pk, pc = np.concatenate(pk), np.concatenate(pc)
    return {"kind_accuracy": float((pk == kinds).mean()), "colour_accuracy": float((pc == colours).mean()),
            "both_accuracy": float(((pk == kinds) & (pc == colours)).mean())}


def train_attribute_classifier(out: str, seed: int = 0, epochs: int = 8) -> dict:
    model = fit_attribute_classifier(models.ShapeAttributeNet, SHAPES_TRAIN, seed, epochs)
    st.save(model.state_dict(), os.path.join(out, "shape_attributes.safetensors"))
    return attribute_accuracy(model, *shape_attribute_set(SHAPES_TEST, seed=11))


def fit_attribute_classifier(make_model, n: int, seed: int = 0, epochs: int = 8):
    """Train make_model() -> (kind logits, colour logits) on n real single-shape Shapes (seed 10):
    cross-entropy on both heads, Adam 2e-3 with a cosine schedule, batch 64; prints the held-out
    (seed 11) accuracy each epoch and returns the model."""
    from tqdm import tqdm

    st.manual_seed(seed)
    images, kinds, colours = shape_attribute_set(n, seed=10)
    train = TensorDataset(st.tensor(images), st.tensor(np.stack([kinds, colours], axis=1)))
    test = shape_attribute_set(SHAPES_TEST, seed=11)
    model = make_model()
    opt = optim.Adam(model.parameters(), lr=2e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loader = DataLoader(train, batch_size=64, shuffle=True)
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y in tqdm(loader, desc=f"attributes epoch {epoch}/{epochs}", leave=False, file=sys.stderr):
            opt.zero_grad()
            k, c = model(x)
            loss = F.cross_entropy(k, y[:, 0]) + F.cross_entropy(c, y[:, 1])
            loss.backward()
            opt.step()
        sched.step()
        print(f"attributes epoch {epoch}: {attribute_accuracy(model, *test)}", file=sys.stderr, flush=True)
    return model


def load_digit_classifier(folder: str):
    from striate.cli import gan as cli_gan

    return cli_gan.load_digit_classifier(os.path.join(folder, "digits.safetensors"))


def load_attribute_classifier(folder: str):
    model = models.ShapeAttributeNet()
    model.load_state_dict(st.load(os.path.join(folder, "shape_attributes.safetensors")))
    return model.eval()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/classifiers", help="folder for the two weight files")
    parser.add_argument("--only", choices=("digits", "attributes"), default=None)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    report = {}
    for name, train in (("digits", train_digit_classifier), ("attributes", train_attribute_classifier)):
        if args.only in (None, name):
            began = time.perf_counter()
            report[name] = train(args.out)
            report[name]["seconds"] = round(time.perf_counter() - began, 1)
            print(f"{name}: {report[name]}", flush=True)
    with open(os.path.join(args.out, "classifiers.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()

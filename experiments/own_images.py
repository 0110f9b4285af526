"""The README's "Your own images" run: a folder of real photographs, fine-tuned from the command line.

Builds ``OUT/photos`` (four classes cut from scikit-image's bundled photos, ``chelsea``,
``coffee``, ``astronaut`` and ``coins``: 16 random square crops each, some mirrored, saved as
PNG, JPEG and BMP in turn) and ``OUT/three`` (the first three classes again), then runs, through
``striate.cli.main``, exactly the commands the README shows: train ResNet-18 at 32x32 with a
quarter held out, ``eval`` the run, ``predict`` two files, and train on the three classes from
the first run's weights with the backbone frozen.

    python experiments/own_images.py --out /tmp/own_images
"""
from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
from PIL import Image

CLASSES = ("astronaut", "cat", "coffee", "coins")
CROPS = 16


def build(root: str, seed: int = 0) -> None:
    from skimage import data

    photos = {"astronaut": data.astronaut(), "cat": data.chelsea(), "coffee": data.coffee(), "coins": data.coins()}
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        img = photos[name]
        os.makedirs(os.path.join(root, name))
        h, w = img.shape[:2]
        for i in range(CROPS):
            side = int(min(h, w) * rng.uniform(0.4, 0.8))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            crop = Image.fromarray(img[y:y + side, x:x + side])
            if rng.random() < 0.5:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            crop.save(os.path.join(root, name, f"{name}_{i:02d}{('.png', '.jpg', '.bmp')[i % 3]}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/own_images", help="work folder (emptied first)")
    args = parser.parse_args()
    from striate import cli

    shutil.rmtree(args.out, ignore_errors=True)
    photos, three, runs = (os.path.join(args.out, d) for d in ("photos", "three", "runs"))
    build(photos)
    os.makedirs(three)
    for name in ("cat", "coffee", "coins"):
        shutil.copytree(os.path.join(photos, name), os.path.join(three, name))
    common = ["--model", "resnet18", "--image-size", "32", "--batch-size", "8", "--no-progress"]
    cli.main(["train", "--data", photos, "--epochs", "15", "--val-fraction", "0.25",
              "--out", os.path.join(runs, "ft")] + common)
    checkpoint = os.path.join(runs, "ft", "last.safetensors")
    cli.main(["eval", "--checkpoint", checkpoint])
    cli.main(["predict", "--checkpoint", checkpoint, "--topk", "2", "--images",
              os.path.join(photos, "cat", "cat_02.bmp"), os.path.join(photos, "coffee", "coffee_04.jpg")])
    cli.main(["train", "--data", three, "--epochs", "5", "--pretrained", checkpoint, "--freeze-backbone",
              "--out", os.path.join(runs, "ft3")] + common)


if __name__ == "__main__":
    main()

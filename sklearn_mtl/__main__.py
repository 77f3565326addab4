"""Demo: ``python -m sklearn_mtl``.

Trains one multi-task network on scikit-learn's bundled digits images with three
tasks (the digit, its parity, whether it is >= 5) and prints a per-task table.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._estimator import MultiTaskClassifier


def _int_in(low: int, high: int):
    """An argparse type: an integer in ``[low, high]``, a usage error otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            bound = f"at least {low}" if high == sys.maxsize else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {text}")
        return value

    return parse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sklearn_mtl", description=__doc__)
    parser.add_argument("--max-iter", type=_int_in(1, sys.maxsize), default=100)
    # The range numpy and scikit-learn take as a seed.
    parser.add_argument("--random-state", type=_int_in(0, 2**32 - 1), default=0)
    args = parser.parse_args(argv)

    X, digit = load_digits(return_X_y=True)
    y = np.empty((len(digit), 3), dtype=object)  # keep each task's label type
    y[:, 0], y[:, 1], y[:, 2] = digit, np.where(digit % 2, "odd", "even"), digit >= 5
    names = ["digit", "parity", "is_large"]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=args.random_state, stratify=digit
    )
    model = make_pipeline(
        StandardScaler(),
        MultiTaskClassifier(
            hidden_layer_sizes=(64, 64),
            max_iter=args.max_iter,
            early_stopping=True,
            random_state=args.random_state,
        ),
    )
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    y_pred = model.predict(X_test)
    net = model[-1]

    print(
        f"sklearn-mtl demo: digits ({X.shape[0]} images, {X.shape[1]} pixels), "
        f"{len(names)} tasks in one network {net.hidden_layer_sizes}"
    )
    print(f"trained {net.n_iter_} epochs in {seconds:.1f} s on {net.engine_.device}\n")
    header = f"{'task':<10}{'kind':<12}{'classes':>8}{'accuracy':>10}{'macro F1':>10}"
    print(header)
    print("-" * len(header))
    for j, (name, task) in enumerate(zip(names, net.tasks_.tasks)):
        # Object columns -> arrays of their own label type for the metrics.
        true, pred = (
            np.asarray(y_test[:, j].tolist()),
            np.asarray(y_pred[:, j].tolist()),
        )
        print(
            f"{name:<10}{task.kind:<12}{len(task.classes):>8}"
            f"{accuracy_score(true, pred):>10.3f}"
            f"{f1_score(true, pred, average='macro'):>10.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How sklearn-mtl's fit time grows with rows and with tasks, next to a hand loop.

Rows: 10k / 100k / 1M at 3 tasks. Tasks: 1 / 3 / 10 / 30 at 100k rows, against a
hand loop with one fused head and one with an ``nn.Linear`` per task. Same
network and optimizer as ``bench_training.py``; one epoch; median of
``--repeats`` round-robin runs (one run for 1M rows).

Usage (from the repository root)::

    python benchmarks/bench_scaling.py            # ~1-3 minutes
    python benchmarks/bench_scaling.py --rows 10000 100000 --tasks 1 3
"""

from __future__ import annotations

import argparse
import json
import sys

import torch  # noqa: E402
from _common import (
    hand_loop,
    machine,
    make_data,
    median,
    ours,
    print_table,
    timed_fit,
)


def fit_ours(X, Y, epochs):
    clf = ours(epochs)
    return timed_fit(clf, X, Y)


SYSTEMS = {
    "sklearn-mtl": fit_ours,
    "hand loop": lambda X, Y, e: hand_loop(X, Y, e)[0],
    "hand loop, head per task": lambda X, Y, e: hand_loop(X, Y, e, True)[0],
}


def measure(n_rows, n_tasks, n_features, epochs, repeats, systems):
    X, Y, _, _ = make_data(n_rows, n_features, n_tasks, n_test=10)
    times = {name: [] for name in systems}
    for _ in range(repeats):
        for name in systems:
            times[name].append(SYSTEMS[name](X, Y, epochs))
    row = {"rows": n_rows, "tasks": n_tasks, "epochs": epochs}
    for name in systems:
        row[name] = round(median(times[name]), 3)
    row["ratio"] = round(row["sklearn-mtl"] / row["hand loop"], 3)
    if "hand loop, head per task" in row:
        row["ratio_per_task_heads"] = round(
            row["sklearn-mtl"] / row["hand loop, head per task"], 3
        )
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 10**6])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 3, 10, 30])
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="/tmp/sklearn_mtl_scaling.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    # Warm-up: lazy initialisation is not timed.
    measure(2000, 3, args.n_features, 1, 1, list(SYSTEMS))

    by_rows = []
    for n in args.rows:
        repeats = 1 if n >= 10**6 else args.repeats
        row = measure(
            n, 3, args.n_features, args.epochs, repeats, ["hand loop", "sklearn-mtl"]
        )
        row["s per 100k rows"] = round(row["sklearn-mtl"] / n * 1e5, 3)
        by_rows.append(row)
        print(row, flush=True)
    by_tasks = []
    for t in args.tasks:
        by_tasks.append(
            measure(100_000, t, args.n_features, args.epochs, args.repeats, SYSTEMS)
        )
        print(by_tasks[-1], flush=True)

    def fmt(row):
        return {k: f"{v:.3f}" if isinstance(v, float) else v for k, v in row.items()}

    print(f"\nRows (3 tasks, {args.epochs} epoch, {args.threads} threads):")
    print_table(
        [fmt(r) for r in by_rows],
        ["rows", "hand loop", "sklearn-mtl", "ratio", "s per 100k rows"],
    )
    print("\nTasks (100k rows):")
    print_table(
        [fmt(r) for r in by_tasks],
        [
            "tasks",
            "hand loop",
            "hand loop, head per task",
            "sklearn-mtl",
            "ratio",
            "ratio_per_task_heads",
        ],
    )
    out = {"machine": machine(), "rows": by_rows, "tasks": by_tasks}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json}")
    return out


if __name__ == "__main__":
    sys.exit(main() and 0)

"""Sparse X: fit time and peak memory next to scikit-learn's MLPClassifier.

A TF-IDF-like random matrix (default 40k x 25k at 0.2 % density: 2M non-zeros,
4 GB if dense in float32; Zipf-distributed columns, rows L2-normalised), two
binary tasks. sklearn-mtl fits both tasks in one network; ``MLPClassifier``
fits the first task (one task, same hidden size, batch size and epochs). Each
model runs in its own subprocess, so its peak RSS is its own; the data-only
RSS of a process that just builds the matrix is reported beside them.

``--design`` also times one training step of the first layer on a batch of the
matrix, two ways: the per-batch dense gather sklearn-mtl uses (gather +
``nn.Linear``) and a sparse first layer (CSR batch @ weights), each with its
Adam step: the measurement behind the design choice (see ``_sparse.py``).

Usage (from the repository root; a few minutes on 2 cores)::

    python benchmarks/bench_sparse.py [/tmp/bench_sparse.json] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp
from _common import current_rss_bytes, machine, peak_rss_bytes, print_table

HIDDEN = (64,)
BATCH = 256


def tfidf_like(n, d, density, seed=0):
    """Rows of Zipf-distributed terms, L2-normalised: a TF-IDF-shaped CSR matrix."""
    terms = density * d
    for _ in range(4):  # a repeated term folds into one value: aim again
        rng = np.random.RandomState(seed)
        per_row = rng.poisson(terms, n).clip(1)
        indptr = np.r_[0, np.cumsum(per_row)]
        ranks = rng.zipf(1.3, indptr[-1]) % d
        cols = rng.permutation(d)[ranks]  # frequent terms spread over the columns
        vals = rng.rand(indptr[-1]).astype(np.float32) + 0.1
        X = sp.csr_matrix((vals, cols, indptr), shape=(n, d))
        X.sum_duplicates()
        terms *= density * n * d / X.nnz
    norms = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())
    X = sp.csr_matrix(sp.diags(1 / norms) @ X, dtype=np.float32)
    w = rng.randn(d, 2) * (rng.rand(d, 2) < 0.05)
    Y = (np.asarray(X @ w) > 0).astype(int)
    return X, Y


def run_model(args):
    """In a fresh process: build the data, fit one model, report time and RSS."""
    X, Y = tfidf_like(args.rows, args.features, args.density)
    data_rss = current_rss_bytes()
    warnings.simplefilter("ignore")
    # The same network and optimiser settings for both models.
    common = dict(
        hidden_layer_sizes=HIDDEN,
        batch_size=BATCH,
        max_iter=args.epochs,
        learning_rate_init=1e-3,
        random_state=0,
    )
    if args.model == "sklearn-mtl":
        from sklearn_mtl import MultiTaskClassifier

        est = MultiTaskClassifier(**common, device="cpu")
        y = Y
    elif args.model == "MLPClassifier":
        from sklearn.neural_network import MLPClassifier

        est = MLPClassifier(**common)
        y = Y[:, 0]
    else:  # only the data
        print(
            json.dumps({"model": "data only", "peak_rss_mb": peak_rss_bytes() / 2**20})
        )
        return
    start = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - start
    train_acc = float(np.mean(est.predict(X[:5000]) == y[:5000]))
    print(
        json.dumps(
            {
                "model": args.model,
                "fit_s": fit_s,
                "epochs": args.epochs,
                "tasks": int(np.ndim(y) == 2 and y.shape[1] or 1),
                "peak_rss_mb": peak_rss_bytes() / 2**20,
                "data_rss_mb": data_rss / 2**20,
                "train_accuracy_first_5000": train_acc,
            }
        )
    )


def design(X, n_steps=20):
    """ms per first-layer training step: dense gather vs two sparse layers.

    "sparse CSR @ W" keeps ``nn.Linear``'s (width, features) weight and
    multiplies by its transpose; "embedding_bag" stores the weight as
    (features, width) and sums the rows of each sample's non-zeros, weighted
    by their values (the classic sparse linear layer).
    """
    import torch

    from sklearn_mtl._sparse import SparseRows

    rows = SparseRows.from_scipy(X, device="cpu")
    d = X.shape[1]
    gen = torch.Generator().manual_seed(0)
    out = {}
    names = ("dense gather + Linear", "sparse CSR @ W", "embedding_bag (d, h) weight")
    for name in names:
        torch.manual_seed(0)
        layer = torch.nn.Linear(d, HIDDEN[0])
        table = torch.nn.Parameter(layer.weight.detach().t().contiguous())
        params = [table, layer.bias] if name.startswith("embedding") else None
        opt = torch.optim.Adam(params or layer.parameters(), foreach=True)
        times = []
        for step in range(n_steps + 2):
            idx = torch.randperm(X.shape[0], generator=gen)[:BATCH]
            t0 = time.perf_counter()
            opt.zero_grad()
            if name.startswith("dense"):
                h = layer(rows.index_select(0, idx))
            elif name.startswith("embedding"):
                sub = rows.take(idx)
                h = layer.bias + torch.nn.functional.embedding_bag(
                    sub.col,
                    table,
                    sub.crow[:-1],
                    mode="sum",
                    per_sample_weights=sub.val,
                )
            else:
                sub = rows.take(idx)
                xb = torch.sparse_csr_tensor(
                    sub.crow, sub.col, sub.val, size=(BATCH, d)
                )
                h = torch.addmm(layer.bias, xb, layer.weight.t())
            torch.relu(h).sum().backward()
            opt.step()
            if step >= 2:  # warm-up
                times.append(time.perf_counter() - t0)
        out[name] = 1000 * float(np.median(times))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="/tmp/bench_sparse.json")
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--features", type=int, default=25_000)
    parser.add_argument("--density", type=float, default=0.002)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--no-design", dest="design", action="store_false")
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model:
        return run_model(args)

    import subprocess

    common = [
        f"--rows={args.rows}",
        f"--features={args.features}",
        f"--density={args.density}",
        f"--epochs={args.epochs}",
    ]
    results = []
    for model in ("data", "sklearn-mtl", "MLPClassifier"):
        proc = subprocess.run(
            [sys.executable, __file__, *common, f"--model={model}"],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    X, _ = tfidf_like(args.rows, args.features, args.density)
    report = {
        "machine": machine(),
        "data": {
            "rows": args.rows,
            "features": args.features,
            "nnz": int(X.nnz),
            "density": X.nnz / (args.rows * args.features),
            "dense_float32_mb": args.rows * args.features * 4 / 2**20,
            "csr_mb": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20,
        },
        "hidden_layer_sizes": HIDDEN,
        "batch_size": BATCH,
        "results": results,
    }
    ours, mlp = results[1], results[2]
    report["fit_time_ratio_mtl_over_mlp"] = ours["fit_s"] / mlp["fit_s"]
    if args.design:
        report["first_layer_step_ms"] = design(X)
    print_table(
        [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
            for r in results
        ],
        ["model", "tasks", "epochs", "fit_s", "peak_rss_mb", "data_rss_mb"],
    )
    print(
        f"fit time ratio (sklearn-mtl / MLPClassifier): "
        f"{report['fit_time_ratio_mtl_over_mlp']:.2f}"
    )
    if args.design:
        print("first-layer step (ms):", report["first_layer_step_ms"])
    with open(args.output, "w") as f:
        json.dump(report, f, indent=2)
    print("wrote", args.output)


if __name__ == "__main__":
    main()

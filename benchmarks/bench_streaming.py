"""Streaming fit from dask against an in-memory fit: throughput, peak memory, quality.

Every measurement runs in a fresh subprocess, so its peak RSS is its own: the
growth reported is the process's peak RSS minus its RSS after the imports, before
any data exists.

- ``memory``: the data generated in memory (numpy), then ``fit``.
- ``dask``: a lazily generated dask array (never stored), streamed block by block.
- ``parquet``: the same rows written to parquet files first, streamed with
  ``dask.dataframe.read_parquet``.

Quality: the same data sorted by its first feature (blocks that are not
i.i.d.), block-shuffled streaming against a fully shuffled in-memory fit at
equal epochs, per block size; mean AUC over the tasks on a held-out set.

Usage::

    python benchmarks/bench_streaming.py --quick          # about a minute
    python benchmarks/bench_streaming.py                  # 1M, 10M, 50M rows
    python benchmarks/bench_streaming.py --out /tmp/streaming.json
    python benchmarks/bench_streaming.py --search [--quick]   # workers x threads
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

N_FEATURES, N_TASKS = 20, 3
HIDDEN, BATCH = (64, 64), 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _labels(X):
    """Three binary tasks sharing one low-rank structure (fixed weights)."""
    w = np.random.RandomState(1).normal(size=(X.shape[1], N_TASKS))
    return (np.tanh(X @ w[:, :1]) + 0.5 * (X @ w) > 0).astype(np.float32)


def lazy_data(n_rows, block):
    import dask.array as da

    X = da.random.default_rng(0).standard_normal(
        (n_rows, N_FEATURES), chunks=(block, N_FEATURES), dtype=np.float32
    )
    y = X.map_blocks(_labels, chunks=(X.chunks[0], (N_TASKS,)), dtype=np.float32)
    return X, y


def estimator(epochs, shuffle=True, early_stopping="auto"):
    from sklearn_mtl import MultiTaskClassifier

    return MultiTaskClassifier(
        hidden_layer_sizes=HIDDEN,
        batch_size=BATCH,
        learning_rate_init=1e-3,
        max_iter=epochs,
        shuffle=shuffle,
        early_stopping=early_stopping,
        random_state=0,
        device="cpu",
    )


def run_case(mode, n_rows, block, epochs, path):
    """One measurement, in this (fresh) process; returns a dict."""
    import torch

    import sklearn_mtl  # noqa: F401  (imports counted in the baseline)

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    import dask.dataframe as dd

    # Warm-up on tiny data: the first fit imports torch._dynamo (for Adam) and
    # dask's array code, seconds that belong to neither path.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Xw, yw = lazy_data(256, 128)
        estimator(1).fit(Xw, yw)
        estimator(1).fit(Xw.compute(), yw.compute())
    base = _rss_mb()
    if mode == "memory":
        X, y = lazy_data(n_rows, block)
        X, y = X.compute(), y.compute()
    elif mode == "dask":
        X, y = lazy_data(n_rows, block)
    else:
        df = dd.read_parquet(path)
        feats = [f"x{i}" for i in range(N_FEATURES)]
        X, y = df[feats], df[[f"task_{t}" for t in range(N_TASKS)]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est = estimator(epochs).fit(X, y)
        seconds = time.perf_counter() - start
    return {
        "mode": mode,
        "rows": n_rows,
        "block_rows": block,
        "epochs": epochs,
        "seconds": round(seconds, 2),
        "rows_per_s": round(n_rows * epochs / seconds),
        "peak_rss_growth_mb": round(_peak_mb() - base, 1),
        "final_loss": round(est.loss_curve_[-1], 4),
    }


def write_parquet(n_rows, block, path):
    """The lazily generated rows as parquet, one file per block."""
    import dask.dataframe as dd

    X, y = lazy_data(n_rows, block)
    cols = [f"x{i}" for i in range(N_FEATURES)] + [f"task_{t}" for t in range(N_TASKS)]
    import dask.array as da

    frame = dd.from_dask_array(da.concatenate([X, y], axis=1), columns=cols)
    frame.to_parquet(path, write_index=False)


def quality(n_rows, blocks, epochs):
    """Mean AUC: sorted data streamed per block size vs fully shuffled in memory."""
    import dask.array as da
    from sklearn.metrics import roc_auc_score

    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_rows + 20_000, N_FEATURES)).astype(np.float32)
    y = _labels(X)
    X_test, y_test = X[n_rows:], y[n_rows:]
    order = np.argsort(X[:n_rows, 0])  # sorted: consecutive blocks are not i.i.d.
    X, y = X[:n_rows][order], y[:n_rows][order]

    # No early stopping: in memory it holds out 10 % of the rows, a stream 10 %
    # of its blocks and a one-block stream nothing, so the fits would differ in
    # their training rows, not only in the order they see them.
    def fit(X, y):
        return estimator(epochs, early_stopping=False).fit(X, y)

    def auc(est):
        proba = est.predict_proba(X_test)
        return float(
            np.mean([roc_auc_score(y_test[:, t], p[:, 1]) for t, p in enumerate(proba)])
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [{"block_rows": "in memory", "auc": auc(fit(X, y))}]
        for block in blocks:
            Xd = da.from_array(X, chunks=(block, N_FEATURES))
            yd = da.from_array(y, chunks=(block, N_TASKS))
            rows.append({"block_rows": block, "auc": auc(fit(Xd, yd))})
    for row in rows:
        row["gap"] = round(rows[0]["auc"] - row["auc"], 4)
        row["auc"] = round(row["auc"], 4)
    return rows


def search_timing(n_rows, epochs):
    """GridSearchCV wall time: 2 workers x 1 thread vs 1 process x 2 threads.

    Also 1 worker x 2 threads, where the fit sets torch to the worker's 2 threads
    (a nanny starts its worker with OMP_NUM_THREADS=1). Workers are warmed up
    (torch imported) before the clock starts.
    """
    import joblib
    import torch
    from distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV

    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_rows, N_FEATURES)).astype(np.float32)
    y = _labels(X)
    grid = {"alpha": [1e-4, 1e-3, 1e-2, 1e-1]}

    def search(n_jobs):
        start = time.perf_counter()
        GridSearchCV(estimator(epochs), grid, cv=2, n_jobs=n_jobs).fit(X, y)
        return round(time.perf_counter() - start, 2)

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.set_num_threads(2)
        rows.append({"setting": "1 process x 2 torch threads", "seconds": search(1)})
        for workers, threads in ((2, 1), (1, 2)):
            with (
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads,
                    processes=True,
                    dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):
                client.run(lambda: __import__("sklearn_mtl"))
                with joblib.parallel_backend("dask"):
                    search(-1)  # warm-up: the estimator's first unpickle
                    seconds = search(-1)
                name = f"{workers} dask worker(s) x {threads} thread(s)"
                rows.append({"setting": name, "seconds": seconds})
    for row in rows:
        print(f"{row['setting']:34} {row['seconds']:>8} s")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (~1 min)")
    parser.add_argument("--out", default="/tmp/sklearn_mtl_bench_streaming.json")
    parser.add_argument("--epochs", type=int, default=1)
    # One thread: two torch threads on two busy cores stall (docs/benchmarks.md).
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case")
    parser.add_argument("--block", type=int, help="rows per block (streaming)")
    parser.add_argument("--quality-rows", type=int)
    parser.add_argument("--quality-epochs", type=int)
    parser.add_argument("--sizes", type=int, nargs="*", help="rows (overrides)")
    parser.add_argument("--lazy-only", type=int, nargs="*", default=None)
    parser.add_argument(
        "--search", action="store_true", help="only the GridSearchCV timing"
    )
    parser.add_argument("--case", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        mode, n, block, epochs, path = args.case
        print(json.dumps(run_case(mode, int(n), int(block), int(epochs), path)))
        return

    if args.search:
        n = 20_000 if args.quick else 100_000
        print(f"GridSearchCV, 4 candidates x 2 folds, {n:,} rows, {args.epochs} epoch")
        rows = search_timing(n, args.epochs)
        Path(args.out).write_text(json.dumps({"search": rows, "rows": n}, indent=2))
        print(f"\nwrote {args.out}")
        return

    sizes = args.sizes or ([20_000, 100_000] if args.quick else [1_000_000, 10_000_000])
    lazy_only = (
        args.lazy_only
        if args.lazy_only is not None
        else ([200_000] if args.quick else [50_000_000])
    )
    block = args.block or (10_000 if args.quick else 100_000)
    env = dict(os.environ, BENCH_THREADS=str(args.threads))
    results = {"repeats": args.repeats, "threads": args.threads, "block_rows": block}
    results.update(cases=[], quality=[])
    tmp = Path(tempfile.mkdtemp(prefix="bench_streaming_"))
    try:
        groups = [[(m, n) for m in ("memory", "dask", "parquet")] for n in sizes]
        groups += [[("dask", n)] for n in lazy_only]
        print(
            f"{'mode':8} {'rows':>11} {'rows/s':>10} {'peak RSS +MB':>13} {'s':>8}"
            f"  (median of {args.repeats}, round-robin)"
        )
        for group in groups:
            n = group[0][1]
            path = tmp / f"data_{n}"
            if any(m == "parquet" for m, _ in group):
                write_parquet(n, block, str(path))
            runs = {mode: [] for mode, _ in group}
            for _ in range(args.repeats):  # round-robin: load drifts hit every mode
                for mode, _ in group:
                    cmd = [sys.executable, __file__, "--case", mode, str(n)]
                    cmd += [str(block), str(args.epochs), str(path)]
                    out = subprocess.run(
                        cmd, capture_output=True, text=True, env=env, check=True
                    )
                    runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            for mode, rows in runs.items():
                rows.sort(key=lambda r: r["seconds"])
                row = {
                    **rows[len(rows) // 2],
                    "all_seconds": [r["seconds"] for r in rows],
                }
                row["peak_rss_growth_mb"] = max(r["peak_rss_growth_mb"] for r in rows)
                results["cases"].append(row)
                print(
                    f"{mode:8} {n:>11,} {row['rows_per_s']:>10,} "
                    f"{row['peak_rss_growth_mb']:>13} {row['seconds']:>8}"
                )
            shutil.rmtree(path, ignore_errors=True)
        q_rows = args.quality_rows or (20_000 if args.quick else 200_000)
        q_blocks = [1_000, 5_000] if args.quick else [2_000, 10_000, 50_000]
        q_epochs = args.quality_epochs or (3 if args.quick else 5)
        print(f"\nquality, {q_rows:,} rows sorted by x0, {q_epochs} epochs (mean AUC)")
        for row in quality(q_rows, q_blocks, q_epochs):
            results["quality"].append({**row, "rows": q_rows, "epochs": q_epochs})
            print(f"{row['block_rows']!s:>10} {row['auc']:.4f} gap {row['gap']:+.4f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

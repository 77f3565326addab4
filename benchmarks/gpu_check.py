"""The GPU path, checked in under 3 minutes on one CUDA device.

Prints a table of fit seconds (median of ``--repeats``) for a hand-written torch
loop and sklearn-mtl in float32, with ``precision="bf16"`` and with
``compile=True`` (its first fit, which pays the compilation, is reported apart),
the per-task accuracies, ``predict_proba`` throughput against raw torch
inference, and how many host-device synchronisations one epoch of sklearn-mtl
makes (``torch.cuda.set_sync_debug_mode``): a number that grows with the number
of batches would be a per-batch ``.item()`` or copy.

Usage (from the repository root, on a machine with CUDA)::

    python benchmarks/gpu_check.py                 # 100k x 100, 3 tasks
    python benchmarks/gpu_check.py --n-samples 1000000 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import torch  # noqa: E402
from _common import (
    BATCH,
    HIDDEN,
    hand_loop,
    machine,
    make_data,
    median,
    print_table,
    sync,
    task_metrics,
    timed_fit,
)
from _common import (
    ours as common_ours,
)


def ours(epochs, **params):
    return common_ours(epochs, device="cuda", **params)


def count_syncs(X, Y):
    """Synchronising calls during a one-epoch fit (warnings of sync debug mode)."""
    est = ours(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            est.fit(X, Y)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    return len(syncs), est.engine_.history[-1, "train_batch_count"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--n-tasks", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--json", default="benchmarks/results_gpu.json")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            "gpu_check: CUDA is not available on this machine (torch "
            f"{torch.__version__}); run it where `torch.cuda.is_available()` is True."
        )
        return 2
    started = time.perf_counter()
    X, Y, X_test, Y_test = make_data(args.n_samples, args.n_features, args.n_tasks)
    print(
        f"{torch.cuda.get_device_name(0)}: {args.n_samples} x {args.n_features}, "
        f"{args.n_tasks} tasks, hidden {HIDDEN}, batch {BATCH}, {args.epochs} epochs",
        flush=True,
    )

    systems = {
        "torch hand loop": lambda: hand_loop(X, Y, args.epochs, device="cuda")[:2],
        "sklearn-mtl float32": lambda: _fit(ours(args.epochs)),
        "sklearn-mtl bf16": lambda: _fit(ours(args.epochs, precision="bf16")),
    }
    if not args.no_compile:
        systems["sklearn-mtl compile"] = lambda: _fit(ours(args.epochs, compile=True))

    def _fit(est):
        return timed_fit(est, X, Y), est.predict

    # Warm-up (CUDA context, kernels, cuBLAS handles); the compile warm-up is the
    # compilation itself, reported as first-fit time.
    first_fit = {}
    for name, run in systems.items():
        start = time.perf_counter()
        run()
        first_fit[name] = time.perf_counter() - start
    times = {name: [] for name in systems}
    predicts = {}
    for _ in range(args.repeats):
        for name, run in systems.items():
            seconds, predict = run()
            times[name].append(seconds)
            predicts[name] = predict
    ref = median(times["torch hand loop"])
    rows, results = [], {}
    for name in systems:
        acc, f1 = task_metrics(Y_test, predicts[name](X_test))
        fit_s = median(times[name])
        results[name] = {
            "fit_s": round(fit_s, 3),
            "first_fit_s": round(first_fit[name], 3),
            "ratio_to_hand_loop": round(fit_s / ref, 3),
            "accuracy": acc,
            "f1": f1,
        }
        rows.append(
            {
                "system": name,
                "fit s": f"{fit_s:.3f}",
                "x hand loop": f"{fit_s / ref:.2f}",
                "first fit s": f"{first_fit[name]:.2f}",
                "accuracy per task": " ".join(f"{a:.3f}" for a in acc),
            }
        )
    print_table(
        rows, ["system", "fit s", "x hand loop", "first fit s", "accuracy per task"]
    )

    # Inference throughput on the device, float32.
    est = ours(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, Y)
    module = est.module_.eval()
    X_dev = torch.as_tensor(X, device="cuda")

    def raw():
        with torch.inference_mode():
            out = torch.cat(
                [
                    torch.sigmoid(module(X_dev[s : s + 8192]))
                    for s in range(0, len(X_dev), 8192)
                ]
            )
        return out.cpu().numpy()

    raw_t, ours_t = [], []
    for _ in range(args.repeats + 1):
        sync()
        start = time.perf_counter()
        raw()
        raw_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        est.predict_proba(X)
        ours_t.append(time.perf_counter() - start)
    throughput = {
        "raw_torch_rows_per_s": round(len(X) / median(raw_t[1:])),
        "predict_proba_rows_per_s": round(len(X) / median(ours_t[1:])),
        "note": "predict_proba includes the host->device copy of X; raw does not",
    }
    print(
        f"\npredict_proba {throughput['predict_proba_rows_per_s']:,} rows/s vs raw "
        f"torch {throughput['raw_torch_rows_per_s']:,} rows/s (X already on device)"
    )
    n_syncs, n_batches = count_syncs(X, Y)
    print(
        f"synchronising calls in a one-epoch fit: {n_syncs} "
        f"(batches: {n_batches}; per-batch syncs would give >= {n_batches})"
    )
    elapsed = time.perf_counter() - started
    print(f"gpu_check took {elapsed:.0f} s")
    out = {
        "config": vars(args),
        "machine": machine(),
        "results": results,
        "predict_throughput": throughput,
        "syncs_one_epoch": n_syncs,
        "batches_one_epoch": n_batches,
        "seconds": round(elapsed, 1),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

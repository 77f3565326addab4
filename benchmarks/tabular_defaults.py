"""How the tabular defaults were chosen: candidate settings on one adult split.

One split of the adult census data (6,000 training / 3,000 test rows, seed 0),
four tasks (income and gender: ROC AUC; race: accuracy; hours-per-week: R²),
per-task HistGradientBoosting as the reference, then sklearn-mtl under each
named candidate. One seed, one torch thread: a screening run, confirmed by
``tabular_suite.py`` (5 seeds) for the chosen defaults.

Usage (from the repository root)::

    python benchmarks/tabular_defaults.py                    # every candidate
    python benchmarks/tabular_defaults.py old_defaults es_plq --out /tmp/d.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TASKS = {
    "income": "binary",
    "gender": "binary",
    "race": "multiclass",
    "hours-per-week": "regression",
}
ES = dict(early_stopping=True)
WIDE = dict(early_stopping=True, batch_size=256, hidden_layer_sizes=(256, 256))
CANDIDATES = {
    # The settings before this study (early_stopping=False, no embeddings).
    "old_defaults": dict(early_stopping=False, num_embeddings=None),
    "es": dict(ES, num_embeddings=None),
    "es_plq": dict(ES, num_embeddings="piecewise_linear"),
    "es_b256_h256": dict(WIDE, num_embeddings=None),
    "es_b256_h256_plq": dict(WIDE, num_embeddings="piecewise_linear"),
    "es_b256_h256_pltree": dict(WIDE, num_embeddings="piecewise_linear_tree"),
    "es_b256_h256_plq_k4": dict(WIDE, num_embeddings="piecewise_linear", n_ensemble=4),
    "es_b256_h256_dropout": dict(WIDE, num_embeddings=None, dropout=0.15),
}


def load():
    from tabular_suite import _data_dir

    df = pd.read_parquet(_data_dir() / "adult.parquet.brotli")
    df = df.sample(9000, random_state=0).reset_index(drop=True)
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].astype("category")
    y = df[list(TASKS)].copy()
    for name, kind in TASKS.items():
        if kind != "regression":
            y[name] = y[name].astype(str)
    return df.drop(columns=list(TASKS)), y


def scores(y, pred, proba):
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    return {
        "income_auc": roc_auc_score(y.income == ">50K", proba[0][:, 1]),
        "gender_auc": roc_auc_score(y.gender == "Male", proba[1][:, 1]),
        "race_acc": accuracy_score(y.race, pred[:, 2]),
        "hours_r2": r2_score(
            y["hours-per-week"].astype(float), pred[:, 3].astype(float)
        ),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--out", default="/tmp/sklearn_mtl_tabular_defaults.json")
    args = parser.parse_args(argv)

    import torch
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )

    from sklearn_mtl import MultiTaskNeuralEstimator

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    X, y = load()
    tr, te = np.arange(6000), np.arange(6000, 9000)
    results = {}
    start = time.perf_counter()
    preds, probas = [], []
    for name, kind in TASKS.items():
        hgb = (
            HistGradientBoostingRegressor
            if kind == "regression"
            else (HistGradientBoostingClassifier)
        )
        model = hgb(categorical_features="from_dtype", random_state=0)
        model.fit(X.iloc[tr], y[name].iloc[tr])
        preds.append(model.predict(X.iloc[te]))
        probas.append(None if kind == "regression" else model.predict_proba(X.iloc[te]))
    results["hgb"] = {
        **scores(y.iloc[te], np.column_stack(preds).astype(object), probas),
        "seconds": time.perf_counter() - start,
    }
    print("hgb", {k: round(v, 4) for k, v in results["hgb"].items()}, flush=True)
    for name in args.candidates:
        start = time.perf_counter()
        est = MultiTaskNeuralEstimator(
            random_state=0,
            task_types={"hours-per-week": "regression"},
            **CANDIDATES[name],
        ).fit(X.iloc[tr], y.iloc[tr])
        results[name] = {
            **scores(
                y.iloc[te], est.predict(X.iloc[te]), est.predict_proba(X.iloc[te])
            ),
            "seconds": time.perf_counter() - start,
            "epochs": est.n_iter_,
        }
        print(name, {k: round(v, 4) for k, v in results[name].items()}, flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

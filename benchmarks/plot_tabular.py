"""Scarce-label curves of the tabular suite, from its JSON, as a PNG.

Usage (from the repository root)::

    python benchmarks/plot_tabular.py /tmp/sklearn_mtl_tabular.json \
        --out /tmp/tabular_scarce.png
"""

from __future__ import annotations

import argparse
import json

import numpy as np

LABELS = {
    "hgb": "HistGradientBoosting (per task)",
    "mlp": "sklearn MLP (per task)",
    "mtl": "sklearn-mtl defaults",
    "mtl_best": "sklearn-mtl, small search",
}
METRIC = {"binary": "ROC AUC", "multiclass": "accuracy", "regression": "R²"}


def plot_scarce_curves(results: dict, out: str) -> None:
    """One panel per data set: the scarce task's test metric against its labels.

    Lines are means over seeds, bands ± one standard deviation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = {k: v for k, v in results["datasets"].items() if v["seeds"][0]["scarce"]}
    fig, axes = plt.subplots(
        1, len(datasets), figsize=(4.5 * len(datasets), 3.8), squeeze=False
    )
    for ax, (name, ds) in zip(axes[0], datasets.items()):
        task = ds["scarce_task"]
        seeds = ds["seeds"]
        sizes = [p["n_labelled"] for p in seeds[0]["scarce"]]
        for model, label in LABELS.items():
            values = np.array(
                [[p[model]["scores"][task] for p in s["scarce"]] for s in seeds]
            )
            mean, std = values.mean(0), values.std(0)
            ax.plot(sizes, mean, marker="o", label=label)
            ax.fill_between(sizes, mean - std, mean + std, alpha=0.2)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel(f"labelled rows of {task!r}")
        ax.set_ylabel(f"test {METRIC[ds['tasks'][task]]}")
        ax.set_title(f"{name} ({len(seeds)} seed{'s' * (len(seeds) > 1)})")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower right")
    if results.get("quick"):
        fig.suptitle("quick run (1 seed, subsampled): not the full suite")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="JSON written by tabular_suite.py")
    parser.add_argument("--out", default="/tmp/tabular_scarce.png")
    args = parser.parse_args(argv)
    with open(args.results) as f:
        plot_scarce_curves(json.load(f), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

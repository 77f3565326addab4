"""The synthetic benchmark of the MMoE paper (Ma et al., KDD 2018, section 3.2).

Two regression tasks whose correlation is controlled by ``p``::

    u1, u2 orthogonal unit vectors in R^d,  w1 = c u1,  w2 = c (p u1 + sqrt(1 - p^2) u2)
    x ~ N(0, I_d),  y_k = w_k . x + sum_{i=1..m} sin(alpha_i w_k . x + beta_i) + eps_k

Constants (the paper omits c and the noise): d = 100, c = 1, m = 5,
alpha_i, beta_i ~ N(0, 1) drawn once per data set (per seed),
eps_k ~ N(0, 0.1^2) (variance 0.01), 10k train / 1k validation / 1k test.

Models, with matched parameter budgets as in the paper:
- MMoE: 8 experts of 16 units, one softmax gate per task, towers of 8 units;
- OMoE: the same with one gate shared by both tasks;
- shared-bottom: one hidden layer whose width is chosen so the parameter count
  matches MMoE's, towers of 8 units.

All are :class:`sklearn_mtl.MultiTaskRegressor` (Adam, early stopping on the
1k validation rows, best weights restored). The test MSE is on the original
target scale.

Run (about 5 minutes on 2 cores)::

    python benchmarks/mmoe_synthetic.py            # 10 seeds, 2 processes
    python benchmarks/mmoe_synthetic.py --seeds 3  # quicker

Writes ``benchmarks/results/mmoe_synthetic.{json,md,png}`` and copies the plot
to ``docs/mmoe_synthetic.png``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

D, C, M, NOISE = 100, 1.0, 5, 0.1
N_TRAIN, N_VALID, N_TEST = 10_000, 1_000, 1_000
CORRELATIONS = (1.0, 0.9, 0.5, 0.0)
N_EXPERTS, EXPERT_UNITS, TOWER_UNITS = 8, 16, 8
MODELS = ("shared_bottom", "omoe", "mmoe")
ROOT = Path(__file__).resolve().parent


def make_data(p: float, seed: int):
    """(X, Y) with ``N_TRAIN + N_VALID + N_TEST`` rows for correlation ``p``."""
    rng = np.random.RandomState(seed)
    u, _ = np.linalg.qr(rng.normal(size=(D, 2)))
    u1, u2 = u[:, 0], u[:, 1]
    w1 = C * u1
    w2 = C * (p * u1 + np.sqrt(1 - p**2) * u2)
    alpha, beta = rng.normal(size=M), rng.normal(size=M)
    n = N_TRAIN + N_VALID + N_TEST
    X = rng.normal(size=(n, D))
    Y = []
    for w in (w1, w2):
        z = X @ w
        y = z + np.sin(alpha[None, :] * z[:, None] + beta[None, :]).sum(1)
        Y.append(y + NOISE * rng.normal(size=n))
    return X.astype(np.float32), np.column_stack(Y)


def n_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _budget_matched_width() -> int:
    """Shared-bottom width whose parameter count matches MMoE's."""
    experts = N_EXPERTS * (D * EXPERT_UNITS + EXPERT_UNITS)
    gates = 2 * (D * N_EXPERTS + N_EXPERTS)
    towers = 2 * (EXPERT_UNITS * TOWER_UNITS + TOWER_UNITS + TOWER_UNITS + 1)
    mmoe = experts + gates + towers
    # shared bottom: (D + 1) h + 2 (8 h + 8 + 8 + 1)
    return round((mmoe - 34) / (D + 1 + 2 * TOWER_UNITS))


def make_model(name: str, seed: int, max_iter: int):
    from sklearn_mtl import MultiTaskRegressor

    common = dict(
        head_layer_sizes=(TOWER_UNITS,),
        learning_rate_init=5e-3,
        batch_size=256,
        max_iter=max_iter,
        early_stopping=True,
        validation_fraction=N_VALID / (N_TRAIN + N_VALID),
        n_iter_no_change=4,
        tol=1e-4,
        random_state=seed,
        device="cpu",
    )
    if name == "shared_bottom":
        return MultiTaskRegressor(
            hidden_layer_sizes=(_budget_matched_width(),), **common
        )
    return MultiTaskRegressor(
        architecture=name,
        n_experts=N_EXPERTS,
        expert_layer_sizes=(EXPERT_UNITS,),
        **common,
    )


def run_one(name: str, p: float, seed: int, max_iter: int):
    import torch

    torch.set_num_threads(1)
    X, Y = make_data(p, seed)
    n_fit = N_TRAIN + N_VALID
    model = make_model(name, seed, max_iter)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X[:n_fit], Y[:n_fit])
    seconds = time.perf_counter() - start
    mse = ((model.predict(X[n_fit:]) - Y[n_fit:]) ** 2).mean(axis=0)
    return {
        "model": name,
        "p": p,
        "seed": seed,
        "test_mse": float(mse.mean()),
        "test_mse_per_task": mse.tolist(),
        "epochs": model.n_iter_,
        "seconds": seconds,
        "n_parameters": n_parameters(model.module_),
    }


def summarise(runs):
    table = {}
    for name in MODELS:
        for p in CORRELATIONS:
            vals = [r["test_mse"] for r in runs if r["model"] == name and r["p"] == p]
            table[(name, p)] = (float(np.mean(vals)), float(np.std(vals)), len(vals))
    return table


def markdown(table, runs, n_seeds, seconds):
    params = {r["model"]: r["n_parameters"] for r in runs}
    head = "| model | parameters | " + " | ".join(f"p = {p}" for p in CORRELATIONS)
    lines = [
        f"Test MSE (mean ± std over {n_seeds} seeds; lower is better), "
        f"d = {D}, c = {C}, m = {M}, noise std = {NOISE}.",
        "",
        head + " | mean |",
        "|---|---:|" + "---:|" * (len(CORRELATIONS) + 1),
    ]
    for name in MODELS:
        cells = [
            f"{table[(name, p)][0]:.3f} ± {table[(name, p)][1]:.3f}"
            for p in CORRELATIONS
        ]
        mean = np.mean([table[(name, p)][0] for p in CORRELATIONS])
        lines.append(
            f"| {name} | {params[name]} | " + " | ".join(cells) + f" | {mean:.3f} |"
        )
    lines += ["", *paired(runs)]
    epochs = np.mean([r["epochs"] for r in runs])
    lines += [
        "",
        f"Mean epochs per fit: {epochs:.1f}; total wall time: {seconds:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def paired(runs):
    """Per-seed comparisons (every p of a seed shares u, alpha, beta and X)."""
    mse = {(r["model"], r["p"], r["seed"]): r["test_mse"] for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    lines = ["Paired over seeds:", ""]
    for name in MODELS:
        d = [mse[(name, 0.0, s)] - mse[(name, 1.0, s)] for s in seeds]
        worse = sum(x > 0 for x in d)
        lines.append(
            f"- {name}: MSE(p=0) - MSE(p=1) = {np.mean(d):+.4f} on average, "
            f"worse at p=0 on {worse}/{len(seeds)} seeds"
        )
    for a, b in (
        ("mmoe", "omoe"),
        ("mmoe", "shared_bottom"),
        ("omoe", "shared_bottom"),
    ):
        for p in CORRELATIONS:
            wins = sum(mse[(a, p, s)] < mse[(b, p, s)] for s in seeds)
            diff = np.mean([mse[(a, p, s)] - mse[(b, p, s)] for s in seeds])
            lines.append(
                f"- {a} vs {b} at p = {p}: lower MSE on {wins}/{len(seeds)} seeds, "
                f"mean difference {diff:+.4f}"
            )
    return lines


def plot(table, n_seeds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, marker in zip(MODELS, "osD"):
        mean = [table[(name, p)][0] for p in CORRELATIONS]
        std = [table[(name, p)][1] for p in CORRELATIONS]
        ax.errorbar(CORRELATIONS, mean, yerr=std, marker=marker, capsize=3, label=name)
    ax.invert_xaxis()
    ax.set_xlabel("task correlation p")
    ax.set_ylabel("test MSE (mean ± std)")
    ax.set_title(f"MMoE synthetic benchmark ({n_seeds} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--max-iter", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--no-docs", action="store_true", help="don't copy to docs/")
    parser.add_argument(
        "--summarise", type=Path, help="re-summarise a saved JSON without training"
    )
    args = parser.parse_args(argv)
    if args.summarise is not None:
        saved = json.loads(args.summarise.read_text())
        runs = saved["runs"]
        n_seeds = len({r["seed"] for r in runs})
        print(markdown(summarise(runs), runs, n_seeds, saved["seconds"]))
        return

    from joblib import Parallel, delayed

    jobs = [
        (name, p, seed)
        for seed in range(args.seeds)
        for p in CORRELATIONS
        for name in MODELS
    ]
    start = time.perf_counter()
    runs = Parallel(n_jobs=args.n_jobs)(
        delayed(run_one)(name, p, seed, args.max_iter) for name, p, seed in jobs
    )
    seconds = time.perf_counter() - start
    table = summarise(runs)
    md = markdown(table, runs, args.seeds, seconds)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mmoe_synthetic.json").write_text(
        json.dumps(
            {
                "constants": {
                    "d": D,
                    "c": C,
                    "m": M,
                    "noise_std": NOISE,
                    "n_train": N_TRAIN,
                    "n_valid": N_VALID,
                    "n_test": N_TEST,
                },
                "summary": [
                    {"model": k[0], "p": k[1], "mean": v[0], "std": v[1], "n": v[2]}
                    for k, v in table.items()
                ],
                "runs": runs,
                "seconds": seconds,
            },
            indent=1,
        )
    )
    (args.out / "mmoe_synthetic.md").write_text(md)
    png = args.out / "mmoe_synthetic.png"
    plot(table, args.seeds, png)
    if not args.no_docs:
        docs = ROOT.parent / "docs"
        docs.mkdir(exist_ok=True)
        shutil.copy(png, docs / "mmoe_synthetic.png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Shared pieces of the benchmarks: data, the hand-written reference loops, timing.

Run the benchmarks from the repository root (``python benchmarks/bench_training.py``):
this module puts the root first on ``sys.path`` so the working tree's
``sklearn_mtl`` is measured, not an installed copy.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

HIDDEN = (64, 64)
BATCH = 256
LR = 1e-3


def ours(epochs, device="cpu", **params):
    """sklearn-mtl with the benchmark's network, batch size and learning rate."""
    from sklearn_mtl import MultiTaskClassifier

    return MultiTaskClassifier(
        hidden_layer_sizes=HIDDEN,
        batch_size=BATCH,
        learning_rate_init=LR,
        max_iter=epochs,
        early_stopping=False,  # every system trains on every row, every epoch
        random_state=0,
        device=device,
        **params,
    )


def make_data(n_samples, n_features=100, n_tasks=3, n_test=20_000, seed=0):
    """Synthetic multi-label data whose tasks share a low-rank structure.

    Returns float32 ``X_train, Y_train, X_test, Y_test`` (``Y`` in {0, 1}).
    """
    rng = np.random.RandomState(seed)
    n = n_samples + n_test
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    basis = rng.normal(size=(n_features, 4)) / np.sqrt(n_features)
    hidden = np.tanh(X @ basis * 2.0)
    mix = rng.normal(size=(4, n_tasks))
    logits = hidden @ mix * 3 + 0.3 * rng.normal(size=(n, n_tasks))
    Y = (logits > 0).astype(np.float32)
    return X[:n_samples], Y[:n_samples], X[n_samples:], Y[n_samples:]


class PerTaskHeads(nn.Module):
    """What one writes by hand without fusing: one ``nn.Linear`` per task."""

    def __init__(self, n_in, n_tasks):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(n_in, 1) for _ in range(n_tasks))

    def forward(self, h):
        return torch.cat([head(h) for head in self.heads], dim=1)


def hand_network(n_features, n_tasks, per_task_heads=False):
    layers, n_in = [], n_features
    for size in HIDDEN:
        layers += [nn.Linear(n_in, size), nn.ReLU()]
        n_in = size
    head = PerTaskHeads(n_in, n_tasks) if per_task_heads else nn.Linear(n_in, n_tasks)
    return nn.Sequential(*layers, head)


def hand_loop(X, Y, epochs=1, per_task_heads=False, device="cpu", seed=0):
    """The reference: a hand-written torch loop that slices tensors.

    randperm per epoch, index each batch, forward, BCE per task summed,
    backward, Adam step (torch's default Adam). Returns ``(seconds, predict)``.
    """
    torch.manual_seed(seed)
    net = hand_network(X.shape[1], Y.shape[1], per_task_heads).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sync()
    start = time.perf_counter()
    Xt = torch.as_tensor(X, device=device)
    Yt = torch.as_tensor(Y, device=device)
    n = Xt.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, device=device)
        for s in range(0, n, BATCH):
            idx = perm[s : s + BATCH]
            out = net(Xt[idx])
            loss = F.binary_cross_entropy_with_logits(
                out, Yt[idx], reduction="none"
            ).mean(0)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
    sync()
    seconds = time.perf_counter() - start

    def predict(X_new):
        with torch.inference_mode():
            out = net(torch.as_tensor(X_new, device=device))
        return (out > 0).cpu().numpy().astype(np.float32)

    return seconds, predict, net


def dataloader_loop(X, Y, epochs=1, seed=0):
    """The usual torch tutorial: a DataLoader over a per-row TensorDataset."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    net = hand_network(X.shape[1], Y.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    start = time.perf_counter()
    loader = DataLoader(
        TensorDataset(torch.as_tensor(X), torch.as_tensor(Y)),
        batch_size=BATCH,
        shuffle=True,
    )
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.binary_cross_entropy_with_logits(net(xb), yb, reduction="none")
            opt.zero_grad()
            loss.mean(0).sum().backward()
            opt.step()
    seconds = time.perf_counter() - start

    def predict(X_new):
        with torch.inference_mode():
            return (net(torch.as_tensor(X_new)) > 0).numpy().astype(np.float32)

    return seconds, predict, net


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_fit(estimator, X, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        estimator.fit(X, Y)
        sync()
        return time.perf_counter() - start


def task_metrics(Y_true, Y_pred):
    """Per-task accuracy and F1 lists (rounded)."""
    from sklearn.metrics import accuracy_score, f1_score

    Y_pred = np.asarray(Y_pred).reshape(Y_true.shape)
    acc = [accuracy_score(Y_true[:, j], Y_pred[:, j]) for j in range(Y_true.shape[1])]
    f1 = [f1_score(Y_true[:, j], Y_pred[:, j]) for j in range(Y_true.shape[1])]
    return [round(float(a), 4) for a in acc], [round(float(f), 4) for f in f1]


def current_rss_bytes():
    """Resident set size now (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss_bytes()


def peak_rss_bytes():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_peak_rss():
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def hwm_bytes():
    """Peak RSS since the last reset (VmHWM), else the process peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()


def median(values):
    return float(statistics.median(values))


def machine():
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        info["load_average_1m"] = os.getloadavg()[0]
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_in_subprocess(args):
    """Run ``python <this benchmark> args`` and return its JSON on stdout."""
    out = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_table(rows, columns):
    """A plain fixed-width table."""
    widths = [
        max(len(c), *(len(str(r.get(c, ""))) for r in rows)) if rows else len(c)
        for c in columns
    ]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)))

"""Shared test settings and fixtures."""

import importlib.util
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

# Tests run in parallel worker processes (pytest -n 2 on 2 cores): one torch
# thread each avoids oversubscription, which slows small-network training ~10x.
torch.set_num_threads(1)


def _quiet_fit(est, X, y, **fit_params):
    """``est.fit`` with the ConvergenceWarning of tiny test budgets silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **fit_params)


@pytest.fixture
def quiet_fit():
    """Fit an estimator without the ConvergenceWarning of small max_iter."""
    return _quiet_fit


@pytest.fixture
def mixed_data():
    """(X, y): 300 rows, tasks churn (yes/no), tier (0/1/2), spend (float)."""
    import pandas as pd

    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 5))
    y = pd.DataFrame(
        {
            "churn": np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no"),
            "tier": np.digitize(X[:, 2], [-0.5, 0.5]),
            "spend": 1000 + 200 * X[:, 3] - 100 * X[:, 4],
        }
    )
    return X, y


def pytest_collection_modifyitems(config, items):
    # matplotlib is optional (the [plot] extra): without it, skip the doctests
    # of the module that draws, as its tests skip themselves.
    if importlib.util.find_spec("matplotlib") is not None:
        return
    skip = pytest.mark.skip(reason="matplotlib is not installed")
    for item in items:
        if item.nodeid.startswith("sklearn_mtl/inspection.py"):
            item.add_marker(skip)


# The ONNX doctest needs the optional [onnx] extra; without it, skip the module.
try:
    import onnxruntime  # noqa: F401
    import skl2onnx  # noqa: F401
except ImportError:
    collect_ignore = ["sklearn_mtl/_onnx.py"]

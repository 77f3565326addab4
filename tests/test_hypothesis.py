"""Property-based tests: any table gives a working model or a clear error.

Hypothesis generates shapes, feature dtypes, label sets (strings, integers,
booleans, floats), missing-label patterns, sample weights and parameter values.
Every outcome must be a fitted model whose predictions are finite and of the
right shape, or a ValueError / TypeError whose message says what is wrong.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from sklearn_mtl import (
    MultiTaskClassifier,
    MultiTaskNeuralEstimator,
    MultiTaskRegressor,
)


def _names_the_culprit(msg: str, est, names) -> bool:
    """A clear error names what is wrong: a task, a parameter, X, y or the weights."""
    if any(repr(str(name)) in msg for name in names):
        return True
    if any(re.search(rf"\b{re.escape(p)}\b", msg) for p in est.get_params()):
        return True
    return re.search(r"\b(X|y|sample_weight|[Ss]ample weights)\b", msg) is not None


_LABELS = {
    "str": np.array(["apple", "kiwi", "plum"], dtype=object),
    "int": np.array([-1, 4, 7]),
    "bool": np.array([False, True]),
    "float": None,  # continuous values: a regression target
}


@st.composite
def tables(draw):
    tiny = draw(st.sampled_from([True, False, False, False]))
    n = draw(st.integers(1, 4) if tiny else st.integers(8, 24))
    d = draw(st.integers(1, 4))
    n_tasks = draw(st.integers(1, 3))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64]))
    X = (rng.normal(size=(n, d)) * 3).astype(dtype)
    if draw(st.sampled_from([True] + [False] * 7)) and dtype != np.int64:
        X[rng.randint(n), rng.randint(d)] = draw(st.sampled_from([np.nan, np.inf]))
    columns, kinds = {}, []
    for j in range(n_tasks):
        kind = draw(st.sampled_from(sorted(_LABELS)))
        kinds.append(kind)
        missing = rng.rand(n) < draw(
            st.sampled_from([0.0, 0.0, 0.0, 0.2, 0.2, 0.5, 0.5, 1.0])
        )
        if kind == "float":
            col = rng.normal(size=n) * 5 + 1
            col[missing] = np.nan
        else:
            k = len(_LABELS[kind])
            labels = _LABELS[kind][: draw(st.sampled_from([1, k, k, 2]))]
            col = labels[rng.randint(len(labels), size=n)].astype(object)
            col[missing] = draw(st.sampled_from([None, np.nan, pd.NA]))
        columns[f"t{j}"] = col
    container = draw(st.sampled_from(["frame", "array"]))
    if container == "frame":
        y = pd.DataFrame(columns)
    else:
        y = np.empty((n, n_tasks), dtype=object)
        for j, col in enumerate(columns.values()):
            y[:, j] = col
        if n_tasks == 1 and draw(st.booleans()):
            y = y[:, 0]
    names = (
        list(columns) if container == "frame" else [f"task_{j}" for j in range(n_tasks)]
    )
    sample_weight = None
    if draw(st.booleans()):
        sample_weight = rng.choice([0.0, 0.5, 1.0, 3.0], size=n)
    return X, y, names, kinds, sample_weight


@st.composite
def estimators(draw, names):
    Est = draw(
        st.sampled_from(
            [MultiTaskNeuralEstimator, MultiTaskClassifier, MultiTaskRegressor]
        )
    )
    params = dict(
        hidden_layer_sizes=draw(st.sampled_from([(), (3,), (4, 2)])),
        head_layer_sizes=draw(st.sampled_from([(), (2,)])),
        activation=draw(st.sampled_from(["relu", "tanh", "logistic", "identity"])),
        dropout=draw(st.sampled_from([0.0, 0.3])),
        alpha=draw(st.sampled_from([0.0, 1e-4, 1.0])),
        batch_size=draw(st.sampled_from(["auto", 1, 5])),
        learning_rate_init=draw(st.sampled_from([1e-3, 0.05])),
        max_iter=draw(st.integers(1, 3)),
        early_stopping=draw(st.booleans()),
        validation_fraction=draw(st.sampled_from([0.2, 0.5])),
        random_state=draw(st.integers(0, 3)),
        device="cpu",
    )
    if draw(st.booleans()):
        params["task_weights"] = {names[0]: draw(st.sampled_from([0.0, 2.0]))}
    if Est is not MultiTaskRegressor:
        params["class_weight"] = draw(st.sampled_from([None, "balanced"]))
    if Est is MultiTaskNeuralEstimator and draw(st.booleans()):
        params["task_types"] = {
            names[-1]: draw(st.sampled_from(["regression", "binary"]))
        }
    return Est(**params)


def _check_outcome(est, X, y, sample_weight, partial, names):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if partial:
                est.partial_fit(X, y, sample_weight=sample_weight)
            else:
                est.fit(X, y, sample_weight=sample_weight)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert _names_the_culprit(msg, est, names), f"unclear error: {msg!r}"
        return "error"
    pred = est.predict(X)
    n = X.shape[0]
    y_arr = np.asarray(y)
    assert pred.shape == ((n,) if y_arr.ndim == 1 else (n, y_arr.shape[1]))
    outputs = est._outputs(X)
    assert np.isfinite(outputs).all()
    for task, p in zip(est.tasks_.tasks, pred.T if pred.ndim == 2 else [pred]):
        if task.is_classification:
            assert set(p.tolist()) <= set(task.classes.tolist())
        else:
            assert np.isfinite(p.astype(float)).all()
    if hasattr(est, "predict_proba") and any(
        t.is_classification for t in est.tasks_.tasks
    ):
        proba = est.predict_proba(X)
        for p in proba if isinstance(proba, list) else [proba]:
            if p is not None:
                assert np.isfinite(p).all()
                np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    return "fitted"


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
@pytest.mark.parametrize("partial", [False, True], ids=["fit", "partial_fit"])
def test_any_table_gives_a_model_or_a_clear_error(data, partial):
    X, y, names, kinds, sample_weight = data.draw(tables())
    est = data.draw(estimators(names))
    _check_outcome(est, X, y, sample_weight, partial, names)

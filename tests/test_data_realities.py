"""Missing labels, class imbalance and weights, bad input, divergence, interruption."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import recall_score
from skorch.callbacks import Callback

from sklearn_mtl import (
    MultiTaskClassifier,
    MultiTaskNeuralEstimator,
    MultiTaskRegressor,
    TrainingDivergedError,
)
from sklearn_mtl._tasks import MultiTaskLoss, TaskTargets, build_tasks

SMALL = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu")


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _X(n=30, d=3, seed=0):
    return np.random.RandomState(seed).normal(size=(n, d))


class Capture(Callback):
    """Keeps the targets the engine trains on and the outputs at the start."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.targets = X.y.packed.cpu().numpy().copy()
        self.outputs = net.forward_outputs(X.X, 10**6).double().cpu().numpy()


def _bce(z, y):
    return np.logaddexp(0, z) - y * z


def _ce(z, k):
    z = z - z.max(axis=1, keepdims=True)
    return -(z[np.arange(len(k)), k] - np.log(np.exp(z).sum(axis=1)))


# --------------------------------------------------------------------- missing labels
def test_masked_loss_matches_hand_computation():
    # Tasks: binary, regression, 3-class; row 1 misses the binary label, row 2
    # the regression target, row 0 the class; weights are hand-chosen.
    loss = MultiTaskLoss(["binary", "regression", "multiclass"], [1, 1, 3])
    outputs = torch.tensor(
        [
            [0.5, 1.0, 0.1, 0.2, 0.3],
            [-1.0, -2.0, 1.0, 0.0, -1.0],
            [2.0, 0.5, 0.0, 2.0, 1.0],
        ]
    )
    y = np.array([[1, 0.5, 0], [0, -1.0, 2], [0, 0, 1]], dtype=np.float32)
    mask = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.float32)
    sw = np.array([1.0, 2.0, 0.5], dtype=np.float32)[:, None]
    cw = np.array([[3.0, 1, 1], [1, 1, 2], [1, 1, 1]], dtype=np.float32)
    targets = TaskTargets(torch.tensor(np.hstack([y, mask * sw * cw, mask * sw])), 3)
    per_task, labelled = loss(outputs, targets)

    o = outputs.numpy().astype(np.float64)
    lb = _bce(o[:, 0], y[:, 0])
    lr = 0.5 * (o[:, 1] - y[:, 1]) ** 2
    lm = _ce(o[:, 2:], y[:, 2].astype(int))
    w, nrm = mask * sw * cw, mask * sw
    expected = [
        (w[0, 0] * lb[0] + w[2, 0] * lb[2]) / (nrm[0, 0] + nrm[2, 0]),
        (w[0, 1] * lr[0] + w[1, 1] * lr[1]) / (nrm[0, 1] + nrm[1, 1]),
        (w[1, 2] * lm[1] + w[2, 2] * lm[2]) / (nrm[1, 2] + nrm[2, 2]),
    ]
    np.testing.assert_allclose(per_task.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(labelled.numpy(), [1.5, 3.0, 2.5])
    # The missing entries' targets do not matter at all.
    garbage = TaskTargets(targets.packed.clone(), 3)
    garbage.values[1, 0], garbage.values[2, 1], garbage.values[0, 2] = 1.0, 99.0, 2.0
    np.testing.assert_array_equal(loss(outputs, garbage)[0].numpy(), per_task.numpy())


def test_masked_task_losses_of_estimator_match_hand_computation():
    X = _X(12)
    y = pd.DataFrame(
        {
            "b": [0, 1, None, 1, 0, 1, None, 0, 1, 0, 1, 1],
            "r": [0.5, np.nan, 1.0, 2.0, np.nan, -1.0, 0.0, 3.0, 1.0, np.nan, 2.0, 1.0],
            "m": ["a", "b", "c", None, pd.NA, np.nan, "a", "b", "c", "a", None, "b"],
        }
    )
    y["b"] = y["b"].astype("Int64")
    cap = Capture()
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(6,),
        max_iter=1,
        batch_size=100,  # one batch: the epoch loss is the loss at the init weights
        shuffle=False,
        alpha=0.0,
        random_state=0,
        device="cpu",
        task_types={"r": "regression"},
        callbacks=[cap],
    ).fit(X, y)
    o = cap.outputs
    mb = y["b"].notna().to_numpy()
    yb = y["b"].to_numpy(dtype=float, na_value=0)
    mr = y["r"].notna().to_numpy()
    task_r = est.tasks_.tasks[1]
    yr = (y["r"].to_numpy() - task_r.mean) / task_r.scale
    mm = y["m"].notna().to_numpy()
    codes = np.searchsorted(["a", "b", "c"], y["m"][mm].to_numpy(dtype=str))
    expected = [
        _bce(o[mb, 0], yb[mb]).mean(),
        (0.5 * (o[mr, 1] - yr[mr]) ** 2).mean(),
        _ce(o[mm, 2:5], codes).mean(),
    ]
    got = [est.task_loss_curves_[t][0] for t in ("b", "r", "m")]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert est.loss_curve_[0] == pytest.approx(sum(expected), rel=1e-5)
    assert task_r.mean == pytest.approx(np.nanmean(y["r"]))


@pytest.mark.parametrize(
    "column, classes",
    [
        (np.array(["a", None, "b", np.nan, "a", pd.NA] * 5, dtype=object), ["a", "b"]),
        (pd.Series(["a", None, "b", pd.NA, "a", "b"] * 5, dtype="str"), ["a", "b"]),
        (pd.array([3, None, 5, pd.NA, 3, 5] * 5, dtype="Int64"), [3, 5]),
        (np.array([0.0, np.nan, 1.0, np.nan, 2.0, 0.0] * 5), [0.0, 1.0, 2.0]),
        (np.array([True, None, False, None, True, False] * 5, dtype=object), [0, 1]),
    ],
    ids=["object", "pandas-str", "Int64", "float", "bool-object"],
)
def test_missing_marker_never_becomes_a_class(column, classes):
    X = _X(30)
    est = MultiTaskClassifier(**SMALL).fit(X, column)
    assert list(est.classes_) == classes
    assert set(np.asarray(est.predict(X)).tolist()) <= set(classes)
    assert est.predict_proba(X).shape == (30, len(classes))
    if isinstance(column, pd.arrays.IntegerArray):
        assert est.classes_.dtype.kind == "i"  # integers stay integers


def test_rows_with_every_label_missing_contribute_nothing():
    X = _X(20)
    y = np.column_stack([(X[:, 0] > 0).astype(float), X[:, 1]])
    X_more = np.vstack([X, _X(7, seed=1)])
    y_more = np.vstack([y, np.full((7, 2), np.nan)])
    kw = dict(SMALL, batch_size=100, shuffle=False, max_iter=1)
    kw["task_types"] = {"task_1": "regression"}
    a = MultiTaskNeuralEstimator(**kw).fit(X, y)
    b = MultiTaskNeuralEstimator(**kw).fit(X_more, y_more)
    np.testing.assert_allclose(
        [b.task_loss_curves_[t][0] for t in b.task_names_],
        [a.task_loss_curves_[t][0] for t in a.task_names_],
        rtol=1e-5,
    )
    assert np.isfinite(b.predict(X_more)).all()


def test_task_with_no_labelled_row_is_named():
    X = _X(10)
    y = pd.DataFrame({"ok": [0, 1] * 5, "empty": [None] * 10})
    with pytest.raises(ValueError, match=r"Task 'empty' has no labelled rows"):
        MultiTaskClassifier(**SMALL).fit(X, y)


def test_validation_scores_skip_missing_labels():
    loss = MultiTaskLoss(["binary", "regression"], [1, 1])
    outputs = torch.tensor([[1.0, 1.0], [-1.0, 2.0], [1.0, 10.0], [-1.0, 0.0]])
    # Row 2's binary label is wrong for the output but missing; row 3's
    # regression target is missing and far off.
    y = torch.tensor([[1.0, 1.0], [0.0, 3.0], [0.0, 10.0], [1.0, 100.0]])
    mask = torch.tensor([[1.0, 1], [1, 1], [0, 1], [1, 0]])
    scores = loss.scores(outputs, TaskTargets(torch.cat([y, mask, mask], 1), 2))
    scores = scores.numpy()
    yr = np.array([1.0, 3.0, 10.0])
    pr = np.array([1.0, 2.0, 10.0])
    r2 = 1 - ((pr - yr) ** 2).sum() / ((yr - yr.mean()) ** 2).sum()
    np.testing.assert_allclose(scores, [2 / 3, r2], rtol=1e-6)
    # A task without a labelled row scores NaN (not 0, nor an R2 of 1).
    none = torch.tensor([[1.0, 0], [1, 0], [0, 0], [1, 0]])
    scores = loss.scores(outputs, TaskTargets(torch.cat([y, none, none], 1), 2))
    np.testing.assert_allclose(scores.numpy(), [2 / 3, np.nan], rtol=1e-6)


def test_validation_score_is_the_mean_over_tasks_with_labelled_rows():
    X = _X(100)
    y = pd.DataFrame({"a": (X[:, 0] > 0).astype(float), "b": X[:, 1]})
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=4), early_stopping=True, validation_fraction=0.2
    )
    # Task 'b' labelled on 5 rows: a block of 5 that the seed's validation
    # split (20 rows) misses (each does with probability 0.8**5; the loop
    # finds one). Its validation scores were 1.0 (an R2 of 0 == 0) and
    # entered the mean.
    for start in range(0, 100, 5):
        labelled = (y.index >= start) & (y.index < start + 5)
        est.fit(X, y.assign(b=y["b"].where(labelled)))
        scores = est.task_validation_scores_
        if np.isnan(scores["b"][0]):
            break
    assert np.isnan(scores["b"]).all() and np.isfinite(scores["a"]).all()
    np.testing.assert_allclose(est.validation_scores_, scores["a"], rtol=1e-6)
    assert est.best_validation_score_ == max(scores["a"])


def test_early_stopping_and_history_with_missing_labels():
    X = _X(200)
    rng = np.random.RandomState(1)
    y = np.column_stack([(X[:, 0] > 0).astype(float), X[:, 1] * 2.0])
    y[rng.rand(200) < 0.4, 0] = np.nan
    y[rng.rand(200) < 0.4, 1] = np.nan
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=6),
        early_stopping=True,
        validation_fraction=0.3,
        task_types={"task_1": "regression"},
    ).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_
    assert np.isfinite(est.validation_scores_).all()
    for curve in est.task_loss_curves_.values():
        assert len(curve) == est.n_iter_ and np.isfinite(curve).all()


def test_partial_fit_batch_without_labels_for_a_task():
    X = _X(20)
    y = np.column_stack([(X[:, 0] > 0), (X[:, 1] > 0)]).astype(float)
    est = MultiTaskClassifier(**SMALL, class_weight="balanced").partial_fit(X, y)
    y2 = y.copy()
    y2[:, 1] = np.nan
    est.partial_fit(X, y2)
    losses = est.engine_.history[-1, "train_task_losses"]
    assert np.isfinite(losses[0]) and np.isnan(losses[1])  # nothing to average
    assert est.n_iter_ == 2 and np.isfinite(est.predict_proba(X)[1]).all()


def test_first_partial_fit_without_labels_for_a_declared_task():
    # classes= declares the task: its labels may come in a later batch, as
    # for SGDClassifier.partial_fit.
    X = _X(20)
    y = pd.DataFrame({"a": (X[:, 0] > 0).astype(int), "b": [None] * 20})
    est = MultiTaskNeuralEstimator(**SMALL)
    est.partial_fit(X, y, classes=[[0, 1], ["x", "y", "z"]])
    assert est.classes_[1].tolist() == ["x", "y", "z"]
    assert [t.kind for t in est.tasks_.tasks] == ["binary", "multiclass"]
    assert np.isnan(est.engine_.history[-1, "train_task_losses"][1])
    assert set(est.predict(X)[:, 1]) <= {"x", "y", "z"}
    est.partial_fit(X, y.assign(b=np.where(X[:, 1] > 0, "x", "z")))
    assert np.isfinite(est.engine_.history[-1, "train_task_losses"]).all()
    assert est.n_iter_ == 2
    # Without classes, or for a regression task, the first batch must hold
    # a label: nothing else says what the task is or how to scale it.
    for kw in [{}, {"classes": [[0, 1], None]}]:
        with pytest.raises(ValueError, match=r"Task 'b' has no labelled rows"):
            MultiTaskNeuralEstimator(**SMALL).partial_fit(X, y, **kw)
    regression = MultiTaskNeuralEstimator(**SMALL, task_types={"b": "regression"})
    with pytest.raises(ValueError, match=r"Task 'b' has no labelled rows"):
        regression.partial_fit(X, y, classes=[[0, 1], None])


def test_partial_fit_batch_whose_regression_column_is_all_none():
    # pandas makes an all-None column object: no labelled value to check.
    X = _X(20)
    y = pd.DataFrame({"c": (X[:, 0] > 0).astype(int), "r": X[:, 1]})
    est = MultiTaskNeuralEstimator(**SMALL).partial_fit(X, y)
    est.partial_fit(X, y.assign(r=None))
    losses = est.engine_.history[-1, "train_task_losses"]
    assert np.isfinite(losses[0]) and np.isnan(losses[1])


def test_score_leaves_out_a_task_without_labelled_rows():
    X = _X(40)
    y = pd.DataFrame({"c": (X[:, 0] > 0).astype(int), "r": X[:, 1]})
    est = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    pred = est.predict(X)
    accuracy = np.mean(pred[:, 0].astype(int) == y["c"])
    assert est.score(X, y.assign(r=np.nan)) == pytest.approx(accuracy)
    with pytest.raises(ValueError, match="No task's score is defined on this y"):
        est.score(X, y.assign(r=np.nan, c=np.nan))
    # Labelled rows of zero weight count as none.
    weights = np.r_[np.ones(20), np.zeros(20)]
    only_r = y.assign(c=np.where(np.arange(40) < 20, np.nan, y["c"]))
    from sklearn.metrics import r2_score

    assert est.score(X, only_r, sample_weight=weights) == pytest.approx(
        r2_score(y["r"], pred[:, 1].astype(float), sample_weight=weights)
    )


def test_early_stopping_without_a_labelled_validation_row_warns():
    X = _X(60)
    y = np.where(np.arange(60) < 3, np.arange(60) % 2, np.nan)  # 3 labels
    est = MultiTaskClassifier(
        **dict(SMALL, max_iter=20), early_stopping=True, n_iter_no_change=2
    )
    for seed in range(20):  # a seed whose validation split misses the 3 rows
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            est.set_params(random_state=seed).fit(X, y)
        if np.isnan(est.validation_scores_).all():
            break
    assert np.isnan(est.validation_scores_).all()
    (warning,) = [w for w in record if "validation split" in str(w.message)]
    assert f"stopped after {est.n_iter_} epochs without one" in str(warning.message)
    assert est.n_iter_ == 3  # n_iter_no_change + 1 epochs of no improvement
    # A warm refit counts its own epochs (not the history's); its stopping
    # rule goes on from the previous fit's count (as MLPClassifier's), so one
    # more epoch without a score stops it.
    est.set_params(warm_start=True)
    with pytest.warns(UserWarning, match="stopped after 1 epochs without one"):
        est.fit(X, y)
    assert est.n_iter_ == 4


# --------------------------------------------------------------------- weights
def test_balanced_class_weight_raises_minority_recall():
    rng = np.random.RandomState(0)
    y = np.zeros(1000, dtype=int)
    y[:30] = 1  # 97 / 3
    X = rng.normal(size=(1000, 4))
    X[y == 1, :2] += 1.5
    kw = dict(hidden_layer_sizes=(16,), max_iter=30, learning_rate_init=0.01)
    recalls = {}
    for cw in (None, "balanced"):
        clf = MultiTaskClassifier(**kw, class_weight=cw, random_state=0, device="cpu")
        recalls[cw] = recall_score(y, clf.fit(X, y).predict(X))
    assert recalls["balanced"] >= recalls[None] + 0.3, recalls


def test_encode_weight_columns_hand_computation():
    y_a = np.array([0, 0, 0, 1, np.nan, 1], dtype=float)
    y_b = np.array(["x", "y", None, "y", "y", "x"], dtype=object)
    columns = [y_a, y_b]
    tasks = build_tasks(columns, ["a", "b"])
    sw = np.array([1.0, 2.0, 3.0, 0.5, 1.0, 4.0])
    out = tasks.encode(columns, sw, {"a": "balanced", "b": {"y": 3.0}}).packed
    mask_a = np.array([1, 1, 1, 1, 0, 1.0])
    mask_b = np.array([1, 1, 0, 1, 1, 1.0])
    # "balanced" on task a: 5 labelled rows, 3 zeros, 2 ones.
    cw_a = np.where(y_a == 1, 5 / (2 * 2), 5 / (2 * 3))
    cw_b = np.where(y_b == "y", 3.0, 1.0)
    np.testing.assert_allclose(out[:, 0], [0, 0, 0, 1, 0, 1])
    np.testing.assert_allclose(out[:, 1], [0, 1, 0, 1, 1, 0])
    np.testing.assert_allclose(out[:, 2], mask_a * sw * cw_a, rtol=1e-6)
    np.testing.assert_allclose(out[:, 3], mask_b * sw * cw_b, rtol=1e-6)
    np.testing.assert_allclose(out[:, 4], mask_a * sw)
    np.testing.assert_allclose(out[:, 5], mask_b * sw)
    # "balanced" everywhere, and None.
    both = tasks.encode(columns, None, "balanced").packed
    np.testing.assert_allclose(both[:, 2], mask_a * cw_a, rtol=1e-6)
    np.testing.assert_allclose(both[:, 3], mask_b * np.where(y_b == "y", 5 / 6, 5 / 4))
    np.testing.assert_array_equal(
        tasks.encode(columns).loss_weights, np.c_[mask_a, mask_b]
    )


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_fit_trains_on_sample_and_class_weights(method):
    X = _X(8)
    y = pd.DataFrame(
        {"a": [0, 1, 1, 1, None, 0, 1, 1], "r": [1.0, 2, np.nan, 0, 1, 3, 2, 1]}
    )
    sw = np.array([1, 2, 3, 4, 5, 6, 7, 0.5])
    cap = Capture()
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=1),
        class_weight={"a": {0.0: 4.0}},
        task_types={"r": "regression"},
        callbacks=[cap],
    )
    getattr(est, method)(X, y, sample_weight=sw)
    mask_a = y["a"].notna().to_numpy(float)
    mask_r = y["r"].notna().to_numpy(float)
    cw = np.where(y["a"].to_numpy() == 0, 4.0, 1.0)
    np.testing.assert_allclose(cap.targets[:, 2], mask_a * sw * cw, rtol=1e-6)
    np.testing.assert_allclose(cap.targets[:, 3], mask_r * sw, rtol=1e-6)
    np.testing.assert_allclose(cap.targets[:, 4:], np.c_[mask_a, mask_r] * sw[:, None])


def test_single_task_label_dict_and_per_task_balanced():
    X = _X(20)
    y = np.array(["lo", "hi"] * 10, dtype=object)
    est = MultiTaskClassifier(**SMALL, class_weight={"hi": 5.0}).fit(X, y)
    targets = est.tasks_.encode([y], None, est.class_weight)
    np.testing.assert_allclose(targets.loss_weights[:, 0], np.where(y == "hi", 5, 1))
    est = MultiTaskClassifier(**SMALL, class_weight={"task_0": "balanced"})
    assert est.fit(X, np.r_[y[:-4], ["lo"] * 4]).n_iter_ == 3


# --------------------------------------------------------------------- bad input
def _fit(X=None, y=None, est=None, **kw):
    X = _X(20) if X is None else X
    y = (np.arange(20) % 2) if y is None else y
    est = est or MultiTaskNeuralEstimator
    return est(**SMALL, **kw).fit(X, y)


def _inf_X():
    X = _X(20)
    X[3, 1] = np.inf
    return X


def _predict_wrong_width():
    _fit().predict(_X(5, 2))


def _partial_fit_new_class():
    est = MultiTaskNeuralEstimator(**SMALL)
    est.partial_fit(_X(4), [0, 1, 0, 1], classes=[0, 1])
    est.partial_fit(_X(4), [0, 1, 2, 1])


_Y2 = np.column_stack([np.arange(20) % 2, np.arange(20) % 3])
_STR = np.array(["a", "b"] * 10, dtype=object)
BAD_INPUT = [
    # NaN in X is accepted (imputed with a missing indicator): tests/test_inputs.py.
    ("inf-X", lambda: _fit(_inf_X()), ValueError, "Input X contains infinity"),
    (
        "complex-X",
        lambda: _fit(_X(20) + 1j),
        ValueError,
        "Complex data not supported in X",
    ),
    (
        "string-X",
        lambda: _fit(np.array([["a", "b"]] * 20)),
        ValueError,
        "X must be numeric",
    ),
    (
        "string-column",
        # String columns are categorical by default; not when told otherwise.
        lambda: _fit(
            pd.DataFrame({"num": np.arange(20.0), "txt": ["u", "v"] * 10}),
            categorical_features=None,
        ),
        ValueError,
        r"X must be numeric \(non-numeric columns: \['txt'\]\)",
    ),
    (
        "float-bool-string-columns",
        lambda: _fit(
            pd.DataFrame(
                {"f": np.arange(20.0), "b": [True, False] * 10, "s": ["u", "v"] * 10}
            ),
            categorical_features=None,
        ),
        ValueError,
        r"non-numeric columns: \['s'\]",
    ),
    ("empty-X", lambda: _fit(np.empty((0, 3)), np.empty(0)), ValueError, "0 sample"),
    ("no-features", lambda: _fit(np.empty((20, 0))), ValueError, "0 feature"),
    ("predict-width", _predict_wrong_width, ValueError, "X has 2 features, but .* 3"),
    (
        "y-length",
        lambda: _fit(y=np.arange(10) % 2),
        ValueError,
        "X has 20 rows but y has 10",
    ),
    (
        "task_types-key",
        lambda: _fit(task_types={"tsk": "binary"}),
        ValueError,
        r"task_types has keys \['tsk'\] that are not tasks",
    ),
    (
        "task_weights-key",
        lambda: _fit(task_weights={"tsk": 1.0}),
        ValueError,
        r"task_weights has keys \['tsk'\] that are not tasks",
    ),
    (
        "class_weight-key",
        lambda: _fit(y=_Y2, class_weight={"tsk": "balanced"}),
        ValueError,
        r"class_weight has keys \['tsk'\] that are not tasks",
    ),
    (
        "unknown-kind",
        lambda: _fit(task_types={"task_0": "ordinal"}),
        ValueError,
        "Unknown task kind 'ordinal' for task 'task_0'",
    ),
    (
        "partial_fit-new-class",
        _partial_fit_new_class,
        ValueError,
        r"Task 'task_0' got labels \[2\] that are not among its classes .*partial_fit",
    ),
    (
        "regression-on-strings",
        lambda: _fit(y=_STR, task_types={"task_0": "regression"}),
        ValueError,
        "Task 'task_0' is declared 'regression' but its targets are not numeric",
    ),
    (
        "regressor-on-strings",
        lambda: _fit(y=_STR, est=MultiTaskRegressor),
        ValueError,
        "Task 'task_0' is declared 'regression' but its targets are not numeric",
    ),
    (
        "class_weight-label",
        lambda: _fit(y=_STR, class_weight={"task_0": {"z": 2.0}}),
        ValueError,
        r"class_weight for task 'task_0' names labels \['z'\] that are not among",
    ),
    (
        "class_weight-value",
        lambda: _fit(y=_Y2, class_weight={"task_1": 3}),
        ValueError,
        r"class_weight\['task_1'\] must be 'balanced'",
    ),
    (
        "mixed-labels",
        lambda: _fit(y=np.array(["a", 1] * 10, dtype=object)),
        TypeError,
        "Task 'task_0' mixes label types",
    ),
    (
        "inf-y",
        lambda: _fit(y=np.r_[np.inf, np.arange(19.0)]),
        ValueError,
        "infinity in task 'task_0'",
    ),
    (
        "negative-sample_weight",
        lambda: MultiTaskNeuralEstimator(**SMALL).fit(
            _X(20), np.arange(20) % 2, sample_weight=-np.ones(20)
        ),
        ValueError,
        "Negative values in data passed to `sample_weight`",
    ),
    (
        "inf-in-object-y",
        lambda: _fit(y=np.array([np.inf, None] + [0.5, 1.5] * 9, dtype=object)),
        ValueError,
        "infinity in task 'task_0'",
    ),
    (
        "zero-columns-y",
        lambda: _fit(y=np.empty((20, 0))),
        ValueError,
        "y has no columns",
    ),
    (
        "negative-class_weight",
        lambda: _fit(class_weight={0: -1.0, 1: 1.0}),
        ValueError,
        r"class_weight of task 'task_0': the weight of label 0 must be a finite",
    ),
    (
        "nan-class_weight",
        lambda: _fit(y=_Y2, class_weight={"task_1": {0: np.nan}}),
        ValueError,
        r"class_weight of task 'task_1': the weight of label 0 must be a finite",
    ),
    (
        "string-class_weight",
        lambda: _fit(y=_Y2, class_weight={"task_1": {0: "big"}}),
        ValueError,
        r"class_weight of task 'task_1': the weight of label 0 must be a finite",
    ),
    (
        "class_weight-for-regression",
        lambda: _fit(
            y=np.column_stack([np.arange(20) % 2, _X(20)[:, 0]]),
            task_types={"task_1": "regression"},
            class_weight={"task_1": {0: 2.0}},
        ),
        ValueError,
        "class_weight has an entry for task 'task_1', which is a regression task",
    ),
    (
        "device-mps",
        lambda: MultiTaskNeuralEstimator(device="mps").fit(_X(20), np.arange(20) % 2),
        ValueError,
        "MPS is not available",
    ),
    (
        "device-xla",
        lambda: MultiTaskNeuralEstimator(device="xla").fit(_X(20), np.arange(20) % 2),
        ValueError,
        "'xla' is not supported",
    ),
    (
        "callbacks-string",
        lambda: _fit(callbacks=["x"]),
        TypeError,
        "callbacks must be skorch callbacks",
    ),
    (
        "dwa-temperature",
        lambda: _fit(
            y=_Y2, loss_weighting="dwa", loss_weighting_params={"temperature": 0}
        ),
        ValueError,
        r"loss_weighting_params\['temperature'\] must be a finite number > 0",
    ),
    (
        "score-y-length",
        lambda: _fit().score(_X(20), np.arange(10) % 2),
        ValueError,
        "X has 20 rows but y has 10",
    ),
    (
        "score-sample_weight-length",
        lambda: _fit().score(_X(20), np.arange(20) % 2, sample_weight=np.ones(5)),
        ValueError,
        r"sample_weight has shape \(5,\) but X has 20 rows",
    ),
    (
        "continuous-for-classifier",
        lambda: _fit(y=_X(20)[:, 0], est=MultiTaskClassifier),
        ValueError,
        "Unknown label type: 'continuous' in task 'task_0'",
    ),
]


@pytest.mark.parametrize(
    "make, error, words", [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT]
)
def test_bad_input_gets_a_clear_error(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_dataframe_task_names_in_errors():
    y = pd.DataFrame({"churn": [0, 1] * 10, "spend": ["lo", "hi"] * 10})
    with pytest.raises(ValueError, match="Task 'spend' is declared 'regression'"):
        _fit(y=y, task_types={"spend": "regression"})
    est = _fit(y=y)
    with pytest.raises(ValueError, match=r"y has columns \['churn', 'x'\]"):
        est.set_params(warm_start=True).fit(_X(20), y.rename(columns={"spend": "x"}))


# --------------------------------------------------------------------- divergence
def _regression_data(n=100):
    X = _X(n, 3)
    return X, X @ np.array([1.0, 2.0, 3.0])


def test_divergence_restores_the_last_finite_weights():
    X, y = _regression_data()
    est = MultiTaskRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    est.set_params(device="cpu").fit(X, y)
    before = est.predict(X)
    # Enormous (but float32-finite) features pass validation and overflow the loss.
    est.set_params(warm_start=True)
    with pytest.raises(TrainingDivergedError, match="diverged.*learning_rate_init"):
        est.fit(X * 1e30, y)
    np.testing.assert_array_equal(est.predict(X), before)
    assert est.n_iter_ == 5 and len(est.loss_curve_) == 5


def test_divergence_with_huge_learning_rate_leaves_finite_model():
    X, y = _regression_data()
    est = MultiTaskRegressor(
        hidden_layer_sizes=(8,), max_iter=50, learning_rate_init=1e30, random_state=0
    )
    with pytest.raises(TrainingDivergedError, match="Training diverged"):
        est.set_params(device="cpu").fit(X, y)
    assert np.isfinite(est.predict(X)).all()
    assert np.isfinite(est.loss_curve_).all() and est.n_iter_ < 50


def test_divergence_from_scratch_keeps_initial_weights():
    X, y = _regression_data()
    est = MultiTaskRegressor(**SMALL)
    with pytest.raises(TrainingDivergedError):
        est.fit(X * 1e30, y)
    assert est.n_iter_ == 0
    assert np.isfinite(est.predict(X)).all()


class PoisonWeights(Callback):
    """Makes a weight NaN after the last batch of epoch 1 (its loss was finite)."""

    def on_batch_end(self, net, training=False, **kwargs):
        if len(net.history) == 1 and training:
            self.seen = getattr(self, "seen", 0) + 1
            if self.seen == 3:
                with torch.no_grad():
                    next(net.module_.parameters())[0, 0] = float("nan")


def test_non_finite_weights_behind_a_finite_loss_are_caught():
    X, y = _regression_data(30)
    est = MultiTaskRegressor(**dict(SMALL, max_iter=4), batch_size=10)
    with pytest.raises(TrainingDivergedError, match="weights became non-finite"):
        est.set_params(callbacks=[PoisonWeights()]).fit(X, y)
    assert est.n_iter_ == 0 and np.isfinite(est.predict(X)).all()


class InterruptAt(Callback):
    def __init__(self, epoch, during_batch=False):
        self.epoch = epoch
        self.during_batch = during_batch

    def on_batch_end(self, net, **kwargs):
        if self.during_batch and len(net.history) == self.epoch:
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if not self.during_batch and len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_keyboard_interrupt_from_on_epoch_end_stops_training():
    """skorch's convention (its EarlyStopping does this): a normal stop."""
    X = _X(60)
    y = np.column_stack([X[:, 0] > 0, X[:, 1]]).astype(float)
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=20),
        task_types={"task_1": "regression"},
        callbacks=[InterruptAt(3)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit(X, y)
    assert est.n_iter_ == 3 and est.engine_.stopped_early_


@pytest.mark.parametrize("during_batch, n_iter", [(True, 2)])
def test_keyboard_interrupt_leaves_a_usable_model(during_batch, n_iter):
    X = _X(60)
    y = np.column_stack([X[:, 0] > 0, X[:, 1]]).astype(float)
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=20),
        task_types={"task_1": "regression"},
        callbacks=[InterruptAt(3, during_batch)],
    )
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X, y)
    assert est.n_iter_ == n_iter and len(est.loss_curve_) == n_iter
    assert np.isfinite(est.predict(X).astype(float)).all()
    assert np.isfinite(est.predict_proba(X)[0]).all()


class FailAt(Callback):
    """Raise ``error`` in ``where`` (a batch of the given epoch, or train end)."""

    def __init__(self, error, where, epoch=0):
        self.error, self.where, self.epoch = error, where, epoch
        self.armed = False

    def on_batch_end(self, net, training=True, **kwargs):
        where = "batch" if training else "validation"
        if self.armed and self.where == where and len(net.history) == self.epoch:
            raise self.error

    def on_train_end(self, net, **kwargs):
        if self.armed and self.where == "train_end":
            raise self.error


@pytest.mark.parametrize(
    "error, where, epoch, n_iter",
    [
        (RuntimeError("a callback failed"), "batch", 5, 4),
        # The training pass ended, the validation pass did not: no callback
        # (nor the divergence check) saw the epoch.
        (RuntimeError("a callback failed"), "validation", 5, 4),
        (KeyboardInterrupt(), "validation", 5, 4),
        (KeyboardInterrupt(), "train_end", 0, 6),
    ],
    ids=[
        "error-mid-epoch",
        "error-in-validation",
        "ctrl-c-in-validation",
        "ctrl-c-in-on_train_end",
    ],
)
def test_an_error_outside_the_epoch_loop_keeps_the_model_coherent(
    error, where, epoch, n_iter
):
    # The model keeps the epochs it trained (a second, warm fit), and n_iter_,
    # the curves and the engine's history agree: whole epochs only.
    X = _X(60)
    y = np.column_stack([X[:, 0] > 0, X[:, 1]]).astype(float)
    fail = FailAt(error, where, epoch)
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=3),
        task_types={"task_1": "regression"},
        batch_size=20,
        warm_start=True,
        early_stopping=True,
        validation_fraction=0.25,
        callbacks=[fail],
    ).fit(X, y)
    fail.armed = True
    if isinstance(error, KeyboardInterrupt) and where == "validation":
        with pytest.warns(UserWarning, match="interrupted"):
            est.fit(X, y)  # Ctrl-C in an epoch: a usable model, no error
    else:
        with pytest.raises(type(error)):
            est.fit(X, y)
    assert est.n_iter_ == len(est.engine_.history) == n_iter
    assert len(est.loss_curve_) == len(est.task_loss_curves_["task_1"]) == n_iter
    assert len(est.validation_scores_) == n_iter
    assert all("valid_score" in row for row in est.engine_.history)
    fail.armed = False
    est.fit(X, y)
    assert est.n_iter_ == len(est.loss_curve_) == n_iter + 3


def test_early_stopping_split_on_rare_class_and_tiny_data():
    X = _X(12)
    y = np.array([0] * 11 + [1])  # one member of class 1: no stratified split
    est = MultiTaskClassifier(**SMALL, early_stopping=True, validation_fraction=0.3)
    assert est.fit(X, y).n_iter_ >= 1
    with pytest.raises(ValueError, match=r"validation_fraction=0.05 of 12 rows"):
        est.set_params(validation_fraction=0.05).fit(X, y)


def test_huge_regression_targets_are_standardised_without_overflow(quiet_fit):
    X = _X(60)
    y = 1e300 * (1 + 0.1 * X[:, 0])  # np.std of these overflows
    reg = quiet_fit(
        MultiTaskRegressor(
            hidden_layer_sizes=(16,),
            max_iter=100,
            random_state=0,
            device="cpu",
            learning_rate_init=0.01,
        ),
        X,
        y,
    )
    task = reg.tasks_.tasks[0]
    assert task.mean == pytest.approx(np.mean(y / 1e300) * 1e300)
    assert task.scale == pytest.approx(np.std(y / 1e300) * 1e300)
    pred = reg.predict(X)
    assert np.all(np.isfinite(pred))
    assert np.corrcoef(pred / 1e300, y / 1e300)[0, 1] > 0.9


def test_partial_fit_classes_as_a_pandas_index_unique_values_or_a_dict():
    # Series.unique() of a str column is a pandas array under pandas 3; an
    # Index is what y["a"].astype("category").cat.categories gives.
    X = _X(20)
    y = pd.DataFrame(
        {
            "a": np.where(X[:, 0] > 0, "yes", "no"),
            "b": np.where(X[:, 1] > 0, "yes", "no"),
        }
    ).astype("str")
    forms = {
        "index": pd.Index(["no", "yes"]),
        "unique": y["a"].unique(),
        "dict": {"a": ["no", "yes"], "b": np.array(["no", "maybe", "yes"])},
    }
    for form, classes in forms.items():
        est = MultiTaskNeuralEstimator(**SMALL).partial_fit(X, y, classes=classes)
        expected = ["no", "maybe", "yes"] if form == "dict" else ["no", "yes"]
        assert [c.tolist() for c in est.classes_] == [
            ["no", "yes"],
            sorted(expected),
        ], form
    with pytest.raises(ValueError, match=r"classes has keys \['c'\] that are not"):
        MultiTaskNeuralEstimator(**SMALL).partial_fit(X, y, classes={"c": [0, 1]})
    for scalar in (3, "no"):
        with pytest.raises(ValueError, match="classes must be an array-like"):
            MultiTaskNeuralEstimator(**SMALL).partial_fit(X, y, classes=scalar)


def test_later_partial_fit_refuses_other_classes():
    # As MLPClassifier.partial_fit: classes are fixed by the first call.
    X = _X(20)
    y = np.column_stack([(X[:, 0] > 0), (X[:, 1] > 0)]).astype(int)
    est = MultiTaskNeuralEstimator(**SMALL).partial_fit(X, y, classes=[0, 1])
    est.partial_fit(X, y, classes=[0, 1])  # the same: fine
    est.partial_fit(X, y, classes={"task_1": np.array([1, 0])})
    with pytest.raises(
        ValueError,
        match=r"classes=\[0, 1, 2\] for task 'task_1' is not the same as on the "
        r"first call to partial_fit, was: \[0, 1\]",
    ):
        est.partial_fit(X, y, classes=[[0, 1], [0, 1, 2]])
    assert est.n_iter_ == 3  # the refused call trained nothing


def test_classes_with_a_missing_label_marker_on_every_call():
    # np.unique(y) (learning_curve's classes) or Series.unique() of a y with
    # missing labels holds NaN: not a class, on the first call or later ones.
    X = _X(20)
    y = np.where(X[:, 0] > 0, 1.0, 0.0)
    y[:3] = np.nan
    est = MultiTaskNeuralEstimator(**SMALL)
    for _ in range(2):
        est.partial_fit(X, y, classes=np.unique(y))
    assert est.classes_.tolist() == [0.0, 1.0] and est.n_iter_ == 2
    est.partial_fit(X, y, classes=[np.unique(y)])  # one array per task
    labels = pd.Series(np.where(X[:, 1] > 0, "yes", "no"), dtype="str")
    labels[:2] = None
    est = MultiTaskNeuralEstimator(**SMALL)
    for _ in range(2):
        est.partial_fit(X, labels, classes=labels.unique())
    assert est.classes_.tolist() == ["no", "yes"]


def test_complex_targets_are_refused_in_every_form():
    X = _X(20)
    y = X[:, 0] + 1j * X[:, 1]
    for given in (y, pd.Series(y), pd.DataFrame({"a": y, "b": X[:, 2]})):
        with pytest.raises(ValueError, match="Complex data not supported in y"):
            MultiTaskNeuralEstimator(**SMALL).fit(X, given)


def test_targets_and_weights_past_float32_are_refused_before_training():
    X = _X(20)
    y = np.column_stack([X[:, 0] > 0, X[:, 1]]).astype(float)
    est = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    before, epochs = est.predict(X), est.n_iter_
    huge = y.copy()
    huge[0, 1] = 1e39  # finite in float64, inf once standardised in float32
    with pytest.raises(ValueError, match="Task 'task_1' has a target too large"):
        est.partial_fit(X, huge)
    huge[0, 1] = 1e25  # finite in float32, but its square (the loss) is not
    with pytest.raises(ValueError, match="Task 'task_1' has a target too large"):
        est.partial_fit(X, huge)
    with pytest.raises(ValueError, match="sample_weight .* too large for float32"):
        est.partial_fit(X, y, sample_weight=np.full(20, 1e39))
    with pytest.raises(ValueError, match="sample_weight .* too large for float32"):
        MultiTaskNeuralEstimator(**SMALL).fit(X, y, sample_weight=np.full(20, 1e39))
    np.testing.assert_array_equal(est.predict(X), before)
    assert est.n_iter_ == epochs and est.engine_.optimizer_.state


def test_a_warm_fit_checks_y_as_a_first_fit():
    X = _X(20)
    y = pd.DataFrame({"a": (X[:, 0] > 0).astype(float), "b": X[:, 1]})
    est = MultiTaskNeuralEstimator(**SMALL, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match=r"Task 'a' has no labelled rows"):
        est.fit(X, y.assign(a=np.nan))
    with pytest.raises(ValueError, match=r"Task 'a' has labelled rows, but every"):
        est.set_params(class_weight={"a": {0.0: 0, 1.0: 0}}).fit(X, y)
    # Labelled only where sample_weight is 0 (the rows still count as labelled).
    half = y.assign(a=np.where(np.arange(20) < 10, np.nan, y["a"]))
    weights = np.r_[np.ones(10), np.zeros(10)]
    with pytest.raises(ValueError, match=r"Task 'a' has labelled rows, but every"):
        est.set_params(class_weight=None).fit(X, half, sample_weight=weights)
    # partial_fit trains on what a batch has (a task may be absent from it).
    est.set_params(class_weight=None).partial_fit(X, y.assign(a=np.nan))


def test_a_warm_fit_refused_for_its_validation_split_changes_nothing():
    X = _X(30)
    y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    est = MultiTaskNeuralEstimator(**SMALL, warm_start=True).fit(X, y)
    before = est.predict_proba(X)[0]
    params = est.engine_.get_params()
    est.set_params(precision="bf16", early_stopping=True, validation_fraction=0.99)
    with pytest.raises(ValueError, match="The validation set is too small"):
        est.fit(X, y)
    # The engine's settings (precision, split) were not touched.
    np.testing.assert_array_equal(est.predict_proba(X)[0], before)
    after = est.engine_.get_params()
    assert after["precision"] == params["precision"]
    assert after["train_split"] is params["train_split"]


def test_unusable_values_of_a_categorical_column_are_refused_after_fit():
    # fit refuses bytes; predict and partial_fit did not, and read every row
    # as an unknown category.
    X = pd.DataFrame({"city": ["paris", "rome"] * 10, "x": _X(20)[:, 0]})
    y = (X["x"] > 0).astype(int)
    est = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    as_bytes = X.assign(city=X["city"].map(str.encode).astype(object))
    for call in (est.predict, lambda X: est.partial_fit(X, y)):
        with pytest.raises(
            TypeError, match="Categorical column 'city' of X holds bytes"
        ):
            call(as_bytes)


@pytest.mark.parametrize(
    "X, what",
    [
        (np.array([["1.5", "2"], ["3", "4"]] * 10), "strings"),
        (np.array([[b"1", b"2"]] * 20), "bytes"),
        (np.arange(40).reshape(20, 2).astype("datetime64[s]"), "datetimes"),
    ],
)
def test_numpy_X_of_strings_or_dates_is_not_read_as_numbers(X, what):
    # As MLPClassifier (dtype="numeric") and the DataFrame path refuse them.
    with pytest.raises(ValueError, match=f"X must be numeric, got an array of {what}"):
        MultiTaskNeuralEstimator(**SMALL).fit(X, np.arange(20) % 2)

"""The estimators' behaviour: targets, tasks, outputs, training controls."""

import copy
import inspect
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from skorch.callbacks import Callback

from sklearn_mtl import (
    MultiTaskClassifier,
    MultiTaskNeuralEstimator,
    MultiTaskRegressor,
)

SMALL = dict(hidden_layer_sizes=(16,), max_iter=30, random_state=0, device="cpu")


def make_mixed(n=300, seed=0):
    """The issue's seed example: churn (yes/no), tier (0/1/2), spend (float)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5))
    y = pd.DataFrame(
        {
            "churn": np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no"),
            "tier": np.digitize(X[:, 2], [-0.5, 0.5]),
            "spend": 1000 + 200 * X[:, 3] - 100 * X[:, 4],
        }
    )
    return X, y


@pytest.fixture(scope="module")
def mixed_model():
    X, y = make_mixed()
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(32,),
        max_iter=80,
        learning_rate_init=0.01,
        random_state=0,
        task_types={"spend": "regression"},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est, X, y


def test_mixed_tasks_outputs(mixed_model):
    est, X, y = mixed_model
    assert est.task_names_ == ["churn", "tier", "spend"]
    assert [t.kind for t in est.tasks_.tasks] == ["binary", "multiclass", "regression"]
    assert est.n_outputs_ == 3
    assert list(est.classes_[0]) == ["no", "yes"]
    assert list(est.classes_[1]) == [0, 1, 2]
    assert est.classes_[2] is None

    pred = est.predict(X[:50])
    assert pred.shape == (50, 3)
    assert pred.dtype == object  # strings, ints and floats keep their types
    assert set(pred[:, 0]) <= {"no", "yes"}
    assert set(pred[:, 1]) <= {0, 1, 2}
    assert all(isinstance(v, float) for v in pred[:, 2])

    proba = est.predict_proba(X[:50])
    assert isinstance(proba, list) and len(proba) == 3
    assert proba[0].shape == (50, 2) and proba[1].shape == (50, 3)
    assert proba[2] is None
    np.testing.assert_allclose(proba[0].sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[1].sum(axis=1), 1.0)
    # predict is the argmax of predict_proba, in classes_ order
    np.testing.assert_array_equal(pred[:, 1], est.classes_[1][proba[1].argmax(1)])


def test_mixed_tasks_learn_and_score(mixed_model):
    est, X, y = mixed_model
    pred = est.predict(X)
    acc_churn = np.mean(pred[:, 0] == y["churn"].to_numpy())
    acc_tier = np.mean(pred[:, 1].astype(int) == y["tier"].to_numpy())
    spend = y["spend"].to_numpy()
    r2 = 1 - np.sum((pred[:, 2].astype(float) - spend) ** 2) / np.sum(
        (spend - spend.mean()) ** 2
    )
    assert acc_churn > 0.9 and acc_tier > 0.85 and r2 > 0.9
    # score is the documented mean of accuracy, accuracy and R2
    assert est.score(X, y) == pytest.approx(np.mean([acc_churn, acc_tier, r2]))


def test_regression_targets_of_different_scale_train_together():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 3))
    y = np.column_stack([1e4 * X[:, 0] + 5e5, 1e-3 * X[:, 1]])
    reg = MultiTaskRegressor(
        hidden_layer_sizes=(16,), max_iter=150, learning_rate_init=0.01, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    pred = reg.predict(X)
    for j in range(2):
        r2 = 1 - np.sum((pred[:, j] - y[:, j]) ** 2) / np.sum(
            (y[:, j] - y[:, j].mean()) ** 2
        )
        assert r2 > 0.95, (j, r2)
    assert reg.tasks_.tasks[0].mean == pytest.approx(y[:, 0].mean())
    assert reg.tasks_.tasks[0].scale == pytest.approx(y[:, 0].std())


def test_one_dimensional_y_gives_one_dimensional_outputs():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 3))
    y = np.where(X[:, 0] > 0, "pos", "neg")
    clf = MultiTaskClassifier(**SMALL).fit(X, y)
    assert clf.predict(X).shape == (100,)
    assert clf.predict(X).dtype.kind == "U"
    assert clf.predict_proba(X).shape == (100, 2)
    np.testing.assert_array_equal(clf.classes_, ["neg", "pos"])
    assert clf.task_names_ == ["task_0"]
    # A 2-D y of one column keeps the multi-output forms throughout (as
    # MultiOutputClassifier): classes_ and predict_proba are lists of one.
    two_d = MultiTaskClassifier(**SMALL).fit(X, y.reshape(-1, 1))
    assert two_d.predict(X).shape == (100, 1)
    assert isinstance(two_d.classes_, list) and len(two_d.classes_) == 1
    (proba,) = two_d.predict_proba(X)
    np.testing.assert_array_equal(proba, clf.predict_proba(X))


def test_task_kinds_inferred_and_overridden():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 2))
    counts = rng.randint(0, 4, size=60)  # integer valued: looks like classes
    y = np.column_stack([counts, rng.normal(size=60), counts % 2])
    est = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    assert [t.kind for t in est.tasks_.tasks] == ["multiclass", "regression", "binary"]
    est = MultiTaskNeuralEstimator(**SMALL, task_types={"task_0": "regression"})
    est.fit(X, y)
    assert est.tasks_.tasks[0].kind == "regression"
    assert est.predict(X).dtype == np.float64


def test_classifier_rejects_continuous_and_regressor_rejects_declared_kinds():
    X = np.random.RandomState(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="Unknown label type: 'continuous'"):
        MultiTaskClassifier(**SMALL).fit(X, X[:, 0])
    est = MultiTaskNeuralEstimator(**SMALL, task_types={"task_0": "cluster"})
    with pytest.raises(
        ValueError, match="Unknown task kind 'cluster' for task 'task_0'"
    ):
        est.fit(X, X[:, 0] > 0)


def test_same_random_state_gives_identical_predictions():
    X, y = make_mixed(n=200)
    params = dict(SMALL, task_types={"spend": "regression"}, dropout=0.1)
    a = MultiTaskNeuralEstimator(**params).fit(X, y)
    b = MultiTaskNeuralEstimator(**params).fit(X, y)
    np.testing.assert_array_equal(a._outputs(X), b._outputs(X))
    c = MultiTaskNeuralEstimator(**dict(params, random_state=1)).fit(X, y)
    assert not np.array_equal(a._outputs(X), c._outputs(X))


def test_fit_does_not_touch_global_torch_rng():
    X, y = make_mixed(n=50)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_history_attributes():
    X, y = make_mixed(n=120)
    est = MultiTaskNeuralEstimator(**dict(SMALL, max_iter=5, tol=0.0))
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(5\) reached"):
        est.fit(X, y)
    assert est.n_iter_ == 5
    assert len(est.loss_curve_) == 5
    assert set(est.task_loss_curves_) == {"churn", "tier", "spend"}
    assert all(len(c) == 5 for c in est.task_loss_curves_.values())
    # with unit task weights the epoch loss is about the sum of the task losses
    assert est.loss_curve_[-1] == pytest.approx(
        sum(c[-1] for c in est.task_loss_curves_.values()), rel=0.05
    )
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    assert est.loss_curve_[-1] < est.loss_curve_[0]


def test_stops_when_loss_stops_improving():
    X, y = make_mixed(n=120)
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=500, tol=10.0, n_iter_no_change=2)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    # tol=10 means no epoch counts as an improvement: stop after 1 + 2 + 1 epochs
    assert est.n_iter_ == 4


class _RecordWeights(Callback):
    def initialize(self):
        self.states = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.states.append(copy.deepcopy(net.module_.state_dict()))


def test_early_stopping_restores_best_weights():
    X, y = make_mixed(n=300)
    recorder = _RecordWeights()
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(16,),
        max_iter=200,
        early_stopping=True,
        n_iter_no_change=3,
        learning_rate_init=0.05,
        random_state=0,
        callbacks=[recorder],
    ).fit(X, y)
    scores = est.validation_scores_
    assert len(scores) == est.n_iter_ < 200
    assert est.best_validation_score_ == max(scores)
    best_epoch = int(np.argmax(scores))
    assert best_epoch < est.n_iter_ - 1  # the last epochs did not improve
    fitted = est.engine_.callbacks_[-1][1].states[best_epoch]
    for name, value in est.module_.state_dict().items():
        torch.testing.assert_close(value, fitted[name], rtol=0, atol=0)


def test_partial_fit_one_epoch_per_call_with_declared_classes():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 3))
    y = np.column_stack([np.tile(["a", "b", "c"], 30), X[:, 0] > 0])
    clf = MultiTaskClassifier(**SMALL)
    # the first chunk lacks class "c" of task 0: declare it
    first = y[:, 0] != "c"
    clf.partial_fit(X[first], y[first], classes=[["a", "b", "c"], ["False", "True"]])
    assert clf.n_iter_ == 1
    np.testing.assert_array_equal(clf.classes_[0], ["a", "b", "c"])
    for _ in range(3):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4
    with pytest.raises(ValueError, match=r"Task 'task_0' got labels \['d'\]"):
        clf.partial_fit(X[:1], np.array([["d", "True"]]))


def test_warm_start_continues_training():
    X, y = make_mixed(n=120)
    est = MultiTaskNeuralEstimator(**dict(SMALL, max_iter=3, warm_start=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        module = est.module_
        est.fit(X, y)
    assert est.module_ is module
    assert est.n_iter_ == 6 and len(est.loss_curve_) == 6
    est.set_params(warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.module_ is not module and est.n_iter_ == 3


def test_zero_task_weight_leaves_that_head_untrained():
    X, y = make_mixed(n=120)
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=3, alpha=0.0), task_weights={"churn": 0.0}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    # The same seed builds the same initial network: its first snapshot.
    init = MultiTaskNeuralEstimator(**dict(SMALL, max_iter=1))
    init.engine_ = init._make_engine(est.inputs_, est.tasks_, est.engine_.random_state)
    init.engine_.initialize()
    churn_col = est.tasks_.offsets[0]
    torch.testing.assert_close(
        est.module_.heads.out.weight[churn_col],
        init.module_.heads.out.weight[churn_col],
    )
    assert not torch.equal(
        est.module_.heads.out.weight[churn_col + 1],
        init.module_.heads.out.weight[churn_col + 1],
    )


def _columns(y):
    from sklearn_mtl._tasks import split_target_columns

    columns, names, is_1d = split_target_columns(y)
    return columns, names, is_1d


def test_head_layers_build_one_tower_per_task():
    X, y = make_mixed(n=120)
    est = MultiTaskNeuralEstimator(
        **SMALL, head_layer_sizes=(8,), task_types={"spend": "regression"}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    towers = est.module_.heads.towers
    assert towers[0].weight.shape == (3, 16, 8)  # three tasks, one tower each
    assert est.module_.heads.out.weight.shape == (3, 8, 3)  # widths padded to 3
    assert est.predict(X).shape == (120, 3)


def test_float32_and_float64_predictions_agree():
    X, y = make_mixed(n=120)
    est = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    out64 = est._outputs(X)
    out32 = est._outputs(X.astype(np.float32))
    assert out64.dtype == np.float64 and out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    # float64: a row's output agrees with its output in another batch to ~1e-15
    np.testing.assert_allclose(est._outputs(X[5:6]), out64[5:6], rtol=1e-12)


def test_invalid_parameters_name_the_parameter():
    X, y = make_mixed(n=30)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive"):
        MultiTaskNeuralEstimator(hidden_layer_sizes=(8, 0)).fit(X, y)
    with pytest.raises(ValueError, match="'learning_rate_init' parameter"):
        MultiTaskNeuralEstimator(learning_rate_init=0).fit(X, y)
    with pytest.raises(ValueError, match="device='tpu9' is not a torch device"):
        MultiTaskNeuralEstimator(device="tpu9").fit(X, y)
    with pytest.raises(ValueError, match=r"task_weights has keys \['nope'\]"):
        MultiTaskNeuralEstimator(task_weights={"nope": 1.0}).fit(X, y)
    with pytest.raises(ValueError, match=r"task_weights\['churn'\] must be a finite"):
        MultiTaskNeuralEstimator(task_weights={"churn": -1.0}).fit(X, y)


def test_unfitted_and_mismatched_targets():
    X, y = make_mixed(n=40)
    with pytest.raises(NotFittedError):
        MultiTaskNeuralEstimator().predict(X)
    est = MultiTaskNeuralEstimator(**dict(SMALL, warm_start=True)).fit(X, y)
    with pytest.raises(ValueError, match="y has columns"):
        est.fit(X, y.rename(columns={"tier": "level"}))
    with pytest.raises(ValueError, match="requires y to be passed"):
        MultiTaskNeuralEstimator().fit(X, None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_pickles_to_cpu():  # pragma: no cover - runs on GPU machines
    import pickle

    X, y = make_mixed(n=100)
    est = MultiTaskNeuralEstimator(**dict(SMALL, device="cuda")).fit(X, y)
    blob = pickle.dumps(est)
    loaded = pickle.loads(blob)
    np.testing.assert_allclose(loaded.predict_proba(X)[0], est.predict_proba(X)[0])


def test_refit_warns_again_at_max_iter():
    X, y = make_mixed(n=60)
    est = MultiTaskNeuralEstimator(**dict(SMALL, max_iter=2, tol=0.0))
    for _ in range(2):  # a second (cold) fit must warn too
        with pytest.warns(ConvergenceWarning):
            est.fit(X, y)
    assert est.n_iter_ == 2


def test_classifier_and_regressor_score_is_the_mean_over_tasks():
    from sklearn.metrics import accuracy_score, r2_score

    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = np.column_stack([np.digitize(X[:, 0], [-0.5, 0.5]), X[:, 1] > 0]).astype(int)
    clf = MultiTaskClassifier(**SMALL).fit(X, y)  # multiclass + binary tasks
    pred = clf.predict(X)
    expected = np.mean([accuracy_score(y[:, j], pred[:, j]) for j in range(2)])
    assert clf.score(X, y) == pytest.approx(expected)
    # missing labels are left out of a task's score
    y_missing = y.astype(float)
    y_missing[:50, 0] = np.nan
    expected = np.mean(
        [accuracy_score(y[50:, 0], pred[50:, 0]), accuracy_score(y[:, 1], pred[:, 1])]
    )
    assert clf.score(X, y_missing) == pytest.approx(expected)

    Y = np.column_stack([X[:, 0] + X[:, 1], X[:, 2] * 2])
    reg = MultiTaskRegressor(**SMALL).fit(X, Y)
    assert reg.score(X, Y) == pytest.approx(r2_score(Y, reg.predict(X)))
    Y_missing = Y.copy()
    Y_missing[::3, 1] = np.nan
    rp = reg.predict(X)
    keep = ~np.isnan(Y_missing[:, 1])
    expected = np.mean([r2_score(Y[:, 0], rp[:, 0]), r2_score(Y[keep, 1], rp[keep, 1])])
    assert reg.score(X, Y_missing) == pytest.approx(expected)


# --------------------------------------------------------------------------- boundaries
def _state(est):
    """Everything a fitted model predicts from: attributes and weights."""
    weights = {k: v.clone() for k, v in est.module_.state_dict().items()}
    attrs = {k: v for k, v in vars(est).items() if k != "engine_"}
    return attrs, weights, est.engine_


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(class_weight={"nope": "balanced"}), r"class_weight has keys \['nope'\]"),
        (dict(task_weights={"churn": -1.0}), r"task_weights\['churn'\] must be"),
        (dict(loss_weighting="dwa", loss_weighting_params={"temperature": 0}), "> 0"),
        (dict(callbacks=["x"]), "callbacks must be skorch callbacks"),
    ],
)
def test_failed_refit_leaves_the_model_as_it_was(mixed_data, quiet_fit, bad, match):
    X, y = mixed_data
    est = quiet_fit(
        MultiTaskNeuralEstimator(**SMALL, task_types={"spend": "regression"}), X, y
    )
    before = est.predict(X)
    attrs, weights, engine = _state(est)
    est.set_params(**bad)
    with pytest.raises((ValueError, TypeError), match=match):
        est.fit(X[:, :4], y)  # new X width too: n_features_in_ must not change
    assert est.engine_ is engine
    assert {k: v for k, v in vars(est).items() if k != "engine_"}.keys() == attrs.keys()
    assert est.n_features_in_ == 5 and est.tasks_ is attrs["tasks_"]
    for k, v in est.module_.state_dict().items():
        assert torch.equal(v, weights[k])
    np.testing.assert_array_equal(est.predict(X), before)


def test_failed_first_fit_leaves_the_estimator_unfitted():
    X = np.random.RandomState(0).normal(size=(40, 3))
    y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0])
    est = MultiTaskClassifier(**SMALL, class_weight={"task_0": {True: -1.0}})
    with pytest.raises(ValueError, match=r"label True must be a finite number >= 0"):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_") and not hasattr(est, "tasks_")
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_failed_partial_fit_changes_nothing():
    X = np.random.RandomState(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    est = MultiTaskClassifier(**SMALL).partial_fit(X, y)
    attrs, weights, engine = _state(est)
    with pytest.raises(ValueError, match=r"labels \[7\] that are not among"):
        est.partial_fit(X, np.where(y == 1, 7, 0))
    assert est.n_iter_ == attrs["n_iter_"] == 1
    assert len(est.engine_.history) == 1
    for k, v in est.module_.state_dict().items():
        assert torch.equal(v, weights[k])


def test_predict_from_many_threads_is_safe_for_any_dtype(mixed_data, quiet_fit):
    from concurrent.futures import ThreadPoolExecutor

    X, y = mixed_data
    est = quiet_fit(
        MultiTaskNeuralEstimator(**SMALL, task_types={"spend": "regression"}), X, y
    )
    inputs = [X, X.astype(np.float32)] * 8
    expected = [est.predict_proba(x)[0] for x in inputs[:2]]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda x: est.predict_proba(x)[0], inputs))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[i % 2])
    assert all(p.dtype == torch.float32 for p in est.module_.parameters())
    est.partial_fit(X, y)  # still trains: the weights were never cast


def test_parallel_fits_each_honour_random_state(mixed_data):
    from concurrent.futures import ThreadPoolExecutor

    X, y = mixed_data

    def fit(seed):
        est = MultiTaskNeuralEstimator(
            hidden_layer_sizes=(16,),
            dropout=0.3,
            loss_weighting="rlw",
            max_iter=4,
            random_state=seed,
            device="cpu",
            task_types={"spend": "regression"},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return est.fit(X, y).predict_proba(X)[0]

    seeds = [0, 1, 0, 1]
    sequential = [fit(s) for s in seeds]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(fit, seeds))
    for a, b in zip(sequential, parallel):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(sequential[0], sequential[1])


def test_score_matches_columns_by_name(mixed_data, quiet_fit):
    X, y = mixed_data
    est = quiet_fit(
        MultiTaskNeuralEstimator(**SMALL, task_types={"spend": "regression"}), X, y
    )
    reordered = y[["spend", "churn", "tier"]]
    assert est.score(X, reordered) == est.score(X, y)
    with pytest.raises(ValueError, match=r"missing: \['tier'\]"):
        est.score(X, y[["spend", "churn"]])


def test_score_nullable_boolean_task_with_missing_labels(quiet_fit):
    X = np.random.RandomState(0).normal(size=(80, 3))
    flag = pd.array(X[:, 0] > 0, dtype="boolean")
    flag[::5] = pd.NA
    y = pd.DataFrame({"flag": flag, "other": X[:, 1] > 0})
    est = quiet_fit(MultiTaskClassifier(**SMALL), X, y)
    pred = est.predict(X)
    keep = ~np.asarray(pd.isna(y["flag"]))
    expected = np.mean(
        [
            np.mean(pred[keep, 0] == np.asarray(y["flag"][keep], dtype=bool)),
            np.mean(pred[:, 1] == y["other"].to_numpy()),
        ]
    )
    assert est.score(X, y) == pytest.approx(expected)


def test_regressor_has_no_predict_proba():
    assert not hasattr(MultiTaskRegressor(), "predict_proba")
    X = np.random.RandomState(0).normal(size=(30, 2))
    reg = MultiTaskRegressor(hidden_layer_sizes=(4,), max_iter=2, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, X)
    assert not hasattr(reg, "predict_proba")


def test_optimizer_choice_builds_no_optimizer(monkeypatch):
    from sklearn_mtl import _engine

    def forbidden(*args, **kwargs):
        raise AssertionError("fast_adam_kwargs must not build an optimizer")

    monkeypatch.setattr(torch.optim, "Adam", forbidden)
    assert _engine.fast_adam_kwargs("cpu") in ({"fused": True}, {"foreach": True})


def test_interrupt_during_optimizer_import_is_deferred():
    import os
    import signal

    from sklearn_mtl._engine import _deferred_interrupt

    before = signal.getsignal(signal.SIGINT)
    try:
        # Python's own handler: a KeyboardInterrupt, once the block has ended
        signal.signal(signal.SIGINT, signal.default_int_handler)
        finished = []
        with pytest.raises(KeyboardInterrupt):
            with _deferred_interrupt():
                os.kill(os.getpid(), signal.SIGINT)
                finished.append(True)  # the block runs to its end first
        assert finished == [True]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        # an ignored SIGINT (a background job) stays ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with _deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        # another handler is called, once
        calls = []
        signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
        with _deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            assert calls == []
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize(
    "cls", [MultiTaskNeuralEstimator, MultiTaskClassifier, MultiTaskRegressor]
)
def test_docstring_documents_every_parameter_in_signature_order(cls):
    names = list(inspect.signature(cls.__init__).parameters)[1:]
    section = cls.__doc__.split("Parameters\n    ----------\n")[1].split("Attributes")[
        0
    ]
    documented = re.findall(r"^    (\w+) : ", section, flags=re.M)
    assert documented == names
    params = cls().get_params()
    assert params["precision"] == "float32" and params["compile"] is False


def _output_bias(est):
    from sklearn_mtl.nn import TaskHeads

    (heads,) = [m for m in est.module_.modules() if isinstance(m, TaskHeads)]
    return heads.out.bias.detach().double()


@pytest.mark.parametrize(
    "params",
    [{}, {"n_ensemble": 2}, {"architecture": "mmoe"}, {"head_layer_sizes": (4,)}],
    ids=["shared_bottom", "ensemble", "mmoe", "towers"],
)
def test_fit_starts_each_output_at_its_task_baseline(params):
    X, y = make_mixed(n=200)
    y["churn"] = np.where(X[:, 0] > 1.0, "yes", "no")  # ~16 % positives
    sw = np.linspace(0.5, 1.5, 200)
    # A learning rate too small to move anything: the bias is the initial one.
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=1, learning_rate_init=1e-12, **params),
        task_types={"spend": "regression"},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, sample_weight=sw)
    share = np.average(y["churn"] == "yes", weights=sw)
    tiers = [np.average(y["tier"] == c, weights=sw) for c in (0, 1, 2)]
    spend = (y["spend"] - est.tasks_.tasks[2].mean) / est.tasks_.tasks[2].scale
    expected = torch.tensor(
        [np.log(share / (1 - share)), *np.log(tiers), np.average(spend, weights=sw)],
        dtype=torch.float64,
    )
    bias = _output_bias(est)
    if "head_layer_sizes" in params or "architecture" in params:
        # one (members, 1, max width) block per task: its real columns
        bias = torch.cat([bias[0, 0, :1], bias[1, 0, :3], bias[2, 0, :1]])
    bias = bias.reshape(-1, 5)  # one row per member
    torch.testing.assert_close(bias, expected.expand_as(bias), rtol=0, atol=1e-6)


def test_partial_fit_keeps_the_random_output_bias():
    """A first partial_fit sees one batch: only the output bias differs from fit."""
    X, y = make_mixed(n=200)
    params = dict(SMALL, max_iter=1, learning_rate_init=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = MultiTaskNeuralEstimator(**params).fit(X, y)
    partial = MultiTaskNeuralEstimator(**params).partial_fit(X, y)
    ours, theirs = partial.module_.state_dict(), fitted.module_.state_dict()
    for name, value in ours.items():
        if name != "heads.out.bias":
            torch.testing.assert_close(value, theirs[name], rtol=0, atol=1e-9)
    bound = 1 / np.sqrt(16)  # nn.Linear's uniform init of the output bias
    assert ours["heads.out.bias"].abs().max() <= bound
    assert (ours["heads.out.bias"] - theirs["heads.out.bias"]).abs().max() > 0.05


def _build_warnings(call):
    """The "changed since the network was built" warnings of ``call()``."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    return [w for w in record if "changed since the network" in str(w.message)]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_fits_warn_that_changed_build_parameters_are_not_used():
    X, y = make_mixed(n=60)
    est = MultiTaskNeuralEstimator(**dict(SMALL, max_iter=2, warm_start=True))
    est.fit(X, y)
    # Not build parameters, equal values, class_weight: no warning.
    est.set_params(
        max_iter=1,
        learning_rate_init=0.01,
        hidden_layer_sizes=16,
        loss_weighting_params={},
        task_weights={"churn": 1, "tier": 1.0},
        class_weight="balanced",
    )
    assert _build_warnings(lambda: est.fit(X, y)) == []
    assert _build_warnings(lambda: est.partial_fit(X, y)) == []
    est.set_params(task_weights={"churn": 0.0}, dropout=0.1)
    weights = est.engine_.criterion_.weighting.weights.tolist()
    (warning,) = _build_warnings(lambda: est.fit(X, y))
    assert str(warning.message).startswith(
        "dropout, task_weights changed since the network was built; a fit with "
        "warm_start=True goes on with"
    )
    assert warning.filename == __file__  # the caller's line
    assert est.engine_.criterion_.weighting.weights.tolist() == weights
    (warning,) = _build_warnings(lambda: est.partial_fit(X, y))
    assert "built; partial_fit goes on with" in str(warning.message)
    # A fit that is not warm builds anew from them: no warning.
    assert _build_warnings(lambda: est.set_params(warm_start=False).fit(X, y)) == []
    assert est.engine_.criterion_.weighting.weights.tolist() == [0.0, 1.0, 1.0]

"""The estimators' behaviour: targets, tasks, outputs, training controls."""

import copy
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
    fitted = est.net_.callbacks_[-1][1].states[best_epoch]
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
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    init = MultiTaskNeuralEstimator(**dict(SMALL, max_iter=1))
    init._initialize(X.astype(np.float32), *_columns(y), None)
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

"""The estimators inside scikit-learn's tools: pipelines, search, CV, clone, pickle."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_mtl import (
    MultiTaskClassifier,
    MultiTaskNeuralEstimator,
    MultiTaskRegressor,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def customer_frame(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "age": rng.randint(18, 80, n).astype(float),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    pro = (X["plan"] == "pro").to_numpy()
    y = pd.DataFrame(
        {
            "churn": np.where((X["age"] < 35).to_numpy() & ~pro, "yes", "no"),
            "upgrade": np.where(X["income"] > np.median(X["income"]), "yes", "no"),
            "spend": 20 + 0.001 * X["income"].to_numpy() + 30 * pro,
        }
    )
    return X, y


def test_pipeline_with_column_transformer_on_dataframe():
    X, y = customer_frame()
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(), ["plan"]),
        ]
    )
    model = make_pipeline(
        pre,
        MultiTaskNeuralEstimator(
            hidden_layer_sizes=(32,),
            learning_rate_init=0.01,
            max_iter=100,
            random_state=0,
            task_types={"spend": "regression"},
        ),
    )
    model.fit(X, y)
    pred = model.predict(X)
    assert pred.shape == (300, 3)
    assert model[-1].task_names_ == ["churn", "upgrade", "spend"]
    assert model[-1].n_features_in_ == 5
    assert np.mean(pred[:, 0] == y["churn"].to_numpy()) > 0.9
    assert np.mean(pred[:, 1] == y["upgrade"].to_numpy()) > 0.9
    assert model.score(X, y) > 0.85


def test_grid_search_in_parallel():
    X, y = customer_frame(n=200)
    Xn = StandardScaler().fit_transform(X[["age", "income"]])
    yc = y[["churn", "upgrade"]]
    search = GridSearchCV(
        MultiTaskClassifier(max_iter=20, random_state=0),
        {"hidden_layer_sizes": [(4,), (16,)], "learning_rate_init": [1e-3, 1e-2]},
        cv=2,
        n_jobs=2,
    ).fit(Xn, yc)
    assert len(search.cv_results_["params"]) == 4
    best = int(np.argmax(search.cv_results_["mean_test_score"]))
    assert search.best_params_ == search.cv_results_["params"][best]
    assert search.best_estimator_.predict(Xn).shape == (200, 2)


def test_cross_val_score_stratifies_classifier():
    X, y = customer_frame(n=120)
    Xn = StandardScaler().fit_transform(X[["age", "income"]])
    clf = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    scores = cross_val_score(clf, Xn, y["churn"], cv=3)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    # cv=3 on a classifier means StratifiedKFold, as for any sklearn classifier:
    # the same folds give the same scores, plain KFold gives other folds.
    stratified = cross_val_score(clf, Xn, y["churn"], cv=StratifiedKFold(3))
    np.testing.assert_array_equal(scores, stratified)
    reg_scores = cross_val_score(
        MultiTaskRegressor(hidden_layer_sizes=(8,), max_iter=10, random_state=0),
        Xn,
        y[["spend"]],
        cv=3,
    )
    assert reg_scores.shape == (3,)


def test_clone_gives_unfitted_copy_with_same_params():
    est = MultiTaskNeuralEstimator(hidden_layer_sizes=(8, 4), task_weights={"a": 2.0})
    X, y = customer_frame(n=50)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "engine_")


def test_pickle_round_trip_identical_predictions():
    X, y = customer_frame(n=100)
    Xn = StandardScaler().fit_transform(X[["age", "income"]])
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(8,), max_iter=10, random_state=0, device="cpu"
    ).fit(Xn, y)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(Xn), est.predict(Xn))
    for a, b in zip(loaded.predict_proba(Xn), est.predict_proba(Xn)):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)
    # the loaded model keeps training (optimizer state travelled too)
    loaded.set_params(warm_start=True, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        loaded.fit(Xn, y)
    assert loaded.n_iter_ == est.n_iter_ + 2


# --------------------------------------------------------------------------- MLP idioms
def _two_binary_tasks(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    return X, np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)


def test_partial_fit_accepts_mlp_flat_classes():
    X, y = _two_binary_tasks()
    clf = MultiTaskClassifier(hidden_layer_sizes=(8,), random_state=0)
    # the first batch shows class 1 of neither task
    first = (y == 0).all(axis=1)
    clf.partial_fit(X[first], y[first], classes=[0, 1])
    assert [c.tolist() for c in clf.classes_] == [[0, 1], [0, 1]]
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 2
    assert [p.shape for p in clf.predict_proba(X[:3])] == [(3, 2), (3, 2)]


def test_learning_curve_exploits_incremental_learning():
    from sklearn.model_selection import KFold, learning_curve

    X, y = _two_binary_tasks()
    clf = MultiTaskClassifier(hidden_layer_sizes=(8,), random_state=0)
    sizes, train_scores, test_scores = learning_curve(
        clf,
        X,
        y,
        train_sizes=[0.3, 0.6, 1.0],
        cv=KFold(3),
        exploit_incremental_learning=True,
    )
    assert sizes.tolist() == [24, 48, 80]
    assert train_scores.shape == test_scores.shape == (3, 3)
    assert np.isfinite(test_scores).all()
    # the same numbers as partial_fit by hand on the growing prefixes
    train, test = next(iter(KFold(3).split(X)))
    hand = MultiTaskClassifier(hidden_layer_sizes=(8,), random_state=0)
    start = 0
    for k, size in enumerate(sizes):
        hand.partial_fit(X[train[start:size]], y[train[start:size]], classes=[0, 1])
        start = size
        assert test_scores[k, 0] == hand.score(X[test], y[test])


def test_predict_keeps_each_task_label_type():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 3))
    big = np.array([2**60 + 7, 2**60 + 9])
    y = pd.DataFrame(
        {
            "flag": X[:, 0] > 0,  # bool
            "code": big[(X[:, 1] > 0).astype(int)],  # exact large integers
            "amount": 2.5 * X[:, 2],  # float
        }
    )
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(8,), max_iter=3, random_state=0
    ).fit(X, y)
    pred = est.predict(X[:20])
    assert pred.dtype == object and pred.shape == (20, 3)
    assert {type(v) for v in pred[:, 0]} == {bool}
    assert {type(v) for v in pred[:, 1]} == {int}
    assert set(pred[:, 1]) <= set(big.tolist())
    assert {type(v) for v in pred[:, 2]} == {float}
    # bool and int tasks alone keep their own dtype
    only_bool = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=3).fit(
        X, np.column_stack([X[:, 0] > 0, X[:, 1] > 0])
    )
    assert only_bool.predict(X[:5]).dtype == np.bool_
    only_int = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=3).fit(
        X, y[["code"]].assign(other=big[(X[:, 0] > 0).astype(int)])
    )
    out = only_int.predict(X[:20])
    assert out.dtype == np.int64 and set(out.ravel()) <= set(big.tolist())

"""Safe model files (save / load) and pickling."""

import io
import json
import os
import pickle
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import EpochTimer

from sklearn_mtl import (
    MultiTaskClassifier,
    MultiTaskNeuralEstimator,
    MultiTaskRegressor,
    load,
    save,
)

SMALL = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0, device="cpu")


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _X(n=40, d=3, seed=0):
    return np.random.RandomState(seed).normal(size=(n, d))


def _mixed_y(n=40):
    X = _X(n)
    return pd.DataFrame(
        {
            "label": np.where(X[:, 0] > 0, "yes", "no").astype(object),
            "size": pd.Series(np.array(["s", "m", "l", None])[np.arange(n) % 4]).astype(
                "str"
            ),
            "flag": X[:, 1] > 0,
            "count": pd.array(
                np.where(np.arange(n) % 5 == 0, None, np.arange(n) % 3)
            ).astype("Int64"),
            "value": np.where(np.arange(n) % 7 == 0, np.nan, X[:, 2] * 10 + 3),
        }
    )


def _assert_same_model(a, b, X):
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(a.predict(X32), b.predict(X32))
    if hasattr(a, "predict_proba"):
        pa, pb = a.predict_proba(X), b.predict_proba(X)
        for u, v in zip(
            pa if isinstance(pa, list) else [pa], pb if isinstance(pb, list) else [pb]
        ):
            assert (u is None and v is None) or np.array_equal(u, v)


def test_round_trip_mixed_tasks_and_label_types(tmp_path):
    X, y = _X(), _mixed_y()
    est = MultiTaskNeuralEstimator(
        **SMALL, task_types={"value": "regression"}, class_weight={"label": "balanced"}
    ).fit(X, y)
    path = tmp_path / "model.mtl"
    save(est, path)
    loaded = load(path)
    assert type(loaded) is MultiTaskNeuralEstimator
    assert loaded.get_params() == est.get_params()
    _assert_same_model(est, loaded, X)
    for c_est, c_loaded in zip(est.classes_, loaded.classes_):
        if c_est is None:
            assert c_loaded is None
            continue
        assert c_loaded.dtype == c_est.dtype
        assert c_loaded.tolist() == c_est.tolist()
    assert loaded.classes_[0].tolist() == ["no", "yes"]
    assert loaded.classes_[3].dtype.kind == "i"
    assert [t.kind for t in loaded.tasks_.tasks] == [t.kind for t in est.tasks_.tasks]
    assert loaded.tasks_.tasks[4].mean == est.tasks_.tasks[4].mean
    assert loaded.tasks_.tasks[4].scale == est.tasks_.tasks[4].scale
    assert loaded.n_iter_ == est.n_iter_ == 4
    assert loaded.loss_curve_ == est.loss_curve_
    assert loaded.task_loss_curves_ == est.task_loss_curves_
    assert loaded.task_names_ == est.task_names_
    assert len(loaded.engine_.history) == 4
    assert (
        loaded.engine_.history[-1, "train_loss"]
        == est.engine_.history[-1, "train_loss"]
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda X: MultiTaskClassifier(**SMALL).fit(
            X, np.array(["b", "a", "c"] * 20)[:40]
        ),
        lambda X: MultiTaskClassifier(**SMALL).fit(X, (X[:, :2] > 0)),
        lambda X: MultiTaskClassifier(**SMALL).fit(X, (X[:, 0] > 0).astype(int) * 3),
        lambda X: MultiTaskRegressor(**SMALL, head_layer_sizes=(4,)).fit(X, X[:, :2]),
        lambda X: MultiTaskRegressor(**SMALL).fit(X, X[:, 0].astype(np.float32)),
    ],
    ids=["str-1d", "bool-2d", "int-1d", "regressor-towers", "regressor-1d"],
)
def test_round_trip_each_estimator(tmp_path, make):
    X = _X()
    est = make(X)
    save(est, tmp_path / "m.mtl")
    loaded = load(tmp_path / "m.mtl")
    assert type(loaded) is type(est)
    _assert_same_model(est, loaded, X)
    assert np.asarray(loaded.predict(X)).shape == np.asarray(est.predict(X)).shape


def test_training_continues_identically_after_load(tmp_path):
    X = _X()
    y = np.column_stack([X[:, 0] > 0, X[:, 1] * 2]).astype(float)
    est = MultiTaskNeuralEstimator(
        **SMALL, task_types={"task_1": "regression"}
    ).partial_fit(X, y)
    save(est, tmp_path / "m.mtl")
    loaded = load(tmp_path / "m.mtl")
    for _ in range(2):
        est.partial_fit(X, y)
        loaded.partial_fit(X, y)
    _assert_same_model(est, loaded, X)  # optimizer moments came along
    assert loaded.n_iter_ == 3


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_round_trip_early_stopping_and_feature_names(tmp_path):
    X = pd.DataFrame(_X(80), columns=["f0", "f1", "f2"])
    y = (X["f0"] > 0).astype(int)
    est = MultiTaskClassifier(**dict(SMALL, max_iter=6), early_stopping=True).fit(X, y)
    save(est, tmp_path / "m.mtl")
    loaded = load(tmp_path / "m.mtl")
    _assert_same_model(est, loaded, X.to_numpy())
    assert loaded.feature_names_in_.tolist() == ["f0", "f1", "f2"]
    assert loaded.validation_scores_ == est.validation_scores_
    assert loaded.best_validation_score_ == est.best_validation_score_
    with pytest.raises(ValueError, match="X has 2 features"):
        loaded.predict(X.to_numpy()[:, :2])


def test_unfitted_round_trip(tmp_path):
    est = MultiTaskClassifier(hidden_layer_sizes=(3, 2), class_weight={"a": {1: 2.0}})
    save(est, tmp_path / "m.mtl")
    loaded = load(tmp_path / "m.mtl")
    assert loaded.get_params() == est.get_params()
    assert loaded.hidden_layer_sizes == (3, 2)  # tuples stay tuples
    assert list(loaded.class_weight["a"]) == [1]  # integer label keys stay integers
    assert not hasattr(loaded, "engine_")


def test_parameters_without_a_data_form_are_refused(tmp_path):
    X = _X()
    est = MultiTaskClassifier(**SMALL, callbacks=[EpochTimer()]).fit(X, X[:, 0] > 0)
    with pytest.raises(ValueError, match="Cannot save parameter 'callbacks'.*None"):
        save(est, tmp_path / "m.mtl")
    assert not (tmp_path / "m.mtl").exists()
    save(est.set_params(callbacks=None), tmp_path / "m.mtl")
    _assert_same_model(est, load(tmp_path / "m.mtl"), X)
    rs = MultiTaskClassifier(random_state=np.random.RandomState(0))
    with pytest.raises(ValueError, match="'random_state'"):
        save(rs, tmp_path / "r.mtl")
    with pytest.raises(TypeError, match="save takes a MultiTaskNeuralEstimator"):
        save(object(), tmp_path / "o.mtl")


class _Evil:
    """Unpickling this runs a shell command (what a crafted model file would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tamper(path, out, *, weights=None, meta_edit=None):
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("meta.json"))
        w = z.read("weights.pt")
    if meta_edit:
        meta_edit(meta)
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("meta.json", json.dumps(meta))
        z.writestr("weights.pt", w if weights is None else weights)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("container", ["torch", "pickle"])
def test_crafted_file_cannot_run_code(tmp_path, container):
    X = _X()
    est = MultiTaskClassifier(**SMALL).fit(X, X[:, 0] > 0)
    save(est, tmp_path / "good.mtl")
    marker = tmp_path / "pwned"
    # The payload is real: plain unpickling runs it.
    pickle.loads(pickle.dumps(_Evil(tmp_path / "control")))
    assert (tmp_path / "control").exists()

    payload = {"module": _Evil(marker)}
    if container == "torch":
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        weights = buffer.getvalue()
    else:
        weights = pickle.dumps(payload)
    _tamper(tmp_path / "good.mtl", tmp_path / "evil.mtl", weights=weights)
    with pytest.raises(ValueError, match="refused"):
        load(tmp_path / "evil.mtl")
    assert not marker.exists()


def test_file_names_only_whitelisted_classes(tmp_path):
    est = MultiTaskClassifier(**SMALL)
    save(est, tmp_path / "m.mtl")

    def rename(meta):
        meta["class"] = "os.system"

    _tamper(tmp_path / "m.mtl", tmp_path / "bad.mtl", meta_edit=rename)
    with pytest.raises(ValueError, match="names class 'os.system'"):
        load(tmp_path / "bad.mtl")
    (tmp_path / "junk.mtl").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an sklearn-mtl model file"):
        load(tmp_path / "junk.mtl")


def test_gpu_saved_model_loads_on_cpu(tmp_path):
    X = _X()
    est = MultiTaskClassifier(**SMALL).fit(X, X[:, 0] > 0)
    save(est, tmp_path / "m.mtl")
    with zipfile.ZipFile(tmp_path / "m.mtl") as z:
        tensors = torch.load(io.BytesIO(z.read("weights.pt")), weights_only=True)
    devices = {t.device.type for t in tensors["module"].values()}
    assert devices == {"cpu"}  # what a GPU-trained model writes too

    def to_cuda(meta):
        meta["params"]["device"] = "cuda"

    _tamper(tmp_path / "m.mtl", tmp_path / "gpu.mtl", meta_edit=to_cuda)
    if torch.cuda.is_available():
        loaded = load(tmp_path / "gpu.mtl", device="cpu")
    else:
        with pytest.warns(UserWarning, match="CUDA is not available"):
            loaded = load(tmp_path / "gpu.mtl")
        assert loaded.device == "auto"
    assert loaded.engine_.device == "cpu" or not torch.cuda.is_available()
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert load(tmp_path / "m.mtl", device="cpu").device == "cpu"


@pytest.mark.parametrize(
    "Est, y_of",
    [
        (MultiTaskNeuralEstimator, lambda X: np.column_stack([X[:, 0] > 0, X[:, 1]])),
        (MultiTaskClassifier, lambda X: np.where(X[:, 0] > 0, "a", "b")),
        (MultiTaskRegressor, lambda X: X[:, :2]),
    ],
)
def test_pickle_round_trip(Est, y_of):
    X = _X()
    est = Est(**SMALL).fit(X, y_of(X))
    _assert_same_model(est, pickle.loads(pickle.dumps(est)), X)


@pytest.mark.parametrize(
    "architecture, loss_weighting",
    [
        ("mmoe", "uncertainty"),
        ("ple", "famo"),
        ("cross_stitch", "pcgrad"),
        ("cgc", "dwa"),
    ],
)
def test_round_trip_of_architectures_and_weightings(
    tmp_path, architecture, loss_weighting
):
    """Learnable weighting state (criterion) and expert networks survive save/load."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5))
    y = np.column_stack([X[:, 0] > 0, 3 * X[:, 1]])
    params = dict(
        hidden_layer_sizes=(8,),
        max_iter=3,
        random_state=0,
        architecture=architecture,
        loss_weighting=loss_weighting,
        task_types={"task_1": "regression"},
        warm_start=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MultiTaskNeuralEstimator(**params).fit(X, y)
        save(est, tmp_path / "m.zip")
        loaded = load(tmp_path / "m.zip")
        np.testing.assert_array_equal(loaded._outputs(X), est._outputs(X))
        # training goes on identically: optimizer and weighting state travelled
        est.partial_fit(X, y)
        loaded.partial_fit(X, y)
    np.testing.assert_array_equal(loaded._outputs(X), est._outputs(X))

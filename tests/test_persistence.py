"""Safe model files (save / load) and pickling."""

import importlib.util
import io
import json
import os
import pickle
import threading
import time
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import EpochTimer

import sklearn_mtl
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
    with pytest.raises(
        TypeError, match="save takes a scikit-learn estimator.*got object"
    ):
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
    text = json.dumps(meta).replace('"__DEEP__"', "[" * 10**5 + "]" * 10**5)
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("meta.json", text)
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


def test_explicit_device_is_checked_before_the_file_is_read(tmp_path):
    est = MultiTaskRegressor(**SMALL).fit(_X(), _X()[:, :2])
    save(est, tmp_path / "m.mtl")
    with pytest.raises(ValueError, match=r"device='gpu0' is not a torch device"):
        load(tmp_path / "m.mtl", device="gpu0")
    # no file is touched: the same error for a path that does not exist
    with pytest.raises(ValueError, match=r"device='gpu0' is not a torch device"):
        load(tmp_path / "missing.mtl", device="gpu0")
    if not torch.cuda.is_available():
        # asked for explicitly, a missing CUDA is an error, not a fallback
        # with a warning about the saved device
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(
                ValueError,
                match=r"^device='cuda' was requested but CUDA is not available on "
                r"this machine; use device='auto' or 'cpu'\.$",
            ):
                load(tmp_path / "m.mtl", device="cuda")


def test_device_for_a_skops_file_is_refused():
    pytest.importorskip("skops.io")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = _X()
    pipe = make_pipeline(StandardScaler(), MultiTaskRegressor(**SMALL)).fit(X, X[:, :2])
    buffer = io.BytesIO()
    save(pipe, buffer)
    with pytest.raises(
        ValueError,
        match=r"^the model file is a skops file \(e\.g\. a Pipeline\); "
        r"load\(device=\.\.\.\) applies to a file holding one estimator\.",
    ):
        load(buffer, device="cpu")
    np.testing.assert_array_equal(load(buffer).predict(X), pipe.predict(X))


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


# --------------------------------------------------------------------------- skops
def _skops():
    return pytest.importorskip("skops.io")


TRUSTED = {
    "sklearn_mtl._estimator.MultiTaskClassifier",
    "sklearn_mtl._estimator.MultiTaskNeuralEstimator",
    "sklearn_mtl._estimator.MultiTaskRegressor",
}


def _skops_round_trip(model):
    sio = _skops()
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert set(untrusted) <= TRUSTED, untrusted
    return sio.loads(data, trusted=untrusted), untrusted


def test_skops_round_trip_of_a_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = _X(60)
    y = np.column_stack([X[:, 0] > 0, 3 * X[:, 1]])
    pipe = make_pipeline(
        StandardScaler(),
        MultiTaskNeuralEstimator(**SMALL, task_types={"task_1": "regression"}),
    ).fit(X, y)
    loaded, untrusted = _skops_round_trip(pipe)
    assert untrusted == ["sklearn_mtl._estimator.MultiTaskNeuralEstimator"]
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X)[0], pipe.predict_proba(X)[0])
    # and through sklearn_mtl.save / load, in memory
    buffer = io.BytesIO()
    save(pipe, buffer)
    np.testing.assert_array_equal(load(buffer).predict(X), pipe.predict(X))


def test_save_refuses_a_parameter_set_invalid_after_fit():
    # load would refuse the file: it is not written (native and skops paths).
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pytest.importorskip("skops")
    X = _X(40)
    est = MultiTaskRegressor(**SMALL).fit(X, X[:, :2])
    est.set_params(max_iter=0)
    match = (
        r"^Cannot save this fitted MultiTaskRegressor, which load would refuse: "
        r"The 'max_iter' parameter .* Got 0 instead\. Set a valid value"
    )
    buffer = io.BytesIO()
    with pytest.raises(ValueError, match=match):
        save(est, buffer)
    pipe = make_pipeline(StandardScaler(), est.set_params(max_iter=5)).fit(X, X[:, :2])
    est.set_params(max_iter=0)
    with pytest.raises(ValueError, match=match):
        save(pipe, buffer)
    assert buffer.getvalue() == b""
    # Valid values that load refuses too: a network above the size limit
    # (a refit would build it), a device that is not one.
    for params, refused in [
        (dict(hidden_layer_sizes=(40000, 40000)), "above the limit"),
        (dict(device="foo"), "device='foo' is not a torch device"),
    ]:
        est.set_params(max_iter=5, **params)
        with pytest.raises(ValueError, match=f"which load would refuse: .*{refused}"):
            save(est, buffer)
        est.set_params(hidden_layer_sizes=(8,), device="cpu")
    save(pipe, buffer)
    np.testing.assert_array_equal(load(buffer).predict(X), pipe.predict(X))
    # An unfitted model's parameters are checked by fit, as always.
    save(MultiTaskRegressor(max_iter=0), io.BytesIO())


def test_skops_keeps_dict_keys_it_cannot_write():
    # skops writes dict keys as JSON text and reads back bool("false") as
    # True: a bool task's class_weight lost a key and trained differently.
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = _X(80)
    y = np.column_stack([X[:, 0] > 0.5, X[:, 1] > 0]).astype(object)
    y[:, 1] = np.where(X[:, 1] > 0, "up", "down")
    weights = {"task_0": {True: 5.0, False: 1.0}, "task_1": {"up": 2.0, "down": 1.0}}
    pipe = make_pipeline(
        StandardScaler(), MultiTaskClassifier(**SMALL, class_weight=weights)
    ).fit(X, y)
    loaded, _ = _skops_round_trip(pipe)
    for model in (loaded[-1].class_weight, loaded[-1]._built_with["class_weight"]):
        assert model == weights
        assert [type(k) for k in model["task_0"]] == [bool, bool]
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    pipe[-1].partial_fit(X, y)
    loaded[-1].partial_fit(X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X)[0], pipe.predict_proba(X)[0])
    # Such a state is format 2; one without such a dict stays format 1 (older
    # packages read it).
    assert pipe[-1].__getstate__()["_sklearn_mtl_state"] == 2
    assert (
        MultiTaskClassifier(**SMALL).fit(X, y).__getstate__()["_sklearn_mtl_state"] == 1
    )
    state = pipe[-1].__getstate__()
    state["class_weight"] = {"__sklearn_mtl_dict_items__": [[True]]}
    with pytest.raises(ValueError, match="is not a list of \\[key, value\\] pairs"):
        MultiTaskClassifier.__new__(MultiTaskClassifier).__setstate__(state)


def test_skops_round_trip_of_a_column_transformer_on_categorical_data():
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.RandomState(0)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=80),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], 80)),
            "city": rng.choice(["a", "b"], 80).astype(object),
        }
    )
    y = pd.DataFrame(
        {"hot": df["colour"].eq("red").to_numpy(), "size": df["x"].to_numpy() * 2}
    )
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["x"]),
            ("cat", OneHotEncoder(sparse_output=False), ["colour", "city"]),
        ]
    )
    pipe = make_pipeline(
        columns, MultiTaskNeuralEstimator(**SMALL, task_types={"size": "regression"})
    ).fit(df, y)
    loaded, untrusted = _skops_round_trip(pipe)
    assert untrusted == ["sklearn_mtl._estimator.MultiTaskNeuralEstimator"]
    np.testing.assert_array_equal(loaded.predict(df), pipe.predict(df))
    # the estimator's own categorical embeddings on a raw DataFrame
    est = MultiTaskClassifier(**SMALL).fit(df, y["hot"])
    loaded, _ = _skops_round_trip(est)
    np.testing.assert_array_equal(loaded.predict(df), est.predict(df))
    assert loaded.inputs_["categories"] == est.inputs_["categories"]


def test_skops_round_trip_of_a_grid_search_best_estimator():
    from sklearn.model_selection import GridSearchCV

    X = _X(60)
    search = GridSearchCV(
        MultiTaskClassifier(**SMALL), {"hidden_layer_sizes": [(4,), (8,)]}, cv=2
    ).fit(X, X[:, 0] > 0)
    loaded, untrusted = _skops_round_trip(search.best_estimator_)
    assert untrusted == ["sklearn_mtl._estimator.MultiTaskClassifier"]
    _assert_same_model(search.best_estimator_, loaded, X)


MODELS = {
    **{
        arch: dict(architecture=arch)
        for arch in ("shared_bottom", "mmoe", "omoe", "cgc", "ple", "cross_stitch")
    },
    "uncertainty": dict(loss_weighting="uncertainty"),
    "famo": dict(architecture="mmoe", loss_weighting="famo"),
    "ensemble-embeddings": dict(
        n_ensemble=3, num_embeddings="piecewise_linear", embedding_dim=4
    ),
    "periodic-early-stopping": dict(num_embeddings="periodic", early_stopping=True),
    "sparse-first-layer": dict(_sparse=True),  # fitted on sparse X
}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_round_trips_exactly(tmp_path, name):
    """save/load, skops and pickle give the same predictions and training state."""
    X = _X(80, 4)
    y = np.column_stack([X[:, 0] > 0, 3 * X[:, 1]])
    params = dict(MODELS[name])
    if params.pop("_sparse", False):
        X = sp.csr_array(np.where(X > 0.5, X, 0.0))
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=3), task_types={"task_1": "regression"}, **params
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    save(est, tmp_path / "m.mtl")
    copies = {
        "save": load(tmp_path / "m.mtl"),
        "skops": _skops_round_trip(est)[0],
        "pickle": pickle.loads(pickle.dumps(est)),
    }
    reference = est.engine_.get_state()
    sparse_first = getattr(est.module_, "reads_sparse_batches", False)
    assert sparse_first == (name == "sparse-first-layer")
    for how, copy in copies.items():
        assert getattr(copy.module_, "reads_sparse_batches", False) == sparse_first
        np.testing.assert_array_equal(copy._outputs(X), est._outputs(X), err_msg=how)
        _assert_same_model(est, copy, X)
        state = copy.engine_.get_state()
        assert state["stopping"] == reference["stopping"], how
        for part in ("module", "criterion"):
            for key, value in reference["tensors"][part].items():
                assert torch.equal(state["tensors"][part][key], value), (how, key)
        assert copy.loss_curve_ == est.loss_curve_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_fit(X, y)
        copies["skops"].partial_fit(X, y)  # the optimizer's moments travelled
    np.testing.assert_array_equal(copies["skops"]._outputs(X), est._outputs(X))


def test_pickle_holds_no_torch_objects():
    X = _X()
    est = MultiTaskNeuralEstimator(**SMALL).fit(X, X[:, :2] > 0)
    data = pickle.dumps(est)
    assert b"torch" not in data and b"skorch" not in data
    _assert_same_model(est, pickle.loads(data), X)


def test_every_fitted_attribute_is_in_the_allow_list():
    from sklearn_mtl._state import FITTED_ATTRIBUTES

    X = pd.DataFrame(_X(80), columns=["a", "b", "c"])
    for est in (
        MultiTaskClassifier(**SMALL, early_stopping=True).fit(X, X["a"] > 0),
        MultiTaskRegressor(**SMALL).fit(X.to_numpy(), X.to_numpy()[:, :2]),
    ):
        params = set(est.get_params(deep=False))
        fitted = set(vars(est)) - params - {"engine_", "tasks_"}
        assert fitted <= FITTED_ATTRIBUTES, fitted - FITTED_ATTRIBUTES


def test_file_objects_round_trip():
    X = _X()
    est = MultiTaskRegressor(**SMALL).fit(X, X[:, :2])
    buffer = io.BytesIO()
    save(est, buffer)
    _assert_same_model(est, load(io.BytesIO(buffer.getvalue())), X)
    buffer.seek(5)  # load reads the whole file wherever the stream stands
    _assert_same_model(est, load(buffer), X)


# --------------------------------------------------------------------------- safety
def _fitted_state_file(tmp_path):
    X = _X()
    est = MultiTaskClassifier(**SMALL).fit(X, X[:, 0] > 0)
    save(est, tmp_path / "good.mtl")
    return est, tmp_path / "good.mtl"


def test_skops_file_naming_os_system_or_popen_is_refused(tmp_path):
    sio = _skops()
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = _X()
    est = MultiTaskClassifier(**SMALL).fit(X, X[:, 0] > 0)
    pipe = make_pipeline(FunctionTransformer(os.system), est)
    evil = tmp_path / "evil.skops"
    sio.dump(pipe, evil)
    # the file's function, called at predict time, would run a shell command
    system = f"{os.system.__module__}.{os.system.__name__}"
    assert system in sio.get_untrusted_types(file=evil)
    with pytest.raises(ValueError, match=rf"names types \['{system}'\] that"):
        load(evil)
    # a foreign class slipped into the estimator's own state
    data = io.BytesIO()
    sio.dump(est, data)
    with zipfile.ZipFile(data) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(members["schema.json"])
    schema["content"]["content"]["loss_curve_"] = {
        "__class__": "Popen",
        "__module__": "subprocess",
        "__loader__": "ObjectNode",
        "content": {
            "__class__": "dict",
            "__module__": "builtins",
            "__loader__": "DictNode",
            "content": {},
            "key_types": {
                "__class__": "list",
                "__module__": "builtins",
                "__loader__": "ListNode",
                "content": [],
            },
        },
    }
    members["schema.json"] = json.dumps(schema).encode()
    crafted = tmp_path / "crafted.skops"
    with zipfile.ZipFile(crafted, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(ValueError, match=r"\['subprocess.Popen'\]"):
        load(crafted)


def test_skops_state_setting_a_foreign_attribute_is_refused(tmp_path):
    sio = _skops()
    X = _X()
    est = MultiTaskClassifier(**SMALL).fit(X, X[:, 0] > 0)
    data = io.BytesIO()
    sio.dump(est, data)
    with zipfile.ZipFile(data) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(members["schema.json"])
    attrs = schema["content"]
    attrs["content"]["predict"] = dict(attrs["content"]["n_iter_"], __id__=1)
    attrs["key_types"]["content"].append(attrs["key_types"]["content"][0])
    members["schema.json"] = json.dumps(schema).encode()
    crafted = io.BytesIO()
    with zipfile.ZipFile(crafted, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(ValueError, match=r"attributes \['predict'\] are neither"):
        load(crafted)


def test_zip_bomb_is_refused_fast_before_memory_is_spent(tmp_path):
    import tracemalloc

    from sklearn_mtl import _persistence

    _, good = _fitted_state_file(tmp_path)
    bomb = tmp_path / "bomb.mtl"
    with zipfile.ZipFile(good) as z:
        meta = z.read("meta.json")
    size = _persistence.MAX_META_BYTES + 1  # 256 MiB of zeros, ~256 KiB deflated
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("meta.json", "w", force_zip64=True) as member:
            member.write(meta)
            chunk = b" " * 2**20
            for _ in range(size // len(chunk) + 1):
                member.write(chunk)
    assert bomb.stat().st_size < 2**21
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ValueError, match="'meta.json'.*declares.*above the limit"):
        load(bomb)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 2
    assert peak < 2**24  # nowhere near the 256 MiB inflated member


def test_newer_format_version_is_refused_clearly(tmp_path):
    _, good = _fitted_state_file(tmp_path)
    with zipfile.ZipFile(good) as z:
        meta = json.loads(z.read("meta.json"))
    assert meta["sklearn_mtl_version"] == sklearn_mtl.__version__
    assert meta["format_version"] == 1

    def newer(meta):
        meta["format_version"] = 3
        meta["sklearn_mtl_version"] = "9.0"

    _tamper(good, tmp_path / "new.mtl", meta_edit=newer)
    with pytest.raises(
        ValueError, match="sklearn-mtl '9.0' in format version 3.*Upgrade"
    ):
        load(tmp_path / "new.mtl")
    state = MultiTaskClassifier().__getstate__()
    state["_sklearn_mtl_state"] = 99
    with pytest.raises(ValueError, match="state format 99.*Upgrade"):
        MultiTaskClassifier.__new__(MultiTaskClassifier).__setstate__(state)


def _set_built(meta, name, value):
    """Set ``name`` in a file's record of the parameters the network was built with."""
    pairs = meta["attributes"]["_built_with"]["__dict__"]
    (pair,) = [p for p in pairs if p[0] == name]
    pair[1] = value


def test_oversized_network_is_refused_before_it_is_built(tmp_path):
    _, good = _fitted_state_file(tmp_path)

    def huge(meta):
        _set_built(meta, "hidden_layer_sizes", {"__tuple__": [10**7, 10**7]})

    _tamper(good, tmp_path / "huge.mtl", meta_edit=huge)
    with pytest.raises(ValueError, match="network of up to .* above the limit"):
        load(tmp_path / "huge.mtl")

    def wider(meta):
        _set_built(meta, "hidden_layer_sizes", {"__tuple__": [9]})

    _tamper(good, tmp_path / "wide.mtl", meta_edit=wider)
    with pytest.raises(ValueError, match=r"weight '.*' has shape \(8, 3\).*\(9, 3\)"):
        load(tmp_path / "wide.mtl")

    def params_only(meta):  # a refit would build from the parameters
        meta["params"]["hidden_layer_sizes"] = {"__tuple__": [10**7, 10**7]}

    _tamper(good, tmp_path / "params.mtl", meta_edit=params_only)
    with pytest.raises(ValueError, match="network of up to .* above the limit"):
        load(tmp_path / "params.mtl")


def _edits():
    """(name, edit of meta) pairs: each makes a malformed file."""

    def setter(path, value):
        def edit(meta):
            target = meta
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value

        return edit

    def drop(path):
        def edit(meta):
            target = meta
            for key in path[:-1]:
                target = target[key]
            del target[path[-1]]

        return edit

    return {
        "meta-list": lambda meta: meta.clear() or meta.update({"x": [1]}),
        "params-list": setter(["params"], [1, 2]),
        "param-type": setter(["params", "max_iter"], "many"),
        "param-unknown": setter(["params", "os"], 1),
        "attribute-foreign": setter(["attributes", "predict"], 1),
        "attribute-dunder": setter(["attributes", "__class__"], 1),
        "attributes-missing": drop(["attributes", "n_features_in_"]),
        "tasks-missing": drop(["tasks"]),
        "tasks-type": setter(["tasks"], {"a": 1}),
        "task-kind": setter(["tasks", 0, "kind"], "oracle"),
        "task-field": setter(["tasks", 0, "evil"], 1),
        "task-mean": setter(["tasks", 0, "mean"], "x"),
        "classes": setter(["tasks", 0, "classes"], 3),
        "engine-missing": drop(["engine"]),
        "engine-batch": setter(["engine", "batch_size"], "x"),
        "history-type": setter(["engine", "history"], 5),
        "history-row": setter(["engine", "history"], [5]),
        "stopping": setter(["engine", "stopping"], {"evil": 1}),
        "inputs": setter(["attributes", "inputs_"], 7),
        "ndarray-shape": setter(
            ["tasks", 0, "classes"],
            {"__ndarray__": [0, 1], "dtype": "<i8", "shape": [10**9, 10**9]},
        ),
        "ndarray-dtype": setter(
            ["tasks", 0, "classes"],
            {"__ndarray__": [0, 1], "dtype": "not-a-dtype", "shape": [2]},
        ),
        "dict-keys": setter(["params", "task_weights"], {"__dict__": [[[[1]], 2]]}),
        "deep-nesting": setter(["params", "task_weights"], "__DEEP__"),
        "unknown-tag": setter(["params", "task_weights"], {"__evil__": 1}),
        "fitted-type": setter(["fitted"], "yes"),
        "version-type": setter(["format_version"], "1"),
        "class-type": setter(["class"], ["MultiTaskClassifier"]),
    }


@pytest.mark.parametrize("edit", list(_edits()))
def test_malformed_meta_raises_value_error(tmp_path, edit):
    _, good = _fitted_state_file(tmp_path)
    _tamper(good, tmp_path / "bad.mtl", meta_edit=_edits()[edit])
    with pytest.raises(ValueError) as info:
        load(tmp_path / "bad.mtl")
    assert str(info.value)


def test_fuzzed_files_raise_value_error(tmp_path):
    """Truncated, byte-flipped and member-less files: always a ValueError."""
    _, good = _fitted_state_file(tmp_path)
    data = good.read_bytes()
    rng = np.random.RandomState(0)
    cases = [data[:n] for n in (0, 10, len(data) // 2, len(data) - 1)]
    for _ in range(40):
        flipped = bytearray(data)
        for i in rng.randint(0, len(data), size=rng.randint(1, 8)):
            flipped[i] ^= 1 << rng.randint(8)
        cases.append(bytes(flipped))
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    for name in members:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            for n, b in members.items():
                if n != name:
                    z.writestr(n, b)
        cases.append(out.getvalue())
    for payload in (b"{", b"[1, 2]", b'"text"', json.dumps({"format": 1}).encode()):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("meta.json", payload)
            z.writestr("weights.pt", members["weights.pt"])
        cases.append(out.getvalue())
    loaded = 0
    for case in cases:
        try:
            load(io.BytesIO(case))
            loaded += 1  # a flip inside a float of the history can still load
        except ValueError as exc:
            assert str(exc)
    assert loaded < len(cases) // 2


@pytest.mark.parametrize(
    "changed",
    [
        dict(activation="tanh"),  # same shapes: would load, predicting otherwise
        dict(hidden_layer_sizes=(16,)),  # other shapes: would not load
        dict(architecture="mmoe", loss_weighting="uncertainty", n_ensemble=2),
    ],
    ids=lambda p: "-".join(p),
)
def test_parameters_set_after_fit_do_not_change_the_restored_model(tmp_path, changed):
    # The network is rebuilt from the parameters it was built with (_built_with),
    # as the fitted model in memory keeps them; the new values stay parameters.
    X = _X(60)
    est = MultiTaskClassifier(**SMALL).fit(X, X[:, :2] > 0)
    est.set_params(**changed)
    save(est, tmp_path / "m.zip")
    copies = [pickle.loads(pickle.dumps(est)), load(tmp_path / "m.zip")]
    if importlib.util.find_spec("skops") is not None:
        copies.append(_skops_round_trip(est)[0])
    for copy in copies:
        _assert_same_model(est, copy, X)
        assert copy.get_params() == est.get_params()
        assert copy._built_with["hidden_layer_sizes"] == (8,)
    # A refit builds from the new parameters and records them.
    assert est.fit(X, X[:, :2] > 0)._built_with["activation"] == est.activation


class _WidthTrunk(torch.nn.Module):
    """A user trunk whose width is a keyword: ``trunk_kwargs`` shape the network."""

    def __init__(self, width=4):
        super().__init__()
        self.lin = torch.nn.LazyLinear(width)
        self.out_features = width

    def forward(self, x):
        return torch.relu(self.lin(x))


def test_training_precision_and_trunk_kwargs_are_part_of_the_build_record(tmp_path):
    X = _X(60)
    y = X[:, :2] > 0
    est = MultiTaskClassifier(**SMALL, trunk=_WidthTrunk, trunk_kwargs={"width": 4})
    est.fit(X, y)
    assert est._built_with["trunk"] is _WidthTrunk
    est.trunk_kwargs["width"] = 6  # in place: the record is a copy
    est.set_params(trunk_kwargs={"width": 6})
    assert est._built_with["trunk_kwargs"] == {"width": 4}
    copy = pickle.loads(pickle.dumps(est))
    _assert_same_model(est, copy, X)
    assert copy.trunk_kwargs == {"width": 6}
    # A file stores no code: a network built with a trunk is refused by name,
    # also once trunk=None (the file would not rebuild the network).
    for trunk in (_WidthTrunk, None):
        with pytest.raises(ValueError, match=r"built with trunk=<class .*_WidthTrunk"):
            save(est.set_params(trunk=trunk), tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()
    if importlib.util.find_spec("skops") is not None:  # in a Pipeline too
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        pipe = make_pipeline(StandardScaler(), est)
        with pytest.raises(ValueError, match=r"built with trunk=.*Use pickle"):
            save(pipe, tmp_path / "p.skops")
        assert not (tmp_path / "p.skops").exists()
    # The precision a training call ran in is the one the model predicts in,
    # whatever set_params says after it; the next training call records anew.
    est = MultiTaskClassifier(**SMALL).fit(X, y)
    est.set_params(precision="bf16")
    copy = pickle.loads(pickle.dumps(est))
    assert copy.engine_.precision == "float32" and copy.precision == "bf16"
    _assert_same_model(est, copy, X)
    est.partial_fit(X, y)
    assert est._built_with["precision"] == "bf16"
    assert pickle.loads(pickle.dumps(est)).engine_.precision == "bf16"


class _EncoderTrunk(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        return torch.relu(self.encoder(x))


class _LockedFactory:
    """A trunk factory that cannot be copied (it holds a lock)."""

    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self):
        return _EncoderTrunk(torch.nn.Linear(3, 4))


def test_the_build_record_copies_containers_not_trunks():
    X = _X(40)[:, :3]
    y = X[:, :2] > 0
    encoder = torch.nn.Linear(3, 4)
    kwargs = {"encoder": encoder}
    est = MultiTaskClassifier(**SMALL, trunk=_EncoderTrunk, trunk_kwargs=kwargs)
    est.fit(X, y)
    record = est._built_with["trunk_kwargs"]
    assert record == kwargs and record is not kwargs
    assert record["encoder"] is encoder  # a (pretrained) module is not copied
    factory = _LockedFactory()
    est = MultiTaskClassifier(**SMALL, trunk=factory).fit(X, y)
    assert est._built_with["trunk"] is factory
    # An array parameter is copied: changed in place after fit, the model
    # still restores (it was shared, and the pickle did not load).
    sizes = np.array([8])
    est = MultiTaskClassifier(**{**SMALL, "hidden_layer_sizes": sizes}).fit(X, y)
    sizes[0] = 16
    _assert_same_model(est, pickle.loads(pickle.dumps(est)), X)


def test_save_finds_a_trunk_model_held_by_a_wrapper():
    from sklearn.compose import TransformedTargetRegressor

    pytest.importorskip("skops")
    X = _X(40)[:, :3]
    wrapped = TransformedTargetRegressor(
        MultiTaskRegressor(
            **SMALL, trunk=_EncoderTrunk, trunk_kwargs={"encoder": None}
        ),
    )
    wrapped.regressor.set_params(trunk_kwargs={"encoder": torch.nn.Linear(3, 4)})
    wrapped.fit(X, X[:, 0])
    with pytest.raises(ValueError, match=r"built with trunk=.*_EncoderTrunk"):
        save(wrapped, io.BytesIO())
    # Two levels down: a wrapper around a Pipeline ending in the model.
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    deeper = TransformedTargetRegressor(  # its fitted clone is in regressor_
        make_pipeline(StandardScaler(), clone(wrapped.regressor))
    ).fit(X, X[:, 0])
    with pytest.raises(ValueError, match=r"built with trunk=.*_EncoderTrunk"):
        save(deeper, io.BytesIO())
    # Inside scikit-learn's own holders, which have no get_params
    # (CalibratedClassifierCV keeps _CalibratedClassifier objects).
    from sklearn.calibration import CalibratedClassifierCV

    calibrated = CalibratedClassifierCV(
        MultiTaskClassifier(**SMALL, trunk=_WidthTrunk), cv=2
    ).fit(X, X[:, 0] > 0)
    assert not hasattr(calibrated.calibrated_classifiers_[0], "get_params")
    with pytest.raises(ValueError, match=r"built with trunk=.*_WidthTrunk"):
        save(calibrated, io.BytesIO())


def test_a_file_from_before_the_build_record_loads_from_its_parameters(tmp_path):
    X = _X(60)
    est = MultiTaskClassifier(**SMALL).fit(X, X[:, :2] > 0)
    state = est.__getstate__()
    del state["_built_with"]
    old = MultiTaskClassifier.__new__(MultiTaskClassifier)
    old.__setstate__(state)
    _assert_same_model(est, old, X)
    state["_built_with"] = {"hidden_layer_sizes": (8,), "color": "red"}
    with pytest.raises(ValueError, match=r"_built_with names \['color'\]"):
        MultiTaskClassifier.__new__(MultiTaskClassifier).__setstate__(state)


def test_categorical_features_as_a_pandas_index_saves(tmp_path):
    X = pd.DataFrame({"a": _X(60)[:, 0], "c": np.array(["x", "y", "z"] * 20)})
    y = X["a"] > 0
    columns = pd.Index(["c"])  # as X.select_dtypes(...).columns gives
    est = MultiTaskClassifier(**SMALL, categorical_features=columns).fit(X, y)
    save(est, tmp_path / "m.zip")
    copies = [load(tmp_path / "m.zip"), pickle.loads(pickle.dumps(est))]
    if importlib.util.find_spec("skops") is not None:
        copies.append(_skops_round_trip(est)[0])
    for copy in copies:
        assert copy.categorical_features == ["c"]
        np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))


def test_save_refuses_what_load_would_refuse_and_writes_nothing(tmp_path):
    _skops()
    from sklearn.model_selection import GridSearchCV, KFold

    X = _X(60)
    search = GridSearchCV(
        MultiTaskClassifier(**SMALL), {"alpha": [1e-4, 1e-3]}, cv=KFold(2)
    ).fit(X, X[:, 0] > 0)
    with pytest.raises(
        ValueError, match=r"Cannot save GridSearchCV: it holds types \[.*KFold"
    ):
        save(search, tmp_path / "search.skops")
    assert not (tmp_path / "search.skops").exists()
    buffer = io.BytesIO()
    save(search.best_estimator_, buffer)  # what the message suggests
    buffer.seek(0)
    _assert_same_model(search.best_estimator_, load(buffer), X)


def _requests(est):
    routing = est.get_metadata_routing()
    return {m: getattr(routing, m).requests for m in ("fit", "partial_fit", "score")}


@pytest.mark.parametrize("fitted", [False, True])
def test_routing_requests_survive_every_copy(fitted, tmp_path):
    # set_fit_request & co. set `_metadata_request`: pickle (n_jobs > 1),
    # deepcopy, skops and sklearn_mtl.save keep it, as for sklearn's estimators.
    import copy

    import sklearn

    X = _X(40)
    y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0])
    with sklearn.config_context(enable_metadata_routing=True):
        est = MultiTaskClassifier(**SMALL).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight="score_weight")
        if fitted:
            est.fit(X, y, sample_weight=np.linspace(0.5, 1.5, 40))
    expected = {
        "fit": {"sample_weight": True},
        "partial_fit": {"classes": None, "sample_weight": None},
        "score": {"sample_weight": "score_weight"},
    }
    assert _requests(est) == expected
    path = tmp_path / "m.mtl"
    save(est, path)  # with routing disabled, as loading is
    with zipfile.ZipFile(path) as archive:
        meta = json.loads(archive.read("meta.json"))
    assert meta["format_version"] == 2  # an older reader refuses, not drops
    copies = [
        pickle.loads(pickle.dumps(est)),
        copy.deepcopy(est),
        load(path),
        _skops_round_trip(est)[0],
    ]
    for other in copies:
        assert _requests(other) == expected
        if fitted:
            _assert_same_model(other, est, X)
    # Without a request, or with the defaults' only, the files are as before
    # (format 1): an older reader has nothing to drop.
    with sklearn.config_context(enable_metadata_routing=True):
        default = MultiTaskClassifier(**SMALL).set_fit_request(sample_weight=None)
    for est in (MultiTaskClassifier(**SMALL), default):
        save(est, path)
        with zipfile.ZipFile(path) as archive:
            assert json.loads(archive.read("meta.json"))["format_version"] == 1
        state = est.__getstate__()
        assert "_metadata_request" not in state
        assert state["_sklearn_mtl_state"] == 1


def test_crafted_routing_requests_are_refused(tmp_path):
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True):
        est = MultiTaskClassifier(**SMALL).set_fit_request(sample_weight=True)
    state = est.__getstate__()
    for bad, message in [
        ({"fit": {"sample_weight": 3}}, "the routing request of fit's 'sample_weight'"),
        ({"fit": {"X": True}}, "name 'X', which fit does not take"),
        ({"owner": {"a": True}}, "name 'owner', not a method"),
        ({"fit": {"sample_weight": "not an identifier"}}, "the routing request"),
    ]:
        clone = MultiTaskClassifier.__new__(MultiTaskClassifier)
        with pytest.raises(ValueError, match=message):
            clone.__setstate__({**state, "_metadata_request": bad})

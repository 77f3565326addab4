"""ONNX export through skl2onnx, checked against the estimator with onnxruntime."""

import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from torch import nn

from sklearn_mtl import (
    MultiTaskClassifier,
    MultiTaskNeuralEstimator,
    MultiTaskRegressor,
)

pd = pytest.importorskip("pandas")
skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from sklearn_mtl._inputs import validate_inputs  # noqa: E402
from sklearn_mtl.onnx import register  # noqa: E402

register()

# The legacy exporter is ~20x faster than dynamo on these tiny networks: the
# architecture sweep uses it, the default (dynamo) has its own tests.
FAST = {"exporter": "torchscript"}
SMALL = dict(hidden_layer_sizes=(8,), expert_layer_sizes=(6,), n_experts=3)


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(n=160, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5))
    y = pd.DataFrame(
        {
            "churn": np.where(X[:, 0] + X[:, 1] > 0, "yes", "no"),
            "segment": np.digitize(X[:, 2], [-0.5, 0.5]) * 10 + 1,
            "spend": 50.0 * X[:, 3] + 1000.0,
            "active": X[:, 4] > 0,
        }
    )
    return X, y


def _run(onx, X):
    sess = ort.InferenceSession(onx.SerializeToString())
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: X})))


def _assert_matches(model, X, result, tasks):
    """ONNX labels equal predict, probabilities and values within tolerance."""
    pred = model.predict(X)
    pred = pred.reshape(len(X), -1)
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    if proba is not None and not isinstance(proba, list):
        proba = [proba]
    for j, task in enumerate(tasks):
        if task.is_classification:
            labels = result[f"{task.name}_label"]
            assert labels.shape == (len(X),)
            np.testing.assert_array_equal(labels, pred[:, j].astype(labels.dtype))
            np.testing.assert_allclose(
                result[f"{task.name}_probabilities"], proba[j], rtol=0, atol=1e-5
            )
        else:
            value = result[f"{task.name}_value"]
            assert value.shape == (len(X),)
            np.testing.assert_allclose(
                value, pred[:, j].astype(float), rtol=1e-4, atol=1e-5
            )


def _trunk():
    return nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6), nn.GELU())


@pytest.mark.parametrize(
    "params",
    [
        dict(architecture="shared_bottom"),
        dict(architecture="shared_bottom", head_layer_sizes=(4,)),
        dict(architecture="mmoe"),
        dict(architecture="mmoe", head_layer_sizes=(4,)),
        dict(architecture="omoe"),
        dict(architecture="cgc"),
        dict(architecture="ple", n_levels=2, head_layer_sizes=(4,)),
        dict(architecture="cross_stitch"),
        dict(architecture="shared_bottom", trunk=_trunk),
        dict(architecture="ple", trunk=_trunk),
    ],
    ids=lambda p: "-".join(
        f"{k}={getattr(v, '__name__', v)}" for k, v in p.items() if k != "n_levels"
    ),
)
def test_pipeline_round_trip_every_architecture(params):
    X, y = _data()
    est = MultiTaskNeuralEstimator(
        **SMALL,
        **params,
        max_iter=20,
        random_state=0,
        task_types={"spend": "regression"},
    )
    pipe = make_pipeline(StandardScaler(), est).fit(X, y)
    X32 = X.astype(np.float32)
    onx = skl2onnx.to_onnx(pipe, X32[:1], options={type(est): FAST})
    assert [o.name for o in onx.graph.output] == [
        "churn_label",
        "churn_probabilities",
        "segment_label",
        "segment_probabilities",
        "spend_value",
        "active_label",
        "active_probabilities",
    ]
    result = _run(onx, X32)
    assert result["churn_label"].dtype == object  # strings
    assert result["segment_label"].dtype == np.int64
    assert result["active_label"].dtype == bool
    assert result["segment_probabilities"].shape == (len(X), 3)
    assert result["churn_probabilities"].shape == (len(X), 2)
    _assert_matches(pipe, X32, result, est.tasks_.tasks)
    # The batch dimension is dynamic: one row gives the same answer.
    one = _run(onx, X32[:1])
    np.testing.assert_allclose(
        one["segment_probabilities"], result["segment_probabilities"][:1], atol=1e-6
    )


def test_column_transformer_pipeline_float64_input_default_exporter():
    X, y = _data(seed=1)
    pre = ColumnTransformer(
        [("scaled", StandardScaler(), [0, 1, 2]), ("range", MinMaxScaler(), [3, 4])]
    )
    est = MultiTaskNeuralEstimator(
        architecture="mmoe",
        **SMALL,
        trunk=_trunk,
        max_iter=20,
        random_state=0,
        task_types={"spend": "regression"},
    )
    pipe = make_pipeline(pre, est).fit(X, y)
    onx = skl2onnx.to_onnx(pipe, X[:1])  # float64 input, cast to float32 inside
    assert onx.graph.input[0].type.tensor_type.elem_type == 11  # DOUBLE
    result = _run(onx, X)
    _assert_matches(pipe, X, result, est.tasks_.tasks)


def test_single_task_classifier_and_multi_output_regressor():
    X, y = _data(seed=2)
    X32 = X.astype(np.float32)
    clf = MultiTaskClassifier(**SMALL, max_iter=20, random_state=0)
    clf.fit(X32, y["segment"].to_numpy())
    onx = skl2onnx.to_onnx(clf, X32[:1], options={MultiTaskClassifier: FAST})
    result = _run(onx, X32)
    assert sorted(result) == ["task_0_label", "task_0_probabilities"]
    np.testing.assert_array_equal(result["task_0_label"], clf.predict(X32))
    np.testing.assert_allclose(
        result["task_0_probabilities"], clf.predict_proba(X32), atol=1e-5
    )

    reg = MultiTaskRegressor(**SMALL, max_iter=20, random_state=0)
    targets = np.column_stack([y["spend"], -3e4 * X[:, 0]])
    reg.fit(X32, targets)
    onx = skl2onnx.to_onnx(reg, X32[:1], options={MultiTaskRegressor: FAST})
    result = _run(onx, X32)
    expected = reg.predict(X32)
    np.testing.assert_allclose(result["task_0_value"], expected[:, 0], rtol=1e-4)
    np.testing.assert_allclose(result["task_1_value"], expected[:, 1], rtol=1e-4)


def test_output_names_keep_task_names_and_float_labels_stay_float():
    X, _ = _data(seed=3)
    X32 = X.astype(np.float32)
    y = pd.DataFrame({"has churn": (X[:, 0] > 0).astype(float) * 2.0})
    clf = MultiTaskClassifier(**SMALL, max_iter=10, random_state=0).fit(X32, y)
    onx = skl2onnx.to_onnx(clf, X32[:1], options={MultiTaskClassifier: FAST})
    result = _run(onx, X32)
    assert sorted(result) == ["has churn_label", "has churn_probabilities"]
    assert result["has churn_label"].dtype == np.float64
    np.testing.assert_array_equal(result["has churn_label"], clf.predict(X32)[:, 0])


def test_bf16_precision_is_refused_naming_the_parameter():
    X, y = _data()
    est = MultiTaskNeuralEstimator(
        **SMALL, precision="bf16", max_iter=2, random_state=0
    ).fit(X, y[["churn", "active"]])
    with pytest.raises(ValueError, match=r"precision='bf16'"):
        skl2onnx.to_onnx(est, X[:1].astype(np.float32))


def test_unfitted_estimator_is_refused():
    X, _ = _data()
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(MultiTaskClassifier(), X[:1].astype(np.float32))


def test_dynamo_exporter_needs_opset_18():
    X, y = _data()
    clf = MultiTaskClassifier(**SMALL, max_iter=2, random_state=0).fit(X, y["churn"])
    with pytest.raises(ValueError, match=r"target_opset=15 is below 18"):
        skl2onnx.to_onnx(clf, X[:1].astype(np.float32), target_opset=15)
    # The TorchScript exporter writes any opset: opset 15 round trips.
    onx = skl2onnx.to_onnx(
        clf, X[:1].astype(np.float32), target_opset=15, options={type(clf): FAST}
    )
    assert {o.domain: o.version for o in onx.opset_import}[""] == 15
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(_run(onx, X32)["task_0_label"], clf.predict(X32))


def test_wrong_number_of_features_is_refused():
    X, y = _data()
    clf = MultiTaskClassifier(**SMALL, max_iter=2, random_state=0).fit(X, y["churn"])
    with pytest.raises(ValueError, match=r"has 3 features but the estimator was "):
        skl2onnx.to_onnx(clf, X[:1, :3].astype(np.float32))


class _TupleTrunk(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(5, 4)

    def forward(self, X):
        return self.linear(X)


class _TupleBody(nn.Module):
    def forward(self, X):
        return X, X


def test_network_not_returning_one_tensor_is_refused():
    X, y = _data()
    clf = MultiTaskClassifier(**SMALL, max_iter=2, random_state=0).fit(X, y["churn"])
    # A network whose forward returns a tuple (e.g. a replaced module_).
    clf.engine_.module_ = nn.Sequential(_TupleTrunk(), _TupleBody())
    with pytest.raises(ValueError, match=r"must return one tensor \(n, 1\)"):
        skl2onnx.to_onnx(clf, X[:1].astype(np.float32), options={type(clf): FAST})


@pytest.mark.parametrize(
    "params",
    [
        dict(num_embeddings="piecewise_linear", n_bins=8),
        dict(num_embeddings="periodic"),
        dict(n_ensemble=3),
        dict(n_ensemble=2, architecture="mmoe"),
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
def test_embeddings_and_ensembles_export_exactly(params):
    X, y = _data()
    X32 = X.astype(np.float32)
    est = MultiTaskNeuralEstimator(
        **SMALL,
        **params,
        max_iter=3,
        random_state=0,
        task_types={"spend": "regression"},
    ).fit(X32, y)
    onx = skl2onnx.to_onnx(est, X32[:1], options={type(est): FAST})
    _assert_matches(est, X32, _run(onx, X32), est.tasks_.tasks)


def _raw_frame(n=240, seed=0):
    """Raw tabular data: strings with NaN, bools, numbers with NaN and a spike."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "spike": np.where(rng.rand(n) < 0.7, 0.0, rng.exponential(1000, n)),
            "city": rng.choice(["Lyon", "Oslo", "Rome"], n),
            "member": rng.rand(n) > 0.5,
            "floor": rng.choice([3.0, 1.0, 2.0], n),
            "b": rng.normal(size=n),
        }
    )
    X.loc[X.index[::9], "b"] = np.nan
    X.loc[X.index[::11], "city"] = np.nan
    y = pd.DataFrame(
        {
            "churn": np.where(X["a"] + (X["city"] == "Oslo") > 0, "yes", "no"),
            "spend": 2 * X["a"] + X["spike"] / 1000 + X["member"],
        }
    )
    return X, y


def _feed(sess, frame):
    """A DataFrame as onnxruntime inputs, one per column: strings via astype(str)."""
    kinds = {
        "tensor(string)": str,
        "tensor(bool)": bool,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(float)": np.float32,
    }
    return {
        i.name: frame[[i.name]].astype(kinds[i.type]).to_numpy()
        if i.type != "tensor(string)"
        else frame[[i.name]].astype(str).to_numpy(dtype=object)
        for i in sess.get_inputs()
    }


@pytest.mark.parametrize(
    "params",
    [
        dict(),  # quantile-normal numbers, piecewise-linear embeddings, one-hot
        dict(numeric_scaling="robust", num_embeddings=None),
        dict(one_hot_max_size=0, n_ensemble=2),  # learned category embeddings
        dict(categorical_features=["city", "member", "floor"]),  # numeric categories
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()) or "defaults",
)
def test_raw_dataframe_exports_with_its_input_encoding(params):
    X, y = _raw_frame()
    est = MultiTaskNeuralEstimator(
        **SMALL,
        **params,
        max_iter=10,
        random_state=0,
        task_types={"spend": "regression"},
    ).fit(X, y)
    spec = est.inputs_
    assert spec["categorical"] and spec["missing_indicator"] == [
        spec["numeric"].index(5)
    ]
    # pandas 3 strings (Arrow-backed) are not guessed by skl2onnx: object columns are
    onx = skl2onnx.to_onnx(
        est, X[:1].astype({"city": object}), options={type(est): FAST}
    )
    sess = ort.InferenceSession(onx.SerializeToString())
    assert [(i.name, i.type) for i in sess.get_inputs()][2:4] == [
        ("city", "tensor(string)"),
        ("member", "tensor(bool)"),
    ]
    # unseen categories (a string and a number), NaN in both kinds of column
    new = X.copy()
    new.loc[new.index[:5], "city"] = "Bern"
    new.loc[new.index[5:9], "floor"] = 7.0
    new.loc[new.index[9:12], "a"] = np.nan
    new.loc[new.index[12:15], "spike"] = 1e9  # beyond every training quantile
    names = [o.name for o in sess.get_outputs()]
    result = dict(zip(names, sess.run(None, _feed(sess, new))))
    _assert_matches(est, new, result, est.tasks_.tasks)


def test_raw_dataframe_export_with_the_default_exporter():
    X, y = _raw_frame(n=120)
    est = MultiTaskNeuralEstimator(**SMALL, max_iter=3, random_state=0).fit(
        X, y[["churn"]]
    )
    onx = skl2onnx.to_onnx(est, X[:1].astype({"city": object}))
    sess = ort.InferenceSession(onx.SerializeToString())
    result = dict(
        zip([o.name for o in sess.get_outputs()], sess.run(None, _feed(sess, X)))
    )
    _assert_matches(est, X, result, est.tasks_.tasks)


class _Scope:
    def __init__(self):
        self.n = 0

    def get_unique_variable_name(self, seed):
        self.n += 1
        return f"{seed}_{self.n}"

    get_unique_operator_name = get_unique_variable_name


class _Container:
    target_opset = 18

    def __init__(self):
        self.nodes, self.initializers = [], []

    def add_node(
        self,
        op_type,
        inputs,
        outputs,
        op_domain="",
        op_version=None,
        name=None,
        **attrs,
    ):
        from onnx import helper

        self.nodes.append(
            helper.make_node(
                op_type, inputs, outputs, name=name, domain=op_domain, **attrs
            )
        )


def _run_graph(build, x):
    """Run ``build(graph, input_name) -> output_name`` on double ``x``."""
    from onnx import TensorProto, helper

    from sklearn_mtl._onnx import _Graph

    container = _Container()
    out = build(_Graph(_Scope(), container), "x")
    graph = helper.make_graph(
        container.nodes,
        "encoding",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, x.shape[1]])],
        [helper.make_tensor_value_info(out, TensorProto.DOUBLE, None)],
        initializer=container.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]


def test_quantile_normal_in_onnx_equals_numpy():
    from scipy.special import ndtri

    from sklearn_mtl._inputs import _quantile_normal
    from sklearn_mtl._onnx import _ndtri
    from sklearn_mtl._onnx import _quantile_normal as onnx_quantile_normal

    rng = np.random.RandomState(0)
    train = np.c_[
        rng.normal(size=500),
        np.where(rng.rand(500) < 0.6, 0.0, rng.exponential(5.0, 500)),  # a spike
        np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 100),  # runs of ties
        np.full(500, 7.0),  # constant
    ]
    quantiles = np.quantile(train, np.linspace(0, 1, 200), axis=0)
    x = np.r_[
        train[:100],
        quantiles[::7],  # exactly on the knots
        [[-1e9, -1e9, 0.0, 6.9], [1e9, 1e9, 6.0, 7.1], [0.0, 1e-12, 2.5, 7.0]],
    ]
    got = _run_graph(lambda g, name: onnx_quantile_normal(g, name, quantiles), x)
    np.testing.assert_allclose(got, _quantile_normal(x, quantiles), rtol=0, atol=1e-12)
    # the AS241 quantile against scipy across the centre and both tails
    p = np.r_[1e-7, 1e-5, 0.02, 0.074, 0.075, 0.3, 0.5, 0.7, 0.925, 0.98, 1 - 1e-7]
    got = _run_graph(lambda g, name: _ndtri(g, name), p[:, None])
    np.testing.assert_allclose(got[:, 0], ndtri(p), rtol=1e-13, atol=1e-15)


def test_string_categories_need_a_string_input():
    from skl2onnx.common.data_types import BooleanTensorType, DoubleTensorType

    X, y = _raw_frame(n=60)
    est = MultiTaskNeuralEstimator(**SMALL, max_iter=2, random_state=0).fit(
        X, y[["churn"]]
    )
    types = [(c, DoubleTensorType([None, 1])) for c in X.columns]
    types[3] = ("member", BooleanTensorType([None, 1]))  # bools may be numbers
    with pytest.raises(
        ValueError,
        match=r"^Categorical column 'city' of MultiTaskNeuralEstimator has categories "
        r"\['Lyon', 'Oslo', 'Rome'\] that a numeric ONNX input cannot hold",
    ):
        skl2onnx.to_onnx(est, initial_types=types, options={type(est): FAST})


def test_integer_categories_past_two_to_the_53():
    # An int64 input is matched as integers: ids past 2**53 (where doubles
    # round) keep their own codes, and an unknown id beside one stays unknown.
    from skl2onnx.common.data_types import DoubleTensorType

    X = np.c_[np.arange(60), [2**53, 2**53 + 1, 7] * 20].astype(np.int64)
    est = MultiTaskClassifier(**SMALL, max_iter=2, categorical_features=[1])
    est.fit(X, X[:, 0] % 2)
    onx = skl2onnx.to_onnx(est, X[:1], options={type(est): FAST})
    query = np.array([[0, 2**53], [0, 2**53 + 1], [0, 2**53 + 3], [0, 7]], np.int64)
    _assert_matches(est, query, _run(onx, query), est.tasks_.tasks)
    codes = validate_inputs(est, query, reset=False, dtype=np.float32)[:, -1]
    np.testing.assert_array_equal(codes, [3, 4, 0, 2])  # 0: unknown
    # A double input cannot hold them: refused, asking for another input.
    with pytest.raises(
        ValueError,
        match=r"^Categorical column 1 of MultiTaskClassifier has integer categories "
        r"that a double cannot hold exactly \(\[9007199254740993\]\)",
    ):
        skl2onnx.to_onnx(
            est,
            initial_types=[("X", DoubleTensorType([None, 2]))],
            options={type(est): FAST},
        )


def test_raw_dataframe_export_at_opset_13_and_its_lower_bound():
    X, y = _raw_frame(n=80)
    est = MultiTaskNeuralEstimator(**SMALL, max_iter=2, random_state=0).fit(
        X, y[["churn"]]
    )
    sample = X[:1].astype({"city": object})
    onx = skl2onnx.to_onnx(est, sample, target_opset=13, options={type(est): FAST})
    assert {(o.domain, o.version) for o in onx.opset_import} >= {
        ("", 13),
        ("ai.onnx.ml", 2),
    }
    sess = ort.InferenceSession(onx.SerializeToString())
    result = dict(
        zip([o.name for o in sess.get_outputs()], sess.run(None, _feed(sess, X)))
    )
    _assert_matches(est, X, result, est.tasks_.tasks)
    with pytest.raises(
        ValueError,
        match=r"^MultiTaskNeuralEstimator encodes categorical columns or scales "
        r"numbers \(inputs_\), which the ONNX graph writes with opset 13 operators; "
        r"convert with target_opset >= 13, not 12\.$",
    ):
        skl2onnx.to_onnx(est, sample, target_opset=12, options={type(est): FAST})


def test_categories_that_are_one_string_are_refused():
    X, y = _raw_frame(n=60)
    X["code"] = pd.Series([1, "1", "a"] * 20, dtype=object)
    est = MultiTaskNeuralEstimator(**SMALL, max_iter=2, random_state=0).fit(
        X, y[["churn"]]
    )
    assert est.inputs_["categories"][-1] == [1, "1", "a"]
    with pytest.raises(
        ValueError,
        match=r"^Categorical column 'code' of MultiTaskNeuralEstimator has categories "
        r"that are one string in a string input \(e\.g\. '1': \[1, '1'\]\)",
    ):
        skl2onnx.to_onnx(est, X[:1].astype({"city": object}), options={type(est): FAST})


def test_plain_numeric_model_imputes_nan_in_the_graph():
    X, y = _data()
    X[::5, 1] = np.nan  # NaN in fit: the median is learned, not indicated
    est = MultiTaskNeuralEstimator(
        **SMALL,
        max_iter=3,
        random_state=0,
        numeric_scaling=None,
        num_embeddings=None,
        task_types={"spend": "regression"},
    ).fit(X, y)
    assert est.inputs_["scaling"] is None and est.inputs_["missing_indicator"] == [1]
    onx = skl2onnx.to_onnx(est, X[:1], options={type(est): FAST})
    X_new = X.copy()
    X_new[:7, 3] = np.nan  # a column without NaN in fit: its median is imputed
    result = _run(onx, X_new)
    assert np.isfinite(result["spend_value"]).all()
    _assert_matches(est, X_new, result, est.tasks_.tasks)


def test_dataframe_inputs_are_read_by_name_not_position():
    X, y = _raw_frame()
    est = MultiTaskNeuralEstimator(
        **SMALL, max_iter=5, random_state=0, task_types={"spend": "regression"}
    ).fit(X, y)
    # The sample's columns in another order: the graph's inputs keep their
    # names, and each is read as the column of that name.
    order = ["b", "city", "a", "member", "spike", "floor"]
    onx = skl2onnx.to_onnx(
        est, X[order][:1].astype({"city": object}), options={type(est): FAST}
    )
    sess = ort.InferenceSession(onx.SerializeToString())
    assert [i.name for i in sess.get_inputs()] == order
    names = [o.name for o in sess.get_outputs()]
    result = dict(zip(names, sess.run(None, _feed(sess, X))))
    _assert_matches(est, X, result, est.tasks_.tasks)
    renamed = X[:1].rename(columns={"a": "age"}).astype({"city": object})
    with pytest.raises(
        ValueError, match=r"ONNX inputs \['age', .* are not the columns"
    ):
        skl2onnx.to_onnx(est, renamed, options={type(est): FAST})


def test_precision_refusal_reads_the_trained_precision_not_set_params():
    X, y = _data()
    est = MultiTaskNeuralEstimator(
        **SMALL, precision="bf16", max_iter=2, random_state=0
    ).fit(X, y[["churn", "active"]])
    est.set_params(precision="float32")  # predictions still run under bf16
    with pytest.raises(ValueError, match=r"precision='bf16'"):
        skl2onnx.to_onnx(est, X[:1].astype(np.float32))

"""Raw tabular X: categorical columns, numeric scaling, NaN, embeddings, ensembles."""

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import ndtri
from sklearn.exceptions import ConvergenceWarning

from sklearn_mtl import MultiTaskClassifier, MultiTaskNeuralEstimator, load, save
from sklearn_mtl._inputs import resolve_categorical, validate_inputs

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, device="cpu")


def _frame(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "num": rng.normal(size=n),
            "city": rng.choice(["paris", "rome", "oslo"], n),
            "flag": rng.rand(n) > 0.5,
            "grade": pd.Categorical(rng.choice(["lo", "hi"], n)),
            "spiky": np.where(rng.rand(n) < 0.2, np.nan, rng.exponential(size=n)),
        }
    )
    y = pd.DataFrame(
        {
            "hot": np.where((X.city == "rome") | (X.num > 0.5), "yes", "no"),
            "size": 2 * X.num + X.flag + X.spiky.fillna(0),
        }
    )
    return X, y


class _Holder:
    """A bare object validate_inputs can set feature names and inputs_ on."""

    def __init__(self, categorical_features="from_dtype", numeric_scaling="auto"):
        self.categorical_features = categorical_features
        self.numeric_scaling = numeric_scaling

    def __sklearn_tags__(self):
        from sklearn.base import BaseEstimator

        return BaseEstimator().__sklearn_tags__()


def test_from_dtype_takes_category_str_object_and_bool_columns():
    X, _ = _frame()
    X["obj"] = X["city"].astype(object)
    assert resolve_categorical("from_dtype", X) == [1, 2, 3, 5]
    assert resolve_categorical(None, X) == []
    assert resolve_categorical("from_dtype", X.to_numpy()) == []
    assert resolve_categorical([4, 1, 1], X) == [1, 4]
    assert resolve_categorical(np.array([0, 1, 0, 0, 0, 0], bool), X) == [1]
    assert resolve_categorical(["grade", "city"], X) == [1, 3]


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ([7], ValueError, r"indices \[7\] out of range: X has 6 features"),
        ([True, False], ValueError, "boolean mask of length 2 but X has 6"),
        (["town"], ValueError, r"names columns \['town'\] that are not in X"),
        ([0.5], TypeError, "array of dtype float64"),
    ],
)
def test_categorical_features_errors_name_the_fault(spec, error, match):
    X, _ = _frame()
    X["obj"] = X["city"]
    with pytest.raises(error, match=match):
        resolve_categorical(spec, X)


def test_codes_unknown_and_missing_against_hand_computation():
    X = pd.DataFrame({"c": ["b", "a", None, "b"], "x": [1.0, 2.0, 3.0, 4.0]})
    holder = _Holder(numeric_scaling=None)
    enc = validate_inputs(holder, X, reset=True, dtype=np.float32)
    spec = holder.inputs_
    assert spec["categorical"] == [0] and spec["numeric"] == [1]
    assert spec["categories"] == [["a", "b"]]
    # Columns: numeric, then codes (0 unknown, 1 missing, 2 + index).
    np.testing.assert_array_equal(enc, [[1, 3], [2, 2], [3, 1], [4, 3]])
    new = pd.DataFrame({"c": ["zzz", np.nan, "a"], "x": [0.0, 0.0, 0.0]})
    enc = validate_inputs(holder, new, reset=False, dtype=np.float32)
    np.testing.assert_array_equal(enc[:, 1], [0, 1, 2])


def test_nan_numeric_imputed_with_median_and_indicator():
    X = np.array([[1.0, 5.0], [np.nan, 6.0], [3.0, 7.0], [5.0, 8.0]])
    # "auto" scales numbers with gaps (raw data); imputation is seen unscaled.
    assert validate_inputs(_Holder(), X, reset=True, dtype=np.float32).shape == (4, 3)
    holder = _Holder(numeric_scaling=None)
    enc = validate_inputs(holder, X, reset=True, dtype=np.float32)
    assert holder.inputs_["missing_indicator"] == [0]
    # median of column 0 over labelled values (1, 3, 5) is 3; indicator last.
    np.testing.assert_array_equal(enc, [[1, 5, 0], [3, 6, 1], [3, 7, 0], [5, 8, 0]])
    # A column without NaN in fit gets the median, no indicator, at predict.
    enc = validate_inputs(
        holder, np.array([[2.0, np.nan]]), reset=False, dtype=np.float32
    )
    np.testing.assert_array_equal(enc, [[2, 6.5, 0]])


def test_auto_scaling_is_quantile_for_numbers_with_gaps():
    X = np.array([[1.0, 5.0], [np.nan, 6.0], [3.0, 7.0], [5.0, 8.0]])
    holder = _Holder()
    validate_inputs(holder, X, reset=True, dtype=np.float32)
    assert holder.inputs_["scaling"] == "quantile"
    complete = _Holder()
    validate_inputs(complete, np.nan_to_num(X), reset=True, dtype=np.float32)
    assert complete.inputs_["scaling"] is None


def test_plain_numpy_is_returned_as_validated():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    holder = _Holder()
    assert validate_inputs(holder, X, reset=True, dtype=np.float32) is X
    assert holder.inputs_["scaling"] is None


def test_quantile_scaling_against_hand_computation():
    X = pd.DataFrame({"c": list("abababab"), "x": [0.0, 0, 0, 0, 1, 2, 3, 4]})
    holder = _Holder()
    enc = validate_inputs(holder, X, reset=True, dtype=np.float64)
    assert holder.inputs_["scaling"] == "quantile"
    # 8 rows: quantile k of 7 at x = [0, 0, 0, 0, 1, 2, 3, 4]; the tie at 0
    # spans quantiles 0 to 3/7 and goes to its middle, 1.5 / 7.
    expected = ndtri(
        np.clip(np.array([1.5, 1.5, 1.5, 1.5, 4, 5, 6, 7]) / 7, 1e-7, 1 - 1e-7)
    )
    np.testing.assert_allclose(enc[:, 0], expected)


def test_robust_scaling_against_hand_computation():
    X = pd.DataFrame({"c": list("abcde"), "x": [1.0, 2.0, 3.0, 4.0, 100.0]})
    holder = _Holder(numeric_scaling="robust")
    enc = validate_inputs(holder, X, reset=True, dtype=np.float64)
    np.testing.assert_allclose(enc[:, 0], (X.x - 3.0) / (4.0 - 2.0))


def test_non_numeric_column_error_names_the_column():
    X, y = _frame()
    est = MultiTaskNeuralEstimator(categorical_features=["grade"], **SMALL)
    with pytest.raises(ValueError, match=r"Column 'city' of X .* is not numeric"):
        est.fit(X, y)
    with pytest.raises(ValueError, match=r"non-numeric columns: \['city'"):
        MultiTaskNeuralEstimator(categorical_features=None, **SMALL).fit(X, y)


def test_infinity_error_names_the_column():
    X, y = _frame()
    X.loc[0, "num"] = np.inf
    with pytest.raises(ValueError, match=r"infinity in columns \['num'\]"):
        MultiTaskNeuralEstimator(**SMALL).fit(X, y)


def test_dataframe_end_to_end_learns_and_handles_new_categories():
    X, y = _frame(400)
    est = MultiTaskNeuralEstimator(
        **dict(SMALL, max_iter=60, hidden_layer_sizes=(32,), learning_rate_init=0.01),
        task_types={"size": "regression"},
    ).fit(X, y)
    assert est.inputs_["categorical"] == [1, 2, 3]
    assert est.inputs_["missing_indicator"] == [1]  # position of 'spiky' among numerics
    assert list(est.feature_names_in_) == list(X.columns)
    assert est.score(X, y) > 0.8
    X_new = X.head(3).copy()
    X_new["city"] = ["tokyo", None, "rome"]
    assert est.predict(X_new).shape == (3, 2)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(X[X.columns[::-1]])


@pytest.mark.parametrize(
    "max_size, expected", [(64, [True] * 3), (2, [False, True, True]), (0, [False] * 3)]
)
def test_one_hot_max_size_chooses_columns_by_cardinality(max_size, expected):
    X, y = _frame()  # city: 3 categories, flag: 2, grade: 2
    est = MultiTaskNeuralEstimator(
        **SMALL, one_hot_max_size=max_size, task_types={"size": "regression"}
    ).fit(X, y)
    assert est.inputs_["one_hot"] == expected
    embedding = est.module_.features
    n_hot = sum(len(c) + 1 for c, h in zip(est.inputs_["categories"], expected) if h)
    n_emb = expected.count(False) * est.embedding_dim
    # 2 numeric columns x 16 (piecewise-linear), 1 missing indicator, categories.
    assert embedding.n_out == 2 * 16 + 1 + n_hot + n_emb
    assert est.module_.body.bottom[0].in_features == embedding.n_out
    assert (embedding.one_hot is None) == (expected.count(True) == 0)
    assert (embedding.categorical is None) == (expected.count(False) == 0)


def test_one_hot_columns_against_hand_computation():
    """Missing is its own column; a category unseen in fit sets no column."""
    X, y = _frame()
    est = MultiTaskNeuralEstimator(**SMALL, task_types={"size": "regression"}).fit(X, y)
    X_new = X.head(3).copy()
    X_new["city"] = ["rome", None, "tokyo"]
    enc = validate_inputs(est, X_new, reset=False, dtype=np.float32)
    import torch

    with torch.no_grad():
        out = est.module_.features(torch.as_tensor(enc)).numpy()
    cities = est.inputs_["categories"][0]  # sorted: oslo, paris, rome
    city_cols = out[:, 2 * 16 + 1 : 2 * 16 + 1 + len(cities) + 1]
    expected = np.zeros((3, len(cities) + 1), dtype=np.float32)
    expected[0, 1 + cities.index("rome")] = 1  # column 0 is "missing"
    expected[1, 0] = 1
    np.testing.assert_array_equal(city_cols, expected)


def test_model_without_one_hot_record_loads_as_embeddings(tmp_path):
    """A state saved before one_hot_max_size existed: embeddings, predictions kept."""
    X, y = _frame()
    est = MultiTaskNeuralEstimator(
        **SMALL, one_hot_max_size=0, task_types={"size": "regression"}
    ).fit(X, y)
    state = est.__getstate__()
    state["inputs_"] = {k: v for k, v in state["inputs_"].items() if k != "one_hot"}
    del state["one_hot_max_size"]
    old = MultiTaskNeuralEstimator.__new__(MultiTaskNeuralEstimator)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.predict(X), est.predict(X))
    state["inputs_"]["one_hot"] = [True]
    with pytest.raises(ValueError, match=r"inputs_\['one_hot'\] is not one bool per"):
        MultiTaskNeuralEstimator.__new__(MultiTaskNeuralEstimator).__setstate__(state)


@pytest.mark.parametrize(
    "params",
    [
        dict(one_hot_max_size=2),
        dict(num_embeddings="piecewise_linear"),
        dict(num_embeddings="piecewise_linear_tree", n_bins=8),
        dict(num_embeddings="periodic", n_ensemble=3),
        dict(n_ensemble=2, architecture="ple", expert_layer_sizes=(8,)),
        dict(solver="adamw", alpha=1e-2, numeric_scaling="robust"),
    ],
)
def test_persistence_and_pickle_round_trip_exactly(params, tmp_path):
    X, y = _frame()
    est = MultiTaskNeuralEstimator(
        **SMALL, task_types={"size": "regression"}, **params
    ).fit(X, y)
    path = tmp_path / "m.mtl"
    save(est, path)
    for other in (load(path), pickle.loads(pickle.dumps(est))):
        np.testing.assert_array_equal(other.predict(X), est.predict(X))
        assert other.inputs_["categories"] == est.inputs_["categories"]
        bins, other_bins = est.inputs_["bins"], other.inputs_["bins"]
        assert (bins is None) == (other_bins is None)
        for a, b in zip(bins or [], other_bins or []):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


def test_tree_bins_are_target_aware_and_at_most_n_bins():
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 10, size=2000)
    X = pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], 2000)})
    y = (x > 7.3).astype(int)
    est = MultiTaskClassifier(
        num_embeddings="piecewise_linear_tree", n_bins=4, numeric_scaling=None, **SMALL
    ).fit(X, y)
    edges = est.inputs_["bins"][0]
    assert 2 <= len(edges) <= 5 and np.all(np.diff(edges) > 0)
    # The one split that matters is found by the tree on the target.
    assert np.min(np.abs(edges - 7.3)) < 0.1


def test_ensemble_averages_member_probabilities():
    X, y = _frame()
    est = MultiTaskNeuralEstimator(
        **SMALL, n_ensemble=4, task_types={"size": "regression"}
    ).fit(X, y)
    module = est.module_
    X_enc = validate_inputs(est, X, reset=False, dtype=np.float32)
    import torch

    module.train()
    with torch.no_grad():
        members = module(torch.as_tensor(X_enc))  # (k, n, W): no dropout here
    module.eval()
    assert members.shape == (4, len(X), 2)
    p_hot = torch.sigmoid(members[:, :, 0]).mean(0).numpy()
    np.testing.assert_allclose(est.predict_proba(X)[0][:, 1], p_hot, rtol=1e-5)
    size = members[:, :, 1].mean(0).numpy() * est.tasks_.tasks[1].scale
    size += est.tasks_.tasks[1].mean
    np.testing.assert_allclose(est.predict(X)[:, 1].astype(float), size, rtol=1e-4)


def test_allow_nan_tag_and_numpy_nan_fit():
    X = np.random.RandomState(0).normal(size=(60, 3))
    X[::7, 1] = np.nan
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int)
    clf = MultiTaskClassifier(**SMALL).fit(X, y)
    assert clf.__sklearn_tags__().input_tags.allow_nan
    assert clf.inputs_["missing_indicator"] == [1]
    assert clf.predict(X).shape == (60,)


def test_numpy_input_unchanged_by_the_new_parameters():
    X = np.random.RandomState(0).normal(size=(80, 4))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MultiTaskClassifier(**SMALL).fit(X, y)
        b = MultiTaskClassifier(**SMALL, numeric_scaling=None).fit(X, y)
    assert a.module_.__class__.__name__ == "SharedBottomNetwork"
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_numpy_categorical_indices_keep_their_values():
    # Categories are learned from the values as given, not from float32 casts
    # (0.1 as float32 is not 0.1, and ids above 2**24 would merge).
    rng = np.random.RandomState(0)
    X = np.c_[rng.normal(size=60), rng.choice([0.1, 0.2, 0.3], 60)]
    holder = _Holder(categorical_features=[1])
    validate_inputs(holder, X, reset=True, dtype=np.float32)
    assert holder.inputs_["categories"] == [[0.1, 0.2, 0.3]]
    codes = validate_inputs(holder, X, reset=False, dtype=(np.float64, np.float32))
    np.testing.assert_array_equal(
        codes[:, -1], np.searchsorted([0.1, 0.2, 0.3], X[:, 1]) + 2
    )
    ids = np.c_[rng.normal(size=60), rng.choice([16777217, 16777219, 16777221], 60)]
    holder = _Holder(categorical_features=np.array([False, True]))
    validate_inputs(holder, ids.astype(np.int64), reset=True, dtype=np.float32)
    assert holder.inputs_["categories"] == [[16777217, 16777219, 16777221]]
    # Integer ids past 2**53 (where float64 rounds) keep one code each, for
    # int64, uint64, and uint64 ids against int64 categories (no common
    # integer type: compared as Python ints).
    big = np.array([2**53, 2**53 + 1, 2**53 + 2] * 20)
    for fit_dtype, predict_dtype in [
        (np.int64, np.int64),
        (np.uint64, np.uint64),
        (np.int64, np.uint64),
    ]:
        holder = _Holder(categorical_features=[1])
        X = np.c_[np.arange(60), big].astype(fit_dtype)
        validate_inputs(holder, X, reset=True, dtype=np.float32)
        codes = validate_inputs(
            holder, X.astype(predict_dtype), reset=False, dtype=np.float32
        )
        np.testing.assert_array_equal(codes[:3, -1], [2, 3, 4])


def test_numpy_object_array_with_a_string_categorical_column():
    X, y = _frame(80)
    frame = X[["num", "city"]]
    array = frame.to_numpy(dtype=object)
    from_array = MultiTaskNeuralEstimator(categorical_features=[1], **SMALL)
    from_frame = MultiTaskNeuralEstimator(**SMALL)
    from_array.fit(array, y)
    from_frame.fit(frame, y)
    assert from_array.inputs_["categories"] == [["oslo", "paris", "rome"]]
    # The same encoding and network: the same predictions.
    np.testing.assert_array_equal(from_array.predict(array), from_frame.predict(frame))


@pytest.mark.parametrize(
    "values, dtype",
    [
        (pd.date_range("2020-01-01", periods=120), "datetime64"),
        (pd.to_timedelta(np.arange(120), unit="D"), "timedelta64"),
        (np.arange(120) + 1j, "complex128"),
    ],
)
def test_non_numeric_dtypes_beside_a_categorical_column_are_refused(values, dtype):
    # to_numpy(float) would turn them into numbers silently; a numeric-only X
    # refuses them, and so does a mixed one.
    X, y = _frame()
    X["when"] = values
    est = MultiTaskNeuralEstimator(**SMALL)
    with pytest.raises(
        ValueError,
        match=rf"Column 'when' of X \(dtype {dtype}.*not numeric; Encode it as numbers",
    ):
        est.fit(X, y)


def test_predict_time_column_kind_errors_name_the_column():
    X, y = _frame()
    est = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"Column 'num' of X \(dtype str\) is not numeric; it was numeric in fit",
    ):
        est.predict(X.assign(num=X.num.astype(str)))
    numbers = X.assign(city=1.0, flag=1.0, grade=1.0).to_numpy(dtype=np.float64)
    with pytest.raises(
        ValueError,
        match=r"Column 1 of X holds numbers \(dtype float64\), but its categories "
        r"in fit were not numbers \('oslo', 'paris', 'rome'\)",
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # no feature names
            est.predict(numbers)
    with pytest.raises(
        ValueError,
        match=r"X must be numeric, as it was in fit \(non-numeric columns: \['x'\]\)",
    ):
        plain = MultiTaskNeuralEstimator(**SMALL).fit(pd.DataFrame({"x": X.num}), y)
        plain.predict(pd.DataFrame({"x": X.city}))


def test_unhashable_category_values_error_names_the_column():
    X, y = _frame(20)
    X["tags"] = [["a"]] * 20
    with pytest.raises(
        TypeError, match=r"Categorical column 'tags' of X holds list values"
    ):
        MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    est = MultiTaskNeuralEstimator(**SMALL).fit(
        X.drop(columns="tags").assign(tags="a"), y
    )
    with pytest.raises(
        TypeError, match=r"Categorical column 'tags' of X holds list values"
    ):
        est.predict(X)


def test_values_beyond_float32_are_scaled_or_refused_by_name():
    X, y = _frame()
    X = X[["num"]].assign(big=X.num * 1e300)
    est = MultiTaskNeuralEstimator(numeric_scaling="quantile", **SMALL).fit(X, y)
    same = MultiTaskNeuralEstimator(numeric_scaling="quantile", **SMALL).fit(
        X.assign(big=X.num), y
    )
    # A monotone rescaling of a column leaves its quantile-normal map unchanged.
    got, want = est.predict(X), same.predict(X.assign(big=X.num))
    np.testing.assert_array_equal(got[:, 0], want[:, 0])
    np.testing.assert_allclose(
        got[:, 1].astype(float), want[:, 1].astype(float), rtol=1e-9
    )
    with pytest.raises(
        ValueError,
        match=r"too large for dtype\('float32'\) in columns \['big'\]; "
        r"numeric_scaling='quantile' brings",
    ):
        MultiTaskNeuralEstimator(numeric_scaling=None, **SMALL).fit(X, y)


@pytest.mark.parametrize("scaling", ["robust", None])
def test_values_beyond_float32_are_refused_on_every_encoding_path(scaling):
    # Robust scaling keeps outliers out of range; NaN (no scaling) takes the
    # encoding path of raw data: both refuse by name, neither trains on inf.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 3))
    X[0, 1] = 1e300
    X[3, 2] = np.nan
    after = " \\(after numeric_scaling='robust'\\)" if scaling else ""
    y = rng.normal(size=30)
    good = np.where(np.isfinite(X) & (np.abs(X) < 1e3), X, 0.0)
    est = MultiTaskNeuralEstimator(numeric_scaling=scaling, **SMALL).fit(good, y)
    before = est.predict(good)
    with pytest.raises(
        ValueError, match=rf"dtype\('float32'\) in columns \[1\]{after}; "
    ):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict(good), before)  # the fit is kept


def test_robust_scaling_of_a_constant_column_with_a_huge_value():
    # Its quartiles are equal: the scale falls back to the standard deviation,
    # computed without squaring 1e300 (an inf scale encoded the column as 0).
    X = np.zeros((30, 2))
    X[:, 0] = np.random.RandomState(0).normal(size=30)
    X[5, 1] = 1e300
    est = MultiTaskNeuralEstimator(numeric_scaling="robust", **SMALL)
    est.fit(X, X[:, 0])
    np.testing.assert_allclose(est.inputs_["scale"][1], np.std(X[:, 1] / 1e300) * 1e300)
    from sklearn_mtl._inputs import validate_inputs

    encoded = validate_inputs(est, X, reset=False, dtype=np.float32)
    assert encoded[5, 1] == np.float32(1e300 / est.inputs_["scale"][1]) > 5
    # Quartiles 2e308 apart (beyond the largest float): the scale is capped,
    # the column encoded as +-1e308 / max (it was an inf scale, all zeros).
    X[:, 1] = np.where(np.arange(30) % 2, 1e308, -1e308)
    with warnings.catch_warnings():
        # scikit-learn's finiteness check sums the column (inf - inf).
        warnings.simplefilter("ignore", RuntimeWarning)
        est.fit(X, X[:, 0])
    big = np.finfo(np.float64).max
    assert est.inputs_["scale"][1] == big
    encoded = validate_inputs(est, X, reset=False, dtype=np.float64)
    np.testing.assert_allclose(encoded[:2, 1], [-1e308 / big, 1e308 / big])


def test_string_array_categories_from_a_list_of_lists():
    # np.asarray of a list of lists holding strings is a '<U' array: its
    # categorical column is matched as strings, its numeric one parsed.
    from sklearn_mtl._inputs import validate_inputs

    rows = [["a", 1.0], ["b", 2.0], ["a", 3.0], ["c", 4.0]] * 5
    y = np.arange(20.0) + 0.5
    est = MultiTaskNeuralEstimator(categorical_features=[0], **SMALL).fit(rows, y)
    assert est.inputs_["categories"] == [["a", "b", "c"]]
    # Encoded as the same rows in an object array: codes 2 + the category's
    # index, the numbers parsed and quantile-normal.
    as_objects = np.array(rows, dtype=object)
    got = validate_inputs(est, rows, reset=False, dtype=np.float64)
    want = validate_inputs(est, as_objects, reset=False, dtype=np.float64)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[:4, 1], [2, 3, 2, 4])
    unknown = validate_inputs(est, [["zz", 1.0]], reset=False, dtype=np.float64)
    np.testing.assert_array_equal(unknown[:, 1], [0])  # unknown, not an error


def test_partial_fit_takes_categories_from_the_dtype():
    X, y = _frame(40)
    dtype = pd.CategoricalDtype(["hi", "lo", "mid"])
    X = X.assign(grade=X.grade.astype(str).astype(dtype))
    first = X.iloc[:10].assign(
        grade=pd.Series(["hi"] * 10).astype(dtype).values, flag=True
    )
    est = MultiTaskNeuralEstimator(**SMALL).partial_fit(first, y.iloc[:10])
    cats = dict(zip(est.inputs_["categorical"], est.inputs_["categories"]))
    assert cats[2] == [False, True] and cats[3] == ["hi", "lo", "mid"]
    assert cats[1] == sorted(set(first.city))  # a str column: what it holds
    # A full fit keeps the categories the rows hold, as HistGradientBoosting.
    fitted = MultiTaskNeuralEstimator(**SMALL).fit(first, y.iloc[:10])
    fitted_cats = dict(zip(fitted.inputs_["categorical"], fitted.inputs_["categories"]))
    assert fitted_cats[2] == [True] and fitted_cats[3] == ["hi"]


def test_later_unknown_categories_warn_in_partial_fit_and_warm_start():
    X, y = _frame(60)
    est = MultiTaskNeuralEstimator(**SMALL)
    est.partial_fit(X[X.city != "oslo"], y[X.city != "oslo"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est.partial_fit(X[X.city == "rome"], y[X.city == "rome"])  # known: silent
    with pytest.warns(
        UserWarning,
        match=r"Categorical columns \['city'\] of X hold categories that the input",
    ) as record:
        est.partial_fit(X, y)
    warm = MultiTaskNeuralEstimator(warm_start=True, **SMALL)
    warm.fit(X[X.city != "oslo"], y[X.city != "oslo"])
    with pytest.warns(
        UserWarning, match=r"\['city'\].*fit again without warm_start"
    ) as warm_record:
        warm.fit(X, y)
    # Both point at the caller's line, not into the package.
    assert {w.filename for w in [*record, *warm_record]} == {__file__}


def test_unknown_and_missing_embeddings_start_at_zero():
    from sklearn_mtl.nn import CategoricalEmbedding

    torch = pytest.importorskip("torch")
    m = CategoricalEmbedding([3, 5], 4)
    rows = m.table.weight.detach()
    # Codes 0 and 1 of each column (rows 0, 1 and 3, 4) are zero; the rest drawn.
    assert torch.equal(rows[[0, 1, 3, 4]], torch.zeros(4, 4))
    assert (rows[[2, 5, 6, 7]] != 0).all()
    # End to end: fit without NaN in an embedded column, then an unseen category
    # and a missing one reach the network as the same zero vector.
    X, y = _frame()
    est = MultiTaskNeuralEstimator(one_hot_max_size=0, **SMALL).fit(X, y)
    new = X.iloc[:5].copy()
    unknown = new.assign(city="lima")
    missing = new.assign(city=None)
    np.testing.assert_array_equal(est.predict(unknown), est.predict(missing))
    assert not np.array_equal(est.predict(unknown), est.predict(new))


def test_numpy_predict_after_a_dataframe_fit_warns_once():
    X, y = _frame()
    est = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.predict(X.to_numpy(dtype=object))
    names = [w for w in caught if "valid feature names" in str(w.message)]
    assert len(names) == 1


def test_one_bin_columns_raise_no_rtdl_warning():
    # A 0/1 flag or a constant column has one piecewise-linear bin, by design;
    # rtdl_num_embeddings would warn for each, at every fit and load.
    X, y = _frame()
    X = X.assign(flag01=(X.num > 0).astype(float), const=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
        pickle.loads(pickle.dumps(est))
    assert est._resolved_embeddings(est.inputs_) == "piecewise_linear"
    assert not [w for w in caught if "bin edges" in str(w.message)]


def test_fit_and_predict_encode_the_same_rows_alike():
    # A numeric-only X with NaN is quantile-scaled. Its quantiles were learned
    # from float32 casts while predict read float64: a tie at 0.1 (a spike,
    # not a float32 number) sat on a knot in fit and beside it at predict, so
    # the training rows moved by up to 2.8 in normal units (rf1: 33 of 120
    # encoded columns).
    rng = np.random.RandomState(0)
    X = np.where(rng.rand(200, 3) < 0.5, 0.1, rng.normal(size=(200, 3)))
    X[::7, 0] = np.nan
    holder = _Holder()
    at_fit = validate_inputs(holder, X, reset=True, dtype=np.float32)
    assert holder.inputs_["scaling"] == "quantile"
    at_predict = validate_inputs(holder, X, reset=False, dtype=(np.float64, np.float32))
    np.testing.assert_allclose(at_fit, at_predict, atol=1e-6)


def test_a_categorical_column_of_another_type_at_predict_is_refused():
    # A DataFrame column reaches the encoder as objects: numbers for string
    # categories (or digit strings for number categories, as after
    # read_csv(dtype=str)) matched nothing and were all "unknown", silently.
    import pandas as pd

    words = pd.DataFrame({"a": np.arange(6.0), "b": ["x", "y", "z"] * 2})
    holder = _Holder()
    validate_inputs(holder, words, reset=True, dtype=np.float32)
    with pytest.raises(
        ValueError,
        match=r"^Categorical column 'b' of X holds numbers \(0, \.\.\.\), but its "
        r"categories in fit were strings \('x', 'y', 'z'\): no value is a known",
    ):
        validate_inputs(holder, words.assign(b=[0, 1, 2] * 2), reset=False, dtype=None)
    numbers = pd.DataFrame({"a": np.arange(6.0), "b": [3, 4, 5] * 2})
    holder = _Holder(categorical_features=["b"])
    validate_inputs(holder, numbers, reset=True, dtype=np.float32)
    with pytest.raises(ValueError, match=r"holds strings \('3', \.\.\.\), but its "):
        validate_inputs(holder, numbers.astype({"b": str}), reset=False, dtype=None)
    # Unknown values of the same kind are the "unknown" category, as before.
    codes = validate_inputs(
        holder, numbers.assign(b=[7, 8, 9] * 2), reset=False, dtype=np.float32
    )
    np.testing.assert_array_equal(codes[:, -1], np.zeros(6))


def test_period_and_interval_columns_get_a_hint_that_works():
    import pandas as pd

    # Beside a categorical column (pandas gives both dtypes kind "O").
    X = pd.DataFrame(
        {
            "a": np.arange(4.0),
            "c": ["u", "v"] * 2,
            "p": pd.period_range("2026-01-01", periods=4),
        }
    )
    for column in (X["p"], pd.interval_range(0, 4)):
        with pytest.raises(
            ValueError, match=r"Column 'p' of X .* is not numeric; Encode it as numbers"
        ):
            validate_inputs(_Holder(), X.assign(p=column), reset=True, dtype=np.float32)

"""Streaming fit / block-wise predict on dask collections, and search on a cluster."""

import subprocess
import sys
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_class_weight
from skorch.callbacks import Callback

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from sklearn_mtl import (  # noqa: E402
    MultiTaskClassifier,
    MultiTaskNeuralEstimator,
    _dask,
)
from sklearn_mtl._inputs import validate_inputs  # noqa: E402

SMALL = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu")
MIXED = dict(SMALL, task_types={"task_1": "regression"})


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def make_data(n=240, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.column_stack([(X[:, 0] + X[:, 1] > 0).astype(int), 3 * X[:, 2] + 10])
    return X, y


def as_dask(X, y, rows):
    return da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(
        y, chunks=(rows,) + y.shape[1:]
    )


@pytest.mark.parametrize("shuffle", [False, True])
def test_one_block_equals_in_memory_fit_bit_for_bit(shuffle):
    X, y = make_data()
    mem = MultiTaskNeuralEstimator(shuffle=shuffle, **MIXED).fit(X, y)
    stream = MultiTaskNeuralEstimator(shuffle=shuffle, **MIXED).fit(
        *as_dask(X, y, len(X))
    )
    assert stream.loss_curve_ == mem.loss_curve_
    np.testing.assert_array_equal(stream.predict(X), mem.predict(X))
    assert stream.tasks_.tasks[1].mean == mem.tasks_.tasks[1].mean
    assert stream.tasks_.tasks[1].scale == mem.tasks_.tasks[1].scale


def test_input_encoding_fitted_on_the_first_block():
    X, y = make_data()
    X[::7, 2] = np.nan
    params = dict(MIXED, numeric_scaling="robust")
    # One block: the encoding (medians, NaN indicator, scaling) of an in-memory fit.
    mem = MultiTaskNeuralEstimator(**params).fit(X, y)
    one = MultiTaskNeuralEstimator(**params).fit(*as_dask(X, y, len(X)))
    for key in ("median", "center", "scale"):
        np.testing.assert_array_equal(one.inputs_[key], mem.inputs_[key])
    assert one.inputs_["missing_indicator"] == [2]
    assert one.loss_curve_ == mem.loss_curve_
    np.testing.assert_array_equal(one.predict(X), mem.predict(X))
    # Several blocks: learned from the first block, used for every block.
    four = MultiTaskNeuralEstimator(**params).fit(*as_dask(X, y, 60))
    np.testing.assert_array_equal(
        four.inputs_["median"], np.nanmedian(X[:60].astype(np.float64), axis=0)
    )
    assert four.predict(X).shape == (240, 2)


def test_output_baseline_from_every_block_and_not_for_partial_fit():
    X, y = make_data()
    order = np.argsort(y[:, 0], kind="stable")  # sorted: no positive in block 0
    X, y = X[order], y[order]
    sw = np.linspace(0.5, 2.0, len(X))
    params = dict(MIXED, max_iter=1, learning_rate_init=1e-12)
    mem = MultiTaskNeuralEstimator(**params).fit(X, y, sample_weight=sw)
    # Four blocks of 60 rows and an empty one, which training skips.
    chunks = (60, 0, 60, 60, 60)
    Xd = da.from_array(X, chunks=(chunks, X.shape[1]))
    yd = da.from_array(y, chunks=(chunks, y.shape[1]))
    four = MultiTaskNeuralEstimator(**params).fit(
        Xd, yd, sample_weight=da.from_array(sw, chunks=(chunks,))
    )
    assert y[:60, 0].max() == 0
    share = np.average(y[:, 0], weights=sw)
    t = four.tasks_.tasks[1]
    expected = [
        np.log(share / (1 - share)),
        np.average((y[:, 1] - t.mean) / t.scale, weights=sw),
    ]
    bias = four.module_.heads.out.bias.detach().numpy()
    np.testing.assert_allclose(bias, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        bias, mem.module_.heads.out.bias.detach().numpy(), rtol=0, atol=1e-6
    )
    # partial_fit keeps nn.Linear's random bias, as in memory
    part = MultiTaskNeuralEstimator(**params).partial_fit(Xd, yd)
    mem = MultiTaskNeuralEstimator(**params).partial_fit(X, y)
    np.testing.assert_array_equal(
        part.module_.heads.out.bias.detach().numpy(),
        mem.module_.heads.out.bias.detach().numpy(),
    )
    assert np.abs(part.module_.heads.out.bias.detach().numpy() - bias).max() > 0.05


def _categorical_frame(n=240, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], n),
            "size": rng.normal(size=n),
            "flag": rng.rand(n) > 0.5,
        }
    )
    X.loc[X.index[-60:], "colour"] = "violet"  # only in the last of four blocks
    y = pd.DataFrame(
        {
            "warm": X["colour"].isin(["red", "violet"]).astype(int),
            "value": 3 * X["size"] + X["flag"],
        }
    )
    return X, y


def test_known_categories_stream_as_in_memory():
    X, y = _categorical_frame()
    X_cat = X.astype({"colour": "category"})
    params = dict(MIXED, task_types={"value": "regression"})
    # One block: exactly the in-memory fit on the same pandas frame.
    mem = MultiTaskNeuralEstimator(**params).fit(X_cat, y)
    one = MultiTaskNeuralEstimator(**params).fit(
        dd.from_pandas(X, npartitions=1).categorize(columns=["colour"]),
        dd.from_pandas(y, npartitions=1),
    )
    assert one.inputs_["categorical"] == mem.inputs_["categorical"] == [0, 2]
    assert (
        one.inputs_["categories"]
        == mem.inputs_["categories"]
        == [
            ["blue", "green", "red", "violet"],
            [False, True],
        ]
    )
    assert one.loss_curve_ == mem.loss_curve_
    np.testing.assert_array_equal(one.predict(X_cat), mem.predict(X_cat))
    # Four blocks: "violet", only in the last block, has its own code (5), not
    # the reserved "unknown" (0), though the encoding is fitted on block 0.
    Xd = dd.from_pandas(X, npartitions=4).categorize(columns=["colour"])
    four = MultiTaskNeuralEstimator(**params).fit(Xd, dd.from_pandas(y, npartitions=4))
    assert four.inputs_["categories"][0] == ["blue", "green", "red", "violet"]
    assert "violet" not in set(Xd.partitions[0].compute()["colour"])
    last = Xd.partitions[3].compute()
    codes = validate_inputs(four, last, reset=False, dtype=np.float32)[:, -2]
    np.testing.assert_array_equal(codes, np.where(last["colour"] == "violet", 5, codes))
    assert (codes == 5).sum() == 60 and (codes > 1).all()
    pred = four.predict(Xd).compute()
    assert list(pred.columns) == ["warm", "value"] and len(pred) == 240


@pytest.mark.parametrize("call", ["partial_fit", "warm_start"])
def test_a_later_streamed_call_warns_of_categories_it_does_not_know(call):
    # As an in-memory later call warns: once, at the caller's line.
    X, y = _categorical_frame()
    params = dict(MIXED, task_types={"value": "regression"}, warm_start=True)
    first = X[X["colour"] != "violet"]
    first = first.astype({"colour": pd.CategoricalDtype(["blue", "green", "red"])})
    est = MultiTaskNeuralEstimator(**params).fit(first, y.loc[first.index])
    train = getattr(est, "partial_fit" if call == "partial_fit" else "fit")
    Xd = dd.from_pandas(X, npartitions=4).categorize(columns=["colour"])
    yd = dd.from_pandas(y, npartitions=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(Xd, yd)
    messages = [w for w in caught if w.category is UserWarning]
    assert len(messages) == 1
    assert str(messages[0].message).startswith(
        "Categorical columns ['colour'] of X hold categories that the input "
        "encoding, learned by the first fit or partial_fit, does not know"
    )
    assert messages[0].filename == __file__
    # Known categories only: no warning.
    known = dd.from_pandas(first, npartitions=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(known, dd.from_pandas(y.loc[first.index], npartitions=2))
    assert not [w for w in caught if w.category is UserWarning]


def test_sample_weight_streams_with_its_blocks():
    X, y = make_data()
    sw = np.where(np.arange(len(X)) % 3 == 0, 0.0, 2.0)
    mem = MultiTaskNeuralEstimator(**MIXED).fit(X, y, sample_weight=sw)
    stream = MultiTaskNeuralEstimator(**MIXED).fit(
        *as_dask(X, y, len(X)), sample_weight=da.from_array(sw, chunks=len(X))
    )
    np.testing.assert_array_equal(stream.predict(X), mem.predict(X))


def test_random_state_reproducible_and_blocks_shuffled(monkeypatch):
    from sklearn_mtl import _engine

    loads = []  # block ids in the order training loads them
    init = _engine.BlockDataset.__init__

    def recording_init(self, load, *args, **kwargs):
        if not getattr(load, "recording", False):  # subset() passes it on

            def record(i, load=load):
                loads.append(i)
                return load(i)

            record.recording = True
            load = record
        init(self, load, *args, **kwargs)

    monkeypatch.setattr(_engine.BlockDataset, "__init__", recording_init)
    Xd, yd = as_dask(*make_data(), 40)  # 6 blocks
    params = {**MIXED, "max_iter": 4}
    a = MultiTaskNeuralEstimator(**params).fit(Xd, yd)
    orders = [tuple(loads[k : k + 6]) for k in range(0, len(loads), 6)]
    assert len(orders) == 4 and all(sorted(o) == list(range(6)) for o in orders)
    assert len(set(orders)) > 1  # the block order changes between epochs
    loads.clear()
    b = MultiTaskNeuralEstimator(**params).fit(Xd, yd)
    assert [tuple(loads[k : k + 6]) for k in range(0, 24, 6)] == orders
    c = MultiTaskNeuralEstimator(**{**params, "random_state": 1}).fit(Xd, yd)
    assert a.loss_curve_ == b.loss_curve_
    assert a.loss_curve_ != c.loss_curve_
    loads.clear()
    MultiTaskNeuralEstimator(**params, shuffle=False).fit(Xd, yd)
    assert loads == list(range(6)) * 4


def test_streaming_learns_a_learnable_problem():
    X, y = make_data(n=1200)
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(16,),
        max_iter=15,
        learning_rate_init=0.01,
        batch_size=32,
        random_state=0,
        device="cpu",
        task_types={"task_1": "regression"},
    ).fit(*as_dask(X[:1000], y[:1000], 100))
    pred = est.predict(X[1000:])
    assert np.mean(pred[:, 0] == y[1000:, 0]) > 0.9
    r2 = 1 - np.sum((pred[:, 1] - y[1000:, 1]) ** 2) / np.sum(
        (y[1000:, 1] - y[1000:, 1].mean()) ** 2
    )
    assert r2 > 0.9


def test_encodings_learned_from_every_block():
    X, y = make_data(n=200)
    y = y.copy()
    y[:150, 0] = np.where(y[:150, 0] > 0, 1, 0)
    y[150:, 0] = 2  # class 2 exists only in the last block
    est = MultiTaskNeuralEstimator(**MIXED).fit(*as_dask(X, y, 50))
    np.testing.assert_array_equal(est.classes_[0], [0, 1, 2])
    assert est.tasks_.tasks[0].kind == "multiclass"
    reg = est.tasks_.tasks[1]
    assert reg.mean == pytest.approx(np.mean(y[:, 1]), rel=1e-12)
    assert reg.scale == pytest.approx(np.std(y[:, 1]), rel=1e-12)


def test_balanced_class_weight_from_all_blocks():
    X, y = make_data(n=200)
    labels = np.r_[np.zeros(150, int), np.ones(50, int)]
    est = MultiTaskClassifier(class_weight="balanced", **SMALL)
    est.fit(*as_dask(X, labels, 50))
    _, _, _, _, merged = _dask._learn_tasks(
        est, _dask._Source(*as_dask(X, labels, 50)), None
    )
    resolved = _dask._resolve_balanced("balanced", est.tasks_, merged)
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=labels)
    assert resolved == {"task_0": {0: expected[0], 1: expected[1]}}
    # ... and the fit trains with them: it equals a fit given them explicitly.
    weights = {0: expected[0], 1: expected[1]}
    explicit = MultiTaskClassifier(class_weight=weights, **SMALL)
    explicit.fit(*as_dask(X, labels, 50))
    assert explicit.loss_curve_ == est.loss_curve_
    plain = MultiTaskClassifier(**SMALL).fit(*as_dask(X, labels, 50))
    assert plain.loss_curve_ != est.loss_curve_


def test_balanced_class_weight_from_all_blocks_on_every_call():
    # A later partial_fit (or warm_start fit) weighs by its blocks' counts
    # together, as the first did: it equals a call given those weights.
    X, _ = make_data(n=200)
    labels = np.r_[np.zeros(150, int), np.ones(50, int)]  # sorted: block 3 mixed
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=labels)
    weights = {0: expected[0], 1: expected[1]}
    runs = []
    for cw in ("balanced", weights):
        est = MultiTaskClassifier(class_weight=cw, **SMALL)
        est.partial_fit(*as_dask(X, labels, 50))
        est.partial_fit(*as_dask(X, labels, 50))
        runs.append(est.loss_curve_)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("declared", ["task_types", "classes", "classes_dict"])
def test_non_integer_float_labels_of_a_declared_classification_task(declared):
    # Star ratings 0.5 / 1.5 / 2.5: continuous-looking floats whose task is
    # declared classification. Every class is kept, from every block, and
    # "balanced" weighs by their counts, on the first call and later ones.
    X, y = make_data(n=120)
    rng = np.random.RandomState(0)
    y = np.column_stack([rng.choice([0.5, 1.5, 2.5], 120, p=[0.6, 0.3, 0.1]), y[:, 1]])
    y[:, 0][np.argsort(y[:, 0])] = np.sort(y[:, 0])  # 2.5 only in the last block
    kinds = {"task_0": "multiclass"} if declared == "task_types" else {}
    classes = {
        "task_types": None,
        "classes": [[0.5, 1.5, 2.5], None],
        "classes_dict": {"task_0": [0.5, 1.5, 2.5]},
    }[declared]
    params = dict(
        SMALL,
        task_types={**kinds, "task_1": "regression"},
        class_weight="balanced",
    )
    for rows in (120, 40):
        mem = MultiTaskNeuralEstimator(**params).partial_fit(X, y, classes=classes)
        stream = MultiTaskNeuralEstimator(**params)
        stream.partial_fit(*as_dask(X, y, rows), classes=classes)
        assert stream.classes_[0].tolist() == [0.5, 1.5, 2.5]
        stream.partial_fit(*as_dask(X, y, rows))
        if rows == len(X):  # one block: the in-memory calls, bit for bit
            mem.partial_fit(X, y)
            assert stream.loss_curve_ == mem.loss_curve_
    counts = np.unique(y[:, 0], return_counts=True)[1]
    merged = _dask._summaries(
        _dask._Source(*as_dask(X, y, 40)), [("task_0", True), ("task_1", False)]
    )[3]
    assert merged[0]["labels"].tolist() == [0.5, 1.5, 2.5]
    assert merged[0]["counts"].tolist() == counts.tolist()
    # An undeclared task of such values is a regression: a few values kept,
    # also beside one flat classes list (which serves classification tasks).
    source = _dask._Source(*as_dask(X, y, 40))
    assert _dask._summaries(source)[3][0]["labels"].size == 0
    kinds = {"task_0": "multiclass", "task_1": "regression"}
    merged = _dask._summaries(source, kinds, [0.5, 1.5, 2.5])[3]
    assert merged[0]["labels"].size == 3 and merged[1]["labels"].size == 0
    assert _dask._summaries(source, None, [0.5, 1.5, 2.5])[3][1]["labels"].size == 0


class _Counter(Callback):
    """Counts epochs; holds a lock, as a logger or a SummaryWriter does."""

    def __init__(self):
        self.lock = threading.Lock()
        self.epochs = 0

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


def test_a_later_blocks_error_leaves_the_model_as_it_was():
    X, y = make_data(n=120)
    counter = _Counter()
    est = MultiTaskNeuralEstimator(**MIXED, callbacks=[("count", counter)])
    est.partial_fit(*as_dask(X, y, 40))
    before = est.predict(X)
    state = {k: len(v) for k, v in est.task_loss_curves_.items()}
    history = len(est.engine_.history)
    bad_y = y.copy()
    bad_y[-1, 0] = 7  # a label the first call did not know, in the last block
    with pytest.raises(ValueError, match=r"labels \[7.0\] that are not among"):
        est.partial_fit(*as_dask(X, bad_y, 40))
    bad_w = np.ones(120)
    bad_w[-1] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed"):
        est.partial_fit(*as_dask(X, y, 40), sample_weight=da.from_array(bad_w, 40))
    np.testing.assert_array_equal(est.predict(X), before)
    assert len(est.engine_.history) == history and est.n_iter_ == 1
    assert {k: len(v) for k, v in est.task_loss_curves_.items()} == state
    est.partial_fit(*as_dask(X, y, 40))
    assert est.n_iter_ == len(est.loss_curve_) == len(est.engine_.history) == 2
    # The engine keeps the user's callback (not a copy: a lock in it is no
    # obstacle), which counted the two calls' epochs (the failed calls ended
    # mid-epoch).
    assert dict(est.engine_.callbacks_)["count"] is counter
    assert counter.epochs == 2
    # With "balanced", the unknown label is the task's own error, up front.
    balanced = MultiTaskClassifier(**SMALL, class_weight="balanced")
    balanced.partial_fit(*as_dask(X, y[:, 0].astype(int), 40))
    with pytest.raises(ValueError, match=r"Task 'task_0' got labels \[7\]"):
        balanced.partial_fit(*as_dask(X, bad_y[:, 0].astype(int), 40))


def test_an_undone_call_puts_back_the_engine_parameters_it_set():
    # An undone call leaves no trace in what save and pickle write either.
    X, y = make_data(n=120)
    est = MultiTaskNeuralEstimator(**MIXED).partial_fit(*as_dask(X, y, 40))
    engine = est.engine_
    before = {k: engine.get_params()[k] for k in ("lr", "batch_size", "max_epochs")}
    lr = engine.optimizer_.param_groups[0]["lr"]
    decay = engine.optimizer_.param_groups[0]["weight_decay"]
    est.set_params(learning_rate_init=0.05, batch_size=7, alpha=0.5)
    bad_y = y.copy()
    bad_y[-1, 0] = 7
    with pytest.raises(ValueError, match=r"labels \[7.0\] that are not among"):
        est.partial_fit(*as_dask(X, bad_y, 40))
    assert {k: engine.get_params()[k] for k in before} == before
    assert engine.optimizer_.param_groups[0]["lr"] == lr != 0.05
    assert engine.optimizer_.param_groups[0]["weight_decay"] == decay
    # The estimator keeps the parameters its user set; the next call uses them.
    assert (est.learning_rate_init, est.batch_size) == (0.05, 7)
    est.partial_fit(*as_dask(X, y, 40))
    assert (engine.lr, engine.batch_size) == (0.05, 7)
    assert engine.optimizer_.param_groups[0]["lr"] == 0.05


class _Frozen(Exception):
    """An exception that takes no new attributes (as attrs' frozen ones)."""

    def __setattr__(self, name, value):
        if not name.startswith("__"):
            raise AttributeError(f"{type(self).__name__} is frozen")
        super().__setattr__(name, value)


@pytest.mark.parametrize(
    "error, raised, match",
    [
        (_Frozen("block 2 could not be read"), _Frozen, "block 2 could not be read"),
        # PEP 479: a StopIteration from a block surfaces as RuntimeError
        # raised from it, in the batch generator.
        (StopIteration(), RuntimeError, "generator raised StopIteration"),
    ],
    ids=["frozen", "stop-iteration"],
)
def test_a_blocks_own_error_is_raised_untouched_and_undone(error, raised, match):
    X, y = make_data(n=120)
    est = MultiTaskNeuralEstimator(**MIXED).partial_fit(*as_dask(X, y, 40))
    before = est.predict(X)

    def read(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 2:
            raise error
        return block

    dX = da.from_array(X, chunks=(40, 4)).map_blocks(read, dtype=X.dtype)
    with pytest.raises(raised, match=match):
        est.partial_fit(dX, as_dask(X, y, 40)[1])
    np.testing.assert_array_equal(est.predict(X), before)
    assert est.n_iter_ == len(est.engine_.history) == 1


class _FailAtEpoch(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise RuntimeError("a callback failed")


def test_a_callbacks_error_keeps_the_epochs_trained_as_in_memory():
    # Only a block's own error undoes a streamed call: other errors keep the
    # trained epochs, as an in-memory fit does.
    X, y = make_data(n=120)
    rows = []
    for data in ((X, y), as_dask(X, y, 40)):
        est = MultiTaskNeuralEstimator(
            **MIXED, warm_start=True, callbacks=[_FailAtEpoch(5)]
        ).fit(*data)  # 3 epochs
        before = est.predict(X)
        with pytest.raises(RuntimeError, match="a callback failed"):
            est.fit(*data)
        rows.append(len(est.engine_.history))
        assert est.n_iter_ == len(est.loss_curve_) == 5
        assert not np.array_equal(est.predict(X), before)
    assert rows == [5, 5]


def test_scorers_and_score_on_dask_collections_equal_in_memory():
    from sklearn_mtl.metrics import make_task_scorer, per_task_report

    X, y = make_data(n=120)
    labels = np.where(y[:, 0] > 0, "yes", "no").astype(object)
    Y = np.column_stack([labels, (y[:, 1] > 10).astype(int)]).astype(object)
    est = MultiTaskClassifier(**SMALL).fit(X, Y)
    dX, dY = da.from_array(X, chunks=(40, 4)), da.from_array(Y, chunks=(40, 2))
    # Labels of different types per task (strings, ints) in one object array.
    assert est.score(dX, dY) == est.score(X, Y)
    report = per_task_report(est, dX, dY)
    pd.testing.assert_frame_equal(report, per_task_report(est, X, Y))
    scorer = make_task_scorer("task_1", "roc_auc")
    assert scorer(est, dX, dY) == scorer(est, X, Y)
    # Weights (and y alone) as dask collections too, gathered in one pass.
    w = np.random.RandomState(0).uniform(0.5, 2.0, size=120)
    dw = da.from_array(w, chunks=40)
    assert est.score(dX, dY, sample_weight=dw) == est.score(X, Y, sample_weight=w)
    report = per_task_report(est, dX, dY, sample_weight=dw)
    pd.testing.assert_frame_equal(report, per_task_report(est, X, Y, sample_weight=w))
    assert scorer(est, X, dY, sample_weight=dw) == scorer(est, X, Y, sample_weight=w)


def test_balanced_class_weight_with_a_regression_task_streams_as_in_memory():
    # "balanced" applies to the classification tasks only, as in memory (a
    # regression task used to get an entry, refused by the task set).
    X, y = make_data()
    mem = MultiTaskNeuralEstimator(class_weight="balanced", **MIXED).fit(X, y)
    one = MultiTaskNeuralEstimator(class_weight="balanced", **MIXED)
    one.fit(*as_dask(X, y, len(X)))
    assert one.loss_curve_ == mem.loss_curve_
    np.testing.assert_array_equal(one.predict(X), mem.predict(X))


def test_dask_dataframe_task_names_and_predictions():
    X, y = make_data(n=200)
    Xf = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    yf = pd.DataFrame({"churn": np.where(y[:, 0] > 0, "yes", "no"), "spend": y[:, 1]})
    Xdf, ydf = dd.from_pandas(Xf, npartitions=4), dd.from_pandas(yf, npartitions=4)
    est = MultiTaskNeuralEstimator(**SMALL).fit(Xdf, ydf)
    assert est.task_names_ == ["churn", "spend"]
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]
    assert [t.kind for t in est.tasks_.tasks] == ["binary", "regression"]
    pred = est.predict(Xdf)
    assert isinstance(pred, dd.DataFrame)
    assert pred.npartitions == 4
    got = pred.compute()
    assert list(got.columns) == ["churn", "spend"]
    assert dict(got.dtypes) == dict(pred._meta.dtypes)
    pd.testing.assert_index_equal(got.index, Xf.index)
    expected = est.predict(Xf)
    np.testing.assert_array_equal(got["churn"].to_numpy(), expected[:, 0])
    np.testing.assert_allclose(got["spend"].to_numpy(), expected[:, 1].astype(float))
    assert est.score(Xdf, ydf) == est.score(Xf, yf)
    proba = est.predict_proba(Xdf)
    assert proba[1] is None
    np.testing.assert_allclose(
        proba[0].compute().to_numpy(), est.predict_proba(Xf)[0], rtol=1e-6
    )
    assert list(proba[0].columns) == ["no", "yes"]


def test_dask_array_predictions_type_chunks_meta_values():
    X, y = make_data()
    Xd, yd = as_dask(X, y, 60)
    est = MultiTaskNeuralEstimator(**MIXED).fit(Xd, yd)
    pred = est.predict(Xd)
    assert isinstance(pred, da.Array)
    assert pred.chunks == (Xd.chunks[0], (2,))
    assert pred.dtype == np.float64 == pred.compute().dtype
    np.testing.assert_array_equal(pred.compute(), est.predict(X))
    assert est.score(Xd, yd) == est.score(X, y)
    proba = est.predict_proba(Xd)
    assert proba[1] is None
    assert proba[0].dtype == np.float32  # float32 X gives float32 probabilities
    np.testing.assert_array_equal(proba[0].compute(), est.predict_proba(X)[0])
    # A 1-D y gives 1-D predictions, X split along its columns is rechunked.
    clf = MultiTaskClassifier(**SMALL).fit(Xd, yd[:, 0].astype(int))
    Xcols = da.from_array(X, chunks=(60, 2))
    labels = clf.predict(Xcols)
    assert labels.ndim == 1 and labels.chunks == (Xd.chunks[0],)
    np.testing.assert_array_equal(labels.compute(), clf.predict(X))


def test_partial_fit_streams_one_epoch_per_call_with_classes():
    X, y = make_data()
    Xd, yd = as_dask(X, y[:, 0].astype(int), 60)
    clf = MultiTaskClassifier(**SMALL)
    clf.partial_fit(Xd, yd, classes=[0, 1, 2])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    clf.partial_fit(Xd, yd)
    assert clf.n_iter_ == 2


def test_early_stopping_uses_held_out_blocks():
    X, y = make_data(n=400)
    est = MultiTaskNeuralEstimator(
        **{**MIXED, "max_iter": 30},
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=2,
    ).fit(*as_dask(X, y, 40))
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    # 2 of 10 blocks held out: an epoch trains on 8 blocks of 40 rows.
    assert est.engine_.history[0, "train_batch_count"] == 8 * 1
    with pytest.raises(
        ValueError, match="holds out whole blocks.*: one block is always held out"
    ):
        MultiTaskNeuralEstimator(**MIXED, early_stopping=True).fit(*as_dask(X, y, 400))


def test_per_task_epoch_scoring_on_training_rows_refused_when_streamed():
    from skorch.callbacks import EpochScoring

    from sklearn_mtl.metrics import make_task_scorer

    X, y = make_data(n=120)
    scorer = make_task_scorer("task_0", "accuracy")
    scoring = EpochScoring(scorer, on_train=True, name="acc", lower_is_better=False)
    est = MultiTaskNeuralEstimator(**MIXED, callbacks=[scoring])
    with pytest.raises(TypeError, match=r"on_train=True\) needs the training labels"):
        est.fit(*as_dask(X, y, 40))
    assert not hasattr(est, "engine_")  # a failed first fit leaves it unfitted


def test_auto_early_stopping_counts_only_non_empty_blocks():
    """1000 rows in one block plus an empty one: no block to hold out, so off."""
    X, y = make_data(n=1000)
    Xd = da.from_array(X, chunks=((1000, 0), (X.shape[1],)))
    yd = da.from_array(y, chunks=((1000, 0), (y.shape[1],)))
    est = MultiTaskNeuralEstimator(**{**MIXED, "max_iter": 2}).fit(Xd, yd)
    assert est.validation_scores_ is None


def test_trains_from_parquet(tmp_path):
    X, y = make_data(n=200)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(
        label=y[:, 0].astype(int), amount=y[:, 1]
    )
    for i in range(3):
        part = frame.iloc[i * 70 : (i + 1) * 70]
        part.to_parquet(tmp_path / f"part{i}.parquet")
    df = dd.read_parquet(str(tmp_path))
    est = MultiTaskNeuralEstimator(**SMALL).fit(
        df[["a", "b", "c", "d"]], df[["label", "amount"]]
    )
    assert est.task_names_ == ["label", "amount"]
    assert [t.kind for t in est.tasks_.tasks] == ["binary", "regression"]
    assert est.tasks_.tasks[1].mean == pytest.approx(frame["amount"].mean())
    got = est.predict(df[["a", "b", "c", "d"]]).compute()
    expected = est.predict(frame[["a", "b", "c", "d"]])
    np.testing.assert_allclose(got.to_numpy(dtype=float), expected.astype(float))


def test_clear_errors():
    X, y = make_data()
    Xd, yd = as_dask(X, y, 60)
    est = MultiTaskNeuralEstimator(**MIXED)
    with pytest.raises(TypeError, match="X is a dask collection but y is ndarray"):
        est.fit(Xd, y)
    with pytest.raises(TypeError, match="pass X as a dask Array or DataFrame"):
        est.fit(X, yd)
    with pytest.raises(ValueError, match="same blocks along the rows"):
        est.fit(Xd, yd.rechunk((80, 2)))
    unknown = da.from_array(X, chunks=(60, 2))
    unknown._chunks = (unknown.chunks[0], (np.nan, np.nan))
    with pytest.raises(ValueError, match="unknown chunk sizes along its columns"):
        est.fit(unknown, yd)
    with pytest.raises(ValueError, match="X must be 2-D"):
        est.fit(Xd[:, 0], yd)
    text = dd.from_pandas(pd.DataFrame({"a": ["x"] * 240, "b": 1.0}), npartitions=2)
    y_frame = dd.from_pandas(pd.DataFrame(y), npartitions=2)
    # Categories would be learned from the first block only: refused up front.
    with pytest.raises(
        ValueError,
        match=r"^Categorical columns \['a'\] of X have no known categories\. .* with "
        r"X\.categorize\(columns=\['a'\]\) \(one pass over the data\)",
    ):
        est.fit(text, y_frame)
    with pytest.raises(ValueError, match=r"Categorical columns \['a'\] of X have no"):
        est.fit(text.astype({"a": "category"}), y_frame)  # categories unknown
    with pytest.raises(ValueError, match=r"non-numeric columns: \['a'\]"):
        est.set_params(categorical_features=None).fit(text, y_frame)
    with pytest.raises(
        ValueError, match=r"Categorical columns \[1\] of X have no .* a dask DataFrame"
    ):
        est.set_params(categorical_features=[1]).fit(Xd, yd)
    # A block whose dtypes contradict X's metadata: the meta says "x" is numeric
    frame = pd.DataFrame({"x": np.arange(240.0), "s": ["a", "b"] * 120})
    lying = (
        dd.from_pandas(frame, npartitions=2)
        .map_partitions(lambda d: d.assign(x=d["x"].astype(str)), meta=frame.iloc[:0])
        .categorize(columns=["s"])
    )
    with pytest.raises(
        ValueError,
        match=r"^Block 0 of X has categorical columns \[0, 1\] but X's metadata says "
        r"\[1\]: its blocks must have the dtypes of its metadata\.$",
    ):
        est.set_params(categorical_features="from_dtype", task_types=None).fit(
            lying, y_frame
        )
    assert not hasattr(est, "inputs_")  # every failed first fit left it unfitted


def test_numpy_fit_does_not_import_dask():
    code = (
        "import sys, numpy as np; from sklearn_mtl import MultiTaskClassifier;"
        "MultiTaskClassifier(hidden_layer_sizes=(4,), max_iter=1, device='cpu')"
        ".fit(np.eye(4), [0, 1, 0, 1]);"
        "print('dask' in sys.modules, 'distributed' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- cluster
@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def test_grid_search_on_cluster_matches_sequential(client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    X, y = make_data(n=120)
    grid = {"alpha": [1e-4, 1.0]}
    est = MultiTaskClassifier(max_iter=3, random_state=0, device="cpu")
    seq = GridSearchCV(est, grid, cv=2).fit(X, y[:, 0])
    with joblib.parallel_backend("dask"):
        par = GridSearchCV(est, grid, cv=2, n_jobs=-1).fit(X, y[:, 0])
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(par.cv_results_[key], seq.cv_results_[key])
    assert par.best_params_ == seq.best_params_


def test_fit_in_worker_uses_the_workers_threads(client):
    def fit_and_count(X, y):
        import torch

        torch.set_num_threads(2)  # what torch picks on a 2-core machine
        MultiTaskClassifier(**SMALL).fit(X, y)
        return torch.get_num_threads()

    X, y = make_data(n=60)
    assert client.submit(fit_and_count, X, y[:, 0], pure=False).result() == 1


def test_streamed_calls_check_before_they_change_anything():
    # A warm fit whose held-out blocks would leave none for training changes
    # no engine setting; scorers check the rows of X, y and sample_weight.
    from sklearn_mtl.metrics import make_task_scorer

    X, y = make_data(n=160)
    Xd, yd = as_dask(X, y, 40)
    est = MultiTaskNeuralEstimator(warm_start=True, **MIXED).fit(Xd, yd)
    before = est.predict(X)
    est.set_params(precision="bf16", early_stopping=True, validation_fraction=0.99)
    with pytest.raises(ValueError, match="leaves none for training"):
        est.fit(Xd, yd)
    assert est.engine_.precision == "float32"
    np.testing.assert_array_equal(est.predict(X), before)
    scorer = make_task_scorer(0, "accuracy")
    with pytest.raises(ValueError, match="X has 160 rows but y has 120"):
        scorer(est, Xd, da.from_array(y[:120], chunks=(40, 2)))


def test_a_streamed_warm_fit_checks_y_as_a_first_fit():
    # As in memory: a task with no labelled row, or none of positive weight,
    # in any block, is refused before training; partial_fit takes such calls.
    X, y = make_data(n=160)
    est = MultiTaskNeuralEstimator(warm_start=True, **MIXED).fit(*as_dask(X, y, 40))
    epochs = est.n_iter_
    unlabelled = y.astype(float)
    unlabelled[:, 0] = np.nan
    with pytest.raises(ValueError, match="Task 'task_0' has no labelled rows"):
        est.fit(*as_dask(X, unlabelled, 40))
    # task_0 labelled on the second half only, where every row weighs 0.
    half = y.astype(float)
    half[:80, 0] = np.nan
    weights = da.from_array(np.r_[np.ones(80), np.zeros(80)], chunks=40)
    with pytest.raises(ValueError, match="Task 'task_0' has labelled rows, but"):
        est.fit(*as_dask(X, half, 40), sample_weight=weights)
    assert est.n_iter_ == epochs
    est.partial_fit(*as_dask(X, unlabelled, 40))
    assert est.n_iter_ == epochs + 1


def test_a_block_whose_weights_are_all_zero_streams():
    # As in memory, where only all-zero weights overall are refused.
    X, y = make_data(n=160)
    weights = np.r_[np.zeros(40), np.ones(120)]
    stream = MultiTaskNeuralEstimator(**MIXED).fit(
        *as_dask(X, y, 40), sample_weight=da.from_array(weights, chunks=40)
    )
    assert stream.n_iter_ == MIXED["max_iter"]
    with pytest.raises(ValueError, match="labelled rows, but every one of them"):
        MultiTaskNeuralEstimator(**MIXED).fit(
            *as_dask(X, y, 40), sample_weight=da.zeros(160, chunks=40)
        )

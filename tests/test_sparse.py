"""Sparse X: kept sparse on the device, densified one batch at a time."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from sklearn_mtl import MultiTaskClassifier, MultiTaskNeuralEstimator
from sklearn_mtl._sparse import DENSE_BATCH_BYTES, SparseRows
from sklearn_mtl.nn import SparseInputLinear

SMALL = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, device="cpu")


def _categorical(n=240, seed=0):
    rng = np.random.RandomState(seed)
    X = np.c_[
        rng.choice(["red", "green", "blue"], n),
        rng.choice(["s", "m", "l", "xl"], n),
        rng.randint(0, 6, n).astype(str),
    ]
    Y = np.c_[
        (X[:, 0] == "red") | (X[:, 1] == "xl"),
        np.where(X[:, 2].astype(int) > 2, "hi", "lo"),
    ]
    return X, Y


def _sparse_problem(n=300, d=40, seed=0):
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=0.15, format="csr", random_state=seed)
    w = rng.randn(d, 2)
    Y = (X @ w > 0).astype(int)
    return X, Y


# ------------------------------------------------------------------ SparseRows
@pytest.mark.parametrize("padded", [False, True])
def test_sparse_rows_gather_equals_dense_rows(padded):
    X = sp.random(50, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    X.data[::3] *= -1
    X[7] = 0  # an empty row
    X[40:] = 0  # empty rows at the end: their start is nnz
    X[12, :] = np.arange(1, 31)  # one full row: max_row_nnz == n_features
    X.eliminate_zeros()
    dense = X.toarray()
    rows = SparseRows.from_scipy(X, device="cpu")
    assert rows.padded is False and rows.max_row_nnz == 30
    rows.padded = padded
    idx = torch.tensor([7, 3, 49, 3, 0, 12, 45])
    np.testing.assert_array_equal(rows.index_select(0, idx).numpy(), dense[idx])
    np.testing.assert_array_equal(rows[10:27].numpy(), dense[10:27])
    np.testing.assert_array_equal(rows[38:100].numpy(), dense[38:])
    assert rows[5:2].shape == (0, 30)
    sub = rows.take(idx)
    assert sub.shape == (7, 30) and sub.nnz == sum(X[i].nnz for i in idx.tolist())
    assert sub.padded is padded and sub.max_row_nnz == 30
    np.testing.assert_array_equal(sub[0:7].numpy(), dense[idx])
    # only empty rows taken (a validation split can be): nothing stored
    hollow = rows.take(torch.tensor([7, 45, 7]))
    assert hollow.nnz == 0 and hollow.max_row_nnz == 0 and hollow.padded is padded
    np.testing.assert_array_equal(
        hollow.index_select(0, idx[:2] % 3), np.zeros((2, 30))
    )
    np.testing.assert_array_equal(hollow[0:3], np.zeros((3, 30)))
    # an upper bound on the row length will do
    loose = SparseRows(rows.crow, rows.col, rows.val, 30, max_row_nnz=40, padded=padded)
    np.testing.assert_array_equal(loose.index_select(0, idx).numpy(), dense[idx])
    assert rows.index_select(0, torch.tensor([], dtype=torch.long)).shape == (0, 30)
    empty = SparseRows(
        torch.zeros(5, dtype=torch.int64),
        torch.zeros(0, dtype=torch.int64),
        torch.zeros(0),
        3,
        max_row_nnz=2,  # a bound above the truth: no value to gather anyway
        padded=padded,
    )
    np.testing.assert_array_equal(empty.index_select(0, idx[:3] % 4), np.zeros((3, 3)))
    np.testing.assert_array_equal(empty[1:3], np.zeros((2, 3)))


def test_padded_gather_never_reads_the_device():
    # A tensor on the "meta" device has a shape and no data: reading one
    # (int(), .item(), a data-dependent shape) raises. The padded gather, used
    # on GPUs, builds a batch from meta tensors: no batch waits for a GPU.
    X = sp.random(50, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    rows = SparseRows.from_scipy(X)
    meta = SparseRows(
        rows.crow.to("meta"),
        rows.col.to("meta"),
        rows.val.to("meta"),
        30,
        max_row_nnz=rows.max_row_nnz,
    )
    assert meta.padded  # any device but the CPU
    index = torch.tensor([3, 1, 4]).to("meta")
    assert meta.index_select(0, index).shape == (3, 30)
    assert meta[10:26].shape == (16, 30)
    row_bytes = 30 * 4 + rows.max_row_nnz * (32 + 2 * 4)
    assert meta.batch_rows(10**9) == DENSE_BATCH_BYTES // row_bytes
    # An all-empty matrix returns zeros without a gather.
    hollow = SparseRows(
        torch.zeros(4, dtype=torch.int64, device="meta"),
        torch.zeros(0, dtype=torch.int64, device="meta"),
        torch.zeros(0, device="meta"),
        30,
        max_row_nnz=5,
    )
    assert hollow.index_select(0, index).shape == (3, 30)
    meta.padded = False  # the CPU's exact gather reads the device: meta says so
    with pytest.raises((RuntimeError, NotImplementedError)):
        meta.index_select(0, index)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_padded_gather_does_not_synchronise_a_gpu():
    X = sp.random(500, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    X[7] = 0
    rows = SparseRows.from_scipy(X, device="cuda")
    assert rows.padded
    index = torch.randperm(500, device="cuda")[:64]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        batch, part = rows.index_select(0, index), rows[100:164]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    np.testing.assert_array_equal(batch.cpu().numpy(), X.toarray()[index.cpu().numpy()])
    np.testing.assert_array_equal(part.cpu().numpy(), X.toarray()[100:164])


def test_sparse_rows_sums_duplicates_of_non_canonical_input():
    X = sp.coo_array(([1.0, 2.0, 5.0], ([0, 0, 1], [2, 2, 0])), shape=(2, 3))
    rows = SparseRows.from_scipy(X, dtype=np.float64, device="cpu")
    np.testing.assert_array_equal(rows[0:2].numpy(), [[0, 0, 3.0], [5.0, 0, 0]])


# ------------------------------------------------------------------ estimators
@pytest.mark.parametrize("padded", [False, True])
def test_one_hot_pipeline_equals_dense_pipeline_bit_for_bit(padded, monkeypatch):
    # Dense batches: each is densified to exactly the tensor the dense fit
    # reads, and shuffling and initialisation draw from the same seed.
    # padded=True: the gather a GPU uses, here on the CPU.
    from_scipy = SparseRows.from_scipy.__func__

    def forced(cls, *args, **kwargs):
        rows = from_scipy(cls, *args, **kwargs)
        rows.padded = padded
        return rows

    monkeypatch.setattr(SparseRows, "from_scipy", classmethod(forced))
    X, Y = _categorical()
    # MMoE's experts read dense batches (only a shared bottom reads sparse ones)
    params = dict(SMALL, architecture="mmoe", expert_layer_sizes=(8,), n_experts=3)
    sparse_pipe = make_pipeline(OneHotEncoder(), MultiTaskClassifier(**params))
    dense_pipe = make_pipeline(
        OneHotEncoder(sparse_output=False), MultiTaskClassifier(**params)
    )
    sparse_pipe.fit(X, Y)
    dense_pipe.fit(X, Y)
    assert sp.issparse(sparse_pipe[0].transform(X[:2]))
    np.testing.assert_array_equal(sparse_pipe.predict(X), dense_pipe.predict(X))
    for p_s, p_d in zip(sparse_pipe.predict_proba(X), dense_pipe.predict_proba(X)):
        np.testing.assert_array_equal(p_s, p_d)
    assert sparse_pipe.predict(X).shape == (240, 2)
    assert sparse_pipe.score(X, Y) == dense_pipe.score(X, Y)


def test_one_hot_pipeline_learns_the_categorical_rule():
    X, Y = _categorical()
    pipe = make_pipeline(
        OneHotEncoder(),
        MultiTaskClassifier(
            hidden_layer_sizes=(32,),
            max_iter=60,
            learning_rate_init=0.02,
            random_state=0,
            device="cpu",
        ),
    )
    pipe.fit(X, Y)
    assert pipe.score(X, Y) > 0.95


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_array, sp.coo_matrix])
def test_formats_give_one_model_close_to_the_dense_one(container):
    X, Y = _sparse_problem()
    params = dict(SMALL, early_stopping=True, validation_fraction=0.2)
    dense = MultiTaskClassifier(**params).fit(X.toarray(), Y)
    csr = MultiTaskClassifier(**params).fit(sp.csr_array(X), Y)
    model = MultiTaskClassifier(**params).fit(container(X), Y)
    # every sparse format: the same model, bit for bit
    np.testing.assert_array_equal(model.loss_curve_, csr.loss_curve_)
    for p, q in zip(model.predict_proba(X), csr.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
    # the sparse first layer sums in another order than the dense matmul
    assert isinstance(model.module_.bottom[0], SparseInputLinear)
    assert isinstance(dense.module_.bottom[0], torch.nn.Linear)
    assert model.n_iter_ == dense.n_iter_
    np.testing.assert_allclose(model.loss_curve_, dense.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(
        model.validation_scores_, dense.validation_scores_, atol=0.02
    )
    for Xp in (container(X), X.toarray()):
        np.testing.assert_array_equal(model.predict(Xp), dense.predict(X.toarray()))
        for p, q in zip(model.predict_proba(Xp), dense.predict_proba(X.toarray())):
            np.testing.assert_allclose(p, q, atol=1e-5)
    # Inference runs in float64 for float64 input, sparse or dense.
    assert model.predict_proba(X)[0].dtype == np.float64


@pytest.mark.parametrize("padded", [False, True])
def test_sparse_first_layer_reads_sparse_batches(padded, monkeypatch):
    # The shared bottom's first layer sums each row's non-zeros
    # (embedding_bag): no dense batch is made, in training or at predict.
    from_scipy = SparseRows.from_scipy.__func__

    def forced(cls, *args, **kwargs):
        rows = from_scipy(cls, *args, **kwargs)
        rows.padded = padded  # True: the (rows, max_row_nnz) blocks a GPU uses
        return rows

    monkeypatch.setattr(SparseRows, "from_scipy", classmethod(forced))
    made = []
    monkeypatch.setattr(SparseRows, "_dense", lambda *args: made.append(args))
    X, Y = _sparse_problem()
    X[3] = 0  # an empty row
    X[-2:] = 0  # empty rows at the end
    params = dict(SMALL, batch_size=32, early_stopping=True)  # validation too
    est = MultiTaskClassifier(**params).fit(X, Y)
    assert est.inputs_["sparse"] is True and est.module_.reads_sparse_batches
    proba = est.predict_proba(X)
    assert made == []
    monkeypatch.undo()
    dense = MultiTaskClassifier(**params).fit(X.toarray(), Y)
    np.testing.assert_allclose(est.loss_curve_, dense.loss_curve_, rtol=1e-5)
    for p, q in zip(proba, dense.predict_proba(X.toarray())):
        np.testing.assert_allclose(p, q, atol=1e-5)


def _trunk():
    return torch.nn.Sequential(torch.nn.Linear(40, 8), torch.nn.ReLU())


@pytest.mark.parametrize(
    "params",
    [
        dict(architecture="cross_stitch"),
        dict(trunk=_trunk),
        dict(n_ensemble=2),
        dict(num_embeddings="periodic"),
        dict(hidden_layer_sizes=()),  # the heads read X: no sparse layer
    ],
    ids=lambda p: "-".join(f"{k}={getattr(v, '__name__', v)}" for k, v in p.items()),
)
def test_networks_without_the_sparse_layer_equal_the_dense_fit_bit_for_bit(params):
    X, Y = _sparse_problem()
    params = {**SMALL, **params}
    est = MultiTaskClassifier(**params).fit(X, Y)
    dense = MultiTaskClassifier(**params).fit(X.toarray(), Y)
    assert not getattr(est.module_, "reads_sparse_batches", False)
    np.testing.assert_array_equal(est.loss_curve_, dense.loss_curve_)
    for p, q in zip(est.predict_proba(X), dense.predict_proba(X.toarray())):
        np.testing.assert_array_equal(p, q)


def test_sparse_input_linear_is_a_linear_layer():
    from sklearn_mtl._sparse import SparseBatch

    torch.manual_seed(0)
    reference = torch.nn.Linear(6, 3)
    torch.manual_seed(0)
    layer = SparseInputLinear(6, 3)  # the same draws as nn.Linear
    torch.testing.assert_close(layer.weight, reference.weight.t(), rtol=0, atol=0)
    torch.testing.assert_close(layer.bias, reference.bias, rtol=0, atol=0)
    X = sp.random(5, 6, density=0.4, format="csr", random_state=0, dtype=np.float32)
    X[2] = 0
    X.eliminate_zeros()
    dense = torch.as_tensor(X.toarray())
    expected = reference(dense)
    torch.testing.assert_close(layer(dense), expected)
    rows = SparseRows.from_scipy(X)
    rows.sparse_batches = True
    batch = rows.index_select(0, torch.tensor([4, 2, 0, 4]))
    assert isinstance(batch, SparseBatch) and batch.shape == (4, 6)
    torch.testing.assert_close(layer(batch), expected[[4, 2, 0, 4]])
    torch.testing.assert_close(layer(rows[1:4]), expected[1:4])
    rows.padded = True
    torch.testing.assert_close(
        layer(rows.index_select(0, torch.tensor([2, 1]))), expected[[2, 1]]
    )
    hollow = SparseRows.from_scipy(sp.csr_array((3, 6), dtype=np.float32))
    hollow.sparse_batches = hollow.padded = True
    torch.testing.assert_close(layer(hollow[0:3]), layer.bias.expand(3, 3))
    # the same gradients as nn.Linear's on the same rows
    layer.weight.grad = layer.bias.grad = None
    layer(batch).sum().backward()
    reference(dense[[4, 2, 0, 4]]).sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad.t())
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad)


def test_integer_sparse_x_partial_fit_and_gates():
    X, Y = _sparse_problem()
    X_int = sp.csr_array((X * 10).astype(np.int32))
    est = MultiTaskNeuralEstimator(
        architecture="mmoe", expert_layer_sizes=(8,), n_experts=3, **SMALL
    )
    est.partial_fit(X_int, Y)
    est.partial_fit(X_int, Y)
    assert est.n_iter_ == 2  # one epoch per call, as MLPClassifier
    np.testing.assert_array_equal(
        est.predict(X_int), est.predict(X_int.toarray().astype(np.float64))
    )
    gates = est.gate_weights(X_int)
    dense_gates = est.gate_weights(X_int.toarray())
    for name in est.task_names_:
        np.testing.assert_allclose(gates[name], dense_gates[name], rtol=0, atol=1e-12)
        assert gates[name].shape == (3,) and abs(gates[name].sum() - 1) < 1e-9


def test_tfidf_pipeline():
    rng = np.random.RandomState(0)
    words = ["good", "great", "fine", "bad", "awful", "poor", "the", "a", "movie"]
    docs, y = [], []
    for _ in range(200):
        positive = rng.rand() < 0.5
        pool = words[:3] if positive else words[3:6]
        docs.append(" ".join(rng.choice(pool + words[6:], 6)))
        y.append(["neg", "pos"][positive])
    Y = np.c_[y, [len(d) > 26 for d in docs]]
    pipe = make_pipeline(
        TfidfVectorizer(),
        MultiTaskClassifier(
            hidden_layer_sizes=(16,),
            max_iter=40,
            learning_rate_init=0.02,
            random_state=0,
            device="cpu",
        ),
    )
    pipe.fit(docs, Y)
    assert pipe.predict(["a great movie", "an awful movie"])[:, 0].tolist() == [
        "pos",
        "neg",
    ]
    assert pipe.named_steps["multitaskclassifier"].n_features_in_ == len(
        pipe[0].vocabulary_
    )


def test_memory_grows_with_non_zeros_not_with_the_dense_size(monkeypatch):
    # 20k x 5k float32 is 400 MB dense (800 MB in float64 at predict); at 0.1 %
    # density the CSR holds 100k values. Every dense tensor made from sparse X
    # comes from SparseRows._dense, which we watch.
    n, d = 20_000, 5_000
    rng = np.random.RandomState(0)
    rows, cols = np.repeat(np.arange(n), 5), rng.randint(0, d, 5 * n)
    values = rng.rand(5 * n).astype(np.float32)
    X = sp.csr_matrix((values, (rows, cols)), shape=(n, d))  # ~0.1 % density
    Y = np.c_[np.arange(n) % 2, np.arange(n) % 3]
    est = MultiTaskClassifier(
        hidden_layer_sizes=(8,),
        max_iter=1,
        batch_size=1000,
        random_state=0,
        early_stopping=True,
        device="cpu",
        architecture="cross_stitch",  # dense batches (a shared bottom has none)
    )
    dense_bytes = []
    dense = SparseRows._dense

    def spy(self, n_rows, *args):
        out = dense(self, n_rows, *args)
        dense_bytes.append(out.numel() * out.element_size())
        return out

    monkeypatch.setattr(SparseRows, "_dense", spy)
    tracemalloc.start()
    try:
        est.fit(X, Y)
        est.predict_proba(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full = n * d * 4
    # tracemalloc sees numpy / scipy buffers (a host-side X.toarray() would show
    # here), not torch's: the torch side is the _dense spy's to check below.
    assert peak < DENSE_BATCH_BYTES + 16 * 2**20 < full / 4, peak
    assert max(dense_bytes) <= DENSE_BATCH_BYTES < full / 5
    # Training batches are batch_size rows; prediction batches are capped.
    assert 1000 * d * 4 in dense_bytes and len(dense_bytes) > n / 1000
    assert est.predict(X[:5]).shape == (5, 2)


def test_dense_batches_are_the_only_dense_tensors(monkeypatch):
    # Every dense tensor built from sparse X has at most batch_size rows.
    X, Y = _sparse_problem(n=500)
    sizes = []
    dense = SparseRows._dense

    def spy(self, n_rows, *args):
        sizes.append(n_rows)
        return dense(self, n_rows, *args)

    monkeypatch.setattr(SparseRows, "_dense", spy)
    params = dict(SMALL, architecture="mmoe", expert_layer_sizes=(8,), n_experts=3)
    MultiTaskClassifier(batch_size=64, **params).fit(X, Y).predict(X)
    assert max(sizes) == 500  # inference batches (8192 rows) hold all 500 rows
    assert sorted(set(sizes))[:2] == [52, 64]  # 500 = 7 * 64 + 52


# ------------------------------------------------------------------ errors
def test_sparse_x_refused_where_the_encoder_cannot_take_it():
    X, Y = _sparse_problem()
    with pytest.raises(
        ValueError, match=r"numeric_scaling='quantile' cannot take sparse"
    ):
        MultiTaskClassifier(numeric_scaling="quantile", **SMALL).fit(X, Y)
    with pytest.raises(
        ValueError, match=r"categorical_features names columns \[0, 3\]"
    ):
        MultiTaskClassifier(categorical_features=[0, 3], **SMALL).fit(X, Y)
    with pytest.raises(ValueError, match="num_embeddings='piecewise_linear' learns"):
        MultiTaskClassifier(num_embeddings="piecewise_linear", **SMALL).fit(X, Y)
    X_nan = X.copy()
    X_nan.data[0] = np.nan
    with pytest.raises(ValueError, match="Sparse X contains NaN"):
        MultiTaskClassifier(**SMALL).fit(X_nan, Y)
    assert (
        not MultiTaskClassifier(numeric_scaling="robust")
        .__sklearn_tags__()
        .input_tags.sparse
    )
    assert MultiTaskClassifier().__sklearn_tags__().input_tags.sparse


def test_model_that_encodes_its_inputs_refuses_sparse_x_at_predict():
    X, Y = _sparse_problem()
    dense = X.toarray()
    dense[0, 0] = np.nan  # learns a missing-value indicator
    est = MultiTaskClassifier(numeric_scaling="robust", **SMALL).fit(dense, Y)
    with pytest.raises(
        ValueError,
        match=r"encodes its inputs \(numeric_scaling='robust', missing-value "
        r"indicators\), which sparse X cannot go through",
    ):
        est.predict(X)
    with pytest.raises(
        ValueError, match="X has 39 features, but MultiTaskClassifier is expecting 40"
    ):
        MultiTaskClassifier(**SMALL).fit(X, Y).predict(X[:, :39].toarray())


def test_state_without_a_sparse_record_builds_a_dense_first_layer():
    # A model saved before the sparse first layer existed has nn.Linear, whose
    # weight (and Adam's moments of it) is the transpose: it predicts the same.
    X, Y = _sparse_problem()
    est = MultiTaskClassifier(**SMALL).fit(X, Y)
    state = est.__getstate__()
    assert state["inputs_"]["sparse"] is True
    shape = tuple(est.module_.bottom[0].weight.shape)  # (n_features, width)

    def transposed(tree):
        if isinstance(tree, dict):
            return {k: transposed(v) for k, v in tree.items()}
        if isinstance(tree, list):
            return [transposed(v) for v in tree]
        if isinstance(tree, np.ndarray) and tree.shape == shape:
            return np.ascontiguousarray(tree.T)
        return tree

    old_state = dict(state, engine_=transposed(state["engine_"]))
    old_state["inputs_"] = {k: v for k, v in state["inputs_"].items() if k != "sparse"}
    old = MultiTaskClassifier.__new__(MultiTaskClassifier)
    old.__setstate__(old_state)
    assert isinstance(old.module_.bottom[0], torch.nn.Linear)
    for p, q in zip(old.predict_proba(X), est.predict_proba(X)):
        np.testing.assert_allclose(p, q, atol=1e-6)
    bad = dict(state, inputs_=dict(state["inputs_"], sparse="yes"))
    with pytest.raises(ValueError, match=r"inputs_\['sparse'\] is 'yes'"):
        MultiTaskClassifier.__new__(MultiTaskClassifier).__setstate__(bad)


def test_pandas_sparse_dataframe_is_sparse_x_with_its_column_names():
    pd = pytest.importorskip("pandas")
    X, Y = _sparse_problem(n=120, d=6)
    frame = pd.DataFrame.sparse.from_spmatrix(X, columns=list("abcdef"))
    est = MultiTaskClassifier(**SMALL).fit(frame, Y)
    assert est.inputs_["sparse"] is True
    assert est.feature_names_in_.tolist() == list("abcdef")
    same = MultiTaskClassifier(**SMALL).fit(X, Y)
    np.testing.assert_allclose(est.predict_proba(frame)[0], same.predict_proba(X)[0])
    # A model fitted on the dense frame predicts the sparse one, as scipy
    # sparse X (it was refused: "dense data is required").
    dense = MultiTaskClassifier(**SMALL).fit(frame.sparse.to_dense(), Y)
    np.testing.assert_allclose(
        dense.predict_proba(frame)[0], dense.predict_proba(X.toarray())[0]
    )


def test_pandas_sparse_columns_with_another_fill_value_are_refused_by_name():
    pd = pytest.importorskip("pandas")
    X, Y = _sparse_problem(n=120, d=3)
    dense = X.toarray()
    frame = pd.DataFrame(
        {
            "zeros": pd.arrays.SparseArray(dense[:, 0], fill_value=0.0),
            "ones": pd.arrays.SparseArray(dense[:, 1] + 1.0, fill_value=1.0),
            "gaps": pd.arrays.SparseArray(dense[:, 2]),  # pandas' default: NaN
        }
    )
    na = frame.astype({"zeros": pd.SparseDtype("float64", pd.NA)})
    with pytest.raises(ValueError, match=r"fill values \{'zeros': <NA>, 'ones'"):
        MultiTaskClassifier(**SMALL).fit(na, Y)
    est = MultiTaskClassifier(**SMALL)
    with pytest.raises(
        ValueError,
        match=r"values other than 0 \(fill values \{'ones': 1.0, 'gaps': nan\}\)",
    ):
        est.fit(frame, Y)
    assert not hasattr(est, "inputs_")
    # The suggested conversion keeps the values and fits.
    fixed = frame.astype(pd.SparseDtype("float64", 0))
    np.testing.assert_array_equal(fixed.sparse.to_dense()["ones"], dense[:, 1] + 1)
    assert est.fit(fixed, Y).inputs_["sparse"] is True

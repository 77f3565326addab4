"""The training engine: the fast path is taken and equals a plain hand loop."""

import math
import pickle
import warnings

import numpy as np
import pytest
import skorch.dataset
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from skorch.callbacks import Callback

from sklearn_mtl import (
    MultiTaskClassifier,
)
from sklearn_mtl._engine import fast_adam_kwargs
from sklearn_mtl._tasks import MultiTaskLoss, TaskTargets
from sklearn_mtl.nn import SharedBottomNetwork


def _data(n=150, d=6, n_tasks=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, :n_tasks] + 0.3 * rng.normal(size=(n, n_tasks)) > 0).astype(int)
    return X, y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _small(**params):
    base = dict(
        hidden_layer_sizes=(8,),
        batch_size=32,
        max_iter=2,
        alpha=0.0,
        random_state=0,
        device="cpu",
    )
    return MultiTaskClassifier(**{**base, **params})


def _hand_init(X, y):
    """The estimator's initial network: its seed, then each task's output bias
    at the log-odds of its positive share (the fit's baseline)."""
    seed = check_random_state(0).randint(2**31 - 1)
    torch.manual_seed(seed)
    net = SharedBottomNetwork(X.shape[1], [1] * y.shape[1], (8,), "relu", 0.0, ())
    share = y.mean(axis=0)
    with torch.no_grad():
        net.heads.out.bias.copy_(torch.as_tensor(np.log(share / (1 - share))))
    return net, seed


def _hand_loop(X, y, epochs, shuffle, batch_size=32, lr=1e-3):
    """Plain reference: same init, same batches, per-task BCE summed, Adam."""
    net, seed = _hand_init(X, y)
    opt = torch.optim.Adam(net.parameters(), lr=lr)  # torch's default Adam
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed % 2**31)
    n = Xt.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            losses = F.binary_cross_entropy_with_logits(
                net(Xt[idx]), Yt[idx], reduction="none"
            ).mean(0)
            opt.zero_grad()
            losses.sum().backward()
            opt.step()
    return net


@pytest.mark.parametrize("shuffle", [False, True])
def test_engine_equals_a_hand_written_loop(shuffle):
    X, y = _data()
    est = _fit(_small(shuffle=shuffle), X, y)
    reference = _hand_loop(X, y, epochs=2, shuffle=shuffle)
    ours = est.module_.state_dict()
    for name, value in reference.state_dict().items():
        # The fused Adam kernel rounds differently from the loop: float tolerance.
        torch.testing.assert_close(ours[name], value, rtol=1e-4, atol=1e-5)
    # And training moved the weights: the comparison is not of two inits.
    seed = check_random_state(0).randint(2**31 - 1)
    torch.manual_seed(seed)
    init = SharedBottomNetwork(X.shape[1], [1, 1], (8,), "relu", 0.0, ()).state_dict()
    assert not torch.allclose(ours["bottom.0.weight"], init["bottom.0.weight"])


def test_history_loss_equals_mean_of_batch_losses():
    X, y = _data(n=100)
    est = _fit(_small(batch_size=30, shuffle=False, max_iter=1), X, y)
    # Replay the epoch from the same init to get each batch's loss by hand.
    net, _ = _hand_init(X, y)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.float32)
    total, task_total = 0.0, np.zeros(2)
    for start in range(0, 100, 30):
        xb, yb = Xt[start : start + 30], Yt[start : start + 30]
        losses = F.binary_cross_entropy_with_logits(net(xb), yb, reduction="none").mean(
            0
        )
        total += float(losses.detach().sum()) * xb.shape[0]
        task_total += losses.detach().numpy() * xb.shape[0]
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
    assert est.loss_curve_[0] == pytest.approx(total / 100, rel=1e-5)
    assert [c[0] for c in est.task_loss_curves_.values()] == pytest.approx(
        task_total / 100, rel=1e-5
    )
    assert est.engine_.history[-1, "train_batch_count"] == 4


def test_no_per_row_dataset_or_dataloader(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("per-row data path used")

    monkeypatch.setattr(torch.utils.data.DataLoader, "__iter__", forbidden)
    monkeypatch.setattr(torch.utils.data.Dataset, "__getitem__", forbidden)
    monkeypatch.setattr(torch.utils.data.TensorDataset, "__getitem__", forbidden)
    monkeypatch.setattr(skorch.dataset.Dataset, "__getitem__", forbidden)
    X, y = _data()
    est = _fit(_small(max_iter=20, learning_rate_init=0.02), X, y)
    assert est.predict(X).shape == y.shape
    assert est.score(X, y) > 0.8


def test_no_optimizer_closure_and_one_step_per_batch(monkeypatch):
    X, y = _data(n=100)
    est = _small(batch_size=25, max_iter=3)
    closures = []
    original = torch.optim.Adam.step

    def step(self, closure=None):
        closures.append(closure)
        return original(self)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    _fit(est, X, y)
    assert len(closures) == 3 * 4
    assert all(c is None for c in closures)
    state = est.engine_.optimizer_.state[est.module_.bottom[0].weight]
    assert float(state["step"]) == 12


def test_per_batch_hooks_only_when_a_callback_listens():
    class Counter(Callback):
        def initialize(self):
            self.batches = 0
            self.grad_norms = []
            return self

        def on_batch_end(self, net, batch=None, training=None, **kwargs):
            self.batches += 1
            assert "task_losses" in kwargs

        def on_grad_computed(self, net, named_parameters, **kwargs):
            norm = sum(float(p.grad.norm()) for _, p in named_parameters)
            self.grad_norms.append(norm)

    X, y = _data(n=100)
    counter = Counter()
    est = _fit(_small(batch_size=25, max_iter=2, callbacks=[counter]), X, y)
    assert counter.batches == 8
    assert len(counter.grad_norms) == 8 and all(g > 0 for g in counter.grad_norms)
    # skorch's per-batch history rows exist when batches are notified ...
    assert len(est.engine_.history[-1, "batches"]) == 4
    # ... and the fast path records one summary row per epoch.
    plain = _fit(_small(batch_size=25, max_iter=2), X, y)
    [summary] = plain.engine_.history[-1, "batches"]
    assert summary == {
        "train_loss": plain.loss_curve_[-1],
        "train_batch_size": 100,
    }
    assert not plain.engine_._batch_hooks()["on_batch_end"]


def test_callbacks_do_not_change_the_result():
    class Noop(Callback):
        def on_batch_end(self, net, **kwargs):
            pass

    X, y = _data()
    a = _fit(_small(), X, y)
    b = _fit(_small(callbacks=[Noop()]), X, y)
    for (_, p), (_, q) in zip(
        a.module_.state_dict().items(), b.module_.state_dict().items()
    ):
        assert torch.equal(p, q)


def test_same_random_state_same_weights_bit_for_bit():
    X, y = _data()
    a = _fit(_small(max_iter=3), X, y)
    b = _fit(_small(max_iter=3), X, y)
    for (_, p), (_, q) in zip(
        a.module_.state_dict().items(), b.module_.state_dict().items()
    ):
        assert torch.equal(p, q)
    assert a.loss_curve_ == b.loss_curve_


def test_optimizer_uses_a_multi_tensor_adam():
    X, y = _data()
    est = _fit(_small(), X, y)
    kwargs = fast_adam_kwargs("cpu")
    assert kwargs in ({"fused": True}, {"foreach": True})
    for group in est.engine_.optimizer_.param_groups:
        for key, value in kwargs.items():
            assert group[key] is value


def _loss_reference(outputs, targets, kinds, widths):
    offsets = np.concatenate([[0], np.cumsum(widths)])
    y = targets.values
    cols = []
    for t, kind in enumerate(kinds):
        out = outputs[:, offsets[t] : offsets[t + 1]]
        if kind == "binary":
            cols.append(
                F.binary_cross_entropy_with_logits(out[:, 0], y[:, t], reduction="none")
            )
        elif kind == "regression":
            cols.append(0.5 * (out[:, 0] - y[:, t]) ** 2)
        else:
            cols.append(F.cross_entropy(out, y[:, t].long(), reduction="none"))
    return torch.stack(cols, dim=1)


@pytest.mark.parametrize(
    "kinds, widths, sliced",
    [
        (["binary", "binary", "binary"], [1, 1, 1], (True, None)),
        (["regression", "regression"], [1, 1], (None, True)),
        (["binary", "regression", "binary", "multiclass"], [1, 1, 1, 3], (False, True)),
        (["multiclass", "binary", "regression"], [3, 1, 1], (True, True)),
    ],
)
def test_task_losses_with_slices_equal_per_task_losses(kinds, widths, sliced):
    torch.manual_seed(0)
    n, T = 20, len(kinds)
    loss = MultiTaskLoss(kinds, widths)
    outputs = torch.randn(n, sum(widths), requires_grad=True)
    y = torch.stack(
        [
            torch.randint(0, 3 if k == "multiclass" else 2, (n,)).float()
            if k != "regression"
            else torch.randn(n)
            for k in kinds
        ],
        dim=1,
    )
    w = torch.rand(n, T)
    targets = TaskTargets(torch.cat([y, w, (w > 0).float()], dim=1), T)
    expected = _loss_reference(outputs, targets, kinds, widths)
    torch.testing.assert_close(loss.elementwise(outputs, targets), expected)
    per_task, norm = loss(outputs, targets)
    torch.testing.assert_close(per_task, (expected * w).sum(0) / n)
    assert norm.tolist() == [float(n)] * T
    # Contiguous columns are read as views (slices), others by index gathers.
    for selection, tasks, expected_slice in zip(
        (loss._bin_cols, loss._reg_cols), (loss.bin_tasks, loss.reg_tasks), sliced
    ):
        if expected_slice is None:
            assert len(tasks) == 0
        else:
            assert isinstance(selection, slice) == expected_slice


def test_precision_bf16_trains_and_predicts_finite_values():
    X, y = _data(n=200)
    est = _fit(_small(precision="bf16", max_iter=3, learning_rate_init=0.01), X, y)
    proba = est.predict_proba(X)
    assert all(np.isfinite(p).all() for p in proba)
    assert all(math.isfinite(v) for v in est.loss_curve_)
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    # bf16 changes the training numerics a little: a real switch, not a no-op.
    plain = _fit(_small(max_iter=3, learning_rate_init=0.01), X, y)
    assert est.loss_curve_ != plain.loss_curve_
    np.testing.assert_allclose(est.loss_curve_, plain.loss_curve_, rtol=1e-2)
    # Prediction autocasts float32 input, not float64 input.
    out32 = est._outputs(X)
    out64 = est._outputs(X.astype(np.float64))
    assert out32.dtype == np.float32 and out64.dtype == np.float64
    assert not np.array_equal(out32, out64.astype(np.float32))
    np.testing.assert_allclose(out32, out64, atol=0.05)


@pytest.mark.parametrize(
    "params, word",
    [
        (dict(precision="fp16"), "precision"),
        (dict(precision=None), "precision"),
        (dict(compile="yes"), "compile"),
    ],
)
def test_precision_and_compile_are_validated(params, word):
    X, y = _data()
    with pytest.raises(ValueError, match=word):
        _small(**params).fit(X, y)


@pytest.mark.parametrize("weighting", ["pcgrad", "gradnorm"])
def test_compile_refuses_gradient_weightings(weighting):
    # The compiled graph hides the shared representation's gradient: PCGrad
    # failed deep in autograd and GradNorm silently stayed static.
    X, y = _data()
    est = _small(loss_weighting=weighting, max_iter=2)
    est.fit(X, y)
    before = est.predict_proba(X)
    est.set_params(compile=True, warm_start=True)
    with pytest.raises(
        ValueError,
        match=f"compile=True does not support loss_weighting='{weighting}'",
    ):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X)[0], before[0])
    with pytest.raises(ValueError, match="compile=True does not support"):
        _small(loss_weighting=weighting, compile=True).fit(X, y)


def test_compile_trains_through_torch_compile(monkeypatch):
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available")
    compiled = []
    real_compile = torch.compile

    def eager_compile(module, **kwargs):
        # The "eager" backend exercises dynamo without a slow C++ build.
        compiled.append(module)
        return real_compile(module, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    X, y = _data(n=96)
    est = _fit(_small(compile=True, batch_size=32, max_iter=2), X, y)
    assert len(compiled) == 1 and compiled[0] is est.module_
    eager = _fit(_small(batch_size=32, max_iter=2), X, y)
    for (_, p), (_, q) in zip(
        est.module_.state_dict().items(), eager.module_.state_dict().items()
    ):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    # The fitted model is the plain module and pickles without the compiled one.
    assert type(est.module_) is SharedBottomNetwork
    clone = pickle.loads(pickle.dumps(est))
    assert "_compiled" not in clone.engine_.__dict__
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))


# --------------------------------------------------------------------------- blocks
def _blocks(n_blocks=4, rows=10, n_tasks=2, d=1):
    """A BlockDataset over in-memory blocks whose X holds each row's index."""
    from sklearn_mtl._engine import BlockDataset

    loads = []

    def load(i):
        loads.append(i)
        X = np.arange(i * rows, (i + 1) * rows, dtype=np.float32)[:, None]
        X = np.ascontiguousarray(np.repeat(X, d, axis=1))
        packed = np.zeros((rows, 3 * n_tasks), dtype=np.float32)
        packed[:, 2 * n_tasks :] = 1.0
        return X, TaskTargets(packed, n_tasks)

    return BlockDataset(load, [rows] * n_blocks), loads


def test_block_batches_shuffle_blocks_then_rows_inside_a_block():
    from sklearn_mtl._engine import BlockBatches

    dataset, loads = _blocks()
    gen = torch.Generator().manual_seed(0)
    batches = BlockBatches(dataset, 4, shuffle=True, generator=gen)
    assert len(batches) == 4 * 3  # ceil(10 / 4) per block
    epochs = []
    for _ in range(2):
        rows = [int(v) for xb, _ in batches for v in xb[:, 0]]
        blocks = [r // 10 for r in rows]
        # Whole blocks in turn (each block's rows together), every row once.
        assert sorted(rows) == list(range(40))
        assert [blocks[k] for k in range(0, 40, 10)] == loads[-4:]
        assert all(len(set(blocks[k : k + 10])) == 1 for k in range(0, 40, 10))
        epochs.append(rows)
    assert epochs[0] != epochs[1]  # a new block order / row order every epoch
    ordered = BlockBatches(dataset, 4)
    assert [int(v) for xb, _ in ordered for v in xb[:, 0]] == list(range(40))


def test_one_block_batches_are_the_in_memory_batches():
    from sklearn_mtl._engine import BlockBatches, TaskDataset, TensorBatches

    dataset, _ = _blocks(n_blocks=1)
    X, targets = dataset.load(0)
    memory = TaskDataset(torch.as_tensor(X), targets.to("cpu"))
    a = TensorBatches(memory, 3, True, torch.Generator().manual_seed(5))
    b = BlockBatches(dataset, 3, True, torch.Generator().manual_seed(5))
    for (xa, ta), (xb, tb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ta.packed, tb.packed)


def test_validation_split_holds_out_whole_blocks():
    from sklearn_mtl._engine import BlockDataset, TaskDataset, ValidationSplit

    dataset, _ = _blocks(n_blocks=5)
    train, valid = ValidationSplit(0.2, random_state=0)(dataset)
    assert isinstance(train, BlockDataset) and isinstance(valid, TaskDataset)
    assert len(train.block_ids) == 4 and len(train) + len(valid) == 50
    held_out = sorted(set(int(v) // 10 for v in valid.X[:, 0]))
    assert len(held_out) == 1 and held_out[0] not in train.block_ids
    with pytest.raises(ValueError, match="leaves none for training"):
        ValidationSplit(0.9, random_state=0)(dataset)


def test_engine_trains_on_a_block_dataset():
    X, Y = _data()
    engine = _fit(_small(max_iter=2), X, Y).engine_
    dataset, loads = _blocks(n_blocks=3, rows=10, d=X.shape[1])
    engine.set_params(max_epochs=2)
    epochs_before = len(engine.history)
    engine.partial_fit(dataset)
    assert len(engine.history) == epochs_before + 2
    assert engine.history[-1, "train_batch_count"] == math.ceil(10 / 32) * 3
    assert sorted(loads) == [0, 0, 1, 1, 2, 2]

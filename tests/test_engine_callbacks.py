"""skorch callbacks passed through ``callbacks=`` work as skorch users expect."""

import json
import os
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochScoring,
    GradientNormClipping,
    LoadInitState,
    LRScheduler,
    ProgressBar,
    TrainEndCheckpoint,
)
from torch.optim.lr_scheduler import StepLR

from sklearn_mtl import MultiTaskClassifier, MultiTaskNeuralEstimator
from sklearn_mtl.metrics import make_task_scorer


def _data(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = np.column_stack([X[:, 0] + X[:, 1] > 0, X[:, 2] > 0]).astype(int)
    return X, y


def _clf(**params):
    base = dict(
        hidden_layer_sizes=(8,),
        batch_size=40,
        max_iter=3,
        n_iter_no_change=100,
        random_state=0,
        device="cpu",
    )
    return MultiTaskClassifier(**{**base, **params})


def test_lr_scheduler_drives_the_learning_rate(quiet_fit):
    X, y = _data()
    sched = LRScheduler(policy=StepLR, step_size=1, gamma=0.5)
    est = quiet_fit(_clf(learning_rate_init=0.01, callbacks=[sched]), X, y)
    # Three epochs, one step each: 0.01 * 0.5 ** 3 in every parameter group.
    lrs = [g["lr"] for g in est.engine_.optimizer_.param_groups]
    assert lrs == pytest.approx([0.00125, 0.00125])
    constant = quiet_fit(_clf(learning_rate_init=0.01), X, y)
    assert [g["lr"] for g in constant.engine_.optimizer_.param_groups] == [0.01] * 2
    assert not np.allclose(
        est.predict_proba(X)[0], constant.predict_proba(X)[0], atol=1e-6
    )


def test_checkpoint_and_load_init_state(tmp_path, quiet_fit):
    X, y = _data()
    cp = Checkpoint(monitor="train_loss_best", dirname=str(tmp_path))
    first = quiet_fit(_clf(callbacks=[cp]), X, y)
    assert os.path.exists(tmp_path / "params.pt")
    with open(tmp_path / "history.json") as f:
        assert len(json.load(f)) == 3
    # A new model starts from the checkpoint: same weights, history continued.
    cp2 = Checkpoint(monitor="train_loss_best", dirname=str(tmp_path))
    second = _clf(max_iter=1, callbacks=[LoadInitState(cp2)])
    quiet_fit(second, X, y)
    assert len(second.engine_.history) == 4
    assert second.engine_.history[-1, "epoch"] == 4
    saved = torch.load(tmp_path / "params.pt", weights_only=True)
    assert not torch.equal(
        second.module_.state_dict()["bottom.0.weight"], saved["bottom.0.weight"]
    )
    del first


def test_train_end_checkpoint_saves_the_final_weights(tmp_path, quiet_fit):
    X, y = _data()
    est = quiet_fit(_clf(callbacks=[TrainEndCheckpoint(dirname=str(tmp_path))]), X, y)
    saved = torch.load(tmp_path / "train_end_params.pt", weights_only=True)
    for key, value in est.module_.state_dict().items():
        torch.testing.assert_close(saved[key], value)


def test_skorch_early_stopping_ends_training_without_warning():
    X, y = _data(n=200)
    stop = EarlyStopping(monitor="valid_loss", patience=2, threshold=0.5)
    est = _clf(max_iter=50, early_stopping=True, callbacks=[stop])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    # threshold=0.5 (relative) can never be met: it stops after patience epochs.
    assert est.n_iter_ == 3
    assert stop.misses_ == 2


def test_epoch_scoring_with_a_task_scorer(quiet_fit):
    X, y = _data()
    scoring = EpochScoring(
        make_task_scorer("task_1", "f1"),
        lower_is_better=False,
        on_train=True,
        name="train_task_1_f1",
    )
    est = quiet_fit(_clf(callbacks=[scoring]), X, y)
    scores = est.engine_.history[:, "train_task_1_f1"]
    assert len(scores) == 3
    # The last epoch's score is the final model's F1 on the training rows.
    assert scores[-1] == pytest.approx(f1_score(y[:, 1], est.predict(X)[:, 1]))


def test_epoch_scoring_on_validation_rows():
    X, y = _data(n=200)
    scoring = EpochScoring(
        make_task_scorer("task_0", "accuracy"),
        lower_is_better=False,
        name="valid_task_0_acc",
    )
    est = _clf(max_iter=4, early_stopping=True, callbacks=[scoring])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    history = est.engine_.history
    # The engine's own validation accuracy of task 0 is the same number.
    for row in history:
        assert row["valid_task_0_acc"] == pytest.approx(row["valid_task_scores"][0])


def test_epoch_scoring_names_a_task_scorer_without_a_name(quiet_fit):
    # The README's form: EpochScoring(make_task_scorer(...)) with no name
    # (skorch reads the scorer's __name__; it had none and the fit failed).
    X, y = _data(n=200)
    scoring = EpochScoring(make_task_scorer("task_0", "f1"), lower_is_better=False)
    est = quiet_fit(_clf(max_iter=2, early_stopping=True, callbacks=[scoring]), X, y)
    assert len(est.engine_.history[:, "task_0_f1"]) == 2


def test_gradient_norm_clipping_clips(quiet_fit):
    X, y = _data()
    clip = GradientNormClipping(gradient_clip_value=1e-6)
    est = quiet_fit(_clf(callbacks=[clip]), X, y)
    # Gradients of the last step stay in place: their total norm was clipped.
    grads = [p.grad for _, p in est.engine_.get_all_learnable_params()]
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    assert float(norm) <= 1e-6 * 1.001
    plain = quiet_fit(_clf(), X, y)
    plain_grads = [p.grad for _, p in plain.engine_.get_all_learnable_params()]
    assert float(torch.stack([g.norm() for g in plain_grads]).norm()) > 1e-3


def test_progress_bar_counts_batches(capsys, quiet_fit):
    X, y = _data()
    quiet_fit(_clf(callbacks=[ProgressBar()]), X, y)
    err = capsys.readouterr().err
    assert "0/3 [" in err  # 120 rows / batch 40: three batches an epoch


def test_tensorboard_logger(tmp_path, quiet_fit):
    pytest.importorskip("tensorboard")
    from skorch.callbacks import TensorBoard
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    quiet_fit(_clf(callbacks=[TensorBoard(writer)]), *_data())
    writer.close()
    assert any(name.startswith("events.out") for name in os.listdir(tmp_path))


def test_callback_names_and_types_are_checked():
    X, y = _data()
    with pytest.raises(TypeError, match=r"callbacks must be skorch callbacks .*'x'"):
        _clf(callbacks=["x"]).fit(X, y)
    with pytest.raises(ValueError, match=r"the name 'stopping' is taken"):
        _clf(callbacks=[("stopping", ProgressBar())]).fit(X, y)


def test_mixed_kinds_estimator_scores_validation_rows():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    y = np.column_stack([X[:, 0] > 0, 3 * X[:, 1]])
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(8,),
        max_iter=3,
        early_stopping=True,
        n_iter_no_change=100,
        random_state=0,
        task_types={"task_1": "regression"},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    history = est.engine_.history
    assert history[:, "valid_score"] == pytest.approx(
        [np.mean(s) for s in history[:, "valid_task_scores"]]
    )
    assert all(np.isfinite(history[:, "valid_loss"]))


def test_callbacks_work_with_the_sparse_first_layer(quiet_fit):
    # A shared bottom fitted on sparse X reads sparse batches; skorch's own
    # inference (net.forward) takes them, and a callback that receives
    # batches gets dense tensors, as skorch callbacks expect.
    import scipy.sparse as sp
    from skorch.callbacks import Callback

    X, y = _data()
    X_sparse = sp.csr_matrix(np.where(X > 0, X, 0))
    seen, means = [], []

    class BatchReader(Callback):
        def on_batch_end(self, net, batch=None, training=None, **kwargs):
            seen.append(batch[0].to(net.device).float().shape)

    class EpochForward(Callback):  # no per-batch hook: batches stay sparse
        def on_epoch_end(self, net, dataset_train=None, **kwargs):
            means.append(float(net.forward(dataset_train).float().mean()))

    est = _clf(callbacks=[("forward", EpochForward())]).fit(X_sparse, y)
    assert est.module_.reads_sparse_batches
    assert len(means) == 3 and all(np.isfinite(means))
    _clf(callbacks=[("reader", BatchReader())]).fit(X_sparse, y)
    assert seen[:3] == [torch.Size([40, 5])] * 3


class _Count(Callback):
    def __init__(self):
        self.epochs = 0

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


def test_callbacks_set_after_fit_are_the_next_training_calls(quiet_fit):
    # callbacks is a training parameter: a warm fit or partial_fit uses its
    # value at the call (set again after loading a file, as docs/data.md says).
    X, y = _data()
    first, second = _Count(), _Count()
    est = quiet_fit(_clf(warm_start=True, callbacks=[first]), X, y)
    est.set_params(callbacks=[second])
    quiet_fit(est, X, y)
    est.partial_fit(X, y)
    assert (first.epochs, second.epochs) == (3, 4)
    est.set_params(callbacks=None)
    quiet_fit(est, X, y)
    assert (first.epochs, second.epochs) == (3, 4)
    assert [name for name, _ in est.engine_.callbacks_] == [
        "epoch_timer",
        "divergence",
        "task_history",
        "stopping",
    ]
    # A pickled copy (rebuilt with the callbacks as set) continues as the
    # model in memory does.
    import pickle

    halve = _clf(warm_start=True, callbacks=[_HalveLR()])
    quiet_fit(halve, X, y)
    halve.set_params(callbacks=None)
    copy = pickle.loads(pickle.dumps(halve))
    quiet_fit(halve, X, y)
    quiet_fit(copy, X, y)
    lrs = [g["lr"] for g in halve.engine_.optimizer_.param_groups]
    assert lrs == [g["lr"] for g in copy.engine_.optimizer_.param_groups]
    assert lrs == [0.001, 0.001]  # each call sets learning_rate_init; none halved
    np.testing.assert_array_equal(halve.predict_proba(X)[0], copy.predict_proba(X)[0])


class _HalveLR(Callback):
    def on_epoch_begin(self, net, **kwargs):
        for group in net.optimizer_.param_groups:
            group["lr"] *= 0.5


class _SeeStopping(Callback):
    def on_train_begin(self, net, **kwargs):
        stopping = dict(net.callbacks_)["stopping"]
        self.seen = (stopping.best_score_, stopping.no_improvement_count_)


def test_warm_early_stopping_carries_its_state_over(quiet_fit):
    # As MLPClassifier's warm_start: the best score, the counter and the best
    # weights of the previous fit are where the next fit starts.
    X, y = _data(n=200)
    see = _SeeStopping()
    est = quiet_fit(
        _clf(warm_start=True, early_stopping=True, n_iter_no_change=5, callbacks=[see]),
        X,
        y,
    )
    assert see.seen == (-np.inf, 0)
    stopping = dict(est.engine_.callbacks_)["stopping"]
    before = (stopping.best_score_, stopping.no_improvement_count_)
    assert before[0] == max(est.validation_scores_)
    split = est.engine_.train_split.random_state
    quiet_fit(est, X, y)
    assert see.seen == before
    # ... measured on the same validation rows.
    assert est.engine_.train_split.random_state == split
    stopping = dict(est.engine_.callbacks_)["stopping"]
    assert stopping.best_score_ == max(est.validation_scores_)
    # A fit that is not warm starts afresh.
    quiet_fit(est.set_params(warm_start=False), X, y)
    assert see.seen == (-np.inf, 0)


def test_stopping_state_carries_over_partial_fit_and_warm_fits_without_it(
    quiet_fit,
):
    # As MLPClassifier: a partial_fit (which never stops early) or a warm fit
    # on the training loss keeps the best validation score and weights of an
    # early-stopping fit, and the counter of either rule carries over.
    X, y = _data(n=200)
    see = _SeeStopping()
    est = quiet_fit(
        _clf(warm_start=True, early_stopping=True, n_iter_no_change=5, callbacks=[see]),
        X,
        y,
    )
    stopping = dict(est.engine_.callbacks_)["stopping"]
    before = (stopping.best_score_, stopping.no_improvement_count_)
    best = {k: v.clone() for k, v in stopping.best_state_["module"].items()}
    est.partial_fit(X, y)
    assert see.seen == before
    stopping = dict(est.engine_.callbacks_)["stopping"]
    assert stopping.best_score_ == before[0]
    for name, value in stopping.best_state_["module"].items():
        assert torch.equal(value, best[name]), name
    # A warm fit on the training loss starts from the carried counter too.
    counter = stopping.no_improvement_count_
    quiet_fit(est.set_params(early_stopping=False), X, y)
    assert see.seen[1] == counter

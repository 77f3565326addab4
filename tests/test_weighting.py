"""Loss-balancing strategies: hand computations and training outcomes."""

import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from sklearn_mtl import MultiTaskClassifier, MultiTaskNeuralEstimator
from sklearn_mtl.weighting import (
    FAMO,
    MGDA,
    DynamicWeightAverage,
    GradNorm,
    PCGrad,
    RandomLossWeighting,
    UncertaintyWeighting,
    make_weighting,
    min_norm_weights,
    pcgrad_combine,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

STRATEGIES = [
    "static",
    "uncertainty",
    "dwa",
    "rlw",
    "gradnorm",
    "pcgrad",
    "mgda",
    "famo",
]


def _data(n=240, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5))
    y = np.column_stack([X[:, 0] + X[:, 1] > 0, 2 * X[:, 1] - X[:, 2] + X[:, 3]])
    return X, y


def _fit(X, y, **kw):
    params = dict(
        hidden_layer_sizes=(16,),
        expert_layer_sizes=(8,),
        learning_rate_init=0.01,
        max_iter=15,
        random_state=0,
        device="cpu",
        task_types={"task_1": "regression"},
    )
    params.update(kw)
    return MultiTaskNeuralEstimator(**params).fit(X, y)


def test_pcgrad_projection_matches_hand_computation():
    g1 = torch.tensor([2.0, 0.0, 1.0])
    g2 = torch.tensor([-1.0, 1.0, 0.0])
    # g1 . g2 = -2 < 0: they conflict.
    p1 = g1 - (-2.0 / 2.0) * g2  # = [1, 1, 1]
    p2 = g2 - (-2.0 / 5.0) * g1  # = [-0.2, 1, 0.4]
    combined, coef = pcgrad_combine(torch.stack([g1, g2]))
    torch.testing.assert_close(combined, p1 + p2)
    torch.testing.assert_close(combined, torch.tensor([0.8, 2.0, 1.4]))
    # The coefficients express the combination in the original gradients.
    torch.testing.assert_close(coef, torch.tensor([1.4, 2.0]))
    torch.testing.assert_close(coef @ torch.stack([g1, g2]), combined)


def test_pcgrad_three_tasks_follows_the_order():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]])
    combined, coef = pcgrad_combine(g, torch.tensor([2, 0, 1]))
    # Hand computation, visiting the other tasks in the order 2, 0, 1.
    expected = []
    for i in range(3):
        p = g[i].clone()
        for j in (2, 0, 1):
            if j != i and p @ g[j] < 0:
                p = p - (p @ g[j]) / (g[j] @ g[j]) * g[j]
        expected.append(p)
    torch.testing.assert_close(combined, torch.stack(expected).sum(0))
    torch.testing.assert_close(coef @ g, combined)


def test_pcgrad_leaves_agreeing_gradients_alone():
    g = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    combined, coef = pcgrad_combine(g)
    torch.testing.assert_close(combined, g.sum(0))
    torch.testing.assert_close(coef, torch.ones(2))


def test_pcgrad_backward_sends_projected_gradient_to_shared():
    shared = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    head = torch.tensor(3.0, requires_grad=True)  # a task-specific parameter
    g1 = torch.tensor([2.0, 0.0, 1.0])
    g2 = torch.tensor([-1.0, 1.0, 0.0])
    losses = torch.stack([shared @ g1 * head / 3.0, shared @ g2])
    PCGrad(2).backward(losses, shared)
    torch.testing.assert_close(shared.grad, torch.tensor([0.8, 2.0, 1.4]))
    # The head gets the plain gradient of its own loss: (shared . g1) / 3.
    torch.testing.assert_close(head.grad, torch.tensor(1.0))


def test_mgda_two_task_weights_match_closed_form():
    rng = np.random.RandomState(0)
    for _ in range(5):
        g = torch.as_tensor(rng.normal(size=(2, 6)), dtype=torch.float64)
        a = ((g[1] - g[0]) @ g[1] / ((g[0] - g[1]) @ (g[0] - g[1]))).clamp(0, 1)
        w = min_norm_weights(g)
        torch.testing.assert_close(w, torch.stack([a, 1 - a]))
        # Min norm: no point of the segment has a smaller norm.
        grid = torch.linspace(0, 1, 201, dtype=torch.float64)
        norms = ((grid[:, None] * g[0] + (1 - grid[:, None]) * g[1]) ** 2).sum(1)
        assert (w @ g).pow(2).sum() <= norms.min() + 1e-9


def test_mgda_frank_wolfe_finds_min_norm_for_three_tasks():
    # Orthogonal gradients: min-norm weights are proportional to 1 / ||g_t||^2.
    g = torch.diag(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    w = min_norm_weights(g, n_iter=500)
    expected = torch.tensor([1.0, 1 / 4, 1 / 16], dtype=torch.float64)
    torch.testing.assert_close(w, expected / expected.sum(), atol=1e-3, rtol=0)


def test_mgda_backward_uses_min_norm_combination():
    shared = torch.ones(2, requires_grad=True)
    losses = torch.stack([shared[0], 2 * shared[1]])
    _, w = MGDA(2).backward(losses, shared)
    torch.testing.assert_close(w, torch.tensor([0.8, 0.2]))
    torch.testing.assert_close(shared.grad, torch.tensor([0.8, 0.4]))


def test_uncertainty_loss_and_gradient():
    w = UncertaintyWeighting(2)
    with torch.no_grad():
        w.log_variance.copy_(torch.tensor([0.0, np.log(4.0)]))
    losses = torch.tensor([1.0, 8.0], requires_grad=True)
    loss, weights = w.backward(losses)
    # exp(-s) L + s / 2
    assert float(loss) == pytest.approx(1.0 + 8.0 / 4.0 + 0.5 * np.log(4.0))
    torch.testing.assert_close(weights, torch.tensor([1.0, 0.25]))
    # d/ds (exp(-s) L + s/2) = -exp(-s) L + 1/2
    torch.testing.assert_close(w.log_variance.grad, torch.tensor([-0.5, -1.5]))


def test_dwa_weights_follow_loss_ratios():
    w = DynamicWeightAverage(3, temperature=2.0)
    losses = torch.ones(3, requires_grad=True)
    _, first = w.backward(losses)
    torch.testing.assert_close(first, torch.ones(3))
    w.on_epoch_end(torch.tensor([1.0, 1.0, 1.0]))
    w.on_epoch_end(torch.tensor([0.5, 1.0, 2.0]))
    r = torch.tensor([0.5, 1.0, 2.0])
    expected = 3 * torch.softmax(r / 2.0, 0)
    torch.testing.assert_close(w.weights, expected)
    assert float(w.weights.sum()) == pytest.approx(3.0)


def test_rlw_is_reproducible_and_on_simplex():
    torch.manual_seed(3)
    _, a = RandomLossWeighting(4).backward(torch.ones(4, requires_grad=True))
    torch.manual_seed(3)
    _, b = RandomLossWeighting(4).backward(torch.ones(4, requires_grad=True))
    torch.testing.assert_close(a, b)
    assert float(a.sum()) == pytest.approx(1.0)
    assert (a > 0).all()


def test_gradnorm_raises_weight_of_task_with_small_gradient():
    gn = GradNorm(2, alpha=0.0)
    shared = torch.ones(3, requires_grad=True)
    losses = torch.stack([shared.sum(), 4 * shared.sum()])
    gn.backward(losses, shared)
    # Task 0's gradient norm is below the mean: its weight's gradient is negative.
    assert gn.scales.grad[0] < 0 < gn.scales.grad[1]


def test_famo_weights_favour_slow_tasks():
    famo = FAMO(2, lr=0.1)
    for step in range(20):
        # Task 0's loss falls fast, task 1's stays.
        losses = torch.tensor([1.0 / (step + 1), 1.0], requires_grad=True)
        _, weights = famo.backward(losses)
    z = torch.softmax(famo.logits, 0)
    assert z[1] > z[0]
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-6)


def test_bad_strategy_params_name_the_parameter():
    with pytest.raises(ValueError, match="loss_weighting_params"):
        make_weighting("dwa", 2, None, {"alpha": 1.0})
    X, y = _data(60)
    with pytest.raises(ValueError, match="loss_weighting_params"):
        _fit(X, y, loss_weighting="gradnorm", loss_weighting_params={"bogus": 1})


def test_task_weights_only_with_static():
    X, y = _data(60)
    with pytest.raises(ValueError, match="task_weights.*static"):
        _fit(X, y, loss_weighting="mgda", task_weights={"task_0": 2.0})


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_trains_below_initial_loss(strategy):
    X, y = _data()
    est = _fit(X, y, loss_weighting=strategy)
    for name, curve in est.task_loss_curves_.items():
        assert curve[-1] < 0.7 * curve[0], (name, curve)
    assert set(est.task_weight_curves_) == {"task_0", "task_1"}
    assert all(len(c) == est.n_iter_ for c in est.task_weight_curves_.values())
    assert est.score(X, y) > 0.8


def test_weight_curves_record_the_strategy():
    X, y = _data()
    static = _fit(X, y, task_weights={"task_1": 0.5})
    assert static.task_weight_curves_["task_1"] == [0.5] * static.n_iter_
    dwa = _fit(X, y, loss_weighting="dwa")
    w = np.array([dwa.task_weight_curves_[t] for t in ("task_0", "task_1")])
    np.testing.assert_allclose(w[:, :2], 1.0)
    assert np.abs(w[:, 2:] - 1).max() > 1e-4
    np.testing.assert_allclose(w.sum(0), 2.0, rtol=1e-5)
    mgda = _fit(X, y, loss_weighting="mgda")
    m = np.array([mgda.task_weight_curves_[t] for t in ("task_0", "task_1")])
    np.testing.assert_allclose(m.sum(0), 1.0, rtol=1e-5)


@pytest.mark.parametrize("strategy", ["rlw", "pcgrad", "famo"])
def test_random_state_reproduces_stochastic_strategies(strategy):
    X, y = _data()
    a = _fit(X, y, loss_weighting=strategy, max_iter=5)
    b = _fit(X, y, loss_weighting=strategy, max_iter=5)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.task_weight_curves_ == b.task_weight_curves_


def test_torchjd_upgrad():
    pytest.importorskip("torchjd")
    pytest.importorskip("quadprog")
    from torchjd.aggregation import UPGrad

    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    shared = torch.ones(2, requires_grad=True)
    losses = torch.stack([shared @ g[0], shared @ g[1]])
    w = make_weighting("upgrad", 2, None)
    _, coef = w.backward(losses, shared)
    torch.testing.assert_close(shared.grad, UPGrad()(g))
    torch.testing.assert_close(coef @ g, shared.grad)
    X, y = _data()
    est = _fit(X, y, loss_weighting="upgrad")
    for curve in est.task_loss_curves_.values():
        assert curve[-1] < 0.7 * curve[0]


@pytest.mark.parametrize("strategy", ["pcgrad", "mgda", "gradnorm"])
def test_gradient_methods_with_three_tasks_and_ple(strategy):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(240, 5))
    y = np.column_stack([X[:, 0] > 0, X[:, 1] - X[:, 2], X[:, 3] + X[:, 4] > 0])
    est = _fit(
        X,
        y,
        architecture="ple",
        loss_weighting=strategy,
        max_iter=25,
        task_types={"task_1": "regression"},
    )
    for name, curve in est.task_loss_curves_.items():
        assert curve[-1] < 0.8 * curve[0], (name, curve)
    if strategy == "mgda":
        w = np.array([est.task_weight_curves_[t] for t in est.task_names_])
        np.testing.assert_allclose(w.sum(0), 1.0, rtol=1e-5)


def test_grid_search_over_strategy_params():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    X, y = _data(150)
    grid = GridSearchCV(
        MultiTaskNeuralEstimator(
            hidden_layer_sizes=(8,),
            max_iter=3,
            random_state=0,
            device="cpu",
            loss_weighting="gradnorm",
            task_types={"task_1": "regression"},
        ),
        {"loss_weighting_params": [{"alpha": 0.5}, {"alpha": 1.5}]},
        cv=2,
    ).fit(X, y)
    best_alpha = grid.best_params_["loss_weighting_params"]["alpha"]
    assert grid.best_estimator_.engine_.criterion_.weighting.alpha == best_alpha
    # Each candidate's setting reaches the strategy the engine trains with.
    for params in grid.cv_results_["params"]:
        est = clone(grid.estimator).set_params(**params).fit(X, y)
        weighting = est.engine_.criterion_.weighting
        assert weighting.alpha == params["loss_weighting_params"]["alpha"]


@pytest.mark.parametrize("loss_weighting", ["pcgrad", "mgda", "gradnorm"])
def test_gradient_methods_under_bf16_autocast(loss_weighting):
    """bf16 shared representations: gradients are combined in float32."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(256, 6)).astype(np.float32)
    y = np.column_stack([X[:, 0] > 0, X[:, 1] - X[:, 0] > 0]).astype(int)
    est = MultiTaskClassifier(
        hidden_layer_sizes=(16,),
        max_iter=15,
        learning_rate_init=0.01,
        random_state=0,
        precision="bf16",
        loss_weighting=loss_weighting,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert np.all(np.isfinite(est.loss_curve_))
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    assert est.score(X, y) > 0.8


# ------------------------------------------------- tasks absent from a batch
def test_a_task_absent_from_the_batch_takes_no_weight_from_the_others():
    # An absent task's loss is 0 (no labelled row): not a perfect fit. FAMO
    # and MGDA gave it every weight and trained nothing on such a batch.
    absent = torch.tensor([True, False])
    famo = FAMO(2)
    famo.backward(torch.tensor([0.5, 0.4], requires_grad=True))
    logits = famo.logits.clone()
    _, weights = famo.backward(
        torch.tensor([0.5, 0.0], requires_grad=True), None, absent
    )
    assert weights.tolist() == [1.0, 0.0]
    # Its last loss is kept, and its logit moves only by the weight decay.
    assert famo.previous.tolist() == pytest.approx([0.5, 0.4])
    delta = torch.tensor([0.0, 0.0])  # task 0 unchanged, task 1 absent
    z = torch.softmax(logits, 0)
    grad = z * (delta - (z * delta).sum()) + famo.gamma * logits
    assert torch.equal(grad, famo.gamma * logits)

    shared = torch.tensor([1.0, 2.0], requires_grad=True)
    losses = torch.stack([(shared * torch.tensor([1.0, 0.5])).sum(), shared.sum() * 0])
    _, weights = MGDA(2).backward(losses, shared, absent)
    assert weights.tolist() == [1.0, 0.0]
    assert shared.grad.tolist() == [1.0, 0.5]  # task 0's own gradient
    grads = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    weights = min_norm_weights(grads, present=torch.tensor([True, False, True]))
    assert weights[1] == 0 and weights.tolist() == pytest.approx([0.8, 0.0, 0.2])
    # No task present: the weights of all (nothing trains on such a batch).
    none = torch.tensor([False, False])
    assert torch.equal(
        min_norm_weights(grads[:2], present=none), min_norm_weights(grads[:2])
    )

    uncertainty = UncertaintyWeighting(2)
    uncertainty.backward(torch.tensor([0.5, 0.0], requires_grad=True), None, absent)
    assert uncertainty.log_variance.grad.tolist() == [0.5 - 0.5, 0.0]

    rlw = RandomLossWeighting(3)
    _, weights = rlw.backward(
        torch.ones(3, requires_grad=True), None, torch.tensor([True, False, True])
    )
    assert weights[1] == 0 and float(weights.sum()) == pytest.approx(1.0)

    shared = torch.ones(2, requires_grad=True)
    gradnorm = GradNorm(2)
    losses = torch.stack([shared[0] * 0.8, shared[1] * 0])
    gradnorm.backward(losses, shared, absent)
    assert gradnorm.initial_losses[0] == pytest.approx(0.8)
    assert torch.isnan(gradnorm.initial_losses[1])  # set by its first labelled batch
    shared = torch.ones(2, requires_grad=True)
    gradnorm.backward(torch.stack([shared[0] * 0.8, shared[1] * 0.3]), shared)
    assert gradnorm.initial_losses.tolist() == pytest.approx([0.8, 0.3])


def test_a_task_whose_labelled_rows_all_weigh_zero_is_refused():
    X, y = _data(n=60)
    weights = np.where(np.arange(60) < 30, 0.0, 1.0)
    y = y.astype(float)
    y[30:, 1] = np.nan  # task_1's labels are on the rows that weigh 0
    est = MultiTaskNeuralEstimator(hidden_layer_sizes=(8,), max_iter=2)
    with pytest.raises(ValueError, match="Task 'task_1' has labelled rows, but every"):
        est.fit(X, y, sample_weight=weights)
    assert not hasattr(est, "engine_")


def test_famo_with_an_absent_task_updates_as_famo_without_it():
    rng = np.random.RandomState(0)
    three, two = FAMO(3), FAMO(2)
    absent = torch.tensor([True, True, False])
    for _ in range(50):
        losses = torch.tensor(rng.uniform(0.1, 1.0, size=2), dtype=torch.float32)
        _, w3 = three.backward(
            torch.cat([losses, torch.zeros(1)]).requires_grad_(), None, absent
        )
        _, w2 = two.backward(losses.clone().requires_grad_())
        assert torch.allclose(w3[:2], w2) and w3[2] == 0
    assert torch.equal(three.logits[:2], two.logits) and three.logits[2] == 0


@pytest.mark.parametrize("strategy", ["famo", "mgda"])
@pytest.mark.parametrize("absent_by", ["missing labels", "class_weight 0"])
def test_batches_where_a_task_is_absent_still_train_the_other(strategy, absent_by):
    # A task is absent from a batch without a labelled row of positive loss
    # weight: here the first two of four unshuffled batches hold no label of
    # task_1, or only task_0 rows of its class weighted 0. FAMO and MGDA gave
    # the absent task every weight there, and the other none.
    X, y = _data(n=128)
    y = y.astype(float)
    params = {}
    if absent_by == "missing labels":
        y[:64, 1] = np.nan
        other = "task_0"
    else:
        order = np.argsort(y[:, 0], kind="stable")  # class 0 first: 71 rows
        X, y = X[order], y[order]
        params["class_weight"] = {"task_0": {0.0: 0.0, 1.0: 1.0}}
        other = "task_1"
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(8,),
        max_iter=2,
        batch_size=32,
        shuffle=False,
        random_state=0,
        loss_weighting=strategy,
        **params,
    ).fit(X, y)
    # The other task's mean weight over each epoch's batches: 1 on the
    # batches where it is alone (it was 0).
    assert all(w > 0.5 for w in est.task_weight_curves_[other])


@pytest.mark.parametrize("name", ["upgrad", "aligned_mtl"])
def test_torchjd_missing_names_the_option_and_the_extra(name, monkeypatch):
    # torchjd absent (or its quadprog solver, which UPGrad imports when built).
    monkeypatch.setitem(sys.modules, "torchjd", None)
    with pytest.raises(ImportError) as info:
        make_weighting(name, 2, None)
    msg = str(info.value)
    assert msg.startswith(f"loss_weighting={name!r} needs the optional package torchjd")
    assert 'pip install "sklearn-mtl[jd]"' in msg


@pytest.mark.parametrize("name", ["upgrad", "dualproj", "aligned_mtl"])
def test_torchjd_aggregates_the_present_tasks_only(name):
    pytest.importorskip("torchjd")
    pytest.importorskip("quadprog")
    g = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])  # task 1: no labels
    present = torch.tensor([True, False, True])
    full = make_weighting(name, 3, None)
    shared = torch.ones(2, requires_grad=True)
    _, coef = full.backward(torch.stack([shared @ row for row in g]), shared, present)
    # The same as the aggregator on the two present tasks alone.
    alone = make_weighting(name, 2, None)
    ref = torch.ones(2, requires_grad=True)
    _, ref_coef = alone.backward(torch.stack([ref @ g[0], ref @ g[2]]), ref)
    torch.testing.assert_close(shared.grad, ref.grad)
    expected = torch.stack([ref_coef[0], torch.tensor(0.0), ref_coef[1]])
    torch.testing.assert_close(coef, expected)
    # Fitted with a task labelled on a tenth of the rows: finite weights, and
    # every task learns.
    X, y = _data()
    y[np.random.RandomState(0).rand(len(y)) < 0.9, 1] = np.nan
    est = _fit(X, y, loss_weighting=name, batch_size=16)
    for t, curve in est.task_weight_curves_.items():
        assert np.isfinite(curve).all(), t
    for t, curve in est.task_loss_curves_.items():
        assert curve[-1] < 0.8 * curve[0], (t, curve)

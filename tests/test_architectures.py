"""Architectures, gates, custom trunks and searching over them."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from sklearn_mtl import MultiTaskClassifier, MultiTaskNeuralEstimator
from sklearn_mtl.nn import (
    CrossStitchNetwork,
    MixtureOfExperts,
    ProgressiveLayeredExtraction,
    build_network,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ARCHITECTURES = ["shared_bottom", "mmoe", "omoe", "cgc", "ple", "cross_stitch"]


def _data(n=240, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5))
    y = np.column_stack([X[:, 0] + X[:, 1] > 0, 2 * X[:, 1] - X[:, 2] + X[:, 3]])
    return X, y


def _est(**kw):
    params = dict(
        hidden_layer_sizes=(16,),
        expert_layer_sizes=(8,),
        head_layer_sizes=(4,),
        learning_rate_init=0.01,
        max_iter=15,
        random_state=0,
        device="cpu",
        task_types={"task_1": "regression"},
    )
    params.update(kw)
    return MultiTaskNeuralEstimator(**params)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_architecture_trains_below_initial_loss(architecture):
    X, y = _data()
    est = _est(architecture=architecture, max_iter=30).fit(X, y)
    for name, curve in est.task_loss_curves_.items():
        assert curve[-1] < 0.7 * curve[0], (name, curve)
    assert est.predict(X).shape == (240, 2)
    assert est.score(X, y) > 0.6  # chance: accuracy 0.5, R2 0 -> 0.25
    # float64 inference goes through the same module (functional_call).
    np.testing.assert_array_equal(
        est.predict(X.astype(np.float32))[:, 0], est.predict(X)[:, 0]
    )


@pytest.mark.parametrize(
    "architecture, n_gate_experts", [("mmoe", 3), ("omoe", 3), ("cgc", 4), ("ple", 4)]
)
def test_gate_weights_sum_to_one_per_task(architecture, n_gate_experts):
    X, y = _data()
    est = _est(
        architecture=architecture, n_experts=3, n_shared_experts=2, n_task_experts=2
    ).fit(X, y)
    gates = est.gate_weights(X)
    assert list(gates) == ["task_0", "task_1"]
    for w in gates.values():
        assert w.shape == (n_gate_experts,)
        assert w.sum() == pytest.approx(1.0, abs=1e-5)
        assert (w > 0).all()
    if architecture == "omoe":
        np.testing.assert_array_equal(gates["task_0"], gates["task_1"])
    else:
        assert not np.allclose(gates["task_0"], gates["task_1"])


def test_per_row_gates_sum_to_one():
    torch.manual_seed(0)
    X = torch.randn(7, 5)
    for module in (
        MixtureOfExperts(5, [1, 3], n_experts=4, expert_layer_sizes=(6,)),
        ProgressiveLayeredExtraction(5, [1, 3], 2, 1, n_levels=3),
    ):
        g = module.gates(X)
        torch.testing.assert_close(g.sum(-1), torch.ones(g.shape[:2]))


@pytest.mark.parametrize("architecture", ["shared_bottom", "cross_stitch"])
@pytest.mark.parametrize(
    "wrapped", [{}, {"n_ensemble": 2}, {"num_embeddings": "periodic"}]
)
def test_gate_weights_error_without_gates(architecture, wrapped):
    # Also through the ensemble and input-feature wrappers, which forward
    # `gates` to whatever body they hold.
    X, y = _data(60)
    est = _est(architecture=architecture, max_iter=2, **wrapped).fit(X, y)
    with pytest.raises(ValueError, match="gated architecture.*" + architecture):
        est.gate_weights(X)


def test_mmoe_experts_are_independent_mlps():
    # The batched experts compute exactly what separate nn.Linear experts would.
    torch.manual_seed(0)
    m = MixtureOfExperts(4, [1, 1], n_experts=3, expert_layer_sizes=(5,))
    X = torch.randn(6, 4)
    _, experts = m(X, return_shared=True)
    lin = m.experts[0]
    for e in range(3):
        ref = torch.relu(X @ lin.weight[e] + lin.bias[e])
        torch.testing.assert_close(experts[e], ref)
    # The output of each task is its tower on its gate's mixture.
    mixed = torch.einsum("gne,end->gnd", m.gates(X), experts)
    out = m(X)
    w, b = m.heads.out.weight, m.heads.out.bias
    torch.testing.assert_close(out[:, 0], (mixed[0] @ w[0] + b[0])[:, 0])
    torch.testing.assert_close(out[:, 1], (mixed[1] @ w[1] + b[1])[:, 0])


def test_ple_task_gates_see_shared_and_own_experts_only():
    m = ProgressiveLayeredExtraction(3, [1, 1, 1], n_shared_experts=2, n_task_experts=2)
    # Experts 0-1 shared, 2-3 task 0, 4-5 task 1, 6-7 task 2.
    assert m.task_experts.tolist() == [[0, 1, 2, 3], [0, 1, 4, 5], [0, 1, 6, 7]]
    assert m.source.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_cross_stitch_units_start_near_identity_and_mix():
    m = CrossStitchNetwork(4, [1, 1], layer_sizes=(3, 3))
    assert len(m.stitches) == 2
    torch.testing.assert_close(m.stitches[0], torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    # With identity units the columns are independent: task 1's output does
    # not depend on column 0's weights.
    with torch.no_grad():
        for s in m.stitches:
            s.copy_(torch.eye(2))
    X = torch.randn(5, 4)
    before = m(X)[:, 1].clone()
    with torch.no_grad():
        m.layers[0][0].weight[0].add_(1.0)
    torch.testing.assert_close(m(X)[:, 1], before)
    assert not torch.allclose(m(X)[:, 0], before)


def test_shared_representation_is_returned():
    X = torch.randn(4, 5)
    for arch in ARCHITECTURES:
        m = build_network(arch, 5, [1, 2], hidden_layer_sizes=(6,))
        out, shared = m(X, return_shared=True)
        torch.testing.assert_close(out, m(X))
        assert shared.requires_grad


def test_grid_search_over_architecture_and_weighting():
    X, y = _data(150)
    grid = GridSearchCV(
        _est(max_iter=5),
        {
            "architecture": ["shared_bottom", "mmoe", "ple"],
            "loss_weighting": ["static", "uncertainty", "mgda"],
        },
        cv=2,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 9
    scores = grid.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert grid.best_params_ == grid.cv_results_["params"][int(np.argmax(scores))]
    # The refit model really has the chosen architecture and weighting.
    best = grid.best_estimator_
    body = getattr(best.module_, "body", best.module_)
    kind = {
        "shared_bottom": "SharedBottomNetwork",
        "mmoe": "MixtureOfExperts",
        "ple": "ProgressiveLayeredExtraction",
    }[grid.best_params_["architecture"]]
    assert type(body).__name__ == kind
    weighting = type(best.engine_.criterion_.weighting).__name__
    assert (
        weighting
        == {
            "static": "StaticWeighting",
            "uncertainty": "UncertaintyWeighting",
            "mgda": "MGDA",
        }[grid.best_params_["loss_weighting"]]
    )


def test_invalid_architecture_parameters():
    X, y = _data(60)
    with pytest.raises(ValueError, match="architecture"):
        _est(architecture="moe").fit(X, y)
    with pytest.raises(ValueError, match="n_shared_experts"):
        _est(architecture="cgc", n_shared_experts=0, n_task_experts=0).fit(X, y)
    with pytest.raises(ValueError, match="expert_layer_sizes"):
        _est(architecture="mmoe", expert_layer_sizes=(0,)).fit(X, y)


class DigitsCNN(torch.nn.Module):
    """8x8 digit images arrive flattened (64 features); reshape inside."""

    def __init__(self, channels=8):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, channels, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(channels, 2 * channels, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
        )

    def forward(self, X):
        return self.net(X.reshape(-1, 1, 8, 8) / 16.0)


@pytest.mark.slow
def test_cnn_trunk_on_digits_digit_and_parity():
    X, digit = load_digits(return_X_y=True)
    y = np.column_stack([digit, digit % 2])
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    clf = MultiTaskClassifier(
        trunk=DigitsCNN,
        trunk_kwargs={"channels": 8},
        hidden_layer_sizes=(),
        learning_rate_init=0.01,
        max_iter=8,
        random_state=0,
        device="cpu",
    ).fit(X_tr, y_tr)
    pred = clf.predict(X_te)
    acc_digit = np.mean(pred[:, 0] == y_te[:, 0])
    acc_parity = np.mean(pred[:, 1] == y_te[:, 1])
    assert acc_digit > 0.85, acc_digit  # got 0.93 (chance 0.1)
    assert acc_parity > 0.85, acc_parity  # got 0.91 (chance 0.5)
    assert isinstance(clf.module_.features, DigitsCNN)
    assert [p.shape for p in clf.predict_proba(X_te[:3])] == [(3, 10), (3, 2)]


def test_trunk_contract_errors():
    X, y = _data(60)
    with pytest.raises(ValueError, match="trunk_kwargs"):
        _est(trunk=DigitsCNN, trunk_kwargs={"bogus": 1}).fit(X, y)
    with pytest.raises(TypeError, match="trunk must be"):
        _est(trunk=lambda: "not a module").fit(X, y)
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        _est(trunk=torch.nn.Flatten, trunk_kwargs={"start_dim": 0}).fit(X, y)
    with pytest.raises(ValueError, match="trunk is None"):
        _est(trunk_kwargs={"a": 1}).fit(X, y)


def test_trunk_feeds_every_architecture():
    X, y = _data(120)

    def trunk():
        return torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.Tanh())

    for arch in ("mmoe", "cross_stitch"):
        est = _est(architecture=arch, trunk=trunk, max_iter=10).fit(X, y)
        assert est.module_.features[0].in_features == 5
        curves = est.task_loss_curves_.values()
        assert all(c[-1] < c[0] for c in curves)
        # gate_weights reads the gates behind the trunk, or says there are none.
        if arch == "mmoe":
            assert all(
                w.sum() == pytest.approx(1) for w in est.gate_weights(X).values()
            )
        else:
            with pytest.raises(ValueError, match="gated architecture"):
                est.gate_weights(X)

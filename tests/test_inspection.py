"""Display objects of sklearn_mtl.inspection, drawn on matplotlib's Agg backend."""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtl import MultiTaskClassifier, MultiTaskNeuralEstimator, inspection
from sklearn_mtl.inspection import (
    GateUsageDisplay,
    TaskLossCurveDisplay,
    TaskWeightCurveDisplay,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data(n=120):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 4))
    y = pd.DataFrame(
        {
            "churn": np.where(X[:, 0] > 0, "yes", "no"),
            "tier": np.digitize(X[:, 1], [-0.5, 0.5]),
            "spend": 3 * X[:, 2],
        }
    )
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _data()
    est = MultiTaskNeuralEstimator(**SMALL, early_stopping=True).fit(X, y)
    return est, X, y


def test_loss_curves_draw_one_line_per_task_with_the_fitted_values(fitted):
    est, _, _ = fitted
    display = TaskLossCurveDisplay.from_estimator(est)
    assert list(display.lines_) == ["churn", "tier", "spend"]
    assert len(display.ax_.get_lines()) == 3
    for name, line in display.lines_.items():
        assert line.get_label() == name
        assert line.get_xdata().tolist() == [1, 2, 3, 4]
        assert line.get_ydata().tolist() == est.task_loss_curves_[name]
    assert display.figure_ is display.ax_.figure
    assert display.ax_.get_xlabel() == "epoch"
    assert display.ax_.get_title() == "MultiTaskNeuralEstimator"
    # validation scores: dashed, same colour, on the twin axes
    valid_ax = display.validation_ax_
    assert valid_ax is not display.ax_ and len(valid_ax.get_lines()) == 3
    for name, line in display.validation_lines_.items():
        assert line.get_ydata().tolist() == est.task_validation_scores_[name]
        assert line.get_label() == f"{name} (validation)"
        assert line.get_linestyle() == "--"
        assert line.get_color() == display.lines_[name].get_color()
    legend = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert legend == [
        "churn",
        "tier",
        "spend",
        "churn (validation)",
        "tier (validation)",
        "spend (validation)",
    ]


def test_loss_curves_without_early_stopping_and_on_given_axes():
    X, y = _data()
    est = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    fig, (ax1, ax2) = plt.subplots(1, 2)
    display = TaskLossCurveDisplay.from_estimator(
        make_pipeline(StandardScaler(), est),
        ax=ax2,
        name="mine",
        line_kwargs={"linewidth": 3},
    )
    assert display.ax_ is ax2 and display.figure_ is fig
    assert len(ax1.get_lines()) == 0 and len(ax2.get_lines()) == 3
    assert display.validation_ax_ is None and display.validation_lines_ is None
    assert display.ax_.get_title() == "mine"
    assert {line.get_linewidth() for line in display.lines_.values()} == {3}
    # plot() draws again, from the stored curves
    again = display.plot()
    assert again is display and display.ax_ is not ax2
    assert display.lines_["tier"].get_ydata().tolist() == est.task_loss_curves_["tier"]


def test_weight_curves_follow_the_adaptive_weighting():
    X, y = _data()
    est = MultiTaskNeuralEstimator(**SMALL, loss_weighting="uncertainty").fit(X, y)
    display = TaskWeightCurveDisplay.from_estimator(est)
    assert list(display.lines_) == ["churn", "tier", "spend"]
    for name, line in display.lines_.items():
        assert line.get_ydata().tolist() == est.task_weight_curves_[name]
        assert line.get_label() == name
    assert display.ax_.get_ylabel() == "loss weight"
    assert display.ax_.get_title() == "loss_weighting='uncertainty'"
    weights = np.array([line.get_ydata() for line in display.lines_.values()])
    assert not np.allclose(weights, weights[:, :1])  # they moved during training


@pytest.mark.parametrize(
    "architecture, params, labels",
    [
        ("mmoe", dict(n_experts=3), ["expert 0", "expert 1", "expert 2"]),
        (
            "cgc",
            dict(n_shared_experts=2, n_task_experts=1),
            ["shared 0", "shared 1", "own 0"],
        ),
    ],
)
def test_gate_usage_heatmap(architecture, params, labels):
    X, y = _data()
    est = MultiTaskNeuralEstimator(**SMALL, architecture=architecture, **params)
    est.fit(X, y)
    display = GateUsageDisplay.from_estimator(est, X[:50])
    gates = est.gate_weights(X[:50])
    expected = np.vstack([gates[name] for name in ["churn", "tier", "spend"]])
    np.testing.assert_allclose(display.im_.get_array(), expected)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, rtol=1e-5)
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == [
        "churn",
        "tier",
        "spend",
    ]
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == labels
    assert display.text_.shape == (3, 3)
    assert display.text_[1, 2].get_text() == f"{expected[1, 2]:.2f}"
    assert display.colorbar_ is not None


def test_gate_usage_through_a_pipeline_transforms_X_first():
    X, y = _data()
    pipe = make_pipeline(
        StandardScaler(),
        MultiTaskNeuralEstimator(**SMALL, architecture="mmoe", n_experts=2),
    ).fit(X * 10 + 5, y)
    display = GateUsageDisplay.from_estimator(pipe, X * 10 + 5, colorbar=False)
    gates = pipe[-1].gate_weights(pipe[0].transform(X * 10 + 5))
    np.testing.assert_allclose(display.im_.get_array()[0], gates["churn"])
    assert display.colorbar_ is None


def test_errors_are_clear():
    X, y = _data()
    plain = MultiTaskNeuralEstimator(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="gate_weights needs a gated architecture"):
        GateUsageDisplay.from_estimator(plain, X)
    for display in (TaskLossCurveDisplay, TaskWeightCurveDisplay):
        with pytest.raises(NotFittedError, match="is not fitted yet"):
            display.from_estimator(MultiTaskClassifier())
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        GateUsageDisplay.from_estimator(MultiTaskClassifier(architecture="mmoe"), X)
    with pytest.raises(TypeError, match="got StandardScaler"):
        TaskLossCurveDisplay.from_estimator(StandardScaler().fit(X))
    with pytest.raises(ValueError, match="expert_labels has 1 names but the gates"):
        GateUsageDisplay(gate_weights={"a": [0.5, 0.5]}, expert_labels=["x"]).plot()


def test_without_matplotlib_the_error_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"TaskLossCurveDisplay.plot requires matp"):
        TaskLossCurveDisplay(task_loss_curves={"a": [1.0]}).plot()
    with pytest.raises(ImportError, match=r"sklearn-mtl\[plot\]"):
        inspection.check_matplotlib_support("x")

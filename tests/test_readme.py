"""Every Python example in the README runs, and does what the README says."""

import contextlib
import io
import pathlib
import re
import warnings

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
TITLES = [
    "quickstart",
    "mixed",
    "scoring",
    "inspect",
    "tabular",
    "sparse",
    "onnx",
    "onnx_raw",
    "safe",
]


def _run(index, **namespace):
    """Execute README block ``index``; its namespace and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(BLOCKS[index], f"README.md[{index}]", "exec"), namespace)
    return namespace, out.getvalue()


def test_readme_has_examples():
    assert len(BLOCKS) == len(TITLES)
    assert "from sklearn_mtl.inspection import" in BLOCKS[TITLES.index("inspect")]


def test_readme_keeps_the_two_commands_ci_runs_and_a_cpu_torch_command():
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'python -m pip install -e ".[test]" && python -m pytest -n 2' in ci
    assert 'python -m pip install -e ".[test]" && python -m pytest -n 2' in TEXT
    assert "pip install torch==2.13.0 && pip install -e . && python -m sklearn_mtl" in (
        TEXT
    )
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in TEXT


@pytest.mark.slow
def test_quickstart_does_not_warn_and_learns_both_tasks():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning would fail here
        ns, printed = _run(TITLES.index("quickstart"))
    lines = printed.split("\n")
    assert [line.split()[0] for line in lines if line] == ["parity", "is_large"]
    assert all(float(line.split()[1]) > 0.9 for line in lines if line)
    assert ns["clf"].n_iter_ < ns["clf"].max_iter  # early stopping ended the fit
    assert ns["y_pred"].shape == (450, 2) and ns["y_pred"].dtype == ns["y"].dtype


@pytest.mark.slow
def test_mixed_kinds_example():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns, _ = _run(TITLES.index("mixed"))
    est, X_df = ns["est"], ns["X_df"]
    pred = est.predict(X_df[:2])
    assert pred.shape == (2, 3) and pred.dtype == object
    assert set(pred[:, 0]) <= {"no", "yes"} and set(pred[:, 1]) <= {0, 1, 2}
    assert [None if p is None else p.shape for p in est.predict_proba(X_df[:2])] == [
        (2, 2),
        (2, 3),
        None,
    ]
    assert list(est.task_loss_curves_) == ["churn", "tier", "spend"]


@pytest.mark.slow
def test_scoring_example():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns, _ = _run(TITLES.index("scoring"))
    search = ns["search"]
    assert "mean_test_parity_f1" in search.cv_results_
    assert search.best_score_ == max(search.cv_results_["mean_test_parity_f1"])
    report = ns["per_task_report"](search.best_estimator_, ns["X_test"], ns["y_test"])
    assert list(report.index) == ["digit", "parity", "is_large"]
    assert (report["accuracy"] > 0.5).all()


@pytest.mark.slow
def test_inspect_example_draws_the_displays():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # plt.show() on Agg, ConvergenceWarning
        ns, _ = _run(TITLES.index("inspect"))
    clf, axes = ns["clf"], ns["axes"]
    try:
        assert clf.task_names_ == ["digit", "parity"]
        assert [t.kind for t in clf.tasks_.tasks] == ["multiclass", "binary"]
        np.testing.assert_array_equal(clf.classes_[0], np.arange(10))
        assert [line.get_label() for line in axes[0].get_lines()] == [
            "digit",
            "parity",
        ]
        assert (
            axes[0].get_lines()[1].get_ydata().tolist()
            == (clf.task_loss_curves_["parity"])
        )
        assert (
            axes[1].get_lines()[0].get_ydata().tolist()
            == (clf.task_weight_curves_["digit"])
        )
        gates = clf.gate_weights(ns["X"] / 16)
        np.testing.assert_allclose(axes[2].images[0].get_array()[1], gates["parity"])
    finally:
        plt.close("all")


@pytest.mark.slow
def test_tabular_example_takes_the_raw_frame():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns, _ = _run(TITLES.index("tabular"))
    est, X = ns["est"], ns["X"]
    assert est.inputs_["categorical"] == [1, 2]  # city (str) and member (bool)
    assert est.predict(X.head(2)).shape == (2, 2)
    unseen = X.head(2).assign(city=["tokyo", None])  # unknown and missing
    assert np.isfinite(est.predict_proba(unseen)[0]).all()


def test_sparse_example_fits_one_hot_output_as_it_comes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns, printed = _run(TITLES.index("sparse"))
    pipe = ns["pipe"]
    assert printed.split() == ["[['True'", "'big']", "['False'", "'small']]"]
    assert pipe.named_steps["multitaskclassifier"].n_features_in_ == 6
    assert pipe.score(ns["X"], ns["Y"]) == 1.0


@pytest.mark.slow
def test_onnx_raw_dataframe_example_serves_the_same_predictions():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns, _ = _run(TITLES.index("onnx_raw"))  # asserts equal labels itself
    assert [i.type for i in ns["sess"].get_inputs()] == [
        "tensor(double)",
        "tensor(string)",
        "tensor(bool)",
    ]
    model, raw = ns["model"], ns["raw"]
    missing = raw["city"].isna().to_numpy()
    assert missing.sum() > 50
    # the missing cities took the "missing" code: other strings would be "unknown"
    feed = dict(
        ns["feed"], city=np.where(missing, "Bern", ns["feed"]["city"][:, 0])[:, None]
    )
    probe = dict(
        zip([o.name for o in ns["sess"].get_outputs()], ns["sess"].run(None, feed))
    )
    renamed = raw.assign(city=raw["city"].where(~missing, "Bern"))
    np.testing.assert_allclose(
        probe["buys_probabilities"], model.predict_proba(renamed)[0], atol=1e-5
    )
    assert not np.allclose(probe["buys_probabilities"], ns["out"]["buys_probabilities"])
    assert model.inputs_["scaling"] == "quantile"  # the raw-data defaults
    np.testing.assert_allclose(
        ns["out"]["spend_value"], model.predict(raw)[:, 1].astype(float), atol=1e-3
    )


@pytest.mark.slow
def test_onnx_example_serves_the_same_predictions():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns, _ = _run(TITLES.index("onnx"))  # the block asserts equality itself
    assert ns["names"] == [
        "churn_label",
        "churn_probabilities",
        "tier_label",
        "tier_probabilities",
        "spend_value",
    ]


@pytest.mark.slow
def test_safe_pipeline_example():
    pytest.importorskip("skops")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns, printed = _run(TITLES.index("safe"))
    assert printed.strip() == "['sklearn_mtl._estimator.MultiTaskNeuralEstimator']"
    X = ns["X"]
    np.testing.assert_array_equal(ns["same"].predict(X), ns["pipe"].predict(X))
    np.testing.assert_array_equal(ns["restored"].predict(X), ns["pipe"].predict(X))
    assert type(ns["restored"][-1]).__name__ == "MultiTaskNeuralEstimator"

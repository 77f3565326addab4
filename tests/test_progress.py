"""Progress reporting: per-task history keys, the epoch table, the batch bar."""

import re

import numpy as np
import pandas as pd
import pytest

from sklearn_mtl import MultiTaskNeuralEstimator

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=100):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 3))
    y = pd.DataFrame({"churn": X[:, 0] > 0, "spend": 3 * X[:, 1]})
    return X, y


def _table(out):
    """Header names and the rows of numbers of skorch's printed table.

    skorch colours a value that is the best so far (``<key>_best``); the colour
    codes are dropped here.
    """
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out).strip().splitlines()
    assert set(lines[1]) <= {"-", " "}  # the rule under the header
    return lines[0].split(), [[float(v) for v in line.split()] for line in lines[2:]]


def test_history_has_a_key_per_task_whatever_the_verbosity(capsys):
    X, y = _data()
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(8,), max_iter=3, random_state=0
    ).fit(X, y)
    assert capsys.readouterr().out == ""
    history = est.engine_.history
    assert history[:, "train_loss_churn"] == est.task_loss_curves_["churn"]
    assert history[:, "train_loss_spend"] == est.task_loss_curves_["spend"]
    assert "valid_score_churn" not in history[-1]


def test_verbose_1_prints_one_line_per_epoch_with_each_task_loss(capsys):
    X, y = _data()
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(8,), max_iter=3, batch_size=20, random_state=0, verbose=1
    ).fit(X, y)
    captured = capsys.readouterr()
    header, rows = _table(captured.out)
    assert header == [
        "epoch",
        "train_loss",
        "train_loss_churn",
        "train_loss_spend",
        "dur",
    ]
    assert len(rows) == est.n_iter_ == 3
    for epoch, row in enumerate(rows):
        assert row[0] == epoch + 1
        assert row[1] == round(est.loss_curve_[epoch], 4)
        assert row[2] == round(est.task_loss_curves_["churn"][epoch], 4)
        assert row[3] == round(est.task_loss_curves_["spend"][epoch], 4)
    assert "batch" not in captured.err  # no progress bar at verbose=1


def test_verbose_1_with_early_stopping_prints_each_task_validation_score(capsys):
    X, y = _data()
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(8,),
        max_iter=4,
        random_state=0,
        verbose=True,
        early_stopping=True,
        validation_fraction=0.2,
    ).fit(X, y)
    header, rows = _table(capsys.readouterr().out)
    assert header == [
        "epoch",
        "train_loss",
        "train_loss_churn",
        "train_loss_spend",
        "valid_score",
        "valid_score_churn",
        "valid_score_spend",
        "valid_loss",
        "dur",
    ]
    assert len(rows) == est.n_iter_ == 4
    history = est.engine_.history
    for epoch, row in enumerate(rows):
        churn, spend = history[epoch, "valid_task_scores"]
        assert row[4] == round(est.validation_scores_[epoch], 4)
        assert row[5:7] == [round(churn, 4), round(spend, 4)]
        assert est.validation_scores_[epoch] == pytest.approx((churn + spend) / 2)
        assert row[7] == round(history[epoch, "valid_loss"], 4)


@pytest.mark.parametrize(
    "early_stopping, watched", [(True, "Validation score"), (False, "Training loss")]
)
def test_verbose_says_when_the_stopping_rule_ends_the_fit(
    early_stopping, watched, capsys
):
    X, y = _data()
    params = dict(
        hidden_layer_sizes=(8,),
        max_iter=20,
        random_state=0,
        early_stopping=early_stopping,
        tol=10.0,  # nothing after the first epoch counts as an improvement
        n_iter_no_change=1,
    )
    est = MultiTaskNeuralEstimator(**params, verbose=1).fit(X, y)
    *table, last = capsys.readouterr().out.strip().splitlines()
    # As MLPClassifier(verbose=True) says it, after the last epoch's row.
    assert last == (
        f"{watched} did not improve more than tol=10.000000 for 1 consecutive "
        "epochs. Stopping."
    )
    assert est.n_iter_ == 3
    assert len(_table("\n".join(table))[1]) == 3
    # Quiet without verbose, and no such line when max_iter ends the fit.
    MultiTaskNeuralEstimator(**params).fit(X, y)
    assert capsys.readouterr().out == ""
    MultiTaskNeuralEstimator(**dict(params, tol=0.0, max_iter=2), verbose=1).fit(X, y)
    assert "Stopping" not in capsys.readouterr().out


def test_task_names_with_an_array_y_and_a_single_task(capsys):
    X, y = _data()
    MultiTaskNeuralEstimator(hidden_layer_sizes=(8,), max_iter=2, verbose=1).fit(
        X, y.to_numpy(dtype=float)[:, 1]
    )
    header, rows = _table(capsys.readouterr().out)
    assert header == ["epoch", "train_loss", "train_loss_task_0", "dur"]
    assert [r[1] for r in rows] == [r[2] for r in rows]  # one task: same loss


def test_verbose_2_adds_a_progress_bar_over_batches(capsys):
    X, y = _data()
    MultiTaskNeuralEstimator(
        hidden_layer_sizes=(8,), max_iter=2, batch_size=20, random_state=0, verbose=2
    ).fit(X, y)
    captured = capsys.readouterr()
    header, rows = _table(captured.out)  # the table is unchanged
    assert header[:4] == ["epoch", "train_loss", "train_loss_churn", "train_loss_spend"]
    assert len(rows) == 2
    # one bar per epoch, over its 100 / 20 = 5 batches (tqdm may redraw a bar
    # several times on a slow machine: count distinct bars)
    bars = re.findall(r"epoch (\d): +\d+%\|.*?\| \d/(\d)", captured.err)
    assert sorted(set(bars)) == [("1", "5"), ("2", "5")]


def test_task_validation_scores_attribute_matches_the_history():
    X, y = _data()
    est = MultiTaskNeuralEstimator(
        hidden_layer_sizes=(8,), max_iter=3, random_state=0, early_stopping=True
    ).fit(X, y)
    history = est.engine_.history
    assert est.task_validation_scores_ == {
        "churn": history[:, "valid_score_churn"],
        "spend": history[:, "valid_score_spend"],
    }
    assert len(est.task_validation_scores_["churn"]) == est.n_iter_ == 3
    est.set_params(early_stopping=False).fit(X, y)
    assert est.task_validation_scores_ is None

"""Tasks: reading target columns, encoding, decoding, and the vectorised losses."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from sklearn_mtl import MultiTaskClassifier
from sklearn_mtl._tasks import (
    MultiTaskLoss,
    Task,
    TaskTargets,
    build_tasks,
    split_target_columns,
    stack_predictions,
)


def test_split_target_columns_forms():
    cols, names, is_1d = split_target_columns(np.array([1, 2, 3]))
    assert len(cols) == 1 and names is None and is_1d
    cols, names, is_1d = split_target_columns(np.zeros((4, 3)))
    assert len(cols) == 3 and names is None and not is_1d
    df = pd.DataFrame({"a": ["x", None, "y"], "b": [1.0, np.nan, 2.0]})
    cols, names, is_1d = split_target_columns(df)
    assert names == ["a", "b"] and not is_1d
    assert cols[0].dtype == object and cols[1].dtype == np.float64
    with pytest.raises(ValueError, match="y must be 1-D or 2-D"):
        split_target_columns(np.zeros((2, 2, 2)))


def test_build_tasks_kinds_classes_and_scaling():
    cols = [
        np.array(["b", "a", "b", "a"], dtype=object),
        np.array([0, 2, 1, 2]),
        np.array([1.5, 2.5, 3.5, 4.5]),
    ]
    tasks = build_tasks(cols, ["s", "m", "r"])
    s, m, r = tasks.tasks
    assert (s.kind, m.kind, r.kind) == ("binary", "multiclass", "regression")
    assert list(s.classes) == ["a", "b"] and list(m.classes) == [0, 1, 2]
    assert r.mean == pytest.approx(3.0) and r.scale == pytest.approx(np.std(cols[2]))
    assert tasks.output_widths == [1, 3, 1]
    assert list(tasks.offsets) == [0, 1, 4, 5]


def test_encode_targets_weights_and_normaliser():
    cols = [
        np.array(["b", None, "a", "b"], dtype=object),
        np.array([1.5, 2.0, np.nan, 4.25]),
    ]
    tasks = build_tasks(cols, ["s", "r"])
    assert tasks.tasks[1].kind == "regression"
    sw = np.array([1.0, 2.0, 3.0, 0.5])
    enc = tasks.encode(cols, sample_weight=sw, class_weight={"s": {"a": 4.0}}).packed
    assert enc.shape == (4, 6) and enc.dtype == np.float32
    # targets: class index / standardised value, 0 where missing
    np.testing.assert_array_equal(enc[:, 0], [1, 0, 0, 1])
    labelled = np.array([1.5, 2.0, 4.25])
    standard = (labelled - labelled.mean()) / labelled.std()
    np.testing.assert_allclose(enc[[0, 1, 3], 1], standard, rtol=1e-6)
    assert enc[2, 1] == 0.0
    # loss weight = mask * sample weight * class weight
    np.testing.assert_array_equal(enc[:, 2], [1.0, 0.0, 12.0, 0.5])
    np.testing.assert_array_equal(enc[:, 3], [1.0, 2.0, 0.0, 0.5])
    # normaliser = mask * sample weight
    np.testing.assert_array_equal(enc[:, 4], [1.0, 0.0, 3.0, 0.5])
    np.testing.assert_array_equal(enc[:, 5], [1.0, 2.0, 0.0, 0.5])


def test_decode_and_probabilities():
    t = Task("s", "binary", np.array(["no", "yes"], dtype=object))
    out = np.array([[-2.0], [0.5]])
    np.testing.assert_array_equal(t.decode(out), ["no", "yes"])
    p = t.probabilities(out)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-out[:, 0])))
    np.testing.assert_allclose(p.sum(1), 1)
    m = Task("m", "multiclass", np.array([10, 20, 30]))
    logits = np.array([[1.0, 3.0, 2.0]])
    np.testing.assert_array_equal(m.decode(logits), [20])
    np.testing.assert_allclose(
        m.probabilities(logits), torch.softmax(torch.tensor(logits), 1).numpy()
    )
    r = Task("r", "regression", None, mean=5.0, scale=2.0)
    np.testing.assert_allclose(r.decode(np.array([[1.0], [-0.5]])), [7.0, 4.0])


def test_unknown_labels_and_one_class_errors():
    tasks = build_tasks([np.array(["a", "b"])], ["t"])
    with pytest.raises(ValueError, match=r"Task 't' got labels \['c'\] that are not"):
        tasks.encode([np.array(["a", "c"])])
    with pytest.raises(ValueError, match="has only one class"):
        build_tasks([np.array([1, 1, 1])], ["t"])
    with pytest.raises(ValueError, match="Task 't' has no labelled rows"):
        build_tasks([np.array([np.nan, np.nan])], ["t"])
    with pytest.raises(ValueError, match="infinity in task 't'"):
        build_tasks([np.array([1.0, np.inf])], ["t"])


def test_vectorised_loss_equals_per_task_reference():
    torch.manual_seed(0)
    kinds, widths = ["binary", "multiclass", "regression", "binary"], [1, 3, 1, 1]
    loss = MultiTaskLoss(kinds, widths)
    n = 7
    out = torch.randn(n, 6)
    y = torch.stack(
        [
            torch.randint(0, 2, (n,)).float(),
            torch.randint(0, 3, (n,)).float(),
            torch.randn(n),
            torch.randint(0, 2, (n,)).float(),
        ],
        1,
    )
    mask = torch.rand(n, 4) > 0.3
    mask[0] = True  # every task has a label
    sw = torch.rand(n, 1) + 0.5
    weight, norm = mask * sw, mask * sw
    per_task, labelled = loss(out, TaskTargets(torch.cat([y, weight, norm], 1), 4))

    ref = [
        F.binary_cross_entropy_with_logits(out[:, 0], y[:, 0], reduction="none"),
        F.cross_entropy(out[:, 1:4], y[:, 1].long(), reduction="none"),
        0.5 * (out[:, 4] - y[:, 2]) ** 2,
        F.binary_cross_entropy_with_logits(out[:, 5], y[:, 3], reduction="none"),
    ]
    for t in range(4):
        expected = (ref[t] * weight[:, t]).sum() / norm[:, t].sum()
        torch.testing.assert_close(per_task[t], expected)
    torch.testing.assert_close(labelled, norm.sum(0))


def test_device_scores_match_sklearn():
    from sklearn.metrics import accuracy_score, r2_score

    torch.manual_seed(1)
    loss = MultiTaskLoss(["binary", "multiclass", "regression"], [1, 3, 1])
    n = 50
    out = torch.randn(n, 5)
    y = torch.stack(
        [
            torch.randint(0, 2, (n,)).float(),
            torch.randint(0, 3, (n,)).float(),
            torch.randn(n),
        ],
        1,
    )
    mask = (torch.rand(n, 3) > 0.2).float()
    scores = loss.scores(out, TaskTargets(torch.cat([y, mask, mask], 1), 3))
    keep = [mask[:, t].bool().numpy() for t in range(3)]
    acc0 = accuracy_score(y[keep[0], 0], (out[keep[0], 0] > 0).float())
    acc1 = accuracy_score(y[keep[1], 1], out[keep[1], 1:4].argmax(1))
    r2 = r2_score(y[keep[2], 2], out[keep[2], 4])
    np.testing.assert_allclose(scores.numpy(), [acc0, acc1, r2], rtol=1e-5)


def test_flat_classes_are_shared_by_every_classification_task():
    y0 = np.array([0, 0, 1])
    y1 = np.array([1, 1, 1])  # this batch shows one class only
    spend = np.array([0.5, 1.7, 2.9])
    tasks = build_tasks([y0, y1], ["a", "b"], classes=[0, 1])
    assert [t.kind for t in tasks.tasks] == ["binary", "binary"]
    for task in tasks.tasks:
        np.testing.assert_array_equal(task.classes, [0, 1])
    tasks = build_tasks([y0, y1], ["a", "b"], classes=np.array([0, 1, 2]))
    assert [t.classes.tolist() for t in tasks.tasks] == [[0, 1, 2], [0, 1, 2]]
    # a regression task (declared or inferred) keeps no classes
    for task_types in (None, {"s": "regression"}):
        tasks = build_tasks(
            [y0, spend, y1], ["a", "s", "b"], task_types, classes=[0, 1]
        )
        assert [t.kind for t in tasks.tasks] == ["binary", "regression", "binary"]
        assert tasks.tasks[1].classes is None
    with pytest.raises(ValueError, match=r"Task 'a': labels \[2\] are not in"):
        build_tasks([np.array([0, 2, 1]), y1], ["a", "b"], classes=[0, 1])
    # Tasks that show two labels or more each, none in common, cannot share
    # one list (learning_curve's np.unique(y) of a multi-task y).
    buy, tier = np.array(["no", "yes", "no"]), np.array(["f", "o", "r"])
    with pytest.raises(
        ValueError,
        match=r"tasks 'a' and 'b' share no label \(\['no', 'yes'\] and "
        r"\['f', 'o', 'r'\]\): give one array \(or None\) per task",
    ):
        build_tasks([buy, tier], ["a", "b"], classes=["f", "no", "o", "r", "yes"])
    # A list mixing booleans and numbers (True == 1) would merge label types;
    # numbers alone serve a bool task as they serve MLPClassifier.
    flag, level = np.array([True, False, True]), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="mixes booleans and numbers"):
        build_tasks([flag, level], ["a", "b"], classes=[False, True, 2])
    tasks = build_tasks([flag, level], ["a", "b"], classes=[0, 1, 2])
    assert [t.classes.tolist() for t in tasks.tasks] == [[0, 1, 2], [0, 1, 2]]
    # A regression task of counts inside the list is not its union.
    counts = np.array([1.0, 2.0, 3.0])
    tasks = build_tasks(
        [level, counts], ["a", "n"], {"n": "regression"}, classes=np.arange(5)
    )
    assert tasks.tasks[0].classes.tolist() == [0, 1, 2, 3, 4]
    # np.unique(y) of a y with a regression column holds its values.
    amount = np.array([0.5, 1.7, 2.9])
    with pytest.raises(ValueError, match="holds the values of the regression task"):
        build_tasks(
            [y0, amount], ["a", "s"], {"s": "regression"}, classes=[0, 0.5, 1, 1.7, 2.9]
        )
    # A missing marker in it (np.unique of a y with NaN) is not a label.
    tasks = build_tasks([y0, y1], ["a", "b"], classes=np.array([0.0, 1.0, np.nan]))
    assert [t.classes.tolist() for t in tasks.tasks] == [[0.0, 1.0], [0.0, 1.0]]
    # ... and leaves the labels' own dtype (not float64 for the NaN).
    tasks = build_tasks([y0, y1], ["a", "b"], classes=[0, 1, np.nan])
    assert tasks.tasks[0].classes.dtype.kind == "i"
    flags = np.array([True, False, True])
    tasks = build_tasks([flags, flags], ["a", "b"], classes=[False, True, np.nan])
    assert tasks.tasks[0].classes.dtype == bool
    # one entry per task is still read per task
    tasks = build_tasks([y0, y1], ["a", "b"], classes=[[0, 1], [1, 2, 3]])
    assert [t.classes.tolist() for t in tasks.tasks] == [[0, 1], [1, 2, 3]]
    with pytest.raises(ValueError, match="classes has 3 entries but y has 2 tasks"):
        build_tasks([y0, y1], ["a", "b"], classes=[[0, 1], [0, 1], [0, 1]])


@pytest.mark.parametrize(
    "preds, dtype, expected",
    [
        ([np.array([True, False]), np.array([False, True])], np.bool_, None),
        ([np.array([1, 2], np.int32), np.array([3, 4])], np.int64, None),
        ([np.array([1, 2], np.uint8), np.array([-3, 4])], np.int64, None),
        ([np.array([0.5, 1.0]), np.array([1.5, 2.0], np.float32)], np.float64, None),
        ([np.array(["a", "bb"]), np.array(["ccc", "d"])], np.dtype("<U3"), None),
        # mixed kinds: each keeps its exact values and type
        (
            [np.array([True, False]), np.array([1.25, 2.5])],
            object,
            [[True, 1.25], [False, 2.5]],
        ),
        (
            [np.array([2**60 + 1, 3]), np.array([0.5, 1.5])],
            object,
            [[2**60 + 1, 0.5], [3, 1.5]],
        ),
        (
            [np.array([2**63 + 1, 3], np.uint64), np.array([-1, 2])],
            object,
            [[2**63 + 1, -1], [3, 2]],
        ),
        ([np.array(["x", "y"]), np.array([7, 8])], object, [["x", 7], ["y", 8]]),
    ],
)
def test_stack_predictions_keeps_each_task_label_type(preds, dtype, expected):
    out = stack_predictions(preds)
    assert out.shape == (2, len(preds))
    assert out.dtype == dtype
    if expected is None:
        for j, p in enumerate(preds):
            np.testing.assert_array_equal(out[:, j], p)
        return
    assert out.tolist() == expected
    for j, p in enumerate(preds):
        assert [type(v) for v in out[:, j]] == [type(v) for v in p.tolist()]


def test_baseline_minimises_each_task_loss_by_hand():
    cols = [
        np.array(["b", None, "a", "b", "a"], dtype=object),
        np.array([0, 2, 1, 2, 2]),
        np.array([1.5, 2.0, np.nan, 4.25, 3.0]),
    ]
    tasks = build_tasks(cols, ["s", "m", "r"])
    sw = np.array([1.0, 2.0, 3.0, 0.5, 1.0])
    targets = tasks.encode(cols, sample_weight=sw, class_weight={"s": {"a": 4.0}})
    base = tasks.baseline(targets)
    assert len(base) == 1 + 3 + 1
    # binary: weighted share of "b" (rows 0, 3) against "a" (rows 2, 4, x4)
    p = (1.0 + 0.5) / (1.0 + 0.5 + 4 * 3.0 + 4 * 1.0)
    assert base[0] == pytest.approx(np.log(p / (1 - p)), rel=1e-12)
    # multiclass: log of each class's weighted share
    shares = np.array([1.0, 3.0, 2.0 + 0.5 + 1.0]) / sw.sum()
    np.testing.assert_allclose(base[1:4], np.log(shares), rtol=1e-12)
    # regression: weighted mean of the standardised values (float32 targets)
    r = tasks.tasks[2]
    z = (np.array([1.5, 2.0, 4.25, 3.0]) - r.mean) / r.scale
    w = np.array([1.0, 2.0, 0.5, 1.0])
    assert base[4] == pytest.approx(float(w @ z / w.sum()), abs=1e-6)
    assert base[4] != pytest.approx(0.0, abs=1e-3)  # the weights moved it


def test_baseline_clips_shares_and_handles_weightless_tasks():
    cols = [np.array([0, 1, 1, 1]), np.array([0.5, 1.5, 2.5, 3.5])]
    tasks = build_tasks(cols, ["s", "r"])
    # every row of class 0 weighs 0: the share is clipped, not log(0)
    targets = tasks.encode(cols, class_weight={"s": {0: 0.0}})
    assert tasks.baseline(targets)[0] == pytest.approx(np.log((1 - 1e-4) / 1e-4))
    # no labelled row of a task weighs anything: refused, naming the task
    weights = np.array([0.0, 0.0, 1.0, 1.0])
    cols[1] = np.array([0.5, 1.5, np.nan, np.nan])
    targets = tasks.encode(cols, sample_weight=weights)
    with pytest.raises(ValueError, match=r"^Task 'r' has labelled rows, but every"):
        tasks.baseline(targets)
    # "balanced" class weights make the classes' shares equal: logit 0
    targets = tasks.encode(cols, class_weight="balanced")
    assert tasks.baseline(targets)[0] == pytest.approx(0.0, abs=1e-6)


def test_loss_weight_sums_of_row_blocks_add_up_to_the_whole():
    # What a dask fit relies on: the baseline of summed blocks is the baseline
    # of all rows.
    rng = np.random.RandomState(0)
    cols = [
        rng.choice(np.array(["a", "b", None], dtype=object), 50),
        rng.randint(0, 3, 50),
        np.where(rng.rand(50) < 0.2, np.nan, rng.normal(size=50)),
    ]
    tasks = build_tasks(cols, ["s", "m", "r"])
    sw = rng.rand(50)
    # A dask fit resolves "balanced" from every block's counts first: a dict.
    cw = {"s": {"a": 2.5}, "m": {0: 0.5, 2: 3.0}}
    whole = tasks.loss_weight_sums(tasks.encode(cols, sw, cw))
    parts = [
        tasks.loss_weight_sums(tasks.encode([c[rows] for c in cols], sw[rows], cw))
        for rows in (slice(0, 20), slice(20, 20), slice(20, 50))
    ]
    for j in range(3):
        np.testing.assert_allclose(sum(p[j] for p in parts), whole[j], rtol=1e-12)
    assert tasks.baseline_from([sum(p[j] for p in parts) for j in range(3)]) == (
        pytest.approx(tasks.baseline_from(whole), rel=1e-12)
    )


@pytest.mark.parametrize(
    "labels, kind",
    [
        (np.array([b"no", b"yes"] * 5), "bytes"),
        (np.array([b"no", b"yes"] * 5, dtype=object), "bytes"),
        (pd.Series([[1, 2], [3]] * 5), "list"),
        (pd.Series([(1, 2), (3,)] * 5), "tuple"),
    ],
)
def test_labels_scikit_learn_cannot_score_are_refused_at_fit(labels, kind):
    # np.unique sorts them, but score (sklearn's metrics) would refuse them;
    # numpy dates stay labels, as for MLPClassifier.
    X = np.random.RandomState(0).normal(size=(10, 2))
    with pytest.raises(TypeError, match=f"Task 'task_0' has labels of type {kind}"):
        MultiTaskClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(X, labels)
    dates = np.array([0, 1] * 5).astype("datetime64[D]")
    est = MultiTaskClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(X, dates)
    assert 0 <= est.score(X, dates) <= 1

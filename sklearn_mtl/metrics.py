"""Per-task scoring: every scikit-learn metric, for each task of a multi-task model.

A multi-task model predicts several targets; scikit-learn's scorers see one ``y``.
This module scores each task on its own column of ``y``, inside scikit-learn's
model-selection tools, unchanged:

- :func:`make_task_scorer` scores one task with one metric: a scorer
  ``(estimator, X, y) -> float`` for ``GridSearchCV(scoring=...)``,
  ``cross_validate``, ``cross_val_score``, ``permutation_importance``,
  ``validation_curve``.
- :func:`make_multitask_scorer` scores every task with several metrics from one
  forward pass of the network: a scorer returning ``{"<task>_<metric>": score}``.
- :func:`per_task_report` is a table of the standard metrics of every task.
- :func:`transfer_report` answers "should these tasks be learned together?":
  per task, the cross-validated gain of the joint model over single-task
  copies of it, with a confidence interval and a verdict.

Rows whose label is missing for a task (NaN / None) are left out of that task's
score. The scorers accept the fitted estimator itself or a ``Pipeline`` ending in
one: the steps before it transform ``X``, then the network runs once.
"""

from __future__ import annotations

import numbers
import warnings
from functools import lru_cache
from inspect import signature

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import get_scorer, get_scorer_names
from sklearn.utils.metadata_routing import (
    MetadataRequest,
    _MetadataRequester,
    _routing_enabled,
)

from . import _dask
from ._engine import BlockDataset, MultiTaskEngine, TaskDataset
from ._estimator import _BaseMultiTask, check_rows, fitted_multitask
from ._tasks import (
    _labelled_values,
    per_task_class_weight,
    scalar,
    split_target_columns,
)

__all__ = [
    "make_task_scorer",
    "make_multitask_scorer",
    "per_task_report",
    "transfer_report",
]


# --------------------------------------------------------------------------- metrics
@lru_cache(maxsize=1)
def _score_based_functions() -> tuple:
    """scikit-learn metric functions whose named scorers read probabilities."""
    return tuple(
        {
            scorer._score_func
            for scorer in map(get_scorer, get_scorer_names())
            if _needs_scores(scorer._response_method)
        }
    )


def _needs_scores(response_method) -> bool:
    if isinstance(response_method, str):
        response_method = (response_method,)
    return "predict" not in response_method


def _metric_kind(score_func) -> str | None:
    """ "regression", "classification", or None (a user function: any task)."""
    module = getattr(score_func, "__module__", None) or ""
    if module.startswith("sklearn.metrics._regression"):
        return "regression"
    if module.startswith("sklearn.metrics"):
        return "classification"
    return None


def _plain(values: np.ndarray) -> np.ndarray:
    """An object array of labels as an array of their own type (for the metrics)."""
    values = np.asarray(values)
    if values.dtype.kind == "O" and values.size:
        plain = np.asarray(values.tolist())
        if plain.shape == values.shape and plain.dtype.kind in "biufUS":
            return plain
    return values


class _TaskData:
    """One task's labelled rows: truth, predictions, probabilities, weights."""

    def __init__(self, task, outputs, column, sample_weight):
        values, missing = _labelled_values(column, task.name)
        keep = ~missing
        self.task = task
        self.n_labelled = int(keep.sum())
        self.y_true = _plain(values[keep])
        self.y_pred = _plain(task.decode(outputs)[keep])
        self.proba = (
            task.probabilities(outputs)[keep] if task.is_classification else None
        )
        self.sample_weight = (
            None if sample_weight is None else np.asarray(sample_weight)[keep]
        )
        self.classes = None if task.classes is None else _plain(task.classes)


class _Metric:
    """A metric function with its sign, arguments and response (picklable).

    ``kwargs`` are the named scorer's own arguments (e.g. ``average="macro"``
    for ``"f1_macro"``), ``user_kwargs`` those given by the user; the defaults
    of a task (positive label, ``average="macro"``) never override either.
    """

    def __init__(self, name, score_func, sign, kwargs, user_kwargs, needs_proba):
        self.name = name
        self.score_func = score_func
        self.sign = sign
        self.kwargs = dict(kwargs)
        self.user_kwargs = dict(user_kwargs)
        self.needs_proba = needs_proba
        self.kind = "classification" if needs_proba else _metric_kind(score_func)

    @classmethod
    def from_scoring(cls, scoring, user_kwargs=None) -> _Metric:
        user_kwargs = user_kwargs or {}
        if isinstance(scoring, str):
            scorer = get_scorer(scoring)  # ValueError naming an unknown scorer
            name = scoring
        elif hasattr(scoring, "_score_func") and hasattr(scoring, "_sign"):
            scorer = scoring  # a scorer made by sklearn.metrics.make_scorer
            name = getattr(scorer._score_func, "__name__", "score")
        elif callable(scoring):
            name = getattr(scoring, "__name__", type(scoring).__name__)
            needs = scoring in _score_based_functions()
            return cls(name, scoring, 1, {}, user_kwargs, needs)
        else:
            raise TypeError(
                "scoring must be a scikit-learn scorer name (e.g. 'f1_macro'), a "
                f"metric function (y_true, y_pred) or a scorer, got {scoring!r}."
            )
        return cls(
            name,
            scorer._score_func,
            scorer._sign,
            scorer._kwargs,
            user_kwargs,
            _needs_scores(scorer._response_method),
        )

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.user_kwargs.items())
        return f"{self.name}{args}" if not args else f"{self.name}({args[2:]})"

    def check(self, task) -> None:
        """Raise a ValueError when this metric cannot score ``task``."""
        if task.kind == "regression":
            if self.needs_proba:
                raise ValueError(
                    f"Metric {self.name!r} needs predicted probabilities "
                    f"(predict_proba), but task {task.name!r} is a regression task, "
                    "which has no probabilities."
                )
            if self.kind == "classification":
                raise ValueError(
                    f"Metric {self.name!r} is a classification metric, but task "
                    f"{task.name!r} is a regression task."
                )
        elif self.kind == "regression":
            raise ValueError(
                f"Metric {self.name!r} is a regression metric, but task "
                f"{task.name!r} is a {task.kind} classification task."
            )

    def _arguments(self, data: _TaskData) -> dict:
        """The metric's keyword arguments with this task's defaults filled in."""
        params = signature(self.score_func).parameters
        kwargs = {**self.kwargs, **self.user_kwargs}
        task = data.task
        if not task.is_classification:
            return kwargs
        # precision / recall / F1 / jaccard: set-wise metrics, "binary" by default
        set_wise = "average" in params and params["average"].default == "binary"
        average = kwargs.get("average", "binary")
        if task.kind == "multiclass" and set_wise and average == "binary":
            if "average" not in self.user_kwargs:
                kwargs["average"] = average = "macro"
        if (
            task.kind == "binary"
            and "pos_label" in params
            and "pos_label" not in kwargs
            and not (set_wise and average != "binary")
        ):
            kwargs["pos_label"] = scalar(data.classes[1])
        if self.needs_proba:
            if task.kind == "multiclass" and "multi_class" in params:
                kwargs.setdefault("multi_class", "ovr")
            if "labels" in params:  # columns of predict_proba, whatever the fold
                kwargs.setdefault("labels", data.classes)
        return kwargs

    def value(self, data: _TaskData) -> float:
        """The metric on the task's labelled rows, without the scorer's sign."""
        self.check(data.task)
        if data.n_labelled == 0:
            warnings.warn(
                f"Task {data.task.name!r} has no labelled rows in y; its "
                f"{self.name!r} score is NaN.",
                UndefinedMetricWarning,
                stacklevel=3,
            )
            return float("nan")
        kwargs = self._arguments(data)
        y_pred = data.y_pred
        if self.needs_proba:
            y_pred = data.proba
            if data.task.kind == "binary":
                pos = kwargs.get("pos_label", scalar(data.classes[1]))
                column = np.flatnonzero(data.classes == pos)
                if column.size != 1:
                    raise ValueError(
                        f"pos_label={pos!r} is not a class of task "
                        f"{data.task.name!r}; its classes are "
                        f"{data.classes.tolist()}."
                    )
                y_pred = y_pred[:, column[0]]
        if data.sample_weight is not None:
            kwargs["sample_weight"] = data.sample_weight
        return float(self.score_func(data.y_true, y_pred, **kwargs))

    def score(self, data: _TaskData) -> float:
        """The metric with the scorer's sign (greater is better)."""
        return self.sign * self.value(data)


# --------------------------------------------------------------------------- models
class _EngineView:
    """A training engine seen as a fitted model, for skorch's ``EpochScoring``.

    ``EpochScoring`` calls a scorer with the engine and its validation (or
    training) :class:`TaskDataset`; the labels come from the dataset.
    """

    def __init__(self, engine):
        self.engine = engine
        self.tasks_ = engine.tasks

    def _outputs(self, X) -> np.ndarray:
        if not isinstance(X, TaskDataset):
            raise TypeError(
                "A scorer called with the training engine (skorch's EpochScoring) "
                f"needs the engine's dataset, got {type(X).__name__}."
            )
        return self.engine.forward_outputs(X.X).cpu().numpy()


def _unwrap(estimator):
    """The fitted multi-task estimator and the transforms before it (Pipelines)."""
    if isinstance(estimator, MultiTaskEngine):
        return _EngineView(estimator), []
    return fitted_multitask(estimator, "sklearn_mtl.metrics scorers")


def _forward(model, transforms, X) -> np.ndarray:
    """The network outputs for X: the transforms, then ONE forward pass."""
    for transform in transforms:
        X = transform.transform(X)
    return model._outputs(X)


def _evaluate(model, transforms, X, y, sample_weight=None):
    """The network outputs for X, each task's column of y, and the weights.

    Dask collections are computed in one pass, as ``score`` computes them:
    the network runs block by block, and only its outputs, y and the weights
    are gathered, never X.
    """
    if not _dask.is_collection(X, y, sample_weight):
        columns = _task_columns(model, y, X)  # before running the network
        if not isinstance(X, TaskDataset | BlockDataset):
            sample_weight = check_rows(X, columns[0], sample_weight)
        return _forward(model, transforms, X), columns, sample_weight
    for transform in transforms:
        X = transform.transform(X)
    if _dask.is_collection(X):
        outputs, y, sample_weight = _dask.gather_outputs(model, X, y, sample_weight)
    else:
        import dask

        (y, sample_weight), outputs = dask.compute(y, sample_weight), model._outputs(X)
    columns = _task_columns(model, y)
    return outputs, columns, check_rows(outputs, columns[0], sample_weight)


def _task_index(model, task) -> int:
    names = list(model.tasks_.names)
    if isinstance(task, str):
        if task not in names:
            raise ValueError(f"Unknown task {task!r}; the model's tasks are {names}.")
        return names.index(task)
    if not -len(names) <= task < len(names):
        raise ValueError(
            f"Task index {task} is out of range for a model with {len(names)} "
            f"tasks {names}."
        )
    return task % len(names)


def _task_columns(model, y, X=None) -> list[np.ndarray]:
    """One column of ``y`` per task (a DataFrame's columns are matched by name).

    From skorch's ``EpochScoring`` ``y`` is None and the labels are decoded from
    the engine's dataset ``X``.
    """
    if y is None and isinstance(X, TaskDataset):
        return model.tasks_.decode_targets(X.y)
    if y is None and isinstance(X, BlockDataset):
        raise TypeError(
            "A per-task scorer in EpochScoring(on_train=True) needs the training "
            "labels, which a streamed (dask) fit reads block by block and does "
            "not keep; score on the validation split (on_train=False, with "
            "early_stopping) instead."
        )
    return model.tasks_.match_columns(y)


# --------------------------------------------------------------------------- scorers
class _RoutedScorer(_MetadataRequester):
    """Metadata routing of a scorer, as scikit-learn's own scorers do.

    With ``sklearn.set_config(enable_metadata_routing=True)``, a meta-estimator
    (``cross_validate``, ``GridSearchCV``, ...) passes ``sample_weight`` to the
    scorer once it is requested with ``scorer.set_score_request(sample_weight=True)``.
    """

    def set_score_request(self, **kwargs):
        """Set the metadata this scorer requests (``sample_weight``).

        Only available with ``sklearn.set_config(enable_metadata_routing=True)``.

        Parameters
        ----------
        **kwargs : dict
            ``param_name=alias`` with alias one of ``{True, False, None, str}``.

        Returns
        -------
        self : object
            The scorer.
        """
        if not _routing_enabled():
            raise RuntimeError(
                "This method is only available when metadata routing is enabled."
                " You can enable it using"
                " sklearn.set_config(enable_metadata_routing=True)."
            )
        unknown = set(kwargs) - {"sample_weight"}
        if unknown:
            raise TypeError(
                f"Unexpected args: {sorted(unknown)}; the scorer accepts "
                "sample_weight only."
            )
        self._metadata_request = MetadataRequest(owner=self)
        for param, alias in kwargs.items():
            self._metadata_request.score.add_request(param=param, alias=alias)
        return self

    def _get_metadata_request(self):
        if hasattr(self, "_metadata_request"):
            return self._metadata_request
        request = MetadataRequest(owner=self)
        # Like make_scorer's: sample_weight is accepted, not requested by default.
        request.score.add_request(param="sample_weight", alias=None)
        return request

    def _accept_sample_weight(self) -> bool:
        # scikit-learn's multi-metric scorer asks this when routing is disabled.
        return True

    def _routing_repr(self):
        return repr(self)


class _TaskScorer(_RoutedScorer):
    """Scorer of one task with one metric; see :func:`make_task_scorer`."""

    def __init__(self, task, metric: _Metric):
        self.task = task
        self.metric = metric

    def __call__(self, estimator, X, y_true, sample_weight=None) -> float:
        model, transforms = _unwrap(estimator)
        i = _task_index(model, self.task)
        task = model.tasks_.tasks[i]
        self.metric.check(task)  # before running the network
        outputs, columns, sample_weight = _evaluate(
            model, transforms, X, y_true, sample_weight
        )
        outputs = model.tasks_.slice(outputs, i)
        return self.metric.score(_TaskData(task, outputs, columns[i], sample_weight))

    @property
    def __name__(self) -> str:
        """``<task>_<metric>``: the name skorch's ``EpochScoring`` records
        it under when given no ``name``."""
        return f"{self.task}_{self.metric.name}"

    def __repr__(self):
        return f"make_task_scorer({self.task!r}, {self.metric!r})"


class _MultiTaskScorer(_RoutedScorer):
    """Scorer of every task with several metrics; see :func:`make_multitask_scorer`."""

    def __init__(self, metrics: dict, regression_metrics: dict):
        self.metrics = metrics
        self.regression_metrics = regression_metrics

    def __call__(self, estimator, X, y_true, sample_weight=None) -> dict:
        model, transforms = _unwrap(estimator)
        outputs, columns, sample_weight = _evaluate(
            model, transforms, X, y_true, sample_weight
        )
        scores = {}
        for i, task in enumerate(model.tasks_.tasks):
            metrics = (
                self.metrics if task.is_classification else self.regression_metrics
            )
            if not metrics:
                continue
            data = _TaskData(
                task, model.tasks_.slice(outputs, i), columns[i], sample_weight
            )
            for key, metric in metrics.items():
                scores[f"{task.name}_{key}"] = metric.score(data)
        return scores

    def __repr__(self):
        return (
            f"make_multitask_scorer(metrics={list(self.metrics)}, "
            f"regression_metrics={list(self.regression_metrics)})"
        )


def _named_metrics(metrics, param: str, kind: str) -> dict:
    """``{key: _Metric}`` from a name, a callable, a sequence or a dict of them."""
    if metrics is None:
        return {}
    if isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    if isinstance(metrics, dict):
        items = list(metrics.items())
    else:
        items = []
        for m in metrics:
            key = m if isinstance(m, str) else None
            items.append((key, m))
    out = {}
    for key, scoring in items:
        metric = _Metric.from_scoring(scoring)
        key = metric.name if key is None else str(key)
        if key in out:
            raise ValueError(f"{param} names the metric {key!r} twice.")
        wrong = "regression" if kind == "classification" else "classification"
        if metric.kind == wrong:
            raise ValueError(
                f"{param} is scored on {kind} tasks, but {key!r} is a {wrong} "
                f"metric; put it in "
                f"{'regression_metrics' if wrong == 'regression' else 'metrics'}."
            )
        out[key] = metric
    return out


def make_task_scorer(task: str | int, scoring, **kwargs) -> _TaskScorer:
    """Make a scorer of ONE task of a multi-task model.

    Parameters
    ----------
    task : str or int
        The task, by name (a column of the DataFrame ``y`` the model was fitted
        on, or ``"task_<i>"``) or by index.
    scoring : str or callable
        A scikit-learn scorer name (:func:`sklearn.metrics.get_scorer_names`:
        ``"accuracy"``, ``"f1"``, ``"f1_macro"``, ``"recall_weighted"``,
        ``"roc_auc"``, ``"neg_log_loss"``, ``"r2"``,
        ``"neg_root_mean_squared_error"``, ...); a metric function
        ``metric(y_true, y_pred, **kwargs)`` that gets the task's predicted
        labels or values (scikit-learn's probability metrics, such as
        :func:`~sklearn.metrics.roc_auc_score`, get the task's probabilities);
        or a scorer made by :func:`sklearn.metrics.make_scorer`, whose
        ``response_method``, sign and arguments are kept.
    **kwargs
        Arguments of the metric (``pos_label``, ``average``, ``beta``, ...).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None) -> float``, greater is
        better (the ``neg_*`` scorers are negated, as in scikit-learn). The
        estimator is a fitted sklearn-mtl estimator or a ``Pipeline`` ending in
        one; ``y`` is the DataFrame or array the model was fitted on (1-D for
        one task). Picklable.

    Notes
    -----
    - Rows whose label is missing for the task (NaN / None) are left out.
    - A binary task's positive label is its second class (in ``classes_``
      order) unless ``pos_label`` is given; probability metrics read that
      class's ``predict_proba`` column.
    - Precision, recall, F1 and Jaccard on a multiclass task default to
      ``average="macro"``; ROC AUC on a multiclass task to ``multi_class="ovr"``.
    - Probability metrics get the task's classes as ``labels``, so a fold that
      lacks a class is still scored against every ``predict_proba`` column.
    - A ``ValueError`` names the task when it is unknown, or when the metric
      does not fit the task's kind (a classification metric on a regression
      task, a regression metric on a classification task, a probability metric
      on a task without probabilities).
    - Each scorer runs the network once per call; to score many tasks and
      metrics with one forward pass use :func:`make_multitask_scorer`.
    - With ``sklearn.set_config(enable_metadata_routing=True)``,
      ``scorer.set_score_request(sample_weight=True)`` makes ``cross_validate``,
      ``GridSearchCV`` and friends pass the routed ``sample_weight`` to it, as
      they do to :func:`sklearn.metrics.make_scorer`'s scorers.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskClassifier
    >>> from sklearn_mtl.metrics import make_task_scorer
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 4))
    >>> y = np.column_stack([X[:, 0] > 0, (X[:, 1] > 0) + (X[:, 2] > 0)])
    >>> clf = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=5,
    ...                           random_state=0).fit(X, y)
    >>> f1_first = make_task_scorer(0, "f1")
    >>> 0.0 <= f1_first(clf, X, y) <= 1.0
    True
    """
    if isinstance(task, bool) or not isinstance(task, str | numbers.Integral):
        raise TypeError(f"task must be a task name or index, got {task!r}.")
    task = task if isinstance(task, str) else int(task)
    return _TaskScorer(task, _Metric.from_scoring(scoring, kwargs))


def make_multitask_scorer(
    metrics=("accuracy", "recall", "f1"), regression_metrics=("r2",)
) -> _MultiTaskScorer:
    """Make one scorer of every task with several metrics, from ONE forward pass.

    Parameters
    ----------
    metrics : sequence or dict, default=("accuracy", "recall", "f1")
        Metrics of every classification task: scikit-learn scorer names,
        metric functions or scorers (as in :func:`make_task_scorer`), or a dict
        ``{key: metric}`` to name them. ``None`` or ``()`` for none.
    regression_metrics : sequence or dict, default=("r2",)
        Metrics of every regression task, likewise.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None) -> dict`` with keys
        ``"<task>_<metric>"``, for ``GridSearchCV(scoring=scorer,
        refit="<task>_<metric>")`` and ``cross_validate`` (whose results gain
        ``"test_<task>_<metric>"`` keys). The network runs once per call (for a
        ``Pipeline``, its steps before the estimator transform ``X`` once).
        Each task's defaults are those of :func:`make_task_scorer`. Picklable;
        ``set_score_request(sample_weight=True)`` under metadata routing, as
        :func:`make_task_scorer`.

    Raises
    ------
    ValueError
        When a regression metric is among ``metrics``, a classification or
        probability metric among ``regression_metrics``, or a name is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskClassifier
    >>> from sklearn_mtl.metrics import make_multitask_scorer
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 4))
    >>> y = np.column_stack([X[:, 0] > 0, (X[:, 1] > 0) + (X[:, 2] > 0)])
    >>> clf = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=5,
    ...                           random_state=0).fit(X, y)
    >>> sorted(make_multitask_scorer(metrics=("accuracy", "f1"))(clf, X, y))
    ['task_0_accuracy', 'task_0_f1', 'task_1_accuracy', 'task_1_f1']
    """
    return _MultiTaskScorer(
        _named_metrics(metrics, "metrics", "classification"),
        _named_metrics(regression_metrics, "regression_metrics", "regression"),
    )


_REPORT_CLASSIFICATION = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "roc_auc": "roc_auc",
}
_REPORT_REGRESSION = {
    "r2": "r2",
    "mae": "neg_mean_absolute_error",
    "rmse": "neg_root_mean_squared_error",
}
REPORT_COLUMNS = (
    ["task", "kind", "n_labelled"]
    + list(_REPORT_CLASSIFICATION)
    + list(_REPORT_REGRESSION)
)


def _pandas():
    """pandas, or None when it is not installed (it is an optional extra)."""
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def per_task_report(estimator, X, y, sample_weight=None):
    """Table of the standard metrics of every task, from one forward pass.

    Parameters
    ----------
    estimator : fitted sklearn-mtl estimator, or Pipeline ending in one
    X : array-like of shape (n_samples, n_features)
    y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
        The true labels / values; missing labels (NaN / None) are left out of
        their task's metrics.
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    report : pandas.DataFrame or list of dict
        One row per task, indexed by task name, with columns ``kind``,
        ``n_labelled`` (labelled rows used) and the metrics: accuracy,
        balanced_accuracy, precision, recall, f1 and roc_auc for
        classification tasks; r2, mae and rmse for regression tasks; NaN where
        a metric does not apply (or, for ROC AUC, is undefined, e.g. one class
        in ``y``). Precision, recall and F1 are of the positive (second) class
        for binary tasks and macro averages for multiclass tasks; multiclass
        ROC AUC is one-vs-rest. Without pandas, a list of dicts, one per task,
        with the keys ``task``, ``kind``, ``n_labelled`` and the metrics.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskNeuralEstimator
    >>> from sklearn_mtl.metrics import per_task_report
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 4))
    >>> y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2]])
    >>> est = MultiTaskNeuralEstimator(hidden_layer_sizes=(8,), max_iter=5,
    ...                                random_state=0).fit(X, y)
    >>> report = per_task_report(est, X, y)
    >>> report[["kind", "n_labelled"]].values.tolist()
    [['binary', 100], ['regression', 100]]
    """
    model, transforms = _unwrap(estimator)
    outputs, columns, sample_weight = _evaluate(model, transforms, X, y, sample_weight)
    metrics = {
        kind: {k: _Metric.from_scoring(s) for k, s in table.items()}
        for kind, table in (
            ("classification", _REPORT_CLASSIFICATION),
            ("regression", _REPORT_REGRESSION),
        )
    }
    rows = []
    for i, task in enumerate(model.tasks_.tasks):
        block = model.tasks_.slice(outputs, i)
        data = _TaskData(task, block, columns[i], sample_weight)
        row = dict.fromkeys(REPORT_COLUMNS, float("nan"))
        row.update(task=task.name, kind=task.kind, n_labelled=data.n_labelled)
        kind = "classification" if task.is_classification else "regression"
        for key, metric in metrics[kind].items():
            try:
                row[key] = metric.value(data)
            except ValueError:  # undefined here, e.g. ROC AUC with one class
                if key != "roc_auc":
                    raise
        rows.append(row)
    pd = _pandas()
    if pd is None:
        return rows
    return pd.DataFrame.from_records(rows, columns=REPORT_COLUMNS).set_index("task")


# --------------------------------------------------------------------------- transfer
TRANSFER_SCORING = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
VERDICTS = ("helps", "no difference", "hurts (negative transfer)")
TRANSFER_COLUMNS = [
    "kind",
    "metric",
    "n_labelled",
    "joint",
    "single",
    "gain",
    "ci_low",
    "ci_high",
    "verdict",
    "joint_per_fold",
    "single_per_fold",
]


def _final_estimator(estimator):
    """The sklearn-mtl estimator at the end of ``estimator``, and its param prefix."""
    prefix = ""
    while hasattr(estimator, "steps") and hasattr(estimator, "__getitem__"):
        name, estimator = estimator.steps[-1]
        prefix += f"{name}__"
    if not isinstance(estimator, _BaseMultiTask):
        raise TypeError(
            "transfer_report compares joint and single-task training of a "
            "sklearn-mtl estimator (or a Pipeline ending in one), got "
            f"{type(estimator).__name__}."
        )
    return estimator, prefix


def _single_task_params(model, names, i) -> dict:
    """The per-task parameters of ``model`` restricted to task ``names[i]``."""
    name = names[i]
    params = model.get_params(deep=False)
    out = {}
    if "task_types" in params:
        types = params["task_types"] or {}
        out["task_types"] = {name: types[name]} if name in types else None
    weights = params["task_weights"]
    if isinstance(weights, dict):
        out["task_weights"] = {name: weights[name]} if name in weights else None
    if "class_weight" in params:
        cw = per_task_class_weight(params["class_weight"], names)[i]
        # "balanced" stays a string: it applies to a classification task and
        # leaves a regression task alone (a dict entry for one is refused).
        out["class_weight"] = (
            None if cw is None else cw if cw == "balanced" else {name: cw}
        )
    return out


def _transfer_metrics(scoring, tasks) -> list[_Metric]:
    """One metric per task: ``scoring`` given once, per kind or per task name."""
    names = list(tasks.names)
    if scoring is None:
        scoring = {}
    if not isinstance(scoring, dict):
        scoring = dict.fromkeys(names, scoring)
    unknown = [k for k in scoring if k not in names and k not in TRANSFER_SCORING]
    if unknown:
        raise ValueError(
            f"scoring has keys {unknown} that are neither tasks {names} nor task "
            f"kinds {list(TRANSFER_SCORING)}."
        )
    metrics = []
    for task in tasks.tasks:
        chosen = scoring.get(
            task.name, scoring.get(task.kind, TRANSFER_SCORING[task.kind])
        )
        metric = _Metric.from_scoring(chosen)
        metric.check(task)  # a wrong kind fails before any fit
        metrics.append(metric)
    return metrics


def _fit_and_score_tasks(estimator, X, y, train, test, tasks, metrics):
    """Fit ``estimator`` on the train rows of ``y``'s columns ``tasks``; score them.

    Every fit sees all the train rows (a row without a label for a task adds
    nothing to that task's loss), so joint and single-task models take the same
    batches and optimizer steps, and hold out the same validation rows.
    Returns the scores on the test rows, in the
    order of ``tasks``.
    """
    from sklearn.utils import _safe_indexing

    from ._estimator import unstratified_validation

    y_tasks = y[list(tasks)]
    try:
        # Early stopping holds out the same rows in every model of the fold
        # (a single classification task would stratify its own).
        with unstratified_validation():
            estimator.fit(_safe_indexing(X, train), y_tasks.iloc[train])
    except ValueError as exc:
        # E.g. a task with one class, or none labelled, in this fold's training
        # rows: the fold gives no score (as cross_validate's error_score=nan).
        return [float("nan")] * len(tasks), [f"fit failed: {exc}"]
    model, transforms = _unwrap(estimator)
    outputs = _forward(model, transforms, _safe_indexing(X, test))
    columns = _task_columns(model, y_tasks.iloc[test])
    scores, failures = [], []
    for i, (task, metric) in enumerate(zip(model.tasks_.tasks, metrics)):
        data = _TaskData(task, model.tasks_.slice(outputs, i), columns[i], None)
        try:
            scores.append(metric.score(data))
        except ValueError as exc:
            # E.g. a class of the test rows missing from the training rows,
            # which a metric needing every class's probability cannot score.
            scores.append(float("nan"))
            failures.append(f"scoring {task.name!r} failed: {exc}")
    return scores, failures


def _mean_defined(scores: np.ndarray) -> float:
    """The mean of the defined (finite) scores; NaN, quietly, when none is."""
    defined = scores[np.isfinite(scores)]
    return float(defined.mean()) if defined.size else float("nan")


def _verdict(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undetermined"
    if low > 0:
        return VERDICTS[0]
    if high < 0:
        return VERDICTS[2]
    return VERDICTS[1]


def transfer_report(
    estimator,
    X,
    y,
    *,
    cv=5,
    scoring=None,
    groups=None,
    confidence: float = 0.95,
    n_jobs: int | None = None,
    random_state=None,
):
    """Should these tasks be learned together? Joint versus single-task, per task.

    In each cross-validation fold, fits a clone of ``estimator`` on every task
    (the joint model) and, for each task, a clone with the same settings on that
    task alone (trained on the rows labelled for it), then scores every task on
    the fold's test rows with both. The gain of joint training is the paired
    difference of the two scores, fold by fold.

    Parameters
    ----------
    estimator : sklearn-mtl estimator, or Pipeline ending in one
        The model to study; it is cloned, never fitted itself. Per-task
        parameters (``task_types``, ``task_weights``, ``class_weight``) are
        restricted to the task of each single-task clone. Set its
        ``random_state`` for a reproducible report.
    X : array-like or DataFrame of shape (n_samples, n_features)
    y : array-like or DataFrame of shape (n_samples, n_tasks)
        At least two tasks. Missing labels (NaN / None) are left out of their
        task's training (single-task clones) and scores (every model).
    cv : int, cross-validation generator or iterable, default=5
        An int is the number of folds of ``KFold(cv, shuffle=True,
        random_state=random_state)``; otherwise as in
        :func:`sklearn.model_selection.cross_validate`. At least two folds.
    scoring : str, callable, or dict, default=None
        The metric of every task (as ``scoring`` of :func:`make_task_scorer`),
        or a dict whose keys are task names or task kinds (``"binary"``,
        ``"multiclass"``, ``"regression"``). Unset tasks get the default of
        their kind: ROC AUC (binary), accuracy (multiclass), R² (regression).
        Scores are those of scikit-learn's scorers: greater is better
        (``neg_*`` scorers are negated).
    groups : array-like of shape (n_samples,), default=None
        Group labels for a group-aware ``cv`` (``GroupKFold``, ...).
    confidence : float, default=0.95
        Confidence level of the interval of the gain.
    n_jobs : int, default=None
        Fits run in parallel with joblib: ``n_folds * (n_tasks + 1)`` of them.
        ``None`` means 1, ``-1`` all processors.
    random_state : int, RandomState instance or None, default=None
        Shuffling of the folds when ``cv`` is an int.

    Returns
    -------
    report : pandas.DataFrame
        One row per task, indexed by task name, with columns

        - ``kind``, ``metric`` (the metric's name), ``n_labelled`` (labelled rows
          of the task in ``y``);
        - ``joint``, ``single``: the mean score of the joint model and of the
          single-task model, over the folds where both are defined (those
          the gain is taken on);
        - ``gain``: ``joint - single``, the mean paired difference;
        - ``ci_low``, ``ci_high``: its ``confidence`` interval (see Notes);
        - ``verdict``: ``"helps"`` when the interval lies above 0,
          ``"hurts (negative transfer)"`` when it lies below 0, else
          ``"no difference"``; ``"undetermined"`` with fewer than two folds
          where both scores are defined (a fold whose fit fails or whose
          score is undefined scores NaN, with a warning);
        - ``joint_per_fold``, ``single_per_fold``: the scores of each fold
          (tuples).

    Raises
    ------
    TypeError
        When ``estimator`` is not a sklearn-mtl estimator or a Pipeline ending
        in one.
    ValueError
        When ``y`` has fewer than two tasks, ``cv`` yields fewer than two
        folds or is invalid, ``confidence`` is not in (0, 1), ``scoring``
        names an unknown task or kind or a metric that does not fit a task, or
        every fit of the joint model fails (its first error).

    Notes
    -----
    The interval is Student's t-interval on the paired per-fold differences
    ``d_k = joint_k - single_k`` over the ``K`` folds where both are defined:
    ``mean(d) ± t_{(1 + confidence) / 2, K - 1} * std(d, ddof=1) / sqrt(K)``.
    Folds share training rows, so the differences are not independent and
    the interval is somewhat optimistic (Nadeau & Bengio, 2003); read a
    ``"helps"`` or ``"hurts"`` that barely excludes 0 with care, and prefer more
    folds (or ``RepeatedKFold``) when it matters.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskNeuralEstimator
    >>> from sklearn_mtl.metrics import transfer_report
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(120, 4))
    >>> y = np.column_stack([X[:, 0] > 0, X[:, 0] + X[:, 1]])
    >>> est = MultiTaskNeuralEstimator(hidden_layer_sizes=(8,), max_iter=5,
    ...                                random_state=0)
    >>> report = transfer_report(est, X, y, cv=3, random_state=0)
    >>> report[["kind", "metric", "n_labelled"]].values.tolist()
    [['binary', 'roc_auc', 120], ['regression', 'r2', 120]]
    >>> set(report["verdict"]) <= {"helps", "no difference",
    ...                            "hurts (negative transfer)"}
    True
    """
    from joblib import Parallel, delayed
    from scipy import stats
    from sklearn.base import clone
    from sklearn.model_selection import KFold, check_cv
    from sklearn.utils.validation import check_consistent_length

    pd = _pandas()
    if pd is None:  # pragma: no cover - pandas is an optional extra
        raise ImportError("transfer_report returns a DataFrame: it needs pandas.")
    model, prefix = _final_estimator(estimator)
    if not (isinstance(confidence, numbers.Real) and 0 < confidence < 1):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    columns, names, is_1d = split_target_columns(y)
    if is_1d or len(columns) < 2:
        raise ValueError(
            "transfer_report compares joint and single-task training: y must have "
            f"at least two tasks (columns), got {len(columns)}."
        )
    check_consistent_length(X, columns[0], groups)
    names = names or [f"task_{i}" for i in range(len(columns))]
    tasks = model._build_tasks(columns, names, None)
    metrics = _transfer_metrics(scoring, tasks)
    y_frame = pd.DataFrame(dict(zip(names, columns)))

    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        cv = KFold(int(cv), shuffle=True, random_state=random_state)
    splits = list(check_cv(cv).split(X, y_frame, groups))
    if len(splits) < 2:
        raise ValueError(
            "transfer_report needs at least two cross-validation folds for its "
            f"confidence interval; cv yields {len(splits)}."
        )

    jobs = []  # (fold, tasks): the joint model, then each task on its own
    for fold in range(len(splits)):
        jobs.append((fold, names))
        jobs.extend((fold, [name]) for name in names)

    def configured(job_tasks):
        if len(job_tasks) > 1:
            return clone(estimator)
        params = _single_task_params(model, names, names.index(job_tasks[0]))
        return clone(estimator).set_params(**{prefix + k: v for k, v in params.items()})

    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_and_score_tasks)(
            configured(job_tasks),
            X,
            y_frame,
            *splits[fold],
            job_tasks,
            [metrics[names.index(t)] for t in job_tasks],
        )
        for fold, job_tasks in jobs
    )
    joint = np.full((len(splits), len(names)), np.nan)
    single = np.full((len(splits), len(names)), np.nan)
    failed = {}  # (model, failure) -> folds
    joint_fits = []  # the joint model's fit failures
    for (fold, job_tasks), (scores, failures) in zip(jobs, results):
        if len(job_tasks) > 1:
            joint[fold] = scores
            joint_fits += [f for f in failures if f.startswith("fit failed")]
        else:
            single[fold, names.index(job_tasks[0])] = scores[0]
        which = "the joint model" if len(job_tasks) > 1 else f"{job_tasks[0]!r} alone"
        for failure in failures:
            failed.setdefault((which, failure), []).append(fold)
    if len(joint_fits) == len(splits):
        # Not a fold's accident: the settings (or the data) fail the joint
        # model, and no task can be compared. (A task whose single-task fits
        # all fail is reported undetermined, with the warning below.)
        raise ValueError(
            "transfer_report: every fit of the joint model failed; the first: "
            + joint_fits[0].removeprefix("fit failed: ")
        )
    if failed:
        lines = [
            f"fold{'s' if len(folds) > 1 else ''} {', '.join(map(str, folds))}, "
            f"{which}: {failure}"
            for (which, failure), folds in failed.items()
        ]
        warnings.warn(
            f"transfer_report: {sum(map(len, failed.values()))} fits or scores "
            "failed and count as NaN (left out of the gain and its interval):\n"
            + "\n".join(lines),
            UserWarning,
            stacklevel=2,
        )

    rows = []
    for j, task in enumerate(tasks.tasks):
        both = np.isfinite(joint[:, j]) & np.isfinite(single[:, j])
        diff = joint[both, j] - single[both, j]
        low = high = float("nan")
        if diff.size >= 2:
            half = stats.t.ppf((1 + confidence) / 2, diff.size - 1) * (
                diff.std(ddof=1) / np.sqrt(diff.size)
            )
            low, high = diff.mean() - half, diff.mean() + half
        rows.append(
            {
                "task": task.name,
                "kind": task.kind,
                "metric": metrics[j].name,
                "n_labelled": int((~_labelled_values(columns[j], task.name)[1]).sum()),
                # Over the folds the gain is taken on: gain = joint - single.
                "joint": _mean_defined(joint[both, j]),
                "single": _mean_defined(single[both, j]),
                "gain": float(diff.mean()) if diff.size else float("nan"),
                "ci_low": float(low),
                "ci_high": float(high),
                "verdict": _verdict(low, high),
                "joint_per_fold": tuple(joint[:, j].tolist()),
                "single_per_fold": tuple(single[:, j].tolist()),
            }
        )
    return pd.DataFrame.from_records(rows).set_index("task")[TRANSFER_COLUMNS]

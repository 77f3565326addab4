"""Tasks: one per output column.

All knowledge of "what kind of task is this" lives here: how a target column is
read (labels, missing markers), which kind it is, how it is encoded into targets
and a missing-label mask, its loss, its width in the network output, and how
outputs are decoded back into labels, probabilities or values.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target
from torch import nn
from torch.nn import functional as F

KINDS = ("binary", "multiclass", "regression")
CLASSIFICATION_KINDS = ("binary", "multiclass")


# --------------------------------------------------------------------------- reading
def _is_missing(values: np.ndarray) -> np.ndarray:
    """Boolean mask of missing labels (NaN, None, pd.NA, NaT) in a 1-D column."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind in "iub" or values.dtype.kind in "US":
        return np.zeros(values.shape, dtype=bool)
    try:  # pandas knows every missing marker (None, NaN, pd.NA, NaT)
        import pandas as pd

        return np.asarray(pd.isna(values), dtype=bool)
    except ImportError:  # pragma: no cover - pandas is optional
        return np.array(
            [v is None or (isinstance(v, float) and v != v) for v in values],
            dtype=bool,
        )


def split_target_columns(y) -> tuple[list[np.ndarray], list[str] | None, bool]:
    """Split ``y`` into one 1-D array per task.

    Returns the columns, the task names when ``y`` is a DataFrame (else None),
    and whether ``y`` was 1-D.
    """
    if hasattr(y, "iloc") and hasattr(y, "columns"):  # DataFrame
        names = [str(c) for c in y.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"y has duplicate column names: {names}.")
        if not names:
            raise ValueError("y has no columns: it needs at least one task (column).")
        columns = [_series_values(y.iloc[:, j]) for j in range(y.shape[1])]
        return columns, names, False
    if hasattr(y, "iloc"):  # Series
        return [_series_values(y)], None, True
    if type(y).__module__.startswith("pandas") and hasattr(y, "dtype"):
        import pandas as pd  # an ExtensionArray (pd.array): read it as a Series

        return [_series_values(pd.Series(y))], None, True
    if hasattr(y, "toarray"):
        y = y.toarray()
    y = np.asarray(y)
    if y.dtype.kind == "c":
        raise ValueError("Complex data not supported in y.")
    if y.ndim == 1:
        return [y], None, True
    if y.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D, got an array of shape {y.shape}.")
    if y.shape[1] == 0:
        raise ValueError(
            "y has no columns: it needs at least one task (column), got shape "
            f"{y.shape}."
        )
    return [y[:, j] for j in range(y.shape[1])], None, False


def _series_values(s) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_bool_dtype(s.dtype) and not s.isna().any():
        return s.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(
        s.dtype
    ):
        if pd.api.types.is_integer_dtype(s.dtype) and s.isna().any():
            # Nullable Int64 with pd.NA: keep the integers (see _labelled_values).
            return s.to_numpy(dtype=object, na_value=None)
        if s.dtype.kind == "c":  # as numpy y: not cut to its real part
            raise ValueError("Complex data not supported in y.")
        if s.isna().any() or s.dtype.kind not in "iuf":
            return s.to_numpy(dtype=np.float64, na_value=np.nan)
        return s.to_numpy()
    return s.to_numpy(dtype=object)


def _labelled_values(values: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, missing) with object columns of numbers made numeric."""
    missing = _is_missing(values)
    if values.dtype.kind == "c":
        raise ValueError(f"Complex data not supported in y (task {name!r}).")
    if values.dtype.kind == "O":
        present = values[~missing]
        if present.size and all(isinstance(v, bool | np.bool_) for v in present):
            # A boolean column with gaps (nullable boolean): bool labels + mask.
            out = np.zeros(values.shape, dtype=bool)
            out[~missing] = present.astype(bool)
            return out, missing
        if present.size and all(
            isinstance(v, numbers.Number) and not isinstance(v, bool | np.bool_)
            for v in present
        ):
            if all(isinstance(v, numbers.Integral) for v in present):
                # Integer labels with missing markers (nullable Int64, object
                # columns) stay integers: the mask, not NaN, marks the gaps.
                out = np.zeros(values.shape, dtype=np.int64)
                out[~missing] = present.astype(np.int64)
                return out, missing
            out = np.zeros(values.shape, dtype=np.float64)
            out[~missing] = present.astype(np.float64)
            out[missing] = np.nan
            values = out
    if values.dtype.kind == "f" and np.isinf(values).any():
        raise ValueError(
            f"Input y contains infinity in task {name!r}; only finite values and "
            "NaN (a missing label) are allowed."
        )
    return values, missing


def infer_kind(values: np.ndarray, missing: np.ndarray, name: str = "y") -> str:
    """Infer a task kind from the labelled values of one column."""
    present = values[~missing]
    if present.dtype.kind in "fiu":
        target_type = type_of_target(present)
        if target_type == "continuous":
            return "regression"
        if target_type == "binary":
            return "binary"
        if target_type == "multiclass":
            return "multiclass"
        raise ValueError(f"Unknown label type: {target_type!r}")
    n_unique = len(_unique_labels(present, name))
    return "binary" if n_unique <= 2 else "multiclass"


def _unique_labels(present: np.ndarray, name: str) -> np.ndarray:
    try:
        labels = np.unique(present)
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in present})
        raise TypeError(
            f"Task {name!r} mixes label types {kinds}; the labels of a task must be "
            "all strings or all numbers."
        ) from exc
    # Bytes and sequences (lists, tuples, ...): np.unique sorts them, but
    # scikit-learn's metrics (and so score) refuse them, as MLPClassifier does.
    if labels.dtype.kind == "S":
        bad = labels[0]
    elif labels.dtype.kind in "OV":
        bad = next(
            (v for v in labels if isinstance(v, bytes | list | tuple | dict | set)),
            None,
        )
    else:
        bad = None
    if bad is not None:
        raise TypeError(
            f"Task {name!r} has labels of type {type(scalar(bad)).__name__} "
            f"(e.g. {scalar(bad)!r}), which scikit-learn's metrics cannot score; "
            "give them as strings or numbers."
        )
    return labels


def _standardisation(values: np.ndarray, name: str) -> tuple[float, float]:
    """Mean and standard deviation of a regression target, without overflow.

    Values near the float64 limit (1e300) overflow ``np.std``'s squares; computing
    on values divided by their largest magnitude and scaling back does not.
    """
    peak = float(np.max(np.abs(values)))
    if peak == 0:
        return 0.0, 1.0
    unit = values / peak
    mean = float(np.mean(unit)) * peak
    scale = float(np.std(unit)) * peak
    if not (np.isfinite(mean) and np.isfinite(scale)):  # pragma: no cover - guard
        raise ValueError(
            f"Task {name!r}: the regression targets are too large to standardise "
            f"(largest magnitude {peak:.3g})."
        )
    return mean, scale if scale > 0 else 1.0


# --------------------------------------------------------------------------- one task
@dataclass
class Task:
    """One output of the network.

    Parameters
    ----------
    name : str
        The task name (DataFrame column or ``"task_<i>"``).
    kind : {"binary", "multiclass", "regression"}
    classes : ndarray or None
        Sorted labels of a classification task.
    mean, scale : float
        Standardisation of a regression target (outputs are in standard units).
    """

    name: str
    kind: str
    classes: np.ndarray | None = None
    mean: float = 0.0
    scale: float = 1.0

    @property
    def is_classification(self) -> bool:
        return self.kind in CLASSIFICATION_KINDS

    @property
    def n_outputs(self) -> int:
        """Width of this task's slice of the network output."""
        return len(self.classes) if self.kind == "multiclass" else 1

    @classmethod
    def from_column(cls, name, values, missing, kind=None, classes=None) -> Task:
        """Build a task from a column's labelled values (fit, first pass)."""
        present = values[~missing]
        # A classification task whose classes are declared (partial_fit's
        # `classes`) needs no label in the first batch; any other task does.
        if present.size == 0 and (classes is None or kind == "regression"):
            raise ValueError(_NO_LABELS.format(name))
        if kind is None and classes is not None:
            kind = (
                "binary" if len(np.unique(np.asarray(classes))) == 2 else "multiclass"
            )
        if kind is None:
            kind = infer_kind(values, missing, name)
        if kind not in KINDS:
            raise ValueError(
                f"Unknown task kind {kind!r} for task {name!r}; expected one of "
                f"{list(KINDS)}."
            )
        if kind == "regression":
            if present.dtype.kind not in "fiub":
                raise ValueError(
                    f"Task {name!r} is declared 'regression' but its targets are not "
                    f"numeric (dtype {present.dtype}, e.g. {present[0]!r})."
                )
            mean, scale = _standardisation(present.astype(np.float64), name)
            return cls(name, kind, None, mean, scale)
        if classes is None:
            classes = _unique_labels(present, name)
        else:
            classes = _unique_labels(np.asarray(classes), name)
            unseen = np.setdiff1d(_unique_labels(present, name), classes)
            if unseen.size:
                raise ValueError(
                    f"Task {name!r}: labels {unseen.tolist()} are not in the declared "
                    f"classes {classes.tolist()}."
                )
        if len(classes) < 2:
            raise ValueError(
                f"Task {name!r} has only one class ({classes[0]!r}); a classification "
                "task needs at least two classes."
            )
        if kind == "binary" and len(classes) > 2:
            raise ValueError(
                f"Task {name!r} is declared 'binary' but has {len(classes)} classes."
            )
        kind = "binary" if len(classes) == 2 else "multiclass"
        return cls(name, kind, classes)

    # ---------------------------------------------------------------- encoding
    def encode(self, values: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Targets as float64: class index, or standardised value (0 where missing)."""
        out = np.zeros(values.shape[0], dtype=np.float64)
        present = values[~missing]
        if not present.size:  # no labelled row (an all-None column is object)
            return out
        if self.kind == "regression":
            if present.dtype.kind not in "fiub":
                raise ValueError(
                    f"Task {self.name!r} is a regression task but got non-numeric "
                    f"targets (dtype {present.dtype})."
                )
            out[~missing] = (present.astype(np.float64) - self.mean) / self.scale
            return out
        try:
            idx = np.searchsorted(self.classes, present)
            idx = np.clip(idx, 0, len(self.classes) - 1)
            known = self.classes[idx] == present
        except TypeError:
            known = np.zeros(present.shape, dtype=bool)
            idx = np.zeros(present.shape, dtype=np.intp)
        if not np.all(known):
            unseen = _unique_labels(present[~known], self.name)
            raise ValueError(
                f"Task {self.name!r} got labels {unseen.tolist()} that are not among "
                f"its classes {self.classes.tolist()}; every label must be known when "
                "the model is first fitted (pass `classes` to the first partial_fit)."
            )
        out[~missing] = idx
        return out

    def class_weights(self, targets, labelled, class_weight) -> np.ndarray:
        """Per-row weight from ``class_weight`` (None, "balanced" or {label: w})."""
        if class_weight is None or self.kind == "regression":
            return np.ones(targets.shape[0])
        codes = targets[labelled].astype(np.intp)
        if codes.size == 0:  # no labelled row in this batch: nothing to weigh
            return np.ones(targets.shape[0])
        if isinstance(class_weight, str):
            present = np.unique(codes)
            per_class = np.ones(len(self.classes))
            per_class[present] = compute_class_weight(
                "balanced", classes=present, y=codes
            )
        else:
            unknown = [k for k in class_weight if k not in set(self.classes.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight for task {self.name!r} names labels {unknown} that "
                    f"are not among its classes {self.classes.tolist()}."
                )
            per_class = np.array(
                [float(class_weight.get(c, 1.0)) for c in self.classes.tolist()]
            )
        out = np.ones(targets.shape[0])
        out[labelled] = per_class[codes]
        return out

    # ---------------------------------------------------------------- decoding
    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """(n, n_classes) probabilities, in the dtype of ``outputs``.

        float32 outputs (float32 ``X``) give float32 probabilities, as
        scikit-learn's MLP does.
        """
        if self.kind == "binary":
            p = expit(outputs[:, 0])
            out = np.empty((outputs.shape[0], 2), dtype=p.dtype)
            out[:, 1] = p
            out[:, 0] = 1 - p
            return out
        z = outputs - outputs.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Predictions (labels or values) from this task's output slice."""
        if self.kind == "regression":
            return outputs[:, 0].astype(np.float64) * self.scale + self.mean
        if self.kind == "binary":
            return self.classes[(outputs[:, 0] > 0).astype(np.intp)]
        return self.classes[np.argmax(outputs, axis=1)]


# --------------------------------------------------------------------------- all tasks
def resolve_per_task(param, task_names, param_name, *, single_value_ok):
    """Map a per-task parameter (dict keyed by task name) to a list, one per task.

    Keys that are not task names raise a ValueError naming them.
    """
    if param is None:
        return [None] * len(task_names)
    if isinstance(param, dict):
        unknown = [k for k in param if k not in task_names]
        if unknown:
            raise ValueError(
                f"{param_name} has keys {unknown} that are not tasks; the tasks are "
                f"{list(task_names)}."
            )
        return [param.get(name) for name in task_names]
    if single_value_ok:
        return [param] * len(task_names)
    raise TypeError(
        f"{param_name} must be a dict keyed by task name or None, got "
        f"{type(param).__name__}."
    )


def per_task_class_weight(class_weight, task_names):
    """Resolve ``class_weight`` to one entry per task.

    ``"balanced"`` applies to every task; a dict keyed by task names gives each
    task its own; with a single task a ``{label: weight}`` dict is that task's.
    """
    if (
        isinstance(class_weight, dict)
        and len(task_names) == 1
        and not set(class_weight) <= set(task_names)
    ):
        per_task = [class_weight]
    else:
        per_task = resolve_per_task(
            class_weight, task_names, "class_weight", single_value_ok=True
        )
    for name, cw in zip(task_names, per_task):
        if not (cw is None or (isinstance(cw, str) and cw == "balanced")) and not (
            isinstance(cw, dict)
        ):
            raise ValueError(
                f"class_weight[{name!r}] must be 'balanced', a dict of label "
                f"weights or None, got {cw!r}."
            )
        if isinstance(cw, dict):
            for label, w in cw.items():
                if (
                    isinstance(w, bool | np.bool_)
                    or not isinstance(w, numbers.Real)
                    or not np.isfinite(w)
                    or w < 0
                ):
                    raise ValueError(
                        f"class_weight of task {name!r}: the weight of label "
                        f"{label!r} must be a finite number >= 0, got {w!r}."
                    )
    return per_task


class TaskTargets:
    """Encoded targets of every task for a set of rows, with named parts.

    One packed ``(n, 3 * n_tasks)`` array (numpy or torch) holds three ``(n,
    n_tasks)`` parts, so that a mini-batch is a single gather:

    - ``values``: the class index, or the standardised value (0 where missing);
    - ``loss_weights``: missing-label mask x sample weight x class weight, the
      weight of each row in each task's loss;
    - ``label_weights``: missing-label mask x sample weight, the normaliser: a
      task's loss on a batch is ``sum(loss_weights * loss) / sum(label_weights)``.
    """

    __slots__ = ("packed", "n_tasks")

    def __init__(self, packed, n_tasks: int):
        if packed.ndim != 2 or packed.shape[1] != 3 * n_tasks:
            raise ValueError(
                f"packed targets must have shape (n, {3 * n_tasks}), got "
                f"{tuple(packed.shape)}."
            )
        self.packed = packed
        self.n_tasks = n_tasks

    def __len__(self) -> int:
        return self.packed.shape[0]

    @property
    def values(self):
        return self.packed[:, : self.n_tasks]

    @property
    def loss_weights(self):
        return self.packed[:, self.n_tasks : 2 * self.n_tasks]

    @property
    def label_weights(self):
        return self.packed[:, 2 * self.n_tasks :]

    @property
    def labelled(self):
        """Boolean ``(n, n_tasks)``: whether a row has a label for a task."""
        return self.label_weights > 0

    def take(self, index) -> TaskTargets:
        """The rows at ``index`` (integer indices; a torch index for tensors)."""
        if isinstance(self.packed, torch.Tensor):
            # index_select is several times faster than fancy indexing on CPU.
            return TaskTargets(self.packed.index_select(0, index), self.n_tasks)
        return TaskTargets(self.packed[index], self.n_tasks)

    def rows(self, start: int, stop: int) -> TaskTargets:
        """The rows ``start:stop`` (a view)."""
        return TaskTargets(self.packed[start:stop], self.n_tasks)

    def to(self, device) -> TaskTargets:
        """As a float32 tensor on ``device``."""
        packed = self.packed
        if isinstance(packed, np.ndarray) and not packed.flags.writeable:
            packed = packed.copy()
        return TaskTargets(
            torch.as_tensor(packed, dtype=torch.float32, device=device), self.n_tasks
        )


_NO_LABELS = (
    "Task {!r} has no labelled rows: every target is missing. Input y contains "
    "NaN (or None) in every row of this task."
)
_ZERO_WEIGHT = (
    "Task {!r} has labelled rows, but every one of them weighs 0 (sample_weight "
    "times class_weight): it would be trained on nothing. Give some of them a "
    "positive weight, or leave the task out of y."
)


_FLOAT32_ROOT = float(np.sqrt(np.finfo(np.float32).max))


def _refuse_float32_overflow(packed, n_tasks, names) -> None:
    """Targets (standardised) or loss weights past float32's range, refused by
    name: finite in float64, they would turn the loss into inf in training."""
    rows = ~np.isfinite(packed).all(axis=1)
    # Targets (the first n_tasks rows): class codes are small, so only a
    # regression target can pass the square root of float32's range.
    rows[:n_tasks] |= (np.abs(packed[:n_tasks]) > _FLOAT32_ROOT).any(axis=1)
    j = int(np.flatnonzero(rows)[0])
    if j < n_tasks:
        raise ValueError(
            f"Task {names[j]!r} has a target too large for float32 once "
            "standardised by the first fit's mean and scale; the network trains "
            "in float32."
        )
    raise ValueError(
        "sample_weight (times class_weight) holds a value too large for "
        f"float32 (task {names[j % n_tasks]!r}); the network trains in float32: "
        "scale the weights down (only their ratios matter)."
    )


# Class shares of a task's baseline output are clipped to [_MIN_SHARE, 1 - ...].
_MIN_SHARE = 1e-4


class TaskSet:
    """The ordered tasks of a model and the layout of the network output."""

    def __init__(self, tasks: list[Task]):
        self.tasks = list(tasks)
        widths = [t.n_outputs for t in self.tasks]
        self.offsets = np.concatenate([[0], np.cumsum(widths)]).astype(int)

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def output_widths(self) -> list[int]:
        return [t.n_outputs for t in self.tasks]

    def slice(self, outputs: np.ndarray, i: int) -> np.ndarray:
        return outputs[:, self.offsets[i] : self.offsets[i + 1]]

    def check_same_classes(self, classes) -> None:
        """A later ``partial_fit``'s ``classes`` must be those of the first
        call, task by task, as ``MLPClassifier.partial_fit`` requires (a
        ValueError naming the task, not classes ignored)."""
        per_task, _ = per_task_classes_of(classes, self.names)
        for task, given in zip(self.tasks, per_task):
            if given is None or not task.is_classification:
                continue
            labels = _unique_labels(np.asarray(given), task.name)
            if not (
                labels.shape == task.classes.shape and np.all(labels == task.classes)
            ):
                raise ValueError(
                    f"classes={labels.tolist()} for task {task.name!r} is not the "
                    f"same as on the first call to partial_fit, was: "
                    f"{task.classes.tolist()}. A model's classes are fixed by its "
                    "first call; fit it again to change them."
                )

    def match_columns(self, y) -> list[np.ndarray]:
        """One column of ``y`` per task, in task order.

        The one place that matches ``y`` to the tasks: a DataFrame's columns by
        name (any order), an array's by position.
        """
        columns, names, _ = split_target_columns(y)
        if names is not None:
            missing = [n for n in self.names if n not in names]
            extra = [n for n in names if n not in self.names]
            if missing or extra:
                raise ValueError(
                    f"y has columns {names} but the model was fitted on tasks "
                    f"{self.names}"
                    + (f"; missing: {missing}" if missing else "")
                    + (f"; unknown: {extra}" if extra else "")
                    + "."
                )
            return [columns[names.index(n)] for n in self.names]
        if len(columns) != len(self.tasks):
            raise ValueError(
                f"y has {len(columns)} column(s) but the model was fitted on "
                f"{len(self.tasks)} tasks {self.names}."
            )
        return columns

    def resolve_class_weight(self, class_weight) -> list:
        """``class_weight`` checked against the tasks, one entry per task.

        ``"balanced"`` applies to the classification tasks; an entry for a
        regression task, a label that is not a class, or a weight that is not a
        finite number >= 0 raises a ValueError naming the task.
        """
        per_task = per_task_class_weight(class_weight, self.names)
        for task, cw in zip(self.tasks, per_task):
            if cw is None:
                continue
            if not task.is_classification:
                if isinstance(class_weight, str):
                    continue  # "balanced" for every task: classification tasks only
                raise ValueError(
                    f"class_weight has an entry for task {task.name!r}, which is a "
                    "regression task; class weights apply to classification tasks."
                )
            if isinstance(cw, dict):
                known = set(task.classes.tolist())
                unknown = [k for k in cw if k not in known]
                if unknown:
                    raise ValueError(
                        f"class_weight for task {task.name!r} names labels {unknown} "
                        f"that are not among its classes {task.classes.tolist()}."
                    )
        return [
            cw if task.is_classification else None
            for task, cw in zip(self.tasks, per_task)
        ]

    def encode(self, columns, sample_weight=None, class_weight=None) -> TaskTargets:
        """Encode target columns (one per task, in task order) into TaskTargets.

        The packed array is float32 and C-ordered; see :class:`TaskTargets`.
        """
        n = columns[0].shape[0]
        if len(columns) != len(self.tasks):
            raise ValueError(
                f"y has {len(columns)} columns but the model was fitted on "
                f"{len(self.tasks)} tasks {self.names}."
            )
        sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        cws = self.resolve_class_weight(class_weight)
        T = len(self.tasks)
        # Filled by rows of its transpose (contiguous writes), made C-ordered once.
        out = np.zeros((3 * T, n), dtype=np.float32)
        for j, (task, col, cw) in enumerate(zip(self.tasks, columns, cws)):
            values, missing = _labelled_values(col, task.name)
            targets = task.encode(values, missing)
            labelled = ~missing
            with np.errstate(over="ignore"):  # past float32: refused below
                out[j] = targets
                out[T + j] = labelled * sw * task.class_weights(targets, labelled, cw)
                out[2 * T + j] = labelled * sw
        # A standardised target past sqrt(float32 max) squares to inf in the
        # loss (class codes are small); any packed value past float32 max is
        # inf already.
        if not np.isfinite(out).all() or (np.abs(out[:T]) > _FLOAT32_ROOT).any():
            _refuse_float32_overflow(out, T, self.names)
        return TaskTargets(np.ascontiguousarray(out.T), T)

    def trainable_counts(self, columns, targets: TaskTargets):
        """Per task, the labelled rows of ``columns`` (its targets, encoded as
        ``targets``) and those of positive loss weight (counts of disjoint
        row blocks add up)."""
        labelled = np.array(
            [
                int((~_labelled_values(col, task.name)[1]).sum())
                for task, col in zip(self.tasks, columns)
            ]
        )
        return labelled, (targets.loss_weights > 0).sum(axis=0)

    def check_trainable(self, labelled, weighed) -> None:
        """A fit's checks of y, from :meth:`trainable_counts`: every task has a
        labelled row, and one of positive loss weight (as a first fit's
        :meth:`baseline_from` checks)."""
        for task, has_label, has_weight in zip(self.tasks, labelled, weighed):
            if not has_label:
                raise ValueError(_NO_LABELS.format(task.name))
            if not has_weight:
                raise ValueError(_ZERO_WEIGHT.format(task.name))

    def loss_weight_sums(self, targets: TaskTargets) -> list[np.ndarray]:
        """What :meth:`baseline_from` needs of ``targets`` (numpy), per task.

        The total loss weight of each class (classification), or ``[sum(w *
        z), sum(w)]`` over the standardised values ``z`` (regression), in
        float64. Sums of disjoint row blocks add up to the sums of their union.
        """
        sums = []
        for j, task in enumerate(self.tasks):
            weights = targets.loss_weights[:, j].astype(np.float64)
            values = targets.values[:, j]
            if task.kind == "regression":
                sums.append(
                    np.array([weights @ values.astype(np.float64), weights.sum()])
                )
            else:
                sums.append(
                    np.bincount(
                        values.astype(np.intp),
                        weights=weights,
                        minlength=len(task.classes),
                    )
                )
        return sums

    def baseline_from(self, sums: list[np.ndarray]) -> list[float]:
        """The constant outputs that minimise each task's loss, from its
        :meth:`loss_weight_sums`.

        One value per output column, in task order, as HistGradientBoosting's
        ``baseline_prediction_``: the log-odds of the positive class's share
        (binary), the log of each class's share (multiclass), the mean
        standardised value (regression), all weighted by the rows' loss weights
        (missing labels, ``sample_weight``, ``class_weight``). Shares are
        clipped to ``[1e-4, 1 - 1e-4]``, so no output starts where its gradient
        vanishes.

        Raises
        ------
        ValueError
            If a task's labelled rows all weigh 0 (``sample_weight`` times
            ``class_weight``): a fit would train it on nothing.
        """
        out = []
        for task, s in zip(self.tasks, sums):
            total = s[1] if task.kind == "regression" else s.sum()
            if not total > 0:
                raise ValueError(_ZERO_WEIGHT.format(task.name))
            if task.kind == "regression":
                out.append(float(s[0] / total))
            else:
                shares = np.clip(s / total, _MIN_SHARE, 1 - _MIN_SHARE)
                if task.kind == "binary":
                    out.append(float(np.log(shares[1] / (1 - shares[1]))))
                else:
                    out.extend(np.log(shares).tolist())
        return out

    def baseline(self, targets: TaskTargets) -> list[float]:
        """The constant outputs that minimise each task's loss on ``targets``
        (see :meth:`baseline_from`)."""
        return self.baseline_from(self.loss_weight_sums(targets))

    def decode_targets(self, targets: TaskTargets) -> list[np.ndarray]:
        """The labels (or values) encoded in ``targets``; missing labels are None.

        Classification columns are object arrays of the task's labels, regression
        columns float arrays with NaN where the label is missing.
        """
        packed = targets.packed
        if isinstance(packed, torch.Tensor):
            packed = packed.detach().cpu().numpy()
        plain = TaskTargets(np.asarray(packed, dtype=np.float64), targets.n_tasks)
        values, labelled = plain.values, plain.labelled
        columns = []
        for j, task in enumerate(self.tasks):
            if task.is_classification:
                col = np.empty(len(plain), dtype=object)
                col[labelled[:, j]] = task.classes[
                    values[labelled[:, j], j].astype(np.intp)
                ]
                col[~labelled[:, j]] = None
            else:
                col = values[:, j] * task.scale + task.mean
                col[~labelled[:, j]] = np.nan
            columns.append(col)
        return columns

    def predict(self, outputs: np.ndarray) -> list[np.ndarray]:
        return [t.decode(self.slice(outputs, i)) for i, t in enumerate(self.tasks)]

    def predict_proba(self, outputs: np.ndarray) -> list[np.ndarray | None]:
        return [
            t.probabilities(self.slice(outputs, i)) if t.is_classification else None
            for i, t in enumerate(self.tasks)
        ]

    def score(self, predictions, columns, sample_weight=None) -> list[float]:
        """Each task's default score on its labelled rows: accuracy, or R2.

        ``columns`` are in task order (see :meth:`match_columns`). A task
        without a labelled row of non-zero weight scores NaN (as does R2 on
        one row, which scikit-learn leaves undefined).
        """
        from sklearn.metrics import accuracy_score, r2_score

        if len(columns) != len(self.tasks):
            raise ValueError(
                f"y has {len(columns)} columns but the model was fitted on "
                f"{len(self.tasks)} tasks {self.names}."
            )
        scores = []
        for task, pred, col in zip(self.tasks, predictions, columns):
            values, missing = _labelled_values(col, task.name)
            keep = ~missing
            sw = None if sample_weight is None else np.asarray(sample_weight)[keep]
            if not keep.any() or (sw is not None and not sw.sum() > 0):
                scores.append(float("nan"))  # no labelled row of non-zero weight
                continue
            metric = accuracy_score if task.is_classification else r2_score
            scores.append(float(metric(values[keep], pred[keep], sample_weight=sw)))
        return scores

    def mean_score(self, predictions, columns, sample_weight=None) -> float:
        """The mean of :meth:`score` over the tasks whose score is defined."""
        scores = np.asarray(self.score(predictions, columns, sample_weight))
        defined = ~np.isnan(scores)
        if not defined.any():
            raise ValueError(
                "No task's score is defined on this y: no task has a labelled row "
                "of non-zero weight (or, for R2, more than one)."
            )
        return float(scores[defined].mean())

    def loss_module(self) -> MultiTaskLoss:
        return MultiTaskLoss([t.kind for t in self.tasks], self.output_widths)


def per_task_classes_of(classes, names) -> tuple[list, list | None]:
    """``partial_fit``'s ``classes`` as one entry (labels or None) per task,
    and, when it was one flat list that every classification task shares,
    that list's labels as given (None otherwise)."""
    if classes is None:
        return [None] * len(names), None
    if (
        isinstance(classes, str | bytes)
        or not hasattr(classes, "__len__")
        or (isinstance(classes, np.ndarray) and classes.ndim == 0)
    ):
        raise ValueError(
            f"classes must be an array-like of labels, one per task, or a dict "
            f"keyed by task name; got {type(classes).__name__} {classes!r}."
        )
    if isinstance(classes, dict):  # by task name, as task_types
        per_task = resolve_per_task(classes, names, "classes", single_value_ok=False)
        return [_labels_given(c) for c in per_task], None
    if len(names) == 1 and not _is_list_of_arrays(classes):
        return [_labels_given(classes)], None
    if _is_flat_labels(classes):
        # MLPClassifier's form (and learning_curve's): one array of labels that
        # every classification task shares.
        flat_labels = _labels_given(classes, as_list=True)
        return [_labels_given(classes)] * len(names), flat_labels
    per_task = list(classes)
    if len(per_task) != len(names):
        raise ValueError(
            f"classes has {len(per_task)} entries but y has {len(names)} tasks."
        )
    return [_labels_given(c) for c in per_task], None


def _labels_given(labels, as_list=False):
    """One task's ``classes`` without missing-label markers: ``np.unique(y)``
    (or ``Series.unique()``) of a y with NaN holds one, which is not a label.

    An object array stays object; otherwise the labels left set the dtype (not
    the NaN dropped: [0, 1, nan] gives ints). None stays None.
    """
    if labels is None or np.ndim(labels) != 1:
        return labels  # a scalar or 2-D entry: refused, by name, where used
    values = list(labels)
    marked = _is_missing(np.asarray(values, dtype=object))
    kept = [c for c, m in zip(values, marked) if not m]
    if as_list:
        return kept
    given = getattr(labels, "dtype", None)
    dtype = object if given is not None and given.kind == "O" else None
    return np.asarray(kept, dtype=dtype)


def build_tasks(columns, names, task_types=None, classes=None, force_kind=None):
    """Create the TaskSet for target columns (first fit)."""
    kinds = resolve_per_task(task_types, names, "task_types", single_value_ok=False)
    per_task_classes, flat_labels = per_task_classes_of(classes, names)
    flat = flat_labels is not None
    tasks, labelled = [], []
    for name, col, kind, cls in zip(names, columns, kinds, per_task_classes):
        values, missing = _labelled_values(col, name)
        labelled.append(values[~missing])
        if kind is None and force_kind == "regression":
            kind = "regression"
        if force_kind == "classification":
            if kind == "regression":
                raise ValueError(
                    f"Task {name!r} is declared 'regression', but a classifier only "
                    "takes classification tasks; use MultiTaskNeuralEstimator."
                )
            if kind is None and values[~missing].dtype.kind in "fiu":
                target_type = type_of_target(values[~missing])
                if target_type not in ("binary", "multiclass"):
                    raise ValueError(
                        f"Unknown label type: {target_type!r} in task {name!r}. "
                        "A classifier needs discrete labels; use MultiTaskRegressor "
                        "or task_types for continuous targets."
                    )
        elif force_kind == "regression" and kind != "regression":
            raise ValueError(
                f"Task {name!r} is declared {kind!r}, but a regressor only takes "
                "regression tasks; use MultiTaskNeuralEstimator."
            )
        if flat and (
            kind == "regression"
            or (kind is None and infer_kind(values, missing, name) == "regression")
        ):
            cls = None  # the shared labels are those of the classification tasks
        tasks.append(Task.from_column(name, values, missing, kind, cls))
    if flat:
        _check_shared_labels(tasks, labelled, flat_labels)
    return TaskSet(tasks)


def _check_shared_labels(tasks, labelled, flat_labels) -> None:
    """Refuse one flat ``classes`` for tasks that cannot share a label set.

    learning_curve's ``np.unique(y)`` of a multi-task ``y`` is the union of
    every column's labels: one list for all would give each classification
    task the others' labels as classes. Refused when that is sure: two
    classification tasks that each show two labels or more, none in common; a
    list holding a regression task's (non-integer) values; a list mixing
    booleans and numbers (True == 1: the tasks' label types would merge).
    """
    plain = [scalar(v) for v in flat_labels]
    if any(isinstance(v, bool) for v in plain) and any(
        isinstance(v, int | float) and not isinstance(v, bool) for v in plain
    ):
        raise ValueError(
            "classes is one list of labels for every classification task, but it "
            f"mixes booleans and numbers ({plain[:6]}), which Python treats as "
            "equal (True == 1): give one array (or None) per task."
            + _LEARNING_CURVE_HINT
        )
    listed = set(plain)
    seen = {}
    for task, present in zip(tasks, labelled):
        name = task.name
        labels = {scalar(v) for v in present}
        if not task.is_classification:
            continuous = any(
                isinstance(v, float) and not v.is_integer() for v in labels
            )
            if continuous and len(labels) > 2 and labels <= listed:
                raise ValueError(
                    "classes is one list of labels for every classification "
                    "task, but it holds the values of the regression task "
                    f"{name!r}: give one array (or None) per task (None for a "
                    "regression task)." + _LEARNING_CURVE_HINT
                )
        elif len(labels) >= 2:
            seen[name] = labels
    shown = list(seen.items())
    for i, (a, labels_a) in enumerate(shown):
        for b, labels_b in shown[i + 1 :]:
            if not labels_a & labels_b:
                raise ValueError(
                    "classes is one list of labels for every classification "
                    f"task, but tasks {a!r} and {b!r} share no label "
                    f"({sorted(map(str, labels_a))} and "
                    f"{sorted(map(str, labels_b))}): give one array (or None) "
                    f"per task, classes=[labels of {a!r}, labels of {b!r}, ...]."
                    + _LEARNING_CURVE_HINT
                )


def scalar(value):
    """A numpy scalar as the Python scalar it holds (a label, a category)."""
    return value.item() if isinstance(value, np.generic) else value


_LEARNING_CURVE_HINT = (
    " (learning_curve with exploit_incremental_learning=True passes one list, "
    "the union of y's columns: use it with classification tasks that share "
    "their labels.)"
)


def _is_flat_labels(classes) -> bool:
    """Whether ``classes`` is one flat sequence of labels (not one per task):
    a list, tuple or 1-D array of labels, a pandas Index or Series, or a
    pandas array (``Series.unique()`` of a string column)."""
    if isinstance(classes, np.ndarray) or hasattr(classes, "dtype"):
        if np.ndim(classes) != 1:
            return False
    elif not isinstance(classes, list | tuple):
        return False
    return len(classes) > 0 and all(c is not None and np.ndim(c) == 0 for c in classes)


def stack_predictions(preds: list[np.ndarray]) -> np.ndarray:
    """``(n, n_tasks)`` predictions in which every task keeps its label type.

    The tasks' common dtype when casting to it keeps each task's kind of value
    (all bools, all integers, all floats, all strings), else an object array:
    a bool task next to a float task still predicts ``True`` / ``False``, and
    integer labels next to a regression task keep their exact values.
    """
    groups = {"b": "b", "i": "i", "u": "i", "f": "f", "U": "U"}
    common = np.result_type(*preds)
    same_kind = {groups.get(p.dtype.kind) for p in preds} == {groups.get(common.kind)}
    if same_kind and common.kind != "O":
        if all(np.can_cast(p.dtype, common, "safe") for p in preds):
            return np.column_stack(preds).astype(common, copy=False)
    out = np.empty((preds[0].shape[0], len(preds)), dtype=object)
    for j, p in enumerate(preds):
        out[:, j] = p
    return out


def _is_list_of_arrays(classes) -> bool:
    return isinstance(classes, list | tuple) and all(
        isinstance(c, list | tuple | np.ndarray) for c in classes
    )


# --------------------------------------------------------------------------- losses
def _as_slice(indices):
    """``slice`` equal to the sorted, contiguous ``indices``, else None."""
    indices = np.asarray(indices)
    if len(indices) and np.array_equal(indices, np.arange(indices[0], indices[-1] + 1)):
        return slice(int(indices[0]), int(indices[-1]) + 1)
    return None


class MultiTaskLoss(nn.Module):
    """Per-task losses from the fused network output, vectorised by kind.

    Binary tasks share one ``binary_cross_entropy_with_logits`` call and
    regression tasks one squared error; each multiclass task has its own
    cross-entropy. ``forward`` returns the per-task losses (T,) and the labelled
    weight of each task in the batch (T,), both on the device.
    """

    def __init__(self, kinds, widths):
        super().__init__()
        offsets = np.concatenate([[0], np.cumsum(widths)]).astype(int)
        self.n_tasks = len(kinds)
        idx = np.arange(self.n_tasks)
        binary = idx[[k == "binary" for k in kinds]]
        regression = idx[[k == "regression" for k in kinds]]
        self.multiclass = [
            (int(i), int(offsets[i]), int(offsets[i + 1]))
            for i in idx
            if kinds[i] == "multiclass"
        ]
        order = np.concatenate([binary, regression, [m[0] for m in self.multiclass]])
        self.register_buffer("bin_tasks", torch.as_tensor(binary, dtype=torch.long))
        self.register_buffer(
            "bin_cols", torch.as_tensor(offsets[binary], dtype=torch.long)
        )
        self.register_buffer("reg_tasks", torch.as_tensor(regression, dtype=torch.long))
        self.register_buffer(
            "reg_cols", torch.as_tensor(offsets[regression], dtype=torch.long)
        )
        self.register_buffer(
            "inverse_order", torch.as_tensor(np.argsort(order), dtype=torch.long)
        )
        # Column selections as slices where the indices are contiguous: a slice
        # is a view, an index tensor a gather (a copy, and a scatter backward).
        self._bin_cols = _as_slice(offsets[binary])
        self._bin_tasks = _as_slice(binary)
        self._reg_cols = _as_slice(offsets[regression])
        self._reg_tasks = _as_slice(regression)
        self._kind_ordered = bool(np.array_equal(order, idx))

    def _select(self, name):
        selection = getattr(self, "_" + name, None)
        return getattr(self, name) if selection is None else selection

    def elementwise(self, outputs, targets: TaskTargets):
        """Unweighted loss of every row for every task, ``(n, T)``, task order."""
        y = targets.values
        parts = []
        if len(self.bin_tasks):
            parts.append(
                F.binary_cross_entropy_with_logits(
                    outputs[:, self._select("bin_cols")],
                    y[:, self._select("bin_tasks")],
                    reduction="none",
                )
            )
        if len(self.reg_tasks):
            pred = outputs[:, self._select("reg_cols")]
            parts.append(0.5 * (pred - y[:, self._select("reg_tasks")]) ** 2)
        for i, start, stop in self.multiclass:
            parts.append(
                F.cross_entropy(
                    outputs[:, start:stop], y[:, i].long(), reduction="none"
                ).unsqueeze(1)
            )
        losses = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return losses if self._kind_ordered else losses[:, self.inverse_order]

    def forward(self, outputs, targets: TaskTargets):
        """Per-task losses ``(T,)`` and labelled weights ``(T,)`` of a batch.

        ``outputs`` is ``(n, W)``, or ``(k, n, W)`` for an ensemble of ``k``
        members: each member's loss, averaged over the members.
        """
        if outputs.ndim == 3:
            k = outputs.shape[0]
            repeated = TaskTargets(targets.packed.repeat(k, 1), targets.n_tasks)
            per_task, norm = self(outputs.reshape(-1, outputs.shape[-1]), repeated)
            return per_task, norm / k
        losses = self.elementwise(outputs, targets)
        norm = targets.label_weights.sum(dim=0)
        per_task = (losses * targets.loss_weights).sum(dim=0) / norm.clamp_min(1e-12)
        return per_task, norm

    def scores(self, outputs, targets: TaskTargets):
        """Per-task validation scores on the device: accuracy, or R2 (regression).

        NaN for a task without a labelled row.
        """
        T = self.n_tasks
        y, labelled = targets.values, targets.labelled
        scores = torch.zeros(T, device=outputs.device)
        count = labelled.sum(dim=0).clamp_min(1)
        if len(self.bin_tasks):
            pred = (outputs[:, self.bin_cols] > 0).to(y.dtype)
            hit = (pred == y[:, self.bin_tasks]) & labelled[:, self.bin_tasks]
            scores[self.bin_tasks] = hit.sum(0) / count[self.bin_tasks]
        if len(self.reg_tasks):
            m = labelled[:, self.reg_tasks]
            yt = y[:, self.reg_tasks]
            mean = (yt * m).sum(0) / count[self.reg_tasks]
            sse = (((outputs[:, self.reg_cols] - yt) ** 2) * m).sum(0)
            sst = (((yt - mean) ** 2) * m).sum(0)
            scores[self.reg_tasks] = torch.where(
                sst > 0, 1 - sse / sst.clamp_min(1e-12), (sse == 0).to(sse.dtype)
            )
        for i, start, stop in self.multiclass:
            pred = outputs[:, start:stop].argmax(dim=1)
            hit = (pred == y[:, i].long()) & labelled[:, i]
            scores[i] = hit.sum() / count[i]
        # A task without a labelled validation row has no score (not 0, or an
        # R2 of 1 from 0 == 0): NaN, left out of the mean.
        return torch.where(labelled.any(dim=0), scores, torch.nan)

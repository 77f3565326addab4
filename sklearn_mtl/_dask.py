"""Streaming fit and block-wise predict over dask collections (optional extra).

Imported by the estimators only when a dask collection is passed (dask itself is
imported inside the functions). The coupling to the rest of the package is one
hook in each direction:

- the estimator's ``_prepare_fit`` calls :func:`prepare_fit` when
  :func:`is_collection` says an argument is a dask collection, and ``predict``
  / ``predict_proba`` / ``score`` call :func:`predict` and :func:`score`;
  ``_fit`` calls :func:`match_worker_threads` at the start of every fit;
- :func:`prepare_fit` returns the estimator's fit plan with ``plan.data`` an
  engine ``BlockDataset`` (``load(i)`` reads and encodes block ``i``): the
  training is the in-memory fit's, one ``engine.partial_fit`` whose
  ``get_iterator`` streams the blocks and whose ``train_split`` holds out
  whole blocks. Stopping, divergence, validation scores, history and
  callbacks are the engine's.

The input encoding (``inputs_``: medians, missing indicators, numeric scaling,
piecewise-linear bins) is fitted on the first non-empty block of X. A
categorical column must list its categories in its dtype (a ``category`` column
with known categories, e.g. after ``X.categorize()``, or a bool column): the
encoding takes them from there, since categories seen only in later blocks
would otherwise be lost; other categorical columns are refused.

Training streams blocks (dask array chunks along rows, or dataframe partitions):
each epoch visits the training blocks in a shuffled order and shuffles the rows
inside each block; the next block is loaded and encoded in a background thread
while the current one trains. Memory holds about two blocks at a time (plus the
held-out validation blocks with ``early_stopping=True``), whatever the data size.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch

from ._tasks import (
    CLASSIFICATION_KINDS,
    _labelled_values,
    _standardisation,
    _unique_labels,
    per_task_class_weight,
    per_task_classes_of,
    resolve_per_task,
    split_target_columns,
    stack_predictions,
)


def is_collection(*objs) -> bool:
    """Whether any argument is a dask collection (never imports dask itself)."""
    if "dask" not in sys.modules:  # a dask collection cannot exist without it
        return False
    from dask import is_dask_collection

    return any(is_dask_collection(o) for o in objs)


def match_worker_threads() -> None:
    """In a dask worker, use as many torch threads as the worker has threads.

    torch defaults to one thread per core in every process: two single-threaded
    workers on two cores would each run two torch threads. Outside a worker (or
    without ``distributed`` imported) this does nothing.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return
    try:
        worker = distributed.get_worker()
    except ValueError:  # not running in a worker
        return
    n_threads = int(getattr(worker.state, "nthreads", 0))
    if n_threads > 0 and torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)


# --------------------------------------------------------------------------- blocks
def _is_frame(obj) -> bool:
    import dask.dataframe as dd

    return isinstance(obj, dd.DataFrame | dd.Series)


def _row_blocks(obj, name: str, *, max_ndim: int):
    """``obj`` as a list of delayed row blocks, and their lengths where known."""
    import dask.array as da

    if _is_frame(obj):
        if name == "X" and not hasattr(obj, "columns"):
            raise ValueError(
                "X must be a 2-D dask Array or a dask DataFrame, got a dask Series; "
                "use X.to_frame()."
            )
        return list(obj.to_delayed()), None
    if not isinstance(obj, da.Array):
        raise TypeError(
            f"{name} must be a dask Array or a dask DataFrame/Series when streaming "
            f"from dask, got {type(obj).__name__}. Pass X and y both as dask "
            "collections with the same blocks (e.g. da.from_array(y, chunks=...))."
        )
    if not 1 <= obj.ndim <= max_ndim or (name == "X" and obj.ndim != 2):
        want = "2-D" if name == "X" else "1-D or 2-D"
        raise ValueError(
            f"{name} must be {want}, got a dask array of shape {obj.shape}."
        )
    if obj.ndim == 2 and obj.numblocks[1] != 1:
        if any(math.isnan(c) for c in obj.chunks[1]):
            raise ValueError(
                f"{name} has unknown chunk sizes along its columns "
                f"(chunks[1]={obj.chunks[1]}); every block must hold all the "
                f"columns. Call {name}.compute_chunk_sizes() or build it with "
                "known column chunks."
            )
        # Each block must hold whole rows: one chunk along the columns.
        obj = obj.rechunk({1: -1})
    lengths = None
    if not any(math.isnan(c) for c in obj.chunks[0]):
        lengths = [int(c) for c in obj.chunks[0]]
    return list(obj.to_delayed().ravel()), lengths


class _Source:
    """X, y and sample_weight as aligned lists of delayed row blocks."""

    def __init__(self, X, y, sample_weight=None):
        if not is_collection(X):
            raise TypeError(
                "y (or sample_weight) is a dask collection but X is "
                f"{type(X).__name__}; pass X as a dask Array or DataFrame too."
            )
        self.x, x_len = _row_blocks(X, "X", max_ndim=2)
        if not is_collection(y):
            raise TypeError(
                f"X is a dask collection but y is {type(y).__name__}; pass y as a "
                "dask Array, Series or DataFrame with the same blocks as X."
            )
        self.y, y_len = _row_blocks(y, "y", max_ndim=2)
        self.sw = None
        sw_len = None
        if sample_weight is not None:
            if not is_collection(sample_weight):
                raise TypeError(
                    "sample_weight must be a dask collection with the same blocks "
                    f"as X when X is one, got {type(sample_weight).__name__}."
                )
            self.sw, sw_len = _row_blocks(sample_weight, "sample_weight", max_ndim=1)
        for other, blocks, lengths in (
            ("y", self.y, y_len),
            ("sample_weight", self.sw, sw_len),
        ):
            if blocks is None:
                continue
            if len(blocks) != len(self.x) or (
                x_len is not None and lengths is not None and lengths != x_len
            ):
                raise ValueError(
                    f"X and {other} must have the same blocks along the rows: X has "
                    f"{len(self.x)} blocks {x_len or '(sizes unknown)'}, {other} has "
                    f"{len(blocks)} {lengths or '(sizes unknown)'}. Rechunk one to "
                    "the other's chunks (or take both from one DataFrame)."
                )
        self.lengths = x_len or y_len

    def __len__(self):
        return len(self.x)

    def load(self, i: int):
        """Block ``i`` as in-memory (X, y, sample_weight)."""
        import dask

        parts = (self.x[i], self.y[i]) + (() if self.sw is None else (self.sw[i],))
        out = dask.compute(*parts)
        return out if self.sw is not None else (*out, None)


def _check_numeric(meta):
    """Fail before reading any data when X's metadata says it is not numeric."""
    dtypes = getattr(meta, "dtypes", None)
    if dtypes is None:
        bad = [] if meta.dtype.kind in "biuf" else [str(meta.dtype)]
        where = f" (dtype {bad[0]})" if bad else ""
    else:
        import pandas as pd

        bad = [
            str(c)
            for c, d in dtypes.items()
            if not (pd.api.types.is_numeric_dtype(d) or pd.api.types.is_bool_dtype(d))
        ]
        where = f" (non-numeric columns: {bad})"
    if bad:
        raise ValueError(
            f"X must be numeric{where}; encode categorical or text features first "
            "(e.g. with OneHotEncoder)."
        )


# --------------------------------------------------------------------------- y pass
def _label_counts(present, name):
    try:
        return np.unique(present, return_counts=True)
    except TypeError:
        _unique_labels(present, name)  # raises the message naming the task
        raise


def _declared_classes(task_types, classes, names) -> list[bool]:
    """Which tasks are declared classification, by ``task_types`` or by their
    own ``classes``: their labels are kept whatever their values (0.5, 1.5,
    ...). One flat ``classes`` list declares no task by itself: it serves the
    classification tasks, and an undeclared column of non-integer values is a
    regression, as in memory.

    ``task_types`` may be the fitted tasks' ``[(name, is_classification)]``
    (a later call): y's columns are matched to them by name when y names every
    task, else by position, as the training call matches them.
    """
    n = len(names)
    if isinstance(task_types, list):
        fitted = dict(task_types)
        if set(map(str, names)) == set(fitted):
            return [fitted[str(name)] for name in names]
        return [kind for _, kind in task_types[:n]] + [False] * (n - len(task_types))
    try:
        kinds = resolve_per_task(task_types, names, "task_types", single_value_ok=False)
        given, flat = per_task_classes_of(classes, names)
    except (TypeError, ValueError):
        # Refused, with its message, when the tasks are built from the summaries.
        kinds, given, flat = [None] * n, [None] * n, None
    return [
        kind in CLASSIFICATION_KINDS
        or (kind is None and flat is None and labels is not None)
        for kind, labels in zip(kinds, given)
    ]


def _summarize_block(y_block, task_types=None, classes=None):
    """What the task encodings need from one block of y: small, whatever its size.

    A float column with a non-integer value keeps a few values that say it is
    continuous, unless its task is declared classification (``task_types``,
    ``classes``): then, as any other column, its labels and their counts.
    """
    columns, names, is_1d = split_target_columns(y_block)
    task_names = names or [f"task_{j}" for j in range(len(columns))]
    declared = _declared_classes(task_types, classes, task_names)
    summaries = []
    for j, col in enumerate(columns):
        name = task_names[j]
        values, missing = _labelled_values(col, name)
        present = values[~missing]
        s = {"n": int(present.size), "mean": 0.0, "var": 0.0, "sample": None}
        s["exact"] = None
        s["labels"], s["counts"] = present[:0], np.zeros(0, dtype=np.int64)
        if present.dtype.kind in "fiub" and present.size:
            p = present.astype(np.float64)
            s["mean"], s["var"] = float(p.mean()), float(p.var())
            # One block's own standardisation, as an in-memory fit computes it.
            s["exact"] = _standardisation(p, name)
            nonint = p != np.floor(p) if present.dtype.kind == "f" else None
            if nonint is not None and nonint.any() and not declared[j]:
                # Continuous: keep a few values that say so, not every value.
                s["sample"] = np.array([p.min(), p.max(), p[nonint][0]])
                summaries.append(s)
                continue
        s["labels"], s["counts"] = _label_counts(present, name)
        summaries.append(s)
    return len(columns[0]), names, is_1d, summaries


def _combine(a, b):
    """Merge two column summaries (Chan et al.'s pairwise mean and variance)."""
    n = a["n"] + b["n"]
    out = {"n": n, "mean": a["mean"], "var": a["var"], "exact": a["exact"]}
    if b["n"] and not a["n"]:
        out["mean"], out["var"], out["exact"] = b["mean"], b["var"], b["exact"]
    elif b["n"]:
        out["exact"] = None  # labels in several blocks: the pairwise merge below
        delta = b["mean"] - a["mean"]
        out["mean"] = a["mean"] + delta * b["n"] / n
        out["var"] = (
            a["n"] * a["var"] + b["n"] * b["var"] + delta**2 * a["n"] * b["n"] / n
        ) / n
    samples = [s for s in (a["sample"], b["sample"]) if s is not None]
    out["sample"] = np.concatenate(samples) if samples else None
    labels = np.concatenate([a["labels"], b["labels"]])
    counts = np.concatenate([a["counts"], b["counts"]])
    if labels.size:
        labels, inverse = np.unique(labels, return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=counts).astype(np.int64)
    out["labels"], out["counts"] = labels, counts
    return out


def _learn_tasks(estimator, source, classes):
    """One pass over y's blocks: lengths, task names, kinds, classes, scaling."""
    lengths, names, is_1d, merged = _summaries(
        source, getattr(estimator, "task_types", None), classes
    )
    n_tasks = len(merged)
    if names is None:
        names = [f"task_{i}" for i in range(n_tasks)]
    # Summary columns carry what build_tasks reads: the labels, or (continuous)
    # a few values of which one is not an integer.
    columns = [
        s["labels"]
        if s["sample"] is None
        else np.concatenate([s["sample"], s["labels"]])
        for s in merged
    ]
    tasks = estimator._build_tasks(columns, names, classes)
    for task, s in zip(tasks.tasks, merged):
        if task.kind == "regression":
            scale = math.sqrt(s["var"])
            task.mean, task.scale = s["mean"], scale if scale > 0 else 1.0
            if s["exact"] is not None:  # all labels in one block
                task.mean, task.scale = s["exact"]
    return tasks, names, is_1d, lengths, merged


def _summaries(source, task_types=None, classes=None):
    """One pass over y's blocks: their lengths, y's task names and 1-D-ness,
    and each task's summary merged over every block (labels and counts, or
    moments)."""
    import dask

    summarize = dask.delayed(_summarize_block)
    parts = dask.compute(*[summarize(b, task_types, classes) for b in source.y])
    lengths = [p[0] for p in parts]
    n_tasks = len(parts[0][3])
    if any(len(p[3]) != n_tasks for p in parts):
        raise ValueError("The blocks of y have different numbers of columns.")
    merged = []
    for j in range(n_tasks):
        s = parts[0][3][j]
        for p in parts[1:]:
            s = _combine(s, p[3][j])
        merged.append(s)
    return lengths, parts[0][1], parts[0][2], merged


def _resolve_balanced(class_weight, tasks, merged):
    """``"balanced"`` from the class counts of all blocks, as a fit in memory does."""
    per_task = per_task_class_weight(class_weight, tasks.names)
    resolved = {}
    for task, cw, s in zip(tasks.tasks, per_task, merged):
        if cw == "balanced" and task.is_classification:
            n, k = s["counts"].sum(), np.count_nonzero(s["counts"])
            cw = {
                label: float(n / (k * count))
                for label, count in zip(s["labels"].tolist(), s["counts"].tolist())
                if count > 0
            }
        resolved[task.name] = cw if task.is_classification else None
    return resolved


def _loss_weight_sums(tasks, class_weight, i, yb, swb):
    """Block ``i``'s ``TaskSet.loss_weight_sums`` (y and sample_weight only)."""
    return tasks.loss_weight_sums(_targets(tasks, class_weight, i, yb, swb))


def _baseline(source, tasks, class_weight, lengths):
    """The output baseline of a first fit, from the sums of every non-empty
    block of y (training skips empty blocks too)."""
    import dask

    weights = source.sw if source.sw is not None else [None] * len(source.y)
    parts = dask.compute(
        *[
            dask.delayed(_loss_weight_sums)(tasks, class_weight, i, yb, swb)
            for i, (yb, swb, n) in enumerate(zip(source.y, weights, lengths))
            if n > 0
        ]
    )
    sums = [sum(part[j] for part in parts) for j in range(len(tasks))]
    return tasks.baseline_from(sums)


def _block_counts(tasks, class_weight, i, yb, swb):
    """Block ``i``'s length and ``TaskSet.trainable_counts``."""
    targets = _targets(tasks, class_weight, i, yb, swb)
    return (len(targets), *tasks.trainable_counts(tasks.match_columns(yb), targets))


def _check_trainable(source, tasks, class_weight) -> list[int]:
    """``TaskSet.check_trainable`` over every block of y; the blocks' lengths."""
    import dask

    weights = source.sw if source.sw is not None else [None] * len(source.y)
    parts = dask.compute(
        *[
            dask.delayed(_block_counts)(tasks, class_weight, i, yb, swb)
            for i, (yb, swb) in enumerate(zip(source.y, weights))
        ]
    )
    tasks.check_trainable(sum(p[1] for p in parts), sum(p[2] for p in parts))
    return [p[0] for p in parts]


# --------------------------------------------------------------------------- fit
def _encoder(estimator, source, tasks, class_weight):
    """``load(i)`` for the engine's ``BlockDataset``: one block, validated and encoded.

    Each block goes through the checks of an in-memory fit: ``validate_inputs``
    (``reset=False``: the input encoding fitted on the first pass), the tasks'
    column matching, the row count and ``sample_weight``.
    """

    from ._inputs import unknown_categories

    def load(i):
        try:
            Xb, yb, swb = source.load(i)
            X, targets = _encode(estimator, tasks, class_weight, i, Xb, yb, swb)
            load.unknown_categories.update(unknown_categories(estimator, X))
            return X, targets
        except Exception as exc:
            # A block that cannot be read or fails its checks: recorded (the
            # error itself untouched), so that _BaseMultiTask._fit undoes the
            # call's training for it and for nothing else.
            load.block_errors.append(exc)
            raise

    load.block_errors = []
    # Categorical columns whose values the encoding does not know (a later
    # call): said once the call has trained, as an in-memory call says it.
    load.unknown_categories = set()
    return load


def _zero_block_ok() -> dict:
    """One block whose weights are all 0 is fine (the whole stream's are
    checked: a task of no positive weight is refused by the fit); scikit-learn
    1.8 made ``_check_sample_weight`` refuse all-zero weights by default."""
    import inspect

    from sklearn.utils.validation import _check_sample_weight

    params = inspect.signature(_check_sample_weight).parameters
    return (
        {"allow_all_zero_weights": True} if "allow_all_zero_weights" in params else {}
    )


_ZERO_BLOCK_OK = _zero_block_ok()


def _targets(tasks, class_weight, i, yb, swb, n_rows=None):
    """Block ``i``'s TaskTargets, through an in-memory fit's checks of y and
    ``sample_weight`` (and, given X's ``n_rows``, of the row count)."""
    from sklearn.utils.validation import _check_sample_weight

    columns = tasks.match_columns(yb)
    if n_rows is not None and columns[0].shape[0] != n_rows:
        raise ValueError(
            f"Block {i} of X has {n_rows} rows but block {i} of y has "
            f"{columns[0].shape[0]}: X and y must have the same blocks."
        )
    if swb is not None:
        swb = _check_sample_weight(
            np.asarray(swb),
            columns[0],
            dtype=np.float64,
            ensure_non_negative=True,
            **_ZERO_BLOCK_OK,
        )
    return tasks.encode(columns, swb, class_weight)


def _encode(estimator, tasks, class_weight, i, Xb, yb, swb):
    from ._inputs import validate_inputs

    X = validate_inputs(estimator, Xb, reset=False, dtype=np.float32)
    targets = _targets(tasks, class_weight, i, yb, swb, n_rows=X.shape[0])
    if not X.flags.writeable:
        X = X.copy()
    return X, targets


def _check_streamable(estimator, X) -> dict:
    """Before any data is read: X's columns must be numeric or have known categories.

    The input encoding is fitted on the first block; categories seen only in
    later blocks would silently become "unknown". A categorical column is
    taken only when its dtype lists every category (a ``category`` column with
    known categories, e.g. after ``X.categorize()``, or a bool column).

    Returns
    -------
    categories : dict
        Column index -> its categories as the in-memory encoding sorts them.
    """
    from ._inputs import _categories, resolve_categorical

    meta = X._meta if _is_frame(X) else np.empty((0, X.shape[1]), X.dtype)
    categorical = resolve_categorical(estimator.categorical_features, meta)
    names = [str(c) for c in meta.columns] if hasattr(meta, "columns") else None
    known = {}
    for j in categorical:
        values = _dtype_categories(meta.iloc[:, j]) if names else None
        if values is not None:
            name = repr(names[j])
            known[j] = _categories(values, np.zeros(len(values), dtype=bool), name)
    unknown = [j for j in categorical if j not in known]
    if unknown:
        shown = [names[j] for j in unknown] if names else unknown
        how = (
            f"X.categorize(columns={shown}) (one pass over the data)"
            if names
            else "a dask DataFrame with category columns"
        )
        raise ValueError(
            f"Categorical columns {shown} of X have no known categories. Streaming "
            "from dask learns the input encoding before it reads every block, so "
            "categories seen only in later blocks would be lost. Make the "
            f"categories known first with {how}, or encode the columns as "
            "numbers and set categorical_features=None."
        )
    numeric = [j for j in range(meta.shape[1]) if j not in known]
    _check_numeric(meta.iloc[:, numeric] if names else meta)
    return known


def _dtype_categories(column):
    """Every category ``column``'s dtype allows (object array), or None if unknown."""
    import pandas as pd
    from dask.dataframe.utils import has_known_categories

    from ._inputs import _dtype_categories as listed

    if isinstance(column.dtype, pd.CategoricalDtype) and not has_known_categories(
        column
    ):
        return None
    return listed(column)


def prepare_fit(estimator, X, y, sample_weight, first_pass, classes, incremental):
    """The fit plan of ``estimator`` for dask collections (``_prepare_fit``'s twin).

    A first pass reads y once, block by block, to learn the tasks (names,
    kinds, classes, regression scaling, ``"balanced"`` class weights from the
    counts of all blocks), and fits the input encoding on the first block of
    X. A first ``fit`` reads y (and sample_weight) once more for the output
    baseline, from every block as an in-memory fit takes it from every row.
    ``plan.data`` is the engine's ``BlockDataset``: the training itself is
    the in-memory fit's (``_commit``, ``_train``, ``engine.partial_fit``).
    """
    from ._engine import BlockDataset
    from ._inputs import validate_inputs

    source = _Source(X, y, sample_weight)
    class_weight = estimator._class_weight()
    names = is_1d = baseline = None
    if first_pass:
        categories = _check_streamable(estimator, X)
        tasks, names, is_1d, lengths, merged = _learn_tasks(estimator, source, classes)
        class_weight = _resolve_balanced(class_weight, tasks, merged)
        first = next((i for i, n in enumerate(lengths) if n > 0), None)
        if first is not None:
            Xb, yb, swb = source.load(first)
            validate_inputs(estimator, Xb, reset=True, dtype=np.float32)
            spec = estimator.inputs_
            if set(spec["categorical"]) != set(categories):
                raise ValueError(
                    f"Block {first} of X has categorical columns "
                    f"{spec['categorical']} but X's metadata says "
                    f"{sorted(categories)}: its blocks must have the dtypes of its "
                    "metadata."
                )
            # Every category the dtype lists, not only those of the first block.
            spec["categories"] = [categories[j] for j in spec["categorical"]]
            # Bin edges (if any) learned on the first block, as the input encoding.
            estimator._fit_embeddings(
                lambda: _encode(estimator, tasks, class_weight, first, Xb, yb, swb),
                tasks,
            )
        if not incremental:
            baseline = _baseline(source, tasks, class_weight, lengths)
    else:
        tasks = estimator.tasks_
        lengths = source.lengths
        balanced = any(
            cw == "balanced" for cw in per_task_class_weight(class_weight, tasks.names)
        )
        if balanced:
            # Every call weighs by the class counts of all its blocks, as an
            # in-memory partial_fit weighs by those of its rows (not block by
            # block).
            fitted = [(t.name, t.is_classification) for t in tasks.tasks]
            lengths, y_names, _, merged = _summaries(source, fitted)
            if y_names is not None and sorted(map(str, y_names)) == sorted(
                tasks.names
            ):  # a DataFrame's columns are matched to the tasks by name
                y_names = [str(n) for n in y_names]
                merged = [merged[y_names.index(name)] for name in tasks.names]
            if len(merged) != len(tasks.names):
                raise ValueError(
                    f"y has {len(merged)} columns but the model was fitted on "
                    f"{len(tasks.names)} tasks {tasks.names}."
                )
            for task, summary in zip(tasks.tasks, merged):
                if task.is_classification:
                    # A label the model does not know gets the task's own error
                    # (not one about class_weight), before any training.
                    labels = np.asarray(summary["labels"])
                    task.encode(labels, np.zeros(labels.shape, dtype=bool))
            class_weight = _resolve_balanced(class_weight, tasks, merged)
        if not incremental:
            # A warm fit checks y as a first fit does (a task with no labelled
            # row, or none of positive weight), from counts of every block.
            lengths = _check_trainable(source, tasks, class_weight)
        elif lengths is None:
            import dask

            lengths = list(dask.compute(*[dask.delayed(len)(b) for b in source.y]))
    blocks = [i for i, n in enumerate(lengths) if n > 0]
    if not blocks:
        raise ValueError("The dask collections passed to fit have no rows.")
    plan = estimator._plan(sum(lengths), first_pass, tasks, names, is_1d, baseline)
    load = _encoder(estimator, source, tasks, class_weight)
    plan.data = BlockDataset(load, lengths, blocks, device=plan.engine.device)
    plan.data.block_errors = load.block_errors
    plan.data.unknown_categories = load.unknown_categories
    return plan


# --------------------------------------------------------------------------- predict
def _outputs_block(block, estimator, width, dtype):
    if block.shape[0] == 0:
        return np.empty((0, width), dtype=dtype)
    return estimator._outputs(block).astype(dtype, copy=False)


def _outputs_frame(part, estimator, width, dtype):
    import pandas as pd

    out = _outputs_block(part, estimator, width, dtype)
    return pd.DataFrame(out, index=part.index, columns=_out_columns(width))


def _out_columns(width):
    return [f"output_{i}" for i in range(width)]


def _decode(outputs, estimator, method, task=None):
    """Predictions (or one task's probabilities) from network outputs."""
    outputs = np.asarray(outputs)
    tasks = estimator.tasks_
    if method == "predict_proba":
        return tasks.tasks[task].probabilities(tasks.slice(outputs, task))
    preds = tasks.predict(outputs)
    return preds[0] if estimator._y_1d else stack_predictions(preds)


def _decode_frame(outputs, estimator, method, task=None):
    import pandas as pd

    index = outputs.index
    if method == "predict_proba":
        proba = _decode(outputs, estimator, method, task)
        labels = estimator.tasks_.tasks[task].classes.tolist()
        return pd.DataFrame(proba, index=index, columns=[str(c) for c in labels])
    preds = estimator.tasks_.predict(np.asarray(outputs))
    # dtype given: pandas would infer a string dtype for labels, not the meta's.
    columns = {
        name: pd.Series(p, index=index, dtype=p.dtype, name=name)
        for name, p in zip(estimator.task_names_, preds)
    }
    if estimator._y_1d:
        return next(iter(columns.values()))
    return pd.DataFrame(columns, index=index)


def _lazy_outputs(estimator, X):
    """The network outputs of a dask DataFrame or 2-D Array, block by block.

    Returns ``(X, outputs, dtype)``: X (an Array rechunked to whole rows), the
    lazy outputs (a DataFrame with X's index, or an Array with X's row chunks)
    and their dtype (float32 for float32 X, else float64).
    """
    import dask.array as da

    width = int(estimator.tasks_.offsets[-1])
    if _is_frame(X):
        if not hasattr(X, "columns"):
            raise ValueError("X must be a dask DataFrame or a 2-D dask Array.")
        float32 = all(str(d) == "float32" for d in X.dtypes)
        dtype = np.float32 if float32 else np.float64
        out_meta = _outputs_frame(X._meta, estimator, width, dtype)
        outputs = X.map_partitions(
            _outputs_frame, estimator, width, dtype, meta=out_meta
        )
        return X, outputs, dtype
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask Array or DataFrame, got {type(X).__name__}.")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got a dask array of shape {X.shape}.")
    if X.numblocks[1] != 1:
        if any(math.isnan(c) for c in X.chunks[1]):
            raise ValueError(
                f"X has unknown chunk sizes along its columns (chunks[1]="
                f"{X.chunks[1]}); call X.compute_chunk_sizes() first."
            )
        X = X.rechunk({1: -1})
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    outputs = X.map_blocks(
        _outputs_block,
        estimator,
        width,
        dtype,
        chunks=(X.chunks[0], (width,)),
        dtype=dtype,
        meta=np.empty((0, width), dtype=dtype),
    )
    return X, outputs, dtype


def gather_outputs(estimator, X, *also):
    """The network outputs of a dask collection, gathered: (n_samples, width),
    small beside X, which is never gathered; and ``also`` (y, sample_weight:
    dask collections or not) computed in the same pass."""
    import dask

    _, lazy, _ = _lazy_outputs(estimator, X)
    out, *also = dask.compute(lazy, *also)
    return (np.asarray(out.to_numpy() if hasattr(out, "to_numpy") else out), *also)


def predict(estimator, X, method="predict"):
    """``predict`` / ``predict_proba`` of a fitted estimator on a dask collection.

    A dask Array gives dask Arrays with X's row chunks; a dask DataFrame gives a
    dask Series / DataFrame (predictions, one column per task) or DataFrames of
    probabilities (one column per class, named ``str(label)``) with X's index.
    The network runs once per block, shared by every task's output.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    tasks = estimator.tasks_
    width = int(tasks.offsets[-1])
    wanted = (
        [i for i, t in enumerate(tasks.tasks) if t.is_classification]
        if method == "predict_proba"
        else [None]
    )
    X, outputs, dtype = _lazy_outputs(estimator, X)
    if _is_frame(X):
        out_meta = outputs._meta
        results = [
            outputs.map_partitions(
                _decode_frame,
                estimator,
                method,
                task,
                meta=_decode_frame(out_meta, estimator, method, task),
            )
            for task in wanted
        ]
    else:  # a dask Array
        results = []
        for task in wanted:
            meta = _decode(np.empty((0, width), dtype), estimator, method, task)
            if meta.ndim == 1:
                kwargs = dict(drop_axis=1, chunks=(X.chunks[0],))
            else:
                kwargs = dict(chunks=(X.chunks[0], (meta.shape[1],)))
            results.append(
                outputs.map_blocks(
                    _decode,
                    estimator,
                    method,
                    task,
                    dtype=meta.dtype,
                    meta=meta,
                    **kwargs,
                )
            )
    if method != "predict_proba":
        return results[0]
    probas = [None] * len(tasks.tasks)
    for task, result in zip(wanted, results):
        probas[task] = result
    return probas[0] if estimator._y_1d else probas


def score(estimator, X, y, sample_weight=None) -> float:
    """``score`` on dask collections: the network runs block by block.

    Only its outputs (n_samples x output width), y and sample_weight are
    gathered, never X; predictions are decoded from them as in memory.
    """
    outputs, y, sample_weight = gather_outputs(estimator, X, y, sample_weight)
    preds = estimator.tasks_.predict(outputs)
    columns = estimator.tasks_.match_columns(y)
    return estimator.tasks_.mean_score(preds, columns, sample_weight)

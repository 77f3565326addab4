"""Streaming fit and block-wise predict over dask collections (optional extra).

Imported by the estimators only when a dask collection is passed (dask itself is
imported inside the functions). The coupling to the rest of the package is one
hook in each direction:

- the estimator calls :func:`fit` from ``_fit`` and :func:`predict` from
  ``predict`` / ``predict_proba`` when :func:`is_collection` says an argument is
  a dask collection, and :func:`match_worker_threads` at the start of every fit;
- this module calls the engine's ``train_epochs(None, None, epochs, ...,
  batches=BlockBatches(...))``: ``batches`` is a re-iterable of
  ``(X_batch, targets_batch)`` device tensors, one pass per epoch, used in place
  of the engine's in-memory ``TensorBatches``. Everything else (stopping,
  divergence, validation scores, history, callbacks) is the engine's.

Training streams blocks (dask array chunks along rows, or dataframe partitions):
each epoch visits the training blocks in a shuffled order and shuffles the rows
inside each block; the next block is loaded and encoded in a background thread
while the current one trains. Memory holds about two blocks at a time (plus the
held-out validation blocks with ``early_stopping=True``), whatever the data size.
"""

from __future__ import annotations

import math
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ._tasks import (
    _labelled_values,
    _unique_labels,
    build_tasks,
    per_task_class_weight,
    split_target_columns,
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


def _summarize_block(y_block):
    """What the task encodings need from one block of y: small, whatever its size."""
    columns, names, is_1d = split_target_columns(y_block)
    summaries = []
    for j, col in enumerate(columns):
        name = names[j] if names else f"task_{j}"
        values, missing = _labelled_values(col, name)
        present = values[~missing]
        s = {"n": int(present.size), "mean": 0.0, "var": 0.0, "sample": None}
        s["labels"], s["counts"] = present[:0], np.zeros(0, dtype=np.int64)
        if present.dtype.kind in "fiub" and present.size:
            p = present.astype(np.float64)
            s["mean"], s["var"] = float(p.mean()), float(p.var())
            nonint = p != np.floor(p) if present.dtype.kind == "f" else None
            if nonint is not None and nonint.any():
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
    out = {"n": n, "mean": a["mean"], "var": a["var"]}
    if b["n"] and not a["n"]:
        out["mean"], out["var"] = b["mean"], b["var"]
    elif b["n"]:
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
    import dask

    parts = dask.compute(*[dask.delayed(_summarize_block)(b) for b in source.y])
    lengths = [p[0] for p in parts]
    names, is_1d = parts[0][1], parts[0][2]
    n_tasks = len(parts[0][3])
    if any(len(p[3]) != n_tasks for p in parts):
        raise ValueError("The blocks of y have different numbers of columns.")
    merged = []
    for j in range(n_tasks):
        s = parts[0][3][j]
        for p in parts[1:]:
            s = _combine(s, p[3][j])
        merged.append(s)
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
    tasks = build_tasks(
        columns,
        names,
        getattr(estimator, "task_types", None),
        classes,
        estimator._force_kind,
    )
    for task, s in zip(tasks.tasks, merged):
        if task.kind == "regression":
            scale = math.sqrt(s["var"])
            task.mean, task.scale = s["mean"], scale if scale > 0 else 1.0
    return tasks, names, is_1d, lengths, merged


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
        resolved[task.name] = cw
    return resolved


# --------------------------------------------------------------------------- batches
class BlockBatches:
    """Mini-batches streamed from in-memory blocks; each pass is one epoch.

    Dask-free: ``load(i)`` returns block ``i`` as ``(X, targets)`` numpy arrays
    (float32, C-ordered). Each pass visits ``block_ids`` in an order drawn from
    ``rng`` (when ``shuffle``), loads the next block in a background thread while
    the current one trains, and draws the block's batches by index as the engine's
    in-memory ``TensorBatches`` does (the same ``generator``): with one block, the
    batches are those of an in-memory fit, bit for bit.

    Parameters
    ----------
    load : callable
        ``load(i) -> (X, targets)``.
    block_ids : list of int
    lengths : list of int
        Rows of every block (indexed by block id).
    batch_size : int
    device : str
    shuffle : bool
    generator : torch.Generator
        Shuffles rows inside a block.
    rng : numpy.random.RandomState
        Shuffles the order of the blocks.
    """

    def __init__(
        self, load, block_ids, lengths, batch_size, device, shuffle, generator, rng
    ):
        self.load = load
        self.block_ids = list(block_ids)
        self.lengths = lengths
        self.batch_size = int(batch_size)
        self.device = device
        self.shuffle = shuffle
        self.generator = generator
        self.rng = rng

    def __len__(self):
        return sum(math.ceil(self.lengths[i] / self.batch_size) for i in self.block_ids)

    def __iter__(self):
        from ._engine import TensorBatches

        order = list(self.block_ids)
        if self.shuffle:
            self.rng.shuffle(order)
        with ThreadPoolExecutor(1, thread_name_prefix="sklearn-mtl-prefetch") as pool:
            pending = pool.submit(self.load, order[0])
            for k in range(len(order)):
                X, targets = pending.result()
                if k + 1 < len(order):
                    pending = pool.submit(self.load, order[k + 1])
                X_t = torch.as_tensor(X, device=self.device)
                t_t = torch.as_tensor(targets, device=self.device)
                yield from TensorBatches(
                    X_t, t_t, self.batch_size, self.shuffle, self.generator
                )
                del X_t, t_t, X, targets


def _encoder(estimator, source, class_weight):
    """``load(i)`` for :class:`BlockBatches`: one block, validated and encoded."""
    from sklearn.utils.validation import _check_sample_weight

    from ._estimator import _validate_X

    tasks = estimator.tasks_

    def load(i):
        Xb, yb, swb = source.load(i)
        X = _validate_X(estimator, Xb, reset=False, dtype=np.float32, order="C")
        columns, names, _ = split_target_columns(yb)
        if names is not None and names != estimator.task_names_:
            raise ValueError(
                f"y has columns {names} but the model was fitted on tasks "
                f"{estimator.task_names_}."
            )
        if columns[0].shape[0] != X.shape[0]:
            raise ValueError(
                f"Block {i} of X has {X.shape[0]} rows but block {i} of y has "
                f"{columns[0].shape[0]}: X and y must have the same blocks."
            )
        if swb is not None:
            swb = _check_sample_weight(
                np.asarray(swb), X, dtype=np.float64, ensure_non_negative=True
            )
        targets = tasks.encode(columns, swb, class_weight)
        if not X.flags.writeable:
            X = X.copy()
        return X, targets

    return load


# --------------------------------------------------------------------------- fit
def fit(estimator, X, y, sample_weight=None, *, incremental=False, classes=None):
    """Streaming ``fit`` / ``partial_fit`` of ``estimator`` on dask collections.

    The training part mirrors ``MultiTaskNeuralEstimator._fit`` after encoding
    (same optimizer settings, stopping rules, seeds, history and warnings); only
    the data path differs: the engine draws its batches from
    :class:`BlockBatches` instead of tensors held in memory.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state

    from ._engine import PRECISIONS, TrainingDivergedError
    from ._estimator import _seeded, _validate_X

    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y "
            "is None."
        )
    first_pass = not hasattr(estimator, "net_") or (
        not estimator.warm_start and not incremental
    )
    source = _Source(X, y, sample_weight)
    class_weight = getattr(estimator, "class_weight", None)
    if first_pass:
        # Feature names and count from the collection's metadata, no data read.
        meta = X._meta if _is_frame(X) else np.empty((0, X.shape[1]), X.dtype)
        _check_numeric(meta)
        _validate_X(estimator, meta, reset=True, dtype=np.float32, ensure_min_samples=0)
        tasks, names, is_1d, lengths, merged = _learn_tasks(estimator, source, classes)
        n_rows = sum(lengths)
        # _initialize reads only the shape of X (features; rows for batch_size).
        shape_only = np.broadcast_to(np.float32(0), (n_rows, estimator.n_features_in_))
        estimator._initialize(shape_only, None, names, is_1d, classes, tasks=tasks)
        class_weight = _resolve_balanced(class_weight, tasks, merged)
    else:
        lengths = source.lengths
        if lengths is None:
            import dask

            lengths = list(dask.compute(*[dask.delayed(len)(b) for b in source.y]))
        n_rows = sum(lengths)
    blocks = [i for i, n in enumerate(lengths) if n > 0]
    if not blocks:
        raise ValueError("The dask collections passed to fit have no rows.")

    net = estimator.net_
    net.batch_size = (
        min(200, n_rows) if estimator.batch_size == "auto" else estimator.batch_size
    )
    for group in net.optimizer_.param_groups:
        group["lr"] = estimator.learning_rate_init
    net.autocast_dtype = PRECISIONS[estimator.precision]
    net.compile_forward = estimator.compile
    stopping = dict(net.callbacks_)["stopping"]
    stopping.tol = estimator.tol
    stopping.n_iter_no_change = estimator.n_iter_no_change
    stopping.early_stopping = estimator.early_stopping and not incremental
    if first_pass or not stopping.early_stopping:
        stopping.initialize()

    epochs_before = len(net.history)
    seed = check_random_state(estimator.random_state).randint(2**31 - 1)
    seed = (seed + epochs_before) % (2**31)
    rng = np.random.RandomState(seed)
    load = _encoder(estimator, source, class_weight)
    device = net.device
    valid = None
    if stopping.early_stopping:
        blocks, valid = _held_out(estimator, blocks, lengths, load, rng, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    batches = BlockBatches(
        load, blocks, lengths, net.batch_size, device, estimator.shuffle, generator, rng
    )
    epochs = 1 if incremental else estimator.max_iter
    try:
        with _seeded(seed, device):
            stopped = net.train_epochs(
                None,
                None,
                epochs,
                stopping=stopping,
                shuffle=estimator.shuffle,
                valid=valid,
                generator=generator,
                batches=batches,
            )
    except TrainingDivergedError:
        estimator._record_history()
        raise
    estimator._record_history()
    ran_all = len(net.history) - epochs_before == epochs
    if not incremental and not stopped and ran_all:
        warnings.warn(
            f"Stochastic Optimizer: Maximum iterations ({estimator.max_iter}) reached "
            "and the optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=5,
        )
    return estimator


def _held_out(estimator, blocks, lengths, load, rng, device):
    """Hold out whole blocks for early stopping: ``validation_fraction`` of them."""
    n_valid = math.ceil(estimator.validation_fraction * len(blocks))
    if n_valid >= len(blocks):
        raise ValueError(
            f"early_stopping holds out whole blocks: validation_fraction="
            f"{estimator.validation_fraction} of {len(blocks)} blocks leaves none "
            "for training. Use more blocks (smaller chunks or more partitions) or "
            "a smaller validation_fraction."
        )
    chosen = sorted(rng.choice(len(blocks), n_valid, replace=False).tolist())
    valid_ids = [blocks[i] for i in chosen]
    if sum(lengths[i] for i in valid_ids) < 2:
        raise ValueError(
            "The validation set is too small: the held-out blocks have fewer than "
            "2 rows. Increase 'validation_fraction' or the block size."
        )
    loaded = [load(i) for i in valid_ids]
    X_valid = np.concatenate([x for x, _ in loaded])
    t_valid = np.concatenate([t for _, t in loaded])
    valid = (
        torch.as_tensor(X_valid, device=device),
        torch.as_tensor(t_valid, device=device),
    )
    held_out = set(valid_ids)
    return [b for b in blocks if b not in held_out], valid


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
    from ._estimator import _stack_predictions

    outputs = np.asarray(outputs)
    tasks = estimator.tasks_
    if method == "predict_proba":
        return tasks.tasks[task].probabilities(tasks.slice(outputs, task))
    preds = tasks.predict(outputs)
    return preds[0] if estimator._y_1d else _stack_predictions(preds)


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


def predict(estimator, X, method="predict"):
    """``predict`` / ``predict_proba`` of a fitted estimator on a dask collection.

    A dask Array gives dask Arrays with X's row chunks; a dask DataFrame gives a
    dask Series / DataFrame (predictions, one column per task) or DataFrames of
    probabilities (one column per class, named ``str(label)``) with X's index.
    The network runs once per block, shared by every task's output.
    """
    import dask.array as da
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    tasks = estimator.tasks_
    width = int(tasks.offsets[-1])
    wanted = (
        [i for i, t in enumerate(tasks.tasks) if t.is_classification]
        if method == "predict_proba"
        else [None]
    )
    if _is_frame(X):
        if not hasattr(X, "columns"):
            raise ValueError("X must be a dask DataFrame or a 2-D dask Array.")
        float32 = all(str(d) == "float32" for d in X.dtypes)
        dtype = np.float32 if float32 else np.float64
        out_meta = _outputs_frame(X._meta, estimator, width, dtype)
        outputs = X.map_partitions(
            _outputs_frame, estimator, width, dtype, meta=out_meta
        )
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
    elif isinstance(X, da.Array):
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
    else:
        raise TypeError(f"X must be a dask Array or DataFrame, got {type(X).__name__}.")
    if method != "predict_proba":
        return results[0]
    probas = [None] * len(tasks.tasks)
    for task, result in zip(wanted, results):
        probas[task] = result
    return probas[0] if len(probas) == 1 else probas


def score(estimator, X, y, sample_weight=None) -> float:
    """``score`` on dask collections: predictions computed block by block.

    Only the predictions, y and sample_weight are gathered (n_samples x n_tasks
    values), never X.
    """
    import dask

    pred, y, sample_weight = dask.compute(predict(estimator, X), y, sample_weight)
    if hasattr(pred, "columns"):
        preds = [pred[c].to_numpy() for c in pred.columns]
    elif getattr(pred, "ndim", 1) == 1:
        preds = [np.asarray(pred)]
    else:
        preds = [pred[:, j] for j in range(pred.shape[1])]
    columns, _, _ = split_target_columns(y)
    return float(np.mean(estimator.tasks_.score(preds, columns, sample_weight)))

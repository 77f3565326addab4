"""The training and inference run: skorch's ``NeuralNet``, used the skorch way.

:class:`MultiTaskEngine` is a :class:`skorch.NeuralNet` whose extension points
carry the multi-task run:

- ``module`` / ``criterion`` are builders called by ``initialize`` under the
  engine's seed (``random_state``), so initialisation is reproducible even when
  several fits run in parallel threads;
- ``dataset`` is :class:`TaskDataset` (device tensors of X and the encoded
  :class:`~sklearn_mtl._tasks.TaskTargets`) and ``get_iterator`` returns
  :class:`TensorBatches`, which slices those tensors on the device: no per-row
  ``Dataset.__getitem__``, no host-device copy per batch; streamed data is a
  :class:`BlockDataset` (blocks loaded one at a time), which ``get_iterator``
  turns into :class:`BlockBatches` (blocks in a shuffled order, rows shuffled
  inside a block, the next block loaded while the current one trains);
- ``train_split`` is :class:`ValidationSplit` (scikit-learn MLP's
  ``validation_fraction``); ``validation_step`` scores it per task;
- stopping (:class:`MLPStopping`) and divergence (:class:`DivergenceGuard`) are
  callbacks; any skorch callback passed in ``callbacks`` works beside them;
- losses are accumulated on the device and read once per epoch.

The estimators call :meth:`MultiTaskEngine.partial_fit` with a dataset, read the
history, and persist through :meth:`MultiTaskEngine.get_state` /
:meth:`MultiTaskEngine.set_state`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import sys
import threading
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer
from skorch.utils import TeeGenerator
from torch import nn

from ._progress import progress_callbacks
from ._sparse import SparseBatch, SparseRows, take_rows
from ._tasks import MultiTaskLoss, TaskTargets

#: ``precision`` parameter value -> autocast dtype (None: plain float32).
PRECISIONS = {"float32": None, "bf16": torch.bfloat16}

#: Rows per forward pass at inference and validation.
INFERENCE_BATCH = 8192

# Module initialisation seeds torch's process-wide generator: one fit at a time.
_INIT_LOCK = threading.Lock()


def fast_adam_kwargs(device_type: str) -> dict:
    """Adam options for the fastest multi-tensor update on ``device_type``.

    ``fused=True`` (one kernel for every parameter) where this torch has fused
    Adam kernels for the device, else ``foreach=True``; the default
    single-tensor loop costs about as much as a small network's forward and
    backward pass. Decided from torch's list of devices, without building an
    optimizer.
    """
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    if device_type in _get_fused_kernels_supported_devices():
        return {"fused": True}
    return {"foreach": True}


@contextlib.contextmanager
def _deferred_interrupt():
    """Hold back Ctrl-C until the block ends (main thread only).

    torch's optimizers import ``torch._dynamo`` (and sympy) on first use; a
    KeyboardInterrupt in the middle of that import leaves half-imported modules
    that break the whole process. The interrupt is delivered after the block,
    to the handler that was in place (so a process that ignores SIGINT, as a
    background job does, still ignores it).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    except (ValueError, OSError):  # pragma: no cover - no signal support here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # for the restored handler


def _prepare_optimizers():
    """Import what torch's optimizers import on first use, safe from Ctrl-C."""
    if "torch._dynamo" in sys.modules:
        return
    with _deferred_interrupt():
        import torch._dynamo  # noqa: F401


def _overrides(callback, method: str) -> bool:
    return getattr(type(callback), method, None) is not getattr(Callback, method)


class TrainingDivergedError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite.

    The model keeps the last weights with a finite loss.
    """


class _StopTraining(Exception):
    """A callback asked to stop (skorch's convention: KeyboardInterrupt)."""


# --------------------------------------------------------------------------- data
class TaskDataset:
    """Rows of ``X`` and their encoded targets, as tensors on the device.

    The engine's skorch ``dataset``: :class:`TensorBatches` slices it. ``y`` is
    a :class:`~sklearn_mtl._tasks.TaskTargets` (or None at inference).
    """

    def __init__(self, X, y: TaskTargets | None = None):
        self.X = X
        self.y = y

    def __len__(self) -> int:
        return self.X.shape[0]

    def take(self, index) -> TaskDataset:
        """The rows at ``index`` (a long tensor on the data's device)."""
        y = None if self.y is None else self.y.take(index)
        return TaskDataset(take_rows(self.X, index), y)  # sparse X stays sparse


class TensorBatches:
    """Mini-batches drawn by index from a :class:`TaskDataset` on the device.

    One ``randperm`` per epoch (from ``generator``); each batch is one gather of
    ``X`` and one of the packed targets. Yields ``(X_batch, targets_batch)``.
    """

    def __init__(self, dataset, batch_size, shuffle=False, generator=None):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        X, y = self.dataset.X, self.dataset.y
        n, bs = X.shape[0], self.batch_size
        if not self.shuffle:
            for start in range(0, n, bs):
                yield (
                    X[start : start + bs],
                    None if y is None else y.rows(start, start + bs),
                )
            return
        order = torch.randperm(n, generator=self.generator, device=X.device)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            # index_select is several times faster than X[idx] on CPU, same values.
            yield X.index_select(0, idx), y.take(idx)


class BlockDataset:
    """Rows streamed in blocks that are loaded one at a time (data larger than memory).

    The engine's skorch ``dataset`` for streamed data (e.g. the blocks of a dask
    collection, see ``sklearn_mtl/_dask.py``); ``get_iterator`` turns it into
    :class:`BlockBatches`. Nothing here knows where the blocks come from.

    Parameters
    ----------
    load : callable
        ``load(i) -> (X, targets)``: block ``i`` validated and encoded, ``X`` a
        float32 C-ordered array and ``targets`` a numpy
        :class:`~sklearn_mtl._tasks.TaskTargets`.
    lengths : list of int
        Rows of every block.
    block_ids : list of int, default=None
        The blocks of this dataset (all by default).
    device : str, default="cpu"
        Where the held-out blocks go when :meth:`split` materialises them.
    """

    def __init__(self, load, lengths, block_ids=None, device="cpu"):
        self.load = load
        self.lengths = [int(n) for n in lengths]
        ids = range(len(self.lengths)) if block_ids is None else block_ids
        self.block_ids = list(ids)
        self.device = device

    def __len__(self) -> int:
        return sum(self.lengths[i] for i in self.block_ids)

    def subset(self, block_ids) -> BlockDataset:
        """The same source restricted to ``block_ids``."""
        return BlockDataset(self.load, self.lengths, block_ids, self.device)

    def materialize(self) -> TaskDataset:
        """Every block loaded and concatenated, as tensors on the device."""
        loaded = [self.load(i) for i in self.block_ids]
        X = np.concatenate([x for x, _ in loaded])
        packed = np.concatenate([t.packed for _, t in loaded])
        targets = TaskTargets(packed, loaded[0][1].n_tasks)
        return TaskDataset(
            torch.as_tensor(X, device=self.device), targets.to(self.device)
        )

    #: Most rows held out for validation from a stream (at least one block):
    #: the held-out blocks stay in memory, so they must not grow with the data.
    MAX_VALID_ROWS = 200_000

    def split(self, fraction: float, random_state: int):
        """Hold out ``ceil(fraction * n_blocks)`` whole blocks, drawn at random.

        At most :attr:`MAX_VALID_ROWS` rows (and at least one block) are held
        out: the held-out blocks are loaded once and kept in memory as a
        :class:`TaskDataset`. Returns the training blocks (still streamed) and
        the held-out ones.
        """
        blocks = self.block_ids
        chosen = self.held_out(fraction, random_state)
        valid = self.subset([b for k, b in enumerate(blocks) if k in chosen])
        train = self.subset([b for k, b in enumerate(blocks) if k not in chosen])
        return train, valid.materialize()

    def held_out(self, fraction: float, random_state: int) -> set:
        """The positions (in ``block_ids``) of the blocks :meth:`split` holds
        out; a ValueError when that leaves too little on either side. Reads
        no data: a call checks it before it changes the model."""
        blocks = self.block_ids
        n_valid = math.ceil(fraction * len(blocks))
        block_rows = max(1, max(self.lengths[b] for b in blocks))
        n_valid = min(n_valid, max(1, self.MAX_VALID_ROWS // block_rows))
        if n_valid >= len(blocks):
            raise ValueError(
                f"early_stopping holds out whole blocks: validation_fraction="
                f"{fraction} of {len(blocks)} blocks leaves none for training. Use "
                "more blocks (smaller chunks or more partitions)"
                + (
                    " or a smaller validation_fraction."
                    if len(blocks) > 1
                    else ": one block is always held out whole."
                )
            )
        rng = np.random.RandomState(random_state)
        chosen = set(rng.choice(len(blocks), n_valid, replace=False).tolist())
        if sum(self.lengths[b] for k, b in enumerate(blocks) if k in chosen) < 2:
            raise ValueError(
                "The validation set is too small: the held-out blocks have fewer "
                "than 2 rows. Increase 'validation_fraction' or the block size."
            )
        return chosen


class BlockBatches:
    """Mini-batches streamed from a :class:`BlockDataset`; each pass is one epoch.

    Each pass visits the blocks in an order drawn from ``generator`` (when
    ``shuffle`` and there are several), loads the next block in a background
    thread while the current one trains, and draws the block's batches with
    :class:`TensorBatches` (the same ``generator``): with one block, the batches
    are those of an in-memory fit, bit for bit. Memory holds about two blocks.
    """

    def __init__(self, dataset, batch_size, shuffle=False, generator=None):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:
        lengths, bs = self.dataset.lengths, self.batch_size
        return sum(math.ceil(lengths[i] / bs) for i in self.dataset.block_ids)

    def __iter__(self):
        from concurrent.futures import ThreadPoolExecutor

        dataset = self.dataset
        order = list(dataset.block_ids)
        if self.shuffle and len(order) > 1:
            gen = self.generator
            device = None if gen is None else gen.device
            perm = torch.randperm(len(order), generator=gen, device=device).tolist()
            order = [order[k] for k in perm]
        with ThreadPoolExecutor(1, thread_name_prefix="sklearn-mtl-prefetch") as pool:
            pending = pool.submit(dataset.load, order[0])
            for k in range(len(order)):
                X, targets = pending.result()
                if k + 1 < len(order):
                    pending = pool.submit(dataset.load, order[k + 1])
                block = TaskDataset(
                    torch.as_tensor(X, device=dataset.device),
                    targets.to(dataset.device),
                )
                del X, targets
                yield from TensorBatches(
                    block, self.batch_size, self.shuffle, self.generator
                )
                del block


class ValidationSplit:
    """skorch ``train_split``: hold out ``fraction`` of the rows for validation.

    As scikit-learn's MLP: a random split seeded by ``random_state``, stratified
    when ``stratify`` (one fully labelled classification task) and every class
    can be represented on both sides. A :class:`BlockDataset` holds out whole
    blocks instead (:meth:`BlockDataset.split`).
    """

    def __init__(self, fraction: float, random_state: int, stratify: bool = False):
        self.fraction = fraction
        self.random_state = random_state
        self.stratify = stratify

    def check_data(self, dataset) -> None:
        """:meth:`check` of ``dataset`` (whole blocks of a stream), before a
        call changes the model."""
        if isinstance(dataset, BlockDataset):
            dataset.held_out(self.fraction, self.random_state)
        else:
            self.check(len(dataset))

    def check(self, n: int) -> int:
        """The number of validation rows of ``n`` rows; a ValueError when
        either side would be too small (checked before a call changes the
        model, and again at the split)."""
        n_valid = int(np.ceil(self.fraction * n))
        if n_valid < 2 or n - n_valid < 1:
            raise ValueError(
                f"The validation set is too small: validation_fraction="
                f"{self.fraction} of {n} rows leaves {n_valid} for validation and "
                f"{n - n_valid} for training. Increase 'validation_fraction' or the "
                "size of your dataset."
            )
        return n_valid

    def __call__(self, dataset: TaskDataset, y=None, **fit_params):
        from sklearn.model_selection import train_test_split

        if isinstance(dataset, BlockDataset):  # streamed: hold out whole blocks
            return dataset.split(self.fraction, self.random_state)
        n = len(dataset)
        n_valid = self.check(n)
        stratify = None
        if self.stratify:
            codes = dataset.y.values[:, 0].cpu().numpy()
            counts = np.unique(codes, return_counts=True)[1]
            # Stratify only where train_test_split can (as MLP, else plain split).
            if counts.min() >= 2 and min(n_valid, n - n_valid) >= len(counts):
                stratify = codes
        idx_train, idx_valid = train_test_split(
            np.arange(n),
            test_size=self.fraction,
            random_state=self.random_state,
            stratify=stratify,
        )
        device = dataset.X.device
        return (
            dataset.take(torch.as_tensor(idx_train, device=device)),
            dataset.take(torch.as_tensor(idx_valid, device=device)),
        )


# --------------------------------------------------------------------------- modules
class Objective(nn.Module):
    """The criterion skorch optimises: per-task losses and their weighting.

    Holding both in one module lets a weighting strategy with learnable
    parameters be trained by the same optimizer.
    """

    def __init__(self, loss: nn.Module, weighting: nn.Module):
        super().__init__()
        self.loss = loss
        self.weighting = weighting


def build_objective(*, kinds, widths, weighting) -> Objective:
    """The engine's ``criterion``: ``weighting`` is a builder ``n_tasks -> module``."""
    return Objective(MultiTaskLoss(kinds, widths), weighting())


# --------------------------------------------------------------------------- callbacks
class MLPStopping(Callback):
    """Stopping rules of scikit-learn's MLP, and early stopping with best weights.

    Without early stopping, training stops when the training loss has not
    improved by ``tol`` for ``n_iter_no_change`` epochs. With early stopping the
    mean validation score is watched instead, the best weights are kept, and
    they are restored when training ends. ``warm=True`` keeps the best score,
    loss, weights and counter of the previous calls (a ``warm_start`` fit, a
    ``partial_fit``), whichever rule those ran, as ``MLPClassifier``'s
    ``warm_start`` keeps them.
    With the net's ``verbose`` set, the stop is announced through ``sink`` in
    the words of :class:`~sklearn.neural_network.MLPClassifier`.
    """

    def __init__(
        self,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        warm=False,
        sink=print,
    ):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.warm = warm
        self.sink = sink

    def initialize(self):
        self.best_loss_ = math.inf
        self.best_score_ = -math.inf
        self.no_improvement_count_ = 0
        self.best_state_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.stopped_ = False
        if not self.warm:
            self.initialize()

    def on_epoch_end(self, net, **kwargs):
        if not self.early_stopping:
            loss = net.history[-1, "train_loss"]
            if loss > self.best_loss_ - self.tol:
                self.no_improvement_count_ += 1
            else:
                self.no_improvement_count_ = 0
            self.best_loss_ = min(self.best_loss_, loss)
        else:
            score = net.history[-1, "valid_score"]
            # NaN (no labelled validation row in any task) is no improvement.
            if not score >= self.best_score_ + self.tol:
                self.no_improvement_count_ += 1
            else:
                self.no_improvement_count_ = 0
            if score > self.best_score_:
                self.best_score_ = score
                # Kept on the CPU: it is pickled with the model (no CUDA tensors).
                self.best_state_ = net.snapshot(device="cpu")
        if self.no_improvement_count_ > self.n_iter_no_change:
            self.stopped_ = True
            net.request_stop()

    def on_train_end(self, net, **kwargs):
        # Said here, after the log has printed the last epoch's row.
        if getattr(self, "stopped_", False) and net.verbose:
            watched = "Validation score" if self.early_stopping else "Training loss"
            self.sink(
                f"{watched} did not improve more than tol={self.tol:f} for "
                f"{self.n_iter_no_change} consecutive epochs. Stopping."
            )
        if self.early_stopping and self.best_state_ is not None:
            net.restore(self.best_state_)

    def get_state(self) -> dict:
        """Counters and best weights, for a safe model file."""
        return {
            "best_loss_": getattr(self, "best_loss_", math.inf),
            "best_score_": getattr(self, "best_score_", -math.inf),
            "no_improvement_count_": getattr(self, "no_improvement_count_", 0),
            "best_state_": getattr(self, "best_state_", None),
        }

    def set_state(self, state: dict) -> None:
        self.initialize()
        for key, value in state.items():
            setattr(self, key, value)


class DivergenceGuard(Callback):
    """Stop with :class:`TrainingDivergedError` when the loss or weights go non-finite.

    The weights of the start of the epoch are kept (on the device) and restored,
    the optimizer is re-initialised (its moments are not finite either) and the
    epoch's history row is removed.
    """

    def on_epoch_begin(self, net, **kwargs):
        self.last_good_ = net.snapshot()

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        # A last step can leave non-finite weights behind a finite loss.
        if math.isfinite(loss) and net.weights_finite():
            return
        net.restore(self.last_good_)
        net.initialize_optimizer()
        del net.history[-1]
        raise TrainingDivergedError(
            f"Training diverged: the training loss became {loss} (or the weights "
            f"became non-finite) in epoch {len(net.history) + 1}. The model keeps "
            "the last weights with a finite loss. Try a lower learning_rate_init, "
            "or scale the features."
        )

    def on_train_end(self, net, **kwargs):
        self.last_good_ = None


# --------------------------------------------------------------------------- dropout
def set_generator(module: nn.Module, generator) -> None:
    """Give every random module (dropout, random loss weights) the fit's generator."""
    for m in module.modules():
        if hasattr(m, "generator"):
            m.generator = generator


# --------------------------------------------------------------------------- engine
class MultiTaskEngine(NeuralNet):
    """skorch engine for a multi-task network (internal; see the estimators).

    ``module`` builds a network mapping ``(n, n_features)`` floats to the fused
    outputs ``(n, sum of task widths)``; ``criterion`` builds an
    :class:`Objective`. ``random_state`` (an int) seeds the initialisation and,
    with the number of epochs already trained, the shuffling, dropout and random
    loss weights of each call to ``partial_fit``. ``precision`` is a key of
    :data:`PRECISIONS`; ``use_compile`` runs the training forward pass
    through ``torch.compile``. ``tasks`` is the model's TaskSet (for scorers
    of :mod:`sklearn_mtl.metrics` used in ``EpochScoring``).
    """

    def __init__(
        self,
        module,
        criterion,
        *args,
        random_state=0,
        shuffle=True,
        precision="float32",
        use_compile=False,
        tasks=None,
        **kwargs,
    ):
        super().__init__(module, criterion, *args, **kwargs)
        self.tasks = tasks
        self.random_state = random_state
        self.shuffle = shuffle
        self.precision = precision
        self.use_compile = use_compile

    # ------------------------------------------------------------------ setup
    @property
    def task_names(self):
        """Task names, for the per-task history keys and the epoch log."""
        return None if self.tasks is None else list(self.tasks.names)

    def get_default_callbacks(self):
        # Divergence first (it may undo the epoch); per-task history keys always,
        # the epoch table and batch bar by verbose; the stopping rule last.
        return [
            ("epoch_timer", EpochTimer()),
            ("divergence", DivergenceGuard()),
            *progress_callbacks(self.verbose),
            ("stopping", MLPStopping()),
        ]

    @contextlib.contextmanager
    def _seeded(self):
        dev = torch.device(self.device)
        cuda = [dev.index or 0] if dev.type == "cuda" else []
        with _INIT_LOCK, torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.random_state)
            yield

    def initialize_module(self):
        with self._seeded():
            return super().initialize_module()

    def initialize_criterion(self):
        with self._seeded():
            torch.manual_seed(self.random_state + 1)
            return super().initialize_criterion()

    def initialize_optimizer(self, triggered_directly=None):
        _prepare_optimizers()
        return super().initialize_optimizer()

    def get_dataset(self, X, y=None):
        if isinstance(X, TaskDataset | BlockDataset):
            return X
        return TaskDataset(X, y)

    def _sparse_batches(self, X):
        """Let sparse ``X`` make sparse batches when the network's first layer
        reads them. A compiled forward reads dense ones, and so do callbacks
        that receive batches (``on_batch_begin`` / ``on_batch_end`` /
        ``on_grad_computed``): a skorch callback expects a tensor."""
        if isinstance(X, SparseRows):
            hooks = self._batch_hooks() if hasattr(self, "callbacks_") else {}
            X.sparse_batches = bool(
                getattr(self.module_, "reads_sparse_batches", False)
                and not self.use_compile
                and not any(hooks.values())
            )

    def infer(self, x, **fit_params):
        # skorch's infer turns x into a tensor first; a sparse batch goes to
        # the network as it is (its first layer reads it).
        if isinstance(x, SparseBatch):
            return self.module_(x, **fit_params)
        return super().infer(x, **fit_params)

    def get_iterator(self, dataset, training=False):
        if isinstance(dataset, BlockDataset):
            generator = self.__dict__.get("_generator") if training else None
            batch_size = self.batch_size if training else INFERENCE_BATCH
            return BlockBatches(
                dataset, batch_size, training and self.shuffle, generator
            )
        self._sparse_batches(dataset.X)
        if training:
            return TensorBatches(
                dataset,
                self.batch_size,
                shuffle=self.shuffle,
                generator=self.__dict__.get("_generator"),
            )
        size = max(INFERENCE_BATCH, self.batch_size)
        if isinstance(dataset.X, SparseRows):
            size = dataset.X.batch_rows(size)  # a batch may be densified: keep it small
        return TensorBatches(dataset, size)

    @property
    def autocast_dtype(self):
        return PRECISIONS[self.precision]

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        device_type = torch.device(self.device).type
        return torch.autocast(device_type, dtype=self.autocast_dtype)

    def _forward_fn(self):
        """The module, or its ``torch.compile`` wrapper (built once, not pickled)."""
        if not self.use_compile:
            return self.module_
        compiled = self.__dict__.get("_compiled")
        if compiled is None or compiled[0] is not self.module_:
            compiled = (self.module_, torch.compile(self.module_))
            self.__dict__["_compiled"] = compiled
        return compiled[1]

    def __getstate__(self):
        state = super().__getstate__()
        for key in (
            "_compiled",
            "_generator",
            "_inference",
            "_hooks",
            "_epoch_weights",
        ):
            state.pop(key, None)
        return state

    # ------------------------------------------------------------------ fit
    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train ``max_epochs`` epochs on ``X`` (a TaskDataset, or tensors and y).

        A callback that calls :meth:`request_stop` (as :class:`MLPStopping`
        does) or raises KeyboardInterrupt in ``on_epoch_end`` (skorch's
        convention, as its ``EarlyStopping`` does) ends training normally and
        sets ``stopped_early_``; a user's Ctrl-C ends it with a warning and a usable
        model. Exceptions (:class:`TrainingDivergedError` included) propagate.
        """
        if not self.initialized_:
            self.initialize()
        self.stopped_early_ = False
        seed = (self.random_state + len(self.history)) % (2**31)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self.__dict__["_generator"] = generator
        set_generator(self.module_, generator)
        set_generator(self.criterion_, generator)
        self.__dict__.pop("_inference", None)  # the weights are about to change
        self.__dict__["_whole_epochs"] = len(self.history)
        try:
            self.notify("on_train_begin", X=X, y=y)
            try:
                self.fit_loop(X, y, **fit_params)
            except _StopTraining:
                self.stopped_early_ = True
            except KeyboardInterrupt:
                warnings.warn("Training interrupted by user.", stacklevel=6)
                self._drop_unfinished_epoch()
            except BaseException:
                self._drop_unfinished_epoch()  # the history holds whole epochs
                raise
            self.notify("on_train_end", X=X, y=y)
        finally:
            set_generator(self.module_, None)
            set_generator(self.criterion_, None)
            self.__dict__.pop("_generator", None)
            self.__dict__.pop("_inference", None)
            self.__dict__.pop("_whole_epochs", None)
        return self

    def _drop_unfinished_epoch(self) -> None:
        """Remove the last history row if its epoch's passes (training, then
        validation) did not both end: no ``on_epoch_end`` has seen it, the
        divergence check included."""
        if len(self.history) > self.__dict__.get("_whole_epochs", len(self.history)):
            del self.history[-1]

    def request_stop(self) -> None:
        """End training after this epoch, once every callback has seen it."""
        self.__dict__["_stop_requested"] = True

    def notify(self, method_name, **cb_kwargs):
        if method_name == "on_epoch_end":  # the epoch's passes have ended
            self.__dict__["_whole_epochs"] = len(self.history)
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt:
            # skorch's convention: a callback ends training by raising it.
            if method_name == "on_epoch_end":
                raise _StopTraining from None
            raise
        if method_name == "on_epoch_end" and self.__dict__.pop("_stop_requested", 0):
            raise _StopTraining

    def _batch_hooks(self):
        """Which per-batch notifications some callback actually listens to."""
        callbacks = [cb for _, cb in self.callbacks_]
        return {
            name: any(_overrides(cb, name) for cb in callbacks)
            for name in ("on_batch_begin", "on_batch_end", "on_grad_computed")
        }

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Per-task losses ``(n_tasks,)`` and labelled weight per task ``(n_tasks,)``.

        The weighting strategy (``criterion_.weighting``) combines them.
        """
        return self.criterion_.loss(y_pred, y_true)

    def train_step_single(self, batch, **fit_params):
        Xb, targets = batch
        weighting = self.criterion_.weighting
        forward = self._forward_fn()
        with self._autocast():
            if getattr(weighting, "needs_shared", False):
                # Gradient-balancing strategies read the shared representation.
                outputs, shared = forward(Xb, return_shared=True)
            else:
                outputs, shared = forward(Xb), None
        # Losses in float32 whatever the forward precision.
        outputs = outputs.float()
        task_losses, labelled = self.get_loss(outputs, targets, X=Xb, training=True)
        # Present: a labelled row whose loss weight (sample and class weights)
        # is positive; an absent task's loss is 0 and says nothing about it.
        present = None
        if weighting.needs_present:
            present = targets.loss_weights.sum(dim=0) > 0
        loss, weights = weighting.backward(task_losses, shared=shared, present=present)
        return {
            "loss": loss,
            "task_losses": task_losses.detach(),
            "labelled": labelled,
            "weights": weights,
            "y_pred": outputs,
        }

    def train_step(self, batch, **fit_params):
        """zero_grad -> forward/backward -> optimizer step, without a closure.

        skorch wraps the step in an optimizer closure and builds a parameter
        generator per batch for ``on_grad_computed``; we only notify that hook
        when a callback implements it.
        """
        optimizer = self.optimizer_
        optimizer.zero_grad(set_to_none=True)
        step = self.train_step_single(batch, **fit_params)
        if self._hooks["on_grad_computed"]:
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
        optimizer.step()
        return step

    def validation_step(self, batch, **fit_params):
        """Outputs and per-task losses of a validation batch, in eval mode."""
        self._set_training(False)
        Xb, targets = batch
        with torch.inference_mode(), self._autocast():
            outputs = self.module_(Xb)
        outputs = outputs.float()
        task_losses, labelled = self.get_loss(outputs, targets, X=Xb, training=False)
        # The validation loss weighs tasks as the last training epoch did.
        weights = self.__dict__.get("_epoch_weights")
        if weights is None:
            weights = torch.ones_like(task_losses)
        return {
            "loss": (task_losses * weights).sum(),
            "task_losses": task_losses,
            "labelled": labelled,
            "weights": weights,
            "y_pred": outputs,
        }

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """One pass over ``iterator``; statistics stay on the device until the end.

        The per-batch statistics are kept as device tensors and reduced once at
        the end of the epoch, then read to the host in one copy. Per-batch
        callback notifications (and skorch's per-batch history rows) happen
        only when a callback listens to them. A validation epoch also records
        each task's score (accuracy, or R2) and their mean, ``valid_score``.
        """
        if iterator is None:
            return
        self._set_training(training)
        self._hooks = hooks = self._batch_hooks()
        notify_batches = hooks["on_batch_begin"] or hooks["on_batch_end"]
        n_tasks = self.criterion_.loss.n_tasks
        # Running sums on the device: no host read per batch, and memory that
        # does not grow with the number of batches (a streamed epoch has many).
        total = torch.zeros((), device=self.device)
        task_sum = torch.zeros(n_tasks, device=self.device)
        task_count = torch.zeros(n_tasks, device=self.device)
        weight_sum = torch.zeros(n_tasks, device=self.device)
        n_rows = n_batches = 0
        outputs = []
        for batch in iterator:
            if notify_batches:
                self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = batch[0].shape[0]
            # detach: a strategy's tensors must not keep a graph alive all epoch.
            total += step["loss"].detach().float() * size
            task_sum += step["task_losses"].float() * step["labelled"]
            task_count += step["labelled"]
            weight_sum += step["weights"].detach().float()
            n_rows += size
            n_batches += 1
            if not training:
                outputs.append(step["y_pred"])
            if notify_batches:
                self.notify("on_batch_end", batch=batch, training=training, **step)
        task_means = torch.where(
            task_count > 0, task_sum / task_count.clamp_min(1e-12), torch.nan
        )
        parts = [
            (total / max(n_rows, 1)).reshape(1),
            task_means,
            weight_sum / max(n_batches, 1),
        ]
        if not training:
            with torch.inference_mode():
                y_pred = torch.cat(outputs) if outputs else None
                y_true = iterator.dataset.y
                parts.append(self.criterion_.loss.scores(y_pred, y_true).float())
        # The one host read of the epoch.
        stats = torch.cat(parts).tolist()
        if training:
            self.__dict__["_epoch_weights"] = parts[2]
            self.criterion_.weighting.on_epoch_end(task_means)
        if not notify_batches:
            # One summary batch row per epoch (skorch callbacks such as Checkpoint
            # read the last batch row); per-batch rows only when a callback listens.
            self.history.new_batch()
            self.history.record_batch(prefix + "_loss", stats[0])
            self.history.record_batch(prefix + "_batch_size", n_rows)
        self._record(prefix + "_loss", stats[0])
        self.history.record(prefix + "_task_losses", stats[1 : 1 + n_tasks])
        self.history.record(
            prefix + "_task_weights", stats[1 + n_tasks : 1 + 2 * n_tasks]
        )
        self.history.record(prefix + "_batch_count", n_batches)
        if not training:
            scores = stats[1 + 2 * n_tasks :]
            self.history.record("valid_task_scores", scores)
            # The mean over the tasks with a labelled validation row.
            defined = [s for s in scores if not math.isnan(s)]
            mean = sum(defined) / len(defined) if defined else math.nan
            self._record("valid_score", mean, lower=False)

    def _record(self, key, value, lower=True):
        """Record ``key`` and ``key_best`` (as skorch's scoring callbacks do)."""
        previous = [
            row[key] for row in self.history[:-1] if key in row and row[key] == row[key]
        ]  # NaN (an undefined score) is never the best
        best = value == value and (
            not previous or (value < min(previous) if lower else value > max(previous))
        )
        self.history.record(key, value)
        self.history.record(key + "_best", bool(best))

    # ------------------------------------------------------------------ state
    def snapshot(self, device=None):
        """A copy of the weights of the network and the criterion.

        The copy stays on the training device unless ``device`` is given.
        """
        return {
            name: {
                k: v.detach().to(device, copy=True)
                for k, v in module.state_dict().items()
            }
            for name, module in (
                ("module", self.module_),
                ("criterion", self.criterion_),
            )
        }

    def weights_finite(self) -> bool:
        """Whether every weight is finite (one host read)."""
        params = [p for p in self.module_.parameters() if p.is_floating_point()]
        if not params:
            return True
        return bool(torch.stack([torch.isfinite(p).all() for p in params]).all())

    def restore(self, state):
        """Load weights from :meth:`snapshot`."""
        self.module_.load_state_dict(state["module"])
        self.criterion_.load_state_dict(state["criterion"])
        self.__dict__.pop("_inference", None)

    def get_state(self, history: bool = True) -> dict:
        """The engine's trained state as data: the persistence format's source.

        ``history`` (list of dicts; left out with ``history=False``),
        ``stopping`` (counters and scores) and ``tensors`` (CPU state dicts of
        the module, criterion and optimizer, and the early-stopping best
        weights when kept).
        """

        def cpu(obj):
            if isinstance(obj, torch.Tensor):
                return obj.detach().cpu()
            if isinstance(obj, dict):
                return {k: cpu(v) for k, v in obj.items()}
            if isinstance(obj, list | tuple):
                return type(obj)(cpu(v) for v in obj)
            return obj

        stopping = dict(self.callbacks_)["stopping"].get_state()
        best = stopping.pop("best_state_")
        tensors = {
            "module": cpu(self.module_.state_dict()),
            "criterion": cpu(self.criterion_.state_dict()),
            "optimizer": cpu(self.optimizer_.state_dict()),
        }
        if best is not None:
            tensors["stopping_best"] = cpu(best)
        state = {"stopping": stopping, "tensors": tensors}
        if history:
            state["history"] = [
                {k: v for k, v in row.items() if k != "batches"} for row in self.history
            ]
        return state

    def set_state(self, state: dict) -> None:
        """Restore what :meth:`get_state` returned (the engine is initialized;
        its history is kept when ``state`` has none)."""
        tensors = state["tensors"]
        self.module_.load_state_dict(tensors["module"])
        self.criterion_.load_state_dict(tensors["criterion"])
        self.optimizer_.load_state_dict(tensors["optimizer"])
        if "history" in state:
            self.history.clear()
            for row in state["history"]:
                self.history.append(dict(row))
        stopping = dict(state["stopping"])
        best = tensors.get("stopping_best")
        stopping["best_state_"] = best
        dict(self.callbacks_)["stopping"].set_state(stopping)
        self.__dict__.pop("_inference", None)

    # ------------------------------------------------------------------ inference
    _inference_lock = threading.Lock()

    def _inference_module(self, dtype):
        """The network for inference in ``dtype``, in eval mode.

        float32 runs the trained module; another dtype runs a copy of it in
        that dtype, made once per trained state. Never modifies the trained
        module's weights, so predictions from several threads are safe.
        """
        if dtype == torch.float32:
            return self.module_
        with self._inference_lock:
            cache = self.__dict__.setdefault("_inference", {})
            module = cache.get(dtype)
            if module is None:
                module = copy.deepcopy(self.module_).to(dtype).eval()
                set_generator(module, None)
                cache[dtype] = module
        return module

    def forward_outputs(self, X, batch_size=None):
        """Network outputs for a device tensor ``X`` in large batches, eval mode.

        The network computes in the dtype of ``X``: float64 input runs on a
        float64 copy of the weights, so a row's output agrees to ~1e-15 whatever
        batch it is in (float32 GEMM kernels round differently with the batch
        shape).
        """
        outs = self.infer_batches(X, lambda module, xb: module(xb), batch_size)
        out = torch.cat(outs) if len(outs) != 1 else outs[0]
        return out.to(X.dtype)

    def infer_batches(self, X, fn, batch_size=None) -> list:
        """``[fn(module, X_batch), ...]`` over ``X`` in large batches.

        Runs in eval mode under ``torch.inference_mode`` (and the autocast of
        ``precision`` for float32 input), on the network in the dtype of ``X``.
        """
        batch_size = batch_size or max(INFERENCE_BATCH, int(self.batch_size))
        if isinstance(X, SparseRows):
            batch_size = X.batch_rows(batch_size)  # a batch may be densified
            self._sparse_batches(X)
        module = self._inference_module(X.dtype)
        if module is self.module_:
            self._set_training(False)
        autocast = self._autocast() if X.dtype == torch.float32 else None
        with torch.inference_mode(), autocast or contextlib.nullcontext():
            return [
                fn(module, X[start : start + batch_size])
                for start in range(0, X.shape[0], batch_size)
            ]

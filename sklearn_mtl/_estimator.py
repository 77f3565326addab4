"""The scikit-learn face: parameters, validation, tags, fit / predict / score.

A private base class, :class:`_BaseMultiTask`, carries the shared behaviour; the
three public estimators sit on it (as scikit-learn's MLP estimators sit on
``BaseMultilayerPerceptron``). The estimator validates, asks Tasks
(``_tasks``) to encode ``y``, hands tensors to the Engine (``_engine``) with
one call, and reads results: it never touches batches, optimizers or callbacks.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import warnings
from abc import ABCMeta, abstractmethod
from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MultiOutputMixin,
    RegressorMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.utils import ClassifierTags, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_is_fitted,
)
from skorch.callbacks import Callback

from . import _dask, _docstring
from ._engine import (
    PRECISIONS,
    MultiTaskEngine,
    TaskDataset,
    TrainingDivergedError,
    ValidationSplit,
    build_objective,
    fast_adam_kwargs,
)
from ._inputs import (
    NUMERIC_SCALINGS,
    accepts_sparse,
    encoded_width,
    fit_bins,
    input_module,
    one_hot_columns,
    validate_inputs,
    warn_unknown_categories,
)
from ._sparse import as_device_tensor
from ._state import BUILD_PARAMS, plain_state, restore, set_requests
from ._tasks import (
    build_tasks,
    resolve_per_task,
    split_target_columns,
    stack_predictions,
)
from .nn import ACTIVATIONS, ARCHITECTURES, NUM_EMBEDDINGS, build_network
from .weighting import TORCHJD_AGGREGATORS, WEIGHTINGS, make_weighting

__all__ = ["MultiTaskNeuralEstimator", "MultiTaskClassifier", "MultiTaskRegressor"]


def _fill(doc: str, **fragments: str) -> str:
    for key, text in fragments.items():
        doc = doc.replace("{{" + key + "}}", text)
    return doc


def _layer_sizes(value, name):
    sizes = (value,) if isinstance(value, Integral) else tuple(value)
    if not all(isinstance(s, Integral) and s > 0 for s in sizes):
        raise ValueError(f"{name} must be positive integers, got {value!r}.")
    return tuple(int(s) for s in sizes)


def resolve_device(device: str) -> str:
    """Turn the ``device`` parameter into a torch device string."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' "
            "(or 'cuda:<index>') or 'mps'."
        ) from exc
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if kind not in available:
        raise ValueError(
            f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda' (or "
            "'cuda:<index>') or 'mps'."
        )
    if not available[kind]:
        raise ValueError(
            f"device={device!r} was requested but {kind.upper()} is not available "
            "on this machine; use device='auto' or 'cpu'."
        )
    if kind == "cuda" and torch.device(device).index is not None:
        index = torch.device(device).index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: this machine has {torch.cuda.device_count()} "
                "CUDA device(s)."
            )
    return device


def _check_callbacks(callbacks) -> list:
    """``callbacks`` as skorch takes them; a clear TypeError for anything else."""
    if callbacks is None:
        return []
    checked = []
    for item in callbacks:
        callback = item[1] if isinstance(item, tuple) and len(item) == 2 else item
        named_ok = not isinstance(item, tuple) or isinstance(item[0], str)
        if not (isinstance(callback, Callback) and named_ok):
            raise TypeError(
                "callbacks must be skorch callbacks (instances of "
                "skorch.callbacks.Callback) or (name, callback) pairs; got "
                f"{item!r}."
            )
        if isinstance(item, tuple) and item[0] in _ENGINE_CALLBACKS:
            raise ValueError(
                f"callbacks: the name {item[0]!r} is taken by the engine's own "
                f"callbacks {sorted(_ENGINE_CALLBACKS)}; choose another name."
            )
        checked.append(item)
    return checked


_ENGINE_CALLBACKS = {"epoch_timer", "divergence", "stopping", "print_log"}
_GATED = ("mmoe", "omoe", "cgc", "ple")
# Whether a single classification task's validation split is stratified (as
# MLPClassifier's); transfer_report turns it off so that the single-task
# models hold out the joint model's rows.
_STRATIFY_SINGLE = contextvars.ContextVar("sklearn_mtl_stratify", default=True)


@contextlib.contextmanager
def unstratified_validation():
    """Within it, early stopping holds out the rows a multi-task fit would
    (a plain random split, never stratified by a single task's classes)."""
    token = _STRATIFY_SINGLE.set(False)
    try:
        yield
    finally:
        _STRATIFY_SINGLE.reset(token)


def _raised_by(exc, errors) -> bool:
    """Whether ``exc`` is one of ``errors`` or was raised from one (its chain:
    a StopIteration from a block surfaces as RuntimeError from its cause)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if any(exc is e for e in errors):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _copy_containers(value):
    """``value`` with its dicts, lists, tuples and arrays copied, other objects
    shared."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy_containers(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and type(value) in (list, tuple):
        return type(value)(_copy_containers(v) for v in value)
    return value


def _build_network(
    *, trunk=None, trunk_kwargs=None, inputs, num_embeddings, embedding_dim, **params
):
    """The engine's ``module`` builder: input embeddings, the user's trunk, then
    the architecture (``inputs`` is the fitted ``inputs_`` of ``_inputs``)."""
    built = None
    if trunk is not None:
        try:
            built = trunk(**(trunk_kwargs or {}))
        except TypeError as exc:
            raise ValueError(
                f"trunk could not be built with trunk_kwargs={trunk_kwargs!r}: {exc}"
            ) from exc
        if not isinstance(built, torch.nn.Module):
            raise TypeError(
                "trunk must be a torch.nn.Module class or a callable returning a "
                f"Module; it returned {type(built).__name__}."
            )
    return build_network(
        n_features=encoded_width(inputs),
        trunk=built,
        inputs=input_module(inputs, num_embeddings, embedding_dim),
        sparse_input=inputs.get("sparse", False),
        **params,
    )


class _BaseMultiTask(MultiOutputMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the multi-task estimators (use the public classes).

    Subclasses define ``__init__`` (their parameters) and :meth:`_build_tasks`
    (which kinds of task they take).
    """

    _parameter_constraints: dict = {
        "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
        "numeric_scaling": [StrOptions(set(NUMERIC_SCALINGS)), None],
        "num_embeddings": [StrOptions(set(NUM_EMBEDDINGS) | {"auto"}), None],
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "one_hot_max_size": [Interval(Integral, 0, None, closed="left")],
        "n_ensemble": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"adam", "adamw"})],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "head_layer_sizes": ["array-like"],
        "task_weights": [dict, None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "callbacks": [list, None],
        "architecture": [StrOptions(set(ARCHITECTURES))],
        "n_experts": [Interval(Integral, 1, None, closed="left")],
        "expert_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "n_shared_experts": [Interval(Integral, 0, None, closed="left")],
        "n_task_experts": [Interval(Integral, 0, None, closed="left")],
        "n_levels": [Interval(Integral, 1, None, closed="left")],
        "loss_weighting": [StrOptions(set(WEIGHTINGS) | set(TORCHJD_AGGREGATORS))],
        "loss_weighting_params": [dict, None],
        "trunk": [callable, None],
        "trunk_kwargs": [dict, None],
        "precision": [StrOptions(set(PRECISIONS))],
        "compile": ["boolean"],
    }

    @abstractmethod
    def __init__(
        self,
        *,
        categorical_features,
        numeric_scaling,
        num_embeddings,
        n_bins,
        embedding_dim,
        one_hot_max_size,
        hidden_layer_sizes,
        activation,
        dropout,
        head_layer_sizes,
        n_ensemble,
        task_weights,
        solver,
        alpha,
        batch_size,
        learning_rate_init,
        max_iter,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        early_stopping,
        validation_fraction,
        n_iter_no_change,
        device,
        precision,
        compile,
        callbacks,
        architecture,
        n_experts,
        expert_layer_sizes,
        n_shared_experts,
        n_task_experts,
        n_levels,
        loss_weighting,
        loss_weighting_params,
        trunk,
        trunk_kwargs,
    ):
        self.categorical_features = categorical_features
        self.numeric_scaling = numeric_scaling
        self.num_embeddings = num_embeddings
        self.n_bins = n_bins
        self.embedding_dim = embedding_dim
        self.one_hot_max_size = one_hot_max_size
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.head_layer_sizes = head_layer_sizes
        self.n_ensemble = n_ensemble
        self.task_weights = task_weights
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.precision = precision
        self.compile = compile
        self.callbacks = callbacks
        self.architecture = architecture
        self.n_experts = n_experts
        self.expert_layer_sizes = expert_layer_sizes
        self.n_shared_experts = n_shared_experts
        self.n_task_experts = n_task_experts
        self.n_levels = n_levels
        self.loss_weighting = loss_weighting
        self.loss_weighting_params = loss_weighting_params
        self.trunk = trunk
        self.trunk_kwargs = trunk_kwargs

    # ------------------------------------------------------------------ kinds
    @abstractmethod
    def _build_tasks(self, columns, names, classes):
        """The TaskSet for target columns, with the kinds this estimator takes."""

    def _class_weight(self):
        """The ``class_weight`` parameter (estimators without one: None)."""
        return None

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network on ``X`` and every task in ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric features. A dask Array or DataFrame (with a dask ``y``) is
            streamed block by block, never gathered (see ``docs/scaling.md``).
        y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
            One column per task. NaN or None marks a missing label.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in every task's loss, combined with
            the missing-label mask and ``class_weight``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on ``(X, y)``, building the model on the first call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
        classes : array-like, list of array-like / None per task, or dict, \
default=None
            All labels of each classification task, needed on the first call
            when a batch may not show every class. Inferred from ``y`` if None.
            One flat array of labels (``classes=[0, 1]``, a pandas Index or
            ``Series.unique()``; the form of
            :meth:`sklearn.neural_network.MLPClassifier.partial_fit` and of
            ``learning_curve(exploit_incremental_learning=True)``) gives every
            classification task those labels: for tasks with different label
            sets give one array per task, or a dict of arrays keyed by task
            name (tasks it does not name infer theirs from ``y``). A flat list
            that cannot serve every task raises a ValueError saying why: two
            tasks with no label in common, booleans mixed with numbers, a
            regression task's values. A task
            given its classes may have no label in the first batch; any other
            task needs one there. On a later call, classes other than the
            first call's are a ValueError (as for ``MLPClassifier``).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row, as in :meth:`fit`.

        Returns
        -------
        self : object
            The estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        """Validate and encode everything, then train; a failed check changes nothing.

        Every check runs in :meth:`_prepare_fit`, before any fitted attribute
        changes; on an error the estimator's attributes are put back as they
        were (a first fit leaves it unfitted). Divergence keeps the last finite
        weights and raises; Ctrl-C stops with a warning and a usable model.
        """
        _dask.match_worker_threads()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        first_pass = not self.__sklearn_is_fitted__() or (
            not self.warm_start and not incremental
        )
        if not first_pass:
            if classes is not None:
                self.tasks_.check_same_classes(classes)
            self._warn_unused_build_params(incremental)
        saved = dict(vars(self))
        plan = snapshot = None
        try:
            plan = self._prepare_fit(
                X, y, sample_weight, first_pass, classes, incremental
            )
            if first_pass:
                self._commit(plan)
            elif _dask.is_collection(X, y, sample_weight):
                # A stream's blocks are checked as they are read, in training:
                # a later block's error must not leave a half-trained model.
                snapshot = plan.undo = self._engine_snapshot()
            self._train(plan, incremental)
            unknown = getattr(plan.data, "unknown_categories", None)
            if unknown:  # a stream's blocks, found as they were read
                warn_unknown_categories(self, unknown=sorted(unknown), stacklevel=5)
            return self
        except TrainingDivergedError:
            raise  # the model keeps its last finite weights, coherent (see _train)
        except BaseException as exc:
            if first_pass or not getattr(plan, "started", False):
                vars(self).clear()
                vars(self).update(saved)
            elif snapshot is not None and _raised_by(
                exc, getattr(plan.data, "block_errors", ())
            ):
                # Only a block's own error undoes the call; an interruption or
                # a callback's error keeps the epochs trained, as in memory.
                self._restore_engine(snapshot)
                vars(self).clear()
                vars(self).update(saved)
            raise

    def _engine_snapshot(self) -> dict:
        """The engine's trained state, copied to the CPU: weights, optimizer
        and loss-weighting state, early-stopping state, and the history's
        length (a call only appends rows; the engine and its callbacks stay
        the same objects)."""
        engine = self.engine_
        state = engine.get_state(history=False)
        # get_state's tensors are the live ones on a CPU engine: copies.
        state["tensors"] = copy.deepcopy(state["tensors"])
        return {
            "engine": state,
            "epochs": len(engine.history),
            "built_with": dict(getattr(self, "_built_with", {})),
        }

    def _restore_engine(self, snapshot) -> None:
        """Put back a snapshot, and the engine parameters the call had set
        (first: setting callback parameters re-initialises the callbacks, and
        the optimizer's state carries its learning rate and weight decay)."""
        if snapshot.get("params"):
            _set_engine_params(self.engine_, snapshot["params"])
        self.engine_.set_state(snapshot["engine"])
        del self.engine_.history[snapshot["epochs"] :]
        if hasattr(self, "_built_with"):
            self._built_with.clear()
            self._built_with.update(snapshot["built_with"])

    def _prepare_fit(self, X, y, sample_weight, first_pass, classes, incremental):
        """Every check of a fit, on local values only; returns the fit's plan.

        A first ``fit`` starts the network's outputs at the targets' baseline
        (``TaskSet.baseline``); a first ``partial_fit`` sees one batch, which
        need not show every class, and keeps the random output bias.
        """
        if _dask.is_collection(X, y, sample_weight):
            # Streamed block by block: plan.data is an engine BlockDataset.
            return _dask.prepare_fit(
                self, X, y, sample_weight, first_pass, classes, incremental
            )
        # A fit in pieces (partial_fit) takes category columns' categories from
        # their dtype, as streaming from dask does: later pieces may hold more.
        X = validate_inputs(
            self, X, reset=first_pass, dtype=np.float32, dtype_categories=incremental
        )
        if not first_pass:
            warn_unknown_categories(self, X)
        if first_pass:
            columns, names, is_1d = split_target_columns(y)
        else:
            columns = self.tasks_.match_columns(y)
        check_rows(X, columns[0])
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        if first_pass:
            if names is None:
                names = [f"task_{i}" for i in range(len(columns))]
            tasks = self._build_tasks(columns, names, classes)
            targets = tasks.encode(columns, sample_weight, self._class_weight())
            self._fit_embeddings(lambda: (X, targets), tasks)
        else:
            tasks, names, is_1d = self.tasks_, None, None
            targets = tasks.encode(columns, sample_weight, self._class_weight())
            if not incremental:  # a warm fit: y is checked as a first fit's
                tasks.check_trainable(*tasks.trainable_counts(columns, targets))
        baseline = tasks.baseline(targets) if first_pass and not incremental else None
        plan = self._plan(X.shape[0], first_pass, tasks, names, is_1d, baseline)
        device = plan.engine.device
        plan.data = TaskDataset(as_device_tensor(X, device), targets.to(device))
        return plan

    def _fit_embeddings(self, data, tasks) -> None:
        """Choose the numeric embedding and learn its bins (first pass).

        ``"auto"`` is piecewise-linear for raw tabular data (categorical
        columns or missing values), where it was measured best, and none for
        complete numeric X, read as is. The choice is kept in
        ``inputs_["num_embeddings"]``; which categorical columns are one-hot
        (at most ``one_hot_max_size`` categories in fit) in
        ``inputs_["one_hot"]``. ``data()`` gives the encoded X and its
        TaskTargets, for the bin edges.
        """
        embeddings = self.num_embeddings
        if embeddings == "auto":
            inputs = self.inputs_
            tabular = bool(inputs["categorical"] or inputs["missing_indicator"])
            embeddings = "piecewise_linear" if tabular else None
        self.inputs_ = {
            **self.inputs_,
            "num_embeddings": embeddings,
            "one_hot": one_hot_columns(self.inputs_, self.one_hot_max_size),
        }
        if embeddings in ("piecewise_linear", "piecewise_linear_tree"):
            X, targets = data()
            kinds = [t.kind for t in tasks.tasks]
            self.inputs_ = fit_bins(
                self.inputs_, X, targets, kinds, embeddings, self.n_bins
            )

    def _plan(self, n_rows, first_pass, tasks, names=None, is_1d=None, baseline=None):
        """The seed, batch size and engine of a fit on ``n_rows`` rows (checked).

        ``baseline``: the first pass's initial outputs (see ``_make_engine``).
        """
        plan = _FitPlan()
        plan.seed = check_random_state(self.random_state).randint(2**31 - 1)
        plan.batch_size = (
            min(200, n_rows) if self.batch_size == "auto" else self.batch_size
        )
        if first_pass:
            plan.tasks, plan.names, plan.is_1d = tasks, names, is_1d
            plan.engine = self._make_engine(self.inputs_, tasks, plan.seed, baseline)
            plan.engine.initialize()
        else:
            plan.engine = self.engine_
            _check_callbacks(self.callbacks)
            self._static_weights(tasks.names)
            resolve_device(self.device)
        return plan

    def _commit(self, plan):
        """Make a first pass's tasks and engine the estimator's fitted state."""
        self.tasks_ = plan.tasks
        self.task_names_ = plan.names
        self.n_outputs_ = len(plan.names)
        self._y_1d = plan.is_1d
        per_task = [t.classes for t in plan.tasks.tasks]
        if any(t.is_classification for t in plan.tasks.tasks):
            self.classes_ = per_task[0] if plan.is_1d else per_task
        else:
            self.__dict__.pop("classes_", None)
        self.engine_ = plan.engine
        # What the network was built from: a restored model is rebuilt from
        # these, whatever set_params changed after fit.
        # Containers are copied (a dict parameter changed in place after fit
        # changes nothing); what they hold (a trunk, a module in trunk_kwargs)
        # is kept by reference, never copied.
        params = self.get_params(deep=False)
        self._built_with = {
            k: _copy_containers(params[k]) for k in BUILD_PARAMS if k in params
        }

    def _warn_unused_build_params(self, incremental) -> None:
        """Warn that parameters changed since the network was built (the
        architecture, the loss weighting and its weights, the solver...) do not
        apply to a warm fit or a ``partial_fit``, which go on with the built
        network; ``class_weight`` and ``precision`` apply to every call."""
        built = getattr(self, "_built_with", {})
        changed = [
            name
            for name, value in built.items()
            if name not in ("class_weight", "precision")
            and not _same_param(
                self._normalised(name, getattr(self, name)),
                self._normalised(name, value),
            )
        ]
        if changed:
            call = "partial_fit" if incremental else "a fit with warm_start=True"
            warnings.warn(
                f"{', '.join(changed)} changed since the network was built; "
                f"{call} goes on with the network and loss weighting the first "
                "fit built, so the new values are not used. Refit with "
                "warm_start=False to use them.",
                UserWarning,
                stacklevel=5,
            )

    def _normalised(self, name, value):
        """A build parameter's value in one form for comparison: None for an
        empty dict, layer sizes as a tuple, task weights one per task."""
        try:
            if name == "task_weights":
                weights = resolve_per_task(
                    value, self.task_names_, name, single_value_ok=False
                )
                return [1.0 if w is None else w for w in weights]
            if name.endswith("layer_sizes"):
                return _layer_sizes(value, name)
        except (TypeError, ValueError):  # invalid now: a change
            return value
        if isinstance(value, dict) and not value:
            return None
        return value

    def _built(self, name):
        """A parameter as the network was built (``_built_with``), else as set."""
        return getattr(self, "_built_with", {}).get(name, getattr(self, name))

    def _train(self, plan, incremental):
        engine = self.engine_
        early_stopping = self._uses_early_stopping(plan.data) and not incremental
        epochs_before = len(engine.history)
        epochs = 1 if incremental else self.max_iter
        split = None
        if early_stopping:
            single_classifier = (
                len(self.tasks_) == 1
                and self.tasks_.tasks[0].is_classification
                and _STRATIFY_SINGLE.get()
            )
            # One split for every warm fit (with an int random_state, as
            # MLPClassifier's): the best score a warm fit carries over was
            # measured on the same validation rows.
            split = ValidationSplit(
                self.validation_fraction,
                random_state=plan.seed % (2**31),
                stratify=single_classifier,
            )
            # Before the engine's settings change: a warm fit refused here
            # leaves the model as it was.
            split.check_data(plan.data)
        if self.compile and engine.criterion_.weighting.needs_shared:
            # The compiled graph returns the shared representation without
            # its gradient: PCGrad & co. would fail, GradNorm see zeros.
            raise ValueError(
                f"compile=True does not support loss_weighting="
                f"{self._built('loss_weighting')!r}, which balances the gradients "
                "of the shared representation; set compile=False, or a "
                "loss_weighting that weighs the losses (static, uncertainty, dwa, "
                "rlw, famo)."
            )
        params = dict(
            # The user's callbacks as set now (set again after loading a file,
            # or changed after fit).
            callbacks=_check_callbacks(self.callbacks),
            lr=self.learning_rate_init,
            batch_size=plan.batch_size,
            max_epochs=epochs,
            train_split=split,
            random_state=plan.seed,
            shuffle=self.shuffle,
            precision=self.precision,
            use_compile=self.compile,
            verbose=int(self.verbose),
            optimizer__param_groups__0__weight_decay=self._weight_decay(
                plan.batch_size
            ),
            callbacks__stopping__tol=self.tol,
            callbacks__stopping__n_iter_no_change=self.n_iter_no_change,
            callbacks__stopping__early_stopping=early_stopping,
            callbacks__stopping__warm=epochs_before > 0,
        )
        if getattr(plan, "undo", None) is not None:
            # What these were, for a streamed call that is undone (see _fit);
            # the weight decay lives in the optimizer's state.
            current = engine.get_params()
            plan.undo["params"] = {k: current[k] for k in params if k in current}
        # Setting callback parameters makes skorch build its default callbacks
        # anew: a warm fit's early stopping carries over the best score, the
        # counter and the best weights (as MLPClassifier's warm_start does).
        stopping = dict(engine.callbacks_)["stopping"].get_state()
        _set_engine_params(engine, params)
        if epochs_before:
            dict(engine.callbacks_)["stopping"].set_state(stopping)
        plan.started = True
        if hasattr(self, "_built_with"):
            # Each training call sets the precision the model then predicts in.
            self._built_with["precision"] = self.precision
        try:
            engine.partial_fit(plan.data)
        finally:
            # Whatever stopped training (divergence, a callback's error, Ctrl-C
            # in on_train_end), n_iter_ and the curves follow the engine's
            # history: the model keeps the epochs it trained.
            self._record_history()
        ran_all = len(engine.history) - epochs_before == epochs
        if not incremental and not engine.stopped_early_ and ran_all:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=5,
            )
        scores = [  # this call's epochs only
            row["valid_score"]
            for row in engine.history[epochs_before:]
            if "valid_score" in row
        ]
        if early_stopping and scores and not any(s == s for s in scores):
            warnings.warn(
                "No task had a labelled row in the validation split, so early "
                "stopping had no score to stop on: it stopped after "
                f"{len(scores)} epochs without one. Use a larger "
                "validation_fraction, or early_stopping=False.",
                UserWarning,
                stacklevel=5,
            )
        return self

    def _static_weights(self, names) -> list[float]:
        """``task_weights`` as one finite weight >= 0 per task (checked)."""
        weights = resolve_per_task(
            self.task_weights, names, "task_weights", single_value_ok=False
        )
        weights = [1.0 if w is None else w for w in weights]
        for name, w in zip(names, weights):
            if (
                isinstance(w, bool | np.bool_)
                or not isinstance(w, Real)
                or not np.isfinite(w)
                or w < 0
            ):
                raise ValueError(
                    f"task_weights[{name!r}] must be a finite number >= 0, got {w!r}."
                )
        if self.task_weights is not None and self.loss_weighting != "static":
            raise ValueError(
                "task_weights is used by loss_weighting='static' only; got "
                f"loss_weighting={self.loss_weighting!r}. Set task_weights=None."
            )
        return [float(w) for w in weights]

    def _resolved_embeddings(self, inputs: dict):
        """The numeric embedding fit chose (``inputs_["num_embeddings"]``)."""
        embeddings = inputs.get("num_embeddings", self.num_embeddings)
        if embeddings == "auto":  # a model saved before the choice was recorded
            return None
        return embeddings

    def _uses_early_stopping(self, data) -> bool:
        """``early_stopping``; ``"auto"``: on from 1000 rows (100 validation rows
        at the default ``validation_fraction``), as HistGradientBoosting's "auto"
        turns it on for large data, and for streamed data from two blocks (the
        validation set is made of whole blocks)."""
        if self.early_stopping == "auto":
            # Streamed: non-empty blocks only (an empty partition holds no rows).
            blocks = getattr(data, "block_ids", (0, 0))
            return len(data) >= 1000 and len(blocks) >= 2
        return bool(self.early_stopping)

    def _weight_decay(self, batch_size: int) -> float:
        """Weights only: L2 scaled per batch as in MLPClassifier (``"adam"``), or
        AdamW's decoupled weight decay (``"adamw"``)."""
        return self.alpha if self.solver == "adamw" else self.alpha / batch_size

    def _make_engine(
        self, inputs: dict, tasks, seed: int, baseline=None
    ) -> MultiTaskEngine:
        """The (uninitialized) training engine for ``tasks`` on encoded inputs.

        ``inputs`` is the fitted ``inputs_`` (what fit learned about X);
        ``baseline`` (one value per output column, or None) is the output bias
        the network starts with.

        Every parameter is checked here; ``engine.initialize()`` builds the
        network and the loss weighting under ``seed``.
        """
        names = tasks.names
        weights = self._static_weights(names)
        tasks.resolve_class_weight(self._class_weight())
        device = resolve_device(self.device)
        callbacks = _check_callbacks(self.callbacks)
        if self.architecture in ("cgc", "ple") and (
            self.n_shared_experts + self.n_task_experts == 0
        ):
            raise ValueError(
                "n_shared_experts + n_task_experts must be >= 1 for "
                f"architecture={self.architecture!r}."
            )
        if self.trunk is None and self.trunk_kwargs:
            raise ValueError("trunk_kwargs was given but trunk is None.")
        # Fail now on bad strategy parameters, naming loss_weighting_params.
        weighting = partial(
            make_weighting,
            self.loss_weighting,
            len(names),
            weights,
            self.loss_weighting_params,
        )
        weighting()
        batch = self.batch_size if isinstance(self.batch_size, Integral) else 200
        return MultiTaskEngine(
            module=_build_network,
            module__architecture=self.architecture,
            module__inputs=inputs,
            module__num_embeddings=self._resolved_embeddings(inputs),
            module__embedding_dim=self.embedding_dim,
            module__output_widths=tasks.output_widths,
            module__n_ensemble=self.n_ensemble,
            module__task_kinds=[t.kind for t in tasks.tasks],
            module__hidden_layer_sizes=_layer_sizes(
                self.hidden_layer_sizes, "hidden_layer_sizes"
            ),
            module__activation=self.activation,
            module__dropout=self.dropout,
            module__head_layer_sizes=_layer_sizes(
                self.head_layer_sizes, "head_layer_sizes"
            ),
            module__n_experts=self.n_experts,
            module__expert_layer_sizes=_layer_sizes(
                self.expert_layer_sizes, "expert_layer_sizes"
            ),
            module__n_shared_experts=self.n_shared_experts,
            module__n_task_experts=self.n_task_experts,
            module__n_levels=self.n_levels,
            module__trunk=self.trunk,
            module__trunk_kwargs=self.trunk_kwargs,
            module__output_bias=baseline,
            criterion=build_objective,
            criterion__kinds=[t.kind for t in tasks.tasks],
            criterion__widths=tasks.output_widths,
            criterion__weighting=weighting,
            optimizer=torch.optim.AdamW if self.solver == "adamw" else torch.optim.Adam,
            lr=self.learning_rate_init,
            batch_size=batch,
            max_epochs=self.max_iter,
            train_split=None,
            callbacks=callbacks,
            verbose=int(self.verbose),
            device=device,
            random_state=seed,
            shuffle=self.shuffle,
            precision=self.precision,
            use_compile=self.compile,
            use_caching=False,
            tasks=tasks,
            optimizer__param_groups=[
                ("*weight", {"weight_decay": self._weight_decay(batch)}),
            ],
            **{
                f"optimizer__{k}": v
                for k, v in fast_adam_kwargs(torch.device(device).type).items()
            },
        )

    def gate_weights(self, X):
        """Mean gate weight of each expert, per task, on ``X``.

        For ``architecture="mmoe"`` (and ``"omoe"``, whose single gate every
        task shares) the weights cover the ``n_experts`` experts; for ``"cgc"``
        and ``"ple"`` they cover the last level's shared experts followed by the
        task's own experts. Each task's weights sum to 1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        gates : dict of str to ndarray of shape (n_gate_experts,)
        """
        check_is_fitted(self)
        # The architecture as built: wrappers (input features, an ensemble)
        # forward `gates` to any body, gated or not.
        if self._built("architecture") not in _GATED:
            raise ValueError(
                f"gate_weights needs a gated architecture ('mmoe', 'omoe', 'cgc', "
                f"'ple'); this model has architecture={self._built('architecture')!r}, "
                "which has no gates."
            )
        X_t = self._to_tensor(X)
        sums = self.engine_.infer_batches(
            X_t, lambda module, xb: module.gates(xb).double().sum(dim=1)
        )
        means = (torch.stack(sums).sum(0) / X_t.shape[0]).cpu().numpy()
        return {
            name: means[min(i, means.shape[0] - 1)].copy()
            for i, name in enumerate(self.task_names_)
        }

    def _record_history(self):
        history = self.engine_.history
        self.n_iter_ = len(history)
        self.loss_curve_ = list(history[:, "train_loss"]) if len(history) else []
        task_curves = list(history[:, "train_task_losses"]) if len(history) else []
        self.task_loss_curves_ = {
            name: [epoch[j] for epoch in task_curves]
            for j, name in enumerate(self.task_names_)
        }
        weight_curves = list(history[:, "train_task_weights"]) if len(history) else []
        self.task_weight_curves_ = {
            name: [epoch[j] for epoch in weight_curves]
            for j, name in enumerate(self.task_names_)
        }
        scores = [row["valid_score"] for row in history if "valid_score" in row]
        if scores:
            self.validation_scores_ = scores
            defined = [s for s in scores if not np.isnan(s)]
            self.best_validation_score_ = max(defined) if defined else np.nan
            self.best_loss_ = None
            valid = [
                row["valid_task_scores"]
                for row in history
                if "valid_task_scores" in row
            ]
            self.task_validation_scores_ = {
                name: [epoch[j] for epoch in valid]
                for j, name in enumerate(self.task_names_)
            }
        else:
            self.validation_scores_ = None
            self.task_validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None

    @property
    def module_(self):
        """The trained torch network (``engine_.module_``)."""
        return self.engine_.module_

    def __sklearn_is_fitted__(self):
        return hasattr(self, "engine_")

    # Plain data for pickle, skops and save (no torch object): see _state.py.
    def __getstate__(self):
        return plain_state(super().__getstate__(), set_requests(self))

    def __setstate__(self, state):
        restore(self, state)

    # ------------------------------------------------------------------ inference
    def _to_tensor(self, X):
        # Inference runs in the dtype of X (float32 or float64), as sklearn's MLP.
        X = validate_inputs(self, X, reset=False, dtype=(np.float64, np.float32))
        return as_device_tensor(X, self.engine_.device)  # sparse X stays sparse

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.engine_.forward_outputs(self._to_tensor(X)).cpu().numpy()

    def predict(self, X):
        """Predict every task: labels for classification, values for regression.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            1-D when the model was fitted on a 1-D ``y``. With tasks of different
            label types (strings and numbers) the array has dtype object.
        """
        if _dask.is_collection(X):
            return _dask.predict(self, X, "predict")
        outputs = self._outputs(X)
        preds = self.tasks_.predict(outputs)
        return preds[0] if self._y_1d else stack_predictions(preds)

    def _predict_proba(self, X):
        if _dask.is_collection(X):
            return _dask.predict(self, X, "predict_proba")
        outputs = self._outputs(X)
        probas = self.tasks_.predict_proba(outputs)
        return probas[0] if self._y_1d else probas

    def _mean_task_score(self, X, y, sample_weight=None) -> float:
        check_is_fitted(self)
        if _dask.is_collection(X, y, sample_weight):
            return _dask.score(self, X, y, sample_weight)
        columns = self.tasks_.match_columns(y)
        sample_weight = check_rows(X, columns[0], sample_weight)
        preds = self.tasks_.predict(self._outputs(X))
        return self.tasks_.mean_score(preds, columns, sample_weight)

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of each task's score on its labelled rows.

        Classification tasks score their accuracy, regression tasks their R2
        (as :meth:`sklearn.base.ClassifierMixin.score` and
        :meth:`sklearn.base.RegressorMixin.score` do for one task). A
        DataFrame's columns are matched to the tasks by name. A task without a
        labelled row in ``y`` is left out of the mean (its score is undefined);
        a ``y`` without any label raises a ValueError.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        return self._mean_task_score(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        tags.input_tags.allow_nan = True  # imputed, with a learned missing indicator
        tags.input_tags.sparse = accepts_sparse(self)
        return tags


def check_rows(X, y_column, sample_weight=None):
    """X, y (one task's column) and ``sample_weight`` hold as many rows, as
    scoring needs; ``sample_weight`` as a 1-D float64 array (or None)."""
    n = _num_samples(X)
    if y_column.shape[0] != n:
        raise ValueError(
            f"X has {n} rows but y has {y_column.shape[0]}: found input "
            "variables with inconsistent numbers of samples."
        )
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (n,):
            raise ValueError(
                f"sample_weight has shape {sample_weight.shape} but X has {n} "
                "rows: it must be 1-D with one weight per row."
            )
    return sample_weight


def fitted_multitask(estimator, user: str):
    """The fitted sklearn-mtl estimator at the end of ``estimator`` and the
    transforms before it.

    ``estimator`` is the model itself, or wraps it in what predicts with it
    unchanged: a Pipeline (its last step, after its transforms), a fitted
    search's ``best_estimator_`` (GridSearchCV, ... refitted: nested
    cross-validation scores the search), a ``FrozenEstimator``; nested in any
    order. ``user`` names the caller in the TypeError for anything else.
    """
    transforms = []
    while True:
        if hasattr(estimator, "steps") and hasattr(estimator, "__getitem__"):
            if len(estimator.steps) > 1:
                transforms.append(estimator[:-1])
            estimator = estimator[-1]
        elif hasattr(estimator, "best_estimator_") and hasattr(
            estimator, "cv_results_"
        ):
            estimator = estimator.best_estimator_
        elif isinstance(estimator, FrozenEstimator):
            estimator = estimator.estimator
        else:
            break
    if not isinstance(estimator, _BaseMultiTask):
        raise TypeError(
            f"{user} take a fitted sklearn-mtl estimator, or a Pipeline, a fitted "
            f"search (best_estimator_) or a FrozenEstimator around one, got "
            f"{type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    return estimator, transforms


def _same_param(a, b) -> bool:
    """Whether two parameter values are equal (containers and arrays by
    their items, ``(100,)`` and ``[100]`` alike; objects by ``==``)."""
    if a is b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_param(a[k], b[k]) for k in a)
    sequence = list | tuple | np.ndarray
    if isinstance(a, sequence) and isinstance(b, sequence):
        return len(a) == len(b) and all(_same_param(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # an object whose == is not a truth value
        return False


def _set_engine_params(engine, params: dict) -> None:
    """``engine.set_params(**params)``, the user's ``callbacks`` included.

    skorch's ``set_params`` re-initialises the callbacks before it stores a
    new ``callbacks`` list, so the list is stored first.
    """
    params = dict(params)
    if "callbacks" in params:
        engine.callbacks = params.pop("callbacks")
    engine.set_params(**params)


class _FitPlan:
    """What :meth:`_BaseMultiTask._prepare_fit` checked and built, before commit."""


def _has_classification_task(estimator) -> bool:
    return not hasattr(estimator, "tasks_") or any(
        t.is_classification for t in estimator.tasks_.tasks
    )


class MultiTaskNeuralEstimator(_BaseMultiTask):
    """Multi-task neural network: one shared PyTorch trunk, one head per task.

    Each column of ``y`` is a task; tasks may be of mixed kinds (binary,
    multiclass, regression) in one model. Classification tasks are trained with
    cross-entropy, regression tasks with squared error on standardised targets
    (so targets of different magnitudes train together); the training loss is
    the weighted sum of the task losses. Missing labels (NaN / None) leave a row
    out of that task's loss only.

    Parameters
    ----------
    {{TASK_TYPES}}

    {{INPUTS}}

    {{NETWORK}}

    {{CLASS_WEIGHT}}

    {{TRAINING}}

    {{MULTITASK}}

    Attributes
    ----------
    classes_ : list of ndarray or None, or ndarray
        Labels of each task (``None`` for a regression task); for a 1-D ``y``,
        the single task's entry.

    {{ATTRIBUTES}}

    See Also
    --------
    MultiTaskClassifier : every task a classification task.
    MultiTaskRegressor : every task a regression task.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskNeuralEstimator
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4))
    >>> y = np.column_stack([X[:, 0] > 0, 3 * X[:, 1] + X[:, 2]])
    >>> est = MultiTaskNeuralEstimator(
    ...     hidden_layer_sizes=(16,), max_iter=50, random_state=0,
    ...     task_types={"task_1": "regression"}).fit(X, y)
    >>> est.predict(X[:3]).shape
    (3, 2)
    >>> [t.kind for t in est.tasks_.tasks]
    ['binary', 'regression']
    """

    _parameter_constraints: dict = {
        **_BaseMultiTask._parameter_constraints,
        "task_types": [dict, None],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        *,
        task_types=None,
        categorical_features="from_dtype",
        numeric_scaling="auto",
        num_embeddings="auto",
        n_bins=48,
        embedding_dim=16,
        one_hot_max_size=16,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        head_layer_sizes=(),
        n_ensemble=1,
        task_weights=None,
        class_weight=None,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        device="auto",
        precision="float32",
        compile=False,
        callbacks=None,
        architecture="shared_bottom",
        n_experts=4,
        expert_layer_sizes=(32,),
        n_shared_experts=2,
        n_task_experts=1,
        n_levels=2,
        loss_weighting="static",
        loss_weighting_params=None,
        trunk=None,
        trunk_kwargs=None,
    ):
        super().__init__(
            categorical_features=categorical_features,
            numeric_scaling=numeric_scaling,
            num_embeddings=num_embeddings,
            n_bins=n_bins,
            embedding_dim=embedding_dim,
            one_hot_max_size=one_hot_max_size,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            dropout=dropout,
            head_layer_sizes=head_layer_sizes,
            n_ensemble=n_ensemble,
            task_weights=task_weights,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            device=device,
            precision=precision,
            compile=compile,
            callbacks=callbacks,
            architecture=architecture,
            n_experts=n_experts,
            expert_layer_sizes=expert_layer_sizes,
            n_shared_experts=n_shared_experts,
            n_task_experts=n_task_experts,
            n_levels=n_levels,
            loss_weighting=loss_weighting,
            loss_weighting_params=loss_weighting_params,
            trunk=trunk,
            trunk_kwargs=trunk_kwargs,
        )
        self.task_types = task_types
        self.class_weight = class_weight

    def _build_tasks(self, columns, names, classes):
        return build_tasks(columns, names, self.task_types, classes)

    def _class_weight(self):
        return self.class_weight

    @available_if(_has_classification_task)
    def predict_proba(self, X):
        """Class probabilities of every classification task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), or list
            For a 1-D ``y``, its ``(n_samples, n_classes)`` array; for a 2-D
            ``y`` (even of one column, as ``classes_`` is then a list), a list
            aligned with the tasks, ``None`` for regression tasks. Columns
            follow each task's ``classes`` order.
        """
        return self._predict_proba(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Classification tasks have predict_proba; the sparse checks read these tags.
        tags.classifier_tags = ClassifierTags(multi_label=True)
        return tags


class MultiTaskClassifier(ClassifierMixin, _BaseMultiTask):
    """Multi-task neural classifier: every column of ``y`` is a classification task.

    The same network and training as :class:`MultiTaskNeuralEstimator`, with the
    classifier conventions of scikit-learn: ``cross_val_score`` stratifies,
    continuous targets are rejected, and :meth:`score` is the mean accuracy over
    tasks (the accuracy for one task).

    Parameters
    ----------
    {{INPUTS}}

    {{NETWORK}}

    {{CLASS_WEIGHT}}

    {{TRAINING}}

    {{MULTITASK}}

    Attributes
    ----------
    classes_ : ndarray, or list of ndarray
        Labels of the task (1-D ``y``), or of each task.

    {{ATTRIBUTES}}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_mtl import MultiTaskClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MultiTaskClassifier(hidden_layer_sizes=(16,), max_iter=100,
    ...                           learning_rate_init=0.01, random_state=0)
    >>> clf.fit(X, y).predict_proba(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **_BaseMultiTask._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        *,
        categorical_features="from_dtype",
        numeric_scaling="auto",
        num_embeddings="auto",
        n_bins=48,
        embedding_dim=16,
        one_hot_max_size=16,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        head_layer_sizes=(),
        n_ensemble=1,
        task_weights=None,
        class_weight=None,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        device="auto",
        precision="float32",
        compile=False,
        callbacks=None,
        architecture="shared_bottom",
        n_experts=4,
        expert_layer_sizes=(32,),
        n_shared_experts=2,
        n_task_experts=1,
        n_levels=2,
        loss_weighting="static",
        loss_weighting_params=None,
        trunk=None,
        trunk_kwargs=None,
    ):
        super().__init__(
            categorical_features=categorical_features,
            numeric_scaling=numeric_scaling,
            num_embeddings=num_embeddings,
            n_bins=n_bins,
            embedding_dim=embedding_dim,
            one_hot_max_size=one_hot_max_size,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            dropout=dropout,
            head_layer_sizes=head_layer_sizes,
            n_ensemble=n_ensemble,
            task_weights=task_weights,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            device=device,
            precision=precision,
            compile=compile,
            callbacks=callbacks,
            architecture=architecture,
            n_experts=n_experts,
            expert_layer_sizes=expert_layer_sizes,
            n_shared_experts=n_shared_experts,
            n_task_experts=n_task_experts,
            n_levels=n_levels,
            loss_weighting=loss_weighting,
            loss_weighting_params=loss_weighting_params,
            trunk=trunk,
            trunk_kwargs=trunk_kwargs,
        )
        self.class_weight = class_weight

    def _build_tasks(self, columns, names, classes):
        return build_tasks(columns, names, None, classes, "classification")

    def _class_weight(self):
        return self.class_weight

    def predict_proba(self, X):
        """Class probabilities of every task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), or list of ndarray
            For a 1-D ``y``, its ``(n_samples, n_classes)`` array; for a 2-D
            ``y`` (even of one column, as ``classes_`` is then a list), a list
            aligned with the tasks. Columns follow each task's ``classes``.
        """
        return self._predict_proba(X)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy over tasks, each on its labelled rows.

        For one task this is :meth:`sklearn.base.ClassifierMixin.score`; with
        several it handles tasks of different label types and missing labels
        (a task without a labelled row in ``y`` is left out of the mean).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        return self._mean_task_score(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MultiTaskRegressor(RegressorMixin, _BaseMultiTask):
    """Multi-task neural regressor: every column of ``y`` is a regression task.

    Targets are standardised per task for training, so targets of different
    magnitudes train together, and unscaled on output. :meth:`score` is the
    mean R2 over tasks, as :meth:`sklearn.base.RegressorMixin.score`.

    Parameters
    ----------
    {{INPUTS}}

    {{NETWORK}}

    {{TRAINING}}

    {{MULTITASK}}

    Attributes
    ----------
    {{ATTRIBUTES}}

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn_mtl import MultiTaskRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, n_targets=2,
    ...                        random_state=0)
    >>> reg = MultiTaskRegressor(hidden_layer_sizes=(32,), max_iter=200,
    ...                          learning_rate_init=0.01, random_state=0)
    >>> reg.fit(X, y).predict(X[:4]).shape
    (4, 2)
    """

    def __init__(
        self,
        *,
        categorical_features="from_dtype",
        numeric_scaling="auto",
        num_embeddings="auto",
        n_bins=48,
        embedding_dim=16,
        one_hot_max_size=16,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        head_layer_sizes=(),
        n_ensemble=1,
        task_weights=None,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        device="auto",
        precision="float32",
        compile=False,
        callbacks=None,
        architecture="shared_bottom",
        n_experts=4,
        expert_layer_sizes=(32,),
        n_shared_experts=2,
        n_task_experts=1,
        n_levels=2,
        loss_weighting="static",
        loss_weighting_params=None,
        trunk=None,
        trunk_kwargs=None,
    ):
        super().__init__(
            categorical_features=categorical_features,
            numeric_scaling=numeric_scaling,
            num_embeddings=num_embeddings,
            n_bins=n_bins,
            embedding_dim=embedding_dim,
            one_hot_max_size=one_hot_max_size,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            dropout=dropout,
            head_layer_sizes=head_layer_sizes,
            n_ensemble=n_ensemble,
            task_weights=task_weights,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            device=device,
            precision=precision,
            compile=compile,
            callbacks=callbacks,
            architecture=architecture,
            n_experts=n_experts,
            expert_layer_sizes=expert_layer_sizes,
            n_shared_experts=n_shared_experts,
            n_task_experts=n_task_experts,
            n_levels=n_levels,
            loss_weighting=loss_weighting,
            loss_weighting_params=loss_weighting_params,
            trunk=trunk,
            trunk_kwargs=trunk_kwargs,
        )

    def _build_tasks(self, columns, names, classes):
        return build_tasks(columns, names, None, classes, "regression")

    def score(self, X, y, sample_weight=None):
        """Mean R2 over tasks, each on its labelled rows.

        For one task this is :meth:`sklearn.base.RegressorMixin.score`; with
        several it is the mean R2, skipping missing labels (a task without a
        labelled row in ``y`` is left out of the mean).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        return self._mean_task_score(X, y, sample_weight)


_FRAGMENTS = dict(
    TASK_TYPES=_docstring.params("task_types"),
    INPUTS=_docstring.params("inputs"),
    NETWORK=_docstring.params("network"),
    CLASS_WEIGHT=_docstring.params("class_weight"),
    TRAINING=_docstring.params("training"),
    MULTITASK=_docstring.params("multitask"),
    ATTRIBUTES=_docstring.ATTRIBUTES,
)
for _cls in (MultiTaskNeuralEstimator, MultiTaskClassifier, MultiTaskRegressor):
    _cls.__doc__ = _fill(_cls.__doc__, **_FRAGMENTS)

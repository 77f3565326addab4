"""The scikit-learn face: parameters, validation, tags, fit / predict / score.

Talks to Tasks (``_tasks``) and the Engine (``_engine``), never to batches.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
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
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import _dask, _docstring
from ._engine import (
    PRECISIONS,
    MLPStopping,
    MultiTaskNet,
    Objective,
    TrainingDivergedError,
    fast_adam_kwargs,
)
from ._networks import ACTIVATIONS, ARCHITECTURES, build_network
from ._tasks import (
    build_tasks,
    per_task_class_weight,
    resolve_per_task,
    split_target_columns,
)
from .weighting import TORCHJD_AGGREGATORS, WEIGHTINGS, make_weighting

__all__ = ["MultiTaskNeuralEstimator", "MultiTaskClassifier", "MultiTaskRegressor"]

_PREDICT_BATCH = 8192


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
        torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'."
        ) from exc
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return device


@contextmanager
def _seeded(seed: int, device: str):
    """Seed torch for init, dropout and shuffling without touching global state."""
    dev = torch.device(device)
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def _stack_predictions(preds: list[np.ndarray]) -> np.ndarray:
    """(n, n_tasks) predictions; a common dtype if one exists, else object."""
    kinds = {p.dtype.kind for p in preds}
    if kinds <= set("biuf") or kinds == {"U"}:
        return np.column_stack(preds)
    out = np.empty((preds[0].shape[0], len(preds)), dtype=object)
    for j, p in enumerate(preds):
        out[:, j] = p
    return out


def _validate_X(estimator, X, **kwargs):
    """``validate_data`` for X; errors say that X (and which columns) is at fault."""
    try:
        return validate_data(estimator, X, **kwargs)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        if msg.startswith("Complex data not supported"):
            raise ValueError(
                "Complex data not supported in X: the features must be real numbers."
            ) from exc
        if "could not convert" in msg or "argument must be" in msg:
            where = ""
            dtypes = getattr(X, "dtypes", None)
            if dtypes is not None:
                import pandas as pd

                bad = [
                    str(c)
                    for c, d in dtypes.items()
                    if not (
                        pd.api.types.is_numeric_dtype(d)
                        or pd.api.types.is_bool_dtype(d)
                    )
                ]
                where = f" (non-numeric columns: {bad})" if bad else ""
            raise type(exc)(
                f"X must be numeric{where}; encode categorical or text features "
                f"first (e.g. with OneHotEncoder). {msg}"
            ) from exc
        raise


def _has_classification_task(estimator) -> bool:
    return not hasattr(estimator, "tasks_") or any(
        t.is_classification for t in estimator.tasks_.tasks
    )


class MultiTaskNeuralEstimator(MultiOutputMixin, BaseEstimator):
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

    _force_kind: str | None = None

    _parameter_constraints: dict = {
        "task_types": [dict, None],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "head_layer_sizes": ["array-like"],
        "task_weights": [dict, None],
        "class_weight": [dict, StrOptions({"balanced"}), None],
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
        "early_stopping": ["boolean"],
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

    def __init__(
        self,
        *,
        task_types=None,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        head_layer_sizes=(),
        task_weights=None,
        class_weight=None,
        alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping=False,
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
        self.task_types = task_types
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.head_layer_sizes = head_layer_sizes
        self.task_weights = task_weights
        self.class_weight = class_weight
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
        classes : array-like, or list of array-like / None per task, default=None
            All labels of each classification task, needed on the first call
            when a batch may not show every class. Inferred from ``y`` if None.
            Ignored after the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row, as in :meth:`fit`.

        Returns
        -------
        self : object
            The estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        _dask.match_worker_threads()
        # Dask collections stream block by block (sklearn_mtl/_dask.py).
        if _dask.is_collection(X, y, sample_weight):
            return _dask.fit(
                self, X, y, sample_weight, incremental=incremental, classes=classes
            )
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        first_pass = not hasattr(self, "net_") or (
            not self.warm_start and not incremental
        )
        X = _validate_X(self, X, reset=first_pass, dtype=np.float32, order="C")
        columns, names, is_1d = split_target_columns(y)
        if columns[0].shape[0] != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows but y has {columns[0].shape[0]}: found "
                "input variables with inconsistent numbers of samples."
            )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )

        if first_pass:
            self._initialize(X, columns, names, is_1d, classes)
        elif names is not None and names != self.task_names_:
            raise ValueError(
                f"y has columns {names} but the model was fitted on tasks "
                f"{self.task_names_}."
            )
        targets = self.tasks_.encode(
            columns, sample_weight, getattr(self, "class_weight", None)
        )

        net = self.net_
        net.batch_size = (
            min(200, X.shape[0]) if self.batch_size == "auto" else self.batch_size
        )
        for group in net.optimizer_.param_groups:
            group["lr"] = self.learning_rate_init
        net.autocast_dtype = PRECISIONS[self.precision]
        net.compile_forward = self.compile
        stopping = dict(net.callbacks_)["stopping"]
        stopping.tol, stopping.n_iter_no_change = self.tol, self.n_iter_no_change
        stopping.early_stopping = self.early_stopping and not incremental
        if first_pass or not stopping.early_stopping:
            stopping.initialize()

        # A new seed per call, so successive partial_fit calls shuffle differently.
        epochs_before = len(net.history)
        seed = check_random_state(self.random_state).randint(2**31 - 1)
        seed = (seed + epochs_before) % (2**31)
        valid = None
        if stopping.early_stopping:
            X, targets, valid = self._split_validation(X, targets, seed)
        if not X.flags.writeable:
            X = X.copy()
        device = net.device
        X_t = torch.as_tensor(X, device=device)
        targets_t = torch.as_tensor(targets, device=device)
        if valid is not None:
            valid = tuple(torch.as_tensor(a, device=device) for a in valid)
        generator = torch.Generator(device=device).manual_seed(seed)
        epochs = 1 if incremental else self.max_iter
        try:
            with _seeded(seed, device):
                stopped = net.train_epochs(
                    X_t,
                    targets_t,
                    epochs,
                    stopping=stopping,
                    shuffle=self.shuffle,
                    valid=valid,
                    generator=generator,
                )
        except TrainingDivergedError:
            self._record_history()  # the restored model is usable: keep it coherent
            raise
        self._record_history()
        ran_all = len(net.history) - epochs_before == epochs
        if not incremental and not stopped and ran_all:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return self

    def _initialize(self, X, columns, names, is_1d, classes, tasks=None):
        """First pass: tasks from y (or given ``tasks``), then network and engine."""
        if names is None:
            names = [f"task_{i}" for i in range(len(columns))]
        task_types = getattr(self, "task_types", None)
        self.tasks_ = (
            tasks
            if tasks is not None
            else build_tasks(columns, names, task_types, classes, self._force_kind)
        )
        self.task_names_ = names
        self.n_outputs_ = len(names)
        self._y_1d = is_1d
        per_task = [t.classes for t in self.tasks_.tasks]
        if self._force_kind != "regression":
            self.classes_ = per_task[0] if is_1d else per_task
        weights = resolve_per_task(
            self.task_weights, names, "task_weights", single_value_ok=False
        )
        weights = [1.0 if w is None else w for w in weights]
        for name, w in zip(names, weights):
            if not isinstance(w, Real) or not np.isfinite(w) or w < 0:
                raise ValueError(
                    f"task_weights[{name!r}] must be a finite number >= 0, got {w!r}."
                )
        # Fail now, naming the parameter, rather than deep in encoding.
        per_task_class_weight(getattr(self, "class_weight", None), names)

        device = resolve_device(self.device)
        hidden = _layer_sizes(self.hidden_layer_sizes, "hidden_layer_sizes")
        head = _layer_sizes(self.head_layer_sizes, "head_layer_sizes")
        seed = check_random_state(self.random_state).randint(2**31 - 1)
        if self.task_weights is not None and self.loss_weighting != "static":
            raise ValueError(
                "task_weights is used by loss_weighting='static' only; got "
                f"loss_weighting={self.loss_weighting!r}. Set task_weights=None."
            )
        if self.architecture in ("cgc", "ple") and (
            self.n_shared_experts + self.n_task_experts == 0
        ):
            raise ValueError(
                "n_shared_experts + n_task_experts must be >= 1 for "
                f"architecture={self.architecture!r}."
            )
        with _seeded(seed, device):
            module = build_network(
                self.architecture,
                X.shape[1],
                self.tasks_.output_widths,
                hidden_layer_sizes=hidden,
                activation=self.activation,
                dropout=self.dropout,
                head_layer_sizes=head,
                n_experts=self.n_experts,
                expert_layer_sizes=_layer_sizes(
                    self.expert_layer_sizes, "expert_layer_sizes"
                ),
                n_shared_experts=self.n_shared_experts,
                n_task_experts=self.n_task_experts,
                n_levels=self.n_levels,
                trunk=self._build_trunk(),
            )
            weighting = make_weighting(
                self.loss_weighting, len(names), weights, self.loss_weighting_params
            )
        batch = min(200, X.shape[0]) if self.batch_size == "auto" else self.batch_size
        callbacks = [("stopping", MLPStopping())] + list(self.callbacks or [])
        self.net_ = MultiTaskNet(
            module=module,
            criterion=Objective(self.tasks_.loss_module(), weighting),
            optimizer=torch.optim.Adam,
            lr=self.learning_rate_init,
            batch_size=batch,
            max_epochs=self.max_iter,
            train_split=None,
            callbacks=callbacks,
            verbose=int(self.verbose),
            device=device,
            # L2 penalty on weights only, scaled per batch as in MLPClassifier.
            optimizer__param_groups=[
                ("*weight", {"weight_decay": self.alpha / batch}),
            ],
            **{
                f"optimizer__{k}": v
                for k, v in fast_adam_kwargs(torch.device(device).type).items()
            },
        ).initialize()

    def _build_trunk(self):
        """Build ``trunk(**trunk_kwargs)``, a module (n, n_features) -> (n, d)."""
        if self.trunk is None:
            if self.trunk_kwargs:
                raise ValueError("trunk_kwargs was given but trunk is None.")
            return None
        try:
            trunk = self.trunk(**(self.trunk_kwargs or {}))
        except TypeError as exc:
            raise ValueError(
                f"trunk could not be built with trunk_kwargs={self.trunk_kwargs!r}: "
                f"{exc}"
            ) from exc
        if not isinstance(trunk, torch.nn.Module):
            raise TypeError(
                "trunk must be a torch.nn.Module class or a callable returning a "
                f"Module; it returned {type(trunk).__name__}."
            )
        return trunk

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
        module = self.net_.module_
        if not hasattr(module, "gates"):
            raise ValueError(
                f"gate_weights needs a gated architecture ('mmoe', 'omoe', 'cgc', "
                f"'ple'); this model has architecture={self.architecture!r}, "
                "which has no gates."
            )
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C")
        X_t = torch.as_tensor(np.array(X), device=self.net_.device)
        self.net_._set_training(False)
        with torch.inference_mode():
            sums = sum(
                module.gates(X_t[start : start + _PREDICT_BATCH]).sum(dim=1)
                for start in range(0, X_t.shape[0], _PREDICT_BATCH)
            )
        means = (sums / X_t.shape[0]).cpu().numpy().astype(np.float64)
        return {
            name: means[min(i, means.shape[0] - 1)].copy()
            for i, name in enumerate(self.task_names_)
        }

    def _split_validation(self, X, targets, seed):
        n_tasks = self.n_outputs_
        labelled = targets[:, 2 * n_tasks :] > 0
        n = X.shape[0]
        n_valid = int(np.ceil(self.validation_fraction * n))
        if n_valid < 2 or n - n_valid < 1:
            raise ValueError(
                f"The validation set is too small: validation_fraction="
                f"{self.validation_fraction} of {n} rows leaves {n_valid} for "
                f"validation and {n - n_valid} for training. Increase "
                "'validation_fraction' or the size of your dataset."
            )
        stratify = None
        if n_tasks == 1 and self.tasks_.tasks[0].is_classification and labelled.all():
            counts = np.unique(targets[:, 0], return_counts=True)[1]
            # Stratify only where train_test_split can (as MLP, else plain split).
            if counts.min() >= 2 and min(n_valid, n - n_valid) >= len(counts):
                stratify = targets[:, 0]
        idx_train, idx_valid = train_test_split(
            np.arange(X.shape[0]),
            test_size=self.validation_fraction,
            random_state=seed,
            stratify=stratify,
        )
        if idx_valid.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        return X[idx_train], targets[idx_train], (X[idx_valid], targets[idx_valid])

    def _record_history(self):
        history = self.net_.history
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
        stopping = dict(self.net_.callbacks_)["stopping"]
        if stopping.early_stopping:
            self.validation_scores_ = [
                row.get("valid_score") for row in history if "valid_score" in row
            ]
            self.best_validation_score_ = stopping.best_score_
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None

    @property
    def module_(self):
        """The trained torch network (``net_.module_``)."""
        return self.net_.module_

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    # ------------------------------------------------------------------ inference
    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        # Inference runs in the dtype of X (float32 or float64), as sklearn's MLP.
        X = _validate_X(self, X, reset=False, dtype=(np.float64, np.float32), order="C")
        if not X.flags.writeable:
            X = X.copy()
        X_t = torch.as_tensor(X, device=self.net_.device)
        batch = max(_PREDICT_BATCH, int(self.net_.batch_size))
        return self.net_.forward_outputs(X_t, batch).cpu().numpy()

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
        return preds[0] if self._y_1d else _stack_predictions(preds)

    @available_if(_has_classification_task)
    def predict_proba(self, X):
        """Class probabilities of every classification task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), or list
            For one task, its ``(n_samples, n_classes)`` array; for several, a
            list aligned with the tasks, ``None`` for regression tasks. Columns
            follow each task's ``classes`` order.
        """
        if _dask.is_collection(X):
            return _dask.predict(self, X, "predict_proba")
        outputs = self._outputs(X)
        probas = self.tasks_.predict_proba(outputs)
        return probas[0] if len(probas) == 1 else probas

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of each task's score on its labelled rows.

        Classification tasks score their accuracy, regression tasks their R2
        (as :meth:`sklearn.base.ClassifierMixin.score` and
        :meth:`sklearn.base.RegressorMixin.score` do for one task).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        if _dask.is_collection(X, y, sample_weight):
            return _dask.score(self, X, y, sample_weight)
        outputs = self._outputs(X)
        columns, _, _ = split_target_columns(y)
        preds = self.tasks_.predict(outputs)
        return float(np.mean(self.tasks_.score(preds, columns, sample_weight)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        return tags


class MultiTaskClassifier(ClassifierMixin, MultiTaskNeuralEstimator):
    """Multi-task neural classifier: every column of ``y`` is a classification task.

    The same network and training as :class:`MultiTaskNeuralEstimator`, with the
    classifier conventions of scikit-learn: ``cross_val_score`` stratifies,
    continuous targets are rejected, and :meth:`score` is the mean accuracy over
    tasks (the accuracy for one task).

    Parameters
    ----------
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

    _force_kind = "classification"
    _parameter_constraints = {
        k: v
        for k, v in MultiTaskNeuralEstimator._parameter_constraints.items()
        if k != "task_types"
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        head_layer_sizes=(),
        task_weights=None,
        class_weight=None,
        alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping=False,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.head_layer_sizes = head_layer_sizes
        self.task_weights = task_weights
        self.class_weight = class_weight
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

    # ClassifierMixin.score comes first in the MRO; ours handles several tasks
    # of different kinds and missing labels (and equals it for one task).
    score = MultiTaskNeuralEstimator.score

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MultiTaskRegressor(RegressorMixin, MultiTaskNeuralEstimator):
    """Multi-task neural regressor: every column of ``y`` is a regression task.

    Targets are standardised per task for training, so targets of different
    magnitudes train together, and unscaled on output. :meth:`score` is the
    mean R2 over tasks, as :meth:`sklearn.base.RegressorMixin.score`.

    Parameters
    ----------
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

    _force_kind = "regression"
    # RegressorMixin.score comes first in the MRO; ours skips missing labels
    # (and equals it, the mean R2 over tasks, otherwise).
    score = MultiTaskNeuralEstimator.score
    _parameter_constraints = {
        k: v
        for k, v in MultiTaskNeuralEstimator._parameter_constraints.items()
        if k not in ("task_types", "class_weight")
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        head_layer_sizes=(),
        task_weights=None,
        alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping=False,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.head_layer_sizes = head_layer_sizes
        self.task_weights = task_weights
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


_FRAGMENTS = dict(
    TASK_TYPES=_docstring.params("task_types"),
    NETWORK=_docstring.params("network"),
    CLASS_WEIGHT=_docstring.params("class_weight"),
    TRAINING=_docstring.params("training"),
    MULTITASK=_docstring.params("multitask"),
    ATTRIBUTES=_docstring.ATTRIBUTES,
)
for _cls in (MultiTaskNeuralEstimator, MultiTaskClassifier, MultiTaskRegressor):
    _cls.__doc__ = _fill(_cls.__doc__, **_FRAGMENTS)

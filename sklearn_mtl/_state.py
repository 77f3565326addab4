"""A fitted estimator's state as plain data, and its checked restoration.

``__getstate__`` of the estimators returns :func:`plain_state`: parameters,
the fitted attributes this package writes, the tasks as dicts and the engine
as a dict of numbers, lists and numpy arrays (no torch object). pickle, skops
and :func:`sklearn_mtl.save` all store that state, and all three restore it
through :func:`restore`, which accepts nothing beyond a fixed list of
attributes, checks every value's type, bounds the size of the network a file
may ask for before building it, and raises :class:`ValueError` naming what is
wrong. The only types skops must be told to trust are :data:`TRUSTED_TYPES`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch

from .nn.embeddings import NUM_EMBEDDINGS

__all__ = ["TRUSTED_TYPES", "plain_state", "restore"]

# Version of the plain state; a newer one is refused (written by a newer package).
# 2: dicts whose keys skops cannot rebuild are stored as their items
# (:func:`_keys_as_items`); a state without such a dict is written as 1.
# 3: the metadata routing requests (``set_fit_request``, ...) as plain data
# (:func:`plain_requests`); written only when a request other than the
# defaults was set.
STATE_VERSION = 3
# The attribute scikit-learn's ``set_<method>_request`` sets on an instance.
_REQUESTS = "_metadata_request"
# The types a skops file of a model of this package names beyond skops' defaults.
TRUSTED_TYPES = (
    "sklearn_mtl._estimator.MultiTaskClassifier",
    "sklearn_mtl._estimator.MultiTaskNeuralEstimator",
    "sklearn_mtl._estimator.MultiTaskRegressor",
)
# Upper bound on the network size (parameters) a file may ask to be built.
MAX_NETWORK_PARAMETERS = 2**30
# Fitted attributes a file may set (``engine_`` and ``tasks_`` are rebuilt).
FITTED_ATTRIBUTES = frozenset(
    {
        "n_features_in_",
        "feature_names_in_",
        "inputs_",
        "task_names_",
        "n_outputs_",
        "_y_1d",
        "classes_",
        "n_iter_",
        "loss_curve_",
        "task_loss_curves_",
        "task_weight_curves_",
        "validation_scores_",
        "task_validation_scores_",
        "best_validation_score_",
        "best_loss_",
        "_built_with",
    }
)
# The parameters the network, its loss weighting and its optimizer were built
# from (recorded by a first fit as ``_built_with``): a model restored from a
# file is rebuilt from these, not from parameters set after fit.
BUILD_PARAMS = (
    "architecture",
    "num_embeddings",
    "embedding_dim",
    "n_ensemble",
    "hidden_layer_sizes",
    "activation",
    "dropout",
    "head_layer_sizes",
    "n_experts",
    "expert_layer_sizes",
    "n_shared_experts",
    "n_task_experts",
    "n_levels",
    "loss_weighting",
    "loss_weighting_params",
    "task_weights",
    "class_weight",
    "solver",
    "trunk",
    "trunk_kwargs",
    "precision",
)
_BOOKKEEPING = frozenset(
    {"_sklearn_version", "_sklearn_mtl_version", "_sklearn_mtl_state"}
)
_REBUILT = ("engine_", "tasks_")
_TASK_FIELDS = ("name", "kind", "classes", "mean", "scale")
_TASK_KINDS = ("binary", "multiclass", "regression")
_INPUT_KEYS = {
    "numeric",
    "categorical",
    "median",
    "missing_indicator",
    "scaling",
    "categories",
    "bins",
}
# Keys of inputs_ that each numeric scaling adds.
_SCALING_KEYS = {None: set(), "quantile": {"quantiles"}, "robust": {"center", "scale"}}
_ENGINE_KEYS = {"batch_size", "random_state", "history", "stopping", "tensors"}


def _tree(obj, leaf):
    """``obj`` with ``leaf`` applied to every array or tensor in dicts/lists/tuples."""
    if isinstance(obj, torch.Tensor | np.ndarray):
        return leaf(obj)
    if isinstance(obj, dict):
        return {k: _tree(v, leaf) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_tree(v, leaf) for v in obj)
    return obj


def _to_numpy(t):
    return t.detach().cpu().numpy().copy() if isinstance(t, torch.Tensor) else t


def _to_torch(a):
    if isinstance(a, torch.Tensor):
        return a
    if a.dtype.kind not in "biuf":
        raise ValueError(f"a weight array has dtype {a.dtype}, not a number type.")
    return torch.from_numpy(np.array(a, copy=True))


# --------------------------------------------------------------------------- save
def plain_columns(value):
    """A pandas Index or Series of column names as a list of the same names.

    ``categorical_features=X.select_dtypes(...).columns`` is natural to pass;
    every file format stores the list.
    """
    if hasattr(value, "tolist") and not isinstance(value, np.ndarray):
        return value.tolist()
    return value


# The one key of a dict stored as its items (see _keys_as_items).
_ITEMS = "__sklearn_mtl_dict_items__"


def _skops_key(key) -> bool:
    """Whether skops rebuilds the dict key ``key`` from its JSON text.

    skops writes dict keys as JSON object keys and reads each back as
    ``type(key)(text)``: strings and numbers come back, booleans do not
    (``bool("false")`` is True), nor None or tuples.
    """
    return isinstance(key, str) or (
        isinstance(key, Real) and not isinstance(key, bool | np.bool_)
    )


def _keys_as_items(obj, stored=None):
    """``obj`` with every dict whose keys skops cannot rebuild (a
    ``class_weight`` of a bool task: ``{True: 5.0, False: 1.0}``) stored as
    ``{_ITEMS: [[key, value], ...]}``, in dicts, lists and tuples. Each dict so
    stored is appended to ``stored``; everything else is returned as it is
    (the same object: a namedtuple or an OrderedDict keeps its type).

    >>> _keys_as_items({"income": {True: 5.0, False: 1.0}, "n": [1]})
    {'income': {'__sklearn_mtl_dict_items__': [[True, 5.0], [False, 1.0]]}, 'n': [1]}
    """
    return _rebuilt(obj, lambda d: _as_items(d, stored))


def _as_items(d: dict, stored):
    if all(_skops_key(k) for k in d):
        return d
    if stored is not None:
        stored.append(d)
    return {_ITEMS: [[k, v] for k, v in d.items()]}


def _items_as_keys(obj):
    """The inverse of :func:`_keys_as_items` (checked: a malformed entry
    raises ValueError)."""
    return _rebuilt(obj, _from_items)


def _from_items(d: dict):
    if _ITEMS not in d:
        return d
    items = d[_ITEMS]
    if len(d) != 1 or not (
        isinstance(items, list)
        and all(isinstance(p, list | tuple) and len(p) == 2 for p in items)
    ):
        _fail(f"a {_ITEMS!r} entry is not a list of [key, value] pairs.")
    try:
        return dict(items)
    except TypeError:  # an unhashable key
        _fail(f"a {_ITEMS!r} entry has a key that is not hashable.")


def _rebuilt(obj, on_dict):
    """``obj`` with ``on_dict`` applied to every dict, innermost first, in
    dicts, lists and tuples (exact types: a namedtuple is a value); a
    container is copied only where something in it changed."""
    if isinstance(obj, dict):
        values = {k: _rebuilt(v, on_dict) for k, v in obj.items()}
        if any(values[k] is not v for k, v in obj.items()):
            obj = obj.copy()  # keeps an OrderedDict's or defaultdict's type
            obj.update(values)
        return on_dict(obj)
    if type(obj) in (list, tuple):
        items = [_rebuilt(v, on_dict) for v in obj]
        if any(new is not old for new, old in zip(items, obj)):
            return type(obj)(items)
    return obj


def plain_state(state: dict, requests: dict | None = None) -> dict:
    """``state`` (``BaseEstimator.__getstate__``) with the engine and tasks as
    data, and dicts with keys skops cannot rebuild as their items.

    ``requests``: the routing requests of :func:`set_requests` (None: none
    set, or the class's defaults, which need no record).
    """
    from . import __version__

    state = dict(state)
    state.pop(_REQUESTS, None)
    if requests is not None:
        state[_REQUESTS] = requests
    if "categorical_features" in state:
        state["categorical_features"] = plain_columns(state["categorical_features"])
    stored = []
    for key, value in state.items():
        if key not in ("engine_", "tasks_", _REQUESTS):
            state[key] = _keys_as_items(value, stored)
    engine = state.get("engine_")
    if engine is not None:
        saved = engine.get_state()
        state["engine_"] = {
            "batch_size": int(engine.batch_size),
            "random_state": int(engine.random_state),
            "history": saved["history"],
            "stopping": saved["stopping"],
            "tensors": _tree(saved["tensors"], _to_numpy),
        }
        state["tasks_"] = [
            {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}
            for t in state["tasks_"].tasks
        ]
    # The oldest format that holds it: older packages read a plain state.
    state["_sklearn_mtl_state"] = 3 if _REQUESTS in state else 2 if stored else 1
    state["_sklearn_mtl_version"] = __version__
    return state


def plain_requests(request) -> dict:
    """The routing requests of ``request`` (a ``MetadataRequest``) as data.

    ``{method: {parameter: alias}}``, an alias being True, False, None or a
    string, as given to ``set_<method>_request``; methods without a parameter
    are left out.
    """
    out = {}
    for method, value in vars(request).items():
        requests = getattr(value, "requests", None)
        if isinstance(requests, dict) and requests:
            out[method] = dict(requests)
    return out


def set_requests(estimator) -> dict | None:
    """The routing requests set on ``estimator`` (``set_fit_request`` & co.)
    as :func:`plain_requests`; None when none was set or they equal the
    class's defaults (a file then needs no newer format)."""
    request = vars(estimator).get(_REQUESTS)
    if request is None:
        return None
    plain = plain_requests(request)
    defaults = plain_requests(type(estimator)()._get_metadata_request())
    return None if plain == defaults else plain


def _restore_requests(estimator, stored) -> None:
    """Set the requests of :func:`plain_requests` on ``estimator``, checked.

    As ``set_<method>_request`` sets them, without asking for metadata routing
    to be enabled: a model is loaded as it was saved, whatever the config.
    """
    _check_type(stored, dict, "the routing requests")
    request = estimator._get_metadata_request()  # the class's defaults
    for method, requests in stored.items():
        target = getattr(request, method, None) if isinstance(method, str) else None
        if not isinstance(getattr(target, "requests", None), dict):
            _fail(f"the routing requests name {method!r}, not a method.")
        _check_type(requests, dict, f"the routing requests of {method!r}")
        for param, alias in requests.items():
            if param not in target.requests:
                _fail(
                    f"the routing requests of {method!r} name {param!r}, which "
                    f"{method} does not take."
                )
            if not (alias is None or isinstance(alias, bool | str)):
                _fail(f"the routing request of {method}'s {param!r} is {alias!r}.")
            try:
                target.add_request(param=param, alias=alias)
            except ValueError as exc:
                _fail(f"the routing request of {method}'s {param!r}: {exc}")
    estimator.__dict__[_REQUESTS] = request


# --------------------------------------------------------------------------- load
def _fail(what: str):
    raise ValueError(f"Invalid sklearn-mtl model state: {what}")


def _check_type(value, types, what):
    allowed = getattr(types, "__args__", (types,))
    if not isinstance(value, types) or (
        isinstance(value, bool) and bool not in allowed
    ):
        _fail(f"{what} is of type {type(value).__name__}.")
    return value


def _int_list(value, what):
    _check_type(value, list | tuple, what)
    for v in value:
        _check_type(v, Integral, f"an entry of {what}")
    return list(value)


def _check_task(spec, i) -> dict:
    from ._tasks import Task

    _check_type(spec, dict, f"task {i}")
    if set(spec) != set(_TASK_FIELDS):
        _fail(f"task {i} has fields {sorted(spec)}, expected {sorted(_TASK_FIELDS)}.")
    _check_type(spec["name"], str, f"the name of task {i}")
    if spec["kind"] not in _TASK_KINDS:
        _fail(f"task {i} has kind {spec['kind']!r}, not one of {_TASK_KINDS}.")
    classes = spec["classes"]
    if spec["kind"] == "regression":
        if classes is not None:
            _fail(f"regression task {spec['name']!r} has classes.")
    elif not (
        isinstance(classes, np.ndarray)
        and classes.ndim == 1
        and classes.shape[0] >= 2
        and classes.dtype.kind in "biufUO"
    ):
        _fail(f"task {spec['name']!r} has no valid 1-d array of classes.")
    for key in ("mean", "scale"):
        value = _check_type(spec[key], Real, f"{key} of task {spec['name']!r}")
        if not math.isfinite(value):
            _fail(f"{key} of task {spec['name']!r} is not finite.")
    return Task(**spec)


def _check_inputs(inputs, n_features):
    _check_type(inputs, dict, "inputs_")
    scaling = inputs.get("scaling")
    if scaling not in _SCALING_KEYS:
        _fail(f"inputs_['scaling'] is {scaling!r}.")
    optional = {"num_embeddings", "one_hot", "sparse"}  # absent in older files
    if not isinstance(inputs.get("sparse", False), bool):
        _fail(f"inputs_['sparse'] is {inputs['sparse']!r}.")
    if set(inputs) - optional != _INPUT_KEYS | _SCALING_KEYS[scaling]:
        _fail(f"inputs_ has keys {sorted(inputs, key=str)}.")
    if inputs.get("num_embeddings") not in (None, *NUM_EMBEDDINGS):
        _fail(f"inputs_['num_embeddings'] is {inputs['num_embeddings']!r}.")
    numeric = _int_list(inputs["numeric"], "inputs_['numeric']")
    categorical = _int_list(inputs["categorical"], "inputs_['categorical']")
    one_hot = inputs.get("one_hot", [False] * len(categorical))
    if (
        not isinstance(one_hot, list)
        or len(one_hot) != len(categorical)
        or not all(isinstance(h, bool) for h in one_hot)
    ):
        _fail("inputs_['one_hot'] is not one bool per categorical column.")
    if sorted(numeric + categorical) != list(range(n_features)):
        _fail("inputs_ does not cover the n_features_in_ columns once each.")
    indicators = _int_list(inputs["missing_indicator"], "inputs_['missing_indicator']")
    if any(not 0 <= j < len(numeric) for j in indicators):
        _fail("inputs_['missing_indicator'] names a column that is not numeric.")
    median = _check_type(inputs["median"], np.ndarray, "inputs_['median']")
    if median.shape != (len(numeric),) or median.dtype.kind != "f":
        _fail("inputs_['median'] is not one float per numeric column.")
    _check_type(inputs["categories"], list, "inputs_['categories']")
    if len(inputs["categories"]) != len(categorical):
        _fail("inputs_['categories'] is not one list per categorical column.")
    for cats in inputs["categories"]:
        _check_type(cats, list, "an entry of inputs_['categories']")
    bins = inputs["bins"]
    if bins is not None:
        _check_type(bins, list, "inputs_['bins']")
        if len(bins) != len(numeric):
            _fail("inputs_['bins'] is not one array per numeric column.")
        for b in bins:
            _check_type(b, np.ndarray, "an entry of inputs_['bins']")
            if b.ndim != 1 or b.shape[0] < 2 or b.dtype.kind != "f":
                _fail("an entry of inputs_['bins'] is not a 1-d float array of edges.")
    for key in _SCALING_KEYS[scaling]:
        value = _check_type(inputs[key], np.ndarray, f"inputs_[{key!r}]")
        if value.dtype.kind != "f" or value.shape[-1:] != (len(numeric),):
            _fail(f"inputs_[{key!r}] is not a float array over the numeric columns.")
        if key == "quantiles" and (value.ndim != 2 or value.shape[0] < 2):
            _fail("inputs_['quantiles'] is not a 2-d array of quantiles.")


def _size_bound(est, inputs, tasks) -> int:
    """An upper bound on the number of network parameters ``est`` would build."""
    from ._estimator import _layer_sizes
    from ._inputs import encoded_width

    sizes = [
        *_layer_sizes(est.hidden_layer_sizes, "hidden_layer_sizes"),
        *_layer_sizes(est.head_layer_sizes, "head_layer_sizes"),
        *_layer_sizes(est.expert_layer_sizes, "expert_layer_sizes"),
    ]
    n_tasks = len(tasks.tasks)
    n_in = encoded_width(inputs) * (est.embedding_dim + 1) + sum(
        len(c) + 1 for c in inputs["categories"]
    )
    embeddings = est.embedding_dim * (
        sum(len(c) + 2 for c in inputs["categories"])
        + sum(len(b) for b in inputs["bins"] or [])
        + n_in
    )
    width = max([n_in, sum(tasks.output_widths), *sizes]) + 1
    blocks = (
        (est.n_experts + est.n_shared_experts + (est.n_task_experts + 2) * n_tasks)
        * est.n_levels
        * est.n_ensemble
    )
    return embeddings + blocks * (len(sizes) + 2) * width * width


def restore(estimator, state) -> None:
    """Set ``estimator`` (made with ``__new__``) from a :func:`plain_state`.

    Raises
    ------
    ValueError
        Naming what is wrong, for anything but a state this package writes.
    """
    from ._engine import MultiTaskEngine

    _check_type(state, dict, "the state")
    state = dict(state)
    version = state.get("_sklearn_mtl_state")
    if version is None and isinstance(state.get("engine_"), MultiTaskEngine):
        estimator.__dict__.update(state)  # a pickle from before plain states
        return
    if not isinstance(version, Integral) or isinstance(version, bool):
        _fail(f"state version {version!r} is not an integer.")
    if version > STATE_VERSION:
        raise ValueError(
            f"This model was written by sklearn-mtl "
            f"{state.get('_sklearn_mtl_version')!r} in state format {version}; "
            f"this sklearn-mtl reads format {STATE_VERSION} and older. Upgrade "
            "sklearn-mtl to load it."
        )
    cls = type(estimator)
    names = set(cls._get_param_names())
    requests = state.pop(_REQUESTS, None)
    for key in state:
        _check_type(key, str, "an attribute name")
        if key not in ("engine_", "tasks_"):
            state[key] = _items_as_keys(state[key])
    unknown = sorted(
        set(state) - names - FITTED_ATTRIBUTES - _BOOKKEEPING - {*_REBUILT}
    )
    if unknown:
        _fail(
            f"attributes {unknown} are neither parameters of {cls.__name__} nor "
            "fitted attributes this package writes."
        )
    engine = state.pop("engine_", None)
    tasks = state.pop("tasks_", None)
    for key in _BOOKKEEPING:
        state.pop(key, None)
    defaults = cls().get_params(deep=False)
    estimator.__dict__.update({**defaults, **state})
    if requests is not None:
        _restore_requests(estimator, requests)
    fitted = FITTED_ATTRIBUTES & set(state)
    if engine is None:  # unfitted: parameters are checked by fit, as always
        if tasks is not None or fitted:
            _fail(f"fitted attributes {sorted(fitted)} without a network.")
        return
    try:
        estimator._validate_params()
    except (TypeError, ValueError) as exc:
        _fail(f"a parameter is invalid: {exc}")
    _restore_fitted(estimator, state, engine, tasks)


def _restore_fitted(estimator, state, engine, tasks) -> None:
    from ._tasks import TaskSet

    missing = sorted({"n_features_in_", "inputs_", "task_names_", "_y_1d"} - set(state))
    if missing:
        _fail(f"fitted attributes {missing} are missing.")
    n_features = _check_type(state["n_features_in_"], Integral, "n_features_in_")
    _check_type(state["_y_1d"], bool | np.bool_, "_y_1d")
    _check_inputs(state["inputs_"], n_features)
    _check_type(tasks, list, "tasks_")
    if not tasks:
        _fail("tasks_ is empty.")
    task_set = TaskSet([_check_task(spec, i) for i, spec in enumerate(tasks)])
    if state["task_names_"] != task_set.names:
        _fail("task_names_ does not match the tasks.")
    _check_type(engine, dict, "engine_")
    if set(engine) != _ENGINE_KEYS:
        _fail(f"engine_ has keys {sorted(engine, key=str)}.")
    batch_size = _check_type(engine["batch_size"], Integral, "the batch size")
    seed = _check_type(engine["random_state"], Integral, "the engine seed")
    if batch_size < 1 or not 0 <= seed < 2**32:
        _fail("the batch size or the engine seed is out of range.")
    _check_type(engine["history"], list, "the history")
    for row in engine["history"]:
        _check_type(row, dict, "a history row")
    _check_type(engine["stopping"], dict, "the stopping state")
    if not set(engine["stopping"]) <= {
        "best_loss_",
        "best_score_",
        "no_improvement_count_",
    }:
        _fail(f"the stopping state has keys {sorted(engine['stopping'], key=str)}.")
    tensors = _check_type(engine["tensors"], dict, "the weights")
    for part in ("module", "criterion", "optimizer"):
        _check_type(tensors.get(part), dict, f"the {part} weights")
    if not set(tensors) <= {"module", "criterion", "optimizer", "stopping_best"}:
        _fail(f"the weights have parts {sorted(tensors, key=str)}.")

    est = estimator
    # The parameters too (a refit builds from them), then the network's own.
    check_size(est, state["inputs_"], task_set)
    with _as_built(est, state.get("_built_with")):
        _build(est, state, engine, tensors, task_set, batch_size, seed)


@contextmanager
def _as_built(estimator, built):
    """The estimator's parameters as the network was built (``_built_with``)."""
    if built is None:  # a file from before the record: its current parameters
        yield
        return
    _check_type(built, dict, "_built_with")
    unknown = sorted(set(built) - set(BUILD_PARAMS), key=str)
    if unknown:
        _fail(f"_built_with names {unknown}, which are not network parameters.")
    current = {name: getattr(estimator, name) for name in built}
    estimator.__dict__.update(built)
    try:
        try:
            estimator._validate_params()
        except (TypeError, ValueError) as exc:
            _fail(f"a parameter of _built_with is invalid: {exc}")
        yield
    finally:
        estimator.__dict__.update(current)


def check_size(est, inputs, task_set) -> None:
    """Refuse parameters that ask for a network above the size limit."""
    try:
        bound = _size_bound(est, inputs, task_set)
    except (TypeError, ValueError) as exc:
        _fail(f"its layer sizes are invalid: {exc}")
    if bound > MAX_NETWORK_PARAMETERS:
        _fail(
            f"its parameters ask for a network of up to {bound} weights, above "
            f"the limit of {MAX_NETWORK_PARAMETERS} "
            "(sklearn_mtl._state.MAX_NETWORK_PARAMETERS)."
        )


def _build(est, state, engine, tensors, task_set, batch_size, seed) -> None:
    """The engine of a restored model, its weights checked and loaded."""
    from ._estimator import resolve_device

    check_size(est, state["inputs_"], task_set)
    device = est.device
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"The model was saved with device={device!r} but CUDA is not "
            "available; its network is loaded on the CPU.",
            UserWarning,
            stacklevel=4,
        )
        est.device = "cpu"
    try:
        resolve_device(est.device)
        eng = est._make_engine(state["inputs_"], task_set, int(seed))
    except (TypeError, ValueError) as exc:
        est.device = device
        _fail(f"the network cannot be built from its parameters: {exc}")
    est.device = device
    eng.set_params(batch_size=int(batch_size))
    eng.initialize()
    _check_weights(eng, tensors)
    try:
        eng.set_state(
            {
                "history": [dict(row) for row in engine["history"]],
                "stopping": dict(engine["stopping"]),
                "tensors": _tree(tensors, _to_torch),
            }
        )
    except (RuntimeError, KeyError, TypeError, IndexError, AttributeError) as exc:
        _fail(f"the weights do not fit the network: {exc}")
    est.tasks_ = task_set
    est.engine_ = eng
    # Derived from the tasks rather than trusted from the file.
    est.n_outputs_ = len(task_set.tasks)
    per_task = [t.classes for t in task_set.tasks]
    if any(t.is_classification for t in task_set.tasks):
        est.classes_ = per_task[0] if est._y_1d else per_task
    else:
        est.__dict__.pop("classes_", None)


def _check_weights(engine, tensors) -> None:
    """Every network and weighting tensor is present, with the network's shape."""
    for part, module in (("module", engine.module_), ("criterion", engine.criterion_)):
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        given = tensors[part]
        if set(given) != set(expected):
            _fail(
                f"the {part} weights name {sorted(set(given) ^ set(expected))} "
                "unlike the network built from its parameters."
            )
        for name, shape in expected.items():
            value = given[name]
            if not isinstance(value, np.ndarray | torch.Tensor):
                _fail(f"weight {name!r} is not an array.")
            if tuple(value.shape) != shape:
                _fail(
                    f"weight {name!r} has shape {tuple(value.shape)}, the network "
                    f"built from its parameters needs {shape}."
                )
    best = tensors.get("stopping_best")
    if best is not None:
        _check_type(best, dict, "the early-stopping weights")
        _check_weights(engine, {**tensors, **best, "stopping_best": None})

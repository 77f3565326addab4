"""Safe model files: parameters and fitted state as data, never as pickled code.

A file written by :func:`save` is a zip archive with two members:

- ``meta.json``: the estimator class (one of the public estimators), its
  parameters, its tasks and every other fitted attribute (numbers, strings,
  lists, arrays as lists with their dtype) and the training history;
- ``weights.pt``: plain dicts of CPU tensors (network, criterion, optimizer),
  written with :func:`torch.save` and read back with
  ``torch.load(weights_only=True)``, whose unpickler refuses anything but
  tensors and plain containers.

Loading never imports or calls an object named by the file: the class comes
from a fixed list and everything else is rebuilt from JSON data, so a crafted
file cannot run code.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import warnings
import zipfile

import numpy as np
import torch

from ._estimator import (
    MultiTaskClassifier,
    MultiTaskNeuralEstimator,
    MultiTaskRegressor,
)
from ._inputs import plain_inputs
from ._tasks import Task, TaskSet

__all__ = ["save", "load"]

FORMAT = "sklearn-mtl"
FORMAT_VERSION = 1
_CLASSES = {
    cls.__name__: cls
    for cls in (MultiTaskNeuralEstimator, MultiTaskClassifier, MultiTaskRegressor)
}
# Fitted attributes rebuilt by load itself rather than restored from JSON.
_REBUILT = {"engine_", "tasks_"}


class _NotData(TypeError):
    """A value that has no JSON form."""


# --------------------------------------------------------------------------- JSON
def _encode(value):
    """``value`` as JSON data; tuples, arrays and non-string dict keys are tagged."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufUO":
            raise _NotData(f"an array of dtype {value.dtype}")
        return {
            "__ndarray__": [_encode(v) for v in value.ravel().tolist()],
            "dtype": value.dtype.str if value.dtype.kind != "O" else "object",
            "shape": list(value.shape),
        }
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    raise _NotData(f"an object of type {type(value).__name__}")


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_hashable(_decode(k)): _decode(v) for k, v in value["__dict__"]}
    if "__ndarray__" in value:
        items = [_decode(v) for v in value["__ndarray__"]]
        dtype = value["dtype"]
        if dtype == "object":
            out = np.empty(len(items), dtype=object)
            out[:] = items
        else:
            if np.dtype(dtype).kind not in "biufU":
                raise ValueError(f"Unsupported array dtype {dtype!r} in model file.")
            out = np.array(items, dtype=dtype)
        return out.reshape(value["shape"])
    raise ValueError(f"Unrecognised value in model file: keys {sorted(value)}.")


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


# --------------------------------------------------------------------------- tensors
def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _history_rows(history):
    """The training history as JSON data; entries without a JSON form are dropped."""
    rows = []
    for row in history:
        kept = {}
        for key, val in row.items():
            try:
                kept[key] = _encode(val)
            except _NotData:
                continue
        rows.append(kept)
    return rows


# --------------------------------------------------------------------------- save
def save(estimator, path) -> None:
    """Save an estimator to a file that :func:`load` reads without running code.

    Parameters, tasks, fitted attributes and the training history are stored
    as JSON; the weights of the network, the loss weighting and the optimizer
    as plain tensors moved to the CPU (a model trained on a GPU loads on a
    machine without one).

    Parameters
    ----------
    estimator : MultiTaskNeuralEstimator, MultiTaskClassifier or MultiTaskRegressor
        The estimator, fitted or not.
    path : str or os.PathLike
        File to write (a zip archive; ``.mtl`` is a good suffix).

    Raises
    ------
    TypeError
        If ``estimator`` is not one of the estimators of this package.
    ValueError
        If a parameter has no data form, e.g. ``callbacks`` objects or a
        ``RandomState`` instance as ``random_state``. Set it to ``None``
        (``estimator.set_params(callbacks=None)``; the fitted model is not
        changed by that) before saving, and set it again after loading.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklearn_mtl import MultiTaskClassifier, save, load
    >>> X = np.random.RandomState(0).normal(size=(40, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> clf = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=5,
    ...                           random_state=0, device="cpu").fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.mtl")
    >>> save(clf, path)
    >>> bool(np.array_equal(load(path).predict(X), clf.predict(X)))
    True
    """
    cls = type(estimator)
    if _CLASSES.get(cls.__name__) is not cls:
        raise TypeError(
            "save takes a MultiTaskNeuralEstimator, MultiTaskClassifier or "
            f"MultiTaskRegressor, got {cls.__name__}."
        )
    params = estimator.get_params(deep=False)
    encoded_params = {}
    for name, value in params.items():
        try:
            encoded_params[name] = _encode(value)
        except _NotData as exc:
            raise ValueError(
                f"Cannot save parameter {name!r}: {exc} has no data form, and a "
                "safe model file stores no code. Set it to None before saving "
                f"(estimator.set_params({name}=None) keeps the fitted model) and "
                "set it again after loading."
            ) from None

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": cls.__name__,
        "params": encoded_params,
        "fitted": hasattr(estimator, "engine_"),
    }
    tensors = {}
    if meta["fitted"]:
        attributes = {}
        for name, value in vars(estimator).items():
            if name in params or name in _REBUILT:
                continue
            try:
                attributes[name] = _encode(value)
            except _NotData as exc:
                raise ValueError(
                    f"Cannot save fitted attribute {name!r}: {exc} has no data form."
                ) from None
        engine = estimator.engine_.get_state()
        meta["attributes"] = attributes
        meta["tasks"] = [
            {f.name: _encode(getattr(t, f.name)) for f in dataclasses.fields(Task)}
            for t in estimator.tasks_.tasks
        ]
        meta["engine"] = {
            "batch_size": int(estimator.engine_.batch_size),
            "random_state": int(estimator.engine_.random_state),
            "history": _history_rows(engine["history"]),
            "stopping": {k: _encode(v) for k, v in engine["stopping"].items()},
        }
        tensors = _to_cpu(engine["tensors"])

    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    with zipfile.ZipFile(os.fspath(path), "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("meta.json", json.dumps(meta, allow_nan=False))
        archive.writestr("weights.pt", buffer.getvalue())


# --------------------------------------------------------------------------- load
def load(path, *, device=None):
    """Load an estimator written by :func:`save`, without running code from the file.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    device : str or None, default=None
        Device to place the model on, e.g. ``"cpu"`` or ``"auto"``; it becomes
        the estimator's ``device`` parameter. ``None`` keeps the saved
        parameter, except that a CUDA device on a machine without CUDA becomes
        ``"auto"`` (the CPU), with a warning.

    Returns
    -------
    estimator : MultiTaskNeuralEstimator, MultiTaskClassifier or MultiTaskRegressor
        The estimator, with identical predictions to the one saved.

    Raises
    ------
    ValueError
        If the file is not an sklearn-mtl model file, names an unknown
        estimator class, or its tensor part holds anything but plain tensors
        (a crafted pickle is refused, never executed).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklearn_mtl import MultiTaskRegressor, save, load
    >>> X = np.random.RandomState(0).normal(size=(40, 3))
    >>> reg = MultiTaskRegressor(hidden_layer_sizes=(8,), max_iter=5,
    ...                          random_state=0, device="cpu").fit(X, X[:, :2])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.mtl")
    >>> save(reg, path)
    >>> load(path, device="cpu").predict(X[:2]).shape
    (2, 2)
    """
    try:
        with zipfile.ZipFile(os.fspath(path)) as archive:
            meta = json.loads(archive.read("meta.json"))
            weights = archive.read("weights.pt")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{os.fspath(path)!r} is not an sklearn-mtl model file: {exc}"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not an sklearn-mtl model file.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"Model file format version {meta.get('format_version')!r} is not "
            f"supported (this version reads {FORMAT_VERSION})."
        )
    cls = _CLASSES.get(meta.get("class"))
    if cls is None:
        raise ValueError(
            f"Model file names class {meta.get('class')!r}, not one of "
            f"{sorted(_CLASSES)}."
        )
    try:
        tensors = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # the safe unpickler refuses anything but tensors
        raise ValueError(
            "The tensor part of the model file holds something other than plain "
            f"tensors and was refused (nothing was executed): {exc}"
        ) from exc

    params = {k: _decode(v) for k, v in meta["params"].items()}
    valid = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"Model file has parameters {unknown} unknown to {cls.__name__}."
        )
    if device is not None:
        params["device"] = device
    elif str(params.get("device", "auto")).startswith("cuda") and not (
        torch.cuda.is_available()
    ):
        warnings.warn(
            f"The model was saved with device={params['device']!r} but CUDA is not "
            "available; it is loaded with device='auto' (the CPU).",
            UserWarning,
            stacklevel=2,
        )
        params["device"] = "auto"
    estimator = cls(**params)
    if not meta.get("fitted"):
        return estimator

    attributes = {k: _decode(v) for k, v in meta["attributes"].items()}
    for name in attributes:
        if not name.isidentifier() or name.startswith("__") or name in valid:
            raise ValueError(f"Model file has an invalid attribute name {name!r}.")
    tasks = TaskSet(
        [Task(**{k: _decode(v) for k, v in spec.items()}) for spec in meta["tasks"]]
    )
    meta_engine = meta["engine"]
    # The network's input layers are built from what fit learned about X.
    inputs = attributes.setdefault(
        "inputs_", plain_inputs(attributes["n_features_in_"])
    )
    engine = estimator._make_engine(inputs, tasks, meta_engine["random_state"])
    engine.set_params(batch_size=meta_engine["batch_size"])
    engine.initialize()
    engine.set_state(
        {
            "history": [
                {k: _decode(v) for k, v in row.items()}
                for row in meta_engine["history"]
            ],
            "stopping": {k: _decode(v) for k, v in meta_engine["stopping"].items()},
            "tensors": tensors,
        }
    )
    for name, value in attributes.items():
        setattr(estimator, name, value)
    estimator.tasks_ = tasks
    estimator.engine_ = engine
    return estimator

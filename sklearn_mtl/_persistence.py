"""Safe model files: parameters and fitted state as data, never as pickled code.

:func:`save` writes one of two zip formats, and :func:`load` reads both:

- an estimator of this package: ``meta.json`` (the estimator class, one of the
  public estimators; its parameters, tasks, fitted attributes and training
  history as JSON; the package and format versions) and ``weights.pt`` (plain
  dicts of CPU tensors read back with ``torch.load(weights_only=True)``, whose
  unpickler refuses anything but tensors and plain containers);
- anything else, e.g. a fitted :class:`~sklearn.pipeline.Pipeline` holding one
  of the estimators: a `skops <https://skops.readthedocs.io>`_ file (the
  optional extra ``sklearn-mtl[skops]``). :func:`load` trusts only the types
  skops trusts by default (scikit-learn's) and this package's estimators
  (:data:`sklearn_mtl._state.TRUSTED_TYPES`), and refuses a file naming
  anything else before constructing any object.

Loading never imports or calls an object named by the file beyond those, and
restores an estimator through one checked path (``_state.restore``, the one
pickle and skops use too): a fixed list of attributes, every value's type
checked, the size of the network bounded before it is built, every weight's
shape checked against the network. Every zip member is read with a size cap
checked on its declared size first (a zip bomb is refused before any memory is
spent), and a malformed file raises :class:`ValueError` saying what is wrong.
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
    resolve_device,
)
from ._inputs import plain_inputs
from ._state import (
    FITTED_ATTRIBUTES,
    STATE_VERSION,
    TRUSTED_TYPES,
    check_size,
    plain_columns,
    restore,
    set_requests,
)
from ._tasks import Task

__all__ = ["save", "load"]

FORMAT = "sklearn-mtl"
# 2: "metadata_request", the routing requests (written only when they differ
# from the class's defaults; a file without them stays version 1).
FORMAT_VERSION = 2
_CLASSES = {
    cls.__name__: cls
    for cls in (MultiTaskNeuralEstimator, MultiTaskClassifier, MultiTaskRegressor)
}
# Caps on what load reads: the largest zip member, the JSON part, the members.
MAX_MEMBER_BYTES = 2**31
MAX_META_BYTES = 2**28
MAX_MEMBERS = 100_000


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
def _is_ours(obj) -> bool:
    return _CLASSES.get(type(obj).__name__) is type(obj)


def _refuse_unloadable(estimator) -> None:
    """Refuse a fitted model of this package that ``load`` would refuse,
    ``estimator`` itself or one it holds (a Pipeline's steps, a search's
    ``best_estimator_``, a wrapper's ``regressor_``, at any depth): a network
    built with a ``trunk``, or a parameter set after fit to a value ``load``
    refuses (invalid, a network above the size limit, an unknown device).

    The trunk is the user's code: a file without code cannot rebuild it (and
    setting ``trunk=None`` would only make a file that fails to load).
    """
    for model in _models_held(estimator, set()):
        if not hasattr(model, "engine_"):
            continue  # unfitted: its parameters are checked by fit, as always
        trunk = model._built("trunk")
        if trunk is not None:
            raise ValueError(
                f"Cannot save a {type(model).__name__} whose network was built "
                f"with trunk={trunk!r}: a safe model file stores no code, and "
                "the trunk is code. Use pickle or joblib for this model (and "
                "load only files you trust)."
            )
        try:
            model._validate_params()
            check_size(model, model.inputs_, model.tasks_)
            if not str(model.device).startswith("cuda"):  # load falls back
                resolve_device(model.device)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"Cannot save this fitted {type(model).__name__}, which load "
                f"would refuse: {exc} Set a valid value (the fitted network does "
                "not change)."
            ) from None


def _models_held(obj, seen: set, depth: int = 0):
    """This package's estimators in ``obj``: itself, or in its parameters,
    attributes and containers (estimators, dicts, lists, tuples), recursively."""
    if id(obj) in seen or depth > 20:
        return
    seen.add(id(obj))
    if _is_ours(obj):
        yield obj
        return
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, list | tuple):
        if len(obj) > 10_000:  # data, not a list of estimators
            return
        children = list(obj)
    elif hasattr(obj, "get_params") and not isinstance(obj, type):
        children = list(getattr(obj, "__dict__", {}).values())
        try:
            children += list(obj.get_params(deep=False).values())
        except Exception:  # a step breaking the get_params convention
            pass  # skops refuses what it cannot store
    elif type(obj).__module__.startswith("sklearn.") and hasattr(obj, "__dict__"):
        # scikit-learn's internal holders of fitted estimators (no get_params),
        # e.g. CalibratedClassifierCV's calibrated_classifiers_.
        children = list(vars(obj).values())
    else:
        return
    for child in children:
        yield from _models_held(child, seen, depth + 1)


def save(estimator, file) -> None:
    """Save a model to a file that :func:`load` reads without running code.

    An estimator of this package is stored in this package's format: its
    parameters, tasks, fitted attributes and training history as JSON, the
    weights of the network, the loss weighting and the optimizer as plain
    tensors moved to the CPU (a model trained on a GPU loads on a machine
    without one). Any other object, e.g. a fitted
    :class:`~sklearn.pipeline.Pipeline` ending in one of the estimators, is
    stored with :func:`skops.io.dump` (the optional extra
    ``sklearn-mtl[skops]``), which keeps it free of pickle too.

    Parameters
    ----------
    estimator : estimator of this package, or any object skops can store
        The model, fitted or not.
    file : str, os.PathLike or binary file object
        File to write (a zip archive; ``.mtl`` or ``.skops`` are good
        suffixes), or an object with a ``write`` method such as
        :class:`io.BytesIO`.

    Raises
    ------
    TypeError
        If ``estimator`` is not a scikit-learn estimator (has no ``get_params``).
    ImportError
        If ``estimator`` is not an estimator of this package and skops is not
        installed.
    ValueError
        If a parameter has no data form, e.g. ``callbacks`` objects or a
        ``RandomState`` instance as ``random_state``. Set it to ``None``
        (``estimator.set_params(callbacks=None)``; the fitted model is not
        changed by that) before saving, and set it again after loading. If
        the fitted network was built with a ``trunk`` (code, which a file does
        not store: use pickle for such a model), or if a fitted model's
        parameter was set to an invalid value after fit (:func:`load` checks
        them). Also
        if a skops-stored object holds types :func:`load` does not trust (a
        fitted ``GridSearchCV`` holds its splitter and scorers): no file is
        written.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskClassifier, save, load
    >>> X = np.random.RandomState(0).normal(size=(40, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> clf = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=5,
    ...                           random_state=0, device="cpu").fit(X, y)
    >>> buffer = io.BytesIO()
    >>> save(clf, buffer)
    >>> bool(np.array_equal(load(buffer).predict(X), clf.predict(X)))
    True
    """
    if not _is_ours(estimator):
        if not hasattr(estimator, "get_params"):
            raise TypeError(
                "save takes a scikit-learn estimator (one of this package's, or a "
                f"Pipeline or other estimator holding them), got "
                f"{type(estimator).__name__}."
            )
        try:
            import skops.io as sio
        except ImportError as exc:  # pragma: no cover - skops is a test dependency
            raise ImportError(
                f"save stores a {type(estimator).__name__} with skops, which is not "
                "installed: pip install 'sklearn-mtl[skops]'."
            ) from exc
        _refuse_unloadable(estimator)
        data = sio.dumps(estimator, compression=zipfile.ZIP_DEFLATED)
        foreign = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
        if foreign:
            # A file load would refuse is not written: no one finds out later.
            raise ValueError(
                f"Cannot save {type(estimator).__name__}: it holds types "
                f"{foreign} that sklearn_mtl.load does not trust, so load would "
                "refuse the file. Save the fitted estimator itself (e.g. a "
                "search's best_estimator_), or write the file with skops.io.dump "
                "and read it with skops.io.load(file, trusted=[...])."
            )
        if hasattr(file, "write"):
            file.write(data)
        else:
            with open(os.fspath(file), "wb") as f:
                f.write(data)
        return
    cls = type(estimator)
    _refuse_unloadable(estimator)
    params = estimator.get_params(deep=False)
    if "categorical_features" in params:
        params["categorical_features"] = plain_columns(params["categorical_features"])
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
    from . import __version__

    meta = {
        "format": FORMAT,
        "format_version": 1,  # the oldest that holds the file: 2 below
        "sklearn_mtl_version": __version__,
        "class": cls.__name__,
        "params": encoded_params,
        "fitted": hasattr(estimator, "engine_"),
    }
    requests = set_requests(estimator)  # set by set_<method>_request
    if requests is not None:
        meta["metadata_request"] = requests
        # An older reader would drop it without a word: it refuses version 2.
        meta["format_version"] = 2
    tensors = {}
    if meta["fitted"]:
        attributes = {}
        for name, value in vars(estimator).items():
            if name not in FITTED_ATTRIBUTES:
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
        tensors = engine["tensors"]  # CPU tensors: get_state moved them

    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("meta.json", json.dumps(meta, allow_nan=False))
        out.writestr("weights.pt", buffer.getvalue())
    # Written in one go: a failure above leaves no half-written file behind.
    if hasattr(file, "write"):
        file.write(archive.getvalue())
    else:
        with open(os.fspath(file), "wb") as f:
            f.write(archive.getvalue())


# --------------------------------------------------------------------------- load
def _read_member(archive, name: str, limit: int) -> bytes:
    """A member's bytes, refused on its declared size before any is inflated."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise ValueError(
            f"Member {name!r} of the model file declares {info.file_size} bytes, "
            f"above the limit of {limit} (sklearn_mtl._persistence."
            f"{'MAX_META_BYTES' if limit == MAX_META_BYTES else 'MAX_MEMBER_BYTES'})."
        )
    with archive.open(name) as member:
        data = member.read(limit + 1)  # zipfile stops at the declared size too
    if len(data) > limit:  # pragma: no cover - zipfile enforces the declared size
        raise ValueError(f"Member {name!r} of the model file is above {limit} bytes.")
    return data


def _check_members(archive) -> None:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ValueError(
            f"The model file has {len(infos)} members, above the limit of "
            f"{MAX_MEMBERS}."
        )
    for info in infos:
        if info.file_size > MAX_MEMBER_BYTES:
            raise ValueError(
                f"Member {info.filename!r} of the model file declares "
                f"{info.file_size} bytes, above the limit of {MAX_MEMBER_BYTES} "
                "(sklearn_mtl._persistence.MAX_MEMBER_BYTES)."
            )


def _source(file):
    """``(seekable binary stream, name for messages)`` for a path or file object."""
    if hasattr(file, "read"):
        if not (hasattr(file, "seekable") and file.seekable()):
            file = io.BytesIO(file.read(MAX_MEMBER_BYTES + 1))
        file.seek(0)
        return file, "the model file"
    path = os.fspath(file)
    try:
        return open(path, "rb"), repr(path)
    except IsADirectoryError as exc:
        raise ValueError(f"{path!r} is a directory, not a model file.") from exc


def load(file, *, device=None):
    """Load a model written by :func:`save`, without running code from the file.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
        A file written by :func:`save`: an estimator of this package, or a
        skops file (e.g. a Pipeline) whose only types beyond scikit-learn's are
        this package's estimators.
    device : str or None, default=None
        Device to place the estimator's model on, e.g. ``"cpu"`` or
        ``"auto"``; it becomes the estimator's ``device`` parameter and must
        be available on this machine. ``None`` keeps the saved parameter,
        except that a CUDA device on a machine without CUDA becomes ``"auto"``
        (the CPU), with a warning. Only for a file holding one estimator: the
        estimators inside a skops file (e.g. a Pipeline) keep their saved
        device, or load on the CPU when CUDA is absent, with a warning.

    Returns
    -------
    model : estimator
        The model, with identical predictions to the one saved.

    Raises
    ------
    ValueError
        If ``device`` is not a torch device, is not available on this machine
        (both checked before the file is read) or is given for a skops file;
        if the file is not a model file, is malformed (the message says what
        is wrong), declares a member or a network above the size limits, is
        of a newer format version than this sklearn-mtl reads, names a class
        other than this package's estimators (or, in a skops file,
        scikit-learn's), or holds anything but plain tensors in its tensor
        part (a crafted pickle is refused, never executed).

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_mtl import MultiTaskRegressor, save, load
    >>> X = np.random.RandomState(0).normal(size=(40, 3))
    >>> pipe = make_pipeline(StandardScaler(), MultiTaskRegressor(
    ...     hidden_layer_sizes=(8,), max_iter=5, random_state=0, device="cpu"))
    >>> pipe = pipe.fit(X, X[:, :2])
    >>> buffer = io.BytesIO()
    >>> save(pipe, buffer)  # a skops file: no pickle
    >>> load(buffer).predict(X[:2]).shape
    (2, 2)
    """
    if device is not None:
        resolve_device(device)
    stream, name = _source(file)
    try:
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ValueError(f"{name} is not an sklearn-mtl model file: {exc}") from exc
        with archive:
            _check_members(archive)
            members = set(archive.namelist())
            if "meta.json" in members:
                return _guarded(_load_native, archive, device)
            if "schema.json" in members:
                if device is not None:
                    raise ValueError(
                        f"{name} is a skops file (e.g. a Pipeline); load(device=...) "
                        "applies to a file holding one estimator. Load it with "
                        "device=None: its estimators keep their saved device, or "
                        "use the CPU when CUDA is absent."
                    )
                stream.seek(0)
                return _guarded(_load_skops, stream)
        raise ValueError(
            f"{name} is not an sklearn-mtl model file: it has neither meta.json "
            "nor a skops schema.json."
        )
    finally:
        if stream is not file:
            stream.close()


def _guarded(loader, *args):
    """``loader(*args)``; an error from malformed content becomes a ValueError."""
    try:
        return loader(*args)
    except ValueError:
        raise
    except (ImportError, MemoryError):
        raise
    except Exception as exc:  # a malformed file surfaces anywhere in the parsers
        raise ValueError(
            f"The model file is malformed ({type(exc).__name__}: {exc})."
        ) from exc


def _load_skops(stream):
    try:
        import skops.io as sio
    except ImportError as exc:  # pragma: no cover - skops is a test dependency
        raise ImportError(
            "This model file is a skops file (e.g. a Pipeline); reading it needs "
            "skops: pip install 'sklearn-mtl[skops]'."
        ) from exc
    data = stream.read()
    untrusted = sio.get_untrusted_types(data=data)
    foreign = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if foreign:
        raise ValueError(
            f"The model file names types {foreign} that sklearn_mtl.load does not "
            "trust (it trusts scikit-learn's and this package's estimators); "
            "nothing was loaded. If you trust the file, load it with "
            "skops.io.load(file, trusted=[...]) after reviewing these types."
        )
    return sio.loads(data, trusted=untrusted)


def _load_native(archive, device):
    meta = json.loads(_read_member(archive, "meta.json", MAX_META_BYTES))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("The file is not an sklearn-mtl model file.")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"Model file format version {version!r} is not valid.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"The model file was written by sklearn-mtl "
            f"{meta.get('sklearn_mtl_version')!r} in format version {version}; "
            f"this sklearn-mtl reads format version {FORMAT_VERSION} and older. "
            "Upgrade sklearn-mtl to load it."
        )
    cls = (
        _CLASSES.get(meta.get("class")) if isinstance(meta.get("class"), str) else None
    )
    if cls is None:
        raise ValueError(
            f"Model file names class {meta.get('class')!r}, not one of "
            f"{sorted(_CLASSES)}."
        )
    if "weights.pt" not in archive.namelist():
        raise ValueError("The model file has no member 'weights.pt'.")
    try:
        tensors = torch.load(
            io.BytesIO(_read_member(archive, "weights.pt", MAX_MEMBER_BYTES)),
            map_location="cpu",
            weights_only=True,
        )
    except Exception as exc:  # the safe unpickler refuses anything but tensors
        raise ValueError(
            "The tensor part of the model file holds something other than plain "
            f"tensors and was refused (nothing was executed): {exc}"
        ) from exc

    def section(key, kind):
        value = meta.get(key)
        if not isinstance(value, kind):
            raise ValueError(
                f"Model file entry {key!r} is {type(value).__name__}, "
                f"expected {kind.__name__}."
            )
        return value

    params = {k: _decode(v) for k, v in section("params", dict).items()}
    unknown = sorted(set(params) - set(cls._get_param_names()))
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
            stacklevel=4,
        )
        params["device"] = "auto"
    state = {**params, "_sklearn_mtl_state": STATE_VERSION}
    if "metadata_request" in meta:
        state["_metadata_request"] = {
            method: dict(_checked_dict(requests))
            for method, requests in _checked_dict(meta["metadata_request"]).items()
        }
    if meta.get("fitted") is True:
        attributes = {k: _decode(v) for k, v in section("attributes", dict).items()}
        if "n_features_in_" in attributes:
            # Files written before inputs_ existed read X as it is.
            attributes.setdefault("inputs_", plain_inputs(attributes["n_features_in_"]))
        engine = section("engine", dict)
        if not isinstance(tensors, dict):
            raise ValueError("The tensor part of the model file is not a dict.")
        for key in ("history", "stopping"):
            if key not in engine:
                raise ValueError(f"Model file entry 'engine' has no {key!r}.")
        state.update(attributes)
        state["tasks_"] = [
            {k: _decode(v) for k, v in _checked_dict(spec).items()}
            for spec in section("tasks", list)
        ]
        state["engine_"] = {
            "batch_size": engine.get("batch_size"),
            "random_state": engine.get("random_state"),
            "history": [
                {k: _decode(v) for k, v in _checked_dict(row).items()}
                for row in _checked_list(engine["history"])
            ],
            "stopping": {
                k: _decode(v) for k, v in _checked_dict(engine["stopping"]).items()
            },
            "tensors": tensors,
        }
    elif meta.get("fitted") is not False:
        raise ValueError("Model file entry 'fitted' is not true or false.")
    estimator = cls.__new__(cls)
    restore(estimator, state)
    return estimator


def _checked_dict(value):
    if not isinstance(value, dict):
        raise ValueError(f"Model file has a {type(value).__name__} for a mapping.")
    return value


def _checked_list(value):
    if not isinstance(value, list):
        raise ValueError(f"Model file has a {type(value).__name__} for a list.")
    return value

"""X -> the float array the network reads, and what is learned from the training X.

"What kind of column is this" is decided here and nowhere else. A column is
*categorical* (``categorical_features``, as in
:class:`~sklearn.ensemble.HistGradientBoostingClassifier`) or *numeric*.

The fitted state, the estimator's ``inputs_`` attribute, is plain data (a dict
of str to lists, numbers and arrays) so that pickle and the JSON model files of
:mod:`sklearn_mtl._persistence` store it exactly:

``"numeric"`` / ``"categorical"``
    Indices of the numeric and categorical columns of ``X``.
``"categories"``
    Per categorical column, the list of categories seen in fit (sorted).
    Codes: 0 is the reserved "unknown" category (seen first at predict), 1 is
    "missing" (NaN / None), ``2 + i`` is ``categories[i]``.
``"median"``
    Per numeric column, the training median, imputed for NaN.
``"missing_indicator"``
    Positions (among the numeric columns) of the columns that had NaN in fit;
    each gets a 0/1 indicator column.
``"scaling"``, ``"quantiles"``, ``"center"``, ``"scale"``
    The numeric scaling learned in fit (``None``, ``"quantile"``: to a standard
    normal through the training quantiles, or ``"robust"``: median and IQR).
``"bins"``
    Bin edges of the piecewise-linear numeric embeddings, one float32 array
    per numeric column, or None.
``"sparse"`` (only when True)
    X was sparse in fit: a shared-bottom network then has a sparse first layer
    (:class:`sklearn_mtl.nn.SparseInputLinear`).

The encoded array has the columns ``[numeric (imputed, scaled) | indicators |
category codes]``; :class:`sklearn_mtl.nn.TabularEmbedding` reads that layout.
"""

from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtri
from sklearn.utils.validation import validate_data

from ._tasks import scalar
from .nn import NUM_EMBEDDINGS, TabularEmbedding, numeric_embedding
from .nn.embeddings import TWO_EDGES

__all__ = [
    "NUMERIC_SCALINGS",
    "accepts_sparse",
    "check_numeric_X",
    "encoded_width",
    "fit_bins",
    "one_hot_columns",
    "plain_inputs",
    "input_module",
    "resolve_categorical",
    "validate_inputs",
    "unknown_categories",
    "warn_unknown_categories",
    "validate_sparse",
]

#: ``numeric_scaling`` values.
NUMERIC_SCALINGS = ("auto", "quantile", "robust")
_N_QUANTILES = 1000
_CLIP = 1e-7
_UNKNOWN, _MISSING = 0, 1


# --------------------------------------------------------------------------- columns
def _is_dataframe(X) -> bool:
    return hasattr(X, "dtypes") and hasattr(X, "iloc") and hasattr(X, "columns")


def _column_names(X) -> list[str]:
    return [str(c) for c in X.columns] if _is_dataframe(X) else []


def _from_dtype(X) -> list[int]:
    """Columns categorical by their pandas dtype: category, str, object, bool."""
    if not _is_dataframe(X):
        return []
    import pandas as pd

    api = pd.api.types
    return [
        j
        for j, dtype in enumerate(X.dtypes)
        if isinstance(dtype, pd.CategoricalDtype)
        or api.is_bool_dtype(dtype)
        or api.is_object_dtype(dtype)
        or api.is_string_dtype(dtype)
    ]


def resolve_categorical(categorical_features, X) -> list[int]:
    """Indices of the categorical columns of ``X``, as HistGradientBoosting reads them.

    Parameters
    ----------
    categorical_features : "from_dtype", None, or array-like of bool, int or str
        ``"from_dtype"``: the DataFrame columns of dtype category, str / object
        or bool (none for an array). A boolean mask over the columns, column
        indices, or column names (``X`` must then be a DataFrame).
    X : array-like or DataFrame of shape (n_samples, n_features)

    Returns
    -------
    indices : list of int
        Sorted column indices.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": [True, False]})
    >>> resolve_categorical("from_dtype", X)
    [1, 2]
    >>> resolve_categorical(["c"], X), resolve_categorical([True, False, False], X)
    ([2], [0])
    """
    if categorical_features is None:
        return []
    if isinstance(categorical_features, str):
        if categorical_features != "from_dtype":
            raise ValueError(
                "categorical_features must be 'from_dtype', None, a boolean mask, "
                f"indices or column names; got {categorical_features!r}."
            )
        return _from_dtype(X)
    n_features = X.shape[1]
    values = np.asarray(categorical_features)
    if values.size == 0:
        return []
    if values.ndim != 1:
        raise ValueError(f"categorical_features must be 1-D, got shape {values.shape}.")
    if values.dtype.kind == "b":
        if values.shape[0] != n_features:
            raise ValueError(
                f"categorical_features is a boolean mask of length {values.shape[0]} "
                f"but X has {n_features} features."
            )
        return [int(j) for j in np.flatnonzero(values)]
    if values.dtype.kind in "iu":
        bad = [int(j) for j in values if not 0 <= j < n_features]
        if bad:
            raise ValueError(
                f"categorical_features has indices {bad} out of range: X has "
                f"{n_features} features (indices 0 to {n_features - 1})."
            )
        return sorted({int(j) for j in values})
    if values.dtype.kind in "UO":
        names = _column_names(X)
        if not names:
            raise ValueError(
                "categorical_features names columns, which needs X to be a "
                "DataFrame with column names; X has none."
            )
        unknown = [str(v) for v in values if str(v) not in names]
        if unknown:
            raise ValueError(
                f"categorical_features names columns {unknown} that are not in X "
                f"(its columns: {names})."
            )
        return sorted({names.index(str(v)) for v in values})
    raise TypeError(
        "categorical_features must be 'from_dtype', None, or an array of bool, "
        f"int or str; got an array of dtype {values.dtype}."
    )


def check_numeric_X(estimator, X, **kwargs):
    """``validate_data`` for a numeric X; errors name the non-numeric columns."""
    if _is_dataframe(X):
        import pandas as pd

        api = pd.api.types
        bad = [
            str(c)
            for c, d in X.dtypes.items()
            if not (api.is_numeric_dtype(d) or api.is_bool_dtype(d))
        ]
        if bad and not kwargs.get("reset", True):
            raise ValueError(
                f"X must be numeric, as it was in fit (non-numeric columns: {bad})."
            )
        if bad:
            raise ValueError(
                f"X must be numeric (non-numeric columns: {bad}); name categorical "
                "columns in categorical_features, or encode them first."
            )
    kind = getattr(getattr(X, "dtype", None), "kind", None)
    if kind in ("U", "S", "M", "m") and kwargs.get("dtype") is not None:
        # All columns numeric (none categorical): numpy would cast these to
        # numbers ("1.5", b"2", dates as nanoseconds); scikit-learn's
        # dtype="numeric" refuses them, as the DataFrame path does.
        what = {"U": "strings", "S": "bytes", "M": "datetimes", "m": "timedeltas"}
        raise ValueError(
            f"X must be numeric, got an array of {what[kind]} (dtype {X.dtype}); "
            "encode it as numbers first, or pass a DataFrame and name categorical "
            "columns in categorical_features."
        )
    try:
        return validate_data(estimator, X, **kwargs)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        if msg.startswith("Complex data not supported"):
            raise ValueError(
                "Complex data not supported in X: the features must be real numbers."
            ) from exc
        if "could not convert" in msg or "argument must be" in msg:
            raise type(exc)(
                "X must be numeric; name categorical columns in "
                f"categorical_features, or encode them first. {msg}"
            ) from exc
        raise


def _name(X, j) -> str:
    names = _column_names(X)
    return repr(names[j]) if names else str(j)


def _not_numeric(dtype) -> bool:
    """A pandas column dtype that is neither real-numeric nor bool."""
    import pandas as pd

    api = pd.api.types
    if api.is_bool_dtype(dtype):
        return False
    return not api.is_numeric_dtype(dtype) or api.is_complex_dtype(dtype)


def _numeric_block(X, columns, fitted=True) -> np.ndarray:
    """The numeric columns of a DataFrame or array as float64, errors by column.

    ``fitted``: the columns were numeric in fit (a mismatch is a predict-time
    error), else they are being learned as numeric now.
    """
    frame = _is_dataframe(X)
    if not frame and np.asarray(X).dtype.kind in "biuf":
        return np.asarray(X, dtype=np.float64)[:, columns]
    out = np.empty((X.shape[0], len(columns)), dtype=np.float64)
    for i, j in enumerate(columns):
        col = X.iloc[:, j] if frame else np.asarray(X)[:, j]
        try:
            if frame and _not_numeric(col.dtype):
                # to_numpy would turn datetimes, timedeltas and numeric strings
                # into numbers and drop imaginary parts: refused, as a numeric X is.
                raise TypeError(col.dtype)
            if frame:
                out[:, i] = col.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out[:, i] = col.astype(np.float64)
        except (TypeError, ValueError) as exc:
            if fitted:
                hint = "it was numeric in fit."
            elif (
                col.dtype.kind in "OUSV" or str(col.dtype) in ("category", "str")
            ) and not str(col.dtype).startswith(("period", "interval")):
                # (pandas' period and interval dtypes say kind "O" too.)
                hint = (
                    "Name it in categorical_features to treat it as categorical, "
                    "or encode it as numbers first."
                )
            else:
                hint = "Encode it as numbers first (or drop it)."
            raise ValueError(
                f"Column {_name(X, j)} of X (dtype {col.dtype}) is not numeric; {hint}"
            ) from exc
    if np.isinf(out).any():
        bad = ", ".join(
            _name(X, columns[i]) for i in np.flatnonzero(np.isinf(out).any(0))
        )
        raise ValueError(f"Input X contains infinity in columns [{bad}].")
    return out


def _all_sparse_columns(X) -> bool:
    import pandas as pd

    return X.shape[1] > 0 and all(isinstance(d, pd.SparseDtype) for d in X.dtypes)


def _check_fill_values(X) -> None:
    """Pandas sparse columns must leave out zeros, as scipy sparse X does."""
    import pandas as pd

    other = {
        str(name): dtype.fill_value
        for name, dtype in X.dtypes.items()
        if pd.isna(dtype.fill_value) or not dtype.fill_value == 0
    }
    if other:
        shown = dict(list(other.items())[:5])
        more = f" and {len(other) - 5} more" if len(other) > 5 else ""
        raise ValueError(
            f"X's sparse columns leave out values other than 0 (fill values "
            f"{shown}{more}); sparse X leaves out zeros. Convert them with "
            "X.astype(pd.SparseDtype('float64', 0)), which keeps every value, "
            "or pass dense X."
        )


def _dtype_categories(column):
    """Every category a pandas column's dtype lists (object array), or None.

    A ``category`` column's categories, a bool column's ``False`` and
    ``True``; other dtypes list none.
    """
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return np.asarray(dtype.categories, dtype=object)
    if pd.api.types.is_bool_dtype(dtype):
        return np.array([False, True], dtype=object)
    return None


def _column_values(X, j) -> np.ndarray:
    if _is_dataframe(X):
        return X.iloc[:, j].to_numpy(dtype=object)
    values = np.asarray(X)[:, j]
    # A string array (a list of lists holding strings) is matched as objects,
    # as an object array is: its categories are strings, not numbers (numpy
    # stores a NaN there as the string 'nan', a category; bytes are refused).
    return values.astype(object) if values.dtype.kind in "US" else values


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind in "biu":
        return np.zeros(values.shape, dtype=bool)
    import pandas as pd

    return np.asarray(pd.isna(values), dtype=bool)


def _bad_value(values, name: str) -> TypeError:
    """The error for a categorical column holding values of an unusable type."""
    bad = next(v for v in values if not isinstance(v, str | bool | int | float))
    return TypeError(
        f"Categorical column {name} of X holds {type(bad).__name__} values "
        f"(e.g. {bad!r}): a category argument must be a string, a number or a "
        "boolean."
    )


def _usable_distinct(values: np.ndarray, name: str) -> list:
    """The distinct values of an object column, each a string, a number or a
    boolean (a TypeError from :func:`_bad_value` for anything else)."""
    import pandas as pd

    try:
        uniq = [scalar(v) for v in pd.unique(values)]
    except TypeError:  # unhashable values (lists, dicts)
        raise _bad_value(values, name) from None
    if any(not isinstance(v, str | bool | int | float) for v in uniq):
        raise _bad_value(uniq, name)
    return uniq


def _categories(values: np.ndarray, missing: np.ndarray, name: str) -> list:
    present = values[~missing]
    if values.dtype.kind != "O":
        return [scalar(v) for v in np.unique(present)]
    uniq = _usable_distinct(present, name)
    try:
        return sorted(uniq)
    except TypeError:  # mixed types: group by type, then by value
        return sorted(uniq, key=lambda v: (type(v).__name__, str(v)))


def _codes(values: np.ndarray, categories: list, name: str = "") -> np.ndarray:
    """Category codes: 2 + index of a known category, 1 if missing, 0 if unknown."""
    missing = _missing(values)
    numeric = values.dtype.kind != "O"
    if numeric:
        try:
            cats = np.asarray(categories, dtype=np.float64)
        except (TypeError, ValueError):
            # Mixed categories (numbers among strings) match numbers as objects.
            mixed = any(isinstance(c, int | float) for c in categories)
            if not mixed and not missing.all():
                shown = ", ".join(repr(c) for c in categories[:3])
                raise ValueError(
                    f"Column {name} of X holds numbers (dtype {values.dtype}), but "
                    f"its categories in fit were not numbers ({shown}"
                    f"{', ...' if len(categories) > 3 else ''})."
                ) from None
            numeric = False
    if numeric:
        exact = np.asarray(categories)
        common = np.result_type(values.dtype, exact.dtype)
        if values.dtype.kind in "iub" and exact.dtype.kind in "iub":
            if common.kind == "f":  # uint64 with int64: neither holds both
                return _codes(values.astype(object), categories, name)
            # Integers compared as integers: float64 rounds past 2**53, where
            # two ids would share one code.
            cats, x = exact.astype(common), values.astype(common)
        else:
            x = values.astype(np.float64)
        idx = np.clip(np.searchsorted(cats, x), 0, max(len(cats) - 1, 0))
        known = cats[idx] == x if len(cats) else np.zeros(x.shape, dtype=bool)
        codes = np.where(known, idx + 2, _UNKNOWN)
    else:
        import pandas as pd

        index = pd.Index(categories, dtype=object)
        try:
            idx = index.get_indexer(np.asarray(values, dtype=object))
        except TypeError:  # unhashable values
            raise _bad_value(values, name) from None
        unknown = (idx < 0) & ~missing
        if unknown.any():
            # A value of a type fit refuses (bytes, dates, ...) is refused here
            # too, not read as an unknown category.
            _usable_distinct(values[unknown], name)
        if categories and unknown.any() and not (idx[~missing] >= 0).any():
            # Nothing known: numbers where fit saw strings, or the reverse (a
            # DataFrame column reaches here as objects whatever its dtype).
            _check_value_kind(values[~missing], categories, name)
        codes = np.where(idx >= 0, idx + 2, _UNKNOWN)
    return np.where(missing, _MISSING, codes)


def _check_value_kind(values, categories, name) -> None:
    """Refuse a column of numbers for string categories, or the reverse."""

    def kind(items):
        if all(isinstance(v, str) for v in items):
            return "strings"
        if all(isinstance(v, Real) and not isinstance(v, str) for v in items):
            return "numbers"
        return None

    fitted, given = kind(categories), kind(values)
    if fitted and given and fitted != given:
        shown = ", ".join(repr(c) for c in categories[:3])
        raise ValueError(
            f"Categorical column {name} of X holds {given} ({values[0]!r}, ...), "
            f"but its categories in fit were {fitted} ({shown}"
            f"{', ...' if len(categories) > 3 else ''}): no value is a known "
            "category. Give the column the type it had in fit."
        )


# --------------------------------------------------------------------------- numeric
def _quantile_normal(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Map each column through its training quantiles to a standard normal.

    Ties (a spike of equal values) go to the middle of their quantile range,
    as in :class:`~sklearn.preprocessing.QuantileTransformer`.
    """
    refs = np.linspace(0.0, 1.0, quantiles.shape[0])
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        q = quantiles[:, j]
        up = np.interp(x[:, j], q, refs)
        down = -np.interp(-x[:, j], -q[::-1], -refs[::-1])
        out[:, j] = ndtri(np.clip(0.5 * (up + down), _CLIP, 1 - _CLIP))
    return out


def _fit_numeric(x: np.ndarray, scaling) -> dict:
    n = x.shape[0]
    with np.errstate(all="ignore"):
        all_missing = np.isnan(x).all(axis=0)
        median = np.where(
            all_missing, 0.0, np.nanmedian(np.where(all_missing, 0, x), 0)
        )
    spec = {
        "median": median,
        "missing_indicator": [int(j) for j in np.flatnonzero(np.isnan(x).any(0))],
        "scaling": scaling,
    }
    filled = np.where(np.isnan(x), median, x)
    if scaling == "quantile":
        n_q = max(2, min(_N_QUANTILES, n))
        spec["quantiles"] = np.quantile(filled, np.linspace(0, 1, n_q), axis=0)
    elif scaling == "robust":
        # Spreads of columns holding huge values, computed on the columns
        # divided by their largest magnitude, so that neither the quartiles'
        # difference nor a variance overflows (1e300 squared; +-1e308 apart),
        # and capped at the largest float.
        peak = np.abs(filled).max(axis=0) if n else np.zeros(filled.shape[1])
        peak = np.where(peak > 0, peak, 1.0)
        unit = filled / peak
        q25, q75 = np.quantile(unit, [0.25, 0.75], axis=0)
        big = np.finfo(np.float64).max
        with np.errstate(over="ignore"):
            scale = np.minimum((q75 - q25) * peak, big)
            std = np.minimum(unit.std(axis=0) * peak, big)
        scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
        spec["center"], spec["scale"] = median, scale
    return spec


def _transform_numeric(x: np.ndarray, spec: dict) -> np.ndarray:
    missing = np.isnan(x)
    filled = np.where(missing, spec["median"], x) if missing.any() else x
    if spec["scaling"] == "quantile":
        filled = _quantile_normal(filled, spec["quantiles"])
    elif spec["scaling"] == "robust":
        filled = (filled - spec["center"]) / spec["scale"]
    indicators = missing[:, spec["missing_indicator"]].astype(np.float64)
    return np.hstack([filled, indicators]) if indicators.shape[1] else filled


# --------------------------------------------------------------------------- public
def validate_inputs(estimator, X, *, reset: bool, dtype, dtype_categories=False):
    """Validate ``X`` and encode it for the network; on ``reset`` fit ``inputs_``.

    Reads the estimator's ``categorical_features`` and ``numeric_scaling``.
    Feature names and counts are checked (or set) as by ``validate_data``.
    A numeric ``X`` without NaN, categorical columns or scaling is returned as
    ``validate_data`` returns it (the fast path of plain numpy input).

    Returns
    -------
    X_encoded : ndarray of shape (n_samples, encoded_width(inputs_))
        Or, for sparse ``X``, a scipy sparse matrix (see :func:`validate_sparse`).
    """
    frame = _is_dataframe(X)
    if sp.issparse(X) or (frame and _all_sparse_columns(X)):
        # A DataFrame of pandas sparse columns is sparse X, as scikit-learn
        # reads it (converted to scipy sparse, its column names kept).
        return validate_sparse(estimator, X, reset=reset, dtype=dtype)
    validated = False
    if reset:
        if frame or isinstance(estimator.categorical_features, str):
            categorical = resolve_categorical(estimator.categorical_features, X)
        else:
            # A mask or indices over an array: validated in its own dtype first
            # (width and names checked), so that categories are learned from the
            # values as given (not their float32 casts, which predict would not
            # match) and an object array may hold strings in those columns.
            X = check_numeric_X(
                estimator, X, reset=True, dtype=None, ensure_all_finite="allow-nan"
            )
            categorical = resolve_categorical(estimator.categorical_features, X)
            validated = bool(categorical)
    else:
        categorical = estimator.inputs_["categorical"]
    # Numbers are validated in float64 (float32 input stays float32): a learned
    # scaling reads values beyond float32's range, and the network's dtype is
    # applied after the encoding.
    wide = (np.float64, np.float32)
    if not categorical:
        X = check_numeric_X(
            estimator,
            X,
            reset=reset,
            dtype=wide,
            order="C",
            ensure_all_finite="allow-nan",
        )
    elif not validated:
        if frame:
            validate_data(estimator, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise ValueError(
                    f"Found array with 0 sample(s) (shape={X.shape}) while a "
                    "minimum of 1 is required."
                )
        else:
            X = check_numeric_X(
                estimator,
                X,
                reset=reset,
                dtype=None,
                ensure_all_finite="allow-nan",
            )
    if reset:
        numeric = [j for j in range(X.shape[1]) if j not in set(categorical)]
        scaling = estimator.numeric_scaling
        if scaling == "auto":
            # Raw tabular data (categorical columns, or NaN, below) is learned
            # from; complete numeric arrays pass as they are.
            scaling = "quantile" if categorical else "auto"
        x = _numeric_block(X, numeric, fitted=False)
        if scaling == "auto" and np.isnan(x).any():
            # Numbers with gaps are raw data too (measured on rf1: mean R² 0.76
            # unscaled, 0.86 quantile-normal).
            scaling = "quantile"
        elif scaling == "auto":
            scaling = None
        spec = {"numeric": numeric, "categorical": categorical}
        spec.update(_fit_numeric(x, scaling))
        spec["categories"] = []
        for j in categorical:
            listed = (
                _dtype_categories(X.iloc[:, j]) if dtype_categories and frame else None
            )
            if listed is None:
                values = _column_values(X, j)
                missing = _missing(values)
            else:
                values, missing = listed, np.zeros(len(listed), dtype=bool)
            spec["categories"].append(_categories(values, missing, _name(X, j)))
        spec["bins"] = None
        estimator.inputs_ = spec
    spec = estimator.inputs_
    # Encoded in the array's float dtype when it is one of ``dtype``'s (float32
    # input stays float32), else in the first: float64 for DataFrames.
    if isinstance(dtype, tuple | list):
        given = X.dtype if isinstance(X, np.ndarray) else None
        out_dtype = given if given in dtype else dtype[0]
    else:
        out_dtype = dtype
    if not spec["categorical"]:
        plain = spec["scaling"] is None and not spec["missing_indicator"]
        if plain and not np.isnan(X).any():
            if X.dtype == out_dtype:
                return X  # the fast path: exactly what validate_data returned
            return _cast(X, out_dtype, spec, estimator)
    x = _transform_numeric(_numeric_block(X, spec["numeric"]), spec)
    codes = [
        _codes(_column_values(X, j), cats, _name(X, j))
        for j, cats in zip(spec["categorical"], spec["categories"])
    ]
    parts = [x] + ([np.column_stack(codes)] if codes else [])
    out = np.hstack(parts) if len(parts) > 1 else parts[0]
    return _cast(out, out_dtype, spec, estimator)


def _cast(out: np.ndarray, dtype, spec: dict, estimator) -> np.ndarray:
    """``out`` (encoded columns) in ``dtype``; values beyond its range refused.

    The encoded columns start with ``spec["numeric"]``'s, so a column that
    overflows is named as ``feature_names_in_`` names it (else by index).
    """
    with np.errstate(over="ignore"):  # an overflow is refused below
        cast = np.ascontiguousarray(out, dtype=dtype)
    if np.isfinite(cast).all():
        return cast
    numeric = spec["numeric"]
    bad = np.flatnonzero(~np.isfinite(cast[:, : len(numeric)]).all(0))
    given = getattr(estimator, "feature_names_in_", None)
    names = ", ".join(
        str(numeric[i]) if given is None else repr(str(given[numeric[i]])) for i in bad
    )
    raise ValueError(
        "Input X contains infinity or a value too large for "
        f"dtype({np.dtype(dtype).name!r}) in columns [{names}]"
        + (
            f" (after numeric_scaling={spec['scaling']!r})"
            if spec["scaling"] is not None
            else ""
        )
        + "; numeric_scaling='quantile' brings such values into range."
    )


def unknown_categories(estimator, X_encoded) -> list[int]:
    """The categorical columns (indices into ``inputs_["categorical"]``) in
    which encoded rows hold a category the input encoding does not know."""
    spec = getattr(estimator, "inputs_", None)
    if not spec or not spec["categorical"] or sp.issparse(X_encoded):
        return []
    codes = X_encoded[:, X_encoded.shape[1] - len(spec["categorical"]) :]
    return np.flatnonzero((codes == _UNKNOWN).any(axis=0)).tolist()


def warn_unknown_categories(estimator, X_encoded=None, unknown=None, stacklevel=6):
    """Warn when training rows hold categories the input encoding does not know.

    For a training call after the first (``partial_fit``, a ``warm_start``
    fit): the encoding was learned by the first call, so a category first seen
    now trains as "unknown", as one first seen at predict time. ``unknown``:
    the columns of :func:`unknown_categories`, if already found (a stream's
    blocks); ``stacklevel`` points at the user's call.
    """
    if unknown is None:
        unknown = unknown_categories(estimator, X_encoded)
    if not len(unknown):
        return
    spec = estimator.inputs_
    names = getattr(estimator, "feature_names_in_", None)
    columns = [spec["categorical"][i] for i in unknown]
    shown = [str(names[j]) for j in columns] if names is not None else columns
    warnings.warn(
        f"Categorical columns {shown} of X hold categories that the input "
        "encoding, learned by the first fit or partial_fit, does not know; they "
        "train as 'unknown', as a category first seen at predict time does. To "
        "learn them, give the columns a pandas category dtype that lists every "
        "category before the first partial_fit (its categories are then taken "
        "from the dtype), or fit again without warm_start.",
        UserWarning,
        stacklevel=stacklevel,  # the user's fit / partial_fit (via _fit_context)
    )


_PIECEWISE = ("piecewise_linear", "piecewise_linear_tree")


def accepts_sparse(estimator) -> bool:
    """Whether ``estimator``'s parameters let it fit sparse X (its ``sparse`` tag).

    Examples
    --------
    >>> from sklearn_mtl import MultiTaskClassifier
    >>> accepts_sparse(MultiTaskClassifier()), accepts_sparse(
    ...     MultiTaskClassifier(numeric_scaling="robust"))
    (True, False)
    """
    categorical = estimator.categorical_features
    return (
        (categorical is None or isinstance(categorical, str))
        and estimator.numeric_scaling in ("auto", None)
        and getattr(estimator, "num_embeddings", None) not in _PIECEWISE
    )


def validate_sparse(estimator, X, *, reset: bool, dtype):
    """Validate a scipy sparse ``X`` (CSR, CSC or any format converted to them).

    Sparse X is read as it is: numeric features, no categorical columns, no
    NaN, no numeric scaling (centring would make it dense) and no
    piecewise-linear bins (learned per dense column). These are refused with a
    ValueError naming the parameter; ``numeric_scaling="auto"`` means no scaling
    for sparse X. A model fitted on dense X predicts sparse X when it did not
    encode its inputs. The data is converted to ``dtype``, never densified.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from sklearn_mtl import MultiTaskClassifier
    >>> est = MultiTaskClassifier()
    >>> X = validate_sparse(est, sp.eye(3, format="csc"), reset=True, dtype="float32")
    >>> X.format, X.dtype, est.inputs_["scaling"]
    ('csc', dtype('float32'), None)
    """
    if reset:
        categorical = resolve_categorical(estimator.categorical_features, X)
        if categorical:
            raise ValueError(
                f"categorical_features names columns {categorical}, but X is sparse: "
                "sparse X is read as numeric features. Encode categorical columns "
                "first (e.g. OneHotEncoder) or pass dense X."
            )
        if estimator.numeric_scaling not in ("auto", None):
            raise ValueError(
                f"numeric_scaling={estimator.numeric_scaling!r} cannot take sparse "
                "X (scaling would make it dense); use numeric_scaling=None or 'auto' "
                "(no scaling for sparse X), or pass dense X."
            )
        if getattr(estimator, "num_embeddings", None) in _PIECEWISE:
            raise ValueError(
                f"num_embeddings={estimator.num_embeddings!r} learns bins on dense "
                "columns and cannot take sparse X; use num_embeddings=None or "
                "'periodic', or pass dense X."
            )
    else:
        spec = estimator.inputs_
        encoded = [
            name
            for name, used in (
                ("categorical columns", spec["categorical"]),
                (f"numeric_scaling={spec['scaling']!r}", spec["scaling"]),
                ("missing-value indicators", spec["missing_indicator"]),
            )
            if used
        ]
        if encoded:
            raise ValueError(
                f"This model encodes its inputs ({', '.join(encoded)}), which sparse "
                "X cannot go through; pass dense X."
            )
    if not sp.issparse(X):  # a DataFrame of pandas sparse columns
        _check_fill_values(X)
    try:
        X = check_numeric_X(
            estimator,
            X,
            reset=reset,
            dtype=dtype,
            accept_sparse=("csr", "csc"),
            ensure_all_finite=True,
        )
    except ValueError as exc:
        if "NaN" in str(exc):
            raise ValueError(
                "Sparse X contains NaN: missing values are imputed only for dense X; "
                "impute them first or pass dense X."
            ) from exc
        raise
    if reset:
        estimator.inputs_ = plain_inputs(X.shape[1])
        estimator.inputs_["sparse"] = True  # the network may read sparse batches
    return X


def plain_inputs(n_features: int) -> dict:
    """The ``inputs_`` of an all-numeric X read as it is (models saved before it).

    Examples
    --------
    >>> encoded_width(plain_inputs(3))
    3
    """
    return {
        "numeric": list(range(n_features)),
        "categorical": [],
        "median": np.zeros(n_features),
        "missing_indicator": [],
        "scaling": None,
        "categories": [],
        "bins": None,
    }


def encoded_width(spec: dict) -> int:
    """Number of columns of the encoded X."""
    return (
        len(spec["numeric"]) + len(spec["missing_indicator"]) + len(spec["categorical"])
    )


def fit_bins(spec: dict, X, targets, kinds, kind: str, n_bins: int) -> dict:
    """Bin edges of the piecewise-linear embeddings, learned on the encoded ``X``.

    ``kind="piecewise_linear"``: quantile bins (``rtdl_num_embeddings.compute_bins``).
    ``kind="piecewise_linear_tree"``: target-aware bins, the multi-task rule: for
    every task, a decision tree per feature on that task's labelled rows gives
    split points (``compute_bins`` with ``y``); a feature's edges are the union
    over tasks, thinned evenly to at most ``n_bins + 1`` edges. Every task gets
    the splits that matter to it.

    ``targets`` is the :class:`~sklearn_mtl._tasks.TaskTargets` of ``y``;
    ``kinds`` the task kinds. Returns a new spec with ``"bins"`` set.
    """
    import torch
    from rtdl_num_embeddings import compute_bins as rtdl_bins

    def compute_bins(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=TWO_EDGES)
            return rtdl_bins(*args, **kwargs)

    n_num = len(spec["numeric"])
    x = np.asarray(X[:, :n_num], dtype=np.float32)
    n = x.shape[0]
    T = len(kinds)
    bins = []
    for j in range(n_num):
        col = x[:, j]
        lo, hi = float(col.min()), float(col.max())
        if n < 3 or hi <= lo:
            edges = np.array([lo, lo + 1.0 if hi <= lo else hi], dtype=np.float32)
            bins.append(edges)
            continue
        nb = min(n_bins, n - 1)
        column = torch.as_tensor(col[:, None])
        found = []
        if kind == "piecewise_linear_tree":
            for t in range(T):
                labelled = np.asarray(targets.labelled[:, t])
                y = np.asarray(targets.values[labelled, t])
                rows = col[labelled]
                if labelled.sum() <= nb or np.ptp(y) == 0 or np.ptp(rows) == 0:
                    continue
                leaf = max(1, min(64, int(labelled.sum()) // nb))
                found.append(
                    compute_bins(
                        torch.as_tensor(rows[:, None]),
                        nb,
                        tree_kwargs={"min_samples_leaf": leaf},
                        y=torch.as_tensor(y),
                        regression=kinds[t] == "regression",
                    )[0].numpy()
                )
        if not found:
            found.append(compute_bins(column, nb)[0].numpy())
        edges = np.unique(
            np.concatenate(found + [np.array([lo, hi])]).astype(np.float32)
        )
        if edges.shape[0] > n_bins + 1:
            keep = np.unique(np.round(np.linspace(0, edges.shape[0] - 1, n_bins + 1)))
            edges = edges[keep.astype(int)]
        bins.append(edges)
    return {**spec, "bins": bins}


def one_hot_columns(spec: dict, max_size: int) -> list[bool]:
    """Per categorical column: one-hot (at most ``max_size`` categories seen in
    fit) rather than a learned embedding, as CatBoost's ``one_hot_max_size``.

    Examples
    --------
    >>> one_hot_columns({"categories": [["a", "b"], list("abcdefg")]}, 4)
    [True, False]
    """
    return [len(c) <= max_size for c in spec["categories"]]


def input_module(spec: dict, num_embeddings, embedding_dim: int):
    """The input embedding for ``spec`` (None when the encoded X is read as is)."""
    if not spec["categorical"] and num_embeddings is None:
        return None
    import torch

    n_num = len(spec["numeric"])
    numeric = None
    if num_embeddings is not None and n_num:
        if num_embeddings not in NUM_EMBEDDINGS:
            raise ValueError(f"Unknown num_embeddings {num_embeddings!r}.")
        bins = None
        if spec["bins"] is not None:
            bins = [
                torch.as_tensor(np.asarray(b, dtype=np.float32)) for b in spec["bins"]
            ]
        numeric = numeric_embedding(num_embeddings, n_num, embedding_dim, bins)
    return TabularEmbedding(
        n_num,
        len(spec["missing_indicator"]),
        [len(c) + 2 for c in spec["categories"]],
        numeric,
        embedding_dim,
        one_hot=spec.get("one_hot"),  # absent in models saved before it existed
    )

"""skl2onnx converters for the multi-task estimators (the ``[onnx]`` extra).

The trained torch network is exported as a whole with ``torch.onnx.export``
(no per-layer converters, so any network the estimator builds, a custom
``trunk`` included, exports the same way) and its graph is spliced into the
skl2onnx graph between the pipeline's upstream variable (encoded as below,
then cast to float32) and a decoding part written in ONNX operators: per-task
slices of the fused output, sigmoid / softmax probabilities, labels gathered
from each task's classes, and regression values unscaled with the task's mean
and scale.

The input encoding a fit learned (``inputs_``: NaN to the median, missing
indicators, quantile-normal or robust scaling, category codes) is written in
ONNX operators before the network, in double precision as the estimator
computes it: a raw DataFrame converts with one graph input per column (string
columns as strings, unseen categories to "unknown", ``"nan"`` / ``"None"`` to
"missing"). The quantile-normal map is a per-column ``np.interp`` (a binary
search over the knots, unrolled, then gathers) and Wichura's AS241 normal
quantile.

skl2onnx, onnx and torch's exporter are imported only when a conversion runs.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings

import numpy as np

# onnx.TensorProto data types.
_FLOAT, _DOUBLE, _INT64, _BOOL = 1, 11, 7, 9

#: Exporters of the torch network; the first is the default.
EXPORTERS = ("dynamo", "torchscript")
#: Lowest opset torch's dynamo-based exporter writes.
_DYNAMO_MIN_OPSET = 18
_ALIAS = "SklearnMtl{}"


# --------------------------------------------------------------------------- checks
def _check_exportable(est) -> None:
    """Raise a ValueError naming the parameter that prevents an exact export."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    # The precision predictions run in: the engine's, set by the last training
    # call (a set_params after fit does not change them).
    precision = getattr(est.engine_, "precision", "float32")
    if precision != "float32":
        raise ValueError(
            f"{type(est).__name__} with precision={precision!r} cannot be "
            "exported to ONNX: its predictions run under bfloat16 autocast, which "
            "an ONNX float32 graph does not reproduce. Refit with "
            "precision='float32'."
        )


def _output_names_of(task) -> tuple[str, str | None]:
    """Requested ONNX output names of a task (skl2onnx may sanitise them)."""
    if task.is_classification:
        return f"{task.name}_label", f"{task.name}_probabilities"
    return f"{task.name}_value", None


def _label_kind(classes: np.ndarray) -> str:
    """ONNX label type of a task's classes: 'string', 'bool', 'int' or 'float'."""
    if classes.dtype.kind == "b" or (
        classes.dtype.kind == "O"
        and all(isinstance(c, bool | np.bool_) for c in classes)
    ):
        return "bool"
    if classes.dtype.kind in "iu":
        return "int"
    if classes.dtype.kind == "f":
        return "float"
    if classes.dtype.kind in "US" or all(isinstance(c, str) for c in classes):
        return "string"
    raise ValueError(
        f"Classes {classes.tolist()!r} of dtype {classes.dtype} have no ONNX tensor "
        "type; labels must be strings, integers, floats or bools."
    )


def _label_type(task):
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    if not task.is_classification:
        return FloatTensorType([None])
    return {
        "bool": BooleanTensorType,
        "int": Int64TensorType,
        "float": DoubleTensorType,
        "string": StringTensorType,
    }[_label_kind(task.classes)]([None])


# --------------------------------------------------------------------------- parser
def _parse(scope, model, inputs, custom_parsers=None):
    """Declare the operator and its outputs: per task, label then probabilities."""
    from skl2onnx._supported_operators import get_model_alias
    from skl2onnx.common.data_types import FloatTensorType

    _check_exportable(model)
    operator = scope.declare_local_operator(get_model_alias(type(model)), model)
    operator.inputs = list(inputs)
    for task in model.tasks_.tasks:
        label_name, proba_name = _output_names_of(task)
        operator.outputs.append(
            scope.declare_local_variable(label_name, _label_type(task))
        )
        if proba_name is not None:
            operator.outputs.append(
                scope.declare_local_variable(proba_name, FloatTensorType())
            )
    return list(operator.outputs)


# --------------------------------------------------------------------------- shapes
def _calculate_shapes(operator) -> None:
    """Set each output's shape: labels (N,), probabilities (N, n_classes)."""
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int32TensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils import check_input_and_output_types

    check_input_and_output_types(
        operator,
        good_input_types=[
            FloatTensorType,
            DoubleTensorType,
            Int64TensorType,
            Int32TensorType,
            BooleanTensorType,
            StringTensorType,
        ],
    )
    est = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    n_features = sum(v.get_second_dimension() or 0 for v in operator.inputs)
    if all(v.get_second_dimension() for v in operator.inputs) and (
        n_features != est.n_features_in_
    ):
        raise ValueError(
            f"The ONNX input of {type(est).__name__} has {n_features} features but "
            f"the estimator was fitted on {est.n_features_in_}."
        )
    outputs = iter(operator.outputs)
    for task in est.tasks_.tasks:
        next(outputs).type.shape = [n]
        if task.is_classification:
            next(outputs).type.shape = [n, len(task.classes)]


# --------------------------------------------------------------------------- export
@contextlib.contextmanager
def _quiet_export():
    """Silence the exporter's progress prints, deprecation notes and log lines."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_network(est, opset: int, exporter: str = "dynamo"):
    """The estimator's torch network as an ONNX ``ModelProto``.

    One input ``(n, width)`` float32 (the encoded X: ``n_features`` columns
    for plain numeric input), one output ``(n, sum of task widths)``
    float32, ``n`` dynamic; local functions are inlined.
    """
    import onnx
    import torch

    if exporter not in EXPORTERS:
        raise ValueError(
            f"exporter must be one of {list(EXPORTERS)}, got {exporter!r}."
        )
    from ._inputs import encoded_width

    module = copy.deepcopy(est.module_).to("cpu").eval()
    n_in = encoded_width(est.inputs_)
    example = torch.zeros(2, n_in, dtype=torch.float32)
    width = int(est.tasks_.offsets[-1])
    trunk = est._built("trunk")
    described = f"architecture={est._built('architecture')!r}" + (
        "" if trunk is None else f", trunk={trunk!r}"
    )
    try:
        with torch.no_grad():
            out = module(example)
    except Exception as exc:
        raise ValueError(
            f"The network of {type(est).__name__}({described}) does not map a float32 "
            f"tensor (n, {n_in}) to its outputs, so it cannot be "
            f"exported to ONNX: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, width):
        raise ValueError(
            f"The network of {type(est).__name__}({described}) must return one tensor "
            f"(n, {width}) to be exported to ONNX; it returned "
            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)}."
        )
    try:
        with _quiet_export():
            if exporter == "dynamo":
                program = torch.onnx.export(
                    module,
                    (example,),
                    dynamo=True,
                    opset_version=opset,
                    input_names=["X"],
                    output_names=["outputs"],
                    dynamic_shapes=({0: torch.export.Dim("n_samples")},),
                    verbose=False,
                )
                model = program.model_proto
            else:
                buffer = io.BytesIO()
                torch.onnx.export(
                    module,
                    (example,),
                    buffer,
                    dynamo=False,
                    opset_version=opset,
                    input_names=["X"],
                    output_names=["outputs"],
                    dynamic_axes={"X": {0: "n_samples"}, "outputs": {0: "n_samples"}},
                )
                model = onnx.load_from_string(buffer.getvalue())
    except ImportError as exc:
        raise ImportError(
            f"torch's {exporter!r} ONNX exporter needs a package that is missing "
            f"({exc}); install sklearn-mtl[onnx]."
        ) from exc
    except Exception as exc:
        raise ValueError(
            f"torch.onnx.export (exporter={exporter!r}) could not export the network "
            f"of {type(est).__name__}({described}): {type(exc).__name__}: {exc}"
        ) from exc
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise ValueError(
            f"The exported network of {type(est).__name__}({described}) has "
            f"{len(model.graph.input)} inputs and {len(model.graph.output)} outputs; "
            "an ONNX export needs exactly one of each."
        )
    return model


def _subgraphs(attr) -> list:
    """The graphs held by a node attribute (the bodies of If / Loop / Scan)."""
    from onnx import AttributeProto

    if attr.type == AttributeProto.GRAPH:
        return [attr.g]
    return list(attr.graphs) if attr.type == AttributeProto.GRAPHS else []


def _graph_names(graph, names: set) -> set:
    """Every value name used in ``graph`` and its subgraphs."""
    names.update(i.name for i in graph.input)
    names.update(o.name for o in graph.output)
    names.update(t.name for t in graph.initializer)
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for attr in node.attribute:
            for sub in _subgraphs(attr):
                _graph_names(sub, names)
    names.discard("")
    return names


def _rename_graph(graph, mapping: dict) -> None:
    """Rename every value of ``graph`` (and subgraphs) in place by ``mapping``."""

    def rename(values):
        for i, name in enumerate(values):
            if name:
                values[i] = mapping[name]

    for value in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        value.name = mapping.get(value.name, value.name)
    for node in graph.node:
        rename(node.input)
        rename(node.output)
        for attr in node.attribute:
            for sub in _subgraphs(attr):
                _rename_graph(sub, mapping)


def _fill_optional_inputs(scope, container, node) -> None:
    """Give a node's omitted optional inputs ("") explicit values.

    skl2onnx's graph sorting takes "" for a missing value. Torch writes
    ``Clip(x, "", max)`` for a one-sided clamp (the piecewise-linear numeric
    embeddings): the omitted bound becomes the float32 limit, which is what ONNX
    means by it.
    """
    inputs = list(node.input)
    while inputs and not inputs[-1]:
        inputs.pop()
    if all(inputs):
        del node.input[len(inputs) :]
        return
    if node.op_type != "Clip":
        raise ValueError(
            f"The exported network has an operator {node.op_type} with an omitted "
            "optional input, which this converter cannot place in the pipeline's "
            "graph."
        )
    limit = np.finfo(np.float32).max
    for i, name in enumerate(inputs):
        if not name:
            bound = -limit if i == 1 else limit
            inputs[i] = _constant(
                scope, container, "clip_bound", np.array(bound, dtype=np.float32)
            )
    del node.input[:]
    node.input.extend(inputs)


def _splice(scope, container, model, input_name: str, output_name: str) -> None:
    """Add ``model``'s nodes and initializers to ``container``.

    ``model``'s input reads ``input_name`` and its output is written to
    ``output_name``; every other name is made unique in the scope.
    """
    graph = model.graph
    mapping = {
        name: scope.get_unique_variable_name("mtl_net_" + name)
        for name in sorted(_graph_names(graph, set()))
    }
    mapping[graph.input[0].name] = input_name
    mapping[graph.output[0].name] = output_name
    graph = copy.deepcopy(graph)
    _rename_graph(graph, mapping)
    for node in graph.node:
        node.name = scope.get_unique_operator_name("mtl_net_" + (node.op_type))
        _fill_optional_inputs(scope, container, node)
        container.nodes.append(node)
    container.initializers.extend(graph.initializer)
    for opset in model.opset_import:
        container.node_domain_version_pair_sets.add((opset.domain, opset.version))


# --------------------------------------------------------------------------- input
#: Strings that stand for a missing category in a string input: what pandas'
#: ``astype(str)`` writes for NaN and None (unless they are categories).
MISSING_STRINGS = ("nan", "None")

# Wichura's AS241 (PPND16) coefficients, highest degree first: the normal
# quantile to about 1e-16 relative, as scipy's ndtri.
_AS241 = {
    "a": [
        2509.0809287301226727,
        33430.575583588128105,
        67265.770927008700853,
        45921.953931549871457,
        13731.693765509461125,
        1971.5909503065514427,
        133.14166789178437745,
        3.387132872796366608,
    ],
    "b": [
        5226.495278852545925,
        28729.085735721942674,
        39307.89580009271061,
        21213.794301586595867,
        5394.1960214247511077,
        687.1870074920579083,
        42.313330701600911252,
        1.0,
    ],
    "c": [
        0.00077454501427834140764,
        0.0227238449892691845833,
        0.24178072517745061177,
        1.27045825245236838258,
        3.64784832476320460504,
        5.7694972214606914055,
        4.6303378461565452959,
        1.42343711074968357734,
    ],
    "d": [
        1.05075007164441684324e-9,
        0.000547593808499534494600,
        0.0151986665636164571966,
        0.14810397642748007459,
        0.68976733498510000455,
        1.6763848301838038494,
        2.05319162663775882187,
        1.0,
    ],
    "e": [
        2.01033439929228813265e-7,
        2.71155556874348757815e-5,
        0.0012426609473880784386,
        0.026532189526576123093,
        0.29656057182850489123,
        1.7848265399172913358,
        5.4637849111641143699,
        6.6579046435011037772,
    ],
    "f": [
        2.04426310338993978564e-15,
        1.4215117583164458887e-7,
        1.8463183175100546818e-5,
        0.0007868691311456132591,
        0.0148753612908506148525,
        0.13692988092273580531,
        0.59983220655588793769,
        1.0,
    ],
}


class _Graph:
    """ONNX nodes and constants added to a skl2onnx container, by value name."""

    def __init__(self, scope, container):
        self.scope, self.container = scope, container

    def name(self, seed):
        return self.scope.get_unique_variable_name("mtl_" + seed)

    def const(self, array, seed="const"):
        return _constant(self.scope, self.container, "mtl_" + seed, np.asarray(array))

    def op(self, op_type, *inputs, domain="", version=None, out=None, **attrs):
        """Add one node; its output is ``out`` or a new unique name (returned)."""
        out = out or self.name(op_type.lower())
        self.container.add_node(
            op_type,
            list(inputs),
            [out],
            op_domain=domain,
            op_version=version or self.container.target_opset,
            name=self.scope.get_unique_operator_name("mtl_" + op_type),
            **attrs,
        )
        return out

    def cast(self, x, to):
        return self.op("Cast", x, to=to)

    def where(self, condition, a, b):
        return self.op("Where", condition, a, b)

    def poly(self, coefficients, r):
        """Horner's rule: ``sum(c[i] * r**(n-1-i))``."""
        out = self.const(np.array([coefficients[0]]))
        for c in coefficients[1:]:
            out = self.op("Add", self.op("Mul", out, r), self.const(np.array([c])))
        return out


def _int64_zero():
    from onnx import helper

    return helper.make_tensor("value", _INT64, [1], [0])


def _ndtri(g: _Graph, p):
    """The standard normal quantile of ``p`` (double, in (0, 1)), AS241."""
    half, c = g.const(np.array([0.5])), _AS241
    q = g.op("Sub", p, half)
    # central: |q| <= 0.425
    r = g.op("Sub", g.const(np.array([0.180625])), g.op("Mul", q, q))
    central = g.op("Div", g.op("Mul", q, g.poly(c["a"], r)), g.poly(c["b"], r))
    # tails: r = sqrt(-log(min(p, 1 - p)))
    tail = g.op("Min", p, g.op("Sub", g.const(np.array([1.0])), p))
    r = g.op("Sqrt", g.op("Neg", g.op("Log", tail)))
    near = g.op("Sub", r, g.const(np.array([1.6])))
    far = g.op("Sub", r, g.const(np.array([5.0])))
    value = g.where(
        g.op("LessOrEqual", r, g.const(np.array([5.0]))),
        g.op("Div", g.poly(c["c"], near), g.poly(c["d"], near)),
        g.op("Div", g.poly(c["e"], far), g.poly(c["f"], far)),
    )
    value = g.where(
        g.op("Less", q, g.const(np.array([0.0]))), g.op("Neg", value), value
    )
    is_central = g.op("LessOrEqual", g.op("Abs", q), g.const(np.array([0.425])))
    return g.where(is_central, central, value)


def _interp(g: _Graph, x, table: dict, strict: bool):
    """Per column, ``np.interp(x, knots[:, j], refs)`` (``strict``: from the left).

    ``x`` is ``(n, m)`` double; ``table`` holds the flattened knots, slopes and
    refs of :func:`_quantile_normal`. The segment comes from a binary search
    over each column's sorted knots, unrolled in ``ceil(log2(K + 1))`` steps
    (memory grows with ``n x m``, not with the knots). With ``strict`` it is the
    segment below the first knot >= x, which is ``-np.interp(-x, -knots[::-1],
    -refs[::-1])``: inside a run of equal knots the first of them, where
    ``np.interp`` takes the last.
    """
    n_knots, offsets, knots = table["n_knots"], table["offsets"], table["knots"]
    compare = "Less" if strict else "LessOrEqual"
    zero = g.const(np.array(0, dtype=np.int64))
    count = g.op("ConstantOfShape", g.op("Shape", x), value=_int64_zero())
    step = 1 << int(n_knots).bit_length()  # > n_knots
    while step > 1:
        step //= 2
        # count = number of knots below x (strict) or at most x, found so far
        candidate = g.op("Add", count, g.const(np.array(step, dtype=np.int64)))
        inside = g.op(
            "LessOrEqual", candidate, g.const(np.array(n_knots, dtype=np.int64))
        )
        probe = g.op(
            "Min", candidate, g.const(np.array(n_knots, dtype=np.int64))
        )  # 1-based: the knot looked at
        index = g.op("Add", g.op("Sub", probe, g.const(np.array(1, np.int64))), offsets)
        below = g.op(compare, g.op("Gather", knots, index), x)
        count = g.where(g.op("And", inside, below), candidate, count)
    segment = g.op(
        "Clip",
        g.op("Sub", count, g.const(np.array(1, dtype=np.int64))),
        zero,
        g.const(np.array(max(n_knots - 2, 0), dtype=np.int64)),
    )
    flat = g.op("Add", segment, offsets)
    start = g.op("Gather", knots, flat)
    slope = g.op("Gather", table["slopes"], flat)
    base = g.op("Gather", table["refs"], segment)
    value = g.op("Add", base, g.op("Mul", slope, g.op("Sub", x, start)))
    value = g.where(g.op("Equal", count, zero), table["first"], value)
    last = g.op("Equal", count, g.const(np.array(n_knots, dtype=np.int64)))
    return g.where(last, table["last"], value)


def _quantile_normal(g: _Graph, x, quantiles):
    """``sklearn_mtl._inputs._quantile_normal`` in ONNX operators."""
    from ._inputs import _CLIP

    quantiles = np.asarray(quantiles, dtype=np.float64)
    n_knots, m = quantiles.shape
    refs = np.linspace(0.0, 1.0, n_knots)
    with np.errstate(divide="ignore", invalid="ignore"):
        rise = np.diff(quantiles, axis=0)
        slopes = np.where(rise > 0, np.diff(refs)[:, None] / rise, 0.0)
    slopes = np.vstack([slopes, np.zeros((1, m))])  # (K, m)
    table = {  # shared by both passes: each constant is stored once
        "n_knots": n_knots,
        "offsets": g.const(np.arange(m, dtype=np.int64) * n_knots, "offsets"),
        "knots": g.const(np.ascontiguousarray(quantiles.T).ravel(), "knots"),
        "slopes": g.const(np.ascontiguousarray(slopes.T).ravel(), "slopes"),
        "refs": g.const(refs, "refs"),
        "first": g.const(np.array([refs[0]])),
        "last": g.const(np.array([refs[-1]])),
    }
    up = _interp(g, x, table, strict=False)
    down = _interp(g, x, table, strict=True)
    p = g.op("Mul", g.op("Add", up, down), g.const(np.array([0.5])))
    p = g.op("Clip", p, g.const(np.array(_CLIP)), g.const(np.array(1 - _CLIP)))
    return _ndtri(g, p)


def _columns(est, inputs):
    """Each column of X: ``(variable, position in it, kind)``, the kind of the
    input tensor: ``"string"``, ``"int64"`` or ``"number"`` (any other)."""
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    n_features = est.n_features_in_
    widths = [v.get_second_dimension() for v in inputs]
    if len(inputs) == 1:
        widths = [n_features]
    if None in widths or sum(widths) != n_features:
        raise ValueError(
            f"The ONNX inputs of {type(est).__name__} must give its {n_features} "
            "columns with known widths (one tensor, or one per column as "
            f"skl2onnx makes from a DataFrame); got widths {widths}."
        )
    names = getattr(est, "feature_names_in_", None)
    given = [v.raw_name for v in inputs]
    if names is not None and len(inputs) > 1:
        names = [str(n) for n in names]
        known = [n for n in given if n in names]
        if known and (len(known) != len(given) or set(known) != set(names)):
            raise ValueError(
                f"The ONNX inputs {given} of {type(est).__name__} are not the "
                f"columns it was fitted on, {names}: give one input per column, "
                "named as in fit (e.g. a sample of the training DataFrame)."
            )
        if known:
            # One input per column, by name: read in the order of fit, whatever
            # the order the inputs were given in.
            order = [given.index(n) for n in names]
            inputs, widths = [inputs[i] for i in order], [widths[i] for i in order]
    out = []
    for variable, width in zip(inputs, widths):
        kind = "number"
        if isinstance(variable.type, StringTensorType):
            kind = "string"
        elif isinstance(variable.type, Int64TensorType):
            kind = "int64"
        out.extend((variable.full_name, k, kind) for k in range(width))
    return out


def _take(g: _Graph, columns, indices):
    """The columns ``indices`` of X as one ``(n, len(indices))`` double tensor."""
    parts, run = [], []
    for j in indices + [None]:
        if j is not None and run and columns[j][0] == columns[run[-1]][0]:
            run.append(j)
            continue
        if run:
            source = columns[run[0]][0]
            positions = [columns[i][1] for i in run]
            width = sum(1 for column in columns if column[0] == source)
            picked = source  # the whole input, in order: no Gather
            if positions != list(range(width)):
                picked = g.op(
                    "Gather", source, g.const(np.array(positions, np.int64)), axis=1
                )
            parts.append(g.cast(picked, _DOUBLE))
        run = [j] if j is not None else []
    return parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=1)


def _column_name(est, j) -> str:
    names = getattr(est, "feature_names_in_", None)
    return repr(str(names[j])) if names is not None else str(j)


def _codes(g: _Graph, est, columns, j, categories):
    """The category codes of column ``j`` (``_inputs._codes``), as double."""
    from ._inputs import _MISSING, _UNKNOWN

    source, position, kind = columns[j]
    column = g.op(
        "Gather", source, g.const(np.array([position], dtype=np.int64)), axis=1
    )
    if kind == "string":
        keys = [str(c) for c in categories]
        if len(set(keys)) < len(keys):
            seen = [k for k in keys if keys.count(k) > 1]
            raise ValueError(
                f"Categorical column {_column_name(est, j)} of {type(est).__name__} "
                f"has categories that are one string in a string input (e.g. "
                f"{seen[0]!r}: {[c for c in categories if str(c) == seen[0]]}); "
                "the ONNX graph could not tell them apart."
            )
        values = list(range(2, 2 + len(keys)))
        for token in MISSING_STRINGS:
            if token not in keys:
                keys.append(token)
                values.append(_MISSING)
        codes = g.op(
            "LabelEncoder",
            column,
            domain="ai.onnx.ml",
            version=2,
            keys_strings=keys,
            values_int64s=values,
            default_int64=_UNKNOWN,
        )
        return g.cast(codes, _DOUBLE)
    unknown = g.const(np.array([_UNKNOWN], dtype=np.float64))
    if (
        kind == "int64"
        and categories
        and all(isinstance(c, int) and -(2**63) <= c < 2**63 for c in categories)
    ):
        # Integers compared as integers (ids past 2**53 stay apart); no NaN.
        return _match(g, column, np.array(categories, dtype=np.int64), unknown)
    x = g.cast(column, _DOUBLE)
    numbers = [float(c) for c in categories if isinstance(c, bool | int | float)]
    inexact = [c for c, f in zip(categories, numbers) if isinstance(c, int) and f != c]
    if inexact:
        # The graph compares numbers as doubles: ids past 2**53 would merge.
        raise ValueError(
            f"Categorical column {_column_name(est, j)} of {type(est).__name__} "
            f"has integer categories that a double cannot hold exactly "
            f"({inexact[:3]}); give this column an int64 input (Int64TensorType, "
            "or an int64 column in the DataFrame passed to to_onnx)."
        )
    codes = unknown
    if len(numbers) == len(categories) and numbers:
        codes = _match(g, x, np.array(numbers), unknown)
    elif categories:
        raise ValueError(
            f"Categorical column {_column_name(est, j)} of {type(est).__name__} "
            "has categories "
            f"{categories[:5]} that a numeric ONNX input cannot hold; give this "
            "column a string input (StringTensorType, or an object column of "
            "strings in the DataFrame passed to to_onnx)."
        )
    missing = g.op("IsNaN", x)
    return g.where(missing, g.const(np.array([_MISSING], dtype=np.float64)), codes)


def _match(g: _Graph, x, values: np.ndarray, unknown):
    """``2 +`` the index of each value of ``x`` (n, 1) in ``values``, as
    double; ``unknown`` where it is none of them."""
    hit = g.cast(g.op("Equal", x, g.const(values[None])), _INT64)
    index = g.op("ArgMax", hit, axis=1, keepdims=1)  # (n, 1) of the (n, C)
    found = g.op("ReduceSum", hit, g.const(np.array([1], dtype=np.int64)), keepdims=1)
    return g.where(
        g.cast(found, _BOOL),
        g.cast(g.op("Add", index, g.const(np.array(2, dtype=np.int64))), _DOUBLE),
        unknown,
    )


def _encode(est, inputs, g: _Graph):
    """X encoded as the estimator encodes it (``_inputs.validate_inputs``): float32.

    ``[numeric (NaN to the median, scaled) | missing indicators | codes]``,
    computed in double as the estimator does, then cast to float32.
    """
    spec = est.inputs_
    opset = g.container.target_opset
    if (spec["categorical"] or spec["scaling"]) and opset < 13:
        raise ValueError(
            f"{type(est).__name__} encodes categorical columns or scales numbers "
            f"(inputs_), which the ONNX graph writes with opset 13 operators; "
            f"convert with target_opset >= 13, not {opset}."
        )
    columns = _columns(est, inputs)
    parts = []
    if spec["numeric"]:
        x = _take(g, columns, list(spec["numeric"]))
        missing = g.op("IsNaN", x)
        median = np.asarray(spec["median"], dtype=np.float64)[None]
        x = g.where(missing, g.const(median, "median"), x)
        if spec["scaling"] == "quantile":
            x = _quantile_normal(g, x, spec["quantiles"])
        elif spec["scaling"] == "robust":
            center = np.asarray(spec["center"], dtype=np.float64)[None]
            scale = np.asarray(spec["scale"], dtype=np.float64)[None]
            x = g.op("Div", g.op("Sub", x, g.const(center)), g.const(scale))
        parts.append(x)
        if spec["missing_indicator"]:
            which = np.asarray(spec["missing_indicator"], dtype=np.int64)
            flags = g.op("Gather", missing, g.const(which), axis=1)
            parts.append(g.cast(flags, _DOUBLE))
    for j, categories in zip(spec["categorical"], spec["categories"]):
        parts.append(_codes(g, est, columns, j, categories))
    encoded = parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=1)
    return g.cast(encoded, _FLOAT)


# --------------------------------------------------------------------------- converter
def _constant(scope, container, name, array: np.ndarray) -> str:
    from onnx import numpy_helper

    tensor = numpy_helper.from_array(array, scope.get_unique_variable_name(name))
    container.initializers.append(tensor)
    return tensor.name


def _convert(scope, operator, container) -> None:
    """Input encoding, network graph, then each task's decoding, in ONNX."""
    est = operator.raw_operator
    _check_exportable(est)
    exporter = container.get_options(est, dict(exporter=EXPORTERS[0]))["exporter"]
    opset = container.target_opset
    if exporter == "dynamo" and opset < _DYNAMO_MIN_OPSET:
        raise ValueError(
            f"target_opset={opset} is below {_DYNAMO_MIN_OPSET}, the lowest opset "
            "torch's dynamo exporter writes; convert with target_opset >= "
            f"{_DYNAMO_MIN_OPSET}, or with options={{{type(est).__name__}: "
            "{'exporter': 'torchscript'}}."
        )
    if exporter == "torchscript":
        from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET

        opset = min(opset, ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
    model = export_network(est, opset, exporter)

    g = _Graph(scope, container)
    fused = g.name("outputs")
    _splice(scope, container, model, _encode(est, operator.inputs, g), fused)

    axis1 = g.const(np.array([1], dtype=np.int64), "axis1")
    flat = g.const(np.array([-1], dtype=np.int64), "flat")
    outputs = iter(operator.outputs)
    for i, task in enumerate(est.tasks_.tasks):
        start, stop = est.tasks_.offsets[i : i + 2]
        part = g.op(
            "Slice",
            fused,
            g.const(np.array([start], np.int64), "start"),
            g.const(np.array([stop], np.int64), "stop"),
            axis1,
        )
        label = next(outputs).full_name
        if task.kind == "regression":
            scale = g.const(np.array([task.scale], np.float32), "scale")
            mean = g.const(np.array([task.mean], np.float32), "mean")
            value = g.op("Add", g.op("Mul", part, scale), mean)
            g.op("Reshape", value, flat, out=label)
            continue
        proba = next(outputs).full_name
        if task.kind == "binary":
            # Class 1 where the logit is > 0, as Task.decode; [1 - p, p] as columns.
            p = g.op("Sigmoid", part)
            one = g.const(np.array([1], np.float32), "one")
            g.op("Concat", g.op("Sub", one, p), p, axis=1, out=proba)
            zero = g.const(np.array([0], np.float32), "zero")
            positive = g.cast(g.op("Greater", part, zero), _INT64)
            index = g.op("Reshape", positive, flat)
        else:
            g.op("Softmax", part, axis=1, out=proba)
            index = g.op("ArgMax", part, axis=1, keepdims=0)
        classes = {
            "bool": lambda c: c.astype(bool),
            "int": lambda c: c.astype(np.int64),
            "float": lambda c: c.astype(np.float64),
            "string": lambda c: np.array([str(v) for v in c], dtype=object),
        }[_label_kind(task.classes)](task.classes)
        g.op("Gather", g.const(classes, "classes"), index, axis=0, out=label)


# --------------------------------------------------------------------------- register
def register() -> None:
    """Register the skl2onnx converters of the three multi-task estimators.

    After this call ``skl2onnx.to_onnx`` converts a fitted
    :class:`~sklearn_mtl.MultiTaskNeuralEstimator`,
    :class:`~sklearn_mtl.MultiTaskClassifier` or
    :class:`~sklearn_mtl.MultiTaskRegressor`, alone or as the last step of a
    :class:`~sklearn.pipeline.Pipeline` with preprocessing, into one ONNX graph.
    Calling it again is harmless.

    The graph has, for each task in order, the outputs:

    - ``<task>_label`` (classification): ``(n,)`` labels, typed as the task's
      classes (string, int64, double or bool), equal to ``predict``;
    - ``<task>_probabilities`` (classification): ``(n, n_classes)`` float32, equal
      to ``predict_proba`` (columns in the order of the task's ``classes``);
    - ``<task>_value`` (regression): ``(n,)`` float32 predictions.

    A model fitted on a raw DataFrame converts from ``X[:1]`` with string
    columns as ``object`` (skl2onnx guesses no type for a pandas ``str``
    column whose sample value is missing): one graph input per column, and the
    input encoding of the fit in the graph (``target_opset >= 13`` when it has
    categorical columns or scaling). Feed string columns as
    ``df[[c]].astype(str)``: ``"nan"`` and ``"None"`` (what a missing value
    becomes) are the missing category, unless they were categories in fit,
    and then a missing value cannot be told from them. The graph does not
    check its input: infinite values, which ``predict`` refuses, give
    unreliable outputs (NaN with robust scaling).

    Task names are used as they are (``"has churn"`` gives ``"has churn_label"``);
    skl2onnx suffixes a number only if a name clashes with another variable of
    the graph (``InferenceSession.get_outputs()`` lists the names).

    The torch network is exported by ``torch.onnx.export``; choose the exporter
    with skl2onnx's options: ``options={MultiTaskClassifier: {"exporter":
    "torchscript"}}`` uses torch's older TorchScript exporter (no ``onnxscript``
    needed, any ``target_opset`` that the input encoding allows; deprecated by
    torch), the default ``"dynamo"``
    the current one (``target_opset >= 18``).

    Raises
    ------
    ImportError
        If skl2onnx is not installed (``pip install sklearn-mtl[onnx]``).

    Examples
    --------
    >>> import numpy as np
    >>> from skl2onnx import to_onnx
    >>> from sklearn_mtl import MultiTaskClassifier
    >>> from sklearn_mtl.onnx import register
    >>> register()
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 3)).astype(np.float32)
    >>> y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0])
    >>> clf = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=5,
    ...                           random_state=0).fit(X, y)
    >>> onx = to_onnx(clf, X[:1])
    >>> [o.name for o in onx.graph.output]
    ['task_0_label', 'task_0_probabilities', 'task_1_label', 'task_1_probabilities']
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError as exc:
        raise ImportError(
            "ONNX export needs skl2onnx, onnx and onnxruntime: "
            "pip install sklearn-mtl[onnx]"
        ) from exc

    from ._estimator import (
        MultiTaskClassifier,
        MultiTaskNeuralEstimator,
        MultiTaskRegressor,
    )

    for cls in (MultiTaskNeuralEstimator, MultiTaskClassifier, MultiTaskRegressor):
        update_registered_converter(
            cls,
            _ALIAS.format(cls.__name__),
            _calculate_shapes,
            _convert,
            parser=_parse,
            options={"exporter": list(EXPORTERS)},
        )

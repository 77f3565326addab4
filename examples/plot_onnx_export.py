"""
Export a multi-task pipeline to ONNX and serve it with onnxruntime
==================================================================

A :class:`~sklearn_mtl.MultiTaskNeuralEstimator` with three tasks of different
kinds (a binary label, a three-class tier, a regression target) sits at the end
of a :class:`~sklearn.pipeline.Pipeline` with a
:class:`~sklearn.compose.ColumnTransformer`. After
:func:`sklearn_mtl.onnx.register`, ``skl2onnx.to_onnx`` converts the whole
pipeline into one ONNX graph; onnxruntime then serves it with no Python model
code, torch or scikit-learn, and its answers equal the pipeline's.

Needs the ``[onnx]`` extra: ``pip install "sklearn-mtl[onnx]"``.
"""

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sklearn_mtl import MultiTaskNeuralEstimator

warnings.simplefilter("ignore", ConvergenceWarning)

# %%
# Train a pipeline on three tasks
# -------------------------------
rng = np.random.RandomState(0)
X = rng.normal(size=(2000, 6)).astype(np.float32)
X[:, 4:] = rng.uniform(0, 100, size=(2000, 2))  # two columns on another scale
y = pd.DataFrame(
    {
        "churn": np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no"),
        "tier": np.digitize(X[:, 2] - X[:, 3], [-1, 1]),
        "spend": 1000 + 200 * X[:, 1] + 3 * X[:, 4],
    }
)
pre = ColumnTransformer(
    [("normal", StandardScaler(), [0, 1, 2, 3]), ("range", MinMaxScaler(), [4, 5])]
)
pipe = make_pipeline(
    pre,
    MultiTaskNeuralEstimator(
        architecture="mmoe",
        hidden_layer_sizes=(32,),
        expert_layer_sizes=(32,),
        max_iter=40,
        random_state=0,
        task_types={"spend": "regression"},
    ),
).fit(X, y)

# %%
# Convert the whole pipeline to one ONNX graph
# --------------------------------------------
# ``register()`` teaches skl2onnx the three estimators; the torch network is
# exported by ``torch.onnx.export`` and joined to the scalers and to the
# per-task decoding (probabilities, labels, unscaled regression values).
from skl2onnx import to_onnx  # noqa: E402

from sklearn_mtl.onnx import register  # noqa: E402

register()
onx = to_onnx(pipe, X[:1])
path = Path(tempfile.mkdtemp()) / "multitask.onnx"
path.write_bytes(onx.SerializeToString())
print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
print("outputs:", [o.name for o in onx.graph.output])

# %%
# Reload and serve with onnxruntime
# ---------------------------------
# A serving process needs only onnxruntime and the file.
import onnxruntime as ort  # noqa: E402

sess = ort.InferenceSession(str(path))
input_name = sess.get_inputs()[0].name
names = [o.name for o in sess.get_outputs()]


def serve(rows: np.ndarray) -> list[dict]:
    """One answer per row: each task's prediction (and class probabilities)."""
    out = dict(zip(names, sess.run(None, {input_name: rows})))
    return [
        {
            "churn": out["churn_label"][i],
            "p_churn": float(out["churn_probabilities"][i, 1]),
            "tier": int(out["tier_label"][i]),
            "spend": round(float(out["spend_value"][i]), 1),
        }
        for i in range(len(rows))
    ]


for answer in serve(X[:3]):
    print(answer)

# %%
# The ONNX answers are the pipeline's
# -----------------------------------
out = dict(zip(names, sess.run(None, {input_name: X})))
pred, proba = pipe.predict(X), pipe.predict_proba(X)
print("churn labels equal:", np.array_equal(out["churn_label"], pred[:, 0]))
print("tier labels equal: ", np.array_equal(out["tier_label"], pred[:, 1].astype(int)))
print(
    "max |probability difference|:",
    max(
        np.abs(out["churn_probabilities"] - proba[0]).max(),
        np.abs(out["tier_probabilities"] - proba[1]).max(),
    ),
)
spend = pred[:, 2].astype(float)
print(
    "max relative spend difference:",
    np.max(np.abs(out["spend_value"] - spend) / np.abs(spend)),
)

start = time.perf_counter()
sess.run(None, {input_name: X})
print(f"onnxruntime: {len(X)} rows in {1e3 * (time.perf_counter() - start):.1f} ms")

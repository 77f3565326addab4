"""ONNX export of the multi-task estimators, alone or inside a Pipeline.

Call :func:`register` once; ``skl2onnx.to_onnx`` then converts a fitted
estimator, or a Pipeline ending in one, into a single ONNX graph that
onnxruntime serves without Python, torch or scikit-learn. Needs the ``[onnx]``
extra (skl2onnx, onnx, onnxruntime, onnxscript).
"""

from ._onnx import EXPORTERS, register

__all__ = ["register", "EXPORTERS"]

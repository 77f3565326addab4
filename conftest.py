import torch

# Tests run in parallel worker processes (pytest -n 2 on 2 cores): one torch
# thread each avoids oversubscription, which slows small-network training ~10x.
torch.set_num_threads(1)

# The ONNX doctest needs the optional [onnx] extra; without it, skip the module.
try:
    import onnxruntime  # noqa: F401
    import skl2onnx  # noqa: F401
except ImportError:
    collect_ignore = ["sklearn_mtl/_onnx.py"]

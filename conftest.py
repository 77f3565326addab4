import importlib.util

import pytest
import torch

# Tests run in parallel worker processes (pytest -n 2 on 2 cores): one torch
# thread each avoids oversubscription, which slows small-network training ~10x.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    # matplotlib is optional (the [plot] extra): without it, skip the doctests
    # of the module that draws, as its tests skip themselves.
    if importlib.util.find_spec("matplotlib") is not None:
        return
    skip = pytest.mark.skip(reason="matplotlib is not installed")
    for item in items:
        if item.nodeid.startswith("sklearn_mtl/inspection.py"):
            item.add_marker(skip)

"""sklearn-mtl: multi-task neural networks as scikit-learn estimators.

One PyTorch network with a shared trunk and one head per task, trained on
several targets at once, usable wherever a scikit-learn estimator goes.
"""

from ._engine import TrainingDivergedError
from ._estimator import (
    MultiTaskClassifier,
    MultiTaskNeuralEstimator,
    MultiTaskRegressor,
)
from ._persistence import load, save

__version__ = "0.1.0"

__all__ = [
    "MultiTaskNeuralEstimator",
    "MultiTaskClassifier",
    "MultiTaskRegressor",
    "TrainingDivergedError",
    "save",
    "load",
    "__version__",
]

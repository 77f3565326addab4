"""
Inspecting a multi-task fit: per-task curves, loss weights and expert gates
===========================================================================

A fitted sklearn-mtl model records what happened during training, per task. The
Display objects of :mod:`sklearn_mtl.inspection` draw it, with scikit-learn's
Display API (``from_estimator``, ``plot(ax=...)``, ``ax_`` / ``figure_``):

- :class:`~sklearn_mtl.inspection.TaskLossCurveDisplay`: each task's training
  loss per epoch, and its validation score when fitted with early stopping;
- :class:`~sklearn_mtl.inspection.TaskWeightCurveDisplay`: each task's loss
  weight per epoch, as an adaptive ``loss_weighting`` moves it;
- :class:`~sklearn_mtl.inspection.GateUsageDisplay`: how much each task's gate
  uses each expert in a mixture-of-experts network.

Three tasks of scikit-learn's 8x8 digits: the digit (10 classes), its parity and
whether it is >= 5.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_mtl import MultiTaskClassifier
from sklearn_mtl.inspection import (
    GateUsageDisplay,
    TaskLossCurveDisplay,
    TaskWeightCurveDisplay,
)

warnings.simplefilter("ignore", ConvergenceWarning)
X, digit = load_digits(return_X_y=True)
y = pd.DataFrame({"digit": digit, "parity": digit % 2, "is_large": digit >= 5})
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0)

# %%
# A multi-gate mixture of experts (MMoE) with uncertainty weighting, trained
# with early stopping so that each task's validation score is recorded too.
clf = MultiTaskClassifier(
    architecture="mmoe",
    n_experts=4,
    expert_layer_sizes=(64,),
    loss_weighting="uncertainty",
    early_stopping=True,
    max_iter=30,
    learning_rate_init=3e-3,
    random_state=0,
)
clf.fit(X_train, y_train)
print("epochs:", clf.n_iter_, " test score (mean accuracy):", clf.score(X_test, y_test))

# %%
# Training loss and validation accuracy of each task
# --------------------------------------------------
# Losses are solid (left axis), validation accuracies dashed (right axis), one
# colour per task.
TaskLossCurveDisplay.from_estimator(clf)
plt.show()

# %%
# Loss weights
# ------------
# Uncertainty weighting learns one weight per task from the size of its loss:
# the 10-class digit task, whose loss is the largest, keeps the smallest weight.
TaskWeightCurveDisplay.from_estimator(clf)
plt.show()

# %%
# Expert usage per task
# ---------------------
# Each row is a task's mean gate weight over the test rows (it sums to 1).
GateUsageDisplay.from_estimator(clf, X_test)
plt.show()

# %%
# All three on one figure, with ``ax=``.
fig, axes = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
TaskLossCurveDisplay.from_estimator(clf, ax=axes[0])
TaskWeightCurveDisplay.from_estimator(clf, ax=axes[1])
GateUsageDisplay.from_estimator(clf, X_test, ax=axes[2])
plt.show()

# %%
# The same numbers, without a plot
print({name: round(curve[-1], 3) for name, curve in clf.task_loss_curves_.items()})
print({name: np.round(w, 2).tolist() for name, w in clf.gate_weights(X_test).items()})

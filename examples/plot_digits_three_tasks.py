"""
Three tasks from one network: digit, parity and size
=====================================================

One :class:`~sklearn_mtl.MultiTaskClassifier` learns three targets of
scikit-learn's 8x8 digits at once, and we compare it with three separate
scikit-learn MLPs (one per task) trained for the same number of epochs.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from sklearn_mtl import MultiTaskClassifier

warnings.simplefilter("ignore", ConvergenceWarning)
X, digit = load_digits(return_X_y=True)
X = X / 16.0
y = np.column_stack([digit, digit % 2, digit >= 5]).astype(int)
names = ["digit", "parity", "is_large"]
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

start = time.perf_counter()
mtl = MultiTaskClassifier(hidden_layer_sizes=(64, 64), max_iter=60, random_state=0)
mtl.fit(X_train, y_train)
mtl_seconds = time.perf_counter() - start
mtl_pred = mtl.predict(X_test)

start = time.perf_counter()
single_pred = []
for j in range(3):
    mlp = MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=60, random_state=0)
    single_pred.append(mlp.fit(X_train, y_train[:, j]).predict(X_test))
single_seconds = time.perf_counter() - start

print(f"{'task':<10}{'multi-task':>12}{'one MLP each':>14}")
for j, name in enumerate(names):
    print(
        f"{name:<10}{accuracy_score(y_test[:, j], mtl_pred[:, j]):>12.3f}"
        f"{accuracy_score(y_test[:, j], single_pred[j]):>14.3f}"
    )
print(f"{'fit (s)':<10}{mtl_seconds:>12.2f}{single_seconds:>14.2f}")

# %%
# The per-task training losses are recorded every epoch.
import matplotlib.pyplot as plt  # noqa: E402

for name, curve in mtl.task_loss_curves_.items():
    plt.plot(curve, label=name)
plt.xlabel("epoch")
plt.ylabel("training loss")
plt.legend()
plt.show()

"""Plots of what a multi-task fit did, as scikit-learn Display objects.

Each Display follows scikit-learn's Display API (as
:class:`sklearn.metrics.RocCurveDisplay`): ``Display.from_estimator(est, ...)``
computes what to draw from a fitted estimator (or a ``Pipeline`` ending in
one) and plots it; ``display.plot(ax=...)`` draws again on given axes; the
drawn artists, the axes and the figure are kept as attributes (``lines_``,
``ax_``, ``figure_``, ...).

- :class:`TaskLossCurveDisplay`: each task's training loss per epoch, and its
  validation score per epoch when the model was fitted with early stopping.
- :class:`TaskWeightCurveDisplay`: each task's loss weight per epoch, as an
  adaptive ``loss_weighting`` (uncertainty, DWA, GradNorm, ...) set it.
- :class:`GateUsageDisplay`: how much each task's gate uses each expert, for the
  mixture-of-experts architectures (``"mmoe"``, ``"omoe"``, ``"cgc"``, ``"ple"``).

matplotlib is an optional dependency (``pip install sklearn-mtl[plot]``),
imported only when a Display draws.
"""

from __future__ import annotations

import numpy as np

from ._estimator import fitted_multitask

__all__ = ["TaskLossCurveDisplay", "TaskWeightCurveDisplay", "GateUsageDisplay"]


def check_matplotlib_support(caller: str) -> None:
    """Raise an ImportError naming ``caller`` when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib. Install it with "
            "`pip install matplotlib` (or `pip install sklearn-mtl[plot]`)."
        ) from exc


def _fitted_model(estimator):
    """The fitted sklearn-mtl estimator (last step of a Pipeline), and the steps."""
    return fitted_multitask(estimator, "sklearn_mtl.inspection displays")


def _axes(display, ax):
    """``ax``, or the axes of a new figure; matplotlib is imported here only."""
    check_matplotlib_support(f"{type(display).__name__}.plot")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax, ax.figure


def _plot_curves(ax, curves, line_kwargs, **defaults):
    """One line per task, labelled with its name; returns ``{task: Line2D}``."""
    lines = {}
    for name, values in curves.items():
        epochs = np.arange(1, len(values) + 1)
        kwargs = {"label": str(name), **defaults, **(line_kwargs or {})}
        (lines[name],) = ax.plot(epochs, np.asarray(values, dtype=float), **kwargs)
    return lines


class TaskLossCurveDisplay:
    """Each task's training loss (and validation score) per epoch.

    Use :meth:`from_estimator` to build it from a fitted model; the constructor
    takes curves already computed.

    Parameters
    ----------
    task_loss_curves : dict of str to list of float
        Each task's training loss per epoch (``estimator.task_loss_curves_``).
    task_validation_scores : dict of str to list of float, default=None
        Each task's validation score per epoch
        (``estimator.task_validation_scores_``, with early stopping); drawn
        dashed on a second y axis, in the colour of the task's loss.
    estimator_name : str, default=None
        Name of the estimator, used in the title.

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        The training-loss line of each task.
    validation_lines_ : dict of str to matplotlib Line2D, or None
        The validation-score line of each task, or None without scores.
    ax_ : matplotlib Axes
        Axes of the training losses.
    validation_ax_ : matplotlib Axes or None
        Twin axes (same epochs) of the validation scores, or None.
    figure_ : matplotlib Figure
        Figure of the axes.

    See Also
    --------
    TaskWeightCurveDisplay : each task's loss weight per epoch.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskClassifier
    >>> from sklearn_mtl.inspection import TaskLossCurveDisplay
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 3))
    >>> y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0])
    >>> clf = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=5,
    ...                           random_state=0).fit(X, y)
    >>> display = TaskLossCurveDisplay.from_estimator(clf)
    >>> sorted(display.lines_)
    ['task_0', 'task_1']
    >>> display.lines_["task_0"].get_ydata().tolist() == clf.task_loss_curves_["task_0"]
    True
    """

    def __init__(
        self, *, task_loss_curves, task_validation_scores=None, estimator_name=None
    ):
        self.task_loss_curves = task_loss_curves
        self.task_validation_scores = task_validation_scores
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, line_kwargs=None, validation_line_kwargs=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        line_kwargs : dict, default=None
            Keyword arguments of ``ax.plot`` for the training-loss lines.
        validation_line_kwargs : dict, default=None
            Keyword arguments of ``ax.plot`` for the validation-score lines.

        Returns
        -------
        display : TaskLossCurveDisplay
            The display, with the artists drawn.
        """
        ax, figure = _axes(self, ax)
        self.lines_ = _plot_curves(ax, self.task_loss_curves, line_kwargs)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        self.validation_lines_ = self.validation_ax_ = None
        handles = list(self.lines_.values())
        if self.task_validation_scores is not None:
            self.validation_ax_ = ax.twinx()
            self.validation_lines_ = {}
            for name, values in self.task_validation_scores.items():
                color = self.lines_[name].get_color() if name in self.lines_ else None
                kwargs = {"linestyle": "--", "color": color}
                self.validation_lines_.update(
                    _plot_curves(
                        self.validation_ax_,
                        {name: values},
                        validation_line_kwargs,
                        **kwargs,
                    )
                )
                self.validation_lines_[name].set_label(f"{name} (validation)")
            self.validation_ax_.set_ylabel("validation score (accuracy or R2)")
            handles += list(self.validation_lines_.values())
        ax.legend(handles=handles, labels=[h.get_label() for h in handles])
        if self.estimator_name is not None:
            ax.set_title(self.estimator_name)
        self.ax_, self.figure_ = ax, figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        ax=None,
        name=None,
        line_kwargs=None,
        validation_line_kwargs=None,
    ):
        """Plot the per-task curves of a fitted estimator.

        Parameters
        ----------
        estimator : fitted sklearn-mtl estimator, or Pipeline ending in one
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        name : str, default=None
            Title of the plot; the estimator's class name when None.
        line_kwargs, validation_line_kwargs : dict, default=None
            See :meth:`plot`.

        Returns
        -------
        display : TaskLossCurveDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        model, _ = _fitted_model(estimator)
        display = cls(
            task_loss_curves=model.task_loss_curves_,
            task_validation_scores=getattr(model, "task_validation_scores_", None),
            estimator_name=type(model).__name__ if name is None else name,
        )
        return display.plot(
            ax=ax,
            line_kwargs=line_kwargs,
            validation_line_kwargs=validation_line_kwargs,
        )


class TaskWeightCurveDisplay:
    """Each task's loss weight per epoch.

    With an adaptive ``loss_weighting`` (``"uncertainty"``, ``"dwa"``,
    ``"gradnorm"``, ``"famo"``, ...) the weights move during training; with
    ``"static"`` they are the constant ``task_weights``.

    Parameters
    ----------
    task_weight_curves : dict of str to list of float
        Each task's mean loss weight per epoch (``estimator.task_weight_curves_``).
    loss_weighting : str, default=None
        Name of the strategy, shown in the title.

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        The weight line of each task.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    TaskLossCurveDisplay : each task's training loss per epoch.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskClassifier
    >>> from sklearn_mtl.inspection import TaskWeightCurveDisplay
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 3))
    >>> y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0])
    >>> clf = MultiTaskClassifier(hidden_layer_sizes=(8,), max_iter=5,
    ...                           loss_weighting="dwa", random_state=0).fit(X, y)
    >>> display = TaskWeightCurveDisplay.from_estimator(clf)
    >>> len(display.lines_["task_1"].get_xdata())
    5
    """

    def __init__(self, *, task_weight_curves, loss_weighting=None):
        self.task_weight_curves = task_weight_curves
        self.loss_weighting = loss_weighting

    def plot(self, ax=None, *, line_kwargs=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        line_kwargs : dict, default=None
            Keyword arguments of ``ax.plot``.

        Returns
        -------
        display : TaskWeightCurveDisplay
        """
        ax, figure = _axes(self, ax)
        self.lines_ = _plot_curves(ax, self.task_weight_curves, line_kwargs)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss weight")
        ax.legend()
        if self.loss_weighting is not None:
            ax.set_title(f"loss_weighting={self.loss_weighting!r}")
        self.ax_, self.figure_ = ax, figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, line_kwargs=None):
        """Plot the per-task loss weights of a fitted estimator.

        Parameters
        ----------
        estimator : fitted sklearn-mtl estimator, or Pipeline ending in one
        ax : matplotlib Axes, default=None
        line_kwargs : dict, default=None
            Keyword arguments of ``ax.plot``.

        Returns
        -------
        display : TaskWeightCurveDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        model, _ = _fitted_model(estimator)
        display = cls(
            task_weight_curves=model.task_weight_curves_,
            loss_weighting=model._built("loss_weighting"),
        )
        return display.plot(ax=ax, line_kwargs=line_kwargs)


def _expert_labels(model, n_experts: int) -> list[str]:
    """Names of the gate columns: shared experts first, then the task's own."""
    if model._built("architecture") in ("cgc", "ple"):
        n_shared = model._built("n_shared_experts")
        return [f"shared {i}" for i in range(n_shared)] + [
            f"own {i}" for i in range(n_experts - n_shared)
        ]
    return [f"expert {i}" for i in range(n_experts)]


class GateUsageDisplay:
    """Mean gate weight of each expert, per task: a heatmap, tasks x experts.

    For ``architecture="mmoe"`` (and ``"omoe"``, one gate shared by every task)
    the columns are the experts; for ``"cgc"`` and ``"ple"`` they are the last
    level's shared experts, then the task's own experts. Each row sums to 1.

    Parameters
    ----------
    gate_weights : dict of str to ndarray of shape (n_gate_experts,)
        Each task's mean gate weights (``estimator.gate_weights(X)``).
    expert_labels : list of str, default=None
        Names of the columns; ``"expert <i>"`` when None.

    Attributes
    ----------
    im_ : matplotlib AxesImage
        The heatmap; its array is ``(n_tasks, n_gate_experts)``, tasks in order.
    text_ : ndarray of matplotlib Text, shape (n_tasks, n_gate_experts)
        The value written in each cell.
    colorbar_ : matplotlib Colorbar
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskClassifier
    >>> from sklearn_mtl.inspection import GateUsageDisplay
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 3))
    >>> y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0])
    >>> clf = MultiTaskClassifier(architecture="mmoe", n_experts=3, max_iter=5,
    ...                           random_state=0).fit(X, y)
    >>> display = GateUsageDisplay.from_estimator(clf, X)
    >>> display.im_.get_array().shape
    (2, 3)
    """

    def __init__(self, *, gate_weights, expert_labels=None):
        self.gate_weights = gate_weights
        self.expert_labels = expert_labels

    def plot(self, ax=None, *, cmap="viridis", values_format=".2f", colorbar=True):
        """Draw the heatmap.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        cmap : str or matplotlib Colormap, default="viridis"
        values_format : str, default=".2f"
            Format of the values written in the cells.
        colorbar : bool, default=True
            Whether to add a colorbar.

        Returns
        -------
        display : GateUsageDisplay
        """
        ax, figure = _axes(self, ax)
        names = list(self.gate_weights)
        weights = np.vstack([np.asarray(self.gate_weights[n], float) for n in names])
        n_tasks, n_experts = weights.shape
        labels = self.expert_labels or [f"expert {i}" for i in range(n_experts)]
        if len(labels) != n_experts:
            raise ValueError(
                f"expert_labels has {len(labels)} names but the gates have "
                f"{n_experts} experts."
            )
        self.im_ = ax.imshow(weights, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
        self.colorbar_ = figure.colorbar(self.im_, ax=ax) if colorbar else None
        text = np.empty((n_tasks, n_experts), dtype=object)
        cmap_mid = 0.5
        for i in range(n_tasks):
            for j in range(n_experts):
                color = "black" if weights[i, j] > cmap_mid else "white"
                text[i, j] = ax.text(
                    j,
                    i,
                    format(weights[i, j], values_format),
                    ha="center",
                    va="center",
                    color=color,
                )
        self.text_ = text
        ax.set_xticks(np.arange(n_experts), labels=labels)
        ax.set_yticks(np.arange(n_tasks), labels=[str(n) for n in names])
        ax.set_xlabel("expert")
        ax.set_ylabel("task")
        ax.set_title("mean gate weight")
        self.ax_, self.figure_ = ax, figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        *,
        ax=None,
        cmap="viridis",
        values_format=".2f",
        colorbar=True,
    ):
        """Plot the mean gate weights of a fitted mixture-of-experts model on ``X``.

        Parameters
        ----------
        estimator : fitted sklearn-mtl estimator, or Pipeline ending in one
            With ``architecture`` one of ``"mmoe"``, ``"omoe"``, ``"cgc"``,
            ``"ple"``; any other raises a ValueError.
        X : array-like of shape (n_samples, n_features)
            Rows on which the gates are averaged (transformed by the Pipeline's
            steps first).
        ax, cmap, values_format, colorbar
            See :meth:`plot`.

        Returns
        -------
        display : GateUsageDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        model, transforms = _fitted_model(estimator)
        for transform in transforms:
            X = transform.transform(X)
        gates = model.gate_weights(X)
        n_experts = len(next(iter(gates.values())))
        display = cls(
            gate_weights=gates, expert_labels=_expert_labels(model, n_experts)
        )
        return display.plot(
            ax=ax, cmap=cmap, values_format=values_format, colorbar=colorbar
        )

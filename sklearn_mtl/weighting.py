"""Loss-balancing strategies: per-task losses in, one update out.

Every strategy is a :class:`torch.nn.Module` (so learnable weights, such as the
log-variances of uncertainty weighting, are trained by the same optimizer) with
one method, :meth:`LossWeighting.backward`, that receives the per-task losses of
a batch, calls ``backward`` on whatever combination it chooses, and returns the
combined loss (for the history) and the task weights it used.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LossWeighting", "StaticWeighting"]


class LossWeighting(nn.Module):
    """Base class of loss-balancing strategies.

    Subclasses implement :meth:`backward`. ``n_tasks`` is the number of tasks.
    """

    def __init__(self, n_tasks: int):
        super().__init__()
        self.n_tasks = n_tasks

    def backward(self, losses: torch.Tensor, shared=None):
        """Back-propagate a combination of ``losses`` (shape ``(n_tasks,)``).

        Parameters
        ----------
        losses : torch.Tensor of shape (n_tasks,)
            The per-task losses of the batch, still attached to the graph.
        shared : torch.Tensor or None
            The shared representation, for strategies that balance gradients.

        Returns
        -------
        loss : torch.Tensor
            Scalar combined loss (detached), recorded in the history.
        weights : torch.Tensor of shape (n_tasks,)
            The weight each task's loss received (detached).
        """
        raise NotImplementedError

    def on_epoch_end(self, task_losses: torch.Tensor) -> None:
        """Hook called with the epoch's per-task mean losses (for DWA and the like)."""


class StaticWeighting(LossWeighting):
    """Fixed task weights: the loss is ``sum_t weight_t * loss_t``.

    Parameters
    ----------
    weights : sequence of float
        One non-negative weight per task.

    Examples
    --------
    >>> import torch
    >>> w = StaticWeighting([1.0, 0.5])
    >>> losses = torch.tensor([2.0, 4.0], requires_grad=True)
    >>> loss, weights = w.backward(losses)
    >>> float(loss), losses.grad.tolist()
    (4.0, [1.0, 0.5])
    """

    def __init__(self, weights):
        super().__init__(len(weights))
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32))

    def backward(self, losses, shared=None):
        loss = (self.weights * losses).sum()
        loss.backward()
        return loss.detach(), self.weights

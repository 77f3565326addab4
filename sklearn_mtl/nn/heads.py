"""Task heads: every task's output layer (and tower), fused into batched matmuls.

Pure torch: no numpy, no scikit-learn.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import GroupedLinear, make_mlp


class TaskHeads(nn.Module):
    """One head per task, fused so the cost does not grow with a Python loop.

    With no hidden head layers all tasks share one ``nn.Linear`` whose output is
    the concatenation of every task's logits. With hidden layers each task has
    its own tower, computed for all tasks at once by :class:`GroupedLinear`.

    Parameters
    ----------
    n_in : int
        Width of the representation the heads read.
    output_widths : list of int
        Output width of each task (1 for binary and regression, n_classes for
        multiclass).
    layer_sizes : tuple of int
        Hidden layers of each task's tower.
    activation : str
        Activation of the towers' hidden layers.
    dropout : float
        Dropout after the towers' hidden layers.
    per_task_input : bool
        If True the input is ``(n_tasks, rows, n_in)`` (one representation per
        task, as from MMoE); else ``(rows, n_in)``, shared by all tasks.
    n_members : int
        Ensemble members (:class:`~sklearn_mtl.nn.backbones.EnsembleNetwork`):
        the rows are ``n_members`` blocks of ``n`` rows (member-major) and each
        member has its own heads. The output is ``(rows, sum(output_widths))``.

    Examples
    --------
    >>> TaskHeads(8, [1, 3, 1])(torch.zeros(4, 8)).shape
    torch.Size([4, 5])
    >>> TaskHeads(8, [1, 3], n_members=2)(torch.zeros(6, 8)).shape
    torch.Size([6, 4])
    """

    def __init__(
        self,
        n_in,
        output_widths,
        layer_sizes=(),
        activation="relu",
        dropout=0.0,
        per_task_input=False,
        n_members=1,
    ):
        super().__init__()
        self.n_tasks = len(output_widths)
        self.per_task_input = per_task_input
        self.layer_sizes = tuple(layer_sizes)
        self.n_members = k = int(n_members)
        self.widths = widths = [int(w) for w in output_widths]
        if not self.layer_sizes and not per_task_input:
            # One fused linear layer (per member).
            self.out = (
                nn.Linear(n_in, sum(widths))
                if k == 1
                else GroupedLinear(k, n_in, sum(widths))
            )
            self.towers = None
            return
        T = self.n_tasks
        self.towers, n_in = make_mlp(
            n_in, self.layer_sizes, activation, dropout, n_groups=T * k
        )
        self.out = GroupedLinear(T * k, n_in, max(widths))
        # Columns of the (n, T * max_width) output that hold real task outputs.
        cols = [t * max(widths) + c for t, w in enumerate(widths) for c in range(w)]
        self.register_buffer("columns", torch.tensor(cols, dtype=torch.long))

    @torch.no_grad()
    def set_output_bias(self, values) -> None:
        """Start the outputs at ``values``: one per output column, in task order.

        Every member's output layer gets the same bias; the weights are left
        as initialised, so the first forward pass predicts about ``values``.

        Examples
        --------
        >>> heads = TaskHeads(8, [1, 2])
        >>> heads.set_output_bias([0.5, -1.0, 1.0])
        >>> heads(torch.zeros(1, 8))
        tensor([[ 0.5000, -1.0000,  1.0000]], grad_fn=<AddmmBackward0>)
        """
        values = torch.as_tensor(values, dtype=self.out.bias.dtype)
        widths = self.widths
        if values.shape != (sum(widths),):
            raise ValueError(
                f"set_output_bias needs {sum(widths)} values (one per output "
                f"column), got shape {tuple(values.shape)}."
            )
        bias = self.out.bias
        if self.towers is None:  # (W,) or, per member, (k, 1, W)
            bias.copy_(values.expand_as(bias))
            return
        k, start = self.n_members, 0
        for t, w in enumerate(widths):  # (T * k, 1, max_width), task-major
            bias[t * k : (t + 1) * k, 0, :w] = values[start : start + w]
            start += w

    def forward(self, h):
        k = self.n_members
        if self.towers is None:
            if k == 1:
                return self.out(h)
            z = self.out(h.reshape(k, h.shape[0] // k, h.shape[1]))  # (k, n, W)
            return z.reshape(h.shape[0], z.shape[-1])
        T = self.n_tasks
        if not self.per_task_input:
            h = h.unsqueeze(0).expand(T, *h.shape)
        rows = h.shape[1]
        n = rows // k
        z = self.out(self.towers(h.reshape(T * k, n, h.shape[-1])))  # (T*k, n, w)
        # (T, k, n, w) -> (k, n, T, w): member-major rows, task-major columns.
        z = z.reshape(T, k, n, z.shape[-1]).permute(1, 2, 0, 3)
        return z.reshape(rows, -1)[:, self.columns]

"""Pure torch modules: trunks, heads, the multi-task network (no numpy, no sklearn)."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}


def make_mlp(n_in: int, layer_sizes, activation: str = "relu", dropout: float = 0.0):
    """A stack of Linear -> activation (-> Dropout) layers; returns (module, n_out)."""
    layers: list[nn.Module] = []
    for size in layer_sizes:
        layers.append(nn.Linear(n_in, size))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = size
    return nn.Sequential(*layers), n_in


class GroupedLinear(nn.Module):
    """``n_groups`` independent linear layers applied in one batched matmul.

    Input ``(n_groups, n, in_features)`` -> output ``(n_groups, n, out_features)``.
    Initialised like ``nn.Linear`` (uniform in +-1/sqrt(in_features)).
    """

    def __init__(self, n_groups: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(
            torch.empty(n_groups, in_features, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(
            torch.empty(n_groups, 1, out_features).uniform_(-bound, bound)
        )

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)


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
    per_task_input : bool
        If True the input is ``(n_tasks, n, n_in)`` (one representation per
        task, as from MMoE); else ``(n, n_in)``, shared by all tasks.
    """

    def __init__(
        self,
        n_in,
        output_widths,
        layer_sizes=(),
        activation="relu",
        dropout=0.0,
        per_task_input=False,
    ):
        super().__init__()
        self.n_tasks = len(output_widths)
        self.per_task_input = per_task_input
        self.layer_sizes = tuple(layer_sizes)
        widths = list(output_widths)
        if not self.layer_sizes and not per_task_input:
            self.out = nn.Linear(n_in, sum(widths))
            self.towers = None
            return
        T = self.n_tasks
        layers: list[nn.Module] = []
        for size in self.layer_sizes:
            layers.append(GroupedLinear(T, n_in, size))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            n_in = size
        self.towers = nn.Sequential(*layers)
        self.out = GroupedLinear(T, n_in, max(widths))
        # Columns of the (n, T * max_width) output that hold real task outputs.
        cols = [t * max(widths) + k for t, w in enumerate(widths) for k in range(w)]
        self.register_buffer("columns", torch.tensor(cols, dtype=torch.long))

    def forward(self, h):
        if self.towers is None:
            return self.out(h)
        if not self.per_task_input:
            h = h.unsqueeze(0).expand(self.n_tasks, *h.shape)
        z = self.out(self.towers(h))  # (T, n, max_width)
        return z.permute(1, 0, 2).reshape(z.shape[1], -1)[:, self.columns]


class MultiTaskNetwork(nn.Module):
    """Hard parameter sharing: a shared MLP trunk and one head per task.

    The output is one tensor ``(n, sum(output_widths))``: task ``t`` owns the
    columns ``offsets[t]:offsets[t + 1]``.
    """

    def __init__(
        self,
        n_features: int,
        output_widths,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        head_layer_sizes=(),
    ):
        super().__init__()
        self.trunk, n_out = make_mlp(
            n_features, hidden_layer_sizes, activation, dropout
        )
        self.heads = TaskHeads(
            n_out, output_widths, head_layer_sizes, activation, dropout
        )

    def forward(self, X):
        return self.heads(self.trunk(X))

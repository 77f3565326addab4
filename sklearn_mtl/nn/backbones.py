"""Backbones: MLP stacks, grouped (batched) linear layers, the TabM-style ensemble.

Pure torch: no numpy, no scikit-learn.
"""

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


class Dropout(nn.Dropout):
    """``nn.Dropout`` drawing its masks from ``generator`` when one is set.

    The engine sets a generator per fit, so fits in parallel threads each stay
    reproducible; with ``generator=None`` it is exactly ``nn.Dropout``.
    Input and output: any shape.
    """

    generator = None

    def forward(self, x):
        if self.generator is None or not self.training or self.p == 0:
            return super().forward(x)
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * keep / (1 - self.p)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("generator", None)  # a fit's generator is not part of the model
        return state


class SparseInputLinear(nn.Module):
    """A first linear layer that also reads sparse batches.

    ``X @ weight + bias`` with ``weight`` stored as ``(in_features,
    out_features)``, the transpose of ``nn.Linear``'s, so that a sparse batch
    (:class:`sklearn_mtl._sparse.SparseBatch`) is one
    ``torch.nn.functional.embedding_bag``: each row sums the weight rows of its
    non-zero columns, scaled by their values. Work and memory grow with the
    non-zeros, not with ``in_features``; the gradient of ``weight`` is
    computed for every entry, as for ``nn.Linear``. A dense ``X`` (prediction
    on dense data, an ONNX export) is a plain ``addmm``. Initialised as
    ``nn.Linear(in_features, out_features)``, from the same random draws.

    Examples
    --------
    >>> layer = SparseInputLinear(4, 2)
    >>> layer(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        linear = nn.Linear(in_features, out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(linear.weight.detach().t().contiguous())
        self.bias = nn.Parameter(linear.bias.detach().clone())

    def forward(self, x):
        if isinstance(x, torch.Tensor):
            return torch.addmm(self.bias, x, self.weight)
        if x.col.numel() == 0:  # no stored value: every row is the bias
            return self.bias.expand(x.shape[0], -1) + 0.0
        out = torch.nn.functional.embedding_bag(
            x.col,
            self.weight,
            x.offsets,
            mode="sum",
            per_sample_weights=x.val.to(self.weight.dtype),
        )
        return out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def make_mlp(
    n_in: int,
    layer_sizes,
    activation="relu",
    dropout=0.0,
    n_groups=None,
    sparse_input=False,
):
    """Linear -> activation (-> Dropout) layers; returns ``(module, n_out)``.

    With ``n_groups`` the layers are :class:`GroupedLinear`: ``n_groups``
    independent MLPs on ``(n_groups, n, n_in)``, one batched matmul a layer.
    With ``sparse_input`` the first layer is a :class:`SparseInputLinear`.

    Examples
    --------
    >>> mlp, n_out = make_mlp(4, (8, 3))
    >>> mlp(torch.zeros(2, 4)).shape, n_out
    (torch.Size([2, 3]), 3)
    """
    layers: list[nn.Module] = []
    for i, size in enumerate(layer_sizes):
        if sparse_input and i == 0:
            layers.append(SparseInputLinear(n_in, size))
        elif n_groups is None:
            layers.append(nn.Linear(n_in, size))
        else:
            layers.append(GroupedLinear(n_groups, n_in, size))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(Dropout(dropout))
        n_in = size
    return nn.Sequential(*layers), n_in


class GroupedLinear(nn.Module):
    """``n_groups`` independent linear layers applied in one batched matmul.

    Input ``(n_groups, n, in_features)`` -> output ``(n_groups, n, out_features)``.
    Initialised like ``nn.Linear`` (uniform in +-1/sqrt(in_features)).

    Examples
    --------
    >>> GroupedLinear(3, 4, 2)(torch.zeros(3, 5, 4)).shape
    torch.Size([3, 5, 2])
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


def _log_mean_exp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def average_members(outputs: torch.Tensor, kinds, widths) -> torch.Tensor:
    """Average ``(k, n, W)`` member outputs into ``(n, W)`` fused outputs.

    Probabilities are averaged, not logits: a binary task's output becomes the
    logit of the mean probability, a multiclass task's the log of the mean
    class probabilities (valid logits: their softmax is the mean); a
    regression task's output is the mean.

    Examples
    --------
    >>> z = torch.tensor([[[2.0]], [[-2.0]]])  # two members, one row, binary
    >>> float(average_members(z, ["binary"], [1]))  # mean probability 0.5
    0.0
    """
    parts = []
    start = 0
    for kind, width in zip(kinds, widths):
        z = outputs[:, :, start : start + width]
        if kind == "binary":
            log_p = _log_mean_exp(nn.functional.logsigmoid(z))
            log_q = _log_mean_exp(nn.functional.logsigmoid(-z))
            parts.append(log_p - log_q)
        elif kind == "multiclass":
            parts.append(_log_mean_exp(torch.log_softmax(z, dim=-1)))
        else:
            parts.append(z.mean(dim=0))
        start += width
    return torch.cat(parts, dim=1)


class EnsembleNetwork(nn.Module):
    """A parameter-efficient ensemble of ``k`` members around one network.

    TabM-mini (Gorishniy et al., ICLR 2025): every member sees the features
    scaled by its own learned vector (:class:`tabm.ElementwiseAffine`,
    initialised with random signs), runs through the shared ``body`` (its
    ``k * n`` rows batched, member-major), and reads them with its own heads
    (the body's heads are built with ``n_members=k``).

    In training mode the output is ``(k, n, W)``: each member's outputs, so the
    loss is averaged over members. In eval mode it is ``(n, W)``, the members
    averaged in probability space (:func:`average_members`).

    Examples
    --------
    >>> from sklearn_mtl.nn.architectures import SharedBottomNetwork
    >>> body = SharedBottomNetwork(3, [1, 1], (8,), n_members=4)
    >>> net = EnsembleNetwork(body, 3, 4, ["binary", "regression"], [1, 1])
    >>> net(torch.zeros(5, 3)).shape
    torch.Size([4, 5, 2])
    >>> net.eval()(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, body: nn.Module, n_in: int, k: int, kinds, widths):
        import tabm

        super().__init__()
        self.body = body
        self.k = int(k)
        self.kinds = list(kinds)
        self.widths = [int(w) for w in widths]
        self.adapter = tabm.ElementwiseAffine(
            (self.k, n_in), bias=False, scaling_init="random-signs"
        )

    def _members(self, X):
        """``(n, d)`` -> ``(k * n, d)``: each member's scaled copy, member-major."""
        x = self.adapter(X.unsqueeze(1).expand(X.shape[0], self.k, X.shape[1]))
        return x.transpose(0, 1).reshape(self.k * X.shape[0], X.shape[1])

    def gates(self, X):
        g = self.body.gates(self._members(X))  # (G, k * n, E)
        return g.reshape(g.shape[0], self.k, X.shape[0], g.shape[-1]).mean(dim=1)

    def forward(self, X, return_shared=False):
        out = self.body(self._members(X), return_shared=return_shared)
        out, shared = out if return_shared else (out, None)
        out = out.reshape(self.k, X.shape[0], out.shape[-1])
        if not self.training:
            out = average_members(out, self.kinds, self.widths)
        return (out, shared) if return_shared else out

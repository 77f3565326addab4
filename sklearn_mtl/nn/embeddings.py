"""Input embeddings: numeric features (piecewise-linear, periodic), categories.

The encoded ``X`` the network reads is one float tensor whose columns are, in
order: the numeric features, the missing-value indicators, and the category
codes of the categorical features (integers stored as floats; 0 is the
"unknown" category, 1 the "missing" one). :class:`TabularEmbedding` turns it
into one flat feature vector per row.

Pure torch: no numpy, no scikit-learn.
"""

from __future__ import annotations

import torch
from torch import nn

#: ``num_embeddings`` values and what they build.
NUM_EMBEDDINGS = ("piecewise_linear", "piecewise_linear_tree", "periodic")


def numeric_embedding(kind: str, n_features: int, d_embedding: int, bins=None):
    """The ``rtdl_num_embeddings`` module of ``kind``: ``(n, f)`` -> ``(n, f, d)``.

    ``"piecewise_linear"`` and ``"piecewise_linear_tree"`` are
    :class:`rtdl_num_embeddings.PiecewiseLinearEmbeddings` (version "B", as in
    TabM) on the given ``bins`` (one 1-D tensor of edges per feature; the two
    names differ only in how the bins were computed); ``"periodic"`` is
    :class:`rtdl_num_embeddings.PeriodicEmbeddings` (the "lite" variant).

    Examples
    --------
    >>> m = numeric_embedding("periodic", 3, 8)
    >>> m(torch.zeros(5, 3)).shape
    torch.Size([5, 3, 8])
    """
    import rtdl_num_embeddings as rtdl

    if kind in ("piecewise_linear", "piecewise_linear_tree"):
        return rtdl.PiecewiseLinearEmbeddings(
            bins, d_embedding, activation=False, version="B"
        )
    if kind == "periodic":
        return rtdl.PeriodicEmbeddings(n_features, d_embedding, lite=True)
    raise ValueError(
        f"Unknown numeric embedding {kind!r}; use one of {NUM_EMBEDDINGS}."
    )


class CategoricalEmbedding(nn.Module):
    """A learned vector per category of every categorical feature.

    One table for all features (``offsets`` shift each feature's codes into its
    rows), so all features are looked up in one call.

    Input: ``(n, n_features)`` integer codes (any dtype; code ``c`` of feature
    ``j`` must be in ``[0, cardinalities[j])``). Output: ``(n, n_features, d)``.

    Examples
    --------
    >>> m = CategoricalEmbedding([3, 5], 4)
    >>> m(torch.tensor([[0.0, 4.0], [2.0, 1.0]])).shape
    torch.Size([2, 2, 4])
    """

    def __init__(self, cardinalities, d_embedding: int):
        super().__init__()
        cards = [int(c) for c in cardinalities]
        starts = [sum(cards[:j]) for j in range(len(cards))]
        self.register_buffer("offsets", torch.tensor(starts, dtype=torch.long))
        self.table = nn.Embedding(sum(cards), d_embedding)
        nn.init.uniform_(self.table.weight, -1.0, 1.0)

    def forward(self, codes):
        return self.table(codes.long() + self.offsets)


class TabularEmbedding(nn.Module):
    """The encoded tabular ``X`` -> one flat feature vector per row.

    Parameters
    ----------
    n_numeric : int
        Leading numeric columns. Embedded by ``numeric`` if given, else passed
        through.
    n_passthrough : int
        Following columns passed through as they are (missing indicators).
    cardinalities : list of int
        Number of codes of each trailing categorical column (with the unknown
        and missing codes); each gets a learned ``d_embedding`` vector per code.
    numeric : nn.Module or None
        A numeric embedding ``(n, n_numeric)`` -> ``(n, n_numeric, d)``, e.g.
        from :func:`numeric_embedding`.
    d_embedding : int
        Size of every categorical embedding.

    Examples
    --------
    >>> m = TabularEmbedding(2, 1, [4], None, 3)
    >>> X = torch.tensor([[0.5, -1.0, 0.0, 2.0]])
    >>> m(X).shape, m.n_out
    (torch.Size([1, 6]), 6)
    """

    def __init__(
        self,
        n_numeric: int,
        n_passthrough: int,
        cardinalities,
        numeric: nn.Module | None = None,
        d_embedding: int = 8,
    ):
        super().__init__()
        self.n_numeric = int(n_numeric)
        self.n_plain = self.n_numeric + int(n_passthrough)
        self.numeric = numeric
        self.categorical = (
            CategoricalEmbedding(cardinalities, d_embedding) if cardinalities else None
        )
        n_out = int(n_passthrough) + len(cardinalities) * d_embedding
        if numeric is None:
            n_out += self.n_numeric
        elif self.n_numeric:
            n_out += self.n_numeric * int(numeric(torch.zeros(1, n_numeric)).shape[-1])
        self.n_out = n_out

    def forward(self, X):
        parts = []
        if self.numeric is not None and self.n_numeric:
            parts.append(self.numeric(X[:, : self.n_numeric]).flatten(1))
            parts.append(X[:, self.n_numeric : self.n_plain])
        else:
            parts.append(X[:, : self.n_plain])
        if self.categorical is not None:
            parts.append(self.categorical(X[:, self.n_plain :]).flatten(1))
        return torch.cat(parts, dim=1)

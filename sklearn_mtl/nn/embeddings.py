"""Input embeddings: numeric features (piecewise-linear, periodic), categories.

The encoded ``X`` the network reads is one float tensor whose columns are, in
order: the numeric features, the missing-value indicators, and the category
codes of the categorical features (integers stored as floats; 0 is the
"unknown" category, 1 the "missing" one). :class:`TabularEmbedding` turns it
into one flat feature vector per row: each categorical feature either one-hot
(:class:`OneHotCategories`) or as a learned vector (:class:`CategoricalEmbedding`).

Pure torch: no numpy, no scikit-learn.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

#: ``num_embeddings`` values and what they build.
NUM_EMBEDDINGS = ("piecewise_linear", "piecewise_linear_tree", "periodic")


# rtdl_num_embeddings' warning for a feature with one bin (two edges).
TWO_EDGES = r"The \d+-th feature has just two bin edges"


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
        with warnings.catch_warnings():
            # A column with two values (a 0/1 flag) or one has one bin: linear,
            # as intended; rtdl warns for each, naming its index in the block.
            warnings.filterwarnings("ignore", message=TWO_EDGES)
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
        # The "unknown" and "missing" codes (0 and 1) start at zero, the init's
        # mean: a category first seen at predict time never trains, nor does
        # "missing" when fit saw no missing value, and a random vector there
        # would move the prediction at random (one-hot sets no column for an
        # unknown category).
        with torch.no_grad():
            reserved = torch.tensor(starts, dtype=torch.long)
            self.table.weight[torch.cat([reserved, reserved + 1])] = 0.0

    def forward(self, codes):
        return self.table(codes.long() + self.offsets)


class OneHotCategories(nn.Module):
    """One-hot indicators of the categorical features, concatenated.

    Code ``c >= 1`` of feature ``j`` (the "missing" code 1 included) sets one
    column of that feature's ``cardinalities[j] - 1`` columns; the reserved
    "unknown" code 0 (a category first seen at predict time) sets none, as
    :class:`~sklearn.preprocessing.OneHotEncoder` with
    ``handle_unknown="ignore"``.

    Input: ``(n, n_features)`` integer codes (any dtype). Output:
    ``(n, sum(cardinalities) - n_features)``.

    Examples
    --------
    >>> m = OneHotCategories([3, 4])
    >>> m(torch.tensor([[2.0, 0.0], [1.0, 3.0]]))
    tensor([[0., 1., 0., 0., 0.],
            [1., 0., 0., 0., 1.]])
    """

    def __init__(self, cardinalities):
        super().__init__()
        widths = [int(c) - 1 for c in cardinalities]
        starts = [sum(widths[:j]) for j in range(len(widths))]
        self.register_buffer("offsets", torch.tensor(starts, dtype=torch.long))
        self.n_out = sum(widths)

    def forward(self, codes):
        # The indicators in the input's float dtype (codes arrive as floats).
        dtype = codes.dtype if codes.is_floating_point() else torch.float32
        codes = codes.long()
        known = codes > 0
        # One column per feature, each in its own range: no two writes collide;
        # an unknown code writes 0 into its feature's first column.
        index = (codes - 1).clamp_min(0) + self.offsets
        out = torch.zeros(codes.shape[0], self.n_out, dtype=dtype, device=codes.device)
        return out.scatter_(1, index, known.to(dtype))


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
        and missing codes); each gets a learned ``d_embedding`` vector per code,
        or one-hot columns where ``one_hot`` says so.
    numeric : nn.Module or None
        A numeric embedding ``(n, n_numeric)`` -> ``(n, n_numeric, d)``, e.g.
        from :func:`numeric_embedding`.
    d_embedding : int
        Size of every categorical embedding.
    one_hot : list of bool or None
        Per categorical column: one-hot (:class:`OneHotCategories`) instead of
        a learned embedding. None: embeddings for all.

    Examples
    --------
    >>> m = TabularEmbedding(2, 1, [4], None, 3)
    >>> X = torch.tensor([[0.5, -1.0, 0.0, 2.0]])
    >>> m(X).shape, m.n_out
    (torch.Size([1, 6]), 6)
    >>> TabularEmbedding(2, 1, [4], None, 3, one_hot=[True])(X)
    tensor([[ 0.5000, -1.0000,  0.0000,  0.0000,  1.0000,  0.0000]])
    """

    def __init__(
        self,
        n_numeric: int,
        n_passthrough: int,
        cardinalities,
        numeric: nn.Module | None = None,
        d_embedding: int = 8,
        one_hot=None,
    ):
        super().__init__()
        self.n_numeric = int(n_numeric)
        self.n_plain = self.n_numeric + int(n_passthrough)
        self.numeric = numeric
        cards = [int(c) for c in cardinalities]
        hot = (
            [bool(h) for h in one_hot] if one_hot is not None else [False] * len(cards)
        )
        if len(hot) != len(cards):
            raise ValueError(
                f"one_hot has {len(hot)} entries for {len(cards)} categorical columns."
            )
        hot_cols = [j for j, h in enumerate(hot) if h]
        emb_cols = [j for j, h in enumerate(hot) if not h]
        # Column selections as slices when they are all the columns (no gather).
        # Not saved: derived from one_hot, and a model saved before one-hot
        # columns existed loads unchanged.
        for name, cols in (("hot_cols", hot_cols), ("emb_cols", emb_cols)):
            self.register_buffer(
                name, torch.tensor(cols, dtype=torch.long), persistent=False
            )
        self._all_hot, self._all_emb = not emb_cols, not hot_cols
        self.one_hot = (
            OneHotCategories([cards[j] for j in hot_cols]) if hot_cols else None
        )
        self.categorical = (
            CategoricalEmbedding([cards[j] for j in emb_cols], d_embedding)
            if emb_cols
            else None
        )
        n_out = int(n_passthrough) + len(emb_cols) * d_embedding
        if self.one_hot is not None:
            n_out += self.one_hot.n_out
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
        codes = X[:, self.n_plain :]
        if self.one_hot is not None:
            hot = codes if self._all_hot else codes[:, self.hot_cols]
            parts.append(self.one_hot(hot))
        if self.categorical is not None:
            emb = codes if self._all_emb else codes[:, self.emb_cols]
            parts.append(self.categorical(emb).flatten(1))
        return torch.cat(parts, dim=1)

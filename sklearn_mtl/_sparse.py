"""Sparse X kept sparse on the device, batch by batch.

A scipy CSR/CSC matrix or array becomes a :class:`SparseRows`: the CSR
structure (``crow``, ``col``, ``val``) as torch tensors on the training device.
Memory grows with the number of non-zeros, never with rows x columns. The
engine's batches (:class:`~sklearn_mtl._engine.TensorBatches`) and inference
(:meth:`~sklearn_mtl._engine.MultiTaskEngine.infer_batches`) read rows through
the two operations a dense tensor offers them, ``X[start:stop]`` and
``X.index_select(0, index)``, which return the rows

- as a :class:`SparseBatch` when the network's first layer reads one
  (``sparse_batches``, set by the engine for a shared bottom's
  :class:`~sklearn_mtl.nn.SparseInputLinear`): work grows with the non-zeros;
- else as a **dense** ``(n_rows, n_features)`` tensor: the network reads
  exactly what it would read from the dense X, so the sparse and dense fits
  agree bit for bit (MMoE's experts and gates, a custom trunk, embeddings all
  read X this way, unchanged).

:meth:`SparseRows.take` returns a smaller :class:`SparseRows` (the validation
split), still sparse. ``docs/benchmarks.md`` compares the first layers.

torch's sparse CSR tensors have no ``index_select`` on rows; the gather below
builds the batch from the CSR arrays with vectorised ops (no loop over rows).
On a GPU the gather works in shapes known on the host (rows x the longest
row's number of values), so a batch never waits for the device (no per-batch
``.item()``); on the CPU, where reading a tensor costs nothing, it gathers
exactly the stored values (faster when a few rows are very long).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "DENSE_BATCH_BYTES",
    "SparseBatch",
    "SparseRows",
    "as_device_tensor",
    "take_rows",
]

#: Largest dense batch built at inference and validation (training batches are
#: ``batch_size`` rows, as the user asked).
DENSE_BATCH_BYTES = 64 * 2**20


class SparseRows:
    """Rows of a CSR matrix on a torch device, gathered per batch.

    Parameters
    ----------
    crow : torch.Tensor of shape (n_rows + 1,), int64
        Row pointers (``indptr``).
    col : torch.Tensor of shape (nnz,), int64
        Column of each stored value (``indices``).
    val : torch.Tensor of shape (nnz,)
        Stored values; their dtype is the dtype of the batches.
    n_features : int
        Number of columns.
    max_row_nnz : int or None, default=None
        Largest number of stored values in a row (an upper bound will do, at
        the cost of larger padded blocks); ``None`` computes it, reading the
        device once.
    padded : bool or None, default=None
        Gather batches in padded blocks whose shapes are known on the host, so
        a batch never waits for the device. ``None``: on every device but the
        CPU.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_array(np.array([[0.0, 2.0], [3.0, 0.0], [0.0, 0.0]]))
    >>> rows = SparseRows.from_scipy(X, dtype=np.float32, device="cpu")
    >>> rows.shape, rows.nnz
    ((3, 2), 2)
    >>> rows[0:2]
    tensor([[0., 2.],
            [3., 0.]])
    >>> rows.take(torch.tensor([1, 2]))[0:2]
    tensor([[3., 0.],
            [0., 0.]])
    """

    def __init__(self, crow, col, val, n_features: int, max_row_nnz=None, padded=None):
        self.crow = crow
        self.col = col
        self.val = val
        self.n_features = int(n_features)
        if max_row_nnz is None:  # one read of the device, here and not per batch
            max_row_nnz = int((crow[1:] - crow[:-1]).max()) if crow.shape[0] > 1 else 0
        self.max_row_nnz = int(max_row_nnz)
        self.padded = val.device.type != "cpu" if padded is None else bool(padded)
        #: Batches as :class:`SparseBatch` (for a network whose first layer reads
        #: them, set by the engine) instead of dense tensors.
        self.sparse_batches = False

    @classmethod
    def from_scipy(cls, X, *, dtype=None, device="cpu") -> SparseRows:
        """A scipy sparse matrix or array (any format) on ``device``."""
        X = X.tocsr()
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()  # one stored value per (row, column), sorted
        values = X.data if dtype is None else X.data.astype(dtype, copy=False)
        indptr = X.indptr.astype(np.int64, copy=False)
        return cls(
            torch.as_tensor(indptr, device=device),
            torch.as_tensor(X.indices.astype(np.int64, copy=False), device=device),
            torch.as_tensor(np.ascontiguousarray(values), device=device),
            X.shape[1],
            max_row_nnz=int(np.diff(indptr).max(initial=0)),
        )

    # ---------------------------------------------------------------- tensor-like
    @property
    def shape(self) -> tuple[int, int]:
        return (self.crow.shape[0] - 1, self.n_features)

    @property
    def nnz(self) -> int:
        return self.val.shape[0]

    @property
    def dtype(self):
        return self.val.dtype

    @property
    def device(self):
        return self.val.device

    def __len__(self) -> int:
        return self.shape[0]

    def batch_rows(self, batch_size: int) -> int:
        """``batch_size``, capped so a dense batch holds ``DENSE_BATCH_BYTES``.

        The padded gather's temporaries (about four int64 index blocks and two
        value blocks of ``max_row_nnz`` per row) count too.
        """
        size = self.val.element_size()
        row_bytes = self.n_features * size
        if self.padded:
            row_bytes += self.max_row_nnz * (32 + 2 * size)
        return max(1, min(int(batch_size), DENSE_BATCH_BYTES // max(row_bytes, 1)))

    def __getitem__(self, rows):
        """Rows ``start:stop`` (a slice with step 1): a dense tensor, or a
        :class:`SparseBatch` with ``sparse_batches``."""
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("SparseRows takes a row slice start:stop.")
        start, stop, _ = rows.indices(self.shape[0])
        stop = max(start, stop)
        if self.padded:
            return self.index_select(0, torch.arange(start, stop, device=self.device))
        crow = self.crow[start : stop + 1]
        lo, hi = int(crow[0]), int(crow[-1])  # free on the CPU
        if self.sparse_batches:
            return SparseBatch(
                self.col[lo:hi], self.val[lo:hi], crow[:-1] - lo, self.n_features
            )
        counts = crow[1:] - crow[:-1]
        local = torch.repeat_interleave(
            torch.arange(stop - start, device=self.device), counts, output_size=hi - lo
        )
        return self._dense(stop - start, local, self.col[lo:hi], self.val[lo:hi])

    def index_select(self, dim: int, index):
        """Rows at ``index`` (as ``Tensor.index_select(0, ...)``): a dense
        tensor, or a :class:`SparseBatch` with ``sparse_batches``."""
        if dim != 0:
            raise ValueError("SparseRows selects rows only (dim=0).")
        n_rows = index.shape[0]
        if not self.padded:
            pos, counts, offsets = self._gather(index)
            if self.sparse_batches:
                return SparseBatch(
                    self.col[pos], self.val[pos], offsets, self.n_features
                )
            rows = torch.repeat_interleave(
                torch.arange(n_rows, device=self.device),
                counts,
                output_size=pos.shape[0],
            )
            return self._dense(n_rows, rows, self.col[pos], self.val[pos])
        if self.nnz == 0:  # no value to gather (a shape known on the host)
            if self.sparse_batches:
                empty = self.col.new_zeros((n_rows, 0))
                values = self.val.new_zeros(empty.shape)
                return SparseBatch(empty, values, None, self.n_features)
            return self._dense(n_rows, self.col, self.col, self.val)
        pos, stored = self._padded_positions(index)
        # Python scalar fills: a CPU tensor here would be copied to the device,
        # and that copy waits for the GPU.
        if self.sparse_batches:  # a (rows, max_row_nnz) block, padding weighs 0
            val = self.val[pos].masked_fill(~stored, 0)
            return SparseBatch(self.col[pos], val, None, self.n_features)
        # Dense: the padding rewrites a row's last value, only empty rows are 0.
        val = self.val[pos].masked_fill(~stored[:, :1], 0)
        rows = torch.arange(n_rows, device=self.device)[:, None]
        return self._dense(n_rows, rows, self.col[pos], val)

    def take(self, index) -> SparseRows:
        """Rows at ``index`` (a long tensor), still sparse.

        Its size is the rows' number of stored values, so this reads the device
        once (the validation split, once per fit).
        """
        pos, counts, offsets = self._gather(index)
        crow = torch.cat([offsets, pos.new_full((1,), pos.shape[0])])
        max_row_nnz = int(counts.max()) if counts.shape[0] else 0
        return SparseRows(
            crow,
            self.col[pos],
            self.val[pos],
            self.n_features,
            max_row_nnz,
            self.padded,
        )

    # ---------------------------------------------------------------- internals
    def _gather(self, index):
        """Positions in ``col``/``val`` of the rows' values, one row after another.

        Also each row's number of values and its first position in that
        sequence (the CSR ``crow`` of the rows, less its last entry). Exactly
        the rows' values: their number is read from the device, which costs
        nothing on the CPU and stalls a GPU (``padded`` avoids it).
        """
        starts = self.crow[index]
        counts = self.crow[index + 1] - starts
        offsets = torch.cumsum(counts, 0) - counts
        total = int(offsets[-1] + counts[-1]) if counts.shape[0] else 0
        # Position = row start + offset within the row (output position minus
        # the row's first output position).
        shift = torch.repeat_interleave(starts - offsets, counts, output_size=total)
        pos = torch.arange(total, device=self.device) + shift
        return pos, counts, offsets

    def _padded_positions(self, index):
        """Positions of the rows' values as a ``(len(index), max_row_nnz)`` block.

        A shape known on the host, so no batch reads the device and a GPU never
        waits. A row with fewer values repeats its last position, which writes
        the same value to the same place again: exact. An empty row points
        anywhere. Also returns the mask of the block's real values
        (``stored``), for the caller to zero the rest. Work grows with
        ``max_row_nnz``, never past the dense batch's size: cheap on a GPU,
        slow on the CPU for a few very long rows, so the CPU gathers exactly
        instead.
        """
        starts = self.crow[index]
        counts = self.crow[index + 1] - starts
        offsets = torch.arange(self.max_row_nnz, device=self.device)
        last = (counts - 1).clamp(min=0)[:, None]
        pos = starts[:, None] + torch.minimum(offsets, last)
        return pos.clamp(max=max(self.nnz - 1, 0)), offsets < counts[:, None]

    def _dense(self, n_rows: int, rows, col, val):
        out = torch.zeros(n_rows, self.n_features, dtype=self.dtype, device=self.device)
        # Canonical CSR: no duplicate (row, column) but the padded gather's
        # repeats of a value onto its own place, so a plain put is exact.
        out.index_put_((rows, col), val)
        return out


class SparseBatch:
    """Rows of a :class:`SparseRows`, kept sparse for a first layer that reads them.

    The arguments of ``torch.nn.functional.embedding_bag`` (``mode="sum"``):
    ``col`` / ``val`` 1-D, each row's values one after another from its
    ``offsets`` entry (the CPU's exact gather), or 2-D ``(n_rows, width)``
    blocks with ``offsets=None`` whose padding has value 0 (the padded gather).
    :class:`sklearn_mtl.nn.SparseInputLinear` turns it into the dense
    ``X @ W + b`` of its rows.
    """

    def __init__(self, col, val, offsets, n_features: int):
        self.col, self.val, self.offsets = col, val, offsets
        n_rows = col.shape[0] if offsets is None else offsets.shape[0]
        self.shape = (n_rows, int(n_features))

    @property
    def dtype(self):
        return self.val.dtype

    @property
    def device(self):
        return self.val.device

    def __len__(self) -> int:
        return self.shape[0]


def as_device_tensor(X, device, dtype=None):
    """``X`` (a validated ndarray or scipy sparse matrix) as the engine's data.

    A dense array becomes a tensor on ``device`` (copied when read-only: torch
    needs writable memory); a sparse one a :class:`SparseRows`.
    """
    if sp.issparse(X):
        return SparseRows.from_scipy(X, dtype=dtype, device=device)
    if not X.flags.writeable:
        X = X.copy()
    return torch.as_tensor(X, device=device)


def take_rows(X, index):
    """Rows at ``index`` of the engine's data, keeping sparse data sparse."""
    if isinstance(X, SparseRows):
        return X.take(index)
    return X.index_select(0, index)

"""Multi-task architectures: how tasks share the network.

Shared bottom, MMoE / OMoE, CGC / PLE, cross-stitch, and the feature network
that puts input embeddings and the user's trunk before any of them.

Pure torch: no numpy, no scikit-learn.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import (
    ACTIVATIONS,
    Dropout,
    EnsembleNetwork,
    GroupedLinear,
    SparseInputLinear,
    make_mlp,
)
from .heads import TaskHeads


class SharedBottomNetwork(nn.Module):
    """Hard parameter sharing: a shared MLP bottom and one head per task.

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
        n_members=1,
        sparse_input=False,
    ):
        super().__init__()
        self.bottom, n_out = make_mlp(
            n_features,
            hidden_layer_sizes,
            activation,
            dropout,
            sparse_input=sparse_input,
        )
        self.heads = TaskHeads(
            n_out,
            output_widths,
            head_layer_sizes,
            activation,
            dropout,
            n_members=n_members,
        )

    @property
    def reads_sparse_batches(self) -> bool:
        """The first layer reads sparse batches (the engine then makes them)."""
        return len(self.bottom) > 0 and isinstance(self.bottom[0], SparseInputLinear)

    def forward(self, X, return_shared=False):
        h = self.bottom(X)
        out = self.heads(h)
        return (out, h) if return_shared else out


class MixtureOfExperts(nn.Module):
    """MMoE (Ma et al., KDD 2018), or OMoE with ``n_gates=1``.

    ``n_experts`` expert MLPs, computed together by :class:`GroupedLinear`; a
    softmax gate per task (or one gate shared by all tasks) mixes the experts'
    outputs; per-task towers read the mixtures.
    """

    def __init__(
        self,
        n_in,
        output_widths,
        n_experts=4,
        expert_layer_sizes=(32,),
        head_layer_sizes=(),
        activation="relu",
        dropout=0.0,
        n_gates=None,
        n_members=1,
    ):
        super().__init__()
        self.n_tasks = len(output_widths)
        self.n_experts = n_experts
        self.n_gates = self.n_tasks if n_gates is None else n_gates
        self.experts, d = make_mlp(
            n_in, expert_layer_sizes, activation, dropout, n_groups=n_experts
        )
        self.gate = nn.Linear(n_in, self.n_gates * n_experts)
        self.heads = TaskHeads(
            d,
            output_widths,
            head_layer_sizes,
            activation,
            dropout,
            per_task_input=self.n_gates > 1,
            n_members=n_members,
        )

    def gates(self, X):
        """Gate weights ``(n_gates, n, n_experts)``; each row sums to 1."""
        logits = self.gate(X).reshape(X.shape[0], self.n_gates, self.n_experts)
        return torch.softmax(logits, dim=-1).permute(1, 0, 2)

    def forward(self, X, return_shared=False):
        experts = self.experts(X.unsqueeze(0).expand(self.n_experts, *X.shape))
        mixed = torch.einsum("gne,end->gnd", self.gates(X), experts)
        out = self.heads(mixed if self.n_gates > 1 else mixed[0])
        return (out, experts) if return_shared else out


class ProgressiveLayeredExtraction(nn.Module):
    """CGC (``n_levels=1``) and PLE (Tang et al., RecSys 2020) with MLP experts.

    Each level has ``n_shared_experts`` shared experts and ``n_task_experts``
    experts of each task. Task ``t``'s gate mixes the shared experts and its
    own; between levels a shared gate mixes all experts into the next level's
    shared input. All experts of a level run in one batched matmul per layer.
    """

    def __init__(
        self,
        n_in,
        output_widths,
        n_shared_experts=2,
        n_task_experts=1,
        n_levels=1,
        expert_layer_sizes=(32,),
        head_layer_sizes=(),
        activation="relu",
        dropout=0.0,
        n_members=1,
    ):
        super().__init__()
        T, S, K = len(output_widths), n_shared_experts, n_task_experts
        self.n_tasks, self.n_shared, self.n_own = T, S, K
        self.n_experts_level = S + T * K
        # Expert e reads input source[e]: 0 = shared input, 1 + t = task t's input.
        source = [0] * S + [1 + t for t in range(T) for _ in range(K)]
        self.register_buffer("source", torch.tensor(source, dtype=torch.long))
        # Task t's gate covers the shared experts and its own.
        own = [list(range(S)) + [S + t * K + k for k in range(K)] for t in range(T)]
        self.register_buffer("task_experts", torch.tensor(own, dtype=torch.long))
        self.experts = nn.ModuleList()
        self.task_gates = nn.ModuleList()
        self.shared_gates = nn.ModuleList()
        d_in = n_in
        for level in range(n_levels):
            experts, d = make_mlp(
                d_in,
                expert_layer_sizes,
                activation,
                dropout,
                n_groups=self.n_experts_level,
            )
            self.experts.append(experts)
            self.task_gates.append(GroupedLinear(T, d_in, S + K))
            if level < n_levels - 1:
                self.shared_gates.append(nn.Linear(d_in, self.n_experts_level))
            d_in = d
        self.heads = TaskHeads(
            d_in, output_widths, head_layer_sizes, activation, dropout, True, n_members
        )

    def _levels(self, X):
        T = self.n_tasks
        shared = X
        tasks = X.unsqueeze(0).expand(T, *X.shape)
        first_experts = gates = None
        for level, experts in enumerate(self.experts):
            inputs = torch.cat([shared.unsqueeze(0), tasks])  # (1 + T, n, d)
            out = experts(inputs[self.source])  # (E, n, h)
            if first_experts is None:
                first_experts = out
            gates = torch.softmax(self.task_gates[level](tasks), dim=-1)  # (T,n,S+K)
            tasks = torch.einsum("tne,tend->tnd", gates, out[self.task_experts])
            if level < len(self.shared_gates):
                g = torch.softmax(self.shared_gates[level](shared), dim=-1)
                shared = torch.einsum("ne,end->nd", g, out)
        return tasks, gates, first_experts

    def gates(self, X):
        """Last level's task gates ``(n_tasks, n, n_shared + n_task_experts)``."""
        return self._levels(X)[1]

    def forward(self, X, return_shared=False):
        tasks, _, experts = self._levels(X)
        out = self.heads(tasks)
        return (out, experts) if return_shared else out


class CrossStitchNetwork(nn.Module):
    """Cross-stitch networks (Misra et al., CVPR 2016) for MLP columns.

    One MLP column per task (all columns in one batched matmul per layer);
    after every hidden layer a learned ``(T, T)`` cross-stitch unit mixes the
    columns: ``h_s <- sum_t alpha[s, t] h_t``. Units start near the identity
    (0.9 on the diagonal, the rest spread over the other tasks).
    """

    def __init__(
        self,
        n_in,
        output_widths,
        layer_sizes=(100,),
        head_layer_sizes=(),
        activation="relu",
        dropout=0.0,
        n_members=1,
    ):
        super().__init__()
        T = self.n_tasks = len(output_widths)
        self.layers = nn.ModuleList()
        self.stitches = nn.ParameterList()
        off = 0.1 / (T - 1) if T > 1 else 0.0
        init = torch.full((T, T), off)
        init.fill_diagonal_(0.9 if T > 1 else 1.0)
        for size in layer_sizes:
            block = [GroupedLinear(T, n_in, size), ACTIVATIONS[activation]()]
            if dropout > 0:
                block.append(Dropout(dropout))
            self.layers.append(nn.Sequential(*block))
            self.stitches.append(nn.Parameter(init.clone()))
            n_in = size
        self.heads = TaskHeads(
            n_in, output_widths, head_layer_sizes, activation, dropout, True, n_members
        )

    def forward(self, X, return_shared=False):
        h = X.unsqueeze(0).expand(self.n_tasks, *X.shape)
        first = None
        for layer, alpha in zip(self.layers, self.stitches):
            h = layer(h)
            if first is None:
                first = h  # feeds every task through the units: the shared tensor
            h = torch.einsum("st,tnd->snd", alpha, h)
        out = self.heads(h)
        return (out, X if first is None else first) if return_shared else out


class FeatureNetwork(nn.Module):
    """A feature module before an architecture: ``body(features(X))``.

    ``features`` maps ``(n, n_features)`` to ``(n, d)``: the input embeddings
    (:class:`~sklearn_mtl.nn.embeddings.TabularEmbedding`), the user's
    ``trunk``, or both in sequence.

    Examples
    --------
    >>> net = FeatureNetwork(nn.Linear(4, 3), SharedBottomNetwork(3, [1], (8,)))
    >>> net(torch.zeros(2, 4)).shape
    torch.Size([2, 1])
    """

    def __init__(self, features: nn.Module, body: nn.Module):
        super().__init__()
        self.features = features
        self.body = body

    def gates(self, X):
        return self.body.gates(self.features(X))

    def forward(self, X, return_shared=False):
        return self.body(self.features(X), return_shared=return_shared)


ARCHITECTURES = ("shared_bottom", "mmoe", "omoe", "cgc", "ple", "cross_stitch")


def build_network(
    architecture,
    n_features,
    output_widths,
    *,
    hidden_layer_sizes=(100,),
    activation="relu",
    dropout=0.0,
    head_layer_sizes=(),
    n_experts=4,
    expert_layer_sizes=(32,),
    n_shared_experts=2,
    n_task_experts=1,
    n_levels=2,
    trunk=None,
    inputs=None,
    n_ensemble=1,
    task_kinds=None,
    sparse_input=False,
    output_bias=None,
):
    """The network of ``architecture`` reading ``n_features`` inputs.

    Layers, in order: ``inputs`` (an input embedding, ``(n, n_features)`` ->
    ``(n, d)``, e.g. :class:`~sklearn_mtl.nn.embeddings.TabularEmbedding`),
    then the user's ``trunk``, then the architecture; with ``n_ensemble > 1``
    the architecture is an :class:`~sklearn_mtl.nn.backbones.EnsembleNetwork`
    of that many members (``task_kinds`` tells it how to average outputs).
    ``sparse_input`` (X was sparse in fit): a shared-bottom MLP read directly,
    with no input embedding, trunk or ensemble, gets a
    :class:`~sklearn_mtl.nn.backbones.SparseInputLinear` first layer and reads
    sparse batches; other networks read dense batches. ``output_bias`` (one
    value per output column, or None for ``nn.Linear``'s random bias) starts
    the outputs there (:meth:`~sklearn_mtl.nn.heads.TaskHeads.set_output_bias`).

    Examples
    --------
    >>> net = build_network("mmoe", 5, [1, 3], expert_layer_sizes=(8,))
    >>> net(torch.zeros(4, 5)).shape
    torch.Size([4, 4])
    """
    features = [m for m in (inputs, trunk) if m is not None]
    features = (
        None
        if not features
        else features[0]
        if len(features) == 1
        else nn.Sequential(*features)
    )
    n_in = n_features
    if features is not None:
        with torch.no_grad():
            was_training = features.training
            features.eval()
            out = features(torch.zeros(2, n_features))
            features.train(was_training)
        if out.ndim != 2 or out.shape[0] != 2:
            raise ValueError(
                "trunk must map a float tensor (n, n_features) to (n, d); it "
                f"returned shape {tuple(out.shape)} for 2 rows."
            )
        n_in = int(out.shape[1])
    common = dict(activation=activation, dropout=dropout, n_members=n_ensemble)
    if architecture == "shared_bottom":
        body = SharedBottomNetwork(
            n_in,
            output_widths,
            hidden_layer_sizes,
            head_layer_sizes=head_layer_sizes,
            sparse_input=sparse_input and features is None and n_ensemble == 1,
            **common,
        )
    elif architecture in ("mmoe", "omoe"):
        body = MixtureOfExperts(
            n_in,
            output_widths,
            n_experts,
            expert_layer_sizes,
            head_layer_sizes,
            n_gates=1 if architecture == "omoe" else None,
            **common,
        )
    elif architecture in ("cgc", "ple"):
        body = ProgressiveLayeredExtraction(
            n_in,
            output_widths,
            n_shared_experts,
            n_task_experts,
            1 if architecture == "cgc" else n_levels,
            expert_layer_sizes,
            head_layer_sizes,
            **common,
        )
    elif architecture == "cross_stitch":
        body = CrossStitchNetwork(
            n_in, output_widths, hidden_layer_sizes, head_layer_sizes, **common
        )
    else:
        raise ValueError(f"Unknown architecture {architecture!r}.")
    if n_ensemble > 1:
        if task_kinds is None:
            raise ValueError("n_ensemble > 1 needs task_kinds to average members.")
        body = EnsembleNetwork(body, n_in, n_ensemble, task_kinds, output_widths)
    if output_bias is not None:
        (heads,) = [m for m in body.modules() if isinstance(m, TaskHeads)]
        heads.set_output_bias(output_bias)
    return body if features is None else FeatureNetwork(features, body)

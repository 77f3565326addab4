"""Loss-balancing strategies: per-task losses in, one update out.

Every strategy is a :class:`torch.nn.Module` (so learnable weights, such as the
log-variances of uncertainty weighting, are trained by the same optimizer) with
one method, :meth:`LossWeighting.backward`, that receives the per-task losses of
a batch, calls ``backward`` on whatever combination it chooses, and returns the
combined loss (for the history) and the task weights it used.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "LossWeighting",
    "StaticWeighting",
    "UncertaintyWeighting",
    "DynamicWeightAverage",
    "RandomLossWeighting",
    "GradNorm",
    "PCGrad",
    "MGDA",
    "FAMO",
    "TorchJDWeighting",
    "pcgrad_combine",
    "min_norm_weights",
    "make_weighting",
    "WEIGHTINGS",
]


def _check_positive(name: str, value, allow_zero: bool = False) -> float:
    """``value`` as a float, or a ValueError naming ``loss_weighting_params[name]``."""
    bound = ">= 0" if allow_zero else "> 0"
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"loss_weighting_params[{name!r}] must be a finite number {bound}, got "
            f"{value!r}."
        ) from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(
            f"loss_weighting_params[{name!r}] must be a finite number {bound}, got "
            f"{value!r}."
        )
    return value


class LossWeighting(nn.Module):
    """Base class of loss-balancing strategies.

    Subclasses implement :meth:`backward`. ``n_tasks`` is the number of tasks.
    """

    #: Whether :meth:`backward` needs the shared representation (``shared=``).
    needs_shared = False
    #: Whether :meth:`backward` reads ``present`` (the engine computes it, one
    #: reduction per batch, only for those that do).
    needs_present = False
    #: torch.Generator for random strategies; the engine sets one per fit so
    #: parallel fits stay reproducible (None: torch's global generator).
    generator = None

    def __init__(self, n_tasks: int):
        super().__init__()
        self.n_tasks = n_tasks

    def backward(self, losses: torch.Tensor, shared=None, present=None):
        """Back-propagate a combination of ``losses`` (shape ``(n_tasks,)``).

        Parameters
        ----------
        losses : torch.Tensor of shape (n_tasks,)
            The per-task losses of the batch, still attached to the graph.
        shared : torch.Tensor or None
            The shared representation, for strategies that balance gradients.
        present : torch.Tensor of bool, shape (n_tasks,), or None
            Which tasks have a labelled row of positive weight in the batch
            (None: all; the engine gives it to strategies whose
            ``needs_present`` is True). An absent task's loss is 0 and says
            nothing about the task: strategies that read the losses' values or
            gradients (FAMO, MGDA, GradNorm, uncertainty, RLW, torchjd's
            aggregators) leave it out.

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

    def backward(self, losses, shared=None, present=None):
        loss = (self.weights * losses).sum()
        loss.backward()
        return loss.detach(), self.weights


def _shared_gradients(losses, shared):
    """Per-task gradients of the losses w.r.t. ``shared``, flattened: ``(T, D)``.

    One backward pass per task through the part of the graph above ``shared``
    only (the heads), never a second forward pass.
    """
    grads = [
        torch.autograd.grad(losses[t], shared, retain_graph=True, allow_unused=True)[0]
        for t in range(losses.shape[0])
    ]
    # Combined in float32 even when the forward ran under bf16 autocast.
    return torch.stack(
        [
            torch.zeros_like(shared).reshape(-1) if g is None else g.reshape(-1)
            for g in grads
        ]
    ).float()


def _backward_through_shared(losses, shared, combined):
    """Backward where ``shared`` receives ``combined`` instead of its gradient.

    Task-specific parameters (heads, towers, gates) get the gradient of their
    own loss; everything below ``shared`` gets the balanced gradient.
    """
    handle = shared.register_hook(
        lambda grad: combined.reshape(grad.shape).to(grad.dtype)
    )
    try:
        losses.sum().backward()
    finally:
        handle.remove()


def _has_graph(shared):
    return shared is not None and shared.requires_grad


class UncertaintyWeighting(LossWeighting):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

    Each task learns ``s_t = log sigma_t^2``; the loss is
    ``sum_t exp(-s_t) L_t + s_t / 2``. Regression losses here are already
    ``(y - f)^2 / 2``, so this is the paper's ``L / (2 sigma^2) + log sigma``
    for regression and its classification form ``L / sigma^2 + log sigma`` for
    cross-entropy tasks. ``s_t`` is trained by the network's optimizer.

    Examples
    --------
    >>> import torch
    >>> w = UncertaintyWeighting(2)
    >>> loss, weights = w.backward(torch.tensor([1.0, 3.0], requires_grad=True))
    >>> float(loss), weights.tolist()
    (4.0, [1.0, 1.0])
    """

    needs_present = True

    def __init__(self, n_tasks: int):
        super().__init__(n_tasks)
        self.log_variance = nn.Parameter(torch.zeros(n_tasks))

    def backward(self, losses, shared=None, present=None):
        precision = torch.exp(-self.log_variance)
        terms = precision * losses + 0.5 * self.log_variance
        if present is not None:  # an absent task's log-variance is not pulled
            terms = torch.where(present, terms, torch.zeros_like(terms))
        loss = terms.sum()
        loss.backward()
        return loss.detach(), precision.detach()


class DynamicWeightAverage(LossWeighting):
    """Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019).

    ``w_t = T * softmax(r / temperature)_t`` with ``r_t = L_t(e-1) / L_t(e-2)``,
    the ratio of the task's last two epoch losses; weights are 1 for the first
    two epochs.

    Examples
    --------
    >>> import torch
    >>> w = DynamicWeightAverage(2)
    >>> w.on_epoch_end(torch.tensor([1.0, 1.0]))
    >>> w.on_epoch_end(torch.tensor([0.5, 1.0]))  # task 0 improves faster
    >>> [round(v, 3) for v in w.weights.tolist()]
    [0.876, 1.124]
    """

    def __init__(self, n_tasks: int, temperature: float = 2.0):
        super().__init__(n_tasks)
        self.temperature = _check_positive("temperature", temperature)
        self.register_buffer("weights", torch.ones(n_tasks))
        self.register_buffer("history", torch.full((2, n_tasks), torch.nan))

    def backward(self, losses, shared=None, present=None):
        loss = (self.weights * losses).sum()
        loss.backward()
        return loss.detach(), self.weights.clone()

    def on_epoch_end(self, task_losses):
        task_losses = task_losses.to(self.history)
        self.history = torch.stack([self.history[1], task_losses])
        ratio = self.history[1] / self.history[0]
        ratio = torch.nan_to_num(ratio, nan=1.0, posinf=1.0, neginf=1.0)
        self.weights = self.n_tasks * torch.softmax(ratio / self.temperature, dim=0)


class RandomLossWeighting(LossWeighting):
    """Random loss weighting (Lin et al., TMLR 2022): ``softmax(N(0, I))`` per step.

    Draws from torch's random generator, which the estimators seed from
    ``random_state``, so a seeded fit is reproducible. Weights sum to 1.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> loss, weights = RandomLossWeighting(3).backward(
    ...     torch.ones(3, requires_grad=True))
    >>> round(float(weights.sum()), 6)
    1.0
    """

    needs_present = True

    def backward(self, losses, shared=None, present=None):
        draw = torch.randn(
            self.n_tasks,
            device=losses.device,
            dtype=losses.dtype,
            generator=self.generator,
        )
        if present is not None:  # the weights sum to 1 over the present tasks
            draw = torch.where(
                present | ~present.any(), draw, torch.full_like(draw, -torch.inf)
            )
        weights = torch.softmax(draw, 0)
        loss = (weights * losses).sum()
        loss.backward()
        return loss.detach(), weights


class GradNorm(LossWeighting):
    """GradNorm (Chen et al., ICML 2018) on the shared representation.

    Learnable task weights ``w_t`` (kept summing to ``T``) are moved so that
    each task's gradient norm ``G_t = w_t ||d L_t / d shared||`` approaches
    ``mean(G) * r_t ** alpha``, where ``r_t`` is the task's relative inverse
    training rate ``(L_t / L_t(0)) / mean``. The weights are trained by the
    network's optimizer through an L1 loss on the norms; the network gets the
    gradient of ``sum_t w_t L_t``. Without a shared representation the
    weights stay at 1.

    Parameters
    ----------
    n_tasks : int
    alpha : float, default=1.5
        Strength of the pull towards equal training rates.

    Examples
    --------
    >>> import torch
    >>> shared = torch.ones(4, 2, requires_grad=True)
    >>> losses = torch.stack([(shared * 1.0).sum(), (shared * 3.0).sum()])
    >>> loss, weights = GradNorm(2).backward(losses, shared)
    >>> weights.tolist()
    [1.0, 1.0]
    """

    needs_shared = True
    needs_present = True

    def __init__(self, n_tasks: int, alpha: float = 1.5):
        super().__init__(n_tasks)
        self.alpha = _check_positive("alpha", alpha, allow_zero=True)
        self.scales = nn.Parameter(torch.ones(n_tasks))
        self.register_buffer("initial_losses", torch.full((n_tasks,), torch.nan))

    def backward(self, losses, shared=None, present=None):
        if present is None:
            present = torch.ones_like(losses, dtype=torch.bool)
        with torch.no_grad():  # renormalise after the previous optimizer step
            self.scales.clamp_(min=1e-3)
            self.scales.mul_(self.n_tasks / self.scales.sum())
            # A task's starting loss is its first batch with a labelled row.
            first = torch.isnan(self.initial_losses) & present
            self.initial_losses = torch.where(
                first, losses.detach(), self.initial_losses
            )
        weights = self.scales.detach().clone()
        if _has_graph(shared):
            norms = _shared_gradients(losses, shared).norm(dim=1)
            g = self.scales * norms
            # Means and the pull over the tasks present in the batch only.
            n = present.sum().clamp_min(1)
            ratio = losses.detach() / self.initial_losses.clamp_min(1e-12)
            ratio = torch.where(present, ratio, torch.zeros_like(ratio))
            ratio = ratio / (ratio.sum() / n).clamp_min(1e-12)
            mean_g = torch.where(present, g, torch.zeros_like(g)).sum() / n
            target = (mean_g * ratio**self.alpha).detach()
            gap = torch.where(present, g - target, torch.zeros_like(g))
            gradnorm_loss = gap.abs().sum()
            (self.scales.grad,) = torch.autograd.grad(gradnorm_loss, self.scales)
        loss = (weights * losses).sum()
        loss.backward()
        return loss.detach(), weights


def pcgrad_combine(grads, order=None):
    """PCGrad's combined gradient and the weight of each task's gradient in it.

    Each task's gradient ``g_i`` is projected onto the normal plane of every
    other task's gradient ``g_j`` it conflicts with (``g_i . g_j < 0``), in
    ``order``; the result is the sum of the projected gradients. Since every
    projection is a linear combination of the ``g_j``, so is the sum:
    ``combined = coefficients @ grads``.

    Parameters
    ----------
    grads : torch.Tensor of shape (T, D)
    order : torch.Tensor of shape (T,) or None
        Order in which the other tasks are visited (random per step in the
        paper); ``None`` visits them in index order.

    Returns
    -------
    combined : torch.Tensor of shape (D,)
    coefficients : torch.Tensor of shape (T,)

    Examples
    --------
    >>> import torch
    >>> g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    >>> combined, c = pcgrad_combine(g)
    >>> combined.tolist(), c.tolist()
    ([0.5, 1.5], [2.0, 1.5])
    """
    T = grads.shape[0]
    order = torch.arange(T, device=grads.device) if order is None else order
    coef = torch.eye(T, dtype=grads.dtype, device=grads.device)
    projected = grads.clone()
    sq = (grads * grads).sum(dim=1).clamp_min(1e-20)
    for i in range(T):
        for k in range(T):
            j = order[k]  # a device tensor: no host sync per step
            dot = projected[i] @ grads[j]
            conflict = (dot < 0) & (j != i)
            step = torch.where(conflict, dot / sq[j], torch.zeros_like(dot))
            projected[i] = projected[i] - step * grads[j]
            coef[i] = coef[i] - step * coef.new_zeros(T).index_fill(0, j, 1.0)
    return projected.sum(dim=0), coef.sum(dim=0)


class PCGrad(LossWeighting):
    """Projecting conflicting gradients (Yu et al., NeurIPS 2020).

    Per-task gradients are taken with respect to the shared representation of
    the batch (one backward pass per task through the heads, no extra forward);
    the combined PCGrad gradient is then back-propagated into the shared layers
    while each task's own layers get their own gradient. The weights recorded
    are the coefficients of each task's gradient in the combination.

    Examples
    --------
    >>> import torch
    >>> shared = torch.ones(2, requires_grad=True)
    >>> losses = torch.stack([shared[0], shared[1] - shared[0]])
    >>> loss, weights = PCGrad(2).backward(losses, shared)
    >>> shared.grad.tolist(), weights.tolist()
    ([0.5, 1.5], [2.0, 1.5])
    """

    needs_shared = True

    def backward(self, losses, shared=None, present=None):
        if not _has_graph(shared):
            return _plain_sum(losses)
        grads = _shared_gradients(losses, shared)
        order = torch.randperm(
            self.n_tasks, device=grads.device, generator=self.generator
        )
        combined, coef = pcgrad_combine(grads, order)
        _backward_through_shared(losses, shared, combined)
        return (coef * losses).sum().detach(), coef


def _plain_sum(losses):
    loss = losses.sum()
    loss.backward()
    return loss.detach(), torch.ones_like(losses).detach()


def min_norm_weights(grads, n_iter: int = 50, present=None):
    """Weights ``a`` on the simplex minimising ``||a @ grads||`` (MGDA).

    Two tasks use the closed form
    ``a_0 = clip((g_1 - g_0) . g_1 / ||g_0 - g_1||^2, 0, 1)``; more tasks use
    Frank-Wolfe on the Gram matrix with ``n_iter`` steps (exact line search),
    all on the device. ``present`` (bool per task, None: all) restricts the
    simplex to the present tasks: an absent task's gradient is zero, the
    smallest norm of all, and would take every weight.

    Examples
    --------
    >>> import torch
    >>> w = min_norm_weights(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    >>> [round(v, 3) for v in w.tolist()]
    [0.8, 0.2]
    """
    T = grads.shape[0]
    gram = grads @ grads.T
    if present is None or T == 1:
        present = torch.ones(T, dtype=torch.bool, device=grads.device)
    # None present (nothing to train on): the weights of all.
    present = present | ~present.any()
    if T == 2:
        diff = gram[0, 0] + gram[1, 1] - 2 * gram[0, 1]
        a0 = ((gram[1, 1] - gram[0, 1]) / diff.clamp_min(1e-20)).clamp(0, 1)
        a0 = torch.where(diff > 1e-20, a0, torch.full_like(a0, 0.5))
        a0 = torch.where(present.all(), a0, present[0].to(a0))
        return torch.stack([a0, 1 - a0])
    a = present.to(grads.dtype) / present.sum()
    eye = torch.eye(T, dtype=grads.dtype, device=grads.device)
    for _ in range(n_iter):
        t = torch.argmin(torch.where(present, gram @ a, torch.inf))
        v = eye[t]
        # Exact line search between a and the vertex v.
        d = v - a
        num = -(d @ gram @ a)
        den = (d @ gram @ d).clamp_min(1e-20)
        step = (num / den).clamp(0, 1)
        a = a + step * d
    return a


class MGDA(LossWeighting):
    """MGDA-UB (Sener & Koltun, NeurIPS 2018): min-norm weights, shared representation.

    The per-task gradients of the shared representation are combined with the
    weights of :func:`min_norm_weights` (they sum to 1); the combined gradient
    flows into the shared layers, each task's own layers get their own
    gradient.

    Examples
    --------
    >>> import torch
    >>> shared = torch.ones(2, requires_grad=True)
    >>> losses = torch.stack([shared[0], 2 * shared[1]])
    >>> loss, weights = MGDA(2).backward(losses, shared)
    >>> [round(v, 3) for v in weights.tolist()]
    [0.8, 0.2]
    """

    needs_shared = True
    needs_present = True

    def backward(self, losses, shared=None, present=None):
        if not _has_graph(shared):
            return _plain_sum(losses)
        grads = _shared_gradients(losses, shared)
        weights = min_norm_weights(grads, present=present)
        _backward_through_shared(losses, shared, weights @ grads)
        return (weights * losses).sum().detach(), weights


class FAMO(LossWeighting):
    """Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023), O(1) per step.

    Task logits ``xi`` give ``z = softmax(xi)``; the network minimises
    ``sum_t z_t log(L_t) / c`` (``c = sum_t z_t / L_t``), i.e. each loss gets
    the weight ``z_t / (c L_t)``. The logits are updated with Adam (learning
    rate ``lr``, weight decay ``gamma``) from the change of the log losses
    between steps. To avoid a second forward pass the "after the step" losses
    are those of the next batch.

    Examples
    --------
    >>> import torch
    >>> loss, weights = FAMO(2).backward(torch.tensor([1.0, 3.0], requires_grad=True))
    >>> [round(v, 3) for v in weights.tolist()]
    [0.75, 0.25]
    """

    needs_present = True

    def __init__(self, n_tasks: int, lr: float = 0.025, gamma: float = 1e-3):
        super().__init__(n_tasks)
        self.lr = _check_positive("lr", lr)
        self.gamma = _check_positive("gamma", gamma, allow_zero=True)
        self.register_buffer("logits", torch.zeros(n_tasks))
        self.register_buffer("previous", torch.full((n_tasks,), torch.nan))
        self.register_buffer("moments", torch.zeros(2, n_tasks))
        self.register_buffer("n_updates", torch.zeros(()))

    def _update(self, losses, present):
        # The update of the tasks with a loss now and one before, as if the
        # others were not there: their logits and moments stay as they are.
        used = present & torch.isfinite(self.previous)
        delta = torch.log(self.previous + 1e-8) - torch.log(losses + 1e-8)
        delta = torch.where(used, delta, torch.zeros_like(delta))
        z = torch.softmax(torch.where(used, self.logits, -torch.inf), 0)
        z = torch.nan_to_num(z)  # no task used: all -inf
        # d softmax(xi) / d xi applied to delta, plus decoupled weight decay.
        grad = z * (delta - (z * delta).sum()) + self.gamma * self.logits
        grad = torch.where(used, grad, torch.zeros_like(grad))
        valid = used.any() & torch.isfinite(grad).all()
        b1, b2 = 0.9, 0.999
        m = b1 * self.moments[0] + (1 - b1) * grad
        v = b2 * self.moments[1] + (1 - b2) * grad * grad
        n = self.n_updates + valid.to(self.n_updates)
        step = (
            self.lr
            * (m / (1 - b1 ** n.clamp_min(1)))
            / ((v / (1 - b2 ** n.clamp_min(1))).sqrt() + 1e-8)
        )
        moved = valid & used
        self.logits = torch.where(moved, self.logits - step, self.logits)
        self.moments = torch.where(moved, torch.stack([m, v]), self.moments)
        self.n_updates = n

    def backward(self, losses, shared=None, present=None):
        if present is None:
            present = torch.ones_like(losses, dtype=torch.bool)
        with torch.no_grad():
            current = losses.detach().clamp_min(0)
            self._update(current, present)
            self.previous = torch.where(present, current, self.previous)
            z = torch.softmax(self.logits, 0)
            # An absent task's loss is 0, not a perfect fit: weight 0, and the
            # others share the weight (all of it is theirs).
            inverse = torch.where(present | ~present.any(), z / (current + 1e-8), 0)
            weights = inverse / inverse.sum()
        loss = (weights * losses).sum()
        loss.backward()
        return loss.detach(), weights


class TorchJDWeighting(LossWeighting):
    """An aggregator of the optional ``torchjd`` package on the shared representation.

    The per-task gradients of the shared representation (the rows of the
    Jacobian) are aggregated by ``torchjd.aggregation.<aggregator>``; the
    aggregate flows into the shared layers, each task's own layers get their own
    gradient. The weights recorded are the least-squares coefficients of the
    aggregate on the task gradients. Tasks absent from a batch are left out of
    the aggregation (their weight is 0), as if they were not there.

    Parameters
    ----------
    n_tasks : int
    aggregator : str, default="UPGrad"
        Class name in :mod:`torchjd.aggregation`.
    **kwargs
        Passed to the aggregator.
    """

    needs_shared = True
    needs_present = True

    def __init__(self, n_tasks: int, aggregator: str = "UPGrad", **kwargs):
        super().__init__(n_tasks)
        try:
            from torchjd import aggregation

            self.aggregator = getattr(aggregation, aggregator)(**kwargs)
        except ImportError as exc:
            # torchjd itself, or the solver its projecting aggregators import
            # when built (quadprog).
            name = {v: k for k, v in TORCHJD_AGGREGATORS.items()}.get(aggregator)
            raise ImportError(
                f"loss_weighting={name or aggregator!r} needs the optional package "
                f'torchjd with its quadprog solver: pip install "sklearn-mtl[jd]" '
                f"({exc})"
            ) from exc

    def backward(self, losses, shared=None, present=None):
        if not _has_graph(shared):
            return _plain_sum(losses)
        grads = _shared_gradients(losses, shared)
        coef = torch.zeros(grads.shape[0], dtype=grads.dtype, device=grads.device)
        if present is None or not present.any():
            present = torch.ones_like(coef, dtype=torch.bool)
        # The aggregators run on the host (quadprog) anyway: selecting the
        # present rows costs no extra synchronisation worth counting.
        rows = grads[present]
        combined = self.aggregator(rows)
        _backward_through_shared(losses, shared, combined)
        coef[present] = torch.linalg.lstsq(rows.T, combined.unsqueeze(1)).solution[:, 0]
        return (coef * losses).sum().detach(), coef.detach()


WEIGHTINGS = {
    "static": StaticWeighting,
    "uncertainty": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
    "rlw": RandomLossWeighting,
    "gradnorm": GradNorm,
    "pcgrad": PCGrad,
    "mgda": MGDA,
    "famo": FAMO,
}

#: ``loss_weighting`` names served by torchjd aggregators when it is installed.
TORCHJD_AGGREGATORS = {
    "upgrad": "UPGrad",
    "dualproj": "DualProj",
    "aligned_mtl": "AlignedMTL",
}


def make_weighting(name: str, n_tasks: int, static_weights, params=None):
    """Build the strategy ``name`` for ``n_tasks`` tasks with its ``params``.

    Raises ValueError naming ``loss_weighting_params`` for an unknown keyword.

    Examples
    --------
    >>> make_weighting("dwa", 2, None, {"temperature": 1.0}).temperature
    1.0
    """
    params = dict(params or {})
    if name == "static":
        cls, args = StaticWeighting, (static_weights,)
    elif name in WEIGHTINGS:
        cls, args = WEIGHTINGS[name], (n_tasks,)
    elif name in TORCHJD_AGGREGATORS:
        cls, args = TorchJDWeighting, (n_tasks, TORCHJD_AGGREGATORS[name])
    else:
        raise ValueError(f"Unknown loss_weighting {name!r}.")
    try:
        return cls(*args, **params)
    except TypeError as exc:
        raise ValueError(
            f"loss_weighting_params {params!r} do not fit loss_weighting={name!r}: "
            f"{exc}"
        ) from exc

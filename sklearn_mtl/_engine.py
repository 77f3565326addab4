"""The training and inference loop.

skorch's :class:`~skorch.NeuralNet` is the engine, used by composition: the public
estimators own a :class:`MultiTaskNet` and never subclass it. skorch provides
module / optimizer initialisation, device placement, callbacks, the history and a
CUDA-safe pickle. What we replace is the data path: the whole data set is a pair
of tensors placed on the device once, batches are drawn by index
(:class:`TensorBatches`), and losses are accumulated on the device and read once
per epoch.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PrintLog
from skorch.utils import TeeGenerator
from torch import nn
from torch.func import functional_call

#: ``precision`` parameter value -> autocast dtype (None: plain float32).
PRECISIONS = {"float32": None, "bf16": torch.bfloat16}


@functools.cache
def fast_adam_kwargs(device_type: str) -> dict:
    """Adam options for the fastest multi-tensor update on ``device_type``.

    ``fused=True`` (one kernel for every parameter) where this torch supports it
    on the device, else ``foreach=True``; the default single-tensor loop costs
    about as much as the forward and backward pass of a small network.
    """
    probe = torch.zeros(1, device=device_type, requires_grad=True)
    try:
        torch.optim.Adam([probe], fused=True)
    except (RuntimeError, ValueError, TypeError):
        return {"foreach": True}
    return {"fused": True}


def _overrides(callback, method: str) -> bool:
    return getattr(type(callback), method, None) is not getattr(Callback, method)


class TrainingDivergedError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite.

    The model keeps the last weights with a finite loss.
    """


class TensorBatches:
    """Mini-batches drawn by index from tensors that already live on the device.

    One ``randperm`` per epoch; each batch is one gather of ``X`` and one of the
    packed targets. No per-row ``Dataset.__getitem__``, no host-device copies.
    """

    def __init__(self, X, targets, batch_size, shuffle=True, generator=None):
        self.X = X
        self.targets = targets
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return math.ceil(self.X.shape[0] / self.batch_size)

    def __iter__(self):
        n, bs = self.X.shape[0], self.batch_size
        if not self.shuffle:
            for start in range(0, n, bs):
                yield self.X[start : start + bs], self.targets[start : start + bs]
            return
        order = torch.randperm(n, generator=self.generator, device=self.X.device)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            # index_select is several times faster than X[idx] on CPU, same values.
            yield self.X.index_select(0, idx), self.targets.index_select(0, idx)


class Objective(nn.Module):
    """The criterion skorch optimises: per-task losses and their weighting.

    Holding both in one module lets a weighting strategy with learnable
    parameters be trained by the same optimizer.
    """

    def __init__(self, loss: nn.Module, weighting: nn.Module):
        super().__init__()
        self.loss = loss
        self.weighting = weighting


class MLPStopping(Callback):
    """Stopping rules of scikit-learn's MLP, and early stopping with best weights.

    Without early stopping, training stops when the training loss has not
    improved by ``tol`` for ``n_iter_no_change`` epochs. With early stopping the
    mean validation score is watched instead, the best weights are kept, and
    they are restored when training ends.
    """

    def __init__(self, tol=1e-4, n_iter_no_change=10, early_stopping=False):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping

    def initialize(self):
        self.best_loss_ = math.inf
        self.best_score_ = -math.inf
        self.no_improvement_count_ = 0
        self.best_state_ = None
        self.stop_ = False
        return self

    def on_epoch_end(self, net, **kwargs):
        if not self.early_stopping:
            loss = net.history[-1, "train_loss"]
            if loss > self.best_loss_ - self.tol:
                self.no_improvement_count_ += 1
            else:
                self.no_improvement_count_ = 0
            self.best_loss_ = min(self.best_loss_, loss)
        else:
            score = net.history[-1, "valid_score"]
            if score < self.best_score_ + self.tol:
                self.no_improvement_count_ += 1
            else:
                self.no_improvement_count_ = 0
            if score > self.best_score_:
                self.best_score_ = score
                # Kept on the CPU: it is pickled with the model (no CUDA tensors).
                self.best_state_ = net.snapshot(device="cpu")
        self.stop_ = self.no_improvement_count_ > self.n_iter_no_change

    def restore_best(self, net):
        if self.early_stopping and self.best_state_ is not None:
            net.restore(self.best_state_)


class MultiTaskNet(NeuralNet):
    """skorch engine for a multi-task network (internal; see the estimators).

    ``module`` maps a float tensor ``(n, n_features)`` to the fused outputs
    ``(n, sum of task widths)``; ``criterion`` is an :class:`Objective`.
    """

    def get_default_callbacks(self):
        callbacks = [("epoch_timer", EpochTimer())]
        if self.verbose:
            per_task = ["train_task_losses", "train_task_weights", "valid_task_scores"]
            callbacks.append(("print_log", PrintLog(keys_ignored=per_task)))
        return callbacks

    # ------------------------------------------------------------------ steps
    #: Autocast dtype for the forward pass (None: no autocast); set by the estimator.
    autocast_dtype = None
    #: Whether to run the forward pass through ``torch.compile``.
    compile_forward = False

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        device_type = torch.device(self.device).type
        return torch.autocast(device_type, dtype=self.autocast_dtype)

    def _forward_fn(self):
        """The module, or its ``torch.compile`` wrapper (built once, not pickled)."""
        if not self.compile_forward:
            return self.module_
        compiled = self.__dict__.get("_compiled")
        if compiled is None or compiled[0] is not self.module_:
            compiled = (self.module_, torch.compile(self.module_))
            self.__dict__["_compiled"] = compiled
        return compiled[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_compiled", None)
        return state

    def _batch_hooks(self):
        """Which per-batch notifications some callback actually listens to."""
        callbacks = [cb for _, cb in self.callbacks_]
        return {
            name: any(_overrides(cb, name) for cb in callbacks)
            for name in ("on_batch_begin", "on_batch_end", "on_grad_computed")
        }

    def train_step_single(self, batch, **fit_params):
        Xb, targets = batch
        weighting = self.criterion_.weighting
        forward = self._forward_fn()
        with self._autocast():
            if getattr(weighting, "needs_shared", False):
                # Gradient-balancing strategies read the shared representation.
                outputs, shared = forward(Xb, return_shared=True)
            else:
                outputs, shared = forward(Xb), None
        # Losses in float32 whatever the forward precision.
        outputs = outputs.float()
        task_losses, labelled = self.criterion_.loss(outputs, targets)
        loss, weights = weighting.backward(task_losses, shared=shared)
        return {
            "loss": loss,
            "task_losses": task_losses.detach(),
            "labelled": labelled,
            "weights": weights,
            "y_pred": outputs,
        }

    def train_step(self, batch, **fit_params):
        """zero_grad -> forward/backward -> optimizer step, without a closure.

        skorch wraps the step in an optimizer closure and builds a parameter
        generator per batch for ``on_grad_computed``; we only notify that hook
        when a callback implements it.
        """
        optimizer = self.optimizer_
        optimizer.zero_grad(set_to_none=True)
        step = self.train_step_single(batch, **fit_params)
        hooks = self.__dict__.get("_hooks") or self._batch_hooks()
        if hooks["on_grad_computed"]:
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
        optimizer.step()
        return step

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """One pass over ``iterator``; statistics stay on the device until the end.

        The per-batch statistics are kept as device tensors and reduced once at
        the end of the epoch, then read to the host in one copy. Per-batch
        callback notifications (and skorch's per-batch history rows) happen
        only when a callback listens to them.
        """
        self._set_training(training)
        self._hooks = hooks = self._batch_hooks()
        notify_batches = hooks["on_batch_begin"] or hooks["on_batch_end"]
        n_tasks = self.criterion_.loss.n_tasks
        losses, task_losses, labelled, weights, sizes = [], [], [], [], []
        for batch in iterator:
            if notify_batches:
                self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            # detach: a strategy's tensors must not keep a graph alive all epoch.
            losses.append(step["loss"].detach())
            task_losses.append(step["task_losses"])
            labelled.append(step["labelled"])
            weights.append(step["weights"].detach())
            sizes.append(batch[0].shape[0])
            if notify_batches:
                self.notify("on_batch_end", batch=batch, training=training, **step)
        n_rows, n_batches = sum(sizes), len(sizes)
        if n_batches:
            size_t = torch.as_tensor(sizes, dtype=torch.float32).to(self.device)
            total = (torch.stack(losses).float() * size_t).sum()
            lab = torch.stack(labelled)
            task_sum = (torch.stack(task_losses) * lab).sum(0)
            task_count = lab.sum(0)
            weight_sum = torch.stack(weights).sum(0)
        else:
            total = torch.zeros((), device=self.device)
            zeros = torch.zeros(n_tasks, device=self.device)
            task_sum = task_count = weight_sum = zeros
        task_means = torch.where(
            task_count > 0, task_sum / task_count.clamp_min(1e-12), torch.nan
        )
        # The one host read of the epoch.
        stats = torch.cat(
            [
                (total / max(n_rows, 1)).reshape(1),
                task_means,
                weight_sum / max(n_batches, 1),
            ]
        ).tolist()
        self.criterion_.weighting.on_epoch_end(task_means)
        self.history.record(prefix + "_loss", stats[0])
        self.history.record(prefix + "_task_losses", stats[1 : 1 + n_tasks])
        self.history.record(prefix + "_task_weights", stats[1 + n_tasks :])
        self.history.record(prefix + "_batch_count", n_batches)

    # ------------------------------------------------------------------ state
    def snapshot(self, device=None):
        """A copy of the weights of the network and the criterion.

        The copy stays on the training device unless ``device`` is given.
        """
        return {
            name: {
                k: v.detach().to(device, copy=True)
                for k, v in module.state_dict().items()
            }
            for name, module in (
                ("module", self.module_),
                ("criterion", self.criterion_),
            )
        }

    def _weights_finite(self) -> bool:
        """Whether every weight is finite (one host read, once per epoch)."""
        params = [p for p in self.module_.parameters() if p.is_floating_point()]
        if not params:
            return True
        return bool(torch.stack([torch.isfinite(p).all() for p in params]).all())

    def restore(self, state):
        self.module_.load_state_dict(state["module"])
        self.criterion_.load_state_dict(state["criterion"])

    # ------------------------------------------------------------------ loops
    def train_epochs(
        self,
        X,
        targets,
        epochs,
        *,
        stopping,
        shuffle=True,
        valid=None,
        generator=None,
        batches=None,
    ):
        """Train up to ``epochs`` epochs; return True if a stopping rule fired.

        ``X`` and ``targets`` are tensors already on the device; ``valid`` is an
        optional ``(X_valid, targets_valid)`` pair scored after every epoch.
        ``batches`` (streamed data, see ``_dask.BlockBatches``) replaces ``X`` and
        ``targets``: a re-iterable of ``(X_batch, targets_batch)`` device tensors,
        one pass per epoch.
        A KeyboardInterrupt stops training with a warning and a usable model.
        """
        if batches is None:
            batches = TensorBatches(X, targets, self.batch_size, shuffle, generator)
        self.notify("on_train_begin", X=X, y=targets)
        stopped = False
        try:
            for _ in range(epochs):
                last_good = self.snapshot()
                self.notify(
                    "on_epoch_begin", dataset_train=batches, dataset_valid=valid
                )
                self.run_single_epoch(batches, True, "train", self.train_step)
                loss = self.history[-1, "train_loss"]
                # A last step can leave non-finite weights behind a finite loss.
                if not math.isfinite(loss) or not self._weights_finite():
                    self.restore(last_good)
                    self.initialize_optimizer()  # its moments are not finite either
                    del self.history[-1]
                    raise TrainingDivergedError(
                        f"Training diverged: the training loss became {loss} (or the "
                        "weights became non-finite) in epoch "
                        f"{len(self.history) + 1}. The model keeps the last weights "
                        "with a finite loss. Try a lower learning_rate_init, or "
                        "scale the features."
                    )
                if valid is not None:
                    scores = self.score_outputs(valid[0], valid[1]).tolist()
                    self.history.record("valid_task_scores", scores)
                    self.history.record("valid_score", sum(scores) / len(scores))
                self.notify("on_epoch_end", dataset_train=batches, dataset_valid=valid)
                if stopping.stop_:
                    stopped = True
                    break
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=5)
            if len(self.history) and "train_loss" not in self.history[-1]:
                del self.history[-1]
        stopping.restore_best(self)
        self.notify("on_train_end", X=X, y=targets)
        return stopped

    def forward_outputs(self, X, batch_size):
        """Network outputs for a device tensor ``X`` in large batches, eval mode.

        The network computes in the dtype of ``X``: float64 input runs on float64
        copies of the weights, so a row's output agrees to ~1e-15 whatever batch
        it is in (float32 GEMM kernels round differently with the batch shape).
        """
        self._set_training(False)
        module = self.module_
        if X.dtype != torch.float32:
            state = {
                k: v.to(X.dtype) if v.is_floating_point() else v
                for k, v in module.state_dict(keep_vars=False).items()
            }

            def forward(xb):
                return functional_call(module, state, (xb,))
        else:
            forward = module
        # Autocast (precision="bf16") applies to float32 input only.
        autocast = self._autocast() if X.dtype == torch.float32 else None
        with torch.inference_mode(), autocast or contextlib.nullcontext():
            outs = [
                forward(X[start : start + batch_size])
                for start in range(0, X.shape[0], batch_size)
            ]
        out = torch.cat(outs) if len(outs) != 1 else outs[0]
        return out.to(X.dtype)

    def score_outputs(self, X, targets, batch_size=8192):
        """Per-task validation scores (accuracy / R2), computed on the device."""
        outputs = self.forward_outputs(X, batch_size)
        with torch.inference_mode():
            return self.criterion_.loss.scores(outputs, targets)

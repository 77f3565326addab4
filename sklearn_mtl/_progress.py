"""Progress reporting of a fit: per-task history keys, the epoch table, a batch bar.

skorch's own callbacks, fed with what the engine records once per epoch (the
lists ``train_task_losses`` and ``valid_task_scores``):

- :class:`TaskHistory` writes one history key per task and statistic,
  ``train_loss_<task>`` and ``valid_score_<task>``, so that
  ``net.history[:, "train_loss_<task>"]`` reads like any skorch key;
- :class:`TaskPrintLog` (``verbose >= 1``) prints one table row per epoch with
  those keys, tasks in their order;
- :class:`BatchProgressBar` (``verbose >= 2``) draws a tqdm bar over the
  batches of each epoch.
"""

from __future__ import annotations

from skorch.callbacks import Callback, PrintLog, ProgressBar

#: History keys holding one list entry per task (the engine's records).
PER_TASK_LISTS = (
    "train_task_losses",
    "train_task_weights",
    "valid_task_losses",
    "valid_task_weights",
    "valid_task_scores",
)
#: List key -> prefix of the per-task keys written from it.
PER_TASK_KEYS = {"train_task_losses": "train_loss", "valid_task_scores": "valid_score"}


def task_names(net, n_tasks: int) -> list[str]:
    """The task names the estimator gave the engine (``task_<i>`` otherwise)."""
    names = getattr(net, "task_names", None)
    if names is None or len(names) != n_tasks:
        return [f"task_{i}" for i in range(n_tasks)]
    return [str(name) for name in names]


class TaskHistory(Callback):
    """Write ``train_loss_<task>`` and ``valid_score_<task>`` into the history.

    Runs at the end of each epoch, after the engine recorded the per-task
    lists; costs a few dictionary writes per epoch.
    """

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        for source, prefix in PER_TASK_KEYS.items():
            values = row.get(source)
            if values is None:
                continue
            for name, value in zip(task_names(net, len(values)), values):
                net.history.record(f"{prefix}_{name}", value)


class TaskPrintLog(PrintLog):
    """skorch's epoch table with one column per task, tasks in their order.

    Columns: ``epoch``, ``train_loss`` (the weighted total), ``train_loss_<task>``
    for each task, then with early stopping ``valid_score`` (the mean) and
    ``valid_score_<task>``, then other keys callbacks record, then ``dur``.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "keys_ignored",
            [*PER_TASK_LISTS, "train_batch_count", "valid_batch_count"],
        )
        super().__init__(**kwargs)

    def _sorted_keys(self, keys):
        keys = list(keys)
        per_task = []
        for prefix in ("train_loss", "valid_score"):
            if prefix in keys:
                per_task.append(prefix)
            per_task += [
                k for k in keys if k.startswith(prefix + "_") and k != prefix + "_best"
            ]
        rest = [k for k in super()._sorted_keys(keys) if k not in per_task]
        head = [k for k in rest if k == "epoch"]
        return head + per_task + [k for k in rest if k != "epoch"]


class BatchProgressBar(ProgressBar):
    """A tqdm bar over the training batches of each epoch (on stderr).

    The bar's total is the number of batches of the epoch. It shows no running
    loss: reading the loss every batch would stall the device.
    """

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        import tqdm

        total = None
        if dataset_train is not None:
            total = len(net.get_iterator(dataset_train, training=True))
        self.pbar_ = tqdm.tqdm(
            total=total, leave=False, desc=f"epoch {len(net.history)}", unit="batch"
        )

    def on_batch_end(self, net, training=True, **kwargs):
        if training:
            self.pbar_.update()


def progress_callbacks(verbose: int) -> list[tuple[str, Callback]]:
    """The engine's reporting callbacks for ``verbose`` (0, 1, 2)."""
    callbacks = [("task_history", TaskHistory())]
    if verbose:
        callbacks.append(("print_log", TaskPrintLog()))
    if verbose >= 2:
        callbacks.append(("progress_bar", BatchProgressBar()))
    return callbacks

"""Shared numpydoc fragments, so the three estimators do not copy parameter text."""

from __future__ import annotations

_PARAMS = {
    "task_types": """task_types : dict or None, default=None
        Kind of each task, ``{task_name: "binary" | "multiclass" | "regression"}``.
        Tasks not named are inferred from their labels (as
        :func:`sklearn.utils.multiclass.type_of_target` does): integer-valued
        regression targets look like classes, so name them here.""",
    "inputs": """categorical_features : "from_dtype", None, or array-like of \
bool, int or str, default="from_dtype"
        The categorical columns of ``X``, as in
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`:
        ``"from_dtype"`` takes the DataFrame columns of dtype ``category``,
        ``str`` / ``object`` and ``bool`` (none for an array); or a boolean
        mask over the columns, column indices, or column names. ``None``: every
        column is numeric. Each categorical column is one-hot encoded or gets
        a learned embedding (see ``one_hot_max_size``); categories seen first
        at predict time map to a reserved "unknown" entry, missing values
        (NaN / None) are a category of their own. Other columns must be
        numeric; NaN in them is replaced by the training median, with a
        learned missing indicator for columns that had NaN in fit.

    numeric_scaling : {"auto", "quantile", "robust"} or None, default="auto"
        Scaling of the numeric columns learned in ``fit``: ``"quantile"`` maps
        each column through its training quantiles to a standard normal;
        ``"robust"`` subtracts the median and divides by the interquartile
        range; ``None`` reads the numbers as they are (for data scaled
        beforehand). ``"auto"`` is ``"quantile"`` for raw tabular data (``X``
        has categorical columns, or NaN in a numeric column) and ``None`` for
        complete numeric input, which is then read exactly as given.

    num_embeddings : {"auto", "piecewise_linear", "piecewise_linear_tree", \
"periodic"} or None, default="auto"
        Embedding of each numeric feature (Gorishniy et al., NeurIPS 2022,
        package ``rtdl_num_embeddings``): ``"piecewise_linear"`` on quantile
        bins, ``"piecewise_linear_tree"`` on target-aware bins (for every task a
        decision tree per feature on its labelled rows; a feature's bin edges
        are the union over tasks, thinned to ``n_bins``), ``"periodic"``
        (learned sin/cos frequencies). ``None`` feeds the numbers directly.
        ``"auto"`` is ``"piecewise_linear"`` for raw tabular data (``X`` has
        categorical columns, or NaN in a numeric column; where it was
        measured best: see ``docs/tabular.md``) and ``None`` for complete
        numeric input. The choice
        is kept in ``inputs_["num_embeddings"]``.

    n_bins : int, default=48
        Number of bins of the piecewise-linear embeddings.

    embedding_dim : int, default=16
        Size of each categorical embedding and of each numeric embedding.

    one_hot_max_size : int, default=16
        Categorical columns with at most this many categories in fit are
        one-hot encoded inside the network (a category first seen at predict
        time sets no column; missing values have their own); larger ones get a
        learned embedding of size ``embedding_dim``. ``0``: embeddings for
        all. As CatBoost's ``one_hot_max_size``. Which columns are one-hot is
        kept in ``inputs_["one_hot"]``.""",
    "network": """hidden_layer_sizes : tuple of int, default=(100,)
        Sizes of the hidden layers of the shared trunk. ``()`` gives no trunk.

    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of every hidden layer, trunk and heads.

    dropout : float in [0, 1), default=0.0
        Dropout probability after every hidden layer, during training only.

    head_layer_sizes : tuple of int, default=()
        Hidden layers of each task's own head (tower). ``()`` gives a linear
        head per task. All heads are computed in one batched operation.

    n_ensemble : int, default=1
        Members of a parameter-efficient ensemble (TabM-mini, Gorishniy et al.,
        ICLR 2025, package ``tabm``): the members share the whole network but
        scale the features by their own learned vector and have their own task
        heads. Each member's loss is averaged in training; probabilities (and
        regression outputs) are averaged over members at predict time. Works
        with every ``architecture`` and ``loss_weighting``; costs about
        ``n_ensemble`` times the compute of one network.

    task_weights : dict or None, default=None
        Static weight of each task's loss, ``{task_name: weight}``; unnamed
        tasks weigh 1. The training loss is the weighted sum of task losses.""",
    "class_weight": """class_weight : None, "balanced" or dict, default=None
        Class weights in each classification task's loss. ``"balanced"``
        weighs classes by ``n_labelled / (n_classes * count)`` in every task; a
        dict keyed by task name gives ``"balanced"`` or ``{label: weight}`` per
        task. With a single task, ``{label: weight}`` may be given directly.
        A row's weight in a task's loss is mask x sample weight x class
        weight, normalised by mask x sample weight.""",
    "training": """solver : {"adam", "adamw"}, default="adam"
        Optimizer: ``"adam"`` with ``alpha`` as an L2 penalty (as
        :class:`~sklearn.neural_network.MLPClassifier`), or ``"adamw"``
        (Loshchilov & Hutter, 2019) with ``alpha`` as decoupled weight decay.

    alpha : float, default=1e-4
        With ``solver="adam"``, strength of the L2 penalty on weights (not
        biases), as in :class:`~sklearn.neural_network.MLPClassifier`; with
        ``"adamw"``, the decoupled weight decay of the weights (AdamW's
        ``weight_decay``; values around 1e-4 to 1e-2 are usual).

    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.

    learning_rate_init : float, default=1e-3
        Learning rate of the Adam optimizer.

    max_iter : int, default=200
        Maximum number of epochs (passes over the data).

    shuffle : bool, default=True
        Whether to shuffle the rows every epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation
        split. With an int, a fit on the CPU is reproducible bit for bit.

    tol : float, default=1e-4
        Tolerance for the stopping rule: training stops when the training loss
        (or, with early stopping, the validation score) has not improved by at
        least ``tol`` for ``n_iter_no_change`` consecutive epochs.

    verbose : bool or int, default=False
        ``1`` (or True) prints a table row per epoch: the training loss, each
        task's training loss (``train_loss_<task>``) and, with early stopping,
        the mean and each task's validation score (``valid_score_<task>``).
        ``2`` adds a progress bar over each epoch's batches (tqdm, on stderr).

    warm_start : bool, default=False
        Reuse the fitted network (and optimizer state) on the next ``fit``.
        Parameters the network and loss weighting were built from (the
        architecture, ``loss_weighting``, ``task_weights``, ``solver``, ...)
        keep their first fit's values; a warm fit after changing one warns.
        The input encoding (``categorical_features``, ``one_hot_max_size``,
        ``numeric_scaling``, ``n_bins``) is also the first fit's, as a
        fitted transformer's in a Pipeline is; set ``warm_start=False`` to
        learn it again.
        With early stopping, the next ``fit`` also goes on from the stopping
        rule's best score, counter and best weights, as
        :class:`~sklearn.neural_network.MLPClassifier` does: after a fit that
        stopped early, it stops after one epoch without improvement. With an
        int ``random_state`` every warm fit holds out the same validation rows.

    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the rows, stop when their mean
        per-task score stops improving, and restore the best weights.
        ``"auto"`` turns it on for a ``fit`` on at least 1000 rows (100
        validation rows at the default fraction; for a dask collection, also
        at least two blocks, as whole blocks are held out); ``partial_fit``
        never holds rows out.

    validation_fraction : float in (0, 1), default=0.1
        Share of the rows held out for early stopping.

    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.

    device : str, default="auto"
        Torch device to train and predict on; ``"auto"`` takes CUDA when it is
        available, else the CPU.

    precision : {"float32", "bf16"}, default="float32"
        Precision of the forward pass in training, and in prediction for
        float32 input. ``"bf16"`` runs it under ``torch.autocast`` with
        bfloat16 (fast on recent GPUs; supported, rarely faster, on CPUs);
        losses, gradients and weights stay float32.

    compile : bool, default=False
        Train through ``torch.compile`` of the network (PyTorch 2): the first
        epoch pays the compilation, later ones may run faster, mostly on GPUs.
        The fitted ``module_`` stays the plain, picklable network. Not with
        a ``loss_weighting`` that balances gradients (``"gradnorm"``,
        ``"pcgrad"``, ``"mgda"``, torchjd's): a ValueError names both.

    callbacks : list or None, default=None
        Extra :mod:`skorch.callbacks` (instances or ``(name, callback)``
        pairs) run by the training engine beside its own stopping rule, e.g.
        ``LRScheduler``, ``Checkpoint``, ``EarlyStopping``, ``EpochScoring``
        with a scorer of :mod:`sklearn_mtl.metrics`, ``GradientNormClipping``,
        ``ProgressBar``. The history keys they can monitor: ``train_loss``,
        ``train_loss_best`` and, with ``early_stopping=True``, ``valid_loss``,
        ``valid_loss_best``, ``valid_score``, ``valid_score_best``.""",
    "multitask": """architecture : {"shared_bottom", "mmoe", "omoe", "cgc", "ple", \
"cross_stitch"}, default="shared_bottom"
        How tasks share the network (see ``docs/architectures.md``):
        ``"shared_bottom"``: one MLP trunk (``hidden_layer_sizes``) and a head
        per task. ``"mmoe"``: ``n_experts`` expert MLPs (``expert_layer_sizes``)
        mixed by one softmax gate per task (Ma et al., 2018); ``"omoe"``: the
        same with one gate shared by all tasks. ``"cgc"`` / ``"ple"``:
        ``n_shared_experts`` shared and ``n_task_experts`` task-specific experts
        per task, each task's gate mixing the shared experts and its own; PLE
        stacks ``n_levels`` such levels joined by a shared gate (Tang et al.,
        2020). ``"cross_stitch"``: one MLP column (``hidden_layer_sizes``) per
        task, mixed by learned cross-stitch units after every layer (Misra et
        al., 2016). ``head_layer_sizes`` gives every architecture's towers.

    n_experts : int, default=4
        Number of experts of ``"mmoe"`` / ``"omoe"``.

    expert_layer_sizes : tuple of int, default=(32,)
        Hidden layers of every expert (``"mmoe"``, ``"omoe"``, ``"cgc"``,
        ``"ple"``).

    n_shared_experts : int, default=2
        Shared experts per level of ``"cgc"`` / ``"ple"``.

    n_task_experts : int, default=1
        Experts of each task per level of ``"cgc"`` / ``"ple"``.

    n_levels : int, default=2
        Number of extraction levels of ``"ple"`` (``"cgc"`` is one level).

    loss_weighting : str, default="static"
        How task losses are balanced (:mod:`sklearn_mtl.weighting`):
        ``"static"`` (``task_weights``), ``"uncertainty"`` (Kendall et al.,
        2018), ``"dwa"`` (Liu et al., 2019), ``"rlw"`` (random weights),
        ``"gradnorm"`` (Chen et al., 2018), ``"pcgrad"`` (Yu et al., 2020),
        ``"mgda"`` (MGDA-UB, Sener & Koltun, 2018), ``"famo"`` (Liu et al.,
        2023); with the optional ``torchjd`` package (extra ``jd``:
        ``pip install "sklearn-mtl[jd]"``) also ``"upgrad"``, ``"dualproj"`` and
        ``"aligned_mtl"``.
        Gradient methods work on the gradients of the shared representation,
        one backward pass per task through the heads, no extra forward pass.
        ``task_weights`` may only be set with ``"static"``.

    loss_weighting_params : dict or None, default=None
        Keyword arguments of the strategy, e.g. ``{"alpha": 1.5}`` for
        GradNorm, ``{"temperature": 2.0}`` for DWA, ``{"lr": 0.025}`` for FAMO.

    trunk : torch.nn.Module class, callable or None, default=None
        A feature extractor built as ``trunk(**trunk_kwargs)``. It must map the
        float tensor ``X`` of shape ``(n, n_features)`` to ``(n, d)`` (reshape
        inside it for images or sequences); ``d`` is found by a dry forward
        pass. The architecture then reads the ``d`` features (set
        ``hidden_layer_sizes=()`` to put the heads directly on the trunk).

    trunk_kwargs : dict or None, default=None
        Keyword arguments of ``trunk``.""",
}

_ATTRIBUTES = """task_names_ : list of str
        Task names: the DataFrame columns of ``y``, else ``"task_0"``, ...

    tasks_ : TaskSet
        The tasks, each with its ``name``, ``kind`` and ``classes``.

    n_outputs_ : int
        Number of tasks.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` has string column names.

    inputs_ : dict
        What was learned from the training ``X`` (plain data): the numeric and
        categorical columns, each categorical column's categories, the
        numeric medians, missing indicators, scaling and embedding bins.

    module_ : torch.nn.Module
        The trained network.

    engine_ : skorch.NeuralNet
        The training engine (a :class:`skorch.NeuralNet`), with its
        ``history``.

    n_iter_ : int
        Number of epochs run (accumulated over warm starts and partial fits).

    loss_curve_ : list of float
        Training loss (weighted sum of task losses) per epoch.

    task_loss_curves_ : dict of str to list of float
        Each task's training loss per epoch, over its labelled rows.

    best_loss_ : float or None
        Lowest training loss, when early stopping is off.

    validation_scores_ : list of float or None
        Mean per-task validation score per epoch (accuracy, or R2 for
        regression), with early stopping; else None. The mean is over the
        tasks with a labelled validation row.

    best_validation_score_ : float or None
        Best of ``validation_scores_``.

    task_validation_scores_ : dict of str to list of float, or None
        Each task's validation score per epoch (accuracy, or R2 for
        regression), with early stopping; else None. NaN for a task without
        a labelled row in the validation split.

    task_weight_curves_ : dict of str to list of float
        Each task's loss weight per epoch (mean over the epoch's batches) as
        used by ``loss_weighting``."""


def params(*names: str) -> str:
    """Parameter text for the given fragment names."""
    return "\n\n    ".join(_PARAMS[name] for name in names)


ATTRIBUTES = _ATTRIBUTES

"""Pure torch modules of sklearn-mtl: no numpy, no scikit-learn.

- :mod:`~sklearn_mtl.nn.embeddings`: input embeddings (numeric, categorical);
- :mod:`~sklearn_mtl.nn.backbones`: MLPs, grouped linear layers, ensembles, the
  sparse-input first layer;
- :mod:`~sklearn_mtl.nn.heads`: the fused per-task heads;
- :mod:`~sklearn_mtl.nn.architectures`: shared bottom, MMoE, CGC/PLE,
  cross-stitch, and :func:`~sklearn_mtl.nn.architectures.build_network`.
"""

from .architectures import (
    ARCHITECTURES,
    CrossStitchNetwork,
    FeatureNetwork,
    MixtureOfExperts,
    ProgressiveLayeredExtraction,
    SharedBottomNetwork,
    build_network,
)
from .backbones import (
    ACTIVATIONS,
    Dropout,
    EnsembleNetwork,
    GroupedLinear,
    SparseInputLinear,
    average_members,
    make_mlp,
)
from .embeddings import (
    NUM_EMBEDDINGS,
    CategoricalEmbedding,
    OneHotCategories,
    TabularEmbedding,
    numeric_embedding,
)
from .heads import TaskHeads

__all__ = [
    "ACTIVATIONS",
    "Dropout",
    "ARCHITECTURES",
    "NUM_EMBEDDINGS",
    "CategoricalEmbedding",
    "OneHotCategories",
    "CrossStitchNetwork",
    "EnsembleNetwork",
    "FeatureNetwork",
    "GroupedLinear",
    "MixtureOfExperts",
    "ProgressiveLayeredExtraction",
    "SharedBottomNetwork",
    "SparseInputLinear",
    "TabularEmbedding",
    "TaskHeads",
    "average_members",
    "build_network",
    "make_mlp",
    "numeric_embedding",
]

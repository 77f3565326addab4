"""Sphinx configuration: numpydoc API pages and a sphinx-gallery of examples."""

import sklearn_mtl

project = "sklearn-mtl"
release = sklearn_mtl.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
exclude_patterns = ["_build", "auto_examples/*.ipynb"]
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://pytorch.org/docs/stable", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable", None),
}
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
}
html_theme = "alabaster"

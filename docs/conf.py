"""Sphinx configuration of the bayes_gmm site.

Build it with the README's command (warnings are errors)::

    pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html

What the build reads and writes:

* ``api/`` — the reference: autosummary writes one page per public name into
  ``api/generated/`` (numpydoc parses the docstrings; a docstring that does not parse, or a
  reference to a bayes_gmm name that does not exist, is a warning, so an error).
* ``tutorials/`` — the five notebooks of ``notebooks/``, copied here at the start of each
  build and executed by myst-nb, with their outputs kept in a jupyter cache under
  ``_build/.jupyter_cache`` (a notebook is re-run only when one of its cells changes).
  ``-D nb_execution_mode=off`` renders them without running them (tests/test_docs.py does,
  since tests/test_notebooks.py already executes them).
* ``examples/`` — the gallery sources (sphinx-gallery), run into ``auto_examples/`` (an
  example is re-run only when its source changed); each makes a figure.
  ``-D plot_gallery=0`` skips running them; the environment variable
  ``BAYES_GMM_DOCS_RUN_EXAMPLES`` (a regular expression on the path) runs only those it
  matches.

Nothing is fetched from the network (no intersphinx): names of other packages (jax, numpy,
arviz, ...) are left unlinked, and only references into bayes_gmm must resolve.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
# Keep the build's compiled programs out of the reader's persistent compilation cache.
os.environ.setdefault("BAYES_GMM_NO_CACHE", "1")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(DOCS / "_ext"))  # gallery_figures: the gallery's image scraper

import bayes_gmm  # noqa: E402  (after the environment above)

project = "bayes_gmm"
author = "the bayes_gmm developers"
copyright = "2026, " + author
release = bayes_gmm.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "examples", "auto_examples/*.ipynb", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints",
                    "sbc_run.py"]
templates_path = ["_templates"]
html_static_path = ["_static"]

# ---- cross-references: ours must resolve, other packages' are plain text ----------------
default_role = "py:obj"          # `GMMPrior` in a docstring is a link
nitpicky = True                  # ... and a link to nothing is a warning (an error with -W)
_EXTERNAL = ("jax", "jnp", "np", "numpy", "numpyro", "arviz", "az", "xarray", "pandas", "pd",
             "matplotlib", "scipy", "sklearn", "os", "pathlib", "typing", "collections",
             "optax", "numbers", "lax", "jit", "vmap", "functools", "tqdm")
nitpick_ignore_regex = [
    (r"py:.*", r"(%s)(\..*)?" % "|".join(_EXTERNAL)),
    # builtins and typing words in signatures and numpydoc type fields
    (r"py:.*", r"(int|float|bool|str|dict|list|tuple|None|object|callable|Callable|"
               r"Optional|Sequence|Iterable|Mapping|Any|PathLike|Path|Figure|Axes|"
               r"Generator|RandomState|DataFrame|Dataset|DataArray|InferenceData|Array|"
               r"ndarray|ArrayLike)"),
    # private names are not documented (the base classes of the covariance families, ...)
    (r"py:.*", r"(.*\.)?_[A-Za-z]\w*"),
]

# ---- API reference ----------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autosummary_ignore_module_all = False    # a module page lists its __all__
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False      # numpyro's Distribution docstrings are not ours
numpydoc_show_class_members = False      # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False         # "(N, D) array" is prose, not a type to link
numpydoc_validation_checks: set[str] = set()

# ---- notebooks (myst-nb) ----------------------------------------------------------------
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_in_temp = True              # the notebooks write their scratch files elsewhere
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]


def _copy_tutorials() -> None:
    """notebooks/NN_name.ipynb -> docs/tutorials/NN_name.ipynb (copied when changed)."""
    target = DOCS / "tutorials"
    target.mkdir(exist_ok=True)
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        dest = target / nb.name
        if not dest.exists() or dest.read_bytes() != nb.read_bytes():
            shutil.copyfile(nb, dest)


_copy_tutorials()

# ---- gallery (sphinx-gallery) ------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    # which examples run (the others are shown without output): all of them, unless
    # BAYES_GMM_DOCS_RUN_EXAMPLES (a regular expression on the path) says otherwise, as
    # tests/test_docs.py does to keep CI fast
    "filename_pattern": os.environ.get("BAYES_GMM_DOCS_RUN_EXAMPLES", r"/plot_"),
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("bayes_gmm",),
    "backreferences_dir": "api/backreferences",
    "reference_url": {"bayes_gmm": None},
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "min_reported_time": 1,
    "show_signature": False,
    "download_all_examples": False,
    # the figures bayes_gmm returns (detached from pyplot), then pyplot's (this one closes
    # them, after which a pyplot figure would look detached too)
    "image_scrapers": ("gallery_figures.scrape_detached_figures", "matplotlib"),
    "matplotlib_animations": False,
    "capture_repr": ("_repr_html_", "__repr__"),
}

# ---- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"bayes_gmm {release}"
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
html_css_files = ["custom.css"]


# ---- one page per object ------------------------------------------------------------------
def _public_objects():
    return {id(getattr(bayes_gmm, name)): name for name in bayes_gmm.__all__
            if not isinstance(getattr(bayes_gmm, name), (str, type(None)))}


_PUBLIC = _public_objects()


def _skip_public_in_internals(app, what, name, obj, skip, options):
    """On the internals pages a public object is not documented a second time: its page is
    ``bayes_gmm.<name>`` (one target per object, so a short name links unambiguously)."""
    if what == "module" and id(obj) in _PUBLIC:
        return True
    return None


def _lookup(dotted):
    """The object a dotted bayes_gmm path names, or None."""
    if not dotted.startswith("bayes_gmm."):
        return None
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        return obj
    return None


def _resolve_short_name(app, env, node, contnode):
    """`GMMParams` (a bare name, as the docstrings write them) links to its one page: the
    public face ``bayes_gmm.GMMParams`` first, else the one documented object of that name.
    A dotted name must name a real object (it is imported, never guessed); it links to
    the page where that object is documented."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    domain = env.get_domain("py")
    if "." in target:
        # a home-module path of a public object (``bayes_gmm.core.params.GMMParams``, as
        # autodoc writes annotations) is the same object: link its public page
        # or a path through a package that re-exports it (its home module's page)
        obj = _lookup(target)
        if obj is None:
            return None
        if id(obj) in _PUBLIC:
            full = f"bayes_gmm.{_PUBLIC[id(obj)]}"
        else:
            full = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
        if full == target or full not in domain.objects:
            return None
        return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", full, node,
                                   contnode)
    if target in bayes_gmm.__all__:
        full = f"bayes_gmm.{target}"
    else:
        found = [n for n in domain.objects if n.rsplit(".", 1)[-1] == target]
        if len(found) != 1:
            return None
        full = found[0]
    if full not in domain.objects:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", full, node, contnode)


def setup(app):
    app.connect("autodoc-skip-member", _skip_public_in_internals)
    app.connect("missing-reference", _resolve_short_name)
    return {"parallel_read_safe": True}

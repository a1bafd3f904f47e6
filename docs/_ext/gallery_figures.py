"""A sphinx-gallery image scraper for the figures bayes_gmm returns.

matplotlib's own scraper saves the figures that pyplot manages (``plt.subplots``).
bayes_gmm's figure functions return figures *detached* from pyplot (they never show
anything, so they work in scripts and headless runs alike), which that scraper cannot see.
This one finds them among the example's variables after each code block and saves each
once, in the order the names were bound.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from sphinx_gallery.scrapers import figure_rst

_saved: dict[str, set[int]] = {}      # example file -> ids of the figures already saved


def scrape_detached_figures(block, block_vars, gallery_conf):
    seen = _saved.setdefault(str(block_vars["src_file"]), set())
    # pyplot's figures are the next scraper's, now and in later blocks (once it has closed
    # them they are out of pyplot, but still not ours)
    seen |= {id(plt.figure(n)) for n in plt.get_fignums()}
    paths = []
    for value in list(block_vars["example_globals"].values()):
        if isinstance(value, Figure) and id(value) not in seen:
            seen.add(id(value))
            path = next(block_vars["image_path_iterator"])
            value.savefig(path)
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"]) if paths else ""

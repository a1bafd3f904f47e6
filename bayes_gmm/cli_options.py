"""The ``bayes-gmm`` command's arguments: their types (K lists, covariance-type lists,
positive ints) and the option groups ``fit`` and ``compare`` share (used by
:mod:`bayes_gmm.cli`)."""

from __future__ import annotations

import argparse
import re

from .core.covariance import ALL_COVARIANCE_TYPES

__all__ = ["parse_ks", "covariance_types", "positive_int", "add_bayes_options",
           "add_data_options"]


def parse_ks(text: str) -> list[int]:
    """'3', '1..6', '1-6' or '1,2,4' -> sorted list of ints >= 1."""
    text = text.strip()
    m = re.fullmatch(r"(\d+)\s*(?:\.\.|-|:)\s*(\d+)", text)
    try:
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            ks = list(range(lo, hi + 1))
        else:
            ks = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(
            f"expected K >= 1 as '3', a range '1..6' or a list '1,2,4'; got {text!r}")
    return sorted(set(ks))


def covariance_types(text: str):
    """'full', 'all' or 'EEE,VVV' -> a name, "all" or a list of names."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in ALL_COVARIANCE_TYPES]
    if text.strip() == "all":
        return "all"
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected 'all' or names from "
                                         f"{', '.join(ALL_COVARIANCE_TYPES)}; got {text!r}")
    return names[0] if len(names) == 1 else names


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return v


def add_bayes_options(p, default_warmup=500, default_samples=1000):
    g = p.add_argument_group("Bayesian fits (--method nuts|svi)")
    g.add_argument("--num-warmup", type=positive_int, default=default_warmup,
                   help="NUTS warm-up iterations per chain (default %(default)s)")
    g.add_argument("--num-samples", type=positive_int, default=default_samples,
                   help="posterior draws kept per chain (default %(default)s)")
    g.add_argument("--num-chains", type=positive_int, default=4,
                   help="NUTS chains (default %(default)s)")
    g.add_argument("--num-steps", "--svi-steps", dest="num_steps", type=positive_int,
                   default=5000,
                   help="SVI optimisation steps (default %(default)s)")


def add_data_options(p, grid=False):
    p.add_argument("data", metavar="DATA",
                   help="CSV or whitespace-separated text file; header row auto-detected")
    t = p.add_argument_group("reading DATA (pandas; see bayes_gmm.tables)")
    t.add_argument("--sep", default=None,
                   help="field separator (default: , ; or tab when the first data line has "
                        "one, else whitespace)")
    t.add_argument("--decimal", default=".", help="decimal mark, e.g. ',' (default '.')")
    t.add_argument("--encoding", default=None,
                   help="file encoding (default: UTF-8, else Latin-1)")
    t.add_argument("--header", dest="header", action="store_const", const=True, default=None,
                   help="the first line is a header (default: detected)")
    t.add_argument("--no-header", dest="header", action="store_const", const=False,
                   help="the first line is data")
    t.add_argument("--index-col", default=None,
                   help="name or 0-based position of a column of row labels (not fitted)")
    p.add_argument("--method", choices=("em", "nuts", "svi"), default="em",
                   help="em: maximum likelihood; nuts/svi: full posterior (default %(default)s)")
    if grid:
        p.add_argument("--covariance-type", type=covariance_types, default="full",
                       help="covariance structure (default %(default)s): one name, 'all' "
                            "(mclust's fourteen families; E and V for one column) or a "
                            "comma-separated list, which gives mclust's family x K table")
        p.add_argument("--criterion", choices=("bic", "icl"), default="bic",
                       help="what recommends the EM model (default %(default)s)")
    else:
        p.add_argument("--covariance-type", choices=ALL_COVARIANCE_TYPES, default="full",
                       help="covariance structure (default %(default)s)")
    t.add_argument("--missing", choices=("error", "marginalize"), default="error",
                   help="missing cells (empty, NA, NaN, ...): an error naming the line "
                        "(default), or 'marginalize': integrated out of the likelihood "
                        "exactly (EM, NUTS and SVI), and filled in imputed.csv (fit)")
    t.add_argument("--columns", type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
                   default=None, help="comma-separated column names (or 0-based positions) "
                   "to fit, chosen before parsing (skips text columns); default all")
    p.add_argument("--standardize", action="store_true",
                   help="centre and scale every column to unit variance before fitting")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true", help="write no figures")
    q = p.add_argument_group("prior (GMMPrior; any option below implies --prior)")
    q.add_argument("--prior", action="store_true",
                   help="EM: MAP under GMMPrior() instead of maximum likelihood (NUTS/SVI "
                        "always use a prior)")
    q.add_argument("--prior-concentration", type=float, default=None, metavar="ALPHA",
                   help="Dirichlet concentration of the weights (default 1)")
    q.add_argument("--prior-mean-precision", type=float, default=None, metavar="KAPPA",
                   help="precision of the means' prior, in units of the covariance "
                        "(default 0.01)")
    q.add_argument("--prior-dof", type=float, default=None, metavar="NU",
                   help="degrees of freedom of the covariance prior (default D + 2)")
    q.add_argument("--prior-file", default=None, metavar="JSON",
                   help="a JSON object of GMMPrior fields (weight_concentration, mean_prior, "
                        "mean_precision, degrees_of_freedom, covariance_prior), e.g. "
                        "{\"covariance_prior\": [[1, 0], [0, 1]]}; the options above "
                        "override it")

"""What the ``bayes-gmm`` command writes: console tables kept short, JSON-ready arrays,
the assignments file and figures (used by :mod:`bayes_gmm.cli`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["CONSOLE_COMPONENTS", "CONSOLE_FEATURES", "format_components", "format_table",
           "jsonable",
           "posterior_mean", "save_figure", "standardize", "write_assignments"]


def save_figure(fig, path: Path):
    """Write a matplotlib Figure as PNG at the command's resolution; returns ``path``."""
    fig.savefig(path, dpi=110)
    return path


def standardize(X):
    """Centre and scale each column of X (N, D) to unit variance (constant columns keep
    scale 1; NaN holes are left out and kept); returns the new array and
    ``{"mean": [...], "scale": [...]}``."""
    mu = np.nanmean(X, axis=0)
    sd = np.nanstd(X, axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (X - mu) / sd, {"mean": mu.tolist(), "scale": sd.tolist()}


#: The console shows at most this many features per component and this many components.
CONSOLE_FEATURES, CONSOLE_COMPONENTS = 6, 12


def format_components(weights, means, names) -> str:
    """One console line per component (weight and mean), at most ``CONSOLE_COMPONENTS``
    lines of ``CONSOLE_FEATURES`` features each; the files hold the rest."""
    lines = []
    for k, (w, m) in enumerate(zip(weights, means)):
        if k == CONSOLE_COMPONENTS:
            lines.append(f"  ... {len(weights) - k} more component(s) in params.json")
            break
        mean = ", ".join(f"{n}={v:.4g}" for n, v in zip(names[:CONSOLE_FEATURES], m))
        more = (f", ... {len(names) - CONSOLE_FEATURES} more"
                if len(names) > CONSOLE_FEATURES else "")
        lines.append(f"  component {k}: weight {w:.4f}  mean ({mean}{more})")
    return "\n".join(lines)


def format_table(table) -> str:
    """:func:`bayes_gmm.compare`'s table for the console. A family × K table is shown as
    mclust shows it: the criterion with one row per K and one column per family
    (degenerate cells blank, as mclust's NA), then the three best models."""
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        if table.index.nlevels == 1:
            return table.to_string()
        crit = table.attrs["criterion"]
        shown = table[crit].where(~table["degenerate"])
        wide = shown.unstack(0)[list(dict.fromkeys(table.index.get_level_values(0)))]
        top = shown.dropna().sort_values().head(3)
        best = ", ".join(f"{t},{k} {v:.3f}" for (t, k), v in top.items())
        return (f"{crit.upper()} (lower is better; mclust prints minus this), by "
                f"n_components (rows) and covariance_type (columns); blank: degenerate\n"
                + wide.to_string(float_format=lambda v: f"{v:.3f}", na_rep="")
                + f"\nTop 3 models by {crit.upper()}: {best}")


def jsonable(a):
    """An array as nested lists of Python floats (float64), for JSON."""
    return np.asarray(a, np.float64).tolist()


def posterior_mean(idata):
    """The posterior means of weights, means and covariances, over chains and draws."""
    return {v: np.asarray(idata.posterior[v], np.float64).mean(axis=(0, 1))
            for v in ("weights", "means", "covariances")}


def write_assignments(path: Path, probs, cluster, entropy=None, lower=None, upper=None):
    """Write ``assignments.csv``: row, cluster, p_0..p_{K-1} and, for posterior fits,
    entropy and the interval bounds p_k_lower / p_k_upper; returns ``path``."""
    import pandas as pd

    probs = np.asarray(probs, np.float64)
    k = probs.shape[1]
    cols = {"row": np.arange(probs.shape[0]), "cluster": np.asarray(cluster).astype(int)}
    cols.update({f"p_{j}": probs[:, j] for j in range(k)})
    if entropy is not None:
        cols["entropy"] = np.asarray(entropy, np.float64)
        cols.update({f"p_{j}_lower": np.asarray(lower, np.float64)[:, j] for j in range(k)})
        cols.update({f"p_{j}_upper": np.asarray(upper, np.float64)[:, j] for j in range(k)})
    pd.DataFrame(cols).to_csv(path, index=False, float_format="%.6g")
    return path


def write_imputed(path: Path, X, names, standardization=None, sd=None):
    """Write ``imputed.csv``: the rows of X (N, D) with their holes filled, in the data's
    units (undoing ``standardization``), plus ``<name>_sd`` columns when ``sd`` (N, D),
    the spread of multiple imputations, is given; returns ``path``."""
    import pandas as pd

    X = np.asarray(X, np.float64)
    scale = np.ones(X.shape[1]) if standardization is None else np.asarray(
        standardization["scale"])
    shift = np.zeros(X.shape[1]) if standardization is None else np.asarray(
        standardization["mean"])
    cols = {"row": np.arange(X.shape[0])}
    cols.update({str(c): X[:, j] * scale[j] + shift[j] for j, c in enumerate(names)})
    if sd is not None:
        sd = np.asarray(sd, np.float64)
        cols.update({f"{c}_sd": sd[:, j] * scale[j] for j, c in enumerate(names)})
    pd.DataFrame(cols).to_csv(path, index=False, float_format="%.8g")
    return path

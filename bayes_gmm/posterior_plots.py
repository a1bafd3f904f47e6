"""Figures of a posterior (matplotlib, ArviZ): traces and credible intervals grouped by
component, ArviZ's marginal posteriors, and the co-clustering matrix.

With many features ``az.plot_trace(compact=True)`` overlays every mean of every component
in one panel; here each component has its own row, its means drawn as lines labelled by
feature name, and only the features that separate the components best
(:func:`bayes_gmm.projection.separation`) unless asked for more. Every figure is a
`matplotlib.figure.Figure` detached from pyplot. All are re-exported by
:mod:`bayes_gmm.plots`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .bayes.idata import mixture_posterior
from .figure_inputs import (check_data, component_colors, posterior_feature_names,
                            posterior_mean, select_features)

__all__ = ["MAX_TRACE_FEATURES", "MAX_FOREST_FEATURES", "HDI_GID", "plot_trace",
           "plot_posterior", "plot_forest", "plot_coclustering"]

#: Means drawn per component row of :func:`plot_trace` by default.
MAX_TRACE_FEATURES = 6
#: At most this many features per component in :func:`plot_forest` by default (fewer when
#: there are many components, so that the figure stays about 48 intervals tall).
MAX_FOREST_FEATURES = 16
#: gid of the ``hdi_prob`` interval lines of :func:`plot_forest`.
HDI_GID = "bayes_gmm.forest.hdi"
#: Line style of each chain in the trace panels (as ArviZ's compact traces).
CHAIN_STYLES = ("-", "--", ":", "-.")


def _relabelled(idata, reference):
    if reference is None:
        return idata
    from .bayes.relabel import relabel
    return relabel(idata, reference=reference)


def _posterior_of(idata, reference):
    """The (relabelled) InferenceData of ``idata`` or of a fitted Bayesian estimator."""
    idata = getattr(idata, "idata_", idata)
    mixture_posterior(idata)                      # TypeError / ValueError naming what lacks
    return _relabelled(idata, reference)


def _figure_of(axes):
    """The Figure of ArviZ's axes, detached from pyplot: ArviZ draws through pyplot, whose
    figure manager would otherwise keep it alive and show it a second time in notebooks."""
    import matplotlib.pyplot as plt
    fig = np.ravel(np.asarray(axes, dtype=object))[0].figure
    plt.close(fig)
    return fig


def _feature_colors(n):
    """Colours of n features, from palettes other than the components' tab10/tab20."""
    import matplotlib as mpl
    if n <= 8:
        return [mpl.colormaps["Dark2"](i) for i in range(n)]
    pool = [mpl.colormaps[m](i) for m in ("tab20b", "tab20c") for i in range(20)]
    return [pool[i % len(pool)] for i in range(n)]


def _density(ax, x, color):
    import arviz as az
    x = np.ravel(x)
    if not np.ptp(x) > 0:                         # a constant: no density to smooth
        ax.axvline(x[0], color=color, lw=1.2)
        return
    grid, pdf = az.kde(x)
    ax.plot(grid, pdf, color=color, lw=1.2)


def _trace_row(ax_d, ax_t, values, colors, labels):
    """Density (chains pooled) and trace (one line style per chain) of values[..., l]."""
    for i, (color, label) in enumerate(zip(colors, labels)):
        _density(ax_d, values[..., i], color)
        for c in range(values.shape[0]):
            ax_t.plot(values[c, :, i], color=color, lw=0.7, alpha=0.8,
                      ls=CHAIN_STYLES[c % len(CHAIN_STYLES)],
                      label=label if c == 0 else "_nolegend_")
    ax_d.set_yticks([])
    ax_t.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
                handlelength=1.5, ncols=1 + (len(labels) - 1) // 8)


def plot_trace(idata, var_names=("weights", "means"), reference=None, by="component",
               features=None, max_features: int = MAX_TRACE_FEATURES, feature_names=None,
               standardize: bool = True, **kwargs):
    """Posterior densities and traces grouped by component; returns the Figure.

    ``by="component"`` (default): a ``weights`` row (one line per component, in the
    component colours) and one row per component with its means, one line per feature
    labelled by name; each row has a density panel (chains pooled) and a trace panel (a
    line style per chain). ``by="variable"``: ArviZ's ``az.plot_trace(compact=True)``, one
    row per variable; extra keyword arguments go to it.

    Parameters
    ----------
    idata : InferenceData (or a fitted BayesianGaussianMixture). ``fit_nuts``/``fit_svi``
        already relabel by default; pass ``reference`` (a GMMParams) to relabel against it
        first.
    var_names : which of ``"weights"`` and ``"means"`` to draw (any variable with
        ``by="variable"``).
    features : None (the ``max_features`` features that separate the components best, all
        when D ≤ ``max_features``; the title says when some are left out), ``"all"``, or a
        sequence of feature indices or names.
    feature_names : D labels (default: the posterior's ``feature`` coordinate when it holds
        names, else ``x0 … x{D−1}``).
    standardize : draw each mean as (draw − its posterior mean) / its posterior sd, so
        features in different units (minutes and seconds, pixels near 0 and near 16) share
        a panel without flattening each other; mixing and chains apart show the same. The
        values themselves are in :func:`plot_forest`. False draws the raw values.

    Returns
    -------
    matplotlib.figure.Figure
        ``by="component"``: (1 + K) × 2 axes (weights row, then component 0, 1, …).
    """
    var_names = [var_names] if isinstance(var_names, str) else list(var_names)
    idata = _posterior_of(idata, reference)
    if by == "variable":
        import arviz as az
        kwargs.setdefault("compact", True)
        axes = az.plot_trace(idata, var_names=var_names, show=False, **kwargs)
        fig = _figure_of(axes)
        fig.set_layout_engine("constrained")     # titles clear of the tick labels above
        return fig
    if by != "component":
        raise ValueError(f"by must be 'component' or 'variable'; got {by!r}")
    if kwargs:
        raise TypeError(f"keyword arguments {sorted(kwargs)} go to az.plot_trace, which only "
                        "by='variable' uses")
    other = [v for v in var_names if v not in ("weights", "means")]
    if other or not var_names:
        raise ValueError(f"by='component' draws 'weights' and 'means'; got {var_names} "
                         "(use by='variable' for other variables)")
    post = idata.posterior
    weights = np.asarray(post["weights"], np.float64)        # (chain, draw, K)
    k = weights.shape[-1]
    colors = component_colors(k)
    rows = []
    if "weights" in var_names:
        rows.append(("weights", "black", weights, colors, [f"component {c}" for c in range(k)]))
    note = ""
    if "means" in var_names:
        names = posterior_feature_names(idata, feature_names)
        idx, note = select_features(features, names, posterior_mean(idata), int(max_features))
        means = np.asarray(post["means"], np.float64)[..., idx]   # (chain, draw, K, F)
        what = "means"
        if standardize:
            sd = means.std(axis=(0, 1))
            means = (means - means.mean(axis=(0, 1))) / np.where(sd > 0, sd, 1.0)
            what = "means (z)"
            zs = "standardised per feature, (draw − posterior mean) / posterior sd"
            note = f"{note}; {zs}" if note else zs
        fcolors = _feature_colors(len(idx))
        rows += [(f"component {c}\n{what}", colors[c], means[:, :, c], fcolors,
                  [names[i] for i in idx]) for c in range(k)]
    fig = Figure(figsize=(10.0, 0.7 + 1.6 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False, gridspec_kw={"width_ratios": [1, 2.4]})
    for r, (label, color, values, lcolors, labels) in enumerate(rows):
        ax_d, ax_t = axes[r]
        _trace_row(ax_d, ax_t, values, lcolors, labels)
        ax_d.set_ylabel(label, color=color)
        if r:
            ax_t.sharex(axes[0, 1])
    axes[0, 0].set_title("posterior density", fontsize=10)
    axes[0, 1].set_title("trace (line style: chain)", fontsize=10)
    axes[-1, 0].set_xlabel("value")
    axes[-1, 1].set_xlabel("draw")
    if note:
        fig.suptitle(f"means: {note}", fontsize=10)
    return fig


def plot_forest(idata, reference=None, features=None, max_features: int | None = None,
                hdi_prob: float = 0.94, feature_names=None):
    """Credible intervals of each component's weight and means, grouped by component.

    One row of panels per component, in its colour: its weight on the left (the weights
    share one axis), its means on the right, one interval per feature labelled by name
    (the means share one axis, so a feature reads down the components). Each interval is
    the ``hdi_prob`` highest-density interval (``az.hdi``; thin line, gid ``HDI_GID``),
    the 50% one (thick) and the posterior mean (dot).

    Parameters
    ----------
    idata : InferenceData (or a fitted BayesianGaussianMixture); ``reference`` relabels
        first, as in :func:`plot_trace`.
    features, feature_names : as in :func:`plot_trace`; ``max_features`` None means
        ``MAX_FOREST_FEATURES``, or fewer with many components (about 48 rows in all).
    hdi_prob : probability mass of the thin intervals.

    Returns
    -------
    matplotlib.figure.Figure with K × 2 axes (weight, means) per component, top to bottom.
    """
    import arviz as az
    idata = _posterior_of(idata, reference)
    post = idata.posterior
    k = post.sizes["component"]
    names = posterior_feature_names(idata, feature_names)
    if max_features is None:
        max_features = min(MAX_FOREST_FEATURES, max(4, 48 // k))
    idx, note = select_features(features, names, posterior_mean(idata), int(max_features))
    sub = post[["weights", "means"]].isel(feature=idx)
    wide = az.hdi(sub, hdi_prob=hdi_prob)
    half = az.hdi(sub, hdi_prob=0.5)
    mean = sub.mean(("chain", "draw"))
    colors = component_colors(k)
    n = len(idx)
    fig = Figure(figsize=(8.0, 0.9 + k * (0.45 + 0.22 * n)), layout="constrained")
    axes = fig.subplots(k, 2, squeeze=False, sharex="col",
                        gridspec_kw={"width_ratios": [1, 3]})
    y = np.arange(n)[::-1].astype(float)             # first feature on top
    for c in range(k):
        aw, am = axes[c]
        for ax, var, ys in ((aw, "weights", np.zeros(1)), (am, "means", y)):
            lo = np.atleast_1d(wide[var].isel(component=c).sel(hdi="lower").values)
            hi = np.atleast_1d(wide[var].isel(component=c).sel(hdi="higher").values)
            lo50 = np.atleast_1d(half[var].isel(component=c).sel(hdi="lower").values)
            hi50 = np.atleast_1d(half[var].isel(component=c).sel(hdi="higher").values)
            mu = np.atleast_1d(mean[var].isel(component=c).values)
            for j, yj in enumerate(ys):
                line, = ax.plot([lo[j], hi[j]], [yj, yj], color=colors[c], lw=1.4,
                                solid_capstyle="butt")
                line.set_gid(HDI_GID)
                ax.plot([lo50[j], hi50[j]], [yj, yj], color=colors[c], lw=4.0,
                        solid_capstyle="butt")
            ax.plot(mu, ys, "o", color=colors[c], ms=4, mfc="white", mew=1.2)
            ax.grid(axis="x", lw=0.4, alpha=0.5)
        aw.set_ylim(-1.0, 1.0)
        aw.set_yticks([])
        aw.set_ylabel(f"component {c}", color=colors[c])
        am.set_ylim(-0.7, n - 0.3)
        am.set_yticks(y, [names[i] for i in idx], fontsize=8)
    axes[0, 0].set_title("weight", fontsize=10)
    axes[0, 1].set_title(f"means: {hdi_prob:.0%} HDI (thin), 50% (thick), mean (dot)",
                         fontsize=10)
    if note:
        fig.suptitle(f"means: {note}", fontsize=10)
    return fig


def plot_posterior(idata, var_names=("weights", "means"), reference=None, **kwargs):
    """``az.plot_posterior`` of the (relabelled) posterior; returns the Figure."""
    import arviz as az
    idata = _relabelled(getattr(idata, "idata_", idata), reference)
    axes = az.plot_posterior(idata, var_names=list(var_names), show=False, **kwargs)
    return _figure_of(axes)


def plot_coclustering(idata, X, ax=None):
    """The posterior co-clustering matrix P(z_i = z_j | data), rows ordered by cluster.

    Rows and columns are sorted by most probable cluster and, within a cluster, by the
    probability of that cluster (most certain first), so blocks appear on the diagonal.
    Returns the Figure (one image of shape (N, N)).
    """
    from .bayes.diagnostics import assignment_probabilities, coclustering
    X = check_data(X)
    idata = getattr(idata, "idata_", idata)
    probs = assignment_probabilities(idata, X)
    cluster = np.asarray(probs["cluster"]).astype(int)
    pmax = np.asarray(probs["mean"]).max(axis=1)
    order = np.lexsort((-pmax, cluster))
    C = np.asarray(coclustering(idata, X), np.float64)[np.ix_(order, order)]
    if ax is None:
        fig = Figure(figsize=(5.2, 4.5), layout="constrained")
        ax = fig.add_subplot()
    im = ax.imshow(C, vmin=0.0, vmax=1.0, cmap="magma", interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label="P(same cluster)")
    ax.set_xlabel("observation (ordered by cluster)")
    ax.set_ylabel("observation (ordered by cluster)")
    ax.set_title("posterior co-clustering")
    return ax.figure

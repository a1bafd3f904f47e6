"""Figures for Gaussian mixtures (matplotlib): clusters with their ellipses (on chosen
features or on the discriminant directions), posterior spread, membership uncertainty, EM
convergence and the choice of K. The posterior figures (traces and intervals by component,
marginals, co-clustering) live in :mod:`bayes_gmm.posterior_plots` and are re-exported here.

Every function draws on a new `matplotlib.figure.Figure` (or on the ``ax`` given) and returns
it; nothing calls ``show`` and nothing sets a backend, so the figures work in scripts,
notebooks and headless test runs alike. Save one with ``fig.savefig("clusters.png")``.

Ellipses are the contours of constant Mahalanobis distance r = 1 and r = 2 ("1σ" and "2σ")
of each component's Gaussian restricted to the plotted pair of features: for the 2 × 2
covariance block Σ = V diag(λ) Vᵀ the contour r is an ellipse with semi-axes r √λᵢ along the
eigenvectors Vᵢ. On the discriminant directions V (:func:`bayes_gmm.discriminant_directions`)
each component is drawn as its linear image N(Vᵀμ_k, VᵀΣ_k V).

Examples
--------
>>> import numpy as np, bayes_gmm as bg
>>> fig = bg.plots.plot_convergence(np.array([-3.1, -2.6, -2.5, -2.49]))
>>> type(fig).__name__, len(fig.axes)
('Figure', 1)
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from .core.params import GMMParams
from .figure_inputs import (check_data, cluster_labels, component_colors, is_idata,
                            posterior_draws, posterior_mean, resolve)
from .figure_inputs import feature_names as names_of    # the argument is feature_names
from .posterior_plots import (HDI_GID, plot_coclustering, plot_forest, plot_posterior,
                              plot_trace)
from .projection import discriminant_directions, project, separation

__all__ = ["separation", "MAX_GRID_FEATURES", "plot_components", "plot_uncertainty",
           "plot_convergence", "plot_model_selection",
           "plot_trace", "plot_posterior", "plot_forest", "plot_coclustering", "HDI_GID"]

#: gid of the ellipses of a point estimate (or of the posterior mean), and of posterior draws.
ELLIPSE_GID = "bayes_gmm.ellipse"
DRAW_ELLIPSE_GID = "bayes_gmm.ellipse.draw"
N_SIGMAS = (1.0, 2.0)


# --- ellipses --------------------------------------------------------------------------------

def _pair_covariances(p: GMMParams, i: int, j: int) -> np.ndarray:
    """(K, 2, 2) covariance blocks of features (i, j) for any covariance type."""
    k, d = p.means.shape
    c = np.asarray(p.covariances, np.float64)
    # NumPy, not jax.numpy: float64 must survive without JAX's x64 flag
    full = p.family.to_full(c, k, d, xp=np)
    return full[:, [i, j]][:, :, [i, j]]


def _ellipse(mean, cov2, n_sigma, **kw) -> Ellipse:
    lam, vec = np.linalg.eigh(cov2)
    lam = np.clip(lam, 0.0, None)
    angle = np.degrees(np.arctan2(vec[1, 1], vec[0, 1]))   # direction of the largest axis
    return Ellipse(xy=(mean[0], mean[1]), width=2 * n_sigma * np.sqrt(lam[1]),
                   height=2 * n_sigma * np.sqrt(lam[0]), angle=angle, **kw)


def _draw_pair(ax, X, labels, params, draws, i, j, colors, names):
    ax.scatter(X[:, i], X[:, j], c=[colors[c] for c in labels], s=12, alpha=0.7,
               edgecolors="none")
    for d in draws:
        covs = _pair_covariances(d, i, j)
        for k in range(d.means.shape[0]):
            for r in N_SIGMAS:
                e = _ellipse(d.means[k, [i, j]], covs[k], r, fill=False, lw=0.6,
                             alpha=0.12, edgecolor=colors[k])
                e.set_gid(DRAW_ELLIPSE_GID)
                ax.add_patch(e)
    covs = _pair_covariances(params, i, j)
    for k in range(params.means.shape[0]):
        for r, ls in zip(N_SIGMAS, ("-", "--")):
            e = _ellipse(params.means[k, [i, j]], covs[k], r, fill=False, lw=1.8,
                         ls=ls, edgecolor=colors[k])
            e.set_gid(ELLIPSE_GID)
            ax.add_patch(e)
    ax.plot(params.means[:, i], params.means[:, j], "kx", ms=7, mew=2)
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])


def _modes_note(idata) -> str:
    """'' for a unimodal MCMC posterior; a warning for the title when the chains sit in
    several modes (the figure's posterior mean then averages partitions)."""
    if idata is None or idata.posterior.attrs.get("method", "nuts") == "svi" \
            or idata.posterior.sizes["chain"] < 2:
        return ""
    from .bayes.modes import posterior_modes
    m = len(posterior_modes(idata))
    return "" if m == 1 else f"WARNING: mean over {m} posterior modes"


#: At most this many features in a grid chosen by ``features="best"``.
MAX_GRID_FEATURES = 4


def _feature_layout(features, names, params):
    """("pair", (i, j)), ("grid", [indices]) or ("discriminant", (0, 1)) from ``features``
    (see plot_components)."""
    d = len(names)
    if isinstance(features, str):
        if features == "discriminant":
            return "discriminant", (0, 1)
        if features == "auto":
            if d == 2:
                return "pair", (0, 1)
            i, j = sorted(np.argsort(-separation(params))[:2].tolist())
            return "pair", (i, j)
        if features == "best":
            top = np.argsort(-separation(params))[:min(d, MAX_GRID_FEATURES)]
            return ("grid", sorted(top.tolist())) if d > 2 else ("pair", (0, 1))
        if features == "all":
            return "grid", list(range(d))
        raise ValueError(f"features must be 'auto', 'best', 'all', 'discriminant' or a "
                         f"sequence of feature indices or names; got {features!r}")
    try:
        idx = [names.index(f) if isinstance(f, str) else int(f) for f in features]
    except (TypeError, ValueError):
        raise ValueError(f"features must be 'auto', 'best', 'all' or a sequence of feature "
                         f"indices or names (one of {names}); got {features!r}") from None
    if len(idx) < 2 or len(set(idx)) != len(idx) or not all(0 <= i < d for i in idx):
        raise ValueError(f"features must be two or more distinct indices in [0, {d}) or "
                         f"names; got {features!r}")
    return ("pair", tuple(idx)) if len(idx) == 2 else ("grid", idx)


def _discriminant_plane(params, means_weight):
    """(D, 2) first two discriminant directions and their axis labels."""
    v, lam = discriminant_directions(params, 0.5 if means_weight is None else means_weight)
    return v[:, :2], [f"DR{r + 1} (λ={lam[r]:.3g})" for r in range(2)]


def _check_means_weight(kind, means_weight):
    if means_weight is not None and kind != "discriminant":
        raise ValueError("means_weight applies to features='discriminant' only; got "
                         f"means_weight={means_weight!r} with other features")


def plot_components(X, fit, ax=None, features="auto", n_draws: int = 50,
                    feature_names=None, means_weight: float | None = None):
    """Data coloured by most probable cluster, with 1σ and 2σ ellipses of each component.

    Parameters
    ----------
    X : (N, D) array or DataFrame of the data.
    fit : `GMMParams`, `EMResult`, a fitted ``GaussianMixture`` (anything with ``weights_``,
        ``means_``, ``covariances_`` and ``covariance_type``), a fitted
        ``BayesianGaussianMixture`` or an ``arviz.InferenceData``. With a posterior, thin
        ellipses of ``n_draws`` posterior draws show its spread and bold ellipses show the
        posterior mean; points are coloured by the posterior-averaged assignment. When the
        chains sit in several modes (:func:`bayes_gmm.posterior_modes`) the title says, in
        red, that the mean averages over them.
    ax : matplotlib Axes to draw on (pair plot only), or None for a new figure.
    features : what to plot (X needs at least 2 features):

        * ``"auto"`` (default): one panel, the two features that separate the components
          best (:func:`separation`; features 0 and 1 when D = 2);
        * ``"best"``: a lower-triangular grid of the ``MAX_GRID_FEATURES`` best features;
        * ``"all"``: a grid of every pair (D − 1)² panels: only for small D;
        * ``"discriminant"``: one panel, the rows projected on the first two discriminant
          directions of the fit (:func:`bayes_gmm.discriminant_directions`, as mclust's
          ``MclustDR``), axes labelled ``DR1 (λ=…)``, ``DR2 (λ=…)``; every component (and
          posterior draw) drawn as its image N(Vᵀμ_k, VᵀΣ_k V) under the same V (that of
          the point estimate or posterior mean). Any D ≥ 2: the figure for many features;
        * a pair ``(i, j)`` (one panel) or three or more features (a grid), as indices or
          as names (from ``feature_names``, a DataFrame's columns or the estimator's
          ``feature_names_in_``).
    n_draws : posterior draws to show (ignored for point estimates).
    feature_names : optional D labels for the axes.
    means_weight : with ``features="discriminant"``, the weight of mean differences
        against covariance differences in the directions (mclust's ``lambda``; None:
        MclustDR's 1/2). Pass 1 when some features are nearly constant within some
        components (image pixels, as in scikit-learn's digits): their variance ratios
        would otherwise give directions along which most rows sit on one point.

    Returns
    -------
    matplotlib.figure.Figure
        Point estimate: exactly 2 ellipse patches (gid ``ELLIPSE_GID``) per component per
        panel; posterior: 2 more per component per draw (gid ``DRAW_ELLIPSE_GID``).
    """
    names_src = X
    X = check_data(X)
    idata, params = resolve(fit)
    d = X.shape[1]
    if params.means.shape[1] != d:
        raise ValueError(f"X has {d} features but the fit has {params.means.shape[1]}")
    if d < 2:
        raise ValueError(f"plot_components needs at least 2 features; X has shape {X.shape}")
    names = names_of(names_src, fit, feature_names, d)
    kind, idx = _feature_layout(features, names, params)
    _check_means_weight(kind, means_weight)
    n_draws = int(n_draws)
    draws = posterior_draws(idata, n_draws) if idata is not None and n_draws > 0 else []
    labels = cluster_labels(X, idata, params)
    colors = component_colors(params.means.shape[0])
    note = _modes_note(idata)
    if kind == "discriminant":
        v, names = _discriminant_plane(params, means_weight)
        X, params, draws = X @ v, project(params, v), [project(p, v) for p in draws]
    if kind == "grid":
        if ax is not None:
            raise ValueError("ax cannot be given with a grid of panels (features="
                             f"{features!r})")
        g = len(idx)
        fig = Figure(figsize=(2.6 * (g - 1), 2.6 * (g - 1)), layout="constrained")
        axes = fig.subplots(g - 1, g - 1, squeeze=False)
        for r in range(g - 1):
            for c in range(g - 1):
                a = axes[r, c]
                if c > r:
                    a.set_axis_off()
                    continue
                _draw_pair(a, X, labels, params, draws, idx[c], idx[r + 1], colors, names)
        if note:
            fig.suptitle(note, color="tab:red")
        return fig
    i, j = idx
    if ax is None:
        fig = Figure(figsize=(5.5, 4.5), layout="constrained")
        ax = fig.add_subplot()
    _draw_pair(ax, X, labels, params, draws, i, j, colors, names)
    title = "posterior: mean and draws" if idata is not None else "point estimate"
    if kind == "discriminant":
        title = "discriminant directions" + (" (means only)" if means_weight == 1 else "") \
            + f", {title}"
    if note:
        ax.set_title(f"{title}\n{note}", color="tab:red")
    else:
        ax.set_title(title)
    return ax.figure


def plot_uncertainty(X, idata, ax=None, features="auto", threshold: float = 0.5,
                     feature_names=None, means_weight: float | None = None):
    """Points shaded by the posterior entropy of their cluster membership.

    Parameters
    ----------
    X : (N, D) data. idata : InferenceData (or a fitted BayesianGaussianMixture).
    ax : Axes or None. features : ``"auto"`` (the two features that separate the components
        best, see :func:`separation`), ``"discriminant"`` (the first two discriminant
        directions of the posterior mean, as in :func:`plot_components`) or a pair of
        feature indices or names. means_weight : as in :func:`plot_components`.
    threshold : entropy (nats) above which a point is outlined as uncertain.
    feature_names : optional D labels for the axes.

    Returns
    -------
    matplotlib.figure.Figure with one scatter collection of all N points (colour = entropy)
    and one of the uncertain ones outlined.
    """
    from .bayes.diagnostics import assignment_probabilities
    names_src = X
    X = check_data(X)
    fit = idata
    idata = getattr(idata, "idata_", idata)
    if not is_idata(idata):
        raise TypeError(f"idata must be an arviz.InferenceData; got {type(idata).__name__}")
    names = names_of(names_src, fit, feature_names, X.shape[1])
    mean = posterior_mean(idata)
    kind, idx = _feature_layout(features, names, mean)
    _check_means_weight(kind, means_weight)
    if kind == "grid":
        raise ValueError(f"plot_uncertainty draws one pair of features; got {features!r}")
    i, j = idx
    ent = np.asarray(assignment_probabilities(idata, X)["entropy"], np.float64)
    if kind == "discriminant":
        v, names = _discriminant_plane(mean, means_weight)
        X = X @ v
    k = idata.posterior.sizes["component"]
    if ax is None:
        fig = Figure(figsize=(5.8, 4.5), layout="constrained")
        ax = fig.add_subplot()
    sc = ax.scatter(X[:, i], X[:, j], c=ent, cmap="viridis", vmin=0.0, vmax=np.log(k),
                    s=14, edgecolors="none")
    unc = ent > threshold
    ax.scatter(X[unc, i], X[unc, j], facecolors="none", edgecolors="red", s=40, lw=1.0,
               label=f"entropy > {threshold:g} ({int(unc.sum())})")
    ax.figure.colorbar(sc, ax=ax, label="membership entropy (nats)")
    ax.legend(loc="best", fontsize=8)
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])
    ax.set_title("membership uncertainty")
    return ax.figure


def plot_convergence(result, ax=None):
    """EM objective against iteration, from ``result.trace`` (NaN after convergence skipped).

    ``result`` is an `EMResult`, a fitted GaussianMixture (its ``lower_bounds_``) or a 1-D
    array of objective values. Returns the Figure (one line with one point per iteration).
    """
    if hasattr(result, "trace") and not callable(result.trace):
        trace = result.trace
    elif hasattr(result, "lower_bounds_"):
        trace = result.lower_bounds_
    else:
        trace = result
    trace = np.asarray(trace, np.float64)
    if trace.ndim != 1:
        raise ValueError(f"the objective trace must be 1-D (max_iter,); got shape {trace.shape}")
    it = np.flatnonzero(np.isfinite(trace))
    if ax is None:
        fig = Figure(figsize=(5, 3.5), layout="constrained")
        ax = fig.add_subplot()
    ax.plot(it + 1, trace[it], "o-", ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("objective per sample\n(log-likelihood; + log prior / N if MAP)")
    ax.set_title(f"EM convergence ({len(it)} iterations)")
    return ax.figure


def _plot_family_grid(table):
    """BIC or ICL against K, one line (and marker) per covariance type."""
    crit = table.attrs.get("criterion", "bic")
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.add_subplot()
    families = list(dict.fromkeys(table.index.get_level_values(0)))
    markers = "osD^v<>phX*P8"
    # tab10 repeats after ten lines; mclust's fourteen families need tab20's colours
    cmap = matplotlib.colormaps["tab10" if len(families) <= 10 else "tab20"]
    for i, t in enumerate(families):
        sub = table.loc[t]
        ks = np.asarray(sub.index, int)
        y = np.asarray(sub[crit], float)
        line, = ax.plot(ks, y, marker=markers[i % len(markers)], ms=5, lw=1.2, label=t,
                        color=cmap(i % cmap.N))
        bad = np.asarray(sub["degenerate"], bool)
        if bad.any():
            ax.plot(ks[bad], y[bad], "x", color="tab:red", ms=9, mew=2)
    best = table.attrs.get("best_model")
    if best is not None:
        ax.plot([best[1]], [float(table.loc[best, crit])], "o", ms=14, mfc="none",
                mec="black", mew=1.5)
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{crit.upper()} (lower is better)")
    ax.set_xticks(sorted(set(table.index.get_level_values(1))))
    ax.legend(ncols=2, fontsize=8, title="covariance type", title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    title = f"{crit.upper()} by covariance type and K"
    if best is not None:
        title += f" (best: {best[0]}, K = {best[1]}; red crosses: degenerate)"
    ax.set_title(title, fontsize=10)
    return fig


def plot_model_selection(table):
    """BIC (and ELPD-LOO ± SE when present) against the number of components.

    ``table`` is the DataFrame of :func:`bayes_gmm.compare` (index K; columns ``bic`` and,
    for Bayesian fits, ``elpd_loo`` and ``se``). The recommended K is marked, and
    degenerate fits (column ``degenerate``) are crossed out in red. Returns the
    Figure: one panel for BIC, a second for ELPD-LOO when available. A table over several
    covariance types (index (covariance_type, n_components)) gives mclust's figure: the
    chosen criterion against K, one line per covariance type.
    """
    if getattr(table.index, "nlevels", 1) == 2:
        return _plot_family_grid(table)
    cols = set(getattr(table, "columns", []))
    has_bic = "bic" in cols
    has_loo = bool("elpd_loo" in cols
                   and np.isfinite(np.asarray(table["elpd_loo"], float)).any())
    n_panels = int(has_bic) + int(has_loo)
    if not (has_bic or has_loo):
        raise ValueError(f"table needs a 'bic' or 'elpd_loo' column; got {sorted(cols)}")
    ks = np.asarray(table.index, int)
    fig = Figure(figsize=(5 * n_panels, 3.6), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    best = table.attrs.get("best_k") if hasattr(table, "attrs") else None
    a = 0
    if has_bic:
        ax = axes[a]
        a += 1
        ax.plot(ks, np.asarray(table["bic"], float), "o-", label="BIC")
        if "aic" in cols:
            ax.plot(ks, np.asarray(table["aic"], float), "s--", alpha=0.6, label="AIC")
        if "degenerate" in cols and np.asarray(table["degenerate"], bool).any():
            bad = np.asarray(table["degenerate"], bool)
            ax.plot(ks[bad], np.asarray(table["bic"], float)[bad], "x", color="tab:red",
                    ms=10, mew=2, label="degenerate fit (never recommended)")
        ax.set_ylabel("criterion (lower is better)")
        ax.legend(fontsize=8)
    if has_loo:
        ax = axes[a]
        se = np.asarray(table["se"], float) if "se" in cols else None
        ax.errorbar(ks, np.asarray(table["elpd_loo"], float), yerr=se, fmt="o-", capsize=3,
                    label="ELPD-LOO ± SE")
        ax.set_ylabel("ELPD-LOO (higher is better)")
        ax.legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("number of components K")
        ax.set_xticks(ks)
        if best is not None:
            ax.axvline(best, color="gray", ls=":", lw=1)
    fig.suptitle(f"choice of K (recommended: {best})" if best is not None else "choice of K")
    return fig

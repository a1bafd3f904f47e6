"""What the figures draw, read from what was fitted: point parameters or posterior draws as
NumPy float64 `GMMParams`, the checked data, cluster labels, feature names, component
colours and the features worth a panel. Shared by :mod:`bayes_gmm.plots` and
:mod:`bayes_gmm.posterior_plots`; nothing here draws.
"""

from __future__ import annotations

import numpy as np

from .bayes.idata import posterior_family
from .core.params import GMMParams
from .projection import separation

__all__ = ["is_idata", "as_point_params", "posterior_draws", "posterior_mean", "resolve",
           "check_data", "cluster_labels", "component_colors", "feature_names",
           "posterior_feature_names", "select_features"]


def is_idata(obj) -> bool:
    return hasattr(obj, "posterior") and hasattr(obj, "groups")


def as_point_params(fit) -> GMMParams:
    """A `GMMParams` of NumPy arrays from GMMParams, EMResult or a fitted estimator."""
    if isinstance(fit, GMMParams):
        p = fit
    elif hasattr(fit, "params") and isinstance(getattr(fit, "params"), GMMParams):  # EMResult
        p = fit.params
    elif all(hasattr(fit, a) for a in ("weights_", "means_", "covariances_")):
        p = GMMParams(fit.weights_, fit.means_, fit.covariances_,
                      getattr(fit, "covariance_type", "full"))
    else:
        raise TypeError("fit must be a GMMParams, an EMResult, a fitted GaussianMixture / "
                        "BayesianGaussianMixture or an arviz.InferenceData; got "
                        f"{type(fit).__name__}")
    return GMMParams(np.asarray(p.weights, np.float64), np.asarray(p.means, np.float64),
                     np.asarray(p.covariances, np.float64), p.covariance_type)


def posterior_draws(idata, n_draws: int | None) -> list[GMMParams]:
    """Up to ``n_draws`` posterior draws (evenly thinned over chain × draw) as GMMParams."""
    post = idata.posterior
    t = posterior_family(post).name
    w, m, c = (np.asarray(post[v], np.float64) for v in ("weights", "means", "covariances"))
    w, m, c = (a.reshape((-1,) + a.shape[2:]) for a in (w, m, c))
    total = w.shape[0]
    idx = np.arange(total) if n_draws is None or n_draws >= total else \
        np.unique(np.linspace(0, total - 1, n_draws).round().astype(int))
    return [GMMParams(w[i], m[i], c[i], t) for i in idx]


def posterior_mean(idata) -> GMMParams:
    post = idata.posterior
    mean = [np.asarray(post[v], np.float64).mean(axis=(0, 1))
            for v in ("weights", "means", "covariances")]
    return GMMParams(*mean, posterior_family(post).name)


def resolve(fit):
    """(idata or None, point GMMParams): a Bayesian estimator contributes its ``idata_``."""
    if is_idata(fit):
        return fit, posterior_mean(fit)
    idata = getattr(fit, "idata_", None)
    if idata is not None and is_idata(idata):
        return idata, posterior_mean(idata)
    return None, as_point_params(fit)


def check_data(X) -> np.ndarray:
    from ._checks import check_X
    return np.asarray(check_X(X, dtype=np.float64))


def cluster_labels(X, idata, params) -> np.ndarray:
    """Most probable cluster per row (posterior-averaged when a posterior is available).

    A point fit is evaluated from its parameters (the same rule as an estimator's
    ``predict``), so an estimator fitted on a DataFrame raises no feature-name warning."""
    if idata is not None:
        from .bayes.diagnostics import assignment_probabilities
        return np.asarray(assignment_probabilities(idata, X)["cluster"]).astype(int)
    import jax

    from .densities import predict
    dtype = np.asarray(params.means).dtype
    with jax.enable_x64(dtype == np.float64):     # float64 parameters stay float64
        return np.asarray(predict(params, X.astype(dtype))).astype(int)


def component_colors(k):
    import matplotlib as mpl
    cmap = mpl.colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(c % cmap.N) for c in range(k)]


def feature_names(X, fit, names, d) -> list[str]:
    """D axis labels: ``names`` if given, else a DataFrame's columns, else the estimator's
    ``feature_names_in_``, else ``x0 … x{D−1}``."""
    if names is not None:
        out = [str(n) for n in names]
    elif getattr(X, "columns", None) is not None and hasattr(X, "iloc"):
        out = [str(c) for c in X.columns]
    elif getattr(fit, "feature_names_in_", None) is not None:
        out = [str(c) for c in fit.feature_names_in_]
    else:
        out = [f"x{i}" for i in range(d)]
    if len(out) != d:
        raise ValueError(f"feature_names must have {d} entries; got {len(out)}")
    return out


def posterior_feature_names(idata, names=None) -> list[str]:
    """D labels of a posterior's features: ``names`` if given, else its ``feature``
    coordinate when that holds names (data given as a DataFrame), else ``x0 … x{D−1}``."""
    coord = np.asarray(idata.posterior["feature"].values)
    d = coord.shape[0]
    if names is None and not np.issubdtype(coord.dtype, np.number):
        names = coord
    return feature_names(None, None, names, d)


def select_features(features, names, params, limit: int) -> tuple[list[int], str]:
    """Indices of the features to draw, in their original order, and a note for the title
    ('' when every feature is drawn).

    ``features``: None (the ``limit`` features that separate the components best, see
    :func:`bayes_gmm.projection.separation`), ``"all"``, or a sequence of indices or names.
    """
    d = len(names)
    if features is None:
        if d <= limit:
            return list(range(d)), ""
        top = sorted(np.argsort(-separation(params), kind="stable")[:limit].tolist())
        return top, (f"the {limit} of {d} features that separate the components best "
                     "(features='all' for every one)")
    if isinstance(features, str):
        if features == "all":
            return list(range(d)), ""
        features = [features]
    try:
        idx = [names.index(f) if isinstance(f, str) else int(f) for f in features]
    except (TypeError, ValueError):
        raise ValueError(f"features must be None, 'all' or a sequence of feature indices or "
                         f"names (one of {names}); got {features!r}") from None
    if not idx or len(set(idx)) != len(idx) or not all(0 <= i < d for i in idx):
        raise ValueError(f"features must be distinct indices in [0, {d}) or names; got "
                         f"{features!r}")
    return idx, ""

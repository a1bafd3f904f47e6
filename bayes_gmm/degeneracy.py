"""Legal but degenerate data and fits: a finite, valid result, and a warning saying which
part of it the data do not determine (constant columns, empty components, components on
too few rows, singular covariances). The validating edge (:mod:`bayes_gmm._checks`)
re-exports these; estimators, ``fit_em`` and ``compare`` use them the same way.
"""

from __future__ import annotations

import warnings

import numpy as np

from .core.covariance import get_family
from .distributed import is_distributed, weight_total, weighted_variance

__all__ = ["DegenerateFitWarning", "warn_no_spread", "data_variance", "degenerate_components",
           "check_fit_degeneracy"]


class DegenerateFitWarning(UserWarning):
    """The fit is finite and valid, but the data do not determine some of it."""


def warn_no_spread(X: np.ndarray, where: str) -> None:
    """Warn (once per call) when columns of X (N, D) are constant: a mixture's covariance
    along them is set by ``reg_covar`` or by the prior, not by the data."""
    if X.shape[0] == 0:
        return
    const = np.flatnonzero(np.all(X == X[:1], axis=0))
    if const.size:
        what = ("all rows are identical" if const.size == X.shape[1]
                else f"column(s) {const.tolist()} are constant")
        warnings.warn(f"{where}: {what}; the covariances along them are set by reg_covar or "
                      "the prior, not by the data", DegenerateFitWarning, stacklevel=3)


def data_variance(X, sample_weight=None) -> float:
    """Mean per-column variance of the (weighted) rows: the data's own scale, (float)."""
    if is_distributed(X):                          # complete (check_X), read in place
        return weighted_variance(X, sample_weight)
    X = np.asarray(X, np.float64)
    w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    if w is not None and not np.sum(w) > 0:
        return 0.0
    if np.isnan(X).any():                          # each column over its observed entries
        obs = ~np.isnan(X)
        wo = (np.ones(len(X)) if w is None else w)[:, None] * obs
        n = wo.sum(0)
        mean = (wo * np.where(obs, X, 0.0)).sum(0) / n
        return float(np.mean((wo * np.square(np.where(obs, X - mean, 0.0))).sum(0) / n))
    mean = np.average(X, axis=0, weights=w)
    return float(np.mean(np.average(np.square(X - mean), axis=0, weights=w)))


def degenerate_components(weights, covariances, covariance_type: str, n_eff: float,
                          n_features: int, variance: float, reg_covar: float,
                          dtype) -> dict:
    """Maximum-likelihood components the data do not determine: {index: reason}.

    Three reasons, each a property of the fit, not of a threshold on the objective:

    * ``"empty"``: no row is assigned (effective count below 1e-3 of a row: the M-step
      leaves an emptied component a weight of about 10·eps/N), e.g. more components than
      distinct rows;
    * ``"too few rows"``: fewer effective rows than the family needs to estimate a
      covariance (D + 1 for a full matrix, 2 for a variance);
    * ``"singular covariance"``: the smallest eigenvalue is at the regularisation, i.e.
      ≤ 2·reg_covar + 20·eps·max(the component's mean variance, the data's ``variance``)
      (the M-step's floor is 10·eps of the component's variance): along that direction the
      covariance is set by ``reg_covar`` or the floor, not by the data (rows on a subspace,
      or collapsed onto one point).
    """
    w = np.asarray(weights, np.float64)
    fam = get_family(covariance_type)
    k, d = w.shape[0], n_features
    out = {int(i): "empty" for i in np.flatnonzero(w * n_eff < 1e-3)}
    small, _ = fam.underdetermined(w, n_eff, d)
    for i in small:
        out.setdefault(int(i), "too few rows")
    full = fam.to_full(np.asarray(covariances, np.float64), k, d, xp=np)
    lam = np.linalg.eigvalsh(full)
    scale = np.maximum(np.mean(lam, axis=1), variance)
    eps = np.finfo(np.dtype(dtype)).eps
    for i in np.flatnonzero(lam[:, 0] <= 2.0 * reg_covar + 20.0 * eps * scale):
        out.setdefault(int(i), "singular covariance")
    return dict(sorted(out.items()))


def check_fit_degeneracy(params, X, sample_weight, reg_covar: float, where: str, *,
                         raise_singular: bool = False) -> dict:
    """Warn (DegenerateFitWarning) about maximum-likelihood components the data do not
    determine (see :func:`degenerate_components`); return them.

    ``raise_singular``: with ``reg_covar = 0`` a singular component means the likelihood
    is unbounded and no maximum exists; raise scikit-learn's ValueError instead (the
    estimator's behaviour, as scikit-learn's).
    """
    w = np.asarray(params.weights, np.float64)
    n_eff = (X.shape[0] if sample_weight is None else weight_total(sample_weight)
             if is_distributed(sample_weight) else float(np.sum(sample_weight)))
    bad = degenerate_components(w, params.covariances, params.covariance_type, n_eff,
                                X.shape[1], data_variance(X, sample_weight), reg_covar,
                                np.asarray(params.means).dtype)
    if not bad:
        return bad
    singular = [i for i, r in bad.items() if r == "singular covariance"]
    if raise_singular and reg_covar == 0 and singular:
        raise ValueError(
            "Fitting the mixture model failed because some components have ill-defined "
            "empirical covariance (for instance caused by singleton or collapsed samples). "
            "Try to decrease the number of components, increase reg_covar, or scale the "
            f"input data. (component(s) {singular} of {where})")
    counts = w * n_eff
    parts = []
    for reason in ("empty", "too few rows", "singular covariance"):
        idx = [i for i, r in bad.items() if r == reason]
        if not idx:
            continue
        if reason == "empty" and is_distributed(X):
            parts.append(f"component(s) {idx} are empty")
        elif reason == "empty":
            distinct = np.unique(np.asarray(X)[np.asarray(
                np.ones(X.shape[0]) if sample_weight is None else sample_weight) > 0],
                axis=0).shape[0]
            parts.append(f"component(s) {idx} are empty (the data have {distinct} distinct "
                         f"row(s) for {w.shape[0]} components)")
        elif reason == "too few rows":
            need = get_family(params.covariance_type).underdetermined(w, n_eff, X.shape[1])[1]
            parts.append(f"component(s) {idx} have effective sample sizes "
                         f"{np.round(counts[idx], 2).tolist()} < {need}")
        else:
            parts.append(f"component(s) {idx} have a singular covariance (rows collapsed "
                         "onto a point or a subspace)")
    warnings.warn(f"{where}: {'; '.join(parts)}; their covariances are set by reg_covar, "
                  "not by the data. Use fewer components, a prior (prior=GMMPrior()) or a "
                  "simpler covariance_type.", DegenerateFitWarning, stacklevel=4)
    return bad

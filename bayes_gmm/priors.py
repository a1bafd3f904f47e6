r"""`GMMPrior`: the conjugate prior shared by MAP-EM and the NumPyro model.

With K components and D features, α = ``weight_concentration``, m₀ = ``mean_prior``,
κ₀ = ``mean_precision``, ν₀ = ``degrees_of_freedom`` and Ψ₀ = ``covariance_prior``:

* weights:  π ~ Dirichlet(α), α scalar or (K,).
* ``full``:  Σ_k ~ InverseWishart(ν₀, Ψ₀),
  p(Σ) ∝ |Σ|^{-(ν₀+D+1)/2} exp(-tr(Ψ₀ Σ⁻¹)/2);  μ_k | Σ_k ~ N(m₀, Σ_k / κ₀).
* ``tied``:  one Σ ~ InverseWishart(ν₀, Ψ₀) shared by all components;
  μ_k | Σ ~ N(m₀, Σ / κ₀) independently for each k.
* ``diag``:  σ²_kd ~ InverseGamma(ν₀/2, ψ_d/2),
  p(σ²) ∝ (σ²)^{-(ν₀/2+1)} exp(-ψ_d / (2σ²));  μ_kd | σ²_kd ~ N(m₀_d, σ²_kd / κ₀).
  Ψ₀ is a (D,) vector ψ.
* ``spherical``: σ²_k ~ InverseGamma(ν₀/2, ψ/2);  μ_k | σ²_k ~ N(m₀, σ²_k I / κ₀).
  Ψ₀ is a scalar ψ.

Defaults for fields left ``None`` are weakly informative and follow the data's units
(so the prior is invariant to rescaling X): m₀ = the data mean, κ₀ = 0.01,
ν₀ = D + 2 (the smallest integer for which E[Σ] exists), and Ψ₀ chosen so that the
prior mean of each covariance equals the data covariance: Ψ₀ = (ν₀ − D − 1)·cov(X)
(full, tied), ψ_d = (ν₀ − 2)·var_d(X) (diag), ψ = (ν₀ − 2)·mean_d var_d(X) (spherical).
α defaults to 1 (a flat Dirichlet: the MAP weights equal the maximum-likelihood ones).
With α < 1 the MAP weights π_k ∝ max(N_k + α − 1, 0) can reach zero: such a component is
*pruned* (weight exactly 0, parameters at their prior mode, never NaN) and its Dirichlet
term is left out of the objective (the density is unbounded on that face).

References: Murphy, *Machine Learning: a Probabilistic Perspective*, §4.6.3 (NIW);
Bishop, *PRML*, §10.2 and B (Dirichlet, Wishart).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, multigammaln

from .params import GMMParams


class GMMPrior(NamedTuple):
    """Conjugate prior hyperparameters; ``None`` fields take data-dependent defaults."""

    weight_concentration: object = 1.0
    mean_prior: Optional[object] = None
    mean_precision: Optional[object] = None
    degrees_of_freedom: Optional[object] = None
    covariance_prior: Optional[object] = None


DEFAULT_MEAN_PRECISION = 0.01


def _weighted_moments(X, sample_weight):
    if sample_weight is None:
        w = jnp.ones(X.shape[0], X.dtype)
    else:
        w = sample_weight.astype(X.dtype)
    wsum = jnp.sum(w)
    mean = (w @ X) / wsum
    xc = X - mean
    cov = (xc * w[:, None]).T @ xc / wsum
    return mean, cov


def resolve_prior(prior: GMMPrior, X: jax.Array, n_components: int, covariance_type: str,
                  sample_weight=None) -> GMMPrior:
    """Fill ``None`` fields from the data and cast everything to X's dtype (traceable).

    X: (N, D). Returns a GMMPrior whose fields are arrays: α (K,), m₀ (D,), κ₀ (),
    ν₀ (), Ψ₀ (D, D) / (D,) / () by type.
    """
    dt = X.dtype
    d = X.shape[1]
    need_moments = prior.mean_prior is None or prior.covariance_prior is None
    mean, cov = _weighted_moments(X, sample_weight) if need_moments else (None, None)
    # A constant column has zero variance; keep the default scale strictly positive.
    if cov is not None:
        floor = jnp.maximum(jnp.max(jnp.diagonal(cov)), 1.0) * (1e3 * jnp.finfo(dt).eps)
        cov = cov + floor * jnp.eye(d, dtype=dt)
    alpha = jnp.broadcast_to(jnp.asarray(prior.weight_concentration, dt), (n_components,))
    m0 = mean if prior.mean_prior is None else jnp.broadcast_to(
        jnp.asarray(prior.mean_prior, dt), (d,))
    kappa = jnp.asarray(DEFAULT_MEAN_PRECISION if prior.mean_precision is None
                        else prior.mean_precision, dt)
    nu = jnp.asarray(d + 2.0 if prior.degrees_of_freedom is None
                     else prior.degrees_of_freedom, dt)
    if prior.covariance_prior is None:
        if covariance_type in ("full", "tied"):
            psi = (nu - d - 1.0) * cov
        elif covariance_type == "diag":
            psi = (nu - 2.0) * jnp.diagonal(cov)
        else:
            psi = (nu - 2.0) * jnp.mean(jnp.diagonal(cov))
    else:
        psi = jnp.asarray(prior.covariance_prior, dt)
        if covariance_type == "diag":
            psi = jnp.broadcast_to(psi, (d,))
    return GMMPrior(alpha, m0, kappa, nu, psi)


def check_prior(prior: GMMPrior, n_components: int, n_features: int,
                covariance_type: str) -> None:
    """Validate concrete hyperparameters; raise ValueError naming the field."""
    if not isinstance(prior, GMMPrior):
        raise TypeError(f"prior must be a bayes_gmm.GMMPrior or None; got {type(prior).__name__}")
    k, d = n_components, n_features

    def arr(name, v):
        try:
            a = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"GMMPrior.{name} must be numeric; got {v!r}") from None
        if not np.all(np.isfinite(a)):
            raise ValueError(f"GMMPrior.{name} must be finite; got {a}")
        return a

    alpha = arr("weight_concentration", prior.weight_concentration)
    if alpha.shape not in ((), (k,)):
        raise ValueError(f"GMMPrior.weight_concentration must be a scalar or shape ({k},); "
                         f"got shape {alpha.shape}")
    if np.any(alpha <= 0):
        raise ValueError(f"GMMPrior.weight_concentration must be > 0; got {alpha}")
    if prior.mean_prior is not None:
        m0 = arr("mean_prior", prior.mean_prior)
        if m0.shape not in ((), (d,)):
            raise ValueError(f"GMMPrior.mean_prior must have shape ({d},); got {m0.shape}")
    if prior.mean_precision is not None:
        kappa = arr("mean_precision", prior.mean_precision)
        if kappa.shape != () or kappa <= 0:
            raise ValueError(f"GMMPrior.mean_precision must be a scalar > 0; got {kappa}")
    if prior.degrees_of_freedom is not None:
        nu = arr("degrees_of_freedom", prior.degrees_of_freedom)
        lower = d - 1 if covariance_type in ("full", "tied") else 0
        if nu.shape != () or nu <= lower:
            raise ValueError(f"GMMPrior.degrees_of_freedom must be a scalar > {lower} "
                             f"(n_features - 1 for '{covariance_type}'); got {nu}")
    if prior.covariance_prior is not None:
        psi = arr("covariance_prior", prior.covariance_prior)
        if covariance_type in ("full", "tied"):
            if psi.shape != (d, d):
                raise ValueError(f"GMMPrior.covariance_prior must be a ({d}, {d}) matrix for "
                                 f"'{covariance_type}'; got shape {psi.shape}")
            if not np.allclose(psi, psi.T, rtol=1e-8, atol=1e-12 * np.abs(psi).max()):
                raise ValueError("GMMPrior.covariance_prior must be symmetric")
            if np.linalg.eigvalsh(psi).min() <= 0:
                raise ValueError("GMMPrior.covariance_prior must be positive definite")
        else:
            want = ((), (d,)) if covariance_type == "diag" else ((),)
            if psi.shape not in want:
                raise ValueError(f"GMMPrior.covariance_prior must have shape "
                                 f"{' or '.join(map(str, want))} for '{covariance_type}'; "
                                 f"got shape {psi.shape}")
            if np.any(psi <= 0):
                raise ValueError(f"GMMPrior.covariance_prior must be > 0; got {psi}")


# --- log densities (normalised; they match NumPyro's distributions) -------------------

def _log_inv_wishart(cov, nu, psi):
    """log IW(Σ | ν, Ψ); cov (..., D, D)."""
    d = cov.shape[-1]
    chol = jnp.linalg.cholesky(cov)
    chol_psi = jnp.linalg.cholesky(psi)
    log_det_cov = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
    log_det_psi = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_psi)))
    a = jax.scipy.linalg.solve_triangular(chol, jnp.broadcast_to(chol_psi, cov.shape), lower=True)
    trace = jnp.sum(jnp.square(a), axis=(-2, -1))                  # tr(Ψ Σ⁻¹)
    return (0.5 * nu * log_det_psi - 0.5 * nu * d * math.log(2.0) - multigammaln(0.5 * nu, d)
            - 0.5 * (nu + d + 1.0) * log_det_cov - 0.5 * trace)


def _log_mvn_scaled(means, m0, cov, kappa):
    """log N(μ | m₀, Σ/κ) for means (K, D) and cov (K, D, D) or (D, D)."""
    d = means.shape[-1]
    chol = jnp.linalg.cholesky(cov)
    diff = jnp.broadcast_to(means - m0, means.shape)
    chol_b = jnp.broadcast_to(chol, means.shape[:-1] + (d, d))
    z = jax.scipy.linalg.solve_triangular(chol_b, diff[..., None], lower=True)[..., 0]
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_b, axis1=-2, axis2=-1)), -1)
    return (-0.5 * d * math.log(2.0 * math.pi) + 0.5 * d * jnp.log(kappa) - 0.5 * log_det
            - 0.5 * kappa * jnp.sum(jnp.square(z), -1))


def _log_inv_gamma(x, a, b):
    return a * jnp.log(b) - gammaln(a) - (a + 1.0) * jnp.log(x) - b / x


def _log_normal(x, loc, var):
    return -0.5 * (math.log(2.0 * math.pi) + jnp.log(var) + jnp.square(x - loc) / var)


def log_dirichlet(weights, alpha):
    """log Dirichlet(π | α); pruned components (π_k = 0) contribute no (α_k−1) log π_k term."""
    safe = jnp.where(weights > 0, weights, 1.0)
    terms = jnp.where(weights > 0, (alpha - 1.0) * jnp.log(safe), 0.0)
    return gammaln(jnp.sum(alpha)) - jnp.sum(gammaln(alpha)) + jnp.sum(terms)


def log_prior(params: GMMParams, prior: GMMPrior) -> jax.Array:
    """log p(θ) under a *resolved* prior (see :func:`resolve_prior`): a scalar."""
    t = params.covariance_type
    alpha, m0, kappa, nu, psi = prior
    lp = log_dirichlet(params.weights, alpha)
    cov, mu = params.covariances, params.means
    if t in ("full", "tied"):
        lp = lp + jnp.sum(_log_inv_wishart(cov, nu, psi))
        lp = lp + jnp.sum(_log_mvn_scaled(mu, m0, cov, kappa))
    elif t == "diag":
        lp = lp + jnp.sum(_log_inv_gamma(cov, 0.5 * nu, 0.5 * psi))
        lp = lp + jnp.sum(_log_normal(mu, m0, cov / kappa))
    else:
        lp = lp + jnp.sum(_log_inv_gamma(cov, 0.5 * nu, 0.5 * psi))
        lp = lp + jnp.sum(_log_normal(mu, m0, cov[:, None] / kappa))
    return lp

r"""`GMMPrior`: the conjugate prior shared by MAP-EM and the NumPyro model, defined once.

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

The distributions come from the covariance family (``family.covariance_prior`` and
``family.mean_prior``): :func:`prior_distributions` builds them, the NumPyro model samples
from them, :func:`log_prior` (the MAP-EM objective's prior term) evaluates them, and the
family's closed-form ``map_covariance`` is their posterior mode. One definition.

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

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import gammaln

from .covariance import get_family
from .params import GMMParams

__all__ = ["GMMPrior", "DEFAULT_MEAN_PRECISION", "resolve_prior", "standard_prior",
           "prior_distributions", "log_dirichlet", "log_prior"]


class GMMPrior(NamedTuple):
    """Conjugate prior hyperparameters; ``None`` fields take data-dependent defaults.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> X = jnp.array([[0.0, 1.0], [2.0, 3.0], [4.0, 1.0]])
    >>> r = resolve_prior(GMMPrior(), X, 2, "diag")
    >>> r.mean_prior.tolist(), float(r.degrees_of_freedom)
    ([2.0, 1.6666667461395264], 4.0)
    """

    weight_concentration: object = 1.0
    mean_prior: Optional[object] = None
    mean_precision: Optional[object] = None
    degrees_of_freedom: Optional[object] = None
    covariance_prior: Optional[object] = None


DEFAULT_MEAN_PRECISION = 0.01


def _weighted_moments(X, sample_weight):
    w = jnp.ones(X.shape[0], X.dtype) if sample_weight is None else sample_weight.astype(X.dtype)
    wsum = jnp.sum(w)
    mean = (w @ X) / wsum
    xc = X - mean
    cov = (xc * w[:, None]).T @ xc / wsum
    return mean, cov


def resolve_prior(prior: GMMPrior, X: jax.Array, n_components: int, covariance_type: str,
                  sample_weight=None) -> GMMPrior:
    """Fill ``None`` fields from the data and cast everything to X's dtype (traceable).

    X: (N, D). Returns a GMMPrior whose fields are arrays: α (K,), m₀ (D,), κ₀ (),
    ν₀ (), Ψ₀ (D, D) / (D,) / () by family.
    """
    fam = get_family(covariance_type)
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
        psi = fam.default_scale(nu, cov, d)
    else:
        psi = fam.broadcast_scale(jnp.asarray(prior.covariance_prior, dt), d)
    return GMMPrior(alpha, m0, kappa, nu, psi)


def standard_prior(prior: Optional[GMMPrior], n_components: int, n_features: int,
                   covariance_type: str, dtype=None) -> GMMPrior:
    """The resolved prior without data (prior predictive, SBC): ``None`` fields default to
    m₀ = 0 and unit data covariance."""
    prior = GMMPrior() if prior is None else prior
    dtype = dtype or jnp.zeros(()).dtype
    # Two symmetric pseudo-rows per feature: mean 0, covariance I.
    eye = jnp.eye(n_features, dtype=dtype)
    pseudo = jnp.concatenate([eye, -eye]) * jnp.sqrt(jnp.asarray(n_features, dtype))
    return resolve_prior(prior, pseudo, n_components, covariance_type)


def prior_distributions(prior: GMMPrior, n_components: int, n_features: int,
                        covariance_type: str):
    """(weights, covariances, means | covariances) distributions of a *resolved* prior.

    Returns ``(Dirichlet(α), Σ-distribution, f)`` where ``f(covariances)`` gives the
    distribution of the means; each is one event (the sites of :func:`gmm_model`).
    """
    fam = get_family(covariance_type)
    alpha, m0, kappa, nu, psi = prior
    k, d = n_components, n_features
    return (dist.Dirichlet(alpha), fam.covariance_prior(nu, psi, k, d),
            lambda cov: fam.mean_prior(m0, cov, kappa, k, d))


def log_dirichlet(weights, alpha):
    """log Dirichlet(π | α); pruned components (π_k = 0) contribute no (α_k−1) log π_k term."""
    safe = jnp.where(weights > 0, weights, 1.0)
    terms = jnp.where(weights > 0, (alpha - 1.0) * jnp.log(safe), 0.0)
    return gammaln(jnp.sum(alpha)) - jnp.sum(gammaln(alpha)) + jnp.sum(terms)


def log_prior(params: GMMParams, prior: GMMPrior) -> jax.Array:
    """log p(θ) under a *resolved* prior (see :func:`resolve_prior`): a scalar.

    The covariance and mean terms are the log densities of the very distributions the
    NumPyro model samples from; the weight term is the Dirichlet's, with pruned
    components left out (:func:`log_dirichlet`).
    """
    k, d = params.means.shape
    _, cov_dist, mean_dist = prior_distributions(prior, k, d, params.covariance_type)
    return (log_dirichlet(params.weights, prior.weight_concentration)
            + cov_dist.log_prob(params.covariances)
            + mean_dist(params.covariances).log_prob(params.means))

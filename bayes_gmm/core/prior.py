r"""`GMMPrior`: the conjugate prior shared by MAP-EM and the NumPyro model, defined once.

With K components and D features, α = ``weight_concentration``, m₀ = ``mean_prior``,
κ₀ = ``mean_precision``, ν₀ = ``degrees_of_freedom`` and Ψ₀ = ``covariance_prior``:

* weights:  π ~ Dirichlet(α), α scalar or (K,).
* ``full``:  Σ_k ~ InverseWishart(ν₀, Ψ₀),
  p(Σ) ∝ det(Σ)^{-(ν₀+D+1)/2} exp(-tr(Ψ₀ Σ⁻¹)/2);  μ_k | Σ_k ~ N(m₀, Σ_k / κ₀).
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

Defaults for fields left ``None`` follow the data's units (so the prior is invariant to
rescaling X) and are weakly informative about *clusters*, not about the whole data set:
m₀ = the data mean, κ₀ = 0.01, ν₀ = D + 2 (the smallest integer for which E[Σ] exists),
and Ψ₀ puts the MAP covariance of a component that sees no data at the *pooled
within-component covariance* W = Σ_k π_k Σ_k of a maximum-likelihood pilot fit
(:func:`pilot_target`: K components, the same covariance type, restarts from a fixed
seed, so the prior is a function of the data alone). With N_k rows a component's MAP
covariance is then close to the weighted average (c·W + N_k Σ̂_k) / (c + N_k), c = ν₀ + D + 2
for full (the family's :meth:`~bayes_gmm.core.covariance.CovarianceFamily.default_scale`):
shrinkage towards the pooled covariance, as in regularised discriminant analysis, which
leaves well-determined clusters where maximum likelihood puts them. (The first wave's
default, a prior mean equal to cov(X), pulled tight clusters towards the spread of the
whole data set: iris moved from ARI 0.90 to 0.72; ``docs/default_prior.md`` has the study.)
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
           "pooled_covariance", "prior_distributions", "log_dirichlet", "log_prior"]


class GMMPrior(NamedTuple):
    """Conjugate prior hyperparameters; ``None`` fields take data-dependent defaults.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> X = jnp.array([[0.0, 1.0], [2.0, 3.0], [4.0, 1.0]])
    >>> from bayes_gmm.core.em import data_prior      # resolve_prior + the pilot fit
    >>> r = data_prior(GMMPrior(), X, 2, "diag")
    >>> r.mean_prior.tolist(), float(r.degrees_of_freedom)
    ([2.0, 1.6666667461395264], 4.0)
    """

    weight_concentration: object = 1.0
    mean_prior: Optional[object] = None
    mean_precision: Optional[object] = None
    degrees_of_freedom: Optional[object] = None
    covariance_prior: Optional[object] = None


DEFAULT_MEAN_PRECISION = 0.01


def _weighted_mean(X, sample_weight):
    w = jnp.ones(X.shape[0], X.dtype) if sample_weight is None else sample_weight.astype(X.dtype)
    return (w @ X) / jnp.sum(w)


def pooled_covariance(params: GMMParams) -> jax.Array:
    """W = Σ_k π_k Σ_k (D, D): the pooled within-component covariance of a fit."""
    k, d = params.means.shape
    full = get_family(params.covariance_type).to_full(params.covariances, k, d)
    return jnp.einsum("k,kij->ij", params.weights, full)


def resolve_prior(prior: GMMPrior, X: jax.Array, n_components: int, covariance_type: str,
                  sample_weight=None, *, target=None) -> GMMPrior:
    """Fill ``None`` fields from the data and cast everything to X's dtype (traceable).

    X: (N, D). ``target``: the (D, D) covariance the default Ψ₀ is built from, required
    when ``covariance_prior`` is None (:func:`bayes_gmm.core.em.data_prior` runs the
    maximum-likelihood pilot fit that gives it). Returns a GMMPrior whose fields are arrays: α (K,),
    m₀ (D,), κ₀ (), ν₀ (), Ψ₀ (D, D) / (D,) / () by family.
    """
    fam = get_family(covariance_type)
    dt = X.dtype
    d = X.shape[1]
    mean = _weighted_mean(X, sample_weight) if prior.mean_prior is None else None
    if prior.covariance_prior is None and target is None:
        raise ValueError("resolve_prior: the default covariance_prior needs a target "
                         "covariance (bayes_gmm.core.em.data_prior runs the pilot fit)")
    if target is not None:
        # A constant column has zero variance; keep the default scale strictly positive.
        target = jnp.asarray(target, dt)
        floor = jnp.maximum(jnp.max(jnp.diagonal(target)), 1.0) * (1e3 * jnp.finfo(dt).eps)
        target = target + floor * jnp.eye(d, dtype=dt)
    alpha = jnp.broadcast_to(jnp.asarray(prior.weight_concentration, dt), (n_components,))
    m0 = mean if prior.mean_prior is None else jnp.broadcast_to(
        jnp.asarray(prior.mean_prior, dt), (d,))
    kappa = jnp.asarray(DEFAULT_MEAN_PRECISION if prior.mean_precision is None
                        else prior.mean_precision, dt)
    nu = jnp.asarray(d + 2.0 if prior.degrees_of_freedom is None
                     else prior.degrees_of_freedom, dt)
    if prior.covariance_prior is None:
        psi = fam.default_scale(nu, target, n_components, d)
    else:
        psi = fam.broadcast_scale(jnp.asarray(prior.covariance_prior, dt), d)
    return GMMPrior(alpha, m0, kappa, nu, psi)


def standard_prior(prior: Optional[GMMPrior], n_components: int, n_features: int,
                   covariance_type: str, dtype=None) -> GMMPrior:
    """The resolved prior without data (prior predictive, SBC): ``None`` fields default to
    m₀ = 0 and the identity as the covariance target (standardised units)."""
    prior = GMMPrior() if prior is None else prior
    dtype = dtype or jnp.zeros(()).dtype
    # Two symmetric pseudo-rows per feature: mean 0 (the default m₀).
    eye = jnp.eye(n_features, dtype=dtype)
    pseudo = jnp.concatenate([eye, -eye]) * jnp.sqrt(jnp.asarray(n_features, dtype))
    return resolve_prior(prior, pseudo, n_components, covariance_type, target=eye)


def prior_distributions(prior: GMMPrior, n_components: int, n_features: int,
                        covariance_type: str):
    """(weights, covariances, means | covariances) distributions of a *resolved* prior.

    Returns ``(Dirichlet(α), Σ-distribution, f)`` where ``f(covariances)`` gives the
    distribution of the means; each is one event (the sites of :func:`gmm_model`).
    """
    fam = get_family(covariance_type)
    alpha, m0, kappa, nu, psi = prior
    k, d = n_components, n_features
    return (dist.Dirichlet(alpha, validate_args=False),
            fam.covariance_prior(nu, psi, k, d),
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

"""The NumPyro model: the same mixture and the same `GMMPrior` as MAP-EM.

Sample sites are named like the `GMMParams` fields — ``weights``, ``means``,
``covariances`` — so an EM solution feeds ``init_to_value`` directly. Assignments are
marginalised with log-sum-exp inside :class:`GaussianMixtureLikelihood`, so NUTS needs
no discrete sampling; the observed site ``obs`` records one log-likelihood per row, which
ArviZ turns into the ``log_likelihood`` group for LOO/WAIC.

The log joint density of this model at θ (constrained values, no Jacobian) equals
N × the MAP-EM objective at θ: one model, one prior.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logsumexp
from numpyro.distributions import constraints

from .params import GMMParams, component_log_prob, full_covariances, precision_cholesky
from .priors import GMMPrior, resolve_prior

OBS_SITE = "obs"


class GaussianMixtureLikelihood(dist.Distribution):
    """p(x | θ) = Σ_k π_k N(x | μ_k, Σ_k), with assignments summed out. Event shape (D,)."""

    arg_constraints = {}
    support = constraints.real_vector

    def __init__(self, params: GMMParams, validate_args=None):
        self.params = params
        d = params.means.shape[-1]
        super().__init__(batch_shape=(), event_shape=(d,), validate_args=validate_args)

    def log_prob(self, value):
        p = self.params
        u = precision_cholesky(p.covariances, p.covariance_type)
        shape = value.shape[:-1]
        flat = value.reshape(-1, value.shape[-1])
        lp = component_log_prob(flat, p.means, u, p.covariance_type) + jnp.log(p.weights)[None]
        return logsumexp(lp, axis=-1).reshape(shape)

    def sample(self, key, sample_shape=()):
        p = self.params
        k1, k2 = jax.random.split(key)
        labels = jax.random.categorical(k1, jnp.log(p.weights), shape=sample_shape)
        chol = jnp.linalg.cholesky(full_covariances(p))
        z = jax.random.normal(k2, sample_shape + p.means.shape[-1:], p.means.dtype)
        return p.means[labels] + jnp.einsum("...de,...e->...d", chol[labels], z)


def default_prior_for(X, n_components, prior, covariance_type, n_features=None,
                      dtype=None) -> GMMPrior:
    """The resolved prior the model (and EM) use. Without data, defaults are standardised:
    m₀ = 0 and unit data covariance."""
    prior = GMMPrior() if prior is None else prior
    if X is not None:
        return resolve_prior(prior, X, n_components, covariance_type)
    dtype = dtype or jnp.zeros(()).dtype
    # Two symmetric pseudo-rows per feature: mean 0, covariance I.
    eye = jnp.eye(n_features, dtype=dtype)
    pseudo = jnp.concatenate([eye, -eye]) * jnp.sqrt(jnp.asarray(n_features, dtype))
    return resolve_prior(prior, pseudo, n_components, covariance_type)


def gmm_model(X=None, n_components=2, *, prior=None, covariance_type="full", n_samples=None,
              subsample_size=None, n_features=None):
    """NumPyro model of a K-component Gaussian mixture under `GMMPrior`.

    Parameters
    ----------
    X : (N, D) observations, or None for prior-predictive draws (then give ``n_samples``
        and ``n_features``; ``None`` prior fields default to m₀ = 0 and unit covariance).
    n_components : K.
    prior : `GMMPrior` (None: ``GMMPrior()`` with data-dependent defaults, as MAP-EM).
    covariance_type : "full" | "tied" | "diag" | "spherical".
    subsample_size : minibatch size for SVI (the likelihood is rescaled by N / batch).

    Sites: ``weights`` (K,), ``means`` (K, D), ``covariances`` (shape by type), observed
    ``obs`` (N, D).
    """
    k = n_components
    if X is not None:
        X = jnp.asarray(X)
        n, d = X.shape
        dtype = X.dtype
    else:
        if n_samples is None or n_features is None:
            raise ValueError("gmm_model with X=None needs n_samples and n_features")
        n, d = n_samples, n_features
        dtype = jnp.zeros(()).dtype
    alpha, m0, kappa, nu, psi = default_prior_for(X, k, prior, covariance_type, d, dtype)

    weights = numpyro.sample("weights", dist.Dirichlet(alpha))
    if covariance_type == "tied":
        covariances = numpyro.sample("covariances", dist.InverseWishart(nu, scale_matrix=psi))
    with numpyro.plate("component", k):
        if covariance_type == "full":
            covariances = numpyro.sample("covariances",
                                         dist.InverseWishart(nu, scale_matrix=psi))
        elif covariance_type == "diag":
            covariances = numpyro.sample(
                "covariances", dist.InverseGamma(0.5 * nu, 0.5 * psi).expand([d]).to_event(1))
        elif covariance_type == "spherical":
            covariances = numpyro.sample("covariances", dist.InverseGamma(0.5 * nu, 0.5 * psi))
        if covariance_type in ("full", "tied"):
            means = numpyro.sample(
                "means", dist.MultivariateNormal(m0, covariance_matrix=covariances / kappa))
        else:
            var = covariances if covariance_type == "diag" else covariances[:, None]
            means = numpyro.sample("means", dist.Normal(m0, jnp.sqrt(var / kappa)).to_event(1))

    params = GMMParams(weights, means, covariances, covariance_type)
    with numpyro.plate("data", n, subsample_size=subsample_size) as idx:
        obs = None if X is None else (X if subsample_size is None else X[idx])
        numpyro.sample(OBS_SITE, GaussianMixtureLikelihood(params), obs=obs)

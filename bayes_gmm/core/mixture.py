r"""The mixture density, written once: log p(x), responsibilities, the MAP label, draws.

log p(x_n | θ) = logsumexp_k [log π_k + log N(x_n | μ_k, Σ_k)], with
log N = −½(D log 2π + (x − μ)ᵀ P (x − μ)) + ½ log|P| from the family's precision
Cholesky factor. A component with weight exactly 0 (pruned) has log-weight −∞, never NaN.
Pure and jittable; the public wrappers in :mod:`bayes_gmm.densities` validate and jit.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from . import missing
from .normalize import log_normalize
from .params import GMMParams
from .rows import map_rows
from .seeding import normal

__all__ = ["log_weights", "component_log_prob", "weighted_log_prob", "log_prob",
           "responsibilities", "row_scores", "sample", "log_prob_draws"]


def log_weights(weights):
    """log π; a pruned component (π_k = 0) gets −∞ (its gradient there is not finite, but
    only the EM, which takes none, meets zero weights)."""
    return jnp.log(weights)


def component_log_prob(params: GMMParams, X, u=None) -> jax.Array:
    """log N(x_n | μ_k, Σ_k) for every row and component: X (N, D) -> (N, K). ``u``: the
    family's precision factors of ``params.covariances``, when the caller has them."""
    fam = params.family
    d = X.shape[-1]
    u = fam.precision_cholesky(params.covariances) if u is None else u
    maha = fam.mahalanobis(X, params.means, u)
    return -0.5 * (d * math.log(2.0 * math.pi) + maha) + fam.log_det_precision_cholesky(u, d)


def weighted_log_prob(params: GMMParams, X, has_missing=False, u=None) -> jax.Array:
    """log π_k + log N(x_n | μ_k, Σ_k): (N, K). ``has_missing``: X holds NaN holes and
    each row's density is that of its observed entries (:mod:`bayes_gmm.core.missing`);
    ``u``: as :func:`component_log_prob`."""
    comp = (missing.component_log_prob(params, X) if has_missing
            else component_log_prob(params, X, u))
    return comp + log_weights(params.weights)[None]


def log_prob(params: GMMParams, X, batch_size=None, has_missing=False) -> jax.Array:
    """log p(x_n | θ): (N,), computed ``batch_size`` rows at a time."""
    return map_rows(lambda xc: logsumexp(weighted_log_prob(params, xc, has_missing), axis=1),
                    X, batch_size)


def responsibilities(params: GMMParams, X, has_missing=False) -> jax.Array:
    """p(z_n = k | x_n, θ): (N, K), rows sum to one."""
    return log_normalize(weighted_log_prob(params, X, has_missing))[1]


def row_scores(params: GMMParams, X, n_rows, batch_size=None, has_missing=False):
    """What one pass over X says of its rows (the public densities share this program):
    ``(log p(x_n) (N,), labels (N,) int32, Σ log p(x_n), Σ −log max_k r_nk)``, the sums over
    the first ``n_rows`` rows only (the rest are padding; ``n_rows`` may be traced)."""
    def per_row(xc):
        wlp = weighted_log_prob(params, xc, has_missing)
        lse = logsumexp(wlp, axis=1)
        # labels < K are exact in any float dtype; -log max_k r = lse - max_k wlp
        return jnp.stack([lse, jnp.argmax(wlp, axis=1).astype(xc.dtype),
                          lse - jnp.max(wlp, axis=1)], axis=1)
    out = map_rows(per_row, X, batch_size)                                 # (N, 3)
    real = jnp.arange(X.shape[0]) < n_rows
    return (out[:, 0], out[:, 1].astype(jnp.int32), jnp.sum(jnp.where(real, out[:, 0], 0)),
            jnp.sum(jnp.where(real, out[:, 2], 0)))


def sample(params: GMMParams, key, sample_shape=()):
    """Draws of the mixture: ``(X (*sample_shape, D), labels (*sample_shape,))``."""
    k, d = params.means.shape
    k1, k2 = jax.random.split(key)
    labels = jax.random.categorical(k1, jnp.log(params.weights), shape=sample_shape)
    chol = jnp.linalg.cholesky(params.family.to_full(params.covariances, k, d))
    z = normal(k2, tuple(sample_shape) + (d,), params.means.dtype)
    X = params.means[labels] + jnp.einsum("...de,...e->...d", chol[labels], z)
    return X, labels


def log_prob_draws(draws: GMMParams, X, batch_size=32, has_missing=False) -> jax.Array:
    """log p(x_n | θ_s) for draws with a leading axis (S, ...): (S, N)."""
    def one(args):
        w, m, c = args
        return log_prob(GMMParams(w, m, c, draws.covariance_type), X, has_missing=has_missing)
    return jax.lax.map(one, (draws.weights, draws.means, draws.covariances),
                       batch_size=batch_size)

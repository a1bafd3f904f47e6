r"""Missing values (NaN), integrated out exactly: the observed-data density of a row and
the E-step's expected statistics (Ghahramani & Jordan 1994; Little & Rubin 2019, ch. 11).

For a row x with observed coordinates o and missing m, and component k:

* the row's density is the marginal N(x_o | μ_o, Σ_oo);
* given x_o, the missing block is N(μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o), Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om),
  so the expected complete-data statistics are E[x] = x̂ (x_o kept, the conditional mean
  filled in) and E[x xᵀ] = x̂ x̂ᵀ + C, C the conditional covariance (zero on the observed
  block).

Every row is handled in full D × D algebra by masking: Σ̃ = diag(o) Σ diag(o) + diag(1 − o)
is Σ_oo on the observed block and the identity elsewhere, so one Cholesky factor per row
and component gives log det Σ_oo, Σ_oo⁻¹ (x_o − μ_o) and C with no gather of sub-matrices
— jittable with fixed shapes, whatever the pattern of holes. It costs O(K D³) per row
(rows are chunked by ``batch_size`` as the complete-data E-step); a row with no hole gives
exactly the complete-data terms. Statistics are returned in the family's scatter format,
so the M-step (and every covariance family) is unchanged.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.linalg import cho_solve
from jax.scipy.special import logsumexp

from .covariance.base import eye
from .params import GMMParams

__all__ = ["component_log_prob", "chunk_stats", "conditional_mean", "conditional_draw",
           "moments"]


def _pieces(params: GMMParams, X):
    """Per row and component: log N(x_o | μ_o, Σ_oo) (B, K), z = Σ̃⁻¹ diag(o)(x − μ)
    (B, K, D), the Cholesky factors of Σ̃ (B, K, D, D), the mask (B, D) and Σ (K, D, D)."""
    k, d = params.means.shape
    cov = params.family.to_full(params.covariances, k, d)
    obs = ~jnp.isnan(X)
    m = obs.astype(X.dtype)
    x = jnp.where(obs, X, 0.0)
    diff = m[:, None, :] * (x[:, None, :] - params.means[None])               # (B, K, D)
    sig = ((m[:, :, None] * m[:, None, :])[:, None] * cov[None]
           + (eye(d, X.dtype) * (1.0 - m)[:, None, :])[:, None])             # (B, K, D, D)
    chol = jnp.linalg.cholesky(sig)
    z = cho_solve((chol, True), diff[..., None])[..., 0]
    maha = jnp.sum(diff * z, axis=-1)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    d_obs = jnp.sum(m, axis=-1)[:, None]
    lognorm = -0.5 * (d_obs * math.log(2.0 * math.pi) + maha + logdet)
    return lognorm, z, chol, m, cov


def component_log_prob(params: GMMParams, X):
    """log N(x_o | μ_k,o, Σ_k,oo) of rows with NaN holes: (B, K). A row with nothing
    observed gets 0 (the density of nothing), so its membership is the weights."""
    return _pieces(params, X)[0]


def conditional_mean(params: GMMParams, X, log_weights):
    """Each row with its holes filled by E[x_m | x_o] = Σ_k r_k (μ_km + Σ_k,mo Σ_k,oo⁻¹
    (x_o − μ_k,o)), r_k the row's responsibilities: (B, D); observed entries unchanged.
    ``log_weights``: log π (K,)."""
    lognorm, z, _, m, cov = _pieces(params, X)
    wlp = lognorm + log_weights[None]
    r = jnp.exp(wlp - logsumexp(wlp, axis=1, keepdims=True))
    xhat = params.means[None] + jnp.einsum("kde,bke->bkd", cov, z)
    filled = jnp.einsum("bk,bkd->bd", r, xhat)
    return jnp.where(m > 0, X, filled)


def conditional_draw(params: GMMParams, X, log_weights, gumbel, normal):
    """One draw of each row's holes from p(x_m | x_o, θ): (B, D), observed entries kept.

    The component comes from the row's responsibilities (Gumbel-max with ``gumbel``
    (B, K)); the missing block from that component's Gaussian conditional by Matheron's
    rule: draw u ~ N(0, Σ_k) from ``normal`` (B, D) standard normals, then
    x_m = μ_m + u_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o − u_o), which is N(μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o),
    Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om) without factorising that (singular, D × D) covariance. A row
    with nothing observed gets a draw of the mixture.
    """
    lognorm, _, chol, m, cov = _pieces(params, X)
    b = X.shape[0]
    comp = jnp.argmax(lognorm + log_weights[None] + gumbel, axis=1)          # (B,)
    rows = jnp.arange(b)
    mean = params.means[comp]
    u = jnp.einsum("bde,be->bd", jnp.linalg.cholesky(cov)[comp], normal)
    resid = m * (jnp.where(m > 0, X, 0.0) - mean - u)
    w = cho_solve((chol[rows, comp], True), resid[..., None])[..., 0]
    draw = mean + u + jnp.einsum("bde,be->bd", cov[comp], m * w)
    return jnp.where(m > 0, X, draw)


def chunk_stats(Xc, wc, params: GMMParams, log_weights):
    """Expected sufficient statistics of one chunk of centred rows with holes, about the
    current means (as the complete-data E-step): (counts, sum_x, scatter, loglik).
    ``log_weights``: log π (K,)."""
    fam = params.family
    lognorm, z, chol, m, cov = _pieces(params, Xc)
    wlp = lognorm + log_weights[None]
    lse = logsumexp(wlp, axis=1)
    resp = jnp.exp(wlp - lse[:, None]) * wc[:, None]
    dev = jnp.einsum("kde,bke->bkd", cov, z)                  # x̂ − μ_k
    rows = m[:, None, :, None] * cov[None]                    # diag(o) Σ_k
    cond = cov[None] - jnp.einsum("bked,bkef->bkdf", rows, cho_solve((chol, True), rows))
    rdev = resp[..., None] * dev
    scatter = (jnp.einsum("bkd,bke->kde", rdev, dev)
               + jnp.einsum("bk,bkde->kde", resp, cond))
    return (jnp.sum(resp, axis=0), jnp.sum(rdev, axis=0), fam.scatter_from_full(scatter),
            jnp.sum(wc * lse))


def moments(X, w):
    """Per-column weighted mean and variance over the observed entries (D,), (D,)."""
    obs = ~jnp.isnan(X)
    wo = w[:, None] * obs
    x = jnp.where(obs, X, 0.0)
    n = jnp.sum(wo, axis=0)
    mean = jnp.sum(wo * x, axis=0) / n
    mean = mean + jnp.sum(wo * jnp.where(obs, x - mean, 0.0), axis=0) / n
    var = jnp.sum(wo * jnp.square(jnp.where(obs, x - mean, 0.0)), axis=0) / n
    return mean, var

r"""Missing values (NaN), integrated out exactly: the observed-data density of a row and
the E-step's expected statistics (Ghahramani & Jordan 1994; Little & Rubin 2019, ch. 11).

For a row x with observed coordinates o and missing m, and component k:

* the row's density is the marginal N(x_o | μ_o, Σ_oo);
* given x_o, the missing block is N(μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o), Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om),
  so the expected complete-data statistics are E[x] = x̂ (x_o kept, the conditional mean
  filled in) and E[x xᵀ] = x̂ x̂ᵀ + C, C the conditional covariance (zero on the observed
  block).

Two implementations, equal to rounding (tests/test_missing.py checks it):

* masked (densities, NUTS/SVI, streams, :func:`conditional_mean`, :func:`conditional_draw`):
  Σ̃ = diag(o) Σ diag(o) + diag(1 − o) is Σ_oo on the observed block and the identity
  elsewhere, so one Cholesky factor per row and component gives log det Σ_oo,
  Σ_oo⁻¹ (x_o − μ_o) and C with no gather of sub-matrices — fixed shapes whatever the
  pattern of holes, O(K D³) per row;
* by blocks (the in-memory EM, :func:`count_blocks`, :func:`block_stats`): rows sorted by
  their number of holes c, conditioned through the precision with one c × c factor per
  row and component, O(K (D² + c³)) per row.

The small factorisations run as vectorised plain-array steps (:mod:`bayes_gmm.core.linalg`),
not jaxlib's batched LAPACK kernels, which can deadlock inside compiled loops on CPU. A row
with no hole gives exactly the complete-data terms. Statistics are returned in the
family's scatter format, so the M-step (and every covariance family) is unchanged.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from . import linalg
from .covariance.base import eye
from .normalize import log_normalize
from .params import GMMParams

__all__ = ["component_log_prob", "chunk_stats", "conditional_mean", "conditional_draw",
           "moments", "count_blocks", "precision", "block_log_prob", "block_stats"]


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
    chol = linalg.cholesky(sig)
    z = linalg.cho_solve(chol, diff[..., None])[..., 0]
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
    r = log_normalize(wlp)[1]
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
    w = linalg.cho_solve(chol[rows, comp], resid[..., None])[..., 0]
    draw = mean + u + jnp.einsum("bde,be->bd", cov[comp], m * w)
    return jnp.where(m > 0, X, draw)


def chunk_stats(Xc, wc, params: GMMParams, log_weights):
    """Expected sufficient statistics of one chunk of centred rows with holes, about the
    current means (as the complete-data E-step): (counts, sum_x, scatter, loglik).
    ``log_weights``: log π (K,)."""
    fam = params.family
    lognorm, z, chol, m, cov = _pieces(params, Xc)
    wlp = lognorm + log_weights[None]
    lse, resp = log_normalize(wlp, wc)
    dev = jnp.einsum("kde,bke->bkd", cov, z)                  # x̂ − μ_k
    rows = m[:, None, :, None] * cov[None]                    # diag(o) Σ_k
    cond = cov[None] - jnp.einsum("bked,bkef->bkdf", rows, linalg.cho_solve(chol, rows))
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


# --- rows grouped by their number of holes (the EM's fast path) --------------------------
#
# The masked algebra above factorises a D × D matrix per row and component. The EM instead
# visits the rows in blocks that share their number of holes c, and conditions through the
# precision P = Σ⁻¹ (Lauritzen 1996, §C.1): for a row with missing set m and d = x − μ with
# zeros at the holes, y = P d gives
#   x̂_m − μ_m = −P_mm⁻¹ y_m,   Cov(x_m | x_o) = P_mm⁻¹,
#   (x_o − μ_o)ᵀ Σ_oo⁻¹ (x_o − μ_o) = dᵀy − y_mᵀ P_mm⁻¹ y_m,
#   log det Σ_oo = log det Σ + log det P_mm,
# so each row costs one c × c factorisation on top of the complete-data work (y = P d
# is one D × D product per row and component), where c is small when few entries are
# missing.

def count_blocks(X) -> tuple:
    """Static description of the rows of a concrete X (N, D) sorted by their number of
    NaN (stable): ``((start, stop, c), ...)``, in order. A block holds the rows whose
    number of holes rounds up to the same power of two c (at most D; c = 0: complete
    rows), so a program has at most log₂ D + 2 blocks; a row with fewer than c holes fills
    its spare slots with an identity (:func:`block_stats`)."""
    counts = np.sort(np.isnan(np.asarray(X)).sum(axis=1), kind="stable")
    d = np.shape(X)[1]
    sizes = np.where(counts == 0, 0, np.minimum(
        2 ** np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64), d))
    values, starts = np.unique(sizes, return_index=True)
    stops = list(starts[1:]) + [counts.shape[0]]
    return tuple((int(a), int(b), int(c)) for a, b, c in zip(starts, stops, values))


def sort_rows(X, w):
    """X and w with the rows in the order of :func:`count_blocks` (traceable)."""
    order = jnp.argsort(jnp.sum(jnp.isnan(X), axis=1), stable=True)
    return X[order], w[order]


def precision(params: GMMParams):
    """(Σ⁻¹ (K, D, D), log det Σ (K,)) of every component."""
    k, d = params.means.shape
    chol = jnp.linalg.cholesky(params.family.to_full(params.covariances, k, d))
    prec = jax.scipy.linalg.cho_solve((chol, True),
                                      jnp.broadcast_to(eye(d, chol.dtype), chol.shape))
    return prec, 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def _block_pieces(params: GMMParams, X, c, prec, logdet):
    """Rows with 1 to c holes: log N(x_o | μ_o, Σ_oo) (B, K), d (B, K, D) with zeros at
    the holes, s = P_mm⁻¹ y_m (B, K, c), L⁻¹ of P_mm = L Lᵀ (B, K, c, c), and each
    column's slot among the row's holes (B, D; c for an observed column). A row with fewer
    than c holes has the identity in P_mm's spare slots, which then add nothing."""
    k, d = params.means.shape
    miss = jnp.isnan(X)
    rank = jnp.cumsum(miss, axis=1)                                        # (B, D)
    # the column of each row's i-th hole (0 for a spare slot; a sort costs far more)
    idx = jnp.stack([jnp.argmax(miss & (rank == i + 1), axis=1) for i in range(c)], axis=1)
    valid = jnp.arange(c)[None, :] < rank[:, -1:]                          # (B, c)
    slot = jnp.where(miss, rank - 1, c)                                    # (B, D)
    xt = jnp.where(miss, 0.0, X)
    diff = (~miss)[:, None, :] * (xt[:, None, :] - params.means[None])     # (B, K, D)
    y = jnp.einsum("kde,bke->bkd", prec, diff)                             # P d
    y_m = jnp.where(valid[:, None, :], jnp.take_along_axis(y, idx[:, None, :], axis=2), 0.0)
    p_mm = jnp.moveaxis(prec[:, idx[:, :, None], idx[:, None, :]], 0, 1)  # (B, K, c, c)
    pair = valid[:, :, None] & valid[:, None, :]
    p_mm = jnp.where(pair[:, None], p_mm, eye(c, X.dtype))
    chol = linalg.cholesky(p_mm)
    linv = linalg.solve_lower(chol, jnp.broadcast_to(eye(c, X.dtype), chol.shape))
    t = jnp.einsum("bkij,bkj->bki", linv, y_m)                             # L⁻¹ y_m
    s = jnp.einsum("bkji,bkj->bki", linv, t)                               # P_mm⁻¹ y_m
    maha = jnp.sum(diff * y, axis=-1) - jnp.sum(t * t, axis=-1)
    logdet_oo = logdet[None] + 2.0 * jnp.sum(
        jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    d_obs = d - jnp.sum(valid, axis=1)[:, None]
    lognorm = -0.5 * (d_obs * math.log(2.0 * math.pi) + maha + logdet_oo)
    return lognorm, diff, s, linv, slot


def _by_slot(a, slot):
    """a (B, K, c, ...) read at each column's slot: (B, K, D, ...), zero where observed.
    For c ≤ 2 a product with the one-hot slots (faster on CPU), else a gather."""
    c = a.shape[2]
    if c <= 2:
        onehot = (slot[:, None, :] == jnp.arange(c)[None, :, None]).astype(a.dtype)
        return jnp.einsum("bkc...,bcd->bkd...", a, onehot)
    pad = jnp.zeros(a.shape[:2] + (1,) + a.shape[3:], a.dtype)
    full = jnp.concatenate([a, pad], axis=2)
    index = slot[:, None, :].reshape(slot.shape[:1] + (1, slot.shape[1]) + (1,) * (a.ndim - 3))
    return jnp.take_along_axis(full, index, axis=2)


def block_log_prob(params: GMMParams, X, c, prec, logdet):
    """log N(x_o | μ_k,o, Σ_k,oo) (B, K) of rows with 1 to c holes."""
    return _block_pieces(params, X, c, prec, logdet)[0]


def block_stats(Xc, wc, params: GMMParams, log_weights, c, prec, logdet):
    """As :func:`chunk_stats`, for centred rows with 1 to c holes each."""
    lognorm, diff, s, linv, slot = _block_pieces(params, Xc, c, prec, logdet)
    wlp = lognorm + log_weights[None]
    lse, resp = log_normalize(wlp, wc)
    dev = diff - _by_slot(s, slot)                                         # x̂ − μ_k
    rdev = resp[..., None] * dev
    # Σ r (dev devᵀ + Cov(x_m | x_o) embedded in D × D) as one product: Cov = P_mm⁻¹ =
    # L⁻ᵀ L⁻¹ = V Vᵀ with V = L⁻ᵀ read by slot, so the sum is Σ_b W Wᵀ, W = √r [dev, V].
    w = jnp.sqrt(resp)[..., None, None] * jnp.concatenate(
        [dev[..., None], _by_slot(jnp.swapaxes(linv, -1, -2), slot)], axis=3)
    b_rows, k = w.shape[:2]
    w = jnp.transpose(w, (1, 0, 3, 2)).reshape(k, b_rows * (c + 1), -1)   # (K, B(c+1), D)
    scatter = jnp.einsum("knd,kne->kde", w, w)
    return (jnp.sum(resp, axis=0), jnp.sum(rdev, axis=0),
            params.family.scatter_from_full(scatter), jnp.sum(wc * lse))

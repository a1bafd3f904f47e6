r"""Compiled EM for Gaussian mixtures: maximum likelihood or MAP under `GMMPrior`.

Pure functions of arrays. One `jax.lax.scan` runs the iterations; once converged, a
`lax.cond` skips the remaining steps. ``n_init`` restarts are one `vmap`. With
``batch_size`` the E-step and the sufficient statistics run over row chunks inside the
compiled program, so no (N, K) or (N, K, D) intermediate is larger than one chunk.

Numerics: X is centred once by its (weighted) mean, and each component's scatter is
accumulated about that component's current mean (a shifted, "centred" sum), so float32
keeps small components accurate under large offsets; covariances are never inverted —
the E-step uses Cholesky factors of the precisions.

M-step (``full``; Bishop PRML §9.2.2, Murphy MLPP §4.6.3). With responsibilities r_nk,
N_k = Σ_n r_nk, x̄_k = Σ_n r_nk x_n / N_k, S_k = Σ_n r_nk (x_n − x̄_k)(x_n − x̄_k)ᵀ:

* maximum likelihood: π_k = N_k / N, μ_k = x̄_k, Σ_k = S_k / N_k + reg_covar·I;
* MAP: π_k ∝ max(N_k + α_k − 1, 0), μ_k = (N_k x̄_k + κ₀ m₀)/(N_k + κ₀),
  Σ_k = (Ψ₀ + S_k + κ₀N_k/(κ₀+N_k) (x̄_k − m₀)(x̄_k − m₀)ᵀ) / (ν₀ + N_k + D + 2),
  the joint mode of the Normal-Inverse-Wishart posterior (tied, diag and spherical
  analogues in :func:`m_step`). ``reg_covar`` applies to maximum likelihood only: the
  prior is the regulariser under MAP.

A component whose responsibilities vanish (N_k below machine precision) keeps its
previous mean and covariance under maximum likelihood (its weight goes to ~0); under MAP
it falls back to the prior mode. Neither path produces NaN.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import logsumexp

from . import _validation as V
from .params import (GMMParams, component_log_prob, covariances_from_precision_cholesky,
                     log_det_precision_cholesky, precision_cholesky)
from .priors import GMMPrior, check_prior, log_prior, resolve_prior


class SuffStats(NamedTuple):
    """Weighted sufficient statistics, accumulated about ``shift`` (K, D).

    counts (K,); sum_x (K, D) = Σ r (x − shift); scatter (K, D, D) for full/tied or
    (K, D) for diag/spherical = Σ r (x − shift)(x − shift)ᵀ (or its diagonal);
    loglik: Σ_n w_n log p(x_n) at the parameters that produced r.
    """

    counts: jax.Array
    sum_x: jax.Array
    scatter: jax.Array
    loglik: jax.Array


class EMResult(NamedTuple):
    """Output of :func:`fit_em`.

    params: fitted `GMMParams`; objective: mean log-likelihood per sample (+ log prior / N
    under MAP) at ``params``; trace: (max_iter,) objective at each iteration's E-step,
    NaN after convergence; n_iter: iterations run; converged: bool.
    """

    params: GMMParams
    objective: jax.Array
    trace: jax.Array
    n_iter: jax.Array
    converged: jax.Array


# --- row chunks ------------------------------------------------------------------------

def _chunks(n, batch_size):
    if batch_size is None or batch_size >= n:
        return n, 1
    return batch_size, -(-n // batch_size)


def reduce_rows(fn, X, w, batch_size, *args):
    """Σ over row chunks of ``fn(X_chunk, w_chunk, *args)`` (a pytree of sums).

    The last chunk is slid back to stay in bounds; rows it repeats get weight 0.
    """
    n = X.shape[0]
    b, n_chunks = _chunks(n, batch_size)
    if n_chunks == 1:
        return fn(X, w, *args)

    def body(acc, i):
        start = jnp.minimum(i * b, n - b)
        xc = lax.dynamic_slice_in_dim(X, start, b)
        wc = lax.dynamic_slice_in_dim(w, start, b)
        wc = jnp.where(start + jnp.arange(b) >= i * b, wc, 0)
        out = fn(xc, wc, *args)
        return jax.tree.map(jnp.add, acc, out), None

    first = fn(lax.dynamic_slice_in_dim(X, 0, b), lax.dynamic_slice_in_dim(w, 0, b), *args)
    acc, _ = lax.scan(body, first, jnp.arange(1, n_chunks))
    return acc


def map_rows(fn, X, batch_size, *args):
    """``fn(X_chunk, *args)`` -> (chunk,) per-row values, assembled to (N,) chunk by chunk."""
    n = X.shape[0]
    b, n_chunks = _chunks(n, batch_size)
    if n_chunks == 1:
        return fn(X, *args)

    def body(out, i):
        start = jnp.minimum(i * b, n - b)
        vals = fn(lax.dynamic_slice_in_dim(X, start, b), *args)
        return lax.dynamic_update_slice_in_dim(out, vals, start, 0), None

    out0 = jnp.zeros((n,), X.dtype)
    out, _ = lax.scan(body, out0, jnp.arange(n_chunks))
    return out


# --- E-step ----------------------------------------------------------------------------

def _weighted_log_prob(params: GMMParams, X):
    u = precision_cholesky(params.covariances, params.covariance_type)
    lp = component_log_prob(X, params.means, u, params.covariance_type)
    safe = jnp.where(params.weights > 0, params.weights, 1.0)
    return lp + jnp.where(params.weights > 0, jnp.log(safe), -jnp.inf)[None]


def _stats_from_resp(Xc, resp, shift, covariance_type):
    """Sufficient statistics of one chunk. Xc: (B, D), resp: (B, K) already weighted."""
    diff = Xc[:, None, :] - shift[None]                                  # (B, K, D)
    counts = jnp.sum(resp, axis=0)
    sum_x = jnp.einsum("nk,nkd->kd", resp, diff)
    if covariance_type in ("full", "tied"):
        scatter = jnp.einsum("nkd,nke->kde", resp[..., None] * diff, diff)
    else:
        scatter = jnp.einsum("nk,nkd->kd", resp, jnp.square(diff))
    return counts, sum_x, scatter


def _chunk_stats(Xc, wc, params, center):
    Xc = Xc - center
    t = params.covariance_type
    if t in ("full", "tied"):
        return _chunk_stats_whitened(Xc, wc, params)
    wlp = _weighted_log_prob(params, Xc)
    lse = logsumexp(wlp, axis=1)
    resp = jnp.exp(wlp - lse[:, None]) * wc[:, None]
    counts, sum_x, scatter = _stats_from_resp(Xc, resp, params.means, t)
    return SuffStats(counts, sum_x, scatter, jnp.sum(wc * lse))


def _chunk_stats_whitened(Xc, wc, params):
    """Full/tied statistics in whitened coordinates y_nk = U_kᵀ(x_n − μ_k), (K, B, D).

    The E-step needs y anyway (‖y_nk‖² is the Mahalanobis distance); its rows are
    centred on each component's mean, so Σ r y yᵀ keeps float32 accuracy for components
    far from the global centre, and reusing y saves a (B, K, D) difference array.
    One GEMM projects the chunk on all components at once. :func:`e_step` maps the sums
    back: x − μ_k = L_k y with Σ_k = L_k L_kᵀ.
    """
    t = params.covariance_type
    d = Xc.shape[1]
    u = precision_cholesky(params.covariances, t)
    if t == "full":
        y = (jnp.einsum("bd,kde->kbe", Xc, u)
             - jnp.einsum("kd,kde->ke", params.means, u)[:, None, :])
    else:
        y = (Xc @ u)[None] - (params.means @ u)[:, None, :]
    maha = jnp.sum(jnp.square(y), axis=-1).T                               # (B, K)
    log_det = log_det_precision_cholesky(u, t, d)
    safe = jnp.where(params.weights > 0, params.weights, 1.0)
    logw = jnp.where(params.weights > 0, jnp.log(safe), -jnp.inf)
    wlp = -0.5 * (d * math.log(2.0 * math.pi) + maha) + log_det + logw[None]
    lse = logsumexp(wlp, axis=1)
    resp = jnp.exp(wlp - lse[:, None]) * wc[:, None]
    ry = resp.T[:, :, None] * y                                            # (K, B, D)
    return SuffStats(jnp.sum(resp, axis=0), jnp.sum(ry, axis=1),
                     jnp.einsum("kbd,kbe->kde", ry, y), jnp.sum(wc * lse))


def e_step(params: GMMParams, X, w, center, batch_size=None) -> SuffStats:
    """Sufficient statistics at ``params`` (centred coordinates), about the current means.

    X: (N, D) raw rows; w: (N,) weights; center: (D,) subtracted from every row.
    Additive over row subsets (a sum of per-chunk statistics), which streaming relies on.
    """
    stats = reduce_rows(_chunk_stats, X, w, batch_size, params, center)
    t = params.covariance_type
    if t not in ("full", "tied"):
        return stats
    # Back from whitened coordinates: x − μ_k = L_k y, Σ_k = L_k L_kᵀ.
    chol = jnp.linalg.cholesky(params.covariances)
    if t == "full":
        sum_x = jnp.einsum("kde,ke->kd", chol, stats.sum_x)
        scatter = chol @ stats.scatter @ jnp.swapaxes(chol, -1, -2)
    else:
        sum_x = stats.sum_x @ chol.T
        scatter = chol[None] @ stats.scatter @ chol.T[None]
    return stats._replace(sum_x=sum_x, scatter=scatter)


def _chunk_loglik(Xc, wc, params, center):
    return jnp.sum(wc * logsumexp(_weighted_log_prob(params, Xc - center), axis=1))


# --- M-step ----------------------------------------------------------------------------

def m_step(stats: SuffStats, shift, prev: GMMParams, prior: Optional[GMMPrior],
           reg_covar, floor) -> GMMParams:
    """Closed-form ML or MAP update from statistics accumulated about ``shift`` (K, D)."""
    t = prev.covariance_type
    counts, sum_x, scatter = stats[:3]
    k, d = shift.shape
    dt = shift.dtype
    eps = jnp.finfo(dt).eps
    total = jnp.sum(counts)
    empty = counts <= eps * total
    nk = counts + 10 * eps                                 # as scikit-learn: avoids 0/0
    off = sum_x / nk[:, None]                              # x̄_k − shift_k
    xbar = shift + off
    if t in ("full", "tied"):
        S = scatter - nk[:, None, None] * off[:, :, None] * off[:, None, :]
        S = 0.5 * (S + jnp.swapaxes(S, -1, -2))
    else:
        S = jnp.maximum(scatter - nk[:, None] * jnp.square(off), 0.0)
    eye = jnp.eye(d, dtype=dt)

    if prior is None:
        weights = nk / jnp.sum(nk)
        means = xbar
        if t == "full":
            cov = S / nk[:, None, None] + reg_covar * eye
        elif t == "tied":
            cov = jnp.sum(S, axis=0) / jnp.sum(nk) + reg_covar * eye
        elif t == "diag":
            cov = S / nk[:, None] + reg_covar
        else:
            cov = jnp.mean(S / nk[:, None], axis=1) + reg_covar
        # An emptied component keeps its previous mean and covariance.
        means = jnp.where(empty[:, None], prev.means, means)
        if t == "full":
            cov = jnp.where(empty[:, None, None], prev.covariances, cov)
        elif t in ("diag", "spherical"):
            cov = jnp.where(empty.reshape((k,) + (1,) * (cov.ndim - 1)), prev.covariances, cov)
    else:
        alpha, m0, kappa, nu, psi = prior
        raw = jnp.maximum(counts + alpha - 1.0, 0.0)
        rsum = jnp.sum(raw)
        weights = jnp.where(rsum > 0, raw / jnp.where(rsum > 0, rsum, 1.0), nk / jnp.sum(nk))
        kn = counts + kappa
        means = (counts[:, None] * xbar + kappa * m0[None]) / kn[:, None]
        dev = xbar - m0[None]
        shrink = kappa * counts / kn                                       # κ₀N_k/(κ₀+N_k)
        if t in ("full", "tied"):
            B = S + shrink[:, None, None] * dev[:, :, None] * dev[:, None, :]
            if t == "full":
                cov = (psi[None] + B) / (nu + counts + d + 2.0)[:, None, None]
            else:
                cov = (psi + jnp.sum(B, axis=0)) / (nu + total + k + d + 1.0)
        elif t == "diag":
            B = S + shrink[:, None] * jnp.square(dev)
            cov = (psi[None] + B) / (nu + counts + 3.0)[:, None]
        else:
            B = jnp.sum(S, axis=1) + shrink * jnp.sum(jnp.square(dev), axis=1)
            cov = (psi + B) / (nu + counts * d + d + 2.0)
    # A floor keeps Cholesky defined when a component is degenerate (identical rows, a
    # subspace) and reg_covar = 0: 10·eps of the component's own mean variance, plus the
    # absolute ``floor`` (see :func:`covariance_floor`). Relative to each component, so
    # clusters far apart (the global spread ≫ a cluster's) keep their own variances.
    if t == "full":
        own = jnp.trace(cov, axis1=-2, axis2=-1) / d
        cov = cov + (10 * eps * own + floor)[:, None, None] * eye
    elif t == "tied":
        cov = cov + (10 * eps * jnp.trace(cov) / d + floor) * eye
    elif t == "diag":
        cov = cov + (10 * eps * jnp.mean(cov, axis=1) + floor)[:, None]
    else:
        cov = cov * (1 + 10 * eps) + floor
    return GMMParams(weights, means, cov, t)


def covariance_floor(mean_variance, dtype):
    """Absolute covariance floor: eps²·(mean variance about the data's centre) + √tiny.

    eps²·variance is the variance of the data's own rounding at that spread (a float
    holds |x| to eps·|x|), so no fit can resolve less; √tiny keeps identical rows (zero
    variance) finite. :func:`m_step` adds a further 10·eps of each component's variance.
    """
    fi = jnp.finfo(dtype)
    return jnp.asarray(fi.eps ** 2 * mean_variance + math.sqrt(float(fi.tiny)), dtype)


# --- initialisation --------------------------------------------------------------------

def _sq_dist_to(Xc, centers):
    """Squared distances (B, K) via one GEMM; clipped at 0."""
    d2 = (jnp.sum(jnp.square(Xc), 1)[:, None] - 2.0 * Xc @ centers.T
          + jnp.sum(jnp.square(centers), 1)[None])
    return jnp.maximum(d2, 0.0)


def _row(X, i):
    """X[i] as a masked sum over rows: a reduction, so a row-sharded X is all-reduced as a
    (D,) vector instead of being gathered onto one device to slice it."""
    return jnp.sum(jnp.where((jnp.arange(X.shape[0]) == i)[:, None], X, 0), axis=0)


def _kmeans_pp(key, X, w, center, k, batch_size):
    """k-means++ seeding (Arthur & Vassilvitskii 2007), weighted by ``w``: (K, D) centres."""
    n, d = X.shape
    k0, key = jax.random.split(key)
    logw = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)), -jnp.inf)
    i0 = jax.random.categorical(k0, logw)
    c0 = _row(X, i0) - center
    centers = jnp.zeros((k, d), X.dtype).at[0].set(c0)
    dist = map_rows(lambda xc, c: _sq_dist_to(xc - center, c[None])[:, 0], X, batch_size, c0)

    def body(j, carry):
        centers, dist = carry
        logp = jnp.where((w > 0) & (dist > 0), jnp.log(jnp.where(dist > 0, dist, 1.0)) + logw,
                         -jnp.inf)
        # All remaining mass at distance 0 (duplicates): fall back to the weights.
        logp = jnp.where(jnp.any(jnp.isfinite(logp)), logp, logw)
        idx = jax.random.categorical(jax.random.fold_in(key, j), logp)
        c = _row(X, idx) - center
        newd = map_rows(lambda xc, c: _sq_dist_to(xc - center, c[None])[:, 0], X, batch_size, c)
        return centers.at[j].set(c), jnp.minimum(dist, newd)

    centers, _ = lax.fori_loop(1, k, body, (centers, dist))
    return centers


def _hard_stats(Xc, wc, centers, center, covariance_type):
    Xc = Xc - center
    labels = jnp.argmin(_sq_dist_to(Xc, centers), axis=1)
    resp = jax.nn.one_hot(labels, centers.shape[0], dtype=Xc.dtype) * wc[:, None]
    return _stats_from_resp(Xc, resp, centers, covariance_type)


N_LLOYD = 10


def initial_stats(key, X, w, center, k, covariance_type, method, batch_size):
    """Statistics of the initial hard (or random) assignment, and their shift (K, D)."""
    n, d = X.shape
    if method == "random":
        # Per-row uniforms (as scikit-learn draws them) from the row index folded into the
        # key, so the draw does not depend on how the rows are chunked.
        b, n_chunks = _chunks(n, batch_size)

        def chunk(i):
            start = jnp.minimum(i * b, n - b)
            xc = lax.dynamic_slice_in_dim(X, start, b)
            wc = lax.dynamic_slice_in_dim(w, start, b)
            rows = start + jnp.arange(b)
            wc = jnp.where(rows >= i * b, wc, 0)
            r = jax.vmap(lambda j: jax.random.uniform(jax.random.fold_in(key, j), (k,),
                                                      X.dtype))(rows)
            r = r / jnp.sum(r, axis=1, keepdims=True) * wc[:, None]
            return _stats_from_resp(xc - center, r, jnp.zeros((k, d), X.dtype), covariance_type)

        stats = chunk(0)
        if n_chunks > 1:
            stats, _ = lax.scan(lambda acc, i: (jax.tree.map(jnp.add, acc, chunk(i)), None),
                                stats, jnp.arange(1, n_chunks))
        return stats, jnp.zeros((k, d), X.dtype)
    if method == "random_from_data":
        logw = jnp.where(w > 0, 0.0, -jnp.inf)
        # Gumbel top-k: K distinct rows with positive weight.
        g = jax.random.gumbel(key, (n,), X.dtype) + logw
        idx = lax.top_k(g, k)[1]
        centers = X[idx] - center
    else:
        centers = _kmeans_pp(key, X, w, center, k, batch_size)
        if method == "kmeans":
            def lloyd(_, c):
                cnt, sx, _ = reduce_rows(_hard_stats, X, w, batch_size, c, center, "diag")
                return jnp.where(cnt[:, None] > 0, c + sx / jnp.where(cnt > 0, cnt, 1.0)[:, None],
                                 c)
            centers = lax.fori_loop(0, N_LLOYD, lloyd, centers)
    stats = reduce_rows(_hard_stats, X, w, batch_size, centers, center, covariance_type)
    return stats, centers


# --- driver ----------------------------------------------------------------------------

def _objective(loglik, wsum, params, prior):
    obj = loglik / wsum
    if prior is not None:
        obj = obj + log_prior(params, prior) / wsum
    return obj


def _run(key, X, w, center, scale, floor, prior, init_params, *, k, covariance_type, max_iter,
         tol, reg_covar, init, batch_size, early_exit=False):
    n, d = X.shape
    wsum = jnp.sum(w)
    given = init_params if init_params is not None else GMMParams(None, None, None,
                                                                  covariance_type)
    if any(v is None for v in (given.weights, given.means, given.covariances)):
        stats, shift = initial_stats(key, X, w, center, k, covariance_type, init, batch_size)
        # An initial cluster left empty takes the data's overall scale.
        fallback = GMMParams(jnp.full((k,), 1.0 / k, X.dtype), shift,
                             _unit_cov(k, d, covariance_type, X.dtype) * scale, covariance_type)
        params = m_step(stats, shift, fallback, prior, reg_covar, floor)
    else:
        params = given
    # Explicit initial values override the estimated ones (scikit-learn's *_init).
    params = GMMParams(
        params.weights if given.weights is None else given.weights,
        params.means if given.means is None else given.means - center,
        params.covariances if given.covariances is None else given.covariances,
        covariance_type)

    def do(carry):
        params, prev, _, n_iter = carry
        stats = e_step(params, X, w, center, batch_size)
        obj = _objective(stats.loglik, wsum, params, prior)
        new = m_step(stats, params.means, params, prior, reg_covar, floor)
        return (new, obj, jnp.abs(obj - prev) < tol, n_iter + 1), obj

    def step(carry, _):
        return lax.cond(carry[2], lambda c: (c, jnp.array(jnp.nan, X.dtype)), do, carry)

    carry0 = (params, jnp.array(-jnp.inf, X.dtype), jnp.array(False), jnp.array(0, jnp.int32))
    if early_exit:
        # The same iterations as the scan, as a while loop writing the same trace. Under
        # vmap a batched lax.cond becomes a select that runs every step, whereas a batched
        # while loop stops when the slowest fit of the batch has converged (used by
        # scale.fit_em_many, which maps over small groups of datasets).
        def body(c):
            carry, trace = c
            new, obj = do(carry)
            return new, lax.dynamic_update_index_in_dim(trace, obj, carry[3], 0)

        trace0 = jnp.full((max_iter,), jnp.nan, X.dtype)
        (params, _, converged, n_iter), trace = lax.while_loop(
            lambda c: ~c[0][2] & (c[0][3] < max_iter), body, (carry0, trace0))
    else:
        (params, _, converged, n_iter), trace = lax.scan(step, carry0, None, length=max_iter)
    loglik = reduce_rows(_chunk_loglik, X, w, batch_size, params, center)
    obj = _objective(loglik, wsum, params, prior)
    params = params._replace(means=params.means + center)
    return EMResult(params, obj, trace, n_iter, converged)


def _unit_cov(k, d, t, dt):
    return {"full": lambda: jnp.broadcast_to(jnp.eye(d, dtype=dt), (k, d, d)),
            "tied": lambda: jnp.eye(d, dtype=dt),
            "diag": lambda: jnp.ones((k, d), dt),
            "spherical": lambda: jnp.ones((k,), dt)}[t]()


@partial(jax.jit, static_argnames=("k", "covariance_type", "max_iter", "n_init", "init",
                                   "batch_size", "early_exit"))
def _fit_em_jit(X, key, prior, sample_weight, init_params, tol, reg_covar, *, k,
                covariance_type, max_iter, n_init, init, batch_size, early_exit=False):
    dt = X.dtype
    n, d = X.shape
    w = jnp.ones((n,), dt) if sample_weight is None else sample_weight.astype(dt)
    wsum = jnp.sum(w)
    # Two passes: the second sums small deviations, so a large offset (X ~ 1e4 in float32)
    # does not leave the centre off by the first sum's rounding error.
    center = reduce_rows(lambda xc, wc: wc @ xc, X, w, batch_size) / wsum
    center = center + reduce_rows(lambda xc, wc: wc @ (xc - center), X, w, batch_size) / wsum
    center = lax.stop_gradient(center)
    second = reduce_rows(lambda xc, wc: wc @ jnp.square(xc - center), X, w, batch_size) / wsum
    scale = jnp.mean(second) + jnp.sqrt(jnp.finfo(dt).tiny)
    # Relative to the spread about the centre, not to |X|: an offset (X ~ 1e4 in float32)
    # must not swamp small covariances.
    floor = covariance_floor(jnp.mean(second), dt)
    if prior is not None:
        prior = resolve_prior(prior, X, k, covariance_type, w)
        prior = prior._replace(mean_prior=prior.mean_prior - center)
    tol = jnp.asarray(tol, dt)
    reg_covar = jnp.asarray(reg_covar, dt)
    run = partial(_run, X=X, w=w, center=center, scale=scale, floor=floor, prior=prior,
                  init_params=init_params, k=k, covariance_type=covariance_type,
                  max_iter=max_iter, tol=tol, reg_covar=reg_covar, init=init,
                  batch_size=batch_size, early_exit=early_exit)
    if n_init == 1:
        return run(key)
    results = jax.vmap(run)(jax.random.split(key, n_init))
    obj = jnp.where(jnp.isfinite(results.objective), results.objective, -jnp.inf)
    best = jnp.argmax(obj)
    return jax.tree.map(lambda a: a[best], results)


def _as_key(key):
    if key is None:
        raise TypeError("key is required: pass key=jax.random.key(seed)")
    if isinstance(key, (int, np.integer)):
        return jax.random.key(int(key))
    return key


def _prior_arrays(prior: GMMPrior, dtype):
    return GMMPrior(*(None if v is None else jnp.asarray(v, dtype) for v in prior))


def fit_em(X, n_components, *, key, covariance_type="full", prior=None, max_iter=100,
           tol=1e-3, n_init=1, init="k-means++", reg_covar=1e-6, sample_weight=None,
           batch_size=None) -> EMResult:
    """Fit a Gaussian mixture by EM (maximum likelihood, or MAP when ``prior`` is given).

    Parameters
    ----------
    X : (N, D) array. Computed in its own dtype (float32 or float64).
    n_components : int K.
    key : a `jax.random.key` (an int seed is accepted too).
    covariance_type : "full" | "tied" | "diag" | "spherical".
    prior : `GMMPrior` for MAP, or None for maximum likelihood.
    max_iter : iterations of the scan (0: initialise only). tol: stop when the objective
        changes by less than ``tol`` (0 runs all ``max_iter``).
    n_init : restarts, run as one vmap; the best final objective wins.
    init : "k-means++" | "kmeans" | "random" | "random_from_data", or a `GMMParams`.
    reg_covar : added to covariance diagonals (maximum likelihood only).
    sample_weight : (N,) non-negative row weights, or None.
    batch_size : rows per chunk for the E-step and the statistics, or None for one chunk.

    Returns
    -------
    EMResult(params, objective, trace (max_iter,), n_iter, converged)

    Example
    -------
    >>> res = fit_em(X, 2, key=jax.random.key(0))          # doctest: +SKIP
    >>> res.params.weights.sum()                             # doctest: +SKIP
    """
    covariance_type = V.check_covariance_type(covariance_type)
    traced = V.is_traced(X)
    if not traced:
        X = V.check_X(X)
        if X.dtype == np.float64 and not jax.config.jax_enable_x64:
            X = X.astype(np.float32)
    X = jnp.asarray(X)
    n, d = X.shape
    k = V.check_n_components(n_components, None if traced else n)
    max_iter = V.check_int("max_iter", max_iter, 0)
    n_init = V.check_int("n_init", n_init, 1)
    tol = V.check_nonneg_float("tol", tol) if not V.is_traced(tol) else tol
    reg_covar = V.check_nonneg_float("reg_covar", reg_covar) if not V.is_traced(reg_covar) \
        else reg_covar
    batch_size = V.check_batch_size(batch_size)
    if batch_size is None and not traced and not _is_multi_device(X):
        batch_size = default_batch_size(n, k, d)
    init_params = None
    if isinstance(init, GMMParams):
        init_params = _check_init_params(init, k, d, covariance_type, X.dtype)
        init = "k-means++"
    else:
        init = V.check_init(init)
    sample_weight = V.check_sample_weight(sample_weight, n, X.dtype)
    if sample_weight is not None:
        sample_weight = jnp.asarray(sample_weight, X.dtype)
    if prior is not None:
        check_prior(prior, k, d, covariance_type)
        prior = _prior_arrays(prior, X.dtype)
    res = _fit_em_jit(X, _as_key(key), prior, sample_weight, init_params, tol, reg_covar,
                      k=k, covariance_type=covariance_type, max_iter=max_iter,
                      n_init=n_init, init=init, batch_size=batch_size)
    if prior is None and not traced:
        # Concrete maximum-likelihood fits only (a traced fit cannot warn): components too
        # small to determine their covariance. Costs a (K,) device-to-host copy.
        n_eff = n if sample_weight is None else float(jnp.sum(sample_weight))
        V.warn_small_components(res.params.weights, res.params.covariances, n_eff, d,
                                covariance_type, "fit_em")
    return res


# Rows per chunk when the caller gives no batch_size: the (B, K, D) intermediates of one
# chunk then stay near 2 MiB in float64, in cache, which on CPU is several times faster
# than one pass over all rows (memory-bound). Results equal the unchunked ones to rounding.
_CHUNK_ELEMENTS = 1 << 18


def default_batch_size(n_samples: int, n_components: int, n_features: int):
    """Chunk rows used by :func:`fit_em` when ``batch_size`` is None (None: one chunk)."""
    b = max(256, _CHUNK_ELEMENTS // max(1, n_components * n_features))
    return None if b >= n_samples else int(b)


def _is_multi_device(X) -> bool:
    # A row-sharded X must not be sliced into chunks: that would gather rows across devices.
    sharding = getattr(X, "sharding", None)
    return sharding is not None and len(getattr(sharding, "device_set", ())) > 1


def _check_init_params(p: GMMParams, k, d, covariance_type, dtype) -> GMMParams:
    from .params import covariance_shape
    if p.covariance_type != covariance_type:
        raise ValueError(f"init has covariance_type {p.covariance_type!r} but "
                         f"covariance_type={covariance_type!r}")
    w, m, c = (jnp.asarray(a, dtype) for a in (p.weights, p.means, p.covariances))
    if w.shape != (k,) or m.shape != (k, d) or c.shape != covariance_shape(k, d, covariance_type):
        raise ValueError(f"init shapes {w.shape}, {m.shape}, {c.shape} do not match "
                         f"n_components={k}, n_features={d}, covariance_type={covariance_type!r}")
    if not any(V.is_traced(a) for a in (p.weights, p.means, p.covariances)):
        wn, mn, cn = (np.asarray(a, np.float64) for a in (w, m, c))
        if not (np.all(np.isfinite(wn)) and np.all(np.isfinite(mn)) and np.all(np.isfinite(cn))):
            raise ValueError("init (GMMParams) contains NaN or infinity")
        if np.any(wn < 0) or not np.isclose(wn.sum(), 1.0, rtol=0, atol=1e-5):
            raise ValueError(f"init.weights must be non-negative and sum to one; got {wn} "
                             f"(sum {wn.sum()})")
        if covariance_type in ("full", "tied"):
            cf = cn.reshape((-1, d, d))
            sym = np.allclose(cf, np.swapaxes(cf, -1, -2), rtol=1e-5,
                              atol=1e-8 * max(1.0, float(np.abs(cf).max())))
            if not sym or np.any(np.linalg.eigvalsh(cf) <= 0):
                raise ValueError("init.covariances must be symmetric positive definite "
                                 f"(covariance_type={covariance_type!r})")
        elif np.any(cn <= 0):
            raise ValueError(f"init.covariances must be positive; got minimum {cn.min()}")
    return GMMParams(w, m, c, covariance_type)


def params_from_precisions(weights, means, precisions, covariance_type) -> GMMParams:
    """GMMParams from precisions (as scikit-learn's ``precisions_init``)."""
    from .params import precision_cholesky_from_precisions
    u = precision_cholesky_from_precisions(jnp.asarray(precisions), covariance_type)
    cov = covariances_from_precision_cholesky(u, covariance_type)
    return GMMParams(jnp.asarray(weights), jnp.asarray(means), cov, covariance_type)

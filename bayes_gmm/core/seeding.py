"""Initial assignments for EM: k-means++ seeding, Lloyd's k-means, random
responsibilities and random rows (scikit-learn's four ``init`` methods), weighted, chunked,
and independent of the order the rows come in; and :func:`normal`, the package's way to
draw standard normals.

Components from ``n_active`` on are padding: they take no rows (the initial assignment
never picks them), so a program compiled for K_max serves every K ≤ K_max with the draws
of an unpadded fit of that K.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from .rows import chunks, map_rows, reduce_rows

__all__ = ["INIT_METHODS", "N_LLOYD", "initial_stats", "stats_from_resp", "as_key", "normal"]

INIT_METHODS = ("k-means++", "kmeans", "random", "random_from_data")
#: Lloyd iterations of ``init="kmeans"``.
N_LLOYD = 10


def as_key(seed_or_key):
    """A typed PRNG key from a key or an integer seed; traceable, so a compiled fit given a
    seed makes its key itself (the same key as ``jax.random.key(seed)`` outside)."""
    if jax.dtypes.issubdtype(jnp.result_type(seed_or_key), jax.dtypes.prng_key):
        return seed_or_key
    return jax.random.key(seed_or_key)


def normal(key, shape, dtype=None):
    """``jax.random.normal(key, shape, dtype)``, the same numbers, drawn flat and reshaped.

    Threefry's counters are the flat indices, so the draws are identical; but XLA on CPU
    compiled a multi-dimensional draw several times slower (0.72 s for (2, 3, 4, 4)
    against 0.14 s flat, jax 0.10), which every fit_nuts chain start paid.
    """
    shape = tuple(shape)
    kw = {} if dtype is None else {"dtype": dtype}
    return jax.random.normal(key, (math.prod(shape),), **kw).reshape(shape)


def stats_from_resp(Xc, resp, shift, family):
    """Sufficient statistics of one chunk. Xc: (B, D), resp: (B, K) already weighted."""
    return (jnp.sum(resp, axis=0),) + tuple(family.moments(Xc, resp, shift))


def _sq_dist_to(Xc, centers):
    """Squared distances (B, K) via one GEMM; clipped at 0."""
    d2 = (jnp.sum(jnp.square(Xc), 1)[:, None] - 2.0 * Xc @ centers.T
          + jnp.sum(jnp.square(centers), 1)[None])
    return jnp.maximum(d2, 0.0)


def _row(X, i):
    """X[i] as a masked sum over rows: a reduction, so a row-sharded X is all-reduced as a
    (D,) vector instead of being gathered onto one device to slice it."""
    return jnp.sum(jnp.where((jnp.arange(X.shape[0]) == i)[:, None], X, 0), axis=0)


def _row_order(X):
    """A canonical order of the rows: by a fixed projection of their values (an (N,)
    vector, so a row-sharded X is not gathered). Initial draws follow it, so they depend
    on the weighted set of rows, not on the order the rows come in."""
    d = X.shape[1]
    r = jnp.cos(jnp.arange(1, d + 1, dtype=X.dtype) * 1.7) + 2.0
    return jnp.argsort(X @ r)


def _draw_row(key, p, order):
    """A row index drawn with probability ∝ p (N,) ≥ 0 by inverting the cumulative sum
    over the rows in ``order``.

    One uniform per draw, whatever N: rows of weight 0 (padding) occupy no interval and
    never change the draw, and a row of weight 2 takes the interval of its two copies, so
    weights and repeated rows give the same initialisation.
    """
    c = jnp.cumsum(p[order])
    u = jax.random.uniform(key, (), c.dtype) * c[-1]
    # The first index with c > u (searchsorted's side="right"), counted in one pass: c
    # is non-decreasing. jnp.searchsorted's default binary search is a compiled loop of
    # log2(N) small steps, several times slower here.
    return order[jnp.minimum(jnp.sum(c <= u, dtype=jnp.int32), p.shape[0] - 1)]


def _kmeans_pp(key, X, w, center, k, n_active, batch_size):
    """k-means++ seeding (Arthur & Vassilvitskii 2007), weighted by ``w``: (K, D) centres."""
    n, d = X.shape
    k0, key = jax.random.split(key)
    order = _row_order(X)
    i0 = _draw_row(k0, w, order)
    c0 = _row(X, i0) - center
    centers = jnp.zeros((k, d), X.dtype).at[0].set(c0)
    dist = map_rows(lambda xc, c: _sq_dist_to(xc - center, c[None])[:, 0], X, batch_size, c0)

    def body(j, carry):
        centers, dist = carry
        p = w * dist
        # All remaining mass at distance 0 (duplicates): fall back to the weights.
        p = jnp.where(jnp.sum(p) > 0, p, w)
        idx = _draw_row(jax.random.fold_in(key, j), p, order)
        c = _row(X, idx) - center
        newd = map_rows(lambda xc, c: _sq_dist_to(xc - center, c[None])[:, 0], X, batch_size, c)
        return centers.at[j].set(c), jnp.minimum(dist, newd)

    centers, _ = lax.fori_loop(1, n_active, body, (centers, dist))
    return centers


def _hard_resp(Xc, wc, centers, center, penalty):
    """One-hot nearest-centre assignment; ``penalty`` (K,) is 0, or +inf for a padded
    centre that must take no row."""
    Xc = Xc - center
    labels = jnp.argmin(_sq_dist_to(Xc, centers) + penalty[None], axis=1)
    return Xc, jax.nn.one_hot(labels, centers.shape[0], dtype=Xc.dtype) * wc[:, None]


def _hard_sums(Xc, wc, centers, center, penalty):
    """Counts and sums about ``centers`` of the nearest-centre assignment (Lloyd's step)."""
    Xc, resp = _hard_resp(Xc, wc, centers, center, penalty)
    return jnp.sum(resp, axis=0), jnp.einsum("nk,nkd->kd", resp, Xc[:, None] - centers[None])


def _hard_stats(Xc, wc, centers, center, penalty, family):
    Xc, resp = _hard_resp(Xc, wc, centers, center, penalty)
    return stats_from_resp(Xc, resp, centers, family)


def initial_stats(key, X, w, center, k, family, method, batch_size, n_active=None):
    """Statistics of the initial hard (or random) assignment, and their shift (K, D).

    ``n_active`` (≤ k, may be traced): only the first ``n_active`` components take rows;
    the rest are padding (no rows), so one compiled program serves every K ≤ k with the
    draws of an unpadded fit of that K.
    """
    n, d = X.shape
    n_active = k if n_active is None else n_active
    active = jnp.arange(k) < n_active
    penalty = jnp.where(active, 0.0, jnp.inf).astype(X.dtype)
    if method == "random":
        # Per-row uniforms (as scikit-learn draws them) from the row index folded into the
        # key, so the draw does not depend on how the rows are chunked.
        b, n_chunks = chunks(n, batch_size)

        def chunk(i):
            start = jnp.minimum(i * b, n - b)
            xc = lax.dynamic_slice_in_dim(X, start, b)
            wc = lax.dynamic_slice_in_dim(w, start, b)
            rows = start + jnp.arange(b)
            wc = jnp.where(rows >= i * b, wc, 0)
            r = jax.vmap(lambda j: jax.random.uniform(jax.random.fold_in(key, j), (k,),
                                                      X.dtype))(rows)
            r = jnp.where(active[None], r, 0.0)
            r = r / jnp.sum(r, axis=1, keepdims=True) * wc[:, None]
            return stats_from_resp(xc - center, r, jnp.zeros((k, d), X.dtype), family)

        stats = chunk(0)
        if n_chunks > 1:
            stats, _ = lax.scan(lambda acc, i: (jax.tree.map(jnp.add, acc, chunk(i)), None),
                                stats, jnp.arange(1, n_chunks))
        return stats, jnp.zeros((k, d), X.dtype)
    if method == "random_from_data":
        # K distinct rows with positive weight, uniformly, one inverse-CDF draw each.
        order = _row_order(X)

        def pick(j, carry):
            free, centers = carry
            i = _draw_row(jax.random.fold_in(key, j), free, order)
            return free.at[i].set(0), centers.at[j].set(_row(X, i) - center)

        free = (w > 0).astype(X.dtype)
        _, centers = lax.fori_loop(0, n_active, pick, (free, jnp.zeros((k, d), X.dtype)))
    else:
        centers = _kmeans_pp(key, X, w, center, k, n_active, batch_size)
        if method == "kmeans":
            def lloyd(_, c):
                cnt, sx = reduce_rows(_hard_sums, X, w, batch_size, c, center, penalty)
                return jnp.where(cnt[:, None] > 0, c + sx / jnp.where(cnt > 0, cnt, 1.0)[:, None],
                                 c)
            centers = lax.fori_loop(0, N_LLOYD, lloyd, centers)
    stats = reduce_rows(_hard_stats, X, w, batch_size, centers, center, penalty, family)
    return stats, centers

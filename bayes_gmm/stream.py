r"""EM over data larger than memory: exact EM over a re-iterable of row chunks.

:func:`fit_em_stream` drives the one EM (:mod:`bayes_gmm.core.em`: ``initialize``,
``e_step``, ``update``, ``loglik``) from the host: each iteration makes one pass over the
chunks (slices of a ``numpy.memmap``, files, ...) and sums the same sufficient statistics
as the in-memory E-step with one jitted per-chunk step, then applies the same M-step. On
data that fits in memory it returns the in-memory fit.
"""

from __future__ import annotations

import logging
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks as C
from .core import em
from .core.em import EMResult
from .core.params import GMMParams
from .core.prior import pooled_covariance, resolve_prior
from .core.program import is_program

logger = logging.getLogger(__name__)

__all__ = ["fit_em_stream"]


def _chunk_source(chunks, chunk_size):
    """A zero-argument callable returning a fresh iterator over the chunks."""
    if hasattr(chunks, "shape") and hasattr(chunks, "__getitem__") and \
            not isinstance(chunks, (list, tuple)):
        if len(chunks.shape) != 2:
            raise ValueError(f"chunks given as one array must be 2-D (n_samples, n_features); "
                             f"got shape {tuple(chunks.shape)}")
        n = chunks.shape[0]
        size = n if chunk_size is None else C.check_int("chunk_size", chunk_size, 1)
        return lambda: (chunks[i:i + size] for i in range(0, n, size))
    if chunk_size is not None:
        raise ValueError("chunk_size applies only when chunks is one (N, D) array (e.g. a "
                         f"numpy.memmap); got chunks of type {type(chunks).__name__}")
    if callable(chunks):
        return lambda: iter(chunks())
    try:
        it = iter(chunks)
    except TypeError:
        raise TypeError("chunks must be a re-iterable of (n_i, D) arrays, a callable "
                        "returning an iterator of them, or one (N, D) array; got "
                        f"{type(chunks).__name__}") from None
    if it is chunks:
        raise TypeError("chunks is a one-shot iterator (e.g. a generator), but EM passes over "
                        "the data once per iteration: pass a list, or a callable returning a "
                        "new iterator (e.g. lambda: (np.load(f) for f in files))")
    return lambda: iter(chunks)


def _split_item(item, i, d, dt, missing):
    """(X_i (n_i, D) in dtype dt, w_i (n_i,) or None) from a chunk or an (X_i, w_i) pair."""
    w = None
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValueError(f"chunk {i} is a tuple of {len(item)} items; expected (X_i, w_i)")
        item, w = item
    x = C.check_X(item, name=f"chunk {i}", dtype=dt, missing=missing)
    if d is not None and x.shape[1] != d:
        raise ValueError(f"chunk {i} has {x.shape[1]} features but chunk 0 has {d}")
    if w is not None:
        w = np.asarray(w)
        if w.shape != (x.shape[0],) or not np.issubdtype(w.dtype, np.number):
            raise ValueError(f"weights of chunk {i} must be numeric with shape "
                             f"({x.shape[0]},); got dtype {w.dtype}, shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights of chunk {i} must be finite and non-negative")
        w = w.astype(dt)
    return x, w


def _first_dtype(item, missing):
    x = item[0] if isinstance(item, tuple) else item
    return C.jax_dtype(C.check_X(x, name="chunk 0", missing=missing).dtype)


@partial(jax.jit, static_argnames=("batch_size", "has_missing"))
def _stream_estep(acc, Xc, wc, params, center, *, batch_size, has_missing):
    stats = em.e_step(params, Xc, wc, center, batch_size, has_missing)
    return jax.tree.map(jnp.add, acc, stats)


@partial(jax.jit, static_argnames=("batch_size", "has_missing"))
def _stream_loglik(acc, Xc, wc, params, center, *, batch_size, has_missing):
    return acc + em.loglik(params, Xc, wc, center, batch_size, has_missing)


_stream_update = jax.jit(em.update)
_stream_init = jax.jit(em.initialize, static_argnames=("k", "covariance_type", "init",
                                                        "batch_size"))


def fit_em_stream(chunks, n_components, *, key, covariance_type="full", prior=None,
                  max_iter=100, tol=1e-3, reg_covar=1e-6, init="k-means++",
                  init_sample_size=100_000, chunk_size=None, batch_size=None,
                  missing="error") -> EMResult:
    r"""Exact EM over data streamed in row chunks (data larger than memory).

    Each EM iteration makes one pass over the chunks: a jitted per-chunk step adds the
    chunk's sufficient statistics (Σ r, Σ r x, Σ r x xᵀ about the current means, and the
    log-likelihood: exactly :func:`bayes_gmm.core.em.e_step`) to a running sum on the device,
    then the M-step of :func:`~bayes_gmm.fit_em` (ML or MAP) updates the parameters. The
    centring, covariance floor, default prior, convergence test and objective are those of
    :func:`~bayes_gmm.fit_em`, so on data that fits in memory, with the same initial
    parameters, the two agree to rounding (≈1e-12 relative in float64). Chunks of uneven
    length are padded to the longest one with zero-weight rows, so the step compiles once.

    Before the EM passes, two passes read the data: the first sums the weights and weighted
    rows (in float64 on the host) and keeps a weighted reservoir sample of
    ``init_sample_size`` rows; the second sums the scatter about the mean (the data's scale
    and the covariance floor). A `GMMPrior` without ``covariance_prior`` first runs the
    default prior's maximum-likelihood pilot fit (:func:`bayes_gmm.core.em.pilot_target`)
    as a stream of its own. A string ``init`` is run on the reservoir
    sample (its weights rescaled to the total weight); when the sample holds every row (and
    no row has weight 0) the initialisation — and so the whole fit — equals
    ``fit_em(X, ..., key=key)``.

    Parameters
    ----------
    chunks : the data, as one of

        * a re-iterable (list, tuple, or an object whose ``__iter__`` starts afresh) of
          (n_i, D) arrays, or of ``(X_i, w_i)`` pairs with row weights w_i (n_i,);
        * a callable returning a new iterator of those (e.g.
          ``lambda: (np.load(f) for f in files)``);
        * one (N, D) array, e.g. a ``numpy.memmap``, read ``chunk_size`` rows at a time.

        A one-shot iterator (a generator) is refused: EM reads the data many times.
        Chunks are computed in the dtype of the first (float64 becomes float32 unless JAX's
        x64 mode is on, as in :func:`~bayes_gmm.fit_em`).
    n_components : int K.
    key : a `jax.random.key` (or int seed).
    covariance_type, prior, max_iter, tol, reg_covar : as for :func:`~bayes_gmm.fit_em`.
    init : "k-means++" | "kmeans" | "random" | "random_from_data" (run on the reservoir
        sample), or a `GMMParams`.
    init_sample_size : rows in the reservoir sample for a string ``init``.
    chunk_size : rows per chunk when ``chunks`` is one array.
    batch_size : rows per sub-chunk inside the per-chunk step (bounds its memory to
        O(batch_size·K·D)), or None for the whole chunk at once.
    missing : "error" or "marginalize", as for :func:`~bayes_gmm.fit_em`: NaN entries are
        integrated out (the centre and scale come from each column's observed entries,
        holes start at the centre for the initialisation). A chunk without NaN runs the
        complete-data step.

    Returns
    -------
    EMResult(params, objective, trace (max_iter,), n_iter, converged), as
    :func:`~bayes_gmm.fit_em`.

    Examples
    --------
    A ``numpy.memmap`` (``np.load("big.npy", mmap_mode="r")``) is read the same way:

    >>> import jax, numpy as np, bayes_gmm as bg
    >>> centres = np.repeat([[0.0, 0.0], [8.0, 0.0]], 500, axis=0)
    >>> X = np.random.default_rng(0).normal(size=(1000, 2)) + centres
    >>> res = bg.fit_em_stream(X, 2, key=jax.random.key(0), chunk_size=300)
    >>> [int(round(float(m))) for m in np.sort(np.asarray(res.params.means)[:, 0])]
    [0, 8]
    """
    covariance_type = C.check_covariance_type(covariance_type)
    source = _chunk_source(chunks, chunk_size)
    max_iter = C.check_int("max_iter", max_iter, 0)
    tol = C.check_nonneg_float("tol", tol)
    reg_covar = C.check_nonneg_float("reg_covar", reg_covar)
    init_sample_size = C.check_int("init_sample_size", init_sample_size, 1)
    C.check_choice("missing", missing, C.MISSING)
    batch_size = C.check_batch_size(batch_size)
    if not isinstance(init, GMMParams):
        init = C.check_init(init)
    key = C.check_key(key)

    # Pass 1: validate, sum weights and weighted rows (float64 on the host; per column, over
    # its observed entries), reservoir sample.
    rng = np.random.default_rng(np.asarray(jax.random.bits(key, (4,), jnp.uint32)))
    dt = d = None
    n_total = max_rows = 0
    wsum = 0.0
    wx = wcol = None
    res_keys = res_rows = res_w = res_idx = None
    for i, item in enumerate(source()):
        if dt is None:
            dt = _first_dtype(item, missing)
        x, w = _split_item(item, i, d, dt, missing)
        n_i = x.shape[0]
        if d is None:
            d = x.shape[1]
            wx, wcol = np.zeros(d), np.zeros(d)
            res_keys, res_rows = np.empty(0), np.empty((0, d), dt)
            res_w, res_idx = np.empty(0, dt), np.empty(0, np.int64)
        wi = np.ones(n_i, dt) if w is None else w
        wsum += float(np.sum(wi, dtype=np.float64))
        wo = wi.astype(np.float64)[:, None] * ~np.isnan(x)
        wcol += wo.sum(axis=0)
        wx += np.sum(wo * np.nan_to_num(x.astype(np.float64)), axis=0)
        if not isinstance(init, GMMParams):
            # Weighted reservoir sampling (Efraimidis & Spirakis 2006): keep the
            # init_sample_size largest log(u)/w; rows of weight 0 are never sampled.
            pos = wi > 0
            u = rng.random(n_i)
            kk = np.where(pos, np.log(u) / np.where(pos, wi.astype(np.float64), 1.0), -np.inf)
            keep = pos & (kk > (res_keys.min() if res_keys.size >= init_sample_size
                               else -np.inf))
            res_keys = np.concatenate([res_keys, kk[keep]])
            res_rows = np.concatenate([res_rows, x[keep]])
            res_w = np.concatenate([res_w, wi[keep]])
            res_idx = np.concatenate([res_idx, n_total + np.flatnonzero(keep)])
            if res_keys.size > init_sample_size:
                top = np.argpartition(-res_keys, init_sample_size - 1)[:init_sample_size]
                res_keys, res_rows, res_w, res_idx = (a[top] for a in
                                                      (res_keys, res_rows, res_w, res_idx))
        n_total += n_i
        max_rows = max(max_rows, n_i)
    if dt is None:
        raise ValueError("chunks is empty: at least one chunk with rows is required")
    if wsum <= 0:
        raise ValueError("the chunks' weights sum to zero: at least one row needs positive "
                         "weight")
    k = C.check_n_components(n_components, n_total)
    unseen = np.flatnonzero(wcol <= 0)
    if unseen.size:
        raise ValueError(f"column {unseen[0]} has no observed value with positive weight in "
                         "any chunk")
    center64 = wx / wcol

    # Pass 2: the spread about the mean -> the data's scale, the floor, the default prior.
    sq = np.zeros(d)
    for i, item in enumerate(source()):
        x, w = _split_item(item, i, d, dt, missing)
        dev = np.nan_to_num(x.astype(np.float64) - center64)
        wi = np.ones(x.shape[0]) if w is None else w.astype(np.float64)
        sq += wi @ np.square(dev)
    finfo = np.finfo(dt)
    second = sq / wcol
    scale = jnp.asarray(np.mean(second) + math.sqrt(finfo.tiny), dt)
    # As core.em.data_moments: the floor follows the spread about the centre, not |X|.
    floor = em.covariance_floor(float(np.mean(second)), dt)
    center = jnp.asarray(center64, dt)
    wsum_j = jnp.asarray(wsum, dt)
    tol_j = jnp.asarray(tol, dt)
    reg_j = jnp.asarray(reg_covar, dt)
    if is_program(prior):
        raise ValueError("fit_em_stream takes a GMMPrior (closed-form MAP from streamed "
                         "statistics); MAP under a prior program needs all rows: fit_em")
    if prior is not None:
        prior = C.check_prior(prior, k, d, covariance_type)
        given_m0 = prior.mean_prior is not None
        target = None
        if prior.covariance_prior is None:
            # The default covariance scale: the pooled within-component covariance of a
            # maximum-likelihood pilot fit (as core.em.pilot_target), here streamed too.
            pilot = fit_em_stream(
                chunks, k, key=jax.random.key(em.PILOT_SEED), covariance_type=covariance_type,
                max_iter=em.PILOT_MAX_ITER, tol=em.pilot_tol(dt),
                reg_covar=1e-6 * float(scale), init="k-means++",
                init_sample_size=init_sample_size, chunk_size=chunk_size,
                batch_size=batch_size, missing=missing)
            target = pooled_covariance(pilot.params)
        # One row at the origin: the stream's centred coordinates, where the default m₀
        # (the data mean) is 0, as in core.em.fit.
        prior = resolve_prior(C.prior_arrays(prior, dt), jnp.zeros((1, d), dt), k,
                              covariance_type, target=target)
        prior = prior._replace(mean_prior=prior.mean_prior - center if given_m0
                               else jnp.zeros((d,), dt))

    if isinstance(init, GMMParams):
        p = C.check_init_params(init, k, d, covariance_type, dt)
        params = p._replace(means=p.means - center)
    else:
        order = np.argsort(res_idx)
        xs, ws = res_rows[order], res_w[order].astype(np.float64)
        # Holes start at the column means, as in core.em.fit.
        xs = np.where(np.isnan(xs), center64.astype(dt), xs)
        if res_idx.size < n_total:       # a subsample stands for the whole weight
            ws = ws * (wsum / ws.sum())
        params = _stream_init(key, jnp.asarray(xs), jnp.asarray(ws, dt), center, scale, floor,
                              prior, reg_j, k=k, covariance_type=covariance_type, init=init,
                              batch_size=None)

    def padded():
        for i, item in enumerate(source()):
            x, w = _split_item(item, i, d, dt, missing)
            n_i = x.shape[0]
            holes = bool(np.isnan(x).any())
            if n_i == max_rows and w is None:
                yield jnp.asarray(x), jnp.ones((max_rows,), dt), holes
                continue
            # A fresh buffer per chunk: the device may still be reading the previous one.
            xp = np.empty((max_rows, d), dt)
            xp[:n_i] = x
            xp[n_i:] = center64          # padding rows: finite, near the data, weight 0
            wp = np.zeros(max_rows, dt)
            wp[:n_i] = 1.0 if w is None else w
            yield jnp.asarray(xp), jnp.asarray(wp), holes

    stats_shape = jax.eval_shape(partial(em.e_step, batch_size=batch_size), params,
                                 jax.ShapeDtypeStruct((max_rows, d), dt),
                                 jax.ShapeDtypeStruct((max_rows,), dt), center)
    trace = np.full(max_iter, np.nan)
    prev = jnp.asarray(-np.inf, dt)
    converged = False
    n_iter = 0
    for it in range(max_iter):
        acc = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), stats_shape)
        for xc, wc, holes in padded():
            acc = _stream_estep(acc, xc, wc, params, center, batch_size=batch_size,
                                has_missing=holes)
        params, prev, conv = _stream_update(acc, params, prev, prior, reg_j, floor, wsum_j,
                                             tol_j)
        trace[it] = float(prev)
        n_iter += 1
        logger.debug("fit_em_stream: iteration %d, objective %.10g", it + 1, trace[it])
        if bool(conv):
            converged = True
            break
    loglik = jnp.zeros((), dt)
    for xc, wc, holes in padded():
        loglik = _stream_loglik(loglik, xc, wc, params, center, batch_size=batch_size,
                                has_missing=holes)
    obj = em.objective(loglik, wsum_j, params, prior)
    params = params._replace(means=params.means + center)
    return EMResult(params, obj, jnp.asarray(trace, dt), jnp.asarray(n_iter, jnp.int32),
                       jnp.asarray(converged))

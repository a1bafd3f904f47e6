r"""Scale out the compiled EM: many datasets at once, a grid over K, data larger than memory.

* :func:`fit_em_many` fits B equal-shape datasets ``Xs (B, N, D)`` with one compiled,
  vmapped program (``jax.jit(jax.vmap(...))`` over the same EM as :func:`~bayes_gmm.fit_em`),
  cached across calls.
* :func:`fit_em_grid` fits one dataset for each K of a grid (model choice by BIC); each K
  is one compiled program, reused by later calls with the same shapes.
* :func:`fit_em_stream` runs *exact* EM over a re-iterable of row chunks (slices of a
  ``numpy.memmap``, files, ...): each iteration makes one pass over the chunks and sums the
  same sufficient statistics as the in-memory E-step (:func:`bayes_gmm.em.e_step`) with one
  jitted per-chunk step, then applies the same M-step (:func:`bayes_gmm.em.m_step`). On data
  that fits in memory it returns the in-memory fit.

Data sharded over devices need no helper here: :func:`~bayes_gmm.fit_em` on an ``X`` placed
with ``jax.sharding.NamedSharding(mesh, P("data", None))`` runs data-parallel (see
``docs/multi_host.md``).
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from . import _validation as V
from . import em
from .densities import aic as _aic
from .densities import bic as _bic
from .params import GMMParams
from .priors import GMMPrior, check_prior, resolve_prior

logger = logging.getLogger(__name__)

__all__ = ["EMGridResult", "fit_em_grid", "fit_em_many", "fit_em_stream"]


# --- many datasets at once -------------------------------------------------------------

@partial(jax.jit, static_argnames=("k", "covariance_type", "max_iter", "n_init", "init",
                                   "batch_size", "weight_axis", "init_axis", "group"))
def _fit_em_many_jit(Xs, keys, prior, sample_weight, init_params, tol, reg_covar, *, k,
                     covariance_type, max_iter, n_init, init, batch_size, weight_axis,
                     init_axis, group):
    run = partial(em._fit_em_jit, k=k, covariance_type=covariance_type, max_iter=max_iter,
                  n_init=n_init, init=init, batch_size=batch_size, early_exit=True)
    # Datasets in groups of ``group``: vmapped within a group (whose working set stays in
    # cache), one group after another (lax.map); each group iterates only until its own
    # slowest fit has converged.
    per_dataset = (Xs, keys,
                   sample_weight if weight_axis == 0 else None,
                   init_params if init_axis == 0 else None)

    def one(args):
        X, key, sw, ip = args
        return run(X, key, prior, sample_weight if weight_axis is None else sw,
                   init_params if init_axis is None else ip, tol, reg_covar)
    return lax.map(one, per_dataset, batch_size=group if group > 1 else None)


def _group_size(b, Xs):
    """Datasets vmapped together by fit_em_many.

    On CPU, 1: a compiled loop of single fits, each stopping at its own convergence (a
    vmapped group runs until its slowest member converges, and on 2 cores that waste
    outweighs vectorisation: measured 0.18 s for 1000 fits of 500 × 2, K = 3, against
    0.36–0.65 s for groups of 4–250). On accelerators, all B at once: there the parallel
    width pays for the extra iterations.
    """
    devices = Xs.devices() if isinstance(Xs, jax.Array) else {jax.devices()[0]}
    return 1 if all(dev.platform == "cpu" for dev in devices) else int(b)


def _check_Xs(Xs):
    """A finite 3-D float stack (B, N, D), in the dtype fit_em would use for one of them."""
    if isinstance(Xs, (str, bytes)) or Xs is None:
        raise TypeError(f"Xs must be a 3-D numeric array (n_datasets, n_samples, n_features); "
                        f"got {type(Xs).__name__}")
    if isinstance(Xs, jax.Array):
        arr = Xs
        if not jnp.issubdtype(arr.dtype, jnp.floating):
            arr = arr.astype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    else:
        arr = np.asarray(Xs)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) \
                or np.issubdtype(arr.dtype, np.complexfloating):
            raise TypeError(f"Xs must contain real numbers; got dtype {arr.dtype}")
        if not np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.float16:
            arr = arr.astype(np.float64 if jax.config.jax_enable_x64 else np.float32)
        if arr.dtype == np.float64 and not jax.config.jax_enable_x64:
            arr = arr.astype(np.float32)
    if arr.ndim != 3:
        raise ValueError(f"Xs must be 3-D (n_datasets, n_samples, n_features); got shape "
                         f"{arr.shape}. Stack equal-shape datasets with np.stack(datasets).")
    if 0 in arr.shape:
        raise ValueError(f"Xs must have at least one dataset, sample and feature; got shape "
                         f"{arr.shape}")
    finite = np.asarray(jnp.isfinite(arr).all() if isinstance(arr, jax.Array)
                        else np.isfinite(arr).all())
    if not finite:
        b, r, c = np.argwhere(~np.isfinite(np.asarray(arr)))[0]
        raise ValueError(f"Xs contains NaN or infinity: first in dataset {b}, row {r}, "
                         f"column {c}; remove or impute such rows.")
    return jnp.asarray(arr)


def _check_keys(keys, key, n):
    if keys is not None and key is not None:
        raise TypeError("pass either keys (one per dataset) or key (split into one per "
                        "dataset), not both")
    if keys is None:
        if key is None:
            raise TypeError("key or keys is required: pass key=jax.random.key(seed)")
        return jax.random.split(em._as_key(key), n)
    if isinstance(keys, jax.Array) and jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        out = keys
    else:
        seeds = np.asarray(keys)
        if seeds.ndim != 1 or not np.issubdtype(seeds.dtype, np.integer):
            raise TypeError("keys must be a (n_datasets,) array of jax.random keys (e.g. "
                            "jax.random.split(key, n_datasets)) or of int seeds; got "
                            f"dtype {seeds.dtype}, shape {seeds.shape}")
        out = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    if out.shape != (n,):
        raise ValueError(f"keys must have shape ({n},) to match Xs (one key per dataset); "
                         f"got shape {out.shape}")
    return out


def fit_em_many(Xs, n_components, *, keys=None, key=None, covariance_type="full", prior=None,
                max_iter=100, tol=1e-3, n_init=1, init="k-means++", reg_covar=1e-6,
                sample_weight=None, batch_size=None) -> em.EMResult:
    """Fit one Gaussian mixture to each of B equal-shape datasets, as one compiled program.

    The fit of dataset ``b`` is exactly :func:`~bayes_gmm.fit_em` ``(Xs[b], n_components,
    key=keys[b], ...)``; all B run in one ``jax.jit(jax.vmap(...))`` program, compiled once
    per (shapes, static options) and cached, so repeated calls do not recompile. Each dataset
    converges on its own (its ``n_iter`` and ``trace`` are its own). On CPU the program loops
    over the datasets and each fit stops at its own convergence; on an accelerator all B are
    vmapped and iterate until the slowest has converged (or ``max_iter``).

    Parameters
    ----------
    Xs : (B, N, D) array: B datasets of N rows and D features (stack unequal ones by padding
        with rows of ``sample_weight`` 0).
    n_components : int K.
    keys : (B,) array of `jax.random` keys (or of int seeds), one per dataset; or None with
        ``key``.
    key : one `jax.random.key` (or int seed), split into B keys with ``jax.random.split``.
    covariance_type, prior, max_iter, tol, n_init, reg_covar, batch_size : as for
        :func:`~bayes_gmm.fit_em`, shared by all datasets (a default prior is resolved from
        each dataset's own moments).
    init : as for :func:`~bayes_gmm.fit_em`; a `GMMParams` whose arrays carry a leading
        (B,) axis gives each dataset its own initial parameters.
    sample_weight : None, (N,) shared by all datasets, or (B, N).

    Returns
    -------
    EMResult whose every leaf has a leading (B,) axis: params.weights (B, K),
    params.means (B, K, D), params.covariances (B, ...), objective (B,),
    trace (B, max_iter), n_iter (B,), converged (B,).

    Example
    -------
    >>> Xs = np.stack([X1, X2, X3])                                   # doctest: +SKIP
    >>> res = fit_em_many(Xs, 3, key=jax.random.key(0))              # doctest: +SKIP
    >>> res.params.means.shape                                         # doctest: +SKIP
    (3, 3, 2)
    """
    covariance_type = V.check_covariance_type(covariance_type)
    Xs = _check_Xs(Xs)
    b, n, d = Xs.shape
    dt = Xs.dtype
    k = V.check_n_components(n_components, n)
    max_iter = V.check_int("max_iter", max_iter, 0)
    n_init = V.check_int("n_init", n_init, 1)
    tol = V.check_nonneg_float("tol", tol)
    reg_covar = V.check_nonneg_float("reg_covar", reg_covar)
    batch_size = V.check_batch_size(batch_size)
    keys = _check_keys(keys, key, b)

    init_params, init_axis = None, None
    if isinstance(init, GMMParams):
        if np.ndim(init.means) == 3:
            init_axis = 0
            parts = [em._check_init_params(jax.tree.map(lambda a, i=i: a[i], init), k, d,
                                           covariance_type, dt) for i in range(b)]
            if len(parts) != np.shape(init.means)[0]:
                raise ValueError(f"init has a leading axis of {np.shape(init.means)[0]} "
                                 f"initialisations but Xs holds {b} datasets")
            init_params = jax.tree.map(lambda *a: jnp.stack(a), *parts)
        else:
            init_params = em._check_init_params(init, k, d, covariance_type, dt)
        init = "k-means++"
    else:
        init = V.check_init(init)

    weight_axis = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.ndim == 2:
            if sw.shape != (b, n):
                raise ValueError(f"sample_weight must have shape ({n},) or ({b}, {n}) to "
                                 f"match Xs; got {sw.shape}")
            sw = np.stack([V.check_sample_weight(row, n, dt) for row in sw])
            weight_axis = 0
        else:
            sw = V.check_sample_weight(sw, n, dt)
        sample_weight = jnp.asarray(sw, dt)
    if prior is not None:
        check_prior(prior, k, d, covariance_type)
        prior = em._prior_arrays(prior, dt)
    return _fit_em_many_jit(Xs, keys, prior, sample_weight, init_params, tol, reg_covar, k=k,
                            covariance_type=covariance_type, max_iter=max_iter,
                            n_init=n_init, init=init, batch_size=batch_size,
                            weight_axis=weight_axis, init_axis=init_axis,
                            group=_group_size(b, Xs))


# --- a grid over K ---------------------------------------------------------------------

class EMGridResult(NamedTuple):
    """Output of :func:`fit_em_grid`.

    results: dict K -> `EMResult`; bic, aic: dict K -> float (lower is better);
    best: the K with the lowest BIC.
    """

    results: dict
    bic: dict
    aic: dict
    best: int


def fit_em_grid(X, n_components=(1, 2, 3, 4, 5, 6), *, key, **fit_em_kwargs) -> EMGridResult:
    """Fit :func:`~bayes_gmm.fit_em` for each K of a grid and score each fit by BIC and AIC.

    Each K is its own compiled program (K fixes the shapes), compiled once and reused by any
    later call with the same data shape and options — a grid of 6 values costs 6
    compilations the first time and none after. Every K uses the same ``key``, so
    ``results[K]`` equals ``fit_em(X, K, key=key, **fit_em_kwargs)``.

    Parameters
    ----------
    X : (N, D) array.
    n_components : iterable of ints (distinct, each ≥ 1 and ≤ N).
    key : a `jax.random.key` (or int seed).
    **fit_em_kwargs : any other keyword of :func:`~bayes_gmm.fit_em` (covariance_type,
        prior, max_iter, tol, n_init, init (a string), reg_covar, sample_weight, batch_size).

    Returns
    -------
    EMGridResult(results {K: EMResult}, bic {K: float}, aic {K: float}, best K by BIC).
    BIC and AIC are computed from the unweighted log-likelihood of X (as
    :func:`~bayes_gmm.bic`).

    Example
    -------
    >>> grid = fit_em_grid(X, range(1, 7), key=jax.random.key(0))     # doctest: +SKIP
    >>> grid.best, grid.bic[grid.best]                                 # doctest: +SKIP
    """
    if isinstance(n_components, (int, np.integer)):
        n_components = (n_components,)
    try:
        ks = [V.check_n_components(k) for k in n_components]
    except TypeError:
        raise TypeError(f"n_components must be an iterable of ints; got {n_components!r}") \
            from None
    if not ks:
        raise ValueError("n_components must hold at least one value; got an empty grid")
    if len(set(ks)) != len(ks):
        raise ValueError(f"n_components must not repeat values; got {ks}")
    if isinstance(fit_em_kwargs.get("init"), GMMParams):
        raise TypeError("init must be a string for fit_em_grid: initial GMMParams fix K")
    if not V.is_traced(X):
        X = V.check_X(X)
        if X.dtype == np.float64 and not jax.config.jax_enable_x64:
            X = X.astype(np.float32)
    X = jnp.asarray(X)
    key = em._as_key(key)
    results, bics, aics = {}, {}, {}
    for k in ks:
        res = em.fit_em(X, k, key=key, **fit_em_kwargs)
        results[k] = res
        bics[k] = float(_bic(res.params, X))
        aics[k] = float(_aic(res.params, X))
    best = min(ks, key=lambda k: (bics[k] if math.isfinite(bics[k]) else math.inf, k))
    return EMGridResult(results, bics, aics, best)


# --- data larger than memory -----------------------------------------------------------

def _chunk_source(chunks, chunk_size):
    """A zero-argument callable returning a fresh iterator over the chunks."""
    if hasattr(chunks, "shape") and hasattr(chunks, "__getitem__") and \
            not isinstance(chunks, (list, tuple)):
        if len(chunks.shape) != 2:
            raise ValueError(f"chunks given as one array must be 2-D (n_samples, n_features); "
                             f"got shape {tuple(chunks.shape)}")
        n = chunks.shape[0]
        size = n if chunk_size is None else V.check_int("chunk_size", chunk_size, 1)
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


def _split_item(item, i, d, dt):
    """(X_i (n_i, D) in dtype dt, w_i (n_i,) or None) from a chunk or an (X_i, w_i) pair."""
    w = None
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValueError(f"chunk {i} is a tuple of {len(item)} items; expected (X_i, w_i)")
        item, w = item
    x = V.check_X(item, name=f"chunk {i}", dtype=dt)
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


def _first_dtype(item):
    x = item[0] if isinstance(item, tuple) else item
    x = V.check_X(x, name="chunk 0")
    if x.dtype == np.float64 and not jax.config.jax_enable_x64:
        return np.dtype(np.float32)
    return x.dtype


@partial(jax.jit, static_argnames=("batch_size",))
def _stream_estep(acc, Xc, wc, params, center, *, batch_size):
    stats = em.e_step(params, Xc, wc, center, batch_size)
    return jax.tree.map(jnp.add, acc, stats)


@partial(jax.jit, static_argnames=("batch_size",))
def _stream_loglik(acc, Xc, wc, params, center, *, batch_size):
    return acc + em.reduce_rows(em._chunk_loglik, Xc, wc, batch_size, params, center)


@jax.jit
def _stream_mstep(stats, params, prev_obj, prior, reg_covar, floor, wsum, tol):
    obj = em._objective(stats.loglik, wsum, params, prior)
    new = em.m_step(stats, params.means, params, prior, reg_covar, floor)
    return new, obj, jnp.abs(obj - prev_obj) < tol


@partial(jax.jit, static_argnames=("k", "covariance_type", "init"))
def _stream_init(key, Xs, ws, center, scale, floor, prior, reg_covar, *, k, covariance_type,
                 init):
    # As em._run: statistics of the initial assignment, then one M-step; an initial cluster
    # left empty takes the data's overall scale.
    d = Xs.shape[1]
    dt = Xs.dtype
    stats, shift = em.initial_stats(key, Xs, ws, center, k, covariance_type, init, None)
    fallback = GMMParams(jnp.full((k,), 1.0 / k, dt), shift,
                         em._unit_cov(k, d, covariance_type, dt) * scale, covariance_type)
    return em.m_step(stats, shift, fallback, prior, reg_covar, floor)


def _moment_matched_rows(cov, dt):
    """2D rows with mean 0 and (population) covariance ``cov``: ±√D·V√λ (cov = V diag(λ) Vᵀ).

    Lets :func:`priors.resolve_prior`, which reads only the weighted mean and covariance of
    its data, resolve the default prior of a stream without holding the stream.
    """
    d = cov.shape[0]
    lam, vec = np.linalg.eigh(0.5 * (cov + cov.T))
    a = (vec * np.sqrt(np.maximum(lam, 0.0))).T * math.sqrt(d)   # row j: √(Dλ_j) v_jᵀ
    return jnp.asarray(np.concatenate([a, -a]), dt)


def fit_em_stream(chunks, n_components, *, key, covariance_type="full", prior=None,
                  max_iter=100, tol=1e-3, reg_covar=1e-6, init="k-means++",
                  init_sample_size=100_000, chunk_size=None, batch_size=None) -> em.EMResult:
    r"""Exact EM over data streamed in row chunks (data larger than memory).

    Each EM iteration makes one pass over the chunks: a jitted per-chunk step adds the
    chunk's sufficient statistics (Σ r, Σ r x, Σ r x xᵀ about the current means, and the
    log-likelihood: exactly :func:`bayes_gmm.em.e_step`) to a running sum on the device,
    then the M-step of :func:`~bayes_gmm.fit_em` (ML or MAP) updates the parameters. The
    centring, covariance floor, default prior, convergence test and objective are those of
    :func:`~bayes_gmm.fit_em`, so on data that fits in memory, with the same initial
    parameters, the two agree to rounding (≈1e-12 relative in float64). Chunks of uneven
    length are padded to the longest one with zero-weight rows, so the step compiles once.

    Before the EM passes, two passes read the data: the first sums the weights and weighted
    rows (in float64 on the host) and keeps a weighted reservoir sample of
    ``init_sample_size`` rows; the second sums the scatter about the mean (the data's scale,
    the covariance floor and the default prior). A string ``init`` is run on the reservoir
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

    Returns
    -------
    EMResult(params, objective, trace (max_iter,), n_iter, converged), as
    :func:`~bayes_gmm.fit_em`.

    Example
    -------
    >>> X = np.load("big.npy", mmap_mode="r")                          # doctest: +SKIP
    >>> res = fit_em_stream(X, 8, key=jax.random.key(0), chunk_size=1_000_000)  # doctest: +SKIP
    """
    covariance_type = V.check_covariance_type(covariance_type)
    source = _chunk_source(chunks, chunk_size)
    max_iter = V.check_int("max_iter", max_iter, 0)
    tol = V.check_nonneg_float("tol", tol)
    reg_covar = V.check_nonneg_float("reg_covar", reg_covar)
    init_sample_size = V.check_int("init_sample_size", init_sample_size, 1)
    batch_size = V.check_batch_size(batch_size)
    if not isinstance(init, GMMParams):
        init = V.check_init(init)
    key = em._as_key(key)

    # Pass 1: validate, sum weights and weighted rows (float64 on the host), reservoir sample.
    rng = np.random.default_rng(np.asarray(jax.random.bits(key, (4,), jnp.uint32)))
    dt = d = None
    n_total = max_rows = 0
    wsum = 0.0
    wx = None
    res_keys = res_rows = res_w = res_idx = None
    for i, item in enumerate(source()):
        if dt is None:
            dt = _first_dtype(item)
        x, w = _split_item(item, i, d, dt)
        n_i = x.shape[0]
        if d is None:
            d = x.shape[1]
            wx = np.zeros(d)
            res_keys, res_rows = np.empty(0), np.empty((0, d), dt)
            res_w, res_idx = np.empty(0, dt), np.empty(0, np.int64)
        wi = np.ones(n_i, dt) if w is None else w
        wsum += float(np.sum(wi, dtype=np.float64))
        wx += wi.astype(np.float64) @ x.astype(np.float64)
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
    k = V.check_n_components(n_components, n_total)
    center64 = wx / wsum

    # Pass 2: scatter about the mean -> the data's scale, the floor, the default prior.
    scatter = np.zeros((d, d))
    for i, item in enumerate(source()):
        x, w = _split_item(item, i, d, dt)
        xc = x.astype(np.float64) - center64
        wi = np.ones(x.shape[0]) if w is None else w.astype(np.float64)
        scatter += (xc * wi[:, None]).T @ xc
    finfo = np.finfo(dt)
    second = np.diagonal(scatter) / wsum
    scale = jnp.asarray(np.mean(second) + math.sqrt(finfo.tiny), dt)
    # As em._fit_em_jit: the floor follows the spread about the centre, not |X|.
    floor = em.covariance_floor(float(np.mean(second)), dt)
    center = jnp.asarray(center64, dt)
    wsum_j = jnp.asarray(wsum, dt)
    tol_j = jnp.asarray(tol, dt)
    reg_j = jnp.asarray(reg_covar, dt)
    if prior is not None:
        check_prior(prior, k, d, covariance_type)
        given_m0 = prior.mean_prior is not None
        prior = resolve_prior(em._prior_arrays(prior, dt),
                              _moment_matched_rows(scatter / wsum, dt), k, covariance_type)
        # Centred coordinates, as in em._fit_em_jit (the moment-matched rows have mean 0).
        prior = prior._replace(mean_prior=prior.mean_prior - center if given_m0
                               else jnp.zeros((d,), dt))

    if isinstance(init, GMMParams):
        p = em._check_init_params(init, k, d, covariance_type, dt)
        params = p._replace(means=p.means - center)
    else:
        order = np.argsort(res_idx)
        xs, ws = res_rows[order], res_w[order].astype(np.float64)
        if res_idx.size < n_total:       # a subsample stands for the whole weight
            ws = ws * (wsum / ws.sum())
        params = _stream_init(key, jnp.asarray(xs), jnp.asarray(ws, dt), center, scale, floor,
                              prior, reg_j, k=k, covariance_type=covariance_type, init=init)

    def padded():
        for i, item in enumerate(source()):
            x, w = _split_item(item, i, d, dt)
            n_i = x.shape[0]
            if n_i == max_rows and w is None:
                yield jnp.asarray(x), jnp.ones((max_rows,), dt)
                continue
            # A fresh buffer per chunk: the device may still be reading the previous one.
            xp = np.empty((max_rows, d), dt)
            xp[:n_i] = x
            xp[n_i:] = center64          # padding rows: finite, near the data, weight 0
            wp = np.zeros(max_rows, dt)
            wp[:n_i] = 1.0 if w is None else w
            yield jnp.asarray(xp), jnp.asarray(wp)

    stats_shape = jax.eval_shape(partial(em.e_step, batch_size=batch_size), params,
                                 jax.ShapeDtypeStruct((max_rows, d), dt),
                                 jax.ShapeDtypeStruct((max_rows,), dt), center)
    trace = np.full(max_iter, np.nan)
    prev = jnp.asarray(-np.inf, dt)
    converged = False
    n_iter = 0
    for it in range(max_iter):
        acc = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), stats_shape)
        for xc, wc in padded():
            acc = _stream_estep(acc, xc, wc, params, center, batch_size=batch_size)
        params, prev, conv = _stream_mstep(acc, params, prev, prior, reg_j, floor, wsum_j,
                                           tol_j)
        trace[it] = float(prev)
        n_iter += 1
        logger.debug("fit_em_stream: iteration %d, objective %.10g", it + 1, trace[it])
        if bool(conv):
            converged = True
            break
    loglik = jnp.zeros((), dt)
    for xc, wc in padded():
        loglik = _stream_loglik(loglik, xc, wc, params, center, batch_size=batch_size)
    obj = em._objective(loglik, wsum_j, params, prior)
    params = params._replace(means=params.means + center)
    return em.EMResult(params, obj, jnp.asarray(trace, dt), jnp.asarray(n_iter, jnp.int32),
                       jnp.asarray(converged))

r"""Fitting by EM, the public edge: check the input once, then run the one EM driver.

* :func:`fit_em` fits one dataset (maximum likelihood, or MAP under a `GMMPrior`).
* :func:`fit_em_many` fits B equal-shape datasets ``Xs (B, N, D)`` as one compiled program.
* :func:`fit_em_grid` fits one dataset for each K of a grid and scores each by BIC and AIC.

All three run :func:`bayes_gmm.core.em.fit` (initialise, E-step, M-step, scan); data
larger than memory go through :func:`bayes_gmm.fit_em_stream`. Data sharded over devices
need no helper: :func:`fit_em` on an ``X`` placed with
``jax.sharding.NamedSharding(mesh, P("data", None))`` runs data-parallel (see
``docs/multi_host.md``).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _checks as C
from .core import em
from .core.em import EMResult
from .core.missing import count_blocks
from .core.params import GMMParams, first_components
from .core.program import ProgramFit, is_program, map_fit, prior_draws
from .core.rows import default_batch_size, is_multi_device, pad_rows
from .densities import aic, bic, n_parameters

__all__ = ["fit_em", "fit_em_many", "fit_em_grid", "EMGridResult", "EMResult"]


def fit_em(X, n_components, *, key, covariance_type="full", prior=None, max_iter=100,
           tol=1e-3, n_init=1, init="k-means++", reg_covar=1e-6, sample_weight=None,
           batch_size=None, dtype=None, pad_components=None, missing="error") -> EMResult:
    """Fit a Gaussian mixture by EM (maximum likelihood, or MAP when ``prior`` is given).

    Parameters
    ----------
    X : (N, D) array. Computed in its own dtype (float32 or float64).
    n_components : int K.
    key : a `jax.random.key` (an int seed is accepted too).
    covariance_type : "full" | "tied" | "diag" | "spherical" (scikit-learn's names), one of
        mclust's fourteen (``"EII"`` … ``"VVV"``; covariances (K, D, D)), or for one
        feature mclust's ``"E"`` / ``"V"`` (:mod:`bayes_gmm.core.covariance`).
    prior : `GMMPrior` for MAP, or None for maximum likelihood. ``GMMPrior()``'s
        defaults come from X (:mod:`bayes_gmm.core.prior`): its covariance scale from a
        maximum-likelihood pilot fit (:func:`bayes_gmm.core.em.pilot_target`), run first.
        Or a prior program ``prior_fn(n_components, n_features)`` that samples NumPyro
        sites and returns a `GMMParams` (:mod:`bayes_gmm.core.program`): MAP by a
        generalised EM from the maximum-likelihood fit of the same options, its objective
        the mean log posterior per row (no ``sample_weight``, missing values or
        ``pad_components`` then).
    max_iter : iterations of the scan (0: initialise only). tol: stop when the objective
        changes by less than ``tol`` (0 runs all ``max_iter``).
    n_init : restarts, run as one vmap; the best final objective wins.
    init : "k-means++" | "kmeans" | "random" | "random_from_data", or a `GMMParams`.
    reg_covar : added to covariance diagonals (maximum likelihood only).
    sample_weight : (N,) non-negative row weights, or None.
    batch_size : rows per chunk for the E-step and the statistics, or None for cache-sized
        chunks (:func:`bayes_gmm.core.rows.default_batch_size`; the same fit to rounding).
    dtype : compute in this dtype (float64 runs inside a scoped ``jax.enable_x64``); None:
        the dtype JAX gives X (float64 input is computed in float32 unless x64 is on).
    pad_components : None, or an int ≥ K: run the program compiled for this many
        components, the ones past K padding with weight exactly 0 (they take no rows and
        leave the objective unchanged), so fits of every K up to it share one compiled
        program — the same fit as unpadded, to rounding. Maximum likelihood with the
        estimated initialisation only. :func:`bayes_gmm.compare` pads each family to its
        largest K.
    missing : "error" (NaN in X is an error naming its row and column) or "marginalize":
        NaN entries are missing values, integrated out exactly — the fit maximises the
        observed-data likelihood (:mod:`bayes_gmm.core.missing`), holes start at their
        column's observed mean for the initialisation, and ``objective`` and ``trace`` are
        the observed-data log-likelihood per row. Infinity is always an error, and so is a
        row with nothing observed. Without NaN the fit is the complete-data one.

    Returns
    -------
    EMResult(params, objective, trace (max_iter,), n_iter, converged)

    Examples
    --------
    >>> import jax, numpy as np, bayes_gmm as bg
    >>> X = np.concatenate([np.random.default_rng(0).normal(m, 1.0, (100, 2)) for m in (-5, 5)])
    >>> res = bg.fit_em(X, 2, key=jax.random.key(0))
    >>> bool(res.converged), np.sort(np.asarray(res.params.weights)).round(2).tolist()
    (True, [0.5, 0.5])
    """
    X, covariance_type, dtype, traced, pad = _front(X, covariance_type, dtype, missing)
    if is_program(prior):
        f = fit_program(X, n_components, key, covariance_type, prior, max_iter=max_iter,
                        tol=tol, n_init=n_init, init=init, reg_covar=reg_covar,
                        sample_weight=sample_weight, batch_size=batch_size, dtype=dtype,
                        pad_components=pad_components)
        return EMResult(f.params, f.objective, f.trace, f.n_iter, f.converged)
    with C.x64_scope(dtype):
        return _fit_em(X, n_components, key, covariance_type, prior, max_iter, tol, n_init,
                       init, reg_covar, sample_weight, batch_size, dtype, traced, pad,
                       pad_components, C.has_nan(X))


#: Prior draws a program's MAP chooses its start from.
PROGRAM_STARTS = 16


def fit_program(X, n_components, key, covariance_type, program, *, max_iter=100, tol=1e-3,
                n_init=1, init="k-means++", reg_covar=1e-6, sample_weight=None,
                batch_size=None, dtype=None, pad_components=None) -> ProgramFit:
    """MAP under a prior program (:func:`bayes_gmm.core.program.map_fit`), started from
    the maximum-likelihood EM fit of the same options; returns its `ProgramFit` (with the
    program's site values at the MAP). X: checked by the caller (finite, concrete)."""
    if C.is_traced(X):
        raise ValueError("MAP under a prior program runs outside jit: pass a concrete X")
    if sample_weight is not None or pad_components is not None:
        raise ValueError("sample_weight and pad_components are not supported with a prior "
                         "program (MAP under GMMPrior takes them)")
    if C.has_nan(X):
        raise ValueError("missing values (NaN) with a prior program are not supported yet; "
                         "GMMPrior takes missing='marginalize'")
    n, d = np.shape(X)
    k = C.check_n_components(n_components, n)
    max_iter = C.check_int("max_iter", max_iter, 0)
    tol = C.check_nonneg_float("tol", tol)
    dtype = np.dtype(dtype or C.jax_dtype(np.asarray(X).dtype))
    with C.x64_scope(dtype):
        program = C.check_prior_program(program, k, d, covariance_type)
        k_ml, k_init = jax.random.split(C.check_key(key))
        ml = fit_em(X, k, key=k_ml, covariance_type=covariance_type, max_iter=max(max_iter, 1),
                    tol=tol, n_init=n_init, init=init, reg_covar=reg_covar,
                    batch_size=batch_size, dtype=dtype)
        Xj = jnp.asarray(X, dtype)
        # The M-step starts from the best of several prior draws (by the expected complete-
        # data log posterior under the maximum-likelihood responsibilities).
        start = prior_draws(program, k, d, k_init, PROGRAM_STARTS)
        return map_fit(program, Xj, k, start, ml.params, max_iter=max_iter, tol=tol)


def _front(X, covariance_type, dtype, missing):
    """(X checked, covariance_type, dtype, traced, pad rows?) for fit_em and fit_em_ks."""
    covariance_type = C.check_covariance_type(covariance_type)
    traced = C.is_traced(X)
    # Rows of one bucket share a compiled program; a row-sharded X is not padded (that
    # would move rows between devices), nor is X inside the user's own jit.
    pad = not traced and not is_multi_device(X)
    if not traced:
        X = C.check_X(X, missing=missing)
        dtype = C.jax_dtype(X.dtype) if dtype is None else np.dtype(dtype)
    elif dtype is None:
        dtype = X.dtype
    return X, covariance_type, dtype, traced, pad


def fit_em_ks(X, ks, keys, *, covariance_type="full", max_iter=100, tol=1e-3, n_init=1,
              init="k-means++", reg_covar=1e-6, sample_weight=None, batch_size=None,
              dtype=None, pad_components=None, missing="error", prior=None) -> list:
    """Maximum-likelihood fits of every K in ``ks`` as one compiled program (internal:
    :func:`fit_em_grid` and :func:`bayes_gmm.compare` use it).

    Fit ``i`` equals ``fit_em(X, ks[i], key=keys[i], pad_components=max(ks), ...)`` (the
    same program, looped over K on CPU and vmapped on an accelerator). ``keys``: one key
    per K, stacked, or one key for all. Returns a list of EMResult, one per K, with the
    warnings of fit_em.
    """
    if prior is not None:
        raise ValueError("fit_em_ks is maximum likelihood only: a prior depends on K")
    X, covariance_type, dtype, traced, pad = _front(X, covariance_type, dtype, missing)
    with C.x64_scope(dtype):
        return _fit_em(X, tuple(ks), keys, covariance_type, None, max_iter, tol, n_init,
                       init, reg_covar, sample_weight, batch_size, dtype, traced, pad,
                       pad_components or max(ks), C.has_nan(X))


def _fit_em(X, n_components, key, covariance_type, prior, max_iter, tol, n_init, init,
            reg_covar, sample_weight, batch_size, dtype, traced, pad, pad_components,
            has_missing):
    n, d = X.shape
    many = isinstance(n_components, tuple)                 # several K (fit_em_ks)
    ks = [C.check_n_components(k, None if traced else n)
          for k in (n_components if many else (n_components,))]
    k = max(ks)
    k_run = C.check_pad_components(pad_components, min(ks), prior, init)
    max_iter = C.check_int("max_iter", max_iter, 0)
    n_init = C.check_int("n_init", n_init, 1)
    tol = C.check_nonneg_float("tol", tol)
    reg_covar = C.check_nonneg_float("reg_covar", reg_covar)
    batch_size = C.check_batch_size(batch_size)
    init_params = None
    if isinstance(init, GMMParams):
        init_params = C.check_init_params(init, k, d, covariance_type, X.dtype)
        init = "k-means++"
    else:
        init = C.check_init(init)
    sample_weight = C.check_sample_weight(sample_weight, n, dtype)
    if prior is not None:
        prior = C.prior_arrays(C.check_prior(prior, k, d, covariance_type), dtype)
        if not traced:
            # Resolved once, on the rows as given (the default covariance scale runs a
            # pilot fit): the NumPyro model resolves the same prior from the same X.
            prior = em.data_prior_jit(prior, jnp.asarray(X, dtype), k, covariance_type,
                                      None if sample_weight is None
                                      else jnp.asarray(sample_weight, dtype),
                                      has_missing=has_missing and count_blocks(X))
    X0, w0 = X, sample_weight
    if pad:
        X, sample_weight = pad_rows(X, sample_weight)
        if batch_size is None:
            batch_size = default_batch_size(X.shape[0], k_run, d)
    # Host arrays go to the program as they are (jnp.asarray would compile a staging
    # program per shape); device arrays stay on their devices.
    xp = np if isinstance(X, np.ndarray) else jnp
    X = xp.asarray(X, dtype)
    if sample_weight is not None:
        sample_weight = (np if isinstance(sample_weight, np.ndarray) else jnp).asarray(
            sample_weight, dtype)
    if has_missing:
        # The E-step visits rows in blocks of equal numbers of holes (static: compiled per
        # block structure), which costs far less than masked D × D algebra per row.
        has_missing = count_blocks(X)
    if many:
        return _fit_ks(X, X0, w0, ks, key, sample_weight, tol, reg_covar, k_run,
                       covariance_type, max_iter, n_init, init, batch_size, has_missing,
                       traced)
    # Any K with pad_components (K_max itself too) runs the one padded program.
    n_active = None if pad_components is None else jnp.asarray(k, jnp.int32)
    res = em.fit_jit(X, C.check_key(key), prior, sample_weight, init_params, tol, reg_covar,
                     None, n_active, k=k_run, covariance_type=covariance_type,
                     max_iter=max_iter, n_init=n_init, init=init, batch_size=batch_size,
                     has_missing=has_missing)
    if k_run != k and traced:
        res = res._replace(params=first_components(res.params, k))
    elif k_run != k:
        # Sliced on the host: a device slice would compile a program for every K.
        res = res._replace(params=jax.device_put(
            first_components(jax.device_get(res.params), k)))
    if prior is None and not traced:
        # Concrete maximum-likelihood fits only (a traced fit cannot warn): components the
        # data do not determine (empty, too few rows, singular). Costs a copy of the
        # (small) parameters to the host and one pass over X in NumPy.
        C.check_fit_degeneracy(jax.device_get(res.params), X0, w0, reg_covar, "fit_em")
    return res


def _fit_ks(X, X0, w0, ks, keys, sample_weight, tol, reg_covar, k_run, covariance_type,
            max_iter, n_init, init, batch_size, has_missing, traced):
    """The several-K branch of :func:`_fit_em`: one program, then one EMResult per K."""
    keys = C.check_key(keys) if np.ndim(keys) == 0 else C.check_keys(keys, None, len(ks))
    res = em.fit_ks_jit(X, keys, np.asarray(ks, np.int32), sample_weight, tol, reg_covar,
                        k=k_run, covariance_type=covariance_type, max_iter=max_iter,
                        n_init=n_init, init=init, batch_size=batch_size,
                        has_missing=has_missing, group=_group_size(len(ks), X))
    if traced:
        return [jax.tree.map(lambda a: a[i], res)._replace(
            params=first_components(jax.tree.map(lambda a: a[i], res.params), k))
            for i, k in enumerate(ks)]
    host = jax.device_get(res)
    out = []
    for i, k in enumerate(ks):
        r = jax.tree.map(lambda a: a[i], host)
        r = r._replace(params=first_components(r.params, k))
        C.check_fit_degeneracy(r.params, X0, w0, reg_covar, "fit_em")
        out.append(jax.device_put(r))
    return out


# --- many datasets at once -------------------------------------------------------------

@partial(jax.jit, static_argnames=("k", "covariance_type", "max_iter", "n_init", "init",
                                   "batch_size", "weight_axis", "init_axis", "group",
                                   "has_missing"))
def _fit_em_many_jit(Xs, keys, prior, sample_weight, init_params, tol, reg_covar, *, k,
                     covariance_type, max_iter, n_init, init, batch_size, weight_axis,
                     init_axis, group, has_missing):
    run = partial(em.fit, k=k, covariance_type=covariance_type, max_iter=max_iter,
                  n_init=n_init, init=init, batch_size=batch_size, early_exit=True,
                  has_missing=has_missing)
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


def fit_em_many(Xs, n_components, *, keys=None, key=None, covariance_type="full", prior=None,
                max_iter=100, tol=1e-3, n_init=1, init="k-means++", reg_covar=1e-6,
                sample_weight=None, batch_size=None, missing="error") -> EMResult:
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
        each dataset's own mean and pilot fit).
    init : as for :func:`~bayes_gmm.fit_em`; a `GMMParams` whose arrays carry a leading
        (B,) axis gives each dataset its own initial parameters.
    sample_weight : None, (N,) shared by all datasets, or (B, N).
    missing : "error" or "marginalize" (NaN entries integrated out, as
        :func:`~bayes_gmm.fit_em`; a dataset without NaN gets its complete-data fit).

    Returns
    -------
    EMResult whose every leaf has a leading (B,) axis: params.weights (B, K),
    params.means (B, K, D), params.covariances (B, ...), objective (B,),
    trace (B, max_iter), n_iter (B,), converged (B,).

    Examples
    --------
    >>> import jax, numpy as np, bayes_gmm as bg
    >>> rng = np.random.default_rng(0)
    >>> centres = np.repeat([[0.0, 0.0], [6.0, 0.0]], 100, axis=0)
    >>> Xs = np.stack([rng.normal(size=(200, 2)) + centres for _ in range(3)])
    >>> res = bg.fit_em_many(Xs, 2, key=jax.random.key(0))
    >>> res.params.means.shape, res.converged.tolist()
    ((3, 2, 2), [True, True, True])
    """
    covariance_type = C.check_covariance_type(covariance_type)
    Xs = C.check_Xs(Xs, missing=missing)
    b, n, d = Xs.shape
    dt = Xs.dtype
    k = C.check_n_components(n_components, n)
    max_iter = C.check_int("max_iter", max_iter, 0)
    n_init = C.check_int("n_init", n_init, 1)
    tol = C.check_nonneg_float("tol", tol)
    reg_covar = C.check_nonneg_float("reg_covar", reg_covar)
    batch_size = C.check_batch_size(batch_size)
    keys = C.check_keys(keys, key, b)

    init_params, init_axis = None, None
    if isinstance(init, GMMParams):
        if np.ndim(init.means) == 3:
            init_axis = 0
            parts = [C.check_init_params(jax.tree.map(lambda a, i=i: a[i], init), k, d,
                                           covariance_type, dt) for i in range(b)]
            if len(parts) != np.shape(init.means)[0]:
                raise ValueError(f"init has a leading axis of {np.shape(init.means)[0]} "
                                 f"initialisations but Xs holds {b} datasets")
            init_params = jax.tree.map(lambda *a: jnp.stack(a), *parts)
        else:
            init_params = C.check_init_params(init, k, d, covariance_type, dt)
        init = "k-means++"
    else:
        init = C.check_init(init)

    weight_axis = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.ndim == 2:
            if sw.shape != (b, n):
                raise ValueError(f"sample_weight must have shape ({n},) or ({b}, {n}) to "
                                 f"match Xs; got {sw.shape}")
            sw = np.stack([C.check_sample_weight(row, n, dt) for row in sw])
            weight_axis = 0
        else:
            sw = C.check_sample_weight(sw, n, dt)
        sample_weight = jnp.asarray(sw, dt)
    if prior is not None:
        if is_program(prior):
            raise ValueError("fit_em_many takes a GMMPrior (closed-form MAP, one program "
                             "for all datasets); fit a prior program with fit_em per dataset")
        prior = C.prior_arrays(C.check_prior(prior, k, d, covariance_type), dt)
    return _fit_em_many_jit(Xs, keys, prior, sample_weight, init_params, tol, reg_covar, k=k,
                            covariance_type=covariance_type, max_iter=max_iter,
                            n_init=n_init, init=init, batch_size=batch_size,
                            weight_axis=weight_axis, init_axis=init_axis,
                            group=_group_size(b, Xs), has_missing=C.has_nan(Xs))


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

    Under maximum likelihood every K runs in the one EM program compiled for the largest
    (``pad_components``; the others padded with zero-weight components), all K in one call
    (a compiled loop over K on CPU, vmapped on an accelerator), so a grid compiles its EM
    once, and none after for the same data shape and options; under MAP each K is its own
    program. Every K uses the same ``key``, so ``results[K]`` equals
    ``fit_em(X, K, key=key, **fit_em_kwargs)`` (to rounding).

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

    Examples
    --------
    >>> import jax, bayes_gmm as bg
    >>> from bayes_gmm.datasets import load_old_faithful
    >>> grid = bg.fit_em_grid(load_old_faithful(), [1, 2, 3], key=jax.random.key(0))
    >>> grid.best, round(grid.bic[2], 1)
    (2, 2322.2)
    """
    if isinstance(n_components, (int, np.integer)):
        n_components = (n_components,)
    try:
        ks = [C.check_n_components(k) for k in n_components]
    except TypeError:
        raise TypeError(f"n_components must be an iterable of ints; got {n_components!r}") \
            from None
    if not ks:
        raise ValueError("n_components must hold at least one value; got an empty grid")
    if len(set(ks)) != len(ks):
        raise ValueError(f"n_components must not repeat values; got {ks}")
    if isinstance(fit_em_kwargs.get("init"), GMMParams):
        raise TypeError("init must be a string for fit_em_grid: initial GMMParams fix K")
    if not C.is_traced(X):
        X = C.check_X(X)
        dtype = fit_em_kwargs.get("dtype")
        X = X.astype(C.jax_dtype(X.dtype) if dtype is None else dtype, copy=False)
    key = C.check_key(key)
    results, bics, aics = {}, {}, {}
    if fit_em_kwargs.get("prior") is None:
        fit_em_kwargs.setdefault("pad_components", max(ks))
    with C.x64_scope(X.dtype):
        if fit_em_kwargs.get("prior") is None:
            # every K in one compiled program, in one call
            fits = fit_em_ks(X, ks, key, **fit_em_kwargs)     # one key for every K
        else:
            fits = [fit_em(X, k, key=key, **fit_em_kwargs) for k in ks]
        # Unweighted maximum likelihood: the fit's objective is already the mean log-
        # likelihood of X at its parameters, so the criteria need no program of their own.
        from_objective = (fit_em_kwargs.get("prior") is None
                          and fit_em_kwargs.get("sample_weight") is None)
        n = X.shape[0]
        for k, res in zip(ks, fits):
            results[k] = res
            if from_objective:
                p = n_parameters(res.params)
                loglik = n * float(res.objective)
                bics[k], aics[k] = -2 * loglik + p * math.log(n), -2 * loglik + 2 * p
            else:
                bics[k] = float(bic(res.params, X))
                aics[k] = float(aic(res.params, X))
    best = min(ks, key=lambda k: (bics[k] if math.isfinite(bics[k]) else math.inf, k))
    return EMGridResult(results, bics, aics, best)



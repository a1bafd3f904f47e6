r"""Full Bayes: NUTS and SVI on :func:`bayes_gmm.model.gmm_model`, started at MAP-EM.

Both drivers

1. fit MAP-EM (:func:`bayes_gmm.em.fit_em` with several restarts) under the *same* prior
   as the NumPyro model, so the start is the posterior mode;
2. run one compiled program — NUTS warm-up and sampling as two `jax.lax.scan` loops over
   NumPyro's NUTS kernel, or SVI steps as a `lax.scan` over ``SVI.update`` — jitted once
   per static configuration (K, covariance type, draw counts, data shape and dtype), so
   fitting many data sets of one shape reuses the compiled program (a plain
   ``numpyro.infer.MCMC`` re-traces and re-compiles at every new MCMC object);
3. return an :class:`arviz.InferenceData` whose component labels are aligned with the MAP
   (:func:`bayes_gmm.relabel.relabel`), with the raw draws kept in ``posterior_raw``.

InferenceData layout
--------------------
``posterior``: ``weights (chain, draw, component)``, ``means (chain, draw, component,
feature)``, ``covariances`` — ``(chain, draw, component, feature, feature_bis)`` (full),
``(chain, draw, feature, feature_bis)`` (tied), ``(chain, draw, component, feature)``
(diag), ``(chain, draw, component)`` (spherical). ``log_likelihood``: ``obs (chain, draw,
obs_id)``, log p(x_n | θ) of every row (so ``az.loo`` / ``az.waic`` work). ``sample_stats``
(NUTS): ``diverging``, ``lp``, ``acceptance_rate``, ``n_steps``, ``step_size``.
``observed_data``: ``obs (obs_id, feature)``. ``map``: the MAP-EM estimate (same variables,
no chain/draw). ``posterior_raw``: draws before relabelling. ``svi_loss`` (SVI): ``loss
(step)``, the negative ELBO at each step. ``posterior.attrs``: ``method``,
``covariance_type``, ``n_components``, ``relabelled`` (0/1).

This module targets ArviZ 0.x (``arviz.InferenceData``, ArviZ ≥ 0.17, < 1).
"""

from __future__ import annotations

import collections
import contextlib
import math
import numbers
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _validation as V
from .em import _check_init_params, fit_em
from .model import OBS_SITE, gmm_model
from .params import GMMParams, component_log_prob, full_covariances, precision_cholesky
from .priors import GMMPrior, check_prior, resolve_prior

__all__ = ["fit_nuts", "fit_svi", "TRACE_COUNTS"]

SITES = ("weights", "means", "covariances")
#: The observation dim (a variable cannot share its name with its dim, so not ``obs``).
OBS_DIM = "obs_id"
GUIDES = ("auto_normal", "auto_mvn", "auto_lowrank")
CHAIN_METHODS = ("vectorized", "sequential", "parallel")

#: How many times each compiled program has been traced (a re-trace means a re-compile).
TRACE_COUNTS: collections.Counter = collections.Counter()


# --- helpers ---------------------------------------------------------------------------

def _fit_dtype(X):
    """float32 input stays float32; anything else is fitted in float64 (as scikit-learn)."""
    dt = getattr(X, "dtype", None)
    try:
        return np.float32 if dt is not None and np.dtype(dt) == np.float32 else np.float64
    except TypeError:
        return np.float64


def _dtype_scope(dtype):
    """float64 runs with x64 switched on for its duration only (never flipped globally)."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


def _as_key(key):
    if key is None:
        raise TypeError("key is required: pass key=jax.random.key(seed)")
    if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool):
        return jax.random.key(int(key))
    return key


def covariance_dims(covariance_type):
    """Named dims of the ``covariances`` variable (without chain/draw)."""
    return {"full": ("component", "feature", "feature_bis"),
            "tied": ("feature", "feature_bis"),
            "diag": ("component", "feature"),
            "spherical": ("component",)}[covariance_type]


def _var_dims(covariance_type):
    return {"weights": ("component",), "means": ("component", "feature"),
            "covariances": covariance_dims(covariance_type)}


def _check_common(X, n_components, covariance_type, prior):
    covariance_type = V.check_covariance_type(covariance_type)
    dtype = _fit_dtype(X)
    Xa = V.check_X(np.asarray(X) if not isinstance(X, jax.Array) else np.asarray(X),
                   dtype=dtype)
    n, d = Xa.shape
    k = V.check_n_components(n_components, n)
    prior = GMMPrior() if prior is None else prior
    check_prior(prior, k, d, covariance_type)
    if prior.covariance_prior is None:
        # the default prior takes its covariance scale from the data's spread
        V.warn_no_spread(Xa, "bayes_gmm posterior")
    return Xa, k, covariance_type, prior, dtype


def _map_params(Xj, k, covariance_type, prior, key, init, em_kwargs):
    """MAP-EM under ``prior`` (several restarts), or the given GMMParams."""
    if isinstance(init, GMMParams):
        return _check_init_params(init, k, Xj.shape[1], covariance_type, Xj.dtype)
    if init != "em":
        raise ValueError(f"init must be 'em' or a GMMParams; got {init!r}")
    kw = dict(n_init=5, max_iter=500, tol=1e-8)
    kw.update(em_kwargs or {})
    res = fit_em(Xj, k, key=key, covariance_type=covariance_type, prior=prior, **kw)
    p = res.params
    # A pruned component (weight exactly 0, possible with α < 1) has no finite
    # unconstrained value: give it a small positive weight.
    w = jnp.maximum(p.weights, 1e-6)
    return p._replace(weights=w / jnp.sum(w))


def _jitter(key, p: GMMParams, n, jitter, num_chains):
    r"""Per-chain starts around the MAP, about ``jitter`` posterior sds away.

    With N_k = π_k N: log π_k moves by ~1/√N_k; μ_k by L_k z / √N_k (L_k the Cholesky
    factor of Σ_k); Σ_k = L_k A Aᵀ L_kᵀ with A lower triangular, diag(A) = exp(z/√(2N_k)),
    below-diagonal z/√N_k, which keeps Σ_k positive definite; diag/spherical variances are
    scaled by exp(z √(2/N_k)).
    """
    k, d = p.means.shape
    t = p.covariance_type
    dt = p.means.dtype
    c = num_chains
    k0, k1, k2, k3 = jax.random.split(key, 4)
    nk = p.weights * n + 1.0
    sn = jnp.sqrt(nk)
    logw = jnp.log(p.weights)[None] + jitter * jax.random.normal(k0, (c, k), dt) / sn
    weights = jax.nn.softmax(logw, axis=-1)
    chol = jnp.linalg.cholesky(full_covariances(p))                          # (K, D, D)
    z = jax.random.normal(k1, (c, k, d), dt)
    means = p.means[None] + jitter * jnp.einsum("kde,cke->ckd", chol, z) / sn[None, :, None]
    if t in ("full", "tied"):
        shape = (c, k, d, d) if t == "full" else (c, d, d)
        scale = sn[None, :, None, None] if t == "full" else jnp.sqrt(n + 1.0)
        lower = jnp.tril(jax.random.normal(k2, shape, dt), -1) * jitter / scale
        diag = jnp.exp(jitter * jax.random.normal(k3, shape[:-1], dt) / (math.sqrt(2.0) * (
            sn[None, :, None] if t == "full" else jnp.sqrt(n + 1.0))))
        a = lower + diag[..., None] * jnp.eye(d, dtype=dt)
        L = jnp.linalg.cholesky(p.covariances)
        m = L[None] @ a
        cov = m @ jnp.swapaxes(m, -1, -2)
        cov = 0.5 * (cov + jnp.swapaxes(cov, -1, -2))
    elif t == "diag":
        cov = p.covariances[None] * jnp.exp(
            jitter * jax.random.normal(k2, (c, k, d), dt) * jnp.sqrt(2.0 / nk)[None, :, None])
    else:
        cov = p.covariances[None] * jnp.exp(
            jitter * jax.random.normal(k2, (c, k), dt) * jnp.sqrt(2.0 / (nk * d))[None])
    return {"weights": weights, "means": means, "covariances": cov}


def _loglik_draws(X, weights, means, covariances, covariance_type, batch_size=32):
    """log p(x_n | θ_s) for every draw and row: flat draws (S, ...) -> (S, N)."""
    def one(args):
        w, m, c = args
        u = precision_cholesky(c, covariance_type)
        lp = component_log_prob(X, m, u, covariance_type) + jnp.log(w)[None]
        return jax.scipy.special.logsumexp(lp, axis=-1)
    return lax.map(one, (weights, means, covariances), batch_size=batch_size)


def _resolved_prior(prior, Xj, k, covariance_type):
    return resolve_prior(prior, Xj, k, covariance_type)


# --- progress bar through host callbacks (the compiled program stays the same) -----------

_PROGRESS = {"bar": None, "every": 1}


def _progress_update(i):
    bar = _PROGRESS["bar"]
    if bar is not None:
        bar.update(int(i) + 1 - bar.n)


def _tick(i, total, progress_bar):
    if not progress_bar:
        return
    every = max(1, total // 100)
    lax.cond((i % every == 0) | (i == total - 1),
             lambda: jax.debug.callback(_progress_update, i, ordered=False),
             lambda: None)


@contextlib.contextmanager
def _progress(enabled, total, desc):
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm
    bar = tqdm(total=total, desc=desc)
    _PROGRESS["bar"] = bar
    try:
        yield
    finally:
        _PROGRESS["bar"] = None
        bar.close()


# --- NUTS ------------------------------------------------------------------------------

_NUTS_STATIC = ("n_components", "covariance_type", "num_warmup", "num_samples",
                "chain_method", "progress_bar", "dense_mass", "max_tree_depth",
                "target_accept_prob")


@partial(jax.jit, static_argnames=_NUTS_STATIC)
def _nuts_program(X, prior, init_values, key, *, n_components, covariance_type, num_warmup,
                  num_samples, chain_method, progress_bar, dense_mass, max_tree_depth,
                  target_accept_prob):
    """Warm-up and sampling for all chains in one compiled program.

    init_values: constrained starts with a leading chain axis. Returns the constrained
    draws (C, S, ...), the per-draw statistics (C, S) and log p(x_n | θ) (C, S, N).
    """
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

    TRACE_COUNTS["nuts"] += 1
    kwargs = {"n_components": n_components, "prior": prior, "covariance_type": covariance_type}
    total = num_warmup + num_samples

    def pe(z):
        return potential_energy(gmm_model, (X,), kwargs, z)

    init_kernel, sample_kernel = hmc(potential_fn=pe, algo="NUTS")
    z0 = jax.vmap(lambda v: unconstrain_fn(gmm_model, (X,), kwargs, v))(init_values)
    num_chains = init_values["weights"].shape[0]
    keys = jax.random.split(key, num_chains)

    def init_one(z, k):
        return init_kernel(z, num_warmup, dense_mass=dense_mass,
                           target_accept_prob=target_accept_prob,
                           max_tree_depth=max_tree_depth, rng_key=k)

    def collect(s):
        return {"z": s.z, "diverging": s.diverging, "lp": -s.potential_energy,
                "acceptance_rate": s.accept_prob, "n_steps": s.num_steps,
                "step_size": s.adapt_state.step_size}

    def run(z, k, batched, tick):
        init = jax.vmap(init_one) if batched else init_one
        step = jax.vmap(sample_kernel) if batched else sample_kernel
        state = init(z, k)

        def body(s, i):
            s = step(s)
            _tick(i, total, tick)
            return s, collect(s)

        # One scan over warm-up and sampling (the kernel is compiled once, not twice); the
        # warm-up rows of the output are dropped. Adaptation stops at num_warmup inside
        # the kernel (its state counts iterations).
        _, out = lax.scan(body, state, jnp.arange(total))
        return jax.tree.map(lambda a: a[num_warmup:], out)

    if chain_method == "vectorized":
        out = run(z0, keys, True, progress_bar)
        out = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), out)          # (C, S, ...)
    else:  # sequential
        out = lax.map(lambda a: run(a[0], a[1], False, progress_bar and num_chains == 1),
                      (z0, keys))
    z = out.pop("z")
    flat = jax.tree.map(lambda a: a.reshape((num_chains * num_samples,) + a.shape[2:]), z)
    draws = lax.map(lambda zz: constrain_fn(gmm_model, (X,), kwargs, zz), flat, batch_size=256)
    draws = {s: draws[s] for s in SITES}
    ll = _loglik_draws(X, draws["weights"], draws["means"], draws["covariances"],
                       covariance_type)
    shape = (num_chains, num_samples)
    draws = jax.tree.map(lambda a: a.reshape(shape + a.shape[1:]), draws)
    return draws, out, ll.reshape(shape + ll.shape[1:])


def fit_nuts(X, n_components, *, key, prior=None, covariance_type="full", num_warmup=500,
             num_samples=1000, num_chains=4, chain_method="vectorized", init="em",
             relabel=True, progress_bar=True, em_kwargs=None, jitter=1.0, dense_mass=False,
             target_accept_prob=0.8, max_tree_depth=10):
    r"""Sample the posterior of a K-component mixture with NUTS, started at MAP-EM.

    The model is :func:`bayes_gmm.model.gmm_model` (assignments marginalised) under
    ``prior``; every chain starts at the MAP, jittered by about ``jitter`` posterior sds
    (in a way that keeps covariances positive definite), through ``init_to_value``.

    Parameters
    ----------
    X : (N, D) array. float32 input is sampled in float32; anything else in float64
        (inside a scoped ``jax.enable_x64(True)``).
    n_components : int K.
    key : a `jax.random.key` (an int seed is accepted).
    prior : `GMMPrior`, or None for ``GMMPrior()`` (data-dependent defaults, as MAP-EM).
    covariance_type : "full" | "tied" | "diag" | "spherical".
    num_warmup, num_samples : NUTS warm-up (adaptation) and kept iterations per chain.
    num_chains : independent chains.
    chain_method : "vectorized" (chains as a batch in one program), "sequential", or
        "parallel" (one chain per device with `jax.pmap`; falls back to "vectorized" with a
        warning when there are fewer devices than chains).
    init : "em" (MAP-EM with restarts) or a `GMMParams` to start from.
    relabel : align the component labels of every draw with the MAP
        (:func:`bayes_gmm.relabel.relabel`); raw draws stay in ``posterior_raw``.
    progress_bar : show a tqdm progress bar (host callbacks; a separate compiled program).
    em_kwargs : extra keyword arguments for :func:`bayes_gmm.fit_em` (default
        ``n_init=5, max_iter=500, tol=1e-8``).
    jitter : spread of the chain starts around the MAP, in posterior sds (0: all at MAP).
    dense_mass, target_accept_prob, max_tree_depth : NUTS settings (NumPyro's meanings).

    Returns
    -------
    arviz.InferenceData
        Groups ``posterior``, ``log_likelihood``, ``sample_stats``, ``observed_data``,
        ``map``, ``posterior_raw`` (see the module docstring for dims).

    Examples
    --------
    >>> idata = fit_nuts(X, 3, key=jax.random.key(0), progress_bar=False)  # doctest: +SKIP
    >>> idata.posterior["means"].dims                                      # doctest: +SKIP
    ('chain', 'draw', 'component', 'feature')
    """
    Xa, k, covariance_type, prior, dtype = _check_common(X, n_components, covariance_type,
                                                         prior)
    num_warmup = V.check_int("num_warmup", num_warmup, 0)
    num_samples = V.check_int("num_samples", num_samples, 1)
    num_chains = V.check_int("num_chains", num_chains, 1)
    max_tree_depth = V.check_int("max_tree_depth", max_tree_depth, 1)
    jitter = V.check_nonneg_float("jitter", jitter)
    target_accept_prob = float(target_accept_prob)
    if not 0.0 < target_accept_prob < 1.0:
        raise ValueError(f"target_accept_prob must be in (0, 1); got {target_accept_prob}")
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS}; got {chain_method!r}")
    if chain_method == "parallel" and jax.local_device_count() < num_chains:
        warnings.warn(f"chain_method='parallel' needs {num_chains} devices; "
                      f"{jax.local_device_count()} available: running the chains vectorized.",
                      UserWarning, stacklevel=2)
        chain_method = "vectorized"
    key = _as_key(key)
    k_em, k_jit, k_run = jax.random.split(key, 3)
    n = Xa.shape[0]
    with _dtype_scope(dtype):
        Xj = jnp.asarray(Xa)
        mapp = _map_params(Xj, k, covariance_type, prior, k_em, init, em_kwargs)
        starts = _jitter(k_jit, mapp, n, jitter, num_chains)
        rprior = _resolved_prior(prior, Xj, k, covariance_type)
        static = dict(n_components=k, covariance_type=covariance_type, num_warmup=num_warmup,
                      num_samples=num_samples, dense_mass=bool(dense_mass),
                      max_tree_depth=max_tree_depth, target_accept_prob=target_accept_prob)
        with _progress(progress_bar and chain_method != "parallel",
                       num_warmup + num_samples, "NUTS"):
            if chain_method == "parallel":
                draws, stats, ll = _parallel_nuts(Xj, rprior, starts, k_run, **static)
            else:
                draws, stats, ll = _nuts_program(Xj, rprior, starts, k_run,
                                                 chain_method=chain_method,
                                                 progress_bar=bool(progress_bar), **static)
            draws, stats, ll = jax.device_get((draws, stats, ll))
            mapp = jax.device_get(mapp)
    idata = _to_inference_data(draws, ll, Xa, mapp, covariance_type, "nuts",
                               sample_stats=stats)
    if relabel:
        from .relabel import relabel as _relabel
        idata = _relabel(idata)
    # Divergences, R-hat, ESS and chains in different modes, as DiagnosticWarnings that
    # name the variables (on relabelled draws either way).
    from .diagnostics import check_diagnostics
    check_diagnostics(idata, warn=True)
    return idata


def _parallel_nuts(X, prior, starts, key, **static):
    """One chain per device: the sequential program on a single chain, under `jax.pmap`."""
    num_chains = starts["weights"].shape[0]
    keys = jax.random.split(key, num_chains)

    def one(s, k):
        s1 = jax.tree.map(lambda a: a[None], s)
        d, st, ll = _nuts_program(X, prior, s1, k, chain_method="sequential",
                                  progress_bar=False, **static)
        return jax.tree.map(lambda a: a[0], (d, st, ll))
    d, st, ll = _pmapped(one)(starts, keys)
    return d, st, ll


def _pmapped(fn):
    # The inner jitted program is cached by its static settings; the pmap wrapper is not.
    return jax.pmap(fn)


# --- SVI -------------------------------------------------------------------------------

_SVI_STATIC = ("n_components", "covariance_type", "guide", "num_steps", "batch_size",
               "num_samples", "progress_bar", "rank")


def _make_guide(guide, init_values, rank):
    from numpyro.infer import autoguide
    from numpyro.infer.initialization import init_to_value
    init_loc_fn = init_to_value(values=init_values)
    if guide == "auto_normal":
        return autoguide.AutoNormal(gmm_model, init_loc_fn=init_loc_fn)
    if guide == "auto_mvn":
        return autoguide.AutoMultivariateNormal(gmm_model, init_loc_fn=init_loc_fn)
    return autoguide.AutoLowRankMultivariateNormal(gmm_model, init_loc_fn=init_loc_fn,
                                                   rank=rank)


@partial(jax.jit, static_argnames=_SVI_STATIC)
def _svi_program(X, prior, init_values, key, learning_rate, *, n_components, covariance_type,
                 guide, num_steps, batch_size, num_samples, progress_bar, rank):
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.optim import Adam

    TRACE_COUNTS["svi"] += 1
    kwargs = {"n_components": n_components, "prior": prior, "covariance_type": covariance_type,
              "subsample_size": batch_size}
    g = _make_guide(guide, init_values, rank)
    svi = SVI(gmm_model, g, Adam(learning_rate), Trace_ELBO())
    k_init, k_draw = jax.random.split(key)
    state = svi.init(k_init, X, **kwargs)

    # Polyak-Ruppert averaging of the guide parameters over the last fifth of the steps:
    # with single-particle gradients the final Adam iterate jitters (its scales most), the
    # tail average does not.
    start = num_steps - max(1, num_steps // 5)

    def body(carry, i):
        s, avg = carry
        s, loss = svi.update(s, X, **kwargs)
        w = jnp.where(i >= start, 1.0 / (i - start + 1.0), 0.0).astype(X.dtype)
        avg = jax.tree.map(lambda a, p: a + w * (p - a), avg, svi.get_params(s))
        _tick(i, num_steps, progress_bar)
        return (s, avg), loss

    (state, params), losses = lax.scan(body, (state, svi.get_params(state)),
                                       jnp.arange(num_steps))
    draws = g.sample_posterior(k_draw, params, X, sample_shape=(num_samples,), **kwargs)
    draws = {s: draws[s] for s in SITES}
    ll = _loglik_draws(X, draws["weights"], draws["means"], draws["covariances"],
                       covariance_type)
    draws = jax.tree.map(lambda a: a[None], draws)
    return draws, losses, ll[None]


def fit_svi(X, n_components, *, key, prior=None, covariance_type="full", guide="auto_mvn",
            num_steps=5000, learning_rate=1e-2, batch_size=None, num_samples=1000, init="em",
            relabel=True, progress_bar=True, em_kwargs=None, rank=None):
    r"""Variational Bayes (SVI) for the mixture posterior, initialised at MAP-EM.

    Maximises the ELBO of :func:`bayes_gmm.model.gmm_model` over an automatic guide with
    Adam; the guide's location starts at the MAP (``init_to_value``). The draws come from
    the guide whose parameters are averaged over the last fifth of the steps
    (Polyak-Ruppert averaging: the final iterate of single-particle stochastic gradients
    jitters, the average does not).

    Parameters
    ----------
    X : (N, D) array (dtype handling as :func:`fit_nuts`).
    n_components : int K.
    key : a `jax.random.key` (an int seed is accepted).
    prior : `GMMPrior`, or None for ``GMMPrior()``.
    covariance_type : "full" | "tied" | "diag" | "spherical".
    guide : "auto_normal" (mean field), "auto_mvn" (full-rank Gaussian in the
        unconstrained space) or "auto_lowrank" (low rank plus diagonal).
    num_steps : Adam steps. learning_rate : Adam step size.
    batch_size : rows per minibatch (through the model's ``subsample_size``; the
        likelihood is rescaled by N / batch), or None for full-batch gradients.
    num_samples : draws from the fitted guide.
    init : "em" or a `GMMParams`.
    relabel : align labels with the MAP (raw draws in ``posterior_raw``).
    progress_bar : tqdm progress bar over the steps.
    rank : rank of "auto_lowrank" (None: NumPyro's default, about √(#parameters)).

    Returns
    -------
    arviz.InferenceData
        As :func:`fit_nuts` with one chain and no ``sample_stats``, plus the group
        ``svi_loss`` with ``loss (step)`` (negative ELBO per step; log-likelihood values are
        computed on the full data even when ``batch_size`` is set).
    """
    Xa, k, covariance_type, prior, dtype = _check_common(X, n_components, covariance_type,
                                                         prior)
    if guide not in GUIDES:
        raise ValueError(f"guide must be one of {GUIDES}; got {guide!r}")
    num_steps = V.check_int("num_steps", num_steps, 1)
    num_samples = V.check_int("num_samples", num_samples, 1)
    batch_size = V.check_batch_size(batch_size)
    if batch_size is not None and batch_size >= Xa.shape[0]:
        batch_size = None
    learning_rate = V.check_nonneg_float("learning_rate", learning_rate)
    if learning_rate == 0:
        raise ValueError("learning_rate must be > 0; got 0")
    if rank is not None:
        rank = V.check_int("rank", rank, 1)
    key = _as_key(key)
    k_em, k_run = jax.random.split(key)
    with _dtype_scope(dtype):
        Xj = jnp.asarray(Xa)
        mapp = _map_params(Xj, k, covariance_type, prior, k_em, init, em_kwargs)
        init_values = {"weights": mapp.weights, "means": mapp.means,
                       "covariances": mapp.covariances}
        rprior = _resolved_prior(prior, Xj, k, covariance_type)
        with _progress(progress_bar, num_steps, f"SVI ({guide})"):
            draws, losses, ll = _svi_program(
                Xj, rprior, init_values, k_run, jnp.asarray(learning_rate, Xj.dtype),
                n_components=k, covariance_type=covariance_type, guide=guide,
                num_steps=num_steps, batch_size=batch_size, num_samples=num_samples,
                progress_bar=bool(progress_bar), rank=rank)
            draws, losses, ll, mapp = jax.device_get((draws, losses, ll, mapp))
    idata = _to_inference_data(draws, ll, Xa, mapp, covariance_type, "svi",
                               extra_groups={"svi_loss": _loss_dataset(losses)})
    idata.posterior.attrs["guide"] = guide
    if not np.all(np.isfinite(losses[-max(1, num_steps // 10):])):
        warnings.warn("fit_svi: the loss is not finite at the end of optimisation; decrease "
                      "learning_rate.", UserWarning, stacklevel=2)
    if relabel:
        from .relabel import relabel as _relabel
        idata = _relabel(idata)
    return idata


def _loss_dataset(losses):
    import xarray as xr
    losses = np.asarray(losses)
    return xr.Dataset({"loss": (("step",), losses)},
                      coords={"step": np.arange(losses.shape[0])})


# --- InferenceData ---------------------------------------------------------------------

def params_dataset(params: GMMParams):
    """A `GMMParams` as an xarray Dataset (no chain/draw dims), e.g. the ``map`` group."""
    import xarray as xr
    dims = _var_dims(params.covariance_type)
    k, d = np.shape(params.means)
    ds = xr.Dataset({s: (dims[s], np.asarray(getattr(params, s))) for s in SITES},
                    coords={"component": np.arange(k), "feature": np.arange(d),
                            "feature_bis": np.arange(d)})
    if params.covariance_type in ("diag", "spherical"):
        ds = ds.drop_vars("feature_bis")
    ds.attrs["covariance_type"] = params.covariance_type
    return ds


def params_from_dataset(ds, covariance_type=None) -> GMMParams:
    """Inverse of :func:`params_dataset` (variables with extra leading dims are kept)."""
    t = covariance_type or ds.attrs.get("covariance_type", "full")
    return GMMParams(*(np.asarray(ds[s].values) for s in SITES), t)


def _to_inference_data(draws, ll, Xa, mapp, covariance_type, method, sample_stats=None,
                       extra_groups=None):
    import arviz as az
    import xarray as xr

    c, s = np.shape(draws["weights"])[:2]
    n, d = Xa.shape
    k = np.shape(draws["weights"])[-1]
    dims = _var_dims(covariance_type)
    coords = {"chain": np.arange(c), "draw": np.arange(s), "component": np.arange(k),
              "feature": np.arange(d), "feature_bis": np.arange(d), OBS_DIM: np.arange(n)}

    def ds(vars_, var_dims):
        used = {dim for v in var_dims.values() for dim in v} | {"chain", "draw"}
        data = {name: (("chain", "draw") + var_dims[name], np.asarray(v))
                for name, v in vars_.items()}
        return xr.Dataset(data, coords={kk: vv for kk, vv in coords.items() if kk in used})

    attrs = {"method": method, "covariance_type": covariance_type, "n_components": int(k),
             "relabelled": 0}
    posterior = ds({name: draws[name] for name in SITES}, dims)
    posterior.attrs.update(attrs)
    groups = {
        "posterior": posterior,
        "log_likelihood": ds({OBS_SITE: ll}, {OBS_SITE: (OBS_DIM,)}),
        "observed_data": xr.Dataset({OBS_SITE: ((OBS_DIM, "feature"), np.asarray(Xa))},
                                    coords={OBS_DIM: coords[OBS_DIM],
                                            "feature": coords["feature"]}),
        "map": params_dataset(GMMParams(mapp.weights, mapp.means, mapp.covariances,
                                        covariance_type)),
    }
    if sample_stats is not None:
        groups["sample_stats"] = ds(dict(sample_stats), {name: () for name in sample_stats})
    if extra_groups:
        groups.update(extra_groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.InferenceData(**groups)

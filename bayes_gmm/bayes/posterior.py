r"""Full Bayes, the public edge: :func:`fit_nuts` and :func:`fit_svi`, started at MAP-EM.

Both drivers

1. fit MAP-EM (:func:`bayes_gmm.fit_em` with several restarts) under the *same* prior
   as the NumPyro model, so the start is the posterior mode;
2. run one compiled program (:mod:`bayes_gmm.bayes.programs`) — NUTS warm-up and sampling,
   or SVI steps — jitted once per static configuration;
3. return an :class:`arviz.InferenceData` (:mod:`bayes_gmm.bayes.idata` holds the schema)
   whose component labels are aligned with the MAP (:func:`bayes_gmm.relabel`), with the
   raw draws kept in ``posterior_raw``.
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks as C
from ..core.missing import count_blocks
from ..core.params import GMMParams
from ..core.prior import GMMPrior
from ..core.program import is_program, latent_sites, run_program, site_dims
from ..core.seeding import normal
from ..fit import fit_em, fit_program
from . import programs
from .diagnostics import check_diagnostics
from .idata import loss_dataset, to_inference_data, with_feature_names
from .model import model_prior
from .relabel import relabel as relabel_draws

__all__ = ["fit_nuts", "fit_svi"]

CHAIN_METHODS = ("vectorized", "sequential", "parallel")


def _check_common(X, n_components, covariance_type, prior, dtype, missing):
    covariance_type = C.check_covariance_type(covariance_type)
    Xa = C.check_X(X, missing=missing)
    # The functional rule: the dtype JAX gives the input, unless dtype= says otherwise.
    dtype = C.jax_dtype(Xa.dtype) if dtype is None else np.dtype(dtype)
    Xa = Xa.astype(dtype, copy=False)
    n, d = Xa.shape
    k = C.check_n_components(n_components, n)
    C.check_sampler(covariance_type)
    prior = C.check_prior(prior, k, d, covariance_type)
    if isinstance(prior, GMMPrior) and prior.covariance_prior is None:
        # the default prior takes its covariance scale from the data's spread
        C.warn_no_spread(Xa, "bayes_gmm posterior")
    return Xa, k, covariance_type, prior, dtype


INITS = ("em", "em-multi")
#: Two EM optima are one when their objectives (mean log-posterior per row) are this close.
SAME_OPTIMUM_ATOL = 1e-6


def _positive_weights(p):
    # A pruned component (weight exactly 0, possible with α < 1) has no finite
    # unconstrained value: give it a small positive weight.
    # On the host: the weights are K numbers, and eager device operations would compile a
    # program each for every new K.
    w = np.maximum(np.asarray(p.weights), 1e-6)
    return p._replace(weights=w / np.sum(w))


def _missing(Xj):
    """The ``missing`` option for the MAP-EM start: X reached here checked, so NaN in it
    are holes to integrate out."""
    return "marginalize" if C.has_nan(Xj) else "error"


def _holes(Xa):
    """``has_missing`` for resolving the default prior from a concrete X: False, or its
    blocks of equal hole counts (the pilot fit's fast E-step)."""
    return C.has_nan(Xa) and count_blocks(Xa)


def _map_params(Xj, k, covariance_type, prior, key, init, em_kwargs, inits=INITS):
    """MAP-EM under ``prior`` (several restarts), or the given GMMParams."""
    if isinstance(init, GMMParams):
        return C.check_init_params(init, k, Xj.shape[1], covariance_type, Xj.dtype)
    if not isinstance(init, str) or init not in inits:
        raise ValueError(f"init must be one of {inits} or a GMMParams; got {init!r}")
    kw = dict(n_init=5, max_iter=500, tol=1e-8, missing=_missing(Xj))
    kw.update(em_kwargs or {})
    res = fit_em(Xj, k, key=key, covariance_type=covariance_type, prior=prior, **kw)
    return _positive_weights(res.params)


def _em_optima(Xj, k, covariance_type, prior, key, em_kwargs, n_starts):
    """Distinct MAP-EM optima from ``n_starts`` single starts: [(objective, params)], best
    first. Starts that end within ``SAME_OPTIMUM_ATOL`` of a better one are dropped."""
    kw = dict(max_iter=500, tol=1e-8, missing=_missing(Xj))
    kw.update(em_kwargs or {})
    kw["n_init"] = 1
    found = []
    for kk in jax.random.split(key, n_starts):
        res = fit_em(Xj, k, key=kk, covariance_type=covariance_type, prior=prior, **kw)
        found.append((float(res.objective), _positive_weights(res.params)))
    found.sort(key=lambda t: -t[0] if np.isfinite(t[0]) else np.inf)
    distinct = []
    for obj, p in found:
        if np.isfinite(obj) and all(abs(obj - o) > SAME_OPTIMUM_ATOL for o, _ in distinct):
            distinct.append((obj, p))
    return distinct


def _starts(k_em, k_jit, Xj, k, covariance_type, prior, init, em_kwargs, n, jitter,
            num_chains):
    """(MAP reference, chain starts {site: (C, ...)}, each chain's starting objective).

    ``init="em"``: every chain around the best of several MAP-EM restarts.
    ``init="em-multi"``: the distinct optima of 2 × num_chains (at least 10) single
    MAP-EM starts, chain c around optimum c mod M (best first), so chains begin in
    different modes on purpose; the reference for relabelling is the best optimum.
    """
    if init != "em-multi":
        mapp = _map_params(Xj, k, covariance_type, prior, k_em, init, em_kwargs)
        return mapp, _jitter(k_jit, mapp, n, jitter, num_chains), None
    optima = _em_optima(Xj, k, covariance_type, prior, k_em, em_kwargs,
                        max(10, 2 * num_chains))
    which = [c % len(optima) for c in range(num_chains)]
    parts = [_jitter(jax.random.fold_in(k_jit, c), optima[m][1], n, jitter, 1)
             for c, m in enumerate(which)]
    starts = {v: jnp.concatenate([q[v] for q in parts]) for v in parts[0]}
    return optima[0][1], starts, [optima[m][0] for m in which]


def _program_start(Xj, k, covariance_type, program, key, init, em_kwargs, n, jitter,
                   num_chains):
    """A prior program's MAP (:func:`bayes_gmm.fit.fit_program`) and per-chain starts
    about it: each site moved by ``jitter``·z/√N in its unconstrained space.
    Returns (MAP `GMMParams`, starts {site: (C, ...)}, MAP site values, site dims)."""
    if init != "em":
        raise ValueError(f"with a prior program, init must be 'em' (chains start at the "
                         f"program's MAP); got {init!r}")
    from numpyro.distributions.transforms import biject_to
    kw = dict(n_init=5, max_iter=500, tol=1e-8)
    kw.update(em_kwargs or {})
    fit = fit_program(Xj, k, key, covariance_type, program, **kw)
    d = Xj.shape[1]
    _, trace = run_program(program, k, d, values=fit.values)
    starts = {}
    for i, (name, site) in enumerate(sorted(latent_sites(trace).items())):
        t = biject_to(site["fn"].support)
        u = t.inv(fit.values[name])
        z = normal(jax.random.fold_in(key, i), (num_chains,) + jnp.shape(u),
                   jnp.result_type(u))
        starts[name] = t(u[None] + jitter * z / np.sqrt(n))
    return (_positive_weights(fit.params), starts, fit.values,
            site_dims(program, k, d, fit.values))


@partial(jax.jit, static_argnames="num_chains")
def _jitter(key, p: GMMParams, n, jitter, num_chains):
    r"""Per-chain starts around the MAP, about ``jitter`` posterior sds away.

    With N_k = π_k N: log π_k moves by ~1/√N_k; μ_k by L_k z / √N_k (L_k the Cholesky
    factor of Σ_k); the covariances move by the family's ``jitter`` (for matrices
    Σ_k = L_k A Aᵀ L_kᵀ with A lower triangular, which keeps Σ_k positive definite).
    """
    k, d = p.means.shape
    dt = p.means.dtype
    c = num_chains
    k0, k1, k2, k3 = jax.random.split(key, 4)
    nk = p.weights * n + 1.0
    sn = jnp.sqrt(nk)
    logw = jnp.log(p.weights)[None] + jitter * normal(k0, (c, k), dt) / sn
    weights = jax.nn.softmax(logw, axis=-1)
    chol = jnp.linalg.cholesky(p.family.to_full(p.covariances, k, d))        # (K, D, D)
    z = normal(k1, (c, k, d), dt)
    means = p.means[None] + jitter * jnp.einsum("kde,cke->ckd", chol, z) / sn[None, :, None]
    cov = p.family.jitter((k2, k3), p.covariances, nk, n, d, jitter, c)
    return {"weights": weights, "means": means, "covariances": cov}


def fit_nuts(X, n_components, *, key, prior=None, covariance_type="full", num_warmup=500,
             num_samples=1000, num_chains=4, chain_method="vectorized", init="em",
             relabel=True, progress_bar=True, em_kwargs=None, jitter=1.0, dense_mass=False,
             target_accept_prob=0.8, max_tree_depth=10, dtype=None, missing="error"):
    r"""Sample the posterior of a K-component mixture with NUTS, started at MAP-EM.

    The model is :func:`bayes_gmm.gmm_model` (assignments marginalised) under
    ``prior``; every chain starts at the MAP, jittered by about ``jitter`` posterior sds
    (in a way that keeps covariances positive definite), through ``init_to_value``.

    Parameters
    ----------
    X : (N, D) array, sampled in the dtype JAX gives it (float64 input is sampled in
        float32 unless JAX's x64 flag is on) unless ``dtype`` says otherwise.
    n_components : int K.
    key : a `jax.random.key` (an int seed is accepted).
    prior : `GMMPrior`, or None for ``GMMPrior()`` (data-dependent defaults, as MAP-EM), or
        a prior program ``prior_fn(n_components, n_features)`` returning a `GMMParams`
        (:mod:`bayes_gmm.core.program`): the chains start about its MAP (``init="em"``),
        and ``posterior`` and ``map`` hold its own sites beside the mixture's parameters
        (an axis of a ``numpyro.plate("component", K)`` is the ``component`` dim, which
        relabelling permutes).
    covariance_type : "full" | "tied" | "diag" | "spherical".
    num_warmup, num_samples : NUTS warm-up (adaptation) and kept iterations per chain.
    num_chains : independent chains.
    chain_method : "vectorized" (chains as a batch in one program), "sequential", or
        "parallel" (one chain per device with `jax.pmap`; falls back to "vectorized" with a
        warning when there are fewer devices than chains).
    init : "em" (every chain around the best of several MAP-EM restarts), "em-multi"
        (the distinct MAP-EM optima of max(10, 2 × num_chains) single starts, chain c
        around optimum c mod M, best first: chains start in different modes on purpose, so
        a multimodal posterior shows as such in :func:`bayes_gmm.posterior_modes`; each
        chain's starting objective is in ``posterior.attrs["chain_start_objective"]``), or
        a `GMMParams` to start from.
    relabel : align the component labels of every draw with the MAP
        (:func:`bayes_gmm.relabel`); raw draws stay in ``posterior_raw``.
    progress_bar : show a tqdm progress bar (host callbacks; a separate compiled program).
    em_kwargs : extra keyword arguments for :func:`bayes_gmm.fit_em` (default
        ``n_init=5, max_iter=500, tol=1e-8``).
    jitter : spread of the chain starts around the MAP, in posterior sds (0: all at MAP).
    dense_mass, target_accept_prob, max_tree_depth : NUTS settings (NumPyro's meanings).
    dtype : compute in this dtype (``np.float64`` runs inside a scoped
        ``jax.enable_x64(True)``, never flipping the global flag); None: JAX's dtype of X.
    missing : "error" (NaN in X is an error naming its row and column) or "marginalize":
        NaN entries are missing values integrated out of the likelihood, so the draws are
        of the posterior given only what was observed, the MAP-EM start maximises the
        observed-data posterior, and ``log_likelihood`` holds each row's observed-data
        log-likelihood (LOO works). ``observed_data`` keeps the NaN. Multiple imputations:
        :func:`bayes_gmm.impute`.

    Returns
    -------
    arviz.InferenceData
        Groups ``posterior``, ``log_likelihood``, ``sample_stats``, ``observed_data``,
        ``map``, ``posterior_raw`` (see the module docstring for dims).

    Examples
    --------
    Skipped when the docstrings run: compiling NUTS takes tens of seconds (the test suite
    runs it in tests/test_posterior.py).

    >>> import jax, bayes_gmm as bg
    >>> from bayes_gmm.datasets import load_old_faithful
    >>> idata = bg.fit_nuts(load_old_faithful(), 2, key=jax.random.key(0),
    ...                     progress_bar=False)                    # doctest: +SKIP
    >>> idata.posterior["means"].dims                              # doctest: +SKIP
    ('chain', 'draw', 'component', 'feature')
    """
    names = C.feature_names(X)             # a DataFrame's columns label the features
    Xa, k, covariance_type, prior, dtype = _check_common(X, n_components, covariance_type,
                                                         prior, dtype, missing)
    missing = _missing(Xa)
    num_warmup = C.check_int("num_warmup", num_warmup, 0)
    num_samples = C.check_int("num_samples", num_samples, 1)
    num_chains = C.check_int("num_chains", num_chains, 1)
    max_tree_depth = C.check_int("max_tree_depth", max_tree_depth, 1)
    jitter = C.check_nonneg_float("jitter", jitter)
    target_accept_prob = float(target_accept_prob)
    if not 0.0 < target_accept_prob < 1.0:
        raise ValueError(f"target_accept_prob must be in (0, 1); got {target_accept_prob}")
    C.check_choice("chain_method", chain_method, CHAIN_METHODS)
    if chain_method == "parallel" and jax.local_device_count() < num_chains:
        warnings.warn(f"chain_method='parallel' needs {num_chains} devices; "
                      f"{jax.local_device_count()} available: running the chains vectorized.",
                      UserWarning, stacklevel=2)
        chain_method = "vectorized"
    key = C.check_key(key)
    k_em, k_jit, k_run = jax.random.split(key, 3)
    n = Xa.shape[0]
    with C.x64_scope(dtype):
        Xj = jnp.asarray(Xa)
        # Resolved once (the default covariance scale runs a pilot fit): the MAP-EM starts
        # and the sampled model share this very prior.
        program, sites, map_values, start_objectives = None, None, None, None
        if is_program(prior):
            rprior, program = None, prior
            mapp, starts, map_values, sites = _program_start(Xj, k, covariance_type, prior,
                                                             k_em, init, em_kwargs, n,
                                                             jitter, num_chains)
        else:
            rprior = model_prior(Xj, k, prior, covariance_type, has_missing=_holes(Xa))
            mapp, starts, start_objectives = _starts(k_em, k_jit, Xj, k, covariance_type,
                                                     rprior, init, em_kwargs, n, jitter,
                                                     num_chains)
        static = dict(n_components=k, covariance_type=covariance_type, num_warmup=num_warmup,
                      num_samples=num_samples, dense_mass=bool(dense_mass),
                      max_tree_depth=max_tree_depth, target_accept_prob=target_accept_prob,
                      missing=missing, program=program)
        with programs.progress(progress_bar and chain_method != "parallel",
                       num_warmup + num_samples, "NUTS"):
            if chain_method == "parallel":
                draws, stats, ll = programs.parallel_nuts(Xj, rprior, starts, k_run, **static)
            else:
                draws, stats, ll = programs.nuts_program(Xj, rprior, starts, k_run,
                                                        chain_method=chain_method,
                                                        progress_bar=bool(progress_bar),
                                                        **static)
            draws, stats, ll = jax.device_get((draws, stats, ll))
            mapp, map_values = jax.device_get((mapp, map_values))
    idata = with_feature_names(to_inference_data(draws, ll, Xa, mapp, covariance_type,
                                                 "nuts", sample_stats=stats,
                                                 site_dims=sites, map_values=map_values),
                               names)
    if start_objectives is not None:
        idata.posterior.attrs["init"] = "em-multi"
        idata.posterior.attrs["chain_start_objective"] = start_objectives
    if relabel:
        idata = relabel_draws(idata)
    # Divergences, R-hat, ESS and chains in different modes, as DiagnosticWarnings that
    # name the variables (on relabelled draws either way).
    check_diagnostics(idata, warn=True)
    return idata


def fit_svi(X, n_components, *, key, prior=None, covariance_type="full", guide="auto_mvn",
            num_steps=5000, learning_rate=1e-2, subsample_size=None, num_samples=1000,
            init="em", relabel=True, progress_bar=True, em_kwargs=None, rank=None,
            dtype=None, missing="error"):
    r"""Variational Bayes (SVI) for the mixture posterior, initialised at MAP-EM.

    Maximises the ELBO of :func:`bayes_gmm.gmm_model` over an automatic guide with
    Adam; the guide's location starts at the MAP (``init_to_value``). The draws come from
    the guide whose parameters are averaged over the last fifth of the steps
    (Polyak-Ruppert averaging: the final iterate of single-particle stochastic gradients
    jitters, the average does not).

    Parameters
    ----------
    X : (N, D) array (dtype handling as :func:`fit_nuts`).
    n_components : int K.
    key : a `jax.random.key` (an int seed is accepted).
    prior : `GMMPrior`, None for ``GMMPrior()``, or a prior program (as :func:`fit_nuts`).
    covariance_type : "full" | "tied" | "diag" | "spherical".
    guide : "auto_normal" (mean field), "auto_mvn" (full-rank Gaussian in the
        unconstrained space) or "auto_lowrank" (low rank plus diagonal).
    num_steps : Adam steps. learning_rate : Adam step size.
    subsample_size : rows per minibatch (through the model's ``subsample_size``; the
        likelihood is rescaled by N / batch), or None for full-batch gradients.
    num_samples : draws from the fitted guide.
    init : "em" or a `GMMParams`.
    relabel : align labels with the MAP (raw draws in ``posterior_raw``).
    progress_bar : tqdm progress bar over the steps.
    rank : rank of "auto_lowrank" (None: NumPyro's default, about √(#parameters)).
    dtype, missing : as for :func:`fit_nuts`.

    Returns
    -------
    arviz.InferenceData
        As :func:`fit_nuts` with one chain and no ``sample_stats``, plus the group
        ``svi_loss`` with ``loss (step)`` (negative ELBO per step; log-likelihood values are
        computed on the full data even when ``subsample_size`` is set).

    Examples
    --------
    Skipped when the docstrings run (compiling the optimisation takes seconds to tens of
    seconds; tests/test_posterior.py runs it):

    >>> import jax, bayes_gmm as bg
    >>> from bayes_gmm.datasets import load_old_faithful
    >>> idata = bg.fit_svi(load_old_faithful(), 2, key=jax.random.key(0), num_steps=2000,
    ...                    progress_bar=False)                     # doctest: +SKIP
    >>> idata.posterior["weights"].dims, idata.svi_loss["loss"].dims  # doctest: +SKIP
    (('chain', 'draw', 'component'), ('step',))
    """
    names = C.feature_names(X)             # a DataFrame's columns label the features
    Xa, k, covariance_type, prior, dtype = _check_common(X, n_components, covariance_type,
                                                         prior, dtype, missing)
    missing = _missing(Xa)
    C.check_choice("guide", guide, programs.GUIDES)
    num_steps = C.check_int("num_steps", num_steps, 1)
    num_samples = C.check_int("num_samples", num_samples, 1)
    if subsample_size is not None:
        subsample_size = C.check_int("subsample_size", subsample_size, 1)
        if subsample_size >= Xa.shape[0]:
            subsample_size = None
    learning_rate = C.check_positive_float("learning_rate", learning_rate)
    if rank is not None:
        rank = C.check_int("rank", rank, 1)
    key = C.check_key(key)
    k_em, k_run = jax.random.split(key)
    with C.x64_scope(dtype):
        Xj = jnp.asarray(Xa)
        program, sites, map_values = None, None, None
        if is_program(prior):
            rprior, program = None, prior
            mapp, _, init_values, sites = _program_start(Xj, k, covariance_type, prior, k_em,
                                                         init, em_kwargs, Xa.shape[0], 0.0, 1)
            map_values = init_values
        else:
            rprior = model_prior(Xj, k, prior, covariance_type,      # resolved once
                                 has_missing=_holes(Xa))
            mapp = _map_params(Xj, k, covariance_type, rprior, k_em, init, em_kwargs,
                               ("em",))
            init_values = {"weights": mapp.weights, "means": mapp.means,
                           "covariances": mapp.covariances}
        with programs.progress(progress_bar, num_steps, f"SVI ({guide})"):
            draws, losses, ll = programs.svi_program(
                Xj, rprior, init_values, k_run, jnp.asarray(learning_rate, Xj.dtype),
                n_components=k, covariance_type=covariance_type, guide=guide,
                num_steps=num_steps, subsample_size=subsample_size, num_samples=num_samples,
                progress_bar=bool(progress_bar), rank=rank, missing=missing, program=program)
            draws, losses, ll, mapp, map_values = jax.device_get((draws, losses, ll, mapp,
                                                                  map_values))
    idata = with_feature_names(
        to_inference_data(draws, ll, Xa, mapp, covariance_type, "svi",
                          extra_groups={"svi_loss": loss_dataset(losses)},
                          site_dims=sites, map_values=map_values), names)
    idata.posterior.attrs["guide"] = guide
    if not np.all(np.isfinite(losses[-max(1, num_steps // 10):])):
        warnings.warn("fit_svi: the loss is not finite at the end of optimisation; decrease "
                      "learning_rate.", UserWarning, stacklevel=2)
    if relabel:
        idata = relabel_draws(idata)
    return idata



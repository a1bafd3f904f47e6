r"""The EM driver: initialise, E-step, M-step, run — one copy, for every fitting API.

Pure functions of arrays. :func:`run` iterates with one `jax.lax.scan` (a `lax.cond` skips
the steps after convergence) or, for batches of fits, an early-exit `lax.while_loop` with
the same trace; :func:`fit` adds the data's centre and scale and ``n_init`` restarts as one
`vmap`. :func:`initialize` and :func:`update` are the pieces :func:`run` is made of, which
the streaming fit (:func:`bayes_gmm.fit_em_stream`) drives over chunks from the host.

Numerics: X is centred once by its (weighted) mean, and each component's scatter is
accumulated about that component's current mean (a shifted sum; the matrix families keep
one factor of each product centred, see their ``moments``), so float32 keeps small
components accurate under large offsets; covariances are never inverted — the E-step uses
Cholesky factors of the precisions, computed once per E-step.

M-step (``full``; Bishop PRML §9.2.2, Murphy MLPP §4.6.3). With responsibilities r_nk,
N_k = Σ_n r_nk, x̄_k = Σ_n r_nk x_n / N_k, S_k = Σ_n r_nk (x_n − x̄_k)(x_n − x̄_k)ᵀ:

* maximum likelihood: π_k = N_k / N, μ_k = x̄_k, Σ_k = S_k / N_k + reg_covar·I;
* MAP: π_k ∝ max(N_k + α_k − 1, 0), μ_k = (N_k x̄_k + κ₀ m₀)/(N_k + κ₀),
  Σ_k = (Ψ₀ + S_k + κ₀N_k/(κ₀+N_k) (x̄_k − m₀)(x̄_k − m₀)ᵀ) / (ν₀ + N_k + D + 2),
  the joint mode of the Normal-Inverse-Wishart posterior (each family's analogue is its
  ``ml_covariance`` / ``map_covariance``). ``reg_covar`` applies to maximum likelihood
  only: the prior is the regulariser under MAP.

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
from jax import lax
from jax.scipy.special import logsumexp

from . import missing
from .covariance import get_family
from .mixture import log_weights, weighted_log_prob
from .normalize import log_normalize
from .params import GMMParams
from .prior import GMMPrior, log_prior, pooled_covariance, resolve_prior
from .rows import default_batch_size, reduce_rows
from .seeding import INIT_METHODS, initial_stats

__all__ = ["SuffStats", "EMResult", "e_step", "m_step", "covariance_floor", "initial_stats",
           "initialize", "objective", "update", "loglik", "run", "fit", "fit_jit",
           "data_prior", "data_prior_jit", "pilot_target", "INIT_METHODS"]



class SuffStats(NamedTuple):
    """Weighted sufficient statistics, accumulated about ``shift`` (K, D).

    counts (K,); sum_x (K, D) = Σ r (x − shift); scatter (K, D, D) for matrix families or
    (K, D) for diagonal ones = Σ r (x − shift)(x − shift)ᵀ (or its diagonal);
    loglik: Σ_n w_n log p(x_n) at the parameters that produced r.
    """

    counts: jax.Array
    sum_x: jax.Array
    scatter: jax.Array
    loglik: jax.Array


class EMResult(NamedTuple):
    """Output of :func:`bayes_gmm.fit_em`.

    params: fitted `GMMParams`; objective: mean log-likelihood per sample (+ log prior / N
    under MAP) at ``params``; trace: (max_iter,) objective at each iteration's E-step,
    NaN after convergence; n_iter: iterations run; converged: bool.
    """

    params: GMMParams
    objective: jax.Array
    trace: jax.Array
    n_iter: jax.Array
    converged: jax.Array


# --- E-step ----------------------------------------------------------------------------

def _chunk_stats(Xc, wc, params, center, u):
    """One chunk's statistics about the current means; ``u``: the precision factors,
    computed once per E-step rather than once per chunk."""
    Xc = Xc - center
    lse, resp = log_normalize(weighted_log_prob(params, Xc, u=u), wc)
    sum_x, scatter = params.family.moments(Xc, resp, params.means)
    return SuffStats(jnp.sum(resp, axis=0), sum_x, scatter, jnp.sum(wc * lse))


def _chunk_stats_missing(Xc, wc, params, center):
    return SuffStats(*missing.chunk_stats(Xc - center, wc, params,
                                          log_weights(params.weights)))


def e_step(params: GMMParams, X, w, center, batch_size=None, has_missing=False) -> SuffStats:
    """Sufficient statistics at ``params`` (centred coordinates), about the current means.

    X: (N, D) raw rows; w: (N,) weights; center: (D,) subtracted from every row.
    Additive over row subsets (a sum of per-chunk statistics), which streaming relies on.
    ``has_missing``: X holds NaN holes, integrated out (:mod:`bayes_gmm.core.missing`:
    expected statistics given each row's observed entries) — True: any row order, masked
    D × D algebra per row; or the blocks of :func:`~bayes_gmm.core.missing.count_blocks`
    of rows sorted by their number of holes: c × c algebra per row with c holes.
    """
    if isinstance(has_missing, tuple):
        prec, logdet = missing.precision(params)
        total = None
        for start, stop, c in has_missing:
            Xb, wb = X[start:stop], w[start:stop]
            stats = (_complete_stats(params, Xb, wb, center, batch_size) if c == 0 else
                     reduce_rows(_chunk_stats_block, Xb, wb, batch_size, params, center, c,
                                 prec, logdet))
            total = stats if total is None else jax.tree.map(jnp.add, total, stats)
        return total
    if has_missing:
        return reduce_rows(_chunk_stats_missing, X, w, batch_size, params, center)
    return _complete_stats(params, X, w, center, batch_size)


def _complete_stats(params, X, w, center, batch_size):
    u = params.family.precision_cholesky(params.covariances)
    return reduce_rows(_chunk_stats, X, w, batch_size, params, center, u)


def _chunk_stats_block(Xc, wc, params, center, c, prec, logdet):
    return SuffStats(*missing.block_stats(Xc - center, wc, params,
                                          log_weights(params.weights), c, prec, logdet))


def _chunk_loglik(Xc, wc, params, center, has_missing):
    return jnp.sum(wc * logsumexp(weighted_log_prob(params, Xc - center, has_missing), axis=1))


def _chunk_loglik_block(Xc, wc, params, center, c, prec, logdet):
    wlp = (missing.block_log_prob(params, Xc - center, c, prec, logdet)
           + log_weights(params.weights)[None])
    return jnp.sum(wc * logsumexp(wlp, axis=1))


def loglik(params: GMMParams, X, w, center, batch_size=None, has_missing=False):
    """Σ_n w_n log p(x_n − center | params): a scalar (of the observed entries only when
    ``has_missing``, as :func:`e_step`)."""
    if isinstance(has_missing, tuple):
        prec, logdet = missing.precision(params)
        total = 0.0
        for start, stop, c in has_missing:
            Xb, wb = X[start:stop], w[start:stop]
            total = total + (
                reduce_rows(_chunk_loglik, Xb, wb, batch_size, params, center, False)
                if c == 0 else
                reduce_rows(_chunk_loglik_block, Xb, wb, batch_size, params, center, c,
                            prec, logdet))
        return total
    return reduce_rows(_chunk_loglik, X, w, batch_size, params, center, has_missing)


# --- M-step ----------------------------------------------------------------------------

def m_step(stats: SuffStats, shift, prev: GMMParams, prior: Optional[GMMPrior],
           reg_covar, floor) -> GMMParams:
    """Closed-form ML or MAP update from statistics accumulated about ``shift`` (K, D)."""
    fam = prev.family
    counts, sum_x, scatter = stats[:3]
    k, d = shift.shape
    eps = jnp.finfo(shift.dtype).eps
    total = jnp.sum(counts)
    empty = counts <= eps * total
    nk = counts + 10 * eps                                 # as scikit-learn: avoids 0/0
    off = sum_x / nk[:, None]                              # x̄_k − shift_k
    xbar = shift + off
    S = fam.centred_scatter(scatter, nk, off)
    if prior is None:
        # A component of weight exactly 0 (a padded one) stays at 0: it has no rows.
        live = jnp.where(prev.weights > 0, nk, 0.0)
        weights = live / jnp.sum(live)
        # An emptied component keeps its previous mean and covariance.
        means = jnp.where(empty[:, None], prev.means, xbar)
        cov = fam.ml_covariance(S, nk, reg_covar, prev.covariances, empty)
    else:
        alpha, m0, kappa, nu, psi = prior
        raw = jnp.maximum(counts + alpha - 1.0, 0.0)
        rsum = jnp.sum(raw)
        weights = jnp.where(rsum > 0, raw / jnp.where(rsum > 0, rsum, 1.0), nk / jnp.sum(nk))
        kn = counts + kappa
        means = (counts[:, None] * xbar + kappa * m0[None]) / kn[:, None]
        shrink = kappa * counts / kn                                       # κ₀N_k/(κ₀+N_k)
        cov = fam.map_covariance(S, counts, shrink, xbar - m0[None], nu, psi, total, k, d,
                                 prev.covariances)
    # A floor keeps Cholesky defined when a component is degenerate (identical rows, a
    # subspace) and reg_covar = 0: 10·eps of the component's own mean variance, plus the
    # absolute ``floor`` (see :func:`covariance_floor`). Relative to each component, so
    # clusters far apart (the global spread ≫ a cluster's) keep their own variances.
    return GMMParams(weights, means, fam.add_floor(cov, eps, floor, d), prev.covariance_type)


def covariance_floor(mean_variance, dtype):
    """Absolute covariance floor: eps²·(mean variance about the data's centre) + √tiny.

    eps²·variance is the variance of the data's own rounding at that spread (a float
    holds ``|x|`` to ``eps·|x|``), so no fit can resolve less; √tiny keeps identical rows (zero
    variance) finite. :func:`m_step` adds a further 10·eps of each component's variance.
    """
    fi = jnp.finfo(dtype)
    return jnp.asarray(fi.eps ** 2 * mean_variance + math.sqrt(float(fi.tiny)), dtype)


# --- initialisation --------------------------------------------------------------------

def initialize(key, X, w, center, scale, floor, prior, reg_covar, *, k, covariance_type,
               init, batch_size, n_active=None):
    """Parameters (in centred coordinates) after the initial assignment and one M-step;
    components from ``n_active`` on are padding, with weight exactly 0 throughout."""
    fam = get_family(covariance_type)
    d = X.shape[1]
    fam.check_features(d)
    stats, shift = initial_stats(key, X, w, center, k, fam, init, batch_size, n_active)
    # An initial cluster left empty takes the data's overall scale.
    n_live = k if n_active is None else n_active
    start = jnp.where(jnp.arange(k) < n_live, 1.0 / n_live, 0.0).astype(X.dtype)
    fallback = GMMParams(start, shift, fam.unit(k, d, X.dtype) * scale, covariance_type)
    return m_step(stats, shift, fallback, prior, reg_covar, floor)


# --- the driver ------------------------------------------------------------------------

def objective(loglik_sum, wsum, params, prior):
    """Mean log-likelihood per (weighted) row, plus log p(θ) / N under MAP."""
    obj = loglik_sum / wsum
    if prior is not None:
        obj = obj + log_prior(params, prior) / wsum
    return obj


def update(stats: SuffStats, params, prev_obj, prior, reg_covar, floor, wsum, tol):
    """One M-step from the E-step's statistics: (new params, objective at params, converged)."""
    obj = objective(stats.loglik, wsum, params, prior)
    new = m_step(stats, params.means, params, prior, reg_covar, floor)
    return new, obj, jnp.abs(obj - prev_obj) < tol


def run(key, X, w, center, scale, floor, prior, init_params, *, k, covariance_type, max_iter,
        tol, reg_covar, init, batch_size, early_exit=False, start_objective=None,
        n_active=None, has_missing=False) -> EMResult:
    """Initialise, then iterate E- and M-steps until ``|Δ objective| < tol`` or ``max_iter``.

    ``start_objective``: the objective the first iteration is compared with (−inf, or a
    warm start's previous objective, as scikit-learn's ``lower_bound_``).
    """
    wsum = jnp.sum(w)
    given = init_params if init_params is not None else GMMParams(None, None, None,
                                                                  covariance_type)
    if any(v is None for v in (given.weights, given.means, given.covariances)):
        # Holes are initialised at the column means; EM then integrates them out.
        filled = jnp.where(jnp.isnan(X), center, X) if has_missing else X
        params = initialize(key, filled, w, center, scale, floor, prior, reg_covar, k=k,
                            covariance_type=covariance_type, init=init, batch_size=batch_size,
                            n_active=n_active)
    else:
        params = given
    # Explicit initial values override the estimated ones (scikit-learn's *_init).
    params = GMMParams(
        params.weights if given.weights is None else given.weights,
        params.means if given.means is None else given.means - center,
        params.covariances if given.covariances is None else given.covariances,
        covariance_type)

    if isinstance(has_missing, tuple):
        # The E-step visits the rows in blocks of equal numbers of holes (initialisation
        # above saw them in the given order).
        X, w = missing.sort_rows(X, w)

    def do(carry):
        params, prev, _, n_iter = carry
        stats = e_step(params, X, w, center, batch_size, has_missing)
        new, obj, conv = update(stats, params, prev, prior, reg_covar, floor, wsum, tol)
        return (new, obj, conv, n_iter + 1), obj

    def step(carry, _):
        return lax.cond(carry[2], lambda c: (c, jnp.array(jnp.nan, X.dtype)), do, carry)

    start = -jnp.inf if start_objective is None else start_objective
    carry0 = (params, jnp.asarray(start, X.dtype), jnp.array(False), jnp.array(0, jnp.int32))
    if early_exit and max_iter > 0:
        # The same iterations as the scan, as a while loop writing the same trace. Under
        # vmap a batched lax.cond becomes a select that runs every step, whereas a batched
        # while loop stops when the slowest fit of the batch has converged (used by
        # fit_em_many, which maps over small groups of datasets).
        def body(c):
            carry, trace = c
            new, obj = do(carry)
            return new, lax.dynamic_update_index_in_dim(trace, obj, carry[3], 0)

        trace0 = jnp.full((max_iter,), jnp.nan, X.dtype)
        (params, _, converged, n_iter), trace = lax.while_loop(
            lambda c: ~c[0][2] & (c[0][3] < max_iter), body, (carry0, trace0))
    else:
        (params, _, converged, n_iter), trace = lax.scan(step, carry0, None, length=max_iter)
    obj = objective(loglik(params, X, w, center, batch_size, has_missing), wsum, params,
                    prior)
    params = params._replace(means=params.means + center)
    return EMResult(params, obj, trace, n_iter, converged)


def data_moments(X, w, batch_size, has_missing=False):
    """(centre (D,), mean variance about it + √tiny, covariance floor) of weighted rows
    (over each column's observed entries when X has NaN holes)."""
    dt = X.dtype
    if has_missing:
        center, second = missing.moments(X, w)
        center = lax.stop_gradient(center)
        return (center, jnp.mean(second) + jnp.sqrt(jnp.finfo(dt).tiny),
                covariance_floor(jnp.mean(second), dt))
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
    return center, scale, covariance_floor(jnp.mean(second), dt)


def fit(X, key, prior, sample_weight, init_params, tol, reg_covar, start_objective=None,
        n_active=None, *, k, covariance_type, max_iter, n_init, init, batch_size,
        early_exit=False, has_missing=False) -> EMResult:
    """EM on one dataset with ``n_init`` restarts (one vmap); the best objective wins.

    ``start_objective``: see :func:`run` (a warm start's previous objective, or None).
    ``has_missing``: X holds NaN holes, integrated out (observed-data likelihood).
    ``n_active``: fit ``n_active`` ≤ k components (a traced int32) in a program compiled
    for k: the others are padding with weight exactly 0, which take no rows and leave the
    objective as it is (maximum likelihood only), so every K ≤ k shares one program. The
    padded components come last; :func:`~bayes_gmm.core.params.first_components` drops them.
    """
    dt = X.dtype
    w = jnp.ones((X.shape[0],), dt) if sample_weight is None else sample_weight.astype(dt)
    center, scale, floor = data_moments(X, w, batch_size, has_missing)
    if prior is not None:
        prior = data_prior(prior, X, k, covariance_type, w, batch_size, has_missing)
        prior = prior._replace(mean_prior=prior.mean_prior - center)
    # Restarts run as one vmap: an early-exit while loop there stops when the slowest
    # restart has converged, where the scan's batched cond would run all max_iter steps.
    early_exit = early_exit or n_init > 1
    one = partial(run, X=X, w=w, center=center, scale=scale, floor=floor, prior=prior,
                  init_params=init_params, k=k, covariance_type=covariance_type,
                  max_iter=max_iter, tol=jnp.asarray(tol, dt),
                  reg_covar=jnp.asarray(reg_covar, dt), init=init, batch_size=batch_size,
                  early_exit=early_exit, start_objective=start_objective, n_active=n_active,
                  has_missing=has_missing)
    if n_init == 1:
        return one(key)
    results = jax.vmap(one)(jax.random.split(key, n_init))
    obj = jnp.where(jnp.isfinite(results.objective), results.objective, -jnp.inf)
    best = jnp.argmax(obj)
    return jax.tree.map(lambda a: a[best], results)


#: :func:`fit`, compiled once per static configuration.
fit_jit = jax.jit(fit, static_argnames=("k", "covariance_type", "max_iter", "n_init", "init",
                                        "batch_size", "early_exit", "has_missing"))


def fit_ks(X, keys, n_active, sample_weight, tol, reg_covar, *, k, covariance_type, max_iter,
           n_init, init, batch_size, has_missing, group) -> EMResult:
    """Maximum-likelihood fits of several K ≤ k in one program: fit ``i`` is
    :func:`fit` with ``keys[i]`` and ``n_active[i]`` (M,), padded to k components.

    ``group`` = 1 runs them as a compiled loop, each stopping at its own convergence (the
    CPU choice, as for many datasets); ``group`` > 1 vmaps groups of that many (an
    accelerator's). Returns the M results stacked on a leading axis. ``keys`` may be one
    key, shared by every fit.
    """
    if keys.ndim == 0:
        keys = jnp.broadcast_to(keys, n_active.shape)

    def one(args):
        key, na = args
        return fit(X, key, None, sample_weight, None, tol, reg_covar, None, na, k=k,
                   covariance_type=covariance_type, max_iter=max_iter, n_init=n_init,
                   init=init, batch_size=batch_size, has_missing=has_missing)
    return lax.map(one, (keys, n_active), batch_size=group if group > 1 else None)


#: :func:`fit_ks`, compiled once per static configuration (and not per K).
fit_ks_jit = jax.jit(fit_ks, static_argnames=("k", "covariance_type", "max_iter", "n_init",
                                              "init", "batch_size", "has_missing", "group"))


#: The maximum-likelihood pilot fit behind the default covariance scale of `GMMPrior`
#: (:func:`pilot_target`): restarts, iteration cap and seed. The seed is fixed so that the
#: default prior is a function of the data alone: MAP-EM, the NumPyro model and a saved
#: model resolve the same prior from the same X.
PILOT_N_INIT, PILOT_MAX_ITER, PILOT_SEED = 5, 300, 0


def pilot_tol(dtype) -> float:
    """The pilot fit's ``tol``: max(1e-12, 100·eps) of the dtype."""
    return max(1e-12, 100.0 * float(jnp.finfo(dtype).eps))


def pilot_target(X, k: int, covariance_type: str, sample_weight=None, batch_size=None,
                 has_missing=False):
    """W = Σ_k π_k Σ_k (D, D) of a maximum-likelihood fit of X: the default prior's target.

    K components of the same covariance type, ``PILOT_N_INIT`` k-means++ restarts from
    ``PILOT_SEED``, ``reg_covar`` 1e-6 of the data's mean variance and ``tol``
    max(1e-12, 100·eps) (scale-free, so the prior follows the data's units). Traceable; on
    concrete data it runs the compiled maximum-likelihood program of those settings.
    """
    dt = X.dtype
    if batch_size is None:
        batch_size = default_batch_size(X.shape[0], k, X.shape[1])
    w = jnp.ones((X.shape[0],), dt) if sample_weight is None else sample_weight.astype(dt)
    _, scale, _ = data_moments(X, w, batch_size, has_missing)
    tol = pilot_tol(dt)
    res = fit_jit(X, jax.random.key(PILOT_SEED), None, w, None, jnp.asarray(tol, dt),
                  1e-6 * scale, k=k, covariance_type=covariance_type,
                  max_iter=PILOT_MAX_ITER, n_init=PILOT_N_INIT, init="k-means++",
                  batch_size=batch_size, has_missing=has_missing)
    return pooled_covariance(res.params)


def data_prior(prior: GMMPrior, X, k: int, covariance_type: str, sample_weight=None,
               batch_size=None, has_missing=False) -> GMMPrior:
    """The prior resolved from data X (N, D): :func:`~bayes_gmm.core.prior.resolve_prior`
    with the default covariance scale's target from :func:`pilot_target` when
    ``covariance_prior`` is None. Traceable. With NaN holes (``has_missing``) the mean is
    each column's observed mean and the pilot fit integrates the holes out."""
    target = None
    if prior.covariance_prior is None:
        target = pilot_target(X, k, covariance_type, sample_weight, batch_size, has_missing)
    if has_missing:
        w = (jnp.ones((X.shape[0],), X.dtype) if sample_weight is None
             else sample_weight.astype(X.dtype))
        # Holes at the observed column means: the weighted mean is then the observed one.
        X = jnp.where(jnp.isnan(X), missing.moments(X, w)[0], X)
    return resolve_prior(prior, X, k, covariance_type, sample_weight, target=target)


#: :func:`data_prior` as one compiled program (the data's moments, the pilot fit and the
#: resolution) for concrete data: run op by op, its small steps compiled a program each,
#: about a second of a first MAP fit.
data_prior_jit = jax.jit(data_prior, static_argnames=("k", "covariance_type", "batch_size",
                                                      "has_missing"))

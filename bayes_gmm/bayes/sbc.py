r"""Simulation-based calibration (SBC) of the package's own Bayesian mixture.

Talts, Betancourt, Simpson, Vehtari & Gelman (2018), *Validating Bayesian inference
algorithms with simulation-based calibration*, arXiv:1804.06788. For r = 1..R:

1. draw θ̃ʳ ~ p(θ) from the (fixed) prior and data yʳ ~ p(y | θ̃ʳ);
2. fit the posterior p(θ | yʳ) with the same prior (NUTS or SVI) and keep L draws θ₁..θ_L;
3. for every scalar summary f, the rank  rʳ = #{l : f(θ_l) < f(θ̃ʳ)} ∈ {0, …, L}.

If the inference is exact, every rank is uniform on {0, …, L}; a χ² test of the binned
ranks is the check, a rank histogram the picture. A mixture is invariant to relabelling
its components, so the summaries are label-invariant: the order statistics over
components of the weights, of each feature's means and of each feature's variances,
and the log-likelihood Σₙ log p(yₙ | θ).

In SBC the prior must not depend on the data: ``None`` fields of the `GMMPrior` take
the *standardised* defaults of :func:`bayes_gmm.core.prior.standard_prior` (m₀ = 0, unit
covariance scale), never data moments.

Compilation happens once per configuration: one jitted, ``vmap``-ed program runs warmup
and sampling for a batch of replications, and it is reused for every batch, so hundreds
of replications run in one process at constant memory.
"""

from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import _checks as C
from ..core import mixture
from ..core.covariance import get_family
from ..core.params import GMMParams
from ..core.program import StaticProgram, is_program, mixture_draws
from .model import gmm_model, model_prior
from .calibration import chi2_uniformity
from .programs import make_guide, run_nuts, run_svi, unvalidated

__all__ = ["sbc"]

METHODS = ("nuts", "svi")


# --- label-invariant summaries -----------------------------------------------------------

def _summary_names(k, d, covariance_type):
    names = [f"weights[{i}]" for i in range(k)]
    names += [f"means[{i},{j}]" for i in range(k) for j in range(d)]
    if get_family(covariance_type).shared:
        names += [f"variances[{j}]" for j in range(d)]
    else:
        names += [f"variances[{i},{j}]" for i in range(k) for j in range(d)]
    return names + ["log_likelihood"]


def _summaries(weights, means, covariances, X, covariance_type, missing="error"):
    """Label-invariant scalars of one θ: (Q,). Order statistics over components."""
    params = GMMParams(weights, means, covariances, covariance_type)
    k, d = means.shape
    var = params.family.variances(covariances, k, d)                        # (K, D)
    var = var[0] if params.family.shared else jnp.sort(var, axis=0).ravel()
    loglik = jnp.sum(mixture.log_prob(params, X, has_missing=missing == "marginalize"))
    return jnp.concatenate([jnp.sort(weights), jnp.sort(means, axis=0).ravel(), var,
                            loglik[None]])


def _ranks(key, draws, truth):
    """Rank of ``truth`` (Q,) among ``draws`` (L, Q), ties broken uniformly at random."""
    less = jnp.sum(draws < truth[None], axis=0)
    ties = jnp.sum(draws == truth[None], axis=0)
    u = jax.random.uniform(key, truth.shape)
    return less + jnp.floor(u * (ties + 1)).astype(less.dtype)


# --- compiled fits ---------------------------------------------------------------------

def _model_kwargs(prior, covariance_type, missing="error"):
    return dict(prior=prior, covariance_type=covariance_type, missing=missing)


@functools.lru_cache(maxsize=8)
def _prior_sampler(n_components, n_features, n_samples, covariance_type, n_replications):
    from numpyro.infer import Predictive

    @jax.jit
    def draw(key, prior):
        out = Predictive(gmm_model, num_samples=n_replications)(
            key, None, n_components, n_samples=n_samples, n_features=n_features,
            **_model_kwargs(prior, covariance_type))
        return out["weights"], out["means"], out["covariances"], out["obs"]
    return draw


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _potential(z, X, prior, n_components, covariance_type, missing):
    """−log p(θ, X) in unconstrained coordinates (with the Jacobian). Jitted so that the
    model is traced once, not at every NUTS call site."""
    from numpyro.infer.util import potential_energy

    return potential_energy(gmm_model, (X, n_components),
                            _model_kwargs(prior, covariance_type, missing), z)


def _potential_and_constrain(n_components, n_features, n_samples, covariance_type, prior,
                             missing):
    """(dim, unravel, potential_fn_gen, constrain_gen) of the model's unconstrained space.

    The layout comes from an abstract trace (``jax.eval_shape``): no model evaluation and
    no compilation happen here.
    """
    from numpyro import handlers
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer.util import constrain_fn

    def unconstrained_sites(X, prior):
        tr = handlers.trace(handlers.seed(gmm_model, jax.random.key(0))).get_trace(
            X, n_components, **_model_kwargs(prior, covariance_type, missing))
        return {name: biject_to(site["fn"].support).inv(site["value"])
                for name, site in tr.items()
                if site["type"] == "sample" and not site["is_observed"]}

    X0 = jax.ShapeDtypeStruct((n_samples, n_features), jnp.zeros(()).dtype)
    shapes = jax.eval_shape(unconstrained_sites, X0, prior)
    template = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    flat, unravel = ravel_pytree(template)

    def potential_fn_gen(X, k, **kw):
        return lambda z: _potential(z, X, kw["prior"], k, kw["covariance_type"],
                                    kw["missing"])

    def constrain_gen(X, k, **kw):
        return lambda z: constrain_fn(gmm_model, (X, k), kw, z)

    return flat.shape[0], unravel, potential_fn_gen, constrain_gen


@functools.lru_cache(maxsize=8)
def _nuts_batch(n_components, n_features, n_samples, covariance_type, num_warmup,
                num_samples, thin, target_accept_prob, max_tree_depth, prior_key,
                missing="error"):
    """A jitted, vmapped (keys (B,), X (B, N, D), truths, prior) -> (ranks, divergences)."""
    from numpyro.infer.hmc import hmc

    _, prior = prior_key
    dim, unravel, pe_gen, post_gen = _potential_and_constrain(
        n_components, n_features, n_samples, covariance_type, prior, missing)
    init_kernel, sample_kernel = hmc(potential_fn_gen=pe_gen, algo="NUTS")
    k = n_components

    def one(key, X, truth, prior):
        kw = _model_kwargs(prior, covariance_type, missing)
        k_init, k_nuts, k_rank = jax.random.split(key, 3)
        # Start where numpyro's init_to_uniform would: U(-2, 2) in unconstrained space.
        z0 = unravel(jax.random.uniform(k_init, (dim,), minval=-2.0, maxval=2.0))
        zs, diverging = run_nuts(
            init_kernel, sample_kernel, z0, k_nuts, num_warmup, num_samples,
            lambda s: (s.z, s.diverging),
            init_kwargs=dict(target_accept_prob=target_accept_prob,
                             max_tree_depth=max_tree_depth, model_args=(X, k), model_kwargs=kw),
            kernel_kwargs=dict(model_args=(X, k), model_kwargs=kw))
        zs = jax.tree.map(lambda a: a[::thin], zs)
        post = _mixture(jax.vmap(post_gen(X, k, **kw))(zs), prior, k, X.shape[-1])
        draws = jax.vmap(lambda w, m, c: _summaries(w, m, c, X, covariance_type, missing))(
            post["weights"], post["means"], post["covariances"])
        return _ranks(k_rank, draws, truth), jnp.sum(diverging)

    return jax.jit(jax.vmap(unvalidated(one), in_axes=(0, 0, 0, None)))


@functools.lru_cache(maxsize=8)
def _svi_batch(n_components, n_features, n_samples, covariance_type, num_steps,
               num_draws, learning_rate, prior_key, missing="error"):
    """A jitted, vmapped SVI fit (AutoMultivariateNormal, Adam) -> (ranks, final loss)."""
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.optim import Adam

    _, prior = prior_key
    k = n_components

    def one(key, X, truth, prior):
        # The guide is made inside the traced program (as fit_svi's): its prototype is set
        # by tracing the model, where an eager first svi.init compiled ~350 one-operation
        # programs (9 of an SBC run's 12 s).
        guide = make_guide("auto_mvn")
        svi = SVI(gmm_model, guide, Adam(learning_rate), Trace_ELBO())
        kw = _model_kwargs(prior, covariance_type, missing)
        k_init, k_draw, k_rank = jax.random.split(key, 3)
        state = svi.init(k_init, X, k, **kw)
        params, losses = run_svi(svi, state, num_steps, (X, k), kw)
        post = _mixture(guide.sample_posterior(k_draw, params, X, k,
                                               sample_shape=(num_draws,), **kw),
                        prior, k, X.shape[-1])
        draws = jax.vmap(lambda w, m, c: _summaries(w, m, c, X, covariance_type, missing))(
            post["weights"], post["means"], post["covariances"])
        return _ranks(k_rank, draws, truth), losses[-1]

    return jax.jit(jax.vmap(unvalidated(one), in_axes=(0, 0, 0, None)))


def _mixture(draws, prior, k, d):
    """Posterior draws with the mixture's parameters (a program's, through the program)."""
    if not is_program(prior):
        return draws
    return mixture_draws({n: v for n, v in draws.items()
                          if n not in ("weights", "means", "covariances")
                          or n in _program_sites(prior, k, d)}, prior, k, d)


@functools.lru_cache(maxsize=16)
def _program_sites(program, k, d):
    from ..core.program import latent_sites, run_program
    return frozenset(latent_sites(run_program(program, k, d)[1]))


def _resolve_fixed_prior(prior, n_components, n_features, covariance_type):
    """A fully specified prior of arrays; ``None`` fields take data-independent defaults."""
    C.check_sampler(covariance_type)
    prior = C.check_prior(prior, n_components, n_features, covariance_type)
    if is_program(prior):
        return StaticProgram(prior)          # data-free by construction; jit-able
    return model_prior(None, n_components, prior, covariance_type, n_features)


def _prior_layout(prior):
    if is_program(prior):
        return ("program", prior)
    return tuple((np.shape(v), str(jnp.asarray(v).dtype)) for v in prior)


class _HashablePrior(tuple):
    """(layout, prior) whose hash and equality only look at the layout: compiled programs
    are cached per prior *layout*, the values enter them as arguments."""

    def __hash__(self):
        return hash(self[0])

    def __eq__(self, other):
        return isinstance(other, _HashablePrior) and self[0] == other[0]


def _check_positive_int(name, value, minimum=1):
    return C.check_int(name, value, minimum)


def sbc(n_replications=100, n_components=2, n_features=1, n_samples=30, *, key,
        prior=None, fit_prior=None, covariance_type="full", method="nuts", num_warmup=200,
        num_samples=200, thin=1, n_bins=None, replications_per_batch=None,
        target_accept_prob=0.8, max_tree_depth=8, num_steps=2000, learning_rate=1e-2,
        missing_fraction=0.0):
    r"""Simulation-based calibration of the Bayesian Gaussian mixture.

    Parameters
    ----------
    n_replications : int R, simulated datasets (each: one prior draw, one posterior fit).
    n_components, n_features, n_samples : K, D and N of each simulated dataset.
    key : `jax.random.key` (an int seed is accepted).
    prior : `GMMPrior` the parameters are drawn from; ``None`` fields take the standardised,
        data-independent defaults (m₀ = 0, unit covariance scale).
    fit_prior : `GMMPrior` used for the posterior (default: ``prior``). A different one
        gives a deliberately mis-specified SBC, whose ranks should *not* be uniform.
    covariance_type : "full" | "tied" | "diag" | "spherical".
    method : "nuts" (one chain per replication) or "svi" (AutoMultivariateNormal guide).
    num_warmup, num_samples : NUTS warmup and kept iterations.
    thin : keep every ``thin``-th NUTS draw (reduces autocorrelation; L = num_samples//thin).
        For SVI, L = num_samples // thin independent guide draws.
    n_bins : bins of the χ² test (default: about R/5, at most 20 and at most L+1).
    replications_per_batch : replications per compiled, vmapped call (default:
        min(R, 50)); the same program is reused for every batch, padded at the end.
    target_accept_prob, max_tree_depth : NUTS settings.
    num_steps, learning_rate : SVI settings (Adam steps and step size).
    missing_fraction : share of the simulated entries removed completely at random (every
        row keeps at least one) before the fit, which then integrates them out
        (``missing="marginalize"``): calibrates the posterior given incomplete data. The
        ``log_likelihood`` quantity is then the observed-data one.

    Returns
    -------
    xarray.Dataset with
        ``ranks`` (replication, quantity) int in 0..L;
        ``true_value`` (replication, quantity) the summaries of the simulated θ̃;
        ``chi2``, ``p_value`` (quantity): χ² uniformity test of the binned ranks;
        ``counts`` (bin, quantity) the rank histogram;
        ``n_divergent`` (replication) divergent transitions (NUTS) or ``final_loss``
        (replication) the last ELBO loss (SVI);
        attrs: method, n_draws (L), n_bins, and the settings.
        Quantities: ``weights[i]``, ``means[i,j]``, ``variances[i,j]`` (i-th smallest over
        components, feature j; ``variances[j]`` for tied) and ``log_likelihood``.

    Examples
    --------
    Skipped when the docstrings run: 50 NUTS fits take minutes (tests/test_sbc.py runs
    small ones).

    >>> ds = sbc(50, key=jax.random.key(0), num_warmup=100, num_samples=99)  # doctest: +SKIP
    >>> ds.p_value.min() > 0.001                                             # doctest: +SKIP
    >>> plot_rank_histogram(ds)                                               # doctest: +SKIP

    References
    ----------
    Talts et al. (2018), arXiv:1804.06788.
    """
    import xarray as xr

    n_replications = _check_positive_int("n_replications", n_replications, 2)
    k = C.check_n_components(n_components)
    d = _check_positive_int("n_features", n_features)
    n = _check_positive_int("n_samples", n_samples)
    covariance_type = C.check_covariance_type(covariance_type)
    C.check_choice("method", method, METHODS)
    num_warmup = _check_positive_int("num_warmup", num_warmup, 0)
    num_samples = _check_positive_int("num_samples", num_samples)
    thin = _check_positive_int("thin", thin)
    n_draws = num_samples // thin
    if n_draws < 1:
        raise ValueError(f"num_samples // thin must be >= 1; got num_samples={num_samples}, "
                         f"thin={thin}")
    if n_bins is None:
        n_bins = int(max(2, min(20, n_replications // 5, n_draws + 1)))
    n_bins = _check_positive_int("n_bins", n_bins, 2)
    if n_bins > n_draws + 1:
        raise ValueError(f"n_bins must be <= L + 1 = {n_draws + 1} (the number of rank "
                         f"values); got {n_bins}")
    batch_size = min(n_replications, 50) if replications_per_batch is None else \
        _check_positive_int("replications_per_batch", replications_per_batch)
    batch_size = min(batch_size, n_replications)
    if not isinstance(target_accept_prob, numbers.Real) or not 0 < target_accept_prob < 1:
        raise ValueError(f"target_accept_prob must be in (0, 1); got {target_accept_prob!r}")
    max_tree_depth = _check_positive_int("max_tree_depth", max_tree_depth)
    num_steps = _check_positive_int("num_steps", num_steps)
    learning_rate = C.check_positive_float("learning_rate", learning_rate)
    key = C.check_key(key)
    missing_fraction = float(missing_fraction)
    if not 0.0 <= missing_fraction < 1.0:
        raise ValueError(f"missing_fraction must be in [0, 1); got {missing_fraction}")
    missing = "marginalize" if missing_fraction > 0 else "error"

    sim_prior = _resolve_fixed_prior(prior, k, d, covariance_type)
    post_prior = sim_prior if fit_prior is None else _resolve_fixed_prior(
        fit_prior, k, d, covariance_type)

    k_sim, k_fit = jax.random.split(key)
    w, mu, cov, X = _prior_sampler(k, d, n, covariance_type, n_replications)(k_sim, sim_prior)
    if missing_fraction > 0:
        holes = jax.random.uniform(jax.random.fold_in(k_sim, 1), X.shape) < missing_fraction
        holes = holes.at[..., 0].set(holes[..., 0] & ~jnp.all(holes, axis=-1))
        X = jnp.where(holes, jnp.nan, X)
    truth = jax.jit(jax.vmap(lambda w, m, c, x: _summaries(w, m, c, x, covariance_type,
                                                           missing)))(w, mu, cov, X)
    fit_keys = jax.random.split(k_fit, n_replications)

    pkey = _HashablePrior((_prior_layout(post_prior), post_prior))
    if method == "nuts":
        run = _nuts_batch(k, d, n, covariance_type, num_warmup, num_samples, thin,
                          float(target_accept_prob), max_tree_depth, pkey, missing)
    else:
        run = _svi_batch(k, d, n, covariance_type, num_steps, n_draws, float(learning_rate),
                         pkey, missing)

    ranks, extra = [], []
    for start in range(0, n_replications, batch_size):
        idx = np.minimum(np.arange(start, start + batch_size), n_replications - 1)
        r, e = run(fit_keys[idx], X[idx], truth[idx], post_prior)
        keep = min(batch_size, n_replications - start)
        r, e = jax.device_get((r, e))
        ranks.append(np.asarray(r)[:keep])
        extra.append(np.asarray(e)[:keep])
    ranks = np.concatenate(ranks).astype(np.int64)
    extra = np.concatenate(extra)

    chi2, p, counts = chi2_uniformity(ranks, n_draws, n_bins)
    names = _summary_names(k, d, covariance_type)
    data_vars = {
        "ranks": (("replication", "quantity"), ranks),
        "true_value": (("replication", "quantity"), np.asarray(truth)),
        "chi2": (("quantity",), chi2),
        "p_value": (("quantity",), p),
        "counts": (("bin", "quantity"), counts),
    }
    if method == "nuts":
        data_vars["n_divergent"] = (("replication",), extra.astype(np.int64))
    else:
        data_vars["final_loss"] = (("replication",), extra)
    return xr.Dataset(
        data_vars,
        coords={"replication": np.arange(n_replications), "quantity": names,
                "bin": np.arange(n_bins)},
        attrs=dict(method=method, n_draws=n_draws, n_bins=n_bins,
                   n_components=k, n_features=d, n_samples=n,
                   covariance_type=covariance_type, num_warmup=num_warmup,
                   num_samples=num_samples, thin=thin,
                   num_steps=num_steps if method == "svi" else 0,
                   missing_fraction=missing_fraction,
                   mis_specified=int(fit_prior is not None)))

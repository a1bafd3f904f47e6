r"""Prior programs: the user writes the prior, the package does the mixture.

A *prior program* is a Python function ``prior_fn(n_components, n_features)`` that samples
NumPyro sites of its own choosing (hyperpriors included; constants are allowed) and returns
a :class:`~bayes_gmm.core.params.GMMParams` of the chosen covariance type. The NumPyro model
(:func:`bayes_gmm.gmm_model`) calls it and adds the mixture likelihood; ``GMMPrior`` is the
built-in program (:func:`builtin_program`), so there is one path.

MAP for a program (:func:`map_fit`) has no closed-form M-step. It is a generalised EM whose
M-step maximises the expected complete-data log posterior

    Q(u) = Σ_k [N_k log π_k − ½ N_k (D log 2π + log|Σ_k|) − ½ tr(Σ_k⁻¹ M_k)] + log p(θ(u)),

M_k = Σ_n r_nk (x_n − μ_k)(x_n − μ_k)ᵀ, over the program's sites in NumPyro's
unconstrained space u (BFGS, from the previous u, kept only if Q rose), so the marginal log
posterior never decreases (Dempster, Laird & Rubin 1977, §3). Q needs only each component's
N_k, Σ r x and Σ r x xᵀ, so an M-step costs nothing in N. The first E-step is the
maximum-likelihood EM solution's, which starts every program where the data put the
components. EM converges linearly; the last step is a direct BFGS on the marginal log
posterior from the GEM point (superlinear there), again kept only if it rose. The log prior
is the sum of the sites' log densities at θ (no Jacobian), as ``log_prior`` for GMMPrior:
the model's log joint at θ is N × the objective.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree
from jax.scipy.optimize import minimize
from numpyro import handlers
from numpyro.distributions.transforms import biject_to

from . import mixture
from .params import GMMParams
from .prior import GMMPrior, prior_distributions

__all__ = ["is_program", "builtin_program", "run_program", "latent_sites", "evaluate",
           "map_fit", "ProgramFit", "site_dims", "StaticProgram", "mixture_draws",
           "prior_draws"]


def is_program(prior) -> bool:
    """A prior program: a callable that is not a `GMMPrior`."""
    return callable(prior) and not isinstance(prior, GMMPrior)


@jax.tree_util.register_pytree_node_class
class StaticProgram:
    """A prior program as a pytree with no leaves (the function is static data), so it
    passes through ``jit`` and ``vmap`` where a `GMMPrior` of arrays would."""

    def __init__(self, fn):
        self.fn = fn.fn if isinstance(fn, StaticProgram) else fn

    def __call__(self, n_components, n_features):
        return self.fn(n_components, n_features)

    def __hash__(self):
        return hash(self.fn)

    def __eq__(self, other):
        return isinstance(other, StaticProgram) and other.fn is self.fn

    def tree_flatten(self):
        return (), self.fn

    @classmethod
    def tree_unflatten(cls, fn, _):
        return cls(fn)


def mixture_draws(draws: dict, program, k: int, d: int) -> dict:
    """``weights``, ``means`` and ``covariances`` of each draw {site: (S, ...)} of a
    program's latent sites (evaluated through the program), beside those sites."""
    def params_of(v):
        p, _ = evaluate(program, k, d, v)
        return {"weights": p.weights, "means": p.means, "covariances": p.covariances}
    return {**draws, **jax.lax.map(params_of, draws, batch_size=256)}


def builtin_program(resolved: GMMPrior, covariance_type: str):
    """``GMMPrior`` (resolved to arrays) as a prior program: the sites ``weights``,
    ``covariances`` and ``means`` of :func:`bayes_gmm.core.prior.prior_distributions`."""
    import numpyro

    def program(n_components, n_features):
        w_dist, cov_dist, mean_dist = prior_distributions(resolved, n_components, n_features,
                                                          covariance_type)
        weights = numpyro.sample("weights", w_dist)
        covariances = numpyro.sample("covariances", cov_dist)
        means = numpyro.sample("means", mean_dist(covariances))
        return GMMParams(weights, means, covariances, covariance_type)
    return program


def prior_draws(program, k, d, key, n) -> dict:
    """``n`` draws of a program's latent sites {name: (n, ...)} (starts for its MAP)."""
    def one(kk):
        return {nm: s["value"] for nm, s in latent_sites(run_program(program, k, d, kk)[1]).items()}
    return jax.vmap(one)(jax.random.split(key, n))


def run_program(program, k, d, key=0, values=None):
    """(returned value, trace) of one run: sites drawn with ``key``, or set to ``values``."""
    with handlers.trace() as tr, handlers.seed(rng_seed=key):
        if values is None:
            out = program(k, d)
        else:
            with handlers.substitute(data=values):
                out = program(k, d)
    return out, tr


def latent_sites(trace) -> dict:
    """The sampled (not observed) sites of a program's trace, by name."""
    return {n: s for n, s in trace.items()
            if s["type"] == "sample" and not s.get("is_observed", False)}


def evaluate(program, k, d, values):
    """(GMMParams, log prior) at constrained site ``values``: Σ of the sites' log densities
    (scaled as NumPyro scales them), without a Jacobian."""
    out, tr = run_program(program, k, d, values=values)
    lp = 0.0
    for s in latent_sites(tr).values():
        term = jnp.sum(s["fn"].log_prob(s["value"]))
        lp = lp + (term if s.get("scale") is None else s["scale"] * term)
    return out, lp


def _to_u(transforms, values):
    return {n: transforms[n].inv(v) for n, v in values.items()}


def _to_values(transforms, u):
    return {n: transforms[n](v) for n, v in u.items()}


def _suff_stats(params, X):
    r = mixture.responsibilities(params, X)                                 # (N, K)
    return jnp.sum(r, 0), r.T @ X, jnp.einsum("nk,nd,ne->kde", r, X, X)


def _complete_loglik(params: GMMParams, stats):
    nk, s1, s2 = stats
    k, d = params.means.shape
    cov = params.family.to_full(params.covariances, k, d)
    chol = jnp.linalg.cholesky(cov)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
    mu = params.means
    m = (s2 - s1[:, :, None] * mu[:, None, :] - mu[:, :, None] * s1[:, None, :]
         + nk[:, None, None] * mu[:, :, None] * mu[:, None, :])
    tr = jnp.trace(jax.scipy.linalg.cho_solve((chol, True), m), axis1=-2, axis2=-1)
    logw = jnp.where(nk > 0, nk * jnp.log(jnp.where(nk > 0, params.weights, 1.0)), 0.0)
    return jnp.sum(logw - 0.5 * nk * (d * math.log(2 * math.pi) + logdet) - 0.5 * tr)


class ProgramFit(NamedTuple):
    """MAP of a prior program: its site values, the `GMMParams`, the objective and trace
    (mean log posterior per row), iterations and convergence."""

    values: dict
    params: GMMParams
    objective: jax.Array
    trace: jax.Array
    n_iter: jax.Array
    converged: jax.Array


def map_fit(program, X, k, init_values, start_params, *, max_iter, tol, polish=True):
    """MAP of ``program`` by generalised EM then a direct polish (module docstring).

    ``init_values``: constrained site values to start the M-step from — one set, or
    several stacked on a leading axis (e.g. draws from the prior), of which the one with
    the highest expected complete-data log posterior under the first E-step starts;
    ``start_params``: the `GMMParams` whose responsibilities make the first E-step (the
    maximum-likelihood EM solution). Returns a :class:`ProgramFit`; ``objective`` and
    ``trace`` are the mean log posterior per row, and ``trace`` (max_iter + 2,) never
    decreases (NaN past the last step; ``n_iter`` counts its points after the first).
    ``converged`` is True only when the objective settled within ``tol`` on an accepted
    step; a step that would lower it (rounding) stops the fit unconverged.
    ``polish=False`` leaves out the final direct BFGS, ``max_iter=0`` the GEM steps
    (``benchmarks/bench_program_map.py`` measures the three ways). Compiled once per
    (program, K, data shape and dtype, options).
    """
    n, d = X.shape
    names = tuple(sorted(init_values))
    run, to_u, back = _compiled(program, k, d, names, max_iter, float(tol), bool(polish))
    u0s = jax.vmap(to_u)(init_values) if _stacked(program, k, d, init_values) \
        else to_u(init_values)[None]
    u, obj, trace, it, conv = run(X, u0s, _suff_stats(start_params, X))
    values = back(u)
    params, _ = evaluate(program, k, d, values)
    n_points = jnp.sum(jnp.isfinite(trace)) - 1
    return ProgramFit(values, params, obj, trace, n_points, conv)


def _stacked(program, k, d, values):
    """Whether ``values`` holds several starts on a leading axis."""
    _, tr = run_program(program, k, d)
    sites = latent_sites(tr)
    name = next(iter(values))
    return jnp.ndim(values[name]) == jnp.ndim(sites[name]["value"]) + 1


@functools.lru_cache(maxsize=32)
def _compiled(program, k, d, names, max_iter, tol, polish):
    """(jitted run(X, u0s, stats0), u ↦ flat u, flat u ↦ values) for one configuration."""
    _, tr0 = run_program(program, k, d)
    sites = latent_sites(tr0)
    transforms = {nm: biject_to(sites[nm]["fn"].support) for nm in names}
    template = _to_u(transforms, {nm: sites[nm]["value"] for nm in names})
    _, unravel = ravel_pytree(template)

    def to_u(values):
        return ravel_pytree(_to_u(transforms, {nm: values[nm] for nm in names}))[0]

    def back(u):
        return _to_values(transforms, unravel(u))

    def params_lp(u):
        return evaluate(program, k, d, back(u))

    def run(X, u0s, stats0):
        n = X.shape[0]

        def q(u, stats):
            p, lp = params_lp(u)
            return (_complete_loglik(p, stats) + lp) / n

        def marginal(u):
            p, lp = params_lp(u)
            return (jnp.sum(mixture.log_prob(p, X)) + lp) / n

        def m_step(u, stats):
            res = minimize(lambda v: -q(v, stats), u, method="BFGS",
                           options={"maxiter": 200, "gtol": 1e-10})
            better = jnp.isfinite(res.fun) & (-res.fun >= q(u, stats))
            return jnp.where(better, res.x, u)

        def body(carry):
            u, obj, trace, i, _, _ = carry
            cand = m_step(u, _suff_stats(params_lp(u)[0], X))
            new = marginal(cand)
            # GEM never lowers the marginal in exact arithmetic; rounding (float32, a far
            # component) can: such a step is refused and the fit stops, unconverged.
            keep = jnp.isfinite(new) & (new >= obj)
            u = jnp.where(keep, cand, u)
            trace = trace.at[i + 1].set(jnp.where(keep, new, obj))
            done = keep & (jnp.abs(new - obj) < tol)
            return u, jnp.where(keep, new, obj), trace, i + 1, done, ~keep

        def cond(carry):
            return (carry[3] < max_iter) & ~carry[4] & ~carry[5]

        # The start: the candidate with the highest expected complete-data log posterior
        # under the first E-step (the maximum-likelihood solution's), then its M-step.
        qs = jax.vmap(lambda u: q(u, stats0))(u0s)
        u = m_step(u0s[jnp.argmax(jnp.where(jnp.isfinite(qs), qs, -jnp.inf))], stats0)
        obj = marginal(u)
        trace = jnp.full((max_iter + 2,), jnp.nan, X.dtype).at[0].set(obj)
        u, obj, trace, it, conv, _ = lax.while_loop(
            cond, body, (u, obj, trace, 0, jnp.asarray(False), jnp.asarray(False)))
        if polish:
            # A direct BFGS on the marginal log posterior from the GEM point.
            res = minimize(lambda v: -marginal(v), u, method="BFGS",
                           options={"maxiter": 500, "gtol": 1e-12})
            better = jnp.isfinite(res.fun) & (-res.fun >= obj)
            u = jnp.where(better, res.x, u)
            obj = jnp.where(better, -res.fun, obj)
            trace = trace.at[it + 1].set(obj)
        return u, obj, trace, it, conv & jnp.isfinite(obj)

    return jax.jit(run), to_u, back


def site_dims(program, k, d, values) -> dict:
    """Named dims of a program's own latent sites (not ``weights``/``means``/``covariances``):
    ``{name}_dim_i``, except an axis of a ``numpyro.plate("component", K)``, which is
    ``component`` (relabelling permutes it with the mixture's components)."""
    _, trace = run_program(program, k, d, values=values)
    out = {}
    for name, site in latent_sites(trace).items():
        if name in ("weights", "means", "covariances"):
            continue
        ndim = jnp.ndim(site["value"])
        dims = [f"{name}_dim_{i}" for i in range(ndim)]
        batch = ndim - site["fn"].event_dim
        for frame in site["cond_indep_stack"]:
            if frame.name == "component" and frame.size == k:
                dims[batch + frame.dim] = "component"
        out[name] = tuple(dims)
    return out

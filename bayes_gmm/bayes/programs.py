r"""The compiled NUTS and SVI programs, written once for posterior fits and for SBC.

* :func:`run_nuts` — NUTS warm-up and sampling of one chain as one `jax.lax.scan` over
  NumPyro's NUTS kernel (the kernel is compiled once, not twice), given a potential.
* :func:`run_svi` — SVI steps as a `lax.scan` over ``SVI.update``, with optional
  Polyak–Ruppert averaging of the guide parameters over the last steps.
* :func:`nuts_program` / :func:`svi_program` — the jitted programs of
  :func:`bayes_gmm.fit_nuts` / :func:`bayes_gmm.fit_svi`, compiled once per static
  configuration (K, family, draw counts, data shape and dtype), so fitting many data sets
  of one shape reuses them (a plain ``numpyro.infer.MCMC`` re-traces at every new object);
  :mod:`bayes_gmm.bayes.sbc` vmaps :func:`run_nuts` / :func:`run_svi` over replications.

Progress bars run through host callbacks (:func:`progress`, :func:`tick`); the compiled
program does not change with them.
"""

from __future__ import annotations

import collections
import contextlib
from functools import partial, wraps

import jax
import jax.numpy as jnp
from jax import lax
from numpyro import validation_enabled

from ..core import mixture
from ..core.params import GMMParams
from ..core.program import mixture_draws
from .model import SITES, gmm_model

__all__ = ["run_nuts", "run_svi", "unvalidated", "nuts_program", "parallel_nuts", "svi_program",
           "make_guide", "progress", "tick", "TRACE_COUNTS", "GUIDES"]

GUIDES = ("auto_normal", "auto_mvn", "auto_lowrank")

#: How many times each compiled program has been traced (a re-trace means a re-compile).
TRACE_COUNTS: collections.Counter = collections.Counter()


# --- progress bar through host callbacks ----------------------------------------------
#
# Two rules keep these callbacks clear of the CPU runtime (the JAX maintainers warn that a
# callback calling back into JAX can deadlock under asynchronous CPU dispatch,
# jax-ml/jax#25861, #24255; the relabel hang of issue 11 had another cause, see
# bayes_gmm.bayes.relabel.assignment_cost):
# * the callback takes no array at all — JAX hands callbacks jax.Arrays, and even
#   ``int()`` of one calls into the runtime — only a Python int bound when tracing;
# * :func:`progress` waits for every pending callback (``jax.effects_barrier``) before the
#   next computation can be dispatched and before the bar is closed.

_PROGRESS = {"bar": None}


def _advance(steps):
    """Host side of :func:`tick`: move the bar ``steps`` on (never past its total; unordered
    callbacks may arrive in any order)."""
    bar = _PROGRESS["bar"]
    if bar is not None:
        bar.update(max(0, min(steps, bar.total - bar.n)))


def tick(i, total, enabled):
    """Inside a compiled loop: advance the host's progress bar (in 1% steps)."""
    if not enabled:
        return
    every = max(1, total // 100)
    lax.cond(i == total - 1,
             lambda: jax.debug.callback(partial(_advance, total), ordered=False),
             lambda: lax.cond(i % every == every - 1,
                              lambda: jax.debug.callback(partial(_advance, every),
                                                         ordered=False),
                              lambda: None))


@contextlib.contextmanager
def progress(enabled, total, desc):
    """A tqdm bar that :func:`tick` advances while a compiled program runs."""
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm
    bar = tqdm(total=total, desc=desc)
    _PROGRESS["bar"] = bar
    try:
        yield
    finally:
        jax.effects_barrier()          # every tick has run: none races what comes next
        _PROGRESS["bar"] = None
        bar.close()


# --- the two loops ---------------------------------------------------------------------

def run_nuts(init_kernel, sample_kernel, z0, key, num_warmup, num_samples, collect, *,
             kernel_kwargs=None, init_kwargs=None, show_progress=False, batched=False):
    """Warm-up and sampling as one scan; returns ``collect(state)`` of the kept draws.

    ``batched``: z0 and key carry a leading chain axis and the kernel is vmapped over it.
    Adaptation stops at ``num_warmup`` inside the kernel (its state counts iterations).
    """
    total = num_warmup + num_samples
    init_kwargs = init_kwargs or {}
    kernel_kwargs = kernel_kwargs or {}

    def init_one(z, k):
        return init_kernel(z, num_warmup, rng_key=k, **init_kwargs)

    def step_one(s):
        return sample_kernel(s, **kernel_kwargs)

    init = jax.vmap(init_one) if batched else init_one
    step = jax.vmap(step_one) if batched else step_one

    def body(s, i):
        s = step(s)
        tick(i, total, show_progress)
        return s, collect(s)

    _, out = lax.scan(body, init(z0, key), jnp.arange(total))
    return jax.tree.map(lambda a: a[num_warmup:], out)


def run_svi(svi, state, num_steps, model_args=(), model_kwargs=None, *, average_last=0,
            show_progress=False):
    """``num_steps`` SVI updates; returns (guide parameters, losses (num_steps,)).

    ``average_last`` > 0 returns the guide parameters averaged over the last steps
    (Polyak–Ruppert: with single-particle gradients the final Adam iterate jitters, its
    scales most; the tail average does not); 0 returns the final iterate.
    """
    model_kwargs = model_kwargs or {}
    start = num_steps - average_last

    def body(carry, i):
        s, avg = carry
        s, loss = svi.update(s, *model_args, **model_kwargs)
        if average_last:
            w = jnp.where(i >= start, 1.0 / (i - start + 1.0), 0.0).astype(loss.dtype)
            avg = jax.tree.map(lambda a, p: a + w * (p - a), avg, svi.get_params(s))
        tick(i, num_steps, show_progress)
        return (s, avg), loss

    (state, avg), losses = lax.scan(body, (state, svi.get_params(state)),
                                    jnp.arange(num_steps))
    return (avg if average_last else svi.get_params(state)), losses


# --- the programs of fit_nuts and fit_svi ------------------------------------------------

def unvalidated(fn):
    """``fn`` traced with NumPyro's argument validation off (on by default in NumPyro), for
    the distributions its autoguides and the model build too. Inside a compiled program it
    can check nothing, yet it traced constraint tests into the program and compiled small
    eager programs for them; the package checks its arguments at the public edge."""
    @wraps(fn)
    def traced(*args, **kwargs):
        with validation_enabled(False):
            return fn(*args, **kwargs)
    return traced


_NUTS_STATIC = ("n_components", "covariance_type", "num_warmup", "num_samples",
                "chain_method", "progress_bar", "dense_mass", "max_tree_depth",
                "target_accept_prob", "missing", "program")


def _draws_and_loglik(X, draws, covariance_type, missing, program=None, k=None):
    """The mixture's parameters of each draw (a prior program's from its own sites, which
    are kept beside them), and log p(x_n | θ) of every row."""
    if program is None:
        draws = {s: draws[s] for s in SITES}
    else:
        draws = mixture_draws(draws, program, k, X.shape[1])
    ll = mixture.log_prob_draws(GMMParams(draws["weights"], draws["means"],
                                          draws["covariances"], covariance_type), X,
                                has_missing=missing == "marginalize")
    return draws, ll


def _n_chains(values):
    return jax.tree.leaves(values)[0].shape[0]


@partial(jax.jit, static_argnames=_NUTS_STATIC)
@unvalidated
def nuts_program(X, prior, init_values, key, *, n_components, covariance_type, num_warmup,
                 num_samples, chain_method, progress_bar, dense_mass, max_tree_depth,
                 target_accept_prob, missing="error", program=None):
    """Warm-up and sampling for all chains in one compiled program.

    init_values: constrained starts with a leading chain axis. Returns the constrained
    draws (C, S, ...), the per-draw statistics (C, S) and log p(x_n | θ) (C, S, N).
    ``program``: a prior program (then ``prior`` is None), a static argument.
    """
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

    TRACE_COUNTS["nuts"] += 1
    kwargs = {"n_components": n_components, "prior": prior if program is None else program,
              "covariance_type": covariance_type, "missing": missing}

    def pe(z):
        return potential_energy(gmm_model, (X,), kwargs, z)

    init_kernel, sample_kernel = hmc(potential_fn=pe, algo="NUTS")
    z0 = jax.vmap(lambda v: unconstrain_fn(gmm_model, (X,), kwargs, v))(init_values)
    num_chains = _n_chains(init_values)
    keys = jax.random.split(key, num_chains)
    init_kwargs = dict(dense_mass=dense_mass, target_accept_prob=target_accept_prob,
                       max_tree_depth=max_tree_depth)

    def collect(s):
        return {"z": s.z, "diverging": s.diverging, "lp": -s.potential_energy,
                "acceptance_rate": s.accept_prob, "n_steps": s.num_steps,
                "step_size": s.adapt_state.step_size}

    run = partial(run_nuts, init_kernel, sample_kernel, num_warmup=num_warmup,
                  num_samples=num_samples, collect=collect, init_kwargs=init_kwargs)
    if chain_method == "vectorized":
        out = run(z0, keys, show_progress=progress_bar, batched=True)
        out = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), out)          # (C, S, ...)
    else:  # sequential
        out = lax.map(lambda a: run(a[0], a[1], show_progress=progress_bar and num_chains == 1),
                      (z0, keys))
    z = out.pop("z")
    flat = jax.tree.map(lambda a: a.reshape((num_chains * num_samples,) + a.shape[2:]), z)
    draws = lax.map(lambda zz: constrain_fn(gmm_model, (X,), kwargs, zz), flat, batch_size=256)
    draws, ll = _draws_and_loglik(X, draws, covariance_type, missing, program,
                                 n_components)
    shape = (num_chains, num_samples)
    draws = jax.tree.map(lambda a: a.reshape(shape + a.shape[1:]), draws)
    return draws, out, ll.reshape(shape + ll.shape[1:])


def parallel_nuts(X, prior, starts, key, **static):
    """One chain per device: the sequential program on a single chain, under `jax.pmap`."""
    num_chains = _n_chains(starts)
    keys = jax.random.split(key, num_chains)

    def one(s, k):
        s1 = jax.tree.map(lambda a: a[None], s)
        d, st, ll = nuts_program(X, prior, s1, k, chain_method="sequential",
                                 progress_bar=False, **static)
        return jax.tree.map(lambda a: a[0], (d, st, ll))
    return jax.pmap(one)(starts, keys)


_SVI_STATIC = ("n_components", "covariance_type", "guide", "num_steps", "subsample_size",
               "num_samples", "progress_bar", "rank", "missing", "program")


def make_guide(guide, init_values=None, rank=None, model=gmm_model):
    """A NumPyro autoguide by name, its location started at ``init_values`` (None: the
    autoguide's default, uniform in (−2, 2) in the unconstrained space)."""
    from numpyro.infer import autoguide
    from numpyro.infer.initialization import init_to_value
    kw = {} if init_values is None else {"init_loc_fn": init_to_value(values=init_values)}
    if guide == "auto_normal":
        return autoguide.AutoNormal(model, **kw)
    if guide == "auto_mvn":
        return autoguide.AutoMultivariateNormal(model, **kw)
    return autoguide.AutoLowRankMultivariateNormal(model, rank=rank, **kw)


@partial(jax.jit, static_argnames=_SVI_STATIC)
@unvalidated
def svi_program(X, prior, init_values, key, learning_rate, *, n_components, covariance_type,
                guide, num_steps, subsample_size, num_samples, progress_bar, rank,
                missing="error", program=None):
    """Adam on the ELBO from the MAP, then ``num_samples`` draws of the averaged guide."""
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.optim import Adam

    TRACE_COUNTS["svi"] += 1
    kwargs = {"n_components": n_components, "prior": prior if program is None else program,
              "covariance_type": covariance_type, "subsample_size": subsample_size,
              "missing": missing}
    g = make_guide(guide, init_values, rank)
    latent = set(init_values)
    svi = SVI(gmm_model, g, Adam(learning_rate), Trace_ELBO())
    k_init, k_draw = jax.random.split(key)
    state = svi.init(k_init, X, **kwargs)
    params, losses = run_svi(svi, state, num_steps, (X,), kwargs,
                             average_last=max(1, num_steps // 5), show_progress=progress_bar)
    draws = g.sample_posterior(k_draw, params, X, sample_shape=(num_samples,), **kwargs)
    if program is not None:                  # the program's latent sites only
        draws = {s: v for s, v in draws.items() if s in latent}
    draws, ll = _draws_and_loglik(X, draws, covariance_type, missing, program,
                                 n_components)
    return jax.tree.map(lambda a: a[None], draws), losses, ll[None]

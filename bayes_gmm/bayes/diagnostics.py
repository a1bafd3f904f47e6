r"""Posterior diagnostics and uncertainty-aware clustering.

* :func:`summary` — :func:`arviz.summary` of the (relabelled) mixture parameters.
* :func:`check_diagnostics` — warnings that name the variables when R-hat exceeds what
  sampling noise explains (:func:`bayes_gmm.bayes.modes.rhat_critical`; 1.01 for long
  runs), bulk ESS < 100 per chain, any divergence, or chains in different modes
  (:func:`bayes_gmm.posterior_modes`); :func:`summary` warns rather than silently average
  over several modes.
* :func:`assignment_probabilities` — per-point posterior membership: mean, 94% interval,
  entropy, most probable cluster.
* :func:`coclustering` — the label-invariant posterior probability that two points share a
  cluster, :math:`P_{nm} = \frac1S \sum_s \sum_k r^{(s)}_{nk} r^{(s)}_{mk}` (n ≠ m) with
  r⁽ˢ⁾ the responsibilities under draw s (assignments are independent given θ), and 1 on
  the diagonal.
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import logsumexp

from .. import _checks as C
from ..core.mixture import responsibilities, weighted_log_prob
from ..core.normalize import log_normalize
from ..core.params import GMMParams
from .idata import flat_draws, mixture_posterior
from .model import SITES
from .modes import modes_message, posterior_modes, rhat_critical, stuck_chains
from .relabel import ensure_relabelled

__all__ = ["DiagnosticWarning", "summary", "check_diagnostics",
           "assignment_probabilities", "coclustering"]

class DiagnosticWarning(UserWarning):
    """A sampling diagnostic failed (R-hat, ESS, divergences, chains in different modes).

    Examples
    --------
    Make a failed diagnostic stop a script instead of printing a warning:

    >>> import warnings, bayes_gmm as bg
    >>> warnings.simplefilter("error", bg.DiagnosticWarning)
    >>> warnings.resetwarnings()
    """


# --- access to draws -------------------------------------------------------------------

def _flat_draws(idata) -> GMMParams:
    """The posterior as a `GMMParams` whose arrays have one leading draw axis (S, ...)."""
    return flat_draws(mixture_posterior(idata))


def _check_X(idata, X, missing="error"):
    draws = _flat_draws(idata)
    dtype = draws.means.dtype
    Xa = C.check_X(X, dtype=dtype, missing=missing, empty_rows=True)
    C.check_n_features(Xa, draws.means.shape[-1])
    return Xa, draws


# --- summaries and warnings ------------------------------------------------------------

def summary(idata, var_names=None, **kwargs):
    """ArviZ summary of the relabelled mixture parameters.

    Parameters
    ----------
    idata : arviz.InferenceData from :func:`bayes_gmm.fit_nuts` / :func:`bayes_gmm.fit_svi`.
        A posterior not yet relabelled is relabelled against its ``map`` group first.
    var_names : variables to summarise (default ``weights``, ``means``, ``covariances``).
    **kwargs : passed to :func:`arviz.summary` (e.g. ``kind="stats"``, ``hdi_prob``).

    Returns
    -------
    pandas.DataFrame, one row per scalar parameter (``means[0, 1]`` …); when the chains sit
    in more than one mode (:func:`posterior_modes`) the table is still the average over all
    chains, ``attrs["modes"]`` holds the modes, and a `DiagnosticWarning` says so.
    """
    import arviz as az
    idata = ensure_relabelled(idata)
    post = mixture_posterior(idata)
    names = list(var_names) if var_names is not None else [s for s in SITES if s in post]
    modes = None
    if post.attrs.get("method", "nuts") != "svi" and post.sizes["chain"] > 1:
        modes = posterior_modes(idata)
        if len(modes) > 1:
            warnings.warn(f"bayes_gmm summary: {modes_message(modes)}", DiagnosticWarning,
                          stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant entries: NaN R-hat
        table = az.summary(idata, var_names=names, **kwargs)
    table.attrs["modes"] = modes
    return table


def check_diagnostics(idata, *, rhat_threshold=1.01, min_ess_per_chain=100, mode_sds=4.0,
                      warn=True) -> dict:
    """Check an MCMC posterior; warn (`DiagnosticWarning`) naming what failed.

    Checks, on the relabelled draws: split R-hat above what sampling noise explains
    (:func:`bayes_gmm.bayes.modes.rhat_critical`: ``rhat_threshold`` = 1.01 once the draws
    are many, higher for short runs, where R-hat of a healthy posterior fluctuates more);
    bulk ESS < ``min_ess_per_chain`` × chains (per variable); divergent transitions; chains
    stuck in different modes — a chain whose mean total log-likelihood, or whose mean of
    any parameter, is more than ``mode_sds`` pooled within-chain sds from another chain's
    (sampling noise in chain means is ~ sd/√ESS, so only distinct modes get that far).

    Parameters
    ----------
    idata : arviz.InferenceData from :func:`bayes_gmm.fit_nuts` (an SVI result has no
        chains to compare: only its finite-ness is checked).
    rhat_threshold, min_ess_per_chain, mode_sds : thresholds.
    warn : issue warnings (otherwise only return the report).

    Returns
    -------
    dict with ``max_rhat`` {var: float}, ``rhat_critical`` {var: smallest critical R-hat
    of its scalars}, ``min_ess_bulk`` {var: float}, ``n_divergent``
    (int), ``stuck_chains`` (list of chain indices away from the best chain's mode),
    ``modes`` (the table of :func:`posterior_modes`; None for one chain or SVI), and
    ``problems`` (list of messages; empty when every check passed).
    """
    import arviz as az
    idata = ensure_relabelled(idata)
    post = mixture_posterior(idata)
    names = [s for s in SITES if s in post]
    n_chains = post.sizes["chain"]
    report = {"max_rhat": {}, "rhat_critical": {}, "min_ess_bulk": {}, "n_divergent": 0,
              "stuck_chains": [], "modes": None, "problems": []}
    problems = report["problems"]
    method = post.attrs.get("method", "nuts")
    if method == "svi":
        bad = [v for v in names if not np.all(np.isfinite(post[v].values))]
        if bad:
            problems.append(f"non-finite draws in {bad}")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rhat = az.rhat(idata, var_names=names) if n_chains > 1 else None
            ess = az.ess(idata, var_names=names, method="bulk")
            ess_tail = az.ess(idata, var_names=names, method="tail")
        for v in names:
            if rhat is not None:
                r = float(np.nanmax(rhat[v].values)) if np.any(np.isfinite(rhat[v].values)) \
                    else float("nan")
                report["max_rhat"][v] = r
            e = ess[v].values
            report["min_ess_bulk"][v] = float(np.nanmin(e)) if np.any(np.isfinite(e)) \
                else float("nan")
        if rhat is not None:
            n_scalars = sum(int(np.size(rhat[v].values)) for v in names)
            high = []
            for v in names:
                r = np.asarray(rhat[v].values)
                e = np.fmin(np.asarray(ess[v].values), np.asarray(ess_tail[v].values))
                crit = rhat_critical(e, n_chains, post.sizes["draw"], n_scalars,
                                     min_ess_per_chain, rhat_threshold)
                over = np.isfinite(r) & (r > crit)
                if np.any(over):
                    i = np.argmax(np.where(over, r - crit, -np.inf))
                    high.append(f"{v} ({r.flat[i]:.3f} > {np.ravel(crit)[i]:.3f})")
                report["rhat_critical"][v] = float(np.nanmin(crit))
            if high:
                problems.append(f"R-hat above what sampling noise explains for: "
                                f"{', '.join(high)}")
        low = [f"{v} ({e:.0f})" for v, e in report["min_ess_bulk"].items()
               if e < min_ess_per_chain * n_chains]
        if low:
            problems.append(f"bulk ESS below {min_ess_per_chain} per chain "
                            f"({min_ess_per_chain * n_chains} for {n_chains} chain(s)) for: "
                            f"{', '.join(low)}")
        if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
            n_div = int(np.sum(idata.sample_stats["diverging"].values))
            report["n_divergent"] = n_div
            if n_div:
                problems.append(f"{n_div} divergent transition(s) after warm-up")
        if n_chains > 1:
            stuck, _ = stuck_chains(idata, post, names, mode_sds)
            report["stuck_chains"] = stuck
            modes = posterior_modes(idata, mode_sds=mode_sds)
            report["modes"] = modes
            if len(modes) > 1:
                problems.append(modes_message(modes))
    if warn:
        for msg in problems:
            warnings.warn(f"bayes_gmm diagnostics: {msg}", DiagnosticWarning, stacklevel=2)
    return report


def _resp_one(w, m, c, covariance_type, X, has_missing=False):
    return responsibilities(GMMParams(w, m, c, covariance_type), X, has_missing)


@partial(jax.jit, static_argnames=("covariance_type", "q_lo", "q_hi", "has_missing"))
def _assign_chunk(w, m, c, X, *, covariance_type, q_lo, q_hi, has_missing=False):
    r = jax.vmap(lambda a, b, cc: _resp_one(a, b, cc, covariance_type, X, has_missing))(
        w, m, c)                                                                 # (S,B,K)
    q = jnp.quantile(r, jnp.array([q_lo, q_hi], r.dtype), axis=0)
    return jnp.mean(r, axis=0), q[0], q[1]


def _row_chunks(n, per_row, budget=2_000_000):
    b = int(max(1, min(n, budget // max(1, per_row))))
    return b


def assignment_probabilities(idata, X, *, hdi_prob=0.94, missing="error"):
    r"""Posterior cluster membership of each row of X.

    For each draw θ_s, r⁽ˢ⁾_nk = p(z_n = k | x_n, θ_s); the posterior membership is their
    average over draws (labels aligned by relabelling against the MAP).

    Parameters
    ----------
    idata : arviz.InferenceData from :func:`bayes_gmm.fit_nuts` / :func:`bayes_gmm.fit_svi`
        (relabelled against its ``map`` group first if it is not yet).
    X : (N, D) rows to assign.
    hdi_prob : mass of the equal-tailed interval (default 0.94, ArviZ's default).
    missing : "error" or "marginalize" (NaN entries are integrated out: each row is
        assigned on its observed entries; a row with nothing observed gets the weights).

    Returns
    -------
    xarray.Dataset with ``mean``, ``lower``, ``upper`` (obs, component): the posterior
    mean of r_nk and the (1−hdi_prob)/2 and (1+hdi_prob)/2 quantiles over draws;
    ``entropy`` (obs): −Σ_k r̄_nk log r̄_nk of the mean membership (nats); ``cluster``
    (obs): argmax_k r̄_nk.
    """
    import xarray as xr
    hdi_prob = float(hdi_prob)
    if not 0.0 < hdi_prob < 1.0:
        raise ValueError(f"hdi_prob must be in (0, 1); got {hdi_prob}")
    idata = ensure_relabelled(idata)
    Xa, d = _check_X(idata, X, missing)
    holes = C.has_nan(Xa)
    n = Xa.shape[0]
    s, k = d.weights.shape
    b = _row_chunks(n, s * k * (Xa.shape[1] ** 2 if holes else 1))
    mean = np.empty((n, k), Xa.dtype)
    lo = np.empty((n, k), Xa.dtype)
    hi = np.empty((n, k), Xa.dtype)
    with C.x64_scope(Xa.dtype):
        w, m, c = (jnp.asarray(a) for a in (d.weights, d.means, d.covariances))
        for start in range(0, n, b):
            # The last chunk slides back so every call has the same shape (one compile).
            st = max(0, min(start, n - b))
            out = _assign_chunk(w, m, c, jnp.asarray(Xa[st:st + b]),
                                covariance_type=d.covariance_type,
                                q_lo=(1.0 - hdi_prob) / 2, q_hi=(1.0 + hdi_prob) / 2,
                                has_missing=holes)
            mean[st:st + b], lo[st:st + b], hi[st:st + b] = (np.asarray(o) for o in out)
    entropy = -np.sum(np.where(mean > 0, mean * np.log(np.where(mean > 0, mean, 1.0)), 0.0),
                      axis=1)
    coords = {"obs": np.arange(n), "component": np.arange(k)}
    return xr.Dataset({"mean": (("obs", "component"), mean),
                       "lower": (("obs", "component"), lo),
                       "upper": (("obs", "component"), hi),
                       "entropy": (("obs",), entropy.astype(Xa.dtype)),
                       "cluster": (("obs",), np.argmax(mean, axis=1).astype(np.int64))},
                      coords=coords, attrs={"hdi_prob": hdi_prob})


@partial(jax.jit, static_argnames=("covariance_type", "chunk", "has_missing"))
def _cocluster(w, m, c, X, *, covariance_type, chunk, has_missing=False):
    s = w.shape[0]
    n_chunks = -(-s // chunk)
    pad = n_chunks * chunk - s
    valid = jnp.concatenate([jnp.ones((s,), X.dtype), jnp.zeros((pad,), X.dtype)])
    # Padding repeats the first draw with weight 0.
    padit = lambda a: jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])])
    w, m, c = padit(w), padit(m), padit(c)
    shape = lambda a: a.reshape((n_chunks, chunk) + a.shape[1:])

    def body(acc, args):
        wc, mc, cc, vc = args
        r = jax.vmap(lambda a, b, ccc: _resp_one(a, b, ccc, covariance_type, X,
                                                 has_missing))(wc, mc, cc)
        r = r * jnp.sqrt(vc)[:, None, None]
        return acc + jnp.einsum("snk,smk->nm", r, r), None

    n = X.shape[0]
    acc, _ = lax.scan(body, jnp.zeros((n, n), X.dtype),
                      (shape(w), shape(m), shape(c), shape(valid)))
    return acc / s


def coclustering(idata, X, missing="error"):
    r"""Posterior probability that two rows share a cluster: an (N, N) matrix.

    :math:`P_{nm} = \frac1S \sum_s \sum_k r^{(s)}_{nk} r^{(s)}_{mk}` for n ≠ m (given θ the
    assignments are independent), 1 on the diagonal. Invariant to the labels of every draw,
    so raw and relabelled posteriors give the same matrix. Draws are processed in chunks
    so memory stays O(N² + chunk·N·K).

    Parameters
    ----------
    idata : arviz.InferenceData from :func:`bayes_gmm.fit_nuts` / :func:`bayes_gmm.fit_svi`.
    X : (N, D) rows.
    missing : "error" or "marginalize" (as :func:`assignment_probabilities`).

    Returns
    -------
    (N, N) NumPy array, symmetric, entries in [0, 1], unit diagonal.
    """
    Xa, d = _check_X(idata, X, missing)
    holes = C.has_nan(Xa)
    n = Xa.shape[0]
    s, k = d.weights.shape
    chunk = int(max(1, min(s, 4_000_000 // max(1, n * k * (Xa.shape[1] ** 2 if holes
                                                             else 1)))))
    with C.x64_scope(Xa.dtype):
        p = _cocluster(jnp.asarray(d.weights), jnp.asarray(d.means),
                       jnp.asarray(d.covariances), jnp.asarray(Xa),
                       covariance_type=d.covariance_type, chunk=chunk, has_missing=holes)
        p = np.asarray(p)
    p = np.clip(0.5 * (p + p.T), 0.0, 1.0)
    np.fill_diagonal(p, 1.0)
    return p


# --- posterior predictive helpers (used by BayesianGaussianMixture) ----------------------

@partial(jax.jit, static_argnames=("covariance_type", "has_missing"))
def _predictive_chunk(w, m, c, X, *, covariance_type, has_missing=False):
    """log mean_s p(x | θ_s) (B,) and mean_s r⁽ˢ⁾ (B, K) for one row chunk."""
    def one(a, b, cc):
        return log_normalize(weighted_log_prob(GMMParams(a, b, cc, covariance_type), X,
                                               has_missing))
    lse, r = jax.vmap(one)(w, m, c)
    s = w.shape[0]
    return logsumexp(lse, axis=0) - jnp.log(jnp.asarray(s, X.dtype)), jnp.mean(r, axis=0)


def posterior_predictive(idata, X, missing="error"):
    """Posterior predictive log density log (1/S) Σ_s p(x | θ_s) (N,) and the
    posterior-averaged responsibilities (N, K), on the (relabelled) draws. ``missing``:
    "marginalize" integrates NaN entries out (the density of the observed entries)."""
    Xa, d = _check_X(idata, X, missing)
    holes = C.has_nan(Xa)
    n = Xa.shape[0]
    s, k = d.weights.shape
    b = _row_chunks(n, s * k * (Xa.shape[1] ** 2 if holes else 1))
    logp = np.empty((n,), Xa.dtype)
    resp = np.empty((n, k), Xa.dtype)
    with C.x64_scope(Xa.dtype):
        w, m, c = (jnp.asarray(a) for a in (d.weights, d.means, d.covariances))
        for start in range(0, n, b):
            st = max(0, min(start, n - b))
            lp, r = _predictive_chunk(w, m, c, jnp.asarray(Xa[st:st + b]),
                                      covariance_type=d.covariance_type,
                                      has_missing=holes)
            logp[st:st + b], resp[st:st + b] = np.asarray(lp), np.asarray(r)
    return logp, resp

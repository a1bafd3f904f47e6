r"""Chains in different modes, and an R-hat threshold calibrated to sampling noise.

* :func:`posterior_modes` — the chains of a relabelled posterior grouped into modes (chain
  means too far apart, in within-chain sds, for sampling noise), each with its share of
  the draws and mean log-likelihood; :func:`modes_message` words it for a warning.
* :func:`stuck_chains` — the chains away from the best chain's mode.
* :func:`rhat_critical` — the R-hat a healthy posterior stays under, given its ESS.

:mod:`bayes_gmm.bayes.diagnostics` (``summary``, ``check_diagnostics``) and the figures
report these.
"""

from __future__ import annotations

import numpy as np

from .idata import mixture_posterior
from .model import SITES
from .relabel import ensure_relabelled

__all__ = ["rhat_critical", "chain_series", "chains_apart", "stuck_chains",
           "posterior_modes", "modes_message"]


def rhat_critical(ess, n_chains, n_draws, n_scalars, min_ess_per_chain=100, floor=1.01,
                  alpha=0.01):
    r"""The R-hat above which sampling noise alone is implausible, per scalar.

    For M chains split in m = 2M halves that sample one stationary distribution, with E
    effective draws in all, the split R-hat satisfies
    :math:`\hat R^2 \approx 1 + \frac{m}{E}\,(\chi^2_{m-1}/(m-1) - 1)` (between-half
    variance of the means over within-half variance). The critical value takes the χ²
    quantile at 1 − α/(2P): Bonferroni over the P scalars checked and over the two
    statistics ArviZ's R-hat is the larger of (rank-normalised and folded). E is the
    scalar's smaller of bulk and tail ESS (the folded R-hat measures the scale, whose
    draws are as informative as the tail ESS says), clipped to
    [``min_ess_per_chain`` × M, M × draws]: an ESS made small
    by chains that do not mix must not excuse their R-hat (the ESS check reports it), and
    an ESS above the number of draws (antithetic NUTS draws) must not tighten the bound.
    Never below ``floor`` (Vehtari et al. 2021's 1.01).

    Measured on iid chains (tests/test_diagnostics.py, 300 posteriors of 14 scalars): a
    healthy posterior warns in 1 % or fewer of runs from 500 draws per chain and in 2–4 %
    with 100 draws (the χ² approximation is rougher there); 1.01 alone warned in most
    100-draw runs.

    ess: array of effective sample sizes; returns an array of the same shape.
    """
    from scipy.stats import chi2
    m = 2 * n_chains
    e = np.clip(np.nan_to_num(np.asarray(ess, np.float64), nan=0.0),
                min_ess_per_chain * n_chains, max(n_chains * n_draws,
                                                  min_ess_per_chain * n_chains))
    q = chi2.ppf(1.0 - alpha / (2 * max(n_scalars, 1)), m - 1) / (m - 1)
    return np.maximum(floor, np.sqrt(1.0 + (m / e) * (q - 1.0)))


def chain_series(idata, post, names):
    """[(name, (C, S) array)]: the total log-likelihood (when present) and every scalar of
    the mixture parameters, per chain and draw; and the chain with the highest mean
    total log-likelihood (0 without one)."""
    series = []
    best = 0
    if "log_likelihood" in idata.groups():
        ll = idata.log_likelihood
        var = list(ll.data_vars)[0]
        tot = ll[var].values.reshape(ll[var].shape[0], ll[var].shape[1], -1).sum(-1)
        series.append(("total log-likelihood", tot))
        best = int(np.argmax(tot.mean(1)))
    for v in names:
        a = post[v].values
        a = a.reshape(a.shape[0], a.shape[1], -1)
        for j in range(a.shape[2]):
            series.append((v, a[:, :, j]))
    return series, best


def chains_apart(x, mode_sds):
    """(C, C) bool: chain means more than ``mode_sds`` pooled within-chain sds apart."""
    means = x.mean(1)
    sd = np.sqrt(np.mean(x.var(1)))
    if not np.isfinite(sd) or sd == 0:
        return np.zeros((x.shape[0], x.shape[0]), bool)
    return np.abs(means[:, None] - means[None]) > mode_sds * sd


def stuck_chains(idata, post, names, mode_sds):
    """Chains whose means sit more than ``mode_sds`` within-chain sds from the best chain."""
    series, best = chain_series(idata, post, names)
    stuck = set()
    where = []
    for name, x in series:
        far = np.nonzero(chains_apart(x, mode_sds)[best])[0]
        if far.size:
            stuck.update(int(c) for c in far)
            where.append(name)
    detail = f"{best} (differing in {sorted(set(where))})" if stuck else ""
    return sorted(stuck), detail


def posterior_modes(idata, *, mode_sds=4.0):
    """Group the chains of a (relabelled) MCMC posterior into modes.

    Two chains share a mode when, for the total log-likelihood and for every scalar of
    ``weights``, ``means`` and ``covariances``, their means are within ``mode_sds`` pooled
    within-chain standard deviations (sampling noise moves a chain mean by about
    sd/√ESS, so only chains exploring different partitions get that far apart); modes are
    the connected groups of that relation. A posterior with more than one mode must not
    be summarised as one: its means average partitions that no single draw has.

    Parameters
    ----------
    idata : arviz.InferenceData from :func:`bayes_gmm.fit_nuts` (relabelled against its
        ``map`` group first if it is not yet).
    mode_sds : the separation, in within-chain sds, that makes two chains different.

    Returns
    -------
    pandas.DataFrame indexed by ``mode`` (0 = the highest mean log-likelihood), with
    ``chains`` (tuple of chain indices), ``share`` (fraction of the draws),
    ``log_likelihood`` (mean total log-likelihood of its draws; NaN without a
    ``log_likelihood`` group) and ``weights`` (the mode's posterior-mean weights).

    Examples
    --------
    >>> import arviz as az, numpy as np, bayes_gmm as bg
    >>> rng = np.random.default_rng(0)
    >>> w = np.stack([np.full((200, 2), [0.3, 0.7]), np.full((200, 2), [0.6, 0.4])])
    >>> w = w + 0.01 * rng.normal(size=w.shape)
    >>> post = {"weights": w, "means": rng.normal(size=(2, 200, 2, 1)),
    ...         "covariances": np.ones((2, 200, 2, 1, 1))}
    >>> idata = az.from_dict(posterior=post, dims={"weights": ["component"],
    ...     "means": ["component", "feature"],
    ...     "covariances": ["component", "feature", "feature_bis"]})
    >>> idata.posterior.attrs.update(covariance_type="full", relabelled=1)
    >>> bg.posterior_modes(idata)["chains"].tolist()
    [(0,), (1,)]
    """
    import pandas as pd
    idata = ensure_relabelled(idata)
    post = mixture_posterior(idata)
    names = [s for s in SITES if s in post]
    c = post.sizes["chain"]
    series, _ = chain_series(idata, post, names)
    apart = np.zeros((c, c), bool)
    for _, x in series:
        apart |= chains_apart(x, mode_sds)
    label = -np.ones(c, int)
    for start in range(c):                       # connected groups of "not apart"
        if label[start] >= 0:
            continue
        label[start] = start
        stack = [start]
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(~apart[i] & (label < 0)):
                label[j] = start
                stack.append(int(j))
    tot = next((x for name, x in series if name == "total log-likelihood"), None)
    rows = []
    for g in dict.fromkeys(label.tolist()):
        chains = tuple(int(i) for i in np.flatnonzero(label == g))
        ll = float(tot[list(chains)].mean()) if tot is not None else float("nan")
        wts = post["weights"].values[list(chains)].mean(axis=(0, 1))
        rows.append({"chains": chains, "share": len(chains) / c, "log_likelihood": ll,
                     "weights": [round(float(x), 4) for x in wts]})
    rows.sort(key=lambda r: -r["log_likelihood"] if np.isfinite(r["log_likelihood"]) else 0)
    return pd.DataFrame(rows, index=pd.Index(range(len(rows)), name="mode"))


def modes_message(modes):
    """One sentence naming each mode of :func:`posterior_modes`'s table (for warnings)."""
    parts = [f"mode {i}: chains {list(r.chains)} ({100 * r.share:.0f}% of draws, mean "
             f"log-likelihood {r.log_likelihood:.1f}, weights {r.weights})"
             for i, r in modes.iterrows()]
    return (f"the posterior has {len(modes)} modes ({'; '.join(parts)}); summaries over all "
            "chains average partitions that no draw has: summarise one mode with "
            "idata.sel(chain=[...]) (see bayes_gmm.posterior_modes)")

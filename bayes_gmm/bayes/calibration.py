r"""Reading an SBC result: the χ² test that ranks are uniform, and rank histograms."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaincc

__all__ = ["chi2_uniformity", "plot_rank_histogram"]


def _bin_edges(n_draws, n_bins):
    """Bin of each rank value 0..L: floor(r·B/(L+1)), and the share of ranks per bin."""
    r = np.arange(n_draws + 1)
    which = (r * n_bins) // (n_draws + 1)
    share = np.bincount(which, minlength=n_bins) / (n_draws + 1)
    return which, share


def chi2_uniformity(ranks, n_draws, n_bins):
    r"""χ² test that ranks are uniform on {0, …, ``n_draws``}.

    Parameters
    ----------
    ranks : (R, Q) integer ranks of R replications for Q quantities.
    n_draws : int L (ranks take values 0..L).
    n_bins : int B; rank r falls in bin ⌊r·B/(L+1)⌋, whose expected count under
        uniformity is R·(number of rank values in the bin)/(L+1) (exact, also when B does
        not divide L+1).

    Returns
    -------
    chi2 : (Q,) statistic Σ_b (O_b − E_b)² / E_b.
    p_value : (Q,) P(χ²_{B−1} ≥ chi2) = Q((B−1)/2, chi2/2), the regularised upper
        incomplete gamma function (``jax.scipy.special.gammaincc``).
    counts : (B, Q) observed counts.
    """
    ranks = np.asarray(ranks)
    if ranks.ndim == 1:
        ranks = ranks[:, None]
    which, share = _bin_edges(int(n_draws), int(n_bins))
    b = which[ranks]                                                         # (R, Q)
    counts = np.stack([np.sum(b == i, axis=0) for i in range(n_bins)])       # (B, Q)
    expected = ranks.shape[0] * share[:, None]
    chi2 = np.sum(np.square(counts - expected) / expected, axis=0)
    with jax.enable_x64(True):  # the tail probability in float64, whatever the default
        p = np.asarray(gammaincc(0.5 * (n_bins - 1), 0.5 * jnp.asarray(chi2, jnp.float64)))
    return chi2, p, counts



def plot_rank_histogram(ds, *, quantities=None, n_cols=4, band=0.99):
    """Rank histograms of a :func:`bayes_gmm.sbc` result, with the uniform expectation and a band.

    Parameters
    ----------
    ds : xarray.Dataset returned by :func:`bayes_gmm.sbc`.
    quantities : names to plot (default: all).
    n_cols : panels per row.
    band : central probability of the grey band around the expected count (normal
        approximation to each bin's binomial count).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    Skipped when the docstrings run (each replication is a NUTS fit):

    >>> import jax, bayes_gmm as bg
    >>> ds = bg.sbc(50, key=jax.random.key(0))                     # doctest: +SKIP
    >>> fig = bg.plot_rank_histogram(ds, quantities=["log_likelihood"])  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from statistics import NormalDist

    names = list(ds["quantity"].values) if quantities is None else list(quantities)
    missing = [q for q in names if q not in set(ds["quantity"].values)]
    if missing:
        raise ValueError(f"quantities not in the SBC result: {missing}")
    if not 0 < band < 1:
        raise ValueError(f"band must be in (0, 1); got {band!r}")
    n_draws, n_bins = int(ds.attrs["n_draws"]), int(ds.attrs["n_bins"])
    n_rep = ds.sizes["replication"]
    _, share = _bin_edges(n_draws, n_bins)
    expected = n_rep * share
    half = NormalDist().inv_cdf(0.5 + band / 2) * np.sqrt(expected * (1 - share))
    n_cols = max(1, min(n_cols, len(names)))
    n_rows = math.ceil(len(names) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.0 * n_cols, 2.4 * n_rows),
                             squeeze=False)
    x = np.arange(n_bins)
    for ax, q in zip(axes.ravel(), names):
        c = ds["counts"].sel(quantity=q).values
        ax.fill_between(np.r_[x - 0.5, x[-1] + 0.5], np.r_[expected - half, expected[-1]
                                                           - half[-1]],
                        np.r_[expected + half, expected[-1] + half[-1]], step="post",
                        color="0.85", label=f"{band:.0%} band")
        ax.bar(x, c, width=0.9, color="C0")
        ax.step(np.r_[x - 0.5, x[-1] + 0.5], np.r_[expected, expected[-1]], where="post",
                color="k", lw=1)
        ax.set_title(f"{q}  (p = {float(ds['p_value'].sel(quantity=q)):.3g})", fontsize=9)
        ax.set_xlabel("rank bin")
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"SBC rank histograms ({ds.attrs['method']}, R = {n_rep}, "
                 f"L = {n_draws})")
    fig.tight_layout()
    return fig

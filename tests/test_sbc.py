"""Simulation-based calibration: NUTS on the package's own model gives uniform ranks, and
a deliberately mis-specified fit is caught. Also the χ² p-value against scipy."""

import jax
import matplotlib
import numpy as np
import pytest
from scipy import stats

import bayes_gmm as bg
from bayes_gmm.bayes.calibration import chi2_uniformity, plot_rank_histogram
from bayes_gmm.bayes.sbc import sbc

# A fixed, proper prior (SBC needs one that does not look at the data); α = 3 keeps both
# components populated, κ₀ = 0.1 spreads the means over a few component widths.
PRIOR = bg.GMMPrior(weight_concentration=3.0, mean_prior=0.0, mean_precision=0.1,
                    degrees_of_freedom=5.0, covariance_prior=[[3.0]])
SETTINGS = dict(n_replications=50, n_components=2, n_features=1, n_samples=30,
                num_warmup=150, num_samples=99, n_bins=10)


@pytest.fixture(scope="module")
def calibrated():
    return sbc(key=jax.random.key(0), prior=PRIOR, **SETTINGS)


def test_nuts_ranks_are_uniform(calibrated):
    ds = calibrated
    assert ds.attrs["n_draws"] == 99 and ds.attrs["n_bins"] == 10
    assert ds["ranks"].shape == (50, 7)
    assert list(ds["quantity"].values) == [
        "weights[0]", "weights[1]", "means[0,0]", "means[1,0]", "variances[0,0]",
        "variances[1,0]", "log_likelihood"]
    r = ds["ranks"].values
    assert r.min() >= 0 and r.max() <= 99
    # Sorted weights of K = 2 sum to one, so their ranks mirror each other (up to ties).
    assert np.all(np.abs(r[:, 0] + r[:, 1] - 99) <= 1)
    assert int(ds["counts"].sum()) == 50 * 7
    assert np.all(ds["p_value"].values > 0.001), ds["p_value"].to_series()
    assert int(ds["n_divergent"].sum()) <= 5


def test_mis_specified_fit_is_detected(calibrated):
    # Same simulated data (same key), but the posterior uses a prior that pulls the means
    # strongly towards +4: the true means then rank low and the ranks pile up at 0.
    wrong = PRIOR._replace(mean_prior=4.0, mean_precision=5.0)
    ds = sbc(key=jax.random.key(0), prior=PRIOR, fit_prior=wrong, **SETTINGS)
    np.testing.assert_array_equal(ds["true_value"].values, calibrated["true_value"].values)
    assert ds["p_value"].sel(quantity=["means[0,0]", "means[1,0]"]).max() < 1e-6


def test_same_key_same_ranks(calibrated):
    again = sbc(key=jax.random.key(0), prior=PRIOR, **SETTINGS)   # compiled program reused
    np.testing.assert_array_equal(again["ranks"].values, calibrated["ranks"].values)
    np.testing.assert_array_equal(again["true_value"].values,
                                  calibrated["true_value"].values)


def test_chi2_p_value_matches_scipy():
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 100, size=(60, 3))
    ranks[:, 2] = rng.integers(0, 30, size=60)          # far from uniform
    chi2, p, counts = chi2_uniformity(ranks, n_draws=99, n_bins=10)
    for q in range(3):
        ref = stats.chisquare(np.bincount(ranks[:, q] // 10, minlength=10))
        np.testing.assert_allclose(chi2[q], ref.statistic, rtol=1e-12)
        np.testing.assert_allclose(p[q], ref.pvalue, rtol=1e-6)
    assert p[2] < 1e-6
    # Unequal bins (B does not divide L + 1): expected counts follow the bin widths.
    chi2, p, counts = chi2_uniformity(ranks[:, :1], n_draws=99, n_bins=7)
    widths = np.bincount((np.arange(100) * 7) // 100, minlength=7)
    ref = stats.chisquare(counts[:, 0], 60 * widths / 100)
    np.testing.assert_allclose(p[0], ref.pvalue, rtol=1e-6)


def test_plot_rank_histogram(calibrated):
    fig = plot_rank_histogram(calibrated, quantities=["means[0,0]", "log_likelihood"])
    assert isinstance(fig, matplotlib.figure.Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    heights = [p.get_height() for p in axes[0].patches if hasattr(p, "get_height")]
    np.testing.assert_array_equal(
        sorted(heights), sorted(calibrated["counts"].sel(quantity="means[0,0]").values))
    matplotlib.pyplot.close(fig)


def test_sbc_rejects_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        sbc(10, key=0, method="gibbs")
    with pytest.raises(ValueError, match="n_bins"):
        sbc(10, key=0, num_samples=9, n_bins=20)
    with pytest.raises(ValueError, match="mean_precision"):
        sbc(10, key=0, prior=bg.GMMPrior(mean_precision=-1.0))


def test_nuts_ranks_are_uniform_with_missing_values():
    """30% of the simulated entries removed completely at random, integrated out by the
    fit: the posterior given what was observed is still calibrated (no p-value below
    0.001 over the 11 quantities), and the holes really were there."""
    prior = bg.GMMPrior(weight_concentration=3.0, mean_prior=[0.0, 0.0], mean_precision=0.1,
                        degrees_of_freedom=6.0, covariance_prior=[[3.0, 1.0], [1.0, 3.0]])
    ds = sbc(key=jax.random.key(1), prior=prior, missing_fraction=0.3,
             **{**SETTINGS, "n_features": 2})
    assert ds.attrs["missing_fraction"] == 0.3 and ds["ranks"].shape == (50, 11)
    assert ds["p_value"].min() > 1e-3, ds["p_value"].to_series().to_dict()
    assert int(ds["n_divergent"].sum()) <= 5
    with pytest.raises(ValueError, match="missing_fraction"):
        sbc(10, key=0, missing_fraction=1.0)

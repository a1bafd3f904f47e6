"""compare: BIC/AIC agree with scikit-learn, K=2 on Old Faithful and K=3 on three clusters;
the Bayesian path's ELPD-LOO is ArviZ's."""

import arviz as az
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGMM

import bayes_gmm as bg
from bayes_gmm.model_selection import compare


def _three_clusters(n=272, seed=0):
    # the same (N, D) as Old Faithful, so the compiled EM programs are shared
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    labels = rng.integers(0, 3, n)
    return centers[labels] + rng.normal(size=(n, 2)), labels


@pytest.fixture(scope="module")
def faithful_table(faithful):
    return compare(faithful, [1, 2, 3], method="em", random_state=0)


def test_old_faithful_recommends_two(faithful, faithful_table):
    t = faithful_table
    assert t.attrs["best_k"] == 2 and t.attrs["criterion"] == "bic"
    assert list(t.index) == [1, 2, 3] and t.index.name == "n_components"
    assert t["best"].tolist() == [False, True, False]
    assert t["bic"].idxmin() == 2
    # the published maximum-likelihood K=2 fit: total log-likelihood −1130.26
    assert t.loc[2, "log_likelihood"] == pytest.approx(-1130.26, abs=0.2)
    # BIC/AIC and parameter counts agree with scikit-learn's on the same data
    for k in (1, 2):
        sk = SkGMM(k, n_init=5, random_state=0).fit(faithful)
        assert t.loc[k, "bic"] == pytest.approx(sk.bic(faithful), rel=1e-4)
        assert t.loc[k, "aic"] == pytest.approx(sk.aic(faithful), rel=1e-4)
        assert t.loc[k, "n_parameters"] == sk._n_parameters()


def test_three_clusters_recommends_three():
    X, _ = _three_clusters()
    t = compare(X, range(1, 5), random_state=1)
    assert t.attrs["best_k"] == 3
    assert int(t["best"].sum()) == 1 and bool(t.loc[3, "best"])
    np.testing.assert_allclose(t["bic"], -2 * t["log_likelihood"]
                               + t["n_parameters"] * np.log(X.shape[0]))


def test_nuts_path_uses_loo(two_clusters):
    # the NUTS configuration of test_plots/test_io/test_cli: its program is compiled once
    X, _ = two_clusters
    t, fits = compare(X, [2], method="nuts", key=0, return_fits=True, num_warmup=100,
                      num_samples=100, num_chains=1, progress_bar=False)
    assert t.attrs["criterion"] == "elpd_loo" and t.attrs["best_k"] == 2 and set(fits) == {2}
    loo = az.loo(fits[2])
    assert t.loc[2, "elpd_loo"] == pytest.approx(float(loo["elpd_loo"]))
    assert t.loc[2, "se"] == pytest.approx(float(loo["se"]))
    assert t.loc[2, "p_loo"] == pytest.approx(float(loo["p_loo"]))
    # BIC/AIC of the EM fit come alongside
    assert {"bic", "aic", "pareto_k_max", "warning"} <= set(t.columns)


def test_svi_path_ranks_as_arviz_compare(two_clusters):
    X, _ = two_clusters
    t, fits = compare(X, [2, 3], method="svi", key=0, return_fits=True, num_steps=300,
                      num_samples=100)
    assert t.attrs["criterion"] == "elpd_loo" and set(fits) == {2, 3}
    cmp = az.compare({str(k): fits[k] for k in (2, 3)}, ic="loo")
    for k in (2, 3):
        assert t.loc[k, "elpd_loo"] == pytest.approx(float(az.loo(fits[k])["elpd_loo"]))
        assert t.loc[k, "rank"] == cmp.loc[str(k), "rank"]
        assert t.loc[k, "elpd_diff"] == pytest.approx(cmp.loc[str(k), "elpd_diff"])
    best = int(t["elpd_loo"].idxmax())
    assert t.attrs["best_k"] == best and bool(t.loc[best, "best"])
    assert t.loc[best, "elpd_diff"] == 0.0 and (t["se"] > 0).all()


def test_bad_arguments(faithful):
    with pytest.raises(ValueError, match="method"):
        compare(faithful, [1, 2], method="vb")
    with pytest.raises(ValueError, match="at least one"):
        compare(faithful, [])
    with pytest.raises(ValueError, match="repeated"):
        compare(faithful, [2, 2])
    with pytest.raises(ValueError, match="n_components"):
        compare(faithful[:3], [1, 5])
    with pytest.raises(ValueError, match="key or random_state"):
        compare(faithful, [1], key=0, random_state=0)
    assert bg.compare is compare

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


def test_compile_time_is_reported_apart():
    # a shape no other test fits (D = 5, spherical): the first table compiles, the second,
    # on the same shapes, reuses every program and compiles nothing
    X = np.random.default_rng(3).normal(size=(120, 5))
    first = compare(X, [1, 2], covariance_type="spherical", random_state=0)
    again = compare(X, [1, 2], covariance_type="spherical", random_state=0)
    assert (first["compile_seconds"] > 0).all()
    assert (first["compile_seconds"] <= first["seconds"]).all()
    assert (again["compile_seconds"] < 0.05 * first["compile_seconds"]).all()
    np.testing.assert_array_equal(first["bic"], again["bic"])


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
    # the rule: the smallest K within two SE of the difference from the top-ranked model
    top = cmp.index[cmp["rank"] == 0][0]
    within = [k for k in (2, 3) if cmp.loc[str(k), "elpd_diff"]
              <= 2 * cmp.loc[str(k), "dse"]]
    assert int(top) in within
    best = min(within)
    assert t.attrs["best_k"] == best and bool(t.loc[best, "best"])
    assert "2 standard errors" in t.attrs["rule"]
    assert (t["se"] > 0).all() and t.loc[int(top), "elpd_diff"] == 0.0
    assert t["n_bad_pareto_k"].dtype.kind == "i" and (t["n_bad_pareto_k"] >= 0).all()


# mclust 6's mclustBIC(faithful) (its BIC is 2 log L − p log N, i.e. minus ours), K = 1..4
MCLUST_FAITHFUL = {"tied": [-2607.623, -2325.220, -2314.316, -2331.223],     # EEE
                   "full": [-2607.623, -2322.192, -2349.696, -2351.493]}     # VVV


@pytest.mark.parametrize("covariance_type", ["tied", "full"])
def test_old_faithful_matches_mclust(faithful, covariance_type):
    ref = np.array(MCLUST_FAITHFUL[covariance_type])
    t = compare(faithful, [1, 2, 3, 4], covariance_type=covariance_type, random_state=0)
    ours = -t["bic"].to_numpy()
    # K = 1 has a closed form and K = 2 a well-known unique optimum: equal to 0.01
    np.testing.assert_allclose(ours[:2], ref[:2], atol=0.01)
    # beyond, EM from 10 starts reaches mclust's optimum or a better one (mclust starts
    # once, from hierarchical clustering): never a worse one
    assert np.all(ours >= ref - 0.01), ours - ref
    if covariance_type == "tied":
        # mclust's best model overall, EEE with 3 components: log-likelihood −1126.3
        assert ours[2] == pytest.approx(ref[2], abs=0.05)
        assert t.loc[3, "log_likelihood"] == pytest.approx(-1126.3, abs=0.05)
    # the same recommendation as mclust (EEE: 3, VVV: 2), none degenerate
    assert t.attrs["best_k"] == int(np.argmax(ref)) + 1
    assert not t["degenerate"].any()


def _degenerate_by_hand(params, n, reg_covar=1e-6):
    """A component on fewer than D + 1 rows, or with an eigenvalue at the ridge."""
    w = np.asarray(params.weights, np.float64)
    cov = np.asarray(params.covariances, np.float64)
    lam = np.linalg.eigvalsh(cov)[:, 0]
    return bool(np.any((w * n < cov.shape[-1] + 1) | (lam <= 2 * reg_covar)))


def test_iris_never_recommends_a_degenerate_fit():
    from sklearn.datasets import load_iris
    X = load_iris().data                       # rounded to 0.1: duplicated rows
    t, fits = compare(X, range(1, 7), random_state=0, return_fits=True)
    best = t.attrs["best_k"]
    for k, res in fits.items():                # the restart kept is never degenerate
        assert not _degenerate_by_hand(res.params, len(X)), k
        assert not t.loc[k, "degenerate"]
    # mclust's choice for iris: two components
    assert best == int(t["bic"].idxmin()) == 2


def test_degenerate_cells_are_flagged_and_never_recommended():
    # four distinct points, ten copies each: any K >= 2 puts a component on a line or a
    # point, where the likelihood is unbounded and the BIC favours the spike
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 0.2], [0.1, 1.0], [1.2, 1.1]]), 10, axis=0)
    with pytest.warns(bg.DegenerateFitWarning, match=r"K = \[2, 3, 4\]"):
        t, fits = compare(X, [1, 2, 3, 4], random_state=0, return_fits=True)
    assert t["degenerate"].tolist() == [False, True, True, True]
    for k in (2, 3, 4):
        assert _degenerate_by_hand(fits[k].params, len(X))
        assert t.loc[k, "degenerate_reason"]
    assert int(t["bic"].idxmin()) != 1          # the spike wins on BIC ...
    assert t.attrs["best_k"] == 1               # ... and is not recommended
    assert t["best"].tolist() == [True, False, False, False]


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

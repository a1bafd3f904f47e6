"""fit_nuts / fit_svi against closed forms and the truth; no re-compiles; the estimator.

Fits are shared at module scope: each distinct static configuration compiles once
(tens of seconds on CPU), and every later call with the same shapes reuses it.
"""

import warnings

import arviz as az
import jax
import numpy as np
import pytest

import bayes_gmm as bg
from bayes_gmm.bayes.programs import TRACE_COUNTS
from bayes_gmm.core.em import data_prior

# --- K = 1: the Normal-Inverse-Wishart posterior in closed form --------------------------

PRIOR1 = bg.GMMPrior(mean_prior=[0.0, 0.0], mean_precision=2.0, degrees_of_freedom=6.0,
                     covariance_prior=[[3.0, 0.5], [0.5, 2.0]])
# float64 throughout (the functional API would compute float64 NumPy input in float32).
NUTS1 = dict(num_warmup=400, num_samples=1000, num_chains=4, progress_bar=False,
             dtype=np.float64)


def _data1(seed):
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal([2.0, -1.0], [[2.0, 0.8], [0.8, 1.0]], size=40)


def _niw_posterior(X, prior):
    """m_n, E[Σ], and the exact posterior sds of μ (Student-t) and Σ (Inverse-Wishart)."""
    import jax
    with jax.enable_x64(True):
        _, m0, k0, nu0, psi0 = (np.asarray(a) for a in data_prior(prior, X, 1, "full"))
    n, d = X.shape
    xbar = X.mean(0)
    S = (X - xbar).T @ (X - xbar)
    kn, nun = k0 + n, nu0 + n
    mn = (k0 * m0 + n * xbar) / kn
    psin = psi0 + S + k0 * n / kn * np.outer(xbar - m0, xbar - m0)
    e_cov = psin / (nun - d - 1)
    sd_mean = np.sqrt(np.diag(psin) / (kn * (nun - d - 1)))
    a = nun - d
    var_cov = ((a + 1) * psin ** 2 + (a - 1) * np.outer(np.diag(psin), np.diag(psin))) / (
        a * (a - 1) ** 2 * (a - 3))
    return mn, e_cov, sd_mean, np.sqrt(var_cov)


@pytest.fixture(scope="module")
def conj():
    X = _data1(3)
    before = TRACE_COUNTS["nuts"]
    idata = bg.fit_nuts(X, 1, key=0, prior=PRIOR1, **NUTS1)
    return X, idata, TRACE_COUNTS["nuts"] - before


def test_nuts_k1_matches_niw_posterior(conj):
    X, idata, _ = conj
    mn, e_cov, _, _ = _niw_posterior(X, PRIOR1)
    s = az.summary(idata, var_names=["means", "covariances"], kind="all")
    post = idata.posterior
    got_m = post["means"].mean(("chain", "draw")).values[0]
    got_c = post["covariances"].mean(("chain", "draw")).values[0]
    for j in range(2):
        mcse = s.loc[f"means[0, {j}]", "mcse_mean"]
        assert abs(got_m[j] - mn[j]) < 5 * mcse, (j, got_m[j], mn[j], mcse)
        for i in range(2):
            mcse = s.loc[f"covariances[0, {i}, {j}]", "mcse_mean"]
            assert abs(got_c[i, j] - e_cov[i, j]) < 5 * mcse, (i, j, got_c[i, j], e_cov[i, j])
    np.testing.assert_array_equal(post["weights"].values, 1.0)


def test_svi_k1_matches_niw_posterior():
    # Tolerance: 0.25 exact posterior sd. auto_mvn is a Gaussian in the unconstrained
    # (Cholesky, log-diagonal) space; the Inverse-Wishart's skew at N = 40 moves the mean of
    # Σ by O(sd/√N) ≈ 0.15 sd at most; 4000 guide draws add sd/63 of Monte Carlo error;
    # tail-averaged guide parameters keep the optimiser's jitter to a few hundredths of a sd
    # (observed over keys 0-3: |error| < 0.05 sd).
    X = _data1(3)
    mn, e_cov, sd_m, sd_c = _niw_posterior(X, PRIOR1)
    idata = bg.fit_svi(X, 1, key=1, prior=PRIOR1, num_steps=3000, num_samples=4000,
                       progress_bar=False, dtype=np.float64)
    post = idata.posterior
    got_m = post["means"].mean(("chain", "draw")).values[0]
    got_c = post["covariances"].mean(("chain", "draw")).values[0]
    assert np.all(np.abs(got_m - mn) < 0.25 * sd_m), (got_m, mn, sd_m)
    assert np.all(np.abs(got_c - e_cov) < 0.25 * sd_c), (got_c, e_cov, sd_c)
    loss = idata["svi_loss"]["loss"].values
    assert loss.shape == (3000,) and np.all(np.isfinite(loss))
    # The ELBO improved from the MAP start (noisy single-particle estimates: compare means).
    assert loss[-300:].mean() < loss[:30].mean()
    assert idata.posterior.attrs["method"] == "svi"


def test_no_recompile_on_new_data_of_same_shape(conj):
    """Repeated fits with the same settings and shapes reuse the compiled program."""
    from bayes_gmm.bayes.programs import nuts_program
    _, _, traced = conj
    assert traced <= 1                # the fixture's fit traced at most once
    before, cache = TRACE_COUNTS["nuts"], nuts_program._cache_size()
    for seed in (11, 12, 13):
        idata = bg.fit_nuts(_data1(seed), 1, key=seed, prior=PRIOR1, **NUTS1)
        assert idata.posterior["means"].shape == (4, 1000, 1, 2)
    assert TRACE_COUNTS["nuts"] == before
    assert nuts_program._cache_size() == cache


# --- K = 3 in 2-D ------------------------------------------------------------------------

TRUE_MEANS = np.array([[0.0, 0.0], [7.0, 0.0], [0.0, 7.0]])
TRUE_COVS = np.array([[[1.0, 0.3], [0.3, 0.8]], [[0.6, 0.0], [0.0, 1.2]],
                      [[1.0, -0.4], [-0.4, 0.7]]])
NUTS3 = dict(num_warmup=500, num_samples=1000, num_chains=4)


def _data3():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.multivariate_normal(m, c, size=100)
                           for m, c in zip(TRUE_MEANS, TRUE_COVS)])


@pytest.fixture(scope="module")
def three():
    X = _data3()
    return X, bg.fit_nuts(X, 3, key=0, progress_bar=False, dtype=np.float64, **NUTS3)


def _match_truth(idata):
    """Index of the posterior component nearest each true mean."""
    mu = idata.posterior["means"].mean(("chain", "draw")).values
    return np.array([np.argmin(np.sum((mu - m) ** 2, 1)) for m in TRUE_MEANS])


def test_three_clusters_layout(three):
    X, idata = three
    post = idata.posterior
    assert post["weights"].dims == ("chain", "draw", "component")
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert post["covariances"].dims == ("chain", "draw", "component", "feature", "feature_bis")
    assert post["means"].shape == (4, 1000, 3, 2)
    assert idata.log_likelihood["obs"].shape == (4, 1000, 300)
    assert idata.sample_stats["diverging"].shape == (4, 1000)
    np.testing.assert_array_equal(idata.observed_data["obs"].values, X)
    assert {"map", "posterior_raw"} <= set(idata.groups())
    assert post.attrs["relabelled"] == 1
    # The log-likelihood group is log p(x_n | θ_s) for each draw.
    p = bg.GMMParams(post["weights"].values[1, 7], post["means"].values[1, 7],
                     post["covariances"].values[1, 7], "full")
    import jax
    with jax.enable_x64(True):
        ref = np.asarray(bg.log_prob(p, X))
    np.testing.assert_allclose(idata.log_likelihood["obs"].values[1, 7], ref, rtol=1e-10)


def test_three_clusters_converged_and_near_truth(three):
    X, idata = three
    assert int(idata.sample_stats["diverging"].sum()) == 0
    rhat = az.rhat(idata, var_names=["weights", "means", "covariances"])
    assert max(float(rhat[v].max()) for v in rhat.data_vars) < 1.01
    order = _match_truth(idata)
    assert sorted(order) == [0, 1, 2]
    post = idata.posterior
    mu, sd = (getattr(post["means"], f)(("chain", "draw")).values[order] for f in ("mean", "std"))
    assert np.all(np.abs(mu - TRUE_MEANS) < 4 * sd), (mu, sd)
    cm, cs = (getattr(post["covariances"], f)(("chain", "draw")).values[order]
              for f in ("mean", "std"))
    assert np.all(np.abs(cm - TRUE_COVS) < 4 * cs), (cm, cs)
    w, ws = (getattr(post["weights"], f)(("chain", "draw")).values[order] for f in ("mean", "std"))
    assert np.all(np.abs(w - 1 / 3) < 4 * ws)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bg.DiagnosticWarning)
        report = bg.check_diagnostics(idata)
    assert report["problems"] == [] and report["n_divergent"] == 0


def test_loo_runs(three):
    _, idata = three
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.n_data_points == 300


def test_svi_agrees_with_nuts(three):
    # Tolerance: 0.5 posterior sd for every weight, mean and covariance entry. The clusters
    # are well separated, so the posterior is close to Gaussian in the unconstrained space
    # where auto_mvn is exact up to skew (O(1/√N_k) ≈ 0.1 sd); the rest is Monte Carlo error
    # of both methods (< 0.05 sd) and the stochastic optimiser.
    X, nuts = three
    svi = bg.fit_svi(X, 3, key=2, num_steps=3000, num_samples=2000, progress_bar=False,
                     dtype=np.float64)
    # Each fit labels components after its own MAP-EM run: align SVI's with NUTS's MAP.
    from bayes_gmm.bayes.idata import params_from_dataset
    svi = bg.relabel(svi, params_from_dataset(nuts["map"]))
    for v in ("weights", "means", "covariances"):
        a = nuts.posterior[v].mean(("chain", "draw")).values
        sd = nuts.posterior[v].std(("chain", "draw")).values
        b = svi.posterior[v].mean(("chain", "draw")).values
        assert np.all(np.abs(a - b) < 0.5 * sd), (v, a, b, sd)


def test_estimator_end_to_end(three):
    X, _ = three
    bgm = bg.BayesianGaussianMixture(3, random_state=0, progress_bar=False, **NUTS3)
    assert bgm.get_params()["num_chains"] == 4
    assert bgm.set_params(num_chains=4) is bgm
    before = TRACE_COUNTS["nuts"]
    bgm.fit(X)
    assert TRACE_COUNTS["nuts"] == before    # same settings and shapes as the fixture
    assert isinstance(bgm.map_, bg.GaussianMixture)
    assert bgm.weights_.shape == (3,) and bgm.means_.shape == (3, 2)
    assert bgm.covariances_.shape == (3, 2, 2)
    np.testing.assert_allclose(bgm.weights_.sum(), 1.0, rtol=1e-10)
    # Posterior means sit near the MAP (label-aligned) for well separated clusters.
    np.testing.assert_allclose(bgm.means_, bgm.map_.means_, atol=0.1)
    proba = bgm.predict_proba(X)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-10)
    pred = bgm.predict(X)
    assert np.mean(pred == bgm.map_.predict(X)) > 0.99
    # Posterior predictive density: a mixture over draws of the per-draw densities.
    lp = bgm.score_samples(X)
    ll = bgm.idata_.log_likelihood["obs"].values.reshape(-1, 300)
    ref = np.logaddexp.reduce(ll, axis=0) - np.log(ll.shape[0])
    np.testing.assert_allclose(lp, ref, rtol=1e-9)
    assert bgm.score(X) == pytest.approx(lp.mean())
    Xs, ys = bgm.sample(500)
    assert Xs.shape == (500, 2) and ys.shape == (500,) and set(np.unique(ys)) <= {0, 1, 2}
    # Samples land near the component they are labelled with.
    d = np.linalg.norm(Xs - bgm.means_[ys], axis=1)
    assert np.median(d) < 2.0
    u = bgm.assignment_uncertainty(X)
    np.testing.assert_allclose(u["mean"].values, proba, rtol=1e-9, atol=1e-12)


def test_bad_arguments():
    X = _data1(0)
    with pytest.raises(ValueError, match="chain_method"):
        bg.fit_nuts(X, 1, key=0, chain_method="threads")
    with pytest.raises(ValueError, match="guide"):
        bg.fit_svi(X, 1, key=0, guide="auto_flow")
    with pytest.raises(TypeError, match="key"):
        bg.fit_nuts(X, 1, key=None)
    with pytest.raises(ValueError, match="init"):
        bg.fit_nuts(X, 1, key=0, init="random")
    with pytest.raises(ValueError, match="init"):
        bg.fit_svi(X, 1, key=0, init="em-multi")      # one guide: one start
    with pytest.raises(ValueError, match="n_components"):
        bg.fit_nuts(X[:2], 3, key=0)


def test_em_multi_starts_chains_in_distinct_modes():
    """Four blobs at the corners of a 7 × 6 rectangle, K = 2: pairing them left/right and
    top/bottom are two separated posterior modes. Chains started at one MAP stay in one
    mode; init="em-multi" starts a chain in each and the modes are reported."""
    rng = np.random.default_rng(0)
    corners = np.array([[0, 0], [7, 0], [0, 6], [7, 6]], float)
    X = np.concatenate([c + rng.normal(size=(25, 2)) for c in corners])
    kw = dict(key=jax.random.key(0), num_warmup=150, num_samples=300, num_chains=2,
              progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bg.DiagnosticWarning)   # one mode: healthy
        one = bg.fit_nuts(X, 2, **kw)
    assert len(bg.posterior_modes(one)) == 1
    with pytest.warns(bg.DiagnosticWarning, match="2 modes"):
        multi = bg.fit_nuts(X, 2, init="em-multi", **kw)
    modes = bg.posterior_modes(multi)
    assert sorted(modes["chains"].tolist()) == [(0,), (1,)]
    starts = multi.posterior.attrs["chain_start_objective"]
    assert starts[0] > starts[1]                  # best optimum first
    # The two modes are two different partitions of the rows (two pairings of the
    # corners): the clusterings under each chain's mean parameters disagree on about
    # half of the rows, whichever way their labels are matched.
    post = multi.posterior
    labels = []
    for c in (0, 1):
        p = bg.GMMParams(post["weights"].values[c].mean(0), post["means"].values[c].mean(0),
                         post["covariances"].values[c].mean(0), "full")
        labels.append(np.asarray(bg.predict(p, X)))
    agree = np.mean(labels[0] == labels[1])
    assert 0.25 < agree < 0.75, agree
    # mode 0 holds the higher log-likelihood, as the EM objectives at the starts do
    ll = multi.log_likelihood["obs"].values.sum(-1).mean(-1)
    assert modes.loc[0, "log_likelihood"] == pytest.approx(ll.max())

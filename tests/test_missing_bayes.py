"""Missing values in the posterior and in imputation, against independent truth: the
NumPyro model's observed-data likelihood against scipy's marginal normal density per row,
the model's log joint against the MAP-EM objective, the InferenceData's log-likelihood
against the density of each draw, and multiple imputations against the closed-form
Gaussian conditional (mean and covariance) and the responsibilities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy.stats import multivariate_normal as mvn

import bayes_gmm as bg

RNG_MEANS = np.array([[-3.0, 0.0], [3.0, 1.0]])


def _holey(n, seed, frac, d=2):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d)) + RNG_MEANS[z][:, :d]
    holes = rng.random(X.shape) < frac
    holes[np.all(holes, axis=1), 0] = False
    Xm = X.copy()
    Xm[holes] = np.nan
    return Xm


def _marginal_loglik(w, m, cov, X):
    """Σ_n log Σ_k π_k N(x_n,o | μ_k,o, Σ_k,oo) by scipy, row by row."""
    total = 0.0
    for x in X:
        o = ~np.isnan(x)
        total += np.log(sum(w[j] * mvn(m[j][o], cov[j][np.ix_(o, o)]).pdf(x[o])
                            for j in range(len(w))))
    return total


def test_model_likelihood_is_the_observed_data_likelihood(x64):
    """gmm_model(missing="marginalize"): the obs site is scipy's marginal density, and the
    log joint at the MAP-EM solution is N × the MAP objective (one model, one prior)."""
    Xm = jnp.asarray(_holey(120, 0, 0.25))
    res = bg.fit_em(Xm, 2, key=jax.random.key(0), prior=bg.GMMPrior(), missing="marginalize",
                    n_init=2, max_iter=300, tol=1e-10)
    p = res.params
    values = {"weights": p.weights, "means": p.means, "covariances": p.covariances}
    kw = dict(covariance_type="full", missing="marginalize")
    lj, trace = log_density(bg.gmm_model, (Xm, 2), kw, values)
    np.testing.assert_allclose(float(lj), Xm.shape[0] * float(res.objective), rtol=1e-10)
    site = trace["obs"]
    obs_ll = float(jnp.sum(site["fn"].log_prob(site["value"])))
    ref = _marginal_loglik(np.asarray(p.weights), np.asarray(p.means),
                           np.asarray(p.covariances), np.asarray(Xm))
    np.testing.assert_allclose(obs_ll, ref, rtol=1e-10)
    # the default rejects NaN, naming where
    with pytest.raises(ValueError, match="row"):
        log_density(bg.gmm_model, (Xm, 2), dict(covariance_type="full"), values)


@pytest.fixture(scope="module")
def posterior():
    """A NUTS posterior of data with 25% of entries missing, and its estimator twin."""
    Xm = _holey(90, 1, 0.25)
    kw = dict(num_warmup=150, num_samples=150, num_chains=2)
    idata = bg.fit_nuts(Xm, 2, key=jax.random.key(0), missing="marginalize",
                        progress_bar=False, **kw)
    bgm = bg.BayesianGaussianMixture(2, random_state=0, progress_bar=False,
                                     missing="marginalize", **kw).fit(Xm)
    return Xm, idata, bgm


def test_nuts_log_likelihood_is_the_observed_data_density_of_each_draw(posterior):
    import arviz as az
    Xm, idata, _ = posterior
    assert np.isnan(idata.observed_data["obs"].values).sum() == np.isnan(Xm).sum()
    post = idata.posterior
    for c, s in [(0, 0), (1, 77)]:
        w, m, cov = (np.asarray(post[v].values[c, s], np.float64)
                     for v in ("weights", "means", "covariances"))
        ll = np.asarray(idata.log_likelihood["obs"].values[c, s], np.float64)
        ref = _marginal_loglik(w, m, cov, Xm)
        np.testing.assert_allclose(ll.sum(), ref, rtol=1e-4)
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)
    # the two clusters are found from what was observed
    means = np.sort(post["means"].mean(("chain", "draw")).values[:, 0])
    np.testing.assert_allclose(means, [-3.0, 3.0], atol=0.6)


def test_estimator_predicts_and_imputes_with_holes(posterior):
    Xm, idata, bgm = posterior
    proba = bgm.predict_proba(Xm)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    empty = np.full((1, 2), np.nan)
    # a row with nothing observed: membership = the posterior mean of the weights
    np.testing.assert_allclose(bgm.predict_proba(empty)[0], bgm.weights_, rtol=1e-4)
    imp = bgm.impute(Xm, num_draws=20)
    assert imp.dims == ("draw", "obs_id", "feature") and imp.shape == (20,) + Xm.shape
    observed = ~np.isnan(Xm)
    np.testing.assert_array_equal(imp.values[:, observed], np.broadcast_to(
        Xm[observed], (20, observed.sum())))
    assert np.all(np.isfinite(imp.values))
    # different posterior draws: holes differ between imputations
    holes = np.isnan(Xm)
    assert np.all(imp.values[:, holes].std(axis=0) > 0)
    again = bgm.impute(Xm, num_draws=20)
    np.testing.assert_array_equal(again.values, imp.values)          # same seed, same answer
    ua = bgm.assignment_uncertainty(Xm)
    np.testing.assert_allclose(ua["mean"].values, proba, rtol=1e-5)


def test_svi_with_holes_records_observed_data_loglik(x64):
    Xm = _holey(60, 2, 0.2)
    idata = bg.fit_svi(Xm, 2, key=jax.random.key(1), missing="marginalize", num_steps=300,
                       num_samples=50, progress_bar=False)
    post = idata.posterior
    w, m, cov = (np.asarray(post[v].values[0, 3]) for v in ("weights", "means", "covariances"))
    np.testing.assert_allclose(idata.log_likelihood["obs"].values[0, 3].sum(),
                               _marginal_loglik(w, m, cov, Xm), rtol=1e-8)
    with pytest.raises(ValueError, match="row"):
        bg.fit_svi(Xm, 2, key=jax.random.key(1), num_steps=10, progress_bar=False)


# --- imputation ----------------------------------------------------------------------

SIGMA = np.array([[2.0, 0.9, -0.5], [0.9, 1.0, 0.3], [-0.5, 0.3, 1.5]])
MU = np.array([1.0, -2.0, 0.5])


def _conditional(mu, sigma, x):
    """The closed-form Gaussian conditional of the NaN block of x given the rest."""
    m, o = np.isnan(x), ~np.isnan(x)
    s_oo_inv = np.linalg.inv(sigma[np.ix_(o, o)])
    mean = mu[m] + sigma[np.ix_(m, o)] @ s_oo_inv @ (x[o] - mu[o])
    cov = sigma[np.ix_(m, m)] - sigma[np.ix_(m, o)] @ s_oo_inv @ sigma[np.ix_(o, m)]
    return mean, cov


def test_multiple_imputations_follow_the_gaussian_conditional(x64):
    """K = 1: the spread of the draws is the conditional covariance, their mean the
    conditional mean (Monte Carlo error bounded at 5 standard errors)."""
    p = bg.GMMParams(jnp.array([1.0]), jnp.asarray(MU[None]), jnp.asarray(SIGMA[None]), "full")
    X = np.array([[0.3, np.nan, np.nan], [np.nan, -1.0, np.nan], [2.0, np.nan, 1.0]])
    s = 20000
    imp = bg.impute(p, X, key=jax.random.key(3), num_draws=s).values
    means = np.asarray(bg.impute(p, X))
    for i, x in enumerate(X):
        mean, cov = _conditional(MU, SIGMA, x)
        holes = np.isnan(x)
        got = imp[:, i][:, holes]
        se = np.sqrt(np.diag(cov) / s)
        assert np.all(np.abs(got.mean(axis=0) - mean) < 5 * se)
        np.testing.assert_allclose(np.cov(got.T).reshape(cov.shape), cov, rtol=0.05,
                                   atol=0.02)
        np.testing.assert_allclose(means[i, holes], mean, rtol=1e-10)
        np.testing.assert_array_equal(imp[:, i][:, ~holes], np.broadcast_to(x[~holes],
                                                                          (s, (~holes).sum())))


def test_imputations_choose_components_by_responsibility(x64):
    """K = 2, far apart along x₂, with x₁ ambiguous: the share of draws near each
    component's conditional mean is the row's responsibility."""
    means = np.array([[0.0, -10.0], [1.0, 10.0]])
    covs = np.array([np.eye(2), np.eye(2)])
    p = bg.GMMParams(jnp.array([0.3, 0.7]), jnp.asarray(means), jnp.asarray(covs), "full")
    X = np.array([[0.5, np.nan], [np.nan, np.nan]])
    s = 8000
    imp = bg.impute(p, X, key=jax.random.key(4), num_draws=s).values
    r = np.asarray(bg.responsibilities(p, X, missing="marginalize"))
    for i in range(2):
        share = np.mean(imp[:, i, 1] > 0)
        assert abs(share - r[i, 1]) < 5 * np.sqrt(r[i, 1] * (1 - r[i, 1]) / s)
    np.testing.assert_allclose(r[1], [0.3, 0.7])                   # nothing observed
    # batch_size does not change the draws
    one_row = bg.impute(p, X, key=jax.random.key(4), num_draws=50, batch_size=1).values
    whole = bg.impute(p, X, key=jax.random.key(4), num_draws=50).values
    np.testing.assert_allclose(one_row, whole, rtol=1e-12)


def test_imputation_from_a_posterior_uses_its_draws(x64):
    """Each imputation uses one posterior draw: with a posterior of two point masses far
    apart, every imputation sits at the conditional mean of its own draw's θ."""
    import arviz as az
    mu_a, mu_b = np.array([[0.0, 0.0]]), np.array([[0.0, 50.0]])
    sig = np.array([[[1.0, 0.0], [0.0, 1e-6]]])
    post = {"weights": np.ones((1, 2, 1)), "means": np.stack([[mu_a, mu_b]]),
            "covariances": np.stack([[sig, sig]])}
    idata = az.from_dict(posterior=post, dims={"weights": ["component"],
                                                "means": ["component", "feature"],
                                                "covariances": ["component", "feature",
                                                                "feature_bis"]})
    X = np.array([[0.2, np.nan]])
    imp = bg.impute(idata, X, key=jax.random.key(0), num_draws=2)
    assert sorted(imp["posterior_draw"].values.tolist()) == [0, 1]  # without replacement
    for s in range(2):
        expected = [0.0, 50.0][int(imp["posterior_draw"].values[s])]
        assert abs(float(imp.values[s, 0, 1]) - expected) < 0.01
    with pytest.raises(TypeError, match="key"):
        bg.impute(idata, X)
    with pytest.raises(ValueError, match="infinity"):
        bg.impute(idata, np.array([[np.inf, 0.0]]), key=jax.random.key(0))

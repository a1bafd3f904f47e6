"""Prior programs (issue 15): the user writes the prior as a NumPyro function, the package
does the mixture. Checked against GMMPrior written by hand, a closed-form posterior, scipy's
optimiser on the log posterior, and an independent NumPyro model of posteriordb's
low_dim_gauss_mix."""

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import log_density
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import beta, halfnorm, norm

import bayes_gmm as bg
from bayes_gmm.datasets import load_low_dim_gauss_mix, load_old_faithful


def _conjugate(m0, psi, alpha=2.0, kappa=0.05, nu=5.0):
    """GMMPrior's full-covariance prior, written out as a program."""
    def program(k, d):
        w = numpyro.sample("weights", dist.Dirichlet(jnp.full(k, alpha)))
        cov = numpyro.sample("covariances", dist.InverseWishart(
            nu, scale_matrix=psi).expand([k]).to_event(1))
        means = numpyro.sample("means", dist.MultivariateNormal(
            m0, covariance_matrix=cov / kappa).to_event(1))
        return bg.GMMParams(w, means, cov, "full")
    return program


def _standard_faithful():
    X = np.asarray(load_old_faithful(), np.float64)
    return (X - X.mean(0)) / X.std(0)


def test_gmmprior_written_as_a_program_gives_the_same_map(x64):
    X = _standard_faithful()
    m0, psi = X.mean(0) + 0.1, 0.5 * np.cov(X.T)
    prior = bg.GMMPrior(weight_concentration=2.0, mean_prior=m0, mean_precision=0.05,
                        degrees_of_freedom=5.0, covariance_prior=psi)
    # tol=0: every one of max_iter steps, so the linearly converging closed-form EM is at
    # its fixed point to rounding (a tol on the objective leaves the parameters ~√tol off)
    kw = dict(key=jax.random.key(1), n_init=5, tol=0.0, max_iter=3000, dtype=np.float64)
    a = bg.fit_em(X, 2, prior=prior, **kw)
    b = bg.fit_em(X, 2, prior=_conjugate(jnp.asarray(m0), jnp.asarray(psi)), **kw)
    order = np.argsort(np.asarray(b.params.means)[:, 0])
    ref = np.argsort(np.asarray(a.params.means)[:, 0])
    # 1e-8: an optimiser of the objective locates its maximiser to about √eps (the
    # objective is flat to rounding within that); EM's fixed-point map goes further.
    for f in ("weights", "means", "covariances"):
        np.testing.assert_allclose(np.asarray(getattr(b.params, f))[order],
                                   np.asarray(getattr(a.params, f))[ref], rtol=1e-8,
                                   atol=1e-8)
    assert float(b.objective) == pytest.approx(float(a.objective), rel=1e-10)
    t = np.asarray(b.trace)
    t = t[np.isfinite(t)]
    assert np.all(np.diff(t) >= 0)
    # the model's log joint at the MAP is N × the objective: one model, one prior
    site = {"weights": b.params.weights, "means": b.params.means,
            "covariances": b.params.covariances}
    lj = log_density(bg.gmm_model, (jnp.asarray(X), 2),
                     dict(prior=_conjugate(jnp.asarray(m0), jnp.asarray(psi))), site)[0]
    assert float(lj) == pytest.approx(len(X) * float(b.objective), rel=1e-10)


def _aligned(idata):
    """The posterior with its components ordered by their mean first feature (two runs
    relabel to their own MAP, whose component order is arbitrary)."""
    post = idata.posterior
    order = np.argsort(post["means"].mean(("chain", "draw")).values[:, 0])
    return post.isel(component=order).assign_coords(component=np.arange(len(order)))


def _mcse_agree(a, b, names, z=5.0):
    pa, pb = _aligned(a), _aligned(b)
    for v in names:
        gap = np.abs(pa[v].mean(("chain", "draw")) - pb[v].mean(("chain", "draw"))).values
        se = np.sqrt(az.mcse(pa[[v]])[v].values ** 2 + az.mcse(pb[[v]])[v].values ** 2)
        assert np.all(gap <= z * se), (v, gap, se)


def test_gmmprior_written_as_a_program_gives_the_same_posterior():
    X = _standard_faithful().astype(np.float32)
    m0, psi = X.mean(0), 0.5 * np.cov(X.T)
    prior = bg.GMMPrior(weight_concentration=2.0, mean_prior=m0, mean_precision=0.05,
                        degrees_of_freedom=5.0, covariance_prior=psi)
    kw = dict(key=3, num_warmup=400, num_samples=600, num_chains=2, progress_bar=False)
    a = bg.fit_nuts(X, 2, prior=prior, **kw)
    b = bg.fit_nuts(X, 2, prior=_conjugate(jnp.asarray(m0), jnp.asarray(psi)), **kw)
    assert int(b.sample_stats["diverging"].sum()) == 0
    _mcse_agree(a, b, ["weights", "means", "covariances"])


def test_known_covariance_and_a_normal_mean_give_the_closed_form_posterior(x64):
    rng = np.random.default_rng(0)
    sigma = np.array([[1.0, 0.3], [0.3, 0.5]])
    X = rng.multivariate_normal([1.0, -1.0], sigma, size=40)
    m0, s0 = np.zeros(2), 4.0 * np.eye(2)

    def known(k, d):
        mu = numpyro.sample("mu", dist.MultivariateNormal(jnp.asarray(m0), jnp.asarray(s0)))
        return bg.GMMParams(jnp.ones(1), mu[None], jnp.asarray(sigma)[None], "full")

    prec = np.linalg.inv(s0) + len(X) * np.linalg.inv(sigma)
    s_n = np.linalg.inv(prec)
    m_n = s_n @ (np.linalg.inv(s0) @ m0 + np.linalg.inv(sigma) @ X.sum(0))
    # MAP: the posterior mode is its mean
    res = bg.fit_em(X, 1, key=0, prior=known, tol=1e-14, max_iter=50, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(res.params.means)[0], m_n, rtol=1e-8)
    idata = bg.fit_nuts(X, 1, key=2, prior=known, num_warmup=500, num_samples=2000,
                        num_chains=2, progress_bar=False, dtype=np.float64)
    s = az.summary(idata, var_names=["mu"], kind="all")
    assert np.all(np.abs(s["mean"].values - m_n) < 5 * s["mcse_mean"].values)
    assert np.all(np.abs(s["sd"].values - np.sqrt(np.diag(s_n))) < 5 * s["mcse_sd"].values)
    # the program's own site sits beside the mixture's parameters, in posterior and map
    np.testing.assert_array_equal(idata.posterior["mu"].values,
                                  idata.posterior["means"].values[:, :, 0])
    assert "mu" in idata.map


def _low_dim_prior(mu_loc=0.0, mu_scale=2.0):
    """posteriordb's low_dim_gauss_mix prior (means and scales in a component plate);
    other mean priors make mis-specified fits."""
    def program(k, d):
        with numpyro.plate("component", k):
            mu = numpyro.sample("mu", dist.Normal(mu_loc, mu_scale))
            sd = numpyro.sample("sigma", dist.HalfNormal(2.0))
        theta = numpyro.sample("theta", dist.Beta(5.0, 5.0))
        return bg.GMMParams(jnp.stack([theta, 1.0 - theta]), mu[:, None], jnp.square(sd),
                            "spherical")
    return program


_low_dim = _low_dim_prior()


def _log_post(v, y):
    """The low_dim_gauss_mix log posterior (no Jacobian) at constrained v, by scipy."""
    mu, sd, th = v[:2], v[2:4], v[4]
    like = th * norm.pdf(y, mu[0], sd[0]) + (1 - th) * norm.pdf(y, mu[1], sd[1])
    return (np.sum(np.log(like)) + norm.logpdf(mu, 0, 2).sum()
            + halfnorm.logpdf(sd, scale=2).sum() + beta.logpdf(th, 5, 5))


def test_map_is_the_optimum_scipy_finds(x64):
    y = load_low_dim_gauss_mix()[:300, 0]
    res = bg.fit_em(y[:, None], 2, key=0, prior=_low_dim, covariance_type="spherical",
                    tol=1e-12, max_iter=500, dtype=np.float64)
    p = res.params
    ours = np.r_[np.asarray(p.means)[:, 0], np.sqrt(np.asarray(p.covariances)),
                 np.asarray(p.weights)[0]]
    assert len(y) * float(res.objective) == pytest.approx(_log_post(ours, y), rel=1e-10)

    def to_v(u):
        return np.r_[u[:2], np.exp(u[2:4]), expit(u[4])]
    # scipy from the same start: the maximum-likelihood EM solution
    ml = bg.fit_em(y[:, None], 2, key=jax.random.split(jax.random.key(0))[0],
                   covariance_type="spherical", dtype=np.float64, tol=1e-3, max_iter=100)
    w0 = float(np.asarray(ml.params.weights)[0])
    u0 = np.r_[np.asarray(ml.params.means)[:, 0], 0.5 * np.log(np.asarray(
        ml.params.covariances)), np.log(w0 / (1 - w0))]
    opt = minimize(lambda u: -_log_post(to_v(u), y), u0, method="BFGS",
                   options={"gtol": 1e-10, "maxiter": 2000})
    np.testing.assert_allclose(ours, to_v(opt.x), rtol=1e-6, atol=1e-8)


def _independent_model(y):
    """low_dim_gauss_mix written directly in NumPyro (no bayes_gmm)."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0).expand([2]).to_event(1))
    sd = numpyro.sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
    th = numpyro.sample("theta", dist.Beta(5.0, 5.0))
    mix = dist.MixtureSameFamily(dist.Categorical(probs=jnp.stack([th, 1 - th])),
                                 dist.Normal(mu, sd))
    numpyro.sample("y", mix, obs=y)


def _sorted_by_mean(mu, sd, th):
    """Draws (S, 2) in the order of their means: label switching undone by the ordering
    posteriordb's model imposes."""
    order = np.argsort(mu, axis=1)
    take = np.take_along_axis
    w = np.stack([th, 1 - th], 1)
    return take(mu, order, 1), take(sd, order, 1), take(w, order, 1)


def test_low_dim_gauss_mix_agrees_with_an_independent_sampler():
    from numpyro.infer import MCMC, NUTS
    y = load_low_dim_gauss_mix().astype(np.float32)
    idata = bg.fit_nuts(y, 2, key=0, prior=_low_dim, covariance_type="spherical",
                        num_warmup=500, num_samples=1000, num_chains=2, progress_bar=False)
    assert int(idata.sample_stats["diverging"].sum()) == 0
    rhat = az.rhat(idata, var_names=["mu", "sigma", "theta"])
    assert max(float(rhat[v].max()) for v in ("mu", "sigma", "theta")) < 1.01
    # relabelling permutes the program's component-plate sites with the mixture's
    post = idata.posterior
    np.testing.assert_array_equal(post["mu"].values, post["means"].values[..., 0])
    np.testing.assert_allclose(post["sigma"].values ** 2, post["covariances"].values,
                               rtol=1e-6)
    mcmc = MCMC(NUTS(_independent_model), num_warmup=1000, num_samples=4000, num_chains=1,
                progress_bar=False)
    mcmc.run(jax.random.key(11), jnp.asarray(y[:, 0]))
    ref = mcmc.get_samples()
    c = post.sizes["chain"]
    a = _sorted_by_mean(post["mu"].values.reshape(-1, 2), post["sigma"].values.reshape(-1, 2),
                        post["weights"].values.reshape(-1, 2)[:, 0])
    b = _sorted_by_mean(np.asarray(ref["mu"]), np.asarray(ref["sigma"]),
                        np.asarray(ref["theta"]))
    for x, r in zip(a, b):
        # standard errors of the means from each run's effective sample size
        ess_x = az.ess(az.convert_to_dataset(x.reshape(c, -1, 2)))["x"].values
        ess_r = az.ess(az.convert_to_dataset(r[None]))["x"].values
        se = np.sqrt(x.var(0) / ess_x + r.var(0) / ess_r)
        assert np.all(np.abs(x.mean(0) - r.mean(0)) < 5 * se), (x.mean(0), r.mean(0), se)


@pytest.mark.parametrize("bad,match", [
    (lambda k, d: (numpyro.sample("m", dist.Normal(0, 1)), 1), "must return a bayes_gmm"),
    (lambda k, d: bg.GMMParams(jnp.ones(k) / k, jnp.zeros((k, d)), jnp.ones(k), "diag"),
     "covariance_type 'diag'"),
    (lambda k, d: bg.GMMParams(jnp.ones(k) / k, numpyro.sample(
        "m", dist.Normal(0, 1).expand([k]).to_event(1)), jnp.ones(k), "spherical"),
     "means of shape"),
    (lambda k, d: bg.GMMParams(jnp.ones(k) / k, jnp.zeros((k, d)), jnp.ones(k), "spherical"),
     "samples no site"),
    (lambda k, d: bg.GMMParams(jnp.ones(k) / k, numpyro.sample(
        "m", dist.Normal(0, 1).expand([k, d]).to_event(2)), -jnp.ones(k), "spherical"),
     "must be positive"),
    (lambda k, d: bg.GMMParams(jnp.ones(k) / k, numpyro.sample(
        "m", dist.Normal(0, 1).expand([k, d]).to_event(2)), jnp.full(k, jnp.nan),
        "spherical"), "non-finite covariances"),
])
def test_a_bad_program_is_a_clear_error(bad, match):
    X = _standard_faithful()
    with pytest.raises((ValueError, TypeError), match=match):
        bg.fit_em(X, 2, key=0, prior=bad, covariance_type="spherical")
    with pytest.raises((ValueError, TypeError), match=match):
        bg.fit_nuts(X, 2, key=0, prior=bad, covariance_type="spherical", num_warmup=1,
                    num_samples=1)


def test_the_bayesian_estimator_takes_a_program_through_svi():
    y = load_low_dim_gauss_mix()[:400].astype(np.float32)
    bgm = bg.BayesianGaussianMixture(2, covariance_type="spherical", prior=_low_dim,
                                     method="svi", num_steps=300, num_samples=200,
                                     random_state=0, progress_bar=False).fit(y)
    post = bgm.idata_.posterior
    assert {"mu", "sigma", "theta"} <= set(post.data_vars)
    # the program's sites are the mixture's parameters, draw by draw, after relabelling
    np.testing.assert_array_equal(post["mu"].values, post["means"].values[..., 0])
    np.testing.assert_allclose(post["theta"].values, post["weights"].values[..., 0],
                               rtol=1e-6)
    # and the fit finds the two clusters of the data (means near ±2.7 here)
    assert np.all(np.abs(np.sort(bgm.means_[:, 0])) > 1.5)


def test_sbc_of_a_non_conjugate_program_gives_uniform_ranks():
    from bayes_gmm.bayes.sbc import sbc
    ds = sbc(n_replications=50, n_components=2, n_features=1, n_samples=30,
             key=jax.random.key(4), prior=_low_dim, covariance_type="spherical",
             num_warmup=150, num_samples=99, n_bins=10)
    assert ds["ranks"].shape == (50, 7)
    assert np.all(ds["p_value"].values > 0.001), ds["p_value"].to_series()
    # and it can fail: fitted with a prior that pulls the means to +3, the ranks of the
    # true means pile up at the bottom
    pulled = _low_dim_prior(3.0, 0.3)
    wrong = sbc(n_replications=50, n_components=2, n_features=1, n_samples=30,
                key=jax.random.key(4), prior=_low_dim, fit_prior=pulled,
                covariance_type="spherical", num_warmup=150, num_samples=99, n_bins=10)
    assert wrong["p_value"].sel(quantity=["means[0,0]", "means[1,0]"]).max() < 1e-6


def test_compare_ranks_k_by_loo_under_a_program():
    def any_k(k, d):
        with numpyro.plate("component", k):
            mu = numpyro.sample("mu", dist.Normal(0.0, 3.0).expand([d]).to_event(1))
            sd = numpyro.sample("sigma", dist.HalfNormal(2.0))
        w = numpyro.sample("weights", dist.Dirichlet(jnp.full(k, 2.0)))
        return bg.GMMParams(w, mu, jnp.square(sd), "spherical")
    y = load_low_dim_gauss_mix()[:300].astype(np.float32)
    table = bg.compare(y, [1, 2], key=0, method="svi", covariance_type="spherical",
                       prior=any_k, num_steps=1500, num_samples=300, progress_bar=False)
    assert table.attrs["best_k"] == 2             # two clear clusters (means near ±2.7)
    assert table.loc[2, "elpd_loo"] > table.loc[1, "elpd_loo"] + 50


def test_what_a_program_does_not_take_yet_is_a_clear_error():
    X = _standard_faithful()
    with pytest.raises(ValueError, match="fit_em_stream takes a GMMPrior"):
        bg.fit_em_stream([X], 2, key=0, prior=_low_dim, covariance_type="spherical")
    with pytest.raises(ValueError, match="fit_em_many takes a GMMPrior"):
        bg.fit_em_many(np.stack([X, X]), 2, key=0, prior=_low_dim,
                       covariance_type="spherical")
    with pytest.raises(ValueError, match="sample_weight and pad_components"):
        bg.fit_em(X, 2, key=0, prior=_low_dim, covariance_type="spherical",
                  sample_weight=np.ones(len(X)))
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        bg.fit_em(Xn, 2, key=0, prior=_low_dim, covariance_type="spherical",
                  missing="marginalize")
    with pytest.raises(ValueError, match="init must be 'em'"):
        bg.fit_nuts(load_low_dim_gauss_mix()[:100], 2, key=0, prior=_low_dim,
                    covariance_type="spherical", init="em-multi", num_warmup=1,
                    num_samples=1)

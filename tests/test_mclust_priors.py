"""The prior of mclust's fourteen families (MAP-EM for all, NUTS/SVI where a sampler can
move), against scipy's densities written out here, scikit-learn-named twins, optimality
under perturbation, and NumPyro models written independently in the test."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import potential_energy
from scipy.stats import dirichlet, invgamma, invwishart
from scipy.stats import multivariate_normal as mvn

import bayes_gmm as bg
from bayes_gmm.core.covariance import MCLUST_TYPES, get_family

#: How each family's prior is written, here, independently of the package:
#: (density, once or per component) on the covariances; the means are N(m₀, Σ_k/κ₀).
KIND = {"EII": ("ig", "once"), "VII": ("ig", "each"), "EEI": ("igdiag", "once"),
        "VVI": ("igdiag", "each"), "VEI": ("igdiag", "each"), "EVI": ("igdiag", "each"),
        "EEE": ("iw", "once")}
KIND.update({n: ("iw", "each") for n in MCLUST_TYPES if n not in KIND})


def _prior(name, X):
    d = X.shape[1]
    density = KIND[name][0]
    scale = {"ig": 0.4, "igdiag": 0.3 * np.var(X, 0),
             "iw": 0.25 * np.cov(X.T) + 0.05 * np.diag(np.var(X, 0))}[density]
    return bg.GMMPrior(weight_concentration=1.5, mean_prior=X.mean(0) + 0.1,
                       mean_precision=0.05, degrees_of_freedom=d + 3.0,
                       covariance_prior=scale)


def _log_prior(name, p, prior):
    """log p(θ) from scipy, by the family's kind."""
    w, m, c = (np.asarray(a, np.float64) for a in (p.weights, p.means, p.covariances))
    k, d = m.shape
    nu, psi, kappa = prior.degrees_of_freedom, np.asarray(prior.covariance_prior), \
        prior.mean_precision
    lp = dirichlet(np.full(k, prior.weight_concentration)).logpdf(w)
    lp += sum(mvn(prior.mean_prior, c[j] / kappa).logpdf(m[j]) for j in range(k))
    density, how = KIND[name]
    comps = range(1) if how == "once" else range(k)
    for j in comps:
        if density == "iw":
            lp += invwishart(df=nu, scale=psi).logpdf(c[j])
        elif density == "ig":
            lp += invgamma(nu / 2, scale=psi / 2).logpdf(c[j, 0, 0])
        else:
            lp += np.sum(invgamma(nu / 2, scale=psi / 2).logpdf(np.diag(c[j])))
    return float(lp)


def _loglik(p, X):
    k, d = p.means.shape
    cov = np.asarray(p.family.to_full(jnp.asarray(p.covariances), k, d))
    dens = sum(float(w) * mvn(m, c).pdf(X) for w, m, c in
               zip(np.asarray(p.weights), np.asarray(p.means), cov))
    return float(np.sum(np.log(dens)))


@pytest.fixture(scope="module")
def map_fits(faithful):
    X = np.asarray(faithful, np.float64)
    with jax.enable_x64(True):
        return X, {name: bg.fit_em(X, 2, key=jax.random.key(4), covariance_type=name,
                                   prior=_prior(name, X), tol=1e-13, max_iter=3000,
                                   dtype=np.float64)
                   for name in MCLUST_TYPES}


@pytest.mark.parametrize("name", MCLUST_TYPES)
def test_map_objective_is_scipys_log_posterior_and_never_decreases(x64, map_fits, name):
    X, fits = map_fits
    res = fits[name]
    t = np.asarray(res.trace)
    t = t[np.isfinite(t)]
    assert np.all(np.diff(t) >= -1e-12 * np.abs(t[1:])), np.diff(t).min()
    ref = _loglik(res.params, X) + _log_prior(name, res.params, _prior(name, X))
    assert len(X) * float(res.objective) == pytest.approx(ref, rel=1e-10)


def _moves(name, rng):
    """Small moves that keep the family's constraints, one aspect at a time, as functions
    of a signed step t: (volume, shape, orientation) → new (volume, shape, orientation)."""
    v, s, o = name
    dv = rng.normal(size=2) if v == "V" else np.full(2, rng.normal())
    da = rng.normal(size=(2, 2)) if s == "V" else np.broadcast_to(rng.normal(size=2), (2, 2))
    da = da - da.mean(-1, keepdims=True)                         # keeps det A = 1
    th = rng.normal(size=2) if o == "V" else np.full(2, rng.normal())

    def rot(t):
        return np.stack([[[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]] for a in t * th])

    moves = [lambda t, vol, a, d: (vol * np.exp(t * dv), a, d)]
    if s != "I":
        moves.append(lambda t, vol, a, d: (vol, a * np.exp(t * da), d))
    if o != "I":
        moves.append(lambda t, vol, a, d: (vol, a, rot(t) @ d))
    return moves


@pytest.mark.parametrize("name", MCLUST_TYPES)
def test_perturbing_the_map_never_raises_the_log_posterior(x64, map_fits, name):
    # at a stationary point a step either way along any constrained direction lowers the
    # log posterior (a first-order error shows as a rise on one side)
    X, fits = map_fits
    p, prior = fits[name].params, _prior(name, X)

    def post(q):
        return _loglik(q, X) + _log_prior(name, q, prior)

    best = post(p)
    vol, shape, orient = (np.asarray(a) for a in bg.decompose(p))
    rng = np.random.default_rng(0)
    for _ in range(3):
        for move in _moves(name, rng):
            for t in (-1e-3, 1e-3):
                nv, na, nd = move(t, vol, shape, orient)
                cov = np.einsum("k,kij,kj,klj->kil", nv, nd, na, nd)
                assert post(bg.GMMParams(p.weights, p.means, cov, name)) <= best + 1e-9 * abs(best)
        dm = 1e-3 * rng.normal(size=(2, 2))
        for t in (-1.0, 1.0):
            assert post(bg.GMMParams(p.weights, p.means + t * dm, p.covariances, name)) <= best


@pytest.mark.parametrize("sk,mc", [("spherical", "VII"), ("diag", "VVI"), ("tied", "EEE")])
def test_vii_vvi_eee_are_spherical_diag_tied_under_the_prior(x64, faithful, sk, mc):
    from numpyro.infer.util import log_density
    X = np.asarray(faithful, np.float64)
    prior = bg.GMMPrior(weight_concentration=1.5)      # defaults from the data, as users do
    kw = dict(key=jax.random.key(3), prior=prior, tol=1e-12, max_iter=500, dtype=np.float64)
    a = bg.fit_em(X, 3, covariance_type=sk, **kw)
    b = bg.fit_em(X, 3, covariance_type=mc, **kw)
    full_a = np.asarray(a.params.family.to_full(a.params.covariances, 3, 2))
    np.testing.assert_allclose(np.asarray(b.params.covariances), full_a, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(np.asarray(b.params.means), np.asarray(a.params.means),
                               rtol=1e-10)
    assert float(b.objective) == pytest.approx(float(a.objective), rel=1e-12)
    # the NumPyro model: the same log joint at the MAP, and the same potential (Jacobian
    # included) at any unconstrained point, since the sampler moves in the same θ
    Xj = jnp.asarray(X)
    lds = [float(log_density(bg.gmm_model, (Xj, 3), dict(prior=prior, covariance_type=t),
                             {"weights": r.params.weights, "means": r.params.means,
                              "covariances": r.params.covariances})[0])
           for t, r in ((sk, a), (mc, b))]
    assert lds[1] == pytest.approx(lds[0], rel=1e-10)
    assert lds[0] == pytest.approx(len(X) * float(a.objective), rel=1e-9)
    rng = np.random.default_rng(1)
    shape = {"spherical": (3,), "diag": (3, 2), "tied": (3,)}[sk]
    u = {"weights": rng.normal(size=2), "means": X.mean(0) + rng.normal(size=(3, 2)),
         "covariances": rng.normal(size=shape)}
    u = {k_: jnp.asarray(v_) for k_, v_ in u.items()}
    pe = [potential_energy(bg.gmm_model, (Xj, 3), dict(prior=prior, covariance_type=t), u)
          for t in (sk, mc)]
    assert float(pe[1]) == pytest.approx(float(pe[0]), rel=1e-10)


def _reference_model(X, k, prior, shared_diag):
    """EII / EEI written directly in NumPyro: one σ² (or one σ²_d per feature) for all."""
    alpha, m0, kappa, nu, psi = prior
    d = X.shape[1]
    w = numpyro.sample("weights", dist.Dirichlet(jnp.full(k, alpha)))
    if shared_diag:
        v = numpyro.sample("covariances", dist.InverseGamma(nu / 2, psi / 2).to_event(1))
    else:
        v = numpyro.sample("covariances", dist.InverseGamma(nu / 2, psi / 2))
    var = jnp.broadcast_to(v, (k, d))
    mu = numpyro.sample("means", dist.Normal(m0, jnp.sqrt(var / kappa)).to_event(2))
    comp = dist.Normal(mu, jnp.sqrt(var)).to_event(1)
    numpyro.sample("obs", dist.MixtureSameFamily(dist.Categorical(w), comp), obs=X)


@pytest.mark.parametrize("name", ["EII", "EEI"])
def test_shared_families_are_the_model_written_by_hand(x64, faithful, name):
    X = jnp.asarray(np.asarray(faithful, np.float64))
    prior = _prior(name, np.asarray(X))
    ref_prior = (1.5, jnp.asarray(prior.mean_prior), 0.05, 5.0,
                 jnp.asarray(prior.covariance_prior))
    rng = np.random.default_rng(2)
    for _ in range(3):
        u = {"weights": rng.normal(size=2), "means": X.mean(0) + rng.normal(size=(3, 2)),
             "covariances": rng.normal(size=(2,) if name == "EEI" else ())}
        u = {k_: jnp.asarray(v_) for k_, v_ in u.items()}
        ours = potential_energy(bg.gmm_model, (X, 3),
                                dict(prior=prior, covariance_type=name), u)
        ref = potential_energy(_reference_model, (X, 3, ref_prior, name == "EEI"), {}, u)
        assert float(ours) == pytest.approx(float(ref), rel=1e-10)


@pytest.fixture(scope="module")
def eei_nuts(faithful):
    X = np.asarray(faithful, np.float32)
    X = (X - X.mean(0)) / X.std(0)
    idata = bg.fit_nuts(X, 2, key=5, covariance_type="EEI", num_warmup=300,
                        num_samples=300, num_chains=2, progress_bar=False)
    return X, idata


def test_nuts_samples_eei_in_its_family(eei_nuts):
    X, idata = eei_nuts
    cov = np.asarray(idata.posterior["covariances"])              # (chain, draw, K, D, D)
    assert cov.shape == (2, 300, 2, 2, 2)
    # every draw is one diagonal shared by both components
    np.testing.assert_array_equal(cov[..., 0, 0, 1], 0.0)
    np.testing.assert_allclose(cov[:, :, 1], cov[:, :, 0], rtol=1e-6)
    assert int(idata.sample_stats["diverging"].sum()) == 0
    rep = bg.check_diagnostics(idata)
    assert max(rep["max_rhat"].values()) < 1.05
    # the posterior sits at the MAP of the same prior (N = 272: a few posterior sds)
    em = bg.fit_em(X, 2, key=jax.random.key(0), covariance_type="EEI",
                   prior=bg.GMMPrior(), n_init=5)
    post_var = cov[..., 0, range(2), range(2)].reshape(-1, 2)
    z = (post_var.mean(0) - np.diag(np.asarray(em.params.covariances)[0])) / post_var.std(0)
    assert np.all(np.abs(z) < 3), z


def test_svi_fits_a_shared_family(faithful):
    X = np.asarray(faithful, np.float32)
    X = (X - X.mean(0)) / X.std(0)
    idata = bg.fit_svi(X, 2, key=0, covariance_type="EII", num_steps=300, num_samples=50,
                       progress_bar=False)
    cov = np.asarray(idata.posterior["covariances"])
    # σ² I, the same for both components, in every draw
    np.testing.assert_allclose(cov, np.broadcast_to(cov[..., :1, :1, :1] * np.eye(2), cov.shape),
                               rtol=1e-6, atol=0)
    assert np.all(np.isfinite(cov)) and np.all(cov[..., 0, 0, 0] > 0)


def test_the_estimator_fits_map_for_a_penalised_family(x64, faithful):
    # GaussianMixture(prior=) for VEV: its objective is scipy's log posterior at its fit
    X = np.asarray(faithful, np.float64)
    prior = _prior("VEV", X)
    gm = bg.GaussianMixture(2, covariance_type="VEV", prior=prior, n_init=3, tol=1e-10,
                            max_iter=3000, random_state=0).fit(X)
    p = bg.GMMParams(gm.weights_, gm.means_, gm.covariances_, "VEV")
    ref = _loglik(p, X) + _log_prior("VEV", p, prior)
    assert len(X) * gm.lower_bound_ == pytest.approx(ref, rel=1e-10)
    assert get_family("VEV").has_sampler is False

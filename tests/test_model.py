"""One model, one prior: the NumPyro model's log joint equals N × the MAP-EM objective;
MAP-EM at K = 1 is the closed-form conjugate posterior mode; prior draws have the
prior's moments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import Predictive
from numpyro.infer.util import log_density

import bayes_gmm as bg
from bayes_gmm import gmm_model
from bayes_gmm.core.em import data_prior
from helpers import full_covariances

from conftest import COVARIANCE_TYPES


def _random_params(rng, X, k, t):
    d = X.shape[1]
    w = rng.dirichlet(np.ones(k))
    mu = X[rng.choice(len(X), k, replace=False)] + rng.normal(size=(k, d))
    a = rng.normal(size=(k, d, d))
    cov = {"full": a @ a.transpose(0, 2, 1) + np.eye(d),
           "tied": a[0] @ a[0].T + np.eye(d),
           "diag": rng.uniform(0.5, 3.0, (k, d)),
           "spherical": rng.uniform(0.5, 3.0, k)}[t]
    return bg.GMMParams(jnp.asarray(w), jnp.asarray(mu), jnp.asarray(cov), t)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior", [bg.GMMPrior(),
                                   bg.GMMPrior(weight_concentration=2.5, mean_precision=0.3,
                                               degrees_of_freedom=7.0)],
                         ids=["default", "explicit"])
def test_log_joint_equals_em_objective(x64, faithful, covariance_type, prior):
    rng = np.random.default_rng(1)
    X = jnp.asarray(faithful)
    n = X.shape[0]
    for _ in range(3):
        p = _random_params(rng, faithful, 3, covariance_type)
        ld, _ = log_density(gmm_model, (X, 3), dict(prior=prior, covariance_type=covariance_type),
                            {"weights": p.weights, "means": p.means, "covariances": p.covariances})
        # max_iter=0: the EM objective evaluated at the given parameters.
        res = bg.fit_em(X, 3, key=jax.random.key(0), covariance_type=covariance_type,
                        prior=prior, init=p, max_iter=0)
        np.testing.assert_allclose(float(ld), n * float(res.objective), rtol=1e-8)


def _niw_mode(X, m0, kappa, nu, psi):
    n, d = X.shape
    xbar = X.mean(0)
    S = (X - xbar).T @ (X - xbar)
    dev = xbar - m0
    B = S + kappa * n / (kappa + n) * np.outer(dev, dev)
    mu = (n * xbar + kappa * m0) / (n + kappa)
    return mu, xbar, S, dev, B


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_map_k1_is_closed_form_mode(x64, covariance_type):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3)) @ np.array([[2.0, 0.3, 0], [0, 1.0, 0.5], [0, 0, 0.5]]) + 4.0
    n, d = X.shape
    m0, kappa, nu = np.array([1.0, -1.0, 0.5]), 0.7, 6.0
    psi = {"full": np.eye(d) * 2 + 0.5, "tied": np.eye(d) * 2 + 0.5,
           "diag": np.array([1.0, 2.0, 3.0]), "spherical": 1.5}[covariance_type]
    prior = bg.GMMPrior(1.0, m0, kappa, nu, psi)
    res = bg.fit_em(X, 1, key=jax.random.key(0), covariance_type=covariance_type, prior=prior,
                    max_iter=5, tol=0.0, reg_covar=0.0)
    mu, xbar, S, dev, B = _niw_mode(X, m0, kappa, nu, np.asarray(psi))
    if covariance_type in ("full", "tied"):
        cov = (psi + B) / (nu + n + d + 2)
    elif covariance_type == "diag":
        cov = (psi + np.diag(B)) / (nu + n + 3)
    else:
        cov = (psi + np.trace(B)) / (nu + n * d + d + 2)
    np.testing.assert_allclose(res.params.means[0], mu, rtol=1e-10)
    got = res.params.covariances if covariance_type == "tied" else res.params.covariances[0]
    np.testing.assert_allclose(got, cov, rtol=1e-10)
    np.testing.assert_allclose(res.params.weights, [1.0])

    # Independent of the formula: the log joint's gradient vanishes at the mode.
    def lj(means, covs):
        return log_density(gmm_model, (jnp.asarray(X), 1),
                           dict(prior=prior, covariance_type=covariance_type),
                           {"weights": res.params.weights, "means": means,
                            "covariances": covs})[0]
    g_mu, g_cov = jax.grad(lj, argnums=(0, 1))(res.params.means, res.params.covariances)
    assert np.max(np.abs(g_mu)) < 1e-8 * n
    if covariance_type in ("full", "tied"):
        g_cov = g_cov + np.swapaxes(g_cov, -1, -2)    # gradient on symmetric matrices
    assert np.max(np.abs(g_cov)) < 1e-7 * n


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_map_many_components_stays_positive_definite(x64, two_clusters, covariance_type):
    X, _ = two_clusters
    res = bg.fit_em(X, 8, key=jax.random.key(2), covariance_type=covariance_type,
                    prior=bg.GMMPrior(), reg_covar=0.0, max_iter=300)
    p = res.params
    assert all(np.all(np.isfinite(a)) for a in (p.weights, p.means, p.covariances))
    assert np.isfinite(res.objective)
    np.testing.assert_allclose(np.sum(p.weights), 1.0, rtol=1e-12)
    cov = np.asarray(full_covariances(p))
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    tr = np.asarray(res.trace)
    tr = tr[np.isfinite(tr)]
    assert np.all(np.diff(tr) >= -1e-10 * np.abs(tr[:-1]))


def test_sparse_map_prunes_without_nan(x64, two_clusters):
    """α < 1: a component whose soft count falls below 1 − α gets weight exactly 0 and stays
    finite (its parameters go to the prior mode)."""
    X, _ = two_clusters
    init = bg.GMMParams(jnp.array([0.45, 0.45, 0.1]), jnp.array([[0.0, 1.0], [2.0, 1.0],
                                                                  [500.0, 500.0]]),
                        jnp.broadcast_to(jnp.eye(2) * 0.3, (3, 2, 2)), "full")
    res = bg.fit_em(X, 3, key=jax.random.key(0), prior=bg.GMMPrior(weight_concentration=0.5),
                    init=init, max_iter=200, reg_covar=0.0)
    w = np.asarray(res.params.weights)
    assert np.all(np.isfinite(res.params.means)) and np.all(np.isfinite(res.params.covariances))
    assert np.isfinite(res.objective)
    np.testing.assert_allclose(w.sum(), 1.0)
    assert w[2] == 0.0 and np.all(w[:2] > 0.2), w
    assert np.all(np.linalg.eigvalsh(np.asarray(res.params.covariances)) > 0)
    tr = np.asarray(res.trace)
    tr = tr[np.isfinite(tr)]
    assert np.all(np.diff(tr) >= -1e-10 * np.abs(tr[:-1]))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_prior_predictive_moments(x64, covariance_type):
    k, d, draws = 3, 2, 4000
    alpha = np.array([1.0, 2.0, 3.0])
    m0 = np.array([1.0, -2.0])
    nu = d + 6.0
    psi = {"full": np.array([[2.0, 0.5], [0.5, 1.0]]), "tied": np.array([[2.0, 0.5], [0.5, 1.0]]),
           "diag": np.array([2.0, 1.0]), "spherical": 1.5}[covariance_type]
    prior = bg.GMMPrior(alpha, m0, 0.5, nu, psi)
    pred = Predictive(gmm_model, num_samples=draws)(
        jax.random.key(0), None, k, prior=prior, covariance_type=covariance_type,
        n_samples=5, n_features=d)
    assert pred["obs"].shape == (draws, 5, d)

    def close(samples, expected):
        s = np.asarray(samples)
        se = s.std(0) / np.sqrt(draws)
        assert np.all(np.abs(s.mean(0) - expected) < 5 * se + 1e-12), (s.mean(0), expected)

    close(pred["weights"], np.broadcast_to(alpha / alpha.sum(), (k,)))
    close(pred["means"], np.broadcast_to(m0, (k, d)))
    if covariance_type in ("full", "tied"):
        expected = psi / (nu - d - 1)
    else:
        expected = psi / (nu - 2)
    close(pred["covariances"], np.broadcast_to(expected, pred["covariances"].shape[1:]))


def test_subsample_scales_likelihood(x64, faithful):
    """With subsample_size, the plate rescales the minibatch log-likelihood by N / B."""
    X = jnp.asarray(faithful)
    p = _random_params(np.random.default_rng(0), faithful, 2, "full")
    vals = {"weights": p.weights, "means": p.means, "covariances": p.covariances}
    full, _ = log_density(gmm_model, (X, 2), dict(covariance_type="full"), vals)
    with jax.default_device(jax.devices("cpu")[0]):
        import numpyro
        with numpyro.handlers.seed(rng_seed=0):
            sub, tr = log_density(gmm_model, (X, 2),
                                  dict(covariance_type="full", subsample_size=272), vals)
    np.testing.assert_allclose(float(sub), float(full), rtol=1e-10)


def test_default_prior_is_unit_invariant(x64, faithful):
    a = data_prior(bg.GMMPrior(), jnp.asarray(faithful), 2, "full")
    b = data_prior(bg.GMMPrior(), jnp.asarray(faithful * 1000.0), 2, "full")
    np.testing.assert_allclose(b.mean_prior, 1000.0 * a.mean_prior, rtol=1e-12)
    np.testing.assert_allclose(b.covariance_prior, 1e6 * a.covariance_prior, rtol=1e-9)


@pytest.mark.parametrize("field,value,covariance_type", [
    ("weight_concentration", 0.0, "full"),
    ("weight_concentration", [1.0, 2.0, 3.0], "full"),
    ("mean_precision", -1.0, "full"),
    ("degrees_of_freedom", 0.5, "full"),
    ("covariance_prior", [[1.0, 2.0], [2.0, 1.0]], "full"),
    ("covariance_prior", [1.0, 2.0], "tied"),
    ("covariance_prior", [-1.0, 1.0], "diag"),
    ("mean_prior", [1.0, 2.0, 3.0], "diag"),
])
def test_bad_hyperparameters_name_the_field(faithful, field, value, covariance_type):
    prior = bg.GMMPrior()._replace(**{field: value})
    with pytest.raises(ValueError, match=field):
        bg.fit_em(faithful, 2, key=jax.random.key(0), covariance_type=covariance_type,
                  prior=prior)

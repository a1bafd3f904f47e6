"""A covariance family is one class: a fifth family, written here and registered for the
duration of the test, runs through EM (ML and MAP), the densities, the estimator, the
NumPyro model and InferenceData without a change anywhere else in the package.

The family is mclust's EII, Σ_k = λI with one λ shared by all components (covariances: a
scalar). Its M-steps are checked against closed forms computed here from the
responsibilities, and the one-model-one-prior identity (log joint = N × MAP objective)
against the NumPyro model.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import log_density

import bayes_gmm as bg
from bayes_gmm.core.covariance import FAMILIES, CovarianceFamily
from bayes_gmm.core.em import data_prior


class EII(CovarianceFamily):
    """One variance λ shared by every component and feature: Σ_k = λI."""

    name = "EII"
    dims = ()
    shared = True

    def shape(self, k, d):
        return ()

    def n_parameters(self, k, d):
        return 1

    def unit(self, k, d, dtype):
        return jnp.ones((), dtype)

    def to_full(self, cov, k, d, xp=jnp):
        return xp.broadcast_to(cov * xp.eye(d, dtype=cov.dtype), (k, d, d))

    def precision_cholesky(self, cov):
        return jax.lax.rsqrt(cov)

    def covariances_from_precision_cholesky(self, u):
        return 1.0 / jnp.square(u)

    def precisions(self, cov):
        return 1.0 / cov

    def precision_cholesky_from_precisions(self, prec):
        return jnp.sqrt(prec)

    def log_det_precision_cholesky(self, u, d):
        return d * jnp.log(u)

    def mahalanobis(self, X, means, u):
        d2 = (jnp.sum(jnp.square(X), 1)[:, None] - 2.0 * X @ means.T
              + jnp.sum(jnp.square(means), 1)[None])
        return jnp.maximum(d2, 0.0) * jnp.square(u)

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        return jnp.sum(S) / (jnp.sum(nk) * S.shape[1]) + reg_covar

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d, prev=None):
        B = jnp.sum(S) + jnp.sum(shrink[:, None] * jnp.square(dev))
        return (psi + B) / (nu + total * d + k * d + 2.0)

    def add_floor(self, cov, eps, floor, d):
        return cov * (1 + 10 * eps) + floor

    def default_scale(self, nu, target, k, d):
        return (nu + k * d + 2.0) * jnp.mean(jnp.diagonal(target))

    def scale_shapes(self, d):
        return ((),)

    def covariance_prior(self, nu, psi, k, d):
        return dist.InverseGamma(0.5 * nu, 0.5 * psi)

    def mean_prior(self, m0, cov, kappa, k, d):
        return dist.Normal(m0, jnp.sqrt(cov / kappa)).expand([k, d]).to_event(2)

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        z = jax.random.normal(keys[0], (num_chains,), cov.dtype)
        return cov * jnp.exp(jitter * z * jnp.sqrt(2.0 / ((n + 1.0) * d)))

    def underdetermined(self, weights, n_eff, d):
        return (np.flatnonzero(weights > 0) if n_eff < 2 else np.array([], int)), 2


@pytest.fixture
def eii(monkeypatch):
    monkeypatch.setitem(FAMILIES, "EII", EII())


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(m, 0.7, (80, 2)) for m in ((0, 0), (4, 1), (-3, 3))])


def _stats(X, p):
    """Responsibilities, N_k, x̄_k and the pooled scatter Σ_k Σ_n r_nk ‖x_n − x̄_k‖²."""
    r = np.asarray(bg.responsibilities(p, X))
    nk = r.sum(0)
    xbar = r.T @ X / nk[:, None]
    scatter = sum(np.sum(r[:, k] * np.sum((X - xbar[k]) ** 2, 1)) for k in range(len(nk)))
    return r, nk, xbar, scatter


def test_ml_step_is_the_closed_form(x64, eii, data):
    X = data
    k, (n, d) = 3, data.shape
    p0 = bg.GMMParams(jnp.full(3, 1 / 3), jnp.asarray(X[[0, 100, 200]]), jnp.asarray(1.3), "EII")
    one = bg.fit_em(X, k, key=0, covariance_type="EII", init=p0, max_iter=1, tol=0.0,
                    reg_covar=0.0)
    _, nk, xbar, scatter = _stats(X, p0)
    np.testing.assert_allclose(one.params.weights, nk / n, rtol=1e-10)
    np.testing.assert_allclose(one.params.means, xbar, rtol=1e-10)
    np.testing.assert_allclose(one.params.covariances, scatter / (n * d), rtol=1e-9)


def test_ml_fit_is_monotone_and_scores(x64, eii, data):
    res = bg.fit_em(data, 3, key=1, covariance_type="EII", tol=1e-10, max_iter=300, n_init=10)
    trace = np.asarray(res.trace)[: int(res.n_iter)]
    assert bool(res.converged) and np.all(np.diff(trace) >= -1e-12)
    assert res.params.covariances.shape == ()
    np.testing.assert_allclose(float(res.params.covariances), 0.49, rtol=0.2)   # 0.7²
    # BIC counts K − 1 weights, K·D means and one variance.
    ll = float(np.sum(np.asarray(bg.log_prob(res.params, data))))
    np.testing.assert_allclose(float(bg.bic(res.params, data)),
                               -2 * ll + (2 + 6 + 1) * np.log(len(data)), rtol=1e-12)


def test_map_objective_is_the_numpyro_log_joint(x64, eii, data):
    prior = bg.GMMPrior(weight_concentration=2.0)
    res = bg.fit_em(data, 3, key=2, covariance_type="EII", prior=prior, tol=1e-12,
                    max_iter=500)
    p = res.params
    lj, _ = log_density(bg.gmm_model, (jnp.asarray(data), 3),
                        dict(prior=prior, covariance_type="EII"),
                        {"weights": p.weights, "means": p.means, "covariances": p.covariances})
    np.testing.assert_allclose(float(lj), len(data) * float(res.objective), rtol=1e-10)
    # At the MAP the shared variance is the closed-form mode given the responsibilities.
    r_prior = data_prior(prior, jnp.asarray(data), 3, "EII")
    _, nk, xbar, scatter = _stats(data, p)
    kappa, m0 = float(r_prior.mean_precision), np.asarray(r_prior.mean_prior)
    shrink = kappa * nk / (nk + kappa)
    B = scatter + np.sum(shrink[:, None] * (xbar - m0) ** 2)
    n, d = data.shape
    mode = (float(r_prior.covariance_prior) + B) / (float(r_prior.degrees_of_freedom)
                                                    + n * d + 3 * d + 2)
    np.testing.assert_allclose(float(p.covariances), mode, rtol=1e-6)


def test_estimator_and_inferencedata(x64, eii, data):
    gm = bg.GaussianMixture(3, covariance_type="EII", random_state=0).fit(data)
    assert gm.covariances_.shape == () and gm.precisions_.shape == ()
    np.testing.assert_allclose(gm.precisions_, 1 / gm.covariances_, rtol=1e-12)
    assert gm.predict(data).shape == (len(data),)
    from bayes_gmm.bayes.idata import params_dataset, params_from_dataset
    p = bg.GMMParams(gm.weights_, gm.means_, gm.covariances_, "EII")
    ds = params_dataset(p)
    assert ds["covariances"].dims == ()
    back = params_from_dataset(ds)
    assert back.covariance_type == "EII"

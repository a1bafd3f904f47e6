"""densities.py: log_prob, responsibilities, predict, sample, BIC/AIC against scipy/sklearn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

import bayes_gmm as bg
from helpers import COVARIANCE_TYPES, full_covariances

K, D = 3, 2


def make_params(covariance_type, dtype=np.float64):
    rng = np.random.default_rng(0)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0], [4.0, 1.0], [-2.0, 5.0]])
    if covariance_type == "full":
        cov = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.7, -0.2], [-0.2, 1.2]],
                        [[2.0, 0.9], [0.9, 1.0]]])
    elif covariance_type == "tied":
        cov = np.array([[1.0, 0.4], [0.4, 0.8]])
    elif covariance_type == "diag":
        cov = rng.uniform(0.3, 2.0, size=(K, D))
    else:
        cov = np.array([0.5, 1.0, 2.0])
    return bg.GMMParams(*(jnp.asarray(a, dtype) for a in (weights, means, cov)),
                        covariance_type)


def scipy_log_prob(params, X):
    covs = np.asarray(full_covariances(params))
    comp = np.stack([multivariate_normal(np.asarray(params.means[k]), covs[k]).logpdf(X)
                     for k in range(K)], axis=1)
    return comp + np.log(np.asarray(params.weights))[None]


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(1).normal(size=(200, D)) * 3.0


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_prob_and_responsibilities_match_scipy(x64, X, covariance_type):
    params = make_params(covariance_type)
    joint = scipy_log_prob(params, X)
    np.testing.assert_allclose(bg.log_prob(params, X), logsumexp(joint, axis=1), rtol=1e-10)
    resp = np.asarray(bg.responsibilities(params, X))
    assert resp.shape == (200, K)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(resp, np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(bg.predict(params, X), np.argmax(joint, axis=1))


def test_batch_size_gives_same_values(x64, X):
    params = make_params("full")
    np.testing.assert_allclose(bg.log_prob(params, X, batch_size=64), bg.log_prob(params, X),
                               rtol=1e-13)
    np.testing.assert_allclose(bg.responsibilities(params, X, batch_size=64),
                               bg.responsibilities(params, X), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(bg.predict(params, X, batch_size=64), bg.predict(params, X))


def test_far_points_stay_finite():
    # log-sum-exp: a point far from every component must not underflow to -inf / NaN.
    params = make_params("full", np.float32)
    far = np.array([[1e3, -1e3], [50.0, 50.0]], np.float32)
    lp = np.asarray(bg.log_prob(params, far))
    r = np.asarray(bg.responsibilities(params, far))
    assert np.all(np.isfinite(lp)) and np.all(np.isfinite(r))
    np.testing.assert_allclose(r.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_sample_moments_and_labels(x64, covariance_type):
    params = make_params(covariance_type)
    n = 40_000
    Xs, labels = bg.sample(params, jax.random.key(0), n)
    Xs, labels = np.asarray(Xs), np.asarray(labels)
    assert Xs.shape == (n, D) and labels.shape == (n,)
    assert set(np.unique(labels)) <= set(range(K))
    freq = np.bincount(labels, minlength=K) / n
    # Binomial standard errors are ≤ 0.0025 here: 5 sigma.
    np.testing.assert_allclose(freq, params.weights, atol=0.0125)
    covs = np.asarray(full_covariances(params))
    for k in range(K):
        xk = Xs[labels == k]
        se = np.sqrt(np.diag(covs[k]) / len(xk))
        assert np.all(np.abs(xk.mean(0) - np.asarray(params.means[k])) < 5 * se)
        np.testing.assert_allclose(np.cov(xk.T), covs[k], atol=0.08 * np.abs(covs[k]).max())
    # The same key gives the same draw; another key another one.
    again = np.asarray(bg.sample(params, jax.random.key(0), n)[0])
    np.testing.assert_array_equal(again, Xs)
    assert not np.allclose(np.asarray(bg.sample(params, jax.random.key(1), n)[0]), Xs)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bic_aic_match_sklearn(x64, X, covariance_type):
    params = make_params(covariance_type)
    gm = GaussianMixture(K, covariance_type=covariance_type)
    gm.weights_ = np.asarray(params.weights)
    gm.means_ = np.asarray(params.means)
    gm.covariances_ = np.asarray(params.covariances)
    gm.precisions_cholesky_ = _compute_precision_cholesky(gm.covariances_, covariance_type)
    gm.n_features_in_ = D
    np.testing.assert_allclose(bg.bic(params, X), gm.bic(X), rtol=1e-10)
    np.testing.assert_allclose(bg.aic(params, X), gm.aic(X), rtol=1e-10)
    np.testing.assert_allclose(bg.log_prob(params, X), gm.score_samples(X), rtol=1e-10)


def test_bad_input(X):
    params = make_params("full", np.float32)
    with pytest.raises(ValueError, match="features"):
        bg.log_prob(params, np.zeros((5, 3)))
    with pytest.raises(TypeError, match="GMMParams"):
        bg.log_prob({"weights": 1}, X)
    with pytest.raises(ValueError, match="row 0, column 1"):
        bg.responsibilities(params, np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="n"):
        bg.sample(params, jax.random.key(0), 0)


def test_log_normalize_matches_scipy_with_pruned_components_and_row_weights(x64):
    """One exponential per entry (core.normalize) against scipy's logsumexp and softmax:
    entries 700 apart (exp would overflow unshifted), weight-0 components (−∞ columns),
    row weights; and its gradient is the softmax, as jax's logsumexp's."""
    from scipy.special import softmax
    from bayes_gmm.core.normalize import log_normalize
    rng = np.random.default_rng(3)
    wlp = rng.normal(scale=300.0, size=(50, 4))
    wlp[:, 2] = -np.inf                                      # a pruned component
    wlp[7] = [-1e4, -1e4 - 700.0, -np.inf, -1e4 + 3.0]       # far in the tail
    w = rng.uniform(0.0, 3.0, size=50)
    lse, r = log_normalize(jnp.asarray(wlp), jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(lse), logsumexp(wlp, axis=1), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(r), softmax(wlp, axis=1) * w[:, None], rtol=1e-13,
                               atol=1e-300)
    assert np.all(np.asarray(r)[:, 2] == 0.0)
    g = jax.grad(lambda a: jnp.sum(jnp.asarray(w) * log_normalize(a)[0]))(jnp.asarray(wlp))
    np.testing.assert_allclose(np.asarray(g), softmax(wlp, axis=1) * w[:, None], rtol=1e-13,
                               atol=1e-300)

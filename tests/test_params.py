"""params.py: covariance-type algebra against scikit-learn and scipy (float64)."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import (_compute_precision_cholesky,
                                               _estimate_log_gaussian_prob)

from bayes_gmm.params import (GMMParams, component_log_prob, covariance_shape,
                              covariances_from_precision_cholesky, full_covariances,
                              log_det_precision_cholesky, n_parameters, precision_cholesky,
                              precision_cholesky_from_precisions, precisions)

from bayes_gmm.params import COVARIANCE_TYPES

K, D, N = 3, 4, 50


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.5 * np.eye(d)


def random_covariances(covariance_type, seed=0):
    """Random valid covariances of the given type (NumPy, float64)."""
    rng = np.random.default_rng(seed)
    if covariance_type == "full":
        return np.stack([_random_spd(rng, D) for _ in range(K)])
    if covariance_type == "tied":
        return _random_spd(rng, D)
    if covariance_type == "diag":
        return rng.uniform(0.2, 3.0, size=(K, D))
    return rng.uniform(0.2, 3.0, size=(K,))


def dense(cov, covariance_type):
    """(K, D, D) covariances built in NumPy, independently of the library."""
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.broadcast_to(cov, (K, D, D))
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(D) for c in cov])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(N, D)) * 2.0, rng.normal(size=(K, D))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precision_cholesky_matches_sklearn(x64, covariance_type):
    cov = random_covariances(covariance_type)
    ours = np.asarray(precision_cholesky(jnp.asarray(cov), covariance_type))
    ref = _compute_precision_cholesky(cov, covariance_type)
    assert ours.shape == ref.shape == covariance_shape(K, D, covariance_type)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_round_trips(x64, covariance_type):
    cov = random_covariances(covariance_type, seed=3)
    u = precision_cholesky(jnp.asarray(cov), covariance_type)
    np.testing.assert_allclose(covariances_from_precision_cholesky(u, covariance_type), cov,
                               rtol=1e-10, atol=1e-12)
    prec = precisions(jnp.asarray(cov), covariance_type)
    # Precisions are the inverse covariances (checked with NumPy's inverse as the reference).
    ref_prec = dense(cov, covariance_type)
    ref_prec = np.linalg.inv(ref_prec)
    got = np.asarray(full_covariances(GMMParams(jnp.ones(K) / K, jnp.zeros((K, D)), prec,
                                                covariance_type)))
    np.testing.assert_allclose(got, ref_prec, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(precision_cholesky_from_precisions(prec, covariance_type), u,
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_component_log_prob_matches_scipy_and_sklearn(x64, data, covariance_type):
    X, means = data
    cov = random_covariances(covariance_type, seed=5)
    u = precision_cholesky(jnp.asarray(cov), covariance_type)
    got = np.asarray(component_log_prob(jnp.asarray(X), jnp.asarray(means), u, covariance_type))
    assert got.shape == (N, K)
    full = dense(cov, covariance_type)
    ref = np.stack([multivariate_normal(means[k], full[k]).logpdf(X) for k in range(K)], axis=1)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    sk = _estimate_log_gaussian_prob(X, means, _compute_precision_cholesky(cov, covariance_type),
                                     covariance_type)
    np.testing.assert_allclose(got, sk, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_det_is_half_log_det_precision(x64, covariance_type):
    cov = random_covariances(covariance_type, seed=7)
    u = precision_cholesky(jnp.asarray(cov), covariance_type)
    got = np.broadcast_to(np.asarray(log_det_precision_cholesky(u, covariance_type, D)), (K,))
    ref = -0.5 * np.linalg.slogdet(dense(cov, covariance_type))[1]
    np.testing.assert_allclose(got, ref, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("k,d", [(1, 1), (3, 2), (5, 7)])
def test_n_parameters_matches_sklearn(covariance_type, k, d):
    gm = GaussianMixture(n_components=k, covariance_type=covariance_type)
    gm.means_ = np.zeros((k, d))
    assert n_parameters(k, d, covariance_type) == gm._n_parameters()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gmmparams_is_pytree_with_static_type(covariance_type):
    import jax
    cov = jnp.asarray(random_covariances(covariance_type), jnp.float32)
    p = GMMParams(jnp.ones(K) / K, jnp.zeros((K, D)), cov, covariance_type)
    leaves, treedef = jax.tree.flatten(p)
    assert len(leaves) == 3
    q = jax.tree.unflatten(treedef, leaves)
    assert q.covariance_type == covariance_type
    assert p.n_components == K and p.n_features == D
    assert full_covariances(p).shape == (K, D, D)

"""core/covariance.py: each covariance family's algebra against scikit-learn and scipy
(float64), and the registry."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import (_compute_precision_cholesky,
                                               _estimate_log_gaussian_prob)

from bayes_gmm import GMMParams
from bayes_gmm.core.covariance import FAMILIES, family_from_dims
from bayes_gmm.core.mixture import component_log_prob
from bayes_gmm.densities import n_parameters
from helpers import COVARIANCE_TYPES, full_covariances, get_family

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
    fam = get_family(covariance_type)
    ours = np.asarray(fam.precision_cholesky(jnp.asarray(cov)))
    ref = _compute_precision_cholesky(cov, covariance_type)
    assert ours.shape == ref.shape == fam.shape(K, D)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_round_trips(x64, covariance_type):
    cov = random_covariances(covariance_type, seed=3)
    fam = get_family(covariance_type)
    u = fam.precision_cholesky(jnp.asarray(cov))
    np.testing.assert_allclose(fam.covariances_from_precision_cholesky(u), cov,
                               rtol=1e-10, atol=1e-12)
    prec = fam.precisions(jnp.asarray(cov))
    # Precisions are the inverse covariances (checked with NumPy's inverse as the reference).
    ref_prec = dense(cov, covariance_type)
    ref_prec = np.linalg.inv(ref_prec)
    got = np.asarray(full_covariances(GMMParams(jnp.ones(K) / K, jnp.zeros((K, D)), prec,
                                                covariance_type)))
    np.testing.assert_allclose(got, ref_prec, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fam.precision_cholesky_from_precisions(prec), u,
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_component_log_prob_matches_scipy_and_sklearn(x64, data, covariance_type):
    X, means = data
    cov = random_covariances(covariance_type, seed=5)
    p = GMMParams(jnp.ones(K) / K, jnp.asarray(means), jnp.asarray(cov), covariance_type)
    got = np.asarray(component_log_prob(p, jnp.asarray(X)))
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
    fam = get_family(covariance_type)
    u = fam.precision_cholesky(jnp.asarray(cov))
    got = np.broadcast_to(np.asarray(fam.log_det_precision_cholesky(u, D)), (K,))
    ref = -0.5 * np.linalg.slogdet(dense(cov, covariance_type))[1]
    np.testing.assert_allclose(got, ref, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("k,d", [(1, 1), (3, 2), (5, 7)])
def test_n_parameters_matches_sklearn(covariance_type, k, d):
    gm = GaussianMixture(n_components=k, covariance_type=covariance_type)
    gm.means_ = np.zeros((k, d))
    fam = get_family(covariance_type)
    p = GMMParams(np.ones(k) / k, np.zeros((k, d)), np.ones(fam.shape(k, d)), covariance_type)
    assert n_parameters(p) == gm._n_parameters()


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


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_registry_round_trips_names_and_dims(covariance_type):
    fam = get_family(covariance_type)
    assert fam is FAMILIES[covariance_type] and fam.name == covariance_type
    assert family_from_dims(fam.dims) is fam
    assert get_family(fam) is fam


def test_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        get_family("banana")
    with pytest.raises(ValueError, match="no covariance family"):
        family_from_dims(("component", "banana"))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_prior_distributions_have_the_family_shapes(x64, covariance_type):
    """The covariance prior samples this family's shape and its mean (over draws) is the
    closed-form E[Σ] = Ψ₀ / (ν₀ − D − 1) (inverse Wishart) or ψ / (ν₀ − 2) (inverse gamma)."""
    import jax
    fam = get_family(covariance_type)
    nu = jnp.asarray(D + 6.0)
    target = dense(random_covariances(covariance_type, seed=11), covariance_type)
    psi = fam.default_scale(nu, jnp.asarray(target[0]), K, D)
    draws = fam.covariance_prior(nu, psi, K, D).sample(jax.random.key(0), (20000,))
    assert draws.shape == (20000,) + fam.shape(K, D)
    mean_full = np.asarray(jax.vmap(lambda c: fam.to_full(c, K, D))(draws)).mean(0)
    # Inverse Wishart for the matrix families, inverse gamma for the diagonal ones.
    denom = float(nu) - (D + 1.0 if fam.matrix else 2.0)
    expect_cov = np.broadcast_to(np.asarray(psi) / denom, fam.shape(K, D))
    expect = np.asarray(fam.to_full(jnp.asarray(expect_cov), K, D))
    np.testing.assert_allclose(mean_full, expect, rtol=0.05, atol=0.05 * np.abs(expect).max())


#: What each family keeps of a (D, D) target: the projection on its covariance shape.
_PROJECT = {"full": lambda T: T, "tied": lambda T: T, "diag": lambda T: np.diag(np.diag(T)),
            "spherical": lambda T: np.mean(np.diag(T)) * np.eye(len(T))}


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_default_scale_puts_the_empty_component_mode_at_the_target(x64, covariance_type):
    """The default prior's Ψ₀ (default_scale) makes the MAP covariance of a component that
    sees no data equal the target, projected on the family's shape: checked through the
    family's own map_covariance with all-zero statistics."""
    fam = get_family(covariance_type)
    rng = np.random.default_rng(5)
    A = rng.normal(size=(D, D))
    T = A @ A.T + D * np.eye(D)
    nu = jnp.asarray(D + 2.0)
    psi = fam.default_scale(nu, jnp.asarray(T), K, D)
    _, S = fam.moments(jnp.zeros((3, D)), jnp.zeros((3, K)), jnp.zeros((K, D)))
    zk = jnp.zeros((K,))
    mode = fam.map_covariance(S, zk, zk, jnp.zeros((K, D)), nu, psi, 0.0, K, D)
    got = np.asarray(fam.to_full(mode, K, D))
    np.testing.assert_allclose(got, np.broadcast_to(_PROJECT[covariance_type](T), (K, D, D)),
                               rtol=1e-12, atol=1e-12)
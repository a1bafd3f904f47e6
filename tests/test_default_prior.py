"""The default prior, GMMPrior(): weakly informative about clusters, not the whole data set.

Its covariance scale is the pooled within-component covariance of a maximum-likelihood
pilot fit; checked against scikit-learn's maximum-likelihood fit, and MAP under it is
checked to stay with maximum likelihood where the data determine the clusters (iris: the
first wave's default moved ARI from 0.90 to 0.72)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGMM

import bayes_gmm as bg
from bayes_gmm.core.covariance import COVARIANCE_TYPES, get_family
from bayes_gmm.core.em import data_prior, pilot_target

EM = dict(n_init=10, tol=1e-9, max_iter=2000, dtype=np.float64)


@pytest.fixture(scope="module")
def iris():
    data = load_iris()
    X = data.data
    return (X - X.mean(0)) / X.std(0), data.target


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_pilot_target_is_the_pooled_ml_covariance(x64, faithful, covariance_type):
    """W = Σ_k π_k Σ_k of the maximum-likelihood fit, as scikit-learn finds it (with the
    pilot's reg_covar, 1e-6 of the data's mean variance)."""
    X = np.asarray(faithful, np.float64)
    W = np.asarray(pilot_target(jnp.asarray(X), 2, covariance_type))
    sk = SkGMM(2, covariance_type=covariance_type, n_init=5, tol=1e-12, max_iter=2000,
               reg_covar=1e-6 * np.mean(X.var(0)), random_state=0).fit(X)
    full = np.asarray(get_family(covariance_type).to_full(jnp.asarray(sk.covariances_), 2, 2))
    expect = np.einsum("k,kij->ij", sk.weights_, full)
    np.testing.assert_allclose(W, expect, rtol=1e-6)


def test_default_scale_on_data_is_mode_times_pooled(x64, faithful):
    """Ψ₀ = (ν₀ + D + 2)·W for full covariances (the MAP of an empty component is W)."""
    X = jnp.asarray(faithful, jnp.float64)
    r = data_prior(bg.GMMPrior(), X, 2, "full")
    W = np.asarray(pilot_target(X, 2, "full"))
    d = X.shape[1]
    assert float(r.degrees_of_freedom) == d + 2.0
    np.testing.assert_allclose(np.asarray(r.covariance_prior), (2 * d + 4.0) * W, rtol=1e-9)


def test_map_under_the_default_prior_stays_with_maximum_likelihood_on_iris(x64, iris):
    X, y = iris
    # maximum likelihood, from scikit-learn (the best of 10 restarts)
    sk = SkGMM(3, n_init=10, tol=1e-9, max_iter=2000, random_state=0).fit(X)
    ml_labels = sk.predict(X)
    res = bg.fit_em(X, 3, key=jax.random.key(0), prior=bg.GMMPrior(), **EM)
    with jax.enable_x64(True):
        labels = np.asarray(bg.predict(res.params, jnp.asarray(X)))
    assert adjusted_rand_score(y, ml_labels) > 0.88
    assert adjusted_rand_score(y, labels) > 0.9
    assert adjusted_rand_score(ml_labels, labels) > 0.95
    w_map = np.sort(np.asarray(res.params.weights))
    np.testing.assert_allclose(w_map, np.sort(sk.weights_), atol=0.02)


def test_default_prior_is_the_models_and_the_em_objective_is_its_log_density(x64, faithful):
    """MAP-EM and the NumPyro model resolve the same default prior from the same X: the
    EM objective times N is the model's log joint at the MAP."""
    X = jnp.asarray(faithful, jnp.float64)
    res = bg.fit_em(X, 2, key=jax.random.key(1), prior=bg.GMMPrior(), **EM)
    p = res.params
    lj, _ = log_density(bg.gmm_model, (X, 2), dict(covariance_type="full"),
                        {"weights": p.weights, "means": p.means, "covariances": p.covariances})
    np.testing.assert_allclose(float(lj), X.shape[0] * float(res.objective), rtol=1e-10)

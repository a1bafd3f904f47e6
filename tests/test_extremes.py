"""Numerical extremes: far-apart components, variances 1e8 apart, near-singular
covariances, more components than the data support, D = 100 with N = 200, and MCMC on
pathological data. No NaN, no crash; parameters stay valid; float64 stays accurate."""

import contextlib
import warnings

import jax
import numpy as np
import pytest

import bayes_gmm as bg

DTYPES = [np.float32, np.float64]


def _x64(dtype):
    return jax.enable_x64(True) if dtype == np.float64 else contextlib.nullcontext()


def _fit(X, k, dtype, **kw):
    with _x64(dtype):
        # k-means (Lloyd) starts, as scikit-learn's default: k-means++ seeds alone mostly
        # land both centres in a wide cluster when variances differ by 1e8.
        # n_init=1, init="kmeans" is also what GaussianMixture compiles: one program, shared.
        kw = {"n_init": 1, "init": "kmeans", **kw}
        res = bg.fit_em(X.astype(dtype), k, key=jax.random.key(0), **kw)
        lp = bg.log_prob(res.params, X.astype(dtype))
        out = jax.device_get((res.params.weights, res.params.means, res.params.covariances,
                              res.objective, lp))
    return res, [np.asarray(a, np.float64) for a in out]


def _valid(w, mu, cov, obj, lp, covariance_type="full"):
    for a in (w, mu, cov, obj, lp):
        assert np.all(np.isfinite(a))
    np.testing.assert_allclose(w.sum(), 1.0, atol=1e-5)
    if covariance_type in ("full", "tied"):
        mats = cov.reshape(-1, cov.shape[-1], cov.shape[-1])
        assert np.all(np.linalg.eigvalsh(0.5 * (mats + np.swapaxes(mats, -1, -2))) > 0)
    else:
        assert np.all(cov > 0)


def _order(mu):
    return np.argsort(mu[:, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_components_1e6_apart(dtype):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(100, 1)), rng.normal(size=(100, 1)) + 1e6]
    res, (w, mu, cov, obj, lp) = _fit(X, 2, dtype)
    _valid(w, mu, cov, obj, lp)
    o = _order(mu)
    np.testing.assert_allclose(w[o], [0.5, 0.5], atol=1e-6)
    # The means are resolved to the data's own float resolution (eps·1e6 in float32).
    tol = 100 * np.finfo(dtype).eps * 1e6 + 0.3
    np.testing.assert_allclose(mu[o, 0], [X[:100].mean(), X[100:].mean()], atol=tol)
    assert np.all(lp > -50)            # every point is well explained by its component


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_variances_1e8_apart(dtype, covariance_type):
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(size=(150, 2)) * 1e-2 - 5.0, rng.normal(size=(150, 2)) * 1e2 + 5.0]
    res, (w, mu, cov, obj, lp) = _fit(X, 2, dtype, covariance_type=covariance_type, n_init=5)
    _valid(w, mu, cov, obj, lp, covariance_type)
    if covariance_type == "full":
        per_feature = np.diagonal(cov, axis1=1, axis2=2)
    elif covariance_type == "diag":
        per_feature = cov
    else:
        per_feature = cov[:, None] * np.ones((1, 2))
    tight = int(np.argmin(per_feature.sum(axis=1)))
    # The tight component is found (its points sit far from the wide one's mass).
    np.testing.assert_allclose(mu[tight], X[:150].mean(axis=0), atol=1e-3)
    assert per_feature[1 - tight].min() > 1e3
    if dtype == np.float64:
        var = per_feature[tight]
        # ~1e-4 plus reg_covar = 1e-6: within 5 % of the tight cluster's sample variance
        # (per feature for full/diag, their mean for spherical).
        ref = X[:150].var(axis=0)
        ref = np.full(2, ref.mean()) if covariance_type == "spherical" else ref
        np.testing.assert_allclose(var, ref, rtol=0.05)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2])
def test_near_singular_covariance(dtype, k):
    """Points on a plane in 3-D (plus 1e-7 noise): the fitted covariance is PD and its
    smallest eigenvalue stays tiny but positive."""
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(300, 2))
    X = np.c_[Z, Z @ np.array([1.0, 2.0]) + 1e-7 * rng.normal(size=300)]
    for reg in (1e-6, 0.0):
        res, (w, mu, cov, obj, lp) = _fit(X, k, dtype, reg_covar=reg)
        _valid(w, mu, cov, obj, lp)
        ev = np.linalg.eigvalsh(cov.reshape(-1, 3, 3))
        assert np.all(ev[:, 0] < 1e-3 * ev[:, -1])


@pytest.mark.parametrize("dtype,covariance_type", [
    (np.float32, "full"), (np.float64, "full"), (np.float64, "tied"), (np.float64, "diag"),
    (np.float64, "spherical")])
def test_n10_k5(dtype, covariance_type):
    X = np.random.default_rng(3).normal(size=(10, 2))
    res, (w, mu, cov, obj, lp) = _fit(X, 5, dtype, covariance_type=covariance_type)
    _valid(w, mu, cov, obj, lp, covariance_type)
    if dtype == np.float64:          # MAP: the prior regularises every component
        res, (w, mu, cov, obj, lp) = _fit(X, 5, dtype, covariance_type=covariance_type,
                                          prior=bg.GMMPrior())
        _valid(w, mu, cov, obj, lp, covariance_type)
    # The estimator too: predict / score work and give finite numbers.
    gm = bg.GaussianMixture(5, covariance_type=covariance_type, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X.astype(dtype))
    assert np.all(np.isfinite(gm.score_samples(X.astype(dtype))))
    assert set(gm.predict(X.astype(dtype))) <= set(range(5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_d100_n200(dtype):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 100))
    X[100:] += 3.0
    res, (w, mu, cov, obj, lp) = _fit(X, 2, dtype)
    _valid(w, mu, cov, obj, lp)
    # Separation 30 (in sd units) in 100-D: the two halves are recovered exactly.
    with _x64(dtype):
        labels = np.asarray(bg.predict(res.params, X.astype(dtype)))
    assert len(set(labels[:100])) == 1 and len(set(labels[100:])) == 1
    assert labels[0] != labels[100]


@pytest.mark.parametrize("dtype", DTYPES)
def test_identical_points(dtype):
    X = np.ones((20, 2))
    for prior in (None, bg.GMMPrior()) if dtype == np.float64 else (None,):
        res, (w, mu, cov, obj, lp) = _fit(X, 2, dtype, prior=prior)
        _valid(w, mu, cov, obj, lp)
        np.testing.assert_allclose(mu[np.argmax(w)], [1.0, 1.0], rtol=1e-6)


def _finite_idata(idata):
    for name in ("weights", "means", "covariances"):
        assert np.all(np.isfinite(idata.posterior[name].values)), name
    assert np.all(np.isfinite(idata.log_likelihood["obs"].values))


@pytest.mark.parametrize("name", ["identical points", "more components than clusters"])
def test_nuts_on_pathological_data_does_not_fail(name):
    """fit_nuts returns finite draws (warnings are allowed, exceptions are not)."""
    rng = np.random.default_rng(5)
    X, k = {"identical points": (np.ones((20, 2), np.float32), 2),
            "more components than clusters": (rng.normal(size=(40, 2)).astype(np.float32),
                                              3)}[name]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        idata = bg.fit_nuts(X, k, key=jax.random.key(0), num_warmup=30, num_samples=20,
                            num_chains=2, progress_bar=False)
    _finite_idata(idata)
    assert idata.posterior["means"].shape == (2, 20, k, 2)
    # ... and says the result is unreliable: the data's degeneracy, or the diagnostics
    kinds = {w.category for w in rec}
    if name == "identical points":
        assert any(w.category is bg.DegenerateFitWarning and "identical" in str(w.message)
                   for w in rec), rec
    assert bg.DiagnosticWarning in kinds, rec


def test_fit_em_warns_when_components_outnumber_their_data():
    """N = 10 rows, K = 5 full components in D = 3: each has about 2 rows, fewer than the
    D + 1 = 4 needed to estimate a covariance, so reg_covar sets it: a warning says so."""
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.warns(bg.DegenerateFitWarning, match=r"effective sample sizes .* < 4"):
        res = bg.fit_em(X, 5, key=jax.random.key(0))
    assert np.all(np.isfinite(np.asarray(res.params.covariances)))
    # a well-posed fit stays silent; under a prior, the prior determines small components
    with warnings.catch_warnings():
        warnings.simplefilter("error", bg.DegenerateFitWarning)
        bg.fit_em(np.random.default_rng(1).normal(size=(300, 3)), 2, key=jax.random.key(0))
        bg.fit_em(X, 5, key=jax.random.key(0), prior=bg.GMMPrior())

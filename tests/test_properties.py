"""Property-based tests (hypothesis) of the compiled EM and the mixture densities.

Shapes N in 2..500, D in 1..8, K in 1..min(N, 6), every covariance type, float32 and
float64, data scales 1e-6..1e6, maximum likelihood and MAP. Every new shape compiles a
new XLA program (~1 s), so example counts are modest; ``derandomize=True`` makes the
examples the same on every run (reproducible CI).
"""

import contextlib
import math

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import bayes_gmm as bg
from helpers import full_covariances

from conftest import COVARIANCE_TYPES

SETTINGS = dict(deadline=None, derandomize=True, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _x64(dtype):
    return jax.enable_x64(True) if dtype == np.float64 else contextlib.nullcontext()


@st.composite
def problems(draw):
    n = draw(st.integers(2, 500))
    d = draw(st.integers(1, 8))
    k = draw(st.integers(1, min(n, 6)))
    return dict(
        n=n, d=d, k=k,
        covariance_type=draw(st.sampled_from(COVARIANCE_TYPES)),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        log10_scale=draw(st.floats(-6.0, 6.0)),
        true_k=draw(st.integers(1, 4)),
        map_prior=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _data(p):
    """A mixture of ``true_k`` Gaussians with random covariances, scaled by 10**log10_scale
    and shifted by a few scales (so centring matters)."""
    rng = np.random.default_rng(p["seed"])
    n, d, scale = p["n"], p["d"], 10.0 ** p["log10_scale"]
    centres = rng.normal(scale=4.0, size=(p["true_k"], d))
    labels = rng.integers(0, p["true_k"], n)
    a = rng.normal(size=(p["true_k"], d, d)) / math.sqrt(d)
    z = rng.normal(size=(n, d))
    X = centres[labels] + np.einsum("nde,ne->nd", a[labels], z) + 0.1 * z
    X = (X + rng.normal(scale=3.0, size=d)) * scale
    return X.astype(p["dtype"])


def _check_pd(cov, covariance_type):
    cov = np.asarray(cov, np.float64)
    if covariance_type in ("full", "tied"):
        mats = cov.reshape(-1, cov.shape[-1], cov.shape[-1])
        np.testing.assert_allclose(mats, np.swapaxes(mats, -1, -2),
                                   rtol=1e-5, atol=1e-6 * np.abs(mats).max())
        for m in mats:  # PD <=> Cholesky exists (np.linalg raises otherwise)
            np.linalg.cholesky(0.5 * (m + m.T))
    else:
        assert np.all(cov > 0), cov


def _condition_number(cov, covariance_type):
    cov = np.asarray(cov, np.float64)
    if covariance_type in ("full", "tied"):
        ev = np.linalg.eigvalsh(cov.reshape(-1, cov.shape[-1], cov.shape[-1]))
        return float(np.max(ev[:, -1] / ev[:, 0]))
    if covariance_type == "diag":
        return float(np.max(cov.max(axis=1) / cov.min(axis=1)))
    return 1.0


def _monotone_tol(trace, dtype, d, cond):
    """How much a non-decreasing objective may appear to decrease from rounding alone.

    The objective is a mean over rows of log-sum-exp of terms of magnitude about
    |objective| + D (log-determinant plus Mahalanobis distance), computed through a
    Cholesky factorisation and triangular solves. Rounding the M-step's covariance moves
    its smallest eigenvalue by about eps·||Σ|| (Weyl), i.e. by a relative eps·cond(Σ), and
    the log-determinant and Mahalanobis terms move by as much; the O(D) other operations
    add a few D·eps. Hence 64·D·eps·cond(Σ)·(1 + |obj| + D): for well-conditioned fits
    (cond ~ 10) that is ~1e-3 in float32 and ~1e-12 in float64, far below a real EM
    decrease. Degenerate fits (N <= D, or reg_covar = 0 with a component on a subspace,
    where Σ's small eigenvalues are only the library's eps-sized floor) get a bound that
    is as loose as their objective is inaccurate: such an objective has no correct digits
    beyond what this allows.
    """
    eps = np.finfo(dtype).eps
    finite = trace[np.isfinite(trace)]
    return 64 * max(d, 1) * eps * cond * (1.0 + np.abs(finite).max() + d)


@settings(max_examples=30, **SETTINGS)
@given(p=problems())
def test_fit_em_invariants(p):
    X = _data(p)
    k, t, dtype = p["k"], p["covariance_type"], p["dtype"]
    prior = bg.GMMPrior() if p["map_prior"] else None
    with _x64(dtype):
        # reg_covar=0 for maximum likelihood: each M-step is then the exact maximiser, so
        # the objective is provably non-decreasing (with reg_covar > 0 the covariance step
        # is not the maximiser and monotonicity is not a theorem).
        res = bg.fit_em(X, k, key=jax.random.key(p["seed"]), covariance_type=t,
                        prior=prior, reg_covar=0.0)
        params = res.params
        assert params.weights.dtype == dtype and params.means.dtype == dtype
        w, mu, cov = (np.asarray(a, np.float64) for a in
                      (params.weights, params.means, params.covariances))
        trace = np.asarray(res.trace, np.float64)
        assert np.all(np.isfinite(w)) and np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))
        assert np.isfinite(float(res.objective))
        assert np.all(w >= 0)
        np.testing.assert_allclose(w.sum(), 1.0, atol=10 * k * np.finfo(dtype).eps)
        _check_pd(cov, t)

        n_iter = int(res.n_iter)
        assert 1 <= n_iter <= 100
        run = trace[:n_iter]
        assert np.all(np.isfinite(run)), run
        assert np.all(np.isnan(trace[n_iter:]))
        drops = run[:-1] - run[1:]
        tol = _monotone_tol(run, dtype, p["d"], _condition_number(cov, t))
        assert np.all(drops <= tol), (drops.max(), tol, run)

        lp = np.asarray(bg.log_prob(params, X), np.float64)
        assert np.all(np.isfinite(lp))
        r = np.asarray(bg.responsibilities(params, X), np.float64)
        assert r.shape == (p["n"], k)
        assert np.all(r >= 0)
        # r_nk = exp(a_nk − lse_n): a and lse carry absolute rounding errors of about
        # eps·|log density|, which exp turns into relative errors of the same size.
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(r.sum(axis=1), 1.0, rtol=0,
                                   atol=4 * eps * (k + np.abs(lp).max()))

        # log_prob is invariant to relabelling the components.
        perm = np.random.default_rng(p["seed"]).permutation(k)
        permuted = params._replace(
            weights=params.weights[perm], means=params.means[perm],
            covariances=params.covariances if t == "tied" else params.covariances[perm])
        lp_perm = np.asarray(bg.log_prob(permuted, X), np.float64)
        rtol = 1e-9 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(lp_perm, lp, rtol=rtol, atol=rtol * (1 + np.abs(lp).max()))


@settings(max_examples=6, **SETTINGS)
@given(p=problems())
def test_estimator_predict_is_argmax_predict_proba(p):
    X = _data(p)
    gm = bg.GaussianMixture(p["k"], covariance_type=p["covariance_type"],
                            init_params="k-means++", random_state=p["seed"] % 2**32,
                            prior=bg.GMMPrior() if p["map_prior"] else None)
    gm.fit(X)  # may warn (ConvergenceWarning) on hard data; that is allowed here
    labels = gm.predict(X)
    proba = gm.predict_proba(X)
    assert labels.shape == (p["n"],) and proba.shape == (p["n"], p["k"])
    assert proba.dtype == p["dtype"]
    rows = np.arange(p["n"])
    # Equal to the argmax, or tied with it: exp can round two different log
    # responsibilities to the same probability.
    assert np.all(proba[rows, labels] == proba.max(axis=1))
    strict = (np.sort(proba, axis=1)[:, -1] > np.sort(proba, axis=1)[:, -2]) if p["k"] > 1 \
        else np.ones(p["n"], bool)
    np.testing.assert_array_equal(labels[strict], np.argmax(proba, axis=1)[strict])


@st.composite
def mixtures(draw):
    d = draw(st.integers(1, 8))
    k = draw(st.integers(1, 6))
    return dict(d=d, k=k, covariance_type=draw(st.sampled_from(COVARIANCE_TYPES)),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                log10_scale=draw(st.floats(-6.0, 6.0)),
                seed=draw(st.integers(0, 2**31 - 1)))


def _random_params(p):
    rng = np.random.default_rng(p["seed"])
    k, d, t, scale = p["k"], p["d"], p["covariance_type"], 10.0 ** p["log10_scale"]
    w = rng.dirichlet(np.full(k, 2.0))
    mu = rng.normal(scale=3.0, size=(k, d)) * scale
    a = rng.normal(size=(k, d, d)) / math.sqrt(d)
    cov = {"full": a @ np.swapaxes(a, -1, -2) + 0.2 * np.eye(d),
           "tied": a[0] @ a[0].T + 0.2 * np.eye(d),
           "diag": rng.uniform(0.2, 2.0, (k, d)),
           "spherical": rng.uniform(0.2, 2.0, k)}[t] * scale ** 2
    dt = p["dtype"]
    return bg.GMMParams(jnp.asarray(w, dt), jnp.asarray(mu, dt), jnp.asarray(cov, dt), t)


N_DRAWS = 4000


@settings(max_examples=8, **SETTINGS)
@given(p=mixtures())
def test_sample_agrees_with_the_density(p):
    """Draws from ``sample`` follow the density that ``log_prob`` evaluates.

    (1) A random 1-D projection vᵀx of the draws passes a Kolmogorov-Smirnov test against
    the exact mixture CDF Σ_k π_k Φ((t − vᵀμ_k)/√(vᵀΣ_k v)) from the parameters.
    (2) Stein's identity links the draws to ``log_prob`` itself: for x ~ p,
    E[∇ log p(x)] = 0 and E[∇ log p(x) xᵀ] = −I; the Monte Carlo means (with ∇ by
    ``jax.grad`` through ``bg.log_prob``) must be within 5.5 standard errors.
    """
    with _x64(p["dtype"]):
        params = _random_params(p)
        X, labels = bg.sample(params, jax.random.key(p["seed"]), N_DRAWS)
        assert X.shape == (N_DRAWS, p["d"]) and X.dtype == p["dtype"]
        score = jax.vmap(jax.grad(lambda x: bg.log_prob(params, x[None])[0]))(X)
        Xn, score = np.asarray(X, np.float64), np.asarray(score, np.float64)
        assert np.all(np.isfinite(score))
        w, mu = np.asarray(params.weights, np.float64), np.asarray(params.means, np.float64)
        cov = np.asarray(full_covariances(params), np.float64)
    labels = np.asarray(labels)
    # The labels follow the weights (chi-square over the K categories).
    if p["k"] > 1:
        counts = np.bincount(labels, minlength=p["k"])
        assert stats.chisquare(counts, N_DRAWS * w / w.sum()).pvalue > 1e-5

    v = np.random.default_rng(p["seed"] + 1).normal(size=p["d"])
    v /= np.linalg.norm(v)
    loc, sd = mu @ v, np.sqrt(np.einsum("d,kde,e->k", v, cov, v))

    def cdf(t):
        return np.sum(w * stats.norm.cdf((np.asarray(t)[:, None] - loc) / sd), axis=1)

    assert stats.kstest(Xn @ v, cdf).pvalue > 1e-5

    # Stein's identity, in units of the data scale (score × scale, x / scale).
    scale = 10.0 ** p["log10_scale"]
    g = score * scale
    xc = (Xn - Xn.mean(axis=0)) / scale
    for vals, target in ((g, np.zeros(p["d"])),
                         ((g[:, :, None] * xc[:, None, :]).reshape(N_DRAWS, -1),
                          -np.eye(p["d"]).ravel())):
        se = vals.std(axis=0) / math.sqrt(N_DRAWS)
        z = (vals.mean(axis=0) - target) / np.maximum(se, 1e-12)
        assert np.all(np.abs(z) < 5.5), z

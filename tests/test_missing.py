"""Missing values integrated out (missing="marginalize"), against independent truth: a
brute-force observed-data log-likelihood written here (per row, the marginal normal of its
observed entries, by scipy and by JAX over sub-matrices), its gradient and a direct
optimiser at the EM solution, the closed-form Gaussian conditional, and a simulation
against listwise deletion and mean imputation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal as mvn

import bayes_gmm as bg

TRUE_MEANS = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -2.0], [-3.0, 4.0, 1.0]])
TRUE_COVS = np.array([np.eye(3), [[1.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.0]],
                      0.5 * np.eye(3)])
TRUE_WEIGHTS = np.array([0.3, 0.45, 0.25])


def _draw(n, seed, frac):
    rng = np.random.default_rng(seed)
    z = rng.choice(3, n, p=TRUE_WEIGHTS)
    X = np.stack([rng.multivariate_normal(TRUE_MEANS[j], TRUE_COVS[j]) for j in z])
    holes = rng.random(X.shape) < frac
    holes[np.all(holes, axis=1), 0] = False              # every row keeps one entry
    Xm = X.copy()
    Xm[holes] = np.nan
    return X, Xm


@pytest.fixture(scope="module")
def data():
    return _draw(450, 0, 0.3)


def _scipy_loglik(params, X):
    k, d = params.means.shape
    cov = np.asarray(params.family.to_full(jnp.asarray(params.covariances), k, d))
    w, m = np.asarray(params.weights), np.asarray(params.means)
    total = 0.0
    for x in X:
        o = ~np.isnan(x)
        total += np.log(sum(w[j] * mvn(m[j][o], cov[j][np.ix_(o, o)]).pdf(x[o])
                            for j in range(k)))
    return total


@pytest.fixture(scope="module")
def full_fit(data):
    _, Xm = data
    with jax.enable_x64(True):
        # tol = 0: EM with holes converges linearly and slowly; a stop on the objective's
        # change (1e-13 per row) leaves a gradient of ~1e-5, 300 full steps leave ~1e-12
        return bg.fit_em(Xm, 3, key=jax.random.key(0), missing="marginalize", n_init=3,
                         tol=0.0, max_iter=300, dtype=np.float64, reg_covar=0.0)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VVE"])
def test_objective_is_the_observed_data_likelihood_and_never_decreases(x64, data,
                                                                        covariance_type):
    _, Xm = data
    res = bg.fit_em(Xm, 3, key=jax.random.key(1), covariance_type=covariance_type,
                    missing="marginalize", tol=1e-10, max_iter=400, dtype=np.float64)
    assert bool(res.converged)
    t = np.asarray(res.trace)
    t = t[np.isfinite(t)]
    assert np.all(np.diff(t) >= -1e-12 * np.abs(t[1:]))
    brute = _scipy_loglik(res.params, Xm)
    assert float(res.objective) * len(Xm) == pytest.approx(brute, rel=1e-10)
    lp = np.asarray(bg.log_prob(res.params, Xm, missing="marginalize"))
    assert float(np.sum(lp)) == pytest.approx(brute, rel=1e-10)


def test_without_nan_the_fit_is_the_complete_data_fit(x64, data):
    X, _ = data
    kw = dict(key=jax.random.key(2), n_init=2, tol=1e-10, dtype=np.float64)
    a = bg.fit_em(X, 3, **kw)
    b = bg.fit_em(X, 3, missing="marginalize", **kw)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-12, atol=1e-14)
    assert int(a.n_iter) == int(b.n_iter)


def _unconstrained(params):
    """Softmax logits (K−1), means, and Cholesky factors with log diagonals."""
    w = np.asarray(params.weights)
    chol = np.linalg.cholesky(np.asarray(params.covariances))
    d = chol.shape[-1]
    il = np.tril_indices(d)
    lc = chol.copy()
    lc[:, np.arange(d), np.arange(d)] = np.log(np.diagonal(chol, axis1=1, axis2=2))
    return np.concatenate([np.log(w[1:] / w[0]), np.asarray(params.means).ravel(),
                           lc[:, il[0], il[1]].ravel()])


def _brute_jax(Xm, k, d):
    """The observed-data log-likelihood of a full-covariance mixture as a function of the
    unconstrained vector, row patterns gathered as sub-matrices (written independently of
    the package's masking)."""
    obs = ~np.isnan(Xm)
    patterns = {}
    for i, o in enumerate(map(tuple, obs)):
        patterns.setdefault(o, []).append(i)
    il = np.tril_indices(d)
    groups = [(np.flatnonzero(np.array(o)), np.array(rows)) for o, rows in patterns.items()]

    def f(theta):
        logits = jnp.concatenate([jnp.zeros(1), theta[:k - 1]])
        logw = logits - jax.scipy.special.logsumexp(logits)
        means = theta[k - 1:k - 1 + k * d].reshape(k, d)
        lc = jnp.zeros((k, d, d)).at[:, il[0], il[1]].set(theta[k - 1 + k * d:].reshape(k, -1))
        diag = jnp.exp(jnp.diagonal(lc, axis1=1, axis2=2))
        chol = lc.at[:, jnp.arange(d), jnp.arange(d)].set(diag)
        cov = chol @ jnp.swapaxes(chol, 1, 2)
        total = 0.0
        for o, rows in groups:
            x = jnp.asarray(Xm[np.ix_(rows, o)])
            comp = jnp.stack([jax.scipy.stats.multivariate_normal.logpdf(
                x, means[j][o], cov[j][jnp.ix_(o, o)]) for j in range(k)], axis=1)
            total = total + jnp.sum(jax.scipy.special.logsumexp(comp + logw, axis=1))
        return total
    return f


def test_em_solution_is_a_stationary_point_no_optimiser_improves(x64, data, full_fit):
    _, Xm = data
    p = full_fit.params
    f = _brute_jax(Xm, 3, 3)
    theta = jnp.asarray(_unconstrained(p))
    value = float(f(theta))
    assert value == pytest.approx(_scipy_loglik(p, Xm), rel=1e-10)
    assert value == pytest.approx(float(full_fit.objective) * len(Xm), rel=1e-10)
    grad = np.asarray(jax.grad(f)(theta))
    assert np.max(np.abs(grad)) < 1e-8, np.max(np.abs(grad))
    fun = jax.jit(jax.value_and_grad(lambda t: -f(t)))
    opt = minimize(lambda t: tuple(np.asarray(v, np.float64) for v in fun(jnp.asarray(t))),
                   np.asarray(theta), jac=True, method="L-BFGS-B",
                   options=dict(maxiter=200, gtol=1e-10))
    assert -opt.fun <= value + 1e-6


def test_impute_is_the_gaussian_conditional_mean(x64, data):
    _, Xm = data
    res = bg.fit_em(Xm, 1, key=0, missing="marginalize", dtype=np.float64, tol=1e-12)
    p = res.params
    mu, cov = np.asarray(p.means)[0], np.asarray(p.covariances)[0]
    filled = np.asarray(bg.impute(p, Xm))
    for x, y in zip(Xm[:60], filled[:60]):
        o, m = ~np.isnan(x), np.isnan(x)
        expect = x.copy()
        if m.any():
            expect[m] = mu[m] + cov[np.ix_(m, o)] @ np.linalg.solve(cov[np.ix_(o, o)],
                                                                    x[o] - mu[o])
        np.testing.assert_allclose(y, expect, rtol=1e-10, atol=1e-12)
    # a row with nothing observed: density 1, membership the weights, mean the mixture's
    p3 = bg.fit_em(Xm, 3, key=0, missing="marginalize", dtype=np.float64).params
    empty = np.full((1, 3), np.nan)
    assert float(bg.log_prob(p3, empty, missing="marginalize")[0]) == pytest.approx(0.0)
    np.testing.assert_allclose(bg.responsibilities(p3, empty, missing="marginalize")[0],
                               p3.weights, rtol=1e-12)
    np.testing.assert_allclose(bg.impute(p3, empty)[0],
                               np.asarray(p3.weights) @ np.asarray(p3.means), rtol=1e-12)


def _match_error(params):
    """Sum of |mean − truth| + ||Σ − truth||_F over components matched to the truth."""
    m = np.asarray(params.means)
    cov = np.asarray(params.family.to_full(jnp.asarray(params.covariances), 3, 3))
    order = [int(np.argmin(np.linalg.norm(m - t, axis=1))) for t in TRUE_MEANS]
    return sum(np.linalg.norm(m[j] - t) + np.linalg.norm(cov[j] - c)
               for j, t, c in zip(order, TRUE_MEANS, TRUE_COVS))


def test_marginalising_beats_listwise_deletion_and_mean_imputation(x64):
    # 30% of entries missing completely at random, three 1500-row draws: the observed-data
    # fit is closer to the truth than listwise deletion (which keeps ~34% of the rows) and
    # mean imputation (which shrinks the covariances) on every draw, and within a factor
    # of two of the fit to the complete data (the information 30% holes leave).
    kw = dict(key=jax.random.key(3), n_init=3, tol=1e-8, dtype=np.float64)
    for seed in (11, 12, 13):
        X, Xm = _draw(1500, seed, 0.3)
        ours = _match_error(bg.fit_em(Xm, 3, missing="marginalize", **kw).params)
        keep = ~np.isnan(Xm).any(axis=1)
        listwise = _match_error(bg.fit_em(Xm[keep], 3, **kw).params)
        filled = np.where(np.isnan(Xm), np.nanmean(Xm, axis=0), Xm)
        mean_imputed = _match_error(bg.fit_em(filled, 3, **kw).params)
        complete = _match_error(bg.fit_em(X, 3, **kw).params)
        assert ours < listwise and ours < 0.5 * mean_imputed, (seed, ours, listwise,
                                                                mean_imputed)
        assert ours < 2.0 * complete, (seed, ours, complete)


def test_missing_value_errors(data):
    _, Xm = data
    with pytest.raises(ValueError, match=r"X contains NaN or infinity: first at row \d+, "
                                         r"column \d+.*missing='marginalize'"):
        bg.fit_em(Xm, 2, key=0)
    bad = np.array(Xm[:50])
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="X contains infinity: first at row 3, column 1"):
        bg.fit_em(bad, 2, key=0, missing="marginalize")
    empty = np.array(Xm[:50])
    empty[7] = np.nan
    with pytest.raises(ValueError, match="X row 7 has no observed value"):
        bg.fit_em(empty, 2, key=0, missing="marginalize")
    with pytest.raises(ValueError, match="missing must be one of"):
        bg.fit_em(Xm, 2, key=0, missing="drop")


def test_estimator_and_compare_take_missing(x64, data):
    _, Xm = data
    gm = bg.GaussianMixture(3, missing="marginalize", random_state=0, tol=1e-10,
                            max_iter=500).fit(Xm)
    p = bg.GMMParams(gm.weights_, gm.means_, gm.covariances_, "full")
    ref = bg.fit_em(Xm, 3, key=jax.random.fold_in(jax.random.key(0), 0), init="kmeans",
                    missing="marginalize", tol=1e-10, max_iter=500, dtype=np.float64)
    np.testing.assert_allclose(gm.means_, np.asarray(ref.params.means), rtol=1e-8)
    lp = gm.score_samples(Xm)
    np.testing.assert_allclose(lp, np.asarray(bg.log_prob(p, Xm, missing="marginalize")),
                               rtol=1e-12)
    assert gm.predict(Xm).shape == (len(Xm),) and np.isfinite(gm.predict_proba(Xm)).all()
    np.testing.assert_allclose(gm.impute(Xm), np.asarray(bg.impute(p, Xm)), rtol=1e-12)
    multi = gm.impute(Xm[:20], num_draws=3)          # draws under the fitted θ
    assert multi.shape == (3, 20, 3)
    seen = ~np.isnan(Xm[:20])
    np.testing.assert_array_equal(multi.values[1][seen], Xm[:20][seen])
    with pytest.raises(ValueError, match="NaN or infinity"):
        bg.GaussianMixture(3, random_state=0).fit(Xm)
    t = bg.compare(Xm, [1, 2, 3], random_state=0, missing="marginalize", n_init=2)
    assert t.attrs["best_k"] == 3
    fit3 = bg.fit_em(Xm, 3, key=jax.random.fold_in(jax.random.key(0), 3),
                     missing="marginalize", n_init=2, tol=1e-9, max_iter=2000,
                     dtype=np.float64)
    assert t.loc[3, "log_likelihood"] == pytest.approx(_scipy_loglik(fit3.params, Xm),
                                                       rel=1e-9)
    assert t.loc[3, "bic"] == pytest.approx(
        float(bg.bic(fit3.params, Xm, missing="marginalize")), rel=1e-9)


def test_chunked_rows_give_the_same_fit_with_holes(x64, data):
    _, Xm = data
    kw = dict(key=jax.random.key(4), missing="marginalize", tol=1e-10, max_iter=200,
              dtype=np.float64, covariance_type="diag")
    a = bg.fit_em(Xm, 3, **kw)
    b = bg.fit_em(Xm, 3, batch_size=64, **kw)       # 450 rows in chunks of 64
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-9, atol=1e-12)
    assert int(a.n_iter) == int(b.n_iter)


def test_stream_and_many_datasets_fit_holes_as_fit_em(x64, data):
    """fit_em_stream over chunks (one without NaN) and fit_em_many over a stack equal the
    in-memory fit_em with holes."""
    X, Xm = data
    mixed = Xm.copy()
    mixed[300:] = X[300:]                            # the last chunk has no hole
    kw = dict(missing="marginalize", tol=0.0, max_iter=40)
    ref = bg.fit_em(mixed, 3, key=jax.random.key(5), dtype=np.float64, **kw)
    st = bg.fit_em_stream([mixed[:150], mixed[150:300], mixed[300:]], 3,
                          key=jax.random.key(5), **kw)
    np.testing.assert_allclose(float(st.objective), float(ref.objective), rtol=1e-10)
    for x, y in zip(jax.tree.leaves(ref.params), jax.tree.leaves(st.params)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-7, atol=1e-9)
    # with a default prior: its pilot fit streams the holes too
    pr = bg.fit_em(mixed, 3, key=jax.random.key(5), dtype=np.float64, prior=bg.GMMPrior(),
                   **kw)
    sp = bg.fit_em_stream([mixed[:150], mixed[150:]], 3, key=jax.random.key(5),
                          prior=bg.GMMPrior(), **kw)
    np.testing.assert_allclose(float(sp.objective), float(pr.objective), rtol=1e-8)

    Xs = np.stack([Xm, X])                           # one with holes, one complete
    keys = jax.random.split(jax.random.key(6), 2)
    many = bg.fit_em_many(Xs, 3, keys=keys, **kw)
    for b in range(2):
        one = bg.fit_em(Xs[b], 3, key=keys[b], dtype=np.float64, **kw)
        np.testing.assert_allclose(float(many.objective[b]), float(one.objective),
                                   rtol=1e-10)
    bad = X.copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="dataset 1, row 2, column 0"):
        bg.fit_em_many(np.stack([X, bad]), 3, keys=keys, max_iter=1)
    bad[2] = np.nan
    with pytest.raises(ValueError, match="dataset 1, row 2 has no observed value"):
        bg.fit_em_many(np.stack([X, bad]), 3, keys=keys, max_iter=1, missing="marginalize")


@pytest.mark.parametrize("covariance_type", ["full", "diag", "VVE"])
def test_rows_blocked_by_hole_count_equal_the_masked_algebra(x64, data, covariance_type):
    """The EM's E-step over rows sorted into blocks of equal hole counts (precision-based
    c × c algebra) gives the masked per-row D × D statistics and log-likelihood."""
    from bayes_gmm.core import em, missing
    _, Xm = data
    p = bg.fit_em(Xm, 3, key=jax.random.key(0), covariance_type=covariance_type,
                  missing="marginalize", max_iter=3, tol=0.0, dtype=np.float64).params
    X = jnp.asarray(Xm)
    w = jnp.asarray(np.random.default_rng(0).uniform(0.5, 2.0, len(Xm)))
    center = jnp.asarray(np.nanmean(Xm, axis=0))
    pc = p._replace(means=p.means - center)
    blocks = missing.count_blocks(X)
    counts = np.isnan(Xm).sum(axis=1)          # here 0..2 holes per row of 3: sizes 0, 1, 2
    assert [c for _, _, c in blocks] == sorted(set(counts))
    assert [b - a for a, b, _ in blocks] == [int(np.sum(counts == c)) for c in sorted(set(counts))]
    Xs, ws = missing.sort_rows(X, w)
    masked = em.e_step(pc, X, w, center, 100, True)
    blocked = em.e_step(pc, Xs, ws, center, 64, blocks)
    for a, b in zip(masked, blocked):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(float(em.loglik(pc, Xs, ws, center, 64, blocks)),
                               float(em.loglik(pc, X, w, center, None, True)), rtol=1e-13)

"""fit.py (fit_em) and core/em.py: the compiled EM against published values, invariants and scikit-learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_gmm as bg
from bayes_gmm.core.em import fit_jit
from helpers import COVARIANCE_TYPES, full_covariances, get_family


def _blobs(n, d, k, seed=0, spread=3.0):
    """k Gaussian blobs with random covariances; returns (X (n, d), labels (n,))."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * spread
    labels = rng.integers(0, k, size=n)
    A = rng.normal(size=(k, d, d)) * 0.5 + np.eye(d)
    X = centres[labels] + np.einsum("nde,ne->nd", A[labels], rng.normal(size=(n, d)))
    return X, labels


def _is_pd(cov, covariance_type):
    c = np.asarray(cov, np.float64)
    if covariance_type in ("full", "tied"):
        c = c.reshape((-1,) + c.shape[-2:])
        return bool(np.all(np.linalg.eigvalsh(0.5 * (c + np.swapaxes(c, -1, -2))) > 0))
    return bool(np.all(c > 0))


def _valid(params, covariance_type):
    w = np.asarray(params.weights, np.float64)
    return (all(np.all(np.isfinite(np.asarray(a))) for a in
                (params.weights, params.means, params.covariances))
            and abs(w.sum() - 1.0) < 1e-5 and np.all(w >= 0)
            and _is_pd(params.covariances, covariance_type))


def _init_params(X, k, covariance_type, seed=0):
    """Explicit initial parameters: k data rows as means, the data covariance."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    means = X[rng.choice(X.shape[0], k, replace=False)]
    cov = np.cov(X.T).reshape(d, d)
    var = np.diag(cov)
    c = {"full": np.broadcast_to(cov, (k, d, d)).copy(), "tied": cov,
         "diag": np.broadcast_to(var, (k, d)).copy(),
         "spherical": np.full((k,), var.mean())}[covariance_type]
    return bg.GMMParams(jnp.asarray(np.full(k, 1.0 / k)), jnp.asarray(means), jnp.asarray(c),
                        covariance_type)


# --- Old Faithful: the published maximum ------------------------------------------------

@pytest.fixture(scope="module")
def faithful_fit(faithful):
    with jax.enable_x64(True):
        res = bg.fit_em(faithful, 2, key=jax.random.key(0), tol=1e-8, max_iter=500, n_init=3)
        return jax.tree.map(np.asarray, res)


def test_old_faithful_reaches_published_maximum(faithful, faithful_fit):
    res = faithful_fit
    n = faithful.shape[0]
    assert abs(float(res.objective) * n - (-1130.26)) < 0.01
    order = np.argsort(res.params.means[:, 0])
    np.testing.assert_allclose(res.params.weights[order], [0.356, 0.644], atol=5e-4)
    # Published to three significant figures: within half a unit of the last digit.
    err = np.abs(res.params.means[order] - np.array([[2.04, 54.5], [4.29, 80.0]]))
    assert np.all(err <= np.array([0.005, 0.05]))
    # The objective is the mean log-likelihood at the returned parameters (scipy).
    from scipy.stats import multivariate_normal
    dens = sum(res.params.weights[k] * multivariate_normal(res.params.means[k],
                                                           res.params.covariances[k]).pdf(
        faithful) for k in range(2))
    np.testing.assert_allclose(np.mean(np.log(dens)), res.objective, rtol=1e-10)
    assert bool(res.converged)


def test_trace_and_counters_are_consistent(faithful_fit):
    res = faithful_fit
    n_iter = int(res.n_iter)
    assert res.trace.shape == (500,)
    assert 1 <= n_iter < 500 and bool(res.converged)
    assert np.all(np.isfinite(res.trace[:n_iter])) and np.all(np.isnan(res.trace[n_iter:]))
    # Converged means the last step changed the objective by less than tol.
    assert abs(res.trace[n_iter - 1] - res.trace[n_iter - 2]) < 1e-8
    assert res.trace[n_iter - 1] <= res.objective + 1e-12


# --- monotone objective, every covariance type, ML and MAP -----------------------------

@pytest.fixture(scope="module")
def overlapping():
    # Overlapping blobs: EM needs many iterations, so monotonicity is tested on a long trace.
    return _blobs(400, 3, 3, seed=11, spread=1.2)[0]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("map_", [False, True], ids=["ml", "map"])
def test_objective_never_decreases(x64, overlapping, covariance_type, map_):
    prior = bg.GMMPrior() if map_ else None
    # reg_covar=0: with a ridge the ML M-step is not an exact maximiser.
    res = bg.fit_em(overlapping, 3, key=jax.random.key(3), covariance_type=covariance_type,
                    prior=prior, tol=0.0, max_iter=60, reg_covar=0.0)
    trace = np.asarray(res.trace)
    assert trace.shape == (60,) and np.all(np.isfinite(trace))
    assert int(res.n_iter) == 60 and not bool(res.converged)       # tol=0 runs all iterations
    assert np.all(np.diff(trace) >= -1e-10 * np.abs(trace[1:]))
    assert float(res.objective) >= trace[-1] - 1e-10
    assert trace[-1] > trace[0]                                      # EM actually moved
    assert _valid(res.params, covariance_type)


# --- initialisation and max_iter = 0 ---------------------------------------------------

def test_max_iter_zero_returns_initial_params(x64, overlapping):
    init = _init_params(overlapping, 3, "full")
    res = bg.fit_em(overlapping, 3, key=jax.random.key(0), init=init, max_iter=0)
    assert res.trace.shape == (0,) and int(res.n_iter) == 0 and not bool(res.converged)
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(init)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.objective, np.mean(bg.log_prob(init, overlapping)),
                               rtol=1e-12)


@pytest.mark.parametrize("init", ["k-means++", "kmeans", "random", "random_from_data"])
def test_init_methods_find_separated_clusters(x64, init):
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(3), 100)
    X = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])[labels] + rng.normal(size=(300, 2))
    res = bg.fit_em(X, 3, key=jax.random.key(1), init=init, n_init=4, max_iter=200)
    pred = np.asarray(bg.predict(res.params, X))
    # The clustering equals the truth up to a relabelling.
    table = np.zeros((3, 3), int)
    np.add.at(table, (labels, pred), 1)
    assert table.max(axis=1).sum() >= 297


# --- keys, vmap, n_init, re-compilation ------------------------------------------------

def test_same_key_same_result_and_vmap_equals_separate_fits(x64):
    Xs = np.stack([_blobs(200, 2, 3, seed=s, spread=4.0)[0] for s in range(3)])
    keys = jax.random.split(jax.random.key(7), 3)
    stacked = jax.jit(jax.vmap(lambda X, k: bg.fit_em(X, 3, key=k).params))(jnp.asarray(Xs), keys)
    for i in range(3):
        one = bg.fit_em(Xs[i], 3, key=keys[i]).params
        again = bg.fit_em(Xs[i], 3, key=keys[i]).params
        for a, b, c in zip(jax.tree.leaves(one), jax.tree.leaves(again),
                           jax.tree.leaves(stacked)):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(c[i], a, rtol=1e-7, atol=1e-9)


def test_n_init_picks_the_best(x64, overlapping):
    key = jax.random.key(5)
    best = bg.fit_em(overlapping, 4, key=key, n_init=5, max_iter=15, tol=0.0)
    # n_init restarts run on jax.random.split(key, n_init), one key each.
    singles = [float(bg.fit_em(overlapping, 4, key=k, max_iter=15, tol=0.0).objective)
               for k in jax.random.split(key, 5)]
    assert float(best.objective) >= max(singles) - 1e-10
    np.testing.assert_allclose(float(best.objective), max(singles), rtol=1e-9)
    assert len({round(s, 6) for s in singles}) > 1            # the restarts really differ


def test_refit_same_shapes_does_not_recompile():
    X1, _ = _blobs(137, 2, 2, seed=1)
    X2, _ = _blobs(137, 2, 2, seed=2)
    X1, X2 = X1.astype(np.float32), X2.astype(np.float32)
    bg.fit_em(X1, 2, key=jax.random.key(0), max_iter=7)
    size = fit_jit._cache_size()
    # New data, key, tol and reg_covar: values, not shapes, so no new trace.
    bg.fit_em(X2, 2, key=jax.random.key(1), max_iter=7, tol=1e-5, reg_covar=1e-4)
    bg.fit_em(X1 * 3.0, 2, key=3, max_iter=7, sample_weight=None)
    assert fit_jit._cache_size() == size
    # Counting traces of a user-level jit of fit_em as well.
    traces = []

    @jax.jit
    def fit(X, key):
        traces.append(1)
        return bg.fit_em(X, 2, key=key, max_iter=7).objective

    fit(X1, jax.random.key(0))
    fit(X2, jax.random.key(1))
    assert len(traces) == 1


# --- sample weights and batching -------------------------------------------------------

@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_integer_sample_weight_equals_duplicated_rows(x64, covariance_type):
    X, _ = _blobs(120, 3, 3, seed=6)
    counts = np.random.default_rng(0).integers(0, 4, size=120)
    counts[:3] = 1                           # the init means below stay rows with weight
    init = bg.GMMParams(jnp.full(3, 1 / 3), jnp.asarray(X[:3]),
                        _init_params(X, 3, covariance_type).covariances, covariance_type)
    kw = dict(key=jax.random.key(0), covariance_type=covariance_type, init=init, tol=0.0,
              max_iter=25)
    weighted = bg.fit_em(X, 3, sample_weight=counts.astype(float), **kw)
    duplicated = bg.fit_em(np.repeat(X, counts, axis=0), 3, **kw)
    for a, b in zip(jax.tree.leaves(weighted), jax.tree.leaves(duplicated)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_sample_weight_with_default_init_is_valid(x64):
    X, _ = _blobs(200, 2, 3, seed=8)
    w = np.random.default_rng(1).uniform(0, 2, size=200)
    w[::3] = 0.0
    res = bg.fit_em(X, 3, key=jax.random.key(0), sample_weight=w)
    assert _valid(res.params, "full") and np.isfinite(float(res.objective))
    np.testing.assert_allclose(res.objective, np.sum(w * np.asarray(bg.log_prob(res.params, X)))
                               / w.sum(), rtol=1e-10)


@pytest.mark.parametrize("covariance_type,init", [("full", "k-means++"), ("tied", "random"),
                                                  ("diag", "kmeans"),
                                                  ("spherical", "random_from_data")])
def test_batch_size_equals_unbatched(x64, covariance_type, init):
    X, _ = _blobs(300, 3, 3, seed=9)
    kw = dict(key=jax.random.key(2), covariance_type=covariance_type, init=init, tol=0.0,
              max_iter=20)
    ref = bg.fit_em(X, 3, **kw)
    # 64 does not divide 300 (the last chunk overlaps and masks); 100 does.
    for batch_size in (64, 100) if covariance_type == "full" else (64,):
        got = bg.fit_em(X, 3, batch_size=batch_size, **kw)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_float32_large_offset_close_to_float64():
    rng = np.random.default_rng(0)
    n, d, k = 200_000, 3, 3
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 1.0], [0.0, 4.0, -3.0]]) * 1e-2
    labels = rng.choice(k, size=n, p=[0.6, 0.3, 0.1])
    X32 = (1e4 + centres[labels] + 1e-2 * rng.normal(size=(n, d))).astype(np.float32)
    init = bg.GMMParams(np.array([0.4, 0.3, 0.3]), 1e4 + centres * 1.2 + 2e-3,
                        np.broadcast_to(np.eye(d) * 4e-4, (k, d, d)), "full")
    kw = dict(key=jax.random.key(0), tol=0.0, max_iter=30, reg_covar=0.0)
    f32 = bg.fit_em(X32, k, init=jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), init), **kw)
    assert f32.params.means.dtype == jnp.float32
    assert _valid(f32.params, "full") and np.all(np.isfinite(np.asarray(f32.trace)))
    with jax.enable_x64(True):
        f64 = jax.tree.map(np.asarray, bg.fit_em(X32.astype(np.float64), k, init=init, **kw))
    p32 = jax.tree.map(lambda a: np.asarray(a, np.float64), f32.params)
    np.testing.assert_allclose(p32.weights, f64.params.weights, rtol=1e-3)
    # Means near 1e4 are stored in float32: agreement to one unit in the last place.
    np.testing.assert_allclose(p32.means, f64.params.means, rtol=0,
                               atol=float(np.spacing(np.float32(1e4))))
    np.testing.assert_allclose(p32.covariances, f64.params.covariances, rtol=1e-3,
                               atol=1e-3 * np.abs(f64.params.covariances).max())
    np.testing.assert_allclose(float(f32.objective), float(f64.objective), rtol=1e-4)


# --- degenerate but legal data ---------------------------------------------------------

def _degenerate_sets():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(40, 3))
    const = base.copy()
    const[:, 1] = 7.0
    dup = np.repeat(base[:4], 10, axis=0)
    return {"identical": np.ones((40, 3)) * 2.5, "constant_column": const, "duplicates": dup,
            "scale_1e8": base * 1e8, "scale_1e-8": base * 1e-8}


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_degenerate_data_gives_valid_params(covariance_type):
    for name, X in _degenerate_sets().items():
        for prior in (None, bg.GMMPrior()):
            res = bg.fit_em(X.astype(np.float32), 3, key=jax.random.key(0),
                            covariance_type=covariance_type, prior=prior, max_iter=20)
            assert _valid(res.params, covariance_type), (name, prior)
            assert np.isfinite(float(res.objective)), (name, prior)
            lp = bg.log_prob(res.params, X.astype(np.float32))
            assert np.all(np.isfinite(np.asarray(lp))), (name, prior)
    # K = N: every row its own component.
    X = np.random.default_rng(0).normal(size=(3, 3)).astype(np.float32)
    res = bg.fit_em(X, 3, key=jax.random.key(0), covariance_type=covariance_type, max_iter=20)
    assert _valid(res.params, covariance_type) and np.isfinite(float(res.objective))


@pytest.mark.parametrize("map_", [False, True], ids=["ml", "map"])
def test_emptied_component_never_nan(x64, map_):
    X, _ = _blobs(200, 2, 2, seed=1)
    far = np.array([[1e3, -1e3]])
    init = bg.GMMParams(jnp.array([0.45, 0.45, 0.1]), jnp.asarray(np.r_[X[:2], far]),
                        jnp.broadcast_to(jnp.eye(2) * 1e-2, (3, 2, 2)), "full")
    prior = bg.GMMPrior() if map_ else None
    res = bg.fit_em(X, 3, key=jax.random.key(0), init=init, prior=prior, max_iter=10, tol=0.0)
    assert _valid(res.params, "full") and np.all(np.isfinite(np.asarray(res.trace)))
    assert float(res.params.weights[2]) < 1e-6
    if not map_:
        # Maximum likelihood keeps an emptied component's previous mean and covariance.
        np.testing.assert_allclose(res.params.means[2], far[0])
        np.testing.assert_allclose(res.params.covariances[2], np.eye(2) * 1e-2, rtol=1e-6)


# --- bad input --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    return _blobs(30, 2, 2, seed=0)[0]


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(n_components=0), ValueError, "n_components"),
    (dict(n_components=31), ValueError, "n_components"),
    (dict(n_components=2.5), TypeError, "n_components"),
    (dict(covariance_type="banana"), ValueError, "covariance_type"),
    (dict(init="kmeans+++"), ValueError, "init"),
    (dict(tol=-1.0), ValueError, "tol"),
    (dict(reg_covar=-1e-6), ValueError, "reg_covar"),
    (dict(max_iter=-1), ValueError, "max_iter"),
    (dict(n_init=0), ValueError, "n_init"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(sample_weight=-np.ones(30)), ValueError, "sample_weight"),
    (dict(sample_weight=np.ones(29)), ValueError, "sample_weight"),
    (dict(key=None), TypeError, "key"),
])
def test_bad_arguments_raise_naming_them(small, kwargs, exc, match):
    kw = dict(n_components=2, key=jax.random.key(0))
    kw.update(kwargs)
    n_components = kw.pop("n_components")
    with pytest.raises(exc, match=match):
        bg.fit_em(small, n_components, **kw)


@pytest.mark.parametrize("X,exc,match", [
    (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), ValueError, r"row 1, column 0"),
    (np.array([[0.0, 1.0], [1.0, np.inf], [1.0, 1.0]]), ValueError, r"row 1, column 1"),
    (np.arange(5.0), ValueError, "2-D"),
    (np.zeros((0, 2)), ValueError, "sample"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "numbers"),
    ("not an array", TypeError, "X"),
])
def test_bad_X_raises(X, exc, match):
    with pytest.raises(exc, match=match):
        bg.fit_em(X, 1, key=jax.random.key(0))


def test_bad_init_params_raise(small):
    good = _init_params(small, 2, "full")
    bad_weights = good._replace(weights=jnp.array([0.7, 0.7]))
    with pytest.raises(ValueError, match="weights"):
        bg.fit_em(small, 2, key=jax.random.key(0), init=bad_weights)
    not_pd = good._replace(covariances=jnp.broadcast_to(jnp.array([[1.0, 2.0], [2.0, 1.0]]),
                                                        (2, 2, 2)))
    with pytest.raises(ValueError, match="positive definite"):
        bg.fit_em(small, 2, key=jax.random.key(0), init=not_pd)
    with pytest.raises(ValueError, match="shape"):
        bg.fit_em(small, 2, key=jax.random.key(0), init=good._replace(means=jnp.zeros((3, 2))))
    with pytest.raises(ValueError, match="covariance_type"):
        bg.fit_em(small, 2, key=jax.random.key(0), covariance_type="diag", init=good)


def test_precision_cholesky_of_fit_is_sklearn_layout(x64, faithful, faithful_fit):
    # The fitted covariances give scikit-learn's precisions_cholesky_ layout (upper).
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky
    u = np.asarray(get_family("full").precision_cholesky(jnp.asarray(faithful_fit.params.covariances)))
    np.testing.assert_allclose(u, _compute_precision_cholesky(faithful_fit.params.covariances,
                                                              "full"), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_floor_does_not_swamp_far_apart_components(dtype, covariance_type):
    """Two unit-variance clusters 1e6 apart: each fitted variance is the cluster's own
    (+ reg_covar), not inflated by a floor scaled to the global spread (which is 2.5e11)."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 1e6]
    with jax.enable_x64(dtype == np.float64):
        r = bg.fit_em(X.astype(dtype), 2, key=jax.random.key(0), init="kmeans",
                      covariance_type=covariance_type)
        cov = np.asarray(full_covariances(r.params), np.float64)
    order = np.argsort(np.asarray(r.params.means, np.float64)[:, 0])
    parts = [X[:100], X[100:]]
    if covariance_type == "tied":
        ref = [0.5 * sum(np.cov(p.T, bias=True) for p in parts)] * 2
    elif covariance_type == "spherical":
        ref = [np.eye(2) * np.cov(p.T, bias=True).trace() / 2 for p in parts]
    else:
        ref = [np.cov(p.T, bias=True) for p in parts]
    if covariance_type == "diag":
        ref = [np.diag(np.diag(c)) for c in ref]
    ref = np.stack(ref) + 1e-6 * np.eye(2)
    # float32 data at 1e6 are stored to 0.06: a variance ~1 is good to ~1e-2 there.
    tol = 2e-2 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(cov[order], ref, rtol=tol, atol=tol)

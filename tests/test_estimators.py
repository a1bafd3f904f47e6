"""`GaussianMixture` against scikit-learn's: parity, API, dtypes, bad input, degenerate data.

float64 parity runs *without* the x64 fixture on purpose: the estimator must fit float64
input in float64 by itself (a scoped ``jax.enable_x64``), leaving JAX's global flag alone.
"""

import warnings

import jax
import numpy as np
import pytest

import bayes_gmm as bg
from bayes_gmm import BayesianGaussianMixture, GaussianMixture, GMMPrior
from bayes_gmm.estimators import ConvergenceWarning, NotFittedError

sklearn_mixture = pytest.importorskip("sklearn.mixture")
sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
SKGaussianMixture = sklearn_mixture.GaussianMixture

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
PARITY_ITER = 20


# --- identical starting points for both libraries --------------------------------------

def _precisions_init(covs, covariance_type):
    """Precisions of the given (K, D, D) covariances, reduced to ``covariance_type``."""
    if covariance_type == "full":
        return np.linalg.inv(covs)
    if covariance_type == "tied":
        return np.linalg.inv(covs.mean(axis=0))
    diag = np.diagonal(covs, axis1=1, axis2=2)
    if covariance_type == "diag":
        return 1.0 / diag
    return 1.0 / diag.mean(axis=1)


def _faithful_start(X):
    covs = np.array([[[0.08, 0.5], [0.5, 35.0]], [[0.17, 0.9], [0.9, 36.0]]])
    return dict(weights_init=np.array([0.4, 0.6]),
                means_init=np.array([[2.0, 55.0], [4.3, 80.0]]), covs=covs)


def _synthetic():
    rng = np.random.default_rng(20240601)
    k, d, per = 3, 5, 200
    means = rng.normal(scale=4.0, size=(k, d))
    A = rng.normal(size=(k, d, d))
    covs = A @ np.swapaxes(A, 1, 2) / d + 0.5 * np.eye(d)
    X = np.concatenate([rng.multivariate_normal(means[j], covs[j], per) for j in range(k)])
    X = X[rng.permutation(len(X))]
    start = dict(weights_init=np.array([0.3, 0.3, 0.4]),
                 means_init=means + 0.5 * rng.normal(size=(k, d)), covs=1.5 * covs)
    return X, start


@pytest.fixture(scope="module")
def datasets(faithful):
    Xs, start = _synthetic()
    return {"faithful": (faithful, _faithful_start(faithful)), "synthetic5d": (Xs, start)}


def _init_kwargs(start, covariance_type):
    return dict(weights_init=start["weights_init"], means_init=start["means_init"],
                precisions_init=_precisions_init(start["covs"], covariance_type))


@pytest.fixture(scope="module")
def parity_fits(datasets):
    """(ours, scikit-learn's) after PARITY_ITER iterations with tol=0 from identical starts."""
    fits = {}
    for name, (X, start) in datasets.items():
        k = len(start["weights_init"])
        for t in COVARIANCE_TYPES:
            kw = dict(n_components=k, covariance_type=t, tol=0.0, max_iter=PARITY_ITER,
                      random_state=0, **_init_kwargs(start, t))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0 never converges
                ours = GaussianMixture(**kw).fit(X)
                theirs = SKGaussianMixture(**kw).fit(X)
            fits[name, t] = (X, ours, theirs)
    return fits


PARITY_CASES = [(d, t) for d in ("faithful", "synthetic5d") for t in COVARIANCE_TYPES]


@pytest.mark.parametrize("case", PARITY_CASES, ids=[f"{d}-{t}" for d, t in PARITY_CASES])
def test_parity_with_sklearn(parity_fits, case):
    X, ours, theirs = parity_fits[case]
    assert not jax.config.jax_enable_x64          # float64 came from the scoped flag
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        got, want = getattr(ours, attr), getattr(theirs, attr)
        assert got.shape == want.shape, attr
        assert got.dtype == np.float64, attr
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, err_msg=attr)
    assert ours.n_iter_ == theirs.n_iter_ == PARITY_ITER
    assert ours.converged_ is False and theirs.converged_ is False
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-6)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-6)
    np.testing.assert_allclose(ours.score(X), theirs.score(X), rtol=1e-6)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-6)
    # probabilities: relative 1e-6, plus an absolute floor far below any decision
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6,
                               atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.bic(X), theirs.bic(X), rtol=1e-6)
    np.testing.assert_allclose(ours.aic(X), theirs.aic(X), rtol=1e-6)
    assert ours.n_features_in_ == theirs.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("case", [("faithful", "full"), ("synthetic5d", "diag")],
                         ids=["faithful-full", "synthetic5d-diag"])
def test_predict_consistency_and_sample(parity_fits, datasets, case):
    X, ours, _ = parity_fits[case]
    proba = ours.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    labels = ours.predict(X)
    np.testing.assert_array_equal(labels, np.argmax(proba, axis=1))
    # fit_predict equals fit(...).predict(...) from the same start
    gm = GaussianMixture(**{**ours.get_params(), "warm_start": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(gm.fit_predict(X), labels)
    Xs, ys = ours.sample(7)
    assert isinstance(Xs, np.ndarray) and isinstance(ys, np.ndarray)
    assert Xs.shape == (7, X.shape[1]) and ys.shape == (7,) and Xs.dtype == np.float64
    assert np.all((ys >= 0) & (ys < ours.n_components)) and np.all(np.isfinite(Xs))
    Xs2, ys2 = ours.sample(7)                 # int random_state: the same draw every call
    np.testing.assert_array_equal(Xs, Xs2)
    with pytest.raises(ValueError, match="n_samples"):
        ours.sample(0)


def test_sample_moments_match_fitted_mixture(parity_fits):
    """Sample mean and covariance of many draws match the mixture's closed-form moments."""
    X, ours, _ = parity_fits["faithful", "full"]
    Xs, ys = ours.sample(20000)
    w, m, c = ours.weights_, ours.means_, ours.covariances_
    mean = w @ m
    cov = np.einsum("k,kde->de", w, c) + np.einsum("k,kd,ke->de", w, m - mean, m - mean)
    np.testing.assert_allclose(np.bincount(ys, minlength=2) / len(ys), w, atol=0.015)
    np.testing.assert_allclose(Xs.mean(axis=0), mean, rtol=0.01)
    np.testing.assert_allclose(np.cov(Xs.T), cov, rtol=0.05)


def test_converged_fit_matches_sklearn_iterations(datasets):
    X, start = datasets["faithful"]
    # max_iter as in the parity fits: tol is not a compile-time constant, so no re-compile
    kw = dict(n_components=2, tol=1e-3, max_iter=PARITY_ITER, random_state=0,
              **_init_kwargs(start, "full"))
    ours = GaussianMixture(**kw).fit(X)
    theirs = SKGaussianMixture(**kw).fit(X)
    assert ours.converged_ is True and theirs.converged_
    assert 1 < ours.n_iter_ < PARITY_ITER
    assert ours.n_iter_ == theirs.n_iter_
    assert len(ours.lower_bounds_) == ours.n_iter_
    assert np.all(np.diff(ours.lower_bounds_) >= -1e-12)        # EM never goes down
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-9)
    # published maximum-likelihood fit of Old Faithful: total log-likelihood -1130.26
    np.testing.assert_allclose(ours.score(X) * len(X), -1130.26, atol=0.01)


def test_convergence_warning(faithful):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        gm = GaussianMixture(2, max_iter=1, random_state=0).fit(faithful)
    assert gm.n_iter_ == 1 and gm.converged_ is False
    assert issubclass(ConvergenceWarning, sklearn_exceptions.ConvergenceWarning)


def test_max_iter_zero_initialises_only(datasets):
    X, start = datasets["faithful"]
    init = _init_kwargs(start, "full")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)       # no warning at max_iter=0
        gm = GaussianMixture(2, max_iter=0, **init).fit(X)
    assert gm.n_iter_ == 0 and gm.lower_bounds_ == []
    np.testing.assert_allclose(gm.weights_, init["weights_init"], rtol=1e-12)
    np.testing.assert_allclose(gm.means_, init["means_init"], rtol=1e-12)
    np.testing.assert_allclose(gm.precisions_, init["precisions_init"], rtol=1e-9)
    np.testing.assert_allclose(gm.lower_bound_, gm.score(X), rtol=1e-12)


@pytest.mark.parametrize("method, args", [
    ("predict", True), ("predict_proba", True), ("score_samples", True), ("score", True),
    ("bic", True), ("aic", True), ("sample", False)])
def test_not_fitted_error(faithful, method, args):
    gm = GaussianMixture(2)
    with pytest.raises(NotFittedError, match="fit") as info:
        getattr(gm, method)(*([faithful] if args else []))
    assert isinstance(info.value, sklearn_exceptions.NotFittedError)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)


def test_float32_in_float32_out(faithful):
    X32 = faithful.astype(np.float32)
    gm = GaussianMixture(2, random_state=0).fit(X32)
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(gm, attr).dtype == np.float32, attr
    assert gm.score_samples(X32).dtype == np.float32
    assert gm.predict_proba(X32).dtype == np.float32
    assert gm.sample(3)[0].dtype == np.float32
    ref = SKGaussianMixture(2, random_state=0).fit(faithful)
    order = np.argsort(gm.means_[:, 0])
    np.testing.assert_allclose(gm.means_[order], ref.means_[np.argsort(ref.means_[:, 0])],
                               rtol=1e-3)


def test_random_state_reproducible_and_float64(faithful):
    a = GaussianMixture(2, init_params="k-means++", random_state=3).fit(faithful)
    b = GaussianMixture(2, init_params="k-means++", random_state=3).fit(faithful)
    assert not jax.config.jax_enable_x64
    assert a.means_.dtype == np.float64
    for attr in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert a.n_iter_ == b.n_iter_ and a.lower_bound_ == b.lower_bound_
    # a JAX key is used as given (reproducible too); a NumPy Generator is accepted
    c, c2 = (GaussianMixture(2, init_params="k-means++", random_state=jax.random.key(3))
             .fit(faithful) for _ in range(2))
    np.testing.assert_array_equal(c.means_, c2.means_)
    d = GaussianMixture(2, init_params="k-means++",
                        random_state=np.random.default_rng(0)).fit(faithful)
    for gm in (c, d):   # another start converges (tol=1e-3) near the same optimum
        np.testing.assert_allclose(gm.score(faithful), a.score(faithful), rtol=1e-3)


@pytest.mark.parametrize("init_params", ["kmeans", "random", "random_from_data"])
def test_init_methods_reach_the_known_optimum(faithful, init_params):
    # tol=1e-6: from random responsibilities all components start at the data mean and
    # the first steps change the objective by < 1e-3, so the default tol stops there
    # (scikit-learn's "random" does the same).
    gm = GaussianMixture(2, init_params=init_params, n_init=2, max_iter=200, tol=1e-6,
                         random_state=1).fit(faithful)
    np.testing.assert_allclose(gm.score(faithful) * len(faithful), -1130.26, atol=0.05)


def test_sample_weight_equals_repeated_rows(datasets):
    X, start = datasets["faithful"]
    reps = np.random.default_rng(0).integers(0, 3, size=len(X))
    kw = dict(n_components=2, tol=0.0, max_iter=PARITY_ITER, **_init_kwargs(start, "full"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GaussianMixture(**kw).fit(X, sample_weight=reps)
        repeated = GaussianMixture(**kw).fit(np.repeat(X, reps, axis=0))
    for attr in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(weighted, attr), getattr(repeated, attr),
                                   rtol=1e-9, err_msg=attr)


def test_warm_start_continues(parity_fits):
    X, once, _ = parity_fits["faithful", "full"]              # PARITY_ITER iterations
    warm = GaussianMixture(**{**once.get_params(), "max_iter": PARITY_ITER // 2,
                              "warm_start": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X).fit(X)                                     # two halves
    for attr in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(warm, attr), getattr(once, attr), rtol=1e-9,
                                   err_msg=attr)


@pytest.mark.parametrize("max_iter", [1, 2, 3])
def test_warm_start_convergence_is_detected(max_iter):
    # scikit-learn's test_convergence_detected_with_warm_start: a warm start compares its
    # first objective with the previous fit's lower_bound_, so repeated max_iter=1 fits
    # converge; and each step is the same EM as one long fit.
    X = np.random.default_rng(0).normal(size=(200, 2)) + np.repeat([[0, 0], [6, 0]], 100, 0)
    gm = GaussianMixture(2, warm_start=True, max_iter=max_iter, tol=1e-3, random_state=0)
    bounds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(100):
            gm.fit(X)
            bounds += gm.lower_bounds_
            if gm.converged_:
                break
    assert gm.converged_ and gm.n_iter_ <= max_iter
    # the same sequence of objectives as one cold fit that runs as many iterations
    cold = GaussianMixture(2, max_iter=len(bounds), tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold.fit(X)
    np.testing.assert_allclose(bounds, cold.lower_bounds_, rtol=1e-10)
    assert abs(bounds[-1] - bounds[-2]) < 1e-3


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_reg_covar_zero_on_collapsed_data_raises(covariance_type):
    # scikit-learn's test_regularisation: 10 rows on 2 points, K = 10
    X = np.vstack((np.ones((5, 2)), np.zeros((5, 2))))
    gm = GaussianMixture(10, reg_covar=0, covariance_type=covariance_type, random_state=0)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        gm.fit(X)
    assert not hasattr(gm, "weights_")
    # with a ridge the fit is finite, and says which components are empty
    with pytest.warns(bg.DegenerateFitWarning, match=r"empty \(the data have 2 distinct"):
        gm.set_params(reg_covar=1e-6).fit(X)
    assert np.all(np.isfinite(gm.covariances_))
    assert np.sort(gm.weights_)[-2:] == pytest.approx([0.5, 0.5], abs=1e-6)


def test_fit_em_names_empty_components():
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]]), 4, axis=0)
    with pytest.warns(bg.DegenerateFitWarning, match="3 distinct row"):
        bg.fit_em(X, 5, key=0)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "assignment_uncertainty", "sample"])
def test_bayesian_not_fitted_error(faithful, method):
    bgm = BayesianGaussianMixture(2)
    with pytest.raises(NotFittedError, match="fit") as info:
        getattr(bgm, method)(*([faithful] if method != "sample" else []))
    assert isinstance(info.value, sklearn_exceptions.NotFittedError)


def test_batch_size_gives_the_same_fit(parity_fits):
    X, ref, _ = parity_fits["faithful", "full"]
    gm = GaussianMixture(**{**ref.get_params(), "batch_size": 50})   # 272 rows: 6 chunks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    for attr in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(gm, attr), getattr(ref, attr), rtol=1e-9)
    np.testing.assert_allclose(gm.score_samples(X), ref.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(gm.predict_proba(X), ref.predict_proba(X), rtol=1e-9,
                               atol=1e-15)
    np.testing.assert_array_equal(gm.predict(X), ref.predict(X))


def test_params_roundtrip_like_sklearn():
    ours, theirs = GaussianMixture().get_params(), SKGaussianMixture().get_params()
    assert set(theirs) <= set(ours)
    assert set(ours) - set(theirs) == {"prior", "batch_size", "missing"}
    for name in theirs:
        assert ours[name] == theirs[name], name
    gm = GaussianMixture().set_params(n_components=3, covariance_type="diag",
                                      prior=GMMPrior())
    assert gm.get_params()["n_components"] == 3 and gm.covariance_type == "diag"
    assert repr(GaussianMixture(n_components=3)) == "GaussianMixture(n_components=3)"
    with pytest.raises(ValueError, match="banana"):
        gm.set_params(banana=1)


def test_feature_names_from_dataframe(faithful):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(faithful, columns=["eruptions", "waiting"])
    gm = GaussianMixture(2, random_state=0).fit(df)
    np.testing.assert_array_equal(gm.feature_names_in_, ["eruptions", "waiting"])
    with pytest.warns(UserWarning, match="feature names"):
        gm.predict(faithful)
    with pytest.raises(ValueError, match="feature names"):
        gm.predict(df.rename(columns={"waiting": "wait"}))


def test_map_prior_runs_and_shrinks(faithful):
    ml = GaussianMixture(2, random_state=0).fit(faithful)
    prior = GMMPrior(mean_prior=faithful.mean(0), mean_precision=1e6)
    gm = GaussianMixture(2, random_state=0, prior=prior).fit(faithful)
    # an overwhelming prior on the means pulls both to the prior mean
    np.testing.assert_allclose(gm.means_, np.tile(faithful.mean(0), (2, 1)), rtol=1e-3)
    assert np.ptp(ml.means_[:, 1]) > 20


# --- bad input: ValueError/TypeError naming the argument --------------------------------

def _nan_at(X, r, c, value=np.nan):
    X = X.copy()
    X[r, c] = value
    return X


GOOD = np.random.default_rng(1).normal(size=(20, 2))
BAD_X = [
    ("nan", _nan_at(GOOD, 3, 1), ValueError, r"row 3, column 1"),
    ("inf", _nan_at(GOOD, 5, 0, np.inf), ValueError, r"row 5, column 0"),
    ("1-D", GOOD[:, 0], ValueError, "2-D"),
    ("3-D", GOOD[None], ValueError, "2-D"),
    ("no rows", np.empty((0, 2)), ValueError, "0 sample"),
    ("no columns", np.empty((5, 0)), ValueError, "0 feature"),
    ("strings", np.array([["a", "b"], ["c", "d"]]), TypeError, "X must contain numbers"),
    ("object", np.array([[1.0, {"a": 1}], [2.0, 3.0]], dtype=object), TypeError, "X"),
    ("complex", GOOD + 1j, ValueError, "Complex"),
    ("None", None, TypeError, "X"),
]


@pytest.mark.parametrize("X, exc, match", [c[1:] for c in BAD_X], ids=[c[0] for c in BAD_X])
def test_bad_X(X, exc, match):
    with pytest.raises(exc, match=match):
        GaussianMixture(1).fit(X)


_P = np.eye(2)[None].repeat(2, axis=0)
BAD_PARAMS = [
    ("k=0", dict(n_components=0), ValueError, "n_components"),
    ("k>n", dict(n_components=21), ValueError, "n_components"),
    ("k float", dict(n_components=1.5), TypeError, "n_components"),
    ("covariance_type", dict(covariance_type="banana"), ValueError, "covariance_type"),
    ("init_params", dict(init_params="kmedoids"), ValueError, "init_params"),
    ("tol<0", dict(tol=-1e-3), ValueError, "tol"),
    ("reg_covar<0", dict(reg_covar=-1.0), ValueError, "reg_covar"),
    ("max_iter<0", dict(max_iter=-1), ValueError, "max_iter"),
    ("n_init=0", dict(n_init=0), ValueError, "n_init"),
    ("batch_size=0", dict(batch_size=0), ValueError, "batch_size"),
    ("prior type", dict(prior={"weight_concentration": 1.0}), TypeError, "prior"),
    ("weights shape", dict(n_components=2, weights_init=[1.0]), ValueError, "weights_init"),
    ("weights sum", dict(n_components=2, weights_init=[0.5, 0.4]), ValueError, "sum to 1"),
    ("weights negative", dict(n_components=2, weights_init=[1.5, -0.5]), ValueError,
     "weights_init"),
    ("means shape", dict(n_components=2, means_init=np.zeros((2, 3))), ValueError,
     "means_init"),
    ("precisions shape", dict(n_components=2, precisions_init=np.eye(2)), ValueError,
     "precisions_init"),
    ("precisions asymmetric", dict(n_components=2,
                                   precisions_init=_P + np.array([[0, 0.5], [0, 0]])),
     ValueError, "symmetric"),
    ("precisions not PD", dict(n_components=2, precisions_init=_P * np.array([1, -1])[:, None]),
     ValueError, "positive definite"),
    ("precisions diag <= 0", dict(n_components=2, covariance_type="diag",
                                  precisions_init=np.array([[1.0, 0.0], [1.0, 1.0]])),
     ValueError, "precisions_init"),
    ("precisions tied not PD", dict(n_components=2, covariance_type="tied",
                                    precisions_init=np.array([[1.0, 2.0], [2.0, 1.0]])),
     ValueError, "positive definite"),
]


@pytest.mark.parametrize("params, exc, match", [c[1:] for c in BAD_PARAMS],
                         ids=[c[0] for c in BAD_PARAMS])
def test_bad_params(params, exc, match):
    gm = GaussianMixture(**params)                 # the constructor never validates
    with pytest.raises(exc, match=match):
        gm.fit(GOOD)


@pytest.mark.parametrize("sample_weight, match", [
    (np.r_[-1.0, np.ones(19)], "non-negative"), (np.ones(19), r"\(20,\)"),
    (np.zeros(20), "zero")], ids=["negative", "mis-sized", "all zero"])
def test_bad_sample_weight(sample_weight, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(1).fit(GOOD, sample_weight=sample_weight)


def test_predict_with_other_number_of_features(parity_fits):
    _, gm, _ = parity_fits["faithful", "full"]
    for method in ("predict", "predict_proba", "score_samples", "score", "bic"):
        with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is "
                                             "expecting 2 features"):
            getattr(gm, method)(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="row 1, column 0"):
        gm.predict(np.array([[1.0, 2.0], [np.nan, 1.0]]))


# --- degenerate but legal data ----------------------------------------------------------

def _degenerate():
    rng = np.random.default_rng(7)
    two = np.concatenate([rng.normal([0, 0], 1.0, (20, 2)), rng.normal([6, 3], 1.0, (20, 2))])
    const_col = two.copy()
    const_col[:, 1] = 4.2
    dup = np.repeat(np.array([[0.0, 1.0], [2.0, 2.0], [5.0, -1.0]]), [20, 15, 5], axis=0)
    return {"identical": np.full((40, 2), 3.7), "constant column": const_col,
            "duplicates": dup, "K = N": two[:3], "scaled 1e8": two * 1e8,
            "scaled 1e-8": two * 1e-8}


DEGENERATE = _degenerate()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_data_gives_valid_params(name, covariance_type):
    X = DEGENERATE[name]
    k = 3 if name == "K = N" else 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(gm, attr))), attr
    assert np.all(gm.weights_ >= 0)
    np.testing.assert_allclose(gm.weights_.sum(), 1.0, rtol=1e-12)
    cov = gm.covariances_
    if covariance_type in ("full", "tied"):
        mats = cov.reshape(-1, X.shape[1], X.shape[1])
        np.testing.assert_allclose(mats, np.swapaxes(mats, 1, 2), rtol=1e-12, atol=0)
        assert np.all(np.linalg.eigvalsh(mats) > 0)
    else:
        assert np.all(cov > 0)
    assert np.all(np.isfinite(gm.score_samples(X)))
    assert np.isfinite(gm.lower_bound_)

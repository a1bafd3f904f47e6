"""mclust's eigen-decomposed covariance families (Celeux & Govaert 1995), against mclust's
published BIC tables, scikit-learn's four types, scipy's density and their own optimality."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal as mvn

import bayes_gmm as bg
from bayes_gmm.core.covariance import MCLUST_TYPES, get_family
from bayes_gmm.densities import n_parameters

EM = dict(n_init=10, tol=1e-9, max_iter=2000, dtype=np.float64)

#: mclust's mclustBIC(faithful) (mclust's sign: 2 logL − p ln n, higher is better), from
#: the issue; mclust runs one EM per cell from hierarchical clustering, so the best of 10
#: restarts must reach or beat each cell, and match the K = 1 cells (closed form).
MCLUST_FAITHFUL = {(1, "EII"): -4024.721, (1, "EEI"): -3055.835, (1, "EEE"): -2607.623,
                   (2, "VVV"): -2322.192, (2, "VVE"): -2320.433, (2, "EEE"): -2325.220, (2, "VEI"): -2350.607,
                   (3, "EEE"): -2314.316, (3, "VEE"): -2322.103}


def _fit(X, k, name, key=0, **kw):
    return bg.fit_em(X, k, key=jax.random.key(key), covariance_type=name, **{**EM, **kw})


def _loglik(params, X):
    k, d = params.means.shape
    cov = np.asarray(params.family.to_full(jnp.asarray(params.covariances), k, d))
    dens = sum(float(w) * mvn(m, c).pdf(X) for w, m, c in
               zip(np.asarray(params.weights), np.asarray(params.means), cov))
    return float(np.sum(np.log(dens)))


@pytest.mark.parametrize("cell", sorted(MCLUST_FAITHFUL))
def test_faithful_bic_reaches_mclust(x64, faithful, cell):
    k, name = cell
    X = np.asarray(faithful, np.float64)
    res = _fit(X, k, name)
    ours = float(bg.bic(res.params, X))
    target = -MCLUST_FAITHFUL[cell]                 # our sign: lower is better
    if k == 1:
        assert ours == pytest.approx(target, abs=0.01)
    else:
        assert ours <= target + 0.01


def test_iris_vev_two_reaches_mclust(x64):
    from sklearn.datasets import load_iris
    X = load_iris().data
    res = _fit(X, 2, "VEV")
    ll = _loglik(res.params, X)
    assert ll >= -215.7259 - 0.01                     # mclust: logL −215.7259, BIC −561.7285
    assert float(bg.bic(res.params, X)) <= 561.7285 + 0.01


@pytest.mark.parametrize("sk,mc", [("spherical", "VII"), ("diag", "VVI"), ("tied", "EEE"),
                                   ("full", "VVV")])
def test_scikit_learn_names_are_the_mclust_models(x64, faithful, sk, mc):
    X = np.asarray(faithful, np.float64)
    a = bg.fit_em(X, 3, key=jax.random.key(2), covariance_type=sk, tol=1e-12, max_iter=300,
                  dtype=np.float64, init="kmeans")
    b = bg.fit_em(X, 3, key=jax.random.key(2), covariance_type=mc, tol=1e-12, max_iter=300,
                  dtype=np.float64, init="kmeans")
    full_a = np.asarray(a.params.family.to_full(a.params.covariances, 3, 2))
    np.testing.assert_allclose(np.asarray(b.params.covariances), full_a, rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(np.asarray(b.params.means), np.asarray(a.params.means),
                               rtol=1e-10)
    assert float(b.objective) == pytest.approx(float(a.objective), rel=1e-12)
    assert int(b.n_iter) == int(a.n_iter)
    assert n_parameters(a.params) == n_parameters(b.params)


@pytest.fixture(scope="module")
def iris_fits():
    from sklearn.datasets import load_iris
    X = load_iris().data
    with jax.enable_x64(True):
        return X, {name: bg.fit_em(X, 3, key=jax.random.key(1), covariance_type=name,
                                   tol=0.0, max_iter=60, dtype=np.float64, reg_covar=0.0)
                   for name in MCLUST_TYPES}


@pytest.mark.parametrize("name", MCLUST_TYPES)
def test_trace_never_decreases_and_density_is_scipys(x64, iris_fits, name):
    X, fits = iris_fits
    res = fits[name]
    t = np.asarray(res.trace)
    t = t[np.isfinite(t)]
    assert np.all(np.diff(t) >= -1e-10 * np.abs(t[1:])), np.diff(t).min()
    ll = float(np.sum(np.asarray(bg.log_prob(res.params, X))))
    assert ll == pytest.approx(_loglik(res.params, X), rel=1e-10)


def _structure_holds(name, vol, shape, orient, tol=1e-6):
    """The fitted decomposition has the family's constraints."""
    v, s, o = name
    k, d = shape.shape
    if v == "E":
        np.testing.assert_allclose(vol, vol[0], rtol=tol)
    if s == "E":
        np.testing.assert_allclose(shape, np.broadcast_to(shape[0], shape.shape), rtol=tol,
                                   atol=tol)
    if s == "I":
        np.testing.assert_allclose(shape, 1.0, rtol=tol)
    if o == "I":
        # axis-aligned: each orientation is a signed permutation
        np.testing.assert_allclose(np.sort(np.abs(orient), -1)[..., -1], 1.0, atol=tol)
    if o == "E":
        # the same axes up to sign and order (eigenvalues may tie only for I shapes)
        for j in range(1, k):
            m = np.abs(orient[0].T @ orient[j])
            np.testing.assert_allclose(np.sort(m, -1)[..., -1], 1.0, atol=1e-5)


@pytest.mark.parametrize("name", MCLUST_TYPES)
def test_fitted_covariances_have_the_family_structure(x64, iris_fits, name):
    _, fits = iris_fits
    vol, shape, orient = (np.asarray(a) for a in bg.decompose(fits[name].params))
    k, d = shape.shape
    assert vol.shape == (3,) and orient.shape == (3, 4, 4)
    np.testing.assert_allclose(np.prod(shape, -1), 1.0, rtol=1e-8)   # det A = 1
    _structure_holds(name, vol, shape, orient)


@pytest.mark.parametrize("name", MCLUST_TYPES)
def test_perturbing_volume_shape_or_orientation_never_raises_the_likelihood(x64, faithful,
                                                                            name):
    X = np.asarray(faithful, np.float64)
    # reg_covar = 0: the ridge reg_covar·I is a deliberate step off the family's optimum
    res = _fit(X, 2, name, n_init=3, reg_covar=0.0)
    p = res.params
    best = _loglik(p, X)
    vol, shape, orient = (np.asarray(a) for a in bg.decompose(p))
    rng = np.random.default_rng(0)
    v, s, o = name
    for _ in range(6):
        dv = np.exp(1e-3 * rng.normal(size=2))
        dv = dv if v == "V" else np.full(2, dv[0])
        a = np.log(shape) + (1e-3 * rng.normal(size=(2, 2)) if s != "I" else 0.0)
        if s == "E":
            a = np.broadcast_to(a[0], a.shape)
        a = np.exp(a - a.mean(-1, keepdims=True))
        th = 1e-3 * rng.normal(size=2)
        rot = np.stack([[[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]] for t in th])
        if o == "E":
            rot = np.broadcast_to(rot[0], rot.shape)
        if o == "I":
            rot = np.broadcast_to(np.eye(2), rot.shape)
        d_new = rot @ orient
        cov = np.einsum("k,kij,kj,klj->kil", vol * dv, d_new, a, d_new)
        q = bg.GMMParams(p.weights, p.means, cov, name)
        assert _loglik(q, X) <= best + 1e-9


def test_counts_are_mclusts(x64):
    # nMclustParams(model, d = 3, G = 4): variance parameters + G·d means + (G − 1) weights
    d, g = 3, 4
    expect_var = {"EII": 1, "VII": g, "EEI": d, "VEI": g + d - 1, "EVI": 1 + g * (d - 1),
                  "VVI": g * d, "EEE": d * (d + 1) // 2, "VEE": g + (d - 1) + d * (d - 1) // 2,
                  "EVE": 1 + g * (d - 1) + d * (d - 1) // 2,
                  "VVE": g + g * (d - 1) + d * (d - 1) // 2,
                  "EEV": 1 + (d - 1) + g * d * (d - 1) // 2,
                  "VEV": g + (d - 1) + g * d * (d - 1) // 2, "EVV": 1 - g + g * d * (d + 1) // 2,
                  "VVV": g * d * (d + 1) // 2}
    for name in MCLUST_TYPES:
        assert get_family(name).n_parameters(g, d) == expect_var[name], name
        p = bg.GMMParams(np.full(g, 1 / g), np.zeros((g, d)), np.broadcast_to(np.eye(d),
                                                                             (g, d, d)), name)
        assert n_parameters(p) == expect_var[name] + g * d + g - 1


def test_icl_is_bic_plus_twice_the_classification_entropy(x64, faithful):
    X = np.asarray(faithful, np.float64)
    res = _fit(X, 2, "VVV", n_init=3)
    r = np.asarray(bg.responsibilities(res.params, X))
    z = r.max(1)
    expect = float(bg.bic(res.params, X)) - 2.0 * np.sum(np.log(z))
    assert float(bg.icl(res.params, X)) == pytest.approx(expect, rel=1e-12)
    assert float(bg.icl(res.params, X)) >= float(bg.bic(res.params, X))
    # the estimator's icl is the function's, and mclust's names work in the estimator
    gm = bg.GaussianMixture(2, covariance_type="EEV", n_init=3, random_state=0).fit(X)
    assert gm.covariances_.shape == (2, 2, 2)
    p = bg.GMMParams(gm.weights_, gm.means_, gm.covariances_, "EEV")
    assert gm.icl(X) == pytest.approx(float(bg.icl(p, X)), rel=1e-9)


@pytest.mark.parametrize("name,cols", [("VVV", slice(None)), ("V", slice(0, 1))])
def test_vvv_and_v_take_fulls_prior(x64, faithful, name, cols):
    # VVV (and V, its one-dimensional case) are ``full`` by another name: the same MAP fit
    # and the same NumPyro log joint under GMMPrior
    from numpyro.infer.util import log_density
    X = np.asarray(faithful, np.float64)[:, cols]
    prior = bg.GMMPrior(weight_concentration=1.5)
    kw = dict(key=jax.random.key(3), prior=prior, tol=1e-12, max_iter=300, dtype=np.float64)
    a = bg.fit_em(X, 2, covariance_type="full", **kw)
    b = bg.fit_em(X, 2, covariance_type=name, **kw)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-10)
    assert float(b.objective) == pytest.approx(float(a.objective), rel=1e-12)
    site = {"weights": a.params.weights, "means": a.params.means,
            "covariances": a.params.covariances}
    lds = [float(log_density(bg.gmm_model, (jnp.asarray(X), 2),
                             dict(prior=prior, covariance_type=t), site)[0])
           for t in ("full", name)]
    assert lds[1] == pytest.approx(lds[0], rel=1e-12)
    assert lds[0] == pytest.approx(len(X) * float(a.objective), rel=1e-8)


def test_no_sampler_is_a_clear_error(faithful, monkeypatch):
    # the eight families whose prior is Fraley & Raftery's penalty have MAP but no sampler
    msg = "'VEV' has a MAP prior.*nearest family they can sample is 'VVV'"
    with pytest.raises(ValueError, match=msg):
        bg.fit_nuts(faithful, 2, key=0, covariance_type="VEV", num_warmup=1, num_samples=1)
    with pytest.raises(ValueError, match="'EVI' has a MAP prior.*sample is 'VVI'"):
        bg.fit_svi(faithful, 2, key=0, covariance_type="EVI", num_steps=1)
    with pytest.raises(ValueError, match="'EEV' has a MAP prior"):
        bg.gmm_model(faithful, 2, covariance_type="EEV")
    # compare refuses before fitting anything (no EM runs first)
    from bayes_gmm import model_selection

    def no_fit(*args, **kwargs):
        raise AssertionError("compare fitted a cell before refusing")
    monkeypatch.setattr(model_selection, "_fit_cell", no_fit)
    with pytest.raises(ValueError, match="'VEI' has a MAP prior.*'VVI'"):
        bg.compare(faithful, [1, 2], key=0, method="nuts", covariance_type="VEI")
    with pytest.raises(ValueError, match="covariance_prior must be a \\(2, 2\\) matrix"):
        bg.compare(faithful, [1, 2], key=0, covariance_type=["full", "EEV"],
                   prior=bg.GMMPrior(covariance_prior=1.0))


def test_estimator_save_load_and_cli_take_mclust_names(x64, faithful, tmp_path, capsys):
    import json
    from bayes_gmm import cli
    X = np.asarray(faithful, np.float64)
    gm = bg.GaussianMixture(2, covariance_type="VEI", n_init=2, random_state=0).fit(X)
    bg.save(gm, tmp_path / "m")
    again = bg.load(tmp_path / "m")
    assert again.covariance_type == "VEI"
    np.testing.assert_array_equal(again.covariances_, gm.covariances_)
    np.testing.assert_allclose(again.score(X), gm.score(X), rtol=1e-12)
    path = tmp_path / "faithful.csv"
    np.savetxt(path, X, delimiter=",", header="eruptions,waiting", comments="")
    out = tmp_path / "fit"
    assert cli.main(["fit", str(path), "-k", "2", "--covariance-type", "EEV", "--out",
                     str(out), "--no-plots", "--no-progress"]) == 0
    params = json.loads((out / "params.json").read_text())
    assert params["covariance_type"] == "EEV"
    assert np.asarray(params["covariances"]).shape == (2, 2, 2)


@pytest.fixture(scope="module")
def faithful_grid(faithful):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bg.DegenerateFitWarning)
        return bg.compare(faithful, [2, 3], covariance_type="all", random_state=0)


def test_compare_over_families_finds_mclusts_best_model(faithful_grid):
    t = faithful_grid
    assert t.index.names == ["covariance_type", "n_components"]
    assert len(t) == 2 * len(MCLUST_TYPES)
    # mclust's best model on Old Faithful: EEE with 3 components, BIC −2314.316 (its sign)
    assert t.attrs["best_model"] == ("EEE", 3) and t.attrs["best_k"] == 3
    # reach or beat mclust's cells (one EM each from hierarchical clustering)
    assert t.loc[("EEE", 3), "bic"] <= 2314.316 + 0.01
    assert t.loc[("VVV", 2), "bic"] <= 2322.192 + 0.01
    assert t.loc[("VEE", 3), "bic"] <= 2322.103 + 0.01
    assert bool(t.loc[("EEE", 3), "best"]) and int(t["best"].sum()) == 1
    assert (t["icl"] >= t["bic"] - 1e-9).all() and t["converged"].all()
    # ICL can be asked for instead
    assert t.attrs["criterion"] == "bic"


def test_compare_grid_figure_and_errors(faithful, faithful_grid):
    fig = bg.plots.plot_model_selection(faithful_grid)
    ax = fig.axes[0]
    labels = [h.get_label() for h in ax.get_legend().legend_handles]
    assert labels == list(MCLUST_TYPES)
    with pytest.raises(ValueError, match="EM only"):
        bg.compare(faithful, [2], method="nuts", covariance_type=["EII", "VVV"], key=0)
    with pytest.raises(ValueError, match="criterion"):
        bg.compare(faithful, [2], criterion="aic", key=0)
    with pytest.raises(ValueError, match="repeated"):
        bg.compare(faithful, [2], covariance_type=["EII", "EII"], key=0)


def test_an_emptied_component_keeps_its_covariance_and_the_others_stay_finite(x64, faithful):
    # A third component far from every row gets no responsibility (exactly 0 in float64);
    # families that share volume, shape or orientation must not divide by its empty scatter.
    X = np.asarray(faithful, np.float64)
    means = np.array([[2.0, 55.0], [4.4, 80.0], [1e4, 1e4]])
    cov = np.stack([np.diag([0.1, 30.0]), np.diag([0.2, 40.0]), np.diag([0.3, 50.0])])
    for name in MCLUST_TYPES:
        start = bg.GMMParams(np.array([0.4, 0.5, 0.1]), means, cov, name)
        with pytest.warns(bg.DegenerateFitWarning, match=r"component\(s\) \[2\] are empty"):
            res = bg.fit_em(X, 3, key=jax.random.key(0), covariance_type=name, init=start,
                            max_iter=20, tol=0.0, dtype=np.float64)
        c = np.asarray(res.params.covariances)
        assert np.all(np.isfinite(c)) and np.all(np.isfinite(np.asarray(res.params.means))), name
        assert float(res.params.weights[2]) < 1e-12, name
        assert np.all(np.linalg.eigvalsh(c) > 0), name
        t = np.asarray(res.trace)
        t = t[np.isfinite(t)][1:]          # (the start is not of the family's form)
        assert np.all(np.diff(t) >= -1e-10 * np.abs(t[1:])), name


@pytest.mark.parametrize("sk,mc", [("tied", "E"), ("spherical", "V")])
def test_one_dimensional_e_and_v_are_equal_and_unequal_variances(x64, faithful, sk, mc):
    X = np.asarray(faithful, np.float64)[:, :1]
    a = bg.fit_em(X, 3, key=jax.random.key(2), covariance_type=sk, tol=1e-12, max_iter=300,
                  dtype=np.float64, init="kmeans")
    b = bg.fit_em(X, 3, key=jax.random.key(2), covariance_type=mc, tol=1e-12, max_iter=300,
                  dtype=np.float64, init="kmeans")
    assert b.params.covariances.shape == (3, 1, 1)
    full_a = np.asarray(a.params.family.to_full(a.params.covariances, 3, 1))
    np.testing.assert_allclose(np.asarray(b.params.covariances), full_a, rtol=1e-10)
    assert float(b.objective) == pytest.approx(float(a.objective), rel=1e-12)
    # mclust's counts: E has one variance, V one per component
    assert n_parameters(b.params) == 3 + 2 + (1 if mc == "E" else 3)
    with pytest.raises(ValueError, match=f"'{mc}' is mclust's name for one-dimensional data; "
                                         "X has 2 features"):
        bg.fit_em(np.asarray(faithful), 2, key=0, covariance_type=mc)


def test_compare_all_on_one_feature_is_e_and_v(x64, faithful):
    X = np.asarray(faithful, np.float64)[:, :1]
    t = bg.compare(X, [1, 2], covariance_type="all", random_state=0, n_init=3)
    assert list(t.index.get_level_values(0).unique()) == ["E", "V"]
    # K = 1: both are the sample variance (closed form)
    v = X.var()
    ll1 = -0.5 * len(X) * (np.log(2 * np.pi * v) + 1)
    assert t.loc[("E", 1), "log_likelihood"] == pytest.approx(ll1, rel=1e-10)
    assert t.loc[("V", 1), "log_likelihood"] == pytest.approx(ll1, rel=1e-10)


@pytest.fixture(scope="module")
def iris_ic():
    from sklearn.datasets import load_iris
    X = load_iris().data
    gm = bg.GaussianMixtureIC([1, 2, 3], covariance_type=["VEV", "VVV", "EEE"],
                              random_state=0).fit(X)
    return X, gm


def test_gaussian_mixture_ic_chooses_mclusts_model_on_iris(iris_ic):
    X, gm = iris_ic
    # mclust's choice on iris: VEV with 2 components, BIC −561.7285 (its sign), logL −215.7259
    assert (gm.covariance_type_, gm.n_components_) == ("VEV", 2)
    assert gm.best_criterion_ <= 561.7285 + 0.01
    assert gm.score(X) * len(X) >= -215.7259 - 0.01
    # the estimator is the table's cell: its own bic, parameters and predictions agree
    t = gm.criterion_
    assert gm.bic(X) == pytest.approx(t.loc[("VEV", 2), "bic"], rel=1e-10)
    assert gm.bic(X) == pytest.approx(gm.best_criterion_, rel=1e-12)
    assert bool(t.loc[("VEV", 2), "best"]) and t["bic"].min() == pytest.approx(gm.bic(X))
    p = bg.GMMParams(gm.weights_, gm.means_, gm.covariances_, "VEV")
    np.testing.assert_array_equal(gm.predict(X), np.asarray(bg.predict(p, X)))
    assert gm.covariances_.shape == (2, 4, 4) and gm.precisions_.shape == (2, 4, 4)
    np.testing.assert_allclose(gm.precisions_ @ gm.covariances_, np.broadcast_to(np.eye(4),
                               (2, 4, 4)), atol=1e-8)


def test_gaussian_mixture_ic_follows_the_sklearn_protocol(iris_ic):
    from sklearn.base import clone
    X, gm = iris_ic
    c = clone(gm)
    assert c.get_params()["covariance_type"] == ["VEV", "VVV", "EEE"]
    assert c.get_params()["criterion"] == "bic" and not hasattr(c, "weights_")
    with pytest.raises(ValueError, match="criterion must be one of"):
        bg.GaussianMixtureIC(criterion="aicc").fit(X)
    with pytest.raises(ValueError, match="init_params must be one of"):
        bg.GaussianMixtureIC(init_params="hc").fit(X)


def test_cli_compare_prints_mclusts_table(x64, faithful, tmp_path, capsys):
    import pandas as pd
    from bayes_gmm import cli
    X = np.asarray(faithful, np.float64)
    path = tmp_path / "faithful.csv"
    np.savetxt(path, X, delimiter=",", header="eruptions,waiting", comments="")
    args = cli.build_parser().parse_args(["compare", str(path), "--covariance-type", "all"])
    assert args.covariance_type == "all"
    out = tmp_path / "cmp"
    assert cli.main(["compare", str(path), "-k", "1..2", "--covariance-type", "EEE,VVE",
                     "--criterion", "icl", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "ICL (lower is better" in text and "recommended model: VVE with K = 2" in text
    lines = text.splitlines()
    header = next(i for i, s in enumerate(lines) if s.split()[:3] == ["covariance_type",
                                                                       "EEE", "VVE"])
    row2 = lines[header + 3].split()
    assert row2[0] == "2"
    table = pd.read_csv(out / "compare.csv", index_col=[0, 1])
    assert float(row2[2]) == pytest.approx(table.loc[("VVE", 2), "icl"], abs=1e-3)
    assert (out / "model_selection.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        cli.main(["compare", str(path), "--covariance-type", "EEE,XYZ"])
    assert "expected 'all' or names" in capsys.readouterr().err

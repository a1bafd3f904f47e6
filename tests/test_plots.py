"""Figures: each renders to PNG; the artists drawn match what was asked (2 ellipses per
component per panel, one point per EM iteration, …) and the ellipses are the right
Mahalanobis contours of the fitted covariances."""

import io

import arviz as az
import jax
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

import bayes_gmm as bg
from bayes_gmm import plots
from bayes_gmm import GMMParams

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    data = buf.getvalue()
    assert data[:8] == PNG_MAGIC and len(data) > 2000
    return data


def _ellipses(fig, gid=plots.ELLIPSE_GID):
    return [p for ax in fig.axes for p in ax.patches if p.get_gid() == gid]


def _synthetic_idata(n_chains=2, n_draws=20, seed=0):
    """A posterior around a known 2-component mixture, in the layout fit_nuts returns."""
    rng = np.random.default_rng(seed)
    s = (n_chains, n_draws)
    w0 = 0.3 + 0.02 * rng.standard_normal(s)
    weights = np.stack([w0, 1 - w0], axis=-1)
    means = np.array([[0.0, 1.0], [2.0, 1.0]]) + 0.05 * rng.standard_normal(s + (2, 2))
    base = np.array([[[0.3, 0.05], [0.05, 0.1]], [[0.2, 0.0], [0.0, 0.3]]])
    covs = base * np.exp(0.1 * rng.standard_normal(s + (2, 1, 1)))   # stays SPD
    return az.from_dict(
        posterior={"weights": weights, "means": means, "covariances": covs},
        sample_stats={"diverging": np.zeros(s, bool)},
        dims={"weights": ["component"], "means": ["component", "feature"],
              "covariances": ["component", "feature", "feature_bis"]})


@pytest.fixture(scope="module")
def em_fit(two_clusters):
    X, _ = two_clusters
    return bg.fit_em(X, 2, key=jax.random.key(0))


@pytest.fixture(scope="module")
def idata():
    return _synthetic_idata()


def _params(covariance_type):
    means = np.array([[0.0, 1.0, -1.0], [3.0, 2.0, 0.5]])
    cov = {"full": np.array([[[1.0, 0.6, 0.1], [0.6, 2.0, 0.3], [0.1, 0.3, 0.5]],
                             [[0.5, -0.2, 0.0], [-0.2, 0.4, 0.1], [0.0, 0.1, 1.5]]]),
           "tied": np.array([[1.0, 0.6, 0.1], [0.6, 2.0, 0.3], [0.1, 0.3, 0.5]]),
           "diag": np.array([[1.0, 2.0, 0.5], [0.5, 0.4, 1.5]]),
           "spherical": np.array([0.7, 1.3])}[covariance_type]
    return GMMParams(np.array([0.4, 0.6]), means, cov, covariance_type)


def _full(p, k):
    c = np.asarray(p.covariances)
    d = p.means.shape[1]
    return {"full": lambda: c[k], "tied": lambda: c, "diag": lambda: np.diag(c[k]),
            "spherical": lambda: c[k] * np.eye(d)}[p.covariance_type]()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_components_ellipses_are_mahalanobis_contours(covariance_type):
    p = _params(covariance_type)
    X = np.random.default_rng(1).normal(size=(60, 3)) + 1.0
    i, j = 0, 2
    fig = plots.plot_components(X, p, features=(i, j))
    assert isinstance(fig, Figure)
    _png(fig)
    ells = _ellipses(fig)
    assert len(ells) == 2 * p.n_components                       # 1σ and 2σ per component
    # every vertex of each ellipse lies at Mahalanobis distance r from its component mean,
    # under the (i, j) block of that component's covariance
    for e in ells:
        # on-curve vertices of the Bézier unit circle (every third; the others are controls)
        verts = e.get_patch_transform().transform(e.get_path().vertices[:-1:3])
        center = np.asarray(e.center)
        k = int(np.argmin(np.linalg.norm(p.means[:, [i, j]] - center, axis=1)))
        np.testing.assert_allclose(center, p.means[k, [i, j]])
        block = _full(p, k)[np.ix_([i, j], [i, j])]
        diff = verts - center
        r = np.sqrt(np.einsum("nd,nd->n", diff, np.linalg.solve(block, diff.T).T))
        expected = 1.0 if e.get_linestyle() == "-" else 2.0
        np.testing.assert_allclose(r, expected, rtol=1e-6)
    # points coloured by most probable component: one colour per predicted cluster
    sc = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)][0]
    assert sc.get_offsets().shape == (60, 2)
    labels = np.asarray(bg.predict(GMMParams(*(np.asarray(a, np.float32) for a in
                                               (p.weights, p.means, p.covariances)),
                                             covariance_type), X.astype(np.float32)))
    colors = sc.get_facecolors()
    for lab in np.unique(labels):
        assert len(np.unique(colors[labels == lab], axis=0)) == 1
    assert len(np.unique(colors, axis=0)) == len(np.unique(labels))


def test_components_accepts_emresult_estimator_and_grid(two_clusters, em_fit):
    X, _ = two_clusters
    fig = plots.plot_components(X, em_fit)
    assert len(_ellipses(fig)) == 4
    gm = bg.GaussianMixture(2, random_state=0).fit(X)
    fig = plots.plot_components(X, gm, feature_names=["a", "b"])
    assert len(_ellipses(fig)) == 4
    assert fig.axes[0].get_xlabel() == "a"
    _png(fig)
    # D = 3, features="all": a lower-triangular grid of 3 panels, 2K ellipses in each
    p = _params("diag")
    X3 = np.random.default_rng(2).normal(size=(40, 3))
    fig = plots.plot_components(X3, p, features="all")
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 3
    assert all(len([q for q in ax.patches if q.get_gid() == plots.ELLIPSE_GID]) == 4
               for ax in panels)
    _png(fig)
    # drawing into a given Axes returns that Axes' figure
    f = Figure()
    ax = f.add_subplot()
    assert plots.plot_components(X, em_fit, ax=ax) is f


def test_components_posterior_spread(two_clusters, idata):
    X, _ = two_clusters
    fig = plots.plot_components(X, idata, n_draws=10)
    assert len(_ellipses(fig)) == 4                                    # posterior mean
    assert len(_ellipses(fig, plots.DRAW_ELLIPSE_GID)) == 10 * 2 * 2   # draws × K × 2
    _png(fig)
    # more draws asked than there are: all 40
    fig = plots.plot_components(X, idata, n_draws=1000)
    assert len(_ellipses(fig, plots.DRAW_ELLIPSE_GID)) == 40 * 4


def test_components_rejects_bad_arguments(two_clusters, em_fit):
    X, _ = two_clusters
    with pytest.raises(ValueError, match="features"):
        plots.plot_components(X, em_fit, features=(0, 0))
    with pytest.raises(ValueError, match="features"):
        plots.plot_components(X, em_fit, features="some")
    with pytest.raises(TypeError, match="fit must be"):
        plots.plot_components(X, object())
    with pytest.raises(ValueError, match="features"):
        plots.plot_components(X[:, :1], GMMParams(np.ones(1), np.zeros((1, 1)),
                                                  np.ones((1, 1, 1)), "full"))


def test_convergence_one_point_per_iteration(two_clusters, em_fit):
    fig = plots.plot_convergence(em_fit)
    line = fig.axes[0].get_lines()[0]
    n = int(em_fit.n_iter)
    trace = np.asarray(em_fit.trace)
    assert np.isnan(trace[n:]).all() and len(line.get_xdata()) == n
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, n + 1))
    np.testing.assert_allclose(line.get_ydata(), trace[:n])
    _png(fig)


def test_model_selection_figure():
    import pandas as pd
    t = pd.DataFrame({"bic": [10.0, 5.0, 7.0], "aic": [9.0, 4.0, 5.0]},
                     index=pd.Index([1, 2, 3], name="n_components"))
    t.attrs["best_k"] = 2
    fig = plots.plot_model_selection(t)
    assert len(fig.axes) == 1
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_ydata(), [10.0, 5.0, 7.0])
    _png(fig)
    t["elpd_loo"] = [-20.0, -10.0, -11.0]
    t["se"] = [1.0, 2.0, 1.5]
    fig = plots.plot_model_selection(t)
    assert len(fig.axes) == 2
    # the error bars span elpd ± se
    segs = fig.axes[1].collections[0].get_segments()
    np.testing.assert_allclose([s[:, 1] for s in segs],
                               [[-21.0, -19.0], [-12.0, -8.0], [-12.5, -9.5]])
    _png(fig)
    with pytest.raises(ValueError, match="bic"):
        plots.plot_model_selection(pd.DataFrame({"x": [1.0]}))


def test_trace_and_posterior_wrappers(idata):
    import matplotlib.pyplot as plt
    before = set(plt.get_fignums())
    fig = plots.plot_trace(idata, by="variable")       # ArviZ's compact trace
    assert isinstance(fig, Figure)
    # detached from pyplot: a notebook shows the returned figure once, and loops don't leak
    assert set(plt.get_fignums()) == before
    assert len(fig.axes) == 2 * 2                       # weights, means × (density, trace)
    _png(fig)
    fig = plots.plot_trace(idata)                       # by component: weights + K rows
    assert len(fig.axes) == 2 * (1 + 2) and set(plt.get_fignums()) == before
    fig = plots.plot_posterior(idata, var_names=("weights",))
    assert len(fig.axes) == 2                           # one panel per component
    _png(fig)


def test_uncertainty_and_coclustering(two_clusters, idata):
    from bayes_gmm import assignment_probabilities, coclustering
    X, _ = two_clusters
    fig = plots.plot_uncertainty(X, idata, threshold=0.3)
    ent = np.asarray(assignment_probabilities(idata, X)["entropy"])
    sc = fig.axes[0].collections
    np.testing.assert_allclose(sc[0].get_array(), ent)                  # colour = entropy
    assert sc[1].get_offsets().shape[0] == int((ent > 0.3).sum())      # outlined ones
    _png(fig)
    fig = plots.plot_coclustering(idata, X)
    img = fig.axes[0].get_images()[0].get_array()
    assert img.shape == (100, 100)
    C = np.asarray(coclustering(idata, X))
    # a symmetric permutation of the co-clustering matrix, with clusters as blocks
    np.testing.assert_allclose(np.sort(img.ravel()), np.sort(C.ravel()))
    cluster = np.asarray(assignment_probabilities(idata, X)["cluster"])
    assert np.all(np.diff(np.sort(cluster)) >= 0)
    _png(fig)


def test_components_with_real_nuts(two_clusters):
    X, _ = two_clusters
    idata = bg.fit_nuts(X, 2, key=jax.random.key(0), num_warmup=100, num_samples=100,
                        num_chains=1, progress_bar=False)
    fig = plots.plot_components(X, idata, n_draws=5)
    assert len(_ellipses(fig)) == 4
    assert len(_ellipses(fig, plots.DRAW_ELLIPSE_GID)) == 5 * 4
    _png(fig)
    fig = plots.plot_trace(idata)                        # weights row + 2 component rows
    assert len(fig.axes) == 2 * 3 and _legend_names(fig.axes[3]) == ["x0", "x1"]
    _png(fig)
    fig = plots.plot_forest(idata)
    assert len(fig.axes) == 2 * 2
    _png(fig)


def _separated_in(d=5, informative=(2, 4), n=300, seed=0):
    """Three clusters that differ only along the ``informative`` features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, d))
    for f, shift in zip(informative, (6.0, 4.0)):
        X[:, f] += shift * y
    return X, y


def test_separation_is_the_one_feature_fisher_ratio():
    p = _params("full")
    w = np.asarray(p.weights)
    m = np.asarray(p.means)
    var = np.array([np.diag(c) for c in np.asarray(p.covariances)])
    mbar = (w[:, None] * m).sum(0)
    expected = (w[:, None] * (m - mbar) ** 2).sum(0) / (w[:, None] * var).sum(0)
    np.testing.assert_allclose(plots.separation(p), expected, rtol=1e-12)


def test_features_auto_best_and_names():
    import pandas as pd
    import warnings
    X, _ = _separated_in()
    names = [f"f{i}" for i in range(5)]
    df = pd.DataFrame(X, columns=names)
    gm = bg.GaussianMixture(3, covariance_type="diag", random_state=0).fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no feature-name warning with a DataFrame
        fig = plots.plot_components(df, gm)      # "auto": the two separating features
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("f2", "f4")
    fig = plots.plot_components(df, gm, features=("f4", "f0"))     # by name
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("f4", "f0")
    fig = plots.plot_components(X, gm, features="best")          # grid of the 4 best
    panels = [a for a in fig.axes if a.axison]
    assert len(panels) == 6
    labels = {a.get_xlabel() for a in panels} | {a.get_ylabel() for a in panels}
    assert {"f2", "f4"} <= labels and len(labels) == 4
    fig = plots.plot_components(X, gm, features=["f0", "f2", "f4"])   # a chosen grid
    assert len([a for a in fig.axes if a.axison]) == 3
    with pytest.raises(ValueError, match="one of"):
        plots.plot_components(df, gm, features=("f9", "f0"))


# --- discriminant directions -----------------------------------------------------------------

def _scatter_offsets(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)][0].get_offsets()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_components_on_discriminant_directions(covariance_type):
    p = _params(covariance_type)
    X = np.random.default_rng(1).normal(size=(60, 3)) + 1.0
    fig = plots.plot_components(X, p, features="discriminant")
    _png(fig)
    v, lam = bg.discriminant_directions(p)
    v = v[:, :2]
    ax = fig.axes[0]
    assert ax.get_xlabel() == f"DR1 (λ={lam[0]:.3g})"
    assert ax.get_ylabel() == f"DR2 (λ={lam[1]:.3g})"
    np.testing.assert_allclose(_scatter_offsets(ax), X @ v, rtol=1e-12)     # rows projected
    ells = _ellipses(fig)
    assert len(ells) == 2 * p.n_components
    for e in ells:        # the linear image N(Vᵀμ_k, VᵀΣ_k V), at Mahalanobis distance r
        center = np.asarray(e.center)
        k = int(np.argmin(np.linalg.norm(p.means @ v - center, axis=1)))
        np.testing.assert_allclose(center, v.T @ p.means[k], rtol=1e-12, atol=1e-12)
        cov = v.T @ _full(p, k) @ v
        verts = e.get_patch_transform().transform(e.get_path().vertices[:-1:3])
        diff = verts - center
        r = np.sqrt(np.einsum("nd,nd->n", diff, np.linalg.solve(cov, diff.T).T))
        np.testing.assert_allclose(r, 1.0 if e.get_linestyle() == "-" else 2.0, rtol=1e-6)


def test_discriminant_posterior_estimator_and_one_feature(two_clusters, idata):
    from bayes_gmm.figure_inputs import posterior_mean
    X, _ = two_clusters
    fig = plots.plot_components(X, idata, features="discriminant", n_draws=5)
    assert len(_ellipses(fig)) == 4 and len(_ellipses(fig, plots.DRAW_ELLIPSE_GID)) == 5 * 4
    v = bg.discriminant_directions(posterior_mean(idata))[0][:, :2]
    centers = sorted(tuple(np.round(e.center, 9)) for e in _ellipses(fig)[::2])
    np.testing.assert_allclose(centers, sorted(map(tuple, posterior_mean(idata).means @ v)),
                               atol=1e-8)
    assert "discriminant" in fig.axes[0].get_title()
    _png(fig)
    # plot_uncertainty on the same plane
    fig = plots.plot_uncertainty(X, idata, features="discriminant")
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), X @ v, rtol=1e-12)
    assert fig.axes[0].get_xlabel().startswith("DR1 (λ=")
    # an estimator (D = 5): panel of the discriminant plane, K = 3 clusters
    Xs, _ = _separated_in()
    gm = bg.GaussianMixture(3, covariance_type="diag", random_state=0).fit(Xs)
    fig = plots.plot_components(Xs, gm, features="discriminant")
    assert len(_ellipses(fig)) == 6
    # the means only (mclust's lambda = 1): labels and plane from that kernel
    fig = plots.plot_components(Xs, gm, features="discriminant", means_weight=1.0)
    params = GMMParams(gm.weights_, gm.means_, gm.covariances_, "diag")
    v1, lam1 = bg.discriminant_directions(params, means_weight=1.0)
    assert fig.axes[0].get_xlabel() == f"DR1 (λ={lam1[0]:.3g})"
    np.testing.assert_allclose(_scatter_offsets(fig.axes[0]), Xs @ v1[:, :2], rtol=1e-12)
    assert "means only" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="means_weight"):
        plots.plot_components(Xs, gm, means_weight=1.0)            # not discriminant
    with pytest.raises(ValueError, match="at least 2 features"):
        plots.plot_components(X[:, :1], GMMParams(np.ones(1), np.zeros((1, 1)),
                                                  np.ones((1, 1, 1)), "full"),
                              features="discriminant")


# --- posterior figures by component ----------------------------------------------------------

NAMES = [f"f{i}" for i in range(8)]


@pytest.fixture(scope="module")
def named_idata():
    """Three components in 8 named features, separated along f2 and f5 only."""
    rng = np.random.default_rng(5)
    s, k, d = (2, 30), 3, 8
    w = rng.dirichlet([20.0, 30.0, 50.0], size=s)
    centre = np.zeros((k, d))
    centre[:, 2] = [0.0, 5.0, 10.0]
    centre[:, 5] = [0.0, -4.0, 4.0]
    means = centre + 0.1 * rng.standard_normal(s + (k, d))
    covs = np.broadcast_to(np.eye(d), s + (k, d, d)) * np.exp(
        0.05 * rng.standard_normal(s + (k, 1, 1)))
    return az.from_dict(
        posterior={"weights": w, "means": means, "covariances": covs},
        coords={"feature": NAMES, "feature_bis": NAMES},
        dims={"weights": ["component"], "means": ["component", "feature"],
              "covariances": ["component", "feature", "feature_bis"]})


def _legend_names(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_trace_grouped_by_component(named_idata):
    k = 3
    fig = plots.plot_trace(named_idata, max_features=4)
    _png(fig)
    axes = np.asarray(fig.axes).reshape(k + 1, 2)                 # weights row + K rows
    assert _legend_names(axes[0, 1]) == [f"component {c}" for c in range(k)]
    names = _legend_names(axes[1, 1])
    assert len(names) == 4 and {"f2", "f5"} <= set(names) and set(names) <= set(NAMES)
    assert "4 of 8" in fig.get_suptitle()
    for c in range(k):
        assert axes[c + 1, 0].get_ylabel().startswith(f"component {c}")
        assert _legend_names(axes[c + 1, 1]) == names
        # one line per feature per chain; the first is chain 0 of the first feature drawn
        lines = axes[c + 1, 1].get_lines()
        assert len(lines) == 4 * 2
        f = NAMES.index(names[0])
        m = named_idata.posterior["means"].values[:, :, c, f]
        np.testing.assert_allclose(lines[0].get_ydata(), (m[0] - m.mean()) / m.std())
    assert "standardised" in fig.get_suptitle()
    raw = plots.plot_trace(named_idata, max_features=4, standardize=False)
    f = NAMES.index(names[0])
    np.testing.assert_allclose(raw.axes[3].get_lines()[0].get_ydata(),
                               named_idata.posterior["means"].values[0, :, 0, f])
    fig = plots.plot_trace(named_idata, features="all", standardize=False)
    assert _legend_names(fig.axes[3]) == NAMES and not fig.get_suptitle()
    fig = plots.plot_trace(named_idata, var_names="means", features=["f5", 0])
    assert len(fig.axes) == 2 * k and _legend_names(fig.axes[1]) == ["f5", "f0"]
    with pytest.raises(TypeError, match="by='variable'"):
        plots.plot_trace(named_idata, compact=False)
    with pytest.raises(ValueError, match="by='variable'"):
        plots.plot_trace(named_idata, var_names=("covariances",))
    with pytest.raises(ValueError, match="one of"):
        plots.plot_trace(named_idata, features=["nope"])


def _hdi_lines(ax):
    """(y, [lo, hi]) of the HDI lines of one panel, top to bottom."""
    lines = [ln for ln in ax.get_lines() if ln.get_gid() == plots.HDI_GID]
    return sorted(((ln.get_ydata()[0], ln.get_xdata()) for ln in lines), key=lambda t: -t[0])


def test_forest_intervals_are_the_hdi(named_idata):
    from matplotlib.colors import to_rgba
    k = 3
    fig = plots.plot_forest(named_idata, hdi_prob=0.9)
    _png(fig)
    axes = np.asarray(fig.axes).reshape(k, 2)
    hdi = az.hdi(named_idata, hdi_prob=0.9, var_names=["weights", "means"])
    for c in range(k):
        aw, am = axes[c]
        assert aw.get_ylabel() == f"component {c}"
        (_, wx), = _hdi_lines(aw)
        np.testing.assert_allclose(wx, hdi["weights"].values[c])
        assert [t.get_text() for t in am.get_yticklabels()] == NAMES      # D ≤ the cap
        got = np.array([x for _, x in _hdi_lines(am)])
        np.testing.assert_allclose(got, hdi["means"].values[c])
        # component colours: every line of a row in that component's colour
        colors = {to_rgba(ln.get_color()) for ln in am.get_lines() + aw.get_lines()}
        assert colors == {to_rgba(f"C{c}")}
    fig = plots.plot_forest(named_idata, max_features=2)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["f2", "f5"]
    assert "2 of 8" in fig.get_suptitle()
    with pytest.raises(ValueError, match="one of"):           # renamed: f7 is now h
        plots.plot_forest(named_idata, features=["f7"], feature_names=list("abcdefgh"))
    fig = plots.plot_forest(named_idata, features=["h"], feature_names=list("abcdefgh"))
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["h"]


def test_forest_and_trace_relabel_against_a_reference(named_idata):
    from bayes_gmm.figure_inputs import posterior_mean
    mean = posterior_mean(named_idata)
    swap = [1, 0, 2]
    ref = GMMParams(mean.weights[swap], mean.means[swap], mean.covariances[swap], "full")
    fig = plots.plot_forest(named_idata, reference=ref)
    hdi = az.hdi(named_idata, var_names=["means"])["means"].values
    np.testing.assert_allclose([x for _, x in _hdi_lines(fig.axes[1])], hdi[1])
    fig = plots.plot_trace(named_idata, reference=ref, standardize=False)
    np.testing.assert_allclose(fig.axes[3].get_lines()[0].get_ydata(),
                               named_idata.posterior["means"].values[0, :, 1, 2])

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
    fig = plots.plot_trace(idata)
    assert isinstance(fig, Figure)
    # detached from pyplot: a notebook shows the returned figure once, and loops don't leak
    assert set(plt.get_fignums()) == before
    assert len(fig.axes) == 2 * 2                       # weights, means × (density, trace)
    _png(fig)
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
    _png(plots.plot_trace(idata))


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

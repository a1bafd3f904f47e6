"""Discriminant directions (MclustDR) against independent truths: Fisher's LDA on iris when
the covariances are equal, a mixture that differs along one known direction, the
invariance of the projected data under an affine map, and the kernel written out with an
explicit inverse. Plus the per-feature Fisher ratio and the projected mixture."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles

import bayes_gmm as bg
from bayes_gmm import GMMParams
from bayes_gmm.projection import discriminant_directions, project, separation


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris
    data = load_iris()
    return data.data.astype(np.float64), data.target


def _moments(X, y):
    """Exact (ML) mixture moments of labelled data: proportions, class means, class
    covariances (K, D, D) and their proportion-weighted pool."""
    classes = np.unique(y)
    w = np.array([np.mean(y == c) for c in classes])
    m = np.array([X[y == c].mean(0) for c in classes])
    cov = np.array([np.cov(X[y == c].T, bias=True) for c in classes])
    return w, m, cov, np.einsum("k,kij->ij", w, cov)


def test_equal_covariances_span_fishers_discriminants(iris):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    X, y = iris
    w, m, _, pooled = _moments(X, y)
    v, lam = discriminant_directions(GMMParams(w, m, pooled, "tied"))
    lda = LinearDiscriminantAnalysis(solver="eigen").fit(X, y)
    k = len(w)
    angles = subspace_angles(v[:, :k - 1], lda.scalings_[:, :k - 1])
    assert np.max(angles) < 1e-8
    # each direction is one of LDA's (not just the same plane)
    for j in range(k - 1):
        assert subspace_angles(v[:, [j]], lda.scalings_[:, [j]]).max() < 1e-7
    # with equal covariances M = Σ_B Σ⁻¹ Σ_B: λ = (e / (1 + e))² for LDA's eigenvalues e of
    # Σ_W⁻¹ Σ_B, whose shares sklearn reports as explained_variance_ratio_
    e = np.sqrt(lam[:k - 1]) / (1 - np.sqrt(lam[:k - 1]))
    np.testing.assert_allclose(e / e.sum(), lda.explained_variance_ratio_[:k - 1], rtol=1e-8)
    assert np.all(lam[k - 1:] < 1e-12) and np.all(lam >= 0)
    assert np.all(np.diff(lam) <= 0)
    np.testing.assert_allclose(np.linalg.norm(v, axis=0), 1.0, rtol=1e-12)


def _spd_with_eigenvector(u, rng, d):
    q, _ = np.linalg.qr(np.column_stack([u, rng.normal(size=(d, d - 1))]))
    return q @ np.diag(rng.uniform(0.5, 3.0, d)) @ q.T


@pytest.mark.parametrize("differ", ["means", "covariances"])
def test_components_that_differ_along_one_direction(differ):
    rng = np.random.default_rng(0)
    d, k = 5, 3
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    w = np.array([0.2, 0.5, 0.3])
    base = rng.normal(size=d)
    for s in (_spd_with_eigenvector(u, rng, d),              # u an eigenvector of S: u itself
              np.cov(rng.normal(size=(d, 3 * d)), bias=True)):   # any S: S⁻¹u
        t = np.array([-2.0, 0.5, 3.0])
        if differ == "means":
            m, cov = base + t[:, None] * u, np.broadcast_to(s, (k, d, d))
        else:
            m, cov = np.tile(base, (k, 1)), s + np.square(t)[:, None, None] * np.outer(u, u)
        v, lam = discriminant_directions(GMMParams(w, m, np.array(cov), "full"))
        truth = np.linalg.solve(s, u)
        truth /= np.linalg.norm(truth)
        assert abs(v[:, 0] @ truth) == pytest.approx(1.0, abs=1e-10)
        assert lam[0] > 1e-3 and np.all(lam[1:] < 1e-12) and np.all(lam >= 0)


def test_affine_invariance_of_the_projected_data(iris):
    X, y = iris
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4)) + 3 * np.eye(4)
    b = rng.normal(size=4) * 10
    Xt = X @ a.T + b
    out = []
    for data in (X, Xt):
        w, m, cov, _ = _moments(data, y)             # the moments of each data set itself
        out.append((data,) + discriminant_directions(GMMParams(w, m, cov, "full")))
    (x0, v0, l0), (x1, v1, l1) = out
    np.testing.assert_allclose(l1, l0, rtol=1e-8, atol=1e-12)
    # directions map to A⁻ᵀv, so each projection is the same up to a scale and a shift
    for j in range(4):
        r = np.corrcoef(x0 @ v0[:, j], x1 @ v1[:, j])[0, 1]
        assert abs(r) == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(np.abs(np.linalg.solve(a.T, v0[:, j]) @ v1[:, j]),
                                   np.linalg.norm(np.linalg.solve(a.T, v0[:, j])), rtol=1e-7)


def _reference(w, m, cov):
    """The kernel as written in Scrucca (2010) with explicit inverses, solved by scipy."""
    from scipy.linalg import eigh
    mbar = w @ m
    sb = np.einsum("k,ki,kj->ij", w, m - mbar, m - mbar)
    sw = np.einsum("k,kij->ij", w, cov)
    sigma = sw + sb
    inv = np.linalg.inv(sigma)
    kern = sb @ inv @ sb + sum(wk * (c - sw) @ inv @ (c - sw) for wk, c in zip(w, cov))
    lam, v = eigh(kern, sigma)
    return lam[::-1], v[:, ::-1]


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_matches_the_kernel_with_explicit_inverses(covariance_type):
    rng = np.random.default_rng(2)
    k, d = 4, 3
    w = rng.dirichlet(np.ones(k) * 3)
    m = rng.normal(size=(k, d))
    full = np.array([np.cov(rng.normal(size=(d, 10)), bias=True) + 0.1 * np.eye(d)
                     for _ in range(k)])
    cov = {"full": full, "tied": full[0], "diag": np.diagonal(full, axis1=1, axis2=2),
           "spherical": full.trace(axis1=1, axis2=2) / d}[covariance_type]
    p = GMMParams(w, m, cov, covariance_type)
    expanded = p.family.to_full(np.asarray(cov), k, d, xp=np)
    lam_ref, v_ref = _reference(w, m, expanded)
    v, lam = discriminant_directions(p)
    np.testing.assert_allclose(lam, lam_ref, rtol=1e-9, atol=1e-12)
    for j in range(d):
        assert abs(v[:, j] @ v_ref[:, j]) == pytest.approx(np.linalg.norm(v_ref[:, j]), rel=1e-8)


def test_degenerate_inputs_give_zero_eigenvalues():
    # one component: nothing to discriminate; a feature with no variance: null direction last
    p = GMMParams(np.ones(1), np.zeros((1, 3)), np.eye(3)[None], "full")
    v, lam = discriminant_directions(p)
    assert v.shape == (3, 3) and np.all(lam == 0)
    cov = np.array([np.diag([1.0, 2.0, 0.0]), np.diag([3.0, 1.0, 0.0])])
    p = GMMParams(np.array([0.5, 0.5]), np.array([[0.0, 0, 0], [1.0, 0, 0]]), cov, "full")
    v, lam = discriminant_directions(p)
    assert np.all(np.isfinite(v)) and lam[-1] == 0 and lam[0] > 0
    np.testing.assert_allclose(np.abs(v[:, -1]), [0.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="GMMParams"):
        discriminant_directions(np.zeros(3))


def test_emresult_and_public_export(iris):
    import jax
    X, _ = iris
    res = bg.fit_em(X, 3, key=jax.random.key(0), dtype=np.float64)
    v, lam = bg.discriminant_directions(res)
    v2, lam2 = discriminant_directions(res.params)
    np.testing.assert_array_equal(v, v2)
    assert v.dtype == np.float64 and lam.shape == (4,)
    assert "discriminant_directions" in bg.__all__


def test_project_is_the_linear_image():
    rng = np.random.default_rng(3)
    p = GMMParams(np.array([0.3, 0.7]), rng.normal(size=(2, 3)),
                  np.array([[1.0, 2.0, 0.5], [0.4, 0.3, 1.1]]), "diag")
    v = rng.normal(size=(3, 2))
    q = project(p, v)
    np.testing.assert_allclose(q.means, p.means @ v)
    for c in range(2):
        np.testing.assert_allclose(q.covariances[c], v.T @ np.diag(p.covariances[c]) @ v)
    with pytest.raises(ValueError, match="directions"):
        project(p, np.ones((2, 2)))


def test_separation_ignores_how_weights_are_scaled():
    rng = np.random.default_rng(4)
    p = GMMParams(np.array([0.25, 0.75]), rng.normal(size=(2, 3)), np.ones(2), "spherical")
    np.testing.assert_allclose(separation(p), separation(p._replace(weights=p.weights * 4)))


def test_means_weight_trades_mean_against_covariance_differences():
    # component 0 has (almost) no spread along x1, component 1 does; the means differ along x0
    p = GMMParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [3.0, 0.0]]),
                  np.array([[1.0, 1e-6], [1.0, 1.0]]), "diag")
    v, lam = discriminant_directions(p)                       # MclustDR: both terms
    assert abs(v[1, 0]) == pytest.approx(1.0)                 # the variance ratio wins
    v, lam = discriminant_directions(p, means_weight=1.0)     # the means only
    assert abs(v[0, 0]) == pytest.approx(1.0) and lam[1] < 1e-12
    v, lam = discriminant_directions(p, means_weight=0.0)     # the covariances only
    assert abs(v[1, 0]) == pytest.approx(1.0) and lam[1] < 1e-12
    # the mean term alone is the equal-covariance kernel, doubled (mclust's 2·lambda)
    q = GMMParams(p.weights, p.means, np.ones(2), "spherical")
    _, half = discriminant_directions(q)
    np.testing.assert_allclose(discriminant_directions(q, 1.0)[1], 2 * half, atol=1e-15)
    with pytest.raises(ValueError, match="means_weight"):
        discriminant_directions(p, means_weight=1.5)

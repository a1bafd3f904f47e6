"""Component padding: a fit of K components inside a program compiled for K_max > K, the
extra components at weight exactly 0.

Independent truth: the unpadded fit of the same K (the same draws, the same iterations),
the compiled-program cache (a sweep over K must compile one EM program per family), and
the densities of the padded parameters (zero weights change nothing)."""

import jax
import numpy as np
import pytest

import bayes_gmm as bg
from bayes_gmm.core import em
from bayes_gmm.core.params import first_components, padded
from helpers import COMPILES


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(3)
    return np.concatenate([rng.normal(c, s, (n, 2)) for c, s, n in
                           (((0, 0), 0.7, 120), ((5, 1), 1.2, 150), ((-3, 4), 0.5, 90))])


def _assert_same_fit(a, b):
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-10, atol=1e-12)
    assert float(b.objective) == pytest.approx(float(a.objective), rel=1e-12)
    assert int(a.n_iter) == int(b.n_iter) and bool(a.converged) == bool(b.converged)
    np.testing.assert_allclose(np.asarray(b.trace), np.asarray(a.trace), rtol=1e-12)


# Each family kind once: per-component matrices, shared, diagonal, spherical, an mclust
# family with shared volume and shape, one with the MM orientation step, and 1-D V.
@pytest.mark.parametrize("covariance_type,init", [
    ("full", "k-means++"), ("full", "kmeans"), ("full", "random"),
    ("full", "random_from_data"), ("tied", "k-means++"), ("diag", "kmeans"),
    ("spherical", "random"), ("VEE", "k-means++"), ("VVE", "kmeans"), ("V", "k-means++")])
def test_padded_components_give_the_unpadded_fit(x64, blobs, covariance_type, init):
    X = blobs[:, :1] if covariance_type == "V" else blobs
    kw = dict(key=jax.random.key(7), covariance_type=covariance_type, init=init, n_init=2,
              tol=1e-10, max_iter=150, dtype=np.float64)
    for k in (1, 3):
        a = bg.fit_em(X, k, **kw)
        b = bg.fit_em(X, k, pad_components=5, **kw)
        assert b.params.means.shape == (k, X.shape[1])
        _assert_same_fit(a, b)


def test_a_sweep_over_k_compiles_one_em_program_per_family(x64, blobs):
    bg.compare(blobs, [2], covariance_type="diag", random_state=0, n_init=2)
    before, before_ks = em.fit_jit._cache_size(), em.fit_ks_jit._cache_size()
    t = bg.compare(blobs, [1, 2, 3, 4], covariance_type=["spherical", "EEI"],
                   random_state=0, n_init=2)
    # one program per family (K_max = 4), every K of it in one call; no single-K program
    assert em.fit_ks_jit._cache_size() - before_ks == 2
    assert em.fit_jit._cache_size() - before == 0
    # the table's numbers are those of the unpadded fits, to rounding
    for name, k in [("spherical", 3), ("EEI", 4)]:
        ref = bg.fit_em(blobs, k, key=jax.random.fold_in(jax.random.key(0), k),
                        covariance_type=name, n_init=2, tol=1e-9, max_iter=2000,
                        dtype=np.float64)
        assert t.loc[(name, k), "bic"] == pytest.approx(float(bg.bic(ref.params, blobs)),
                                                        rel=1e-10)
        assert t.loc[(name, k), "icl"] == pytest.approx(float(bg.icl(ref.params, blobs)),
                                                        rel=1e-10)


def test_padding_helpers_round_trip_and_keep_the_density(x64, blobs):
    for name in ("full", "tied", "diag", "spherical", "VVE"):
        p = bg.fit_em(blobs, 2, key=0, covariance_type=name, dtype=np.float64).params
        q = padded(p, 5)
        assert q.weights.shape == (5,) and float(np.sum(q.weights[2:])) == 0.0
        back = first_components(q, 2)
        for x, y in zip(jax.tree.leaves(p), jax.tree.leaves(back)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        np.testing.assert_allclose(np.asarray(bg.log_prob(q, blobs)),
                                   np.asarray(bg.log_prob(p, blobs)), rtol=1e-13)
        r = np.asarray(bg.responsibilities(q, blobs))
        assert np.all(r[:, 2:] == 0.0)


def test_pad_components_errors(blobs):
    with pytest.raises(ValueError, match="pad_components must be at least n_components=3"):
        bg.fit_em(blobs, 3, key=0, pad_components=2)
    with pytest.raises(ValueError, match="pad_components is for maximum likelihood"):
        bg.fit_em(blobs, 2, key=0, pad_components=4, prior=bg.GMMPrior())
    with pytest.raises(ValueError, match="pad_components cannot be used with init"):
        p = bg.fit_em(blobs, 2, key=0).params
        bg.fit_em(blobs, 2, key=0, pad_components=4, init=p)


def test_all_k_in_one_program_equal_the_single_padded_fits(x64, blobs):
    from bayes_gmm.fit import fit_em_ks
    ks = [1, 2, 3, 4]
    keys = jax.numpy.stack([jax.random.fold_in(jax.random.key(5), k) for k in ks])
    kw = dict(covariance_type="VEI", n_init=3, tol=1e-10, max_iter=200, dtype=np.float64)
    fits = fit_em_ks(blobs, ks, keys, **kw)
    for i, k in enumerate(ks):
        assert fits[i].params.means.shape == (k, 2)
        _assert_same_fit(bg.fit_em(blobs, k, key=keys[i], pad_components=4, **kw), fits[i])
    grid = bg.fit_em_grid(blobs, ks, key=keys[2], **kw)        # the same key for every K
    _assert_same_fit(fits[2], grid.results[3])
    with pytest.raises(ValueError, match="maximum likelihood only"):
        fit_em_ks(blobs, ks, keys, prior=bg.GMMPrior())


def test_an_estimator_loop_over_k_compiles_per_power_of_two(blobs):
    """GaussianMixture(k).fit(X).bic(X) for k = 1..6 compiles one fit program and one score
    program per power of two from 4 (4 for k ≤ 4, 8), and each fit is the unpadded fit_em
    of that K (same key, same options), its BIC scipy's."""
    from scipy.stats import multivariate_normal

    X = blobs[::2] * [1.0, -1.0]                     # a shape no other test compiles
    bics, n_programs = [], 0
    for k in range(1, 7):
        gm = bg.GaussianMixture(k, covariance_type="full", random_state=11, tol=1e-8)
        bic, n = COMPILES.during(lambda: (gm.fit(X), gm.bic(X))[1])
        n_programs += n
        bics.append(bic)
        with jax.enable_x64(True):
            ref = bg.fit_em(X, k, key=jax.random.fold_in(jax.random.key(np.uint32(11)), 0),
                            tol=1e-8, init="kmeans", dtype=np.float64)
        np.testing.assert_allclose(gm.means_, np.asarray(ref.params.means), rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(gm.covariances_, np.asarray(ref.params.covariances),
                                   rtol=1e-10, atol=1e-12)
        assert gm.n_iter_ == int(ref.n_iter)
        dens = sum(w * multivariate_normal(m, c).pdf(X)
                   for w, m, c in zip(gm.weights_, gm.means_, gm.covariances_))
        p = k - 1 + k * 2 + k * 3
        assert bic == pytest.approx(-2 * np.sum(np.log(dens)) + p * np.log(len(X)), rel=1e-10)
    assert n_programs == 4

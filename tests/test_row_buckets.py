"""Row buckets: a fit on N rows runs on bucket_rows(N) rows, the extra ones weighted 0.

Independent truth: the core EM on the unpadded rows (the same program the public
functions ran before padding), the compiled-program cache (a new N inside a bucket must
not compile), and repeated rows (a row of weight 2 is two copies of it)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_gmm as bg
from bayes_gmm.core import em
from bayes_gmm.core.rows import bucket_rows
from helpers import COMPILES, COVARIANCE_TYPES


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(c, 0.8, (n, 2))
                           for c, n in (((0, 0), 170), ((5, 1), 190), ((-3, 4), 140))])


def test_ladder_bounds():
    for n in range(1, 3000, 7):
        b = bucket_rows(n)
        assert n <= b <= max(64, 1.25 * n + 16)
    for n in (65536, 100_000, 1_000_001):      # large data are never padded (memory)
        assert bucket_rows(n) == n


@pytest.mark.parametrize("init", ["k-means++", "kmeans", "random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_padded_fit_equals_unpadded(x64, blobs, init, covariance_type):
    X = blobs
    assert bucket_rows(len(X)) > len(X)
    for prior in (None, bg.GMMPrior(weight_concentration=0.8)):
        public = bg.fit_em(X, 3, key=jax.random.key(4), covariance_type=covariance_type,
                           init=init, prior=prior, tol=1e-10, max_iter=200)
        raw = em.fit_jit(jnp.asarray(X), jax.random.key(4),
                         None if prior is None else bg.GMMPrior(*(
                             None if v is None else jnp.asarray(v) for v in prior)),
                         None, None, 1e-10, 1e-6, k=3, covariance_type=covariance_type,
                         max_iter=200, n_init=1, init=init, batch_size=None)
        for a, b in zip(jax.tree.leaves(public.params), jax.tree.leaves(raw.params)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(public.objective, raw.objective, rtol=1e-12)
        assert int(public.n_iter) == int(raw.n_iter)


def test_a_fit_is_one_program_and_a_new_n_in_its_bucket_none(blobs):
    """Counted by JAX's own compile event: the estimator's first fit compiles one program
    (key, initialisation, EM and the precisions together), everything predict, score,
    score_samples, bic, aic and icl read is one more, predict_proba one more; fit_em is one
    program; a new N in the same bucket compiles nothing for any of them."""
    X = np.concatenate([blobs, blobs[:77] + 0.5])[:, [0, 1, 0]] * [1.0, 1.0, -0.5]
    X[:, 2] += np.random.default_rng(3).normal(size=len(X))       # (577, 3): fresh shapes
    key = jax.random.key(7)
    gm = bg.GaussianMixture(4, random_state=0)
    _, n = COMPILES.during(lambda: gm.fit(X))
    assert n == 1
    _, n = COMPILES.during(lambda: (gm.predict(X), gm.score(X), gm.score_samples(X),
                                    gm.bic(X), gm.aic(X), gm.icl(X)))
    assert n == 1
    _, n = COMPILES.during(lambda: gm.predict_proba(X))
    assert n == 1
    _, n = COMPILES.during(lambda: bg.fit_em(X, 4, key=key))
    assert n == 1
    for m in (len(X) - 1, len(X) - 19):
        assert bucket_rows(m) == bucket_rows(len(X))
        def again():
            bg.fit_em(X[:m], 4, key=key)
            g = bg.GaussianMixture(4, random_state=1).fit(X[:m])
            return (g.predict(X[:m]), g.score_samples(X[:m]), g.predict_proba(X[:m]),
                    g.bic(X[:m]))
        p, n = COMPILES.during(again)
        assert n == 0
        assert p[0].shape == (m,) and p[1].shape == (m,) and p[2].shape == (m, 4)
        # The padded rows take no part: the criteria are those of the m rows.
        assert p[3] == pytest.approx(-2 * float(np.sum(p[1])) + np.log(m) * (
            4 * 3 + 4 * 6 + 3), rel=1e-6)


@pytest.mark.parametrize("init", ["k-means++", "kmeans"])
def test_weight_two_is_a_repeated_row(x64, blobs, init):
    """Initialisation draws rows by inverting the cumulative weights: weight 2 takes the
    interval of two adjacent copies, so both data give the same fit."""
    X = blobs[::3]
    sw = np.random.default_rng(1).integers(1, 3, len(X))
    rep = np.repeat(X, sw, axis=0)
    a = bg.fit_em(X, 3, key=2, init=init, sample_weight=sw.astype(float), tol=1e-10)
    b = bg.fit_em(rep, 3, key=2, init=init, tol=1e-10)
    np.testing.assert_allclose(a.params.means, b.params.means, rtol=1e-8)
    np.testing.assert_allclose(a.params.covariances, b.params.covariances, rtol=1e-8)

"""Nothing random without a key, and the same key gives bit-identical results on the same
device: fit_em, fit_nuts, fit_svi (sbc: tests/test_sbc.py); ``random_state`` accepts an int, a NumPy
Generator/RandomState or a JAX key."""

import jax
import numpy as np
import pytest

import bayes_gmm as bg


@pytest.fixture(scope="module")
def X(two_clusters):
    return np.asarray(two_clusters[0], np.float32)


def _leaves(tree):
    return [np.atleast_1d(np.asarray(a)) for a in jax.tree.leaves(tree)]


def _assert_bit_identical(a, b):
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape
        # Compare the bits (NaN-safe: the trace is NaN after convergence).
        np.testing.assert_array_equal(x.view(np.uint8) if x.dtype.kind == "f" else x,
                                      y.view(np.uint8) if y.dtype.kind == "f" else y)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_fit_em_same_key_same_bits(X, init):
    kw = dict(key=jax.random.key(7), n_init=3, init=init)
    a = bg.fit_em(X, 2, **kw)
    b = bg.fit_em(X, 2, **kw)
    _assert_bit_identical(a, b)
    c = bg.fit_em(X, 2, key=jax.random.key(8), n_init=3, init=init, max_iter=0)
    d = bg.fit_em(X, 2, key=jax.random.key(7), n_init=3, init=init, max_iter=0)
    # A different key really changes the (random) initialisation.
    assert not np.array_equal(np.asarray(c.params.means), np.asarray(d.params.means))


def _posterior_arrays(idata):
    out = {}
    for group in idata.groups():
        ds = idata[group]
        for name, var in ds.data_vars.items():
            out[f"{group}/{name}"] = np.atleast_1d(np.asarray(var.values))
    return out


def _assert_idata_identical(a, b):
    pa, pb = _posterior_arrays(a), _posterior_arrays(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        x, y = pa[k], pb[k]
        assert x.dtype == y.dtype and x.shape == y.shape, k
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x.view(np.uint8), y.view(np.uint8), err_msg=k)
        else:
            np.testing.assert_array_equal(x, y, err_msg=k)


def test_fit_nuts_same_key_same_bits(X):
    kw = dict(key=jax.random.key(3), num_warmup=30, num_samples=20, num_chains=2,
              progress_bar=False)
    a = bg.fit_nuts(X, 2, **kw)
    b = bg.fit_nuts(X, 2, **kw)
    _assert_idata_identical(a, b)
    c = bg.fit_nuts(X, 2, **{**kw, "key": jax.random.key(4)})
    assert not np.array_equal(a.posterior["means"].values, c.posterior["means"].values)


def test_fit_svi_same_key_same_bits(X):
    kw = dict(key=jax.random.key(3), num_steps=50, num_samples=20, progress_bar=False)
    a = bg.fit_svi(X, 2, **kw)
    b = bg.fit_svi(X, 2, **kw)
    _assert_idata_identical(a, b)
    c = bg.fit_svi(X, 2, **{**kw, "key": jax.random.key(4)})
    assert not np.array_equal(a.posterior["means"].values, c.posterior["means"].values)


def _fitted(random_state, X):
    gm = bg.GaussianMixture(3, init_params="random", max_iter=5, random_state=random_state)
    gm.fit(X)
    return gm


def _attrs(gm):
    return [gm.weights_, gm.means_, gm.covariances_]


@pytest.mark.parametrize("make", [
    lambda: 12345,
    lambda: np.int64(12345),
    lambda: np.random.default_rng(12345),
    lambda: np.random.RandomState(12345),
    lambda: jax.random.key(12345),
    lambda: jax.random.PRNGKey(12345),
], ids=["int", "np.int64", "Generator", "RandomState", "jax.random.key", "PRNGKey"])
def test_random_state_kinds_are_reproducible(X, make):
    a, b = _fitted(make(), X), _fitted(make(), X)
    for x, y in zip(_attrs(a), _attrs(b)):
        np.testing.assert_array_equal(x, y)
    sa, sb = a.sample(50), b.sample(50)
    np.testing.assert_array_equal(sa[0], sb[0])
    np.testing.assert_array_equal(sa[1], sb[1])


def test_random_state_distinct_seeds_differ(X):
    a = bg.GaussianMixture(3, init_params="random", max_iter=0, random_state=1).fit(X)
    b = bg.GaussianMixture(3, init_params="random", max_iter=0, random_state=2).fit(X)
    assert not np.array_equal(a.means_, b.means_)


def test_random_state_rejects_other_types(X):
    with pytest.raises(TypeError, match="random_state"):
        bg.GaussianMixture(2, random_state="seed").fit(X)
    with pytest.raises(TypeError, match="random_state"):
        bg.GaussianMixture(2, random_state=1.5).fit(X)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (7,), (), (3, 0)])
@pytest.mark.parametrize("dtype", [np.float32, None])
def test_flat_normal_draws_are_jax_random_normal(shape, dtype):
    # The package draws normals flat and reshapes them (XLA compiles that far faster); the
    # numbers must be exactly jax.random.normal's, so results do not depend on the trick.
    from bayes_gmm.core.seeding import normal
    key = jax.random.key(11)
    kw = {} if dtype is None else {"dtype": dtype}
    want = jax.random.normal(key, shape, **kw)
    got = normal(key, shape, dtype)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))

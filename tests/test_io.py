"""save/load: bit-exact round trips without pickle; damaged or foreign saves give a clear
ValueError naming the file."""

import json
import zipfile

import arviz as az
import jax
import numpy as np
import pytest

import bayes_gmm as bg
from bayes_gmm import io as bio
from bayes_gmm import GMMParams


def _assert_same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()                        # bit for bit


@pytest.fixture(scope="module")
def gm_full(two_clusters):
    X, _ = two_clusters
    return bg.GaussianMixture(2, random_state=0).fit(X)


@pytest.fixture(scope="module")
def saved(gm_full, tmp_path_factory):
    path = tmp_path_factory.mktemp("save") / "gm"
    bio.save(gm_full, path)
    return path


def test_gaussian_mixture_round_trip_is_exact(gm_full, saved, two_clusters):
    X, _ = two_clusters
    gm2 = bio.load(saved)
    assert type(gm2) is type(gm_full)
    assert gm2.get_params() == gm_full.get_params()
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        _assert_same(getattr(gm_full, name), getattr(gm2, name))
    assert gm2.n_iter_ == gm_full.n_iter_ and gm2.converged_ == gm_full.converged_
    assert gm2.lower_bound_ == gm_full.lower_bound_
    _assert_same(gm_full.predict_proba(X), gm2.predict_proba(X))
    _assert_same(gm_full.score_samples(X), gm2.score_samples(X))
    # the arrays file is plain npz: no object arrays, readable without pickle
    with np.load(saved / bio.ARRAYS_FILE, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    meta = json.loads((saved / bio.META_FILE).read_text())
    assert meta["format"] == "bayes_gmm" and meta["version"] == bio.FORMAT_VERSION


def test_estimator_with_prior_arrays_and_feature_names(two_clusters, tmp_path):
    import pandas as pd
    X, _ = two_clusters
    df = pd.DataFrame(X, columns=["width", "height"])
    prior = bg.GMMPrior(weight_concentration=np.array([2.0, 3.0]), mean_precision=0.5)
    gm = bg.GaussianMixture(2, covariance_type="diag", prior=prior, random_state=3,
                            means_init=np.array([[0.0, 1.0], [2.0, 1.0]])).fit(df)
    bio.save(gm, tmp_path / "m")
    gm2 = bio.load(tmp_path / "m")
    _assert_same(gm2.prior.weight_concentration, prior.weight_concentration)
    assert gm2.prior.mean_precision == 0.5 and gm2.prior.mean_prior is None
    _assert_same(gm2.means_init, gm.means_init)
    assert list(gm2.feature_names_in_) == ["width", "height"]
    _assert_same(gm.predict_proba(df), gm2.predict_proba(df))


def test_params_emresult_and_idata_round_trip(two_clusters, tmp_path):
    X, _ = two_clusters
    res = bg.fit_em(X, 2, key=jax.random.key(0), covariance_type="spherical")
    bio.save(res, tmp_path / "r")
    res2 = bio.load(tmp_path / "r")
    assert res2.params.covariance_type == "spherical"
    for a, b in zip(jax.tree.leaves(res), jax.tree.leaves(res2)):
        _assert_same(a, b)
    bio.save(res.params, tmp_path / "p")
    p2 = bio.load(tmp_path / "p")
    assert isinstance(p2, GMMParams)
    _assert_same(bg.log_prob(res.params, X), bg.log_prob(p2, X))

    rng = np.random.default_rng(0)
    idata = az.from_dict(posterior={"weights": rng.dirichlet([1, 1], size=(2, 5)),
                                    "means": rng.normal(size=(2, 5, 2, 2))},
                         log_likelihood={"obs": rng.normal(size=(2, 5, 7))},
                         dims={"weights": ["component"], "means": ["component", "feature"]})
    bio.save(idata, tmp_path / "i")
    i2 = bio.load(tmp_path / "i")
    for g in ("posterior", "log_likelihood"):
        for v in getattr(idata, g).data_vars:
            _assert_same(getattr(idata, g)[v], getattr(i2, g)[v])


def test_bayesian_mixture_round_trip(two_clusters, tmp_path):
    X, _ = two_clusters
    # the same NUTS configuration as tests/test_plots.py: one compiled program for both
    bgm = bg.BayesianGaussianMixture(2, num_warmup=100, num_samples=100, num_chains=1,
                                     random_state=0, progress_bar=False).fit(X)
    bio.save(bgm, tmp_path / "b")
    assert (tmp_path / "b" / bio.IDATA_FILE).stat().st_size > 0
    b2 = bio.load(tmp_path / "b")
    for name in ("weights_", "means_", "covariances_"):
        _assert_same(getattr(bgm, name), getattr(b2, name))
    for v in ("weights", "means", "covariances"):
        _assert_same(bgm.idata_.posterior[v], b2.idata_.posterior[v])
    _assert_same(bgm.map_.means_, b2.map_.means_)
    _assert_same(bgm.predict_proba(X), b2.predict_proba(X))


def _copy(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_damaged_saves_raise_value_error_naming_the_file(saved, tmp_path):
    # truncated arrays
    d = _copy(saved, tmp_path / "trunc")
    f = d / bio.ARRAYS_FILE
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(ValueError, match="arrays.npz.*truncated or corrupted"):
        bio.load(d)
    # random bytes in place of the npz
    f.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ValueError, match="arrays.npz"):
        bio.load(d)
    # an npz holding a pickled object array is refused, not unpickled
    d = _copy(saved, tmp_path / "obj")
    np.savez(d / bio.ARRAYS_FILE, **{"attributes.weights_": np.array([{"a": 1}], object)})
    with pytest.raises(ValueError, match="arrays.npz"):
        bio.load(d)
    # truncated / garbage / foreign / future JSON
    d = _copy(saved, tmp_path / "json")
    meta = d / bio.META_FILE
    text = meta.read_text()
    meta.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="bayes_gmm.json.*not valid JSON"):
        bio.load(d)
    meta.write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(ValueError, match="bayes_gmm.json.*not a bayes_gmm save"):
        bio.load(d)
    meta.write_text(json.dumps({"format": "bayes_gmm", "version": 999, "kind": "GMMParams",
                                "settings": {}, "attributes": {}}))
    with pytest.raises(ValueError, match="version 999"):
        bio.load(d)
    # an array listed in the JSON but missing from the npz
    d = _copy(saved, tmp_path / "missing")
    np.savez(d / bio.ARRAYS_FILE, unrelated=np.zeros(2))
    with pytest.raises(ValueError, match="missing"):
        bio.load(d)
    # not a save at all
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ValueError, match="foreign.npz"):
        bio.load(foreign)
    with pytest.raises(ValueError, match="bayes_gmm.json is missing"):
        bio.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        bio.load(tmp_path / "nothing-here")


def test_truncated_netcdf_raises(tmp_path):
    idata = az.from_dict(posterior={"weights": np.full((1, 3, 2), 0.5)})
    bio.save(idata, tmp_path / "i")
    f = tmp_path / "i" / bio.IDATA_FILE
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(ValueError, match="idata.nc.*truncated or corrupted"):
        bio.load(tmp_path / "i")


def test_save_refuses_other_directories_and_objects(gm_full, tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a bayes_gmm save"):
        bio.save(gm_full, tmp_path / "other")
    with pytest.raises(TypeError, match="save supports"):
        bio.save({"weights": 1}, tmp_path / "x")
    # saving twice to the same place replaces the earlier save
    bio.save(gm_full, tmp_path / "twice")
    bio.save(gm_full, tmp_path / "twice")
    assert bio.load(tmp_path / "twice").n_components == 2
    assert zipfile.is_zipfile(tmp_path / "twice" / bio.ARRAYS_FILE)

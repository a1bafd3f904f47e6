"""Feature names travel: DataFrame → estimator / fit_svi → InferenceData coordinates →
summary rows → figure labels → save / load."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_gmm as bg
from bayes_gmm import plots

NAMES = ["petal length", "petal width"]


@pytest.fixture(scope="module")
def frame(two_clusters):
    X, _ = two_clusters
    return pd.DataFrame(X, columns=NAMES)


def test_fit_svi_labels_features_from_a_dataframe(frame):
    idata = bg.fit_svi(frame, 2, key=0, num_steps=300, num_samples=100)
    for g in ("posterior", "observed_data", "map"):
        assert idata[g]["feature"].values.tolist() == NAMES, g
    assert idata.posterior["feature_bis"].values.tolist() == NAMES
    rows = bg.summary(idata, kind="stats").index.tolist()
    assert "means[0, petal length]" in rows and "covariances[1, petal length, petal width]" \
        in rows
    # a plain array keeps positional coordinates
    plain = bg.fit_svi(frame.to_numpy(), 2, key=0, num_steps=300, num_samples=100)
    assert plain.posterior["feature"].values.tolist() == [0, 1]


def test_estimator_round_trip(frame, tmp_path):
    bgm = bg.BayesianGaussianMixture(2, method="svi", num_steps=300, num_samples=100,
                                     random_state=0, progress_bar=False).fit(frame)
    assert bgm.feature_names_in_.tolist() == NAMES
    assert bgm.idata_.posterior["feature"].values.tolist() == NAMES
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.plot_components(frame, bgm, n_draws=5)
        bgm.predict(frame)
    ax = fig.axes[0]
    assert {ax.get_xlabel(), ax.get_ylabel()} == set(NAMES)
    bg.save(bgm, tmp_path / "m")
    back = bg.load(tmp_path / "m")
    assert back.feature_names_in_.tolist() == NAMES
    assert back.idata_.posterior["feature"].values.tolist() == NAMES
    np.testing.assert_allclose(back.predict_proba(frame), bgm.predict_proba(frame))

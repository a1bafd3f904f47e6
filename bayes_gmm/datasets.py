"""Embedded data: Old Faithful, the two-cluster sample and posteriordb's
``low_dim_gauss_mix`` data (see ``data/README``)."""

from __future__ import annotations

from importlib import resources

import numpy as np


def _load(name: str) -> np.ndarray:
    with resources.files("bayes_gmm").joinpath("data", name).open("r") as f:
        return np.loadtxt(f, dtype=np.float64)


def load_old_faithful() -> np.ndarray:
    """Old Faithful geyser (272, 2): eruption minutes, waiting minutes (Azzalini & Bowman 1990).

    Published maximum-likelihood K=2 full-covariance fit: weights ≈ (0.356, 0.644), means ≈
    (2.04, 54.5), (4.29, 80.0), total log-likelihood −1130.26.
    """
    return _load("old_faithful.txt")


def load_two_clusters() -> tuple[np.ndarray, np.ndarray]:
    """Synthetic (100, 2) sample and its true labels: rows 0–29 from N([0, 1], diag(.3, .1)),
    rows 30–99 from N([2, 1], diag(.2, .3))."""
    X = _load("two_clusters_100.txt")
    labels = np.r_[np.zeros(30, int), np.ones(70, int)]
    return X, labels


def load_low_dim_gauss_mix() -> np.ndarray:
    """posteriordb's ``low_dim_gauss_mix`` data (1000, 1): a two-component normal mixture
    sample, whose posteriordb model has ordered means ~ Normal(0, 2), scales ~
    half-Normal(0, 2) and a weight ~ Beta(5, 5)."""
    import json
    with resources.files("bayes_gmm").joinpath("data", "low_dim_gauss_mix.json").open() as f:
        return np.asarray(json.load(f)["y"], np.float64)[:, None]

"""Shared fixtures: x64 precision on demand, embedded data, tolerances by dtype."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax
import numpy as np
import pytest

from bayes_gmm.datasets import load_old_faithful, load_two_clusters


@pytest.fixture
def x64():
    """Run the test body with float64 enabled in JAX (scoped, not global)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def faithful():
    return load_old_faithful()


@pytest.fixture(scope="session")
def two_clusters():
    return load_two_clusters()


def rtol_for(dtype):
    return 1e-9 if np.dtype(dtype) == np.float64 else 1e-4


COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

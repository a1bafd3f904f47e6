"""Shared fixtures: x64 precision on demand, embedded data, tolerances by dtype."""

import gc
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


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop compiled XLA programs after each test module.

    Every CPU executable keeps a few memory mappings for its JIT-compiled code; the suite
    compiles well over a thousand programs, and a process that keeps them all reaches
    Linux's vm.max_map_count (65530), after which LLVM segfaults while compiling the next
    one. Programs shared within a module stay cached for its tests.
    """
    yield
    jax.clear_caches()
    gc.collect()

"""Checks and summaries of an X spread over several devices or processes, done where X is.

A row-sharded ``jax.Array`` (one host with several devices, or several hosts after
``jax.distributed.initialize``) is never copied to the host: in several processes no
process could even read it, and on one host the copy would put the fit on one device.
Each check here is one compiled reduction whose result is a few replicated scalars, which
every process can read; :mod:`bayes_gmm._checks` (the validating edge) hands such an X
and its row weights to :func:`check_X_in_place` and :func:`check_weight_in_place`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .core.rows import is_multi_device

__all__ = ["is_distributed", "first_bad_entry", "weighted_variance", "weight_total",
           "check_X_in_place", "check_weight_in_place"]


def is_distributed(x) -> bool:
    """Whether ``x`` is a concrete jax.Array on several devices (checked in place)."""
    return isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) \
        and is_multi_device(x)


@partial(jax.jit, static_argnames="allow_nan")
def _first_bad(x, allow_nan):
    bad = jnp.isinf(x) if allow_nan else ~jnp.isfinite(x)
    flat = bad.reshape(-1)
    i = jnp.argmax(flat)
    return flat[i], i, x.reshape(-1)[i]


def first_bad_entry(x, allow_nan: bool = False):
    """None, or (index tuple, value) of the first non-finite entry of ``x`` in row-major
    order (with ``allow_nan``: the first infinite one)."""
    found, i, value = _first_bad(x, allow_nan=allow_nan)
    if not bool(found):
        return None
    return tuple(int(j) for j in np.unravel_index(int(i), x.shape)), float(value)


@jax.jit
def _variance(X, w):
    w = jnp.ones(X.shape[0], X.dtype) if w is None else w.astype(X.dtype)
    total = jnp.sum(w)
    mean = (w @ X) / total
    return jnp.mean((w @ jnp.square(X - mean)) / total)


def weighted_variance(X, sample_weight=None) -> float:
    """Mean per-column (weighted) variance of a complete X, as
    :func:`bayes_gmm.degeneracy.data_variance`."""
    return float(_variance(X, sample_weight))


_total = jax.jit(jnp.sum)


def weight_total(sample_weight) -> float:
    """The sum of the row weights."""
    return float(_total(sample_weight))


def check_X_in_place(X, name, min_samples, dtype):
    """An X spread over devices or processes: a finite 2-D float array, checked where it
    is, kept there and cast on its devices (the error names the first bad global row)."""
    if not jnp.issubdtype(X.dtype, jnp.floating):
        raise TypeError(f"{name} spread over devices must be a float array; got dtype "
                        f"{X.dtype}")
    if X.ndim != 2 or X.shape[0] < min_samples or X.shape[1] < 1:
        raise ValueError(f"{name} must be 2-D (n_samples ≥ {min_samples}, n_features ≥ 1); "
                         f"got shape {X.shape}")
    bad = first_bad_entry(X)
    if bad is not None:
        (r, c), value = bad
        raise ValueError(f"{name} contains NaN or infinity: first at row {r}, column {c} "
                         f"(value {value}); missing values in an X spread over devices are "
                         "not supported: remove or impute such rows")
    dtype = np.dtype(dtype) if dtype is not None else np.dtype(X.dtype)
    return X if X.dtype == dtype else X.astype(dtype)


def check_weight_in_place(w, n_samples, dtype, name):
    """Row weights spread over devices: finite, non-negative, not all zero, checked where
    they are."""
    if w.shape != (n_samples,) or not jnp.issubdtype(w.dtype, jnp.floating):
        raise ValueError(f"{name} spread over devices must be a float array of shape "
                         f"({n_samples},); got {w.dtype} {w.shape}")
    bad = first_bad_entry(w)
    if bad is not None:
        raise ValueError(f"{name} must be finite; first bad entry at row {bad[0][0]}")
    neg = first_bad_entry(jnp.where(w < 0, jnp.inf, 0.0))
    if neg is not None:
        raise ValueError(f"{name} must be non-negative; first negative at row {neg[0][0]}")
    if not weight_total(w) > 0:
        raise ValueError(f"{name} sums to zero: at least one row needs positive weight")
    return w.astype(dtype)

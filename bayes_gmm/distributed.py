"""Checks and summaries of an X spread over several devices or processes, done where X is.

A row-sharded ``jax.Array`` (one host with several devices, or several hosts after
``jax.distributed.initialize``) is never copied to the host: in several processes no
process could even read it, and on one host the copy would put the fit on one device.
Each function here is one compiled reduction whose result is a few replicated scalars,
which every process can read. :mod:`bayes_gmm._checks` uses them for such an X.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .core.rows import is_multi_device

__all__ = ["is_distributed", "first_bad_entry", "weighted_variance", "weight_total"]


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

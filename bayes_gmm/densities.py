"""Densities of a fitted mixture: log p(x), responsibilities, sampling, BIC/AIC.

All functions take a `GMMParams` and arrays; they are jit-compiled at the top and
accept ``batch_size`` to bound memory to one chunk of rows.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from . import _validation as V
from .em import _weighted_log_prob, map_rows
from .params import GMMParams, n_parameters


def _check(params, X):
    if not isinstance(params, GMMParams):
        raise TypeError(f"params must be a GMMParams; got {type(params).__name__}")
    if not V.is_traced(X):
        X = V.check_X(X, dtype=jnp.asarray(params.means).dtype)
        V.check_n_features(X, params.means.shape[-1])
    return jnp.asarray(X)


@partial(jax.jit, static_argnames=("batch_size",))
def _log_prob(params, X, batch_size=None):
    return map_rows(lambda xc: logsumexp(_weighted_log_prob(params, xc), axis=1), X, batch_size)


def log_prob(params: GMMParams, X, batch_size=None) -> jax.Array:
    """log p(x_n | θ) for each row. X: (N, D) -> (N,)."""
    return _log_prob(params, _check(params, X), batch_size=V.check_batch_size(batch_size))


@jax.jit
def _resp(params, X):
    wlp = _weighted_log_prob(params, X)
    return jnp.exp(wlp - logsumexp(wlp, axis=1, keepdims=True))


def responsibilities(params: GMMParams, X, batch_size=None) -> jax.Array:
    """p(z_n = k | x_n, θ). X: (N, D) -> (N, K), rows sum to one."""
    X = _check(params, X)
    batch_size = V.check_batch_size(batch_size)
    if batch_size is None or batch_size >= X.shape[0]:
        return _resp(params, X)
    return jnp.concatenate([_resp(params, X[i:i + batch_size])
                            for i in range(0, X.shape[0], batch_size)])


@partial(jax.jit, static_argnames=("batch_size",))
def _predict(params, X, batch_size=None):
    # map_rows stacks rows of X's dtype; labels < K are exact in any float dtype.
    def arg(xc):
        return jnp.argmax(_weighted_log_prob(params, xc), axis=1).astype(xc.dtype)
    return map_rows(arg, X, batch_size).astype(jnp.int32)


def predict(params: GMMParams, X, batch_size=None) -> jax.Array:
    """Most probable component of each row: X (N, D) -> (N,) int32."""
    return _predict(params, _check(params, X), batch_size=V.check_batch_size(batch_size))


@partial(jax.jit, static_argnames=("n",))
def _sample(params, key, n):
    from .params import full_covariances
    k1, k2 = jax.random.split(key)
    labels = jax.random.categorical(k1, jnp.log(params.weights), shape=(n,))
    chol = jnp.linalg.cholesky(full_covariances(params))
    z = jax.random.normal(k2, (n, params.means.shape[1]), params.means.dtype)
    X = params.means[labels] + jnp.einsum("nde,ne->nd", chol[labels], z)
    return X, labels


def sample(params: GMMParams, key, n: int):
    """Draw n rows: (X (n, D), labels (n,))."""
    n = V.check_int("n", n, 1)
    if isinstance(key, int):
        key = jax.random.key(key)
    return _sample(params, key, n)


def bic(params: GMMParams, X) -> jax.Array:
    """Bayesian information criterion, −2 log L + p log N (lower is better)."""
    X = _check(params, X)
    p = n_parameters(params.means.shape[0], params.means.shape[1], params.covariance_type)
    return -2.0 * jnp.sum(log_prob(params, X)) + p * jnp.log(X.shape[0])


def aic(params: GMMParams, X) -> jax.Array:
    """Akaike information criterion, −2 log L + 2p (lower is better)."""
    X = _check(params, X)
    p = n_parameters(params.means.shape[0], params.means.shape[1], params.covariance_type)
    return -2.0 * jnp.sum(log_prob(params, X)) + 2.0 * p

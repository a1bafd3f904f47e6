r"""Cholesky factors and solves of many small matrices at once, in plain array operations.

The missing-value algebra (:mod:`bayes_gmm.core.missing`) factorises one small matrix per
row and component inside the EM's compiled loops. jaxlib 0.10's batched LAPACK kernels on
CPU split such a batch into tasks on the thread pool they themselves run on, and inside a
loop they can wait forever for a thread (no CPU use; reproduced by
``benchmarks/jaxlib_lapack_loop_hang.py``). These functions run the same algorithms
(Cholesky–Crout by columns, forward and back substitution) as n vectorised steps over the
whole batch, with n the static matrix size: no custom call, differentiable by JAX, and as
accurate as LAPACK's unblocked algorithm.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["cholesky", "solve_lower", "solve_upper", "cho_solve"]


def cholesky(a):
    """Lower Cholesky factor L of symmetric positive definite a (..., n, n): a = L Lᵀ."""
    n = a.shape[-1]
    idx = jnp.arange(n)
    chol = jnp.zeros_like(a)
    for j in range(n):
        # column j of a minus what the columns found so far explain (L is 0 right of them)
        v = a[..., :, j] - jnp.einsum("...ik,...k->...i", chol, chol[..., j, :])
        col = jnp.where(idx >= j, v / jnp.sqrt(v[..., j:j + 1]), 0.0)
        chol = chol.at[..., :, j].set(col)
    return chol


def solve_lower(l, b):
    """x with L x = b: L (..., n, n) lower triangular, b (..., n, m)."""
    n = l.shape[-1]
    x = jnp.zeros(jnp.broadcast_shapes(l.shape[:-2], b.shape[:-2]) + b.shape[-2:],
                  jnp.result_type(l, b))
    for i in range(n):
        r = b[..., i, :] - jnp.einsum("...k,...km->...m", l[..., i, :], x)
        x = x.at[..., i, :].set(r / l[..., i, i:i + 1])
    return x


def solve_upper(u, b):
    """x with U x = b: U (..., n, n) upper triangular, b (..., n, m)."""
    n = u.shape[-1]
    x = jnp.zeros(jnp.broadcast_shapes(u.shape[:-2], b.shape[:-2]) + b.shape[-2:],
                  jnp.result_type(u, b))
    for i in reversed(range(n)):
        r = b[..., i, :] - jnp.einsum("...k,...km->...m", u[..., i, :], x)
        x = x.at[..., i, :].set(r / u[..., i, i:i + 1])
    return x


def cho_solve(l, b):
    """x with (L Lᵀ) x = b, from the lower factor L (..., n, n); b (..., n, m)."""
    return solve_upper(jnp.swapaxes(l, -1, -2), solve_lower(l, b))

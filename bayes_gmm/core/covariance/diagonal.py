"""Families with diagonal covariances: ``diag`` (VVI) and ``spherical`` (VII)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from ..seeding import normal
from .base import CovarianceFamily

__all__ = ["Diag", "Spherical"]


class _DiagonalFamily(CovarianceFamily):
    """Covariances stored as variances: the precision Cholesky factor is 1/σ elementwise."""

    def precision_cholesky(self, cov):
        return jax.lax.rsqrt(cov)

    def covariances_from_precision_cholesky(self, u):
        return 1.0 / jnp.square(u)

    def precisions(self, cov):
        return jnp.square(self.precision_cholesky(cov))

    def precision_cholesky_from_precisions(self, prec):
        return jnp.sqrt(prec)


class Diag(_DiagonalFamily):
    """Each component has its own diagonal covariance (mclust's VVI)."""

    name = "diag"
    dims = ("component", "feature")

    def shape(self, k, d):
        return (k, d)

    def n_parameters(self, k, d):
        return k * d

    def unit(self, k, d, dtype, xp=jnp):
        return xp.ones((k, d), dtype)

    def to_full(self, cov, k, d, xp=jnp):
        return cov[..., :, None] * xp.eye(d, dtype=cov.dtype)

    def from_full(self, full):
        return jnp.diagonal(full, axis1=-2, axis2=-1)

    def log_det_precision_cholesky(self, u, d):
        return jnp.sum(jnp.log(u), axis=-1)

    def mahalanobis(self, X, means, u):
        p2 = jnp.square(u)                                                      # (K, D)
        maha = (jnp.square(X) @ p2.T - 2.0 * (X @ (means * p2).T)
                + jnp.sum(jnp.square(means) * p2, axis=1)[None])
        return jnp.maximum(maha, 0.0)

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        return jnp.where(empty[:, None], prev, S / nk[:, None] + reg_covar)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d, prev=None):
        B = S + shrink[:, None] * jnp.square(dev)
        return (psi[None] + B) / (nu + counts + 3.0)[:, None]

    def add_floor(self, cov, eps, floor, d):
        return cov + (10 * eps * jnp.mean(cov, axis=1) + floor)[:, None]

    def default_scale(self, nu, target, k, d):
        return (nu + 3.0) * jnp.diagonal(target)

    def scale_shapes(self, d):
        return ((), (d,))

    def broadcast_scale(self, psi, d):
        return jnp.broadcast_to(psi, (d,))

    def covariance_prior(self, nu, psi, k, d):
        return (dist.InverseGamma(0.5 * nu, 0.5 * psi, validate_args=False)
                .expand([k, d]).to_event(2))

    def mean_prior(self, m0, cov, kappa, k, d):
        return dist.Normal(m0, jnp.sqrt(cov / kappa), validate_args=False).to_event(2)

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        k = cov.shape[0]
        z = normal(keys[0], (num_chains, k, d), cov.dtype)
        return cov[None] * jnp.exp(jitter * z * jnp.sqrt(2.0 / nk)[None, :, None])


class Spherical(_DiagonalFamily):
    """Each component has its own single variance (mclust's VII)."""

    name = "spherical"
    dims = ("component",)

    def shape(self, k, d):
        return (k,)

    def n_parameters(self, k, d):
        return k

    def unit(self, k, d, dtype, xp=jnp):
        return xp.ones((k,), dtype)

    def to_full(self, cov, k, d, xp=jnp):
        return cov[..., None, None] * xp.eye(d, dtype=cov.dtype)

    def from_full(self, full):
        return jnp.trace(full, axis1=-2, axis2=-1) / full.shape[-1]

    def log_det_precision_cholesky(self, u, d):
        return d * jnp.log(u)

    def mahalanobis(self, X, means, u):
        p2 = jnp.square(u)                                                      # (K,)
        maha = (jnp.sum(jnp.square(X), axis=1)[:, None] - 2.0 * (X @ means.T)
                + jnp.sum(jnp.square(means), axis=1)[None]) * p2[None]
        return jnp.maximum(maha, 0.0)

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        return jnp.where(empty, prev, jnp.mean(S / nk[:, None], axis=1) + reg_covar)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d, prev=None):
        B = jnp.sum(S, axis=1) + shrink * jnp.sum(jnp.square(dev), axis=1)
        return (psi + B) / (nu + counts * d + d + 2.0)

    def add_floor(self, cov, eps, floor, d):
        return cov * (1 + 10 * eps) + floor

    def default_scale(self, nu, target, k, d):
        return (nu + d + 2.0) * jnp.mean(jnp.diagonal(target))

    def scale_shapes(self, d):
        return ((),)

    def covariance_prior(self, nu, psi, k, d):
        return (dist.InverseGamma(0.5 * nu, 0.5 * psi, validate_args=False)
                .expand([k]).to_event(1))

    def mean_prior(self, m0, cov, kappa, k, d):
        return dist.Normal(m0, jnp.sqrt(cov[:, None] / kappa),
                           validate_args=False).to_event(2)

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        (k,) = cov.shape
        z = normal(keys[0], (num_chains, k), cov.dtype)
        return cov[None] * jnp.exp(jitter * z * jnp.sqrt(2.0 / (nk * d))[None])



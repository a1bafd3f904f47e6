"""Matrix-parameterised families: ``full`` (VVV) and ``tied`` (EEE)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import lax
from jax.scipy.linalg import solve_triangular

from ..seeding import normal
from .base import CovarianceFamily, eye

__all__ = ["Full", "Tied"]


def _with_ones(X):
    """[X 1]: (B, D + 1)."""
    return jnp.concatenate([X, jnp.ones(X.shape[:-1] + (1,), X.dtype)], axis=-1)


# --- matrix-parameterised families ---------------------------------------------------------

class _MatrixFamily(CovarianceFamily):
    matrix = True

    def precision_cholesky(self, cov):
        d = cov.shape[-1]
        chol = jnp.linalg.cholesky(cov)
        ident = jnp.broadcast_to(eye(d, cov.dtype), cov.shape)
        return jnp.swapaxes(solve_triangular(chol, ident, lower=True), -1, -2)

    def covariances_from_precision_cholesky(self, u):
        d = u.shape[-1]
        ident = jnp.broadcast_to(eye(d, u.dtype), u.shape)
        u_inv = solve_triangular(u, ident, lower=False)                    # U⁻¹
        return jnp.swapaxes(u_inv, -1, -2) @ u_inv

    def precisions(self, cov):
        u = self.precision_cholesky(cov)
        return u @ jnp.swapaxes(u, -1, -2)

    def precision_cholesky_from_precisions(self, prec):
        # As scikit-learn: U = flip(chol(flip(P))), an upper Cholesky factor.
        flipped = jnp.flip(prec, axis=(-2, -1))
        return jnp.flip(jnp.linalg.cholesky(flipped), axis=(-2, -1))

    def log_det_precision_cholesky(self, u, d):
        return jnp.sum(jnp.log(jnp.diagonal(u, axis1=-2, axis2=-1)), axis=-1)

    def moments(self, X, resp, shift):
        # Σ r (x − s)(x − s)ᵀ = Σ r x (x − s)ᵀ − s Σ r (x − s)ᵀ: the first sum for all K at
        # once is one matrix product Xᵀ [r_1 (X − s_1) … r_K (X − s_K)] (D × B times B × K·D),
        # which ran about 4× faster on CPU than K products with D × D outputs. One factor
        # stays centred on the component, so for a component far from the data's centre
        # the rounding error grows with |s_k| / σ_k, not with its square as the raw second
        # moment's would.
        # A column of ones appended to X makes the same product give Σ r (x − s) too.
        b, d = X.shape
        k = shift.shape[0]
        rd = resp[..., None] * (X[:, None, :] - shift[None])                  # (B, K, D)
        # In float64 the transpose is made a real array first: left to fold it into the
        # product, XLA on CPU picked a kernel 1.7× slower for this (D + 1) × B × K·D shape
        # (in float32 the folded one was 10% faster).
        xt = _with_ones(X).T
        if X.dtype == jnp.float64:
            xt = lax.optimization_barrier(xt)
        prod = (xt @ rd.reshape(b, k * d)).reshape(d + 1, k, d)
        sum_d = prod[d]                                                       # Σ r (x − s)
        S = jnp.transpose(prod[:d], (1, 0, 2)) - shift[:, :, None] * sum_d[:, None, :]
        return sum_d, 0.5 * (S + jnp.swapaxes(S, -1, -2))

    def scatter_from_full(self, scatter):
        return scatter

    def centred_scatter(self, scatter, nk, off):
        S = scatter - nk[:, None, None] * off[:, :, None] * off[:, None, :]
        return 0.5 * (S + jnp.swapaxes(S, -1, -2))

    def default_scale(self, nu, target, k, d):
        return (nu + d + 2.0) * target

    def min_degrees_of_freedom(self, d):
        return d - 1

    def scale_shapes(self, d):
        return ((d, d),)

    def check_scale(self, psi, d):
        if psi.shape != (d, d):
            raise ValueError(f"GMMPrior.covariance_prior must be a ({d}, {d}) matrix for "
                             f"'{self.name}'; got shape {psi.shape}")
        if not np.allclose(psi, psi.T, rtol=1e-8, atol=1e-12 * np.abs(psi).max()):
            raise ValueError("GMMPrior.covariance_prior must be symmetric")
        if np.linalg.eigvalsh(psi).min() <= 0:
            raise ValueError("GMMPrior.covariance_prior must be positive definite")

    def check_covariances(self, c, name):
        d = c.shape[-1]
        mats = c.reshape(-1, d, d)
        for i, a in enumerate(mats):
            where = f"{name}[{i}]" if not self.shared else name
            if not np.allclose(a, a.T, rtol=1e-7, atol=1e-10 * max(np.abs(a).max(), 1e-300)):
                raise ValueError(f"{where} must be symmetric; max |A - A.T| = "
                                 f"{np.abs(a - a.T).max():.3g}")
            try:
                np.linalg.cholesky(a)
            except np.linalg.LinAlgError:
                raise ValueError(f"{where} must be positive definite "
                                 f"(covariance_type={self.name!r})") from None

    @staticmethod
    def _jitter_factor(keys, shape, scale, jitter, dt):
        """A lower triangular with diag(A) = exp(z/(√2·scale)), z/scale below it."""
        d = shape[-1]
        k2, k3 = keys
        lower = jnp.tril(normal(k2, shape, dt), -1) * jitter / scale
        diag = jnp.exp(jitter * normal(k3, shape[:-1], dt)
                       / (math.sqrt(2.0) * scale[..., 0]))
        return lower + diag[..., None] * eye(d, dt)


class Full(_MatrixFamily):
    """Each component has its own covariance matrix (mclust's VVV)."""

    name = "full"
    dims = ("component", "feature", "feature_bis")

    def shape(self, k, d):
        return (k, d, d)

    def n_parameters(self, k, d):
        return k * d * (d + 1) // 2

    def unit(self, k, d, dtype, xp=jnp):
        return xp.broadcast_to(xp.eye(d, dtype=dtype), (k, d, d))

    def to_full(self, cov, k, d, xp=jnp):
        return cov

    def from_full(self, full):
        return full

    def mahalanobis(self, X, means, u):
        n, d = X.shape
        k = means.shape[0]
        # One GEMM projects the rows on all components and centres them:
        # [X 1] @ [U_1 … U_K; −μ_1ᵀU_1 … −μ_KᵀU_K] = [U_1ᵀ(x − μ_1) … U_Kᵀ(x − μ_K)].
        u_cat = jnp.transpose(u, (1, 0, 2)).reshape(d, k * d)                  # (D, K·D)
        off = jnp.einsum("kd,kde->ke", means, u).reshape(1, k * d)
        y = _with_ones(X) @ jnp.concatenate([u_cat, -off], axis=0)
        return jnp.sum(jnp.square(y.reshape(n, k, d)), axis=-1)

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        d = S.shape[-1]
        cov = S / nk[:, None, None] + reg_covar * eye(d, S.dtype)
        return jnp.where(empty[:, None, None], prev, cov)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d, prev=None):
        B = S + shrink[:, None, None] * dev[:, :, None] * dev[:, None, :]
        return (psi[None] + B) / (nu + counts + d + 2.0)[:, None, None]

    def add_floor(self, cov, eps, floor, d):
        own = jnp.trace(cov, axis1=-2, axis2=-1) / d
        return cov + (10 * eps * own + floor)[:, None, None] * eye(d, cov.dtype)

    def covariance_prior(self, nu, psi, k, d):
        return (dist.InverseWishart(nu, scale_matrix=psi, validate_args=False)
                .expand([k]).to_event(1))

    def mean_prior(self, m0, cov, kappa, k, d):
        return dist.MultivariateNormal(m0, covariance_matrix=cov / kappa,
                                       validate_args=False).to_event(1)

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        k = cov.shape[0]
        scale = jnp.broadcast_to(jnp.sqrt(nk)[None, :, None, None], (1, k, d, 1))
        a = self._jitter_factor(keys, (num_chains, k, d, d), scale, jitter, cov.dtype)
        m = jnp.linalg.cholesky(cov)[None] @ a
        out = m @ jnp.swapaxes(m, -1, -2)
        return 0.5 * (out + jnp.swapaxes(out, -1, -2))

    def underdetermined(self, weights, n_eff, d):
        need = d + 1
        return np.flatnonzero((weights > 0) & (weights * n_eff < need)), need


class Tied(_MatrixFamily):
    """One covariance matrix shared by all components (mclust's EEE)."""

    name = "tied"
    dims = ("feature", "feature_bis")
    shared = True

    def shape(self, k, d):
        return (d, d)

    def n_parameters(self, k, d):
        return d * (d + 1) // 2

    def unit(self, k, d, dtype, xp=jnp):
        return xp.eye(d, dtype=dtype)

    def to_full(self, cov, k, d, xp=jnp):
        return xp.broadcast_to(cov[..., None, :, :], cov.shape[:-2] + (k, d, d))

    def from_full(self, full):
        return jnp.mean(full, axis=-3)

    def mahalanobis(self, X, means, u):
        y = (X @ u)[:, None, :] - (means @ u)[None]
        return jnp.sum(jnp.square(y), axis=-1)

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        d = S.shape[-1]
        return jnp.sum(S, axis=0) / jnp.sum(nk) + reg_covar * eye(d, S.dtype)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d, prev=None):
        B = S + shrink[:, None, None] * dev[:, :, None] * dev[:, None, :]
        return (psi + jnp.sum(B, axis=0)) / (nu + total + k + d + 1.0)

    def default_scale(self, nu, target, k, d):
        return (nu + k + d + 1.0) * target

    def add_floor(self, cov, eps, floor, d):
        return cov + (10 * eps * jnp.trace(cov) / d + floor) * eye(d, cov.dtype)

    def covariance_prior(self, nu, psi, k, d):
        return dist.InverseWishart(nu, scale_matrix=psi, validate_args=False)

    def mean_prior(self, m0, cov, kappa, k, d):
        return (dist.MultivariateNormal(m0, covariance_matrix=cov / kappa, validate_args=False)
                .expand([k]).to_event(1))

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        scale = jnp.broadcast_to(jnp.sqrt(n + 1.0), (1, d, 1)).astype(cov.dtype)
        a = self._jitter_factor(keys, (num_chains, d, d), scale, jitter, cov.dtype)
        m = jnp.linalg.cholesky(cov)[None] @ a
        out = m @ jnp.swapaxes(m, -1, -2)
        return 0.5 * (out + jnp.swapaxes(out, -1, -2))

    def underdetermined(self, weights, n_eff, d):
        need = d + 1
        small = np.flatnonzero(weights > 0) if n_eff < need else np.array([], int)
        return small, need



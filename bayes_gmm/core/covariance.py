r"""Covariance families: one class per covariance type, in a registry by name.

A family holds everything that depends on how the covariances are parameterised — shapes,
the precision Cholesky factor, log-determinants, Mahalanobis distances, the ML and MAP
M-steps, the parameter count, the conjugate prior's covariance and mean distributions,
chain starts for NUTS and validation of user-given covariances. Everything else in the
package asks the family (``get_family(name)`` or ``params.family``) and never compares a
covariance-type string: adding a family is adding a class here (and its tests).

=================  ==================  ==========================================
family             ``covariances``     precision Cholesky ``U`` (P = U Uᵀ)
=================  ==================  ==========================================
``full``           (K, D, D)           (K, D, D) upper triangular, U = L⁻ᵀ
``tied``           (D, D)              (D, D) upper triangular
``diag``           (K, D)              (K, D) = 1 / sqrt(variances)
``spherical``      (K,)                (K,)   = 1 / sqrt(variance)
=================  ==================  ==========================================

Pure and jittable; nothing inverts or takes a determinant explicitly.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.linalg import solve_triangular

__all__ = ["CovarianceFamily", "FAMILIES", "COVARIANCE_TYPES", "get_family",
           "family_from_dims"]


def _eye(d, dtype):
    return jnp.eye(d, dtype=dtype)


class CovarianceFamily:
    """Interface of a covariance family; subclasses fill in the algebra.

    Attributes
    ----------
    name : the ``covariance_type`` string.
    dims : named dims of ``covariances`` (without chain/draw), for InferenceData.
    shared : one covariance for all components (tied).
    whitened : the E-step accumulates statistics in whitened coordinates
        y = Uᵀ(x − μ) (matrix-parameterised families), mapped back by :meth:`unwhiten`.
    """

    name: str = ""
    dims: tuple = ()
    shared: bool = False
    whitened: bool = False

    def __repr__(self):
        return f"<covariance family {self.name!r}>"

    # --- shapes ------------------------------------------------------------------------
    def shape(self, k: int, d: int) -> tuple:
        raise NotImplementedError

    def n_parameters(self, k: int, d: int) -> int:
        """Free parameters of the covariances (scikit-learn's count)."""
        raise NotImplementedError

    def unit(self, k: int, d: int, dtype):
        """Identity covariances of this family's shape."""
        raise NotImplementedError

    def to_full(self, cov, k: int, d: int, xp=jnp):
        """Covariances expanded to (K, D, D); ``xp=numpy`` keeps float64 without x64."""
        raise NotImplementedError

    def variances(self, cov, k: int, d: int):
        """Per-component variances (K, D) (the diagonal of :meth:`to_full`)."""
        return jnp.diagonal(self.to_full(cov, k, d), axis1=-2, axis2=-1)

    # --- precision algebra -------------------------------------------------------------
    def precision_cholesky(self, cov):
        raise NotImplementedError

    def covariances_from_precision_cholesky(self, u):
        raise NotImplementedError

    def precisions(self, cov):
        raise NotImplementedError

    def precision_cholesky_from_precisions(self, prec):
        raise NotImplementedError

    def log_det_precision_cholesky(self, u, d: int):
        """½ log|P| per component: (K,), or a scalar when shared."""
        raise NotImplementedError

    def mahalanobis(self, X, means, u):
        """(x_n − μ_k)ᵀ P_k (x_n − μ_k) for rows X (N, D) and means (K, D): (N, K)."""
        raise NotImplementedError

    # --- sufficient statistics and M-steps ---------------------------------------------
    def scatter(self, resp, diff):
        """Σ_n r_nk (x_n − s_k)(x_n − s_k)ᵀ (or its diagonal) from diff (B, K, D)."""
        return jnp.einsum("nk,nkd->kd", resp, jnp.square(diff))

    def centred_scatter(self, scatter, nk, off):
        """Scatter about x̄_k from the scatter about a shift s_k, with off = x̄_k − s_k."""
        return jnp.maximum(scatter - nk[:, None] * jnp.square(off), 0.0)

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        """Maximum-likelihood covariances; an emptied component keeps ``prev``."""
        raise NotImplementedError

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d):
        """The covariance part of the joint posterior mode under the conjugate prior."""
        raise NotImplementedError

    def add_floor(self, cov, eps, floor, d):
        """Add 10·eps of each covariance's own mean variance plus the absolute ``floor``."""
        raise NotImplementedError

    # --- the conjugate prior -----------------------------------------------------------
    def default_scale(self, nu, cov, d):
        """Ψ₀ that makes the prior mean of each covariance equal ``cov`` (D, D)."""
        raise NotImplementedError

    def min_degrees_of_freedom(self, d: int) -> int:
        """ν₀ must exceed this."""
        return 0

    def scale_shapes(self, d: int) -> tuple:
        """Accepted shapes of ``GMMPrior.covariance_prior``."""
        raise NotImplementedError

    def broadcast_scale(self, psi, d: int):
        return psi

    def check_scale(self, psi: np.ndarray, d: int) -> None:
        """Raise ValueError unless ``psi`` is a valid ``covariance_prior`` for this family."""
        shapes = self.scale_shapes(d)
        if psi.shape not in shapes:
            raise ValueError(f"GMMPrior.covariance_prior must have shape "
                             f"{' or '.join(map(str, shapes))} for '{self.name}'; "
                             f"got shape {psi.shape}")
        if np.any(psi <= 0):
            raise ValueError(f"GMMPrior.covariance_prior must be > 0; got {psi}")

    def covariance_prior(self, nu, psi, k: int, d: int) -> dist.Distribution:
        """The prior of the ``covariances`` site: one event of shape ``shape(k, d)``."""
        raise NotImplementedError

    def mean_prior(self, m0, cov, kappa, k: int, d: int) -> dist.Distribution:
        """μ_k | Σ_k ~ N(m₀, Σ_k / κ₀): one event of shape (K, D)."""
        raise NotImplementedError

    # --- chain starts, validation, warnings ---------------------------------------------
    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        """Per-chain covariances about ``cov``, ~``jitter`` posterior sds away: (C, ...).

        keys: two PRNG keys; nk: (K,) effective rows per component (+1); n: rows."""
        raise NotImplementedError

    def check_covariances(self, c: np.ndarray, name: str) -> None:
        """Raise ValueError unless ``c`` (NumPy, this family's shape) is a valid value."""
        if np.any(c <= 0):
            raise ValueError(f"{name} must be positive for covariance_type={self.name!r}; "
                             f"got min {c.min()}")

    def underdetermined(self, weights: np.ndarray, n_eff: float, d: int):
        """Components whose covariance the data cannot determine: (indices, rows needed)."""
        need = 2
        return np.flatnonzero((weights > 0) & (weights * n_eff < need)), need


# --- matrix-parameterised families ---------------------------------------------------------

class _MatrixFamily(CovarianceFamily):
    whitened = True

    def precision_cholesky(self, cov):
        d = cov.shape[-1]
        chol = jnp.linalg.cholesky(cov)
        eye = jnp.broadcast_to(_eye(d, cov.dtype), cov.shape)
        return jnp.swapaxes(solve_triangular(chol, eye, lower=True), -1, -2)

    def covariances_from_precision_cholesky(self, u):
        d = u.shape[-1]
        eye = jnp.broadcast_to(_eye(d, u.dtype), u.shape)
        u_inv = solve_triangular(u, eye, lower=False)                      # U⁻¹
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

    def scatter(self, resp, diff):
        return jnp.einsum("nkd,nke->kde", resp[..., None] * diff, diff)

    def centred_scatter(self, scatter, nk, off):
        S = scatter - nk[:, None, None] * off[:, :, None] * off[:, None, :]
        return 0.5 * (S + jnp.swapaxes(S, -1, -2))

    def default_scale(self, nu, cov, d):
        return (nu - d - 1.0) * cov

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
        lower = jnp.tril(jax.random.normal(k2, shape, dt), -1) * jitter / scale
        diag = jnp.exp(jitter * jax.random.normal(k3, shape[:-1], dt)
                       / (math.sqrt(2.0) * scale[..., 0]))
        return lower + diag[..., None] * jnp.eye(d, dtype=dt)


class Full(_MatrixFamily):
    """Each component has its own covariance matrix (mclust's VVV)."""

    name = "full"
    dims = ("component", "feature", "feature_bis")

    def shape(self, k, d):
        return (k, d, d)

    def n_parameters(self, k, d):
        return k * d * (d + 1) // 2

    def unit(self, k, d, dtype):
        return jnp.broadcast_to(_eye(d, dtype), (k, d, d))

    def to_full(self, cov, k, d, xp=jnp):
        return cov

    def mahalanobis(self, X, means, u):
        n, d = X.shape
        k = means.shape[0]
        # One GEMM projects the rows on all components: X @ [U_1 … U_K].
        u_cat = jnp.transpose(u, (1, 0, 2)).reshape(d, k * d)                  # (D, K·D)
        y = (X @ u_cat).reshape(n, k, d)
        y = y - jnp.einsum("kd,kde->ke", means, u)[None]
        return jnp.sum(jnp.square(y), axis=-1)

    def whiten(self, X, means, u):
        """y_nk = U_kᵀ(x_n − μ_k): (K, B, D)."""
        return (jnp.einsum("bd,kde->kbe", X, u)
                - jnp.einsum("kd,kde->ke", means, u)[:, None, :])

    def unwhiten(self, sum_y, scatter_y, cov):
        chol = jnp.linalg.cholesky(cov)                   # x − μ_k = L_k y, Σ_k = L_k L_kᵀ
        return (jnp.einsum("kde,ke->kd", chol, sum_y),
                chol @ scatter_y @ jnp.swapaxes(chol, -1, -2))

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        d = S.shape[-1]
        cov = S / nk[:, None, None] + reg_covar * _eye(d, S.dtype)
        return jnp.where(empty[:, None, None], prev, cov)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d):
        B = S + shrink[:, None, None] * dev[:, :, None] * dev[:, None, :]
        return (psi[None] + B) / (nu + counts + d + 2.0)[:, None, None]

    def add_floor(self, cov, eps, floor, d):
        own = jnp.trace(cov, axis1=-2, axis2=-1) / d
        return cov + (10 * eps * own + floor)[:, None, None] * _eye(d, cov.dtype)

    def covariance_prior(self, nu, psi, k, d):
        return dist.InverseWishart(nu, scale_matrix=psi).expand([k]).to_event(1)

    def mean_prior(self, m0, cov, kappa, k, d):
        return dist.MultivariateNormal(m0, covariance_matrix=cov / kappa).to_event(1)

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

    def unit(self, k, d, dtype):
        return _eye(d, dtype)

    def to_full(self, cov, k, d, xp=jnp):
        return xp.broadcast_to(cov, (k, d, d))

    def mahalanobis(self, X, means, u):
        y = (X @ u)[:, None, :] - (means @ u)[None]
        return jnp.sum(jnp.square(y), axis=-1)

    def whiten(self, X, means, u):
        return (X @ u)[None] - (means @ u)[:, None, :]

    def unwhiten(self, sum_y, scatter_y, cov):
        chol = jnp.linalg.cholesky(cov)
        return sum_y @ chol.T, chol[None] @ scatter_y @ chol.T[None]

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        d = S.shape[-1]
        return jnp.sum(S, axis=0) / jnp.sum(nk) + reg_covar * _eye(d, S.dtype)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d):
        B = S + shrink[:, None, None] * dev[:, :, None] * dev[:, None, :]
        return (psi + jnp.sum(B, axis=0)) / (nu + total + k + d + 1.0)

    def add_floor(self, cov, eps, floor, d):
        return cov + (10 * eps * jnp.trace(cov) / d + floor) * _eye(d, cov.dtype)

    def covariance_prior(self, nu, psi, k, d):
        return dist.InverseWishart(nu, scale_matrix=psi)

    def mean_prior(self, m0, cov, kappa, k, d):
        return dist.MultivariateNormal(m0, covariance_matrix=cov / kappa).expand([k]).to_event(1)

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


# --- families with diagonal covariances ----------------------------------------------------

class Diag(CovarianceFamily):
    """Each component has its own diagonal covariance (mclust's VVI)."""

    name = "diag"
    dims = ("component", "feature")

    def shape(self, k, d):
        return (k, d)

    def n_parameters(self, k, d):
        return k * d

    def unit(self, k, d, dtype):
        return jnp.ones((k, d), dtype)

    def to_full(self, cov, k, d, xp=jnp):
        return cov[:, :, None] * xp.eye(d, dtype=cov.dtype)[None]

    def precision_cholesky(self, cov):
        return jax.lax.rsqrt(cov)

    def covariances_from_precision_cholesky(self, u):
        return 1.0 / jnp.square(u)

    def precisions(self, cov):
        return jnp.square(self.precision_cholesky(cov))

    def precision_cholesky_from_precisions(self, prec):
        return jnp.sqrt(prec)

    def log_det_precision_cholesky(self, u, d):
        return jnp.sum(jnp.log(u), axis=-1)

    def mahalanobis(self, X, means, u):
        p2 = jnp.square(u)                                                      # (K, D)
        maha = (jnp.square(X) @ p2.T - 2.0 * (X @ (means * p2).T)
                + jnp.sum(jnp.square(means) * p2, axis=1)[None])
        return jnp.maximum(maha, 0.0)

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        return jnp.where(empty[:, None], prev, S / nk[:, None] + reg_covar)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d):
        B = S + shrink[:, None] * jnp.square(dev)
        return (psi[None] + B) / (nu + counts + 3.0)[:, None]

    def add_floor(self, cov, eps, floor, d):
        return cov + (10 * eps * jnp.mean(cov, axis=1) + floor)[:, None]

    def default_scale(self, nu, cov, d):
        return (nu - 2.0) * jnp.diagonal(cov)

    def scale_shapes(self, d):
        return ((), (d,))

    def broadcast_scale(self, psi, d):
        return jnp.broadcast_to(psi, (d,))

    def covariance_prior(self, nu, psi, k, d):
        return dist.InverseGamma(0.5 * nu, 0.5 * psi).expand([k, d]).to_event(2)

    def mean_prior(self, m0, cov, kappa, k, d):
        return dist.Normal(m0, jnp.sqrt(cov / kappa)).to_event(2)

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        k = cov.shape[0]
        z = jax.random.normal(keys[0], (num_chains, k, d), cov.dtype)
        return cov[None] * jnp.exp(jitter * z * jnp.sqrt(2.0 / nk)[None, :, None])


class Spherical(CovarianceFamily):
    """Each component has its own single variance (mclust's VII)."""

    name = "spherical"
    dims = ("component",)

    def shape(self, k, d):
        return (k,)

    def n_parameters(self, k, d):
        return k

    def unit(self, k, d, dtype):
        return jnp.ones((k,), dtype)

    def to_full(self, cov, k, d, xp=jnp):
        return cov[:, None, None] * xp.eye(d, dtype=cov.dtype)[None]

    def precision_cholesky(self, cov):
        return jax.lax.rsqrt(cov)

    def covariances_from_precision_cholesky(self, u):
        return 1.0 / jnp.square(u)

    def precisions(self, cov):
        return jnp.square(self.precision_cholesky(cov))

    def precision_cholesky_from_precisions(self, prec):
        return jnp.sqrt(prec)

    def log_det_precision_cholesky(self, u, d):
        return d * jnp.log(u)

    def mahalanobis(self, X, means, u):
        p2 = jnp.square(u)                                                      # (K,)
        maha = (jnp.sum(jnp.square(X), axis=1)[:, None] - 2.0 * (X @ means.T)
                + jnp.sum(jnp.square(means), axis=1)[None]) * p2[None]
        return jnp.maximum(maha, 0.0)

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        return jnp.where(empty, prev, jnp.mean(S / nk[:, None], axis=1) + reg_covar)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d):
        B = jnp.sum(S, axis=1) + shrink * jnp.sum(jnp.square(dev), axis=1)
        return (psi + B) / (nu + counts * d + d + 2.0)

    def add_floor(self, cov, eps, floor, d):
        return cov * (1 + 10 * eps) + floor

    def default_scale(self, nu, cov, d):
        return (nu - 2.0) * jnp.mean(jnp.diagonal(cov))

    def scale_shapes(self, d):
        return ((),)

    def covariance_prior(self, nu, psi, k, d):
        return dist.InverseGamma(0.5 * nu, 0.5 * psi).expand([k]).to_event(1)

    def mean_prior(self, m0, cov, kappa, k, d):
        return dist.Normal(m0, jnp.sqrt(cov[:, None] / kappa)).to_event(2)

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        (k,) = cov.shape
        z = jax.random.normal(keys[0], (num_chains, k), cov.dtype)
        return cov[None] * jnp.exp(jitter * z * jnp.sqrt(2.0 / (nk * d))[None])


# --- the registry --------------------------------------------------------------------------

FAMILIES: dict = {f.name: f for f in (Full(), Tied(), Diag(), Spherical())}
COVARIANCE_TYPES = tuple(FAMILIES)


def get_family(covariance_type) -> CovarianceFamily:
    """The family registered under ``covariance_type`` (ValueError naming the choices)."""
    if isinstance(covariance_type, CovarianceFamily):
        return covariance_type
    family = FAMILIES.get(covariance_type) if isinstance(covariance_type, str) else None
    if family is None:
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}; "
                         f"got {covariance_type!r}")
    return family


def family_from_dims(dims: tuple) -> CovarianceFamily:
    """The family whose ``covariances`` carry these named dims (InferenceData)."""
    for family in FAMILIES.values():
        if tuple(dims) == family.dims:
            return family
    raise ValueError(f"no covariance family has covariances with dims {tuple(dims)}")

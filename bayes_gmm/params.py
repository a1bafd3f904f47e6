"""`GMMParams` and the covariance-type algebra.

Covariance shapes follow scikit-learn (K components, D features):

============  ==================  ==================================
type          ``covariances``     precision Cholesky ``U`` (P = U Uᵀ)
============  ==================  ==================================
``full``      (K, D, D)           (K, D, D) upper triangular
``tied``      (D, D)              (D, D) upper triangular
``diag``      (K, D)              (K, D)  = 1 / sqrt(variances)
``spherical`` (K,)                (K,)    = 1 / sqrt(variance)
============  ==================  ==================================

Everything here is pure and jittable; nothing inverts or takes a determinant
explicitly: log-determinants come from Cholesky diagonals.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@dataclasses.dataclass(frozen=True)
class GMMParams:
    """Parameters of a Gaussian mixture (a JAX pytree).

    Attributes
    ----------
    weights : (K,) mixing weights, summing to one.
    means : (K, D) component means.
    covariances : shape by ``covariance_type`` (see module docstring).
    covariance_type : static metadata (not a pytree leaf).
    """

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array
    covariance_type: str = "full"

    def _replace(self, **kwargs) -> "GMMParams":
        return dataclasses.replace(self, **kwargs)

    @property
    def n_components(self) -> int:
        return self.means.shape[-2]

    @property
    def n_features(self) -> int:
        return self.means.shape[-1]


jax.tree_util.register_dataclass(
    GMMParams,
    data_fields=["weights", "means", "covariances"],
    meta_fields=["covariance_type"],
)


def _eye_like(x, d):
    return jnp.eye(d, dtype=x.dtype)


def precision_cholesky(covariances: jax.Array, covariance_type: str) -> jax.Array:
    """Cholesky factor ``U`` of the precision (P = U Uᵀ), scikit-learn's layout.

    For full/tied ``U = L⁻ᵀ`` where ``Σ = L Lᵀ``; for diag/spherical ``1/sqrt(σ²)``.
    """
    if covariance_type in ("full", "tied"):
        d = covariances.shape[-1]
        chol = jnp.linalg.cholesky(covariances)
        eye = jnp.broadcast_to(_eye_like(covariances, d), covariances.shape)
        return jnp.swapaxes(solve_triangular(chol, eye, lower=True), -1, -2)
    return jax.lax.rsqrt(covariances)


def covariances_from_precision_cholesky(prec_chol: jax.Array, covariance_type: str) -> jax.Array:
    """Inverse of :func:`precision_cholesky`: Σ = (U Uᵀ)⁻¹ = U⁻ᵀ U⁻¹."""
    if covariance_type in ("full", "tied"):
        d = prec_chol.shape[-1]
        eye = jnp.broadcast_to(_eye_like(prec_chol, d), prec_chol.shape)
        u_inv = solve_triangular(prec_chol, eye, lower=False)  # U⁻¹
        return jnp.swapaxes(u_inv, -1, -2) @ u_inv
    return 1.0 / jnp.square(prec_chol)


def precisions(covariances: jax.Array, covariance_type: str) -> jax.Array:
    """Precision matrices (or precision diagonals), shaped like ``covariances``."""
    u = precision_cholesky(covariances, covariance_type)
    if covariance_type in ("full", "tied"):
        return u @ jnp.swapaxes(u, -1, -2)
    return jnp.square(u)


def precision_cholesky_from_precisions(prec: jax.Array, covariance_type: str) -> jax.Array:
    """``U`` from precisions: as scikit-learn, ``U = flip(chol(flip(P)))`` (upper Cholesky)."""
    if covariance_type in ("full", "tied"):
        flipped = jnp.flip(prec, axis=(-2, -1))
        return jnp.flip(jnp.linalg.cholesky(flipped), axis=(-2, -1))
    return jnp.sqrt(prec)


def log_det_precision_cholesky(prec_chol: jax.Array, covariance_type: str, n_features: int):
    """½ log|P| per component: (K,) or scalar for tied."""
    if covariance_type in ("full", "tied"):
        return jnp.sum(jnp.log(jnp.diagonal(prec_chol, axis1=-2, axis2=-1)), axis=-1)
    if covariance_type == "diag":
        return jnp.sum(jnp.log(prec_chol), axis=-1)
    return n_features * jnp.log(prec_chol)


def component_log_prob(X: jax.Array, means: jax.Array, prec_chol: jax.Array,
                       covariance_type: str) -> jax.Array:
    """log N(x_n | μ_k, Σ_k) for every row and component: (N, K).

    X: (N, D); means: (K, D); prec_chol: see :func:`precision_cholesky`.
    The full type projects all components with one GEMM ``X @ [U_1 … U_K]``.
    """
    n, d = X.shape
    k = means.shape[0]
    if covariance_type == "full":
        u_cat = jnp.transpose(prec_chol, (1, 0, 2)).reshape(d, k * d)       # (D, K·D)
        y = (X @ u_cat).reshape(n, k, d)
        y = y - jnp.einsum("kd,kde->ke", means, prec_chol)[None]
        maha = jnp.sum(jnp.square(y), axis=-1)
    elif covariance_type == "tied":
        y = (X @ prec_chol)[:, None, :] - (means @ prec_chol)[None]
        maha = jnp.sum(jnp.square(y), axis=-1)
    elif covariance_type == "diag":
        p2 = jnp.square(prec_chol)                                            # (K, D)
        maha = (jnp.square(X) @ p2.T - 2.0 * (X @ (means * p2).T)
                + jnp.sum(jnp.square(means) * p2, axis=1)[None])
        maha = jnp.maximum(maha, 0.0)
    else:  # spherical
        p2 = jnp.square(prec_chol)                                            # (K,)
        maha = (jnp.sum(jnp.square(X), axis=1)[:, None] - 2.0 * (X @ means.T)
                + jnp.sum(jnp.square(means), axis=1)[None]) * p2[None]
        maha = jnp.maximum(maha, 0.0)
    log_det = log_det_precision_cholesky(prec_chol, covariance_type, d)
    return -0.5 * (d * math.log(2.0 * math.pi) + maha) + log_det


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Free parameters of the mixture (as scikit-learn's ``_n_parameters``)."""
    k, d = n_components, n_features
    cov = {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2,
           "diag": k * d, "spherical": k}[covariance_type]
    return int(cov + k * d + k - 1)


def covariance_shape(n_components: int, n_features: int, covariance_type: str) -> tuple:
    k, d = n_components, n_features
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]


def full_covariances(params: GMMParams) -> jax.Array:
    """Covariances expanded to (K, D, D) whatever the type."""
    k, d = params.means.shape
    c = params.covariances
    t = params.covariance_type
    if t == "full":
        return c
    if t == "tied":
        return jnp.broadcast_to(c, (k, d, d))
    if t == "diag":
        return jax.vmap(jnp.diag)(c)
    return c[:, None, None] * jnp.eye(d, dtype=c.dtype)[None]

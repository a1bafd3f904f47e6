"""`CovarianceFamily`: the interface every covariance family implements."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

__all__ = ["CovarianceFamily", "eye"]


def eye(d, dtype):
    """The D × D identity of ``dtype``, as a constant (a NumPy array): inside a compiled
    program it costs no operations to trace, lower or run, where ``jnp.eye`` costs five."""
    return np.eye(d, dtype=dtype)


class CovarianceFamily:
    """Interface of a covariance family; subclasses fill in the algebra.

    Attributes
    ----------
    name : the ``covariance_type`` string.
    dims : named dims of ``covariances`` (without chain/draw), for InferenceData.
    shared : one covariance for all components (tied).
    matrix : covariances are D × D matrices (full, tied and mclust's decomposed families),
        whose scatter :meth:`moments` accumulates with one matrix product per chunk.
    """

    name: str = ""
    dims: tuple = ()
    shared: bool = False
    matrix: bool = False
    #: Whether NUTS and SVI can sample the family under its prior (every family has MAP-EM);
    #: if not, ``nearest`` names the smallest family containing it that they can sample.
    has_sampler: bool = True
    nearest: str = ""
    #: The only number of features the family applies to (None: any).
    n_features = None

    def __repr__(self):
        return f"<covariance family {self.name!r}>"

    # --- shapes ------------------------------------------------------------------------
    def shape(self, k: int, d: int) -> tuple:
        raise NotImplementedError

    def n_parameters(self, k: int, d: int) -> int:
        """Free parameters of the covariances (scikit-learn's count)."""
        raise NotImplementedError

    def unit(self, k: int, d: int, dtype, xp=jnp):
        """Identity covariances of this family's shape (``xp=numpy``: built on the host)."""
        raise NotImplementedError

    def to_full(self, cov, k: int, d: int, xp=jnp):
        """Covariances expanded to (K, D, D); ``xp=numpy`` keeps float64 without x64."""
        raise NotImplementedError

    def from_full(self, full):
        """The inverse of :meth:`to_full` (its least-squares projection for a full value
        off the family): this family's covariances from (…, K, D, D) matrices."""
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
    def moments(self, X, resp, shift):
        """One chunk's (Σ_n r_nk (x_n − s_k), Σ_n r_nk (x_n − s_k)(x_n − s_k)ᵀ or its
        diagonal): X (B, D), resp (B, K) already weighted, shift s (K, D)."""
        diff = X[:, None, :] - shift[None]                                  # (B, K, D)
        rd = resp[..., None] * diff
        return jnp.sum(rd, axis=0), jnp.sum(rd * diff, axis=0)

    def scatter_from_full(self, scatter):
        """This family's scatter format from full (K, D, D) scatter matrices (the
        expected statistics of rows with missing values)."""
        return jnp.diagonal(scatter, axis1=-2, axis2=-1)

    def centred_scatter(self, scatter, nk, off):
        """Scatter about x̄_k from the scatter about a shift s_k, with off = x̄_k − s_k."""
        return jnp.maximum(scatter - nk[:, None] * jnp.square(off), 0.0)

    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        """Maximum-likelihood covariances; an emptied component keeps ``prev``."""
        raise NotImplementedError

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d, prev=None):
        """The covariance part of the joint posterior mode under the conjugate prior;
        ``prev``: the previous covariances (where an iterative M-step starts)."""
        raise NotImplementedError

    def add_floor(self, cov, eps, floor, d):
        """Add 10·eps of each covariance's own mean variance plus the absolute ``floor``."""
        raise NotImplementedError

    # --- the conjugate prior -----------------------------------------------------------
    def default_scale(self, nu, target, k: int, d: int):
        """Ψ₀ that puts the joint posterior mode (:meth:`map_covariance`) of a covariance
        that sees no data at ``target`` (D, D), projected on this family's shape: Ψ₀ is
        ``target`` times the mode's denominator at zero counts."""
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
        """The prior of the ``covariances`` site: one event of shape ``shape(k, d)``.

        The package's distributions are built with ``validate_args=False``: arguments are
        checked once, at the public edge, and NumPyro's validation could check nothing
        inside a compiled program but would add work to it (an eigendecomposition per
        covariance in every log density, for a positive-definite support)."""
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

    def check_features(self, d: int) -> None:
        """ValueError when the family does not apply to ``d`` features (mclust's E and V
        are one-dimensional)."""

    def underdetermined(self, weights: np.ndarray, n_eff: float, d: int):
        """Components whose covariance the data cannot determine: (indices, rows needed)."""
        need = 2
        return np.flatnonzero((weights > 0) & (weights * n_eff < need)), need



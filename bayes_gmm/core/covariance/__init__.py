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
mclust's names     (K, D, D)           as ``full``
=================  ==================  ==========================================

scikit-learn's four are :data:`COVARIANCE_TYPES`; mclust's eigen-decomposed families
(``decomposed.py``: EII, VII, EEI, VEI, EVI, VVI, EEE, VEE, EVE, VVE, EEV, VEV, EVV,
VVV) are
:data:`MCLUST_TYPES`, and mclust's one-dimensional ``E`` and ``V`` are
:data:`MCLUST_TYPES_1D`. ``spherical``/``diag``/``tied``/``full`` are the same models as
VII/VVI/EEE/VVV with scikit-learn's shapes.

Pure and jittable; nothing inverts or takes a determinant explicitly.
"""

from __future__ import annotations

from .base import CovarianceFamily
from .decomposed import DECOMPOSED
from .diagonal import Diag, Spherical
from .matrix import Full, Tied

__all__ = ["CovarianceFamily", "FAMILIES", "COVARIANCE_TYPES", "MCLUST_TYPES",
           "MCLUST_TYPES_1D", "ALL_COVARIANCE_TYPES", "get_family", "family_from_dims"]


# --- the registry --------------------------------------------------------------------------

FAMILIES: dict = {f.name: f for f in (Full(), Tied(), Diag(), Spherical()) + DECOMPOSED}
#: scikit-learn's four names.
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: mclust's fourteen names for multivariate data.
MCLUST_TYPES = tuple(f.name for f in DECOMPOSED if f.n_features is None)
#: mclust's two names for one-dimensional data (EII and VII there).
MCLUST_TYPES_1D = tuple(f.name for f in DECOMPOSED if f.n_features == 1)
ALL_COVARIANCE_TYPES = COVARIANCE_TYPES + MCLUST_TYPES + MCLUST_TYPES_1D


def get_family(covariance_type) -> CovarianceFamily:
    """The family registered under ``covariance_type`` (ValueError naming the choices)."""
    if isinstance(covariance_type, CovarianceFamily):
        return covariance_type
    family = FAMILIES.get(covariance_type) if isinstance(covariance_type, str) else None
    if family is None:
        raise ValueError(f"covariance_type must be one of {ALL_COVARIANCE_TYPES}; "
                         f"got {covariance_type!r}")
    return family


def family_from_dims(dims: tuple) -> CovarianceFamily:
    """The family whose ``covariances`` carry these named dims (InferenceData)."""
    for family in FAMILIES.values():
        if tuple(dims) == family.dims:
            return family
    raise ValueError(f"no covariance family has covariances with dims {tuple(dims)}")

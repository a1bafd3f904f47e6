"""`GMMParams`: the parameters of a Gaussian mixture, a JAX pytree.

Covariance shapes follow scikit-learn (K components, D features): ``full`` (K, D, D),
``tied`` (D, D), ``diag`` (K, D), ``spherical`` (K,). The covariance type is static
metadata (not a leaf), so a jitted function compiles once per type; its algebra lives in
:mod:`bayes_gmm.core.covariance` (``params.family``).
"""

from __future__ import annotations

import dataclasses

import jax

from .covariance import CovarianceFamily, get_family


@dataclasses.dataclass(frozen=True)
class GMMParams:
    """Parameters of a Gaussian mixture (a JAX pytree).

    Attributes
    ----------
    weights : (K,) mixing weights, summing to one.
    means : (K, D) component means.
    covariances : shape by ``covariance_type`` (see the module docstring).
    covariance_type : static metadata (not a pytree leaf).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> p = GMMParams(jnp.array([0.5, 0.5]), jnp.zeros((2, 3)), jnp.ones((2, 3)), "diag")
    >>> p.n_components, p.n_features, p.family.name
    (2, 3, 'diag')
    """

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array
    covariance_type: str = "full"

    def _replace(self, **kwargs) -> "GMMParams":
        return dataclasses.replace(self, **kwargs)

    @property
    def family(self) -> CovarianceFamily:
        """The covariance family object of ``covariance_type``."""
        return get_family(self.covariance_type)

    @property
    def n_components(self) -> int:
        return self.means.shape[-2]

    @property
    def n_features(self) -> int:
        return self.means.shape[-1]


def _component_axis(params: GMMParams):
    """The axis of ``covariances`` that indexes components (None for a shared one)."""
    fam = params.family
    return None if fam.shared else params.covariances.ndim - len(fam.shape(1, 1))


def first_components(params: GMMParams, k: int) -> GMMParams:
    """The first ``k`` components (leading batch axes kept): a fit padded with zero-weight
    components, without its padding. Indexing only, so NumPy leaves stay NumPy."""
    axis = _component_axis(params)
    cov = params.covariances
    if axis is not None:
        cov = cov[(slice(None),) * axis + (slice(0, k),)]
    return GMMParams(params.weights[..., :k], params.means[..., :k, :], cov,
                     params.covariance_type)


def padded(params: GMMParams, k: int) -> GMMParams:
    """``params`` (no batch axes) with components appended up to ``k``, each of weight
    exactly 0, mean 0 and unit covariance: the same mixture, in a shape shared by every
    K ≤ k (so programs over it compile once). Built on the host: NumPy leaves."""
    import numpy as np

    w, m, cov = jax.device_get((params.weights, params.means, params.covariances))
    k0, d = m.shape
    extra = k - k0
    if extra == 0:
        return params
    fam = params.family
    if not fam.shared:
        unit = fam.unit(1, d, cov.dtype, xp=np)
        cov = np.concatenate([cov, np.repeat(unit, extra, axis=0)])
    return GMMParams(np.concatenate([w, np.zeros(extra, w.dtype)]),
                     np.concatenate([m, np.zeros((extra, d), m.dtype)]), cov,
                     params.covariance_type)


jax.tree_util.register_dataclass(
    GMMParams,
    data_fields=["weights", "means", "covariances"],
    meta_fields=["covariance_type"],
)

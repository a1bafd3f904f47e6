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


jax.tree_util.register_dataclass(
    GMMParams,
    data_fields=["weights", "means", "covariances"],
    meta_fields=["covariance_type"],
)

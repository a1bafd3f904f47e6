r"""Priors on (K, D, D) covariances through a compact parameter θ, for mclust's families.

mclust's families store every covariance as a full (K, D, D) matrix, but several of them
are a few free numbers: EII one variance σ² shared by all components, VII a variance per
component, EEI one diagonal shared, VVI a diagonal per component, EEE one matrix shared.
Their prior is the prior of those numbers θ — the same inverse-gamma / inverse-Wishart as
``spherical``, ``diag`` and ``tied`` (and, for EII and EEI, the shared versions below) —
and a sampler moves in θ's unconstrained space:

* :class:`EmbeddedPrior` is the ``covariances`` site's distribution: ``log_prob`` of a
  (K, D, D) value is the compact prior's log density at θ = ``from_full(value)``, and a
  draw is ``to_full(θ)``.
* its support, :class:`Embedded`, is registered with NumPyro's ``biject_to``: the bijection
  is θ's own (log for variances, the Cholesky map for a matrix) followed by the embedding
  θ ↦ (K, D, D). The Jacobian is θ's alone, so the density NUTS and SVI see is the prior
  of θ with respect to Lebesgue measure on θ: exactly the model of the compact family
  (VII's posterior draws are ``spherical``'s, embedded).

:class:`SharedSpherical` (EII, and E in one dimension) and :class:`SharedDiag` (EEI) are the
compact families with no scikit-learn name: one σ² ~ InverseGamma(ν₀/2, ψ/2), or one
σ²_d ~ InverseGamma(ν₀/2, ψ_d/2) per feature, shared by the components, with the means
μ_k | Σ ~ N(m₀, Σ/κ₀) as everywhere. They are not registered: the registry's EII and EEI
are the (K, D, D) families of :mod:`bayes_gmm.core.covariance.decomposed`, which use them.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform, biject_to

from ..seeding import normal
from .base import CovarianceFamily

__all__ = ["EmbeddedPrior", "Embedded", "SharedSpherical", "SharedDiag"]


def _theta_support(compact, k, d):
    """The constraint of θ: positive-definite for a matrix, positive numbers otherwise."""
    if compact.matrix:
        return constraints.positive_definite
    n = len(compact.shape(k, d))
    return constraints.independent(constraints.positive, n) if n else constraints.positive


class Embedded(constraints.Constraint):
    """(K, D, D) covariances of the form ``compact.to_full(θ)`` with θ valid."""

    event_dim = 3

    def __init__(self, compact, k, d):
        self.compact, self.k, self.d = compact, k, d

    def __call__(self, x):
        theta = self.compact.from_full(x)
        back = self.compact.to_full(theta, self.k, self.d)
        ok = _theta_support(self.compact, self.k, self.d)(theta)
        ok = jnp.all(ok.reshape(ok.shape[:x.ndim - 3] + (-1,)), axis=-1)
        return ok & jnp.all(jnp.isclose(x, back), axis=(-3, -2, -1))

    def feasible_like(self, prototype):
        return jnp.broadcast_to(jnp.eye(self.d, dtype=prototype.dtype), prototype.shape)

    def tree_flatten(self):
        return (), ((), {"compact": self.compact, "k": self.k, "d": self.d})

    def eq(self, other, static=False):
        return (isinstance(other, Embedded) and other.compact is self.compact
                and (other.k, other.d) == (self.k, self.d))


class EmbedTransform(Transform):
    """Unconstrained u ↦ θ (θ's own bijection) ↦ (K, D, D); the Jacobian is θ's."""

    def __init__(self, compact, k, d):
        self.compact, self.k, self.d = compact, k, d
        self.base = biject_to(_theta_support(compact, k, d))

    @property
    def domain(self):
        return self.base.domain

    @property
    def codomain(self):
        return Embedded(self.compact, self.k, self.d)

    def __call__(self, u):
        return self.compact.to_full(self.base(u), self.k, self.d)

    def _inverse(self, y):
        return self.base.inv(self.compact.from_full(y))

    def log_abs_det_jacobian(self, u, y, intermediates=None):
        return self.base.log_abs_det_jacobian(u, self.base(u))

    def forward_shape(self, shape):
        theta = self.base.forward_shape(shape)
        n = len(self.compact.shape(self.k, self.d))
        return theta[:len(theta) - n] + (self.k, self.d, self.d)

    def inverse_shape(self, shape):
        return self.base.inverse_shape(shape[:-3] + self.compact.shape(self.k, self.d))

    def tree_flatten(self):
        return (), ((), {"compact": self.compact, "k": self.k, "d": self.d, "base": self.base})


@biject_to.register(Embedded)
def _embedded_bijection(constraint):
    return EmbedTransform(constraint.compact, constraint.k, constraint.d)


class EmbeddedPrior(dist.Distribution):
    """The prior ``base`` of θ, as a distribution of (K, D, D) covariances."""

    arg_constraints = {}

    def __init__(self, base, compact, k, d, validate_args=None):
        self.base, self.compact, self.k, self.d = base, compact, k, d
        super().__init__(batch_shape=(), event_shape=(k, d, d), validate_args=validate_args)

    @property
    def support(self):
        return Embedded(self.compact, self.k, self.d)

    def sample(self, key, sample_shape=()):
        return self.compact.to_full(self.base.sample(key, sample_shape), self.k, self.d)

    def log_prob(self, value):
        return self.base.log_prob(self.compact.from_full(value))


# --- the two compact families without a scikit-learn name ---------------------------------

class _Shared(CovarianceFamily):
    shared = True

    def scatter_from_full(self, scatter):
        return jnp.diagonal(scatter, axis1=-2, axis2=-1)


class SharedSpherical(_Shared):
    """One variance σ² shared by every component: Σ_k = σ² I (EII; E in one dimension)."""

    name = "EII"

    def shape(self, k, d):
        return ()

    def to_full(self, cov, k, d, xp=jnp):
        return cov[..., None, None, None] * xp.broadcast_to(xp.eye(d, dtype=cov.dtype),
                                                            (k, d, d))

    def from_full(self, full):
        d = full.shape[-1]
        return jnp.mean(jnp.trace(full, axis1=-2, axis2=-1), axis=-1) / d

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d, prev=None):
        B = jnp.sum(S) + jnp.sum(shrink * jnp.sum(jnp.square(dev), axis=1))
        return (psi + B) / (nu + 2.0 + (total + k) * d)

    def default_scale(self, nu, target, k, d):
        return (nu + 2.0 + k * d) * jnp.mean(jnp.diagonal(target))

    def scale_shapes(self, d):
        return ((),)

    def covariance_prior(self, nu, psi, k, d):
        return dist.InverseGamma(0.5 * nu, 0.5 * psi, validate_args=False)

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        z = normal(keys[0], (num_chains,), cov.dtype)
        return cov * jnp.exp(jitter * z * jnp.sqrt(2.0 / ((n + 1.0) * d)))


class SharedDiag(_Shared):
    """One diagonal covariance shared by every component (EEI)."""

    name = "EEI"

    def shape(self, k, d):
        return (d,)

    def to_full(self, cov, k, d, xp=jnp):
        one = cov[..., :, None] * xp.eye(d, dtype=cov.dtype)
        return xp.broadcast_to(one[..., None, :, :], cov.shape[:-1] + (k, d, d))

    def from_full(self, full):
        return jnp.mean(jnp.diagonal(full, axis1=-2, axis2=-1), axis=-2)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d, prev=None):
        B = jnp.sum(S, axis=0) + jnp.sum(shrink[:, None] * jnp.square(dev), axis=0)
        return (psi + B) / (nu + 2.0 + total + k)

    def default_scale(self, nu, target, k, d):
        return (nu + 2.0 + k) * jnp.diagonal(target)

    def scale_shapes(self, d):
        return ((), (d,))

    def broadcast_scale(self, psi, d):
        return jnp.broadcast_to(psi, (d,))

    def covariance_prior(self, nu, psi, k, d):
        return dist.InverseGamma(0.5 * nu, 0.5 * psi, validate_args=False).to_event(1)

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        z = normal(keys[0], (num_chains, d), cov.dtype)
        return cov[None] * jnp.exp(jitter * z * jnp.sqrt(2.0 / (n + 1.0)))

"""The NumPyro model: the same mixture and the same `GMMPrior` as MAP-EM.

Sample sites are named like the `GMMParams` fields — ``weights``, ``means``,
``covariances`` — so an EM solution feeds ``init_to_value`` directly. Their distributions
are :func:`bayes_gmm.core.prior.prior_distributions`, the ones MAP-EM's ``log_prior``
evaluates. Assignments are marginalised with log-sum-exp inside
:class:`GaussianMixtureLikelihood` (the one mixture density,
:func:`bayes_gmm.core.mixture.log_prob`), so NUTS needs no discrete sampling; the observed
site ``obs`` records one log-likelihood per row, which ArviZ turns into the
``log_likelihood`` group for LOO/WAIC. With ``missing="marginalize"`` NaN entries of X are
missing values integrated out of each row's density (:mod:`bayes_gmm.core.missing`), so the
posterior is the one given only what was observed.

The log joint density of this model at θ (constrained values, no Jacobian) equals
N × the MAP-EM objective at θ: one model, one prior.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.distributions import constraints

from .. import _checks as C
from ..core import mixture
from ..core.params import GMMParams
from ..core.em import data_prior_jit
from ..core.covariance import get_family
from ..core.prior import GMMPrior, standard_prior
from ..core.program import builtin_program, is_program

__all__ = ["gmm_model", "GaussianMixtureLikelihood", "OBS_SITE", "SITES", "model_prior"]

OBS_SITE = "obs"
#: The latent sites, named like the GMMParams fields.
SITES = ("weights", "means", "covariances")


class GaussianMixtureLikelihood(dist.Distribution):
    """p(x | θ) = Σ_k π_k N(x | μ_k, Σ_k), with assignments summed out. Event shape (D,)."""

    arg_constraints = {}
    support = constraints.real_vector

    def __init__(self, params: GMMParams, has_missing=False, validate_args=None):
        self.params = params
        self.has_missing = has_missing
        d = params.means.shape[-1]
        super().__init__(batch_shape=(), event_shape=(d,), validate_args=validate_args)

    def log_prob(self, value):
        flat = value.reshape(-1, value.shape[-1])
        return mixture.log_prob(self.params, flat,
                                has_missing=self.has_missing).reshape(value.shape[:-1])

    def sample(self, key, sample_shape=()):
        return mixture.sample(self.params, key, sample_shape)[0]


def model_prior(X, n_components, prior, covariance_type, n_features=None,
                dtype=None, has_missing=False) -> GMMPrior:
    """The resolved prior the model (and EM) use. Without data, defaults are standardised:
    m₀ = 0 and the identity as the covariance target. ``has_missing``: X holds NaN holes
    (the defaults come from the observed entries)."""
    prior = GMMPrior() if prior is None else prior
    if X is not None:
        return data_prior_jit(prior, X, n_components, covariance_type,
                              has_missing=has_missing)
    return standard_prior(prior, n_components, n_features, covariance_type, dtype)


def gmm_model(X=None, n_components=2, *, prior=None, covariance_type="full", n_samples=None,
              subsample_size=None, n_features=None, missing="error"):
    """NumPyro model of a K-component Gaussian mixture under `GMMPrior`.

    Parameters
    ----------
    X : (N, D) observations, or None for prior-predictive draws (then give ``n_samples``
        and ``n_features``; ``None`` prior fields default to m₀ = 0 and unit covariance).
    n_components : K.
    prior : `GMMPrior` (None: ``GMMPrior()`` with data-dependent defaults, as MAP-EM), or a
        prior program ``prior_fn(n_components, n_features)`` that samples its own sites and
        returns a `GMMParams` of ``covariance_type`` (:mod:`bayes_gmm.core.program`; the
        GMMParams fields not sampled as sites of those names become deterministic sites).
    covariance_type : a registered covariance family ("full", "tied", "diag", "spherical").
    n_samples : rows to draw when X is None.
    subsample_size : minibatch size for SVI (the likelihood is rescaled by N / batch).
    n_features : D when X is None.
    missing : "error" (X must be finite) or "marginalize": NaN entries of X are missing
        values, integrated out of each row's likelihood (the observed-data likelihood).

    Sites: ``weights`` (K,), ``means`` (K, D), ``covariances`` (shape by family), observed
    ``obs`` (N, D).

    Examples
    --------
    >>> import jax, bayes_gmm as bg
    >>> from numpyro.infer import Predictive
    >>> draws = Predictive(bg.gmm_model, num_samples=3)(
    ...     jax.random.key(0), None, 2, n_samples=5, n_features=2, covariance_type="diag")
    >>> draws["means"].shape, draws["covariances"].shape, draws["obs"].shape
    ((3, 2, 2), (3, 2, 2), (3, 5, 2))
    """
    k = n_components
    C.check_sampler(covariance_type)
    C.check_choice("missing", missing, C.MISSING)
    has_missing = missing == "marginalize"
    if X is not None:
        if not has_missing and C.has_nan(X):
            C.check_X(X)            # names the first NaN's row and column
        X = jnp.asarray(X)
        n, d = X.shape
        dtype = X.dtype
    else:
        if n_samples is None or n_features is None:
            raise ValueError("gmm_model with X=None needs n_samples and n_features")
        n, d = n_samples, n_features
        dtype = jnp.zeros(()).dtype
    if is_program(prior):
        program = prior
    else:
        program = builtin_program(model_prior(X, k, prior, covariance_type, d, dtype,
                                              has_missing), covariance_type)
    with handlers.trace() as sites:
        params = program(k, d)
    if not isinstance(params, GMMParams):
        raise TypeError(f"the prior program must return a bayes_gmm.GMMParams; got "
                        f"{type(params).__name__}")
    params = params._replace(covariance_type=get_family(covariance_type).name)
    for name in SITES:
        # A program's own parameterisation: the mixture's parameters as deterministic
        # sites (named like the GMMParams fields) beside the program's sites.
        if name not in sites:
            numpyro.deterministic(name, getattr(params, name))
    with numpyro.plate("data", n, subsample_size=subsample_size) as idx:
        obs = None if X is None else (X if subsample_size is None else X[idx])
        numpyro.sample(OBS_SITE, GaussianMixtureLikelihood(params, has_missing), obs=obs)

"""`BayesianGaussianMixture`: the full posterior of a Gaussian mixture, scikit-learn style.

``fit`` runs MAP-EM (a `bayes_gmm.GaussianMixture` under the same prior, kept as
``map_``), then NUTS (:func:`bayes_gmm.fit_nuts`) or SVI (:func:`bayes_gmm.fit_svi`) started
at it; the draws, relabelled against the MAP, are in ``idata_``. Predictions average over
the posterior: ``predict_proba`` is E[p(z = k | x, θ)], ``score_samples`` the posterior
predictive log density log E[p(x | θ)].
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks as C
from ..bayes.diagnostics import (assignment_probabilities, check_diagnostics,
                                 posterior_predictive)
from ..bayes.idata import with_feature_names
from ..bayes.posterior import fit_nuts, fit_svi
from ..core import mixture
from ..core.params import GMMParams
from ..core.program import is_program
from ..imputation import impute
from ._base import MixtureEstimator, check_array
from .gaussian import GaussianMixture

__all__ = ["BayesianGaussianMixture"]

METHODS = ("nuts", "svi")


class BayesianGaussianMixture(MixtureEstimator):
    """Gaussian mixture with a posterior over its parameters (NUTS or SVI from MAP-EM).

    Parameters
    ----------
    n_components : int K.
    covariance_type : "full" | "tied" | "diag" | "spherical".
    prior : `GMMPrior`, or None for ``GMMPrior()`` (weakly informative, from the data), or
        a prior program (:func:`bayes_gmm.fit_nuts`).
    method : "nuts" (Hamiltonian Monte Carlo) or "svi" (variational, AutoMultivariateNormal).
    num_warmup, num_samples, num_chains : NUTS warm-up and kept draws per chain, chains
        (SVI draws ``num_samples`` from its guide).
    num_steps : optimisation steps for SVI.
    random_state : None, int, NumPy Generator/RandomState or JAX key.
    progress_bar : show progress bars while sampling.
    missing : "error" (default) or "marginalize": NaN entries of X are missing values,
        integrated out of the likelihood in the fit (the posterior given what was observed)
        and in ``predict``, ``predict_proba``, ``score_samples`` and
        ``assignment_uncertainty``; :meth:`impute` draws multiple imputations of them.

    Attributes
    ----------
    map_ : the fitted `bayes_gmm.GaussianMixture` (MAP under ``prior``).
    idata_ : arviz.InferenceData (see :func:`bayes_gmm.fit_nuts`).
    weights_ (K,), means_ (K, D), covariances_ : posterior means of the relabelled draws
        (covariance shape by type, as scikit-learn).
    diagnostics_ : dict from :func:`bayes_gmm.check_diagnostics` (NUTS).
    n_features_in_ : int

    Examples
    --------
    Skipped when the docstrings run (NUTS compiles for tens of seconds; the test suite fits
    it in tests/test_estimators.py):

    >>> from bayes_gmm import BayesianGaussianMixture
    >>> from bayes_gmm.datasets import load_old_faithful
    >>> bgm = BayesianGaussianMixture(2, random_state=0, progress_bar=False)  # doctest: +SKIP
    >>> bgm.fit(load_old_faithful()).means_.shape                            # doctest: +SKIP
    (2, 2)
    """

    def __init__(self, n_components=1, *, covariance_type="full", prior=None, method="nuts",
                 num_warmup=500, num_samples=1000, num_chains=4, num_steps=5000,
                 random_state=None, progress_bar=True, missing="error"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.prior = prior
        self.method = method
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.num_steps = num_steps
        self.random_state = random_state
        self.progress_bar = progress_bar
        self.missing = missing

    def __sklearn_is_fitted__(self):
        return hasattr(self, "idata_")

    # -- fitting -----------------------------------------------------------------------

    def fit(self, X, y=None):
        """MAP-EM, then the posterior by NUTS or SVI.

        Parameters
        ----------
        X : (N, D) array-like.
        y : ignored.

        Returns
        -------
        self
        """
        k = C.check_n_components(self.n_components)
        covariance_type = C.check_covariance_type(self.covariance_type)
        C.check_choice("method", self.method, METHODS)
        dtype = C.estimator_dtype(X)
        missing = C.check_choice("missing", self.missing, C.MISSING)
        Xa = check_array(X, dtype, missing=missing)
        n, d = Xa.shape
        C.check_n_components(k, n)
        C.check_sampler(covariance_type)
        prior = C.check_prior(self.prior, k, d, covariance_type)
        key = C.check_random_state(self.random_state)
        k_map, k_fit = jax.random.split(key)
        self.map_ = GaussianMixture(k, covariance_type=covariance_type, prior=prior,
                                    n_init=5, max_iter=500, tol=1e-8, init_params="k-means++",
                                    random_state=k_map, missing=missing).fit(X)
        with C.x64_scope(dtype):
            init = GMMParams(jnp.asarray(self.map_.weights_), jnp.asarray(self.map_.means_),
                             jnp.asarray(self.map_.covariances_), covariance_type)
            if is_program(prior):
                init = "em"            # chains start at the program's own sites' MAP
            if self.method == "nuts":
                self.idata_ = fit_nuts(Xa, k, key=k_fit, prior=prior,
                                       covariance_type=covariance_type,
                                       num_warmup=self.num_warmup,
                                       num_samples=self.num_samples,
                                       num_chains=self.num_chains, init=init,
                                       progress_bar=self.progress_bar, dtype=dtype,
                                       missing=missing)
            else:
                self.idata_ = fit_svi(Xa, k, key=k_fit, prior=prior,
                                      covariance_type=covariance_type,
                                      num_steps=self.num_steps,
                                      num_samples=self.num_samples, init=init,
                                      progress_bar=self.progress_bar, dtype=dtype,
                                      missing=missing)
        if self.method == "nuts":
            # fit_nuts has already warned about what failed
            self.diagnostics_ = check_diagnostics(self.idata_, warn=False)
        post = self.idata_.posterior
        self.weights_ = np.asarray(post["weights"].mean(("chain", "draw")).values, dtype)
        self.means_ = np.asarray(post["means"].mean(("chain", "draw")).values, dtype)
        self.covariances_ = np.asarray(post["covariances"].mean(("chain", "draw")).values,
                                       dtype)
        self.n_features_in_ = d
        if hasattr(self.map_, "feature_names_in_"):
            self.feature_names_in_ = self.map_.feature_names_in_
            with_feature_names(self.idata_, self.feature_names_in_)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._covariance_type_fit = covariance_type
        return self

    def fit_predict(self, X, y=None):
        """Fit, then the most probable component of each row (posterior-averaged)."""
        return self.fit(X).predict(X)

    # -- prediction --------------------------------------------------------------------

    def predict_proba(self, X):
        """Posterior-averaged responsibilities E_θ[p(z = k | x, θ)]: (N, D) -> (N, K)."""
        Xa = self._validate_X(X, self.missing)   # NotFittedError before fit
        return posterior_predictive(self.idata_, Xa, self.missing)[1]

    def predict(self, X):
        """Most probable component under the posterior-averaged responsibilities: (N,)."""
        return np.argmax(self.predict_proba(X), axis=1)

    def score_samples(self, X):
        """Posterior predictive log density log (1/S) Σ_s p(x | θ_s): (N, D) -> (N,)."""
        Xa = self._validate_X(X, self.missing)
        return posterior_predictive(self.idata_, Xa, self.missing)[0]

    def score(self, X, y=None):
        """Mean posterior predictive log density per row (float)."""
        return float(np.mean(self.score_samples(X)))

    def assignment_uncertainty(self, X):
        """Per-row membership mean, 94% interval, entropy and cluster (xarray.Dataset);
        see :func:`bayes_gmm.assignment_probabilities`."""
        Xa = self._validate_X(X, self.missing)
        return assignment_probabilities(self.idata_, Xa, missing=self.missing)

    def impute(self, X, num_draws=100):
        """Multiple imputations of the NaN entries of X from the posterior predictive:
        imputation s draws each hole from p(x_m | x_o, θ_s), θ_s a random posterior draw
        (:func:`bayes_gmm.impute`), seeded from ``random_state``.

        Returns
        -------
        xarray.DataArray ``imputed`` with dims (draw, obs_id, feature), observed entries
        unchanged.
        """
        Xa = self._validate_X(X, "marginalize")
        key = jax.random.fold_in(C.check_random_state(self.random_state), 3)
        return impute(self.idata_, Xa, key=key, num_draws=num_draws)

    def sample(self, n_samples=1):
        """Draw from the posterior predictive: each row from a random posterior draw.

        Returns
        -------
        X : (n_samples, D) in the fitted dtype; y : (n_samples,) int component labels
        (relabelled, so they refer to the components of ``means_``).
        """
        self._check_is_fitted()
        if (isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral)
                or n_samples < 1):
            raise ValueError(f"n_samples must be an int >= 1; got {n_samples!r}")
        post = self.idata_.posterior
        t = self._covariance_type_fit
        flat = [np.asarray(post[v].values) for v in ("weights", "means", "covariances")]
        flat = [a.reshape((-1,) + a.shape[2:]) for a in flat]
        key = jax.random.fold_in(C.check_random_state(self.random_state), 2)
        with C.x64_scope(self.means_.dtype):
            Xs, ys = _sample_predictive(key, *(jnp.asarray(a) for a in flat), t, int(n_samples))
            Xs, ys = jax.device_get((Xs, ys))
        return np.asarray(Xs, self.means_.dtype), np.asarray(ys, np.int64)


def _sample_predictive(key, weights, means, covariances, covariance_type, n):
    """One row from each of n random posterior draws (S, ...): (X (n, D), labels (n,))."""
    k0, k1 = jax.random.split(key)
    idx = jax.random.randint(k0, (n,), 0, weights.shape[0])
    keys = jax.random.split(k1, n)
    X, labels = jax.vmap(lambda kk, w, m, c: mixture.sample(GMMParams(w, m, c, covariance_type),
                                                           kk))(
        keys, weights[idx], means[idx], covariances[idx])
    return X, labels

"""`GaussianMixture`: a drop-in for :class:`sklearn.mixture.GaussianMixture` over the
compiled EM.

The same constructor parameters and defaults (plus ``prior`` for MAP and ``batch_size`` to
bound memory), the same fitted attributes with the same shapes and meanings, the same
methods. The fit is one call to the one EM driver (:func:`bayes_gmm.core.em.fit`), after
the same checks and with the same warnings as :func:`bayes_gmm.fit_em`.

dtype follows the input as in scikit-learn: float32 input is fitted in float32; float64
(and integer) input is fitted in float64 inside a scoped ``jax.enable_x64(True)``, so the
user never flips JAX's global flag. Fitted attributes are NumPy arrays.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks as C
from .. import densities
from ..imputation import impute
from ..core import em
from ..core.covariance import get_family
from ..core.params import GMMParams, first_components
from ..core.prior import GMMPrior
from ..core.program import is_program
from ..core.seeding import as_key
from ..fit import fit_program
from ..core.rows import bucket_components, default_batch_size, pad_rows
from ._base import MixtureEstimator, check_array, exception_classes

__all__ = ["GaussianMixture"]

logger = logging.getLogger(__name__)

INIT_NAMES = {"kmeans": "kmeans", "k-means++": "k-means++", "random": "random",
               "random_from_data": "random_from_data"}


@partial(jax.jit, static_argnames=("k", "covariance_type", "max_iter", "n_init", "init",
                                   "batch_size", "has_missing"))
def _em_program(X, seed, prior, sample_weight, init_params, tol, reg_covar, start, n_active,
                *, k, covariance_type, max_iter, n_init, init, batch_size, has_missing):
    """The estimator's fit as one compiled program: the key from ``random_state``'s seed,
    the EM (:func:`bayes_gmm.core.em.fit`; ``n_active`` of ``k`` components, or all) and
    the precisions the fitted attributes hold."""
    res = em.fit(X, jax.random.fold_in(as_key(seed), 0), prior, sample_weight, init_params,
                 tol, reg_covar, start, n_active, k=k, covariance_type=covariance_type,
                 max_iter=max_iter, n_init=n_init, init=init, batch_size=batch_size,
                 has_missing=has_missing)
    return res, _precisions(res.params)


def _precisions(params):
    fam = params.family
    return fam.precision_cholesky(params.covariances), fam.precisions(params.covariances)


def _first_components(res, precisions, k):
    """A fit padded with weight-0 components, and its precisions, without the padding (on
    the host: a device slice would compile a program per K)."""
    res, precisions = jax.device_get((res, precisions))
    params = first_components(res.params, k)
    return res._replace(params=params), tuple(
        first_components(res.params._replace(covariances=a), k).covariances
        for a in precisions)


_precisions_jit = jax.jit(_precisions)


def _check_weights_init(weights, k, dtype):
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (k,):
        raise ValueError(f"weights_init must have shape ({k},) (n_components,); got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights_init must be finite and non-negative; got {w}")
    if not np.isclose(w.sum(), 1.0, rtol=0.0, atol=C.WEIGHTS_SUM_ATOL):
        raise ValueError(f"weights_init must sum to 1 (within {C.WEIGHTS_SUM_ATOL}); got sum "
                         f"{w.sum():.8f}. "
                         "Normalise it with w / w.sum().")
    return w.astype(dtype)


def _check_means_init(means, k, d, dtype):
    m = np.asarray(means, dtype=np.float64)
    if m.shape != (k, d):
        raise ValueError(f"means_init must have shape ({k}, {d}) (n_components, n_features); "
                         f"got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("means_init must be finite; it contains NaN or infinity")
    return m.astype(dtype)


def _check_precisions_init(prec, k, d, covariance_type, dtype):
    fam = get_family(covariance_type)
    p = np.asarray(prec, dtype=np.float64)
    shape = fam.shape(k, d)
    if p.shape != shape:
        raise ValueError(f"precisions_init must have shape {shape} for covariance_type="
                         f"{covariance_type!r}; got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("precisions_init must be finite; it contains NaN or infinity")
    fam.check_covariances(p, "precisions_init")
    return p.astype(dtype)



class GaussianMixture(MixtureEstimator):
    """Gaussian mixture fitted by compiled EM; a drop-in for scikit-learn's.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components K.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Shapes of ``covariances_``: (K, D, D), (D, D), (K, D), (K,).
    tol : float, default 1e-3
        EM stops when the mean log-likelihood (per sample) changes by less than ``tol``;
        ``tol=0`` runs all ``max_iter`` iterations.
    reg_covar : float, default 1e-6
        Added to the covariance diagonals (maximum likelihood only).
    max_iter : int, default 100
        EM iterations; 0 initialises only.
    n_init : int, default 1
        Restarts (run as one ``vmap``); the best final objective wins.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default "kmeans"
        Initialisation of the parameters not given by ``*_init``.
    weights_init : (K,) array or None
        Initial weights (non-negative, summing to one).
    means_init : (K, D) array or None
        Initial means.
    precisions_init : array or None
        Initial precisions (inverse covariances), shaped like ``covariances_``.
    prior : bayes_gmm.GMMPrior, a prior program, or None
        MAP-EM under this conjugate prior, or under a prior program (a generalised EM,
        :func:`bayes_gmm.fit_em`); None for maximum likelihood.
    random_state : None, int, numpy Generator/RandomState or JAX key
        Seeds the initialisation and :meth:`sample`; an int gives reproducible fits.
    batch_size : int or None
        Rows per chunk in the E-step and sufficient statistics (bounds memory).
    warm_start : bool, default False
        Start the next ``fit`` from the current parameters (one initialisation).
    verbose : int, default 0
        > 0 logs a summary of each fit at INFO level (no printing).
    verbose_interval : int, default 10
        Accepted for scikit-learn compatibility.
    missing : "error" (default) or "marginalize"
        "marginalize": NaN entries of X are missing values, integrated out exactly in the
        fit (observed-data EM) and in ``predict``, ``predict_proba`` and
        ``score_samples``; :meth:`impute` fills them with their conditional means.

    Attributes
    ----------
    weights_ : (K,)
    means_ : (K, D)
    covariances_ : shape by ``covariance_type``
    precisions_, precisions_cholesky_ : shaped like ``covariances_`` (scikit-learn layout)
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Objective (mean log-likelihood, + log prior / N under MAP) at the E-step of the last
        iteration, as in scikit-learn; after ``max_iter=0``, the objective at the initial
        parameters.
    lower_bounds_ : list of float
        The objective at each iteration.
    n_features_in_ : int
    feature_names_in_ : (D,) object array, only when fitted on a DataFrame with string columns.

    Examples
    --------
    >>> from bayes_gmm import GaussianMixture
    >>> from bayes_gmm.datasets import load_old_faithful
    >>> gm = GaussianMixture(2, random_state=0).fit(load_old_faithful())
    >>> gm.means_.shape
    (2, 2)
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, prior=None, random_state=None,
                 batch_size=None, warm_start=False, verbose=0, verbose_interval=10,
                 missing="error"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.prior = prior
        self.random_state = random_state
        self.batch_size = batch_size
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.missing = missing

    # -- scikit-learn protocol -------------------------------------------------------

    def __sklearn_is_fitted__(self):
        return hasattr(self, "weights_")

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags
        return Tags(estimator_type="density_estimator",
                    target_tags=TargetTags(required=False),
                    input_tags=InputTags(two_d_array=True, sparse=False,
                                         allow_nan=self.missing == "marginalize"),
                    non_deterministic=False, requires_fit=True)

    # -- fitting -----------------------------------------------------------------------

    def _check_hyperparameters(self):
        k = C.check_n_components(self.n_components)
        covariance_type = C.check_covariance_type(self.covariance_type)
        tol = C.check_nonneg_float("tol", self.tol)
        reg_covar = C.check_nonneg_float("reg_covar", self.reg_covar)
        max_iter = C.check_int("max_iter", self.max_iter, 0)
        n_init = C.check_int("n_init", self.n_init, 1)
        if self.init_params not in INIT_NAMES:
            raise ValueError(f"init_params must be one of {tuple(INIT_NAMES)}; got "
                             f"{self.init_params!r}")
        batch_size = C.check_batch_size(self.batch_size)
        if self.prior is not None and not (isinstance(self.prior, GMMPrior)
                                           or is_program(self.prior)):
            raise TypeError(f"prior must be a bayes_gmm.GMMPrior, a prior program or None; "
                            f"got {type(self.prior).__name__}")
        C.check_int("verbose", int(self.verbose), 0)
        return k, covariance_type, tol, reg_covar, max_iter, n_init, batch_size

    def _initial_params(self, k, d, covariance_type, dtype):
        """Explicit initial values (any subset), as covariances; None where not given."""
        warm = self.warm_start and self.__sklearn_is_fitted__()
        if warm:
            if self.means_.shape != (k, d) or self._covariance_type_fit != covariance_type:
                raise ValueError("warm_start needs the same n_components, n_features and "
                                 "covariance_type as the previous fit")
            return GMMParams(jnp.asarray(self.weights_, dtype), jnp.asarray(self.means_, dtype),
                             jnp.asarray(self.covariances_, dtype), covariance_type)
        w = m = c = None
        if self.weights_init is not None:
            w = jnp.asarray(_check_weights_init(self.weights_init, k, dtype))
        if self.means_init is not None:
            m = jnp.asarray(_check_means_init(self.means_init, k, d, dtype))
        if self.precisions_init is not None:
            p = jnp.asarray(_check_precisions_init(self.precisions_init, k, d,
                                                   covariance_type, dtype))
            fam = get_family(covariance_type)
            c = fam.covariances_from_precision_cholesky(
                fam.precision_cholesky_from_precisions(p))
        if w is None and m is None and c is None:
            return None
        return GMMParams(w, m, c, covariance_type)

    def _fit(self, X, sample_weight):
        k, covariance_type, tol, reg_covar, max_iter, n_init, batch_size = \
            self._check_hyperparameters()
        dtype = C.estimator_dtype(X)
        names = C.feature_names(X)
        Xa = check_array(X, dtype, missing=C.check_choice("missing", self.missing, C.MISSING))
        n, d = Xa.shape
        C.check_n_components(k, n)
        if self.prior is not None:
            C.check_prior(self.prior, k, d, covariance_type)
        sw = C.check_sample_weight(sample_weight, n, dtype)
        seed = C.check_random_seed(self.random_state)
        if is_program(self.prior):
            return self._fit_program(Xa, sw, as_key(seed), k, covariance_type, tol, reg_covar,
                                     max_iter, n_init, batch_size, dtype, names)
        with C.x64_scope(dtype):
            init = self._initial_params(k, d, covariance_type, dtype)
            start = None
            if self.warm_start and self.__sklearn_is_fitted__():
                # As scikit-learn, a warm start carries the previous lower bound over, so
                # convergence is judged against it (max_iter=1 fits converge in turn).
                n_init, start = 1, self.lower_bound_
            prior = None if self.prior is None else C.prior_arrays(self.prior, dtype)
            # Rows padded to their bucket (weight 0), as fit_em: a new N in the same
            # bucket reuses the compiled program.
            Xp, swp = pad_rows(Xa, sw)
            # Components padded (weight 0) to a power of two where the initialisation is
            # estimated under maximum likelihood: a loop over K compiles a few programs.
            bucketed = (bucket_components(k, n) if init is None and prior is None
                        and start is None else None)
            k_run = k if bucketed is None else bucketed
            if batch_size is None:      # cache-sized row chunks, as fit_em (same results)
                batch_size = default_batch_size(Xp.shape[0], k_run, d)
            res, precisions = _em_program(
                Xp, seed, prior, swp,                     # host arrays: no staging program
                init, tol, reg_covar, start, None if bucketed is None else np.int32(k),
                k=k_run, covariance_type=covariance_type, max_iter=max_iter,
                n_init=n_init, init=INIT_NAMES[self.init_params], batch_size=batch_size,
                has_missing=C.has_nan(Xa))
            if k_run != k:
                res, precisions = _first_components(res, precisions, k)
            if self.prior is None:
                # The same warning, from the same check, as fit_em on the same input; with
                # reg_covar = 0 a singular component is an error, as in scikit-learn.
                C.check_fit_degeneracy(jax.device_get(res.params), Xa, sw, reg_covar,
                                       type(self).__name__, raise_singular=True)
            self._store(res, dtype, names, precisions)
        if self.verbose:
            logger.info("GaussianMixture: %d iteration(s), converged=%s, lower bound %.6g",
                        self.n_iter_, self.converged_, self.lower_bound_)
        if max_iter > 0 and not self.converged_:
            warnings.warn("Best performing initialization did not converge. Try different "
                          "init parameters, or increase max_iter, tol, or check for "
                          "degenerate data.", exception_classes()[1], stacklevel=3)
        return Xa

    def _fit_program(self, Xa, sw, key, k, covariance_type, tol, reg_covar, max_iter, n_init,
                     batch_size, dtype, names):
        """MAP under a prior program (:func:`bayes_gmm.fit.fit_program`)."""
        if any(v is not None for v in (self.weights_init, self.means_init,
                                       self.precisions_init)) or self.warm_start:
            raise ValueError("weights_init, means_init, precisions_init and warm_start do "
                             "not apply to a prior program (its MAP starts from the "
                             "maximum-likelihood fit)")
        with C.x64_scope(dtype):
            res = fit_program(Xa, k, jax.random.fold_in(key, 0), covariance_type, self.prior,
                              max_iter=max_iter, tol=tol, n_init=n_init,
                              init=INIT_NAMES[self.init_params], reg_covar=reg_covar,
                              sample_weight=sw, batch_size=batch_size, dtype=dtype)
            self._store(res, dtype, names)
        return Xa

    def _store(self, res, dtype, names, precisions=None):
        """Set the fitted attributes from an `EMResult` and its (precision Cholesky factors,
        precisions), computed here if not given (call inside the dtype's scope)."""
        p = res.params
        u, prec = _precisions_jit(p) if precisions is None else precisions
        weights, means, cov, u, prec, trace, objective, n_iter, converged = jax.device_get(
            (p.weights, p.means, p.covariances, u, prec, res.trace, res.objective, res.n_iter,
             res.converged))
        self.weights_ = np.asarray(weights, dtype)
        self.means_ = np.asarray(means, dtype)
        self.covariances_ = np.asarray(cov, dtype)
        self.precisions_cholesky_ = np.asarray(u, dtype)
        self.precisions_ = np.asarray(prec, dtype)
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        self.lower_bounds_ = [float(v) for v in np.asarray(trace)[:self.n_iter_]]
        self.lower_bound_ = (self.lower_bounds_[-1] if self.lower_bounds_
                             else float(objective))
        self.n_features_in_ = self.means_.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._covariance_type_fit = p.covariance_type

    def fit(self, X, y=None, sample_weight=None):
        """Fit by EM.

        Parameters
        ----------
        X : (N, D) array-like.
        y : ignored.
        sample_weight : (N,) non-negative row weights, or None.

        Returns
        -------
        self
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most probable component of each row: (N,) int."""
        Xa = self._fit(X, sample_weight)
        return self._predict_array(Xa)

    # -- prediction --------------------------------------------------------------------

    def _params(self):
        """The fitted parameters as a GMMParams (call inside the dtype's x64 scope)."""
        # Host arrays: the compiled densities take them as they are (jnp.asarray would
        # compile a staging program per shape).
        return GMMParams(self.weights_, self.means_, self.covariances_,
                         self._covariance_type_fit)

    def _predict_array(self, Xa):
        with C.x64_scope(self.means_.dtype):
            return np.asarray(densities.predict(self._params(), Xa,
                                                batch_size=C.check_batch_size(self.batch_size),
                                                missing=self.missing))

    def predict(self, X):
        """Most probable component of each row. X: (N, D) -> (N,) int."""
        return self._predict_array(self._validate_X(X, self.missing))

    def predict_proba(self, X):
        """Responsibilities p(z = k | x). X: (N, D) -> (N, K), rows sum to one."""
        Xa = self._validate_X(X, self.missing)
        with C.x64_scope(self.means_.dtype):
            return np.asarray(densities.responsibilities(
                self._params(), Xa, batch_size=C.check_batch_size(self.batch_size),
                missing=self.missing))

    def score_samples(self, X):
        """log p(x) of each row (of its observed entries, with ``missing="marginalize"``).
        X: (N, D) -> (N,)."""
        Xa = self._validate_X(X, self.missing)
        with C.x64_scope(self.means_.dtype):
            return np.asarray(densities.log_prob(
                self._params(), Xa, batch_size=C.check_batch_size(self.batch_size),
                missing=self.missing))

    def impute(self, X, num_draws=None):
        """Fill the NaN entries of X under the fitted mixture (:func:`bayes_gmm.impute`).

        ``num_draws`` None: each hole's conditional mean given the row's observed entries,
        (N, D). An int: that many random imputations from p(x_m | x_o, θ̂), seeded from
        ``random_state``, as an ``xarray.DataArray`` (draw, obs_id, feature).
        """
        Xa = self._validate_X(X, "marginalize")
        with C.x64_scope(self.means_.dtype):
            if num_draws is None:
                return np.asarray(impute(self._params(), Xa))
            key = jax.random.fold_in(C.check_random_state(self.random_state), 3)
            return impute(self._params(), Xa, key=key, num_draws=num_draws)

    def score(self, X, y=None):
        """Mean log-likelihood per row (float)."""
        return float(np.mean(self.score_samples(X)))

    def bic(self, X):
        """Bayesian information criterion on X (lower is better): −2 log L + p log N."""
        Xa = self._validate_X(X, self.missing)
        with C.x64_scope(self.means_.dtype):
            return float(densities.bic(self._params(), Xa, missing=self.missing))

    def aic(self, X):
        """Akaike information criterion on X (lower is better): −2 log L + 2p."""
        Xa = self._validate_X(X, self.missing)
        with C.x64_scope(self.means_.dtype):
            return float(densities.aic(self._params(), Xa, missing=self.missing))

    def icl(self, X):
        """Integrated completed likelihood on X (lower is better): BIC plus twice the
        entropy of the hard classification (:func:`bayes_gmm.icl`)."""
        Xa = self._validate_X(X, self.missing)
        with C.x64_scope(self.means_.dtype):
            return float(densities.icl(self._params(), Xa, missing=self.missing))

    def sample(self, n_samples=1):
        """Draw from the fitted mixture.

        Parameters
        ----------
        n_samples : int >= 1

        Returns
        -------
        X : (n_samples, D) array in the fitted dtype.
        y : (n_samples,) int component labels.
        """
        self._check_is_fitted()
        if (isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral)
                or n_samples < 1):
            raise ValueError(f"n_samples must be an int >= 1 (sampling needs at least one "
                             f"sample); got {n_samples!r}")
        # As scikit-learn, the draw is seeded from random_state afresh at every call.
        key = jax.random.fold_in(C.check_random_state(self.random_state), 1)
        with C.x64_scope(self.means_.dtype):
            Xs, ys = densities.sample(self._params(), key, int(n_samples))
            Xs, ys = jax.device_get((Xs, ys))
        return np.asarray(Xs, self.means_.dtype), np.asarray(ys, np.int64)



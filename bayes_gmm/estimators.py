"""scikit-learn-style estimators over the functional core.

`GaussianMixture` is a drop-in for :class:`sklearn.mixture.GaussianMixture`: the same
constructor parameters and defaults (plus ``prior`` for MAP and ``batch_size`` to bound
memory), the same fitted attributes with the same shapes and meanings, the same methods.
The fit itself is one call to the compiled EM of :mod:`bayes_gmm.em`.

scikit-learn is optional. When it is installed, `NotFittedError` subclasses scikit-learn's,
`ConvergenceWarning` *is* scikit-learn's, and ``__sklearn_tags__`` returns scikit-learn's
`Tags`; these are resolved lazily, so importing :mod:`bayes_gmm` never imports scikit-learn.

dtype follows the input as in scikit-learn: float32 input is fitted in float32; float64
(and integer) input is fitted in float64 inside a scoped ``jax.enable_x64(True)``, so the
user never flips JAX's global flag. Fitted attributes are NumPy arrays.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import logging
import numbers
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as V
from . import densities
from .em import _fit_em_jit, _prior_arrays, _weighted_log_prob, default_batch_size, map_rows
from .params import (GMMParams, covariance_shape, covariances_from_precision_cholesky,
                     precision_cholesky, precision_cholesky_from_precisions, precisions)
from .priors import GMMPrior, check_prior

__all__ = ["GaussianMixture", "NotFittedError", "ConvergenceWarning"]

logger = logging.getLogger(__name__)


# --- exceptions: scikit-learn's when it is installed, resolved on first use ------------

@functools.lru_cache(maxsize=None)
def _exception_classes():
    if importlib.util.find_spec("sklearn") is not None:
        try:
            from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
            from sklearn.exceptions import NotFittedError as SkNotFittedError
        except ImportError:  # a broken install behaves as no install
            SkNotFittedError = SkConvergenceWarning = None
    else:
        SkNotFittedError = SkConvergenceWarning = None

    if SkNotFittedError is not None:
        # scikit-learn's NotFittedError already subclasses (ValueError, AttributeError).
        class NotFittedError(SkNotFittedError):
            """Raised when a method needs a fitted estimator; subclasses scikit-learn's."""
        convergence = SkConvergenceWarning
    else:
        class NotFittedError(ValueError, AttributeError):
            """Raised when a method needs a fitted estimator."""

        class ConvergenceWarning(UserWarning):
            """EM stopped at ``max_iter`` before the objective settled within ``tol``."""
        convergence = ConvergenceWarning
    NotFittedError.__module__ = __name__
    return NotFittedError, convergence


def __getattr__(name):
    if name == "NotFittedError":
        return _exception_classes()[0]
    if name == "ConvergenceWarning":
        return _exception_classes()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- input helpers ----------------------------------------------------------------------

_INIT_NAMES = {"kmeans": "kmeans", "k-means++": "k-means++", "random": "random",
               "random_from_data": "random_from_data"}


def _x64_scope(dtype):
    """float64 computations run with x64 switched on for their duration only."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


def _input_dtype(X):
    """float32 stays float32; everything else is fitted in float64 (as scikit-learn)."""
    dt = getattr(X, "dtype", None)
    if dt is None and hasattr(X, "dtypes"):  # pandas DataFrame
        try:
            dt = np.result_type(*[np.dtype(d) for d in X.dtypes])
        except TypeError:
            dt = None
    try:
        return np.float32 if dt is not None and np.dtype(dt) == np.float32 else np.float64
    except TypeError:
        return np.float64


def _feature_names(X):
    """Column names when X is a DataFrame whose column names are all strings, else None."""
    cols = getattr(X, "columns", None)
    if cols is None or not hasattr(X, "iloc"):
        return None
    names = np.asarray(cols, dtype=object)
    if len(names) == 0 or not all(isinstance(c, str) for c in names):
        return None
    return names


def _check_array(X, dtype, name="X"):
    """Array checks with scikit-learn's wording where its test-suite matches messages."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix ({type(X).__name__}); sparse input is not "
                        "supported: pass a dense array (X.toarray()).")
    if hasattr(X, "dtypes") and hasattr(X, "to_numpy"):  # pandas DataFrame
        X = X.to_numpy()
    arr = X
    if not isinstance(X, (str, bytes)) and X is not None and not V.is_traced(X):
        try:
            arr = np.asarray(X)
        except ValueError:  # ragged nested lists: check_X words the error
            arr = X
    if isinstance(arr, np.ndarray) and np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"Complex data not supported; {name} has dtype {arr.dtype}.")
    if isinstance(arr, np.ndarray) and arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must contain numbers; {e}") from None
    if isinstance(arr, np.ndarray) and arr.ndim == 1:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got 1-D shape "
                         f"{arr.shape}. Reshape your data with X.reshape(-1, 1) if it has a "
                         "single feature or X.reshape(1, -1) if it is a single sample.")
    if isinstance(arr, np.ndarray) and arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is "
                         "required.")
    return V.check_X(arr, name=name, dtype=dtype)


def _check_random_state(random_state):
    """None, int, NumPy Generator/RandomState or a JAX key -> a JAX key."""
    if random_state is None:
        seed = int(np.random.default_rng().integers(0, 2**32 - 1))
    elif isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(
            random_state, bool):
        seed = int(random_state)
        if not 0 <= seed < 2**32:
            raise ValueError(f"random_state must be in [0, 2**32 - 1]; got {seed}")
    elif isinstance(random_state, np.random.Generator):
        seed = int(random_state.integers(0, 2**32 - 1))
    elif isinstance(random_state, np.random.RandomState):
        seed = int(random_state.randint(np.iinfo(np.int32).max))
    elif isinstance(random_state, jax.Array) and jax.dtypes.issubdtype(
            random_state.dtype, jax.dtypes.prng_key):
        return random_state
    elif (isinstance(random_state, (jax.Array, np.ndarray)) and random_state.shape == (2,)
          and random_state.dtype == np.uint32):
        return jax.random.wrap_key_data(jnp.asarray(random_state))
    else:
        raise TypeError("random_state must be None, an int, a numpy Generator/RandomState or a "
                        f"JAX key; got {type(random_state).__name__}")
    return jax.random.key(np.uint32(seed))


def _check_weights_init(weights, k, dtype):
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (k,):
        raise ValueError(f"weights_init must have shape ({k},) (n_components,); got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights_init must be finite and non-negative; got {w}")
    if not np.isclose(w.sum(), 1.0, rtol=0.0, atol=1e-6):
        raise ValueError(f"weights_init must sum to 1 (within 1e-6); got sum {w.sum():.8f}. "
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
    p = np.asarray(prec, dtype=np.float64)
    shape = covariance_shape(k, d, covariance_type)
    if p.shape != shape:
        raise ValueError(f"precisions_init must have shape {shape} for covariance_type="
                         f"{covariance_type!r}; got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("precisions_init must be finite; it contains NaN or infinity")
    if covariance_type in ("full", "tied"):
        mats = p.reshape(-1, d, d)
        for i, a in enumerate(mats):
            where = f"precisions_init[{i}]" if covariance_type == "full" else "precisions_init"
            if not np.allclose(a, a.T, rtol=1e-7, atol=1e-10 * np.abs(a).max()):
                raise ValueError(f"{where} must be symmetric; max |P - P.T| = "
                                 f"{np.abs(a - a.T).max():.3g}")
            try:
                np.linalg.cholesky(a)
            except np.linalg.LinAlgError:
                raise ValueError(f"{where} must be positive definite") from None
    elif np.any(p <= 0):
        raise ValueError(f"precisions_init must be positive for covariance_type="
                         f"{covariance_type!r}; got min {p.min()}")
    return p.astype(dtype)


@partial(jax.jit, static_argnames=("batch_size",))
def _predict_jit(params, X, batch_size=None):
    # argmax of the weighted log densities, chunk by chunk (labels < 2**24 are exact floats)
    def labels(xc):
        return jnp.argmax(_weighted_log_prob(params, xc), axis=1).astype(xc.dtype)
    return map_rows(labels, X, batch_size).astype(jnp.int32)


# --- the estimator ----------------------------------------------------------------------

class GaussianMixture:
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
    prior : bayes_gmm.GMMPrior or None
        MAP-EM under this conjugate prior; None for maximum likelihood.
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
                 batch_size=None, warm_start=False, verbose=0, verbose_interval=10):
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

    # -- scikit-learn protocol -------------------------------------------------------

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        """Constructor parameters as a dict (``deep`` is accepted for compatibility)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor parameters; returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator "
                                 f"{type(self).__name__}. Valid parameters are: {valid!r}.")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()
                    if p.name != "self"}
        changed = []
        for name in defaults:
            value = getattr(self, name, None)
            default = defaults[name]
            same = value is default
            if not same and not isinstance(value, (np.ndarray, jax.Array)):
                try:
                    same = bool(value == default) and type(value) is type(default)
                except Exception:  # objects whose == is not a bool
                    same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_is_fitted__(self):
        return hasattr(self, "weights_")

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags
        return Tags(estimator_type="density_estimator",
                    target_tags=TargetTags(required=False),
                    input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False),
                    non_deterministic=False, requires_fit=True)

    # -- fitting -----------------------------------------------------------------------

    def _check_hyperparameters(self):
        k = V.check_n_components(self.n_components)
        covariance_type = V.check_covariance_type(self.covariance_type)
        tol = V.check_nonneg_float("tol", self.tol)
        reg_covar = V.check_nonneg_float("reg_covar", self.reg_covar)
        max_iter = V.check_int("max_iter", self.max_iter, 0)
        n_init = V.check_int("n_init", self.n_init, 1)
        if self.init_params not in _INIT_NAMES:
            raise ValueError(f"init_params must be one of {tuple(_INIT_NAMES)}; got "
                             f"{self.init_params!r}")
        batch_size = V.check_batch_size(self.batch_size)
        if self.prior is not None and not isinstance(self.prior, GMMPrior):
            raise TypeError(f"prior must be a bayes_gmm.GMMPrior or None; got "
                            f"{type(self.prior).__name__}")
        V.check_int("verbose", int(self.verbose), 0)
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
            u = precision_cholesky_from_precisions(p, covariance_type)
            c = covariances_from_precision_cholesky(u, covariance_type)
        if w is None and m is None and c is None:
            return None
        return GMMParams(w, m, c, covariance_type)

    def _fit(self, X, sample_weight):
        k, covariance_type, tol, reg_covar, max_iter, n_init, batch_size = \
            self._check_hyperparameters()
        dtype = _input_dtype(X)
        names = _feature_names(X)
        Xa = _check_array(X, dtype)
        n, d = Xa.shape
        V.check_n_components(k, n)
        if self.prior is not None:
            check_prior(self.prior, k, d, covariance_type)
        sw = V.check_sample_weight(sample_weight, n, dtype)
        key = _check_random_state(self.random_state)
        with _x64_scope(dtype):
            init = self._initial_params(k, d, covariance_type, dtype)
            if self.warm_start and self.__sklearn_is_fitted__():
                n_init = 1
            prior = None if self.prior is None else _prior_arrays(self.prior, dtype)
            if batch_size is None:      # cache-sized row chunks, as fit_em (same results)
                batch_size = default_batch_size(n, k, d)
            res = _fit_em_jit(jnp.asarray(Xa), jax.random.fold_in(key, 0), prior,
                              None if sw is None else jnp.asarray(sw), init,
                              tol, reg_covar, k=k, covariance_type=covariance_type,
                              max_iter=max_iter, n_init=n_init,
                              init=_INIT_NAMES[self.init_params], batch_size=batch_size)
            p = res.params
            u = precision_cholesky(p.covariances, covariance_type)
            prec = precisions(p.covariances, covariance_type)
            fitted = jax.device_get((p.weights, p.means, p.covariances, u, prec, res.trace,
                                     res.objective, res.n_iter, res.converged))
        weights, means, cov, u, prec, trace, objective, n_iter, converged = fitted
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
        self.n_features_in_ = d
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._covariance_type_fit = covariance_type
        if self.verbose:
            logger.info("GaussianMixture: %d iteration(s), converged=%s, lower bound %.6g",
                        self.n_iter_, self.converged_, self.lower_bound_)
        if max_iter > 0 and not self.converged_:
            warnings.warn("Best performing initialization did not converge. Try different "
                          "init parameters, or increase max_iter, tol, or check for "
                          "degenerate data.", _exception_classes()[1], stacklevel=3)
        return Xa

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

    def _check_is_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise _exception_classes()[0](
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator.")

    def _check_feature_names(self, X):
        fitted = getattr(self, "feature_names_in_", None)
        names = _feature_names(X)
        if fitted is None and names is not None:
            warnings.warn(f"X has feature names, but {type(self).__name__} was fitted "
                          "without feature names", UserWarning, stacklevel=3)
        elif fitted is not None and names is None:
            warnings.warn(f"X does not have valid feature names, but {type(self).__name__} "
                          "was fitted with feature names", UserWarning, stacklevel=3)
        elif fitted is not None and (len(names) != len(fitted) or np.any(names != fitted)):
            raise ValueError("The feature names should match those that were passed during "
                             f"fit; fitted with {list(fitted)}, got {list(names)}")

    def _validate_X(self, X):
        self._check_is_fitted()
        self._check_feature_names(X)
        Xa = _check_array(X, self.means_.dtype)
        if Xa.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {Xa.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        return Xa

    def _params(self):
        """The fitted parameters as a GMMParams (call inside the dtype's x64 scope)."""
        return GMMParams(jnp.asarray(self.weights_), jnp.asarray(self.means_),
                         jnp.asarray(self.covariances_), self._covariance_type_fit)

    def _predict_array(self, Xa):
        with _x64_scope(self.means_.dtype):
            return np.asarray(_predict_jit(self._params(), jnp.asarray(Xa),
                                           batch_size=V.check_batch_size(self.batch_size)))

    def predict(self, X):
        """Most probable component of each row. X: (N, D) -> (N,) int."""
        return self._predict_array(self._validate_X(X))

    def predict_proba(self, X):
        """Responsibilities p(z = k | x). X: (N, D) -> (N, K), rows sum to one."""
        Xa = self._validate_X(X)
        with _x64_scope(self.means_.dtype):
            return np.asarray(densities.responsibilities(
                self._params(), Xa, batch_size=V.check_batch_size(self.batch_size)))

    def score_samples(self, X):
        """log p(x) of each row. X: (N, D) -> (N,)."""
        Xa = self._validate_X(X)
        with _x64_scope(self.means_.dtype):
            return np.asarray(densities.log_prob(
                self._params(), Xa, batch_size=V.check_batch_size(self.batch_size)))

    def score(self, X, y=None):
        """Mean log-likelihood per row (float)."""
        return float(np.mean(self.score_samples(X)))

    def bic(self, X):
        """Bayesian information criterion on X (lower is better): −2 log L + p log N."""
        Xa = self._validate_X(X)
        with _x64_scope(self.means_.dtype):
            return float(densities.bic(self._params(), Xa))

    def aic(self, X):
        """Akaike information criterion on X (lower is better): −2 log L + 2p."""
        Xa = self._validate_X(X)
        with _x64_scope(self.means_.dtype):
            return float(densities.aic(self._params(), Xa))

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
        key = jax.random.fold_in(_check_random_state(self.random_state), 1)
        with _x64_scope(self.means_.dtype):
            Xs, ys = densities.sample(self._params(), key, int(n_samples))
            Xs, ys = jax.device_get((Xs, ys))
        return np.asarray(Xs, self.means_.dtype), np.asarray(ys, np.int64)


from ._bayesian_mixture import BayesianGaussianMixture  # noqa: E402  (re-export)

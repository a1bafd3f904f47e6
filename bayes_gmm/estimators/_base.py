"""What both estimators share: the scikit-learn protocol, input checks in scikit-learn's
wording, feature-name checks, and scikit-learn's exception classes when it is installed.

scikit-learn is optional. When it is installed, `NotFittedError` subclasses scikit-learn's,
`ConvergenceWarning` *is* scikit-learn's; these are resolved lazily, so importing
:mod:`bayes_gmm` never imports scikit-learn.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import warnings

import jax
import numpy as np

from .. import _checks as C

__all__ = ["MixtureEstimator", "exception_classes", "check_array"]


# --- exceptions: scikit-learn's when it is installed, resolved on first use ------------

@functools.lru_cache(maxsize=None)
def exception_classes():
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
    NotFittedError.__module__ = "bayes_gmm.estimators"
    return NotFittedError, convergence



# --- input helpers ----------------------------------------------------------------------

def check_array(X, dtype, name="X", missing="error", empty_rows=False):
    """Array checks with scikit-learn's wording where its test-suite matches messages."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix ({type(X).__name__}); sparse input is not "
                        "supported: pass a dense array (X.toarray()).")
    if hasattr(X, "dtypes") and hasattr(X, "to_numpy"):  # pandas DataFrame
        X = X.to_numpy()
    arr = X
    if not isinstance(X, (str, bytes)) and X is not None and not C.is_traced(X):
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
    return C.check_X(arr, name=name, dtype=dtype, missing=missing, empty_rows=empty_rows)



class MixtureEstimator:
    """The scikit-learn protocol (parameters, repr, fitted checks, feature names)."""

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

    def _check_is_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise exception_classes()[0](
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator.")

    def _check_feature_names(self, X):
        fitted = getattr(self, "feature_names_in_", None)
        names = C.feature_names(X)
        if fitted is None and names is not None:
            warnings.warn(f"X has feature names, but {type(self).__name__} was fitted "
                          "without feature names", UserWarning, stacklevel=3)
        elif fitted is not None and names is None:
            warnings.warn(f"X does not have valid feature names, but {type(self).__name__} "
                          "was fitted with feature names", UserWarning, stacklevel=3)
        elif fitted is not None and (len(names) != len(fitted) or np.any(names != fitted)):
            raise ValueError("The feature names should match those that were passed during "
                             f"fit; fitted with {list(fitted)}, got {list(names)}")

    def _validate_X(self, X, missing="error"):
        self._check_is_fitted()
        self._check_feature_names(X)
        Xa = check_array(X, self.means_.dtype, missing=missing, empty_rows=True)
        if Xa.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {Xa.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        return Xa


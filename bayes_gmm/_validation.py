"""Input checks for the public API: a clear ValueError/TypeError, never a NaN out.

Checks run only on concrete values; traced arrays (inside the user's ``jit``/``vmap``)
pass through untouched, as raising is impossible there.
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

from .params import COVARIANCE_TYPES

INIT_METHODS = ("k-means++", "kmeans", "random", "random_from_data")


def is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_X(X, name: str = "X", min_samples: int = 1, dtype=None) -> np.ndarray:
    """A finite 2-D float array (N, D); names the first bad row and column."""
    if is_traced(X):
        return X
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be a 2-D numeric array (n_samples, n_features); "
                        f"got {type(X).__name__}")
    if hasattr(X, "dtype") and hasattr(X, "shape"):
        arr = np.asarray(X)
    else:
        try:
            arr = np.asarray(X)
        except ValueError as e:  # ragged nested lists
            raise ValueError(f"{name} must be a rectangular 2-D array; {e}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or arr.dtype == np.bool_):
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must contain numbers; got dtype {arr.dtype}") from None
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}. "
                         "Reshape a single feature with X.reshape(-1, 1).")
    if arr.shape[0] < min_samples:
        raise ValueError(f"{name} has {arr.shape[0]} sample(s) (shape={arr.shape}) while a "
                         f"minimum of {min_samples} is required.")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has 0 feature(s) (shape={arr.shape}); at least 1 is required.")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif not np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.float16:
        arr = arr.astype(np.float64 if jax.config.jax_enable_x64 else np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{name} contains NaN or infinity: first at row {r}, column {c} "
                         f"(value {arr[r, c]}); remove or impute such rows.")
    return arr


def check_n_components(n_components, n_samples=None) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral):
        raise TypeError(f"n_components must be an int; got {n_components!r}")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1; got {n_components}")
    if n_samples is not None and n_components > n_samples:
        raise ValueError(f"n_components={n_components} must be <= n_samples={n_samples}. "
                         "Use fewer components or more data.")
    return int(n_components)


def check_covariance_type(covariance_type) -> str:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}; "
                         f"got {covariance_type!r}")
    return covariance_type


def check_init(init) -> str:
    if init not in INIT_METHODS:
        raise ValueError(f"init must be one of {INIT_METHODS} or a GMMParams; got {init!r}")
    return init


def check_int(name, value, minimum) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def check_nonneg_float(name, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value}")
    return float(value)


def check_batch_size(batch_size):
    if batch_size is None:
        return None
    return check_int("batch_size", batch_size, 1)


def check_sample_weight(sample_weight, n_samples: int, dtype):
    if sample_weight is None or is_traced(sample_weight):
        return sample_weight
    w = np.asarray(sample_weight)
    if not np.issubdtype(w.dtype, np.number):
        raise TypeError(f"sample_weight must be numeric; got dtype {w.dtype}")
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},) to match X; "
                         f"got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"sample_weight must be finite; first bad entry at row "
                         f"{int(np.argwhere(~np.isfinite(w))[0, 0])}")
    if np.any(w < 0):
        raise ValueError(f"sample_weight must be non-negative; first negative at row "
                         f"{int(np.argwhere(w < 0)[0, 0])} ({w[w < 0][0]})")
    if w.sum() <= 0:
        raise ValueError("sample_weight sums to zero: at least one row needs positive weight")
    return w.astype(dtype)


def check_n_features(X, n_features_in: int, name="X"):
    if X.shape[1] != n_features_in:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model was fitted with "
                         f"{n_features_in} features.")


# --- warnings on legal but degenerate input ------------------------------------------------

class DegenerateFitWarning(UserWarning):
    """The fit is finite and valid, but the data do not determine some of it."""


def warn_no_spread(X: np.ndarray, where: str) -> None:
    """Warn (once per call) when columns of X (N, D) are constant: a mixture's covariance
    along them is set by ``reg_covar`` or by the prior, not by the data."""
    import warnings
    if X.shape[0] == 0:
        return
    const = np.flatnonzero(np.all(X == X[:1], axis=0))
    if const.size:
        what = ("all rows are identical" if const.size == X.shape[1]
                else f"column(s) {const.tolist()} are constant")
        warnings.warn(f"{where}: {what}; the covariances along them are set by reg_covar or "
                      "the prior, not by the data", DegenerateFitWarning, stacklevel=3)


def warn_small_components(weights, covariances, n_eff: float, n_features: int,
                          covariance_type: str, where: str) -> None:
    """Warn about maximum-likelihood components with fewer effective rows than free
    covariance directions (N_k < D + 1 for full, the total for tied, N_k < 2 otherwise):
    their covariance is determined by ``reg_covar``, not by the data."""
    import warnings
    w = np.asarray(weights, np.float64)
    counts = w * n_eff
    if covariance_type == "tied":
        small = np.flatnonzero(w > 0) if n_eff < n_features + 1 else np.array([], int)
        need = n_features + 1
    else:
        need = n_features + 1 if covariance_type == "full" else 2
        small = np.flatnonzero((w > 0) & (counts < need))
    if small.size:
        warnings.warn(
            f"{where}: component(s) {small.tolist()} have effective sample sizes "
            f"{np.round(counts[small], 2).tolist()} < {need}; their covariances are set by "
            "reg_covar, not by the data. Use fewer components, a prior (prior=GMMPrior()) or "
            "a simpler covariance_type.", DegenerateFitWarning, stacklevel=3)

"""The one validating edge: every public function checks its input here, once.

A clear ValueError/TypeError naming the argument (and the row and column), never a NaN
out. Checks run only on concrete values; traced arrays (inside the user's ``jit``/``vmap``)
pass through untouched, as raising is impossible there. ``bayes_gmm.core`` never checks.

The dtype rule: the functional API computes in the dtype JAX gives the input
(:func:`jax_dtype`: float64 needs JAX's x64 flag) unless ``dtype=`` says otherwise; the
estimators fit float64 input in float64 (:func:`estimator_dtype`, :func:`x64_scope`) and
float32 in float32.
"""

from __future__ import annotations

import contextlib
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .core.covariance import get_family
from .core.seeding import INIT_METHODS
from .core.params import GMMParams
from .core.prior import GMMPrior
from .core.program import is_program, latent_sites, run_program
from .distributed import check_weight_in_place, check_X_in_place, is_distributed
# The degeneracy checks live in their own module; the edge re-exports them.
from .degeneracy import (DegenerateFitWarning, check_fit_degeneracy, data_variance,
                         degenerate_components, warn_no_spread)

__all__ = ["DegenerateFitWarning", "is_traced", "check_X", "check_Xs", "check_n_components",
           "check_covariance_type", "check_init", "check_int", "check_nonneg_float",
           "check_positive_float", "check_batch_size", "check_sample_weight",
           "check_n_features", "check_key", "check_keys", "check_random_state",
           "check_random_seed",
           "check_prior", "check_prior_program", "check_sampler", "prior_arrays", "check_init_params", "check_choice",
           "jax_dtype",
           "WEIGHTS_SUM_ATOL",
           "estimator_dtype", "x64_scope", "warn_no_spread", "data_variance", "feature_names",
           "degenerate_components", "check_fit_degeneracy"]


def is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


# --- dtypes ----------------------------------------------------------------------------

def jax_dtype(dtype):
    """The dtype JAX computes ``dtype`` in: float64 becomes float32 without x64."""
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def estimator_dtype(X):
    """float32 input stays float32; anything else is fitted in float64 (as scikit-learn)."""
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


def x64_scope(dtype):
    """float64 runs with x64 switched on for its duration only (never flipped globally)."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


# --- data ------------------------------------------------------------------------------

def _real_array(X, name):
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be a 2-D numeric array (n_samples, n_features); "
                        f"got {type(X).__name__}")
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
    return arr


def _float_dtype(arr, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    if not np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.float16:
        return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)
    return arr.dtype


def check_X(X, name: str = "X", min_samples: int = 1, dtype=None,
            missing: str = "error", empty_rows: bool = False) -> np.ndarray:
    """A finite 2-D float array (N, D); names the first bad row and column.

    ``dtype``: cast to it; None keeps a float input's dtype (other inputs become JAX's
    default float). ``missing="marginalize"`` lets NaN through (a hole to integrate out);
    infinity is always an error, and so is a row with nothing observed unless
    ``empty_rows`` (prediction: such a row's membership is the weights).
    """
    if is_traced(X):
        return X
    if is_distributed(X):                  # checked where it lies, never copied here
        check_choice("missing", missing, MISSING)
        return check_X_in_place(X, name, min_samples, dtype)
    arr = _real_array(X, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}. "
                         "Reshape a single feature with X.reshape(-1, 1).")
    if arr.shape[0] < min_samples:
        raise ValueError(f"{name} has {arr.shape[0]} sample(s) (shape={arr.shape}) while a "
                         f"minimum of {min_samples} is required.")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has 0 feature(s) (shape={arr.shape}); at least 1 is required.")
    arr = arr.astype(_float_dtype(arr, dtype), copy=False)
    check_choice("missing", missing, MISSING)
    bad = np.isinf(arr) if missing == "marginalize" else ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        hint = ("" if missing == "marginalize" else "; remove or impute such rows, or pass "
                "missing='marginalize' to integrate NaN holes out")
        what = "infinity" if missing == "marginalize" else "NaN or infinity"
        raise ValueError(f"{name} contains {what}: first at row {r}, column {c} "
                         f"(value {arr[r, c]}){hint}.")
    if missing == "marginalize" and not empty_rows:
        empty = np.flatnonzero(np.all(np.isnan(arr), axis=1))
        if empty.size:
            raise ValueError(f"{name} row {empty[0]} has no observed value ({empty.size} such "
                             "row(s)); drop rows with nothing observed")
    return arr


#: How NaN entries of X are treated: rejected, or integrated out of the likelihood.
MISSING = ("error", "marginalize")


def has_nan(X) -> bool:
    """Whether a concrete X holds NaN (a traced X is taken to hold none, and so is one
    spread over devices, which :func:`check_X` refuses with NaN)."""
    return (not is_traced(X) and not is_distributed(X)
            and bool(np.isnan(np.asarray(X)).any()))


def check_Xs(Xs, name: str = "Xs", missing: str = "error"):
    """A 3-D float stack (B, N, D), in the dtype JAX would compute one of them in; finite,
    or with ``missing="marginalize"`` NaN holes allowed (not infinity, not a row with
    nothing observed)."""
    if isinstance(Xs, jax.Array):
        arr = Xs
        if not jnp.issubdtype(arr.dtype, jnp.floating):
            arr = arr.astype(jax_dtype(np.float64))
    else:
        if isinstance(Xs, (str, bytes)) or Xs is None:
            raise TypeError(f"{name} must be a 3-D numeric array (n_datasets, n_samples, "
                            f"n_features); got {type(Xs).__name__}")
        arr = np.asarray(Xs)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) \
                or np.issubdtype(arr.dtype, np.complexfloating):
            raise TypeError(f"{name} must contain real numbers; got dtype {arr.dtype}")
        arr = arr.astype(jax_dtype(_float_dtype(arr, None)), copy=False)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be 3-D (n_datasets, n_samples, n_features); got shape "
                         f"{arr.shape}. Stack equal-shape datasets with np.stack(datasets).")
    if 0 in arr.shape:
        raise ValueError(f"{name} must have at least one dataset, sample and feature; got "
                         f"shape {arr.shape}")
    check_choice("missing", missing, MISSING)
    host = np.asarray(arr)
    bad = np.isinf(host) if missing == "marginalize" else ~np.isfinite(host)
    if bad.any():
        b, r, c = np.argwhere(bad)[0]
        what = "infinity" if missing == "marginalize" else "NaN or infinity"
        hint = ("" if missing == "marginalize" else "; remove or impute such rows, or pass "
                "missing='marginalize' to integrate NaN holes out")
        raise ValueError(f"{name} contains {what}: first in dataset {b}, row {r}, "
                         f"column {c}{hint}.")
    if missing == "marginalize":
        empty = np.argwhere(np.all(np.isnan(host), axis=2))
        if empty.size:
            b, r = empty[0]
            raise ValueError(f"{name} dataset {b}, row {r} has no observed value; drop rows "
                             "with nothing observed")
    return jnp.asarray(arr)


def check_n_features(X, n_features_in: int, name="X"):
    if X.shape[1] != n_features_in:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model was fitted with "
                         f"{n_features_in} features.")


def check_sample_weight(sample_weight, n_samples: int, dtype, name="sample_weight"):
    if sample_weight is None or is_traced(sample_weight):
        return sample_weight
    if is_distributed(sample_weight):
        return check_weight_in_place(sample_weight, n_samples, dtype, name)
    w = np.asarray(sample_weight)
    if not np.issubdtype(w.dtype, np.number):
        raise TypeError(f"{name} must be numeric; got dtype {w.dtype}")
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},) to match X; got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} must be finite; first bad entry at row "
                         f"{int(np.argwhere(~np.isfinite(w))[0, 0])}")
    if np.any(w < 0):
        raise ValueError(f"{name} must be non-negative; first negative at row "
                         f"{int(np.argwhere(w < 0)[0, 0])} ({w[w < 0][0]})")
    if w.sum() <= 0:
        raise ValueError(f"{name} sums to zero: at least one row needs positive weight")
    return w.astype(dtype)


# --- scalars and choices ---------------------------------------------------------------

def check_int(name, value, minimum) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def check_nonneg_float(name, value) -> float:
    if is_traced(value):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value}")
    return float(value)


def check_positive_float(name, value) -> float:
    value = check_nonneg_float(name, value)
    if value == 0:
        raise ValueError(f"{name} must be > 0; got 0")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")
    return value


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
    """The name of a registered covariance family (ValueError listing the names)."""
    return get_family(covariance_type).name


def check_init(init) -> str:
    if init not in INIT_METHODS:
        raise ValueError(f"init must be one of {INIT_METHODS} or a GMMParams; got {init!r}")
    return init


def check_batch_size(batch_size):
    return None if batch_size is None else check_int("batch_size", batch_size, 1)


# --- randomness ------------------------------------------------------------------------

def _is_key_array(key) -> bool:
    return isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def check_key(key, name="key"):
    """A JAX PRNG key from a key, a raw (2,) uint32 key or an int seed. Never a default."""
    if key is None:
        raise TypeError(f"{name} is required: pass {name}=jax.random.key(seed)")
    if is_traced(key) or _is_key_array(key):
        return key
    if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return jax.random.key(int(key))
    if (isinstance(key, (jax.Array, np.ndarray)) and key.shape == (2,)
            and key.dtype == np.uint32):
        return jax.random.wrap_key_data(jnp.asarray(key))
    raise TypeError(f"{name} must be a jax.random.key(...) or an int seed; got "
                    f"{type(key).__name__} {key!r}")


def check_keys(keys, key, n):
    """(n,) keys: one per dataset, or ``key`` split in n."""
    if keys is not None and key is not None:
        raise TypeError("pass either keys (one per dataset) or key (split into one per "
                        "dataset), not both")
    if keys is None:
        if key is None:
            raise TypeError("key or keys is required: pass key=jax.random.key(seed)")
        return jax.random.split(check_key(key), n)
    if _is_key_array(keys):
        out = keys
    else:
        seeds = np.asarray(keys)
        if seeds.ndim != 1 or not np.issubdtype(seeds.dtype, np.integer):
            raise TypeError("keys must be a (n_datasets,) array of jax.random keys (e.g. "
                            "jax.random.split(key, n_datasets)) or of int seeds; got "
                            f"dtype {seeds.dtype}, shape {seeds.shape}")
        out = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    if out.shape != (n,):
        raise ValueError(f"keys must have shape ({n},) to match Xs (one key per dataset); "
                         f"got shape {out.shape}")
    return out


def check_random_state(random_state):
    """Estimators: None, int, NumPy Generator/RandomState or a JAX key -> a JAX key."""
    seed = check_random_seed(random_state)
    return seed if _is_key_array(seed) else jax.random.key(seed)


def check_random_seed(random_state):
    """As :func:`check_random_state`, but a seed stays a uint32 NumPy scalar (a JAX key stays
    a key): a compiled fit makes the key itself
    (:func:`bayes_gmm.core.seeding.as_key`), so no program runs to make it."""
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
    elif isinstance(random_state, (jax.Array, np.ndarray)):
        return check_key(random_state, "random_state")
    else:
        raise TypeError("random_state must be None, an int, a numpy Generator/RandomState or a "
                        f"JAX key; got {type(random_state).__name__}")
    return np.uint32(seed)


# --- the prior and initial parameters -------------------------------------------------

def check_pad_components(pad_components, k: int, prior, init) -> int:
    """The number of components to compile for (``pad_components``, or K)."""
    if pad_components is None:
        return k
    m = check_int("pad_components", pad_components, 1)
    if m < k:
        raise ValueError(f"pad_components must be at least n_components={k}; got {m}")
    if m > k and prior is not None:
        raise ValueError("pad_components is for maximum likelihood (prior=None): a prior "
                         "on K_max components is not the prior on K")
    if m > k and isinstance(init, GMMParams):
        raise ValueError("pad_components cannot be used with init=GMMParams (K components)")
    return m


def check_prior(prior, n_components: int, n_features: int, covariance_type: str) -> GMMPrior:
    """Validate concrete hyperparameters (ValueError naming the field); None -> GMMPrior().
    A prior program is run once and checked (:func:`check_prior_program`)."""
    fam = get_family(covariance_type)
    if prior is None:
        return GMMPrior()
    if is_program(prior):
        return check_prior_program(prior, n_components, n_features, covariance_type)
    if not isinstance(prior, GMMPrior):
        raise TypeError(f"prior must be a bayes_gmm.GMMPrior, a prior program (a function "
                        f"(n_components, n_features) -> GMMParams) or None; got "
                        f"{type(prior).__name__}")
    k, d = n_components, n_features

    def arr(name, v):
        try:
            a = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"GMMPrior.{name} must be numeric; got {v!r}") from None
        if not np.all(np.isfinite(a)):
            raise ValueError(f"GMMPrior.{name} must be finite; got {a}")
        return a

    alpha = arr("weight_concentration", prior.weight_concentration)
    if alpha.shape not in ((), (k,)):
        raise ValueError(f"GMMPrior.weight_concentration must be a scalar or shape ({k},); "
                         f"got shape {alpha.shape}")
    if np.any(alpha <= 0):
        raise ValueError(f"GMMPrior.weight_concentration must be > 0; got {alpha}")
    if prior.mean_prior is not None:
        m0 = arr("mean_prior", prior.mean_prior)
        if m0.shape not in ((), (d,)):
            raise ValueError(f"GMMPrior.mean_prior must have shape ({d},); got {m0.shape}")
    if prior.mean_precision is not None:
        kappa = arr("mean_precision", prior.mean_precision)
        if kappa.shape != () or kappa <= 0:
            raise ValueError(f"GMMPrior.mean_precision must be a scalar > 0; got {kappa}")
    if prior.degrees_of_freedom is not None:
        nu = arr("degrees_of_freedom", prior.degrees_of_freedom)
        lower = fam.min_degrees_of_freedom(d)
        if nu.shape != () or nu <= lower:
            raise ValueError(f"GMMPrior.degrees_of_freedom must be a scalar > {lower} "
                             f"(for '{fam.name}' with {d} features); got {nu}")
    if prior.covariance_prior is not None:
        fam.check_scale(arr("covariance_prior", prior.covariance_prior), d)
    return prior


def check_prior_program(program, k: int, d: int, covariance_type: str):
    """Run a prior program once (its sites drawn with a fixed seed) and check what it
    returns: a `GMMParams` of ``covariance_type`` with shapes (K,), (K, D) and the family's,
    finite, weights on the simplex, valid covariances; and that it samples a site."""
    fam = get_family(covariance_type)
    name = getattr(program, "__name__", "the prior program")
    try:
        out, trace = run_program(program, k, d, key=0)
    except Exception as err:               # the user's code: say whose error it is
        raise ValueError(f"prior program {name}({k}, {d}) raised "
                         f"{type(err).__name__}: {err}") from err
    if not isinstance(out, GMMParams):
        raise TypeError(f"prior program {name} must return a bayes_gmm.GMMParams; got "
                        f"{type(out).__name__}")
    if out.covariance_type != fam.name:
        raise ValueError(f"prior program {name} returned covariance_type "
                         f"{out.covariance_type!r}; the fit asks for {fam.name!r}")
    if not latent_sites(trace):
        raise ValueError(f"prior program {name} samples no site (numpyro.sample): there is "
                         f"nothing to infer; a fixed mixture needs no fit")
    shapes = {"weights": (k,), "means": (k, d), "covariances": fam.shape(k, d)}
    for field, shape in shapes.items():
        got = tuple(np.shape(getattr(out, field)))
        if got != shape:
            raise ValueError(f"prior program {name} returned {field} of shape {got}; "
                             f"expected {shape} for n_components={k}, n_features={d}, "
                             f"covariance_type={fam.name!r}")
    w, m, c = (np.asarray(getattr(out, f), np.float64) for f in shapes)
    for field, a in zip(shapes, (w, m, c)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"prior program {name} returned non-finite {field} at its "
                             f"initial point (a draw from the prior)")
    if np.any(w < 0) or not np.isclose(w.sum(), 1.0, rtol=0, atol=WEIGHTS_SUM_ATOL):
        raise ValueError(f"prior program {name} returned weights {w} that are not on the "
                         f"simplex (non-negative, summing to one)")
    fam.check_covariances(c, f"prior program {name}'s covariances")
    return program


def check_sampler(covariance_type: str) -> None:
    """ValueError unless NUTS and SVI can sample ``covariance_type`` under its prior."""
    fam = get_family(covariance_type)
    if not fam.has_sampler:
        raise ValueError(f"covariance_type={fam.name!r} has a MAP prior (Fraley & Raftery's "
                         f"penalty on each covariance) but no density on its own volume, "
                         f"shape and orientation that NUTS or SVI could sample; the nearest "
                         f"family they can sample is {fam.nearest!r} (MAP-EM and maximum "
                         f"likelihood take {fam.name!r})")


def prior_arrays(prior: GMMPrior, dtype) -> GMMPrior:
    """The given hyperparameters as arrays of ``dtype`` (None fields stay None)."""
    return GMMPrior(*(None if v is None else jnp.asarray(v, dtype) for v in prior))


#: How far initial weights may sum from one (GaussianMixture.weights_init and fit_em's init).
WEIGHTS_SUM_ATOL = 1e-6


def check_init_params(p: GMMParams, k, d, covariance_type, dtype, name="init") -> GMMParams:
    """Initial `GMMParams`: shapes, finiteness, weights on the simplex, valid covariances."""
    fam = get_family(covariance_type)
    fam.check_features(d)
    if p.covariance_type != fam.name:
        raise ValueError(f"{name} has covariance_type {p.covariance_type!r} but "
                         f"covariance_type={fam.name!r}")
    w, m, c = (jnp.asarray(a, dtype) for a in (p.weights, p.means, p.covariances))
    if w.shape != (k,) or m.shape != (k, d) or c.shape != fam.shape(k, d):
        raise ValueError(f"{name} shapes {w.shape}, {m.shape}, {c.shape} do not match "
                         f"n_components={k}, n_features={d}, covariance_type={fam.name!r}")
    if not any(is_traced(a) for a in (p.weights, p.means, p.covariances)):
        wn, mn, cn = (np.asarray(a, np.float64) for a in (w, m, c))
        if not (np.all(np.isfinite(wn)) and np.all(np.isfinite(mn)) and np.all(np.isfinite(cn))):
            raise ValueError(f"{name} (GMMParams) contains NaN or infinity")
        if np.any(wn < 0) or not np.isclose(wn.sum(), 1.0, rtol=0, atol=WEIGHTS_SUM_ATOL):
            raise ValueError(f"{name}.weights must be non-negative and sum to one; got {wn} "
                             f"(sum {wn.sum()})")
        fam.check_covariances(cn, f"{name}.covariances")
    return GMMParams(w, m, c, fam.name)


def feature_names(X):
    """Column names when X is a DataFrame whose column names are all strings, else None
    (scikit-learn's rule for ``feature_names_in_``)."""
    cols = getattr(X, "columns", None)
    if cols is None or not hasattr(X, "iloc"):
        return None
    names = np.asarray(cols, dtype=object)
    if len(names) == 0 or not all(isinstance(c, str) for c in names):
        return None
    return names

"""Save and load fitted mixtures without pickle.

A save is a directory::

    model/
      bayes_gmm.json   format name, version, what was saved, its settings (JSON)
      arrays.npz       every array, bit for bit (read back with allow_pickle=False)
      idata.nc         the InferenceData (NetCDF), for Bayesian fits
      map/             the MAP GaussianMixture of a BayesianGaussianMixture (same layout)

Supported objects: ``GaussianMixture``, ``BayesianGaussianMixture``, `GMMParams`,
`EMResult` and ``arviz.InferenceData``. Arrays keep their dtype and bits, so a loaded model
predicts exactly what the saved one did. Anything that is not a save of this format — a
missing, truncated or foreign file — raises a ValueError that names the file.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import zipfile
from pathlib import Path

import numpy as np

from .core.em import EMResult
from .core.params import GMMParams
from .core.prior import GMMPrior

__all__ = ["save", "load"]

FORMAT_NAME = "bayes_gmm"
FORMAT_VERSION = 1
META_FILE = "bayes_gmm.json"
ARRAYS_FILE = "arrays.npz"
IDATA_FILE = "idata.nc"
_ESTIMATORS = ("GaussianMixture", "BayesianGaussianMixture")


# --- encoding values -------------------------------------------------------------------

def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, np.generic)


def _is_prng_key(v) -> bool:
    import jax
    dt = getattr(v, "dtype", None)
    return dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key)


def _encode(name, value, arrays: dict, where: str):
    """A JSON-able description of ``value``; arrays go to ``arrays`` under a key."""
    if value is None or isinstance(value, (bool, str)):
        return {"type": "json", "value": value}
    if isinstance(value, numbers.Integral):
        return {"type": "json", "value": int(value)}
    if isinstance(value, numbers.Real):
        f = float(value)
        if np.isfinite(f):
            return {"type": "json", "value": f}
        return {"type": "float", "value": repr(f)}
    if isinstance(value, GMMPrior):
        return {"type": "GMMPrior",
                "value": {f: _encode(f"{name}.{f}", getattr(value, f), arrays, where)
                          for f in GMMPrior._fields}}
    if _is_prng_key(value):
        import jax
        key = f"{where}{name}"
        arrays[key] = np.asarray(jax.random.key_data(value))
        return {"type": "prng_key", "key": key, "impl": str(jax.random.key_impl(value))}
    if _is_array(value):
        arr = np.asarray(value)
        if arr.dtype.kind in "US" or arr.dtype == object:
            items = arr.tolist()
            if not all(isinstance(x, str) for x in np.ravel(np.asarray(items, dtype=object))):
                raise TypeError(f"cannot save {where}{name}: an object array that is not all "
                                "strings")
            return {"type": "str_array", "value": items,
                    "dtype": "object" if arr.dtype == object else arr.dtype.str}
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"cannot save {where}{name}: unsupported dtype {arr.dtype}")
        key = f"{where}{name}"
        arrays[key] = arr
        return {"type": "array", "key": key, "jax": not isinstance(value, np.ndarray)}
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        enc = [_encode(f"{name}[{i}]", v, arrays, where) for i, v in enumerate(value)]
        return {"type": type(value).__name__, "value": enc}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"type": "dict",
                "value": {k: _encode(f"{name}[{k!r}]", v, arrays, where) for k, v in value.items()}}
    raise TypeError(f"cannot save {where}{name} of type {type(value).__name__}: only None, "
                    "numbers, strings, arrays, GMMPrior and lists/dicts of those are supported")


def _decode(desc, arrays, file):
    t = desc["type"]
    if t == "json":
        return desc["value"]
    if t == "float":
        return float(desc["value"])
    if t == "GMMPrior":
        return GMMPrior(**{f: _decode(v, arrays, file) for f, v in desc["value"].items()})
    if t == "str_array":
        return np.array(desc["value"], dtype=object if desc["dtype"] == "object"
                        else np.dtype(desc["dtype"]))
    if t == "array":
        key = desc["key"]
        if key not in arrays:
            raise ValueError(f"{file}: array {key!r} listed in {META_FILE} is missing")
        return arrays[key]
    if t in ("list", "tuple"):
        out = [_decode(v, arrays, file) for v in desc["value"]]
        return out if t == "list" else tuple(out)
    if t == "prng_key":
        import jax
        return jax.random.wrap_key_data(_decode({"type": "array", "key": desc["key"]},
                                                arrays, file), impl=desc["impl"])
    if t == "dict":
        return {k: _decode(v, arrays, file) for k, v in desc["value"].items()}
    raise ValueError(f"{file}: unknown value type {t!r}")


# --- what each object is made of -------------------------------------------------------

def _fitted_attributes(est, settings) -> dict:
    """Every instance attribute that is not a constructor setting: the fitted state
    (``weights_`` …) and any private state the estimator keeps next to it."""
    return {k: v for k, v in vars(est).items()
            if k not in settings and k not in ("idata_", "map_")}


def _describe(obj):
    """(kind, settings, attributes, idata or None, map estimator or None)."""
    if _is_idata(obj):
        return "InferenceData", {}, {}, obj, None
    if isinstance(obj, GMMParams):
        return ("GMMParams", {"covariance_type": obj.covariance_type},
                {"weights": obj.weights, "means": obj.means, "covariances": obj.covariances},
                None, None)
    if isinstance(obj, EMResult):
        p = obj.params
        return ("EMResult", {"covariance_type": p.covariance_type},
                {"weights": p.weights, "means": p.means, "covariances": p.covariances,
                 "objective": obj.objective, "trace": obj.trace, "n_iter": obj.n_iter,
                 "converged": obj.converged}, None, None)
    kind = type(obj).__name__
    if kind in _ESTIMATORS and hasattr(obj, "get_params"):
        settings = obj.get_params(deep=False)
        return (kind, settings, _fitted_attributes(obj, settings),
                getattr(obj, "idata_", None), getattr(obj, "map_", None))
    raise TypeError("save supports GaussianMixture, BayesianGaussianMixture, GMMParams, "
                    f"EMResult and arviz.InferenceData; got {type(obj).__name__}")


def _is_idata(obj) -> bool:
    return hasattr(obj, "posterior") and hasattr(obj, "to_netcdf") and hasattr(obj, "groups")


# --- save ------------------------------------------------------------------------------

def save(fitted, path) -> Path:
    """Save a fitted mixture to the directory ``path`` (created; an earlier save there is
    replaced, any other non-empty directory is refused).

    Parameters
    ----------
    fitted : GaussianMixture, BayesianGaussianMixture, GMMParams, EMResult or InferenceData.
    path : str or os.PathLike, the directory to write.

    Returns
    -------
    pathlib.Path of the directory.

    Examples
    --------
    >>> import tempfile, numpy as np, bayes_gmm as bg
    >>> from bayes_gmm.datasets import load_old_faithful
    >>> gm = bg.GaussianMixture(2, random_state=0).fit(load_old_faithful())
    >>> with tempfile.TemporaryDirectory() as d:
    ...     gm2 = bg.load(bg.save(gm, d + "/faithful_gmm"))
    >>> bool(np.array_equal(gm2.means_, gm.means_))
    True
    """
    path = Path(path)
    kind, settings, attrs, idata, map_est = _describe(fitted)
    if path.exists() and not path.is_dir():
        raise ValueError(f"path {str(path)!r} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not (path / META_FILE).is_file():
        raise ValueError(f"path {str(path)!r} is a non-empty directory that is not a "
                         "bayes_gmm save; choose a new or empty directory")
    arrays: dict = {}
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "kind": kind,
            "settings": {k: _encode(k, v, arrays, "settings.") for k, v in settings.items()},
            "attributes": {k: _encode(k, v, arrays, "attributes.") for k, v in attrs.items()},
            "idata": idata is not None, "map": map_est is not None}
    path.mkdir(parents=True, exist_ok=True)
    if (path / META_FILE).exists():
        (path / META_FILE).unlink()         # a half-written save must not look complete
    with open(path / ARRAYS_FILE, "wb") as f:
        np.savez(f, **arrays)
    if idata is not None:
        idata.to_netcdf(str(path / IDATA_FILE))
    elif (path / IDATA_FILE).exists():
        (path / IDATA_FILE).unlink()
    if map_est is not None:
        save(map_est, path / "map")
    tmp = path / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, path / META_FILE)       # written last: its presence marks a complete save
    return path


# --- load ------------------------------------------------------------------------------

def _read_meta(path: Path) -> dict:
    file = path / META_FILE
    if not path.exists():
        raise FileNotFoundError(f"no bayes_gmm save at {str(path)!r}")
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a bayes_gmm save: expected a directory "
                         f"holding {META_FILE}, found a file")
    if not file.is_file():
        raise ValueError(f"{str(path)!r} is not a bayes_gmm save (or is incomplete): "
                         f"{META_FILE} is missing")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{file}: not valid JSON ({e}); the file is corrupted") from None
    except RecursionError:
        raise ValueError(f"{file}: JSON nested too deeply; not a bayes_gmm save") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{file}: not a bayes_gmm save (format "
                         f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{file}: format version {version!r} is not supported by this "
                         f"bayes_gmm (reads versions <= {FORMAT_VERSION}); upgrade bayes_gmm")
    for key in ("kind", "settings", "attributes"):
        if key not in meta:
            raise ValueError(f"{file}: corrupted, the entry {key!r} is missing")
    return meta


def _check_npy_sizes(file: Path) -> None:
    """Refuse members whose header declares more bytes than the member holds, before
    NumPy allocates them (a 60-byte member may declare terabytes)."""
    fmt = np.lib.format
    with zipfile.ZipFile(file) as z:
        for info in z.infolist():
            with z.open(info) as f:
                version = fmt.read_magic(f)
                read_header = {(1, 0): fmt.read_array_header_1_0,
                               (2, 0): fmt.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise ValueError(f"npy format version {version}")
                shape, _, dtype = read_header(f)
                nbytes = math.prod(shape) * dtype.itemsize
                if nbytes > info.file_size:
                    raise ValueError(f"member {info.filename!r} declares shape {shape} "
                                     f"({nbytes} bytes) but holds {info.file_size} bytes")


def _read_arrays(file: Path) -> dict:
    if not file.is_file():
        raise ValueError(f"{file}: missing; the save is incomplete")
    try:
        _check_npy_sizes(file)
        with np.load(file, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, MemoryError) as e:
        raise ValueError(f"{file}: not a readable .npz archive ({type(e).__name__}: {e}); "
                         "the file is truncated or corrupted") from None


def _read_idata(file: Path):
    import arviz as az
    if not file.is_file():
        raise ValueError(f"{file}: missing; the save is incomplete")
    try:
        return az.from_netcdf(str(file))      # eager: the file is closed afterwards
    except Exception as e:  # noqa: BLE001 — netCDF/HDF5 readers raise many types
        raise ValueError(f"{file}: not a readable NetCDF InferenceData ({type(e).__name__}: "
                         f"{e}); the file is truncated or corrupted") from None


def load(path):
    """Load what :func:`save` wrote at ``path``.

    Returns the saved object (GaussianMixture, BayesianGaussianMixture, GMMParams, EMResult
    or InferenceData), with arrays identical to the saved ones.

    Raises
    ------
    FileNotFoundError if nothing is at ``path``; ValueError naming the file if it is not a
    complete, readable bayes_gmm save.
    """
    path = Path(path)
    meta = _read_meta(path)
    meta_file = path / META_FILE
    kind = meta["kind"]
    arrays = _read_arrays(path / ARRAYS_FILE)
    try:
        settings = {k: _decode(v, arrays, meta_file) for k, v in meta["settings"].items()}
        attrs = {k: _decode(v, arrays, meta_file) for k, v in meta["attributes"].items()}
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{meta_file}: corrupted entry ({type(e).__name__}: {e})") from None
    except RecursionError:
        raise ValueError(f"{meta_file}: corrupted, an entry is nested too deeply") from None
    idata = _read_idata(path / IDATA_FILE) if meta.get("idata") else None

    if kind == "InferenceData":
        if idata is None:
            raise ValueError(f"{meta_file}: kind 'InferenceData' but the 'idata' flag is "
                             "not set; the file is corrupted")
        return idata
    try:
        if kind == "GMMParams":
            return GMMParams(attrs["weights"], attrs["means"], attrs["covariances"],
                             settings["covariance_type"])
        if kind == "EMResult":
            p = GMMParams(attrs["weights"], attrs["means"], attrs["covariances"],
                          settings["covariance_type"])
            return EMResult(p, attrs["objective"], attrs["trace"], attrs["n_iter"],
                            attrs["converged"])
    except KeyError as e:
        raise ValueError(f"{meta_file}: corrupted, {e} is missing") from None
    if kind not in _ESTIMATORS:
        raise ValueError(f"{meta_file}: unknown kind {kind!r}")
    from . import estimators
    cls = getattr(estimators, kind)
    try:
        est = cls(**settings)
    except TypeError as e:
        raise ValueError(f"{meta_file}: settings do not match {kind} ({e})") from None
    for k, v in attrs.items():
        # Fitted state only ("weights_", "_private"): never a method or a dunder.
        if not (k.isidentifier() and not k.startswith("__")
                and (k.endswith("_") or k.startswith("_")) and not hasattr(cls, k)):
            raise ValueError(f"{meta_file}: attribute {k!r} is not fitted state of {kind}; "
                             "the file is corrupted")
        setattr(est, k, v)
    if idata is not None:
        est.idata_ = idata
    if meta.get("map"):
        map_dir = path / "map"
        try:
            est.map_ = load(map_dir)
        except (FileNotFoundError, OSError) as e:
            raise ValueError(f"{meta_file}: the 'map' flag is set but {str(map_dir)!r} is "
                             f"not a readable save ({type(e).__name__}: {e})") from None
    return est

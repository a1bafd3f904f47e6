r"""The one InferenceData schema of the package's posteriors.

InferenceData layout
--------------------
``posterior``: ``weights (chain, draw, component)``, ``means (chain, draw, component,
feature)``, ``covariances (chain, draw, *family.dims)`` —
``(component, feature, feature_bis)`` (full), ``(feature, feature_bis)`` (tied),
``(component, feature)`` (diag), ``(component,)`` (spherical). ``log_likelihood``: ``obs (chain, draw,
obs_id)``, log p(x_n | θ) of every row (so ``az.loo`` / ``az.waic`` work). ``sample_stats``
(NUTS): ``diverging``, ``lp``, ``acceptance_rate``, ``n_steps``, ``step_size``.
``observed_data``: ``obs (obs_id, feature)``. The ``feature``/``feature_bis`` coordinates are
the feature names when the data came as a DataFrame (:func:`with_feature_names`), else
0..D−1. ``map``: the MAP-EM estimate (same variables,
no chain/draw). ``posterior_raw``: draws before relabelling. ``svi_loss`` (SVI): ``loss
(step)``, the negative ELBO at each step. ``posterior.attrs``: ``method``,
``covariance_type``, ``n_components``, ``relabelled`` (0/1).

This module targets ArviZ 0.x (``arviz.InferenceData``, ArviZ ≥ 0.17, < 1).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core.covariance import family_from_dims, get_family
from ..core.params import GMMParams
from .model import OBS_SITE, SITES

__all__ = ["mixture_posterior", "with_feature_names", "OBS_DIM", "var_dims",
           "to_inference_data", "params_dataset", "params_from_dataset", "loss_dataset",
           "posterior_family", "flat_draws"]

#: The observation dim (a variable cannot share its name with its dim, so not ``obs``).
OBS_DIM = "obs_id"


def var_dims(covariance_type):
    """Named dims of each latent site (without chain/draw)."""
    return {"weights": ("component",), "means": ("component", "feature"),
            "covariances": get_family(covariance_type).dims}


def posterior_family(ds):
    """The covariance family of a posterior-like Dataset: its attribute, else its dims."""
    t = ds.attrs.get("covariance_type")
    if t is not None:
        return get_family(t)
    lead = 2 if "chain" in ds["covariances"].dims else 0
    return family_from_dims(ds["covariances"].dims[lead:])


def flat_draws(ds) -> GMMParams:
    """A posterior Dataset as a `GMMParams` with one leading draw axis (chain·draw, ...)."""
    arrs = []
    for s in SITES:
        a = np.asarray(ds[s].values)
        arrs.append(a.reshape((-1,) + a.shape[2:]))
    return GMMParams(*arrs, posterior_family(ds).name)


def loss_dataset(losses):
    import xarray as xr
    losses = np.asarray(losses)
    return xr.Dataset({"loss": (("step",), losses)},
                      coords={"step": np.arange(losses.shape[0])})


def params_dataset(params: GMMParams):
    """A `GMMParams` as an xarray Dataset (no chain/draw dims), e.g. the ``map`` group."""
    import xarray as xr
    dims = var_dims(params.covariance_type)
    k, d = np.shape(params.means)
    ds = xr.Dataset({s: (dims[s], np.asarray(getattr(params, s))) for s in SITES},
                    coords={"component": np.arange(k), "feature": np.arange(d),
                            "feature_bis": np.arange(d)})
    if "feature_bis" not in params.family.dims:
        ds = ds.drop_vars("feature_bis")
    ds.attrs["covariance_type"] = params.covariance_type
    return ds


def params_from_dataset(ds, covariance_type=None) -> GMMParams:
    """Inverse of :func:`params_dataset` (variables with extra leading dims are kept)."""
    t = covariance_type or posterior_family(ds).name
    return GMMParams(*(np.asarray(ds[s].values) for s in SITES), t)


def to_inference_data(draws, ll, Xa, mapp, covariance_type, method, sample_stats=None,
                      extra_groups=None, site_dims=None, map_values=None):
    """The package's InferenceData (module docstring) from draws {site: (C, S, ...)},
    log-likelihoods ll (C, S, N), the data Xa (N, D) and the MAP `GMMParams`.

    ``site_dims``: a prior program's own sites {name: dims} (their draws are in ``draws``,
    their MAP values in ``map_values``), kept in ``posterior`` and ``map`` beside the
    mixture's parameters."""
    import arviz as az
    import xarray as xr

    c, s = np.shape(draws["weights"])[:2]
    n, d = Xa.shape
    k = np.shape(draws["weights"])[-1]
    dims = var_dims(covariance_type)
    coords = {"chain": np.arange(c), "draw": np.arange(s), "component": np.arange(k),
              "feature": np.arange(d), "feature_bis": np.arange(d), OBS_DIM: np.arange(n)}

    def ds(vars_, var_dims):
        used = {dim for v in var_dims.values() for dim in v} | {"chain", "draw"}
        data = {name: (("chain", "draw") + var_dims[name], np.asarray(v))
                for name, v in vars_.items()}
        return xr.Dataset(data, coords={kk: vv for kk, vv in coords.items() if kk in used})

    attrs = {"method": method, "covariance_type": covariance_type, "n_components": int(k),
             "relabelled": 0}
    posterior = ds({name: draws[name] for name in SITES}, dims)
    map_ds = params_dataset(GMMParams(mapp.weights, mapp.means, mapp.covariances,
                                      covariance_type))
    for name, sd in (site_dims or {}).items():
        posterior[name] = (("chain", "draw") + sd, np.asarray(draws[name]))
        map_ds[name] = (sd, np.asarray(map_values[name]))
    posterior.attrs.update(attrs)
    groups = {
        "posterior": posterior,
        "log_likelihood": ds({OBS_SITE: ll}, {OBS_SITE: (OBS_DIM,)}),
        "observed_data": xr.Dataset({OBS_SITE: ((OBS_DIM, "feature"), np.asarray(Xa))},
                                    coords={OBS_DIM: coords[OBS_DIM],
                                            "feature": coords["feature"]}),
        "map": map_ds,
    }
    if sample_stats is not None:
        groups["sample_stats"] = ds(dict(sample_stats), {name: () for name in sample_stats})
    if extra_groups:
        groups.update(extra_groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.InferenceData(**groups)


def mixture_posterior(idata):
    """``idata.posterior``, checked to hold the mixture's variables (``weights``,
    ``means``, ``covariances``); TypeError/ValueError naming what is missing."""
    if not hasattr(idata, "groups") or "posterior" not in idata.groups():
        raise TypeError("idata must be an arviz.InferenceData with a 'posterior' group "
                        f"(from fit_nuts / fit_svi); got {type(idata).__name__}")
    post = idata.posterior
    missing = [s for s in SITES if s not in post]
    if missing:
        raise ValueError(f"idata.posterior lacks the mixture variables {missing}")
    return post


def with_feature_names(idata, names):
    """``idata`` with its ``feature`` (and ``feature_bis``) coordinates set to ``names`` in
    every group that has them (in place; returned for chaining). None leaves it as is.

    Summaries then read ``means[0, petal length]`` instead of ``means[0, 2]``.
    """
    if names is None:
        return idata
    labels = np.asarray([str(n) for n in names])
    for g in idata.groups():
        ds = idata[g]
        new = {dim: labels for dim in ("feature", "feature_bis") if dim in ds.dims}
        if new:
            if any(ds.sizes[dim] != len(labels) for dim in new):
                raise ValueError(f"{len(labels)} feature names for {ds.sizes['feature']} "
                                 "features")
            setattr(idata, g, ds.assign_coords(new))
    return idata

"""Choosing the number of components: BIC/AIC from EM, ELPD-LOO from the posterior.

:func:`compare` fits one mixture per K and returns a table indexed by K:

* every method: ``n_parameters``, ``log_likelihood`` (total, at the EM fit), ``bic``, ``aic``
  (Schwarz 1978; lower is better);
* ``method="nuts"`` or ``"svi"``: also ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff``, ``dse``,
  ``weight``, ``pareto_k_max`` and ``warning`` from ``az.loo`` / ``az.compare``
  (Vehtari, Gelman & Gabry 2017; higher ELPD is better).

The recommended K is the smallest BIC for EM and the top ``az.compare`` rank (largest
ELPD-LOO) for the Bayesian methods; it is in ``table.attrs["best_k"]`` and in the boolean
column ``best``.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from . import _checks as C
from .bayes.posterior import fit_nuts, fit_svi
from .densities import log_prob, n_parameters
from .fit import fit_em

__all__ = ["compare"]

METHODS = ("em", "nuts", "svi")


def _key(key, random_state):
    if key is not None and random_state is not None:
        raise ValueError("pass key or random_state, not both")
    if key is None and random_state is None:
        raise TypeError("key is required: pass key=jax.random.key(seed) (or random_state=seed)")
    return C.check_key(key if key is not None else random_state,
                       "key" if key is not None else "random_state")


def _check_ks(n_components, n_samples):
    if isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool):
        n_components = [n_components]
    try:
        ks = [C.check_n_components(k, n_samples) for k in n_components]
    except TypeError:
        raise TypeError("n_components must be an int or a sequence of ints; got "
                        f"{n_components!r}") from None
    if not ks:
        raise ValueError("n_components must list at least one K; got an empty sequence")
    if len(set(ks)) != len(ks):
        raise ValueError(f"n_components has repeated values: {list(n_components)}")
    return sorted(ks)


def compare(X, n_components=(1, 2, 3, 4, 5, 6), method: str = "em", *,
            covariance_type: str = "full", key=None, random_state=None, return_fits: bool = False,
            **fit_kwargs):
    """Fit one mixture per K and rank them by BIC (EM) or ELPD-LOO (NUTS/SVI).

    Parameters
    ----------
    X : (N, D) array.
    n_components : int or sequence of ints, the K to compare.
    method : "em" (BIC/AIC of the maximum-likelihood or MAP fit), "nuts" or "svi"
        (PSIS-LOO of the posterior; BIC/AIC of an EM fit are reported alongside).
    covariance_type : "full" | "tied" | "diag" | "spherical".
    key, random_state : a `jax.random.key` or an int seed (one or the other is required).
        Each K gets ``jax.random.fold_in(key, K)``.
    return_fits : if True, also return a dict K -> fit (`EMResult` for EM, InferenceData for
        NUTS/SVI).
    **fit_kwargs : passed to :func:`bayes_gmm.fit_em` (EM; ``n_init`` defaults to 5 here
        so that a local optimum does not decide K) or to ``fit_nuts`` / ``fit_svi``.

    Returns
    -------
    pandas.DataFrame indexed by K (name ``"n_components"``), with the columns listed in the
    module docstring and a boolean ``best``; ``attrs["best_k"]`` is the recommended K,
    ``attrs["criterion"]`` is ``"bic"`` or ``"elpd_loo"``. With ``return_fits=True``, the
    pair ``(table, fits)``.

    Examples
    --------
    >>> import jax, bayes_gmm as bg
    >>> from bayes_gmm.datasets import load_old_faithful
    >>> table = bg.compare(load_old_faithful(), [1, 2, 3], key=jax.random.key(0))
    >>> table.attrs["best_k"], table.index.tolist()
    (2, [1, 2, 3])
    """
    import pandas as pd

    C.check_choice("method", method, METHODS)
    covariance_type = C.check_covariance_type(covariance_type)
    X = C.check_X(X)
    n, d = X.shape
    ks = _check_ks(n_components, n)
    key = _key(key, random_state)

    em_kwargs = dict(fit_kwargs) if method == "em" else {}
    em_kwargs.setdefault("n_init", 5)
    rows, idatas, ems = [], {}, {}
    for k in ks:
        kk = jax.random.fold_in(key, k)
        res = fit_em(X, k, key=kk, covariance_type=covariance_type, **em_kwargs)
        ems[k] = res
        loglik = float(np.sum(np.asarray(log_prob(res.params, X), np.float64)))
        p = n_parameters(res.params)
        rows.append({"n_parameters": p, "log_likelihood": loglik,
                     "bic": -2.0 * loglik + p * np.log(n), "aic": -2.0 * loglik + 2.0 * p})
        if method != "em":
            fit = fit_nuts if method == "nuts" else fit_svi
            idatas[k] = fit(X, k, key=kk, covariance_type=covariance_type, **fit_kwargs)
    table = pd.DataFrame(rows, index=pd.Index(ks, name="n_components"))

    if method == "em":
        best = int(table["bic"].idxmin())
        criterion = "bic"
    else:
        import arviz as az
        loo_cols = {c: [] for c in ("elpd_loo", "se", "p_loo", "pareto_k_max", "warning")}
        for k in ks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # reported in the table instead
                loo = az.loo(idatas[k], pointwise=True)
            loo_cols["elpd_loo"].append(float(loo["elpd_loo"]))
            loo_cols["se"].append(float(loo["se"]))
            loo_cols["p_loo"].append(float(loo["p_loo"]))
            loo_cols["pareto_k_max"].append(float(np.max(np.asarray(loo["pareto_k"]))))
            loo_cols["warning"].append(bool(loo["warning"]))
        for c, v in loo_cols.items():
            table[c] = v
        if len(ks) > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                cmp = az.compare({str(k): idatas[k] for k in ks}, ic="loo")
            cmp.index = cmp.index.astype(int)
            for c in ("rank", "elpd_diff", "dse", "weight"):
                table[c] = cmp[c].reindex(table.index).to_numpy()
            best = int(cmp["rank"].idxmin())
        else:
            best = ks[0]
        criterion = "elpd_loo"
    table["best"] = table.index == best
    table.attrs["best_k"] = best
    table.attrs["criterion"] = criterion
    table.attrs["method"] = method
    table.attrs["covariance_type"] = covariance_type
    if return_fits:
        return table, (ems if method == "em" else idatas)
    return table

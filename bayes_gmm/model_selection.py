"""Choosing the number of components: BIC/AIC from EM, ELPD-LOO from the posterior.

:func:`compare` fits one mixture per K (and per covariance type, given several) and
returns a table indexed by K (or by (covariance_type, K)):

* every method: ``n_parameters`` (mclust's count for mclust's names), ``log_likelihood``
  (total, at the EM fit), ``bic``, ``icl``, ``aic`` (Schwarz 1978; lower is better),
  ``converged``, ``degenerate`` and ``degenerate_reason``, ``seconds``
  (the cell's wall time) and ``compile_seconds`` (the part of it spent tracing and
  compiling, measured from JAX's monitoring events: a cell whose shapes were seen before
  compiles nothing). Under maximum likelihood all K of a family are fitted by one
  compiled program in one call; each cell is charged an equal share of that call;
* ``method="nuts"`` or ``"svi"``: also ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff``, ``dse``
  (the standard error of the *difference* from the top model), ``weight``,
  ``pareto_k_max``, ``n_bad_pareto_k`` and ``warning`` from ``az.loo`` / ``az.compare``
  (Vehtari, Gelman & Gabry 2017; higher ELPD is better).

Model choice needs each cell at its optimum, so the EM fits here default to ``n_init=10``
restarts, ``tol=1e-9`` (mean log-likelihood per row), ``max_iter=2000`` and float64: the
BIC is then right to about 0.01 (with ``tol`` t and N rows, the BIC of a fit that still
moved by t per row is off by about 2Nt times the number of iterations left).

The recommendation (``attrs["best_k"]``, the boolean column ``best``, the rule in
``attrs["rule"]``):

* EM: the smallest BIC (or ICL, ``criterion="icl"``; Biernacki, Celeux & Govaert 2000:
  BIC plus twice the entropy of the hard classification, as mclust's ``icl``) among the
  fits that are not degenerate; over several covariance types, the best (type, K) is
  ``attrs["best_model"]``. A maximum-likelihood fit is
  *degenerate* when some component is empty, has fewer effective rows than its covariance
  needs, or has a singular covariance (:func:`bayes_gmm._checks.degenerate_components`): its
  likelihood is then set by ``reg_covar``, not by the data, and its BIC is meaningless
  (mclust leaves such cells empty). Degenerate rows keep their numbers, flagged.
* NUTS/SVI: the simplest model (smallest K) whose ELPD-LOO is within two standard errors
  of the difference (``elpd_diff <= 2 * dse``) of the top-ranked one: differences smaller
  than their own noise do not justify more components.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from . import _checks as C
from ._cache import CompileClock
from .bayes.posterior import fit_nuts, fit_svi
from .core.covariance import MCLUST_TYPES, MCLUST_TYPES_1D
from .core.params import GMMParams, padded
from .densities import classification_entropy, log_prob, n_parameters
from .fit import fit_em, fit_em_ks

__all__ = ["compare"]

METHODS = ("em", "nuts", "svi")
CRITERIA = ("bic", "icl")


def _check_families(covariance_type, d):
    """(names, grid): one family's name gives a table indexed by K; ``"all"`` (mclust's
    families: the fourteen, or E and V for one feature) or a list gives one indexed by
    (covariance_type, n_components)."""
    if isinstance(covariance_type, str) and covariance_type != "all":
        return [C.check_covariance_type(covariance_type)], False
    if covariance_type == "all":
        names = list(MCLUST_TYPES_1D if d == 1 else MCLUST_TYPES)
    else:
        names = list(covariance_type)
    if not names:
        raise ValueError("covariance_type must name at least one family; got an empty list")
    names = [C.check_covariance_type(t) for t in names]
    if len(set(names)) != len(names):
        raise ValueError(f"covariance_type has repeated names: {names}")
    return names, True


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


#: The defaults for the EM fits of a model-choice table (see the module docstring).
EM_DEFAULTS = {"n_init": 10, "tol": 1e-9, "max_iter": 2000, "dtype": np.float64}


def compare(X, n_components=(1, 2, 3, 4, 5, 6), method: str = "em", *,
            covariance_type="full", key=None, random_state=None, return_fits: bool = False,
            progress_bar: bool = False, criterion: str = "bic", missing: str = "error",
            **fit_kwargs):
    """Fit one mixture per K and rank them by BIC (EM) or ELPD-LOO (NUTS/SVI).

    Parameters
    ----------
    X : (N, D) array.
    n_components : int or sequence of ints, the K to compare.
    method : "em" (BIC/AIC of the maximum-likelihood or MAP fit), "nuts" or "svi"
        (PSIS-LOO of the posterior; BIC/AIC of an EM fit are reported alongside).
    covariance_type : one family's name (the table is indexed by K), or ``"all"`` (mclust's
        fourteen families, :data:`bayes_gmm.core.covariance.MCLUST_TYPES`, or ``E`` and
        ``V`` when X has one feature) or a list of names: the
        table is then indexed by ``(covariance_type, n_components)``, as mclust's BIC table
        (EM only).
    criterion : "bic" or "icl", the EM recommendation's criterion (both are columns).
    missing : "error" or "marginalize": NaN entries are integrated out, so the
        log-likelihood, BIC, ICL and (NUTS/SVI) ELPD-LOO are the observed-data ones; see
        :func:`bayes_gmm.fit_em` and :func:`bayes_gmm.fit_nuts`.
    key, random_state : a `jax.random.key` or an int seed (one or the other is required).
        Each K gets ``jax.random.fold_in(key, K)``.
    return_fits : if True, also return a dict K (or (covariance_type, K)) -> fit
        (`EMResult` for EM, InferenceData for NUTS/SVI).
    progress_bar : one progress bar over the cells; it shows each finished cell's fit and
        compile seconds apart. NUTS fits show their own bars when ``fit_kwargs`` asks for
        them.
    **fit_kwargs : passed to :func:`bayes_gmm.fit_em` (EM; the defaults here are
        ``EM_DEFAULTS``: ``n_init=10, tol=1e-9, max_iter=2000, dtype=float64``, and under
        maximum likelihood ``pad_components=max(n_components)``, so each covariance type
        compiles one EM program for all its K) or to ``fit_nuts`` / ``fit_svi``.

    Returns
    -------
    pandas.DataFrame indexed by K (name ``"n_components"``), with the columns listed in the
    module docstring and a boolean ``best``; ``attrs["best_k"]`` is the recommended K (None
    when every fit is degenerate), ``attrs["criterion"]`` is ``"bic"`` or ``"elpd_loo"``,
    ``attrs["rule"]`` says how K was chosen. With ``return_fits=True``, the pair
    ``(table, fits)``.

    Warns
    -----
    DegenerateFitWarning : once, naming the K whose fits are degenerate (they are never
    recommended).

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
    C.check_choice("criterion", criterion, CRITERIA)
    X = C.check_X(X, missing=missing)
    n, d = X.shape
    families, grid = _check_families(covariance_type, d)
    if grid and method != "em":
        raise ValueError("compare over several covariance types is EM only (BIC/ICL); for "
                         f"method={method!r} pass one covariance_type")
    ks = _check_ks(n_components, n)
    key = _key(key, random_state)
    if method != "em" or fit_kwargs.get("prior") is not None:
        # before any fit: a bad prior, or a family NUTS/SVI cannot sample, is refused
        for t in families:
            if method != "em":
                C.check_sampler(t)
            C.check_prior(fit_kwargs.get("prior"), max(ks), d, t)

    em_kwargs = {**EM_DEFAULTS, **(fit_kwargs if method == "em" else {}), "missing": missing}
    dtype = np.dtype(em_kwargs["dtype"])
    reg_covar = float(em_kwargs.get("reg_covar", 1e-6))
    variance = C.data_variance(X, em_kwargs.get("sample_weight"))
    rows, idatas, ems = [], {}, {}
    ml = em_kwargs.get("prior") is None
    if ml and not isinstance(em_kwargs.get("init"), GMMParams):
        # One compiled EM program per family: every K runs padded to the largest.
        em_kwargs.setdefault("pad_components", max(ks))
    bar = None
    if progress_bar:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(ks) * len(families), desc=f"compare ({method})", unit="fit")
    cells = [(t, k) for t in families for k in ks]
    together = {}                                # family -> ({K: first fit}, clock share)
    for t, k in cells:
        cell = (t, k) if grid else k
        kk = jax.random.fold_in(key, k)
        if em_kwargs.get("pad_components") and t not in together:
            # Every K of the family as one compiled program, in one call.
            with CompileClock() as share, warnings.catch_warnings():
                warnings.simplefilter("ignore", C.DegenerateFitWarning)  # in the table
                keys = jax.numpy.stack([jax.random.fold_in(key, j) for j in ks])
                fits = fit_em_ks(X, ks, keys, covariance_type=t, **em_kwargs)
            together[t] = (dict(zip(ks, fits)), share)
        first, share = together.get(t, ({}, None))
        with CompileClock() as clock:
            res, bad = _fit_cell(X, k, kk, t, em_kwargs, variance, reg_covar, dtype, ml,
                                 first.get(k))
            ems[cell] = res
            with C.x64_scope(dtype):
                # Padded back to the family's program shape (zero weights change
                # neither), so the densities compile once per family, not per K.
                same = padded(res.params, em_kwargs.get("pad_components") or k)
                loglik = float(np.sum(np.asarray(log_prob(same, X, missing=missing),
                                                 np.float64)))
                entropy = float(classification_entropy(same, X, missing))
            if method != "em":
                fit = fit_nuts if method == "nuts" else fit_svi
                idatas[k] = fit(X, k, key=kk, covariance_type=t, missing=missing,
                                **fit_kwargs)
        p = n_parameters(res.params)
        bic_value = -2.0 * loglik + p * np.log(n)
        icl_value = bic_value + 2.0 * entropy           # as densities.icl
        rows.append({"covariance_type": t, "n_components": k, "n_parameters": p,
                     "log_likelihood": loglik, "bic": bic_value,
                     "icl": icl_value,
                     "aic": -2.0 * loglik + 2.0 * p, "converged": bool(res.converged),
                     "degenerate": bool(bad),
                     "degenerate_reason": "; ".join(f"component {i}: {r}"
                                                    for i, r in bad.items()),
                     "seconds": clock.seconds, "compile_seconds": clock.compile_seconds})
        if share is not None:
            rows[-1]["seconds"] += share.seconds / len(ks)
            rows[-1]["compile_seconds"] += share.compile_seconds / len(ks)
        if bar is not None:
            name = f"{t}, K={k}" if grid else f"K={k}"
            bar.set_postfix_str(f"{name}: fit {clock.seconds - clock.compile_seconds:.1f} s "
                                f"+ compile {clock.compile_seconds:.1f} s")
            bar.update(1)
    if bar is not None:
        bar.close()
    table = pd.DataFrame(rows)
    if grid:
        table = table.set_index(["covariance_type", "n_components"])
    else:
        table = table.drop(columns="covariance_type").set_index("n_components")
    flagged = table.index[table["degenerate"]].tolist()
    if flagged:
        what = "models" if grid else "K ="
        warnings.warn(f"compare: the fits for {what} {flagged} are degenerate (see the "
                      "table's degenerate_reason) and are not recommended",
                      C.DegenerateFitWarning, stacklevel=2)

    if method == "em":
        ok = table.loc[~table["degenerate"], criterion]
        best = ok.idxmin() if len(ok) else None
        rule = (f"smallest {criterion.upper()} among the fits that are not degenerate")
    else:
        best = _loo_columns(table, idatas, ks)
        criterion = "elpd_loo"
        rule = ("smallest K whose ELPD-LOO is within 2 standard errors of the difference "
                "(elpd_diff <= 2 * dse) of the top-ranked model")
    table["best"] = [i == best for i in table.index]
    if grid:
        best_model = None if best is None else (best[0], int(best[1]))
        best_k = None if best is None else int(best[1])
    else:
        best_model = None if best is None else (families[0], int(best))
        best_k = None if best is None else int(best)
    table.attrs.update(best_k=best_k, best_model=best_model, criterion=criterion, rule=rule,
                       method=method, covariance_type=families if grid else families[0])
    if return_fits:
        return table, (ems if method == "em" else idatas)
    return table


def _fit_cell(X, k, key, covariance_type, em_kwargs, variance, reg_covar, dtype, ml,
              first=None):
    """The EM fit of one cell, and its degenerate components ({} if none); ``first``: the
    cell's fit already made (by the family's one program), judged here.

    Under maximum likelihood the best of the restarts can be a spurious optimum (a
    component on one row or a subspace: the likelihood is unbounded there). Then each
    restart is rerun on its own and the best non-degenerate one is kept; the cell is
    degenerate only when every restart is.
    """
    n, d = X.shape
    sw = em_kwargs.get("sample_weight")
    n_eff = n if sw is None else float(np.sum(np.asarray(sw, np.float64)))

    def one(key, res=None, **kw):
        if res is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", C.DegenerateFitWarning)   # in the table
                res = fit_em(X, k, key=key, covariance_type=covariance_type,
                             **{**em_kwargs, **kw})
        if not ml:
            return res, {}
        p = jax.device_get(res.params)
        return res, C.degenerate_components(p.weights, p.covariances, covariance_type, n_eff,
                                            d, variance, reg_covar, dtype)

    res, bad = one(key, first)
    n_init = int(em_kwargs.get("n_init", 1))
    if not bad or n_init == 1:
        return res, bad
    fits = [one(kj, n_init=1) for kj in jax.random.split(key, n_init)]
    good = [f for f, b in fits if not b]
    if not good:
        return res, bad
    return max(good, key=lambda f: float(f.objective)), {}


def _loo_columns(table, idatas, ks):
    """Add the PSIS-LOO columns to ``table``; return the recommended K."""
    import arviz as az
    cols = {c: [] for c in ("elpd_loo", "se", "p_loo", "pareto_k_max", "n_bad_pareto_k",
                            "warning")}
    for k in ks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # reported in the table instead
            loo = az.loo(idatas[k], pointwise=True)
        pk = np.asarray(loo["pareto_k"])
        cols["elpd_loo"].append(float(loo["elpd_loo"]))
        cols["se"].append(float(loo["se"]))
        cols["p_loo"].append(float(loo["p_loo"]))
        cols["pareto_k_max"].append(float(np.max(pk)))
        cols["n_bad_pareto_k"].append(int(np.sum(pk > float(loo["good_k"]))))
        cols["warning"].append(bool(loo["warning"]))
    for c, v in cols.items():
        table[c] = v
    if len(ks) == 1:
        table["rank"], table["elpd_diff"], table["dse"], table["weight"] = 0, 0.0, 0.0, 1.0
        return ks[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cmp = az.compare({str(k): idatas[k] for k in ks}, ic="loo")
    cmp.index = cmp.index.astype(int)
    for c in ("rank", "elpd_diff", "dse", "weight"):
        table[c] = cmp[c].reindex(table.index).to_numpy()
    within = table.index[table["elpd_diff"] <= 2.0 * table["dse"]]
    return int(min(within))

r"""Label switching: align every posterior draw's components with a reference (the MAP).

A mixture posterior is invariant to permuting the K components, so raw draws may swap
labels between (or within) chains, and per-component summaries (R-hat, ESS, posterior
means) are meaningless until the labels are aligned (Stephens 2000; Stan User's Guide,
"Label switching in mixture models"). For each draw s we pick the permutation σ_s that
minimises

.. math:: \sum_k \mathrm{KL}\big(\mathcal N(\mu^{(s)}_{\sigma_s(k)}, \Sigma^{(s)}_{\sigma_s(k)})
          \,\big\|\, \mathcal N(\hat\mu_k, \hat\Sigma_k)\big),

an assignment problem on the (K, K) cost matrix of KL divergences from each drawn
component to each reference component. It is solved exactly: by enumerating the K!
permutations for K ≤ 6, by the Hungarian algorithm (Kuhn–Munkres, O(K³)) beyond. The
same σ_s is applied to ``weights``, ``means`` and ``covariances`` (a tied covariance is
shared, so only weights and means move).

The reference is then refined (Stephens 2000, §4; Celeux 1998): it is replaced by the
component-wise posterior means of the relabelled draws and the draws are aligned again,
until no permutation changes (at most ``REFINE_ROUNDS`` rounds). The labels stay those of
the first reference; the refinement matters when the posterior does not sit where the MAP
does. Example: chains that settle on a partition the MAP does not have (standardised wine,
K = 3: a tiny component beside a merged one, where the MAP has three cultivars) match the
MAP's two unmatched components about equally well, and one pass against the MAP splits
their draws between two labellings, so summaries average a tiny component with a large
one; against the posterior's own means every draw gets the same labelling.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from ..core.params import GMMParams
from .idata import mixture_posterior, params_from_dataset, posterior_family

__all__ = ["relabel", "ensure_relabelled", "relabel_permutations", "assignment_cost",
           "linear_sum_assignment"]

BRUTE_FORCE_MAX_K = 6
#: Rounds of reference refinement after the first alignment (see the module docstring).
REFINE_ROUNDS = 10


#: Draws per block of the cost computation (memory ~ block · K² · D² floats).
COST_BLOCK = 256


def assignment_cost(draws: GMMParams, reference: GMMParams) -> np.ndarray:
    """Cost of giving drawn component i the reference label k: (S, K, K) KL divergences.

    draws: `GMMParams` whose arrays have one leading draw axis (S, ...); reference: the
    `GMMParams` to align with. KL(N(m_i, C_i) ‖ N(μ_k, Σ_k)) = ½(tr(Σ_k⁻¹C_i) + Mahalanobis
    − D + log|Σ_k| − log|C_i|), with tr(Σ_k⁻¹C_i) = ‖L_k⁻¹ L_i‖²_F from Cholesky factors.

    Computed on the host in float64 with NumPy/SciPy, in blocks of ``COST_BLOCK`` draws —
    not as an XLA program: jaxlib 0.10's batched LAPACK kernels (Cholesky, triangular
    solve) run inside a loop can deadlock the XLA:CPU thread pool on small machines (no CPU
    use, never returns; reproduced by ``benchmarks/jaxlib_lapack_loop_hang.py``), which is
    how a NUTS fit once hung inside ``relabel``.
    """
    from scipy.linalg import solve_triangular as solve_tri
    m = np.asarray(draws.means, np.float64)
    s, k, d = m.shape
    fam = draws.family
    cov = np.asarray(draws.covariances, np.float64)
    ref_m = np.asarray(reference.means, np.float64)
    ref_l = np.linalg.cholesky(reference.family.to_full(
        np.asarray(reference.covariances, np.float64), k, d, xp=np))          # (K, D, D)
    ref_logdet = 2.0 * np.sum(np.log(np.diagonal(ref_l, axis1=-2, axis2=-1)), -1)
    out = np.empty((s, k, k))
    for start in range(0, s, COST_BLOCK):
        c = np.stack([fam.to_full(ci, k, d, xp=np)
                      for ci in cov[start:start + COST_BLOCK]])               # (B, K, D, D)
        b = c.shape[0]
        li = np.linalg.cholesky(c)
        logdet = 2.0 * np.sum(np.log(np.diagonal(li, axis1=-2, axis2=-1)), -1)  # (B, K)
        for r in range(k):            # one triangular solve per reference component
            a = solve_tri(ref_l[r], np.moveaxis(li, -2, 0).reshape(d, -1), lower=True)
            trace = np.sum(np.square(a).reshape(d, b, k, d), axis=(0, 3))       # (B, K)
            diff = (m[start:start + b] - ref_m[r]).reshape(-1, d).T             # (D, B·K)
            z = solve_tri(ref_l[r], diff, lower=True)
            maha = np.sum(np.square(z), axis=0).reshape(b, k)
            out[start:start + b, :, r] = 0.5 * (trace + maha - d + ref_logdet[r] - logdet)
    return out


def linear_sum_assignment(cost) -> np.ndarray:
    """Exact minimum-cost assignment of a square (K, K) cost matrix (Hungarian algorithm).

    Returns ``col`` (K,) int: row i is assigned column ``col[i]``, minimising
    Σ_i cost[i, col[i]]. O(K³) (the shortest-augmenting-path form of Kuhn–Munkres with
    potentials; Jonker & Volgenant 1987).
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"cost must be a square (K, K) matrix; got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("cost must be finite; it contains NaN or infinity")
    n = c.shape[0]
    u = np.zeros(n + 1)
    v = np.zeros(n + 1)
    p = np.zeros(n + 1, dtype=np.int64)      # p[j]: row matched to column j (1-based; 0 free)
    way = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = c[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            masked = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(masked)) + 1
            delta = masked[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    col = np.empty(n, dtype=np.int64)
    col[p[1:] - 1] = np.arange(n)
    return col


def _best_permutations(cost: np.ndarray) -> np.ndarray:
    """perm (S, K): reference label k takes drawn component perm[s, k]."""
    s, k, _ = cost.shape
    if k <= BRUTE_FORCE_MAX_K:
        perms = np.array(list(itertools.permutations(range(k))), dtype=np.int64)   # (P, K)
        out = np.empty((s, k), dtype=np.int64)
        chunk = max(1, 2_000_000 // (perms.shape[0] * k))
        cols = np.arange(k)
        for start in range(0, s, chunk):
            cst = cost[start:start + chunk]                                          # (B, K, K)
            total = cst[:, perms, cols].sum(-1)                                      # (B, P)
            out[start:start + chunk] = perms[np.argmin(total, axis=1)]
        return out
    out = np.empty((s, k), dtype=np.int64)
    for i in range(s):
        col = linear_sum_assignment(cost[i])          # drawn component r -> label col[r]
        out[i, col] = np.arange(k)
    return out


def relabel_permutations(idata, reference=None, group="posterior") -> np.ndarray:
    """The per-draw permutations :func:`relabel` applies: (chain, draw, K) int.

    ``perm[c, s, k]`` is the drawn component that receives label k.
    """
    ds = idata[group]
    t = posterior_family(ds).name
    if reference is None:
        reference = _map_reference(idata, t)
    if not isinstance(reference, GMMParams):
        raise TypeError(f"reference must be a GMMParams or None; got {type(reference).__name__}")
    p = params_from_dataset(ds, t)
    c, s, k = p.weights.shape
    if reference.means.shape != p.means.shape[2:]:
        raise ValueError(f"reference means have shape {reference.means.shape}; the posterior "
                         f"has (component, feature) = {p.means.shape[2:]}")
    flat = GMMParams(p.weights.reshape(c * s, k), p.means.reshape((c * s,) + p.means.shape[2:]),
                     p.covariances.reshape((c * s,) + p.covariances.shape[2:]), t)
    perm = _best_permutations(assignment_cost(flat, reference))
    for _ in range(REFINE_ROUNDS):
        refined = _best_permutations(assignment_cost(flat, _mean_of_aligned(flat, perm)))
        if np.array_equal(refined, perm):
            break
        perm = refined
    return perm.reshape(c, s, k)


def _mean_of_aligned(flat: GMMParams, perm: np.ndarray) -> GMMParams:
    """Component-wise means of the draws (S, ...) permuted by perm (S, K): a reference.

    A shared (tied) covariance does not move with the labels; averaging covariances keeps
    them positive definite."""
    rows = np.arange(perm.shape[0])[:, None]
    w = np.asarray(flat.weights, np.float64)[rows, perm].mean(0)
    m = np.asarray(flat.means, np.float64)[rows, perm].mean(0)
    cov = np.asarray(flat.covariances, np.float64)
    cov = cov.mean(0) if flat.family.shared else cov[rows, perm].mean(0)
    return GMMParams(w, m, cov, flat.covariance_type)


def _map_reference(idata, covariance_type):
    if "map" not in idata.groups():
        raise ValueError("reference is None and the InferenceData has no 'map' group; pass "
                         "reference=GMMParams(...)")
    return params_from_dataset(idata["map"], covariance_type)


def _permute(ds, perm):
    """Apply perm (C, S, K) along the ``component`` dim of every variable that has it."""
    import xarray as xr
    out = {}
    for name, var in ds.data_vars.items():
        if "component" not in var.dims or var.dims[:2] != ("chain", "draw"):
            out[name] = var
            continue
        axis = var.dims.index("component")
        arr = np.asarray(var.values)
        idx = perm.reshape(perm.shape + (1,) * (arr.ndim - 3))
        idx = np.moveaxis(idx, 2, axis) if axis != 2 else idx
        out[name] = xr.DataArray(np.take_along_axis(arr, idx, axis=axis), dims=var.dims,
                                 coords=var.coords, attrs=var.attrs)
    new = xr.Dataset(out, coords=ds.coords, attrs=dict(ds.attrs))
    return new


def relabel(idata, reference=None):
    """Align the component labels of every draw with ``reference``.

    Parameters
    ----------
    idata : arviz.InferenceData
        with ``posterior`` variables ``weights (chain, draw, component)``,
        ``means (chain, draw, component, feature)`` and ``covariances``
        (posterior attribute ``covariance_type`` gives their layout).
    reference : `GMMParams` (K components) to align with, or None for the ``map`` group.

    Returns
    -------
    arviz.InferenceData
        A new object: ``posterior`` relabelled (attribute ``relabelled = 1``), the input's
        un-relabelled draws in ``posterior_raw`` (kept from the input if it has one), every
        other group shared. The input is left untouched. Log-likelihoods do not depend on
        labels and are unchanged.
    """
    import arviz as az
    perm = relabel_permutations(idata, reference)
    post = _permute(idata.posterior, perm)
    post.attrs["relabelled"] = 1
    groups = {g: idata[g] for g in idata.groups()}
    if "posterior_raw" not in groups:
        groups["posterior_raw"] = idata.posterior
    groups["posterior"] = post
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.InferenceData(**groups)


def ensure_relabelled(idata):
    """``idata`` itself when its posterior is relabelled (or has no ``map`` group to align
    with); otherwise :func:`relabel` of it."""
    post = mixture_posterior(idata)
    if int(post.attrs.get("relabelled", 0)) == 0 and "map" in idata.groups():
        return relabel(idata)
    return idata

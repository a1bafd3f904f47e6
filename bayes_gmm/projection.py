r"""Directions in which the components of a fitted mixture differ: the per-feature Fisher
ratio (:func:`separation`) and the discriminant directions of model-based clustering
(:func:`discriminant_directions`, Scrucca's MclustDR), with the mixture projected on them
(:func:`project`). Host-side NumPy float64: these feed figures, not the compiled core.

With weights π_k, means μ_k and (full) covariances Σ_k, μ̄ = Σ_k π_k μ_k,

.. math::

    Σ_B = Σ_k π_k (μ_k − μ̄)(μ_k − μ̄)ᵀ,\quad \bar Σ = Σ_k π_k Σ_k,\quad Σ = \bar Σ + Σ_B,

    M = 2w\,Σ_B Σ^{-1} Σ_B + 2(1 − w) Σ_k π_k (Σ_k − \bar Σ) Σ^{-1} (Σ_k − \bar Σ),

and the directions v solve M v = λ Σ v, by decreasing λ. The first term sees differences
between the means, the second differences between the covariances; w = 1/2 (mclust's
default ``lambda``) weighs them equally, w = 1 keeps the means only (with equal
covariances both span Fisher's linear discriminants).

References
----------
Scrucca, L. (2010). Dimension reduction for model-based clustering. *Statistics and
Computing* 20, 471–484 (R package mclust, ``MclustDR``, whose ``lambda`` is w here).
"""

from __future__ import annotations

import numpy as np

from .core.params import GMMParams

__all__ = ["separation", "discriminant_directions", "project"]

#: Directions of Σ whose variance is below this fraction of the largest are treated as
#: null (no data varies there); mclust's ``MclustDR`` uses the same √eps.
RELATIVE_TOL = float(np.sqrt(np.finfo(np.float64).eps))


def _host(params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights (K,), means (K, D), full covariances (K, D, D)) as NumPy float64."""
    p = getattr(params, "params", params)            # an EMResult carries its params
    if not isinstance(p, GMMParams):
        raise TypeError("params must be a GMMParams (or an EMResult); got "
                        f"{type(params).__name__}")
    w = np.asarray(p.weights, np.float64)
    m = np.asarray(p.means, np.float64)
    if m.ndim != 2 or w.shape != m.shape[:1]:
        raise ValueError(f"params must hold weights (K,) and means (K, D); got shapes "
                         f"{w.shape} and {m.shape}")
    k, d = m.shape
    # NumPy, not jax.numpy: float64 must survive without JAX's x64 flag
    cov = p.family.to_full(np.asarray(p.covariances, np.float64), k, d, xp=np)
    return w / w.sum(), m, np.broadcast_to(cov, (k, d, d))


def separation(params: GMMParams) -> np.ndarray:
    """How well each feature separates the components: (D,) between-component variance of
    the means over the mean within-component variance, both weighted by the weights
    (a one-feature Fisher ratio)."""
    w, m, cov = _host(params)
    between = w @ np.square(m - w @ m)
    within = w @ np.diagonal(cov, axis1=-2, axis2=-1)
    return between / np.where(within > 0, within, np.finfo(np.float64).tiny)


def discriminant_directions(params: GMMParams, means_weight: float = 0.5
                            ) -> tuple[np.ndarray, np.ndarray]:
    r"""The discriminant directions of a fitted mixture (MclustDR), best first.

    Solves M v = λ Σ v (see the module docstring) in the coordinates that whiten Σ: with
    Σ = U diag(s) Uᵀ and W = U diag(s)^{-1/2}, WᵀMW = 2w B̃² + 2(1 − w) Σ_k π_k C̃_k² where
    B̃ = WᵀΣ_B W and C̃_k = Wᵀ(Σ_k − Σ̄)W, a sum of squares of symmetric matrices, so the
    eigenvalues are ≥ 0 by construction (clipped at 0 against roundoff), and no Σ⁻¹ is
    formed. Directions along which Σ has (relative) variance below ``RELATIVE_TOL`` carry
    λ = 0 and come last.

    The eigenvalues do not change under an affine map x ↦ Ax + b of the data (A
    invertible) and the directions map to A⁻ᵀv, so the projected data are the same up to
    a shift and a scale per direction.

    Parameters
    ----------
    params : `GMMParams` (any covariance type) or an `EMResult`.
    means_weight : w in [0, 1], the weight of the mean differences against the covariance
        differences (mclust's ``lambda``). The default 1/2 is MclustDR's. With 1 only the
        means count: use it when some features are nearly constant within some components
        (sparse pixels, counts), where a variance ratio, not a separation of the clusters,
        would otherwise give the first directions.

    Returns
    -------
    directions : (D, D) float64 array; column j is the j-th direction, of unit Euclidean
        norm (as mclust's ``normalized = TRUE``), its largest entry in magnitude positive.
    eigenvalues : (D,) float64, decreasing, ≥ 0. Only the first K − 1 can be nonzero when
        all covariances are equal; the mean-difference term alone gives at most 2w per
        direction (2w times the square of the fraction of Σ's variance along v that lies
        between the components).

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_gmm import GMMParams, discriminant_directions
    >>> p = GMMParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [0.0, 2.0]]),
    ...               np.ones(2), "spherical")
    >>> v, lam = discriminant_directions(p)
    >>> np.round(v[:, 0], 6).tolist(), np.round(lam, 6).tolist()   # the means differ along y
    ([0.0, 1.0], [0.25, 0.0])
    """
    if not 0.0 <= means_weight <= 1.0:
        raise ValueError(f"means_weight must be in [0, 1]; got {means_weight!r}")
    w, m, cov = _host(params)
    d = m.shape[1]
    dev = m - w @ m
    sigma_b = np.einsum("k,ki,kj->ij", w, dev, dev)
    sigma_w = np.einsum("k,kij->ij", w, cov)
    s, u = np.linalg.eigh(0.5 * (sigma_w + sigma_w.T) + sigma_b)
    keep = s > RELATIVE_TOL * max(float(s.max()), 0.0)
    if not keep.any():                                 # nothing varies: no direction
        return _canonical(np.eye(d)), np.zeros(d)
    white = u[:, keep] / np.sqrt(s[keep])             # Wᵀ Σ W = I
    b = white.T @ sigma_b @ white
    c = np.einsum("ia,kij,jb->kab", white, cov - sigma_w, white)
    kernel = 2.0 * means_weight * (b @ b) \
        + 2.0 * (1.0 - means_weight) * np.einsum("k,kab,kcb->ac", w, c, c)
    lam, z = np.linalg.eigh(0.5 * (kernel + kernel.T))
    order = np.argsort(-lam, kind="stable")
    directions = np.concatenate([white @ z[:, order], u[:, ~keep]], axis=1)
    eigenvalues = np.concatenate([np.clip(lam[order], 0.0, None), np.zeros((~keep).sum())])
    return _canonical(directions), eigenvalues


def _canonical(v: np.ndarray) -> np.ndarray:
    """Columns scaled to unit norm with their largest-magnitude entry positive."""
    v = v / np.linalg.norm(v, axis=0)
    big = np.argmax(np.abs(v), axis=0)
    return v * np.sign(v[big, np.arange(v.shape[1])])


def project(params: GMMParams, directions: np.ndarray) -> GMMParams:
    """The mixture seen along ``directions`` (D, q): the linear map x ↦ Vᵀx sends
    N(μ_k, Σ_k) to N(Vᵀμ_k, VᵀΣ_k V). Returns a full-covariance `GMMParams` of NumPy
    float64 arrays: weights (K,), means (K, q), covariances (K, q, q)."""
    w, m, cov = _host(params)
    v = np.asarray(directions, np.float64)
    if v.ndim != 2 or v.shape[0] != m.shape[1]:
        raise ValueError(f"directions must be (D, q) with D = {m.shape[1]}; got shape "
                         f"{v.shape}")
    return GMMParams(np.asarray(getattr(params, "params", params).weights, np.float64),
                     m @ v, np.einsum("ia,kij,jb->kab", v, cov, v), "full")

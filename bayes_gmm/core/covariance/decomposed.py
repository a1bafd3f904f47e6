r"""mclust's eigen-decomposed families: Σ_k = λ_k D_k A_k D_kᵀ, named by three letters.

Volume λ (det Σ_k = λ_k^D), shape A (diagonal, det A = 1) and orientation D (orthogonal) are
each **E**\ qual across components, **V**\ ariable, or the **I**\ dentity (Banfield &
Raftery 1993; Celeux & Govaert 1995). The covariances are stored as full (K, D, D)
matrices, so the E-step, densities and figures are those of ``full``; each family only
brings its maximum-likelihood M-step, its parameter count (mclust's ``nVarParams``) and how
many rows a component needs.

One-dimensional data take mclust's ``E`` (one variance) and ``V`` (a variance per
component), which are EII and VII there.

M-steps, from the centred scatter W_k = Σ_n r_nk (x_n − x̄_k)(x_n − x̄_k)ᵀ, n_k and
n = Σ_k n_k (Celeux & Govaert 1995, §3–4):

* closed form: EII λ = tr W / (nD); VII λ_k = tr W_k / (n_k D); EEI Σ = diag W / n;
  VVI Σ_k = diag W_k / n_k; EVI Σ_k = λ B_k with B_k = diag W_k / det(diag W_k)^{1/D} and
  λ = Σ_k det(diag W_k)^{1/D} / n; EEE Σ = W / n; EEV Σ_k = L_k (Σ_j Ω_j / n) L_kᵀ from
  W_k = L_k Ω_k L_kᵀ (eigenvalues in one order); EVV Σ_k = λ C_k with
  C_k = W_k / det(W_k)^{1/D} and λ = Σ_k det(W_k)^{1/D} / n; VVV Σ_k = W_k / n_k;
* by alternating the closed-form maximisations (each one raises the expected
  complete-data log-likelihood, and the loop starts at the previous parameters, so every
  EM step is monotone — a generalised EM): VEI (λ_k given B, then B given λ_k), VEE (λ_k
  given C, then C = normalised Σ_k W_k / λ_k), VEV (λ_k and the common shape A given the
  orientations L_k of the W_k);
* EVE and VVE (one orientation D, shapes A_k varying) alternate the closed-form volumes
  and shapes given D (those of EVI and VVI in D's axes) with a majorise–minimise step for
  D given them (Browne & McNicholas 2014): with ω_k the largest eigenvalue of W_k,
  Σ_k tr(W_k D C_k⁻¹ Dᵀ) (C_k = λ_k A_k) is majorised at D₀ by a term linear in D, whose
  minimiser over orthogonal matrices is D = U Vᵀ from the SVD
  U s Vᵀ = Σ_k (ω_k I − W_k) D₀ C_k⁻¹. Each step lowers the objective.

A component left empty (no rows) enters the shared quantities with its previous
covariance at a negligible weight, and keeps that covariance.

**The prior** (``GMMPrior``; the means are μ_k | Σ_k ~ N(m₀, Σ_k/κ₀) in every family):

* VVV, and V in one dimension, are ``full`` by another name: Σ_k ~ InverseWishart(ν₀, Ψ₀).
* EII (and E), VII, EEI, VVI and EEE are a few free numbers θ (:mod:`bayes_gmm.core.covariance.embedded`): one
  variance, a variance per component, one diagonal, a diagonal per component, one matrix.
  θ takes the prior of ``spherical``, ``diag``, ``tied`` or their shared versions, so VII,
  VVI and EEE are those models exactly (MAP, NUTS and SVI alike), and the MAP M-step is θ's
  closed form.
* The other eight (VEI, EVI, VEE, EVE, VVE, EEV, VEV, EVV) take Fraley & Raftery's (2007)
  regularisation, as mclust's ``priorControl``: the prior density of their class — an
  inverse-gamma per variance for the diagonal VEI and EVI, an inverse-Wishart otherwise —
  evaluated at each constrained Σ_k. With the means' prior folded in, the log posterior's
  covariance part is Σ_k [−(a/2) log|Σ_k| − ½ tr((B_k + P) Σ_k⁻¹)] (B_k the scatter plus
  the mean-shrinkage term; a = ν₀ + D + 2 and P = Ψ₀ for the inverse-Wishart, a = ν₀ + 3
  and P = diag ψ for the inverse-gamma), so the MAP M-step is the family's own
  maximum-likelihood M-step with scatter B_k + P and count N_k + a — monotone as above.
  That density is a penalty on the constrained matrices, not a normalised density on the
  family's own coordinates (a volume, a shape on the unit-determinant surface, an
  orientation on the orthogonal group): a sampler would have to choose a reference
  measure there, and its posterior would depend on that choice, which MAP never sees.
  NUTS and SVI therefore refuse these eight (``has_sampler``) and name the smallest
  family containing them that they can sample (``nearest``: VVI for VEI and EVI, VVV for
  the rest).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .base import eye
from .diagonal import Diag, Spherical
from .embedded import EmbeddedPrior, SharedDiag, SharedSpherical
from .matrix import Full, Tied

__all__ = ["DECOMPOSED", "Decomposed"]

#: The families that are a few free numbers θ, and the compact family of θ.
_COMPACT = {"EII": SharedSpherical(), "VII": Spherical(), "EEI": SharedDiag(), "VVI": Diag(),
            "EEE": Tied()}

#: Inner iterations of the alternating M-steps (VEI, VEE, VEV) per EM step.
INNER_ITERATIONS = 10


def _root_det(m, d):
    """det(M)^{1/D} of SPD matrices (…, D, D), through the log-determinant."""
    return jnp.exp(jnp.linalg.slogdet(m)[1] / d)


def _unit_det_diag(v, d):
    """A positive vector (…, D) scaled to product 1."""
    return v / jnp.exp(jnp.mean(jnp.log(v), axis=-1, keepdims=True))


def _diag(v):
    return v[..., :, None] * eye(v.shape[-1], v.dtype)


def _orientation_of(prev, k):
    """The common eigenvectors of covariances that share an orientation: those of a
    positive combination with unequal weights (which separates eigenvalues that any single
    component, or a plain sum, may tie)."""
    t = 1.0 + jnp.arange(k, dtype=prev.dtype) / (k * jnp.pi)
    scale = jnp.trace(prev, axis1=-2, axis2=-1)[:, None, None]
    return jnp.linalg.eigh(jnp.sum(t[:, None, None] * prev / scale, 0))[1]


def _common_orientation(S, nk, n, prev, k, d, equal_volume):
    """EVE / VVE: Σ_k = D diag(c_k) Dᵀ, alternating c given D and an MM step for D."""
    omega = jnp.linalg.eigvalsh(S)[:, -1]                        # ω_k ≥ every eigenvalue
    gap = omega[:, None, None] * eye(d, S.dtype) - S             # ω_k I − W_k ⪰ 0

    def variances(o):
        b = jnp.diagonal(jnp.swapaxes(o, -1, -2) @ S @ o, axis1=-2, axis2=-1)   # (K, D)
        if not equal_volume:
            return b / nk[:, None]                               # VVI in D's axes
        root = jnp.exp(jnp.mean(jnp.log(b), axis=-1))            # EVI in D's axes
        return (jnp.sum(root) / n) * b / root[:, None]

    def orientation(o, c):
        g = jnp.sum(gap @ o / c[:, None, :], 0)
        u, _, vt = jnp.linalg.svd(g)
        return u @ vt

    def step(_, carry):
        o, c = carry
        o = orientation(o, c)
        return o, variances(o)

    o = _orientation_of(prev, k)                                 # start at the previous
    c = jnp.diagonal(o.T @ prev @ o, axis1=-2, axis2=-1)         # (D, C_k), so each step
    o, c = lax.fori_loop(0, INNER_ITERATIONS, step, (o, c))      # is monotone from there
    return (o * c[:, None, :]) @ o.T


class Decomposed(Full):
    """A family of the λ_k D_k A_k D_kᵀ decomposition, by its mclust name."""

    def __init__(self, name: str):
        self.name = name
        # One-dimensional data have only a volume (a variance): mclust's E and V.
        self.volume, self.shape_, self.orientation = name if len(name) == 3 else name + "II"
        self.n_features = 1 if len(name) == 1 else None
        tag = self.volume + self.shape_ + self.orientation
        #: The compact family whose prior this one is, through θ (None: not compact).
        self.compact = None if name == "V" else _COMPACT.get(tag)
        #: The class whose per-component prior is this family's penalty (None: not one).
        self.penalty = None
        if self.compact is None and tag != "VVV" and name != "V":
            self.penalty = Diag() if self.orientation == "I" else Full()
        self.has_sampler = self.penalty is None
        self.nearest = "" if self.has_sampler else ("VVI" if self.orientation == "I" else "VVV")

    def check_features(self, d: int) -> None:
        if self.n_features is not None and d != self.n_features:
            raise ValueError(f"covariance_type={self.name!r} is mclust's name for "
                             f"one-dimensional data; X has {d} features (use "
                             f"{self.name + 'II'!r} or another three-letter family)")

    # --- counts -------------------------------------------------------------------------
    def n_parameters(self, k, d):
        vol = {"E": 1, "V": k}[self.volume]
        shape = {"I": 0, "E": d - 1, "V": k * (d - 1)}[self.shape_]
        orient = {"I": 0, "E": d * (d - 1) // 2, "V": k * d * (d - 1) // 2}[self.orientation]
        return vol + shape + orient

    def underdetermined(self, weights, n_eff, d):
        import numpy as np
        need = 1
        if "V" in (self.volume, self.shape_):
            need = 2
        if self.orientation == "V":
            need = d + 1
        return np.flatnonzero((weights > 0) & (weights * n_eff < need)), need

    # --- the M-step ---------------------------------------------------------------------
    def ml_covariance(self, S, nk, reg_covar, prev, empty):
        k, d = S.shape[0], S.shape[-1]
        n = jnp.sum(nk)
        # An empty component's scatter is ~0, which no shape or volume can divide by; it
        # enters with its previous covariance at its weight nk (≈ 10 eps), which leaves the
        # other components' shared parameters as they would be without it.
        S = jnp.where(empty[:, None, None], prev * nk[:, None, None], S)
        cov = getattr(self, "_m_" + self.volume + self.shape_ + self.orientation)(
            S, nk, n, prev, k, d)
        cov = 0.5 * (cov + jnp.swapaxes(cov, -1, -2)) + reg_covar * eye(d, S.dtype)
        return jnp.where(empty[:, None, None], prev, cov)

    def _m_EII(self, S, nk, n, prev, k, d):
        lam = jnp.trace(jnp.sum(S, 0)) / (n * d)
        return jnp.broadcast_to(lam * eye(d, S.dtype), (k, d, d))

    def _m_VII(self, S, nk, n, prev, k, d):
        lam = jnp.trace(S, axis1=-2, axis2=-1) / (nk * d)
        return lam[:, None, None] * eye(d, S.dtype)

    def _m_EEI(self, S, nk, n, prev, k, d):
        v = jnp.diagonal(jnp.sum(S, 0)) / n
        return jnp.broadcast_to(_diag(v), (k, d, d))

    def _m_VVI(self, S, nk, n, prev, k, d):
        return _diag(jnp.diagonal(S, axis1=-2, axis2=-1) / nk[:, None])

    def _m_EVI(self, S, nk, n, prev, k, d):
        dk = jnp.diagonal(S, axis1=-2, axis2=-1)                      # (K, D)
        root = jnp.exp(jnp.mean(jnp.log(dk), axis=-1))                # det(diag W_k)^{1/D}
        lam = jnp.sum(root) / n
        return _diag(lam * dk / root[:, None])

    def _m_VEI(self, S, nk, n, prev, k, d):
        dk = jnp.diagonal(S, axis1=-2, axis2=-1)                      # (K, D)
        # Start at the previous common shape: B ∝ the mean of diag Σ_k / λ_k.
        pv = jnp.diagonal(prev, axis1=-2, axis2=-1)
        b = _unit_det_diag(jnp.mean(_unit_det_diag(pv, d), 0), d)

        def step(_, b):
            lam = jnp.sum(dk / b, -1) / (nk * d)                        # λ_k given B
            return _unit_det_diag(jnp.sum(dk / lam[:, None], 0), d)     # B given λ_k

        b = lax.fori_loop(0, INNER_ITERATIONS, step, b)
        lam = jnp.sum(dk / b, -1) / (nk * d)
        return _diag(lam[:, None] * b)

    def _m_EEE(self, S, nk, n, prev, k, d):
        return jnp.broadcast_to(jnp.sum(S, 0) / n, (k, d, d))

    def _m_VEE(self, S, nk, n, prev, k, d):
        # Start at the previous common shape-and-orientation C = Σ_k / λ_k (det 1).
        c = jnp.mean(prev / _root_det(prev, d)[:, None, None], 0)
        c = c / _root_det(c, d)

        def step(_, c):
            lam = jnp.trace(jnp.linalg.solve(c, S), axis1=-2, axis2=-1) / (nk * d)
            c = jnp.sum(S / lam[:, None, None], 0)
            c = 0.5 * (c + c.T)
            return c / _root_det(c, d)

        c = lax.fori_loop(0, INNER_ITERATIONS, step, c)
        lam = jnp.trace(jnp.linalg.solve(c, S), axis1=-2, axis2=-1) / (nk * d)
        return lam[:, None, None] * c

    def _m_EEV(self, S, nk, n, prev, k, d):
        omega, vec = jnp.linalg.eigh(S)                  # ascending eigenvalues, every k
        common = jnp.sum(omega, 0) / n
        return (vec * common) @ jnp.swapaxes(vec, -1, -2)

    def _m_VEV(self, S, nk, n, prev, k, d):
        omega, vec = jnp.linalg.eigh(S)                  # orientations L_k, ascending Ω_k
        pe = jnp.linalg.eigvalsh(prev)                   # the previous common shape
        a = _unit_det_diag(jnp.mean(_unit_det_diag(pe, d), 0), d)

        def step(_, a):
            lam = jnp.sum(omega / a, -1) / (nk * d)
            return _unit_det_diag(jnp.sum(omega / lam[:, None], 0), d)

        a = lax.fori_loop(0, INNER_ITERATIONS, step, a)
        lam = jnp.sum(omega / a, -1) / (nk * d)
        return (vec * (lam[:, None] * a)[:, None, :]) @ jnp.swapaxes(vec, -1, -2)

    def _m_EVE(self, S, nk, n, prev, k, d):
        return _common_orientation(S, nk, n, prev, k, d, equal_volume=True)

    def _m_VVE(self, S, nk, n, prev, k, d):
        return _common_orientation(S, nk, n, prev, k, d, equal_volume=False)

    def _m_EVV(self, S, nk, n, prev, k, d):
        root = _root_det(S, d)                           # det(W_k)^{1/D}
        lam = jnp.sum(root) / n
        return lam * S / root[:, None, None]

    def _m_VVV(self, S, nk, n, prev, k, d):
        return S / nk[:, None, None]

    # --- the prior ----------------------------------------------------------------------
    # Three kinds (see the module docstring): ``full``'s own (VVV, V); a compact family's,
    # through θ (EII, E, VII, EEI, VVI, EEE); Fraley & Raftery's penalty of a class,
    # per component (the other eight).
    def _prior_family(self):
        return self.compact or self.penalty or Full()

    def default_scale(self, nu, target, k, d):
        return self._prior_family().default_scale(nu, target, k, d)

    def min_degrees_of_freedom(self, d):
        return self._prior_family().min_degrees_of_freedom(d)

    def scale_shapes(self, d):
        return self._prior_family().scale_shapes(d)

    def broadcast_scale(self, psi, d):
        return self._prior_family().broadcast_scale(psi, d)

    def check_scale(self, psi, d):
        return self._prior_family().check_scale(psi, d)

    def map_covariance(self, S, counts, shrink, dev, nu, psi, total, k, d, prev=None):
        if self.compact is not None:
            c = self.compact
            theta = c.map_covariance(c.scatter_from_full(S), counts, shrink, dev, nu, psi,
                                     total, k, d, c.from_full(prev))
            return c.to_full(theta, k, d)
        if self.penalty is None:
            return super().map_covariance(S, counts, shrink, dev, nu, psi, total, k, d)
        # The penalty is Σ_k [−(a/2) log|Σ_k| − ½ tr(P Σ_k⁻¹)] with the means' prior
        # folded in, so the posterior mode is the family's own maximum-likelihood M-step
        # on the scatter B_k + P and the count N_k + a.
        B = S + shrink[:, None, None] * dev[:, :, None] * dev[:, None, :]
        if isinstance(self.penalty, Full):
            P, a = psi, nu + d + 2.0                     # inverse-Wishart, + the mean's 1
        else:
            P, a = psi * eye(d, S.dtype), nu + 3.0       # inverse-gamma per variance
        nk = counts + a
        cov = getattr(self, "_m_" + self.volume + self.shape_ + self.orientation)(
            B + P[None], nk, jnp.sum(nk), prev, k, d)
        return 0.5 * (cov + jnp.swapaxes(cov, -1, -2))

    def covariance_prior(self, nu, psi, k, d):
        c = self.compact if self.compact is not None else self.penalty
        if c is None or isinstance(c, Full):
            return super().covariance_prior(nu, psi, k, d)
        return EmbeddedPrior(c.covariance_prior(nu, psi, k, d), c, k, d)

    def jitter(self, keys, cov, nk, n, d, jitter, num_chains):
        if self.compact is None:
            return super().jitter(keys, cov, nk, n, d, jitter, num_chains)
        c, k = self.compact, cov.shape[0]
        return c.to_full(c.jitter(keys, c.from_full(cov), nk, n, d, jitter, num_chains), k, d)


#: mclust's names.
DECOMPOSED = tuple(Decomposed(name) for name in (
    "E", "V", "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV",
    "VEV", "EVV", "VVV"))

"""Densities of a fitted mixture, the public edge: log p(x), responsibilities, labels,
draws, BIC/AIC.

Each function checks its input once, then runs the one mixture density
(:mod:`bayes_gmm.core.mixture`), jit-compiled at the top; ``batch_size`` bounds memory to
one chunk of rows.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks as C
from .core import mixture
from .core.params import GMMParams, padded
from .core.rows import bucket_components, map_rows, pad_rows

__all__ = ["log_prob", "responsibilities", "predict", "sample", "bic", "aic", "icl",
           "classification_entropy", "n_parameters", "decompose"]


def _check(params, X, missing="error"):
    """X checked (a NumPy array when concrete, else the tracer)."""
    if not isinstance(params, GMMParams):
        raise TypeError(f"params must be a GMMParams; got {type(params).__name__}")
    if not C.is_traced(X):
        X = C.check_X(X, dtype=jnp.result_type(params.means), missing=missing,
                      empty_rows=True)
        C.check_n_features(X, params.means.shape[-1])
    return X


# Two compiled programs per (row bucket, K, D, family): the per-row scores (log p, labels
# and their sums, which log_prob, predict, bic, aic and icl all read) and responsibilities.
_row_scores = jax.jit(mixture.row_scores, static_argnames=("batch_size", "has_missing"))
_resp = jax.jit(lambda params, X, batch_size, has_missing: map_rows(
    lambda xc: mixture.responsibilities(params, xc, has_missing), X, batch_size),
    static_argnames=("batch_size", "has_missing"))

_sample = jax.jit(mixture.sample, static_argnames=("sample_shape",))


def _padded(params, X, batch_size, missing):
    """(params and X padded to their buckets, N, has NaN, batch_size checked): X's rows to
    its row bucket and the components to theirs (weight 0), so one compiled program serves
    every N of a bucket and every K up to a power of two. A host X stays on the host."""
    X = _check(params, X, missing)
    n = X.shape[0]
    X, _ = pad_rows(X)
    if not any(C.is_traced(a) for a in jax.tree.leaves(params)):
        params = padded(params, bucket_components(params.n_components, n))
    return params, X, n, C.has_nan(X), C.check_batch_size(batch_size)


def _unpad(a, n, k=None):
    """The first n rows (and k columns) of a per-row result; padding is cut on the host (a
    device slice would compile a program for every N)."""
    cut = (slice(0, n),) if k is None else (slice(0, n), slice(0, k))
    if C.is_traced(a):
        return a[cut]
    if a.shape[:len(cut)] == (n, k)[:len(cut)]:
        return a                    # nothing padded (a no-op slice would still compile)
    return jax.device_put(np.asarray(a)[cut])


def _scores(params, X, missing, batch_size=None):
    """(log p (N,), labels (N,), Σ log p, Σ −log max_k r_nk, N) from one program."""
    params, X, n, holes, batch_size = _padded(params, X, batch_size, missing)
    logp, labels, total, entropy = _row_scores(params, X, n, batch_size=batch_size,
                                               has_missing=holes)
    return _unpad(logp, n), _unpad(labels, n), total, entropy, n


def _criterion(total, penalty, entropy=0.0):
    """−2 (total − entropy) + penalty, as an array of total's dtype (host arithmetic when
    concrete: no program per operation)."""
    if C.is_traced(total):
        return -2.0 * (total - entropy) + penalty
    value = -2.0 * (np.asarray(total, np.float64) - np.asarray(entropy, np.float64))
    return jax.device_put(np.asarray(value + penalty, total.dtype))


def log_prob(params: GMMParams, X, batch_size=None, missing="error") -> jax.Array:
    """log p(x_n | θ) for each row. X: (N, D) -> (N,). ``missing``: "error" (NaN is an
    error naming its row and column) or "marginalize" (NaN entries are missing: each row's
    density is that of its observed entries, and a row with nothing observed has density 1).

    Examples
    --------
    >>> import jax.numpy as jnp, bayes_gmm as bg
    >>> p = bg.GMMParams(jnp.array([1.0]), jnp.zeros((1, 1)), jnp.ones((1,)), "spherical")
    >>> round(float(bg.log_prob(p, jnp.zeros((1, 1)))[0]), 4)   # log N(0 | 0, 1)
    -0.9189
    """
    return _scores(params, X, missing, batch_size)[0]


def responsibilities(params: GMMParams, X, batch_size=None, missing="error") -> jax.Array:
    """p(z_n = k | x_n, θ). X: (N, D) -> (N, K), rows sum to one. ``missing``: as :func:`log_prob`
    (a row with nothing observed gets the mixture weights)."""
    k = params.n_components
    params, X, n, holes, batch_size = _padded(params, X, batch_size, missing)
    return _unpad(_resp(params, X, batch_size, holes), n, k)


def predict(params: GMMParams, X, batch_size=None, missing="error") -> jax.Array:
    """Most probable component of each row: X (N, D) -> (N,) int32. ``missing``: as :func:`log_prob`
    (a row with nothing observed gets the mixture weights)."""
    return _scores(params, X, missing, batch_size)[1]


def sample(params: GMMParams, key, n: int):
    """Draw n rows: (X (n, D), labels (n,)).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, bayes_gmm as bg
    >>> p = bg.GMMParams(jnp.array([0.3, 0.7]), jnp.array([[0.0], [9.0]]), jnp.ones((2,)),
    ...                  "spherical")
    >>> X, labels = bg.sample(p, jax.random.key(0), 4)
    >>> X.shape, labels.shape
    ((4, 1), (4,))
    """
    if not isinstance(params, GMMParams):
        raise TypeError(f"params must be a GMMParams; got {type(params).__name__}")
    n = C.check_int("n", n, 1)
    return _sample(params, C.check_key(key), sample_shape=(n,))


def n_parameters(params: GMMParams) -> int:
    """Free parameters of the mixture: K − 1 weights, K·D means and the covariances'."""
    k, d = params.means.shape[-2:]
    return int(params.family.n_parameters(k, d) + k * d + k - 1)


def bic(params: GMMParams, X, missing="error") -> jax.Array:
    """Bayesian information criterion, −2 log L + p log N (lower is better); L is the
    observed-data likelihood with ``missing="marginalize"`` (see :func:`log_prob`)."""
    _, _, total, _, n = _scores(params, X, missing)
    return _criterion(total, n_parameters(params) * math.log(n))


def aic(params: GMMParams, X, missing="error") -> jax.Array:
    """Akaike information criterion, −2 log L + 2p (lower is better)."""
    return _criterion(_scores(params, X, missing)[2], 2.0 * n_parameters(params))


def icl(params: GMMParams, X, missing="error") -> jax.Array:
    """Integrated completed likelihood (Biernacki, Celeux & Govaert 2000), as mclust's
    ``icl``: BIC plus twice the entropy of the hard classification,
    BIC − 2 Σ_n log max_k r_nk (lower is better; ≥ BIC, equal when every row is certain).

    Examples
    --------
    >>> import jax.numpy as jnp, bayes_gmm as bg
    >>> p = bg.GMMParams(jnp.array([0.5, 0.5]), jnp.array([[0.0], [10.0]]),
    ...                  jnp.ones((2,)), "spherical")
    >>> X = jnp.array([[0.0], [10.0], [5.0]])
    >>> round(float(bg.icl(p, X) - bg.bic(p, X)), 4)      # only the middle row is unsure
    1.3863
    """
    _, _, total, entropy, n = _scores(params, X, missing)
    return _criterion(total, n_parameters(params) * math.log(n), entropy)


def classification_entropy(params: GMMParams, X, missing="error") -> jax.Array:
    """−Σ_n log max_k r_nk: the entropy of the hard classification that ICL adds to BIC
    (twice), 0 when every row is certain. Components of weight exactly 0 take no part."""
    return _scores(params, X, missing)[3]


def decompose(params: GMMParams):
    """The eigen-decomposition Σ_k = λ_k D_k A_k D_kᵀ of every component (Banfield &
    Raftery 1993; mclust's ``sigma2decomp``), for any covariance type.

    Returns ``(volume (K,), shape (K, D), orientation (K, D, D))``: λ_k = det(Σ_k)^{1/D}; A_k
    the eigenvalues over λ_k, decreasing, with product 1; D_k the matching unit
    eigenvectors as columns (their signs are arbitrary), so that
    Σ_k = λ_k D_k diag(A_k) D_kᵀ.

    Examples
    --------
    >>> import jax.numpy as jnp, bayes_gmm as bg
    >>> p = bg.GMMParams(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.array([[4.0, 1.0]]), "diag")
    >>> volume, shape, orientation = bg.decompose(p)
    >>> volume.tolist(), shape.tolist()
    ([2.0], [[2.0, 0.5]])
    """
    if not isinstance(params, GMMParams):
        raise TypeError(f"params must be a GMMParams; got {type(params).__name__}")
    k, d = params.means.shape[-2:]
    full = params.family.to_full(jnp.asarray(params.covariances), k, d)
    values, vectors = jnp.linalg.eigh(full)                 # ascending
    values, vectors = values[..., ::-1], vectors[..., ::-1]
    volume = jnp.exp(jnp.mean(jnp.log(values), axis=-1))
    return volume, values / volume[..., None], vectors

r"""Filling missing values (NaN) from a fitted mixture: conditional means, or multiple
imputations drawn from the (posterior) predictive of each row's holes given what it shows.

:func:`impute` is the one public entry. Given a `GMMParams` and no ``key`` it returns the
conditional means E[x_m | x_o, θ]; given a ``key`` it draws ``num_draws`` imputations from
p(x_m | x_o, θ) — under the one θ of a `GMMParams`, or under a different posterior draw θ_s
for each imputation when the source is an InferenceData from :func:`bayes_gmm.fit_nuts` /
:func:`bayes_gmm.fit_svi` (proper multiple imputation, Rubin 1987: the spread between
imputations carries the parameters' uncertainty too). The algebra is in
:mod:`bayes_gmm.core.missing`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks as C
from .bayes.idata import OBS_DIM, flat_draws, mixture_posterior
from .core import missing as missing_values
from .core import mixture
from .core.params import GMMParams
from .core.rows import default_batch_size, map_rows, pad_rows
from .core.seeding import normal

__all__ = ["impute"]

#: The name of the DataArray of multiple imputations.
IMPUTED = "imputed"


@partial(jax.jit, static_argnames=("batch_size",))
def _conditional_means(params: GMMParams, X, batch_size):
    log_weights = mixture.log_weights(params.weights)
    return map_rows(lambda xc: missing_values.conditional_mean(params, xc, log_weights), X,
                    batch_size)


@partial(jax.jit, static_argnames=("batch_size",))
def _draw_imputations(draws: GMMParams, X, keys, batch_size):
    """One imputation of every row per parameter draw (S, ...) and key (S,): (S, N, D)."""
    n, d = X.shape
    k = draws.weights.shape[-1]

    def one(args):
        w, mu, c, key = args
        p = GMMParams(w, mu, c, draws.covariance_type)
        kg, kn = jax.random.split(key)
        # The noise travels with the rows, so the draw does not depend on batch_size.
        aug = jnp.concatenate([X, jax.random.gumbel(kg, (n, k), X.dtype),
                               normal(kn, (n, d), X.dtype)], axis=1)

        def chunk(a):
            return missing_values.conditional_draw(p, a[:, :d], mixture.log_weights(w),
                                                   a[:, d:d + k], a[:, d + k:])
        return map_rows(chunk, aug, batch_size)
    return jax.lax.map(one, (draws.weights, draws.means, draws.covariances, keys))


def _source(source):
    """(parameter draws with a leading axis or one GMMParams, feature labels, is_posterior)."""
    if isinstance(source, GMMParams):
        return source, None, False
    post = mixture_posterior(source)        # TypeError/ValueError for anything else
    labels = post["means"].coords["feature"].values if "feature" in post.coords else None
    return flat_draws(post), labels, True


def impute(source, X, *, key=None, num_draws=100, batch_size=None):
    r"""Fill the NaN entries of X from a fitted mixture.

    Parameters
    ----------
    source : GMMParams or arviz.InferenceData
        A fit by :func:`bayes_gmm.fit_em`, or a mixture posterior from
        :func:`bayes_gmm.fit_nuts` / :func:`bayes_gmm.fit_svi`.
    X : (N, D) array
        The NaN entries are the holes to fill; observed entries are kept. Infinity is an
        error; a row with nothing observed is filled from the mixture itself.
    key : None, or a `jax.random.key` (an int seed is accepted)
        None (with a `GMMParams` only): the conditional means. Given: ``num_draws`` random
        imputations.
    num_draws : int
        Imputations to draw when ``key`` is given. From an InferenceData each uses its own
        posterior draw, chosen at random (without replacement when the posterior holds
        enough draws).
    batch_size : int or None
        Rows per chunk (memory grows as batch_size × K × D²); None chooses one.

    Returns
    -------
    filled : (N, D) array, when ``key`` is None
        Each hole replaced by E[x_m | x_o] = Σ_k r_k (μ_k,m + Σ_k,mo Σ_k,oo⁻¹ (x_o − μ_k,o)),
        r_k the row's responsibilities given x_o (Ghahramani & Jordan 1994); a row with
        nothing observed gets the mixture mean Σ_k π_k μ_k.
    imputations : xarray.DataArray, when ``key`` is given
        Named ``imputed``, dims ``(draw, obs_id, feature)``: draw s holds, in every hole, a
        draw of x_m from p(x_m | x_o, θ_s) — the component from the row's
        responsibilities, then that component's Gaussian conditional — with the observed
        entries unchanged. Its coordinate ``posterior_draw`` gives the (chain·draw) index
        of θ_s in the posterior.

    Examples
    --------
    >>> import numpy as np, jax, jax.numpy as jnp, bayes_gmm as bg
    >>> p = bg.GMMParams(jnp.array([1.0]), jnp.zeros((1, 2)),
    ...                  jnp.array([[[1.0, 0.8], [0.8, 1.0]]]), "full")
    >>> X = np.array([[1.0, np.nan]])
    >>> [round(float(v), 6) for v in bg.impute(p, X)[0]]
    [1.0, 0.8]
    >>> bg.impute(p, X, key=jax.random.key(0), num_draws=5).dims
    ('draw', 'obs_id', 'feature')
    """
    params, labels, posterior = _source(source)
    dtype = np.asarray(params.means).dtype
    k, d = np.shape(params.means)[-2:]
    X = C.check_X(X, dtype=dtype, missing="marginalize", empty_rows=True)
    C.check_n_features(X, d)
    batch_size = C.check_batch_size(batch_size)
    key = None if key is None else C.check_key(key)
    if key is None and posterior:
        raise TypeError("impute from an InferenceData draws multiple imputations: pass "
                        "key= (and num_draws=)")
    with C.x64_scope(dtype):
        n = X.shape[0]
        Xp, _ = pad_rows(X)                 # one compiled program per row bucket
        if batch_size is None:
            batch_size = default_batch_size(Xp.shape[0], k, d * d)
        if key is None:
            return _conditional_means(params, Xp, batch_size)[:n]
        which, draws = _pick_draws(params, posterior, key, num_draws)
        out = _draw_imputations(jax.tree.map(jnp.asarray, draws), Xp,
                                jax.random.split(jax.random.fold_in(key, 1), len(which)),
                                batch_size)
        out = np.asarray(jax.device_get(out))[:, :n]
    return _as_data_array(out, labels, which)


def _pick_draws(params, posterior, key, num_draws):
    """(indices of the parameter draws used (S,), those draws as one GMMParams)."""
    num_draws = C.check_int("num_draws", num_draws, 1)
    arrays = (params.weights, params.means, params.covariances)
    if posterior:
        s = np.shape(params.weights)[0]
        which = np.asarray(jax.random.choice(key, s, (num_draws,), replace=num_draws > s))
        picked = (np.asarray(a)[which] for a in arrays)
    else:
        which = np.zeros(num_draws, np.int64)
        picked = (np.broadcast_to(np.asarray(a), (num_draws,) + np.shape(a)) for a in arrays)
    return which, GMMParams(*picked, params.covariance_type)


def _as_data_array(out, labels, which):
    import xarray as xr
    s, n, d = out.shape
    return xr.DataArray(out, dims=("draw", OBS_DIM, "feature"), name=IMPUTED,
                        coords={"draw": np.arange(s), OBS_DIM: np.arange(n),
                                "feature": np.arange(d) if labels is None else labels,
                                "posterior_draw": ("draw", which)})

"""`GaussianMixtureIC`: choose the covariance family and K by BIC or ICL, as mclust does,
and behave as the chosen `GaussianMixture`.

scikit-learn has discussed such an estimator for years (``GaussianMixtureIC``, modelled on
mclust's ``Mclust``); this one fits the grid with :func:`bayes_gmm.compare` (one EM per
cell, the best of ``n_init`` restarts), never recommends a degenerate cell, and stores the
winning cell's fit itself, so its fitted attributes, ``bic`` and ``predict`` are those of
the cell in ``criterion_`` — nothing is refitted.
"""

from __future__ import annotations

from .. import _checks as C
from ..model_selection import EM_DEFAULTS, compare
from ._base import check_array
from .gaussian import INIT_NAMES, GaussianMixture

__all__ = ["GaussianMixtureIC"]


class GaussianMixtureIC(GaussianMixture):
    """A Gaussian mixture whose covariance family and number of components are chosen by
    BIC (or ICL) over a grid, as R's mclust chooses them.

    Parameters
    ----------
    n_components : int or sequence of ints, the K to try (default 1..9, as mclust).
    covariance_type : ``"all"`` (mclust's fourteen families, or ``E`` and ``V`` for one
        feature), one family's name, or a list of names.
    criterion : ``"bic"`` or ``"icl"`` (lower is better; both are columns of
        ``criterion_``).
    tol, reg_covar, max_iter, n_init, init_params, random_state, batch_size, verbose :
        as :class:`GaussianMixture`, for every cell's fit; the defaults (``tol=1e-9``,
        ``max_iter=2000``, ``n_init=10``) are :func:`bayes_gmm.compare`'s, so each cell is
        fitted to convergence from several starts before cells are compared.

    Attributes
    ----------
    criterion_ : pandas.DataFrame, :func:`bayes_gmm.compare`'s table (log-likelihood,
        n_parameters, bic, aic, icl, converged, degenerate, ...) for every cell.
    n_components_ : int, the chosen K.
    covariance_type_ : str, the chosen family.
    best_criterion_ : float, the chosen cell's BIC (or ICL).
    weights_, means_, covariances_, precisions_, precisions_cholesky_, converged_, n_iter_,
    lower_bound_, lower_bounds_, n_features_in_, feature_names_in_ : as
        :class:`GaussianMixture`, of the chosen cell's fit.

    Examples
    --------
    >>> from bayes_gmm import GaussianMixtureIC
    >>> from bayes_gmm.datasets import load_old_faithful
    >>> gm = GaussianMixtureIC([1, 2, 3], covariance_type=["EEE", "VVV"], n_init=3,
    ...                        random_state=0).fit(load_old_faithful())
    >>> gm.covariance_type_, gm.n_components_
    ('EEE', 3)
    """

    def __init__(self, n_components=range(1, 10), *, covariance_type="all", criterion="bic",
                 tol=EM_DEFAULTS["tol"], reg_covar=1e-6, max_iter=EM_DEFAULTS["max_iter"],
                 n_init=EM_DEFAULTS["n_init"], init_params="kmeans", random_state=None,
                 batch_size=None, verbose=0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.criterion = criterion
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.batch_size = batch_size
        self.verbose = verbose

    # GaussianMixture's own initial values, prior and warm start do not apply to a grid.
    prior = weights_init = means_init = precisions_init = None
    warm_start = False
    missing = "error"

    def _fit(self, X, sample_weight):
        """Fit every cell of the grid by EM and keep the best by ``criterion`` (``fit``
        and ``fit_predict`` are GaussianMixture's, around this)."""
        if self.init_params not in INIT_NAMES:
            raise ValueError(f"init_params must be one of {tuple(INIT_NAMES)}; got "
                             f"{self.init_params!r}")
        dtype = C.estimator_dtype(X)
        names = C.feature_names(X)
        Xa = check_array(X, dtype)
        kwargs = dict(tol=self.tol, reg_covar=self.reg_covar, max_iter=self.max_iter,
                      n_init=self.n_init, init=INIT_NAMES[self.init_params], dtype=dtype,
                      batch_size=self.batch_size)
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        table, fits = compare(Xa, self.n_components, covariance_type=self.covariance_type,
                              criterion=self.criterion,
                              key=C.check_random_state(self.random_state), return_fits=True,
                              progress_bar=bool(self.verbose), **kwargs)
        best = table.attrs["best_model"]
        if best is None:
            reasons = sorted(set(table["degenerate_reason"].dropna().astype(str)))
            raise ValueError(f"every cell of the grid is degenerate ({'; '.join(reasons)}); "
                             "try fewer components or simpler covariance types")
        family, k = best
        cell = best if table.index.nlevels == 2 else k
        with C.x64_scope(dtype):
            self._store(fits[cell], dtype, names)
        self.criterion_ = table
        self.n_components_ = int(k)
        self.covariance_type_ = family
        self.best_criterion_ = float(table.loc[cell, self.criterion])
        return Xa

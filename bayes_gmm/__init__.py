"""bayes_gmm: Gaussian mixture models in JAX — compiled EM, and the same model in NumPyro."""

from .densities import aic, bic, log_prob, predict, responsibilities, sample
from .em import EMResult, SuffStats, fit_em
from .estimators import GaussianMixture
from .params import GMMParams
from .priors import GMMPrior

__version__ = "0.1.0"

__all__ = [
    "EMResult", "GMMParams", "GMMPrior", "GaussianMixture", "SuffStats", "aic", "bic",
    "fit_em", "log_prob", "predict", "responsibilities", "sample",
]

"""bayes_gmm: Gaussian mixture models in JAX — compiled EM, and the same model in NumPyro."""

from .densities import aic, bic, log_prob, predict, responsibilities, sample
from .em import EMResult, SuffStats, fit_em
from .estimators import BayesianGaussianMixture, GaussianMixture
from .diagnostics import (DiagnosticWarning, assignment_probabilities, check_diagnostics,
                          coclustering, summary)
from .inference import fit_nuts, fit_svi
from .model import gmm_model
from .relabel import relabel
from .io import load, save
from .model_selection import compare
from .params import GMMParams
from ._validation import DegenerateFitWarning
from .priors import GMMPrior
from .sbc import plot_rank_histogram, sbc
from .scale import EMGridResult, fit_em_grid, fit_em_many, fit_em_stream
from . import plots  # bg.plots.plot_components

__version__ = "0.1.0"

__all__ = [
    "EMGridResult", "fit_em_grid", "fit_em_many", "fit_em_stream",
    "EMResult", "GMMParams", "GMMPrior", "GaussianMixture", "SuffStats", "aic", "bic",
    "fit_em", "log_prob", "predict", "responsibilities", "sample",
    "compare", "load", "plots", "save",
    "BayesianGaussianMixture", "DegenerateFitWarning", "DiagnosticWarning", "assignment_probabilities",
    "check_diagnostics", "coclustering", "fit_nuts", "fit_svi", "gmm_model", "relabel",
    "summary",
    "plot_rank_histogram", "sbc",
]

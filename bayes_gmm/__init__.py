"""bayes_gmm: Gaussian mixture models in JAX — compiled EM, and the same model in NumPyro.

Re-exports only; see the "Architecture" section of the README for where each concept lives.
"""

from . import plots
from ._cache import enable_compilation_cache
from .degeneracy import DegenerateFitWarning
from ._version import __version__
from .bayes.diagnostics import (DiagnosticWarning, assignment_probabilities,
                                check_diagnostics, coclustering, summary)
from .bayes.model import gmm_model
from .bayes.modes import posterior_modes
from .bayes.posterior import fit_nuts, fit_svi
from .bayes.relabel import relabel
from .bayes.calibration import plot_rank_histogram
from .bayes.sbc import sbc
from .core.em import EMResult, SuffStats
from .core.params import GMMParams
from .core.prior import GMMPrior
from .densities import aic, bic, decompose, icl, log_prob, predict, responsibilities, sample
from .estimators import BayesianGaussianMixture, GaussianMixture, GaussianMixtureIC
from .fit import EMGridResult, fit_em, fit_em_grid, fit_em_many
from .imputation import impute
from .io import load, save
from .model_selection import compare
from .projection import discriminant_directions
from .stream import fit_em_stream

#: Where compiled programs persist across processes (None: switched off).
COMPILATION_CACHE_DIR = enable_compilation_cache()

__all__ = [
    "BayesianGaussianMixture", "COMPILATION_CACHE_DIR", "DegenerateFitWarning", "DiagnosticWarning", "EMGridResult",
    "EMResult", "GMMParams", "GMMPrior", "GaussianMixture", "GaussianMixtureIC", "SuffStats", "__version__",
    "aic", "assignment_probabilities", "bic", "check_diagnostics", "coclustering", "compare",
    "decompose",
    "discriminant_directions", "fit_em", "fit_em_grid", "fit_em_many", "fit_em_stream",
    "fit_nuts", "fit_svi",
    "gmm_model", "icl", "impute", "load", "log_prob", "plot_rank_histogram", "plots", "posterior_modes",
    "predict", "relabel",
    "responsibilities", "sample", "save", "sbc", "summary",
]

"""scikit-learn-style estimators over the functional core: `GaussianMixture` (EM, ML or
MAP), `GaussianMixtureIC` (family and K chosen by BIC/ICL) and `BayesianGaussianMixture`
(the posterior by NUTS or SVI)."""

from ._base import exception_classes
from .bayesian import BayesianGaussianMixture
from .gaussian import GaussianMixture
from .model_choice import GaussianMixtureIC

__all__ = ["GaussianMixture", "GaussianMixtureIC", "BayesianGaussianMixture", "NotFittedError",
           "ConvergenceWarning"]


def __getattr__(name):
    # scikit-learn's classes when it is installed, resolved on first use.
    if name == "NotFittedError":
        return exception_classes()[0]
    if name == "ConvergenceWarning":
        return exception_classes()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Small helpers shared by the tests (not fixtures)."""

from bayes_gmm.core.covariance import COVARIANCE_TYPES, get_family  # noqa: F401


def full_covariances(params):
    """Covariances of a GMMParams expanded to (K, D, D), whatever the family."""
    k, d = params.means.shape[-2:]
    return params.family.to_full(params.covariances, k, d)

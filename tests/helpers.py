"""Small helpers shared by the tests (not fixtures)."""

from bayes_gmm.core.covariance import COVARIANCE_TYPES, get_family  # noqa: F401


def full_covariances(params):
    """Covariances of a GMMParams expanded to (K, D, D), whatever the family."""
    k, d = params.means.shape[-2:]
    return params.family.to_full(params.covariances, k, d)


class CompileCounter:
    """Counts XLA compilations in this process (JAX's backend-compile event; the test suite
    runs with the persistent compilation cache off, so every new program fires it)."""

    def __init__(self):
        import jax
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def during(self, fn):
        """Run fn(); return (its result, the programs it compiled)."""
        before = self.count
        out = fn()
        return out, self.count - before


#: One listener for the whole test process.
COMPILES = CompileCounter()

"""JAX's persistent compilation cache, switched on when bayes_gmm is imported.

A second process on the same machine then loads the compiled EM, NUTS and SVI programs
from disk instead of compiling them again. JAX's cache is one setting per process, so it
also serves the user's own programs. The cache lives in ``$XDG_CACHE_HOME/bayes_gmm/jax``
(``~/.cache/bayes_gmm/jax`` by default); ``BAYES_GMM_CACHE_DIR`` moves it and
``BAYES_GMM_NO_CACHE=1`` leaves JAX's settings untouched. A cache directory the user has
already given JAX (``jax_compilation_cache_dir``) is kept as it is.
"""

from __future__ import annotations

import os
import time

__all__ = ["ENV_DIR", "ENV_OFF", "CompileClock", "default_cache_dir", "enable_compilation_cache"]

ENV_DIR = "BAYES_GMM_CACHE_DIR"
ENV_OFF = "BAYES_GMM_NO_CACHE"
#: Programs that compile faster than this are not written (JAX's default is 1 s, longer
#: than most EM programs take).
MIN_COMPILE_SECONDS = 0.1


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bayes_gmm", "jax")


def enable_compilation_cache():
    """Point JAX's persistent cache at bayes_gmm's directory; returns the directory in use
    (None when switched off by ``BAYES_GMM_NO_CACHE``)."""
    import jax

    if os.environ.get(ENV_OFF, "").strip() not in ("", "0"):
        return None
    if jax.config.jax_compilation_cache_dir:          # the user's own choice wins
        return jax.config.jax_compilation_cache_dir
    path = os.environ.get(ENV_DIR) or default_cache_dir()
    jax.config.update("jax_compilation_cache_dir", path)
    if jax.config.jax_persistent_cache_min_compile_time_secs == 1.0:   # JAX's default
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path


#: JAX's monitoring events that together are the time spent compiling a program: tracing to
#: a jaxpr, lowering to MLIR, and XLA's compilation (or loading it from the cache).
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


class CompileClock:
    """Wall time and the part of it spent compiling, for the code run inside ``with``.

    >>> import jax, jax.numpy as jnp
    >>> with CompileClock() as clock:
    ...     _ = jax.jit(lambda x: x * 2.0 + 1.0)(jnp.ones(3)).block_until_ready()
    >>> 0.0 < clock.compile_seconds <= clock.seconds
    True

    It listens to JAX's monitoring events (:data:`COMPILE_EVENTS`) on every thread, so
    compilations started elsewhere while the block runs count too.
    """

    def __init__(self):
        self.seconds = 0.0
        self.compile_seconds = 0.0

    def _listen(self, event, duration, **_):
        if event in COMPILE_EVENTS:
            self.compile_seconds += float(duration)

    def __enter__(self):
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(self._listen)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import jax.monitoring

        self.seconds = time.perf_counter() - self._start
        jax.monitoring.unregister_event_duration_listener(self._listen)
        self.compile_seconds = min(self.compile_seconds, self.seconds)
        return False

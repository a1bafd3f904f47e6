"""Timing helpers shared by the benchmark scripts (imported as a sibling module)."""

import statistics
import time


def median_time(fn, repeats):
    """Median wall time of ``repeats`` calls of ``fn()`` (seconds)."""
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def per_iteration(fit, iters, repeats):
    """(seconds per iteration, compile seconds) of ``fit(m)``, a blocking fit of m
    iterations: (median t(iters) − median t(1)) / (iters − 1), so initialisation and the
    final E-step cancel; compile = first call − steady call."""
    t0 = time.perf_counter()
    fit(iters)
    first = time.perf_counter() - t0
    fit(1)
    t1 = median_time(lambda: fit(1), repeats)
    tm = median_time(lambda: fit(iters), repeats)
    return (tm - t1) / (iters - 1), first - tm

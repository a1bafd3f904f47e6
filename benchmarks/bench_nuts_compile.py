"""What a new K costs fit_nuts / fit_svi in compilation, counted by JAX's own events.

iris (150 × 4, float64), K = 1..6 in one process, the persistent compilation cache off, a
few draws (so compiling dominates): for each K the wall time of the call, the number of
programs compiled, and the seconds spent tracing, lowering and compiling them (JAX's
``/jax/core/compile/*`` duration events).

Usage::

    python benchmarks/bench_nuts_compile.py                 # NUTS, K = 1..6
    python benchmarks/bench_nuts_compile.py --method svi --ks 2,3
"""

from __future__ import annotations

import argparse
import collections
import os
import time
import warnings

os.environ.setdefault("BAYES_GMM_NO_CACHE", "1")

import jax  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402

import bayes_gmm as bg  # noqa: E402

EVENTS = {"trace": "/jax/core/compile/jaxpr_trace_duration",
          "lower": "/jax/core/compile/jaxpr_to_mlir_module_duration",
          "compile": "/jax/core/compile/backend_compile_duration"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=("nuts", "svi"), default="nuts")
    p.add_argument("--ks", default="1,2,3,4,5,6")
    args = p.parse_args()
    seconds, counts = collections.defaultdict(float), collections.Counter()

    def listen(event, duration, **kwargs):
        seconds[event] += duration
        counts[event] += 1

    jax.monitoring.register_event_duration_secs_listener(listen)
    X = load_iris().data
    print(f"{args.method} on iris, persistent cache off\n")
    print("| K | wall s | programs | tracing s | lowering s | compiling s |")
    print("|---:|---:|---:|---:|---:|---:|")
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore")          # short chains: diagnostics warn
        for k in (int(v) for v in args.ks.split(",")):
            seconds.clear()
            counts.clear()
            t0 = time.perf_counter()
            if args.method == "nuts":
                bg.fit_nuts(X, k, key=jax.random.key(0), num_warmup=50, num_samples=50,
                            num_chains=2, progress_bar=False)
            else:
                bg.fit_svi(X, k, key=jax.random.key(0), num_steps=200, progress_bar=False)
            wall = time.perf_counter() - t0
            print(f"| {k} | {wall:.2f} | {counts[EVENTS['compile']]} | "
                  f"{seconds[EVENTS['trace']]:.2f} | {seconds[EVENTS['lower']]:.2f} | "
                  f"{seconds[EVENTS['compile']]:.2f} |", flush=True)


if __name__ == "__main__":
    main()

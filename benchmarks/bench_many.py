"""Many small fits: one compiled program (``bg.fit_em_many``) vs a Python loop of ``bg.fit_em``.

B datasets of N × D (default 1000 of 500 × 2), K components (default 3), full covariance,
the same options for both paths (default ``tol=1e-3, max_iter=100``, k-means++). The loop
calls ``fit_em`` once per dataset (compiled once, reused: the loop pays dispatch and
per-call work, not compilation); with ``--loop`` L < B it times the first L datasets and
extrapolates linearly to B (said in the output). Compile time of each path is reported
apart (first call − steady call). Steady times are medians of ``--repeats`` runs.

Both paths stop each fit at its own convergence: the loop's ``fit_em`` skips converged
scan steps (``lax.cond``); ``fit_em_many`` on CPU runs a compiled loop (``lax.map``) of
early-exit while loops (on an accelerator it vmaps all datasets, which then iterate until
the slowest converges). ``--tol 0 --max-iter M`` compares equal work.

Usage::

    python benchmarks/bench_many.py                       # 1000 × (500, 2), K=3, float64
    python benchmarks/bench_many.py --loop 1000 --dtype float32
    python benchmarks/bench_many.py --tol 0 --max-iter 30

Prints a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

import bayes_gmm as bg
from _timing import median_time


def make_stack(b, n, d, k, dtype, seed=0):
    """B datasets, each K blobs at random centres with random scales: (B, N, D)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(b, k, d)) * 4.0
    scales = rng.uniform(0.3, 1.5, size=(b, k))
    labels = rng.integers(0, k, size=(b, n))
    idx = np.arange(b)[:, None]
    X = centres[idx, labels] + scales[idx, labels][..., None] * rng.normal(size=(b, n, d))
    return X.astype(dtype)


def block(res):
    jax.block_until_ready(res)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--d", type=int, default=2)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--loop", type=int, default=50,
                    help="datasets actually fitted by the loop (extrapolated to --datasets)")
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    with jax.enable_x64(args.dtype == "float64"):
        Xs = make_stack(args.datasets, args.n, args.d, args.k, args.dtype)
        keys = jax.random.split(jax.random.key(0), args.datasets)
        opts = dict(tol=args.tol, max_iter=args.max_iter)
        loop_n = min(args.loop, args.datasets)

        t0 = time.perf_counter()
        many = block(bg.fit_em_many(Xs, args.k, keys=keys, **opts))
        first_many = time.perf_counter() - t0
        t_many = median_time(lambda: block(bg.fit_em_many(Xs, args.k, keys=keys, **opts)),
                             args.repeats)

        t0 = time.perf_counter()
        block(bg.fit_em(Xs[0], args.k, key=keys[0], **opts))
        first_one = time.perf_counter() - t0

        def loop():
            return [block(bg.fit_em(Xs[i], args.k, key=keys[i], **opts))
                    for i in range(loop_n)]
        singles = loop()
        t_loop = median_time(loop, args.repeats) * args.datasets / loop_n

        # The two paths compute the same fits.
        diff = max(float(np.max(np.abs(np.asarray(many.params.means[i])
                                       - np.asarray(singles[i].params.means))))
                   for i in range(loop_n))
        iters_many = np.asarray(many.n_iter)

    extrap = (f" (timed {loop_n}, extrapolated ×{args.datasets / loop_n:g})"
              if loop_n < args.datasets else "")
    print(f"## bench_many: {args.datasets} datasets of {args.n} × {args.d}, K = {args.k}, "
          f"full, {args.dtype}, tol = {args.tol:g}, max_iter = {args.max_iter}\n")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"JAX {jax.__version__} on {jax.devices()[0].platform}; medians of "
          f"{args.repeats} runs.\n")
    print("| path | seconds for all datasets | ms per dataset | compile (s) |")
    print("|---|---:|---:|---:|")
    print(f"| `fit_em_many` (one compiled program) | {t_many:.3f} | "
          f"{1e3 * t_many / args.datasets:.3f} | {first_many - t_many:.2f} |")
    print(f"| loop of `fit_em`{extrap} | {t_loop:.3f} | {1e3 * t_loop / args.datasets:.3f} "
          f"| {first_one:.2f} (first call) |")
    print(f"\n**Speed-up: {t_loop / t_many:.1f}×** (target ≥ 20×). Iterations per dataset: "
          f"median {int(np.median(iters_many))}, max {int(iters_many.max())}. "
          f"Largest |Δ means| between the paths over "
          f"the {loop_n} looped datasets: {diff:.2e}.")


if __name__ == "__main__":
    main()

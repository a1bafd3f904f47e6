"""Peak memory of a fit: bounded by X plus O(batch_size·K·D), never N·K·D.

Each case runs in its own subprocess and reports the process's peak resident set size
(``VmHWM`` from ``/proc/self/status``; ``ru_maxrss`` where that is missing). X is generated
chunk by chunk straight into its array, so no temporary larger than one chunk inflates the
peak. Cases (default N = 2_000_000, D = 16, K = 64, ``batch_size=65536``, 2 iterations —
memory does not grow with iterations):

* ``baseline``: import JAX and bayes_gmm, build X, copy it to the device; no fit.
* ``fit_em``: ``bg.fit_em(X, K, batch_size=65536)`` in float64 (X = 256 MB) and float32.
* ``fit_em_stream``: X in a ``numpy.memmap`` on disk, ``bg.fit_em_stream(..., chunk_size=65536)``.

The target (issue 6): peak RSS < 2 × size of X + 200 MB. (Without chunking one E-step
would hold N·K·D = 2e9 numbers: 16 GB in float64.)

Usage::

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --n 500000 --cases fit_em:float32

Prints a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, os, resource, sys, time
case, dtype, n, d, k, batch, iters, path = sys.argv[1:9]
n, d, k, batch, iters = int(n), int(d), int(k), int(batch), int(iters)
import numpy as np
import jax
jax.config.update("jax_enable_x64", dtype == "float64")   # this process only
import bayes_gmm as bg


def peak_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(X, seed=0, step=65536):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 4.0
    for i in range(0, X.shape[0], step):
        m = min(step, X.shape[0] - i)
        lab = rng.integers(0, k, size=m)
        X[i:i + m] = centres[lab] + rng.normal(size=(m, d))


after_import = peak_mb()
t0 = time.perf_counter()
if case == "fit_em_stream":
    X = np.memmap(path, dtype=dtype, mode="w+", shape=(n, d))
    fill(X)
    X.flush()
    del X
    X = np.memmap(path, dtype=dtype, mode="r", shape=(n, d))
    res = bg.fit_em_stream(X, k, key=0, chunk_size=batch, max_iter=iters, tol=0.0,
                           init_sample_size=100_000)
else:
    X = np.empty((n, d), dtype)
    fill(X)
    Xj = jax.device_put(X)
    if case == "fit_em":
        res = bg.fit_em(Xj, k, key=0, batch_size=batch, max_iter=iters, tol=0.0)
    else:
        res = None
if res is not None:
    jax.block_until_ready(res)
    ok = bool(np.all(np.isfinite(np.asarray(res.params.means))))
else:
    ok = True
print("RESULT " + json.dumps(dict(peak_mb=peak_mb(), after_import_mb=after_import,
                                  seconds=time.perf_counter() - t0, finite=ok)))
"""


def run_case(case, dtype, args, tmpdir):
    path = os.path.join(tmpdir, f"X_{dtype}.dat")
    cmd = [sys.executable, "-c", CHILD, case, dtype, str(args.n), str(args.d), str(args.k),
           str(args.batch_size), str(args.iters), path]
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if os.path.exists(path):
        os.remove(path)
    if proc.returncode != 0:
        return dict(error=proc.stderr.strip().splitlines()[-1] if proc.stderr else
                    f"exit {proc.returncode}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=65536)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--cases", default="baseline:float64,fit_em:float64,fit_em:float32,"
                                       "fit_em_stream:float64")
    args = ap.parse_args(argv)
    cases = [c.split(":") for c in args.cases.split(",")]

    print(f"## bench_memory: N = {args.n:,}, D = {args.d}, K = {args.k}, "
          f"batch_size = {args.batch_size}, {args.iters} EM iterations\n")
    print("| case | dtype | size of X (MB) | peak RSS (MB) | limit 2·X + 200 (MB) | "
          "within | RSS after imports (MB) | seconds |")
    print("|---|---|---:|---:|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for case, dtype in cases:
            x_mb = args.n * args.d * (8 if dtype == "float64" else 4) / 2 ** 20
            limit = 2 * x_mb + 200
            t0 = time.perf_counter()
            r = run_case(case, dtype, args, tmp)
            if "error" in r:
                print(f"| {case} | {dtype} | {x_mb:.0f} | failed: {r['error']} | {limit:.0f} "
                      f"| no | | {time.perf_counter() - t0:.0f} |")
                continue
            within = "yes" if r["peak_mb"] < limit else "**no**"
            print(f"| {case} | {dtype} | {x_mb:.0f} | {r['peak_mb']:.0f} | {limit:.0f} | "
                  f"{within} | {r['after_import_mb']:.0f} | {r['seconds']:.1f} |", flush=True)
    print("\nPeak RSS is VmHWM of the case's own process (JAX runtime, compiled program, X "
          "in NumPy and its device copy, all intermediates). fit_em_stream keeps X on disk.")


if __name__ == "__main__":
    main()

"""Peak memory of a fit: bounded by X plus O(batch_size·K·D), never N·K·D.

Each case runs in its own subprocess and reports the process's peak resident set size
(``VmHWM`` from ``/proc/self/status``; ``ru_maxrss`` where that is missing). X is generated
chunk by chunk straight into its array, so no temporary larger than one chunk inflates the
peak. Cases (default N = 2_000_000, D = 16, K = 64, ``batch_size=65536``, 1 iteration —
memory does not grow with iterations), each fit run twice in the same process:

* ``fit_em``: ``bg.fit_em(X, K, batch_size=65536)`` in float64 (X = 256 MB) and float32.
* ``fit_em_stream``: X in a ``numpy.memmap`` on disk, ``bg.fit_em_stream(..., chunk_size=65536)``.

The target (issue 6): peak RSS < 2 × size of X + 200 MB. The Python + JAX + bayes_gmm
runtime alone is ~200 MB resident and XLA's compilation of the program briefly takes
several hundred MB whatever N is (the allocator keeps it), so each case also runs at
N = batch_size (same program shapes but N) and the table reports the N-dependent peak,
peak(N) − peak(batch_size), next to the raw peaks. (Without chunking one E-step
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

CHILD = r"""
import gc, json, os, resource, sys, time
case, dtype, n, d, k, batch, iters, path = sys.argv[1:9]
n, d, k, batch, iters = int(n), int(d), int(k), int(batch), int(iters)
import numpy as np
import jax
jax.config.update("jax_enable_x64", dtype == "float64")   # this process only
import bayes_gmm as bg


def status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def reset_peak():
    # Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def fill(X, seed=0, step=65536):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 4.0
    for i in range(0, X.shape[0], step):
        m = min(step, X.shape[0] - i)
        lab = rng.integers(0, k, size=m)
        X[i:i + m] = centres[lab] + rng.normal(size=(m, d))


after_import = status_mb("VmRSS")
if case == "fit_em_stream":
    X = np.memmap(path, dtype=dtype, mode="w+", shape=(n, d))
    fill(X)
    X.flush()
    del X
    X = np.memmap(path, dtype=dtype, mode="r", shape=(n, d))
    fit = lambda: bg.fit_em_stream(X, k, key=0, chunk_size=batch, max_iter=iters, tol=0.0,
                                   init_sample_size=100_000)
else:
    X = np.empty((n, d), dtype)
    fill(X)
    # NumPy in: fit_em makes the one device copy. (A jax.Array X is currently copied
    # once more: fit_em validates it as NumPy, then jnp.asarray makes a new buffer.)
    fit = lambda: bg.fit_em(X, k, key=0, batch_size=batch, max_iter=iters, tol=0.0)
t0 = time.perf_counter()
res = jax.block_until_ready(fit())                    # compiles, then fits
first = time.perf_counter() - t0
peak_first = status_mb("VmHWM")
del res
gc.collect()
reset_peak()
before = status_mb("VmRSS")
t0 = time.perf_counter()
res = jax.block_until_ready(fit())                    # compiled: the fit alone
steady = time.perf_counter() - t0
ok = bool(np.all(np.isfinite(np.asarray(res.params.means))))
print("RESULT " + json.dumps(dict(after_import=after_import, peak_first=peak_first,
                                  before=before, peak=status_mb("VmHWM"), first=first,
                                  steady=steady, finite=ok)))
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
    ap.add_argument("--iters", type=int, default=1)
    ap.add_argument("--cases", default="fit_em:float64,fit_em:float32,fit_em_stream:float64")
    args = ap.parse_args(argv)
    cases = [c.split(":") for c in args.cases.split(",")]

    print(f"## bench_memory: N = {args.n:,}, D = {args.d}, K = {args.k}, "
          f"batch_size = {args.batch_size}, {args.iters} EM iterations\n")
    print(f"| case | dtype | X (MB) | RSS after imports | peak, 1st call (incl. compile) | "
          f"peak, 2nd call | same at N = {args.batch_size:,} | N-dependent peak | "
          f"limit 2·X + 200 | within | seconds 1st / 2nd |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    small = argparse.Namespace(**{**vars(args), "n": args.batch_size})
    with tempfile.TemporaryDirectory() as tmp:
        for case, dtype in cases:
            x_mb = args.n * args.d * (8 if dtype == "float64" else 4) / 2 ** 20
            limit = 2 * x_mb + 200
            r = run_case(case, dtype, args, tmp)
            r0 = run_case(case, dtype, small, tmp)
            if "error" in r or "error" in r0:
                print(f"| {case} | {dtype} | {x_mb:.0f} | failed: "
                      f"{r.get('error') or r0.get('error')} ||||||||")
                continue
            used = r["peak"] - r0["peak"]
            within = "yes" if used < limit else "**no**"
            print(f"| {case} | {dtype} | {x_mb:.0f} | {r['after_import']:.0f} | "
                  f"{r['peak_first']:.0f} | {r['peak']:.0f} | {r0['peak']:.0f} | {used:.0f} | "
                  f"{limit:.0f} | {within} | {r['first']:.1f} / {r['steady']:.1f} |",
                  flush=True)
    print("\nMB = 2**20 bytes; RSS from /proc/self/status of each case's own process (VmRSS, "
          "VmHWM; VmHWM reset through /proc/self/clear_refs before the 2nd call). The 1st "
          "call includes XLA compilation, whose memory does not scale with N. "
          "fit_em keeps X in NumPy and its device copy (the 2 in 2·X); fit_em_stream keeps "
          "X on disk (numpy.memmap).")


if __name__ == "__main__":
    main()

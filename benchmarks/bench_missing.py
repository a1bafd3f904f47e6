"""EM with missing values: seconds per iteration with holes against the complete data.

Same data, same initial parameters, full covariance, ``tol=0``; a fraction of the entries
is removed completely at random (MCAR; every row keeps at least one entry) and
``fit_em(..., missing="marginalize")`` integrates them out. Seconds per iteration are
(median time of a fit with ``--iters`` iterations − median time of a 1-iteration fit) /
(iters − 1), as ``bench_em.py``; compile time is first call − steady call. Each
configuration runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its
own. Also reported: the number of distinct missingness patterns and the share of complete
rows.

Usage::

    python benchmarks/bench_missing.py                          # (1e6, 16, 16), 0/10/30 %
    python benchmarks/bench_missing.py --sizes 100000,16,16 --fractions 0,0.1 --iters 3

Prints a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np


def holey(n, d, k, frac, dtype, seed=0):
    """bench_em's blobs with ``frac`` of the entries set to NaN (MCAR), and initial
    parameters (from the complete data, the same for every fraction)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_em import make_data
    X, w, m, c = make_data(n, d, k, dtype, seed)
    if frac > 0:
        holes = np.random.default_rng(seed + 1).random(X.shape) < frac
        holes[holes.all(axis=1), 0] = False
        X = X.copy()
        X[holes] = np.nan
    return X, w, m, c


def patterns(X):
    """(distinct missingness patterns, share of rows without a hole)."""
    mask = np.isnan(X)
    packed = np.packbits(mask, axis=1)
    return int(np.unique(packed, axis=0).shape[0]), float(np.mean(~mask.any(axis=1)))


def one(n, d, k, frac, dtype, iters, repeats, batch_size):
    """Time one configuration (run in its own process); returns a dict."""
    import jax
    import bayes_gmm as bg
    sys.path.insert(0, str(Path(__file__).parent))
    from _timing import per_iteration

    dt = np.dtype(dtype)
    X, w, m, c = holey(n, d, k, frac, dt)
    n_patterns, complete = patterns(X)
    with jax.enable_x64(dt == np.float64):
        Xj = jax.device_put(X)
        init = bg.GMMParams(*(jax.numpy.asarray(a, dt) for a in (w, m, c)), "full")

        def fit(steps):
            res = bg.fit_em(Xj, k, key=jax.random.key(0), init=init, tol=0.0,
                            max_iter=steps, batch_size=batch_size, missing="marginalize")
            jax.block_until_ready(res)
            return res

        per_iter, compile_s = per_iteration(fit, iters, repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0      # MiB (Linux)
    return {"n": n, "d": d, "k": k, "frac": frac, "dtype": dt.name, "patterns": n_patterns,
            "complete": complete, "s_per_iter": per_iter, "compile_s": compile_s,
            "peak_mib": peak}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000000,16,16",
                   help="';'-separated N,D,K triples (default: %(default)s)")
    p.add_argument("--fractions", default="0,0.1,0.3",
                   help="comma-separated missing fractions; 0 is the complete-data baseline")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    p.add_argument("--iters", type=int, default=4, help="EM iterations per timed fit")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--one", help=argparse.SUPPRESS)       # a single configuration, as JSON
    args = p.parse_args(argv)
    if args.one:
        cfg = json.loads(args.one)
        print(json.dumps(one(**cfg)))
        return
    if args.iters < 2:
        p.error("--iters must be >= 2")
    sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes.split(";") if s]
    fracs = [float(f) for f in args.fractions.split(",")]
    rows = []
    for n, d, k in sizes:
        base = None
        for frac in fracs:
            cfg = dict(n=n, d=d, k=k, frac=frac, dtype=args.dtype, iters=args.iters,
                       repeats=args.repeats, batch_size=args.batch_size)
            out = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if frac == 0:
                base = r["s_per_iter"]
            r["ratio"] = None if base is None else r["s_per_iter"] / base
            rows.append(r)
            print(f"# done: {r}", file=sys.stderr, flush=True)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; "
          f"dtype {args.dtype}; iters {args.iters}; repeats {args.repeats}\n")
    print("| N | D | K | missing | patterns | complete rows | s/iter | × complete | "
          "compile s | peak MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.1f}×"
        print(f"| {r['n']:,} | {r['d']} | {r['k']} | {100 * r['frac']:.0f}% | "
              f"{r['patterns']:,} | {100 * r['complete']:.1f}% | {r['s_per_iter']:.3f} | "
              f"{ratio} | {r['compile_s']:.2f} | {r['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()

"""What a user waits for: first fits, a new N, a BIC sweep over K — each in a fresh process.

Cases (make_blobs data, float64, scikit-learn single-threaded through threadpoolctl):

* ``first_fit``: ``GaussianMixture(3).fit(X)`` on 500 × 2 in a new process, with an empty
  compilation cache (cold) and with the cache left by an earlier process (warm);
* ``new_n``: in one process, a fit on 5000 × 5, then the time of a fit on 4999 × 5 (the
  same row bucket: no compile);
* ``sweep``: BIC for K = 1..20 on 5000 × 5 (``bg.fit_em_grid``), cold and warm, against
  scikit-learn's loop of ``GaussianMixture(K).fit(X).bic(X)`` in the same run;
* ``estimator_sweep``: the same loop written with ``bg.GaussianMixture``, cold and warm.

Times exclude ``import`` (reported apart). Each figure is the median of ``--repeats`` fresh
processes; a cold run gets a new, empty cache directory.

Usage::

    python benchmarks/bench_latency.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import bayes_gmm as bg
t_import = time.perf_counter() - t0
from sklearn.datasets import make_blobs
case = sys.argv[1]
out = {"import": t_import}
if case == "first_fit":
    X, _ = make_blobs(500, n_features=2, centers=3, random_state=0)
    t0 = time.perf_counter()
    bg.GaussianMixture(3, random_state=0).fit(X)
    out["seconds"] = time.perf_counter() - t0
elif case == "new_n":
    X, _ = make_blobs(5000, n_features=5, centers=3, random_state=0)
    bg.GaussianMixture(3, random_state=0).fit(X)
    t0 = time.perf_counter()
    bg.GaussianMixture(3, random_state=0).fit(X[:-1])
    out["seconds"] = time.perf_counter() - t0
elif case == "sweep":
    import jax
    X, _ = make_blobs(5000, n_features=5, centers=4, random_state=0)
    t0 = time.perf_counter()
    with jax.enable_x64(True):
        grid = bg.fit_em_grid(X, range(1, 21), key=jax.random.key(0))
    out["seconds"] = time.perf_counter() - t0
    out["best"] = grid.best
elif case == "estimator_sweep":
    X, _ = make_blobs(5000, n_features=5, centers=4, random_state=0)
    t0 = time.perf_counter()
    bics = [bg.GaussianMixture(k, random_state=0).fit(X).bic(X) for k in range(1, 21)]
    out["seconds"] = time.perf_counter() - t0
    out["best"] = int(1 + min(range(20), key=lambda i: bics[i]))
elif case == "sklearn_sweep":
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits
    X, _ = make_blobs(5000, n_features=5, centers=4, random_state=0)
    t0 = time.perf_counter()
    with threadpool_limits(1):
        bics = [GaussianMixture(k, random_state=0).fit(X).bic(X) for k in range(1, 21)]
    out["seconds"] = time.perf_counter() - t0
    out["best"] = int(1 + min(range(20), key=lambda i: bics[i]))
elif case == "sklearn_first_fit":
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits
    X, _ = make_blobs(500, n_features=2, centers=3, random_state=0)
    t0 = time.perf_counter()
    with threadpool_limits(1):
        GaussianMixture(3, random_state=0).fit(X)
    out["seconds"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def run(case, cache_dir):
    env = {k: v for k, v in os.environ.items() if k != "BAYES_GMM_NO_CACHE"}
    if cache_dir is None:
        env["BAYES_GMM_NO_CACHE"] = "1"
    else:
        env["BAYES_GMM_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", CHILD, case], env=env, capture_output=True,
                         text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(case, repeats, warm):
    """Median seconds over fresh processes: cold (new empty cache) or warm (primed once)."""
    times = []
    with tempfile.TemporaryDirectory() as shared:
        if warm:
            run(case, shared)                                   # primes the cache
        for _ in range(repeats):
            if warm:
                times.append(run(case, shared)["seconds"])
            else:
                with tempfile.TemporaryDirectory() as fresh:
                    times.append(run(case, fresh)["seconds"])
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    rows = [
        ("GaussianMixture(3).fit, 500×2, cold cache", measure("first_fit", args.repeats, False),
         measure("sklearn_first_fit", args.repeats, False)),
        ("GaussianMixture(3).fit, 500×2, warm cache", measure("first_fit", args.repeats, True),
         None),
        ("fit 4999×5 right after 5000×5 (same process)", measure("new_n", args.repeats, False),
         None),
        ("BIC sweep K = 1..20, 5000×5, cold cache", measure("sweep", args.repeats, False),
         measure("sklearn_sweep", args.repeats, False)),
        ("BIC sweep K = 1..20, 5000×5, warm cache", measure("sweep", args.repeats, True),
         None),
        ("the same sweep as a loop of GaussianMixture(k).fit(X).bic(X), cold cache",
         measure("estimator_sweep", args.repeats, False), None),
        ("the same loop, warm cache", measure("estimator_sweep", args.repeats, True), None),
    ]
    imp = run("first_fit", None)["import"]
    print(f"Fresh process per run, median of {args.repeats}; `import bayes_gmm` ≈ {imp:.2f} s "
          "(not included).\n")
    print("| workload | bayes_gmm s | scikit-learn s (1 thread) |")
    print("|---|---:|---:|")
    for name, ours, sk in rows:
        print(f"| {name} | {ours:.3f} | {'' if sk is None else f'{sk:.3f}'} |")


if __name__ == "__main__":
    main()

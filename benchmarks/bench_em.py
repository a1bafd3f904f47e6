"""EM speed: scikit-learn ``GaussianMixture`` vs ``bayes_gmm.fit_em`` (and gmmx if installed).

Same data, same initial parameters, full covariance, a fixed number of iterations
(``tol=0``). Seconds per iteration are measured as

    (time of a fit with ``--iters`` iterations − time of a fit with 1 iteration) / (iters − 1)

so fixed costs (initialisation, the final E-step, data transfer) cancel; each time is the
median of ``--repeats`` runs. bayes_gmm and gmmx are compiled by a first call, timed
apart: compile time = first call − median steady call. GFLOP/s use ≈ 4·N·K·D² flops per
iteration (the two GEMM-shaped passes: projections and scatter); "% GEMM" divides by this
machine's measured matrix-multiply rate (NumPy, same dtype).

Usage::

    python benchmarks/bench_em.py                         # the default sizes, float64 + float32
    python benchmarks/bench_em.py --sizes 100000,8,8 --dtypes float64 --repeats 3
    python benchmarks/bench_em.py --no-sklearn --batch-size 4096

Prints a Markdown table (and the machine's GEMM rates) to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import warnings

import jax
import numpy as np

import bayes_gmm as bg
from _timing import median_time, per_iteration


def make_data(n, d, k, dtype, seed=0):
    """K separated Gaussian blobs with random covariances, and initial parameters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 4.0
    labels = rng.integers(0, k, size=n)
    A = rng.normal(size=(k, d, d)) * 0.3 + np.eye(d)
    z = rng.normal(size=(n, d))
    X = centres[labels]
    for j in range(k):          # per component: no (N, D, D) temporary (2 GiB at 1e6 x 16)
        rows = labels == j
        X[rows] += z[rows] @ A[j].T
    X = X.astype(dtype)
    weights = np.full(k, 1.0 / k)
    means = X[rng.choice(n, k, replace=False)].astype(np.float64)
    cov = np.broadcast_to(np.cov(X[: min(n, 100_000)].T.astype(np.float64)), (k, d, d)).copy()
    return X, weights, means, cov


def gemm_rate(dtype, n=2048, repeats=5):
    a = np.random.default_rng(0).normal(size=(n, n)).astype(dtype)
    a @ a
    t = min(median_time(lambda: a @ a, 1) for _ in range(repeats))
    return 2.0 * n ** 3 / t / 1e9


def bench_sklearn(X, weights, means, cov, iters, repeats):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    prec = np.linalg.inv(cov)          # benchmark setup only: scikit-learn takes precisions

    def fit(m):
        gm = GaussianMixture(len(weights), covariance_type="full", tol=0.0, max_iter=m,
                             weights_init=weights, means_init=means, precisions_init=prec,
                             init_params="random_from_data", random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(X)
        return gm

    t1 = median_time(lambda: fit(1), repeats)
    tm = median_time(lambda: fit(iters), repeats)
    return (tm - t1) / (iters - 1), None


def bench_bg(X, weights, means, cov, iters, repeats, batch_size):
    dt = X.dtype
    with jax.enable_x64(dt == np.float64):
        Xj = jax.device_put(X)
        init = bg.GMMParams(*(jax.numpy.asarray(a, dt) for a in (weights, means, cov)), "full")

        def fit(m):
            res = bg.fit_em(Xj, len(weights), key=jax.random.key(0), init=init, tol=0.0,
                            max_iter=m, batch_size=batch_size)
            jax.block_until_ready(res)
            return res

        return per_iteration(fit, iters, repeats)


def bench_gmmx(X, weights, means, cov, iters, repeats):
    from gmmx import EMFitter, GaussianMixtureModelJax
    if X.dtype != np.float32:
        return None, None              # gmmx 0.7 computes in float32 only
    Xj = jax.device_put(X)
    gmm = GaussianMixtureModelJax.from_squeezed(means=means.astype(np.float32),
                                                covariances=cov.astype(np.float32),
                                                weights=weights.astype(np.float32))

    def fit(m):
        res = EMFitter(max_iter=m, tol=0.0).fit(Xj, gmm)
        jax.block_until_ready(res)

    return per_iteration(fit, iters, repeats)


def fmt(x, spec):
    return "—" if x is None else format(x, spec)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,8,8;1000000,16,16",
                   help="';'-separated N,D,K triples (default: %(default)s)")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    p.add_argument("--iters", type=int, default=10, help="EM iterations per timed fit")
    p.add_argument("--batch-size", type=int, default=None,
                   help="bayes_gmm batch_size (default: fit_em's own default)")
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--no-gmmx", action="store_true")
    args = p.parse_args(argv)
    if args.iters < 2:
        p.error("--iters must be >= 2")

    try:
        import gmmx  # noqa: F401
        have_gmmx = not args.no_gmmx
    except ImportError:
        have_gmmx = False

    sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes.split(";") if s]
    dtypes = [np.dtype(s) for s in args.dtypes.split(",")]
    rates = {dt: gemm_rate(dt) for dt in dtypes}
    rows = []
    for n, d, k in sizes:
        for dt in dtypes:
            X, w, m, c = make_data(n, d, k, dt)
            flops = 4.0 * n * k * d * d
            t_bg, comp = bench_bg(X, w, m, c, args.iters, args.repeats, args.batch_size)
            t_sk = None if args.no_sklearn else bench_sklearn(X, w, m, c, args.iters,
                                                              args.repeats)[0]
            t_gx, comp_gx = (bench_gmmx(X, w, m, c, args.iters, args.repeats) if have_gmmx
                             else (None, None))
            rows.append((n, d, k, dt.name, t_sk, t_gx, t_bg, comp,
                         None if t_sk is None else t_sk / t_bg,
                         None if t_gx is None else t_gx / t_bg,
                         flops / t_bg / 1e9, 100 * flops / t_bg / 1e9 / rates[dt]))
            print(f"# done {n},{d},{k} {dt.name}", flush=True, file=__import__("sys").stderr)

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s); "
          f"jax {jax.__version__} on {jax.devices()[0].platform}; "
          + ", ".join(f"NumPy GEMM {dt.name} ≈ {r:.0f} GFLOP/s" for dt, r in rates.items())
          + f"; median of {args.repeats} runs, {args.iters} iterations, full covariance.\n")
    print("| N | D | K | dtype | scikit-learn s/iter | gmmx s/iter | bayes_gmm s/iter "
          "| bayes_gmm compile s | speed-up vs sklearn | vs gmmx | GFLOP/s | % GEMM |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (n, d, k, dt, t_sk, t_gx, t_bg, comp, r_sk, r_gx, gf, pct) in rows:
        print(f"| {n:,} | {d} | {k} | {dt} | {fmt(t_sk, '.3f')} | {fmt(t_gx, '.3f')} "
              f"| {t_bg:.4f} | {comp:.2f} | {fmt(r_sk, '.1f')}{'' if r_sk is None else '×'} "
              f"| {fmt(r_gx, '.1f')}{'' if r_gx is None else '×'} | {gf:.1f} | {pct:.0f}% |")


if __name__ == "__main__":
    main()

"""The E-step's two matrix products in isolation: XLA (as the EM compiles them) vs NumPy.

For one chunk of B rows, K components and D features the full-covariance E-step makes

* the projection ``[X 1] @ W``: (B, D + 1) by (D + 1, K·D), and
* the scatter ``[X 1]ᵀ @ R``: (D + 1, B) by (B, K·D),

once per chunk (``bayes_gmm.core.covariance.matrix``). This times each product over 64
chunks inside one compiled ``lax.scan`` (as the EM runs them), and the same products with
NumPy, alongside a square 2048 product; GFLOP/s = 2·B·(D + 1)·K·D per product. It shows
what the "% GEMM" of ``bench_em.py`` is up against on this machine.

Usage::

    python benchmarks/bench_gemm_shapes.py                    # B = 4096, K = D = 16
    python benchmarks/bench_gemm_shapes.py --rows 1024 --dtype float32

Prints a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import platform

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from _timing import median_time

CHUNKS = 64


def rate(flops, fn, repeats):
    fn()
    return flops / median_time(fn, repeats) / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=4096, help="rows per chunk B")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", args.dtype == "float64")
    b, kd, d1 = args.rows, args.k * args.d, args.d + 1
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(CHUNKS, b, d1)).astype(args.dtype)
    rs = rng.normal(size=(CHUNKS, b, kd)).astype(args.dtype)
    w = rng.normal(size=(d1, kd)).astype(args.dtype)
    flops = 2.0 * CHUNKS * b * d1 * kd
    jx, jr, jw = jnp.asarray(xs), jnp.asarray(rs), jnp.asarray(w)

    def scan_sum(body, *arrays):
        return jax.jit(lambda *a: lax.scan(lambda acc, c: (acc + body(*c), None),
                                           jnp.zeros((), a[0].dtype), a)[0])

    proj = scan_sum(lambda x: jnp.sum(x @ jw), jx)
    folded = scan_sum(lambda x, r: jnp.sum(x.T @ r), jx, jr)
    barrier = scan_sum(lambda x, r: jnp.sum(lax.optimization_barrier(x.T) @ r), jx, jr)
    sq = rng.normal(size=(2048, 2048)).astype(args.dtype)
    jsq = jnp.asarray(sq)
    square = jax.jit(lambda a: a @ a)
    rows = [
        ("square 2048 product", 2.0 * 2048 ** 3,
         lambda: square(jsq).block_until_ready(), lambda: sq @ sq),
        ("projection (B, D+1) @ (D+1, K·D)", flops,
         lambda: proj(jx).block_until_ready(), lambda: [x @ w for x in xs]),
        ("scatter (D+1, B) @ (B, K·D), transpose folded", flops,
         lambda: folded(jx, jr).block_until_ready(), lambda: [x.T @ r for x, r in zip(xs, rs)]),
        ("scatter, transpose materialised first", flops,
         lambda: barrier(jx, jr).block_until_ready(), None),
    ]
    print(f"Machine: {platform.machine()}, jax {jax.__version__} on {jax.default_backend()}; "
          f"{args.dtype}, B = {b}, K = {args.k}, D = {args.d}, {CHUNKS} chunks; "
          f"medians of {args.repeats}.\n")
    print("| product | XLA GFLOP/s | NumPy GFLOP/s |")
    print("|---|---:|---:|")
    for name, fl, xla, npy in rows:
        np_rate = f"{rate(fl, npy, args.repeats):.0f}" if npy is not None else "—"
        print(f"| {name} | {rate(fl, xla, args.repeats):.0f} | {np_rate} |")


if __name__ == "__main__":
    main()

"""Minimal reproducer of the deadlock behind issue 11's relabel hang (jax/jaxlib 0.10.2,
CPU, 2 cores): a batched Cholesky inside ``lax.map(..., batch_size=256)`` hangs after a
few calls with no CPU use.

``gdb -p PID -ex "thread apply all bt"`` on the hung process shows both XLA intra-op
threads (``tf_XLAEigen``) inside jaxlib's LAPACK FFI kernels (``lapack_spotrf_ffi`` /
``lapack_strsm_ffi`` → ``jax::ParallelBatchMap`` → ``BlockingCounter::Wait``): each kernel
splits its batch into tasks on the same thread pool and waits for them, and no thread is
left to run them. Smaller batches (``batch_size`` ≤ 64 here, i.e. ≤ 192 matrices) did not
hang in 400 calls; a plain batched Cholesky outside a loop did not hang either.

``relabel`` used exactly this pattern (its KL cost ran a ``lax.map`` of batched Cholesky
factorisations and triangular solves over draws); it now computes the cost with
NumPy/SciPy on the host. Run: ``python benchmarks/jaxlib_lapack_loop_hang.py [calls]``
(exits 1 with a traceback after 20 s without progress).
"""

from __future__ import annotations

import faulthandler
import sys

import jax
import jax.numpy as jnp
from jax import lax


def main(calls=400, batch_size=256, n=1200, k=3, d=13):
    @jax.jit
    def f(c):
        return lax.map(lambda ci: jnp.sum(jnp.linalg.cholesky(ci)), c, batch_size=batch_size)

    a = jax.random.normal(jax.random.key(0), (n, k, d, d))
    c = a @ jnp.swapaxes(a, -1, -2) + d * jnp.eye(d)
    for i in range(calls):
        faulthandler.dump_traceback_later(20, exit=True)
        f(c).block_until_ready()
        faulthandler.cancel_dump_traceback_later()
    sys.stdout.write(f"{calls} calls, no hang (jax {jax.__version__})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 400))

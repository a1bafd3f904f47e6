"""Reductions and maps over row chunks, so memory is bounded by one chunk (``batch_size``)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["chunks", "reduce_rows", "map_rows", "default_batch_size", "is_multi_device",
           "bucket_rows", "bucket_components", "pad_rows"]


def chunks(n: int, batch_size):
    """(rows per chunk, number of chunks) for N rows; one chunk when batch_size is None."""
    if batch_size is None or batch_size >= n:
        return n, 1
    return batch_size, -(-n // batch_size)


def reduce_rows(fn, X, w, batch_size, *args):
    """Σ over row chunks of ``fn(X_chunk, w_chunk, *args)`` (a pytree of sums).

    The last chunk is slid back to stay in bounds; rows it repeats get weight 0.
    """
    n = X.shape[0]
    b, n_chunks = chunks(n, batch_size)
    if n_chunks == 1:
        return fn(X, w, *args)

    def body(acc, i):
        start = jnp.minimum(i * b, n - b)
        xc = lax.dynamic_slice_in_dim(X, start, b)
        wc = lax.dynamic_slice_in_dim(w, start, b)
        wc = jnp.where(start + jnp.arange(b) >= i * b, wc, 0)
        out = fn(xc, wc, *args)
        return jax.tree.map(jnp.add, acc, out), None

    first = fn(lax.dynamic_slice_in_dim(X, 0, b), lax.dynamic_slice_in_dim(w, 0, b), *args)
    acc, _ = lax.scan(body, first, jnp.arange(1, n_chunks))
    return acc


def map_rows(fn, X, batch_size, *args):
    """``fn(X_chunk, *args)`` -> (chunk, ...) per-row values, assembled to (N, ...) chunk by
    chunk."""
    n = X.shape[0]
    b, n_chunks = chunks(n, batch_size)
    if n_chunks == 1:
        return fn(X, *args)

    def body(out, i):
        start = jnp.minimum(i * b, n - b)
        vals = fn(lax.dynamic_slice_in_dim(X, start, b), *args)
        return lax.dynamic_update_slice_in_dim(out, vals, start, 0), None

    one = jax.eval_shape(fn, lax.dynamic_slice_in_dim(X, 0, b), *args)
    out0 = jnp.zeros((n,) + one.shape[1:], one.dtype)
    out, _ = lax.scan(body, out0, jnp.arange(n_chunks))
    return out


# Rows per chunk when the caller gives no batch_size: the (B, K, D) intermediates of one
# chunk then stay near 8 MiB in float64, which on CPU is several times faster than one
# pass over all rows (memory-bound). Measured on a 2-core VM, one E-step at N = 1e6:
# chunks of 2¹⁸ / (K·D) elements were 10–25% slower (smaller GEMMs), 2²² / (K·D) 10–60%
# slower (out of cache), for (K, D) = (16, 16), (8, 8), full and diag, float32 and float64.
# Results equal the unchunked ones to rounding.
CHUNK_ELEMENTS = 1 << 20


def default_batch_size(n_samples: int, n_components: int, n_features: int):
    """Rows per chunk when ``batch_size`` is None (None: one chunk).

    >>> default_batch_size(1_000_000, 16, 16), default_batch_size(500, 3, 2)
    (4096, None)
    """
    b = max(256, CHUNK_ELEMENTS // max(1, n_components * n_features))
    return None if b >= n_samples else int(b)


def is_multi_device(X) -> bool:
    """Whether X is spread over several devices (a row-sharded X must not be sliced into
    chunks: that would gather rows across devices)."""
    sharding = getattr(X, "sharding", None)
    return sharding is not None and len(getattr(sharding, "device_set", ())) > 1


# Row buckets: a new number of rows inside a bucket reuses the compiled program (the rows
# beyond N are padding with weight 0). Geometric (ratio 1.25) below 2**16 rows, where
# compiling costs more than fitting. Larger data are not padded: a fit there takes longer
# than its compile, and padding would hold a second copy of X in memory.
BUCKET_MIN = 64
BUCKET_RATIO = 1.25
BUCKET_MAX = 1 << 16
#: The fewest components a bucketed program runs: K = 1, 2 and 3 share the program for 4
#: (two compiles fewer in a loop over K; a fit of one or two components on fewer than
#: 2**16 rows takes milliseconds even at four).
MIN_COMPONENTS = 4


def bucket_rows(n: int) -> int:
    """The padded row count for N rows: ≥ N, at most 1.25·N + 16 (64 at least); N itself
    from 2**16 rows on.

    >>> [bucket_rows(n) for n in (1, 64, 65, 500, 5000, 100_000)]
    [64, 64, 80, 608, 5808, 100000]
    """
    if n >= BUCKET_MAX:
        return n
    b = BUCKET_MIN
    while b < n:
        b = -(-int(math.ceil(b * BUCKET_RATIO)) // 16) * 16
    return b


def bucket_components(k: int, n: int) -> int:
    """The components to compile for K components on N rows: the next power of two, and
    at least ``MIN_COMPONENTS`` (so a loop over K = 1..20 compiles four programs, not
    twenty), padded with weight-0 components; K itself where rows are not bucketed
    (N ≥ 2**16: there a fit outlasts its compile, and padding would cost up to twice the
    work).

    >>> [bucket_components(k, 500) for k in (1, 2, 3, 5, 9, 20)], bucket_components(3, 10**6)
    ([4, 4, 4, 8, 16, 32], 3)
    """
    if n >= BUCKET_MAX:
        return k
    return max(MIN_COMPONENTS, 1 << (k - 1).bit_length())


def pad_rows(X, sample_weight=None):
    """X (N, D) padded to ``bucket_rows(N)`` rows of weight 0 (copies of the first row:
    finite, inside the data's range). Every sum the EM takes is weighted, so the padded fit
    is the unpadded one to rounding, and every N of a bucket runs one compiled program.

    Returns (X (B, D), weights (B,)); unchanged (X, sample_weight) when B = N.
    """
    n, d = X.shape
    b = bucket_rows(n)
    if b == n:
        return X, sample_weight
    # Host arrays are padded on the host (device arrays on their device): no small
    # programs compiled per shape for the padding itself.
    xp = np if isinstance(X, np.ndarray) and not isinstance(sample_weight, jax.Array) \
        else jnp
    X = xp.asarray(X)
    w = (xp.ones((n,), X.dtype) if sample_weight is None
         else xp.asarray(sample_weight, X.dtype))
    return (xp.concatenate([X, xp.broadcast_to(X[:1], (b - n, d))]),
            xp.concatenate([w, xp.zeros((b - n,), X.dtype)]))

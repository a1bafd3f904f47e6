# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Accelerators and scale: many fits, batches, sharding, data on disk
#
# The EM in `bayes_gmm` is a pure JAX function: one `jax.lax.scan` over iterations, with the
# E-step and M-step written as sums of sufficient statistics. That buys four things, each
# shown below on CPU:
#
# 1. **many independent fits at once** — `jax.vmap` over datasets (`bg.fit_em_many`);
# 2. **bounded memory** — `batch_size` computes the responsibilities one chunk of rows at a time;
# 3. **data-parallel fits** — an `X` sharded over devices with `NamedSharding` gives the same fit;
# 4. **data larger than memory** — `bg.fit_em_stream` runs exact EM over chunks of a
#    `numpy.memmap`.
#
# The notes at the end say what changes on a GPU or TPU.

# %%
# %matplotlib inline
import warnings

# Progress bars are off below; without ipywidgets, tqdm would warn about notebook bars.
warnings.filterwarnings("ignore", message="IProgress not found")

import arviz as az
import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayes_gmm as bg

pd.set_option("display.precision", 3)
print("jax", jax.__version__, "on", jax.devices())

# %% [markdown]
# Some synthetic data: three well-separated Gaussians in 2-D, drawn with `bg.sample` from known
# parameters.

# %%
true = bg.GMMParams(
    weights=np.array([0.3, 0.3, 0.4], np.float32),
    means=np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], np.float32),
    covariances=np.tile(np.eye(2, dtype=np.float32), (3, 1, 1)),
    covariance_type="full",
)
X, z = bg.sample(true, jax.random.key(0), 2000)
X = np.asarray(X)
print(X.shape, X.dtype)

# %% [markdown]
# ## 1. Many fits in one compiled program
#
# Bootstrap resamples, simulation studies, one mixture per subject or per image tile: when the
# datasets have equal shapes, stack them to `(B, N, D)` and fit them all at once.
# `bg.fit_em_many` is `jax.jit(jax.vmap(fit_em))`, compiled once and cached; every leaf of the
# result gains a leading `(B,)` axis, and each dataset converges on its own.
#
# Here: 16 bootstrap resamples of `X`, to see how much the fitted weights vary. `n_init=3`
# restarts each fit from three k-means++ initialisations (themselves a `vmap`) and keeps the
# best, so that an occasional poor local optimum does not pollute the bootstrap.

# %%
rng = np.random.default_rng(0)
B = 16
Xs = np.stack([X[rng.integers(0, len(X), len(X))] for _ in range(B)])   # (B, N, D)

many = bg.fit_em_many(Xs, 3, key=jax.random.key(1), n_init=3)
print("means:", many.params.means.shape, "objective:", many.objective.shape,
      "n_iter:", np.asarray(many.n_iter).tolist())
w = np.sort(np.asarray(many.params.weights), axis=1)   # sort: labels are arbitrary per fit
print("bootstrap sd of the (sorted) weights:", w.std(axis=0).round(3))

# %% [markdown]
# The same thing by hand, with JAX's own transformations — `bg.fit_em` is jittable and
# vmappable because its configuration (K, covariance type, iteration count, …) is static and
# everything else is an array:

# %%
keys = jax.random.split(jax.random.key(1), B)
fit_all = jax.jit(jax.vmap(lambda Xb, kb: bg.fit_em(Xb, 3, key=kb, n_init=3).objective))
objectives = fit_all(Xs, keys)
print("per-dataset objectives agree with fit_em_many:",
      np.allclose(objectives, many.objective, rtol=1e-5))

# %% [markdown]
# ## 2. `batch_size`: bounded memory for large N
#
# The E-step needs the `(N, K)` responsibilities. With `batch_size=b` they are computed `b` rows
# at a time inside the compiled loop and only the sufficient statistics (counts, Σx, Σxxᵀ per
# component) are kept, so peak memory is O(b·K·D) instead of O(N·K). The sums are the same, so
# the fit is the same up to floating-point rounding:

# %%
full = bg.fit_em(X, 3, key=jax.random.key(2))
chunked = bg.fit_em(X, 3, key=jax.random.key(2), batch_size=256)
print("objective, one batch :", float(full.objective))
print("objective, 256 rows  :", float(chunked.objective))
print("max |Δ means|:", float(np.abs(np.asarray(full.params.means) - np.asarray(chunked.params.means)).max()))

# %% [markdown]
# `bg.GaussianMixture(batch_size=...)` passes the same option through. When `batch_size` is
# left at `None`, `fit_em` picks a chunk size from N, K and D so that the responsibilities
# stay a modest size.
#
# ## 3. Sharding the data over devices
#
# Because EM only needs *sums* over rows, the rows can live on different devices: place `X`
# with a `NamedSharding` that splits its first axis over a device mesh, and `bg.fit_em` runs
# data-parallel — XLA computes each device's partial statistics where its rows are and adds
# them up. Nothing in the call changes:

# %%
from jax.sharding import NamedSharding, PartitionSpec as P

n_dev = jax.device_count()
mesh = jax.make_mesh((n_dev,), ("data",))
X_sharded = jax.device_put(X, NamedSharding(mesh, P("data", None)))   # N must divide by n_dev
print("devices:", n_dev, "| sharding:", X_sharded.sharding.spec)

sharded = bg.fit_em(X_sharded, 3, key=jax.random.key(2))
print("same fit as unsharded:", np.allclose(sharded.params.means, full.params.means, atol=1e-4))

# %% [markdown]
# On a plain CPU there is one device, so the mesh above has size 1. JAX can pretend that a
# CPU is several devices, which is how to develop and test sharded code without a GPU:
#
# ```bash
# XLA_FLAGS=--xla_force_host_platform_device_count=4 python my_script.py
# ```
#
# The flag is read when JAX initialises its CPU backend, so it must be in the environment
# **before `import jax`** — setting it inside a running notebook has no effect. The cell
# below therefore runs the same sharded fit in a fresh Python process with four CPU devices:

# %%
import os, subprocess, sys, textwrap

script = textwrap.dedent("""
    import jax, numpy as np
    import bayes_gmm as bg
    from jax.sharding import NamedSharding, PartitionSpec as P
    true = bg.GMMParams(np.array([.3, .3, .4], np.float32),
                        np.array([[0., 0.], [4., 0.], [0., 4.]], np.float32),
                        np.tile(np.eye(2, dtype=np.float32), (3, 1, 1)), "full")
    X = np.asarray(bg.sample(true, jax.random.key(0), 2000)[0])
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    Xs = jax.device_put(X, NamedSharding(mesh, P("data", None)))
    res = bg.fit_em(Xs, 3, key=jax.random.key(2))
    ref = bg.fit_em(X, 3, key=jax.random.key(2))
    print("devices:", jax.devices())
    print("rows per device:", [s.data.shape[0] for s in Xs.addressable_shards])
    print("same fit as one device:", bool(np.allclose(res.params.means, ref.params.means, atol=1e-4)))
""")
env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
print(out.stdout or out.stderr)

# %% [markdown]
# On a machine with several GPUs (or a TPU slice) the same code uses the real devices:
# `jax.make_mesh((jax.device_count(),), ("data",))` builds the mesh, and for multi-host runs
# each process loads its own rows and assembles the global array with
# `jax.make_array_from_process_local_data`.
#
# For the posterior, `bg.fit_nuts(..., chain_method="parallel")` runs one chain per device
# (it falls back to vectorised chains, with a warning, when there are fewer devices than
# chains).
#
# ## 4. Data larger than memory: `fit_em_stream` over a memmap
#
# When `X` does not fit in (device) memory, `bg.fit_em_stream` runs *exact* EM over row chunks:
# each iteration makes one pass over the data, adding each chunk's sufficient statistics on
# the device, then applies the same M-step as `fit_em`. A `numpy.memmap` (or an `.npy` file
# opened with `mmap_mode="r"`) is read `chunk_size` rows at a time, so only one chunk is in
# memory. Here we write 20 000 rows to a file in a temporary folder and stream them back.

# %%
import tempfile
from pathlib import Path

tmp = tempfile.TemporaryDirectory()
path = Path(tmp.name) / "big.npy"
N = 20_000
mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(N, 2))
for start in range(0, N, 5_000):                      # written block by block
    block, _ = bg.sample(true, jax.random.fold_in(jax.random.key(3), start), 5_000)
    mm[start:start + 5_000] = np.asarray(block)
mm.flush()
del mm

data = np.load(path, mmap_mode="r")                   # nothing read yet
streamed = bg.fit_em_stream(data, 3, key=jax.random.key(4), chunk_size=5_000)
print("converged:", bool(streamed.converged), "in", int(streamed.n_iter), "passes over the file")
order = np.argsort(np.asarray(streamed.params.means)[:, 0] + 10 * np.asarray(streamed.params.means)[:, 1])
print("weights:", np.asarray(streamed.params.weights)[order].round(3), "(true 0.3, 0.3, 0.4)")
print("means:\n", np.asarray(streamed.params.means)[order].round(2))

# %% [markdown]
# When the data do fit in memory, `fit_em_stream` and `fit_em` agree (same initialisation
# when the reservoir sample used for initialisation holds every row, same M-step, same
# convergence test) up to rounding:

# %%
in_memory = bg.fit_em(np.asarray(data), 3, key=jax.random.key(4))
print("objective in memory:", float(in_memory.objective), "| streamed:", float(streamed.objective))
tmp.cleanup()

# %% [markdown]
# ## What changes on a GPU or TPU
#
# Nothing in the code above — JAX places arrays on the default device (`jax.devices()[0]`).
# A few things are worth knowing:
#
# * **dtype.** JAX computes in float32 unless x64 mode is on; the functional core
#   (`bg.fit_em`, `fit_em_many`, `fit_em_stream`) computes in whatever dtype it is handed.
#   float32 is the right choice on accelerators: float64 is many times slower on most GPUs
#   and emulated on TPUs. The estimators follow their input like scikit-learn does (float64
#   NumPy input is fitted in float64), so pass `X.astype(np.float32)` to keep them on the fast
#   path. Standardising the features helps float32 accuracy.
# * **memory.** Device memory is smaller than host memory. The E-step's `(N, K)`
#   responsibilities are the big array: set `batch_size` so that `batch_size × K` floats (plus
#   `K × D × D` for full covariances) fit comfortably; `fit_em_many` needs that much *per
#   dataset* in the batch. For data that do not fit on the device at all, shard them over
#   several devices or stream them with `fit_em_stream`.
# * **batch_size.** On CPU, moderate chunks (thousands of rows) are cache friendly; on
#   GPU/TPU use chunks as large as memory allows (hundreds of thousands of rows, or `None`):
#   the device is fastest with large, regular arrays.
# * **compilation.** The first call for a new shape or static setting compiles (seconds); later
#   calls reuse it. Keep shapes fixed — pad datasets to a common N with rows of
#   `sample_weight=0` rather than letting every size recompile.
# * **sampling.** NUTS is sequential in its steps, so accelerators help most when the
#   log-density is expensive (large N): the per-observation likelihood is what runs in
#   parallel. Run chains as a batch (`chain_method="vectorized"`, the default) on one device,
#   or one per device with `chain_method="parallel"`.

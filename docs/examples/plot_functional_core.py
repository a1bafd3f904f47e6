"""
The functional core: arrays in, pytrees out
===========================================

Under the estimator is a set of pure functions. :func:`~bayes_gmm.fit_em` returns an
:class:`~bayes_gmm.EMResult` whose ``params`` (a :class:`~bayes_gmm.GMMParams` pytree)
feed the density functions; each is compiled once and works under ``jax.jit`` and
``jax.vmap``. Here the fitted mixture's log density is drawn as contours, with points
drawn from it by :func:`~bayes_gmm.sample`.
"""

import tempfile

import jax
import matplotlib.pyplot as plt
import numpy as np

import bayes_gmm as bg
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
res = bg.fit_em(X, 2, key=jax.random.key(0), n_init=3)
params = res.params
print("converged:", bool(res.converged), "in", int(res.n_iter), "iterations")
print("BIC", round(float(bg.bic(params, X)), 1), " AIC", round(float(bg.aic(params, X)), 1))

labels = bg.predict(params, X)                   # (N,) most probable component
resp = bg.responsibilities(params, X)            # (N, K), rows sum to one
new_X, new_labels = bg.sample(params, jax.random.key(1), 200)

# log p(x) on a grid: log_prob takes any (M, D) rows
gx, gy = np.meshgrid(np.linspace(1.2, 5.6, 120), np.linspace(40, 100, 120))
grid = np.column_stack([gx.ravel(), gy.ravel()])
logp = np.asarray(bg.log_prob(params, grid)).reshape(gx.shape)

fig, ax = plt.subplots(figsize=(6, 4.5))
ax.contour(gx, gy, logp, levels=np.linspace(logp.max() - 8, logp.max(), 9), cmap="Greys")
ax.scatter(X[:, 0], X[:, 1], c=np.asarray(labels), cmap="coolwarm", s=10, label="data")
ax.scatter(np.asarray(new_X)[:, 0], np.asarray(new_X)[:, 1], marker="x", s=12, c="0.4",
           label="sample(params, key, 200)")
ax.set(xlabel="eruption (min)", ylabel="waiting (min)", title="log density of the fit")
ax.legend(loc="upper left", fontsize="small")

# %%
# Every figure function of :mod:`bayes_gmm.plots` takes the fit as it comes — here the
# :class:`~bayes_gmm.EMResult` — and returns a new figure: points by most probable
# component, with 1σ and 2σ ellipses.
fig = bg.plots.plot_components(X, res)

# %%
# A fit saves to a directory (JSON + npz, no pickle) and loads back bit for bit.
with tempfile.TemporaryDirectory() as d:
    bg.save(params, f"{d}/faithful")
    again = bg.load(f"{d}/faithful")
print("reloaded means equal:", np.array_equal(np.asarray(again.means), np.asarray(params.means)))

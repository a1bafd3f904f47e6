"""
A thousand fits in one program: the bootstrap with ``fit_em_many``
==================================================================

:func:`~bayes_gmm.fit_em_many` fits one mixture to each of B equal-shape datasets as one
compiled JAX program. Here the datasets are 500 bootstrap resamples of Old Faithful; the
spread of the fitted means is the bootstrap's picture of the estimation uncertainty — a
frequentist counterpart to the posterior of :func:`~bayes_gmm.fit_nuts`.
"""

import jax
import matplotlib.pyplot as plt
import numpy as np

import bayes_gmm as bg
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
rng = np.random.default_rng(0)
B = 500
Xs = X[rng.integers(0, len(X), size=(B, len(X)))]          # (B, N, D) resamples

res = bg.fit_em_many(Xs, 2, key=jax.random.key(0))
means = np.asarray(res.params.means)                       # (B, K, D)

# Labels are arbitrary in each fit: order the components by eruption length.
order = np.argsort(means[:, :, 0], axis=1)
means = np.take_along_axis(means, order[:, :, None], axis=1)
print("converged:", int(np.asarray(res.converged).sum()), "of", B)

fig, ax = plt.subplots(figsize=(6, 4.5))
ax.scatter(X[:, 0], X[:, 1], s=6, c="0.75", label="data")
for k, colour in enumerate(("tab:blue", "tab:orange")):
    ax.scatter(means[:, k, 0], means[:, k, 1], s=4, c=colour, alpha=0.4,
               label=f"component {k} mean, {B} resamples")
ax.set(xlabel="eruption (min)", ylabel="waiting (min)",
       title="Bootstrap distribution of the component means")
ax.legend(loc="upper left", fontsize="small")

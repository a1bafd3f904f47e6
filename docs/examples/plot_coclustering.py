"""
Co-clustering: which eruptions belong together?
===============================================

Component labels are arbitrary, but "rows i and j are in the same cluster" is not.
:func:`~bayes_gmm.coclustering` gives the posterior probability of that event for every
pair of rows, averaged over the draws; :func:`~bayes_gmm.plots.plot_coclustering` orders
the rows by cluster so that the clusters show as blocks on the diagonal, and the rows of
uncertain membership as the grey margins of the blocks.
"""

import jax
import numpy as np

import bayes_gmm as bg
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
idata = bg.fit_nuts(X, 2, key=jax.random.key(1), num_warmup=200, num_samples=200,
                    num_chains=2, progress_bar=False, dtype=np.float64)

fig = bg.plots.plot_coclustering(idata, X)

# %%
# The matrix itself is an (N, N) NumPy array with a unit diagonal; a pair is "ambiguous"
# when its probability is far from both 0 and 1.
P = bg.coclustering(idata, X)
ambiguous = (P > 0.1) & (P < 0.9)
print(P.shape, f"{ambiguous.mean():.2%} of pairs are ambiguous")

# %%
# The per-row view: :func:`~bayes_gmm.assignment_probabilities` gives each row's posterior
# membership with a 94% interval, and the entropy of its most probable cluster.
probs = bg.assignment_probabilities(idata, X)
print(probs["entropy"].to_series().sort_values(ascending=False).head())

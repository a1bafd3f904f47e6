"""
Posterior ellipses: how well are the clusters determined?
=========================================================

:func:`~bayes_gmm.fit_nuts` returns an :class:`arviz.InferenceData`; passed to
:func:`~bayes_gmm.plots.plot_components`, it draws thin 1σ ellipses of 50 posterior draws
around the bold posterior-mean ellipses (1σ solid, 2σ dashed). The spread of the thin
ellipses is the uncertainty in each component's shape and position.
"""

import jax
import numpy as np

import bayes_gmm as bg
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
idata = bg.fit_nuts(X, 2, key=jax.random.key(0), num_warmup=200, num_samples=200,
                    num_chains=2, progress_bar=False, dtype=np.float64)

fig = bg.plots.plot_components(X, idata, n_draws=50)

# %%
# The same posterior, as numbers: posterior means and 94% intervals of the weights and
# means (:func:`~bayes_gmm.summary` wraps :func:`arviz.summary`).
print(bg.summary(idata, var_names=["weights", "means"], kind="stats").round(2))

# %%
# Before reading it: are the chains in one mode, and did the sampler behave?
# (:func:`~bayes_gmm.check_diagnostics` warns naming what failed; here nothing did.)
print(bg.posterior_modes(idata))
report = bg.check_diagnostics(idata)

"""
Your own analysis of the posterior with ArviZ
=============================================

:func:`~bayes_gmm.fit_nuts` returns a plain :class:`arviz.InferenceData` with named
dimensions (``chain, draw, component, feature``), so any derived quantity is a line of
xarray and every ArviZ function applies. Here: the posterior of the difference in mean
waiting time between the long and the short eruptions, and PSIS-LOO from the
``log_likelihood`` group.
"""

import arviz as az
import jax
import numpy as np

import bayes_gmm as bg
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
idata = bg.fit_nuts(X, 2, key=jax.random.key(2), num_warmup=200, num_samples=200,
                    num_chains=2, progress_bar=False, dtype=np.float64, relabel=False)
idata = bg.relabel(idata)                    # labels aligned with the MAP (the default)

post = idata.posterior
means = post["means"]                        # (chain, draw, component, feature)
long_ = means.sel(feature=0).argmax("component")
waiting = means.sel(feature=1)
gap = waiting.isel(component=1) - waiting.isel(component=0)
gap = gap * np.where(long_ == 1, 1, -1)      # long minus short, whatever the labels

axes = az.plot_posterior(gap.rename("waiting gap (min)"), hdi_prob=0.94)
fig = axes.get_figure()

# %%
# Diagnostics and predictive accuracy come with the same object.
print(az.summary(idata, var_names=["weights"], kind="diagnostics"))
print(az.loo(idata))

"""
SVI against NUTS on the same model
==================================

:func:`~bayes_gmm.fit_svi` fits a Gaussian guide to the same posterior that
:func:`~bayes_gmm.fit_nuts` samples, started at the same MAP, and returns the same
``InferenceData`` layout (plus the loss per step). Here the two marginal posteriors of
the mean waiting time of each component, side by side: SVI is cheaper per fit, and
usually a little narrower than the posterior it approximates.
"""

import jax
import matplotlib.pyplot as plt
import numpy as np

import bayes_gmm as bg
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
nuts = bg.fit_nuts(X, 2, key=jax.random.key(0), num_warmup=200, num_samples=200,
                   num_chains=2, progress_bar=False, dtype=np.float64)
svi = bg.fit_svi(X, 2, key=jax.random.key(0), num_steps=2000, num_samples=400,
                 progress_bar=False, dtype=np.float64)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
for k, ax in enumerate(axes[:2]):
    for name, idata in (("NUTS", nuts), ("SVI", svi)):
        draws = idata.posterior["means"].sel(component=k, feature=1).values.ravel()
        ax.hist(draws, bins=30, density=True, histtype="step", lw=1.5,
                label=f"{name}: sd {draws.std():.2f}")
    ax.set(title=f"component {k}: mean waiting (min)", yticks=[])
    ax.legend(fontsize="small")
axes[2].plot(np.asarray(svi.svi_loss["loss"]), lw=0.6)
axes[2].set(title="SVI loss (negative ELBO)", xlabel="step", yscale="symlog")
fig.tight_layout()

"""
EM, as it runs: convergence and covariance families
===================================================

:func:`~bayes_gmm.fit_em` returns the objective of every iteration in ``trace`` (NaN once
converged), so a fit can be checked at a glance with
:func:`~bayes_gmm.plots.plot_convergence`. Each covariance family is one compiled
program; MAP under :class:`~bayes_gmm.GMMPrior` adds the log prior to the objective.
"""

import jax
import matplotlib.pyplot as plt

import bayes_gmm as bg
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
fig, ax = plt.subplots(figsize=(6, 4))
for covariance_type in ("full", "tied", "diag", "spherical"):
    res = bg.fit_em(X, 3, key=jax.random.key(0), covariance_type=covariance_type)
    bg.plots.plot_convergence(res, ax=ax)
    ax.lines[-1].set_label(f"{covariance_type}: {int(res.n_iter)} iterations")
    print(f"{covariance_type:>9}: BIC {float(bg.bic(res.params, X)):8.1f}")

res_map = bg.fit_em(X, 3, key=jax.random.key(0), prior=bg.GMMPrior())
bg.plots.plot_convergence(res_map, ax=ax)
ax.lines[-1].set_label("full, MAP")
ax.legend(fontsize="small")
ax.set_title("Objective per iteration (mean log-likelihood per row)")

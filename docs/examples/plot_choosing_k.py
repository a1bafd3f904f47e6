"""
Choosing the number of components with ``compare``
==================================================

:func:`~bayes_gmm.compare` fits one mixture per K (each the best of 10 restarts run to
convergence in float64), ranks them by BIC, flags degenerate fits and recommends a K;
:func:`~bayes_gmm.plots.plot_model_selection` draws the table. Here on Old Faithful, for
full covariances.
"""

import jax

import bayes_gmm as bg
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
table = bg.compare(X, [1, 2, 3, 4, 5], key=jax.random.key(0), covariance_type="full")
print("best K =", table.attrs["best_k"], "-", table.attrs["rule"])
print(table[["bic", "aic", "degenerate", "seconds"]].round(2))

fig = bg.plots.plot_model_selection(table)

# %%
# :func:`~bayes_gmm.fit_em_grid` is the functional form of the sweep: one compiled
# program per K, every fit kept (an :class:`~bayes_gmm.EMGridResult`), BIC and AIC per K.
grid = bg.fit_em_grid(X, [1, 2, 3], key=jax.random.key(0))
print("fit_em_grid: best K =", grid.best, {k: round(float(v), 1) for k, v in grid.bic.items()})

# %%
# ``compare(..., method="nuts")`` ranks the same K by ELPD-LOO of the posterior instead
# (slower: one NUTS run per K); the guide page :doc:`/guide/choosing_k` compares the two.

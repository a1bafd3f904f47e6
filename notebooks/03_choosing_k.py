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
# # 03 · Choosing the number of components: BIC vs LOO
#
# How many clusters? Two standard answers:
#
# * **BIC** (Schwarz 1978): $-2 \log \hat L + p \log N$ at the maximum-likelihood fit, with $p$
#   free parameters. It approximates the log marginal likelihood and is consistent for the
#   true K when the model is right; cheap (one EM fit per K). Lower is better. AIC uses $2p$
#   instead of $p \log N$ and penalises less.
# * **ELPD-LOO** (Vehtari, Gelman & Gabry 2017): the expected log predictive density of a new
#   point, estimated by Pareto-smoothed importance-sampling leave-one-out cross-validation on
#   the posterior draws. It asks which K *predicts* best, and comes with a standard error.
#   Higher is better.
#
# `bg.compare(X, n_components=[...], method=...)` fits one mixture per K and returns a pandas
# table with both (ELPD-LOO only for the Bayesian methods `"nuts"` and `"svi"`), plus the
# recommended K in `table.attrs["best_k"]`.

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

# %%
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()

# %% [markdown]
# ## BIC from EM
#
# With `method="em"` every K gets an EM fit (5 restarts by default, so that a poor local
# optimum does not decide the comparison).

# %%
table_em = bg.compare(X, n_components=[1, 2, 3, 4], method="em", key=jax.random.key(0))
print("recommended K by BIC:", table_em.attrs["best_k"])
table_em

# %%
fig = bg.plots.plot_model_selection(table_em)
fig

# %% [markdown]
# BIC picks K = 2 on Old Faithful. Note that AIC, with its lighter penalty, prefers K = 3: the
# log-likelihood keeps rising with K, and the criteria differ in how much they charge for the
# extra parameters.
#
# ## ELPD-LOO from the posterior
#
# With `method="svi"` (or `"nuts"`) every K also gets a posterior, and the table gains
# `elpd_loo`, its standard error `se`, the effective number of parameters `p_loo`, the
# difference to the best model `elpd_diff` with its standard error `dse`, stacking `weight`s,
# and the largest Pareto k̂ (above 0.7 the importance-sampling estimate is unreliable for that
# point; `warning` flags it).
#
# Posteriors cost more than EM fits, so we spend them only on the plausible candidates from the
# scan above: K = 2 (BIC's choice) and K = 3 (AIC's). SVI (a full-rank Gaussian guide, started
# at the MAP) is used here because it is much cheaper than NUTS; the settings are small to keep
# the notebook quick. `method="nuts"` takes the same
# keyword arguments as `bg.fit_nuts` and is the more trustworthy choice for a final analysis.

# %%
table_svi = bg.compare(X, n_components=[2, 3], method="svi", key=jax.random.key(0),
                       num_steps=500, num_samples=200, progress_bar=False)
print("recommended K by ELPD-LOO:", table_svi.attrs["best_k"])
table_svi[["bic", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "pareto_k_max"]]

# %%
fig = bg.plots.plot_model_selection(table_svi)
fig

# %% [markdown]
# ## Reading the two together
#
# The log-likelihood rises with K, and the question is whether the rise is worth the extra
# parameters. BIC charges $\log N \approx 5.6$ per parameter and settles on two clusters.
# LOO charges only the effective number of parameters and asks about prediction of new
# eruptions; it may prefer a third component that sharpens the density, especially among the
# long eruptions. When the ELPD difference between two models is within about two of its
# standard errors (`dse`), the data do not really distinguish them, and the simpler model is
# the usual choice:

# %%
best = table_svi.attrs["best_k"]
for k in table_svi.index:
    if k == best:
        continue
    diff, dse = table_svi.loc[k, "elpd_diff"], table_svi.loc[k, "dse"]
    verdict = "clearly worse" if diff > 2 * dse else "not distinguishable"
    print(f"K={k}: ELPD {diff:.1f} below K={best} (dse {dse:.1f}) -> {verdict}")

# %% [markdown]
# **In practice:** use BIC from EM to scan a wide range of K in seconds (`bg.fit_em_grid` does
# the same on a compiled grid), then compare the few plausible K by LOO on NUTS posteriors.
# Look at the fitted ellipses (`bg.plots.plot_components`) for the candidates, and prefer the
# simpler model when the criteria cannot tell them apart.

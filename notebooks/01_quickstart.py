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
# # 01 · Quick start: clustering Old Faithful, first by EM, then with a posterior
#
# This notebook walks through the basic workflow of `bayes_gmm` on the classic Old Faithful
# geyser data (272 eruptions; eruption length and waiting time, both in minutes):
#
# 1. **Point estimate by EM** — with the scikit-learn-style estimator `bg.GaussianMixture`,
#    and with the functional core `bg.fit_em` (arrays in, pytrees out).
# 2. **The same model with a posterior** — NUTS, started at the EM solution, through
#    `bg.BayesianGaussianMixture` or the functional `bg.fit_nuts`; ArviZ summaries, and the
#    spread of the component ellipses over the posterior.
#
# Everything runs on a laptop CPU in well under a minute; the sampler settings are kept small
# on purpose (see the notes at the end for what to use in real work).

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
# ## The data
#
# `bayes_gmm.datasets.load_old_faithful()` returns a `(272, 2)` float64 array. The two
# eruption regimes (short eruptions after short waits, long after long) are the textbook
# example of a two-component mixture.

# %%
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
print(X.shape, X.dtype)
X[:5]

# %% [markdown]
# ## 1a. EM with the estimator
#
# `bg.GaussianMixture` is a drop-in for `sklearn.mixture.GaussianMixture`: same parameter
# names, same defaults, same fitted attributes (`weights_`, `means_`, `covariances_`,
# `precisions_cholesky_`, `converged_`, `n_iter_`, `lower_bound_`). Underneath, the EM
# iterations are one compiled `jax.lax.scan`.
#
# Like scikit-learn, the estimator follows its input's dtype: float64 NumPy input is fitted in
# float64 (you do not need to switch on JAX's global x64 mode).

# %%
gm = bg.GaussianMixture(n_components=2, covariance_type="full", random_state=0).fit(X)

print("converged:", gm.converged_, "after", gm.n_iter_, "iterations")
print("weights:", gm.weights_.round(3))
print("means:\n", gm.means_.round(2))
print("total log-likelihood:", round(gm.score(X) * len(X), 2))
print("BIC:", round(gm.bic(X), 1))

# %% [markdown]
# The published maximum-likelihood fit for these data has weights ≈ (0.356, 0.644), means
# ≈ (2.04, 54.5) and (4.29, 80.0), and a total log-likelihood of −1130.26: the estimator
# recovers it. Predictions work as in scikit-learn: `predict` gives the most probable
# component, `predict_proba` the responsibilities.

# %%
labels = gm.predict(X)
resp = gm.predict_proba(X)
print("cluster sizes:", np.bincount(labels))
print("least certain point:", X[resp.max(axis=1).argmin()], "p =", resp.max(axis=1).min().round(3))

# %% [markdown]
# `bg.plots.plot_components` draws the data coloured by most probable cluster, with the 1σ
# (solid) and 2σ (dashed) ellipses of each component. Every plotting function returns a
# matplotlib `Figure` (it never calls `show`), so you can save it with `fig.savefig(...)` or
# let the notebook display it.

# %%
fig = bg.plots.plot_components(X, gm, feature_names=["eruption (min)", "waiting (min)"])
fig

# %% [markdown]
# ## 1b. The same fit with the functional core
#
# `bg.fit_em(X, n_components, key=...)` is the pure function behind the estimator. It takes a
# JAX PRNG key (nothing random happens without one) and returns an `EMResult` with
#
# * `params` — a `bg.GMMParams` pytree (`weights (K,)`, `means (K, D)`, `covariances`),
# * `objective` — final mean log-likelihood per sample,
# * `trace` — the objective at every iteration (`NaN` after convergence),
# * `n_iter`, `converged`.
#
# The functional API (`fit_em`, `fit_nuts`, `fit_svi`, ...) computes in the dtype JAX hands
# it: with JAX's default settings a float64 NumPy array becomes float32 here, which is what
# you want on GPU/TPU. (Pass `dtype=np.float64`, or use `with jax.enable_x64(True): ...`,
# for float64.)

# %%
res = bg.fit_em(X, 2, key=jax.random.key(0))

print("objective per sample:", float(res.objective), "-> total", float(res.objective) * len(X))
print("iterations:", int(res.n_iter), "converged:", bool(res.converged))
print("dtype:", res.params.means.dtype)
print("means:\n", np.asarray(res.params.means).round(2))

# %% [markdown]
# Because `params` is a plain pytree, the density functions take it directly:
# `bg.log_prob(params, X)` (per-row log density), `bg.responsibilities(params, X)`,
# `bg.predict`, `bg.bic`, `bg.aic`, `bg.sample`.

# %%
p = res.params
print("mean log density:", float(bg.log_prob(p, X).mean()))
print("responsibility rows sum to 1:", np.allclose(bg.responsibilities(p, X).sum(axis=1), 1, atol=1e-5))
print("BIC (float32):", float(bg.bic(p, X)))

# %% [markdown]
# The convergence of EM is visible in the objective trace: the objective never decreases,
# and the scan stops updating once the change falls below `tol`.

# %%
fig = bg.plots.plot_convergence(res)
fig

# %% [markdown]
# ## 2. The posterior: same model, same prior, fitted by NUTS
#
# EM gives one set of parameters. How sure are we of them, and of each point's cluster? The
# Bayesian fit answers with a posterior distribution over weights, means and covariances.
#
# `bg.BayesianGaussianMixture` first fits the MAP by EM under the conjugate prior
# (`bg.GMMPrior()`: Dirichlet on the weights, Normal-Inverse-Wishart on the components, with
# weakly informative defaults set from the data), then runs NUTS from there with the cluster
# assignments marginalised out. Label switching is resolved against the MAP, so
# "component 0" means the same thing in every draw.
#
# The settings below (2 chains × 500 draws) keep this notebook fast; use the defaults
# (4 chains, 500 warm-up, 1000 draws) in real work.

# %%
bgm = bg.BayesianGaussianMixture(
    n_components=2, num_warmup=300, num_samples=500, num_chains=2,
    random_state=0, progress_bar=False,
).fit(X)

print("MAP means:\n", bgm.map_.means_.round(2))
print("posterior-mean means:\n", bgm.means_.round(2))

# %% [markdown]
# The fit is stored as an `arviz.InferenceData` in `bgm.idata_`, with named dimensions
# (`chain`, `draw`, `component`, `feature`), a `log_likelihood` group (one value per
# observation, for LOO), `sample_stats` (divergences, tree depth, …) and the MAP in a `map`
# group. `bg.summary` is `az.summary` on the relabelled draws; any ArviZ function works on the
# object unchanged.

# %%
idata = bgm.idata_
print(idata.groups())
bg.summary(idata, var_names=["weights", "means"])

# %%
az.summary(idata, var_names=["weights"], kind="diagnostics")

# %% [markdown]
# `r_hat` close to 1 and effective sample sizes in the hundreds say the chains agree and mix
# well. The estimator runs `bg.check_diagnostics` after sampling: `bgm.diagnostics_` holds its
# report, and a `bg.DiagnosticWarning` is issued when R-hat, ESS, divergences or stuck chains
# look bad (with this notebook's short chains, an R-hat just above the strict 1.01 threshold
# can occur; the default settings avoid it).
#
# With an `InferenceData` (or the fitted `BayesianGaussianMixture`), `plot_components` adds
# thin ellipses for a sample of posterior draws around the bold posterior-mean ellipses: the
# spread of those thin lines *is* the parameter uncertainty.

# %%
print("problems found by check_diagnostics:", bgm.diagnostics_["problems"] or "none")
print("divergences:", int(idata.sample_stats["diverging"].sum()))
fig = bg.plots.plot_components(X, bgm, n_draws=40, feature_names=["eruption (min)", "waiting (min)"])
fig

# %% [markdown]
# ### The functional route
#
# `bg.fit_nuts` is the function the estimator calls: it runs the MAP-EM itself (`init="em"`)
# and returns the `InferenceData` directly. Samplers are compiled once per shape and
# setting and cached, so a second call with the same settings starts sampling immediately.

# %%
idata2 = bg.fit_nuts(X, 2, key=jax.random.key(1), num_warmup=300, num_samples=500,
                     num_chains=2, progress_bar=False)
post = idata2.posterior
print("posterior mean of the weights:", post["weights"].mean(("chain", "draw")).values.round(3))

# Which component is the long-eruption one? (feature 0 = eruption length)
long = int(post["means"].sel(feature=0).mean(("chain", "draw")).argmax("component"))
waiting = post["means"].sel(component=long, feature=1)
print("long eruptions: mean waiting time", round(float(waiting.mean()), 1), "min, 94% HDI",
      az.hdi(waiting, hdi_prob=0.94)["means"].values.round(1).tolist())

# %% [markdown]
# ## Where next
#
# * `02_uncertainty_aware_clustering` — per-point membership uncertainty, relabelling,
#   co-clustering.
# * `03_choosing_k` — choosing the number of components by BIC and by LOO.
# * `04_accelerators_and_scale` — many fits at once, `batch_size`, sharding, streaming data
#   from disk, and what changes on GPU/TPU.

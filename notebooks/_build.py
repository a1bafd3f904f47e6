"""Write the tutorial notebooks (clean: no outputs) from the cell sources below.

Run from anywhere: ``python notebooks/_build.py``. The test suite executes the notebooks
(``tests/test_notebooks.py``); edit the cells here, not in the ``.ipynb`` files, so the two
stay in step.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def _cells(spec):
    cells = []
    for i, (kind, src) in enumerate(spec):
        src = src.strip("\n")
        cell = new_markdown_cell(src) if kind == "md" else new_code_cell(src)
        cell.id = f"cell-{i:02d}"  # stable ids: rebuilding gives no spurious diff
        cells.append(cell)
    return cells


def md(src):
    return ("md", src)


def code(src):
    return ("code", src)


SETUP = code("""
%matplotlib inline
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
""")


# --------------------------------------------------------------------------------------
# 01 quick start
# --------------------------------------------------------------------------------------

QUICKSTART = [
    md("""
# 01 · Quick start: clustering Old Faithful, first by EM, then with a posterior

This notebook walks through the basic workflow of `bayes_gmm` on the classic Old Faithful
geyser data (272 eruptions; eruption length and waiting time, both in minutes):

1. **Point estimate by EM** — with the scikit-learn-style estimator `bg.GaussianMixture`,
   and with the functional core `bg.fit_em` (arrays in, pytrees out).
2. **The same model with a posterior** — NUTS, started at the EM solution, through
   `bg.BayesianGaussianMixture` or the functional `bg.fit_nuts`; ArviZ summaries, and the
   spread of the component ellipses over the posterior.

Everything runs on a laptop CPU in well under a minute; the sampler settings are kept small
on purpose (see the notes at the end for what to use in real work).
"""),
    SETUP,
    md("""
## The data

`bayes_gmm.datasets.load_old_faithful()` returns a `(272, 2)` float64 array. The two
eruption regimes (short eruptions after short waits, long after long) are the textbook
example of a two-component mixture.
"""),
    code("""
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
print(X.shape, X.dtype)
X[:5]
"""),
    md("""
## 1a. EM with the estimator

`bg.GaussianMixture` is a drop-in for `sklearn.mixture.GaussianMixture`: same parameter
names, same defaults, same fitted attributes (`weights_`, `means_`, `covariances_`,
`precisions_cholesky_`, `converged_`, `n_iter_`, `lower_bound_`). Underneath, the EM
iterations are one compiled `jax.lax.scan`.

Like scikit-learn, the estimator follows its input's dtype: float64 NumPy input is fitted in
float64 (you do not need to switch on JAX's global x64 mode).
"""),
    code("""
gm = bg.GaussianMixture(n_components=2, covariance_type="full", random_state=0).fit(X)

print("converged:", gm.converged_, "after", gm.n_iter_, "iterations")
print("weights:", gm.weights_.round(3))
print("means:\\n", gm.means_.round(2))
print("total log-likelihood:", round(gm.score(X) * len(X), 2))
print("BIC:", round(gm.bic(X), 1))
"""),
    md("""
The published maximum-likelihood fit for these data has weights ≈ (0.356, 0.644), means
≈ (2.04, 54.5) and (4.29, 80.0), and a total log-likelihood of −1130.26: the estimator
recovers it. Predictions work as in scikit-learn: `predict` gives the most probable
component, `predict_proba` the responsibilities.
"""),
    code("""
labels = gm.predict(X)
resp = gm.predict_proba(X)
print("cluster sizes:", np.bincount(labels))
print("least certain point:", X[resp.max(axis=1).argmin()], "p =", resp.max(axis=1).min().round(3))
"""),
    md("""
`bg.plots.plot_components` draws the data coloured by most probable cluster, with the 1σ
(solid) and 2σ (dashed) ellipses of each component. Every plotting function returns a
matplotlib `Figure` (it never calls `show`), so you can save it with `fig.savefig(...)` or
let the notebook display it.
"""),
    code("""
fig = bg.plots.plot_components(X, gm, feature_names=["eruption (min)", "waiting (min)"])
fig
"""),
    md("""
## 1b. The same fit with the functional core

`bg.fit_em(X, n_components, key=...)` is the pure function behind the estimator. It takes a
JAX PRNG key (nothing random happens without one) and returns an `EMResult` with

* `params` — a `bg.GMMParams` pytree (`weights (K,)`, `means (K, D)`, `covariances`),
* `objective` — final mean log-likelihood per sample,
* `trace` — the objective at every iteration (`NaN` after convergence),
* `n_iter`, `converged`.

The functional core computes in the dtype JAX hands it: with JAX's default settings a
float64 NumPy array becomes float32 here, which is what you want on GPU/TPU. (Use
`with jax.enable_x64(True): ...` for float64.)
"""),
    code("""
res = bg.fit_em(X, 2, key=jax.random.key(0))

print("objective per sample:", float(res.objective), "-> total", float(res.objective) * len(X))
print("iterations:", int(res.n_iter), "converged:", bool(res.converged))
print("dtype:", res.params.means.dtype)
print("means:\\n", np.asarray(res.params.means).round(2))
"""),
    md("""
Because `params` is a plain pytree, the density functions take it directly:
`bg.log_prob(params, X)` (per-row log density), `bg.responsibilities(params, X)`,
`bg.predict`, `bg.bic`, `bg.aic`, `bg.sample`.
"""),
    code("""
p = res.params
print("mean log density:", float(bg.log_prob(p, X).mean()))
print("responsibility rows sum to 1:", np.allclose(bg.responsibilities(p, X).sum(axis=1), 1, atol=1e-5))
print("BIC (float32):", float(bg.bic(p, X)))
"""),
    md("""
The convergence of EM is visible in the objective trace: the objective never decreases,
and the scan stops updating once the change falls below `tol`.
"""),
    code("""
fig = bg.plots.plot_convergence(res)
fig
"""),
    md("""
## 2. The posterior: same model, same prior, fitted by NUTS

EM gives one set of parameters. How sure are we of them, and of each point's cluster? The
Bayesian fit answers with a posterior distribution over weights, means and covariances.

`bg.BayesianGaussianMixture` first fits the MAP by EM under the conjugate prior
(`bg.GMMPrior()`: Dirichlet on the weights, Normal-Inverse-Wishart on the components, with
weakly informative defaults set from the data), then runs NUTS from there with the cluster
assignments marginalised out. Label switching is resolved against the MAP, so
"component 0" means the same thing in every draw.

The settings below (2 chains × 500 draws) keep this notebook fast; use the defaults
(4 chains, 500 warm-up, 1000 draws) in real work.
"""),
    code("""
bgm = bg.BayesianGaussianMixture(
    n_components=2, num_warmup=300, num_samples=500, num_chains=2,
    random_state=0, progress_bar=False,
).fit(X)

print("MAP means:\\n", bgm.map_.means_.round(2))
print("posterior-mean means:\\n", bgm.means_.round(2))
"""),
    md("""
The fit is stored as an `arviz.InferenceData` in `bgm.idata_`, with named dimensions
(`chain`, `draw`, `component`, `feature`), a `log_likelihood` group (one value per
observation, for LOO), `sample_stats` (divergences, tree depth, …) and the MAP in a `map`
group. `bg.summary` is `az.summary` on the relabelled draws; any ArviZ function works on the
object unchanged.
"""),
    code("""
idata = bgm.idata_
print(idata.groups())
bg.summary(idata, var_names=["weights", "means"])
"""),
    code("""
az.summary(idata, var_names=["weights"], kind="diagnostics")
"""),
    md("""
`r_hat` close to 1 and effective sample sizes in the hundreds say the chains agree and mix
well. The estimator runs `bg.check_diagnostics` after sampling: `bgm.diagnostics_` holds its
report, and a `bg.DiagnosticWarning` is issued when R-hat, ESS, divergences or stuck chains
look bad (with this notebook's short chains, an R-hat just above the strict 1.01 threshold
can occur; the default settings avoid it).

With an `InferenceData` (or the fitted `BayesianGaussianMixture`), `plot_components` adds
thin ellipses for a sample of posterior draws around the bold posterior-mean ellipses: the
spread of those thin lines *is* the parameter uncertainty.
"""),
    code("""
print("problems found by check_diagnostics:", bgm.diagnostics_["problems"] or "none")
print("divergences:", int(idata.sample_stats["diverging"].sum()))
fig = bg.plots.plot_components(X, bgm, n_draws=40, feature_names=["eruption (min)", "waiting (min)"])
fig
"""),
    md("""
### The functional route

`bg.fit_nuts` is the function the estimator calls: it runs the MAP-EM itself (`init="em"`)
and returns the `InferenceData` directly. Samplers are compiled once per shape and
setting and cached, so a second call with the same settings starts sampling immediately.
"""),
    code("""
idata2 = bg.fit_nuts(X, 2, key=jax.random.key(1), num_warmup=300, num_samples=500,
                     num_chains=2, progress_bar=False)
post = idata2.posterior
print("posterior mean of the weights:", post["weights"].mean(("chain", "draw")).values.round(3))

# Which component is the long-eruption one? (feature 0 = eruption length)
long = int(post["means"].sel(feature=0).mean(("chain", "draw")).argmax("component"))
waiting = post["means"].sel(component=long, feature=1)
print("long eruptions: mean waiting time", round(float(waiting.mean()), 1), "min, 94% HDI",
      az.hdi(waiting, hdi_prob=0.94)["means"].values.round(1).tolist())
"""),
    md("""
## Where next

* `02_uncertainty_aware_clustering` — per-point membership uncertainty, relabelling,
  co-clustering.
* `03_choosing_k` — choosing the number of components by BIC and by LOO.
* `04_accelerators_and_scale` — many fits at once, `batch_size`, sharding, streaming data
  from disk, and what changes on GPU/TPU.
"""),
]


# --------------------------------------------------------------------------------------
# 02 uncertainty-aware clustering
# --------------------------------------------------------------------------------------

UNCERTAINTY = [
    md("""
# 02 · Uncertainty-aware clustering

A point estimate assigns every point to a cluster with a number attached — but that number
ignores the uncertainty in the parameters themselves. With a posterior we can ask:

* how sure are we of each point's cluster, *averaged over the parameter uncertainty*?
* which points are genuinely ambiguous?
* which pairs of points belong together, whatever the labels are called?

We use the embedded two-cluster sample (100 points: 30 from one Gaussian, 70 from another,
overlapping), where the true labels are known.
"""),
    SETUP,
    code("""
from bayes_gmm.datasets import load_two_clusters

X, y_true = load_two_clusters()
print(X.shape, "true cluster sizes:", np.bincount(y_true))
"""),
    md("""
## Sampling the posterior with NUTS

`bg.fit_nuts` fits the MAP by EM, then runs NUTS from (a jittered copy of) it for every
chain. Small settings for speed here; the defaults are 4 chains × (500 warm-up + 1000 draws).
"""),
    code("""
idata = bg.fit_nuts(X, 2, key=jax.random.key(0), num_warmup=400, num_samples=500,
                    num_chains=2, progress_bar=False)
bg.summary(idata, var_names=["weights", "means"])
"""),
    md("""
Before reading anything off a posterior, check the sampler. `bg.check_diagnostics` computes
split R-hat and bulk ESS per variable (on the relabelled draws), counts divergent
transitions, and looks for chains stuck in different modes; with `warn=True` (the default)
it issues a `bg.DiagnosticWarning` naming each failed check.
"""),
    code("""
report = bg.check_diagnostics(idata, warn=False)
print("max R-hat:", {v: round(r, 3) for v, r in report["max_rhat"].items()})
print("min bulk ESS:", {v: round(e) for v, e in report["min_ess_bulk"].items()})
print("divergences:", report["n_divergent"], "| stuck chains:", report["stuck_chains"])
print("problems:", report["problems"] or "none")
"""),
    md("""
The thresholds are strict on purpose (R-hat ≤ 1.01, ≥ 100 effective draws per chain). With
the two short chains used here to keep the notebook fast, the means of the small (30-point)
cluster can come out just above 1.01; the remedy is more draws — the defaults
(4 chains × 1000 draws) — not a looser threshold.
"""),
    md("""
## Label switching, and what `relabel` does

The mixture likelihood is unchanged when the component labels are permuted, so the
posterior has K! identical modes. A sampler that visits more than one of them (or chains
that start in different ones) mixes draws where "component 0" means different things, and
every per-component summary becomes meaningless.

`bg.fit_nuts` relabels by default: each draw's components are matched to the MAP's by an
optimal assignment, and the un-relabelled draws are kept in `posterior_raw`. Chains started
at the MAP rarely switch, so on this data the two groups mostly coincide:
"""),
    code("""
raw, post = idata.posterior_raw, idata.posterior
switched = (raw["means"] != post["means"]).any(("component", "feature"))
print("draws whose labels relabel had to change:", int(switched.sum()), "of", switched.size)
"""),
    md("""
To see the problem (and the fix) clearly, we make the second chain live in the *other*
label mode — exactly what happens when chains start from different random points — by
swapping its component labels. The mixture is the same; only the names changed.
"""),
    code("""
import xarray as xr

swapped = post.sel(chain=[1]).isel(component=[1, 0]).assign_coords(component=post.component)
scrambled = az.InferenceData(posterior=xr.concat([post.sel(chain=[0]), swapped], dim="chain"),
                             map=idata.map)

print("R-hat of the weights, labels scrambled:",
      az.rhat(scrambled, var_names=["weights"])["weights"].values.round(2))
fig = bg.plots.plot_trace(scrambled, var_names=["weights"])
fig.suptitle("raw draws: chain 1 uses the other labelling")
plt.close(fig)  # ArviZ draws through pyplot: close it there, display it once here
fig
"""),
    md("""
The two chains disagree completely and R-hat is huge, even though both explore the same
posterior. `bg.relabel` (against the MAP stored in the `map` group, or any `GMMParams`
reference you pass) puts the labels back; the input object is left untouched.
"""),
    code("""
fixed = bg.relabel(scrambled)
print("R-hat of the weights, relabelled:",
      az.rhat(fixed, var_names=["weights"])["weights"].values.round(3))
fig = bg.plots.plot_trace(fixed, var_names=["weights"])
fig.suptitle("relabelled draws")
plt.close(fig)
fig
"""),
    md("""
## Membership uncertainty per point

`bg.assignment_probabilities(idata, X)` averages the responsibilities
$r_{nk} = p(z_n = k \\mid x_n, \\theta)$ over the posterior draws of $\\theta$. It returns an
`xarray.Dataset` with, for every observation,

* `mean` — the posterior membership probabilities (obs, component),
* `lower`, `upper` — a 94% interval of each membership probability over the draws,
* `entropy` — the entropy (nats) of the mean membership: 0 for a certain point,
  log 2 ≈ 0.69 for a coin flip,
* `cluster` — the most probable cluster.
"""),
    code("""
probs = bg.assignment_probabilities(idata, X)
table = pd.DataFrame({
    "x0": X[:, 0], "x1": X[:, 1], "true": y_true,
    "cluster": probs["cluster"].values,
    "p(cluster 0)": probs["mean"].sel(component=0).values,
    "lower": probs["lower"].sel(component=0).values,
    "upper": probs["upper"].sel(component=0).values,
    "entropy": probs["entropy"].values,
})
table.sort_values("entropy", ascending=False).head(8)
"""),
    md("""
The most uncertain points sit between the two clusters, and their membership intervals are
wide: the posterior cannot say which Gaussian produced them. Cluster labels are arbitrary,
so we compare with the truth up to a permutation:
"""),
    code("""
c = probs["cluster"].values
accuracy = max(np.mean(c == y_true), np.mean(c == 1 - y_true))
uncertain = probs["entropy"].values > 0.5
print(f"agreement with the true labels: {accuracy:.2f}")
print("points with entropy > 0.5 nats:", int(uncertain.sum()))
"""),
    md("""
`plot_uncertainty` shades each point by its membership entropy and rings the uncertain ones
(entropy above `threshold`). These are the points a point estimate would assign with false
confidence.
"""),
    code("""
fig = bg.plots.plot_uncertainty(X, idata, threshold=0.5)
fig
"""),
    md("""
## Co-clustering

Labels aside, the quantity that is free of label switching altogether is the posterior
probability that two points are in the same cluster,
$P(z_i = z_j \\mid \\text{data})$. `bg.coclustering(idata, X)` returns this `(N, N)` matrix;
`plot_coclustering` orders it by cluster so the blocks line up on the diagonal. Sharp blocks
mean well-separated clusters; grey rows and columns are the ambiguous points.
"""),
    code("""
C = np.asarray(bg.coclustering(idata, X))
print(C.shape, "symmetric:", np.allclose(C, C.T), "diagonal = 1:", np.allclose(np.diag(C), 1))
fig = bg.plots.plot_coclustering(idata, X)
fig
"""),
    md("""
Finally, the component ellipses with their posterior spread: the smaller cluster (30 points)
has visibly more uncertain parameters than the larger one.
"""),
    code("""
fig = bg.plots.plot_components(X, idata, n_draws=40)
fig
"""),
]


# --------------------------------------------------------------------------------------
# 03 choosing K
# --------------------------------------------------------------------------------------

CHOOSING_K = [
    md("""
# 03 · Choosing the number of components: BIC vs LOO

How many clusters? Two standard answers:

* **BIC** (Schwarz 1978): $-2 \\log \\hat L + p \\log N$ at the maximum-likelihood fit, with $p$
  free parameters. It approximates the log marginal likelihood and is consistent for the
  true K when the model is right; cheap (one EM fit per K). Lower is better. AIC uses $2p$
  instead of $p \\log N$ and penalises less.
* **ELPD-LOO** (Vehtari, Gelman & Gabry 2017): the expected log predictive density of a new
  point, estimated by Pareto-smoothed importance-sampling leave-one-out cross-validation on
  the posterior draws. It asks which K *predicts* best, and comes with a standard error.
  Higher is better.

`bg.compare(X, n_components=[...], method=...)` fits one mixture per K and returns a pandas
table with both (ELPD-LOO only for the Bayesian methods `"nuts"` and `"svi"`), plus the
recommended K in `table.attrs["best_k"]`.
"""),
    SETUP,
    code("""
from bayes_gmm.datasets import load_old_faithful

X = load_old_faithful()
"""),
    md("""
## BIC from EM

With `method="em"` every K gets an EM fit (5 restarts by default, so that a poor local
optimum does not decide the comparison).
"""),
    code("""
table_em = bg.compare(X, n_components=[1, 2, 3, 4], method="em", key=jax.random.key(0))
print("recommended K by BIC:", table_em.attrs["best_k"])
table_em
"""),
    code("""
fig = bg.plots.plot_model_selection(table_em)
fig
"""),
    md("""
BIC picks K = 2 on Old Faithful. Note that AIC, with its lighter penalty, prefers K = 3: the
log-likelihood keeps rising with K, and the criteria differ in how much they charge for the
extra parameters.

## ELPD-LOO from the posterior

With `method="svi"` (or `"nuts"`) every K also gets a posterior, and the table gains
`elpd_loo`, its standard error `se`, the effective number of parameters `p_loo`, the
difference to the best model `elpd_diff` with its standard error `dse`, stacking `weight`s,
and the largest Pareto k̂ (above 0.7 the importance-sampling estimate is unreliable for that
point; `warning` flags it).

Posteriors cost more than EM fits, so we spend them only on the plausible candidates from the
scan above: K = 2 (BIC's choice) and K = 3 (AIC's). SVI (a full-rank Gaussian guide, started
at the MAP) is used here because it is much cheaper than NUTS; the settings are small to keep
the notebook quick. `method="nuts"` takes the same
keyword arguments as `bg.fit_nuts` and is the more trustworthy choice for a final analysis.
"""),
    code("""
table_svi = bg.compare(X, n_components=[2, 3], method="svi", key=jax.random.key(0),
                       num_steps=500, num_samples=200, progress_bar=False)
print("recommended K by ELPD-LOO:", table_svi.attrs["best_k"])
table_svi[["bic", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "pareto_k_max"]]
"""),
    code("""
fig = bg.plots.plot_model_selection(table_svi)
fig
"""),
    md("""
## Reading the two together

The log-likelihood rises with K, and the question is whether the rise is worth the extra
parameters. BIC charges $\\log N \\approx 5.6$ per parameter and settles on two clusters.
LOO charges only the effective number of parameters and asks about prediction of new
eruptions; it may prefer a third component that sharpens the density, especially among the
long eruptions. When the ELPD difference between two models is within about two of its
standard errors (`dse`), the data do not really distinguish them, and the simpler model is
the usual choice:
"""),
    code("""
best = table_svi.attrs["best_k"]
for k in table_svi.index:
    if k == best:
        continue
    diff, dse = table_svi.loc[k, "elpd_diff"], table_svi.loc[k, "dse"]
    verdict = "clearly worse" if diff > 2 * dse else "not distinguishable"
    print(f"K={k}: ELPD {diff:.1f} below K={best} (dse {dse:.1f}) -> {verdict}")
"""),
    md("""
**In practice:** use BIC from EM to scan a wide range of K in seconds (`bg.fit_em_grid` does
the same on a compiled grid), then compare the few plausible K by LOO on NUTS posteriors.
Look at the fitted ellipses (`bg.plots.plot_components`) for the candidates, and prefer the
simpler model when the criteria cannot tell them apart.
"""),
]


# --------------------------------------------------------------------------------------
# 04 accelerators and scale
# --------------------------------------------------------------------------------------

SCALE = [
    md("""
# 04 · Accelerators and scale: many fits, batches, sharding, data on disk

The EM in `bayes_gmm` is a pure JAX function: one `jax.lax.scan` over iterations, with the
E-step and M-step written as sums of sufficient statistics. That buys four things, each
shown below on CPU:

1. **many independent fits at once** — `jax.vmap` over datasets (`bg.fit_em_many`);
2. **bounded memory** — `batch_size` computes the responsibilities one chunk of rows at a time;
3. **data-parallel fits** — an `X` sharded over devices with `NamedSharding` gives the same fit;
4. **data larger than memory** — `bg.fit_em_stream` runs exact EM over chunks of a
   `numpy.memmap`.

The notes at the end say what changes on a GPU or TPU.
"""),
    SETUP,
    md("""
Some synthetic data: three well-separated Gaussians in 2-D, drawn with `bg.sample` from known
parameters.
"""),
    code("""
true = bg.GMMParams(
    weights=np.array([0.3, 0.3, 0.4], np.float32),
    means=np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], np.float32),
    covariances=np.tile(np.eye(2, dtype=np.float32), (3, 1, 1)),
    covariance_type="full",
)
X, z = bg.sample(true, jax.random.key(0), 2000)
X = np.asarray(X)
print(X.shape, X.dtype)
"""),
    md("""
## 1. Many fits in one compiled program

Bootstrap resamples, simulation studies, one mixture per subject or per image tile: when the
datasets have equal shapes, stack them to `(B, N, D)` and fit them all at once.
`bg.fit_em_many` is `jax.jit(jax.vmap(fit_em))`, compiled once and cached; every leaf of the
result gains a leading `(B,)` axis, and each dataset converges on its own.

Here: 16 bootstrap resamples of `X`, to see how much the fitted weights vary. `n_init=3`
restarts each fit from three k-means++ initialisations (themselves a `vmap`) and keeps the
best, so that an occasional poor local optimum does not pollute the bootstrap.
"""),
    code("""
rng = np.random.default_rng(0)
B = 16
Xs = np.stack([X[rng.integers(0, len(X), len(X))] for _ in range(B)])   # (B, N, D)

many = bg.fit_em_many(Xs, 3, key=jax.random.key(1), n_init=3)
print("means:", many.params.means.shape, "objective:", many.objective.shape,
      "n_iter:", np.asarray(many.n_iter).tolist())
w = np.sort(np.asarray(many.params.weights), axis=1)   # sort: labels are arbitrary per fit
print("bootstrap sd of the (sorted) weights:", w.std(axis=0).round(3))
"""),
    md("""
The same thing by hand, with JAX's own transformations — `bg.fit_em` is jittable and
vmappable because its configuration (K, covariance type, iteration count, …) is static and
everything else is an array:
"""),
    code("""
keys = jax.random.split(jax.random.key(1), B)
fit_all = jax.jit(jax.vmap(lambda Xb, kb: bg.fit_em(Xb, 3, key=kb, n_init=3).objective))
objectives = fit_all(Xs, keys)
print("per-dataset objectives agree with fit_em_many:",
      np.allclose(objectives, many.objective, rtol=1e-5))
"""),
    md("""
## 2. `batch_size`: bounded memory for large N

The E-step needs the `(N, K)` responsibilities. With `batch_size=b` they are computed `b` rows
at a time inside the compiled loop and only the sufficient statistics (counts, Σx, Σxxᵀ per
component) are kept, so peak memory is O(b·K·D) instead of O(N·K). The sums are the same, so
the fit is the same up to floating-point rounding:
"""),
    code("""
full = bg.fit_em(X, 3, key=jax.random.key(2))
chunked = bg.fit_em(X, 3, key=jax.random.key(2), batch_size=256)
print("objective, one batch :", float(full.objective))
print("objective, 256 rows  :", float(chunked.objective))
print("max |Δ means|:", float(np.abs(np.asarray(full.params.means) - np.asarray(chunked.params.means)).max()))
"""),
    md("""
`bg.GaussianMixture(batch_size=...)` passes the same option through. When `batch_size` is
left at `None`, `fit_em` picks a chunk size from N, K and D so that the responsibilities
stay a modest size.

## 3. Sharding the data over devices

Because EM only needs *sums* over rows, the rows can live on different devices: place `X`
with a `NamedSharding` that splits its first axis over a device mesh, and `bg.fit_em` runs
data-parallel — XLA computes each device's partial statistics where its rows are and adds
them up. Nothing in the call changes:
"""),
    code("""
from jax.sharding import NamedSharding, PartitionSpec as P

n_dev = jax.device_count()
mesh = jax.make_mesh((n_dev,), ("data",))
X_sharded = jax.device_put(X, NamedSharding(mesh, P("data", None)))   # N must divide by n_dev
print("devices:", n_dev, "| sharding:", X_sharded.sharding.spec)

sharded = bg.fit_em(X_sharded, 3, key=jax.random.key(2))
print("same fit as unsharded:", np.allclose(sharded.params.means, full.params.means, atol=1e-4))
"""),
    md("""
On a plain CPU there is one device, so the mesh above has size 1. JAX can pretend that a
CPU is several devices, which is how to develop and test sharded code without a GPU:

```bash
XLA_FLAGS=--xla_force_host_platform_device_count=4 python my_script.py
```

The flag is read when JAX initialises its CPU backend, so it must be in the environment
**before `import jax`** — setting it inside a running notebook has no effect. The cell
below therefore runs the same sharded fit in a fresh Python process with four CPU devices:
"""),
    code('''
import os, subprocess, sys, textwrap

script = textwrap.dedent("""
    import jax, numpy as np
    import bayes_gmm as bg
    from jax.sharding import NamedSharding, PartitionSpec as P
    true = bg.GMMParams(np.array([.3, .3, .4], np.float32),
                        np.array([[0., 0.], [4., 0.], [0., 4.]], np.float32),
                        np.tile(np.eye(2, dtype=np.float32), (3, 1, 1)), "full")
    X = np.asarray(bg.sample(true, jax.random.key(0), 2000)[0])
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    Xs = jax.device_put(X, NamedSharding(mesh, P("data", None)))
    res = bg.fit_em(Xs, 3, key=jax.random.key(2))
    ref = bg.fit_em(X, 3, key=jax.random.key(2))
    print("devices:", jax.devices())
    print("rows per device:", [s.data.shape[0] for s in Xs.addressable_shards])
    print("same fit as one device:", bool(np.allclose(res.params.means, ref.params.means, atol=1e-4)))
""")
env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
print(out.stdout or out.stderr)
'''),
    md("""
On a machine with several GPUs (or a TPU slice) the same code uses the real devices:
`jax.make_mesh((jax.device_count(),), ("data",))` builds the mesh, and for multi-host runs
each process loads its own rows and assembles the global array with
`jax.make_array_from_process_local_data`.

For the posterior, `bg.fit_nuts(..., chain_method="parallel")` runs one chain per device
(it falls back to vectorised chains, with a warning, when there are fewer devices than
chains).

## 4. Data larger than memory: `fit_em_stream` over a memmap

When `X` does not fit in (device) memory, `bg.fit_em_stream` runs *exact* EM over row chunks:
each iteration makes one pass over the data, adding each chunk's sufficient statistics on
the device, then applies the same M-step as `fit_em`. A `numpy.memmap` (or an `.npy` file
opened with `mmap_mode="r"`) is read `chunk_size` rows at a time, so only one chunk is in
memory. Here we write 20 000 rows to a file in a temporary folder and stream them back.
"""),
    code("""
import tempfile
from pathlib import Path

tmp = tempfile.TemporaryDirectory()
path = Path(tmp.name) / "big.npy"
N = 20_000
mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(N, 2))
for start in range(0, N, 5_000):                      # written block by block
    block, _ = bg.sample(true, jax.random.fold_in(jax.random.key(3), start), 5_000)
    mm[start:start + 5_000] = np.asarray(block)
mm.flush()
del mm

data = np.load(path, mmap_mode="r")                   # nothing read yet
streamed = bg.fit_em_stream(data, 3, key=jax.random.key(4), chunk_size=5_000)
print("converged:", bool(streamed.converged), "in", int(streamed.n_iter), "passes over the file")
order = np.argsort(np.asarray(streamed.params.means)[:, 0] + 10 * np.asarray(streamed.params.means)[:, 1])
print("weights:", np.asarray(streamed.params.weights)[order].round(3), "(true 0.3, 0.3, 0.4)")
print("means:\\n", np.asarray(streamed.params.means)[order].round(2))
"""),
    md("""
When the data do fit in memory, `fit_em_stream` and `fit_em` agree (same initialisation
when the reservoir sample used for initialisation holds every row, same M-step, same
convergence test) up to rounding:
"""),
    code("""
in_memory = bg.fit_em(np.asarray(data), 3, key=jax.random.key(4))
print("objective in memory:", float(in_memory.objective), "| streamed:", float(streamed.objective))
tmp.cleanup()
"""),
    md("""
## What changes on a GPU or TPU

Nothing in the code above — JAX places arrays on the default device (`jax.devices()[0]`).
A few things are worth knowing:

* **dtype.** JAX computes in float32 unless x64 mode is on; the functional core
  (`bg.fit_em`, `fit_em_many`, `fit_em_stream`) computes in whatever dtype it is handed.
  float32 is the right choice on accelerators: float64 is many times slower on most GPUs
  and emulated on TPUs. The estimators follow their input like scikit-learn does (float64
  NumPy input is fitted in float64), so pass `X.astype(np.float32)` to keep them on the fast
  path. Standardising the features helps float32 accuracy.
* **memory.** Device memory is smaller than host memory. The E-step's `(N, K)`
  responsibilities are the big array: set `batch_size` so that `batch_size × K` floats (plus
  `K × D × D` for full covariances) fit comfortably; `fit_em_many` needs that much *per
  dataset* in the batch. For data that do not fit on the device at all, shard them over
  several devices or stream them with `fit_em_stream`.
* **batch_size.** On CPU, moderate chunks (thousands of rows) are cache friendly; on
  GPU/TPU use chunks as large as memory allows (hundreds of thousands of rows, or `None`):
  the device is fastest with large, regular arrays.
* **compilation.** The first call for a new shape or static setting compiles (seconds); later
  calls reuse it. Keep shapes fixed — pad datasets to a common N with rows of
  `sample_weight=0` rather than letting every size recompile.
* **sampling.** NUTS is sequential in its steps, so accelerators help most when the
  log-density is expensive (large N): the per-observation likelihood is what runs in
  parallel. Run chains as a batch (`chain_method="vectorized"`, the default) on one device,
  or one per device with `chain_method="parallel"`.
"""),
]


NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_uncertainty_aware_clustering.ipynb": UNCERTAINTY,
    "03_choosing_k.ipynb": CHOOSING_K,
    "04_accelerators_and_scale.ipynb": SCALE,
}


def build(directory: Path = HERE) -> list[Path]:
    """Write every notebook (no outputs, no execution counts) into ``directory``."""
    written = []
    for name, spec in NOTEBOOKS.items():
        nb = new_notebook(cells=_cells(spec))
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nbformat.validate(nb)
        path = Path(directory) / name
        with open(path, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in build():
        print(p)

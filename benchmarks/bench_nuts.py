"""ESS per second: bg.fit_nuts against the mixture model a NumPyro user typically writes.

The typical model: Dirichlet weights, Normal means, LKJCholesky + HalfNormal scales,
``MixtureSameFamily``, NumPyro's default initialisation (uniform in (-2, 2) unconstrained),
run with ``numpyro.infer.MCMC``. Its draws are relabelled against the same MAP-EM
reference as bg.fit_nuts (fairness: R-hat and ESS are meaningless without it).

Reported per method: wall time of the whole fit including warm-up (and, for bg.fit_nuts,
MAP-EM), compile time apart (the first call minus a second, compiled call of the same
shapes, for both: the typical model's second ``MCMC.run`` on the same object), the
smallest bulk ESS over relabelled ``weights``, ``means``, ``covariances``, ESS/s
(min ESS / sampling wall time without compilation), divergences, max R-hat.

Usage::

    python benchmarks/bench_nuts.py --cases 2d --chains 1 --warmup 500 --samples 500
    python benchmarks/bench_nuts.py --cases 2d,5d --chains 4

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

import bayes_gmm as bg
from bayes_gmm.bayes.idata import params_from_dataset, to_inference_data

CASES = {"2d": (2, 1000, 3), "5d": (5, 5000, 4)}


def make_data(d, n, k, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    out = []
    for j in range(k):
        a = rng.normal(size=(d, d)) * 0.5
        cov = a @ a.T + 0.5 * np.eye(d)
        out.append(rng.multivariate_normal(means[j], cov, size=n // k + (j < n % k)))
    return np.concatenate(out)


def typical_model(X, k):
    import numpyro
    import numpyro.distributions as dist
    n, d = X.shape
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.ones(k)))
    with numpyro.plate("component", k):
        means = numpyro.sample("means", dist.Normal(jnp.zeros(d), 10.0).to_event(1))
        corr = numpyro.sample("corr_chol", dist.LKJCholesky(d, 2.0))
        scales = numpyro.sample("scales", dist.HalfNormal(jnp.full(d, 5.0)).to_event(1))
    chol = scales[..., :, None] * corr
    numpyro.deterministic("covariances", chol @ jnp.swapaxes(chol, -1, -2))
    mix = dist.MixtureSameFamily(dist.Categorical(weights),
                                 dist.MultivariateNormal(means, scale_tril=chol))
    with numpyro.plate("data", n):
        numpyro.sample("obs", mix, obs=X)


def min_ess(idata):
    ess = az.ess(idata, var_names=["weights", "means", "covariances"], method="bulk")
    return float(min(np.nanmin(ess[v].values) for v in ess.data_vars))


def max_rhat(idata):
    if idata.posterior.sizes["chain"] < 2:
        return float("nan")
    r = az.rhat(idata, var_names=["weights", "means", "covariances"])
    return float(max(np.nanmax(r[v].values) for v in r.data_vars))


def run_bg(X, k, chains, warmup, samples, seed):
    kw = dict(num_warmup=warmup, num_samples=samples, num_chains=chains, progress_bar=False)
    t0 = time.perf_counter()
    idata = bg.fit_nuts(X, k, key=seed, **kw)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    idata = bg.fit_nuts(X, k, key=seed + 1, **kw)          # compiled: sampling time only
    wall = time.perf_counter() - t0
    return idata, wall, first - wall


def run_typical(X, k, chains, warmup, samples, seed, reference):
    from numpyro.infer import MCMC, NUTS
    mcmc = MCMC(NUTS(typical_model), num_warmup=warmup, num_samples=samples,
                num_chains=chains, chain_method="vectorized", progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.key(seed), jnp.asarray(X), k, extra_fields=("diverging",))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()      # the same MCMC object again: its compiled program is reused
    mcmc.run(jax.random.key(seed + 1), jnp.asarray(X), k, extra_fields=("diverging",))
    wall = time.perf_counter() - t0
    s = mcmc.get_samples(group_by_chain=True)
    draws = {v: np.asarray(s[v]) for v in ("weights", "means", "covariances")}
    c, n = draws["weights"].shape[:2]
    idata = to_inference_data(draws, np.zeros((c, n, 1)), X[:1], reference, "full", "nuts",
                              sample_stats={"diverging": np.asarray(
                                   mcmc.get_extra_fields(group_by_chain=True)["diverging"])})
    return bg.relabel(idata, reference), wall, first - wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="2d", help="comma-separated: 2d (N=1000, K=3), "
                    "5d (N=5000, K=4)")
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-typical", action="store_true")
    args = ap.parse_args()
    rows = []
    warnings.simplefilter("ignore")
    for case in args.cases.split(","):
        d, n, k = CASES[case]
        X = make_data(d, n, k, args.seed)
        with jax.enable_x64(True):
            idata, wall, compile_s = run_bg(X, k, args.chains, args.warmup, args.samples,
                                            args.seed)
        e = min_ess(idata)
        rows.append((f"{d}-D N={n} K={k}", "bg.fit_nuts (MAP-EM start)", wall, compile_s, e,
                     e / wall, int(idata.sample_stats["diverging"].sum()), max_rhat(idata)))
        if not args.skip_typical:
            ref = params_from_dataset(idata["map"], "full")
            with jax.enable_x64(True):
                tid, twall, tcomp = run_typical(X, k, args.chains, args.warmup, args.samples,
                                         args.seed, ref)
            e2 = min_ess(tid)
            rows.append((f"{d}-D N={n} K={k}", "typical NumPyro model (default init)", twall,
                         tcomp, e2, e2 / twall,
                         int(tid.sample_stats["diverging"].sum()), max_rhat(tid)))
    print(f"chains={args.chains}, warmup={args.warmup}, samples={args.samples}, "
          f"devices={jax.devices()}\n")
    print("| data | method | wall s (excl. compile) | compile s | min bulk ESS | ESS/s "
          "| divergences | max R-hat |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.0f} | {r[5]:.1f} | "
              f"{r[6]} | {r[7]:.3f} |")


if __name__ == "__main__":
    main()

"""SBC with the default prior resolved from real data, used as a fixed prior.

``GMMPrior()`` is empirical Bayes (its covariance scale comes from a maximum-likelihood
pilot fit, docs/default_prior.md). SBC needs a prior that does not look at the simulated
data, so this resolves the default once from standardised Old Faithful (K = 2, D = 2) and
runs simulation-based calibration with it fixed: draws from that prior, data from the
draws, NUTS under the same prior. Prints the χ² p-values and writes the rank histograms.

    python scripts/sbc_default_prior.py [--replications 200] [--seed 7] [--out ranks.png]
"""

import argparse
import time

import jax
import numpy as np

import bayes_gmm as bg
from bayes_gmm.core.em import data_prior
from bayes_gmm.datasets import load_old_faithful


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None, help="write the rank histograms here (PNG)")
    args = ap.parse_args(argv)
    with jax.enable_x64(True):
        X = load_old_faithful()
        X = (X - X.mean(0)) / X.std(0)
        resolved = data_prior(bg.GMMPrior(), jax.numpy.asarray(X), 2, "full")
        prior = bg.GMMPrior(*(np.asarray(v) for v in resolved))
        t0 = time.perf_counter()
        ds = bg.sbc(args.replications, n_components=2, n_features=2, n_samples=50,
                    key=jax.random.key(args.seed), prior=prior, num_warmup=300,
                    num_samples=400, thin=2)
        seconds = time.perf_counter() - t0
    print(f"covariance_prior = {np.round(prior.covariance_prior, 4).tolist()}; "
          f"{args.replications} replications in {seconds:.0f} s")
    print("| quantity | χ² | p-value |\n|---|---:|---:|")
    for q in ds["quantity"].values:
        print(f"| `{q}` | {float(ds['chi2'].sel(quantity=q)):.1f} | "
              f"{float(ds['p_value'].sel(quantity=q)):.3f} |")
    if args.out:
        bg.plot_rank_histogram(ds).savefig(args.out, dpi=90)


if __name__ == "__main__":
    main()

"""How far does MAP-EM under a default prior move from maximum likelihood?

The study behind the default ``GMMPrior()`` (docs/default_prior.md). For each data set
(K = the number of true groups, full covariances) it fits maximum likelihood and MAP under
each candidate default for the covariance scale Ψ₀, everything else equal (m₀ = data mean,
κ₀ = 0.01, ν₀ = D + 2, α = 1), and reports against the truth and against the ML fit:

* ARI of the hard clustering with the true labels (and with the ML clustering);
* the MAP fit's log-likelihood per row minus the ML fit's;
* the largest difference between matched weights (MAP vs ML).

Candidates:

* ``data``: Ψ₀ = (ν₀ − D − 1)·cov(X), each component's prior mean covariance is the
  covariance of the whole data set (the first wave's default, replaced);
* ``fraley-raftery``: Ψ₀ = (ν₀ − D − 1)·cov(X) / K^(2/D) (Fraley & Raftery 2007, mclust's
  ``priorControl`` default): K equal clusters share the data's volume, so each has
  1/K of it and a covariance K^(−2/D) times the data's;
* ``fraley-raftery/10``: ten times smaller again (a weaker scale, for contrast);
* ``mode at fraley-raftery``: Ψ₀ = (ν₀ + D + 2)·cov(X) / K^(2/D): the joint MAP mode of
  an empty component's covariance is the Fraley–Raftery target, so a component's MAP
  covariance is the average of that target (weight ν₀ + D + 2) and its own scatter
  (weight N_k) instead of being deflated by the (ν₀ + D + 2) extra counts;
* ``mode at pooled ML``: the same with the target the ML fit's pooled within-component
  covariance Σ_k π_k Σ_k of the hard ML clustering (empirical Bayes; needs a fit first);
* ``default (GMMPrior())``: the package's default, which is the last candidate with the
  pooled covariance taken from its own pilot fit (soft weights, restarts from a fixed
  seed: ``bayes_gmm.core.em.pilot_target``).

Run: ``python scripts/default_prior_study.py [--markdown docs/default_prior.md]``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings

import jax
import numpy as np

import bayes_gmm as bg


def datasets():
    from sklearn.datasets import load_iris, load_wine
    iris, wine = load_iris(), load_wine()
    from bayes_gmm.datasets import load_old_faithful
    faithful = load_old_faithful()
    rng = np.random.default_rng(0)

    def blobs(centers, scales, sizes):
        X = np.concatenate([c + s * rng.normal(size=(n, len(c)))
                            for c, s, n in zip(centers, scales, sizes)])
        y = np.repeat(np.arange(len(sizes)), sizes)
        return X, y

    sep = blobs(np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]]), [0.3, 1.0, 2.0], [60, 120, 220])
    over = blobs(np.array([[0.0, 0.0], [2.5, 0.0], [1.0, 2.5]]), [1.0, 0.7, 1.2],
                 [150, 100, 150])
    tight = blobs(np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 0.0], [6.0, 0.0, 3.0],
                            [0.0, 6.0, 6.0]]), [0.2, 0.2, 0.5, 1.0], [40, 40, 80, 240])
    return {
        "iris (150×4, K=3)": (iris.data, iris.target),
        "wine (178×13, K=3)": (wine.data, wine.target),
        "Old Faithful (272×2, K=2)": (faithful, None),
        "separated, unequal scales (400×2, K=3)": sep,
        "overlapping (400×2, K=3)": over,
        "tight and wide (400×3, K=4)": tight,
    }


def ari(a, b):
    """Adjusted Rand index, written out (Hubert & Arabie 1985)."""
    from scipy.special import comb
    a, b = np.asarray(a), np.asarray(b)
    cont = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(cont, (a, b), 1)
    sum_ij = comb(cont, 2).sum()
    sa, sb = comb(cont.sum(1), 2).sum(), comb(cont.sum(0), 2).sum()
    expected = sa * sb / comb(len(a), 2)
    return float((sum_ij - expected) / (0.5 * (sa + sb) - expected))


def fit(X, k, prior, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bg.fit_em(X, k, key=jax.random.key(seed), prior=prior, n_init=10, tol=1e-9,
                        max_iter=2000, dtype=np.float64)
    with jax.enable_x64(True):
        labels = np.asarray(bg.predict(res.params, X))
        ll = float(np.mean(np.asarray(bg.log_prob(res.params, X))))
    return np.asarray(res.params.weights, np.float64), labels, ll


def matched_weight_gap(w_ml, lab_ml, w_map, lab_map, k):
    best = np.inf
    for perm in itertools.permutations(range(k)):
        best = min(best, float(np.max(np.abs(w_ml - w_map[list(perm)]))))
    return best


def candidates(X, k, pooled):
    d = X.shape[1]
    cov = np.cov(X, rowvar=False, bias=True).reshape(d, d)
    nu = d + 2.0
    fr = cov / k ** (2.0 / d)
    mode = nu + d + 2      # Ψ₀ = mode·target: an empty component's MAP covariance is target
    return {"data": bg.GMMPrior(covariance_prior=(nu - d - 1) * cov),
            "fraley-raftery": bg.GMMPrior(covariance_prior=(nu - d - 1) * fr),
            "fraley-raftery/10": bg.GMMPrior(covariance_prior=(nu - d - 1) * fr / 10),
            "mode at fraley-raftery": bg.GMMPrior(covariance_prior=mode * fr),
            "mode at pooled ML": bg.GMMPrior(covariance_prior=mode * pooled),
            "default (GMMPrior())": bg.GMMPrior()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", help="write the table to this file")
    args = ap.parse_args(argv)
    rows = []
    for name, (X, y) in datasets().items():
        X = np.asarray(X, np.float64)
        k = 2 if y is None else int(y.max()) + 1
        w_ml, lab_ml, ll_ml = fit(X, k, None, 0)
        # the ML fit's pooled within-component covariance Σ_k π_k Σ_k
        pooled = sum(np.cov(X[lab_ml == j], rowvar=False, bias=True).reshape(X.shape[1], -1)
                     * np.mean(lab_ml == j) for j in np.unique(lab_ml))
        truth = lab_ml if y is None else y
        rows.append((name, "maximum likelihood", ari(truth, lab_ml), 1.0, 0.0, 0.0,
                     np.sort(w_ml)))
        for cname, prior in candidates(X, k, pooled).items():
            w, lab, ll = fit(X, k, prior, 0)
            rows.append((name, cname, ari(truth, lab), ari(lab_ml, lab), ll - ll_ml,
                         matched_weight_gap(w_ml, lab_ml, w, lab, k), np.sort(w)))
    lines = ["| data | fit | ARI vs truth | ARI vs ML | Δ log-lik / row | max Δ weight | "
             "weights (sorted) |", "|---|---|---:|---:|---:|---:|---|"]
    for name, cname, a, a_ml, dll, dw, w in rows:
        lines.append(f"| {name} | {cname} | {a:.3f} | {a_ml:.3f} | {dll:+.4f} | {dw:.3f} | "
                     f"{' / '.join(f'{v:.3f}' for v in w)} |")
    text = "\n".join(lines)
    sys.stdout.write(text + "\n")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

"""The mclust-style grid on Old Faithful: every implemented family × K = 1..9, n_init = 10.

Measures what a user waits for: the first call in a fresh process with JAX's persistent
compilation cache switched off (cold: compiling dominates), the same call again in that
process (warm: every program compiled), and the compile seconds compare reports per cell.

    BAYES_GMM_NO_CACHE=1 python benchmarks/bench_mclust_grid.py [--ks 1..9]
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("BAYES_GMM_NO_CACHE", "1")

import jax  # noqa: E402

import bayes_gmm as bg  # noqa: E402
from bayes_gmm.datasets import load_old_faithful  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kmax", type=int, default=9)
    args = ap.parse_args(argv)
    X = load_old_faithful()
    ks = list(range(1, args.kmax + 1))
    times = []
    for run in ("cold", "warm"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = bg.compare(X, ks, covariance_type="all", key=jax.random.key(0))
        seconds = time.perf_counter() - t0
        times.append(seconds)
        print(f"{run}: {seconds:.1f} s for {len(table)} cells "
              f"({table['compile_seconds'].sum():.1f} s compiling); best model "
              f"{table.attrs['best_model']}, BIC {table['bic'].min():.3f}")
    print(f"cold / warm = {times[0] / times[1]:.1f}")


if __name__ == "__main__":
    main()

"""The mclust-style grid on Old Faithful: every mclust family × K = 1..9, n_init = 10.

Measures what a user waits for: the first call in a fresh process with JAX's persistent
compilation cache switched off (cold: compiling dominates), the same call again in that
process (warm: every program compiled), and the compile seconds compare reports per cell.
Two ways to run the grid, each in its own fresh process:

* ``padded``: ``bg.compare`` as shipped, every K of a family in the one EM program compiled
  for K = 9 (the other components at weight exactly 0);
* ``loop``: the same grid as a loop of single fits, one program per (family, K)
  (``pad_components=None``). Its 126 programs do not fit in one process here: past about
  a hundred, LLVM fails with "Cannot allocate memory" (the kernel's memory-map limit,
  vm.max_map_count = 65530) and the process aborts. So this mode runs family by family
  and frees the compiled programs after each (``jax.clear_caches()``), as a user would
  have to; it has no warm second call for that reason.

    python benchmarks/bench_mclust_grid.py [--kmax 9]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings


def one(mode, kmax):
    import jax
    import pandas as pd

    import bayes_gmm as bg
    from bayes_gmm.core.covariance import MCLUST_TYPES
    from bayes_gmm.datasets import load_old_faithful

    X = load_old_faithful()
    ks = list(range(1, kmax + 1))
    out = {}
    for run in ("cold", "warm") if mode == "padded" else ("cold",):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if mode == "padded":
                table = bg.compare(X, ks, covariance_type="all", key=jax.random.key(0))
            else:
                parts = []
                for family in MCLUST_TYPES:
                    parts.append(bg.compare(X, ks, covariance_type=[family],
                                            key=jax.random.key(0), pad_components=None))
                    jax.clear_caches()
                table = pd.concat(parts)
                table.attrs["best_model"] = table["bic"].where(~table["degenerate"]).idxmin()
        out[run] = dict(seconds=time.perf_counter() - t0,
                        compiling=float(table["compile_seconds"].sum()),
                        cells=len(table),
                        best=[str(table.attrs["best_model"][0]),
                              int(table.attrs["best_model"][1])],
                        bic=float(table["bic"].min()))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kmax", type=int, default=9)
    ap.add_argument("--mode", choices=("padded", "loop"), default=None,
                    help="run one mode in this process (used by the driver)")
    args = ap.parse_args(argv)
    if args.mode:
        print(json.dumps(one(args.mode, args.kmax)))
        return
    env = {**os.environ, "BAYES_GMM_NO_CACHE": "1"}
    results = {}
    for mode in ("padded", "loop"):
        proc = subprocess.run([sys.executable, __file__, "--mode", mode, "--kmax",
                               str(args.kmax)], env=env, capture_output=True, text=True,
                              check=True)
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        for run, r in results[mode].items():
            print(f"{mode:6s} {run}: {r['seconds']:6.1f} s for {r['cells']} cells "
                  f"({r['compiling']:.1f} s compiling); best model {tuple(r['best'])}, "
                  f"BIC {r['bic']:.3f}")
    ratio = results["loop"]["cold"]["seconds"] / results["padded"]["cold"]["seconds"]
    print(f"cold: loop / padded = {ratio:.1f}")


if __name__ == "__main__":
    main()

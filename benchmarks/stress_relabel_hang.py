"""Stress loop for issue 11's hang: NUTS on standardised wine (K = 3), then relabel.

One fit once hung for 17 minutes with no CPU use inside ``relabel``'s assignment cost and
did not reproduce in five later runs. This loop repeats the same fit (with the progress
bar on, as in the report) and arms :mod:`faulthandler` to dump every thread's stack if a
run takes longer than ``--watchdog`` seconds, so a hang leaves the evidence of where it
waits.

Run: ``python benchmarks/stress_relabel_hang.py --runs 10 --watchdog 600``
"""

from __future__ import annotations

import argparse
import faulthandler
import sys
import time
import warnings

import jax

import bayes_gmm as bg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--watchdog", type=float, default=600.0)
    ap.add_argument("--num-warmup", type=int, default=300)
    ap.add_argument("--num-samples", type=int, default=300)
    args = ap.parse_args(argv)
    from sklearn.datasets import load_wine
    X = load_wine().data
    X = (X - X.mean(0)) / X.std(0)
    for r in range(args.runs):
        faulthandler.dump_traceback_later(args.watchdog, exit=True, file=sys.stderr)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = bg.fit_nuts(X, 3, key=jax.random.key(r), num_warmup=args.num_warmup,
                                num_samples=args.num_samples, progress_bar=True)
            t1 = time.perf_counter()
            bg.relabel(idata)                      # a second relabel, as summaries do
        faulthandler.cancel_dump_traceback_later()
        sys.stderr.write(f"run {r}: fit+relabel {t1 - t0:.1f} s, second relabel "
                         f"{time.perf_counter() - t1:.1f} s, "
                         f"modes {len(bg.posterior_modes(idata))}\n")
    sys.stderr.write(f"{args.runs} runs, no hang\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

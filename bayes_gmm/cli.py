"""The ``bayes-gmm`` command: ``demo``, ``fit`` and ``compare``.

``bayes-gmm demo`` runs the embedded Old Faithful data end to end (MAP-EM, NUTS with 4
chains, ArviZ summary, membership uncertainty, figures and NetCDF in an output folder).
``bayes-gmm fit DATA -k K`` fits a file; ``bayes-gmm compare DATA -k 1..6`` chooses K.
Run ``bayes-gmm SUBCOMMAND --help`` for the options.

Data files are read by :func:`bayes_gmm.tables.read_table` (pandas): CSV with a detected or
given separator (``--sep``), decimal mark (``--decimal``), encoding (``--encoding``), header
(detected, ``--header``/``--no-header``), an index column (``--index-col``) and the columns
to fit chosen before parsing (``--columns``, by name or position). A file that cannot be
read ends the command with exit status 1 and one line on stderr naming the file, line and
column.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .cli_options import add_bayes_options, add_data_options, parse_ks, positive_int
from .report import (CONSOLE_COMPONENTS, format_components, format_table, jsonable,
                     posterior_mean, save_figure, standardize, write_assignments,
                     write_imputed)
from .tables import DataError, read_table

PROG = "bayes-gmm"
EXIT_DATA_ERROR = 1


def _read(args):
    """The data file of a ``fit`` / ``compare`` command, read with the command's options."""
    return read_table(args.data, args.columns, sep=args.sep, decimal=args.decimal,
                      encoding=args.encoding, header=args.header, index_col=args.index_col,
                      missing=args.missing)


def _fit_em(X, k, covariance_type, seed, prior=None, n_init=5, tol=1e-3, max_iter=500,
            missing="error"):
    from .estimators import GaussianMixture
    gm = GaussianMixture(n_components=k, covariance_type=covariance_type, n_init=n_init,
                         random_state=seed, prior=prior, max_iter=max_iter, tol=tol,
                         missing=missing)
    return gm.fit(X)


def _prior_file(path):
    """The GMMPrior fields in a JSON file (an object whose keys are GMMPrior's fields)."""
    from .core.prior import GMMPrior
    try:
        given = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})"
                        ) from None
    if not isinstance(given, dict):
        raise DataError(f"{path}: expected a JSON object with keys among {GMMPrior._fields}")
    unknown = sorted(set(given) - set(GMMPrior._fields))
    if unknown:
        raise DataError(f"{path}: unknown prior field(s) {unknown}; the fields are "
                        f"{list(GMMPrior._fields)}")
    return given


def _prior(args):
    """The GMMPrior the prior options ask for; None when none is given (EM: maximum
    likelihood; NUTS/SVI: the default GMMPrior()). ``--prior-file`` gives any field
    (``covariance_prior`` too, in the covariance type's shape); the other options override
    the file."""
    given = _prior_file(args.prior_file) if args.prior_file else {}
    options = {"weight_concentration": args.prior_concentration,
               "mean_precision": args.prior_mean_precision,
               "degrees_of_freedom": args.prior_dof}
    given.update({name: v for name, v in options.items() if v is not None})
    if not (args.prior or args.prior_file or given):
        return None
    from .core.prior import GMMPrior
    return GMMPrior(**{name: (np.asarray(v, np.float64) if isinstance(v, list) else v)
                       for name, v in given.items()})


def _fit_bayes(X, k, method, covariance_type, seed, args, progress, prior=None):
    import jax

    from .bayes.posterior import fit_nuts, fit_svi
    key = jax.random.key(seed)
    if method == "nuts":
        return fit_nuts(X, k, key=key, covariance_type=covariance_type, prior=prior,
                        num_warmup=args.num_warmup, num_samples=args.num_samples,
                        num_chains=args.num_chains, progress_bar=progress, dtype=np.float64,
                        missing=args.missing)
    return fit_svi(X, k, key=key, covariance_type=covariance_type, prior=prior,
                   num_steps=args.num_steps, num_samples=args.num_samples, dtype=np.float64,
                   missing=args.missing)


def _summary(idata):
    from .bayes.diagnostics import summary
    return summary(idata)


#: Multiple imputations drawn by ``bayes-gmm fit --method nuts|svi`` for a table with holes.
NUM_IMPUTATIONS = 100


def _write_imputations(idata, X, names, standardization, seed, out):
    """``imputations.nc`` (NUM_IMPUTATIONS posterior predictive draws of the holes, in the
    fitted units) and ``imputed.csv`` (their mean and sd, in the data's units)."""
    import jax

    from .imputation import impute
    draws = impute(idata, X, key=jax.random.fold_in(jax.random.key(seed), 7),
                   num_draws=NUM_IMPUTATIONS)
    draws.to_netcdf(str(out / "imputations.nc"))
    holes = np.isnan(X)            # observed cells: as read, with no spread
    mean = np.where(holes, draws.mean("draw").values, X)
    sd = np.where(holes, draws.std("draw").values, 0.0)
    return [out / "imputations.nc",
            write_imputed(out / "imputed.csv", mean, names, standardization, sd)]


def _fit_figures(plots, X, fit, names, out, method):
    """The figures of ``bayes-gmm fit``: a readable number of panels whatever D (the best
    separating features, at most ``plots.MAX_GRID_FEATURES``, and for D ≥ 3 the plane of
    the first two discriminant directions)."""
    files = []
    if method == "em":
        files.append(save_figure(plots.plot_convergence(fit), out / "convergence.png"))
    else:
        files.append(save_figure(plots.plot_trace(fit), out / "trace.png"))
    if X.shape[0] == 0:
        return files
    if method != "em":
        if X.shape[1] >= 2:
            files.append(save_figure(plots.plot_uncertainty(X, fit, feature_names=names),
                                   out / "uncertainty.png"))
    if X.shape[1] >= 2:
        fig = plots.plot_components(X, fit, feature_names=names, features="best")
        files.append(save_figure(fig, out / "components.png"))
    if X.shape[1] >= 3:
        # The plane in which the component means differ most (MclustDR with the mean
        # differences only: near-constant features cannot take the first directions).
        fig = plots.plot_components(X, fit, feature_names=names, features="discriminant",
                                    means_weight=1.0)
        files.append(save_figure(fig, out / "discriminant.png"))
    return files


# --- sub-commands --------------------------------------------------------------------------

def cmd_fit(args) -> int:
    from . import plots
    X, names = _read(args)
    n = X.shape[0]
    if args.k > n:
        raise DataError(f"{args.data}: -k {args.k} is more than the {n} data rows")
    standardization = None
    if args.standardize:
        X, standardization = standardize(X)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress
    print(f"{args.data}: {n} rows x {X.shape[1]} columns ({', '.join(names)})")
    holes = np.isnan(X)
    if holes.any():
        print(f"{int(holes.sum())} missing cells in {int(holes.any(axis=1).sum())} rows: "
              "integrated out of the likelihood (--missing marginalize)")
    result = {"method": args.method, "n_components": args.k,
              "covariance_type": args.covariance_type, "feature_names": names,
              "n_samples": n, "n_missing": int(holes.sum()),
              "standardization": standardization,
              "units": "standardized" if standardization else "data"}
    prior = _prior(args)
    result["prior"] = (None if prior is None else
                       {f: jsonable(v) for f, v in prior._asdict().items() if v is not None})
    written = []
    # Results first (params.json, summary.csv, assignments.csv, idata.nc), figures after:
    # a figure that fails or is interrupted never costs the fit.
    if args.method == "em":
        gm = _fit_em(X, args.k, args.covariance_type, args.seed, prior=prior,
                     n_init=args.n_init, tol=args.tol, max_iter=args.max_iter,
                     missing=args.missing)
        ll = float(gm.score(X) * n)
        result.update(weights=jsonable(gm.weights_), means=jsonable(gm.means_),
                      covariances=jsonable(gm.covariances_), log_likelihood=ll,
                      bic=float(gm.bic(X)), aic=float(gm.aic(X)), n_iter=int(gm.n_iter_),
                      converged=bool(gm.converged_))
        what = "maximum likelihood" if gm.prior is None else "MAP under the prior"
        print(f"EM ({what}, {gm.n_iter_} iterations, converged={gm.converged_}): "
              f"log-likelihood {ll:.3f}, BIC {result['bic']:.2f}")
        print(format_components(gm.weights_, gm.means_, names))
        import pandas as pd
        table = pd.DataFrame(np.c_[gm.weights_, gm.means_],
                             columns=["weight"] + [f"mean_{c}" for c in names])
        table.index.name = "component"
        table.to_csv(out / "summary.csv")
        probs = np.asarray(gm.predict_proba(X))
        written.append(write_assignments(out / "assignments.csv", probs, probs.argmax(1)))
        if holes.any():           # conditional means E[x_m | x_o] under the fit
            written.append(write_imputed(out / "imputed.csv", gm.impute(X), names,
                                         standardization))
        fit_for_plot = gm
    else:
        from .bayes.diagnostics import assignment_probabilities
        from .bayes.idata import with_feature_names
        idata = with_feature_names(_fit_bayes(X, args.k, args.method, args.covariance_type,
                                              args.seed, args, progress, prior), names)
        table = _summary(idata)
        table.to_csv(out / "summary.csv")
        shown = table[[not i.startswith("covariances") for i in table.index]]
        if len(shown) > 2 * CONSOLE_COMPONENTS:
            shown = shown.iloc[:2 * CONSOLE_COMPONENTS]
        print(shown.to_string())
        if len(shown) < len(table):
            print(f"  ... {len(table) - len(shown)} more rows (covariances and the rest) in "
                  f"{out / 'summary.csv'}")
        modes = table.attrs.get("modes")
        if modes is not None and len(modes) > 1:
            print(f"WARNING: the chains sit in {len(modes)} different modes; the summary and "
                  "the posterior means average over them:")
            print(modes.to_string())
            result["modes"] = [{"chains": list(r.chains), "share": r.share,
                                "log_likelihood": r.log_likelihood, "weights": r.weights}
                               for _, r in modes.iterrows()]
        pm = posterior_mean(idata)
        result.update({f"posterior_mean_{v}": jsonable(a) for v, a in pm.items()})
        if "diverging" in getattr(idata, "sample_stats", {}):
            result["divergences"] = int(np.asarray(idata.sample_stats["diverging"]).sum())
        ap = assignment_probabilities(idata, X, missing=args.missing)
        probs = np.asarray(ap["mean"])
        written.append(write_assignments(
            out / "assignments.csv", probs, np.asarray(ap["cluster"]),
            np.asarray(ap["entropy"]), np.asarray(ap["lower"]), np.asarray(ap["upper"])))
        idata.to_netcdf(str(out / "idata.nc"))
        written.append(out / "idata.nc")
        if holes.any():
            written += _write_imputations(idata, X, names, standardization, args.seed, out)
        fit_for_plot = idata
    (out / "params.json").write_text(json.dumps(result, indent=1))
    written += [out / "summary.csv", out / "params.json"]
    if not args.no_plots:
        complete = X[~holes.any(axis=1)]
        if holes.any():
            print(f"figures show the {complete.shape[0]} rows without a missing cell")
        written += _fit_figures(plots, complete, fit_for_plot, names, out, args.method)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_compare(args) -> int:
    from . import plots
    from .model_selection import compare
    X, names = _read(args)
    if max(args.k) > X.shape[0]:
        raise DataError(f"{args.data}: K={max(args.k)} is more than the {X.shape[0]} data rows")
    if args.standardize:
        X, _ = standardize(X)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = {}
    if args.method == "nuts":
        kwargs = dict(num_warmup=args.num_warmup, num_samples=args.num_samples,
                      num_chains=args.num_chains, progress_bar=not args.no_progress)
    elif args.method == "svi":
        kwargs = dict(num_steps=args.num_steps, num_samples=args.num_samples)
    prior = _prior(args)
    if prior is not None:
        kwargs["prior"] = prior
    if args.method == "em":
        kwargs["criterion"] = args.criterion
    table = compare(X, args.k, method=args.method, covariance_type=args.covariance_type,
                    random_state=args.seed, progress_bar=not args.no_progress,
                    missing=args.missing, **kwargs)
    print(format_table(table))
    if table.attrs["best_k"] is None:
        print("no K recommended: every fit is degenerate (see degenerate_reason)")
    elif table.index.nlevels == 2:
        family, k = table.attrs["best_model"]
        print(f"recommended model: {family} with K = {k} ({table.attrs['rule']})")
    else:
        print(f"recommended K = {table.attrs['best_k']} ({table.attrs['rule']})")
    table.to_csv(out / "compare.csv")
    fig_path = save_figure(plots.plot_model_selection(table), out / "model_selection.png")
    print(f"wrote {out / 'compare.csv'}, {fig_path}")
    return 0


def cmd_demo(args) -> int:
    import jax

    from . import plots
    from .datasets import load_old_faithful
    from .densities import log_prob
    from .bayes.diagnostics import assignment_probabilities
    from .bayes.posterior import fit_nuts
    from .core.params import GMMParams
    from .core.prior import GMMPrior

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress
    X = load_old_faithful()
    names = ["eruption (min)", "waiting (min)"]
    num_warmup, num_samples = (100, 100) if args.quick else (args.num_warmup, args.num_samples)
    t0 = time.perf_counter()
    print(f"Old Faithful: {X.shape[0]} eruptions x {X.shape[1]} features "
          f"(eruption duration, waiting time; minutes)")
    gm = _fit_em(X, 2, "full", args.seed, prior=GMMPrior())
    p = GMMParams(gm.weights_, gm.means_, gm.covariances_, "full")
    with jax.enable_x64(True):
        ll = float(np.sum(np.asarray(log_prob(p, X))))
    print(f"\n1. MAP-EM, K=2 ({gm.n_iter_} iterations): log-likelihood {ll:.2f}")
    print(format_components(gm.weights_, gm.means_, names))
    save_figure(plots.plot_components(X, gm, feature_names=names), out / "em_components.png")
    save_figure(plots.plot_convergence(gm), out / "em_convergence.png")

    print(f"\n2. NUTS from the MAP: {args.num_chains} chains x ({num_warmup} warm-up + "
          f"{num_samples} draws)")
    idata = fit_nuts(X, 2, key=jax.random.key(args.seed), num_warmup=num_warmup,
                     num_samples=num_samples, num_chains=args.num_chains, init=p,
                     progress_bar=progress, dtype=np.float64)  # from (and labelled as) the MAP
    table = _summary(idata)
    import pandas as pd
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print("\n3. Posterior summary (R-hat near 1 and large ESS mean the chains agree):")
        print(table.to_string())
    table.to_csv(out / "summary.csv")
    n_div = int(np.asarray(idata.sample_stats["diverging"]).sum()) \
        if "diverging" in idata.sample_stats else 0
    print(f"   divergent transitions: {n_div}")

    ap = assignment_probabilities(idata, X)
    ent = np.asarray(ap["entropy"], np.float64)
    threshold = 0.3
    worst = np.argsort(-ent)[:5]
    print(f"\n4. Membership uncertainty: {int((ent > threshold).sum())} of {len(ent)} points "
          f"have entropy > {threshold} nats (max {ent.max():.3f}; ln 2 = {math.log(2):.3f} is "
          "a coin flip). Most uncertain rows:")
    for i in worst:
        pr = np.asarray(ap["mean"])[i]
        print(f"   row {i}: ({X[i, 0]:.2f}, {X[i, 1]:.0f})  P(component) = "
              + ", ".join(f"{v:.2f}" for v in pr) + f"  entropy {ent[i]:.3f}")

    files = [
        save_figure(plots.plot_components(X, idata, feature_names=names),
                  out / "posterior_components.png"),
        save_figure(plots.plot_uncertainty(X, idata, threshold=threshold,
                                     feature_names=names), out / "uncertainty.png"),
        save_figure(plots.plot_trace(idata, feature_names=names), out / "trace.png"),
        save_figure(plots.plot_coclustering(idata, X), out / "coclustering.png"),
    ]
    idata.to_netcdf(str(out / "idata.nc"))
    print(f"\n5. Wrote {out / 'em_components.png'}, {out / 'em_convergence.png'}, "
          + ", ".join(str(f) for f in files) + f", {out / 'summary.csv'}, {out / 'idata.nc'}")
    print(f"Done in {time.perf_counter() - t0:.1f} s.")
    return 0


# --- parser --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Gaussian mixture models in JAX: compiled EM, NUTS/SVI from "
        "the MAP, ArviZ diagnostics.")
    from ._version import __version__
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="Old Faithful end to end: MAP-EM, NUTS, diagnostics, "
                          "figures", description="Fit the embedded Old Faithful data by MAP-EM "
                          "and NUTS (4 chains), print the ArviZ summary and the membership "
                          "uncertainty, and write PNG figures and the InferenceData (NetCDF).")
    demo.add_argument("--out", default="bayes_gmm_demo",
                      help="output folder (default %(default)s)")
    demo.add_argument("--quick", action="store_true",
                      help="fewer draws (100 warm-up + 100 per chain), for a smoke test")
    demo.add_argument("--num-warmup", type=positive_int, default=300,
                      help="NUTS warm-up per chain (default %(default)s)")
    demo.add_argument("--num-samples", type=positive_int, default=300,
                      help="NUTS draws per chain (default %(default)s)")
    demo.add_argument("--num-chains", type=positive_int, default=4,
                      help="NUTS chains (default %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)

    fit = sub.add_parser("fit", help="fit a mixture to a data file",
                         description="Fit a K-component mixture to DATA; write summary.csv, "
                         "params.json, assignments.csv (probabilities), PNG figures and, for "
                         "Bayesian fits, idata.nc (NetCDF).")
    add_data_options(fit)
    fit.add_argument("-k", "--n-components", dest="k", type=positive_int, required=True,
                     help="number of components K")
    fit.add_argument("--out", default="bayes_gmm_fit", help="output folder (default %(default)s)")
    e = fit.add_argument_group("EM fits (--method em)")
    e.add_argument("--n-init", type=positive_int, default=5,
                   help="restarts; the best objective wins (default %(default)s)")
    e.add_argument("--tol", type=float, default=1e-3,
                   help="stop when the mean log-likelihood per row changes less "
                        "(default %(default)s)")
    e.add_argument("--max-iter", type=positive_int, default=500,
                   help="EM iterations at most (default %(default)s)")
    add_bayes_options(fit)
    fit.set_defaults(func=cmd_fit)

    cmp_ = sub.add_parser("compare", help="choose K by BIC (EM) or ELPD-LOO (NUTS/SVI)",
                          description="Fit K = each of the given values and tabulate BIC/AIC "
                          "(and ELPD-LOO for Bayesian methods); write compare.csv and "
                          "model_selection.png.")
    add_data_options(cmp_, grid=True)
    cmp_.add_argument("-k", "--n-components", dest="k", type=parse_ks, default=[1, 2, 3, 4, 5, 6],
                      help="K values: '1..6' (default), '2,3,5' or '3'")
    cmp_.add_argument("--out", default="bayes_gmm_compare",
                      help="output folder (default %(default)s)")
    add_bayes_options(cmp_, default_warmup=300, default_samples=300)
    cmp_.set_defaults(func=cmd_compare)
    return parser


def main(argv=None) -> int:
    """Entry point of ``bayes-gmm``; returns the exit status (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib
        matplotlib.use("Agg")          # the command only writes files; never open windows
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError) as e:       # DataError is a ValueError
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"{PROG} {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_DATA_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

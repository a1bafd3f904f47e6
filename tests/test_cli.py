"""The bayes-gmm command: demo end to end, fit/compare on files, and bad files ending with a
one-line error that names the file, line and column (no traceback)."""

import json
import os
import subprocess
import sys

import arviz as az
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGMM

from bayes_gmm import cli, cli_options

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _nonempty_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5000, path


@pytest.fixture(scope="module")
def faithful_csv(tmp_path_factory, faithful):
    path = tmp_path_factory.mktemp("data") / "faithful.csv"
    np.savetxt(path, faithful, delimiter=",", header="eruptions,waiting", comments="",
               fmt="%.4f")
    return path


def _run_bad(tmp_path, capsys, text, name="bad.csv"):
    path = tmp_path / name
    path.write_text(text)
    rc = cli.main(["fit", str(path), "-k", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0]
    return lines[0]


@pytest.mark.parametrize("text, expected", [
    ("a,b\n1,2\n3,x\n4,5\n", r"line 3, column 2 ('b'): 'x' is not a number"),
    ("1 2\n3 4\n5 abc\n", "line 3, column 2: 'abc' is not a number"),
    ("a,b\n1,2\n3,nan\n", "line 3, column 2 ('b'): missing value"),
    ("a,b\n1,2\n,4\n", "line 3, column 1 ('a'): missing value"),
    ("a,b\n1,2\n3,4,5\n", "line 3: expected 2 columns, found 3"),
    ("# only a comment\n\n", "the file is empty"),
    ("", "the file is empty"),
    ("a,b\n", "line 1: only a header"),
    ("1,2\n3,inf\n", "line 2, column 2: 'inf' is not finite"),
])
def test_bad_files_name_file_line_and_column(tmp_path, capsys, text, expected):
    assert expected in _run_bad(tmp_path, capsys, text)


def test_missing_file_and_bad_arguments(tmp_path, capsys):
    rc = cli.main(["fit", str(tmp_path / "nope.csv"), "-k", "2"])
    err = capsys.readouterr().err
    assert rc != 0 and "nope.csv: no such file" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as e:          # argparse: usage error, exit status 2
        cli.main(["fit", "x.csv", "-k", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["compare", "x.csv", "-k", "3..x"])
    assert cli_options.parse_ks("1..4") == [1, 2, 3, 4]
    assert cli_options.parse_ks("2,5,3") == [2, 3, 5]


@pytest.mark.parametrize("sub", ["demo", "fit", "compare"])
def test_help_on_every_subcommand(capsys, sub):
    with pytest.raises(SystemExit) as e:
        cli.main([sub, "--help"])
    assert e.value.code == 0
    assert f"usage: bayes-gmm {sub}" in capsys.readouterr().out


def test_read_data_formats(tmp_path, faithful_csv, faithful):
    from bayes_gmm.tables import read_table
    X, names = read_table(faithful_csv)
    assert names == ["eruptions", "waiting"]
    np.testing.assert_allclose(X, np.round(faithful, 4))
    p = tmp_path / "ws.txt"
    p.write_text("# comment\n1.5 2\n\n3\t4e1\n")
    X, names = read_table(p)
    assert names == ["x0", "x1"] and X.tolist() == [[1.5, 2.0], [3.0, 40.0]]
    X, names = read_table(faithful_csv, ["waiting"])
    assert names == ["waiting"] and X.shape == (272, 1)
    with pytest.raises(ValueError, match="no column 'depth'"):
        read_table(faithful_csv, ["depth"])


def test_fit_reads_a_real_table(tmp_path, capsys):
    """iris as a spreadsheet would export it: an index column, a text column, decimal
    commas, semicolons, Latin-1 names; --columns skips the text column before parsing."""
    from sklearn.datasets import load_iris
    iris = load_iris()
    lines = ["n°;longueur sépale;largeur sépale;longueur pétale;largeur pétale;espèce"]
    for i, (row, y) in enumerate(zip(iris.data, iris.target)):
        cells = [f"{v:.1f}".replace(".", ",") for v in row]
        lines.append(";".join([str(i)] + cells + [iris.target_names[y]]))
    p = tmp_path / "iris_fr.csv"
    p.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    out = tmp_path / "o"
    rc = cli.main(["fit", str(p), "-k", "3", "--decimal", ",", "--index-col", "n°",
                   "--columns", "longueur pétale,largeur pétale", "--out", str(out),
                   "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    params = json.loads((out / "params.json").read_text())
    assert params["feature_names"] == ["longueur pétale", "largeur pétale"]
    assert params["n_samples"] == 150
    # the species column, kept, is an error naming it
    rc = cli.main(["fit", str(p), "-k", "3", "--decimal", ",", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "column 6 ('espèce'): 'setosa' is not a number" in err


def test_fit_em_writes_outputs(tmp_path, faithful_csv, faithful, capsys):
    out = tmp_path / "fit"
    rc = cli.main(["fit", str(faithful_csv), "-k", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    params = json.loads((out / "params.json").read_text())
    X = np.round(faithful, 4)
    sk = SkGMM(2, n_init=5, random_state=0, tol=1e-8, max_iter=500).fit(X)
    assert params["log_likelihood"] == pytest.approx(sk.score(X) * len(X), abs=0.01)
    assert params["feature_names"] == ["eruptions", "waiting"]
    assert sorted(params["weights"]) == pytest.approx(sorted(sk.weights_), abs=1e-3)
    a = np.genfromtxt(out / "assignments.csv", delimiter=",", names=True)
    assert len(a) == 272
    np.testing.assert_allclose(a["p_0"] + a["p_1"], 1.0, atol=1e-5)
    for f in ("components.png", "convergence.png"):
        _nonempty_png(out / f)
    assert (out / "summary.csv").stat().st_size > 0
    # --standardize and --columns
    rc = cli.main(["fit", str(faithful_csv), "-k", "2", "--out", str(tmp_path / "s"),
                   "--standardize", "--covariance-type", "diag", "--columns", "waiting,eruptions"])
    assert rc == 0
    params = json.loads((tmp_path / "s" / "params.json").read_text())
    assert params["units"] == "standardized"
    assert params["feature_names"] == ["waiting", "eruptions"]
    assert params["standardization"]["mean"] == pytest.approx(X[:, ::-1].mean(0).tolist())


def test_fit_nuts_and_compare(tmp_path, two_clusters, faithful_csv, capsys):
    X, _ = two_clusters
    data = tmp_path / "two.txt"
    np.savetxt(data, X)
    out = tmp_path / "nuts"
    # the NUTS configuration of test_plots/test_io (one compiled program for all three)
    rc = cli.main(["fit", str(data), "-k", "2", "--method", "nuts", "--out", str(out),
                   "--num-warmup", "100", "--num-samples", "100", "--num-chains", "1",
                   "--no-progress"])
    assert rc == 0
    idata = az.from_netcdf(out / "idata.nc")
    assert idata.posterior["means"].shape == (1, 100, 2, 2)
    for f in ("components.png", "uncertainty.png", "trace.png"):
        _nonempty_png(out / f)
    a = np.genfromtxt(out / "assignments.csv", delimiter=",", names=True)
    # Equal-tailed intervals of per-draw memberships (the mean may lie outside one when the
    # draws are skewed). With K = 2, p_1 = 1 − p_0 in every draw, so its quantiles mirror
    # p_0's: lower_1 = 1 − upper_0 (to the CSV's 6 significant digits).
    assert np.all((0 <= a["p_0_lower"]) & (a["p_0_lower"] <= a["p_0_upper"])
                  & (a["p_0_upper"] <= 1 + 1e-6))
    np.testing.assert_allclose(a["p_0"] + a["p_1"], 1.0, atol=2e-6)
    np.testing.assert_allclose(a["p_1_lower"], 1.0 - a["p_0_upper"], atol=2e-6)
    np.testing.assert_allclose(a["p_1_upper"], 1.0 - a["p_0_lower"], atol=2e-6)
    # Old Faithful, K = 1..3: the EM programs of test_model_selection
    rc = cli.main(["compare", str(faithful_csv), "-k", "1..3", "--out", str(tmp_path / "cmp")])
    assert rc == 0
    assert "recommended K = 2" in capsys.readouterr().out
    _nonempty_png(tmp_path / "cmp" / "model_selection.png")


def test_demo_in_process(tmp_path, capsys):
    # the full demo (not --quick, whose 100 warm-up steps are too few to adapt): a healthy
    # fit, reported as healthy, without a single diagnostic warning
    import warnings

    import bayes_gmm as bg
    out = tmp_path / "demo"
    with warnings.catch_warnings():
        warnings.simplefilter("error", bg.DiagnosticWarning)
        assert cli.main(["demo", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "r_hat" in printed and "ess_bulk" in printed and "entropy" in printed
    for f in ("em_components.png", "posterior_components.png", "uncertainty.png", "trace.png",
              "coclustering.png", "em_convergence.png"):
        _nonempty_png(out / f)
    idata = az.from_netcdf(out / "idata.nc")
    assert idata.posterior.sizes["chain"] == 4
    assert "obs" in idata.log_likelihood


def test_demo_subprocess(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-m", "bayes_gmm", "demo", "--quick", "--out",
                        str(tmp_path / "d")], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "d" / "idata.nc").stat().st_size > 1000
    _nonempty_png(tmp_path / "d" / "posterior_components.png")
    # a bad file through the real entry point: exit 1, one line on stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,oops\n")
    r = subprocess.run([sys.executable, "-m", "bayes_gmm.cli", "fit", str(bad), "-k", "1"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "line 3, column 2" in r.stderr
    assert "Traceback" not in r.stderr


def test_fit_options_and_no_plots(tmp_path, faithful_csv, capsys):
    out = tmp_path / "np"
    rc = cli.main(["fit", str(faithful_csv), "-k", "2", "--out", str(out), "--no-plots",
                   "--n-init", "2", "--tol", "1e-6", "--max-iter", "7"])
    assert rc == 0
    assert not list(out.glob("*.png"))
    params = json.loads((out / "params.json").read_text())
    assert params["n_iter"] <= 7
    assert (out / "assignments.csv").exists() and (out / "summary.csv").exists()


def test_fit_64_features_is_quick_and_readable(tmp_path, capsys):
    """digits (1797 × 64), K = 10, diag: EM, every file, at most 6 panels, short console."""
    from sklearn.datasets import load_digits
    d = load_digits()
    p = tmp_path / "digits.csv"
    np.savetxt(p, d.data, delimiter=",", fmt="%d",
               header=",".join(f"px{i}" for i in range(64)), comments="")
    out = tmp_path / "dig"
    rc = cli.main(["fit", str(p), "-k", "10", "--covariance-type", "diag", "--out",
                   str(out), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert len(printed.splitlines()) < 20 and "58 more" in printed
    params = json.loads((out / "params.json").read_text())
    assert np.asarray(params["means"]).shape == (10, 64)
    for f in ("components.png", "convergence.png", "discriminant.png"):
        _nonempty_png(out / f)
    from PIL import Image
    with Image.open(out / "components.png") as im:       # 3 x 3 grid at most, not 63 x 63
        assert max(im.size) < 1200


def test_fit_with_prior_options(tmp_path, faithful_csv, faithful, capsys):
    import bayes_gmm as bg
    out = tmp_path / "map"
    rc = cli.main(["fit", str(faithful_csv), "-k", "2", "--out", str(out), "--no-plots",
                   "--prior-dof", "10", "--prior-mean-precision", "0.5"])
    assert rc == 0
    assert "MAP under the prior" in capsys.readouterr().out
    params = json.loads((out / "params.json").read_text())
    assert params["prior"] == {"weight_concentration": 1.0, "mean_precision": 0.5,
                               "degrees_of_freedom": 10.0}
    X = np.round(faithful, 4)
    gm = bg.GaussianMixture(2, n_init=5, max_iter=500, random_state=0,
                            prior=bg.GMMPrior(degrees_of_freedom=10.0, mean_precision=0.5)
                            ).fit(X)
    np.testing.assert_allclose(sorted(params["weights"]), sorted(gm.weights_), atol=1e-6)
    rc = cli.main(["fit", str(faithful_csv), "-k", "2", "--out", str(tmp_path / "ml"),
                   "--no-plots"])
    ml = json.loads((tmp_path / "ml" / "params.json").read_text())
    assert ml["prior"] is None and ml["log_likelihood"] > params["log_likelihood"]


def test_fit_with_a_prior_file(tmp_path, faithful_csv, faithful, capsys):
    import bayes_gmm as bg
    psi = [[0.5, 2.0], [2.0, 60.0]]
    path = tmp_path / "prior.json"
    path.write_text(json.dumps({"covariance_prior": psi, "degrees_of_freedom": 6,
                                "mean_precision": 2.0}))
    out = tmp_path / "map"
    rc = cli.main(["fit", str(faithful_csv), "-k", "2", "--out", str(out), "--no-plots",
                   "--prior-file", str(path), "--prior-mean-precision", "0.5"])
    assert rc == 0
    params = json.loads((out / "params.json").read_text())
    assert params["prior"]["covariance_prior"] == psi
    assert params["prior"]["mean_precision"] == 0.5          # the option overrides the file
    X = np.round(faithful, 4)
    prior = bg.GMMPrior(covariance_prior=np.array(psi), degrees_of_freedom=6.0,
                        mean_precision=0.5)
    gm = bg.GaussianMixture(2, n_init=5, max_iter=500, random_state=0, prior=prior).fit(X)
    order = np.argsort(params["weights"])
    np.testing.assert_allclose(np.asarray(params["covariances"])[order],
                               gm.covariances_[np.argsort(gm.weights_)], rtol=1e-5)
    # a bad file is one line naming the file and the problem
    bad = tmp_path / "bad.json"
    for text, msg in (('{"covariance_scale": 1}', "unknown prior field(s) ['covariance_scale']"),
                      ("{not json", "not JSON (line 1"), ("[1, 2]", "expected a JSON object")):
        bad.write_text(text)
        capsys.readouterr()
        rc = cli.main(["fit", str(faithful_csv), "-k", "2", "--out", str(tmp_path / "x"),
                       "--no-plots", "--prior-file", str(bad)])
        err = capsys.readouterr().err
        assert rc == 1 and msg in err and str(bad) in err
    # a covariance_prior of the wrong shape is refused by the fit, naming the argument
    bad.write_text(json.dumps({"covariance_prior": [1.0, 2.0, 3.0]}))
    rc = cli.main(["fit", str(faithful_csv), "-k", "2", "--out", str(tmp_path / "x"),
                   "--no-plots", "--prior-file", str(bad)])
    err = capsys.readouterr().err
    assert rc == 1 and "covariance_prior" in err, err


def test_fit_with_missing_cells(tmp_path, capsys):
    """--missing marginalize: the log-likelihood in params.json is the observed-data one
    (scipy's marginal normal of each row's observed cells), and imputed.csv keeps the
    observed cells and fills the holes with the conditional means of the fit."""
    from scipy.stats import multivariate_normal as mvn
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(-3, 1, (60, 2)), rng.normal(3, 1, (60, 2))])
    holes = np.zeros(X.shape, bool)
    holes[::4, 0] = holes[1::6, 1] = True
    rows = ["x,y"] + [",".join("NA" if h else f"{v:.6f}" for v, h in zip(r, hr))
                      for r, hr in zip(X, holes)]
    data = tmp_path / "holes.csv"
    data.write_text("\n".join(rows) + "\n")
    rc = cli.main(["fit", str(data), "-k", "2", "--out", str(tmp_path / "o")])
    assert rc != 0 and "--missing marginalize" in capsys.readouterr().err
    out = tmp_path / "m"
    rc = cli.main(["fit", str(data), "-k", "2", "--out", str(out), "--missing", "marginalize",
                   "--no-plots"])
    assert rc == 0
    assert f"{holes.sum()} missing cells" in capsys.readouterr().out
    params = json.loads((out / "params.json").read_text())
    assert params["n_missing"] == holes.sum()
    w, m, cov = (np.asarray(params[v]) for v in ("weights", "means", "covariances"))
    Xr = np.where(holes, np.nan, np.round(X, 6))
    ll = sum(np.log(sum(w[j] * mvn(m[j][~h], cov[j][np.ix_(~h, ~h)]).pdf(x[~h])
                        for j in range(2))) for x, h in zip(Xr, holes))
    assert params["log_likelihood"] == pytest.approx(ll, rel=1e-8)
    imp = np.genfromtxt(out / "imputed.csv", delimiter=",", names=True)
    filled = np.c_[imp["x"], imp["y"]]
    np.testing.assert_allclose(filled[~holes], Xr[~holes], rtol=1e-8)
    for i in np.flatnonzero(holes.any(axis=1))[:10]:
        o = ~holes[i]
        r = np.array([w[j] * mvn(m[j][o], cov[j][np.ix_(o, o)]).pdf(Xr[i][o]) for j in range(2)])
        r /= r.sum()
        cond = sum(r[j] * (m[j][~o] + cov[j][np.ix_(~o, o)] @ np.linalg.solve(
            cov[j][np.ix_(o, o)], Xr[i][o] - m[j][o])) for j in range(2))
        np.testing.assert_allclose(filled[i][~o], cond, rtol=1e-6)

"""fit_em across two processes (``jax.distributed``, CPU, loopback): the multi-host page,
proven.

Two local processes join one JAX runtime with ``jax.distributed.initialize`` (gloo
collectives over 127.0.0.1), each holding only its own half of the rows, and assemble the
global X with ``jax.make_array_from_process_local_data`` as ``docs/multi_host.md`` says.
No process can read the other's rows, so a fit that copied X to the host would fail; the
fits must equal the single-process fits of the whole X computed here, and the two
processes must agree with each other exactly.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import bayes_gmm as bg

WORKER = textwrap.dedent(r"""
    import json, sys
    import numpy as np
    import jax
    pid, port, data = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=pid)
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import bayes_gmm as bg

    def as_list(p):
        return {f: np.asarray(getattr(p, f)).tolist()
                for f in ("weights", "means", "covariances")}

    X = np.load(data)
    n, d = X.shape
    mesh = Mesh(np.array(jax.devices()), ("data",))
    rows = NamedSharding(mesh, P("data", None))
    out = {"process_count": jax.process_count(), "n_devices": len(jax.devices()),
           "local_devices": len(jax.local_devices())}
    with jax.enable_x64(True):
        half = n // 2
        local = X[pid * half:(pid + 1) * half]          # this process's rows only
        Xg = jax.make_array_from_process_local_data(rows, local, (n, d))
        out["fully_addressable"] = Xg.is_fully_addressable
        for name, kw in {"random_from_data": dict(init="random_from_data"),
                         "kmeans_pp_map": dict(prior=bg.GMMPrior())}.items():
            r = bg.fit_em(Xg, 3, key=jax.random.key(1), tol=1e-8, **kw)
            out[name] = dict(params=as_list(r.params), objective=float(r.objective),
                             n_iter=int(r.n_iter))
        # Unequal shares: 450 rows here, 350 there, padded to 450 with weight-0 rows.
        share = X[:450] if pid == 0 else np.concatenate([X[450:], np.repeat(X[:1], 100, 0)])
        w = np.ones(450) if pid == 0 else np.r_[np.ones(350), np.zeros(100)]
        Xp = jax.make_array_from_process_local_data(rows, share, (900, d))
        wp = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), w, (900,))
        r = bg.fit_em(Xp, 3, key=jax.random.key(1), tol=1e-8, init="random_from_data",
                      sample_weight=wp)
        out["padded"] = dict(params=as_list(r.params), objective=float(r.objective),
                             n_iter=int(r.n_iter))
        # A NaN in the other process's rows is found and named by its global row.
        bad = local.copy()
        if pid == 1:
            bad[7, 2] = np.nan
        try:
            bg.fit_em(jax.make_array_from_process_local_data(rows, bad, (n, d)), 3,
                      key=jax.random.key(1))
            out["nan_error"] = None
        except ValueError as e:
            out["nan_error"] = str(e)
    print("RESULT " + json.dumps(out), flush=True)
""")


def _data():
    rng = np.random.default_rng(0)
    mu = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -1.0], [-2.0, 5.0, 2.0]])
    lab = rng.choice(3, 800, p=[0.5, 0.3, 0.2])
    return mu[lab] + rng.normal(size=(800, 3)) * np.array([1.0, 0.6, 0.4])[lab, None]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    X = _data()
    data = tmp_path_factory.mktemp("distributed") / "X.npy"
    np.save(data, X)
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", BAYES_GMM_NO_CACHE="1")
    env.pop("XLA_FLAGS", None)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), str(port), str(data)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for i in (0, 1)]
    outs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=600)
            assert p.returncode == 0, stderr[-4000:]
            line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
            outs.append(json.loads(line[len("RESULT "):]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return X, outs


def _reference(X, **kw):
    with jax.enable_x64(True):
        r = bg.fit_em(X, 3, key=jax.random.key(1), tol=1e-8, **kw)
        return jax.device_get(r)


def test_two_processes_form_one_runtime(runs):
    _, outs = runs
    for o in outs:
        assert o["process_count"] == 2 and o["n_devices"] == 2 and o["local_devices"] == 1
        assert o["fully_addressable"] is False        # no process can read all of X


@pytest.mark.parametrize("case, kw", [
    ("random_from_data", dict(init="random_from_data")),
    ("kmeans_pp_map", dict(prior=bg.GMMPrior())),
    ("padded", dict(init="random_from_data")),
])
def test_distributed_fit_equals_single_process_fit(runs, case, kw):
    X, outs = runs
    ref = _reference(X, **kw)
    for o in outs:
        got = o[case]
        assert got["n_iter"] == int(ref.n_iter)
        assert got["objective"] == pytest.approx(float(ref.objective), rel=1e-10, abs=0)
        for f in ("weights", "means", "covariances"):
            np.testing.assert_allclose(np.asarray(got["params"][f]),
                                       np.asarray(getattr(ref.params, f)),
                                       rtol=1e-9, atol=1e-10, err_msg=f"{case} {f}")
    # Both processes hold the same replicated answer.
    assert outs[0][case] == outs[1][case]


def test_nan_in_another_process_is_named_by_global_row(runs):
    _, outs = runs
    for o in outs:
        assert o["nan_error"] is not None
        assert "row 407, column 2" in o["nan_error"]

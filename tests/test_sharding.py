"""fit_em on X sharded over a device mesh: the same fit, and X never gathered onto one device.

Runs in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag
must be set before JAX starts, so it cannot run in the test process). The subprocess fits
X placed with ``NamedSharding(mesh, P("data", None))`` and the same X on one device, and
reads the compiled program's HLO: the sufficient statistics must be summed across devices
(an ``all-reduce``) and no ``all-gather`` may produce an array of X's full shape.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(r"""
    import json, re
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import bayes_gmm as bg
    from bayes_gmm import _checks
    from bayes_gmm.core import em

    assert len(jax.devices()) == 4, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    out = {}
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        mu = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -1.0], [-2.0, 5.0, 2.0]])
        lab = rng.choice(3, 800, p=[0.5, 0.3, 0.2])
        X = mu[lab] + rng.normal(size=(800, 3)) * np.array([1.0, 0.6, 0.4])[lab, None]
        Xs = jax.device_put(X, NamedSharding(mesh, P("data", None)))
        X1 = jax.device_put(X, jax.devices()[0])
        init_params = bg.GMMParams(jnp.full((3,), 1 / 3), jnp.asarray(X[[0, 1, 2]]),
                                   jnp.broadcast_to(jnp.eye(3) * 2.0, (3, 3, 3)), "full")
        cases = {
            "random_from_data": dict(init="random_from_data", prior=None, init_params=None),
            "kmeans_pp": dict(init="k-means++", prior=None, init_params=None),
            "random_map": dict(init="random", prior=bg.GMMPrior(), init_params=None),
            "explicit_params": dict(init="k-means++", prior=None, init_params=init_params),
        }
        for name, c in cases.items():
            prior = None if c["prior"] is None else _checks.prior_arrays(c["prior"], jnp.float64)
            static = dict(k=3, covariance_type="full", max_iter=100, n_init=1,
                          init=c["init"], batch_size=None)
            args = (jax.random.key(1), prior, None, c["init_params"], 1e-8, 1e-6)
            compiled = em.fit_jit.lower(Xs, *args, **static).compile()
            hlo = compiled.as_text()
            gathers = re.findall(r"= (\w+\[[\d,]*\])\{[^}]*\} all-gather\(", hlo)
            sharded = compiled(Xs, *args)
            single = em.fit_jit(X1, *args, **static)
            rel = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))
                            / max(1.0, float(np.max(np.abs(np.asarray(b))))))
                      for a, b in zip(jax.tree.leaves(sharded.params),
                                      jax.tree.leaves(single.params)))
            out[name] = dict(
                all_reduce=hlo.count(" all-reduce("), gathers=gathers,
                input_spec=list(compiled.input_shardings[0][0].spec),
                rel=rel, n_iter=[int(sharded.n_iter), int(single.n_iter)],
                converged=bool(single.converged),
                obj=[float(sharded.objective), float(single.objective)])
        # Control: picking a row at a data-dependent index does gather a row-sharded X
        # (the detector below must see it).
        pick = jax.jit(lambda x: jax.lax.dynamic_index_in_dim(x, jnp.argmax(x[:, 0]),
                                                               keepdims=False))
        out["control_gathers"] = re.findall(r"= (\w+\[[\d,]*\])\{[^}]*\} all-gather\(",
                                            pick.lower(Xs).compile().as_text())
        # The public entry point on the sharded array: same answer, output on the mesh.
        pub = bg.fit_em(Xs, 3, key=jax.random.key(1), init="random_from_data", tol=1e-8)
        ref = bg.fit_em(X, 3, key=jax.random.key(1), init="random_from_data", tol=1e-8,
                        batch_size=None)
        out["public"] = dict(
            rel=float(np.max(np.abs(np.asarray(pub.params.means)
                                    - np.asarray(ref.params.means)))),
            x_spec=list(Xs.sharding.spec),
            out_devices=len(pub.params.means.sharding.device_set))
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def sharded_run():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("case", ["random_from_data", "kmeans_pp", "random_map",
                                  "explicit_params"])
def test_sharded_fit_equals_single_device_and_keeps_x_sharded(sharded_run, case):
    r = sharded_run[case]
    # Same fit as on one device (float64; sums are reassociated across devices).
    assert r["rel"] < 1e-9, r
    assert r["n_iter"][0] == r["n_iter"][1] and r["converged"], r
    assert abs(r["obj"][0] - r["obj"][1]) < 1e-9 * abs(r["obj"][1]), r
    # The compiled program takes X split by rows over the 4 devices ...
    assert r["input_spec"] == ["data", None], r
    # ... sums statistics across devices ...
    assert r["all_reduce"] >= 1, r
    # ... and never gathers X (800, 3) onto one device.
    assert not [g for g in r["gathers"] if g.endswith("[800,3]")], r["gathers"]


def test_gather_detector_sees_a_gather(sharded_run):
    assert "f64[800,3]" in sharded_run["control_gathers"], sharded_run["control_gathers"]


def test_public_fit_em_on_sharded_x(sharded_run):
    r = sharded_run["public"]
    assert r["x_spec"] == ["data", None]
    assert r["rel"] < 1e-9, r
    # The fit ran on the mesh (X was not copied to the host and refitted on one device).
    assert r["out_devices"] == 4, r

"""_cache.py: a second process loads the compiled programs from JAX's persistent cache;
``BAYES_GMM_CACHE_DIR`` moves the cache and ``BAYES_GMM_NO_CACHE=1`` switches it off."""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, jax, numpy as np
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
import bayes_gmm as bg
X = np.random.default_rng(0).normal(size=(500, 2))
gm = bg.GaussianMixture(3, random_state=0).fit(X)
print(json.dumps({"dir": bg.COMPILATION_CACHE_DIR,
                  "hits": events.count("/jax/compilation_cache/cache_hits"),
                  "means": gm.means_.tolist()}))
"""


def _run(env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "BAYES_GMM_NO_CACHE"}
    env.update(extra)
    return env


def test_second_process_is_served_from_the_cache(tmp_path):
    env = _env(BAYES_GMM_CACHE_DIR=str(tmp_path / "cache"))
    first = _run(env)
    assert first["dir"] == str(tmp_path / "cache")
    assert first["hits"] == 0
    assert any((tmp_path / "cache").iterdir())                 # programs were written
    second = _run(env)
    assert second["hits"] >= 1                                 # and read back
    assert second["means"] == first["means"]                   # the same fit, bit for bit


def test_switched_off_leaves_jax_alone(tmp_path):
    env = _env(BAYES_GMM_CACHE_DIR=str(tmp_path / "cache"), BAYES_GMM_NO_CACHE="1")
    out = _run(env)
    assert out["dir"] is None and out["hits"] == 0
    assert not (tmp_path / "cache").exists()

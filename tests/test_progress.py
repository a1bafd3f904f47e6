"""Progress bars through host callbacks: the callback never touches a jax.Array (calling
into JAX from a callback can deadlock the CPU runtime under asynchronous dispatch,
jax-ml/jax#25861), and every tick has run when the ``progress`` block ends."""

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from bayes_gmm.bayes import programs


@pytest.mark.parametrize("total", [7, 100, 250])
def test_ticks_reach_the_total_before_the_block_ends(monkeypatch, total):
    calls = []

    def record(steps):
        assert type(steps) is int              # a Python int, never an array
        calls.append(steps)
        bar = programs._PROGRESS["bar"]
        bar.update(max(0, min(steps, bar.total - bar.n)))

    monkeypatch.setattr(programs, "_advance", record)

    @jax.jit
    def run(x):
        def body(c, i):
            programs.tick(i, total, True)
            return c + 1.0, None
        return lax.scan(body, x, jnp.arange(total))[0]

    with programs.progress(True, total, "test"):
        bar = programs._PROGRESS["bar"]
        out = run(jnp.float32(0.0))
    # the block waited for every callback: the bar is complete when it closes
    assert bar.n == total and float(out) == total
    every = max(1, total // 100)
    # one call per block of `every` steps before the last, and one at the last step
    assert len(calls) == (total - 1) // every + 1
    assert sorted(calls) == [every] * ((total - 1) // every) + [total]
    assert programs._PROGRESS["bar"] is None


def test_no_callback_when_disabled(monkeypatch):
    monkeypatch.setattr(programs, "_advance", lambda steps: pytest.fail("called"))

    @jax.jit
    def run(x):
        def body(c, i):
            programs.tick(i, 10, False)
            return c + 1.0, None
        return lax.scan(body, x, jnp.arange(10))[0]

    with programs.progress(False, 10, "off"):
        assert float(run(jnp.float32(0.0))) == 10.0

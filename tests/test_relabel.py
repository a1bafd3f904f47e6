"""relabel: exact assignment (vs scipy), exact recovery of permuted posteriors, no mutation."""

import importlib
import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa

import bayes_gmm as bg
from bayes_gmm.bayes.idata import to_inference_data
from helpers import get_family

from conftest import COVARIANCE_TYPES

R = importlib.import_module("bayes_gmm.bayes.relabel")  # bg.relabel is the function


def _reference(k, d, t, rng):
    means = rng.normal(scale=6.0, size=(k, d))
    a = rng.normal(size=(k, d, d)) * 0.3
    full = a @ a.transpose(0, 2, 1) + np.eye(d)
    cov = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 2.0, (k, d)),
           "spherical": rng.uniform(0.5, 2.0, k)}[t]
    return bg.GMMParams(rng.dirichlet(np.ones(k) * 5), means, cov, t)


def _draws_near(ref, c, s, rng):
    """Posterior-like draws scattered around ``ref``: arrays with leading (chain, draw)."""
    k, d = ref.means.shape
    t = ref.covariance_type
    w = rng.dirichlet(np.asarray(ref.weights) * 200 + 1, size=(c, s))
    m = ref.means[None, None] + 0.2 * rng.normal(size=(c, s, k, d))
    if t in ("full", "tied"):
        shape = (c, s) + np.shape(ref.covariances)
        e = 0.1 * rng.normal(size=shape)
        cov = ref.covariances + 0.5 * (e + np.swapaxes(e, -1, -2)) * 0.5
    else:
        cov = ref.covariances * np.exp(0.1 * rng.normal(size=(c, s) + np.shape(ref.covariances)))
    return {"weights": w, "means": m, "covariances": cov}


def _idata(draws, ref, n_obs=5):
    c, s = draws["weights"].shape[:2]
    X = np.zeros((n_obs, ref.means.shape[1]))
    ll = np.zeros((c, s, n_obs))
    return to_inference_data(draws, ll, X, ref, ref.covariance_type, "nuts")


def _permute_draws(draws, perm, t):
    out = {}
    for name, a in draws.items():
        if name == "covariances" and t == "tied":
            out[name] = a.copy()
            continue
        idx = perm.reshape(perm.shape + (1,) * (a.ndim - 3))
        out[name] = np.take_along_axis(a, idx, axis=2)
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 9])
def test_linear_sum_assignment_matches_scipy(k):
    rng = np.random.default_rng(k)
    for _ in range(20):
        cost = rng.normal(size=(k, k)) ** 2
        col = R.linear_sum_assignment(cost)
        rows, cols = scipy_lsa(cost)
        assert sorted(col) == list(range(k))
        np.testing.assert_allclose(cost[np.arange(k), col].sum(), cost[rows, cols].sum(),
                                   rtol=1e-12)
    # Integer costs with ties: still optimal.
    cost = rng.integers(0, 3, size=(k, k)).astype(float)
    col = R.linear_sum_assignment(cost)
    rows, cols = scipy_lsa(cost)
    assert cost[np.arange(k), col].sum() == cost[rows, cols].sum()


def test_linear_sum_assignment_rejects_bad_cost():
    with pytest.raises(ValueError, match="square"):
        R.linear_sum_assignment(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        R.linear_sum_assignment(np.array([[0.0, np.nan], [1.0, 0.0]]))


def test_brute_force_and_hungarian_agree(monkeypatch):
    rng = np.random.default_rng(0)
    cost = rng.normal(size=(50, 5, 5)) ** 2
    brute = R._best_permutations(cost)
    monkeypatch.setattr(R, "BRUTE_FORCE_MAX_K", 0)
    hung = R._best_permutations(cost)
    np.testing.assert_array_equal(brute, hung)
    # And both minimise the total cost over all 120 permutations.
    perms = np.array(list(itertools.permutations(range(5))))
    best = cost[:, perms, np.arange(5)].sum(-1).min(1)
    got = cost[np.arange(50)[:, None], brute, np.arange(5)[None]].sum(1)
    np.testing.assert_allclose(got, best, rtol=1e-12)


def test_kl_cost_matches_closed_form():
    from scipy.stats import multivariate_normal as mvn
    rng = np.random.default_rng(1)
    ref = _reference(3, 2, "full", rng)
    draws = _draws_near(ref, 1, 4, rng)
    flat = bg.GMMParams(draws["weights"][0], draws["means"][0], draws["covariances"][0], "full")
    cost = R.assignment_cost(flat, ref)
    # Monte Carlo KL(p‖q) = E_p[log p − log q] for one pair, as an independent check.
    s, i, k = 2, 1, 2
    p = mvn(flat.means[s, i], flat.covariances[s, i])
    q = mvn(ref.means[k], ref.covariances[k])
    x = p.rvs(200_000, random_state=3)
    kl = np.mean(p.logpdf(x) - q.logpdf(x))
    assert cost.shape == (4, 3, 3)
    np.testing.assert_allclose(cost[s, i, k], kl, rtol=0.02)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("k", [3, 8])
def test_relabel_restores_permuted_posterior_exactly(covariance_type, k):
    rng = np.random.default_rng(k)
    ref = _reference(k, 2, covariance_type, rng)
    draws = _draws_near(ref, 2, 30, rng)
    clean = _idata(draws, ref)
    perm = np.stack([[rng.permutation(k) for _ in range(30)] for _ in range(2)])
    scrambled = _idata(_permute_draws(draws, perm, covariance_type), ref)
    before = {v: scrambled.posterior[v].values.copy() for v in ("weights", "means",
                                                                "covariances")}
    fixed = bg.relabel(scrambled, ref)
    for v in ("weights", "means", "covariances"):
        # Bit-exact: relabelling only moves values.
        np.testing.assert_array_equal(fixed.posterior[v].values, clean.posterior[v].values)
        # The input is untouched; its draws are kept as posterior_raw.
        np.testing.assert_array_equal(scrambled.posterior[v].values, before[v])
        np.testing.assert_array_equal(fixed.posterior_raw[v].values, before[v])
    assert fixed.posterior.attrs["relabelled"] == 1
    assert scrambled.posterior.attrs["relabelled"] == 0
    assert fixed.posterior["covariances"].dims[2:] == get_family(covariance_type).dims
    # reference=None uses the map group (here the same reference).
    again = bg.relabel(scrambled)
    np.testing.assert_array_equal(again.posterior["means"].values,
                                  clean.posterior["means"].values)
    # The permutations found are the inverses of the scrambling ones.
    found = R.relabel_permutations(scrambled, ref)
    np.testing.assert_array_equal(np.take_along_axis(perm, found, axis=2),
                                  np.broadcast_to(np.arange(k), perm.shape))


def test_draws_away_from_the_reference_get_one_labelling():
    """Draws in a partition the reference does not have: a tiny component T and a merged
    one M where the reference has A and C, symmetric about them. One pass against the
    reference splits the draws between {M→A, T→C} and {M→C, T→A} by noise; refined
    against the draws' own means, every draw gets the same labelling."""
    rng = np.random.default_rng(3)
    ref = bg.GMMParams(np.array([0.3, 0.3, 0.4]),
                       np.array([[-1.0, 0.0], [0.0, 5.0], [1.0, 0.0]]),
                       np.stack([np.eye(2)] * 3), "full")
    c, s = 2, 200
    x = 0.3 * rng.normal(size=(c, s, 2))                     # the x of M and of T
    means = np.empty((c, s, 3, 2))
    means[..., 0, :] = np.stack([x[..., 0], np.zeros((c, s))], -1)        # M
    means[..., 1, :] = [0.0, 5.0]                                           # B
    means[..., 2, :] = np.stack([x[..., 1], np.full((c, s), -3.0)], -1)   # T
    cov = np.broadcast_to(np.stack([2.0 * np.eye(2), np.eye(2), 0.1 * np.eye(2)]),
                          (c, s, 3, 2, 2)).copy()
    w = np.broadcast_to([0.62, 0.35, 0.03], (c, s, 3)).copy()
    idata = _idata({"weights": w, "means": means, "covariances": cov}, ref)
    one_pass = R._best_permutations(R.assignment_cost(
        bg.GMMParams(w.reshape(-1, 3), means.reshape(-1, 3, 2), cov.reshape(-1, 3, 2, 2),
                     "full"), ref))
    assert 0.1 < np.mean(one_pass[:, 0] == 0) < 0.9        # the single pass does split
    fixed = bg.relabel(idata, ref)
    wf = fixed.posterior["weights"].values.reshape(-1, 3)
    assert np.all(wf[:, 1] == 0.35)                          # B keeps its label
    # one labelling for every draw: the label of M (weight 0.62) never changes
    label_of_m = np.argmax(wf, axis=1)
    assert np.all(label_of_m == label_of_m[0]) and label_of_m[0] in (0, 2)
    np.testing.assert_allclose(wf.std(0), 0.0, atol=1e-12)


def test_tied_only_weights_and_means_move():
    rng = np.random.default_rng(5)
    ref = _reference(3, 2, "tied", rng)
    draws = _draws_near(ref, 1, 10, rng)
    perm = np.stack([[rng.permutation(3) for _ in range(10)]])
    scrambled = _idata(_permute_draws(draws, perm, "tied"), ref)
    fixed = bg.relabel(scrambled, ref)
    np.testing.assert_array_equal(fixed.posterior["covariances"].values, draws["covariances"])
    np.testing.assert_array_equal(fixed.posterior["means"].values, draws["means"])


def test_relabel_rejects_bad_reference():
    rng = np.random.default_rng(0)
    ref = _reference(3, 2, "full", rng)
    idata = _idata(_draws_near(ref, 1, 5, rng), ref)
    with pytest.raises(TypeError, match="reference"):
        bg.relabel(idata, reference=np.zeros(3))
    with pytest.raises(ValueError, match="reference means"):
        bg.relabel(idata, _reference(4, 2, "full", rng))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_cost_is_computed_on_the_host_in_blocks(covariance_type):
    """The KL cost runs no XLA program (jaxlib 0.10's batched LAPACK kernels inside a loop
    can deadlock the CPU thread pool: benchmarks/jaxlib_lapack_loop_hang.py): no array may
    move to a device. Blocks of draws give the same costs as one draw at a time, and the
    closed form KL of each pair, for every family."""
    import jax
    rng = np.random.default_rng(4)
    k, d, s = 3, 4, R.COST_BLOCK + 7                 # crosses a block boundary
    ref = _reference(k, d, covariance_type, rng)
    draws = _draws_near(ref, 1, s, rng)
    flat = bg.GMMParams(draws["weights"][0], draws["means"][0], draws["covariances"][0],
                        covariance_type)
    with jax.transfer_guard("disallow"):
        cost = R.assignment_cost(flat, ref)
    assert cost.shape == (s, k, k) and cost.dtype == np.float64
    fam = flat.family
    for j in (0, R.COST_BLOCK, s - 1):
        cj = fam.to_full(np.asarray(flat.covariances[j], np.float64), k, d, xp=np)
        rc = ref.family.to_full(np.asarray(ref.covariances, np.float64), k, d, xp=np)
        for i in range(k):
            for r in range(k):
                inv = np.linalg.inv(rc[r])
                diff = flat.means[j, i] - ref.means[r]
                kl = 0.5 * (np.trace(inv @ cj[i]) + diff @ inv @ diff - d
                            + np.linalg.slogdet(rc[r])[1] - np.linalg.slogdet(cj[i])[1])
                np.testing.assert_allclose(cost[j, i, r], kl, rtol=1e-9, atol=1e-9)

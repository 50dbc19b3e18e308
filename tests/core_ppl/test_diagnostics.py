"""Tests of core_ppl.diagnostics (pure NumPy)."""

import numpy as np
import pytest
from scipy import stats

from core_ppl.diagnostics import (
    autocorrelation,
    autocovariance,
    effective_sample_size,
    gelman_rubin,
    hpdi,
    print_summary,
    split_gelman_rubin,
    split_rank_normalized_ess,
    split_rank_normalized_rhat,
    summary,
)


def ar1(rng, rho, shape, num_draws):
    """Stationary AR(1) chains x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t."""
    x = np.empty(shape + (num_draws,))
    x[..., 0] = rng.standard_normal(shape)
    noise = rng.standard_normal(shape + (num_draws,)) * np.sqrt(1 - rho**2)
    for t in range(1, num_draws):
        x[..., t] = rho * x[..., t - 1] + noise[..., t]
    return x


# --- autocovariance ---------------------------------------------------------


def test_autocovariance_matches_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 37))
    acov = autocovariance(x, axis=1)
    centred = x - x.mean(axis=1, keepdims=True)
    n = x.shape[1]
    direct = np.stack(
        [(centred[:, : n - k] * centred[:, k:]).sum(axis=1) / n for k in range(n)],
        axis=1,
    )
    np.testing.assert_allclose(acov, direct, atol=1e-12)
    rho = autocorrelation(x.T, axis=0)
    np.testing.assert_allclose(rho.T, direct / direct[:, :1], atol=1e-12)


def test_autocorrelation_of_constant_series():
    rho = autocorrelation(np.ones(8))
    np.testing.assert_array_equal(rho, np.eye(8)[0])


# --- effective sample size --------------------------------------------------


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ess_of_ar1_chains(rho):
    # ESS of an AR(1) chain is n (1 - rho) / (1 + rho). The estimator's
    # relative sd is about sqrt(2 tau_cutoff / N) ~ a few percent for 4 chains
    # of 20k draws (Geyer 1992); 15% is more than 4 standard errors.
    rng = np.random.default_rng(1)
    num_chains, n = 4, 20_000
    x = ar1(rng, rho, (num_chains, 2), n)  # two independent scalar elements
    x = np.moveaxis(x, -1, 1)  # (chains, draws, 2)
    ess = effective_sample_size(x)
    expected = num_chains * n * (1 - rho) / (1 + rho)
    assert ess.shape == (2,)
    np.testing.assert_allclose(ess, expected, rtol=0.15)


def antithetic(rng, num_chains, num_draws, noise=0.01):
    """x_t = -x_{t-1} + noise_t: every lag-1 autocorrelation is close to -1."""
    x = np.empty((num_chains, num_draws))
    x[:, 0] = rng.standard_normal(num_chains)
    eps = noise * rng.standard_normal((num_chains, num_draws))
    for t in range(1, num_draws):
        x[:, t] = -x[:, t - 1] + eps[:, t]
    return x


@pytest.mark.parametrize("num_chains", [1, 4])
def test_ess_of_antithetic_chains_is_capped_not_negative(num_chains):
    # rho_1 ~ -1, so P_0 = rho_0 + rho_1 <= 0 and the truncated sum gives
    # tau <= 0 (the old estimator returned ESS = -S). Stan bounds tau below
    # by 1 / log10(S): ESS = S log10(S) exactly.
    rng = np.random.default_rng(10)
    x = antithetic(rng, num_chains, 1000)
    total = num_chains * 1000
    ess = effective_sample_size(x)
    assert ess > 0
    np.testing.assert_allclose(ess, total * np.log10(total), rtol=1e-12)


def test_ess_of_negatively_correlated_ar1_exceeds_the_draws():
    # AR(1) with rho = -0.5: ESS = S (1 - rho) / (1 + rho) = 3 S, below the
    # cap S log10(S) ~ 4.9 S, so the clamp must not bite. Tolerance as in
    # test_ess_of_ar1_chains (15% > 4 standard errors for 4 x 20k draws).
    rng = np.random.default_rng(11)
    num_chains, n = 4, 20_000
    x = ar1(rng, -0.5, (num_chains,), n)
    ess = effective_sample_size(x)
    np.testing.assert_allclose(ess, 3 * num_chains * n, rtol=0.15)
    assert ess < num_chains * n * np.log10(num_chains * n)


def _reference_ess(x):
    """The same estimator written as a scalar loop over lags, for one element
    of draws shaped (num_chains, num_draws): BDA3 eq. 11.7 autocorrelations,
    Geyer's initial positive and monotone sequences, the last even lag,
    Stan's bound tau >= 1 / log10(S)."""
    m, n = x.shape
    centred = x - x.mean(axis=1, keepdims=True)
    acov = np.array(
        [[(c[: n - k] * c[k:]).sum() / n for k in range(n)] for c in centred]
    )
    within = x.var(axis=1, ddof=1).mean()
    var_plus = (n - 1) / n * within + (x.mean(axis=1).var(ddof=1) if m > 1 else 0)
    rho = 1 - (within - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    num_pairs = max(1, min(n // 2, int(np.ceil((n - 3) / 2))))
    total, previous, k = 0.0, np.inf, 0
    while k < num_pairs and rho[2 * k] + rho[2 * k + 1] > 0:
        previous = min(previous, rho[2 * k] + rho[2 * k + 1])
        total += previous
        k += 1
    last_even = rho[2 * k] if 2 * k < n else 0.0
    tau = -1 + 2 * total + max(last_even, 0.0)
    tau = max(tau, 1 / np.log10(m * n))
    return m * n / tau


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.0, 0.6, 0.95])
@pytest.mark.parametrize("shape", [(1, 9), (3, 40), (2, 301)])
def test_ess_matches_scalar_reference(rho, shape):
    rng = np.random.default_rng(12)
    x = np.moveaxis(ar1(rng, rho, (shape[0], 3), shape[1]), -1, 1)
    ess = effective_sample_size(x)
    expected = [_reference_ess(x[..., j]) for j in range(3)]
    np.testing.assert_allclose(ess, expected, rtol=1e-10)


def test_ess_of_constant_draws_is_nan_and_shape_checked():
    assert np.isnan(effective_sample_size(np.ones((2, 10))))
    with pytest.raises(ValueError, match="num_chains, num_draws"):
        effective_sample_size(np.ones(10))


def test_ess_penalises_disagreeing_chains():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1000))
    x_stuck = x + np.arange(4)[:, None] * 3.0
    assert effective_sample_size(x_stuck) < 0.1 * effective_sample_size(x)


def test_bulk_ess_is_rank_based():
    # Ranks are invariant under a monotone map, so the bulk ESS of exp(x)
    # (log-normal) and of a Cauchy-like transform equals that of x, whose
    # ESS is that of an AR(1): n (1 - rho) / (1 + rho); 15% as above.
    rng = np.random.default_rng(13)
    num_chains, n, rho = 4, 20_000, 0.5
    x = ar1(rng, rho, (num_chains,), n)
    bulk = split_rank_normalized_ess(x)
    np.testing.assert_allclose(split_rank_normalized_ess(np.exp(x)), bulk)
    np.testing.assert_allclose(split_rank_normalized_ess(np.tan(x / 4)), bulk)
    np.testing.assert_allclose(bulk, num_chains * n * (1 - rho) / (1 + rho), rtol=0.15)


def test_bulk_ess_of_constant_or_nonfinite_draws_is_nan():
    x = np.random.default_rng(14).standard_normal((2, 10, 3))
    x[..., 0] = 1.0
    x[0, 3, 1] = np.nan
    bulk = split_rank_normalized_ess(x)
    assert np.isnan(bulk[:2]).all() and np.isfinite(bulk[2])
    with pytest.raises(ValueError, match="at least 4 draws"):
        split_rank_normalized_ess(np.zeros((2, 3)))


# --- R-hat ------------------------------------------------------------------


def test_rhat_near_one_for_agreeing_chains():
    # For 4 x 2000 independent draws, var(R-hat) is O(1/N): 1.01 is many SEs.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2000, 3))
    for fn in (split_gelman_rubin, split_rank_normalized_rhat, gelman_rubin):
        r = fn(x)
        assert r.shape == (3,)
        assert np.all(np.abs(r - 1) < 0.01)


def test_rhat_detects_stuck_chains():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 500)) + np.array([0.0, 0.0, 2.0, -2.0])[:, None]
    assert split_gelman_rubin(x) > 1.3
    assert split_rank_normalized_rhat(x) > 1.3


def test_split_rhat_detects_a_trend_in_one_chain():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 1000)) + np.linspace(0, 4, 1000)
    assert split_gelman_rubin(x) > 1.3


def test_rank_rhat_detects_scale_difference():
    # Chains with equal means but different scales: classic R-hat misses it,
    # the folded (tail) R-hat does not (Vehtari et al. 2021, section 4.2).
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 1000)) * np.array([1.0, 1.0, 1.0, 4.0])[:, None]
    assert split_rank_normalized_rhat(x) > 1.05


def test_rhat_validates_input():
    with pytest.raises(ValueError, match="at least 4 draws"):
        split_gelman_rubin(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 2 chains"):
        gelman_rubin(np.zeros((1, 10)))


# --- hpdi -------------------------------------------------------------------


def test_hpdi_of_normal_sample_is_central_interval():
    # For a symmetric unimodal density the HPDI is the central interval. Its
    # true mass has SE sqrt(p (1 - p) / n) ~ 0.001; per unit scale its width
    # has SE ~ 0.01 and its midpoint ~ 0.02 (the narrowest window's position
    # is only weakly identified: the width is flat around the centre), as
    # measured over 200 replicates of n = 1e5. Tolerances are 5 SEs.
    rng = np.random.default_rng(7)
    loc, scale = 1.0, 2.0
    x = rng.normal(loc, scale, size=(100_000, 2))
    interval = hpdi(x, prob=0.9, axis=0)
    assert interval.shape == (2, 2)
    lo, hi = interval
    mass = stats.norm.cdf(hi, loc, scale) - stats.norm.cdf(lo, loc, scale)
    np.testing.assert_allclose(mass, 0.9, atol=5 * 0.001)
    width = 2 * scale * stats.norm.ppf(0.95)
    np.testing.assert_allclose(hi - lo, width, atol=5 * 0.01 * scale)
    np.testing.assert_allclose((hi + lo) / 2, loc, atol=5 * 0.02 * scale)


def test_hpdi_of_skewed_sample_is_narrower_than_central():
    rng = np.random.default_rng(8)
    x = rng.exponential(size=50_000)
    lo, hi = hpdi(x, prob=0.9)
    central = np.quantile(x, [0.05, 0.95])
    assert hi - lo < central[1] - central[0]
    assert lo < 0.01  # the mode of an exponential is 0
    np.testing.assert_allclose(hi, -np.log(0.1), rtol=0.03)


def test_hpdi_axis_and_full_mass():
    x = np.arange(20.0).reshape(2, 10)
    np.testing.assert_array_equal(hpdi(x, prob=1.0, axis=1), [[0, 9], [10, 19]])
    with pytest.raises(ValueError, match="prob"):
        hpdi(x, prob=0.0)


# --- summary ----------------------------------------------------------------


def test_summary_keys_and_shapes():
    rng = np.random.default_rng(9)
    samples = {"alpha": rng.normal(size=(2, 100)), "beta": rng.normal(size=(2, 100, 3))}
    out = summary(samples, prob=0.8)
    assert list(out) == ["alpha", "beta"]
    assert list(out["beta"]) == [
        "mean",
        "std",
        "median",
        "10.0%",
        "90.0%",
        "n_eff",
        "r_hat",
    ]
    assert out["alpha"]["mean"].shape == ()
    assert out["beta"]["r_hat"].shape == (3,)
    np.testing.assert_allclose(
        out["beta"]["mean"], samples["beta"].reshape(-1, 3).mean(0)
    )
    flat = summary(samples["beta"][0], group_by_chain=False)
    assert list(flat) == ["Param:0"]
    assert flat["Param:0"]["n_eff"].shape == (3,)


def test_summary_does_not_mutate_input():
    x = np.arange(40.0).reshape(2, 20)
    copy = x.copy()
    summary({"x": x})
    np.testing.assert_array_equal(x, copy)


def test_print_summary_rows(capsys):
    rng = np.random.default_rng(10)
    print_summary(
        {"sigma": rng.normal(size=(2, 50)), "beta": rng.normal(size=(2, 50, 2, 2))}
    )
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "mean" in line)
    assert header.split() == [
        "mean",
        "std",
        "median",
        "5.0%",
        "95.0%",
        "n_eff",
        "r_hat",
    ]
    labels = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
    assert labels == ["sigma", "beta[0,0]", "beta[0,1]", "beta[1,0]", "beta[1,1]"]

"""NUTS recovers Gaussian moments within Monte Carlo error.

Errors are judged against the sampler's own effective sample size: a mean's
standard error is ``sd / sqrt(ESS)``; a variance's is ``sd(x^2) / sqrt(ESS of
x^2)``. Every statistic must lie within 5 standard errors (with a few hundred
statistics per test, a false alarm has probability below 1e-3).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core_ppl.diagnostics import effective_sample_size
from core_ppl.infer import MCMC, NUTS

NUM_CHAINS, NUM_WARMUP, NUM_SAMPLES = 2, 300, 500


def _standard_normal(z):
    return 0.5 * jnp.sum(z["x"] ** 2)


def _run(potential_fn, dim, seed, **nuts_kwargs):
    mcmc = MCMC(
        NUTS(potential_fn=potential_fn, **nuts_kwargs),
        num_warmup=NUM_WARMUP,
        num_samples=NUM_SAMPLES,
        num_chains=NUM_CHAINS,
        progress_bar=False,
    )
    init = jax.random.uniform(
        jax.random.PRNGKey(seed + 1), (NUM_CHAINS, dim), minval=-2, maxval=2
    )
    mcmc.run(
        jax.random.PRNGKey(seed),
        init_params={"x": init},
        extra_fields=("accept_prob", "num_steps"),
    )
    return mcmc


def _assert_moments(draws, mean, cov, z=5.0):
    """draws: (chains, draws, dim) against the exact mean and covariance."""
    draws = np.asarray(draws, np.float64)
    centred = draws - mean
    ess = effective_sample_size(draws)
    se_mean = np.sqrt(np.diag(cov) / ess)
    np.testing.assert_array_less(np.abs(draws.mean((0, 1)) - mean), z * se_mean)
    squares = centred**2
    ess_sq = effective_sample_size(squares)
    se_var = squares.reshape(-1, draws.shape[-1]).std(0) / np.sqrt(ess_sq)
    np.testing.assert_array_less(
        np.abs(squares.mean((0, 1)) - np.diag(cov)), z * se_var
    )


def _mean_accept(mcmc):
    return float(np.asarray(mcmc.get_extra_fields()["accept_prob"]).mean())


@pytest.mark.slow
@pytest.mark.parametrize("dim", [1, 100])
def test_standard_normal_moments(dim):
    mcmc = _run(_standard_normal, dim, seed=dim)
    draws = mcmc.get_samples(group_by_chain=True)["x"]
    assert draws.shape == (NUM_CHAINS, NUM_SAMPLES, dim)
    _assert_moments(draws, np.zeros(dim), np.eye(dim))
    assert not np.asarray(mcmc.get_extra_fields()["diverging"]).any()
    # Stan's warmup ends with 50 iterations of dual averaging restarted at
    # log(10 * eps); the averaged iterate exp(x_bar) lags below the step size
    # that attains the target, so the sampling-phase acceptance sits above
    # it (as Stan users observe). NumPyro 0.22 with the same schedule, 2x1000
    # draws, 3 seeds: 0.91-0.94 (1-d), 0.87-0.90 (10-d), 0.86 (100-d); ours:
    # 0.92-0.94, 0.86-0.89, 0.85. It must not fall below the target.
    assert 0.8 - 0.05 <= _mean_accept(mcmc) <= 0.95


@pytest.mark.slow
def test_standard_normal_10d_step_size_adaptation_hits_target():
    """Dual averaging alone (identity metric is exact here) over the whole
    warmup reaches the target acceptance within 0.05."""
    mcmc = _run(_standard_normal, 10, seed=10, adapt_mass_matrix=False)
    draws = mcmc.get_samples(group_by_chain=True)["x"]
    _assert_moments(draws, np.zeros(10), np.eye(10))
    assert abs(_mean_accept(mcmc) - 0.8) < 0.05
    np.testing.assert_array_equal(mcmc.last_state.inverse_mass_matrix, np.ones((2, 10)))


COV = np.array([[1.0, 0.99 * 3.0], [0.99 * 3.0, 9.0]])
PRECISION = np.linalg.inv(COV)


def _correlated(z):
    x = z["x"]
    return 0.5 * x @ jnp.asarray(PRECISION, x.dtype) @ x


@pytest.mark.slow
def test_correlated_gaussian_dense_mass():
    mcmc = _run(_correlated, 2, seed=3, dense_mass=True)
    draws = mcmc.get_samples(group_by_chain=True)["x"]
    _assert_moments(draws, np.zeros(2), COV)
    flat = np.asarray(draws).reshape(-1, 2)
    assert abs(np.corrcoef(flat.T)[0, 1] - 0.99) < 0.01
    # The adapted dense metric is the posterior covariance: with it the
    # problem is isotropic, so trajectories are short and the step size large.
    minv = np.asarray(mcmc.last_state.inverse_mass_matrix)
    assert minv.shape == (NUM_CHAINS, 2, 2)
    for m in minv:
        np.testing.assert_allclose(m, COV, rtol=0.5, atol=0.5)
    assert np.mean(np.asarray(mcmc.get_extra_fields()["num_steps"])) < 8
    assert 0.75 <= _mean_accept(mcmc) <= 0.95

"""The kernel interface: a user's random-walk Metropolis kernel, written here
as a user would, runs through ``MCMC`` unchanged and samples the right
posterior."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.compile_events import count_compiles
from core_ppl.diagnostics import effective_sample_size
from core_ppl.infer import MCMC
from core_ppl.infer.mcmc import MCMCKernel, sampler
from core_ppl.infer.mcmc.kernel import Algorithm

PRIOR_LOC, PRIOR_SCALE, NOISE = 1.0, 3.0, 2.0
Y = np.random.RandomState(3).normal(2.5, NOISE, 15).astype(np.float32)


def normal_model(y):
    mu = ppl.sample("mu", dist.Normal(PRIOR_LOC, PRIOR_SCALE))
    ppl.sample("y", dist.Normal(mu, NOISE), obs=y)


class RWState(NamedTuple):
    position: jax.Array
    logdensity: jax.Array
    log_scale: jax.Array


class RWInfo(NamedTuple):
    accept_prob: jax.Array


class RandomWalkMetropolis(MCMCKernel):
    """Gaussian random-walk Metropolis; the proposal scale adapts during
    warmup towards an acceptance rate of 0.44 (Robbins-Monro)."""

    sample_field = "position"

    def __init__(self, model, scale=1.0):
        self.model = model
        self.scale = scale

    def parameters(self, dtype):
        return np.asarray(np.log(self.scale), dtype)

    def field_dtypes(self, dtype):
        return {"accept_prob": dtype}

    def build(self, target, unravel, params):
        def init(rng_key, position, logdensity_fn, param_info=None):
            return RWState(position, logdensity_fn(position), params)

        def step(rng_key, state, logdensity_fn, it):
            move_key, accept_key = jax.random.split(rng_key)
            noise = jax.random.normal(move_key, state.position.shape)
            proposal = state.position + jnp.exp(state.log_scale) * noise
            logdensity = logdensity_fn(proposal)
            accept_prob = jnp.exp(jnp.minimum(logdensity - state.logdensity, 0.0))
            accept = jax.random.uniform(accept_key) < accept_prob
            new = RWState(proposal, logdensity, state.log_scale)
            new = jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, state)
            return new, RWInfo(accept_prob)

        def adapt(state, info, it):
            rate = (it.iteration + 1.0) ** -0.6
            return state._replace(
                log_scale=state.log_scale + rate * (info.accept_prob - 0.44)
            )

        return Algorithm(
            init=init,
            step=step,
            fields=lambda state, info: {"accept_prob": info.accept_prob},
            adapt=adapt,
        )


def _posterior():
    precision = 1 / PRIOR_SCALE**2 + len(Y) / NOISE**2
    mean = (PRIOR_LOC / PRIOR_SCALE**2 + float(np.sum(Y)) / NOISE**2) / precision
    return mean, precision**-0.5


@pytest.fixture(scope="module")
def rw_run():
    kernel = RandomWalkMetropolis(normal_model, scale=5.0)
    mcmc = MCMC(
        kernel, num_warmup=500, num_samples=3000, num_chains=2, progress_bar=False
    )
    with count_compiles("_run_chains") as counter:
        mcmc.run(jax.random.PRNGKey(0), Y, extra_fields=("accept_prob",))
        mcmc.run(jax.random.PRNGKey(1), Y)  # same kernel, same shapes: no trace
    return mcmc, counter.programs


def test_user_kernel_samples_the_normal_posterior(rw_run):
    mcmc, traces = rw_run
    assert traces == 1
    mu = np.asarray(mcmc.get_samples(group_by_chain=True)["mu"], np.float64)
    assert mu.shape == (2, 3000)
    mean, sd = _posterior()
    ess = effective_sample_size(mu)
    assert ess > 200
    assert abs(mu.mean() - mean) < 5 * sd / np.sqrt(ess)
    assert abs(mu.std() - sd) < 5 * sd / np.sqrt(2 * ess)


def test_user_kernel_fields_state_and_continuation(rw_run, capsys):
    mcmc, _ = rw_run
    # No default fields: nothing recorded is returned unless asked for.
    assert mcmc.get_extra_fields() == {}
    state = mcmc.last_state
    assert isinstance(state.kernel_state, RWState)
    assert state.step_size is None and state.z["mu"].shape == (2,)
    # Warmup adapted the scale from 5 (acceptance far below 0.44) downwards.
    assert np.all(np.asarray(state.kernel_state.log_scale) < np.log(5.0))
    mcmc.print_summary()
    out = capsys.readouterr().out
    assert "mu" in out and "divergences" not in out
    mcmc.post_warmup_state = state
    mcmc.run(state.rng_key, Y, extra_fields=("accept_prob",))
    accept = np.asarray(mcmc.get_extra_fields()["accept_prob"])
    assert accept.shape == (6000,) and 0.2 < accept.mean() < 0.7
    np.testing.assert_array_equal(
        mcmc.last_state.kernel_state.log_scale, state.kernel_state.log_scale
    )


def test_schedule_travels_as_named_iterations():
    kernel = RandomWalkMetropolis(normal_model)
    config = sampler.RunConfig(kernel, None, 4, 6, 2)
    schedule = sampler._schedule(config)
    np.testing.assert_array_equal(schedule.iteration, np.arange(10))
    np.testing.assert_array_equal(schedule.is_warmup, np.arange(10) < 4)
    assert schedule.is_last_warmup.nonzero()[0].tolist() == [3]
    assert not schedule.is_restart.any() and not schedule.in_window.any()
    np.testing.assert_array_equal(schedule.slot, [-1] * 5 + [0, -1, 1, -1, 2])


def test_bad_sampler_and_extra_field():
    with pytest.raises(TypeError, match="MCMCKernel"):
        MCMC(object(), num_warmup=1, num_samples=1)
    mcmc = MCMC(
        RandomWalkMetropolis(normal_model),
        num_warmup=1,
        num_samples=1,
        progress_bar=False,
    )
    with pytest.raises(ValueError, match="unknown extra field 'diverging'"):
        mcmc.run(jax.random.PRNGKey(0), Y, extra_fields=("diverging",))

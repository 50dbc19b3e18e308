"""The MCMC driver on core_ppl models: posteriors, chain methods, thinning,
extra fields, continuation, compile-once caching and the progress bar.

Programs are compiled once per configuration and shape, so the tests share
a few configurations (``_mcmc`` below) to stay fast.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.compile_events import count_compiles
from core_ppl.diagnostics import effective_sample_size
from core_ppl.infer import HMC, MCMC, NUTS
from core_ppl.infer.mcmc import hmc
from core_ppl.infer.util import potential_energy

PRIOR_LOC, PRIOR_SCALE, NOISE = 1.0, 3.0, 2.0
NUM_WARMUP, NUM_SAMPLES = 200, 400
# The function of the MCMC driver's program: its count of programs built
# (compiled, or loaded from the on-disk cache) is what "compiles once" means.
_SAMPLER_PROGRAM = "_run_chains"


def _data(seed, n=20):
    return jnp.asarray(np.random.RandomState(seed).normal(2.5, NOISE, n), jnp.float32)


def _posterior(y):
    """Exact posterior mean and sd of mu (Normal-Normal conjugacy)."""
    precision = 1 / PRIOR_SCALE**2 + len(y) / NOISE**2
    mean = (PRIOR_LOC / PRIOR_SCALE**2 + float(np.sum(y)) / NOISE**2) / precision
    return mean, precision**-0.5


def _make_model():
    def normal_normal(y):
        mu = ppl.sample("mu", dist.Normal(PRIOR_LOC, PRIOR_SCALE))
        # A positive latent unrelated to the data: its posterior is its prior,
        # which the sampler only recovers with the right log-Jacobian.
        ppl.sample("s", dist.LogNormal(0.0, 0.5))
        ppl.deterministic("mu_twice", 2.0 * mu)
        ppl.sample("y", dist.Normal(mu, NOISE), obs=y)

    return normal_normal


MODEL = _make_model()


def _mcmc(num_chains=2, chain_method="vectorized", thinning=1, model=MODEL, **kw):
    return MCMC(
        NUTS(model),
        num_warmup=NUM_WARMUP,
        num_samples=NUM_SAMPLES,
        num_chains=num_chains,
        chain_method=chain_method,
        thinning=thinning,
        progress_bar=kw.pop("progress_bar", False),
        **kw,
    )


def _assert_posterior(samples, y, z=5.0):
    """samples grouped by chain; mu vs the exact posterior, log s vs N(0, .5)."""
    mean, sd = _posterior(y)
    mu = np.asarray(samples["mu"], np.float64)
    ess = effective_sample_size(mu)
    assert abs(mu.mean() - mean) < z * sd / np.sqrt(ess)
    # sd of a sample sd is about sd / sqrt(2 ESS).
    assert abs(mu.std() - sd) < z * sd / np.sqrt(2 * ess)
    log_s = np.log(np.asarray(samples["s"], np.float64))
    ess_s = effective_sample_size(log_s)
    assert abs(log_s.mean()) < z * 0.5 / np.sqrt(ess_s)
    assert abs(log_s.std() - 0.5) < z * 0.5 / np.sqrt(2 * ess_s)
    np.testing.assert_allclose(samples["mu_twice"], 2 * samples["mu"], rtol=1e-6)


# --- posterior, compile-once and chain methods ----------------------------------------


@pytest.fixture(scope="module")
def vectorized_run():
    """Two MCMC objects, two data sets of one shape, on a model compiled for
    nothing else yet; the second is the run other tests compare with."""
    runs, traces = [], []
    with count_compiles(_SAMPLER_PROGRAM) as counter:
        for seed in (0, 7):
            mcmc = _mcmc()
            mcmc.run(
                jax.random.PRNGKey(seed),
                _data(seed),
                extra_fields=tuple(NUTS(MODEL).field_dtypes(jnp.float32)),
            )
            runs.append(mcmc)
            traces.append(counter.programs)
    return {"first": runs[0], "mcmc": runs[1], "traces": traces}


def test_conjugate_posterior_and_one_compilation_for_new_objects_and_data(
    vectorized_run,
):
    # A new MCMC object with new data of the same shapes reuses the program.
    assert vectorized_run["traces"] == [1, 1]
    for seed, key in ((0, "first"), (7, "mcmc")):
        samples = vectorized_run[key].get_samples(group_by_chain=True)
        assert samples["mu"].shape == (2, NUM_SAMPLES)
        _assert_posterior(samples, np.asarray(_data(seed)))
    flat = vectorized_run["mcmc"].get_samples()
    assert flat["mu"].shape == (2 * NUM_SAMPLES,)
    assert set(flat) == {"mu", "s", "mu_twice"}


def test_vectorized_is_reproducible(vectorized_run):
    again = _mcmc()
    again.run(jax.random.PRNGKey(7), _data(7))
    np.testing.assert_array_equal(
        again.get_samples()["mu"], vectorized_run["mcmc"].get_samples()["mu"]
    )


def test_parallel_with_too_few_devices_warns_and_runs_vectorized(vectorized_run):
    if jax.local_device_count() >= 2:
        pytest.skip("needs fewer devices than chains")
    mcmc = _mcmc(chain_method="parallel")
    with pytest.warns(UserWarning, match="one device per chain"):
        mcmc.run(jax.random.PRNGKey(7), _data(7))
    np.testing.assert_array_equal(
        mcmc.get_samples()["mu"], vectorized_run["mcmc"].get_samples()["mu"]
    )


def test_sequential_is_valid_reproducible_and_reuses_one_program():
    draws = []
    for _ in range(2):
        mcmc = _mcmc(chain_method="sequential")
        with count_compiles(_SAMPLER_PROGRAM) as counter:
            mcmc.run(jax.random.PRNGKey(7), _data(7))
        # Both chains ran one one-chain program, built at most once.
        assert counter.programs <= 1
        draws.append(mcmc.get_samples(group_by_chain=True))
    np.testing.assert_array_equal(draws[0]["mu"], draws[1]["mu"])
    _assert_posterior(draws[0], np.asarray(_data(7)))
    # The chains are distinct (each has its own key).
    assert not np.array_equal(draws[0]["mu"][0], draws[0]["mu"][1])


@pytest.mark.slow
def test_parallel_chains_are_valid_and_reproducible():
    """One chain per device through the sharding API (one device here, so
    one chain)."""
    draws = []
    for _ in range(2):
        mcmc = _mcmc(num_chains=1, chain_method="parallel")
        mcmc.run(jax.random.PRNGKey(3), _data(7))
        draws.append(mcmc.get_samples(group_by_chain=True))
    np.testing.assert_array_equal(draws[0]["mu"], draws[1]["mu"])
    assert draws[0]["mu"].shape == (1, NUM_SAMPLES)
    _assert_posterior(draws[0], np.asarray(_data(7)))
    assert mcmc.last_state.z["mu"].shape == ()  # no chain axis for one chain


# --- thinning, extra fields, continuation ----------------------------------------


def test_thinning_keeps_every_other_draw(vectorized_run):
    thinned = _mcmc(thinning=2)
    thinned.run(jax.random.PRNGKey(7), _data(7))
    mu = thinned.get_samples(group_by_chain=True)["mu"]
    assert mu.shape == (2, NUM_SAMPLES // 2)
    # Iteration keys do not depend on thinning: the kept draws are draws
    # 1, 3, 5, ... of the unthinned chains.
    expected = vectorized_run["mcmc"].get_samples(True)["mu"][:, 1::2]
    np.testing.assert_allclose(mu, expected, rtol=1e-6)


def test_extra_fields(vectorized_run):
    vectorized_run = vectorized_run["mcmc"]
    fields = vectorized_run.get_extra_fields()
    expected = set(NUTS(MODEL).field_dtypes(jnp.float32))
    assert set(fields) == expected
    for name, value in fields.items():
        assert value.shape == (2 * NUM_SAMPLES,), name
    assert fields["diverging"].dtype == jnp.bool_
    steps, depth = np.asarray(fields["num_steps"]), np.asarray(fields["tree_depth"])
    assert np.all(steps >= 1) and np.all(steps <= 2 ** (depth + 1) - 1)
    accept = np.asarray(fields["accept_prob"])
    assert np.all((accept >= 0) & (accept <= 1))
    grouped = vectorized_run.get_extra_fields(group_by_chain=True)
    np.testing.assert_array_equal(
        grouped["step_size"],
        np.broadcast_to(vectorized_run.last_state.step_size[:, None], (2, NUM_SAMPLES)),
    )
    # potential_energy is that of the draw (mu and s unconstrained: log s).
    samples = vectorized_run.get_samples()
    z = {"mu": samples["mu"][:5], "s": jnp.log(samples["s"][:5])}
    expected_pe = jax.vmap(lambda p: potential_energy(MODEL, (_data(7),), {}, p))(z)
    np.testing.assert_allclose(fields["potential_energy"][:5], expected_pe, rtol=1e-4)
    with pytest.raises(ValueError, match="unknown extra field 'bogus'"):
        _mcmc().run(jax.random.PRNGKey(0), _data(7), extra_fields=("bogus",))


def test_last_state_continues_without_warmup(vectorized_run):
    mcmc = _mcmc()
    mcmc.run(jax.random.PRNGKey(7), _data(7))
    vectorized_run = vectorized_run["mcmc"]
    state = mcmc.last_state
    assert state.z["mu"].shape == (2,) and state.step_size.shape == (2,)
    mcmc.post_warmup_state = mcmc.last_state
    mcmc.run(mcmc.post_warmup_state.rng_key, _data(7), extra_fields=("step_size",))
    # Sampling went on with the adapted step size and mass matrix, no warmup.
    np.testing.assert_array_equal(
        mcmc.get_extra_fields(group_by_chain=True)["step_size"][:, 0], state.step_size
    )
    np.testing.assert_array_equal(
        mcmc.last_state.inverse_mass_matrix, state.inverse_mass_matrix
    )
    assert not np.array_equal(
        mcmc.get_samples()["mu"], vectorized_run.get_samples()["mu"]
    )
    _assert_posterior(mcmc.get_samples(group_by_chain=True), np.asarray(_data(7)))


# --- progress bar --------------------------------------------------------------


def test_progress_bar_does_not_change_draws(vectorized_run, capsys):
    mcmc = _mcmc(progress_bar=True)
    mcmc.run(jax.random.PRNGKey(7), _data(7))
    np.testing.assert_array_equal(
        mcmc.get_samples()["mu"], vectorized_run["mcmc"].get_samples()["mu"]
    )
    err = capsys.readouterr().err
    assert (
        "sample" in err
        and f"{NUM_WARMUP + NUM_SAMPLES}/{NUM_WARMUP + NUM_SAMPLES}" in err
    )


def test_print_summary(vectorized_run, capsys):
    vectorized_run["mcmc"].print_summary(prob=0.9)
    out = capsys.readouterr().out
    assert "mu" in out and "r_hat" in out and "Number of divergences: 0" in out
    assert "mu_twice" not in out


# --- HMC and a pathological posterior ---------------------------------------------


def test_hmc_on_gaussian():
    scales = np.array([0.5, 1.0, 2.0])

    def potential(z):
        return 0.5 * jnp.sum((z["x"] / scales) ** 2)

    mcmc = MCMC(
        HMC(potential_fn=potential, trajectory_length=1.5),
        num_warmup=300,
        num_samples=600,
        num_chains=2,
        progress_bar=False,
    )
    mcmc.run(
        jax.random.PRNGKey(1),
        init_params={"x": jnp.zeros((2, 3))},
        extra_fields=("num_steps", "accept_prob", "step_size"),
    )
    x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"], np.float64)
    ess = effective_sample_size(x)
    assert np.all(np.abs(x.mean((0, 1))) < 5 * scales / np.sqrt(ess))
    ess_sq = effective_sample_size(x**2)
    se_var = (x**2).reshape(-1, 3).std(0) / np.sqrt(ess_sq)
    assert np.all(np.abs((x**2).mean((0, 1)) - scales**2) < 5 * se_var)
    fields = mcmc.get_extra_fields()
    expected_steps = np.ceil(1.5 / np.asarray(fields["step_size"]))
    np.testing.assert_array_equal(fields["num_steps"], expected_steps)
    assert 0.7 < float(np.mean(fields["accept_prob"])) < 0.97


def test_hmc_num_steps():
    assert int(hmc.num_steps_for(2 * np.pi, 1.0)) == 7
    assert int(hmc.num_steps_for(1.0, 1e-9)) == HMC.MAX_NUM_STEPS
    assert int(hmc.num_steps_for(1.0, jnp.nan)) == HMC.MAX_NUM_STEPS
    assert int(hmc.num_steps_for(1.0, 10.0)) == 1


def _funnel():
    y = ppl.sample("y", dist.Normal(0.0, 3.0))
    ppl.sample("x", dist.Normal(0.0, jnp.exp(y / 2)).expand([5]).to_event(1))


@pytest.mark.slow
def test_neals_funnel_reports_divergences():
    """Neal's funnel (centred): the neck defeats any one step size."""
    mcmc = MCMC(
        NUTS(_funnel), num_warmup=200, num_samples=300, num_chains=2, progress_bar=False
    )
    mcmc.run(jax.random.PRNGKey(0))
    assert int(np.sum(mcmc.get_extra_fields()["diverging"])) > 0
    samples = mcmc.get_samples()
    assert samples["x"].shape == (600, 5)
    assert np.all(np.isfinite(samples["x"])) and np.all(np.isfinite(samples["y"]))


# --- argument checking ----------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(TypeError, match="NUTS or HMC"):
        MCMC(object(), num_warmup=1, num_samples=1)
    with pytest.raises(ValueError, match="chain_method"):
        MCMC(NUTS(MODEL), num_warmup=1, num_samples=1, chain_method="threads")
    with pytest.raises(ValueError, match="thinning"):
        MCMC(NUTS(MODEL), num_warmup=1, num_samples=2, thinning=3)
    with pytest.raises(ValueError, match="num_samples"):
        MCMC(NUTS(MODEL), num_warmup=1, num_samples=0)
    with pytest.raises(ValueError, match="exactly one of"):
        NUTS()
    with pytest.raises(ValueError, match="max_tree_depth"):
        NUTS(MODEL, max_tree_depth=0)
    with pytest.raises(ValueError, match="target_accept_prob"):
        NUTS(MODEL, target_accept_prob=1.5)
    with pytest.raises(ValueError, match="step_size"):
        HMC(MODEL, step_size=-1.0)
    pot = NUTS(potential_fn=lambda z: jnp.sum(z["x"] ** 2))
    with pytest.raises(ValueError, match="init_params is required"):
        MCMC(pot, num_warmup=1, num_samples=1, progress_bar=False).run(
            jax.random.PRNGKey(0)
        )
    with pytest.raises(ValueError, match="leading axis of size num_chains=2"):
        MCMC(pot, num_warmup=1, num_samples=1, num_chains=2).run(
            jax.random.PRNGKey(0), init_params={"x": jnp.zeros(3)}
        )
    with pytest.raises(ValueError, match="num_chains=3 keys"):
        MCMC(pot, num_warmup=1, num_samples=1, num_chains=3).run(
            jax.random.split(jax.random.PRNGKey(0), 2),
            init_params={"x": jnp.zeros((3, 1))},
        )
    with pytest.raises(ValueError, match="inverse_mass_matrix must have shape"):
        MCMC(
            NUTS(potential_fn=pot.potential_fn, inverse_mass_matrix=jnp.ones(2)),
            num_warmup=1,
            num_samples=1,
        ).run(jax.random.PRNGKey(0), init_params={"x": jnp.zeros(3)})
    with pytest.raises(RuntimeError, match="call run"):
        _mcmc().get_samples()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _mcmc()  # constructing warns about nothing

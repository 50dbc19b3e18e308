"""The model-to-arrays bridge: log densities by hand, potential energy with
log-Jacobians, constraining, and initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.infer import (
    init_to_feasible,
    init_to_median,
    init_to_sample,
    init_to_uniform,
    init_to_value,
)
from core_ppl.infer.util import (
    constrain_fn,
    initialize_model,
    log_density,
    log_likelihood,
    merge_model_args,
    potential_energy,
    split_model_args,
    unconstrain_fn,
)

Y = np.array([[0.2, 1.1, -0.4], [0.9, 0.3, 2.2]])


def hierarchical(y):
    sigma = ppl.sample("sigma", dist.HalfCauchy(2.0))           # positive
    rho = ppl.sample("rho", dist.Uniform(-1.0, 1.0))            # interval
    with ppl.plate("groups", y.shape[1]):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        with ppl.plate("rows", y.shape[0]):
            ppl.sample("y", dist.Normal(mu + rho, sigma), obs=y)
    ppl.deterministic("sigma_sq", sigma**2)


def _hand_log_joint(sigma, rho, mu):
    return (stats.halfcauchy(scale=2.0).logpdf(sigma) + stats.uniform(-1, 2).logpdf(rho)
            + stats.norm().logpdf(mu).sum()
            + stats.norm(mu + rho, sigma).logpdf(Y).sum())


def test_log_density_equals_hand_written_sum(x64):
    params = {"sigma": 0.8, "rho": 0.25, "mu": np.array([0.1, -0.3, 0.5])}
    lp, tr = log_density(hierarchical, (Y,), {}, params)
    np.testing.assert_allclose(lp, _hand_log_joint(**params), rtol=1e-10)
    assert tr["y"]["fn"].batch_shape == (2, 3)


def test_potential_energy_adds_log_jacobians(x64):
    u = {"sigma": -0.4, "rho": 0.7, "mu": np.array([0.1, -0.3, 0.5])}
    sigma, rho = np.exp(u["sigma"]), -1 + 2 * special.expit(u["rho"])
    # d sigma / du = sigma; d rho / du = 2 expit(u) (1 - expit(u))
    log_jac = u["sigma"] + np.log(2 * special.expit(u["rho"]) * (1 - special.expit(u["rho"])))
    expected = -(_hand_log_joint(sigma, rho, u["mu"]) + log_jac)
    pe = potential_energy(hierarchical, (Y,), {}, u)
    np.testing.assert_allclose(pe, expected, rtol=1e-10)
    constrained = constrain_fn(hierarchical, (Y,), {}, u, return_deterministic=True)
    np.testing.assert_allclose(constrained["sigma"], sigma)
    np.testing.assert_allclose(constrained["rho"], rho)
    np.testing.assert_allclose(constrained["sigma_sq"], sigma**2)
    back = unconstrain_fn(hierarchical, (Y,), {}, {"sigma": sigma, "rho": rho})
    np.testing.assert_allclose(back["sigma"], u["sigma"], rtol=1e-10)
    np.testing.assert_allclose(back["rho"], u["rho"], rtol=1e-10)


@pytest.mark.parametrize(
    "strategy",
    [init_to_uniform, init_to_uniform(radius=0.5), init_to_median, init_to_sample,
     init_to_value(values={"sigma": 3.0})],
)
def test_init_strategies_give_points_in_the_support(strategy):
    seeded = handlers.seed(hierarchical, rng_seed=0)
    tr = handlers.trace(handlers.substitute(seeded, substitute_fn=strategy)).get_trace(Y)
    assert float(tr["sigma"]["value"]) > 0 and abs(float(tr["rho"]["value"])) < 1
    assert tr["mu"]["value"].shape == (3,)
    if strategy not in (init_to_uniform, init_to_median, init_to_sample):
        if "values" in strategy.keywords:
            np.testing.assert_allclose(tr["sigma"]["value"], 3.0)
        else:  # radius 0.5: |unconstrained| < 0.5
            assert np.all(np.abs(np.asarray(tr["mu"]["value"])) < 0.5)


def test_init_to_median_starts_improper_sites_uniformly():
    # A flat site cannot be sampled, so its median is undefined: it starts
    # as init_to_uniform starts it, in (-2, 2) on the unconstrained space.
    def model():
        ppl.sample("free", dist.ImproperUniform(dist.constraints.positive, (), (4,)))

    seeded = handlers.seed(model, rng_seed=0)
    started = handlers.substitute(seeded, substitute_fn=init_to_median)
    tr = handlers.trace(started).get_trace()
    value = np.asarray(tr["free"]["value"])
    assert value.shape == (4,)
    assert np.all((np.exp(-2.0) < value) & (value < np.exp(2.0)))
    assert len(np.unique(value)) == 4


def test_initialize_model_finds_finite_points_per_chain():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    info = initialize_model(keys, hierarchical, model_args=(Y,))
    z = info.param_info.z
    assert z["mu"].shape == (3, 3) and z["sigma"].shape == (3,)
    assert np.all(np.isfinite(info.param_info.potential_energy))
    single = jax.tree_util.tree_map(lambda x: x[0], z)
    np.testing.assert_allclose(info.potential_fn(single),
                               info.param_info.potential_energy[0], rtol=1e-5)
    assert set(info.postprocess_fn(single)) == {"sigma", "rho", "mu", "sigma_sq"}


def test_initialize_model_names_the_site_when_no_finite_point_exists():
    def impossible():
        x = ppl.sample("x", dist.Normal(0.0, 1.0))
        ppl.sample("y", dist.Exponential(1.0), obs=-1.0 + 0.0 * x)

    with pytest.raises(ValueError, match="not finite at site\\(s\\) \\['y'\\]"):
        initialize_model(jax.random.PRNGKey(0), impossible, max_tries=5)


def test_split_and_merge_model_args_round_trip():
    args, kwargs = (np.ones(3), 4), {"flag": True, "y": jnp.zeros(2)}
    arrays, static = split_model_args(args, kwargs)
    assert len(arrays) == 2 and static.values == (4, True)
    hash(static)
    new_args, new_kwargs = merge_model_args(arrays, static)
    assert new_args[1] == 4 and new_kwargs["flag"] is True
    np.testing.assert_array_equal(new_kwargs["y"], kwargs["y"])
    with pytest.raises(TypeError, match="neither an array nor hashable"):
        split_model_args((object.__new__(type("Unhashable", (), {"__hash__": None})),), {})


def test_initialization_compiles_once_for_new_data_of_the_same_shape():
    from core_ppl.infer.util import _find_initial_params_jit

    key = jax.random.PRNGKey(1)
    initialize_model(key, hierarchical, model_args=(Y,))
    n_compiled = _find_initial_params_jit._cache_size()
    initialize_model(key, hierarchical, model_args=(Y + 1.0,))
    initialize_model(jax.random.PRNGKey(2), hierarchical, model_args=(-Y,))
    assert _find_initial_params_jit._cache_size() == n_compiled


def test_configured_strategies_are_equal_when_their_settings_are():
    # Strategies are static arguments of the compiled samplers: the same
    # settings written twice must hash alike, or each MCMC would recompile.
    assert init_to_median(num_samples=31) == init_to_median(num_samples=31)
    assert hash(init_to_uniform(radius=1.0)) == hash(init_to_uniform(radius=1.0))
    assert init_to_median(num_samples=31) != init_to_median(num_samples=15)
    assert init_to_uniform(radius=1.0) != init_to_median(num_samples=15)
    # Array settings cannot be hashed: equality falls back to identity.
    values = {"x": np.ones(2)}
    strategy = init_to_value(values=values)
    assert strategy == strategy
    assert strategy != init_to_value(values=values)
    hash(strategy)


# --- log_likelihood ---------------------------------------------------------------


def _hierarchical_draws(num_draws, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "sigma": rng.uniform(0.5, 2.0, num_draws),
        "rho": rng.uniform(-0.9, 0.9, num_draws),
        "mu": rng.normal(size=(num_draws, 3)),
    }


def _hand_log_likelihood(draws):
    # stats.norm per draw: (num_draws, rows, groups), mu broadcast over rows.
    loc = draws["mu"][:, None, :] + draws["rho"][:, None, None]
    return stats.norm(loc, draws["sigma"][:, None, None]).logpdf(Y)


@pytest.mark.parametrize("parallel", [False, True])
def test_log_likelihood_per_draw_and_observation(x64, parallel):
    draws = _hierarchical_draws(6)
    out = log_likelihood(hierarchical, draws, Y, parallel=parallel)
    assert set(out) == {"y"}  # observed sites only
    assert out["y"].shape == (6, 2, 3)
    np.testing.assert_allclose(out["y"], _hand_log_likelihood(draws), rtol=1e-10)


def test_log_likelihood_batch_ndims_two_and_zero(x64):
    draws = _hierarchical_draws(6)
    flat = log_likelihood(hierarchical, draws, Y)["y"]
    grouped = {k: v.reshape((2, 3) + v.shape[1:]) for k, v in draws.items()}
    by_chain = log_likelihood(hierarchical, grouped, Y, batch_ndims=2)["y"]
    assert by_chain.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(by_chain.reshape(flat.shape), flat, rtol=1e-12)
    one = {k: v[4] for k, v in draws.items()}
    single = log_likelihood(hierarchical, one, Y, batch_ndims=0)["y"]
    assert single.shape == (2, 3)
    np.testing.assert_allclose(single, flat[4], rtol=1e-12)


def regression(x, y=None, *, mask=None):
    coef = ppl.sample("coef", dist.Normal(jnp.zeros(x.shape[1]), 1.0).to_event(1))
    scale = ppl.sample("scale", dist.Exponential(1.0))
    keep = True if mask is None else mask
    with ppl.plate("rows", x.shape[0]), handlers.mask(mask=keep):
        ppl.sample("y", dist.Normal(x @ coef, scale), obs=y)
        # An observed site with an event dimension: one value per row.
        cov = jnp.eye(2) * scale**2
        ones = jnp.ones((x.shape[0], 2))
        ppl.sample("z", dist.MultivariateNormal(jnp.zeros(2), cov), obs=ones)


def test_log_likelihood_of_vector_draws_masks_and_event_sites(x64):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    draws = {"coef": rng.normal(size=(4, 3)), "scale": rng.uniform(0.5, 2.0, 4)}
    mask = np.array([True, True, False, True, False])
    out = log_likelihood(regression, draws, x, y=y, mask=mask, parallel=True)
    assert out["y"].shape == (4, 5) and out["z"].shape == (4, 5)
    loc, scale = draws["coef"] @ x.T, draws["scale"][:, None]
    expected_y = np.where(mask, stats.norm(loc, scale).logpdf(y), 0.0)
    np.testing.assert_allclose(out["y"], expected_y, rtol=1e-10)
    # MultivariateNormal(0, s^2 I) at (1, 1): two independent normals.
    expected_z = np.where(mask, 2 * stats.norm(0.0, scale).logpdf(1.0), 0.0)
    np.testing.assert_allclose(out["z"], expected_z, rtol=1e-10)


def test_log_likelihood_validates_batch_shapes():
    draws = {"sigma": np.ones(4), "rho": np.zeros(3), "mu": np.zeros((4, 3))}
    with pytest.raises(ValueError, match="share their first 1"):
        log_likelihood(hierarchical, draws, Y)
    with pytest.raises(ValueError, match="batch_ndims must be"):
        log_likelihood(hierarchical, _hierarchical_draws(2), Y, batch_ndims=-1)


def test_predictive_is_importable_from_util():
    from core_ppl.infer import Predictive, util

    assert util.Predictive is Predictive
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        util.Nope  # noqa: B018


# --- init_to_feasible -------------------------------------------------------------


def many_supports():
    ppl.sample("real", dist.Normal(5.0, 0.1))
    ppl.sample("positive", dist.Gamma(2.0, 3.0).expand([2]))
    ppl.sample("interval", dist.Uniform(2.0, 6.0))
    ppl.sample("simplex", dist.Dirichlet(jnp.ones(4)))
    ppl.sample("corr", dist.LKJCholesky(3, 2.0))
    ppl.sample("obs", dist.Normal(0.0, 1.0), obs=0.5)


def test_init_to_feasible_gives_points_inside_each_support():
    seeded = handlers.seed(many_supports, rng_seed=0)
    tr = handlers.trace(
        handlers.substitute(seeded, substitute_fn=init_to_feasible)
    ).get_trace()
    for name in ("real", "positive", "interval", "simplex", "corr"):
        site = tr[name]
        value = site["value"]
        assert value.shape == site["fn"].shape()
        assert bool(jnp.all(site["fn"].support(value))), name
    # The image of 0: ignores the parameters (the prior sits at 5 +- 0.1).
    np.testing.assert_allclose(tr["real"]["value"], 0.0)
    np.testing.assert_allclose(tr["positive"]["value"], [1.0, 1.0])
    np.testing.assert_allclose(tr["interval"]["value"], 4.0)
    assert float(tr["obs"]["value"]) == 0.5  # observed sites untouched
    assert init_to_feasible() is init_to_feasible


def test_initialize_model_with_init_to_feasible_starts_at_zero():
    info = initialize_model(
        jax.random.PRNGKey(0), hierarchical, model_args=(Y,),
        init_strategy=init_to_feasible,
    )
    for value in info.param_info.z.values():
        np.testing.assert_allclose(value, 0.0, atol=1e-6)

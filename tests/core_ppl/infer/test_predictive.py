"""Tests of core_ppl.infer.predictive."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.handlers import seed, substitute, trace
from core_ppl.infer import Predictive


def model(x, y=None):
    mu = ppl.sample("mu", dist.Normal(1.0, 2.0))
    sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
    ppl.deterministic("shifted", mu + 10.0)
    with ppl.plate("data", x.shape[0]):
        return ppl.sample("y", dist.Normal(mu + x, sigma), obs=y)


X = jnp.array([0.0, 1.0, -1.0])


def test_prior_predictive_shapes_and_moments():
    # y = mu + x + sigma * e: mean 1 + x, variance 4 + E[sigma^2] = 4 + 1.
    # With 4000 draws the SE of the mean is sqrt(5 / 4000) ~ 0.035 and of the
    # variance ~ 5 * sqrt(2 / 4000) * (kurtosis factor ~1.5) ~ 0.17; 5 SEs.
    out = Predictive(model, num_samples=4000)(jax.random.PRNGKey(0), X)
    assert set(out) == {"mu", "sigma", "shifted", "y"}
    assert out["y"].shape == (4000, 3)
    assert out["mu"].shape == (4000,)
    np.testing.assert_allclose(out["shifted"], out["mu"] + 10.0, rtol=1e-6)
    np.testing.assert_allclose(out["y"].mean(0), 1.0 + X, atol=5 * 0.035)
    np.testing.assert_allclose(out["y"].var(0), 5.0, atol=5 * 0.17)


def posterior_draws(shape):
    rng = np.random.default_rng(0)
    return {
        "mu": jnp.asarray(rng.normal(size=shape), jnp.float32),
        "sigma": jnp.asarray(rng.uniform(0.5, 1.5, size=shape), jnp.float32),
    }


def test_posterior_predictive_equals_pushing_draws_by_hand():
    samples = posterior_draws((7,))
    rng_key = jax.random.PRNGKey(3)
    # batch_size=3 splits the 7 draws in uneven chunks.
    out = Predictive(model, samples, batch_size=3)(rng_key, X)
    assert set(out) == {"y", "shifted"}  # predictions and deterministic sites
    keys = jax.random.split(rng_key, 7)
    for i in range(7):
        draw = {name: value[i] for name, value in samples.items()}
        tr = trace(seed(substitute(model, data=draw), rng_seed=keys[i])).get_trace(X)
        np.testing.assert_allclose(out["y"][i], tr["y"]["value"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["shifted"][i], draw["mu"] + 10.0, rtol=1e-6)


def test_batch_ndims_and_return_sites():
    samples = posterior_draws((2, 5))
    out = Predictive(model, samples, batch_ndims=2, return_sites=["y", "mu"])(
        jax.random.PRNGKey(0), X
    )
    assert set(out) == {"y", "mu"}
    assert out["y"].shape == (2, 5, 3)
    np.testing.assert_array_equal(out["mu"], samples["mu"])


def test_observed_values_are_used_when_given():
    y = jnp.array([5.0, 6.0, 7.0])
    out = Predictive(model, posterior_draws((4,)))(jax.random.PRNGKey(0), X, y=y)
    np.testing.assert_array_equal(out["y"], jnp.broadcast_to(y, (4, 3)))


def test_guide_predictive_equals_guide_then_model_by_hand():
    def guide(x, y=None):
        loc = ppl.param("loc", 0.0)
        ppl.sample("mu", dist.Normal(loc, 0.1))
        ppl.sample("sigma", dist.LogNormal(ppl.param("log_sigma", 0.0), 0.1))

    params = {"loc": jnp.array(3.0), "log_sigma": jnp.array(-1.0)}
    rng_key = jax.random.PRNGKey(5)
    out = Predictive(
        model, guide=guide, params=params, num_samples=4, return_sites=["mu", "y"]
    )(rng_key, X)
    assert out["y"].shape == (4, 3)
    for i, key in enumerate(jax.random.split(rng_key, 4)):
        guide_key, model_key = jax.random.split(key)
        guide_trace = trace(
            seed(substitute(guide, data=params), rng_seed=guide_key)
        ).get_trace(X)
        draw = {name: guide_trace[name]["value"] for name in ("mu", "sigma")}
        tr = trace(seed(substitute(model, data=draw), rng_seed=model_key)).get_trace(X)
        np.testing.assert_allclose(out["mu"][i], draw["mu"], rtol=1e-6)
        np.testing.assert_allclose(out["y"][i], tr["y"]["value"], rtol=1e-5, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_samples is required"):
        Predictive(model)
    with pytest.raises(ValueError, match="disagrees"):
        Predictive(model, posterior_draws((4,)), num_samples=5)
    with pytest.raises(ValueError, match="share their first 1"):
        Predictive(model, {"mu": jnp.zeros(3), "sigma": jnp.ones(4)})
    with pytest.raises(ValueError, match="not sites of the model"):
        Predictive(model, num_samples=2, return_sites=["nope"])(
            jax.random.PRNGKey(0), X
        )

"""Primitives: plates broadcast and rescale, param and deterministic record,
factor adds to the log density, missing observations are imputed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.infer.util import log_density


def test_outside_handlers_param_returns_init_and_sample_returns_obs():
    assert ppl.param("w", 3.0) == 3.0
    assert ppl.sample("y", dist.Normal(0.0, 1.0), obs=2.0) == 2.0
    assert ppl.deterministic("d", 5.0) == 5.0
    assert ppl.prng_key() is None


def test_sample_rejects_non_distribution():
    with pytest.raises(TypeError, match="sample site 'x' expects a distribution"):
        ppl.sample("x", 3.0)


def test_plates_broadcast_batch_shapes_and_allocate_dims():
    def nested():
        with ppl.plate("outer", 4):
            with ppl.plate("inner", 3):
                return ppl.sample("x", dist.Normal(0.0, 1.0))

    tr = handlers.trace(handlers.seed(nested, 0)).get_trace()
    assert tr["x"]["value"].shape == (3, 4)
    frames = {f.name: f.dim for f in tr["x"]["cond_indep_stack"]}
    assert frames == {"outer": -1, "inner": -2}

    def explicit_dim():
        with ppl.plate("a", 5, dim=-2):
            return ppl.sample("x", dist.Normal(jnp.zeros(2), 1.0))

    assert handlers.seed(explicit_dim, 0)().shape == (5, 2)


def test_plate_size_conflicting_with_batch_shape_raises_naming_site():
    def bad():
        with ppl.plate("data", 5):
            ppl.sample("x", dist.Normal(jnp.zeros(3), 1.0))

    with pytest.raises(ValueError, match="site 'x' has batch shape \\(3,\\).*plate 'data' has size 5"):
        handlers.seed(bad, 0)()


def test_plate_rejects_bad_sizes():
    with pytest.raises(ValueError, match="subsample_size"):
        ppl.plate("p", 3, subsample_size=5)
    with pytest.raises(ValueError, match="dim must be negative"):
        ppl.plate("p", 3, dim=0)


def test_subsampled_plate_rescales_log_density_exactly(x64):
    data = jnp.arange(10.0)

    def subsampled():
        loc = ppl.sample("loc", dist.Normal(0.0, 1.0))
        with ppl.plate("data", 10, subsample_size=4) as idx:
            ppl.sample("obs", dist.Normal(loc, 1.0), obs=data[idx])
        return idx

    tr = handlers.trace(handlers.seed(subsampled, 0)).get_trace()
    idx = np.asarray(tr["data"]["value"])
    assert idx.shape == (4,) and len(set(idx.tolist())) == 4
    # Same subsample through log_density: substitute the plate's indices.
    lp, _ = log_density(subsampled, (), {}, {"loc": 0.5, "data": idx})
    expected = stats.norm(0, 1).logpdf(0.5) + 10 / 4 * np.sum(
        stats.norm(0.5, 1).logpdf(np.asarray(data)[idx]))
    np.testing.assert_allclose(lp, expected, rtol=1e-10)


def test_factor_adds_to_log_density(x64):
    def with_factor():
        ppl.sample("x", dist.Normal(0.0, 1.0))
        ppl.factor("penalty", -3.25)

    lp, tr = log_density(with_factor, (), {}, {"x": 0.0})
    np.testing.assert_allclose(lp, stats.norm.logpdf(0.0) - 3.25, rtol=1e-10)
    assert tr["penalty"]["is_observed"]


def test_param_callable_init_and_constraint():
    def with_param():
        return ppl.param("w", lambda key: jax.random.normal(key, (2,)),
                         constraint=dist.constraints.real)

    assert handlers.seed(with_param, 0)().shape == (2,)
    with pytest.raises(ValueError, match="needs a random key"):
        with_param()
    tr = handlers.trace(handlers.seed(with_param, 0)).get_trace()
    assert tr["w"]["kwargs"]["constraint"] is dist.constraints.real


def test_obs_mask_imputes_missing_values(x64):
    data = jnp.array([1.0, 0.0, 3.0])
    observed = jnp.array([True, False, True])

    def missing():
        with ppl.plate("data", 3):
            return ppl.sample("y", dist.Normal(0.0, 1.0), obs=data, obs_mask=observed)

    tr = handlers.trace(handlers.seed(missing, 0)).get_trace()
    assert not tr["y_unobserved"]["is_observed"] and tr["y"]["is_observed"]
    lp, _ = log_density(missing, (), {}, {"y_unobserved": jnp.array([0.0, 2.0, 0.0])})
    expected = stats.norm.logpdf([1.0, 3.0]).sum() + stats.norm.logpdf(2.0)
    np.testing.assert_allclose(lp, expected, rtol=1e-10)

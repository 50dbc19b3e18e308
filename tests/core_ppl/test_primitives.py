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


# --- a plate entered more than once --------------------------------------------


def _two_data_plates(data):
    loc = ppl.sample("loc", dist.Normal(0.0, 1.0))
    with ppl.plate("data", 6, subsample_size=3) as first:
        ppl.sample("x", dist.Normal(loc, 1.0), obs=data[first])
    with ppl.plate("data", 6, subsample_size=3) as second:
        ppl.sample("y", dist.Normal(loc, 2.0), obs=data[second])
    return first, second, ppl.sample("z", dist.Normal(0.0, 1.0))


def _one_data_plate(data):
    loc = ppl.sample("loc", dist.Normal(0.0, 1.0))
    with ppl.plate("data", 6, subsample_size=3) as first:
        ppl.sample("x", dist.Normal(loc, 1.0), obs=data[first])
    return first, ppl.sample("z", dist.Normal(0.0, 1.0))


def test_a_plate_name_entered_twice_is_one_plate_with_one_subsample(x64):
    data = jnp.arange(6.0)
    tr = handlers.trace(handlers.seed(_two_data_plates, 3)).get_trace(data)
    assert list(tr) == ["loc", "data", "x", "y", "z"]
    first, second, z = handlers.seed(_two_data_plates, 3)(data)
    np.testing.assert_array_equal(first, second)
    # The second entry draws no key: the other sites see the same key stream
    # as with one plate, so they take the same values.
    first_alone, z_alone = handlers.seed(_one_data_plate, 3)(data)
    np.testing.assert_array_equal(first, first_alone)
    assert z == z_alone
    # The log density scales both sites by 6 / 3 on the same rows.
    idx = np.asarray(first)
    lp, _ = log_density(_two_data_plates, (data,), {},
                        {"loc": 0.5, "data": idx, "z": 0.0})
    rows = np.asarray(data)[idx]
    expected = (stats.norm.logpdf(0.5) + stats.norm.logpdf(0.0)
                + 2 * np.sum(stats.norm(0.5, 1).logpdf(rows))
                + 2 * np.sum(stats.norm(0.5, 2).logpdf(rows)))
    np.testing.assert_allclose(lp, expected, rtol=1e-10)


def test_one_plate_object_entered_twice_reallocates_its_dim():
    data_plate = ppl.plate("data", 3)

    def reentered():
        with data_plate:
            a = ppl.sample("a", dist.Normal(0.0, 1.0))
        with ppl.plate("feature", 2), data_plate:
            b = ppl.sample("b", dist.Normal(0.0, 1.0))
        return a, b

    tr = handlers.trace(handlers.seed(reentered, 0)).get_trace()
    assert tr["a"]["value"].shape == (3,) and tr["b"]["value"].shape == (3, 2)
    assert [(f.name, f.dim) for f in tr["b"]["cond_indep_stack"]] == [
        ("data", -2), ("feature", -1)]


def test_a_plate_name_with_another_size_raises():
    def mismatched():
        with ppl.plate("data", 3):
            ppl.sample("a", dist.Normal(0.0, 1.0))
        with ppl.plate("data", 4):
            ppl.sample("b", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="plate 'data' is entered with size=4"):
        handlers.trace(handlers.seed(mismatched, 0)).get_trace()

    def mismatched_subsample():
        with ppl.plate("data", 4, subsample_size=2):
            ppl.sample("a", dist.Normal(0.0, 1.0))
        with ppl.plate("data", 4, subsample_size=3):
            ppl.sample("b", dist.Normal(0.0, 1.0))

    # seed checks it too, as it gives both the key of one plate.
    with pytest.raises(ValueError, match="subsample_size=3 but was first entered"):
        handlers.seed(mismatched_subsample, 0)()

    def nested():
        with ppl.plate("data", 3), ppl.plate("data", 3):
            ppl.sample("a", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="plate 'data' is entered inside a plate"):
        handlers.seed(nested, 0)()

    def sample_named_like_plate():
        with ppl.plate("data", 3):
            ppl.sample("data", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="'data' is used twice"):
        handlers.trace(handlers.seed(sample_named_like_plate, 0)).get_trace()


# --- subsample and plate_stack -------------------------------------------------


def test_subsample_takes_the_rows_of_the_enclosing_subsampled_plates():
    x = jnp.arange(24.0).reshape(6, 4)

    def model():
        with ppl.plate("rows", 6, subsample_size=2, dim=-2) as rows:
            with ppl.plate("cols", 4, subsample_size=3) as cols:
                both = ppl.subsample(x, event_dim=0)
            # The plate of dim -2 indexes dim -2 - event_dim of the data.
            by_row = ppl.subsample(x, event_dim=0)
            broadcast = ppl.subsample(x[:1], event_dim=0)
            untouched = ppl.subsample(x, event_dim=1)  # x has no dim -3
        return rows, cols, both, by_row, broadcast, untouched

    rows, cols, both, by_row, broadcast, untouched = handlers.seed(model, 1)()
    np.testing.assert_array_equal(both, np.asarray(x)[np.ix_(rows, cols)])
    np.testing.assert_array_equal(by_row, np.asarray(x)[rows])
    np.testing.assert_array_equal(broadcast, np.asarray(x)[:1])
    assert untouched is x
    assert ppl.subsample(x, event_dim=0) is x  # outside any plate
    with ppl.plate("full", 6):
        assert ppl.subsample(x, event_dim=1) is x

    def wrong_size():
        with ppl.plate("rows", 5, subsample_size=2):
            ppl.subsample(x, event_dim=1)

    with pytest.raises(ValueError, match="plate 'rows'.*shape \\(6, 4\\)"):
        handlers.seed(wrong_size, 0)()
    with pytest.raises(ValueError, match="event_dim must be >= 0"):
        ppl.subsample(x, event_dim=-1)


def test_plate_stack_enters_contiguous_plates_rightmost_last():
    def model(rightmost_dim):
        with ppl.plate_stack("grid", (2, 3), rightmost_dim=rightmost_dim):
            return ppl.sample("x", dist.Normal(0.0, 1.0))

    tr = handlers.trace(handlers.seed(model, 0)).get_trace(-1)
    assert tr["x"]["value"].shape == (2, 3)
    frames = {(f.name, f.dim, f.size) for f in tr["x"]["cond_indep_stack"]}
    assert frames == {("grid_0", -1, 3), ("grid_1", -2, 2)}
    assert handlers.seed(model, 0)(-2).shape == (2, 3, 1)
    with pytest.raises(ValueError, match="rightmost_dim must be a negative int"):
        handlers.seed(model, 0)(0)

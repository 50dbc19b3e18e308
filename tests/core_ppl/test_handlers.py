"""Handlers: what they record, replace and rescale, and that they compose
under jit, vmap and grad without leaking state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.infer.util import log_density
from core_ppl.runtime import handler_stack


def model(data=None):
    loc = ppl.sample("loc", dist.Normal(0.0, 1.0))
    scale = ppl.sample("scale", dist.Exponential(1.0))
    with ppl.plate("data", 3):
        ppl.sample("obs", dist.Normal(loc, scale), obs=data)
    ppl.deterministic("twice_loc", 2 * loc)
    return loc


DATA = np.array([0.5, -1.0, 2.0])


def test_trace_records_sites_in_order_with_their_keys():
    tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(DATA)
    assert list(tr) == ["loc", "scale", "data", "obs", "twice_loc"]
    required = {"type", "name", "fn", "value", "is_observed", "args", "kwargs",
                "scale", "cond_indep_stack", "infer"}
    for site in tr.values():
        assert required <= set(site)
    assert tr["obs"]["is_observed"] and not tr["loc"]["is_observed"]
    assert tr["obs"]["cond_indep_stack"][0].name == "data"
    assert tr["obs"]["fn"].batch_shape == (3,)
    np.testing.assert_allclose(tr["twice_loc"]["value"], 2 * tr["loc"]["value"])


def test_duplicate_site_names_raise():
    def twice():
        ppl.sample("x", dist.Normal(0.0, 1.0))
        ppl.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="'x' is used twice"):
        handlers.trace(handlers.seed(twice, 0)).get_trace()


def test_seed_is_reproducible_and_distinct_across_sites():
    def two_draws():
        return ppl.sample("a", dist.Normal(0.0, 1.0)), ppl.sample("b", dist.Normal(0.0, 1.0))

    a1, b1 = handlers.seed(two_draws, rng_seed=3)()
    a2, b2 = handlers.seed(two_draws, rng_seed=3)()
    a3, _ = handlers.seed(two_draws, rng_seed=4)()
    assert a1 == a2 and b1 == b2
    assert a1 != b1 and a1 != a3


def test_sample_without_key_raises_naming_the_site():
    with pytest.raises(ValueError, match="sample site 'loc' needs a random key"):
        model(DATA)


def test_seed_rejects_bad_seed():
    with pytest.raises(TypeError, match="rng_seed"):
        handlers.seed(model, rng_seed="zero")


def test_substitute_keeps_site_latent_and_condition_observes_it():
    sub = handlers.trace(handlers.substitute(handlers.seed(model, 0), data={"loc": 1.5}))
    tr = sub.get_trace(DATA)
    assert tr["loc"]["value"] == 1.5 and not tr["loc"]["is_observed"]
    cond = handlers.trace(handlers.condition(handlers.seed(model, 0), data={"loc": 1.5}))
    tr = cond.get_trace(DATA)
    assert tr["loc"]["value"] == 1.5 and tr["loc"]["is_observed"]


def test_substitute_fn():
    fn = lambda site: 7.0 if site["name"] == "scale" else None
    tr = handlers.trace(handlers.substitute(handlers.seed(model, 0), substitute_fn=fn))
    assert tr.get_trace(DATA)["scale"]["value"] == 7.0


def test_replay_reuses_latent_values_of_a_trace():
    guide_trace = handlers.trace(handlers.seed(model, 1)).get_trace(DATA)
    tr = handlers.trace(handlers.replay(handlers.seed(model, 2), trace=guide_trace))
    tr = tr.get_trace(DATA)
    assert tr["loc"]["value"] == guide_trace["loc"]["value"]
    assert tr["scale"]["value"] == guide_trace["scale"]["value"]


def test_block_hides_sites_from_outer_handlers():
    with handlers.trace() as tr:
        handlers.block(handlers.seed(model, 0), hide=["loc"])(DATA)
    assert "loc" not in tr and "scale" in tr
    with handlers.trace() as tr:
        handlers.block(handlers.seed(model, 0), expose=["loc"])(DATA)
    assert list(tr) == ["loc"]
    with handlers.trace() as tr:
        handlers.block(handlers.seed(model, 0))(DATA)
    assert len(tr) == 0


def test_seed_outside_block_still_gives_hidden_sites_their_keys():
    def two_sites():
        a = ppl.sample("a", dist.Normal(0.0, 1.0))
        return a, ppl.sample("b", dist.Normal(0.0, 1.0)), ppl.prng_key()

    a, b, key = handlers.seed(handlers.block(two_sites, hide=["a"]), 0)()
    # Blocking changes what outer handlers see, not the keys: same draws as
    # without the block.
    assert (a, b) == handlers.seed(two_sites, 0)()[:2]
    assert key is not None
    a_all, b_all, _ = handlers.seed(handlers.block(two_sites), 0)()
    assert (a_all, b_all) == (a, b)
    # Still hidden from the handlers that look at or change sites.
    with handlers.trace() as tr:
        conditioned = handlers.condition(
            handlers.block(two_sites, hide=["a"]), data={"a": 5.0, "b": 7.0})
        a_seen, b_seen, _ = handlers.seed(conditioned, 0)()
    assert list(tr) == ["b"] and a_seen == a and b_seen == 7.0


def test_seed_keys_hidden_subsampled_plates_and_no_full_plates():
    def with_plates(subsample_size):
        with ppl.plate("rows", 10, subsample_size=subsample_size) as idx:
            pass
        return idx, ppl.sample("z", dist.Normal(0.0, 1.0))

    idx, _ = handlers.seed(handlers.block(with_plates), 0)(4)
    assert idx.shape == (4,) and len(set(np.asarray(idx).tolist())) == 4
    # A plate that does not subsample takes no key: z is drawn with the key
    # it gets in a model without the plate.
    _, z = handlers.seed(with_plates, 0)(None)
    assert z == handlers.seed(lambda: ppl.sample("z", dist.Normal(0.0, 1.0)), 0)()


def _hand_log_joint(loc, scale, data, obs_weight=1.0, obs_mask=None):
    obs_lp = stats.norm(loc, scale).logpdf(np.asarray(data))
    if obs_mask is not None:
        obs_lp = np.where(obs_mask, obs_lp, 0.0)
    return (stats.norm(0, 1).logpdf(loc) + stats.expon().logpdf(scale)
            + np.sum(obs_weight * obs_lp))


def test_scale_multiplies_log_density(x64):
    params = {"loc": 0.3, "scale": 1.7}
    w = jnp.array([1.0, 2.0, 0.5])
    scaled = lambda data: ppl.sample("obs", dist.Normal(0.3, 1.7).expand([3]),
                                     obs=data)
    lp, _ = log_density(handlers.scale(scaled, scale=w), (DATA,), {}, params)
    expected = np.sum(np.asarray(w) * stats.norm(0.3, 1.7).logpdf(np.asarray(DATA)))
    np.testing.assert_allclose(lp, expected, rtol=1e-10)
    with pytest.raises(ValueError, match="scale must be positive"):
        handlers.scale(model, scale=-1.0)


def test_mask_drops_log_density_where_false(x64):
    params = {"loc": 0.3, "scale": 1.7}
    keep = jnp.array([True, False, True])

    def masked_model(data):
        loc = ppl.sample("loc", dist.Normal(0.0, 1.0))
        scale = ppl.sample("scale", dist.Exponential(1.0))
        with ppl.plate("data", 3), handlers.mask(mask=keep):
            ppl.sample("obs", dist.Normal(loc, scale), obs=data)

    lp, _ = log_density(masked_model, (DATA,), {}, params)
    expected = _hand_log_joint(0.3, 1.7, DATA, obs_mask=np.asarray(keep))
    np.testing.assert_allclose(lp, expected, rtol=1e-10)
    with pytest.raises(TypeError, match="mask must be boolean"):
        handlers.mask(model, mask=jnp.array([1.0, 0.0]))


def test_handlers_work_as_context_managers_and_leave_no_state_on_error():
    with handlers.seed(rng_seed=0), handlers.trace() as tr:
        model(DATA)
    assert "loc" in tr
    assert handler_stack() == []

    def broken():
        ppl.sample("x", dist.Normal(0.0, 1.0))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        handlers.trace(handlers.seed(broken, 0)).get_trace()
    assert handler_stack() == []


def test_handlers_compose_under_jit_vmap_and_grad():
    def draw(key):
        # Handlers created inside the transformed function: no tracer leaks.
        return handlers.seed(model, rng_seed=key)(DATA)

    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    draws = jax.jit(jax.vmap(draw))(keys)
    assert draws.shape == (4,) and len(set(np.asarray(draws).tolist())) == 4

    def neg_log_joint(loc):
        return -log_density(model, (DATA,), {}, {"loc": loc, "scale": 1.0})[0]

    grad = jax.jit(jax.grad(neg_log_joint))(0.2)
    # d/dloc of -[log N(loc|0,1) + sum log N(x|loc,1)] = loc - sum(x - loc)
    np.testing.assert_allclose(grad, 0.2 - np.sum(np.asarray(DATA) - 0.2), rtol=1e-5)
    assert handler_stack() == []

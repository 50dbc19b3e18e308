"""Handlers reparam, lift, do, scope and infer_config: what a trace records."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.infer.reparam import LocScaleReparam
from core_ppl.infer.util import log_density


def _trace(model, *args, rng_seed=0, **kwargs):
    return handlers.trace(handlers.seed(model, rng_seed=rng_seed)).get_trace(
        *args, **kwargs
    )


def hierarchical():
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    tau = ppl.sample("tau", dist.HalfNormal(2.0))
    with ppl.plate("J", 3):
        theta = ppl.sample("theta", dist.Normal(mu, tau))
    return theta


# --- reparam --------------------------------------------------------------------


def test_reparam_records_the_auxiliary_site_and_a_deterministic_site():
    model = handlers.reparam(hierarchical, config={"theta": LocScaleReparam(0)})
    tr = _trace(model)
    assert list(tr) == ["mu", "tau", "J", "theta_decentered", "theta"]
    aux, theta = tr["theta_decentered"], tr["theta"]
    assert aux["type"] == "sample" and not aux["is_observed"]
    assert aux["fn"].batch_shape == (3,)
    # The auxiliary site is standard normal, under the same plate.
    assert [f.name for f in aux["cond_indep_stack"]] == ["J"]
    base = aux["fn"].base_dist
    assert float(base.loc) == 0.0 and float(base.scale) == 1.0
    assert theta["type"] == "deterministic" and not theta["is_observed"]
    assert [f.name for f in theta["cond_indep_stack"]] == ["J"]
    expected = tr["mu"]["value"] + tr["tau"]["value"] * aux["value"]
    np.testing.assert_allclose(theta["value"], expected, rtol=1e-6)


def test_reparam_moves_the_log_density_to_the_auxiliary_site(x64):
    model = handlers.reparam(hierarchical, config={"theta": LocScaleReparam(0)})
    params = {"mu": 0.7, "tau": 1.3, "theta_decentered": np.array([0.1, -2.0, 0.5])}
    got, tr = log_density(model, (), {}, params)
    expected = (
        stats.norm.logpdf(0.7, 0.0, 5.0)
        + stats.halfnorm.logpdf(1.3, scale=2.0)
        + stats.norm.logpdf(params["theta_decentered"]).sum()
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(
        tr["theta"]["value"], 0.7 + 1.3 * params["theta_decentered"], rtol=1e-12
    )


def test_reparam_config_may_be_a_callable_of_the_site():
    def config(site):
        return LocScaleReparam(0) if site["name"] == "theta" else None

    tr = _trace(handlers.reparam(hierarchical, config=config))
    assert tr["theta"]["type"] == "deterministic"
    assert tr["mu"]["type"] == "sample" and "theta_decentered" in tr


def test_reparam_fully_centred_leaves_the_site_alone():
    model = handlers.reparam(hierarchical, config={"theta": LocScaleReparam(1.0)})
    tr = _trace(model)
    assert list(tr) == ["mu", "tau", "J", "theta"]
    assert tr["theta"]["type"] == "sample"


def test_reparam_strategy_returning_a_distribution_and_value_observes_the_site():
    def strategy(name, fn, obs):
        return dist.Normal(5.0, 1.0), jnp.array(2.0)

    def model():
        return ppl.sample("x", dist.Normal(0.0, 1.0))

    tr = _trace(handlers.reparam(model, config={"x": strategy}))
    site = tr["x"]
    assert site["type"] == "sample" and site["is_observed"]
    assert float(site["value"]) == 2.0 and float(site["fn"].loc) == 5.0


def test_reparam_under_jit_creates_no_leaks():
    @jax.jit
    def log_joint(mu, tau, dec):
        model = handlers.reparam(hierarchical, config={"theta": LocScaleReparam(0)})
        params = {"mu": mu, "tau": tau, "theta_decentered": dec}
        return log_density(model, (), {}, params)[0]

    dec = jnp.array([0.1, -2.0, 0.5])
    got = log_joint(0.7, 1.3, dec)
    expected = (
        stats.norm.logpdf(0.7, 0.0, 5.0)
        + stats.halfnorm.logpdf(1.3, scale=2.0)
        + stats.norm.logpdf(np.asarray(dec)).sum()
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_reparam_rejects_a_bad_config_and_an_empty_strategy_result():
    with pytest.raises(TypeError, match="config"):
        handlers.reparam(hierarchical, config=["theta"])
    empty = handlers.reparam(hierarchical, config={"theta": lambda *_: (None, None)})
    with pytest.raises(ValueError, match="theta"):
        _trace(empty)


# --- lift -------------------------------------------------------------------------


def param_model(data):
    w = ppl.param("w", 0.5)
    b = ppl.param("b", 0.0)
    ppl.sample("y", dist.Normal(w + b, 1.0), obs=data)
    return w


def test_lift_turns_params_into_latent_sample_sites():
    prior = dist.Normal(0.0, 10.0)
    tr = _trace(handlers.lift(param_model, prior={"w": prior}), 1.0)
    assert tr["w"]["type"] == "sample" and not tr["w"]["is_observed"]
    assert tr["w"]["fn"] is prior
    assert tr["b"]["type"] == "param" and float(tr["b"]["value"]) == 0.0
    # The value is a draw from the prior, not the param's initial value.
    lifted = handlers.lift(param_model, prior=prior)
    draws = [float(_trace(lifted, 1.0, rng_seed=s)["w"]["value"]) for s in range(3)]
    assert len(set(draws)) == 3 and 0.5 not in draws


def test_lift_adds_the_prior_to_the_log_density(x64):
    lifted = handlers.lift(param_model, prior=dist.Normal(0.0, 2.0))
    got, _ = log_density(lifted, (1.0,), {}, {"w": 0.3, "b": -0.2})
    expected = (
        stats.norm.logpdf(0.3, 0.0, 2.0)
        + stats.norm.logpdf(-0.2, 0.0, 2.0)
        + stats.norm.logpdf(1.0, 0.1, 1.0)
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_lift_a_param_read_twice_sees_one_draw_and_one_site():
    def model():
        return ppl.param("w", 0.0), ppl.param("w", 0.0)

    lifted = handlers.lift(model, prior=dist.Normal(0.0, 1.0))
    with handlers.trace() as tr:
        first, second = handlers.seed(lifted, rng_seed=0)()
    assert float(first) == float(second) != 0.0
    assert list(tr) == ["w"]


def test_lift_rejects_a_prior_that_is_not_a_distribution():
    with pytest.raises(TypeError, match="prior"):
        handlers.lift(param_model, prior={"w": 1.0})


# --- do ---------------------------------------------------------------------------


def chain(x=0.0):
    s = ppl.sample("s", dist.LogNormal(0.0, 1.0))
    z = ppl.sample("z", dist.Normal(x, s))
    return ppl.sample("y", dist.Normal(z, 0.01))


def test_do_splits_the_site_as_numpyro_does():
    intervened = handlers.do(chain, data={"z": 100.0})
    tr = _trace(intervened)
    # The outer trace holds a fresh, latent, unused draw under the name "z";
    # the mangled site "z__CF" stops at do.
    assert list(tr) == ["s", "z", "y"]
    assert float(tr["z"]["value"]) != 100.0
    assert not tr["z"]["is_observed"] and not tr["z"].get("stop")
    # Downstream sites see the intervention.
    assert float(tr["y"]["fn"].loc) == 100.0


def test_do_records_the_intervened_site_under_its_mangled_name_inside():
    seeded, intervened = handlers.seed(rng_seed=0), handlers.do(data={"z": 100.0})
    with seeded, intervened, handlers.trace() as inner:
        chain()
    assert list(inner) == ["s", "z", "z__CF", "y"]
    assert inner["z__CF"]["is_observed"] and float(inner["z__CF"]["value"]) == 100.0
    assert not inner["z"]["is_observed"] and float(inner["z"]["value"]) != 100.0


def test_do_composes_with_condition_for_counterfactuals():
    model = handlers.condition(handlers.do(chain, data={"z": 100.0}), data={"z": 0.5})
    tr = _trace(model)
    assert tr["z"]["is_observed"] and float(tr["z"]["value"]) == 0.5
    assert float(tr["y"]["fn"].loc) == 100.0


def test_do_does_not_apply_plate_scales_twice():
    def model():
        with ppl.plate("data", 10, subsample_size=5):
            return ppl.sample("z", dist.Normal(0.0, 1.0))

    tr = _trace(handlers.do(model, data={"z": jnp.zeros(5)}))
    assert tr["z"]["scale"] == pytest.approx(2.0)
    assert [f.name for f in tr["z"]["cond_indep_stack"]] == ["data"]


def test_do_twice_on_one_site_warns():
    model = handlers.do(handlers.do(chain, data={"z": 1.0}), data={"z": 2.0})
    with pytest.warns(RuntimeWarning, match="two do handlers"):
        tr = _trace(model)
    # The inner intervention is the one the model uses.
    assert list(tr) == ["s", "z", "y"] and float(tr["y"]["fn"].loc) == 1.0


def test_do_rejects_data_that_is_not_a_dict():
    with pytest.raises(TypeError, match="data"):
        handlers.do(chain, data=[("z", 1.0)])


# --- scope --------------------------------------------------------------------------


def layer():
    w = ppl.param("w", 1.0)
    with ppl.plate("units", 2):
        h = ppl.sample("h", dist.Normal(0.0, w))
    return ppl.deterministic("out", h.sum())


def test_scope_prefixes_sites_and_plates():
    def model():
        handlers.scope(layer, prefix="a")()
        handlers.scope(layer, prefix="b", divider=".")()

    tr = _trace(model)
    assert list(tr) == [
        "a/w", "a/units", "a/h", "a/out", "b.w", "b.units", "b.h", "b.out",
    ]
    assert [f.name for f in tr["a/h"]["cond_indep_stack"]] == ["a/units"]
    assert [f.name for f in tr["b.h"]["cond_indep_stack"]] == ["b.units"]


def test_scope_nests_and_hides_types():
    seeded, outer = handlers.seed(rng_seed=0), handlers.scope(prefix="outer")
    with seeded, handlers.trace() as tr, outer:
        handlers.scope(layer, prefix="inner", hide_types=["plate", "param"])()
    assert list(tr) == ["outer/w", "outer/units", "outer/inner/h", "outer/inner/out"]
    assert [f.name for f in tr["outer/inner/h"]["cond_indep_stack"]] == [
        "outer/units"
    ]


def test_scope_needs_a_string_prefix():
    with pytest.raises(TypeError, match="prefix"):
        handlers.scope(layer)


# --- infer_config -------------------------------------------------------------------


def test_infer_config_adds_hints_to_sample_sites_only():
    hints = {"enumerate": "parallel"}

    def model():
        ppl.param("p", 0.0)
        ppl.sample("x", dist.Normal(0.0, 1.0), infer=hints)
        ppl.sample("y", dist.Normal(0.0, 1.0))

    def config_fn(site):
        return {"name_length": len(site["name"])}

    tr = _trace(handlers.infer_config(model, config_fn=config_fn))
    assert tr["x"]["infer"] == {"enumerate": "parallel", "name_length": 1}
    assert tr["y"]["infer"] == {"name_length": 1}
    assert tr["p"]["infer"] == {}
    assert hints == {"enumerate": "parallel"}  # the model's dict is not mutated


def test_infer_config_needs_a_callable():
    with pytest.raises(TypeError, match="config_fn"):
        handlers.infer_config(layer, config_fn={"a": 1})

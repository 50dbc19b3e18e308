"""Issue 19 corners of autoguides and SVI: deterministic sites in
``sample_posterior`` and ``Predictive``, latent ``Delta`` sites, SVI without
parameters, and ``AutoGuideList``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.infer import SVI, Predictive, Trace_ELBO
from core_ppl.infer.autoguide import (
    AutoDelta,
    AutoDiagonalNormal,
    AutoGuideList,
    AutoLaplaceApproximation,
    AutoNormal,
)
from core_ppl.optim import Adam

DATA = jnp.array([0.5, 1.5, 1.0])


def _model(y=None):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
    ppl.deterministic("shifted", mu + 10.0 * sigma)
    with ppl.plate("data", 3):
        ppl.sample("y", dist.Normal(mu, sigma), obs=y)


def _fit(guide, num_steps=0):
    """The guide's parameters after ``num_steps`` SVI steps (0: the initial
    ones, without compiling an SVI loop)."""
    svi = SVI(_model, guide, Adam(0.01), Trace_ELBO())
    if not num_steps:
        return svi.get_params(svi.init(jax.random.PRNGKey(0), DATA))
    return svi.run(jax.random.PRNGKey(0), num_steps, DATA, progress_bar=False).params


# --- deterministic sites -----------------------------------------------------------


@pytest.mark.parametrize(
    "guide_class",
    [AutoNormal, AutoDelta, AutoDiagonalNormal, AutoLaplaceApproximation],
)
def test_sample_posterior_returns_deterministic_sites(guide_class):
    guide = guide_class(_model)
    params = _fit(guide)
    draws = guide.sample_posterior(jax.random.PRNGKey(1), params, sample_shape=(4,))
    assert set(draws) >= {"mu", "sigma", "shifted"}
    assert draws["shifted"].shape == (4,)
    # The deterministic site is the model's function of the same draws.
    np.testing.assert_allclose(
        draws["shifted"], draws["mu"] + 10.0 * draws["sigma"], rtol=1e-5
    )
    one = guide.sample_posterior(jax.random.PRNGKey(1), params)
    assert one["shifted"].shape == ()


def test_predictive_with_a_guide_returns_deterministic_sites():
    guide = AutoNormal(_model)
    params = _fit(guide)
    out = Predictive(_model, guide=guide, params=params, num_samples=3)(
        jax.random.PRNGKey(2)
    )
    assert out["shifted"].shape == (3,) and out["y"].shape == (3, 3)


# --- latent Delta --------------------------------------------------------------------


@pytest.mark.parametrize("guide_class", [AutoNormal, AutoDelta, AutoDiagonalNormal])
def test_autoguide_refuses_a_latent_delta(guide_class):
    def model():
        ppl.sample("a", dist.Normal(0.0, 1.0))
        with ppl.plate("p", 2):
            ppl.sample("d", dist.Delta(jnp.ones(2)))

    guide = guide_class(model)
    with pytest.raises(ValueError, match="latent site 'd' is a Delta"):
        handlers.seed(guide, rng_seed=0)()


# --- SVI without parameters ----------------------------------------------------------


def test_svi_runs_without_any_param_site():
    def model():
        ppl.sample("x", dist.Normal(0.0, 1.0))

    def guide():
        ppl.sample("x", dist.Normal(0.5, 1.0))

    svi = SVI(model, guide, Adam(0.01), Trace_ELBO(num_particles=100))
    result = svi.run(jax.random.PRNGKey(0), 3, progress_bar=False)
    assert result.params == {}
    # The loss estimates KL(q || p) = 0.5^2 / 2 = 0.125 (100 particles: the
    # single-particle sd is about 0.5, so 5 standard errors are 0.25).
    np.testing.assert_allclose(result.losses, 0.125, atol=0.25)
    state, loss = svi.stable_update(result.state)
    assert np.isfinite(loss)


# --- AutoGuideList --------------------------------------------------------------------


def _guide_list():
    guide = AutoGuideList(_model)
    guide.append(AutoNormal(handlers.block(_model, expose=["mu"])))
    guide.append(AutoDelta(handlers.block(_model, expose=["sigma"])))
    return guide


def test_auto_guide_list_fits_each_part():
    guide = _guide_list()
    params = _fit(guide, num_steps=5)
    assert {"mu_auto_loc", "mu_auto_scale", "sigma_auto_loc"} <= set(params)
    draws = guide.sample_posterior(jax.random.PRNGKey(3), params, sample_shape=(5,))
    assert {k: v.shape for k, v in draws.items()} == {
        "mu": (5,),
        "sigma": (5,),
        "shifted": (5,),
    }
    # The Delta part is a point mass: every draw of sigma is its median.
    median = guide.median(params)
    np.testing.assert_allclose(draws["sigma"], median["sigma"], rtol=1e-6)
    quantiles = guide.quantiles(params, [0.25, 0.75])
    assert quantiles["mu"][0] < median["mu"] < quantiles["mu"][1]


def test_auto_guide_list_checks_its_parts():
    guide = AutoGuideList(_model)
    guide.append(AutoNormal(handlers.block(_model, expose=["mu"])))
    with pytest.raises(ValueError, match=r"\['sigma'\].*in no part"):
        handlers.seed(guide, rng_seed=0)(DATA)
    twice = AutoGuideList(_model)
    twice.append(AutoNormal(_model))
    twice.append(AutoDelta(handlers.block(_model, expose=["mu"])))
    with pytest.raises(ValueError, match="'mu' is in two parts"):
        handlers.seed(twice, rng_seed=0)(DATA)
    with pytest.raises(TypeError, match="must be an AutoGuide"):
        twice.append(_model)

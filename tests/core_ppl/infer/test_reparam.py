"""Reparametrisation strategies: the sites they draw, the law they keep, and
NUTS on reparametrised models against the exact or the non-centred posterior."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.diagnostics import effective_sample_size
from core_ppl.distributions import constraints
from core_ppl.distributions import transforms as T
from core_ppl.infer import MCMC, NUTS, SVI, Trace_ELBO
from core_ppl.infer.autoguide import AutoNormal
from core_ppl.infer.reparam import LocScaleReparam, Reparam, TransformReparam
from core_ppl.optim import Adam


def _trace(model, rng_seed=0):
    return handlers.trace(handlers.seed(model, rng_seed=rng_seed)).get_trace()


# --- LocScaleReparam: sites and law ----------------------------------------------


def test_reparam_module_exports_the_strategies():
    assert issubclass(LocScaleReparam, Reparam)
    assert issubclass(TransformReparam, Reparam)
    with pytest.raises(NotImplementedError):
        Reparam()("x", dist.Normal(0.0, 1.0), None)


@pytest.mark.parametrize("centered", [0.0, 0.3, 0.8])
def test_partially_centred_site_keeps_its_law(centered):
    loc, scale = 1.5, 3.0

    def model():
        with ppl.plate("draws", 20_000):
            ppl.sample("x", dist.Normal(loc, scale))

    strategy = LocScaleReparam(centered)
    tr = _trace(handlers.reparam(model, config={"x": strategy}))
    aux = tr["x_decentered"]["fn"].base_dist
    np.testing.assert_allclose(aux.loc, centered * loc, rtol=1e-6)
    np.testing.assert_allclose(aux.scale, scale**centered, rtol=1e-6)
    x = np.asarray(tr["x"]["value"], np.float64)
    n = x.size
    # Mean within 5 standard errors; sample variance with sd sqrt(2/(n-1)) var.
    assert abs(x.mean() - loc) < 5 * scale / np.sqrt(n)
    assert abs(x.var(ddof=1) - scale**2) < 5 * np.sqrt(2.0 / (n - 1)) * scale**2


def test_learnable_centredness_is_a_unit_interval_param_shaped_like_an_event():
    def model():
        with ppl.plate("rows", 2):
            ppl.sample("x", dist.Normal(jnp.zeros(3), 2.0).to_event(1))

    tr = _trace(handlers.reparam(model, config={"x": LocScaleReparam()}))
    assert list(tr) == ["rows", "x_centered", "x_decentered", "x"]
    site = tr["x_centered"]
    assert site["type"] == "param"
    assert site["kwargs"]["constraint"] is constraints.unit_interval
    np.testing.assert_allclose(site["value"], np.full(3, 0.5))
    aux = tr["x_decentered"]["fn"]
    assert aux.batch_shape == (2,) and aux.event_shape == (3,)
    np.testing.assert_allclose(aux.base_dist.base_dist.scale, np.sqrt(2.0), rtol=1e-6)
    expected = 2.0**0.5 * tr["x_decentered"]["value"]
    np.testing.assert_allclose(tr["x"]["value"], expected, rtol=1e-6)


def test_shape_params_are_passed_on():
    def model():
        ppl.sample("x", dist.StudentT(4.0, 1.0, 2.0))

    strategy = LocScaleReparam(0, shape_params=("df",))
    tr = _trace(handlers.reparam(model, config={"x": strategy}))
    aux = tr["x_decentered"]["fn"]
    assert isinstance(aux, dist.StudentT)
    assert (float(aux.df), float(aux.loc), float(aux.scale)) == (4.0, 0.0, 1.0)
    np.testing.assert_allclose(
        tr["x"]["value"], 1.0 + 2.0 * tr["x_decentered"]["value"], rtol=1e-6
    )


def test_loc_scale_reparam_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LocScaleReparam(1.5)
    with pytest.raises(TypeError, match="centered"):
        LocScaleReparam("half")
    with pytest.raises(TypeError, match="shape_params"):
        LocScaleReparam(0, shape_params="df")

    def positive():
        ppl.sample("s", dist.HalfNormal(1.0))

    with pytest.raises(ValueError, match="real line"):
        _trace(handlers.reparam(positive, config={"s": LocScaleReparam(0)}))

    def observed():
        ppl.sample("y", dist.Normal(0.0, 1.0), obs=1.0)

    with pytest.raises(ValueError, match="observed"):
        _trace(handlers.reparam(observed, config={"y": LocScaleReparam(0)}))


# --- TransformReparam -------------------------------------------------------------


def test_transform_reparam_samples_the_base_under_the_sites_plates():
    def model():
        with ppl.plate("J", 4):
            base = dist.Normal(0.0, 1.0)
            d = dist.TransformedDistribution(
                base, [T.AffineTransform(1.0, 2.0), T.ExpTransform()]
            )
            ppl.sample("x", d)

    tr = _trace(handlers.reparam(model, config={"x": TransformReparam()}))
    assert list(tr) == ["J", "x_base", "x"]
    base = tr["x_base"]
    assert base["fn"].batch_shape == (4,)
    assert [f.name for f in base["cond_indep_stack"]] == ["J"]
    assert tr["x"]["type"] == "deterministic"
    expected = np.exp(1.0 + 2.0 * np.asarray(base["value"]))
    np.testing.assert_allclose(tr["x"]["value"], expected, rtol=1e-6)


def test_transform_reparam_keeps_event_dims_added_by_to_event():
    def model():
        base = dist.Normal(jnp.zeros(3), 1.0)
        d = dist.TransformedDistribution(base, T.ExpTransform()).to_event(1)
        ppl.sample("x", d.expand((2,)))

    tr = _trace(handlers.reparam(model, config={"x": TransformReparam()}))
    fn = tr["x_base"]["fn"]
    assert fn.batch_shape == (2,) and fn.event_shape == (3,)
    assert tr["x"]["value"].shape == (2, 3)


def test_transform_reparam_needs_a_transformed_distribution():
    def model():
        ppl.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(TypeError, match="TransformedDistribution"):
        _trace(handlers.reparam(model, config={"x": TransformReparam()}))


# --- NUTS on reparametrised models --------------------------------------------------

# Eight schools (Rubin 1981; BDA3 section 5.5).
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def centred_schools(sigma, y=None):
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    tau = ppl.sample("tau", dist.HalfCauchy(5.0))
    with ppl.plate("J", len(sigma)):
        theta = ppl.sample("theta", dist.Normal(mu, tau))
        ppl.sample("obs", dist.Normal(theta, sigma), obs=y)


def noncentred_schools(sigma, y=None):
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    tau = ppl.sample("tau", dist.HalfCauchy(5.0))
    with ppl.plate("J", len(sigma)):
        eps = ppl.sample("eps", dist.Normal(0.0, 1.0))
        theta = ppl.deterministic("theta", mu + tau * eps)
        ppl.sample("obs", dist.Normal(theta, sigma), obs=y)


def _run(model, seed, *args, num_chains=4, num_warmup=500, num_samples=750):
    mcmc = MCMC(
        NUTS(model, target_accept_prob=0.9),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(seed), *args, extra_fields=("diverging",))
    return mcmc


def _assert_same_mean(a, b, z=5.0):
    """Draws grouped by chain from two samplers of one posterior: the means
    differ by less than z standard errors, each from its own ESS."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    var_a = a.var() / effective_sample_size(a)
    var_b = b.var() / effective_sample_size(b)
    assert abs(a.mean() - b.mean()) < z * np.sqrt(var_a + var_b)


@pytest.mark.slow
def test_centred_eight_schools_reparametrised_matches_the_noncentred_model():
    reparametrised = handlers.reparam(
        centred_schools, config={"theta": LocScaleReparam(0)}
    )
    mcmc = _run(reparametrised, 0, SIGMA, Y)
    assert int(np.sum(mcmc.get_extra_fields()["diverging"])) == 0
    samples = mcmc.get_samples(group_by_chain=True)
    assert set(samples) == {"mu", "tau", "theta_decentered", "theta"}
    assert samples["theta"].shape == (4, 750, 8)
    reference = _run(noncentred_schools, 1, SIGMA, Y).get_samples(group_by_chain=True)
    for name in ("mu", "tau"):
        _assert_same_mean(samples[name], reference[name])
    _assert_same_mean(samples["theta"][..., 0], reference["theta"][..., 0])


def test_svi_learns_the_centredness_of_eight_schools():
    # The schools' data are weak next to their noise, so the posterior of
    # theta is close to its prior given (mu, tau) and the ELBO prefers the
    # non-centred end (Gorinova, Moore and Hoffman 2020, section 5): starting
    # at 0.5 the learnt centredness must move well towards 0.
    model = handlers.reparam(centred_schools, config={"theta": LocScaleReparam()})
    svi = SVI(model, AutoNormal(model), Adam(0.05), Trace_ELBO())
    result = svi.run(jax.random.PRNGKey(0), 300, SIGMA, Y, progress_bar=False)
    centered = float(result.params["theta_centered"])
    assert 0.0 < centered < 0.25


def lognormal_latent(y):
    # z = log x ~ N(M0, S0^2) written as a transformed standard normal; data
    # y_i ~ N(log x, NOISE^2) make the posterior of log x normal and exact.
    transforms = [T.AffineTransform(M0, S0), T.ExpTransform()]
    x = ppl.sample("x", dist.TransformedDistribution(dist.Normal(0.0, 1.0), transforms))
    with ppl.plate("data", len(y)):
        ppl.sample("y", dist.Normal(jnp.log(x), NOISE), obs=y)


M0, S0, NOISE = 0.5, 0.8, 1.0
Y_LOG = np.array([1.2, 0.4, 2.0, 1.1, 0.9])


def test_transform_reparam_gives_the_exact_posterior():
    model = handlers.reparam(lognormal_latent, config={"x": TransformReparam()})
    mcmc = _run(model, 2, Y_LOG, num_chains=2, num_warmup=300, num_samples=1000)
    samples = mcmc.get_samples(group_by_chain=True)
    assert set(samples) == {"x", "x_base"}
    log_x = np.log(np.asarray(samples["x"], np.float64))
    expected = M0 + S0 * np.asarray(samples["x_base"], np.float64)
    np.testing.assert_allclose(log_x, expected, rtol=1e-5, atol=1e-6)
    # Conjugate normal-normal update of z = log x.
    precision = 1.0 / S0**2 + len(Y_LOG) / NOISE**2
    mean = (M0 / S0**2 + Y_LOG.sum() / NOISE**2) / precision
    sd = precision**-0.5
    ess = effective_sample_size(log_x)
    assert abs(log_x.mean() - mean) < 5 * sd / np.sqrt(ess)
    assert abs(log_x.std() - sd) < 5 * sd / np.sqrt(2 * ess)

"""Weibull, Logistic and Chi2: densities against scipy, moments, supports and
their bijections, cdf/icdf, reparameterised gradients, shapes, validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import digamma

import core_ppl.distributions as dist

from .checks import check_moments, score

# Float64: the scipy references need it.
pytestmark = pytest.mark.usefixtures("x64")


def _pos(rng, low=0.5, high=3.0):
    return rng.uniform(low, high, size=3)


# Each case: (id, distribution from a numpy Generator, scipy log density of
# (values, distribution)). Batch shape (3,); parameters keep the fourth moment
# finite, so the Monte Carlo error of the sample variance is well defined.
CASES = [
    (
        "Weibull",
        lambda r: dist.Weibull(_pos(r), _pos(r, 0.7, 4.0)),
        lambda x, d: st.weibull_min.logpdf(x, c=d.concentration, scale=d.scale),
    ),
    (
        "Logistic",
        lambda r: dist.Logistic(r.normal(size=3), _pos(r)),
        lambda x, d: st.logistic.logpdf(x, d.loc, d.scale),
    ),
    (
        "Chi2",
        lambda r: dist.Chi2(_pos(r, 0.5, 8.0)),
        lambda x, d: st.chi2.logpdf(x, d.df),
    ),
]
IDS = [c[0] for c in CASES]
NUM_DRAWS = 20000


@pytest.mark.parametrize("factory, scipy_logpdf", [c[1:] for c in CASES], ids=IDS)
def test_log_prob_moments_and_support(factory, scipy_logpdf):
    d = factory(np.random.default_rng(0))
    draws = d.sample(jax.random.PRNGKey(1), (NUM_DRAWS,))
    assert draws.shape == d.shape((NUM_DRAWS,)) and draws.dtype == jnp.float64
    log_prob, in_support, mean, variance = score(d, draws)
    assert log_prob.shape == (NUM_DRAWS,) + d.batch_shape
    assert bool(jnp.all(in_support))
    x = np.asarray(draws[:4])
    np.testing.assert_allclose(log_prob[:4], scipy_logpdf(x, d), rtol=1e-9, atol=1e-9)
    check_moments(np.asarray(draws), mean, variance)


def test_log_prob_against_scipy_far_in_the_tails():
    x = np.array([-1e4, -50.0, 0.0, 30.0, 1e4])
    np.testing.assert_allclose(
        dist.Logistic(0.5, 2.0).log_prob(x), st.logistic.logpdf(x, 0.5, 2.0), rtol=1e-12
    )
    y = np.array([1e-8, 1e-3, 5.0, 40.0])
    for k in (0.5, 1.0, 2.5):
        np.testing.assert_allclose(
            dist.Weibull(1.5, k).log_prob(y),
            st.weibull_min.logpdf(y, c=k, scale=1.5),
            rtol=1e-12,
        )
    np.testing.assert_allclose(
        dist.Chi2(3.0).log_prob(y), st.chi2.logpdf(y, 3.0), rtol=1e-12
    )


def test_density_is_zero_below_the_support():
    for d in (dist.Weibull(1.0, 2.0), dist.Chi2(2.0)):
        np.testing.assert_array_equal(d.log_prob(jnp.array([-1.0, -1e-9])), -np.inf)
    # Weibull with concentration 1 is Exponential(1 / scale), whose density
    # at 0 is the rate.
    np.testing.assert_allclose(dist.Weibull(2.0, 1.0).log_prob(0.0), math.log(0.5))


@pytest.mark.parametrize("factory", [c[1] for c in CASES], ids=IDS)
def test_biject_to_support_round_trip(factory):
    d = factory(np.random.default_rng(2))
    transform = dist.biject_to(d.support)
    unconstrained = jnp.linspace(-4.0, 4.0, 9)[:, None] * jnp.ones(3)
    constrained = transform(unconstrained)
    assert bool(jnp.all(d.support(constrained)))
    assert bool(jnp.all(jnp.isfinite(d.log_prob(constrained))))
    np.testing.assert_allclose(transform.inv(constrained), unconstrained, atol=1e-10)
    # Typical values too: multiples of the mean (inside every support here).
    typical = d.mean * jnp.array([[0.01], [1.0], [20.0]])
    np.testing.assert_allclose(transform(transform.inv(typical)), typical, rtol=1e-10)


@pytest.mark.parametrize(
    "make, scipy_dist",
    [
        (lambda: dist.Weibull(2.0, 1.7), st.weibull_min(c=1.7, scale=2.0)),
        (lambda: dist.Logistic(-1.0, 0.5), st.logistic(-1.0, 0.5)),
    ],
    ids=["Weibull", "Logistic"],
)
def test_cdf_and_icdf(make, scipy_dist):
    # Built inside the test, so under the float64 fixture.
    d = make()
    assert d.scale.dtype == jnp.float64
    q = np.array([0.01, 0.3, 0.5, 0.99])
    x = scipy_dist.ppf(q)
    np.testing.assert_allclose(d.cdf(x), q, rtol=1e-12)
    np.testing.assert_allclose(d.icdf(q), x, rtol=1e-12)


def _pathwise_derivatives(sample_fn, param):
    """Per-draw derivatives of ``sample_fn(param)`` (a vector of draws)."""
    return np.asarray(jax.jacfwd(sample_fn)(param))


@pytest.mark.parametrize(
    "sample_fn, param, expected",
    [
        # d/ds E[X] = Gamma(1 + 1/k) for X = s E^(1/k).
        (
            lambda s: dist.Weibull(s, 1.5).sample(jax.random.PRNGKey(4), (4000,)),
            2.0,
            math.gamma(1 + 1 / 1.5),
        ),
        # d/dk E[X] = -s Gamma(1 + 1/k) digamma(1 + 1/k) / k^2.
        (
            lambda k: dist.Weibull(2.0, k).sample(jax.random.PRNGKey(5), (4000,)),
            1.5,
            -2.0 * math.gamma(1 + 1 / 1.5) * float(digamma(1 + 1 / 1.5)) / 1.5**2,
        ),
        # E[X] = df, through the implicit reparameterisation of the gamma draw.
        (
            lambda df: dist.Chi2(df).sample(jax.random.PRNGKey(6), (4000,)),
            3.0,
            1.0,
        ),
        (
            lambda scale: dist.Logistic(0.0, scale).sample(
                jax.random.PRNGKey(7), (4000,)
            ),
            2.0,
            0.0,
        ),
    ],
    ids=["Weibull-scale", "Weibull-concentration", "Chi2-df", "Logistic-scale"],
)
def test_samples_are_reparameterised(sample_fn, param, expected):
    # The mean of the per-draw pathwise derivatives estimates d/dtheta E[X];
    # it must match the analytic derivative within 5 standard errors.
    derivatives = _pathwise_derivatives(sample_fn, param)
    standard_error = derivatives.std() / np.sqrt(derivatives.size)
    assert abs(derivatives.mean() - expected) < 5 * standard_error


# --- shapes, pytrees, validation ---------------------------------------------------


@pytest.mark.parametrize("factory", [c[1] for c in CASES], ids=IDS)
def test_expand_to_event_and_pytree(factory):
    d = factory(np.random.default_rng(3))
    value = d.mean
    expanded = d.expand((4, 3))
    draws = jax.eval_shape(lambda k: expanded.sample(k, (5,)), jax.random.PRNGKey(0))
    assert draws.shape == (5, 4, 3)
    np.testing.assert_allclose(
        expanded.log_prob(value), jnp.broadcast_to(d.log_prob(value), (4, 3))
    )
    assert expanded.mean.shape == expanded.variance.shape == (4, 3)
    independent = d.to_event(1)
    assert independent.batch_shape == () and independent.event_shape == (3,)
    np.testing.assert_allclose(independent.log_prob(value), d.log_prob(value).sum())
    np.testing.assert_allclose(
        jax.jit(lambda d: d.log_prob(value))(d), d.log_prob(value)
    )
    vmapped = jax.vmap(lambda d, x: d.log_prob(x))(d, value)
    np.testing.assert_allclose(vmapped, d.log_prob(value))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: dist.Weibull(-1.0, 1.0, validate_args=True), "Weibull.*'scale'"),
        (
            lambda: dist.Weibull(1.0, 0.0, validate_args=True),
            "Weibull.*'concentration'",
        ),
        (lambda: dist.Logistic(0.0, -2.0, validate_args=True), "Logistic.*'scale'"),
        (lambda: dist.Logistic(np.nan, 1.0, validate_args=True), "Logistic.*'loc'"),
        (lambda: dist.Chi2(np.array([1.0, -1.0]), validate_args=True), "Chi2.*'df'"),
        (
            lambda: dist.Weibull(np.ones(2), np.ones(3)),
            "Weibull.*scale with shape \\(2,\\)",
        ),
    ],
)
def test_bad_parameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_values_outside_support_raise_under_validate_args():
    with pytest.raises(ValueError, match="Weibull.*outside the support"):
        dist.Weibull(1.0, 1.0, validate_args=True).log_prob(-1.0)
    with pytest.raises(ValueError, match="Chi2.*outside the support"):
        dist.Chi2(2.0, validate_args=True).log_prob(-0.5)


def test_chi2_is_gamma_with_half_rate():
    d = dist.Chi2(np.array([1.0, 5.0]))
    np.testing.assert_allclose(d.concentration, [0.5, 2.5])
    np.testing.assert_allclose(d.rate, [0.5, 0.5])
    np.testing.assert_allclose(d.mean, [1.0, 5.0])
    np.testing.assert_allclose(d.variance, [2.0, 10.0])

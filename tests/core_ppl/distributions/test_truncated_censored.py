"""Truncated and censored distributions: densities, cdfs and sampling moments
against scipy (base densities renormalised with scipy's own cdf/sf, moments
by numerical integration), far-tail truncation, reparameterised gradients,
the factory and validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate as integrate
import scipy.stats as st

import core_ppl.distributions as dist

from .checks import check_moments


@jax.jit
def _draws(d, key):
    return d.sample(key, (20000,))


@jax.jit
def _log_prob_and_cdf(d, x):
    return d.log_prob(x), d.cdf(x)


pytestmark = pytest.mark.usefixtures("x64")

# (id, core_ppl base, matching frozen scipy distribution)
BASES = [
    ("Normal", lambda: dist.Normal(0.5, 2.0), st.norm(0.5, 2.0)),
    ("Cauchy", lambda: dist.Cauchy(0.5, 2.0), st.cauchy(0.5, 2.0)),
    ("StudentT", lambda: dist.StudentT(3.0, 0.5, 2.0), st.t(3.0, 0.5, 2.0)),
    ("Laplace", lambda: dist.Laplace(0.5, 2.0), st.laplace(0.5, 2.0)),
    ("Logistic", lambda: dist.Logistic(0.5, 2.0), st.logistic(0.5, 2.0)),
    ("SoftLaplace", lambda: dist.SoftLaplace(0.5, 2.0), st.hypsecant(0.5, 2.0)),
]
BOUNDS = [(-1.0, None), (None, 2.5), (-1.0, 2.5), (4.0, 9.0)]


def _mass(ref, low, high):
    low = -np.inf if low is None else low
    high = np.inf if high is None else high
    # sf differences right of the centre, cdf differences left of it.
    if low > ref.median():
        return ref.sf(low) - ref.sf(high)
    return ref.cdf(high) - ref.cdf(low)


@pytest.mark.parametrize("low, high", BOUNDS)
@pytest.mark.parametrize("make, ref", [b[1:] for b in BASES], ids=[b[0] for b in BASES])
def test_log_prob_and_cdf_against_scipy(make, ref, low, high):
    d = dist.TruncatedDistribution(make(), low=low, high=high)
    lo = -10.0 if low is None else low
    hi = 20.0 if high is None else high
    x = np.linspace(lo, hi, 7)[1:-1]
    mass = _mass(ref, low, high)
    outside = (lo - 1.0) if low is not None else (hi + 1.0)
    log_prob, cdf = _log_prob_and_cdf(d, jnp.append(x, outside))
    expected = ref.logpdf(x) - np.log(mass)
    np.testing.assert_allclose(log_prob[:-1], expected, rtol=1e-8)
    assert log_prob[-1] == -np.inf
    expected_cdf = (ref.cdf(x) - ref.cdf(-np.inf if low is None else low)) / mass
    np.testing.assert_allclose(cdf[:-1], expected_cdf, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("make, ref", [b[1:] for b in BASES], ids=[b[0] for b in BASES])
def test_two_sided_sampling_moments(make, ref):
    low, high = -1.0, 2.5
    d = dist.TwoSidedTruncatedDistribution(make(), low, high)
    draws = np.asarray(_draws(d, jax.random.PRNGKey(0)))
    assert draws.min() >= low and draws.max() <= high
    mass = _mass(ref, low, high)
    moment = [
        integrate.quad(lambda x, k=k: x**k * ref.pdf(x) / mass, low, high)[0]
        for k in (1, 2)
    ]
    check_moments(draws, np.asarray(moment[0]), np.asarray(moment[1] - moment[0] ** 2))


@pytest.mark.parametrize(
    "make, ref", [b[1:3] for b in BASES[:2]], ids=BASES[0][:1] + BASES[1][:1]
)
@pytest.mark.parametrize("low, high", [(-1.0, 2.5), (4.0, 9.0)])
def test_closed_form_moments(make, ref, low, high):
    d = dist.TruncatedDistribution(make(), low=low, high=high)
    mean, variance = jax.jit(lambda d: (d.mean, d.variance))(d)
    mass = _mass(ref, low, high)
    m1 = integrate.quad(lambda x: x * ref.pdf(x) / mass, low, high)[0]
    m2 = integrate.quad(lambda x: x**2 * ref.pdf(x) / mass, low, high)[0]
    np.testing.assert_allclose(mean, m1, rtol=1e-7)
    np.testing.assert_allclose(variance, m2 - m1**2, rtol=1e-7)


def test_one_sided_cauchy_moments_diverge():
    d = dist.TruncatedCauchy(0.0, 1.0, low=1.0)
    assert d.mean == np.inf and d.variance == np.inf
    assert dist.TruncatedCauchy(0.0, 1.0, high=1.0).mean == -np.inf
    with pytest.raises(NotImplementedError, match="Normal and Cauchy"):
        dist.TruncatedDistribution(dist.Laplace(0.0, 1.0), low=0.0).mean


def test_far_right_tail_is_accurate():
    # P(N(0, 1) > 12) ~ 1.8e-33: naive 1 - Phi(12) is 0 in float64.
    d = dist.TruncatedDistribution(dist.Normal(0.0, 1.0), low=12.0)
    x = np.array([12.0, 12.1, 13.0])
    expected = st.truncnorm(12.0, np.inf).logpdf(x)
    np.testing.assert_allclose(d.log_prob(x), expected, rtol=1e-9)
    draws = _draws(d, jax.random.PRNGKey(1))
    assert bool(jnp.all(jnp.isfinite(draws))) and float(draws.min()) >= 12.0
    # The excess over 12 against the exact truncated normal's moments.
    ref = st.truncnorm(12.0, np.inf)
    check_moments(np.asarray(draws), np.asarray(ref.mean()), np.asarray(ref.var()))


def test_student_t_quantile_matches_scipy():
    from core_ppl.distributions.truncated import _student_icdf

    q = np.array([1e-10, 0.01, 0.3, 0.5, 0.8, 0.999])
    z = jax.jit(_student_icdf)(2.5, q)
    np.testing.assert_allclose(z, st.t(2.5).ppf(q), rtol=1e-8)


def test_samples_are_reparameterised():
    def first_draw(loc):
        base = dist.Normal(loc, 1.5)
        d = dist.TruncatedDistribution(base, low=-1.0, high=2.0)
        return d.sample(jax.random.PRNGKey(3))

    grad = jax.jit(jax.grad(first_draw))(0.3)
    eps = 1e-6
    draw = jax.jit(first_draw)
    fd = (draw(0.3 + eps) - draw(0.3 - eps)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    grad_lp = jax.grad(
        lambda low: dist.TruncatedDistribution(
            dist.Logistic(0.0, 1.0), low=low
        ).log_prob(1.0)
    )(0.2)
    assert np.isfinite(grad_lp) and grad_lp > 0


def test_factory_shapes_and_validation():
    d = dist.TruncatedDistribution(
        dist.Normal(jnp.zeros(3), 1.0), low=jnp.zeros((2, 1))
    )
    assert type(d) is dist.LeftTruncatedDistribution and d.batch_shape == (2, 3)
    shape = jax.eval_shape(lambda k: d.sample(k, (4,)), jax.random.PRNGKey(0)).shape
    assert shape == (4, 2, 3)
    assert type(dist.TruncatedDistribution(dist.Normal(), high=1.0)).__name__ == (
        "RightTruncatedDistribution"
    )
    assert isinstance(dist.TruncatedCauchy(0.0, 1.0), dist.Cauchy)
    with pytest.raises(ValueError, match="at least one"):
        dist.TruncatedDistribution(dist.Normal())
    with pytest.raises(TypeError, match="base_dist must be one of"):
        dist.TruncatedDistribution(dist.Gamma(1.0, 1.0), low=1.0)
    with pytest.raises(ValueError, match="'high'"):
        dist.TwoSidedTruncatedDistribution(dist.Normal(), 2.0, 1.0, validate_args=True)
    # Through jit as a pytree, against scipy's truncated normal.
    log_prob, _ = _log_prob_and_cdf(d, jnp.ones((2, 3)))
    expected = st.truncnorm(0.0, np.inf).logpdf(1.0)
    np.testing.assert_allclose(log_prob, np.full((2, 3), expected), rtol=1e-9)


# --- censored -------------------------------------------------------------------


def test_censored_log_prob_against_scipy():
    t = np.array([2.0, 4.0, 6.0, 0.5])
    censored = np.array([0, 1, 0, 1])
    base = dist.Weibull(3.0, 1.5)  # scale, concentration
    ref = st.weibull_min(1.5, scale=3.0)
    right = dist.RightCensoredDistribution(base, censored)
    expected = np.where(censored, ref.logsf(t), ref.logpdf(t))
    np.testing.assert_allclose(right.log_prob(t), expected, rtol=1e-9)
    left = dist.LeftCensoredDistribution(dist.Normal(1.0, 2.0), censored)
    expected = np.where(censored, st.norm(1.0, 2.0).logcdf(t), st.norm(1, 2).logpdf(t))
    np.testing.assert_allclose(left.log_prob(t), expected, rtol=1e-9)
    assert right.batch_shape == (4,) and right.support is base.support


def test_censored_transformed_base_uses_its_cdf():
    # exp of a Normal, right-censored: the survival function of a lognormal.
    base = dist.TransformedDistribution(
        dist.Normal(0.2, 0.7), dist.transforms.ExpTransform()
    )
    t = np.array([0.5, 1.5, 3.0])
    censored = np.array([1, 0, 1])
    ref = st.lognorm(0.7, scale=np.exp(0.2))
    d = dist.RightCensoredDistribution(base, censored)
    expected = np.where(censored, ref.logsf(t), ref.logpdf(t))
    np.testing.assert_allclose(d.log_prob(t), expected, rtol=1e-9)


def test_censored_gradient_and_extremes():
    # Left-censoring below all of an Exponential's mass: log F floors, stays finite.
    d = dist.LeftCensoredDistribution(dist.Exponential(1.0), True)
    assert np.isfinite(d.log_prob(0.0))
    grad = jax.grad(
        lambda rate: dist.RightCensoredDistribution(
            dist.Exponential(rate), True
        ).log_prob(2.0)
    )(0.5)
    np.testing.assert_allclose(grad, -2.0)  # d/drate of -rate * t


def test_censored_sampling_is_the_base():
    d = dist.RightCensoredDistribution(dist.Exponential(2.0), jnp.array([0, 1, 1]))
    draws = np.asarray(d.sample(jax.random.PRNGKey(0), (20000,)))
    assert draws.shape == (20000, 3)
    check_moments(draws, np.full(3, 0.5), np.full(3, 0.25))


def test_censored_validation():
    with pytest.raises(TypeError, match="no 'cdf' method"):
        dist.RightCensoredDistribution(dist.Dirichlet(jnp.ones(3)))
    with pytest.raises(TypeError, match="must be a Distribution"):
        dist.LeftCensoredDistribution(1.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        dist.LeftCensoredDistribution(dist.Normal(jnp.zeros(3)), jnp.zeros(2))
    assert math.isfinite(
        float(dist.LeftCensoredDistribution(dist.Normal()).log_prob(0.0))
    )

"""TransformedDistribution: change of variables against scipy, shapes, pytrees."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.distributions import constraints
from core_ppl.distributions import transforms as T
from core_ppl.infer.util import potential_energy

pytestmark = pytest.mark.usefixtures("x64")

LOC = np.array([-0.5, 0.0, 1.2])
SCALE = np.array([0.3, 1.0, 2.5])


def _lognormal_as_transformed():
    return dist.TransformedDistribution(dist.Normal(LOC, SCALE), T.ExpTransform())


# --- densities against scipy ---------------------------------------------------


def test_exp_of_normal_matches_scipy_lognormal_and_lognormal():
    d = _lognormal_as_transformed()
    y = np.array([[0.2, 1.0, 7.5], [3.0, 0.05, 1.1]])
    expected = st.lognorm.logpdf(y, s=SCALE, scale=np.exp(LOC))
    np.testing.assert_allclose(d.log_prob(y), expected, rtol=1e-10)
    np.testing.assert_allclose(
        d.log_prob(y), dist.LogNormal(LOC, SCALE).log_prob(y), rtol=1e-10
    )
    assert d.batch_shape == (3,) and d.event_shape == ()
    assert d.support is constraints.positive


@pytest.mark.parametrize("scale", [2.0, -0.5])
def test_affine_normal_matches_scipy_normal(scale):
    loc = np.array([1.0, -2.0])
    affine = T.AffineTransform(loc, scale)
    d = dist.TransformedDistribution(dist.Normal(0.0, 1.0), affine)
    y = np.array([[0.3, -1.0], [4.0, 2.0]])
    expected = st.norm.logpdf(y, loc=loc, scale=abs(scale))
    np.testing.assert_allclose(d.log_prob(y), expected, rtol=1e-10)
    # The transform's parameters broadcast the batch: the scalar base is
    # expanded so the two elements are independent draws, not one shared one.
    assert d.batch_shape == (2,)
    draws = d.sample(jax.random.PRNGKey(0), (4,))
    assert draws.shape == (4, 2)
    z = (np.asarray(draws) - loc) / scale
    assert not np.allclose(z[:, 0], z[:, 1])


def test_composed_transforms_and_nested_distributions_agree():
    # log(Y) ~ N(1 + 2 * 0, 2^2) for Y = exp(1 + 2 X), X ~ N(0, 1).
    parts = [T.AffineTransform(1.0, 2.0), T.ExpTransform()]
    flat = dist.TransformedDistribution(dist.Normal(0.0, 1.0), parts)
    inner = dist.TransformedDistribution(dist.Normal(0.0, 1.0), parts[0])
    nested = dist.TransformedDistribution(inner, parts[1])
    assert len(nested.transforms) == 2
    assert isinstance(nested.base_dist, dist.Normal)
    y = np.array([0.1, 1.0, 30.0])
    expected = st.lognorm.logpdf(y, s=2.0, scale=np.exp(1.0))
    np.testing.assert_allclose(flat.log_prob(y), expected, rtol=1e-10)
    np.testing.assert_allclose(nested.log_prob(y), expected, rtol=1e-10)


def test_sample_moments_match_lognormal():
    d = _lognormal_as_transformed()
    n = 20_000
    draws = np.asarray(d.sample(jax.random.PRNGKey(1), (n,)))
    assert draws.shape == (n, 3) and np.all(draws > 0)
    # log of the draws is N(LOC, SCALE^2): mean within 5 standard errors.
    log_draws = np.log(draws)
    se = SCALE / np.sqrt(n)
    assert np.all(np.abs(log_draws.mean(0) - LOC) < 5 * se)
    # Variance of a normal sample variance is 2 sigma^4 / (n - 1).
    var_se = np.sqrt(2.0 / (n - 1)) * SCALE**2
    assert np.all(np.abs(log_draws.var(0, ddof=1) - SCALE**2) < 5 * var_se)


# --- shapes and event dims ------------------------------------------------------


def test_vector_transform_over_scalar_batch_becomes_an_event():
    base = dist.Normal(np.zeros((2, 3)), 1.0)
    d = dist.TransformedDistribution(base, T.StickBreakingTransform())
    assert d.batch_shape == (2,) and d.event_shape == (4,)
    assert isinstance(d.base_dist, dist.Independent)
    assert repr(d.support) == "simplex"
    y = d.sample(jax.random.PRNGKey(2))
    np.testing.assert_allclose(jnp.sum(y, -1), 1.0, rtol=1e-12)
    # Change of variables by hand: base density minus the log-Jacobian.
    t = T.StickBreakingTransform()
    x = t.inv(y)
    expected = base.log_prob(x).sum(-1) - t.log_abs_det_jacobian(x, y)
    np.testing.assert_allclose(d.log_prob(y), expected, rtol=1e-10)
    assert d.log_prob(y).shape == (2,)


def test_scalar_transform_over_vector_event_sums_the_jacobian():
    base = dist.Normal(LOC, SCALE).to_event(1)
    d = dist.TransformedDistribution(base, T.ExpTransform())
    assert d.batch_shape == () and d.event_shape == (3,)
    assert repr(d.support) == "independent(positive, 1)"
    y = np.array([[0.5, 1.0, 2.0], [1.5, 0.2, 9.0]])
    expected = st.lognorm.logpdf(y, s=SCALE, scale=np.exp(LOC)).sum(-1)
    np.testing.assert_allclose(d.log_prob(y), expected, rtol=1e-10)


def test_expand_and_to_event():
    d = _lognormal_as_transformed().expand((4, 3)).to_event(1)
    assert d.batch_shape == (4,) and d.event_shape == (3,)
    y = np.full((4, 3), 2.0)
    expected = st.lognorm.logpdf(y, s=SCALE, scale=np.exp(LOC)).sum(-1)
    np.testing.assert_allclose(d.log_prob(y), expected, rtol=1e-10)


# --- cdf and icdf of monotone transforms ---------------------------------------


def test_cdf_and_icdf_of_an_increasing_transform_match_scipy():
    d = _lognormal_as_transformed()
    y = np.array([[0.2, 1.0, 7.5], [3.0, 0.05, 1.1]])
    expected = st.lognorm.cdf(y, s=SCALE, scale=np.exp(LOC))
    np.testing.assert_allclose(d.cdf(y), expected, rtol=1e-10)
    q = np.array([0.05, 0.5, 0.9])
    expected = st.lognorm.ppf(q, s=SCALE, scale=np.exp(LOC))
    np.testing.assert_allclose(d.icdf(q), expected, rtol=1e-8)


@pytest.mark.parametrize("scale", [-0.5, np.array([2.0, -1.0, -3.0])])
def test_cdf_and_icdf_of_a_decreasing_transform_match_scipy(scale):
    # y = 1 + scale * x with x ~ Gamma(2, 1): where scale < 0, P(Y <= y) is
    # P(X >= (y - 1) / scale).
    d = dist.TransformedDistribution(
        dist.Gamma(2.0, 1.0).expand((3,)), T.AffineTransform(1.0, scale)
    )
    x = np.array([0.5, 1.7, 4.0])
    y = 1.0 + scale * x
    gamma = st.gamma(2.0)
    expected = np.where(np.asarray(scale) > 0, gamma.cdf(x), gamma.sf(x))
    np.testing.assert_allclose(d.cdf(y), expected, rtol=1e-10)
    np.testing.assert_allclose(d.icdf(d.cdf(y)), y, rtol=1e-7)


def test_cdf_of_composed_transforms_and_its_gradient():
    # exp(-x) for x ~ Normal: decreasing, so P(Y <= y) = P(X >= -log y).
    d = dist.TransformedDistribution(
        dist.Normal(0.3, 1.4), [T.AffineTransform(0.0, -1.0), T.ExpTransform()]
    )
    np.testing.assert_allclose(
        d.cdf(0.7), st.norm(0.3, 1.4).sf(-np.log(0.7)), rtol=1e-10
    )
    density = jax.grad(d.cdf)(0.7)
    np.testing.assert_allclose(density, jnp.exp(d.log_prob(0.7)), rtol=1e-8)


def test_cdf_needs_a_scalar_distribution_and_monotone_transforms():
    vector = dist.TransformedDistribution(
        dist.Normal(LOC, SCALE).to_event(1), T.ExpTransform()
    )
    with pytest.raises(NotImplementedError, match="event_shape"):
        vector.cdf(np.ones(3))
    with pytest.raises(NotImplementedError, match="event_shape"):
        vector.icdf(0.5)
    simplex = dist.TransformedDistribution(
        dist.Normal(0.0, 1.0).expand((2,)), T.StickBreakingTransform()
    )
    with pytest.raises(NotImplementedError):
        simplex.cdf(np.array([0.2, 0.3, 0.5]))


def test_mean_and_variance_are_not_implemented():
    d = _lognormal_as_transformed()
    with pytest.raises(NotImplementedError):
        _ = d.mean
    with pytest.raises(NotImplementedError):
        _ = d.variance


def test_has_rsample_follows_the_base():
    assert _lognormal_as_transformed().has_rsample
    d = dist.TransformedDistribution(dist.Poisson(2.0), T.AffineTransform(0.0, 2.0))
    assert not d.has_rsample


# --- pytrees and transformations ------------------------------------------------


def test_jit_and_vmap_through_traced_transform_parameters():
    def log_prob(loc, value):
        d = dist.TransformedDistribution(
            dist.Normal(0.0, 1.0), T.AffineTransform(loc, 2.0)
        )
        return d.log_prob(value)

    locs = jnp.array([0.0, 1.0, 3.0])
    got = jax.jit(jax.vmap(log_prob, in_axes=(0, None)))(locs, 0.5)
    np.testing.assert_allclose(got, st.norm.logpdf(0.5, loc=locs, scale=2.0))
    # The distribution itself crosses jit, its transform arrays as leaves.
    d = dist.TransformedDistribution(
        dist.Normal(0.0, 1.0), T.AffineTransform(jnp.array(1.0), jnp.array(3.0))
    )
    leaves = jax.tree_util.tree_leaves(d)
    assert len(leaves) == 4  # the base's loc and scale, the transform's two
    got = jax.jit(lambda d, y: d.log_prob(y))(d, 2.0)
    np.testing.assert_allclose(got, st.norm.logpdf(2.0, loc=1.0, scale=3.0))
    grad = jax.grad(lambda d: d.log_prob(2.0))(d)
    assert isinstance(grad, dist.TransformedDistribution)
    np.testing.assert_allclose(grad.transforms[0].loc, (2.0 - 1.0) / 9.0)


# --- bad input -----------------------------------------------------------------


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="transforms"):
        dist.TransformedDistribution(dist.Normal(0.0, 1.0), "exp")
    with pytest.raises(TypeError, match="transforms"):
        dist.TransformedDistribution(dist.Normal(0.0, 1.0), [])
    with pytest.raises(TypeError, match="base_distribution"):
        dist.TransformedDistribution(np.zeros(3), T.ExpTransform())
    with pytest.raises(ValueError, match="event dims"):
        dist.TransformedDistribution(dist.Normal(0.0, 1.0), T.StickBreakingTransform())


def test_validate_args_checks_the_support():
    d = dist.TransformedDistribution(
        dist.Normal(0.0, 1.0), T.ExpTransform(), validate_args=True
    )
    with pytest.raises(ValueError, match="support"):
        d.log_prob(-1.0)


# --- as a model site ------------------------------------------------------------


def test_potential_energy_of_a_transformed_site_uses_its_support():
    def model():
        ppl.sample("x", _lognormal_as_transformed())

    # Unconstrained u = log x through biject_to(positive): the potential is
    # -log p(x) - log|dx/du| = -log p(e^u) - u.
    u = np.array([0.3, -1.0, 2.0])
    got = potential_energy(model, (), {}, {"x": u})
    log_p = st.lognorm.logpdf(np.exp(u), s=SCALE, scale=np.exp(LOC))
    np.testing.assert_allclose(got, -(log_p + u).sum(), rtol=1e-10)

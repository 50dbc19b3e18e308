"""Issue 19 regressions: log densities at the edges of their support, a
Dirichlet over one category, and LKJCholesky's two samplers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import core_ppl.distributions as dist

pytestmark = pytest.mark.usefixtures("x64")

# --- gradients at the edges of the support ------------------------------------------

# (id, distribution, edge value, d/dx log density there by hand). Every case has
# a finite density at the edge, so the value gradient must be finite too.
EDGE_CASES = [
    ("beta-8-1-at-1", lambda: dist.Beta(8.0, 1.0), 1.0, 7.0),
    ("beta-1-8-at-0", lambda: dist.Beta(1.0, 8.0), 0.0, -7.0),
    ("beta-1-1-at-0", lambda: dist.Beta(1.0, 1.0), 0.0, 0.0),
    ("beta-1-1-at-1", lambda: dist.Beta(1.0, 1.0), 1.0, 0.0),
    ("uniform-low", lambda: dist.Uniform(0.0, 2.0), 0.0, 0.0),
    ("uniform-high", lambda: dist.Uniform(0.0, 2.0), 2.0, 0.0),
    ("exponential-0", lambda: dist.Exponential(2.0), 0.0, -2.0),
    ("gamma-1-at-0", lambda: dist.Gamma(1.0, 2.0), 0.0, -2.0),
    ("chi2-2-at-0", lambda: dist.Chi2(2.0), 0.0, -0.5),
    ("weibull-k1-at-0", lambda: dist.Weibull(1.5, 1.0), 0.0, -1.0 / 1.5),
    ("halfnormal-0", lambda: dist.HalfNormal(2.0), 0.0, 0.0),
    ("halfcauchy-0", lambda: dist.HalfCauchy(2.0), 0.0, 0.0),
    ("truncnormal-low", lambda: dist.TruncatedNormal(0.0, 1.0, -1.0, 2.0), -1.0, 1.0),
    ("truncnormal-high", lambda: dist.TruncatedNormal(0.0, 1.0, -1.0, 2.0), 2.0, -2.0),
    ("truncnormal-0", lambda: dist.TruncatedNormal(0.5, 1.0, low=0.0), 0.0, 0.5),
]


@pytest.mark.parametrize(
    "factory, edge, expected",
    [c[1:] for c in EDGE_CASES],
    ids=[c[0] for c in EDGE_CASES],
)
def test_value_gradient_is_finite_at_support_edges(factory, edge, expected):
    d = factory()
    assert np.isfinite(d.log_prob(edge))
    grad = jax.grad(lambda x: d.log_prob(x))(jnp.asarray(edge))
    np.testing.assert_allclose(grad, expected, rtol=1e-10, atol=1e-12)


def test_beta_edge_value_and_concentration_gradient():
    # log density of Beta(a, 1) at 1 is log(a): value log 8, d/da = 1/a.
    # (rtol: jax's betaln is accurate to ~1e-7 relative.)
    np.testing.assert_allclose(
        dist.Beta(8.0, 1.0).log_prob(1.0), np.log(8.0), rtol=1e-6
    )
    grad = jax.grad(lambda a: dist.Beta(a, 1.0).log_prob(1.0))(8.0)
    np.testing.assert_allclose(grad, 1.0 / 8.0, rtol=1e-5)  # digamma of betaln


def test_dirichlet_value_gradient_at_the_boundary():
    d = dist.Dirichlet(jnp.array([1.0, 2.0, 3.0]))
    value = jnp.array([0.0, 0.4, 0.6])
    grad = jax.grad(d.log_prob)(value)
    # (c_i - 1) / x_i, with 0 for the coordinate whose exponent is 0.
    np.testing.assert_allclose(grad, [0.0, 1.0 / 0.4, 2.0 / 0.6], rtol=1e-12)


# --- Dirichlet over one category ----------------------------------------------


def test_dirichlet_with_one_category_is_a_point_mass_at_one():
    d = dist.Dirichlet(jnp.array([[2.0], [0.5]]))
    assert d.batch_shape == (2,) and d.event_shape == (1,)
    draws = d.sample(jax.random.PRNGKey(0), (3,))
    np.testing.assert_array_equal(draws, np.ones((3, 2, 1)))
    np.testing.assert_allclose(d.log_prob(jnp.ones((2, 1))), [0.0, 0.0], atol=1e-12)
    np.testing.assert_array_equal(d.mean, np.ones((2, 1)))
    np.testing.assert_array_equal(d.variance, np.zeros((2, 1)))


def test_dirichlet_with_no_category_is_refused():
    with pytest.raises(ValueError, match="size >= 1"):
        dist.Dirichlet(jnp.zeros((3, 0)))


# --- LKJCholesky: onion and C-vine --------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["onion", "cvine"])
def test_lkj_cholesky_sample_methods_have_the_lkj_marginals(method):
    # Under LKJ(eta) in dimension d every correlation r_ij has (r + 1) / 2 ~
    # Beta(b, b), b = eta - 1 + d / 2 (Lewandowski et al. 2009, section 3.2).
    d, eta, n = 3, 1.5, 2000
    lkj = dist.LKJCholesky(d, eta, sample_method=method)
    chol = lkj.sample(jax.random.PRNGKey(3), (n,))
    assert chol.shape == (n, d, d)
    assert bool(jnp.all(dist.constraints.corr_cholesky(chol)))
    corr = np.asarray(chol @ jnp.swapaxes(chol, -1, -2))
    b = eta - 1.0 + d / 2.0
    ref = stats.beta(b, b)
    for i, j in [(1, 0), (2, 1), (2, 0)]:
        # KS at level 1e-4 per entry: a failure is a wrong law, not bad luck.
        assert stats.kstest((corr[:, i, j] + 1.0) / 2.0, ref.cdf).pvalue > 1e-4


def test_lkj_accepts_cvine_and_rejects_unknown_methods():
    corr = dist.LKJ(3, 2.0, sample_method="cvine").sample(jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.diagonal(corr), 1.0, rtol=1e-12)
    np.testing.assert_allclose(corr, corr.T, rtol=1e-12)
    with pytest.raises(ValueError, match="'onion' or 'cvine'"):
        dist.LKJCholesky(3, 1.0, sample_method="bogus")

"""Distributions: densities against scipy, moments, shapes, validation, pytrees."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import roots_legendre

import core_ppl.distributions as dist
from core_ppl.distributions import constraints

from .checks import check_moments, score

# Float64 throughout: scipy comparisons need it, and one dtype means each
# XLA program compiles once for the whole module. test_float32_default checks
# the float32 path users get by default.
pytestmark = pytest.mark.usefixtures("x64")

# --- log_prob against scipy.stats, sample moments, shapes --------------------------

# Each case: (id, factory of a distribution from a numpy Generator, scipy log
# density of (values, distribution) or None, whether mean and variance are finite).
# Parameters are random with batch shape (3,); they keep the fourth moment
# finite, so the Monte Carlo error of the sample variance is well defined.


def _pos(rng, low=0.5, high=3.0):
    return rng.uniform(low, high, size=3)


def _trunc_scipy(x, d, low, high):
    loc, scale = np.asarray(d.loc), np.asarray(d.scale)
    a = -np.inf if low is None else (np.asarray(d.low) - loc) / scale
    b = np.inf if high is None else (np.asarray(d.high) - loc) / scale
    return st.truncnorm.logpdf(x, a, b, loc=loc, scale=scale)


def _random_spd(rng, k):
    a = rng.normal(size=(k, k))
    return a @ a.T + k * np.eye(k)


def _mvn_case(param):
    def factory(rng):
        cov = np.stack([_random_spd(rng, 3) for _ in range(2)])
        given = {
            "covariance_matrix": cov,
            "precision_matrix": np.linalg.inv(cov),
            "scale_tril": np.linalg.cholesky(cov),
        }[param]
        return dist.MultivariateNormal(rng.normal(size=(2, 3)), **{param: given})

    def scipy_logpdf(x, d):
        loc, cov = np.asarray(d.loc), np.asarray(d.covariance_matrix)
        per_batch = [
            st.multivariate_normal.logpdf(x[:, j], loc[j], cov[j]) for j in range(2)
        ]
        return np.stack(per_batch, axis=-1)

    return (f"MultivariateNormal-{param}", factory, scipy_logpdf, True)


def _dirichlet_logpdf(x, d):
    return [st.dirichlet.logpdf(row, np.asarray(d.concentration)) for row in x]


def _categorical_logpmf(x, d):
    return np.log(np.asarray(d.probs)[np.arange(x.shape[-1]), x])


CASES = [
    (
        "Normal",
        lambda r: dist.Normal(r.normal(size=3), _pos(r)),
        lambda x, d: st.norm.logpdf(x, d.loc, d.scale),
        True,
    ),
    (
        "HalfNormal",
        lambda r: dist.HalfNormal(_pos(r)),
        lambda x, d: st.halfnorm.logpdf(x, scale=d.scale),
        True,
    ),
    (
        "Cauchy",
        lambda r: dist.Cauchy(r.normal(size=3), _pos(r)),
        lambda x, d: st.cauchy.logpdf(x, d.loc, d.scale),
        False,
    ),
    (
        "HalfCauchy",
        lambda r: dist.HalfCauchy(_pos(r)),
        lambda x, d: st.halfcauchy.logpdf(x, scale=d.scale),
        False,
    ),
    (
        "StudentT",
        lambda r: dist.StudentT(_pos(r, 6.0, 12.0), r.normal(size=3), _pos(r)),
        lambda x, d: st.t.logpdf(x, d.df, d.loc, d.scale),
        True,
    ),
    (
        "Laplace",
        lambda r: dist.Laplace(r.normal(size=3), _pos(r)),
        lambda x, d: st.laplace.logpdf(x, d.loc, d.scale),
        True,
    ),
    (
        "LogNormal",
        lambda r: dist.LogNormal(r.normal(size=3), _pos(r, 0.2, 0.6)),
        lambda x, d: st.lognorm.logpdf(x, s=d.scale, scale=np.exp(d.loc)),
        True,
    ),
    (
        "Exponential",
        lambda r: dist.Exponential(_pos(r)),
        lambda x, d: st.expon.logpdf(x, scale=1 / np.asarray(d.rate)),
        True,
    ),
    (
        "Gamma",
        lambda r: dist.Gamma(_pos(r, 0.3, 4.0), _pos(r)),
        lambda x, d: st.gamma.logpdf(x, d.concentration, scale=1 / np.asarray(d.rate)),
        True,
    ),
    (
        "InverseGamma",
        lambda r: dist.InverseGamma(_pos(r, 5.0, 9.0), _pos(r)),
        lambda x, d: st.invgamma.logpdf(x, d.concentration, scale=d.rate),
        True,
    ),
    (
        "Beta",
        lambda r: dist.Beta(_pos(r, 0.3, 4.0), _pos(r, 0.3, 4.0)),
        lambda x, d: st.beta.logpdf(x, d.concentration1, d.concentration0),
        True,
    ),
    (
        "Uniform",
        lambda r: dist.Uniform(-_pos(r), _pos(r)),
        lambda x, d: st.uniform.logpdf(
            x, d.low, np.asarray(d.high) - np.asarray(d.low)
        ),
        True,
    ),
    (
        "Dirichlet",
        lambda r: dist.Dirichlet(r.uniform(0.5, 3.0, size=3)),
        _dirichlet_logpdf,
        True,
    ),
    _mvn_case("covariance_matrix"),
    _mvn_case("precision_matrix"),
    _mvn_case("scale_tril"),
    (
        "TruncatedNormal-both",
        lambda r: dist.TruncatedNormal(r.normal(size=3), _pos(r), -1.0, 1.5),
        lambda x, d: _trunc_scipy(x, d, -1.0, 1.5),
        True,
    ),
    (
        "TruncatedNormal-right-tail",
        lambda r: dist.TruncatedNormal(0.0, _pos(r, 0.2, 0.5), 2.0, 3.0),
        lambda x, d: _trunc_scipy(x, d, 2.0, 3.0),
        True,
    ),
    (
        "TruncatedNormal-low",
        lambda r: dist.TruncatedNormal(r.normal(size=3), _pos(r), low=0.5),
        lambda x, d: _trunc_scipy(x, d, 0.5, None),
        True,
    ),
    (
        "TruncatedNormal-high",
        lambda r: dist.TruncatedNormal(r.normal(size=3), _pos(r), high=0.5),
        lambda x, d: _trunc_scipy(x, d, None, 0.5),
        True,
    ),
    (
        "Bernoulli-probs",
        lambda r: dist.Bernoulli(probs=r.uniform(0.1, 0.9, 3)),
        lambda x, d: st.bernoulli.logpmf(x, d.probs),
        True,
    ),
    (
        "Bernoulli-logits",
        lambda r: dist.Bernoulli(logits=r.normal(size=3) * 3),
        lambda x, d: st.bernoulli.logpmf(x, d.probs),
        True,
    ),
    (
        "Binomial-probs",
        lambda r: dist.Binomial(np.array([1, 5, 12]), probs=r.uniform(0.1, 0.9, 3)),
        lambda x, d: st.binom.logpmf(x, d.total_count, d.probs),
        True,
    ),
    (
        "Binomial-logits",
        lambda r: dist.Binomial(7, logits=r.normal(size=3)),
        lambda x, d: st.binom.logpmf(x, d.total_count, d.probs),
        True,
    ),
    (
        "Categorical-probs",
        lambda r: dist.Categorical(probs=r.dirichlet(np.ones(4), size=3)),
        _categorical_logpmf,
        True,
    ),
    (
        "Categorical-logits",
        lambda r: dist.Categorical(logits=r.normal(size=(3, 4))),
        _categorical_logpmf,
        True,
    ),
    (
        "Poisson",
        lambda r: dist.Poisson(_pos(r, 0.5, 10.0)),
        lambda x, d: st.poisson.logpmf(x, d.rate),
        True,
    ),
    (
        "NegativeBinomial2",
        lambda r: dist.NegativeBinomial2(_pos(r, 0.5, 10.0), _pos(r)),
        lambda x, d: st.nbinom.logpmf(
            x, d.concentration, np.asarray(d.rate) / (1 + np.asarray(d.rate))
        ),
        True,
    ),
]

NUM_DRAWS = 20000


@pytest.mark.parametrize(
    "factory, scipy_logpdf, finite_moments",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_log_prob_shapes_and_moments(factory, scipy_logpdf, finite_moments):
    # Sampling runs eagerly: JAX compiles each sampler once per shape, and most
    # cases share the shape (NUM_DRAWS, 3). Scoring is one jitted program per
    # case instead of one compilation per operation.
    d = factory(np.random.default_rng(0))
    draws = d.sample(jax.random.PRNGKey(1), (NUM_DRAWS,))
    assert draws.shape == d.shape((NUM_DRAWS,))
    log_prob, in_support, mean, variance = score(d, draws)
    assert log_prob.shape == (NUM_DRAWS,) + d.batch_shape
    assert bool(jnp.all(in_support))
    expected = scipy_logpdf(np.asarray(draws[:4]), d)
    np.testing.assert_allclose(log_prob[:4], expected, rtol=1e-9, atol=1e-9)
    if finite_moments:
        check_moments(np.asarray(draws, dtype=np.float64), mean, variance)


def test_negative_binomial2_mean_parametrisation():
    d = dist.NegativeBinomial2(mean=4.0, concentration=2.5)
    k = np.arange(6)
    expected = st.nbinom.logpmf(k, 2.5, 2.5 / (2.5 + 4.0))
    np.testing.assert_allclose(d.log_prob(k), expected, rtol=1e-10)


def test_categorical_outside_support_has_zero_mass():
    d = dist.Categorical(logits=jnp.zeros((3, 4)))
    np.testing.assert_array_equal(
        d.log_prob(jnp.array([4, 0, -1])), [-np.inf, -np.log(4.0), -np.inf]
    )


def test_delta_and_unit():
    d = dist.Delta(jnp.array([1.0, 2.0]), log_density=0.5, event_dim=1)
    assert d.batch_shape == () and d.event_shape == (2,)
    assert d.log_prob(jnp.array([1.0, 2.0])) == 0.5
    assert d.log_prob(jnp.array([1.0, 3.0])) == -jnp.inf
    assert d.sample(jax.random.PRNGKey(0), (3,)).shape == (3, 2)
    unit = dist.Unit(jnp.array([0.5, -1.0]))
    assert unit.batch_shape == (2,) and unit.event_shape == (0,)
    np.testing.assert_allclose(unit.log_prob(jnp.zeros((2, 0))), [0.5, -1.0])
    assert unit.sample(jax.random.PRNGKey(0)).shape == (2, 0)


def test_improper_uniform():
    d = dist.ImproperUniform(constraints.positive, (3,), ())
    assert d.log_prob(jnp.ones((2, 3))).shape == (2, 3)
    assert d.support is constraints.positive
    with pytest.raises(NotImplementedError, match="cannot be sampled"):
        d.sample(jax.random.PRNGKey(0))


# --- LKJCholesky --------------------------------------------------------------


@jax.jit
def _lkj_log_prob(eta, chol):
    return dist.LKJCholesky(chol.shape[-1], eta).log_prob(chol)


def _chol2(r):
    """2x2 correlation Cholesky factors; the free coordinate is r = L21."""
    one, zero = jnp.ones_like(r), jnp.zeros_like(r)
    rows = [jnp.stack([one, zero], -1), jnp.stack([r, jnp.sqrt(1 - r**2)], -1)]
    return jnp.stack(rows, -2)


@jax.jit
def _chol3_from_angles(theta):
    """3x3 factors from u = sin(theta): L21 = u1, L31 = u2, L32 = u3 sqrt(1-u2^2).

    Also returns |d(L21, L31, L32) / d(theta)|; the substitution makes the
    integrand smooth, so Gauss-Legendre converges fast.
    """
    u, c = jnp.sin(theta), jnp.cos(theta)
    zero, one = jnp.zeros_like(u[..., 0]), jnp.ones_like(u[..., 0])
    rows = [
        jnp.stack([one, zero, zero], -1),
        jnp.stack([u[..., 0], c[..., 0], zero], -1),
        jnp.stack([u[..., 1], u[..., 2] * c[..., 1], c[..., 1] * c[..., 2]], -1),
    ]
    jac = c[..., 0] * c[..., 1] * (c[..., 2] * c[..., 1])
    return jnp.stack(rows, -2), jac


@pytest.mark.parametrize("eta", [0.7, 1.0, 2.5])
def test_lkj_cholesky_normalised(eta):
    nodes, weights = roots_legendre(200)
    total2 = np.sum(weights * np.exp(_lkj_log_prob(eta, _chol2(jnp.asarray(nodes)))))
    # eta < 1 has integrable endpoint singularities: Gauss-Legendre converges slowly.
    np.testing.assert_allclose(total2, 1.0, rtol=1e-6 if eta >= 1 else 3e-2)
    if eta < 1:
        return
    nodes, weights = roots_legendre(30)
    theta1 = jnp.asarray(nodes) * math.pi / 2
    grid = jnp.stack(jnp.meshgrid(theta1, theta1, theta1, indexing="ij"), -1)
    w = np.einsum("i,j,k->ijk", weights, weights, weights) * (math.pi / 2) ** 3
    chol3, jac = _chol3_from_angles(grid)
    density = np.exp(_lkj_log_prob(eta, chol3))
    np.testing.assert_allclose(np.sum(w * density * jac), 1.0, rtol=1e-8)


def test_lkj_cholesky_uniform_closed_form():
    # eta = 1 is uniform over 3x3 correlation matrices, a set of volume pi^2/2;
    # the density of L adds the Jacobian of L -> C, prod_i L_ii^(d - i).
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    chol = jax.jit(dist.transforms.CorrCholeskyTransform())(x)
    diag = jnp.diagonal(chol, axis1=-2, axis2=-1)
    expected = jnp.log(diag[:, 1]) - math.log(math.pi**2 / 2)
    np.testing.assert_allclose(_lkj_log_prob(1.0, chol), expected, rtol=1e-10)


@pytest.mark.slow
def test_lkj_cholesky_sample_marginals():
    # Every off-diagonal correlation is 2 Beta(a, a) - 1 with a = eta - 1 + d/2
    # (LKJ 2009, section 3.2): mean 0, variance 1 / (2a + 1).
    # d = 4 makes the Beta draws of shape (NUM_DRAWS, 3), shared with other tests.
    n, dim, eta = NUM_DRAWS, 4, 2.0
    chol = dist.LKJCholesky(dim, eta).sample(jax.random.PRNGKey(3), (n,))
    assert chol.shape == (n, dim, dim)
    assert bool(jnp.all(constraints.corr_cholesky(chol)))
    corr = np.asarray(chol @ jnp.swapaxes(chol, -1, -2))
    rows, cols = np.tril_indices(dim, -1)
    r = corr[..., rows, cols]
    a = eta - 1 + dim / 2
    var = 1 / (2 * a + 1)
    m4 = 3 / ((2 * a + 1) * (2 * a + 3))  # E r^4 for the symmetric beta
    assert np.all(np.abs(r.mean(0)) < 5 * np.sqrt(var / n))
    assert np.all(np.abs((r**2).mean(0) - var) < 5 * np.sqrt((m4 - var**2) / n))


def test_heavy_tailed_moments_are_not_finite():
    assert np.isnan(dist.Cauchy(0.0, 1.0).mean)
    assert np.isinf(dist.Cauchy(0.0, 1.0).variance)
    assert np.isinf(dist.HalfCauchy(1.0).mean)
    assert np.isinf(dist.StudentT(1.5).variance)
    assert np.isnan(dist.StudentT(0.8).mean)
    assert np.isinf(dist.InverseGamma(1.5, 1.0).variance)


# --- shapes -----------------------------------------------------------------------


def test_expand_shapes_and_independence():
    key = jax.random.PRNGKey(0)
    d = dist.Normal(jnp.zeros(3), 1.0).expand((5, 3))
    assert d.batch_shape == (5, 3)
    assert d.sample(key, (2,)).shape == (2, 5, 3)
    assert d.log_prob(jnp.zeros(3)).shape == (5, 3)
    draws = dist.Normal(jnp.zeros(1), 1.0).expand((4,)).sample(key, (6,))
    assert draws.shape == (6, 4)
    # Expanded copies are independent draws, not repeats.
    assert len(np.unique(np.asarray(draws))) == draws.size
    mixed = dist.Normal(jnp.arange(3.0)[:, None] * 100, 1.0).expand((2, 3, 4))
    draws = np.asarray(mixed.sample(key))
    assert draws.shape == (2, 3, 4)
    np.testing.assert_allclose(draws.mean(axis=(0, 2)), [0, 100, 200], atol=5)
    assert len(np.unique(draws)) == draws.size
    # Expanding an expanded distribution keeps one wrapper.
    again = d.expand((2, 5, 3))
    assert isinstance(again.base_dist, dist.Normal) and again.batch_shape == (2, 5, 3)


def test_expand_rejects_incompatible_shapes():
    with pytest.raises(ValueError, match=r"cannot expand batch shape \(3,\) to \(4,\)"):
        dist.Normal(jnp.zeros(3), 1.0).expand((4,))
    with pytest.raises(ValueError, match="shorter"):
        dist.Normal(jnp.zeros((2, 3)), 1.0).expand((3,))
    with pytest.raises(ValueError, match="cannot expand"):
        dist.Normal(jnp.zeros(1), 1.0).expand((4,)).expand((1,))


def test_to_event_shapes():
    d = dist.Normal(jnp.zeros((2, 3)), 1.0)
    ind = d.to_event(1)
    assert ind.batch_shape == (2,) and ind.event_shape == (3,)
    assert ind.log_prob(jnp.zeros((4, 2, 3))).shape == (4, 2)
    np.testing.assert_allclose(
        ind.log_prob(jnp.zeros((2, 3))), d.log_prob(jnp.zeros((2, 3))).sum(-1)
    )
    assert d.to_event().event_shape == (2, 3)
    assert d.to_event(0) is d
    assert ind.support.event_dim == 1
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims"):
        d.to_event(3)


def test_mask_shapes_and_values():
    d = dist.Normal(jnp.zeros(3), 1.0)
    m = d.mask(jnp.array([True, False, True]))
    lp = m.log_prob(jnp.ones((2, 3)))
    assert lp.shape == (2, 3)
    assert np.all(lp[:, 1] == 0) and np.all(lp[:, 0] < 0)
    assert d.mask(True) is d
    np.testing.assert_array_equal(d.mask(False).log_prob(jnp.ones(3)), 0.0)
    # A mask may broadcast the batch shape.
    wide = dist.Normal(0.0, 1.0).mask(jnp.array([[True], [False]]))
    assert wide.batch_shape == (2, 1)
    assert wide.sample(jax.random.PRNGKey(0), (5,)).shape == (5, 2, 1)
    with pytest.raises(TypeError, match="bool"):
        d.mask(jnp.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="do not broadcast"):
        d.mask(jnp.array([True, False]))


def test_log_prob_broadcasts_sample_and_batch_shapes():
    assert dist.Normal(jnp.zeros(3), 1.0).log_prob(jnp.zeros((2, 1))).shape == (2, 3)
    mvn = dist.MultivariateNormal(jnp.zeros((2, 3)), scale_tril=jnp.eye(3))
    assert mvn.batch_shape == (2,)
    assert mvn.log_prob(jnp.zeros((5, 1, 3))).shape == (5, 2)
    cat = dist.Categorical(logits=jnp.zeros((2, 4)))
    assert cat.log_prob(jnp.zeros((3, 1), dtype=int)).shape == (3, 2)


# --- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: dist.Normal(0.0, -1.0, validate_args=True), "Normal.*'scale'.*-1"),
        (lambda: dist.HalfCauchy(jnp.array([1.0, 0.0]), validate_args=True), "'scale'"),
        (
            lambda: dist.Bernoulli(probs=1.5, validate_args=True),
            "Bernoulli.*'probs'.*1.5",
        ),
        (
            lambda: dist.Categorical(probs=jnp.array([0.5, 0.6]), validate_args=True),
            "'probs'.*simplex",
        ),
        (lambda: dist.Gamma(-1.0, 1.0, validate_args=True), "'concentration'"),
        (lambda: dist.Uniform(1.0, 0.0, validate_args=True), "Uniform.*'high'"),
        (
            lambda: dist.Dirichlet(jnp.array([1.0, -1.0]), validate_args=True),
            "concentration",
        ),
        (
            lambda: dist.MultivariateNormal(
                jnp.zeros(2), jnp.array([[1.0, 2.0], [2.0, 1.0]]), validate_args=True
            ),
            "'covariance_matrix'.*positive_definite",
        ),
        (
            lambda: dist.MultivariateNormal(
                jnp.zeros(2),
                scale_tril=jnp.array([[1.0, 1.0], [0.0, 1.0]]),
                validate_args=True,
            ),
            "'scale_tril'",
        ),
        (lambda: dist.NegativeBinomial2(-2.0, 1.0, validate_args=True), "'mean'"),
        (lambda: dist.Poisson(-2.0, validate_args=True), "Poisson.*'rate'"),
        (lambda: dist.LKJCholesky(3, 0.0, validate_args=True), "'concentration'"),
        (
            lambda: dist.TruncatedNormal(0.0, 1.0, 2.0, 1.0, validate_args=True),
            "'high'",
        ),
    ],
)
def test_invalid_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_invalid_values_raise_in_log_prob():
    with pytest.raises(ValueError, match="HalfNormal.*outside the support"):
        dist.HalfNormal(1.0, validate_args=True).log_prob(-1.0)
    with pytest.raises(ValueError, match="Bernoulli.*outside the support"):
        dist.Bernoulli(probs=0.3, validate_args=True).log_prob(0.5)
    with pytest.raises(ValueError, match="simplex"):
        dist.Dirichlet(jnp.ones(3), validate_args=True).log_prob(
            jnp.array([0.5, 0.6, 0.1])
        )
    # Without validation the density is simply zero there.
    assert dist.HalfNormal(1.0).log_prob(-1.0) == -jnp.inf


def test_argument_errors_name_the_problem():
    with pytest.raises(ValueError, match="exactly one of 'probs' or 'logits'"):
        dist.Bernoulli()
    with pytest.raises(ValueError, match="exactly one of 'probs' or 'logits'"):
        dist.Categorical(probs=jnp.ones(2) / 2, logits=jnp.zeros(2))
    with pytest.raises(ValueError, match="exactly one of covariance_matrix"):
        dist.MultivariateNormal(jnp.zeros(2))
    with pytest.raises(ValueError, match="square"):
        dist.MultivariateNormal(jnp.zeros(2), scale_tril=jnp.ones((2, 3)))
    with pytest.raises(
        ValueError, match=r"loc with shape \(3,\), scale with shape \(2,\)"
    ):
        dist.Normal(jnp.zeros(3), jnp.ones(2))
    with pytest.raises(ValueError, match="dimension"):
        dist.LKJCholesky(1)


def test_validation_is_skipped_under_jit():
    # Inside jit values are abstract; construction must not fail or leak.
    out = jax.jit(lambda s: dist.Normal(0.0, s, validate_args=True).log_prob(1.0))(2.0)
    np.testing.assert_allclose(out, st.norm.logpdf(1.0, 0.0, 2.0), rtol=1e-6)


# --- pytrees: jit, vmap, grad -----------------------------------------------------


def test_jit_with_distribution_argument():
    d = dist.MultivariateNormal(jnp.zeros(2), jnp.array([[2.0, 0.3], [0.3, 1.0]]))
    lp = jax.jit(lambda d, x: d.log_prob(x))(d, jnp.ones(2))
    np.testing.assert_allclose(lp, d.log_prob(jnp.ones(2)), rtol=1e-6)
    wrapped = (
        dist.Normal(jnp.zeros(3), 1.0)
        .expand((2, 3))
        .to_event(1)
        .mask(jnp.array([True, False]))
    )
    out = jax.jit(lambda d: d.log_prob(jnp.zeros(3)))(wrapped)
    np.testing.assert_allclose(out, [3 * st.norm.logpdf(0.0), 0.0], rtol=1e-6)
    leaves, treedef = jax.tree_util.tree_flatten(wrapped)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert rebuilt.batch_shape == (2,) and rebuilt.event_shape == (3,)


def test_jit_returns_distribution():
    d = jax.jit(lambda loc: dist.Bernoulli(logits=loc))(jnp.zeros(3))
    assert isinstance(d, dist.Bernoulli) and d.batch_shape == (3,)
    np.testing.assert_allclose(d.probs, 0.5)


def test_vmap_over_distribution():
    d = dist.Normal(jnp.arange(3.0), 2.0)
    lp = jax.vmap(lambda d: d.log_prob(0.0))(d)
    np.testing.assert_allclose(lp, d.log_prob(0.0), rtol=1e-6)
    assert jax.vmap(lambda d: jnp.asarray(len(d.batch_shape)))(d).tolist() == [0, 0, 0]
    made = jax.vmap(lambda s: dist.Gamma(s, 1.0))(jnp.array([1.0, 2.0]))
    assert made.batch_shape == (2,)


def test_grad_of_log_prob_and_pathwise_sample():
    d = dist.Normal(1.0, 2.0)
    grads = jax.grad(lambda d: d.log_prob(3.0))(d)
    # d/dloc = (x - loc) / scale^2, d/dscale = -1/scale + (x - loc)^2 / scale^3.
    np.testing.assert_allclose(grads.loc, 0.5, rtol=1e-6)
    np.testing.assert_allclose(grads.scale, -0.5 + 4 / 8, atol=1e-6)
    key = jax.random.PRNGKey(0)

    def mean_of_draws(c):
        return dist.Gamma(c, 2.0).sample(key, (4000,)).mean()

    # E[X] = c / 2, so the pathwise gradient averages to 1/2.
    assert dist.Gamma(1.0).has_rsample
    np.testing.assert_allclose(jax.grad(mean_of_draws)(3.0), 0.5, rtol=0.1)
    assert not dist.Poisson(1.0).has_rsample
    assert dist.Normal(0.0, 1.0).expand((3,)).has_rsample


def test_distribution_call_protocol():
    # The handler runtime calls fn(rng_key=..., sample_shape=...).
    d = dist.Exponential(jnp.ones(2))
    assert d(rng_key=jax.random.PRNGKey(0), sample_shape=(3,)).shape == (3, 2)


def test_module_exports():
    assert dist.constraints.positive is constraints.positive
    assert isinstance(
        dist.transforms.biject_to(constraints.positive), dist.transforms.ExpTransform
    )
    assert dist.biject_to is dist.transforms.biject_to
    assert "Normal" in repr(dist.Normal(0.0, 1.0))


def test_float32_default():
    with jax.enable_x64(False):
        for d in (dist.Normal(0.0, 1.0), dist.Bernoulli(logits=0.0)):
            draws = d.sample(jax.random.PRNGKey(0), (3,))
            assert d.log_prob(draws).dtype == jnp.float32

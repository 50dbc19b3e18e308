"""Gumbel, Pareto, Kumaraswamy, SoftLaplace, AsymmetricLaplace, VonMises,
ProjectedNormal, DiscreteUniform, OrderedLogistic, DirichletMultinomial and
the probs/logits classes: densities against scipy (or numerical integration
where scipy has none), sampling moments within Monte Carlo error, supports,
cdf/icdf, reparameterised gradients and validation."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate as integrate
import scipy.stats as st

import core_ppl.distributions as dist

from .checks import check_moments, score

pytestmark = pytest.mark.usefixtures("x64")
NUM_DRAWS = 20000


@functools.partial(jax.jit, static_argnums=2)
def _sample(d, key, n):
    return d.sample(key, (n,))


def _draws(d, key):
    return _sample(d, key, NUM_DRAWS)


@jax.jit
def _lp(d, x):
    return d.log_prob(x)


def _pos(rng, low=0.5, high=3.0):
    return rng.uniform(low, high, size=3)


# (id, distribution from a Generator, scipy log density of (values, d)).
# Batch shape (3,); parameters keep the fourth moment finite.
CASES = [
    (
        "Gumbel",
        lambda r: dist.Gumbel(r.normal(size=3), _pos(r)),
        lambda x, d: st.gumbel_r.logpdf(x, d.loc, d.scale),
    ),
    (
        "Pareto",
        lambda r: dist.Pareto(_pos(r), _pos(r, 4.5, 7.0)),
        lambda x, d: st.pareto.logpdf(x, d.alpha, scale=d.scale),
    ),
    (
        "SoftLaplace",
        lambda r: dist.SoftLaplace(r.normal(size=3), _pos(r)),
        lambda x, d: st.hypsecant.logpdf(x, d.loc, d.scale),
    ),
    (
        "AsymmetricLaplace",
        lambda r: dist.AsymmetricLaplace(r.normal(size=3), _pos(r), _pos(r, 0.5, 2)),
        lambda x, d: st.laplace_asymmetric.logpdf(x, d.asymmetry, d.loc, d.scale),
    ),
    (
        "DiscreteUniform",
        lambda r: dist.DiscreteUniform(np.array([-2, 0, 3]), np.array([2, 0, 10])),
        lambda x, d: st.randint.logpmf(x, d.low, d.high + 1),
    ),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("factory, scipy_logpdf", [c[1:] for c in CASES], ids=IDS)
def test_log_prob_moments_and_support(factory, scipy_logpdf):
    d = factory(np.random.default_rng(0))
    draws = _draws(d, jax.random.PRNGKey(1))
    assert draws.shape == (NUM_DRAWS,) + d.batch_shape
    log_prob, in_support, mean, variance = score(d, draws)
    assert bool(jnp.all(in_support))
    x = np.asarray(draws[:4])
    np.testing.assert_allclose(log_prob[:4], scipy_logpdf(x, d), rtol=1e-9)
    check_moments(np.asarray(draws, dtype=float), mean, variance)


@pytest.mark.parametrize(
    "make, ref",
    [
        (lambda: dist.Gumbel(0.3, 1.7), st.gumbel_r(0.3, 1.7)),
        (lambda: dist.Pareto(2.0, 3.0), st.pareto(3.0, scale=2.0)),
        (lambda: dist.SoftLaplace(0.3, 1.7), st.hypsecant(0.3, 1.7)),
        (
            lambda: dist.AsymmetricLaplace(0.3, 1.7, 2.0),
            st.laplace_asymmetric(2.0, 0.3, 1.7),
        ),
    ],
    ids=["Gumbel", "Pareto", "SoftLaplace", "AsymmetricLaplace"],
)
def test_cdf_and_icdf_against_scipy(make, ref):
    d = make()  # inside the test, so in float64
    q = np.array([0.01, 0.2, 0.5, 0.7, 0.99])
    np.testing.assert_allclose(d.icdf(q), ref.ppf(q), rtol=1e-9)
    x = ref.ppf(q)
    np.testing.assert_allclose(d.cdf(x), q, rtol=1e-9)


def test_kumaraswamy_against_integration():
    a, b = 2.5, 3.5
    d = dist.Kumaraswamy(a, b)
    log_prob = jax.jit(d.log_prob)

    def pdf(x):
        return float(jnp.exp(log_prob(x)))

    assert math.isclose(integrate.quad(pdf, 0, 1)[0], 1.0, rel_tol=1e-9)
    # The cdf 1 - (1 - x^a)^b by integration of the density.
    assert math.isclose(
        integrate.quad(pdf, 0, 0.4)[0], 1 - (1 - 0.4**a) ** b, rel_tol=1e-9
    )
    m1 = integrate.quad(lambda x: x * pdf(x), 0, 1)[0]
    m2 = integrate.quad(lambda x: x**2 * pdf(x), 0, 1)[0]
    np.testing.assert_allclose(d.mean, m1, rtol=1e-9)
    np.testing.assert_allclose(d.variance, m2 - m1**2, rtol=1e-9)
    entropy = integrate.quad(lambda x: -pdf(x) * math.log(pdf(x)), 0, 1)[0]
    np.testing.assert_allclose(d.entropy(), entropy, rtol=1e-8)
    batch = dist.Kumaraswamy(jnp.array([a, 0.7]), jnp.array([b, 1.3]))
    draws = np.asarray(_draws(batch, jax.random.PRNGKey(0)))
    assert draws.min() > 0 and draws.max() < 1
    check_moments(draws, batch.mean, batch.variance)
    assert _lp(d, 1.5) == -np.inf


def test_kumaraswamy_edges_are_finite():
    # a = 1 at x = 0 and b = 1 at x = 1: finite density, finite gradients.
    def log_prob(x, a, b):
        return dist.Kumaraswamy(a, b).log_prob(x)

    grad = jax.jit(jax.grad(log_prob, argnums=(0, 1, 2)))
    for x, a, b in [(0.0, 1.0, 2.0), (1.0, 3.0, 1.0), (1.0, 1.0, 1.0)]:
        value = log_prob(x, a, b)
        assert np.isfinite(value)
        np.testing.assert_allclose(value, math.log(a * b))
        assert all(np.isfinite(g) for g in grad(x, a, b))


def test_reparameterised_gradients():
    # d/dscale of a draw of scale * exp(E / alpha) is draw / scale.
    def draw(scale):
        return dist.Pareto(scale, 3.0).sample(jax.random.PRNGKey(0))

    np.testing.assert_allclose(jax.grad(draw)(2.0), draw(2.0) / 2.0, rtol=1e-9)

    # The four other samplers at once: a vector of draws, one per family.
    def draws(s):
        key = jax.random.PRNGKey(3)
        return jnp.stack(
            [
                dist.Gumbel(0.0, s).sample(key),
                dist.SoftLaplace(0.0, s).sample(key),
                dist.AsymmetricLaplace(0.0, s, 2.0).sample(key),
                dist.Kumaraswamy(s, 2.0).sample(key),
            ]
        )

    grad = jax.jit(jax.jacobian(draws))(1.3)
    eps = 1e-6
    f = jax.jit(draws)
    np.testing.assert_allclose(
        grad, (f(1.3 + eps) - f(1.3 - eps)) / (2 * eps), rtol=1e-5
    )


# --- von Mises and projected normal ------------------------------------------------


def test_von_mises_density_and_circular_moments():
    loc = jnp.array([0.5, -3.0, 2.0, 0.0])
    kappa = jnp.array([2.0, 0.3, 40.0, 1e-7])
    d = dist.VonMises(loc, kappa)
    draws = np.asarray(_draws(d, jax.random.PRNGKey(0)))
    assert draws.min() >= -math.pi and draws.max() <= math.pi
    x = draws[:3]
    np.testing.assert_allclose(
        _lp(d, x),
        st.vonmises.logpdf(x, np.asarray(kappa), np.asarray(loc)),
        rtol=1e-9,
    )
    # E[cos(x - loc)] = I1(k) / I0(k) = 1 - variance; E[sin(x - loc)] = 0.
    c = np.cos(draws - np.asarray(loc))
    s = np.sin(draws - np.asarray(loc))
    check_moments(c[:, :, None], 1 - d.variance[:, None], np.var(c, 0)[:, None])
    assert np.all(np.abs(s.mean(0)) < 5 * s.std(0) / math.sqrt(NUM_DRAWS))
    assert d.support is dist.constraints.circular


def test_von_mises_is_normal_for_large_concentration():
    d = dist.VonMises(0.2, 1e4)
    draws = np.asarray(_draws(d, jax.random.PRNGKey(1)))
    check_moments(draws, np.asarray(0.2), np.asarray(1e-4 * (1 + 0.5e-4)))


@pytest.mark.parametrize("dim", [2, 3])
def test_projected_normal_density_by_radial_integration(dim):
    mu = np.array([0.8, -1.5, 0.4])[:dim]
    d = dist.ProjectedNormal(mu)
    draws = np.asarray(_draws(d, jax.random.PRNGKey(2)))
    np.testing.assert_allclose(np.linalg.norm(draws, axis=-1), 1.0, rtol=1e-12)
    # p(x) = int_0^inf r^(d-1) N(r x; mu, I) dr, by quadrature.
    for x in draws[:3]:
        radial = integrate.quad(
            lambda r, x=x: (
                r ** (dim - 1) * st.multivariate_normal(mu, np.eye(dim)).pdf(r * x)
            ),
            0,
            np.inf,
        )[0]
        np.testing.assert_allclose(_lp(d, x), math.log(radial), rtol=1e-8)
    # The mean direction of the draws points along mu.
    mean_dir = draws.mean(0) / np.linalg.norm(draws.mean(0))
    np.testing.assert_allclose(mean_dir, d.mean, atol=0.02)
    with pytest.raises(NotImplementedError, match="dimensions 2 and 3"):
        dist.ProjectedNormal(jnp.ones(4)).log_prob(jnp.ones(4) / 2)


# --- discrete ------------------------------------------------------------------------


def test_probs_and_logits_classes():
    logits = jnp.array([0.3, -1.2])
    b = dist.BernoulliLogits(logits)
    assert isinstance(b, dist.Bernoulli)
    np.testing.assert_allclose(
        _lp(b, 1), dist.Bernoulli(logits=logits).log_prob(1), rtol=1e-12
    )
    np.testing.assert_allclose(
        dist.BernoulliProbs(jax.nn.sigmoid(logits)).log_prob(1), _lp(b, 1)
    )
    c = dist.CategoricalLogits(jnp.array([1.0, 2.0, 0.5]))
    p = dist.CategoricalProbs(c.probs)
    assert isinstance(p, dist.Categorical) and p.batch_shape == ()
    np.testing.assert_allclose(_lp(c, jnp.arange(3)), _lp(p, jnp.arange(3)))
    # They are pytrees of their own class.
    leaves, tree = jax.tree_util.tree_flatten(b)
    assert type(jax.tree_util.tree_unflatten(tree, leaves)) is dist.BernoulliLogits
    with pytest.raises(TypeError):
        dist.BernoulliProbs(probs=0.3, logits=0.1)


def test_ordered_logistic_by_hand():
    eta = jnp.array([0.3, -2.0])
    cut = jnp.array([-1.0, 0.5, 2.0])
    d = dist.OrderedLogistic(eta, cut)
    assert d.batch_shape == (2,) and d.support.upper_bound == 3

    def sig(x):
        return 1 / (1 + math.exp(-x))

    for i, e in enumerate([0.3, -2.0]):
        c = [-math.inf, -1.0, 0.5, 2.0, math.inf]
        expected = [
            math.log(sig(c[k + 1] - e) - (sig(c[k] - e) if k else 0.0))
            for k in range(4)
        ]
        np.testing.assert_allclose(_lp(d, jnp.arange(4)[:, None])[:, i], expected)
    draws = np.asarray(_draws(d, jax.random.PRNGKey(0)))
    check_moments(draws.astype(float), d.mean, d.variance)
    with pytest.raises(ValueError, match="cutpoints"):
        dist.OrderedLogistic(0.0, jnp.array([1.0, -1.0]), validate_args=True)
    g = jax.jit(jax.grad(lambda e: dist.OrderedLogistic(e, cut).log_prob(0)))(0.3)
    np.testing.assert_allclose(g, -sig(0.3 + 1.0))  # d/de log sig(c0 - e)


def test_dirichlet_multinomial_against_scipy():
    alpha = np.array([0.7, 2.0, 1.3])
    d = dist.DirichletMultinomial(alpha, total_count=12)
    draws = np.asarray(_sample(d, jax.random.PRNGKey(0), 4000))
    assert draws.shape == (4000, 3) and np.all(draws.sum(-1) == 12)
    x = draws[:4]
    np.testing.assert_allclose(
        _lp(d, x), st.dirichlet_multinomial(alpha, 12).logpmf(x), rtol=1e-9
    )
    check_moments(draws.astype(float), d.mean, d.variance)
    assert _lp(d, jnp.array([5, 5, 1])) == -np.inf  # sums to 11
    np.testing.assert_allclose(_lp(d, np.array([4, 4, 4])), _lp(d, [4.0, 4, 4]))


def test_discrete_uniform_validation_and_integers():
    d = dist.DiscreteUniform(1, 4)
    assert jnp.issubdtype(d.sample(jax.random.PRNGKey(0), (3,)).dtype, jnp.integer)
    np.testing.assert_allclose(_lp(d, jnp.array([1, 4])), [-math.log(4)] * 2)
    assert _lp(d, 2.5) == -np.inf and _lp(d, 5) == -np.inf
    with pytest.raises(ValueError, match="'high'"):
        dist.DiscreteUniform(3, 1, validate_args=True)
    with pytest.raises(ValueError, match="'low'"):
        dist.DiscreteUniform(0.5, 1, validate_args=True)


@pytest.mark.parametrize(
    "make, ref",
    [
        (lambda: dist.Gumbel(0.3, 1.7), st.gumbel_r(0.3, 1.7)),
        (lambda: dist.Pareto(2.0, 3.0), st.pareto(3.0, scale=2.0)),
        (lambda: dist.SoftLaplace(0.3, 1.7), st.hypsecant(0.3, 1.7)),
        (
            lambda: dist.AsymmetricLaplace(0.3, 1.7, 2.0),
            st.laplace_asymmetric(2.0, 0.3, 1.7),
        ),
        (lambda: dist.VonMises(0.3, 2.5), st.vonmises(2.5, 0.3)),
        (lambda: dist.DiscreteUniform(-2, 5), st.randint(-2, 6)),
        (
            lambda: dist.MultivariateStudentT(
                4.5, jnp.zeros(2), jnp.array([[1.0, 0.0], [0.5, 2.0]])
            ),
            st.multivariate_t(np.zeros(2), [[1.0, 0.5], [0.5, 4.25]], df=4.5),
        ),
    ],
    ids=[
        "Gumbel",
        "Pareto",
        "SoftLaplace",
        "AsymmetricLaplace",
        "VonMises",
        "DiscreteUniform",
        "MVT",
    ],
)
def test_entropy_against_scipy(make, ref):
    np.testing.assert_allclose(make().entropy(), ref.entropy(), rtol=1e-9)


def test_discrete_uniform_enumerate_support():
    d = dist.DiscreteUniform(jnp.array([0, 2]), jnp.array([2, 4]))
    values = d.enumerate_support()
    np.testing.assert_array_equal(values, [[0, 2], [1, 3], [2, 4]])
    np.testing.assert_allclose(jnp.exp(_lp(d, values)).sum(0), [1.0, 1.0])


@pytest.mark.parametrize(
    "make, param",
    [
        (lambda: dist.Gumbel(0.0, -1.0, validate_args=True), "scale"),
        (lambda: dist.Pareto(1.0, 0.0, validate_args=True), "alpha"),
        (lambda: dist.Kumaraswamy(-1.0, 1.0, validate_args=True), "concentration1"),
        (lambda: dist.SoftLaplace(0.0, -2.0, validate_args=True), "scale"),
        (
            lambda: dist.AsymmetricLaplace(0.0, 1.0, -1.0, validate_args=True),
            "asymmetry",
        ),
        (lambda: dist.VonMises(0.0, -1.0, validate_args=True), "concentration"),
        (
            lambda: dist.DirichletMultinomial([1.0, -1.0], 3, validate_args=True),
            "concentration",
        ),
        (
            lambda: dist.DirichletMultinomial([1.0, 1.0], -3, validate_args=True),
            "total_count",
        ),
        (
            lambda: dist.MultivariateStudentT(
                -1.0, jnp.zeros(2), jnp.eye(2), validate_args=True
            ),
            "df",
        ),
        (lambda: dist.ZeroSumNormal(-1.0, (3,), validate_args=True), "scale"),
    ],
)
def test_parameter_validation(make, param):
    with pytest.raises(ValueError, match=f"'{param}'"):
        make()


def test_value_validation_and_shape_errors():
    with dist.validation_enabled():
        with pytest.raises(ValueError, match="outside the support"):
            dist.Pareto(2.0, 3.0).log_prob(1.0)
        with pytest.raises(ValueError, match="outside the support"):
            dist.VonMises(0.0, 1.0).log_prob(4.0)
    with pytest.raises(ValueError, match="vector of size >= 2"):
        dist.ProjectedNormal(1.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        dist.Gumbel(jnp.zeros(3), jnp.ones(2))
    with pytest.raises(ValueError, match="last axis"):
        dist.DirichletMultinomial(1.0)

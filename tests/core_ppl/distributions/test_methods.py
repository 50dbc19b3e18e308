"""cdf, icdf, entropy, enumerate_support and infer_shapes against scipy and
hand computation (issue 19)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import core_ppl.distributions as dist
from core_ppl.distributions import constraints

pytestmark = pytest.mark.usefixtures("x64")

# (id, factory of our distribution (built inside the x64 test), the scipy
# distribution).
# Parameters have batch shape (2,) so broadcasting is exercised.
A = np.array([0.7, 2.5])
B = np.array([1.3, 0.6])
LOC = np.array([-0.4, 1.1])
UNIVARIATE = [
    ("normal", lambda: dist.Normal(LOC, B), st.norm(LOC, B)),
    ("halfnormal", lambda: dist.HalfNormal(B), st.halfnorm(scale=B)),
    ("cauchy", lambda: dist.Cauchy(LOC, B), st.cauchy(LOC, B)),
    ("halfcauchy", lambda: dist.HalfCauchy(B), st.halfcauchy(scale=B)),
    ("exponential", lambda: dist.Exponential(B), st.expon(scale=1 / B)),
    ("weibull", lambda: dist.Weibull(B, A), st.weibull_min(A, scale=B)),
    ("studentt", lambda: dist.StudentT(A + 2, LOC, B), st.t(A + 2, LOC, B)),
    ("laplace", lambda: dist.Laplace(LOC, B), st.laplace(LOC, B)),
    ("logistic", lambda: dist.Logistic(LOC, B), st.logistic(LOC, B)),
    (
        "lognormal",
        lambda: dist.LogNormal(LOC, B),
        st.lognorm(B, scale=np.exp(LOC)),
    ),
    ("gamma", lambda: dist.Gamma(A, B), st.gamma(A, scale=1 / B)),
    ("chi2", lambda: dist.Chi2(A + 1), st.chi2(A + 1)),
    ("inversegamma", lambda: dist.InverseGamma(A, B), st.invgamma(A, scale=B)),
    ("beta", lambda: dist.Beta(A, B), st.beta(A, B)),
    ("uniform", lambda: dist.Uniform(LOC, LOC + A), st.uniform(LOC, A)),
    (
        "truncnormal",
        lambda: dist.TruncatedNormal(LOC, B, low=-1.0, high=2.0),
        st.truncnorm((-1.0 - LOC) / B, (2.0 - LOC) / B, LOC, B),
    ),
    (
        "truncnormal-low",
        lambda: dist.TruncatedNormal(LOC, B, low=0.5),
        # scipy's entropy is NaN with an infinite bound; 60 sds is the same law
        # to double precision.
        st.truncnorm((0.5 - LOC) / B, 60.0, LOC, B),
    ),
]
IDS = [c[0] for c in UNIVARIATE]


@pytest.mark.parametrize("d, ref", [c[1:] for c in UNIVARIATE], ids=IDS)
def test_cdf_icdf_entropy_against_scipy(d, ref):
    d = d()
    q = np.array([[0.05, 0.3], [0.5, 0.97]])
    x = ref.ppf(q)
    np.testing.assert_allclose(d.cdf(x), q, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(d.icdf(q), x, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(d.entropy(), ref.entropy(), rtol=1e-7)


def test_methods_without_a_closed_form_raise():
    d = dist.Dirichlet(jnp.ones(3))
    for method, arg in [(d.cdf, jnp.ones(3) / 3), (d.icdf, 0.5)]:
        with pytest.raises(NotImplementedError, match="Dirichlet does not define"):
            method(arg)
    with pytest.raises(NotImplementedError, match="Cauchy"):
        dist.Cauchy(0.0, 1.0).to_event(0).expand((2,)).enumerate_support()


def test_multivariate_entropies_against_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + np.eye(3)
    np.testing.assert_allclose(
        dist.MultivariateNormal(np.zeros(3), covariance_matrix=cov).entropy(),
        st.multivariate_normal(np.zeros(3), cov).entropy(),
        rtol=1e-10,
    )
    w, diag = rng.normal(size=(3, 2)), rng.uniform(0.5, 2, 3)
    np.testing.assert_allclose(
        dist.LowRankMultivariateNormal(np.zeros(3), w, diag).entropy(),
        st.multivariate_normal(np.zeros(3), w @ w.T + np.diag(diag)).entropy(),
        rtol=1e-10,
    )
    conc = np.array([[0.5, 2.0, 3.0], [1.0, 1.0, 4.0]])
    np.testing.assert_allclose(
        dist.Dirichlet(conc).entropy(),
        [st.dirichlet(c).entropy() for c in conc],
        rtol=1e-10,
    )


def test_discrete_methods_against_scipy():
    p = np.array([0.2, 0.7])
    np.testing.assert_allclose(
        dist.Bernoulli(probs=p).entropy(), st.bernoulli(p).entropy(), rtol=1e-10
    )
    np.testing.assert_allclose(
        dist.Bernoulli(logits=np.log(p / (1 - p))).entropy(),
        st.bernoulli(p).entropy(),
        rtol=1e-10,
    )
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]])
    np.testing.assert_allclose(
        dist.Categorical(probs=probs).entropy(),
        [st.entropy(row) for row in probs],
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        dist.Geometric(probs=p).entropy(), st.geom(p).entropy(), rtol=1e-10
    )
    rate = np.array([0.5, 3.0])
    k = np.array([[0, 1], [2, 5]])
    np.testing.assert_allclose(dist.Poisson(rate).cdf(k), st.poisson(rate).cdf(k))
    np.testing.assert_allclose(
        dist.Binomial(5, probs=p).entropy(), st.binom(5, p).entropy(), rtol=1e-10
    )


# --- enumerate_support ------------------------------------------------------------


def test_enumerate_support_of_bernoulli_and_categorical():
    d = dist.Bernoulli(probs=jnp.array([0.2, 0.7]))
    assert d.has_enumerate_support
    support = d.enumerate_support()
    np.testing.assert_array_equal(support, [[0, 0], [1, 1]])
    assert d.enumerate_support(expand=False).shape == (2, 1)
    c = dist.Categorical(probs=jnp.full((3, 4), 0.25))
    assert c.enumerate_support().shape == (4, 3)
    np.testing.assert_array_equal(c.enumerate_support(expand=False)[:, 0], np.arange(4))
    # The enumerated values exhaust the mass.
    total = jnp.exp(jax.scipy.special.logsumexp(c.log_prob(c.enumerate_support()), 0))
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    "d",
    [
        lambda: dist.Binomial(4, probs=jnp.array([0.2, 0.7])),
        lambda: dist.BetaBinomial(1.5, 2.0, total_count=jnp.array([4, 4])),
    ],
    ids=["binomial", "betabinomial"],
)
def test_enumerate_support_of_bounded_counts(d):
    d = d()
    support = d.enumerate_support()
    assert support.shape == (5, 2)
    np.testing.assert_array_equal(support[:, 0], np.arange(5))
    total = jnp.exp(jax.scipy.special.logsumexp(d.log_prob(support), 0))
    np.testing.assert_allclose(total, 1.0, rtol=1e-10)


def test_enumerate_support_needs_one_total_count():
    d = dist.Binomial(jnp.array([2, 3]), probs=0.5)
    with pytest.raises(ValueError, match="total_count"):
        d.enumerate_support()


def test_enumerate_support_through_wrappers():
    d = dist.Bernoulli(probs=0.3).expand((2, 3))
    assert d.has_enumerate_support
    assert d.enumerate_support().shape == (2, 2, 3)
    assert d.enumerate_support(expand=False).shape == (2, 1, 1)
    masked = dist.Bernoulli(probs=jnp.full(3, 0.3)).mask(jnp.array([True, False, True]))
    assert masked.has_enumerate_support
    np.testing.assert_array_equal(masked.enumerate_support(), [[0, 0, 0], [1, 1, 1]])
    assert not dist.Normal().has_enumerate_support
    with pytest.raises(NotImplementedError):
        dist.Normal().enumerate_support()


def test_wrappers_pass_methods_through():
    base = dist.Normal(jnp.array([0.0, 1.0]), 2.0)
    np.testing.assert_allclose(
        base.expand((3, 2)).cdf(0.5), np.tile(base.cdf(0.5), (3, 1))
    )
    np.testing.assert_allclose(
        base.expand((3, 2)).entropy(), np.tile(base.entropy(), (3, 1))
    )
    np.testing.assert_allclose(base.to_event(1).entropy(), base.entropy().sum())


# --- infer_shapes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, args, kwargs, expected",
    [
        (dist.Normal, ((3, 1), (4,)), {}, ((3, 4), ())),
        (dist.Gamma, ((2,),), {"rate": ()}, ((2,), ())),
        (dist.Dirichlet, ((5, 3),), {}, ((5,), (3,))),
        (dist.MultivariateNormal, ((4, 2),), {"scale_tril": (2, 2)}, ((4,), (2,))),
        (dist.Categorical, (), {"logits": (6, 3)}, ((6,), ())),
        (dist.LKJCholesky, (3,), {"concentration": (2,)}, ((2,), (3, 3))),
    ],
    ids=["normal", "gamma", "dirichlet", "mvn", "categorical", "lkj"],
)
def test_infer_shapes(cls, args, kwargs, expected):
    assert cls.infer_shapes(*args, **kwargs) == expected


# --- constraints ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "constraint",
    [
        constraints.real,
        constraints.positive,
        constraints.unit_interval,
        constraints.interval(-1.0, 3.0),
        constraints.simplex,
        constraints.ordered_vector,
        constraints.lower_cholesky,
        constraints.corr_cholesky,
        constraints.corr_matrix,
        constraints.positive_definite,
        constraints.boolean,
        constraints.nonnegative_integer,
        constraints.integer_interval(2, 5),
        constraints.independent(constraints.positive, 1),
    ],
    ids=repr,
)
def test_constraint_check_and_feasible_like(constraint):
    prototype = jnp.zeros((2, 3, 3))
    point = constraint.feasible_like(prototype)
    assert point.shape == prototype.shape
    ok = constraint.check(point)
    assert bool(jnp.all(ok))
    assert ok.shape == prototype.shape[: prototype.ndim - constraint.event_dim]

"""kl_divergence: every registered pair against a Monte Carlo estimate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl.distributions as dist
from core_ppl.distributions import kl_divergence, register_kl

pytestmark = pytest.mark.usefixtures("x64")

NUM_DRAWS = 5000


def _spd(rng, k):
    a = rng.normal(size=(k, k))
    return a @ a.T + k * np.eye(k)


def _mvn(rng):
    k = 3
    return dist.MultivariateNormal(rng.normal(size=k), covariance_matrix=_spd(rng, k))


# (id, p factory, q factory); each factory takes a numpy Generator.
PAIRS = [
    (
        "normal",
        lambda r: dist.Normal(r.normal(size=2), r.uniform(0.5, 2, 2)),
        lambda r: dist.Normal(r.normal(size=2), r.uniform(0.5, 2, 2)),
    ),
    ("mvn", _mvn, _mvn),
    (
        "independent",
        lambda r: dist.Normal(
            r.normal(size=(2, 3)), r.uniform(0.5, 2, (2, 3))
        ).to_event(1),
        lambda r: dist.Normal(
            r.normal(size=(2, 3)), r.uniform(0.5, 2, (2, 3))
        ).to_event(1),
    ),
    (
        "expanded",
        lambda r: dist.Normal(r.normal(), r.uniform(0.5, 2)).expand((3,)),
        lambda r: dist.Normal(r.normal(size=3), r.uniform(0.5, 2, 3)),
    ),
    (
        "gamma",
        lambda r: dist.Gamma(r.uniform(1, 4, 2), r.uniform(0.5, 2, 2)),
        lambda r: dist.Gamma(r.uniform(1, 4, 2), r.uniform(0.5, 2, 2)),
    ),
    (
        "chi2-gamma",
        lambda r: dist.Chi2(r.uniform(3, 6, 2)),
        lambda r: dist.Gamma(r.uniform(1, 4, 2), r.uniform(0.5, 2, 2)),
    ),
    (
        "beta",
        lambda r: dist.Beta(r.uniform(1, 4, 2), r.uniform(1, 4, 2)),
        lambda r: dist.Beta(r.uniform(1, 4, 2), r.uniform(1, 4, 2)),
    ),
    (
        "dirichlet",
        lambda r: dist.Dirichlet(r.uniform(1, 4, (2, 3))),
        lambda r: dist.Dirichlet(r.uniform(1, 4, (2, 3))),
    ),
    (
        "weibull-gamma",
        lambda r: dist.Weibull(r.uniform(0.5, 2, 2), r.uniform(1, 3, 2)),
        lambda r: dist.Gamma(r.uniform(1, 4, 2), r.uniform(0.5, 2, 2)),
    ),
    (
        "exponential",
        lambda r: dist.Exponential(r.uniform(0.5, 2, 2)),
        lambda r: dist.Exponential(r.uniform(0.5, 2, 2)),
    ),
    (
        "bernoulli",
        lambda r: dist.Bernoulli(probs=r.uniform(0.1, 0.9, 2)),
        lambda r: dist.Bernoulli(logits=r.normal(size=2)),
    ),
    (
        "categorical",
        lambda r: dist.Categorical(probs=r.dirichlet(np.ones(4), 2)),
        lambda r: dist.Categorical(logits=r.normal(size=(2, 4))),
    ),
    (
        "poisson",
        lambda r: dist.Poisson(r.uniform(1, 5, 2)),
        lambda r: dist.Poisson(r.uniform(1, 5, 2)),
    ),
    (
        "kumaraswamy-beta",
        lambda r: dist.Kumaraswamy(r.uniform(1, 4, 2), r.uniform(1, 4, 2)),
        lambda r: dist.Beta(r.uniform(1, 4, 2), r.uniform(1, 4, 2)),
    ),
    (
        "delta-normal",
        lambda r: dist.Delta(r.normal(size=2), log_density=r.normal(size=2)),
        lambda r: dist.Normal(r.normal(size=2), r.uniform(0.5, 2, 2)),
    ),
]


@pytest.mark.parametrize(
    "p_factory, q_factory", [c[1:] for c in PAIRS], ids=[c[0] for c in PAIRS]
)
def test_kl_matches_monte_carlo(p_factory, q_factory):
    rng = np.random.default_rng(1)
    p, q = p_factory(rng), q_factory(rng)
    kl = np.asarray(kl_divergence(p, q))
    batch = jnp.broadcast_shapes(p.batch_shape, q.batch_shape)
    assert kl.shape == batch
    x = p.sample(jax.random.PRNGKey(0), (NUM_DRAWS,))
    ratio = np.asarray(p.log_prob(x) - q.log_prob(x))
    mean, sd = ratio.mean(0), ratio.std(0)
    # 5 standard errors, plus round-off where the ratio is constant (Delta).
    np.testing.assert_array_less(np.abs(kl - mean), 5 * sd / np.sqrt(NUM_DRAWS) + 1e-9)
    assert np.all(kl >= -1e-12) or isinstance(p, dist.Delta)


@pytest.mark.parametrize("b", [0.3, 0.5, 0.8, 2.0])
def test_kumaraswamy_with_a_1_is_a_beta(b):
    """Kumaraswamy(1, b) is Beta(1, b): its KL to a Beta must equal the
    closed-form Beta-Beta one, also for small b, where the series behind the
    Kumaraswamy formula converges slowly (its tail is summed as an
    integral)."""
    q = dist.Beta(2.0, 4.0)
    kumaraswamy = kl_divergence(dist.Kumaraswamy(1.0, b), q)
    beta = kl_divergence(dist.Beta(1.0, b), q)
    np.testing.assert_allclose(kumaraswamy, beta, rtol=1e-4)


def test_kl_of_a_distribution_with_itself_is_zero():
    rng = np.random.default_rng(2)
    mixed = ("weibull-gamma", "kumaraswamy-beta", "delta-normal")
    same_type = [c for c in PAIRS if c[0] not in mixed]
    for _, factory, _ in same_type:
        p = factory(rng)
        np.testing.assert_allclose(kl_divergence(p, p), 0.0, atol=1e-10)


def test_kl_errors():
    with pytest.raises(NotImplementedError, match=r"\(Cauchy, Normal\)"):
        kl_divergence(dist.Cauchy(0.0, 1.0), dist.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match="event shapes differ"):
        kl_divergence(dist.Normal(jnp.zeros(2)).to_event(1), dist.Normal(jnp.zeros(2)))
    with pytest.raises(NotImplementedError, match="reinterpreted_batch_ndims"):
        kl_divergence(
            dist.Normal(jnp.zeros((2, 2))).to_event(2),
            dist.Normal(jnp.zeros((2, 2))).to_event(1).to_event(1),
        )
    with pytest.raises(TypeError, match="Distribution subclasses"):
        register_kl(int, dist.Normal)


def test_register_kl_dispatches_to_the_nearest_pair():
    class Wide(dist.Normal):
        pass

    @register_kl(Wide, dist.Normal)
    def _kl_wide(p, q):
        return jnp.full(p.batch_shape, 7.0)

    np.testing.assert_array_equal(kl_divergence(Wide(0.0, 1.0), dist.Normal()), 7.0)
    # The reverse pair still uses Normal/Normal.
    np.testing.assert_allclose(kl_divergence(dist.Normal(), Wide(0.0, 1.0)), 0.0)


def test_kl_is_differentiable():
    grad = jax.grad(lambda m: kl_divergence(dist.Normal(m, 1.0), dist.Normal(0.0, 2.0)))
    np.testing.assert_allclose(grad(1.5), 1.5 / 4.0)

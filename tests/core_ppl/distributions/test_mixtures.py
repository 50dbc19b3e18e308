"""Mixtures: log densities by hand with scipy, moments within Monte Carlo error,
shapes and validation, and a NUTS fit of a two-component Gaussian mixture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.distributions import constraints
from core_ppl.infer import MCMC, NUTS

from .checks import check_moments

pytestmark = pytest.mark.usefixtures("x64")

NUM_DRAWS = 20000
WEIGHTS = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
LOCS, SCALES = np.array([-1.0, 2.0]), np.array([0.5, 1.5])
MVN_LOCS = np.array([[0.0, 0.0], [3.0, 1.0]])
MVN_COVS = np.array([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.5], [0.5, 1.0]]])
MVN_LOGITS = np.array([0.3, -0.2])


def _normal_mixture():
    # Batch of 3 mixtures sharing two components, weights given as probs.
    return dist.MixtureSameFamily(
        dist.Categorical(probs=WEIGHTS), dist.Normal(LOCS, SCALES)
    )


def _mvn_mixture():
    # One mixture of two bivariate normals, weights given as logits.
    return dist.MixtureSameFamily(
        dist.Categorical(logits=MVN_LOGITS),
        dist.MultivariateNormal(MVN_LOCS, covariance_matrix=MVN_COVS),
    )


def _general_mixture():
    return dist.Mixture(
        dist.Categorical(probs=np.array([0.3, 0.7])),
        [dist.Normal(0.0, 1.0), dist.Laplace(2.0, 1.5)],
    )


MIXTURES = pytest.mark.parametrize(
    "make",
    [_normal_mixture, _mvn_mixture, _general_mixture],
    ids=["normal", "mvn", "general"],
)


# --- log_prob by hand ----------------------------------------------------------------


def test_same_family_univariate_log_prob():
    d = _normal_mixture()
    assert d.batch_shape == (3,) and d.event_shape == () and d.mixture_size == 2
    x = np.linspace(-4.0, 5.0, 7)[:, None]  # broadcasts against the batch
    expected = logsumexp(
        np.log(WEIGHTS) + st.norm.logpdf(x[..., None], LOCS, SCALES), axis=-1
    )
    np.testing.assert_allclose(d.log_prob(x), expected, rtol=1e-12)
    # Far in the tail every component density underflows; logsumexp does not.
    far = d.log_prob(jnp.array(60.0))
    assert bool(jnp.all(jnp.isfinite(far)))
    # Normalised component_log_probs are the posterior component probabilities.
    joint = np.log(WEIGHTS) + st.norm.logpdf(x[..., None], LOCS, SCALES)
    responsibilities = jax.nn.softmax(d.component_log_probs(x), axis=-1)
    np.testing.assert_allclose(
        responsibilities, np.exp(joint - expected[..., None]), rtol=1e-10
    )


def test_same_family_multivariate_log_prob():
    d = _mvn_mixture()
    assert d.batch_shape == () and d.event_shape == (2,)
    y = np.random.default_rng(0).normal(size=(5, 2)) * 2
    log_w = MVN_LOGITS - logsumexp(MVN_LOGITS)
    per_component = [
        log_w[k] + st.multivariate_normal(MVN_LOCS[k], MVN_COVS[k]).logpdf(y)
        for k in range(2)
    ]
    expected = logsumexp(np.stack(per_component, -1), axis=-1)
    np.testing.assert_allclose(d.log_prob(y), expected, rtol=1e-12)


def test_general_mixture_log_prob():
    d = _general_mixture()
    assert isinstance(d, dist.MixtureGeneral) and d.support is constraints.real
    x = np.array([-3.0, 0.0, 1.5, 8.0])
    expected = np.logaddexp(
        np.log(0.3) + st.norm.logpdf(x),
        np.log(0.7) + st.laplace.logpdf(x, 2.0, 1.5),
    )
    np.testing.assert_allclose(d.log_prob(x), expected, rtol=1e-12)


def test_cdf_of_univariate_mixtures():
    x = np.linspace(-4.0, 5.0, 7)[:, None]
    expected = np.sum(WEIGHTS * st.norm.cdf(x[..., None], LOCS, SCALES), axis=-1)
    np.testing.assert_allclose(_normal_mixture().cdf(x), expected, rtol=1e-12)
    # A list of components works the same (families that define cdf).
    general = dist.Mixture(
        dist.Categorical(probs=np.array([0.3, 0.7])),
        [dist.Normal(0.0, 1.0), dist.Normal(2.0, 1.5)],
    )
    x = np.array([-1.0, 0.5, 3.0])
    expected = 0.3 * st.norm.cdf(x) + 0.7 * st.norm.cdf(x, 2.0, 1.5)
    np.testing.assert_allclose(general.cdf(x), expected, rtol=1e-12)
    with pytest.raises(NotImplementedError, match="univariate"):
        _mvn_mixture().cdf(jnp.zeros(2))


# --- sampling moments ------------------------------------------------------------


def _hand_moments(weights, means, variances):
    # Law of total variance, written out for an independent check.
    mean = np.sum(weights * means, -1)
    var = np.sum(weights * (variances + means**2), -1) - mean**2
    return mean, var


@jax.jit
def _draw(d, key):
    return d.sample_with_intermediates(key, (NUM_DRAWS,))


@MIXTURES
def test_sample_moments(make):
    d = make()
    draws, (indices,) = _draw(d, jax.random.PRNGKey(0))
    assert draws.shape == d.shape((NUM_DRAWS,))
    assert indices.shape == (NUM_DRAWS,) + d.batch_shape
    check_moments(np.asarray(draws), d.mean, d.variance)
    # The component indices follow the weights (binomial error per category).
    probs = np.asarray(jnp.exp(d._log_weights()))
    freq = np.stack([np.mean(np.asarray(indices) == k, 0) for k in range(2)], -1)
    np.testing.assert_array_less(
        np.abs(freq - probs), 5 * np.sqrt(probs * (1 - probs) / NUM_DRAWS)
    )


def test_moments_by_hand():
    d = _normal_mixture()
    mean, var = _hand_moments(WEIGHTS, LOCS, SCALES**2)
    np.testing.assert_allclose(d.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(d.variance, var, rtol=1e-12)
    w = np.exp(MVN_LOGITS - logsumexp(MVN_LOGITS))
    d = _mvn_mixture()
    for j in range(2):
        mean, var = _hand_moments(w, MVN_LOCS[:, j], MVN_COVS[:, j, j])
        np.testing.assert_allclose(d.mean[j], mean, rtol=1e-12)
        np.testing.assert_allclose(d.variance[j], var, rtol=1e-12)


# --- shapes, wrappers, pytrees -------------------------------------------------------


@jax.jit
def _through_wrappers(d, key):
    # One program per mixture, which also passes d through jit as a pytree
    # (a list of components included).
    expanded = d.expand((4,) + d.batch_shape)
    draws = expanded.sample(key, (2,))
    return {
        "draws": draws,
        "log_prob": d.log_prob(draws),
        "expanded": expanded.log_prob(draws),
        "joint": expanded.to_event(1).log_prob(draws),
    }


@MIXTURES
def test_shapes_expand_to_event_and_jit(make):
    d = make()
    out = _through_wrappers(d, jax.random.PRNGKey(1))
    batch = (4,) + d.batch_shape
    assert out["draws"].shape == (2,) + batch + d.event_shape
    assert out["log_prob"].shape == out["expanded"].shape == (2,) + batch
    np.testing.assert_allclose(out["expanded"], out["log_prob"])
    np.testing.assert_allclose(out["joint"], out["log_prob"].sum(-1))
    np.testing.assert_allclose(d.log_prob(out["draws"]), out["log_prob"], rtol=1e-12)
    joint = d.expand(batch).to_event(1)
    assert joint.batch_shape == batch[:-1]
    assert joint.event_shape == batch[-1:] + d.event_shape


def test_vmap_over_fully_batched_mixture():
    # vmap maps every leaf: the weights and the components carry the batch axis.
    locs = jnp.stack([jnp.asarray(LOCS)] * 3)
    d = dist.MixtureSameFamily(
        dist.Categorical(probs=WEIGHTS), dist.Normal(locs, jnp.asarray(SCALES))
    )
    mapped = jax.vmap(lambda d: d.log_prob(0.5))(d)
    np.testing.assert_allclose(mapped, d.log_prob(0.5), rtol=1e-12)
    assert jax.vmap(lambda d: jnp.asarray(len(d.batch_shape)))(d).tolist() == [0] * 3


def test_discrete_components():
    d = dist.MixtureSameFamily(
        dist.Categorical(probs=np.array([0.4, 0.6])), dist.Poisson(np.array([1.0, 6.0]))
    )
    assert d.is_discrete
    k = np.arange(5)
    expected = np.log(0.4 * st.poisson.pmf(k, 1.0) + 0.6 * st.poisson.pmf(k, 6.0))
    np.testing.assert_allclose(d.log_prob(k), expected, rtol=1e-12)


# --- validation ------------------------------------------------------------------


def test_argument_errors_name_the_problem():
    mixing = dist.Categorical(probs=np.array([0.5, 0.5]))
    with pytest.raises(TypeError, match="mixing_distribution must be a Categorical"):
        dist.MixtureSameFamily(dist.Normal(), dist.Normal(jnp.zeros(2), 1.0))
    with pytest.raises(ValueError, match="rightmost batch dimension"):
        dist.MixtureSameFamily(mixing, dist.Normal(jnp.zeros(3), 1.0))
    with pytest.raises(ValueError, match="do not broadcast"):
        dist.MixtureSameFamily(
            dist.Categorical(probs=jnp.full((4, 2), 0.5)),
            dist.Normal(jnp.zeros((3, 2)), 1.0),
        )
    with pytest.raises(ValueError, match="3 component_distributions"):
        dist.MixtureGeneral(mixing, [dist.Normal()] * 3)
    with pytest.raises(ValueError, match="different supports"):
        dist.Mixture(mixing, [dist.Normal(), dist.Gamma(2.0)])
    mvn = dist.MultivariateNormal(jnp.zeros(2), jnp.eye(2))
    with pytest.raises(ValueError, match="one event shape"):
        dist.Mixture(mixing, [dist.Normal(), mvn])
    with pytest.raises(TypeError, match="list of Distributions"):
        dist.MixtureGeneral(mixing, [dist.Normal(), 1.0])
    with pytest.raises(ValueError, match="support= applies"):
        dist.Mixture(mixing, dist.Normal(jnp.zeros(2), 1.0), support=constraints.real)
    # An explicit support lets differing supports mix.
    mixed = dist.Mixture(
        mixing, [dist.Normal(), dist.Gamma(2.0)], support=constraints.real
    )
    assert mixed.support is constraints.real
    # The weights are validated by the Categorical itself.
    with pytest.raises(ValueError, match="'probs'"):
        dist.Categorical(probs=np.array([0.5, 0.6]), validate_args=True)
    strict = dist.MixtureSameFamily(
        mixing, dist.Gamma(jnp.ones(2)), validate_args=True
    )
    with pytest.raises(ValueError, match="support"):
        strict.log_prob(-1.0)


# --- NUTS on a mixture likelihood -------------------------------------------------

TRUE_WEIGHTS, TRUE_LOCS, NUM_POINTS = np.array([0.3, 0.7]), np.array([-2.0, 3.0]), 200


def _gmm(y):
    weights = ppl.sample("weights", dist.Dirichlet(jnp.ones(2)))
    # Ordered locations remove the label-switching symmetry of the posterior.
    locs = ppl.sample(
        "locs", dist.ImproperUniform(constraints.ordered_vector, (), (2,))
    )
    ppl.factor("locs_prior", dist.Normal(0.0, 10.0).log_prob(locs).sum())
    scale = ppl.sample("scale", dist.HalfNormal(2.0))
    components = dist.Normal(locs, scale)
    with ppl.plate("data", y.shape[0]):
        ppl.sample(
            "y",
            dist.MixtureSameFamily(dist.Categorical(probs=weights), components),
            obs=y,
        )


@pytest.mark.slow
def test_nuts_recovers_a_two_component_gaussian_mixture():
    rng = np.random.default_rng(0)
    labels = rng.choice(2, size=NUM_POINTS, p=TRUE_WEIGHTS)
    y = jnp.asarray(rng.normal(TRUE_LOCS[labels], 1.0))
    mcmc = MCMC(NUTS(_gmm), num_warmup=300, num_samples=400, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), y, extra_fields=("diverging",))
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    assert np.all(samples["locs"][:, 1] > samples["locs"][:, 0])
    assert int(np.sum(mcmc.get_extra_fields()["diverging"])) == 0
    # The posterior concentrates around the truth: within 5 posterior sds
    # (the data's own deviation is about one sd; the Monte Carlo error of
    # the mean adds a small fraction of one).
    for name, truth in (("weights", TRUE_WEIGHTS), ("locs", TRUE_LOCS)):
        mean, sd = samples[name].mean(0), samples[name].std(0)
        np.testing.assert_array_less(np.abs(mean - truth), 5 * sd)
    assert abs(samples["scale"].mean() - 1.0) < 5 * samples["scale"].std()

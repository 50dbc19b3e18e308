"""Discrete distributions: integer/bool observations under ``jax.grad`` (every
discrete class), and the newer ones (BetaBinomial, Geometric, Multinomial, the
zero-inflated family) against scipy, their moments, supports and shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.diagnostics import effective_sample_size
from core_ppl.infer import MCMC, NUTS

from .checks import check_moments, score

# Float64: the scipy and finite-difference references need it.
pytestmark = pytest.mark.usefixtures("x64")

# --- integer, bool and float observations under jax.grad ----------------------------

# Each case: (id, distribution from a parameter array theta, theta, observed
# values). Every value is valid for every dtype tried, 0/1 included, so the
# same data can be passed as int32, bool and float32.
_SCALAR_VALUES = [0, 1, 1, 0]
_ONE_HOT = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]]
_PROBS = np.array([0.3, 0.6, 0.8, 0.5])
_LOGITS = np.array([-1.0, 0.5, 2.0, 0.0])
_RATES = np.array([0.5, 1.5, 3.0, 1.0])

GRAD_CASES = [
    ("Bernoulli-probs", lambda t: dist.Bernoulli(probs=t), _PROBS, _SCALAR_VALUES),
    ("Bernoulli-logits", lambda t: dist.Bernoulli(logits=t), _LOGITS, _SCALAR_VALUES),
    ("Binomial-probs", lambda t: dist.Binomial(3, probs=t), _PROBS, _SCALAR_VALUES),
    (
        "Binomial-logits",
        lambda t: dist.Binomial(3, logits=t),
        _LOGITS,
        _SCALAR_VALUES,
    ),
    (
        "Categorical-probs",
        lambda t: dist.Categorical(probs=t / t.sum()),
        np.array([0.2, 0.5, 0.3]),
        _SCALAR_VALUES,
    ),
    (
        "Categorical-logits",
        lambda t: dist.Categorical(logits=t),
        np.array([0.2, -0.5, 1.0]),
        _SCALAR_VALUES,
    ),
    ("Poisson", dist.Poisson, _RATES, _SCALAR_VALUES),
    ("GammaPoisson", lambda t: dist.GammaPoisson(t, 2.0), _RATES, _SCALAR_VALUES),
    (
        "NegativeBinomial2",
        lambda t: dist.NegativeBinomial2(t, 2.0),
        _RATES,
        _SCALAR_VALUES,
    ),
    (
        "BetaBinomial",
        lambda t: dist.BetaBinomial(t, 2.0, total_count=3),
        _RATES,
        _SCALAR_VALUES,
    ),
    ("Geometric-probs", lambda t: dist.Geometric(probs=t), _PROBS, _SCALAR_VALUES),
    (
        "Geometric-logits",
        lambda t: dist.Geometric(logits=t),
        _LOGITS,
        _SCALAR_VALUES,
    ),
    (
        "Multinomial-probs",
        lambda t: dist.Multinomial(probs=t / t.sum()),
        np.array([0.2, 0.5, 0.3]),
        _ONE_HOT,
    ),
    (
        "Multinomial-logits",
        lambda t: dist.Multinomial(1, logits=t),
        np.array([0.2, -0.5, 1.0]),
        _ONE_HOT,
    ),
    (
        "ZeroInflatedPoisson",
        lambda t: dist.ZeroInflatedPoisson(0.3, t),
        _RATES,
        _SCALAR_VALUES,
    ),
    (
        "ZeroInflatedPoisson-gate",
        lambda t: dist.ZeroInflatedPoisson(t, 2.0),
        _PROBS,
        _SCALAR_VALUES,
    ),
    (
        "ZeroInflatedNegativeBinomial2-gate_logits",
        lambda t: dist.ZeroInflatedNegativeBinomial2(3.0, 2.0, gate_logits=t),
        _LOGITS,
        _SCALAR_VALUES,
    ),
    (
        "ZeroInflatedDistribution-BetaBinomial",
        lambda t: dist.ZeroInflatedDistribution(
            dist.BetaBinomial(t, 1.5, total_count=4), gate=0.2
        ),
        _RATES,
        _SCALAR_VALUES,
    ),
]


def _central_difference(f, theta, step=1e-6):
    """Gradient of ``f`` at ``theta`` by central differences, coordinate-wise."""
    grad = np.zeros_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e.flat[i] = step
        grad.flat[i] = (float(f(theta + e)) - float(f(theta - e))) / (2 * step)
    return grad


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.float32])
@pytest.mark.parametrize(
    "build, theta, values",
    [c[1:] for c in GRAD_CASES],
    ids=[c[0] for c in GRAD_CASES],
)
def test_grad_with_integer_bool_and_float_values(build, theta, values, dtype):
    observed = np.asarray(values).astype(dtype)
    untouched = observed.copy()

    def total_log_prob(t):
        return build(t).log_prob(observed).sum()

    # jit: one compilation per case instead of one per eager operation.
    grad = jax.jit(jax.grad(total_log_prob))(jnp.asarray(theta))
    # Reference: finite differences of the log mass at float64 values, so it
    # depends neither on autodiff nor on the dtype of the observation.
    float_values = np.asarray(values, np.float64)
    reference = _central_difference(
        jax.jit(lambda t: build(t).log_prob(float_values).sum()), theta
    )
    assert grad.dtype == jnp.float64
    np.testing.assert_allclose(grad, reference, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(observed, untouched)
    assert observed.dtype == dtype


def test_poisson_grad_of_integer_counts_is_analytic():
    # The report's reproducer, in the float32 default users get:
    # d/dr sum(y log r - r) = y / r - 1.
    y = np.array([0, 1, 1], np.int32)
    with jax.enable_x64(False):
        rate = jnp.array([0.5, 2.0, 4.0])
        grad = jax.grad(lambda r: dist.Poisson(r).log_prob(y).sum())(rate)
    assert grad.dtype == jnp.float32
    np.testing.assert_allclose(grad, y / np.asarray(rate) - 1.0, rtol=1e-6)


def test_integer_values_validated_under_validate_args():
    d = dist.Binomial(3, probs=0.4, validate_args=True)
    np.testing.assert_allclose(
        d.log_prob(np.array([0, 3], np.int32)), st.binom.logpmf([0, 3], 3, 0.4)
    )
    with pytest.raises(ValueError, match="Binomial.*outside the support"):
        d.log_prob(np.array([4], np.int32))
    bern = dist.Bernoulli(logits=0.0, validate_args=True)
    np.testing.assert_allclose(bern.log_prob(np.array([True, False])), np.log(0.5))


def _poisson_glm(x, y=None):
    intercept = ppl.sample("intercept", dist.Normal(0.0, 2.0))
    slope = ppl.sample("slope", dist.Normal(0.0, 2.0))
    with ppl.plate("data", x.shape[0]):
        ppl.sample("y", dist.Poisson(jnp.exp(intercept + slope * x)), obs=y)


def _poisson_glm_map(x, y, prior_scale=2.0, num_iter=50):
    """Posterior mode of the GLM by Newton's method in NumPy."""
    design = np.stack([np.ones_like(x), x], axis=1)
    beta = np.zeros(2)
    for _ in range(num_iter):
        mu = np.exp(design @ beta)
        grad = design.T @ (y - mu) - beta / prior_scale**2
        hess = -(design.T * mu) @ design - np.eye(2) / prior_scale**2
        beta = beta - np.linalg.solve(hess, grad)
    return beta


def test_nuts_on_poisson_glm_with_integer_counts():
    rng = np.random.default_rng(0)
    x = rng.normal(size=100)
    y = rng.poisson(np.exp(0.5 + 0.8 * x)).astype(np.int32)
    # float32, the default a user's model runs in, with int32 counts observed.
    with jax.enable_x64(False):
        mcmc = MCMC(
            NUTS(_poisson_glm), num_warmup=300, num_samples=500, progress_bar=False
        )
        mcmc.run(
            jax.random.PRNGKey(0),
            jnp.asarray(x, jnp.float32),
            y=jnp.asarray(y),
            extra_fields=("diverging",),
        )
        samples = mcmc.get_samples()
        diverging = mcmc.get_extra_fields()["diverging"]
    assert samples["slope"].dtype == jnp.float32
    assert not bool(jnp.any(diverging))
    draws = np.stack([samples["intercept"], samples["slope"]], axis=1).astype(float)
    assert np.all(np.isfinite(draws))
    posterior_mean, posterior_sd = draws.mean(0), draws.std(0)
    ess = np.array([effective_sample_size(d[None]) for d in draws.T])
    # With 100 observations the posterior is close to Gaussian, so its mean
    # sits near the mode: 4 Monte Carlo standard errors, plus 0.1 posterior sd
    # for the mean-mode gap of the remaining skew.
    tolerance = 4 * posterior_sd / np.sqrt(ess) + 0.1 * posterior_sd
    np.testing.assert_array_less(
        np.abs(posterior_mean - _poisson_glm_map(x, y)), tolerance
    )


# --- the new distributions against scipy ---------------------------------------------


def _pos(rng, low=0.5, high=3.0, size=3):
    return rng.uniform(low, high, size=size)


def _zip_logpmf(x, d):
    gate, rate = np.asarray(d.gate), np.asarray(d.rate)
    positive = np.log1p(-gate) + st.poisson.logpmf(x, rate)
    zero = np.log(gate + (1 - gate) * st.poisson.pmf(0, rate))
    return np.where(x == 0, zero, positive)


def _zinb2_logpmf(x, d):
    gate = np.asarray(d.gate)
    conc = np.asarray(d.concentration)
    mean = np.asarray(d.base_dist.mean)
    nbinom = st.nbinom(conc, conc / (conc + mean))
    positive = np.log1p(-gate) + nbinom.logpmf(x)
    zero = np.log(gate + (1 - gate) * nbinom.pmf(0))
    return np.where(x == 0, zero, positive)


def _multinomial_logpmf(x, d):
    n, probs = np.asarray(d.total_count), np.asarray(d.probs)
    return np.array(
        [[st.multinomial.logpmf(row[j], n[j], probs[j]) for j in range(3)] for row in x]
    )


def _multinomial_case(param):
    def factory(rng):
        probs = rng.dirichlet(np.ones(4), size=3)
        # A category that can never be drawn, and a batch member with no
        # draws at all: the sampler must still put every draw somewhere valid.
        probs[1] = np.array([0.3, 0.0, 0.5, 0.2])
        with np.errstate(divide="ignore"):
            given = {"probs": probs, "logits": np.log(probs) + 1.7}[param]
        return dist.Multinomial(np.array([0, 3, 12]), **{param: given})

    return (f"Multinomial-{param}", factory, _multinomial_logpmf)


CASES = [
    (
        "BetaBinomial",
        lambda r: dist.BetaBinomial(_pos(r), _pos(r), np.array([1, 6, 20])),
        lambda x, d: st.betabinom.logpmf(
            x, d.total_count, d.concentration1, d.concentration0
        ),
    ),
    (
        "Geometric-probs",
        lambda r: dist.Geometric(probs=r.uniform(0.15, 0.9, 3)),
        # scipy counts the trials, successful one included: shift by one.
        lambda x, d: st.geom.logpmf(x + 1, d.probs),
    ),
    (
        "Geometric-logits",
        lambda r: dist.Geometric(logits=r.normal(size=3)),
        lambda x, d: st.geom.logpmf(x + 1, d.probs),
    ),
    _multinomial_case("probs"),
    _multinomial_case("logits"),
    (
        "ZeroInflatedPoisson",
        lambda r: dist.ZeroInflatedPoisson(r.uniform(0.1, 0.7, 3), _pos(r, 0.5, 6.0)),
        _zip_logpmf,
    ),
    (
        "ZeroInflatedNegativeBinomial2-gate",
        lambda r: dist.ZeroInflatedNegativeBinomial2(
            _pos(r, 1.0, 8.0), _pos(r), gate=r.uniform(0.1, 0.7, 3)
        ),
        _zinb2_logpmf,
    ),
    (
        "ZeroInflatedNegativeBinomial2-gate_logits",
        lambda r: dist.ZeroInflatedNegativeBinomial2(
            _pos(r, 1.0, 8.0), _pos(r, 2.0, 5.0), gate_logits=r.normal(size=3)
        ),
        _zinb2_logpmf,
    ),
]

NUM_DRAWS = 20000


@pytest.mark.parametrize(
    "factory, scipy_logpmf", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_log_prob_moments_and_support(factory, scipy_logpmf):
    d = factory(np.random.default_rng(0))
    draws = d.sample(jax.random.PRNGKey(1), (NUM_DRAWS,))
    assert draws.shape == d.shape((NUM_DRAWS,))
    assert jnp.issubdtype(draws.dtype, jnp.integer)
    log_prob, in_support, mean, variance = score(d, draws)
    assert log_prob.shape == (NUM_DRAWS,) + d.batch_shape
    # Multinomial's support also checks that each draw sums to total_count.
    assert bool(jnp.all(in_support)) and bool(jnp.all(jnp.isfinite(log_prob)))
    assert d.support.is_discrete
    # A mix of zeros and other values, so both branches of the zero-inflated
    # mass are compared.
    x = np.asarray(draws[:6])
    np.testing.assert_allclose(log_prob[:6], scipy_logpmf(x, d), rtol=1e-9, atol=1e-9)
    check_moments(np.asarray(draws, np.float64), mean, variance)


def test_zero_inflated_logits_match_probs():
    gate_logits = np.array([-2.0, 0.0, 3.0])
    by_logits = dist.ZeroInflatedNegativeBinomial2(4.0, 1.5, gate_logits=gate_logits)
    by_probs = dist.ZeroInflatedNegativeBinomial2(
        4.0, 1.5, gate=1 / (1 + np.exp(-gate_logits))
    )
    k = np.array([[0], [1], [7]])
    np.testing.assert_allclose(by_logits.log_prob(k), by_probs.log_prob(k), rtol=1e-12)
    np.testing.assert_allclose(by_logits.gate, by_probs.gate, rtol=1e-12)
    np.testing.assert_allclose(by_probs.gate_logits, gate_logits, rtol=1e-12)


def test_zero_inflated_mass_sums_to_one():
    d = dist.ZeroInflatedDistribution(dist.Binomial(5, probs=0.4), gate=0.25)
    k = np.arange(6)
    assert float(jnp.sum(jnp.exp(d.log_prob(k)))) == pytest.approx(1.0, abs=1e-12)


def test_mass_outside_the_support_is_zero():
    cases = [
        (dist.BetaBinomial(1.0, 2.0, total_count=4), [-1, 5, 0.5]),
        (dist.Geometric(probs=0.3), [-1, 2.5]),
        (dist.Multinomial(3, probs=[0.2, 0.8]), [[1, 1], [4, -1], [0.5, 2.5]]),
    ]
    for d, values in cases:
        log_prob = d.log_prob(jnp.asarray(values))
        np.testing.assert_array_equal(log_prob, -np.inf)


def test_geometric_with_certain_success():
    d = dist.Geometric(probs=1.0)
    np.testing.assert_array_equal(d.log_prob(jnp.array([0, 1])), [0.0, -np.inf])
    assert int(jnp.max(d.sample(jax.random.PRNGKey(0), (100,)))) == 0


def test_multinomial_support_feasible_point():
    support = dist.Multinomial(np.array([2, 5]), probs=np.full((2, 3), 1 / 3)).support
    point = support.feasible_like(jnp.zeros((2, 3)))
    assert support.event_dim == 1 and bool(jnp.all(support(point)))


# --- shapes, pytrees, validation ---------------------------------------------------


# Each: a distribution with batch shape (2,) and one valid value of it.
NEW_DISTRIBUTIONS = {
    "BetaBinomial": (
        lambda: dist.BetaBinomial(np.array([1.0, 2.0]), 3.0, 5),
        [0, 4],
    ),
    "Geometric": (lambda: dist.Geometric(logits=np.array([0.5, -0.5])), [3, 0]),
    "Multinomial": (
        lambda: dist.Multinomial(4, probs=np.array([[0.5, 0.5], [0.1, 0.9]])),
        [[1, 3], [4, 0]],
    ),
    "ZeroInflatedPoisson": (
        lambda: dist.ZeroInflatedPoisson(0.2, np.array([1.0, 4.0])),
        [0, 5],
    ),
    "ZeroInflatedNegativeBinomial2": (
        lambda: dist.ZeroInflatedNegativeBinomial2(
            np.array([1.0, 4.0]), 2.0, gate_logits=0.0
        ),
        [2, 0],
    ),
}


@pytest.mark.parametrize(
    "make, value", NEW_DISTRIBUTIONS.values(), ids=list(NEW_DISTRIBUTIONS)
)
def test_expand_to_event_and_pytree(make, value):
    d, value = make(), jnp.asarray(value)
    assert d.batch_shape == (2,)
    expanded = d.expand((3, 2))
    # Only the shape of the draws is checked here (the draws themselves are
    # checked above); eval_shape traces without compiling the sampler.
    draws = jax.eval_shape(lambda k: expanded.sample(k, (5,)), jax.random.PRNGKey(0))
    assert draws.shape == (5, 3, 2) + d.event_shape
    assert jnp.issubdtype(draws.dtype, jnp.integer)
    log_prob = d.log_prob(value)
    np.testing.assert_allclose(
        expanded.log_prob(value), jnp.broadcast_to(log_prob, (3, 2))
    )
    assert expanded.mean.shape == expanded.variance.shape == (3, 2) + d.event_shape
    independent = d.to_event(1)
    assert independent.batch_shape == () and independent.event_shape[:1] == (2,)
    np.testing.assert_allclose(independent.log_prob(value), d.log_prob(value).sum())
    # Through jit (a pytree) and vmap over the batch axis of its leaves.
    np.testing.assert_allclose(jax.jit(lambda d: d.log_prob(value))(d), log_prob)
    vmapped = jax.vmap(lambda d, x: d.log_prob(x))(d, value)
    np.testing.assert_allclose(vmapped, log_prob)


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda: dist.BetaBinomial(-1.0, 1.0, validate_args=True),
            "BetaBinomial.*'concentration1'",
        ),
        (
            lambda: dist.BetaBinomial(1.0, 1.0, total_count=2.5, validate_args=True),
            "BetaBinomial.*'total_count'",
        ),
        (lambda: dist.Geometric(probs=1.5, validate_args=True), "Geometric.*'probs'"),
        (
            lambda: dist.Multinomial(3, probs=[0.5, 0.6], validate_args=True),
            "Multinomial.*'probs'",
        ),
        (
            lambda: dist.Multinomial(-1, probs=[0.5, 0.5], validate_args=True),
            "Multinomial.*'total_count'",
        ),
        (
            lambda: dist.ZeroInflatedPoisson(1.2, 1.0, validate_args=True),
            "ZeroInflatedPoisson.*'gate'",
        ),
        (
            lambda: dist.ZeroInflatedPoisson(0.2, -1.0, validate_args=True),
            "ZeroInflatedPoisson.*'rate'",
        ),
        (
            lambda: dist.ZeroInflatedNegativeBinomial2(
                -1.0, 1.0, gate=0.1, validate_args=True
            ),
            "ZeroInflatedNegativeBinomial2.*'mean'",
        ),
        (
            lambda: dist.ZeroInflatedNegativeBinomial2(
                1.0, 0.0, gate=0.1, validate_args=True
            ),
            "ZeroInflatedNegativeBinomial2.*'concentration'",
        ),
        (
            lambda: dist.ZeroInflatedNegativeBinomial2(1.0, 1.0),
            "exactly one of 'gate' or 'gate_logits', got neither",
        ),
        (
            lambda: dist.ZeroInflatedDistribution(dist.Normal(), gate=0.1),
            "ZeroInflatedDistribution: base_dist must be a discrete",
        ),
        (lambda: dist.Multinomial(3, probs=0.5), "Multinomial: probs needs a last"),
        (
            lambda: dist.BetaBinomial(np.ones(2), np.ones(3)),
            "BetaBinomial.*concentration1 with shape \\(2,\\)",
        ),
    ],
)
def test_bad_parameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_values_outside_support_raise_under_validate_args():
    with pytest.raises(ValueError, match="Multinomial.*outside the support"):
        dist.Multinomial(3, probs=[0.5, 0.5], validate_args=True).log_prob([1, 1])
    with pytest.raises(ValueError, match="ZeroInflatedPoisson.*outside the support"):
        dist.ZeroInflatedPoisson(0.5, 1.0, validate_args=True).log_prob(-1)


def test_zero_inflated_base_must_be_a_distribution():
    with pytest.raises(TypeError, match="base_dist must be a Distribution"):
        dist.ZeroInflatedDistribution(3.0, gate=0.1)


# --- Bernoulli(logits): value and gradient over the whole range of logits ---------


def test_bernoulli_logits_log_prob_and_gradient_at_extreme_logits():
    logits = np.array([-1e4, -100.0, -30.0, -1.0, 0.0, 1e-8, 1.0, 30.0, 100.0, 1e4])
    for value in (0.0, 1.0):
        log_prob = dist.Bernoulli(logits=logits).log_prob(np.full_like(logits, value))
        # log sigmoid(l) = -log(1 + e^-l) and log(1 - sigmoid(l)) = -log(1 + e^l),
        # by NumPy's logaddexp in float64.
        sign = 1.0 if value else -1.0
        # v * l - log(1 + e^l) cancels for v = 1, l >> 0: rounding of l remains.
        reference = -np.logaddexp(0.0, -sign * logits)
        rounding = 4 * np.finfo(np.float64).eps * np.maximum(np.abs(logits), 1.0)
        error = np.abs(log_prob - reference)
        assert np.all(error <= 1e-12 * np.abs(reference) + rounding)
        # d/dl log p(v | l) = v - sigmoid(l); sigmoid(0) = 1/2 exactly.
        grad = jax.vmap(
            jax.grad(lambda t: dist.Bernoulli(logits=t).log_prob(value))
        )(jnp.asarray(logits))
        np.testing.assert_allclose(grad, value - st.logistic.cdf(logits), atol=1e-15)
    half = jax.grad(lambda t: dist.Bernoulli(logits=t).log_prob(1.0))(0.0)
    assert float(half) == 0.5

"""More discrete distributions: the probs/logits classes of Bernoulli and
Categorical, :class:`DiscreteUniform`, :class:`OrderedLogistic` and
:class:`DirichletMultinomial`.

``BernoulliProbs(probs)`` and ``BernoulliLogits(logits)`` are subclasses of
:class:`Bernoulli` fixed to one parametrisation (likewise for Categorical),
so ``isinstance(d, dist.Bernoulli)`` holds for all three and
``dist.Bernoulli(logits=...)`` keeps working as before.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from core_ppl.distributions import constraints
from core_ppl.distributions.continuous import Dirichlet
from core_ppl.distributions.discrete import (
    Bernoulli,
    Categorical,
    Multinomial,
    _DiscreteDistribution,
    _float_params,
    _int_dtype,
    _MultinomialSupport,
    _where_support,
)
from core_ppl.distributions.distribution import (
    as_float_array,
    broadcast_param_shapes,
    check_param,
)

__all__ = [
    "BernoulliLogits",
    "BernoulliProbs",
    "CategoricalLogits",
    "CategoricalProbs",
    "DirichletMultinomial",
    "DiscreteUniform",
    "OrderedLogistic",
]


# --- one parametrisation each ------------------------------------------------------


class BernoulliProbs(Bernoulli):
    """:class:`Bernoulli` given by ``probs``, the probability of 1."""

    def __init__(self, probs, *, validate_args=None):
        super().__init__(probs=probs, validate_args=validate_args)


class BernoulliLogits(Bernoulli):
    """:class:`Bernoulli` given by ``logits``, the log-odds of 1."""

    def __init__(self, logits, *, validate_args=None):
        super().__init__(logits=logits, validate_args=validate_args)


class CategoricalProbs(Categorical):
    """:class:`Categorical` given by ``probs`` on the simplex (last axis)."""

    def __init__(self, probs, *, validate_args=None):
        super().__init__(probs=probs, validate_args=validate_args)


class CategoricalLogits(Categorical):
    """:class:`Categorical` given by unnormalised log probabilities ``logits``."""

    def __init__(self, logits, *, validate_args=None):
        super().__init__(logits=logits, validate_args=validate_args)


# --- discrete uniform --------------------------------------------------------------


class DiscreteUniform(_DiscreteDistribution):
    """Each integer ``low, low + 1, ..., high`` with equal probability.

    Parameters
    ----------
    low : array_like, default=0
        Smallest value, an integer.
    high : array_like, default=1
        Largest value, an integer >= ``low``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> d = dist.DiscreteUniform(2, 5)
    >>> float(d.mean), float(d.variance)
    (3.5, 1.25)
    """

    arg_constraints = {"low": constraints.real, "high": constraints.real}

    def __init__(self, low=0, high=1, *, validate_args=None):
        p, batch_shape = _float_params("DiscreteUniform", low=low, high=high)
        self.low, self.high = p["low"], p["high"]
        super().__init__(batch_shape, validate_args=validate_args)

    def _validate_params(self):
        super()._validate_params()
        name = "DiscreteUniform"
        integer = constraints.integer_interval(-jnp.inf, jnp.inf)
        check_param(name, "low", integer, self.low)
        check_param(name, "high", integer, self.high)
        check_param(name, "high", constraints.greater_than_eq(self.low), self.high)

    @property
    def support(self):
        return constraints.integer_interval(self.low, self.high)

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        u = jax.random.uniform(key, shape, dtype=self.low.dtype)
        draws = jnp.floor(self.low + u * (self.high - self.low + 1.0))
        # u < 1 strictly, but rounding of the product can reach high + 1.
        return jnp.minimum(draws, self.high).astype(_int_dtype())

    def log_prob(self, value):
        value = self._check_value(value)
        log_prob = -jnp.log(self.high - self.low + 1.0)
        log_prob = jnp.broadcast_to(
            log_prob, jnp.broadcast_shapes(jnp.shape(value), self.batch_shape)
        )
        return _where_support(self.support(value), log_prob)

    has_enumerate_support = True

    def enumerate_support(self, expand=True):
        """``low, low + 1, ...`` along a new leftmost axis, as many values as
        the widest range (as NumPyro; the bounds are batch-shaped, so the
        batch dims are never ones); needs concrete bounds."""
        if isinstance(self.low, jax.core.Tracer) or isinstance(
            self.high, jax.core.Tracer
        ):
            raise NotImplementedError(
                "DiscreteUniform.enumerate_support needs concrete low and high"
            )
        count = int(jnp.max(self.high - self.low)) + 1
        steps = jnp.arange(count, dtype=self.low.dtype)
        values = self.low + steps.reshape((-1,) + (1,) * len(self.batch_shape))
        if expand:
            values = jnp.broadcast_to(values, (count,) + self.batch_shape)
        return values

    def entropy(self):
        """``log(high - low + 1)``."""
        return jnp.broadcast_to(jnp.log(self.high - self.low + 1.0), self.batch_shape)

    @property
    def mean(self):
        return jnp.broadcast_to(0.5 * (self.low + self.high), self.batch_shape)

    @property
    def variance(self):
        n = self.high - self.low + 1.0
        return jnp.broadcast_to((n**2 - 1.0) / 12.0, self.batch_shape)


# --- ordinal regression ------------------------------------------------------------


class OrderedLogistic(CategoricalProbs):
    """The ordinal (cumulative logit) model: category ``k`` of ``K + 1``.

    ``P(Y <= k) = sigmoid(cutpoints[k] - predictor)`` for ``k < K``, so
    ``P(Y = k) = sigmoid(c_k - eta) - sigmoid(c_{k-1} - eta)`` with
    ``c_{-1} = -inf`` and ``c_K = inf``. A :class:`Categorical` over
    ``0, ..., K`` whose ``probs`` are these differences.

    Parameters
    ----------
    predictor : array_like
        The linear predictor ``eta`` (batch shape).
    cutpoints : array_like
        ``K`` increasing cutpoints on the last axis.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> d = dist.OrderedLogistic(0.0, [-1.0, 1.0])
    >>> [round(p, 4) for p in d.probs.tolist()]
    [0.2689, 0.4621, 0.2689]
    """

    def __init__(self, predictor, cutpoints, *, validate_args=None):
        predictor, cutpoints = as_float_array(predictor), as_float_array(cutpoints)
        if cutpoints.ndim < 1:
            raise ValueError(
                "OrderedLogistic: cutpoints need a last axis, got shape "
                f"{cutpoints.shape}"
            )
        batch_shape = broadcast_param_shapes(
            "OrderedLogistic",
            predictor=predictor.shape,
            cutpoints=cutpoints.shape[:-1],
        )
        self.predictor = jnp.broadcast_to(predictor, batch_shape)
        self.cutpoints = jnp.broadcast_to(cutpoints, batch_shape + cutpoints.shape[-1:])
        cdf = jax.nn.sigmoid(self.cutpoints - self.predictor[..., None])
        ones = jnp.ones(batch_shape + (1,), cdf.dtype)
        cdf = jnp.concatenate([jnp.zeros_like(ones), cdf, ones], axis=-1)
        super().__init__(jnp.diff(cdf, axis=-1), validate_args=validate_args)

    @property
    def arg_constraints(self):
        return {
            "predictor": constraints.real,
            "cutpoints": constraints.ordered_vector,
        }


# --- compound ----------------------------------------------------------------------


class DirichletMultinomial(_DiscreteDistribution):
    """Counts of ``total_count`` draws whose category probabilities are
    themselves ``Dirichlet(concentration)``.

    The mass is ``n! Gamma(a0) / Gamma(n + a0) prod_k Gamma(x_k + a_k) /
    (x_k! Gamma(a_k))`` with ``a0 = sum_k a_k``: overdispersed counts.

    Parameters
    ----------
    concentration : array_like
        Positive Dirichlet parameters on the last axis (size K).
    total_count : array_like, default=1
        Number of draws, a nonnegative integer.
    total_count_max : int, optional
        Accepted for compatibility with NumPyro and ignored (see
        :class:`Multinomial`).
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {
        "concentration": constraints.independent(constraints.positive, 1),
        "total_count": constraints.nonnegative_integer,
    }

    def __init__(
        self,
        concentration,
        total_count=1,
        *,
        total_count_max=None,
        validate_args=None,
    ):
        concentration = as_float_array(concentration)
        if concentration.ndim < 1:
            raise ValueError(
                "DirichletMultinomial: concentration needs a last axis over the "
                f"categories, got shape {concentration.shape}"
            )
        total_count = jnp.asarray(total_count)
        batch_shape = broadcast_param_shapes(
            "DirichletMultinomial",
            concentration=concentration.shape[:-1],
            total_count=total_count.shape,
        )
        event_shape = concentration.shape[-1:]
        self.concentration = jnp.broadcast_to(concentration, batch_shape + event_shape)
        self.total_count = jnp.broadcast_to(total_count, batch_shape)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @property
    def support(self):
        return _MultinomialSupport(self.total_count)

    def sample(self, key, sample_shape=()):
        key_p, key_n = jax.random.split(key)
        probs = Dirichlet(self.concentration).sample(key_p, sample_shape)
        return Multinomial(self.total_count, probs).sample(key_n)

    def log_prob(self, value):
        value = self._check_value(value)
        k = jnp.maximum(value, 0.0)  # keep gammaln off its poles outside
        a = self.concentration
        a0 = jnp.sum(a, axis=-1)
        n = self.total_count.astype(a.dtype)
        log_prob = (
            gammaln(n + 1.0)
            + gammaln(a0)
            - gammaln(n + a0)
            + jnp.sum(gammaln(k + a) - gammaln(k + 1.0) - gammaln(a), axis=-1)
        )
        return _where_support(self.support(value), log_prob)

    @property
    def mean(self):
        a = self.concentration
        return self.total_count[..., None] * a / jnp.sum(a, -1, keepdims=True)

    @property
    def variance(self):
        a = self.concentration
        a0 = jnp.sum(a, -1, keepdims=True)
        n = self.total_count[..., None]
        p = a / a0
        return n * p * (1.0 - p) * (n + a0) / (1.0 + a0)

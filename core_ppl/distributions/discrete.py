"""Discrete distributions.

Bernoulli, Binomial and Categorical take exactly one of ``probs`` or
``logits`` and store that one; the other is derived on access. Log
probabilities from logits use ``softplus``/``log_softmax`` so they stay finite
for large ``|logits|``. Samples are integer arrays and are not differentiable
(``has_rsample`` is False).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import expit, gammaln, xlog1py, xlogy

from core_ppl.distributions import constraints
from core_ppl.distributions.distribution import (
    Distribution,
    as_float_array,
    broadcast_param_shapes,
    check_param,
)

__all__ = [
    "Bernoulli",
    "Binomial",
    "Categorical",
    "GammaPoisson",
    "NegativeBinomial2",
    "Poisson",
]


def _int_dtype():
    return jnp.result_type(int)


class _DiscreteDistribution(Distribution):
    """Base of the distributions over integers: how their ``log_prob`` takes values.

    Observed counts usually arrive as integer or bool arrays. ``xlogy`` and
    ``xlog1py`` differentiate with respect to both arguments, and an integer
    argument has a ``float0`` tangent that no arithmetic accepts, so
    ``jax.grad`` of such a log mass with respect to the parameters fails.
    Converting the value to a floating dtype once, here, keeps every log mass
    (and the support check under ``validate_args``) on floats; integers up to
    ``2**24`` (float32) or ``2**53`` (float64) convert exactly.
    """

    def _check_value(self, value):
        return super()._check_value(as_float_array(value))


class _ProbsOrLogits(_DiscreteDistribution):
    """Mixin for distributions given by exactly one of ``probs`` or ``logits``.

    ``_probs_constraint`` is the constraint of ``probs`` (``unit_interval`` or
    ``simplex``); its ``event_dim`` is shared by ``logits``.
    """

    _probs_constraint = constraints.unit_interval

    def _store_probs_or_logits(self, probs, logits):
        name = type(self).__name__
        if (probs is None) == (logits is None):
            raise ValueError(
                f"{name}: give exactly one of 'probs' or 'logits', got "
                f"{'both' if probs is not None else 'neither'}"
            )
        if probs is not None:
            self.probs = as_float_array(probs)
        else:
            self.logits = as_float_array(logits)

    @property
    def _param(self):
        return self.__dict__.get("probs", self.__dict__.get("logits"))

    @property
    def arg_constraints(self):
        if "logits" in self.__dict__:
            event_dim = self._probs_constraint.event_dim
            logits = constraints.independent(constraints.real, event_dim)
            return {**self._other_constraints, "logits": logits}
        return {**self._other_constraints, "probs": self._probs_constraint}

    _other_constraints: dict = {}

    def __getattr__(self, name):
        # Only reached when normal lookup fails: derive the parameter that was
        # not given from the one that was.
        stored = self.__dict__
        if name == "probs" and "logits" in stored:
            return self._logits_to_probs(stored["logits"])
        if name == "logits" and "probs" in stored:
            return self._probs_to_logits(stored["probs"])
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    @staticmethod
    def _logits_to_probs(logits):
        return expit(logits)

    @staticmethod
    def _probs_to_logits(probs):
        return jnp.log(probs) - jnp.log1p(-probs)


class Bernoulli(_ProbsOrLogits):
    """A coin flip: 1 with probability ``probs`` (or ``sigmoid(logits)``), else 0.

    Parameters
    ----------
    probs : array_like, optional
        Probability of 1, in [0, 1].
    logits : array_like, optional
        Log-odds of 1. Give exactly one of ``probs`` and ``logits``.
    """

    support = constraints.boolean

    def __init__(self, probs=None, logits=None, *, validate_args=None):
        self._store_probs_or_logits(probs, logits)
        super().__init__(jnp.shape(self._param), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        draws = jax.random.bernoulli(key, self.probs, self.shape(sample_shape))
        return draws.astype(_int_dtype())

    def log_prob(self, value):
        value = self._check_value(value)
        if "logits" in self.__dict__:
            # v * l - log(1 + e^l): softplus keeps it finite for large |l|.
            return value * self.logits - jax.nn.softplus(self.logits)
        return xlogy(value, self.probs) + xlog1py(1 - value, -self.probs)

    @property
    def mean(self):
        return jnp.broadcast_to(self.probs, self.batch_shape)

    @property
    def variance(self):
        p = self.probs
        return jnp.broadcast_to(p * (1 - p), self.batch_shape)


class Binomial(_ProbsOrLogits):
    """Number of successes in ``total_count`` independent Bernoulli trials."""

    _other_constraints = {"total_count": constraints.nonnegative_integer}

    def __init__(self, total_count=1, probs=None, logits=None, *, validate_args=None):
        self._store_probs_or_logits(probs, logits)
        total_count = jnp.asarray(total_count)
        param_name = "probs" if "probs" in self.__dict__ else "logits"
        batch_shape = broadcast_param_shapes(
            "Binomial",
            total_count=total_count.shape,
            **{param_name: self._param.shape},
        )
        self.total_count = jnp.broadcast_to(total_count, batch_shape)
        self.__dict__[param_name] = jnp.broadcast_to(self._param, batch_shape)
        super().__init__(batch_shape, validate_args=validate_args)

    @property
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        n = jnp.broadcast_to(self.total_count, shape).astype(self.probs.dtype)
        draws = jax.random.binomial(key, n, jnp.broadcast_to(self.probs, shape))
        return draws.astype(_int_dtype())

    def log_prob(self, value):
        value = self._check_value(value)
        n = self.total_count
        log_comb = gammaln(n + 1.0) - gammaln(value + 1.0) - gammaln(n - value + 1.0)
        if "logits" in self.__dict__:
            # k log p + (n - k) log(1 - p) = k l - n softplus(l).
            return log_comb + value * self.logits - n * jax.nn.softplus(self.logits)
        p = self.probs
        return log_comb + xlogy(value, p) + xlog1py(n - value, -p)

    @property
    def mean(self):
        return jnp.broadcast_to(self.total_count * self.probs, self.batch_shape)

    @property
    def variance(self):
        p = self.probs
        return jnp.broadcast_to(self.total_count * p * (1 - p), self.batch_shape)


class Categorical(_ProbsOrLogits):
    """One of ``0, ..., K-1`` with probabilities ``probs`` (last axis, size K).

    ``logits`` are unnormalised log probabilities; ``probs`` are used as given
    (they should lie on the simplex; ``validate_args`` checks it).
    """

    _probs_constraint = constraints.simplex

    def __init__(self, probs=None, logits=None, *, validate_args=None):
        self._store_probs_or_logits(probs, logits)
        if jnp.ndim(self._param) < 1:
            raise ValueError(
                "Categorical: probs/logits need a last axis over the categories, "
                f"got shape {jnp.shape(self._param)}"
            )
        super().__init__(jnp.shape(self._param)[:-1], validate_args=validate_args)

    @staticmethod
    def _logits_to_probs(logits):
        return jax.nn.softmax(logits, axis=-1)

    @staticmethod
    def _probs_to_logits(probs):
        return jnp.log(probs)

    @property
    def num_categories(self):
        """Number of categories K."""
        return jnp.shape(self._param)[-1]

    @property
    def support(self):
        return constraints.integer_interval(0, self.num_categories - 1)

    def sample(self, key, sample_shape=()):
        return jax.random.categorical(
            key, self.logits, axis=-1, shape=self.shape(sample_shape)
        )

    def _log_pmf(self):
        if "logits" in self.__dict__:
            return jax.nn.log_softmax(self.logits, axis=-1)
        return jnp.log(self.probs)

    def log_prob(self, value):
        value = self._check_value(value)
        log_pmf = self._log_pmf()
        shape = jnp.broadcast_shapes(jnp.shape(value), self.batch_shape)
        log_pmf = jnp.broadcast_to(log_pmf, shape + log_pmf.shape[-1:])
        index = jnp.broadcast_to(value, shape).astype(_int_dtype())
        in_range = (index >= 0) & (index < self.num_categories)
        picked = jnp.take_along_axis(
            log_pmf, jnp.clip(index, 0, self.num_categories - 1)[..., None], axis=-1
        )[..., 0]
        return jnp.where(in_range & (value == index), picked, -jnp.inf)

    @property
    def mean(self):
        k = jnp.arange(self.num_categories, dtype=self._param.dtype)
        return jnp.sum(self.probs * k, axis=-1)

    @property
    def variance(self):
        k = jnp.arange(self.num_categories, dtype=self._param.dtype)
        return jnp.sum(self.probs * k**2, axis=-1) - self.mean**2


class Poisson(_DiscreteDistribution):
    """Counts with mean and variance ``rate``."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative_integer

    def __init__(self, rate, *, validate_args=None):
        self.rate = as_float_array(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        return jax.random.poisson(key, jnp.broadcast_to(self.rate, shape), shape)

    def log_prob(self, value):
        value = self._check_value(value)
        return xlogy(value, self.rate) - self.rate - gammaln(value + 1.0)

    @property
    def mean(self):
        return jnp.broadcast_to(self.rate, self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to(self.rate, self.batch_shape)


class GammaPoisson(_DiscreteDistribution):
    """Poisson counts whose rate is ``Gamma(concentration, rate)`` distributed.

    This is the negative binomial distribution; :class:`NegativeBinomial2`
    parametrises it by its mean.
    """

    arg_constraints = {
        "concentration": constraints.positive,
        "rate": constraints.positive,
    }
    support = constraints.nonnegative_integer

    def __init__(self, concentration, rate=1.0, *, validate_args=None):
        concentration, rate = as_float_array(concentration), as_float_array(rate)
        batch_shape = broadcast_param_shapes(
            type(self).__name__, concentration=concentration.shape, rate=rate.shape
        )
        self.concentration = jnp.broadcast_to(concentration, batch_shape)
        self.rate = jnp.broadcast_to(rate, batch_shape)
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        key_gamma, key_poisson = jax.random.split(key)
        shape = self.shape(sample_shape)
        conc = jnp.broadcast_to(self.concentration, shape)
        lam = jax.random.gamma(key_gamma, conc, shape, dtype=conc.dtype) / self.rate
        return jax.random.poisson(key_poisson, lam, shape)

    def log_prob(self, value):
        value = self._check_value(value)
        c, r = self.concentration, self.rate
        # p(k) = C(k + c - 1, k) (r / (1 + r))^c (1 / (1 + r))^k
        log_comb = gammaln(value + c) - gammaln(c) - gammaln(value + 1.0)
        # c log(r / (1 + r)) = -c log1p(1 / r): accurate when c, r are large.
        return log_comb - c * jnp.log1p(1.0 / r) - value * jnp.log1p(r)

    @property
    def mean(self):
        return jnp.broadcast_to(self.concentration / self.rate, self.batch_shape)

    @property
    def variance(self):
        c, r = self.concentration, self.rate
        return jnp.broadcast_to(c / r**2 * (1.0 + r), self.batch_shape)


class NegativeBinomial2(GammaPoisson):
    """Negative binomial with ``mean`` and ``concentration`` (variance ``mean +
    mean^2 / concentration``); large concentration approaches Poisson(mean).
    """

    def __init__(self, mean, concentration, *, validate_args=None):
        if validate_args:
            check_param("NegativeBinomial2", "mean", constraints.positive, mean)
        concentration = as_float_array(concentration)
        super().__init__(
            concentration,
            concentration / as_float_array(mean),
            validate_args=validate_args,
        )

"""Discrete distributions.

Bernoulli, Binomial, Categorical, Geometric and Multinomial take exactly one
of ``probs`` or ``logits`` and store that one; the other is derived on access.
Log probabilities from logits use ``softplus``/``log_softmax`` so they stay
finite for large ``|logits|``. Samples are integer arrays and are not
differentiable (``has_rsample`` is False). Every ``log_prob`` takes integer,
bool or float values alike (see :class:`_DiscreteDistribution`).

Zero inflation is one wrapper, :class:`ZeroInflatedDistribution`, that puts
extra mass ``gate`` at zero on top of any scalar discrete distribution;
:class:`ZeroInflatedPoisson` and :class:`ZeroInflatedNegativeBinomial2` are
that wrapper around a fixed base.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import expit, gammaincc, gammaln, xlog1py, xlogy

from core_ppl.distributions import constraints
from core_ppl.distributions.distribution import (
    Distribution,
    as_float_array,
    broadcast_param_shapes,
    check_param,
    is_tracer,
)

__all__ = [
    "Bernoulli",
    "BetaBinomial",
    "Binomial",
    "Categorical",
    "GammaPoisson",
    "Geometric",
    "Multinomial",
    "NegativeBinomial2",
    "Poisson",
    "ZeroInflatedDistribution",
    "ZeroInflatedNegativeBinomial2",
    "ZeroInflatedPoisson",
]


def _int_dtype():
    return jnp.result_type(int)


def _float_params(dist_name, **params):
    """Float arrays broadcast to their common shape, and that shape.

    ``None`` entries are left out. Broadcasting every parameter to the batch
    shape keeps ``vmap`` over a distribution's leaves consistent.
    """
    arrays = {k: as_float_array(v) for k, v in params.items() if v is not None}
    shape = broadcast_param_shapes(dist_name, **{k: v.shape for k, v in arrays.items()})
    return {k: jnp.broadcast_to(v, shape) for k, v in arrays.items()}, shape


def _log_beta(a, b):
    # Not jax.scipy.special.betaln: in jax 0.10 it is off by up to ~1e-7
    # relative even in float64 (e.g. a=2, b=10), which a count model's
    # log likelihood sums over every observation.
    return gammaln(a) + gammaln(b) - gammaln(a + b)


def _where_support(ok, log_prob):
    # Outside the support the mass is zero: log 0 = -inf.
    return jnp.where(ok, log_prob, -jnp.inf)


@jax.custom_jvp
def _log1p_exp(x):
    """``log(1 + exp(x))`` as ``max(x, 0) + log1p(exp(-|x|))``.

    The value is ``jax.nn.softplus``'s, but with its gradient it compiles to
    less element-wise work (softplus is a ``logaddexp`` whose own derivative
    guards infinities), and that is all the work a Bernoulli likelihood on
    large data (COVTYPE) does besides its two matrix-vector products
    (``benchmarks/paper_table.py`` times that gradient). The derivative is
    defined here because autodiff of the formula gets 0 at ``x = 0``
    (``d|x|/dx`` is 1 there), not 1/2.
    """
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@_log1p_exp.defjvp
def _log1p_exp_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    # One exp serves the value and sigmoid(x) = 1 / (1 + e^-x) = e^x / (1 + e^x).
    e = jnp.exp(-jnp.abs(x))
    sigmoid = jnp.where(x >= 0, 1.0, e) / (1.0 + e)
    return jnp.maximum(x, 0) + jnp.log1p(e), sigmoid * dx


def _entr(p, log_p):
    """``-p log p``, 0 where ``p == 0`` (where ``log p`` may be ``-inf``)."""
    return jnp.where(p > 0, -p * jnp.where(p > 0, log_p, 0.0), 0.0)


def _arange_support(n, batch_shape, expand):
    """``0..n-1`` along a new leftmost axis, as ``enumerate_support`` returns."""
    values = jnp.arange(n, dtype=_int_dtype())
    values = jnp.reshape(values, (n,) + (1,) * len(batch_shape))
    return jnp.broadcast_to(values, (n,) + tuple(batch_shape)) if expand else values


def _one_total_count(name, total_count):
    """The common ``total_count`` of a batch, which enumeration needs."""
    if is_tracer(total_count):
        raise ValueError(
            f"{name}.enumerate_support needs a concrete total_count (not traced "
            "under jit)"
        )
    values = np.unique(np.asarray(total_count))
    if values.size != 1:
        raise ValueError(
            f"{name}.enumerate_support needs one total_count for the whole batch, "
            f"got {values.tolist()}"
        )
    return int(values[0])


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
            # v * l - log(1 + e^l), with log(1 + e^l) finite for large |l|.
            return value * self.logits - _log1p_exp(self.logits)
        return xlogy(value, self.probs) + xlog1py(1 - value, -self.probs)

    has_enumerate_support = True

    def enumerate_support(self, expand=True):
        """``[0, 1]`` along a new leftmost axis (see ``Distribution``)."""
        return _arange_support(2, self.batch_shape, expand)

    def entropy(self):
        """``-E[log p(X)]``, of shape ``batch_shape``."""
        if "logits" in self.__dict__:
            logits = self.logits
            log_p, log_q = -jax.nn.softplus(-logits), -jax.nn.softplus(logits)
            p = jnp.exp(log_p)
            return _entr(p, log_p) + _entr(1.0 - p, log_q)
        p = self.probs
        return _entr(p, jnp.log(p)) + _entr(1.0 - p, jnp.log1p(-p))

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

    has_enumerate_support = True

    def enumerate_support(self, expand=True):
        """``0..total_count`` along a new leftmost axis; the batch must share
        one ``total_count``."""
        n = _one_total_count("Binomial", self.total_count)
        return _arange_support(n + 1, self.batch_shape, expand)

    def entropy(self):
        """``-E[log p(X)]`` by summing over the support (one ``total_count``)."""
        log_pmf = self.log_prob(self.enumerate_support())
        return jnp.sum(_entr(jnp.exp(log_pmf), log_pmf), axis=0)

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

    has_enumerate_support = True

    def enumerate_support(self, expand=True):
        """``0..K-1`` along a new leftmost axis (see ``Distribution``)."""
        return _arange_support(self.num_categories, self.batch_shape, expand)

    def entropy(self):
        """``-E[log p(X)]``, of shape ``batch_shape``."""
        log_pmf = self._log_pmf()
        return jnp.sum(_entr(jnp.exp(log_pmf), log_pmf), axis=-1)

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

    def cdf(self, value):
        """``P(X <= value)``: the regularised upper incomplete gamma function."""
        k = jnp.floor(jnp.asarray(value, self.rate.dtype))
        safe = jnp.where(k >= 0, k, 0.0)
        return jnp.where(k >= 0, gammaincc(safe + 1.0, self.rate), 0.0)

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


# --- more counts: beta-binomial, geometric ------------------------------------


class BetaBinomial(_DiscreteDistribution):
    """Binomial counts whose success probability is ``Beta(c1, c0)`` distributed.

    ``p(k) = C(n, k) B(k + c1, n - k + c0) / B(c1, c0)`` for ``k = 0, ..., n``;
    the beta prior spreads the counts more than a binomial with the same mean.

    Parameters
    ----------
    concentration1 : array_like
        First beta parameter ``c1 > 0`` (pseudo-successes).
    concentration0 : array_like
        Second beta parameter ``c0 > 0`` (pseudo-failures).
    total_count : array_like, default=1
        Number of trials ``n``, a nonnegative integer.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> d = dist.BetaBinomial(2.0, 2.0, total_count=4)
    >>> float(d.mean), round(float(d.variance), 6)
    (2.0, 1.6)
    """

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
        "total_count": constraints.nonnegative_integer,
    }

    def __init__(
        self, concentration1, concentration0, total_count=1, *, validate_args=None
    ):
        c1, c0 = as_float_array(concentration1), as_float_array(concentration0)
        total_count = jnp.asarray(total_count)
        batch_shape = broadcast_param_shapes(
            "BetaBinomial",
            concentration1=c1.shape,
            concentration0=c0.shape,
            total_count=total_count.shape,
        )
        self.concentration1 = jnp.broadcast_to(c1, batch_shape)
        self.concentration0 = jnp.broadcast_to(c0, batch_shape)
        self.total_count = jnp.broadcast_to(total_count, batch_shape)
        super().__init__(batch_shape, validate_args=validate_args)

    @property
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    def sample(self, key, sample_shape=()):
        key_beta, key_binomial = jax.random.split(key)
        shape = self.shape(sample_shape)
        c1 = jnp.broadcast_to(self.concentration1, shape)
        probs = jax.random.beta(key_beta, c1, self.concentration0, shape, c1.dtype)
        n = jnp.broadcast_to(self.total_count, shape).astype(c1.dtype)
        return jax.random.binomial(key_binomial, n, probs).astype(_int_dtype())

    def log_prob(self, value):
        value = self._check_value(value)
        n, c1, c0 = self.total_count, self.concentration1, self.concentration0
        # Outside 0..n the terms below hit gammaln's poles; clipping keeps
        # them (and their gradients) finite before the support mask.
        k = jnp.clip(value, 0, n)
        log_comb = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
        log_prob = log_comb + _log_beta(k + c1, n - k + c0) - _log_beta(c1, c0)
        return _where_support(self.support(value), log_prob)

    has_enumerate_support = True

    def enumerate_support(self, expand=True):
        """``0..total_count`` along a new leftmost axis; the batch must share
        one ``total_count``."""
        n = _one_total_count("BetaBinomial", self.total_count)
        return _arange_support(n + 1, self.batch_shape, expand)

    @property
    def mean(self):
        c1, c0 = self.concentration1, self.concentration0
        return self.total_count * c1 / (c1 + c0)

    @property
    def variance(self):
        n, c1, c0 = self.total_count, self.concentration1, self.concentration0
        total = c1 + c0
        return n * c1 * c0 * (total + n) / (total**2 * (total + 1.0))


class Geometric(_ProbsOrLogits):
    """Number of failures before the first success, each trial succeeding with
    probability ``probs`` (or ``sigmoid(logits)``): ``p(k) = (1 - p)^k p``.

    Parameters
    ----------
    probs : array_like, optional
        Success probability of one trial, in (0, 1].
    logits : array_like, optional
        Log-odds of success. Give exactly one of ``probs`` and ``logits``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> d = dist.Geometric(probs=0.25)
    >>> float(d.mean), float(d.variance)
    (3.0, 12.0)
    """

    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, *, validate_args=None):
        self._store_probs_or_logits(probs, logits)
        super().__init__(jnp.shape(self._param), validate_args=validate_args)

    def _log_probs_and_log1m(self):
        """``log p`` and ``log(1 - p)``, through softplus when given logits."""
        if "logits" in self.__dict__:
            return -jax.nn.softplus(-self.logits), -jax.nn.softplus(self.logits)
        return jnp.log(self.probs), jnp.log1p(-self.probs)

    def sample(self, key, sample_shape=()):
        # Inversion: floor(log(1 - u) / log(1 - p)) for u ~ U[0, 1).
        shape = self.shape(sample_shape)
        u = jax.random.uniform(key, shape, dtype=self._param.dtype)
        _, log1m_p = self._log_probs_and_log1m()
        return jnp.floor(jnp.log1p(-u) / log1m_p).astype(_int_dtype())

    def log_prob(self, value):
        value = self._check_value(value)
        log_p, log1m_p = self._log_probs_and_log1m()
        k = jnp.maximum(value, 0.0)
        # k * log(1 - p) with 0 * log 0 = 0, so p = 1 gives mass 1 at k = 0.
        log_prob = jnp.where(k == 0, 0.0, k * log1m_p) + log_p
        return _where_support(self.support(value), log_prob)

    def entropy(self):
        """``-E[log p(X)]`` for the number of failures before a success."""
        log_p, log_q = self._log_probs_and_log1m()
        p = jnp.exp(log_p)
        return (_entr(p, log_p) + _entr(1.0 - p, log_q)) / p

    @property
    def mean(self):
        # (1 - p) / p, which is exp(-logits) for the logit parametrisation.
        if "logits" in self.__dict__:
            return jnp.exp(-self.logits)
        return 1.0 / self.probs - 1.0

    @property
    def variance(self):
        return self.mean / self.probs


# --- multinomial ----------------------------------------------------------------


class _MultinomialSupport(constraints.Constraint):
    """Vectors of nonnegative integers (last axis) summing to ``upper_bound``."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def __call__(self, x):
        is_count = (x >= 0) & (x == jnp.floor(x))
        return jnp.all(is_count, axis=-1) & (jnp.sum(x, axis=-1) == self.upper_bound)

    def feasible_like(self, prototype):
        # Every trial in the first category.
        prototype = jnp.asarray(prototype)
        total = jnp.broadcast_to(self.upper_bound, prototype.shape[:-1])
        first = jnp.zeros(prototype.shape, prototype.dtype).at[..., 0].set(total)
        return first

    def __repr__(self):
        return f"multinomial(upper_bound={constraints._fmt(self.upper_bound)})"


def _draw_category(n_left, key_and_prob):
    """One step of the multinomial sampler: the count of the next category.

    Module level (not a closure) so that eager calls reuse the compiled scan.
    """
    key, prob = key_and_prob
    count = jax.random.binomial(key, n_left, prob)
    return n_left - count, count


class Multinomial(_ProbsOrLogits):
    """Counts of ``total_count`` independent draws over the categories of
    ``probs`` (last axis, size K); ``logits`` are unnormalised log probabilities.

    A draw has shape ``batch_shape + (K,)`` and sums to ``total_count``.

    Parameters
    ----------
    total_count : array_like, default=1
        Number of draws, a nonnegative integer (broadcast over the batch).
    probs : array_like, optional
        Category probabilities on the simplex, shape ``batch_shape + (K,)``.
    logits : array_like, optional
        Unnormalised log probabilities. Give exactly one of ``probs`` and
        ``logits``.
    total_count_max : int, optional
        Accepted for compatibility with NumPyro, whose sampler needs a static
        bound on ``total_count``. This sampler draws one binomial per category
        and needs none, so the value is ignored.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Notes
    -----
    ``sample`` draws the categories in turn: given the counts of the earlier
    ones, category ``k`` receives ``Binomial(n_left, p_k / sum_{j >= k} p_j)``
    of the ``n_left`` remaining draws, which is exact and costs K binomial
    draws whatever ``total_count`` is (traced values included).

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> d = dist.Multinomial(10, probs=[0.2, 0.3, 0.5])
    >>> d.batch_shape, d.event_shape
    ((), (3,))
    >>> d.mean.tolist()
    [2.0, 3.0, 5.0]
    """

    _probs_constraint = constraints.simplex
    _other_constraints = {"total_count": constraints.nonnegative_integer}

    def __init__(
        self,
        total_count=1,
        probs=None,
        logits=None,
        *,
        total_count_max=None,
        validate_args=None,
    ):
        self._store_probs_or_logits(probs, logits)
        param_name = "probs" if "probs" in self.__dict__ else "logits"
        param, total_count = self._param, jnp.asarray(total_count)
        if param.ndim < 1:
            raise ValueError(
                f"Multinomial: {param_name} needs a last axis over the categories, "
                f"got shape {param.shape}"
            )
        batch_shape = broadcast_param_shapes(
            "Multinomial",
            total_count=total_count.shape,
            **{param_name: param.shape[:-1]},
        )
        self.total_count = jnp.broadcast_to(total_count, batch_shape)
        self.__dict__[param_name] = jnp.broadcast_to(
            param, batch_shape + param.shape[-1:]
        )
        super().__init__(batch_shape, param.shape[-1:], validate_args=validate_args)

    _logits_to_probs = staticmethod(Categorical._logits_to_probs)
    _probs_to_logits = staticmethod(Categorical._probs_to_logits)

    @property
    def support(self):
        return _MultinomialSupport(self.total_count)

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        probs = jnp.broadcast_to(self.probs, shape)
        n = jnp.broadcast_to(self.total_count, shape[:-1]).astype(probs.dtype)
        # p_k / sum_{j >= k} p_j; the last category takes whatever is left.
        tail = jnp.flip(jnp.cumsum(jnp.flip(probs, -1), -1), -1)
        conditional = jnp.clip(jnp.where(tail > 0, probs / tail, 0.0), 0.0, 1.0)
        conditional = conditional.at[..., -1].set(1.0)
        keys = jax.random.split(key, shape[-1])
        xs = (keys, jnp.moveaxis(conditional, -1, 0))
        _, counts = lax.scan(_draw_category, n, xs)
        return jnp.moveaxis(counts, 0, -1).astype(_int_dtype())

    def log_prob(self, value):
        value = self._check_value(value)
        # Negative entries are outside the support; clipping keeps gammaln off
        # its poles so the masked terms stay finite.
        k = jnp.maximum(value, 0.0)
        if "logits" in self.__dict__:
            log_p = jax.nn.log_softmax(self.logits, axis=-1)
            # 0 * log 0 = 0 for categories with zero probability and no count.
            terms = jnp.where(k == 0, 0.0, k * log_p)
        else:
            terms = xlogy(k, self.probs)
        n = self.total_count
        log_norm = gammaln(n + 1.0) - jnp.sum(gammaln(k + 1.0), axis=-1)
        log_prob = log_norm + jnp.sum(terms, axis=-1)
        return _where_support(self.support(value), log_prob)

    @property
    def mean(self):
        return self.total_count[..., None] * self.probs

    @property
    def variance(self):
        p = self.probs
        return self.total_count[..., None] * p * (1.0 - p)


# --- zero inflation -------------------------------------------------------------


class ZeroInflatedDistribution(_DiscreteDistribution):
    """``0`` with probability ``gate``, otherwise a draw from ``base_dist``.

    The mass is ``gate + (1 - gate) p(0)`` at zero and ``(1 - gate) p(k)``
    elsewhere, where ``p`` is the mass of ``base_dist``: a point mass at zero
    mixed with a count distribution, for data with more zeros than the base
    explains.

    Parameters
    ----------
    base_dist : Distribution
        A discrete distribution over scalars (empty ``event_shape``).
    gate : array_like, optional
        Probability of a structural zero, in [0, 1].
    gate_logits : array_like, optional
        Log-odds of a structural zero. Give exactly one of ``gate`` and
        ``gate_logits``.
    validate_args : bool, optional
        Check the gate (and ``log_prob`` values); the base distribution
        checks its own parameters when it was built with ``validate_args``.

    Examples
    --------
    >>> import math
    >>> import core_ppl.distributions as dist
    >>> d = dist.ZeroInflatedDistribution(dist.Poisson(2.0), gate=0.3)
    >>> math.isclose(float(d.mean), 0.7 * 2.0, rel_tol=1e-6)
    True
    """

    def __init__(self, base_dist, *, gate=None, gate_logits=None, validate_args=None):
        name = type(self).__name__
        self._check_base(name, base_dist)
        if (gate is None) == (gate_logits is None):
            raise ValueError(
                f"{name}: give exactly one of 'gate' or 'gate_logits', got "
                f"{'both' if gate is not None else 'neither'}"
            )
        param_name = "gate" if gate is not None else "gate_logits"
        param = as_float_array(gate if gate is not None else gate_logits)
        batch_shape = broadcast_param_shapes(
            name, base_dist=base_dist.batch_shape, **{param_name: param.shape}
        )
        self.__dict__[param_name] = jnp.broadcast_to(param, batch_shape)
        self.base_dist = base_dist.expand(batch_shape)
        super().__init__(batch_shape, validate_args=validate_args)

    @staticmethod
    def _check_base(name, base_dist):
        if not isinstance(base_dist, Distribution):
            raise TypeError(
                f"{name}: base_dist must be a Distribution, got {type(base_dist)!r}"
            )
        if not base_dist.is_discrete or base_dist.event_shape:
            raise ValueError(
                f"{name}: base_dist must be a discrete distribution over scalars, "
                f"got {base_dist!r} with support {base_dist.support!r}"
            )

    @property
    def arg_constraints(self):
        if "gate_logits" in self.__dict__:
            return {"gate_logits": constraints.real}
        return {"gate": constraints.unit_interval}

    def __getattr__(self, name):
        # Only reached when normal lookup fails: derive the gate parameter that
        # was not given from the one that was.
        stored = self.__dict__
        if name == "gate" and "gate_logits" in stored:
            return expit(stored["gate_logits"])
        if name == "gate_logits" and "gate" in stored:
            gate = stored["gate"]
            return jnp.log(gate) - jnp.log1p(-gate)
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    @property
    def support(self):
        return self.base_dist.support

    def sample(self, key, sample_shape=()):
        key_gate, key_base = jax.random.split(key)
        is_zero = jax.random.bernoulli(key_gate, self.gate, self.shape(sample_shape))
        draws = self.base_dist.sample(key_base, sample_shape)
        return jnp.where(is_zero, jnp.zeros_like(draws), draws)

    def log_prob(self, value):
        value = self._check_value(value)
        base_log_prob = self.base_dist.log_prob(value)
        if "gate_logits" in self.__dict__:
            # log(1 - g) = -softplus(l) and log g = -softplus(-l): finite for
            # every logit, so the zero mass can add them in log space.
            logits = self.gate_logits
            log_prob = base_log_prob - jax.nn.softplus(logits)
            zero_log_prob = jnp.logaddexp(-jax.nn.softplus(-logits), log_prob)
        else:
            # log(g + ...) rather than logaddexp(log g, ...): its gradient stays
            # finite at g = 0.
            gate = self.gate
            log_prob = base_log_prob + jnp.log1p(-gate)
            zero_log_prob = jnp.log(gate + jnp.exp(log_prob))
        return jnp.where(value == 0, zero_log_prob, log_prob)

    @property
    def mean(self):
        return (1.0 - self.gate) * self.base_dist.mean

    @property
    def variance(self):
        # E[X^2] = (1 - g)(Var_base + mean_base^2); Var = E[X^2] - E[X]^2.
        base_mean = self.base_dist.mean
        second_moment = (1.0 - self.gate) * (self.base_dist.variance + base_mean**2)
        return second_moment - self.mean**2


class ZeroInflatedPoisson(ZeroInflatedDistribution):
    """A Poisson(``rate``) count replaced by 0 with probability ``gate``.

    Parameters
    ----------
    gate : array_like
        Probability of a structural zero, in [0, 1].
    rate : array_like, default=1.0
        Rate of the Poisson part, > 0.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import math
    >>> import core_ppl.distributions as dist
    >>> d = dist.ZeroInflatedPoisson(gate=0.5, rate=2.0)
    >>> expected = math.log(0.5 + 0.5 * math.exp(-2.0))
    >>> math.isclose(float(d.log_prob(0)), expected, rel_tol=1e-6)
    True
    """

    arg_constraints = {"gate": constraints.unit_interval, "rate": constraints.positive}

    def __init__(self, gate, rate=1.0, *, validate_args=None):
        if validate_args:
            check_param("ZeroInflatedPoisson", "rate", constraints.positive, rate)
        p, _ = _float_params("ZeroInflatedPoisson", gate=gate, rate=rate)
        super().__init__(
            Poisson(p["rate"]), gate=p["gate"], validate_args=validate_args
        )

    @property
    def rate(self):
        """Rate of the Poisson part."""
        return self.base_dist.rate


class ZeroInflatedNegativeBinomial2(ZeroInflatedDistribution):
    """A :class:`NegativeBinomial2` (``mean``, ``concentration``) count replaced
    by 0 with probability ``gate`` (or ``sigmoid(gate_logits)``).

    Parameters
    ----------
    mean : array_like
        Mean of the negative binomial part, > 0.
    concentration : array_like
        Its concentration, > 0 (variance ``mean + mean^2 / concentration``).
    gate : array_like, optional
        Probability of a structural zero, in [0, 1].
    gate_logits : array_like, optional
        Log-odds of a structural zero. Give exactly one of ``gate`` and
        ``gate_logits``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import math
    >>> import core_ppl.distributions as dist
    >>> d = dist.ZeroInflatedNegativeBinomial2(4.0, 2.0, gate_logits=0.0)
    >>> math.isclose(float(d.mean), 2.0, rel_tol=1e-6)
    True
    """

    def __init__(
        self, mean, concentration, *, gate=None, gate_logits=None, validate_args=None
    ):
        name = "ZeroInflatedNegativeBinomial2"
        if validate_args:
            check_param(name, "mean", constraints.positive, mean)
            check_param(name, "concentration", constraints.positive, concentration)
        p, _ = _float_params(
            name,
            mean=mean,
            concentration=concentration,
            gate=gate,
            gate_logits=gate_logits,
        )
        super().__init__(
            NegativeBinomial2(p["mean"], p["concentration"]),
            gate=p.get("gate"),
            gate_logits=p.get("gate_logits"),
            validate_args=validate_args,
        )

    @property
    def concentration(self):
        """Concentration of the negative binomial part."""
        return self.base_dist.concentration

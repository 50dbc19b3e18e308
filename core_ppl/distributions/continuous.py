"""Continuous distributions.

Each class stores its parameters as arrays (converted to a floating dtype),
computes its batch shape by broadcasting them, and draws reparameterised
samples where a differentiable sampler exists: location-scale families
transform standard draws, and ``jax.random.gamma`` is differentiable in its
shape parameter (implicit reparameterisation, Figurnov et al. 2018), which
makes Gamma, Beta, Dirichlet, StudentT and LKJCholesky samples differentiable.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import (
    betainc,
    betaln,
    digamma,
    gammainc,
    gammaincc,
    gammaln,
    log_ndtr,
    ndtr,
    ndtri,
)

from core_ppl.distributions import constraints
from core_ppl.distributions.distribution import (
    Distribution,
    as_float_array,
    broadcast_param_shapes,
    check_param,
)
from core_ppl.distributions.util import (
    cholesky_of_inverse,
    log1mexp,
    signed_stick_breaking_tril,
)

__all__ = [
    "Beta",
    "Cauchy",
    "Chi2",
    "Dirichlet",
    "Exponential",
    "Gamma",
    "GaussianRandomWalk",
    "HalfCauchy",
    "HalfNormal",
    "InverseGamma",
    "LKJ",
    "LKJCholesky",
    "Laplace",
    "LogNormal",
    "Logistic",
    "LowRankMultivariateNormal",
    "MultivariateNormal",
    "Normal",
    "StudentT",
    "TruncatedNormal",
    "Uniform",
    "Weibull",
]

_LOG_2 = math.log(2.0)
_LOG_PI = math.log(math.pi)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_EULER_GAMMA = 0.5772156649015329


def _params(name, **params):
    """Convert parameters to float arrays broadcast to their common shape.

    Broadcasting (rather than only checking shapes) gives every leaf of the
    pytree the batch shape, so ``vmap`` over a distribution maps all of them.
    """
    arrays = {k: as_float_array(v) for k, v in params.items()}
    shape = broadcast_param_shapes(name, **{k: v.shape for k, v in arrays.items()})
    return {k: jnp.broadcast_to(v, shape) for k, v in arrays.items()}, shape


def _where_support(ok, log_prob):
    # Outside the support the density is zero: log 0 = -inf.
    return jnp.where(ok, log_prob, -jnp.inf)


def _xlogy(x, y):
    """``x * log(y)``, 0 where ``x == 0``, with a finite gradient there.

    ``jax.scipy.special.xlogy`` is 0 at ``x = 0`` but its derivative in ``y``
    is ``x / y``, NaN at ``y = 0``: the density of ``Beta(8, 1)`` at 1 (a
    power with exponent ``0``) would get a NaN gradient. Feeding ``log`` a
    harmless 1 where ``x == 0`` keeps both branches of the ``where`` finite.
    """
    is_zero = x == 0
    return jnp.where(is_zero, 0.0, x * jnp.log(jnp.where(is_zero, 1.0, y)))


def _xlog1py(x, y):
    """``x * log1p(y)``, 0 where ``x == 0``, with a finite gradient there."""
    is_zero = x == 0
    return jnp.where(is_zero, 0.0, x * jnp.log1p(jnp.where(is_zero, 0.0, y)))


def _icdf_by_bisection(cdf, q, batch_shape, to_x):
    """Solve ``cdf(to_x(t)) = q`` for ``t`` in ``(0, 1)`` by bisection.

    For the distributions whose quantile function has no closed form in JAX
    (no inverse incomplete beta or gamma function): ``to_x`` maps ``(0, 1)``
    monotonically onto the support, so the bracket ``[0, 1]`` always holds
    the root and every halving keeps it. 100 halvings take ``t`` past float64
    resolution. The result is not differentiable (the loop's gradient is 0).
    """
    q = jax.lax.stop_gradient(jnp.asarray(q))
    shape = jnp.broadcast_shapes(q.shape, tuple(batch_shape))
    dtype = jnp.result_type(q.dtype, float)
    q = jnp.broadcast_to(q, shape).astype(dtype)

    def halve(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        is_below = cdf(to_x(mid)) < q
        return jnp.where(is_below, mid, lo), jnp.where(is_below, hi, mid)

    bracket = (jnp.zeros(shape, dtype), jnp.ones(shape, dtype))
    lo, hi = jax.lax.fori_loop(0, 100, halve, bracket)
    return to_x(0.5 * (lo + hi))


def _unit_to_positive(t):
    return t / (1.0 - t)


def _unit_to_real(t):
    return jnp.log(t) - jnp.log1p(-t)


def _identity(t):
    return t


class _IcdfByBisection:
    """Mixin giving ``icdf`` by bisection of ``cdf`` (see
    :func:`_icdf_by_bisection`) over ``_unit_to_support``, a monotone map of
    ``(0, 1)`` onto the support."""

    def icdf(self, q):
        """The quantile function, inverse of ``cdf`` (by bisection; not
        differentiable)."""
        return _icdf_by_bisection(self.cdf, q, self.batch_shape, self._unit_to_support)


def _standard_gamma(key, concentration, shape, dtype):
    return jax.random.gamma(key, concentration, shape=shape, dtype=dtype)


# --- location-scale families on the real line -------------------------------


class Normal(Distribution):
    """The normal distribution ``N(loc, scale^2)``.

    Parameters
    ----------
    loc : array_like, default=0.0
        Mean.
    scale : array_like, default=1.0
        Standard deviation, > 0.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    reparametrized_params = ("loc", "scale")

    def __init__(self, loc=0.0, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("Normal", loc=loc, scale=scale)
        self.loc, self.scale = p["loc"], p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.normal(key, self.shape(sample_shape), dtype=self.loc.dtype)
        return self.loc + self.scale * eps

    def log_prob(self, value):
        value = self._check_value(value)
        z = (value - self.loc) / self.scale
        return -0.5 * z**2 - jnp.log(self.scale) - _HALF_LOG_2PI

    def cdf(self, value):
        """``P(X <= value)``."""
        return ndtr((value - self.loc) / self.scale)

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return self.loc + self.scale * ndtri(q)

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        value = 0.5 + _HALF_LOG_2PI + jnp.log(self.scale)
        return jnp.broadcast_to(value, self.batch_shape)

    @property
    def mean(self):
        return jnp.broadcast_to(self.loc, self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to(self.scale**2, self.batch_shape)


class HalfNormal(Distribution):
    """``|X|`` for ``X ~ N(0, scale^2)``, on the positive half-line."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.positive
    has_rsample = True
    reparametrized_params = ("scale",)

    def __init__(self, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("HalfNormal", scale=scale)
        self.scale = p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.normal(key, self.shape(sample_shape), dtype=self.scale.dtype)
        return self.scale * jnp.abs(eps)

    def log_prob(self, value):
        value = self._check_value(value)
        z = value / self.scale
        log_prob = _LOG_2 - 0.5 * z**2 - jnp.log(self.scale) - _HALF_LOG_2PI
        return _where_support(value >= 0, log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        return jnp.clip(2.0 * ndtr(value / self.scale) - 1.0, 0.0, 1.0)

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return self.scale * ndtri(0.5 * (q + 1.0))

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        return jnp.broadcast_to(
            0.5 * math.log(0.5 * math.pi * math.e) + jnp.log(self.scale),
            self.batch_shape,
        )

    @property
    def mean(self):
        return jnp.broadcast_to(self.scale * math.sqrt(2.0 / math.pi), self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to(self.scale**2 * (1.0 - 2.0 / math.pi), self.batch_shape)


class Cauchy(Distribution):
    """The Cauchy distribution; its mean and variance do not exist."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    reparametrized_params = ("loc", "scale")

    def __init__(self, loc=0.0, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("Cauchy", loc=loc, scale=scale)
        self.loc, self.scale = p["loc"], p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.cauchy(key, self.shape(sample_shape), dtype=self.loc.dtype)
        return self.loc + self.scale * eps

    def log_prob(self, value):
        value = self._check_value(value)
        z = (value - self.loc) / self.scale
        return -_LOG_PI - jnp.log(self.scale) - jnp.log1p(z**2)

    def cdf(self, value):
        """``P(X <= value)``."""
        return 0.5 + jnp.arctan((value - self.loc) / self.scale) / math.pi

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return self.loc + self.scale * jnp.tan(math.pi * (q - 0.5))

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        value = math.log(4.0 * math.pi) + jnp.log(self.scale)
        return jnp.broadcast_to(value, self.batch_shape)

    @property
    def mean(self):
        return jnp.full(self.batch_shape, jnp.nan, dtype=self.loc.dtype)

    @property
    def variance(self):
        return jnp.full(self.batch_shape, jnp.inf, dtype=self.loc.dtype)


class HalfCauchy(Distribution):
    """``|X|`` for ``X ~ Cauchy(0, scale)``; mean and variance are infinite."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.positive
    has_rsample = True
    reparametrized_params = ("scale",)

    def __init__(self, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("HalfCauchy", scale=scale)
        self.scale = p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.cauchy(key, self.shape(sample_shape), dtype=self.scale.dtype)
        return self.scale * jnp.abs(eps)

    def log_prob(self, value):
        value = self._check_value(value)
        z = value / self.scale
        log_prob = _LOG_2 - _LOG_PI - jnp.log(self.scale) - jnp.log1p(z**2)
        return _where_support(value >= 0, log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        return 2.0 * jnp.arctan(jnp.maximum(value, 0.0) / self.scale) / math.pi

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return self.scale * jnp.tan(0.5 * math.pi * q)

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        value = math.log(2.0 * math.pi) + jnp.log(self.scale)
        return jnp.broadcast_to(value, self.batch_shape)

    @property
    def mean(self):
        return jnp.full(self.batch_shape, jnp.inf, dtype=self.scale.dtype)

    @property
    def variance(self):
        return jnp.full(self.batch_shape, jnp.inf, dtype=self.scale.dtype)


class Exponential(Distribution):
    """The exponential distribution with ``rate`` (mean ``1 / rate``)."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.positive
    has_rsample = True
    reparametrized_params = ("rate",)

    def __init__(self, rate=1.0, *, validate_args=None):
        p, batch_shape = _params("Exponential", rate=rate)
        self.rate = p["rate"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.exponential(
            key, self.shape(sample_shape), dtype=self.rate.dtype
        )
        return eps / self.rate

    def log_prob(self, value):
        value = self._check_value(value)
        log_prob = jnp.log(self.rate) - self.rate * value
        return _where_support(value >= 0, log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        return -jnp.expm1(-self.rate * jnp.maximum(value, 0.0))

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return -jnp.log1p(-q) / self.rate

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        return jnp.broadcast_to(1.0 - jnp.log(self.rate), self.batch_shape)

    @property
    def mean(self):
        return jnp.broadcast_to(1.0 / self.rate, self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to(self.rate**-2, self.batch_shape)


class Weibull(Distribution):
    """The Weibull distribution: ``scale * E^(1 / concentration)``, ``E ~ Exp(1)``.

    Density ``(k / s) (x / s)^(k-1) exp(-(x / s)^k)`` on ``x >= 0`` for scale
    ``s`` and concentration (shape) ``k``; ``k = 1`` is the exponential
    distribution with mean ``s``. Samples are reparameterised in both.

    Parameters
    ----------
    scale : array_like
        Scale ``s > 0``.
    concentration : array_like
        Shape ``k > 0``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> d = dist.Weibull(scale=2.0, concentration=1.0)
    >>> round(float(d.mean), 5), round(float(d.variance), 5)
    (2.0, 4.0)
    """

    arg_constraints = {
        "scale": constraints.positive,
        "concentration": constraints.positive,
    }
    support = constraints.positive
    has_rsample = True
    reparametrized_params = ("scale", "concentration")

    def __init__(self, scale, concentration, *, validate_args=None):
        p, batch_shape = _params("Weibull", scale=scale, concentration=concentration)
        self.scale, self.concentration = p["scale"], p["concentration"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        dtype = self.scale.dtype
        eps = jax.random.exponential(key, self.shape(sample_shape), dtype=dtype)
        # A draw of exactly 0 would make d/dk eps^(1/k) = 0 * log(0) = NaN.
        eps = jnp.maximum(eps, jnp.finfo(dtype).tiny)
        return self.scale * eps ** (1.0 / self.concentration)

    def log_prob(self, value):
        value = self._check_value(value)
        k, s = self.concentration, self.scale
        # ``where``, not ``maximum``: the gradient of maximum at the tie
        # value = 0 is halved, the density's one-sided derivative is not.
        z = jnp.where(value >= 0, value, 0.0) / s
        # xlogy: (k - 1) log z is 0 at z = 0 when k = 1 (the exponential case).
        log_prob = jnp.log(k / s) + _xlogy(k - 1.0, z) - z**k
        return _where_support(value >= 0, log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        z = jnp.maximum(value, 0.0) / self.scale
        return -jnp.expm1(-(z**self.concentration))

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return self.scale * (-jnp.log1p(-q)) ** (1.0 / self.concentration)

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        k, s = self.concentration, self.scale
        return jnp.broadcast_to(
            _EULER_GAMMA * (1.0 - 1.0 / k) + jnp.log(s / k) + 1.0, self.batch_shape
        )

    @property
    def mean(self):
        log_gamma1 = gammaln(1.0 + 1.0 / self.concentration)
        return jnp.broadcast_to(self.scale * jnp.exp(log_gamma1), self.batch_shape)

    @property
    def variance(self):
        k = self.concentration
        gamma1 = jnp.exp(gammaln(1.0 + 1.0 / k))
        gamma2 = jnp.exp(gammaln(1.0 + 2.0 / k))
        var = self.scale**2 * (gamma2 - gamma1**2)
        return jnp.broadcast_to(var, self.batch_shape)


class StudentT(_IcdfByBisection, Distribution):
    """Student's t with ``df`` degrees of freedom, location ``loc``, ``scale``.

    Sampled as ``loc + scale * z / sqrt(g / df)`` with ``z ~ N(0, 1)`` and
    ``g ~ Chi2(df) = 2 Gamma(df / 2)``, reparameterised in all three.
    """

    _unit_to_support = staticmethod(_unit_to_real)
    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real,
        "scale": constraints.positive,
    }
    support = constraints.real
    has_rsample = True
    reparametrized_params = ("df", "loc", "scale")

    def __init__(self, df, loc=0.0, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("StudentT", df=df, loc=loc, scale=scale)
        self.df, self.loc, self.scale = p["df"], p["loc"], p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        key_z, key_g = jax.random.split(key)
        shape = self.shape(sample_shape)
        dtype = self.loc.dtype
        z = jax.random.normal(key_z, shape, dtype=dtype)
        half_df = jnp.broadcast_to(0.5 * self.df, shape)
        g = _standard_gamma(key_g, half_df, shape, dtype)
        return self.loc + self.scale * z * jnp.sqrt(half_df / g)

    def log_prob(self, value):
        value = self._check_value(value)
        df = self.df
        z = (value - self.loc) / self.scale
        log_norm = (
            gammaln(0.5 * (df + 1.0))
            - gammaln(0.5 * df)
            - 0.5 * (jnp.log(df) + _LOG_PI)
            - jnp.log(self.scale)
        )
        return log_norm - 0.5 * (df + 1.0) * jnp.log1p(z**2 / df)

    def cdf(self, value):
        """``P(X <= value)``."""
        # P(T <= t) = 1 - I_x(df/2, 1/2) / 2 for t >= 0, x = df / (df + t^2).
        t = (value - self.loc) / self.scale
        tail = 0.5 * betainc(0.5 * self.df, 0.5, self.df / (self.df + t**2))
        return jnp.where(t >= 0, 1.0 - tail, tail)

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        df = self.df
        half = 0.5 * (df + 1.0)
        return jnp.broadcast_to(
            half * (digamma(half) - digamma(0.5 * df))
            + 0.5 * jnp.log(df)
            + betaln(0.5 * df, 0.5)
            + jnp.log(self.scale),
            self.batch_shape,
        )

    @property
    def mean(self):
        mean = jnp.where(self.df > 1, self.loc, jnp.nan)
        return jnp.broadcast_to(mean, self.batch_shape)

    @property
    def variance(self):
        df = self.df
        var = jnp.where(df > 2, self.scale**2 * df / (df - 2.0), jnp.inf)
        var = jnp.where(df <= 1, jnp.nan, var)
        return jnp.broadcast_to(var, self.batch_shape)


class Laplace(Distribution):
    """The Laplace (double exponential) distribution."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    reparametrized_params = ("loc", "scale")

    def __init__(self, loc=0.0, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("Laplace", loc=loc, scale=scale)
        self.loc, self.scale = p["loc"], p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.laplace(key, self.shape(sample_shape), dtype=self.loc.dtype)
        return self.loc + self.scale * eps

    def log_prob(self, value):
        value = self._check_value(value)
        return -jnp.log(2.0 * self.scale) - jnp.abs(value - self.loc) / self.scale

    def cdf(self, value):
        """``P(X <= value)``."""
        z = (value - self.loc) / self.scale
        return 0.5 - 0.5 * jnp.sign(z) * jnp.expm1(-jnp.abs(z))

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        a = q - 0.5
        return self.loc - self.scale * jnp.sign(a) * jnp.log1p(-2.0 * jnp.abs(a))

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        return jnp.broadcast_to(1.0 + _LOG_2 + jnp.log(self.scale), self.batch_shape)

    @property
    def mean(self):
        return jnp.broadcast_to(self.loc, self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to(2.0 * self.scale**2, self.batch_shape)


class Logistic(Distribution):
    """The logistic distribution: ``loc + scale * log(u / (1 - u))``, ``u ~ U(0, 1)``.

    Density ``exp(-z) / (scale (1 + exp(-z))^2)`` with ``z = (x - loc) /
    scale``; its cdf is the sigmoid of ``z``.

    Parameters
    ----------
    loc : array_like, default=0.0
        Location (mean and median).
    scale : array_like, default=1.0
        Scale, > 0 (standard deviation ``scale * pi / sqrt(3)``).
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import math
    >>> import core_ppl.distributions as dist
    >>> d = dist.Logistic(1.0, 2.0)
    >>> math.isclose(float(d.log_prob(1.0)), -math.log(8.0), rel_tol=1e-6)
    True
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    reparametrized_params = ("loc", "scale")

    def __init__(self, loc=0.0, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("Logistic", loc=loc, scale=scale)
        self.loc, self.scale = p["loc"], p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.logistic(key, self.shape(sample_shape), dtype=self.loc.dtype)
        return self.loc + self.scale * eps

    def log_prob(self, value):
        value = self._check_value(value)
        # The density is symmetric in z; -|z| - 2 log1p(exp(-|z|)) never
        # overflows, for any z.
        abs_z = jnp.abs((value - self.loc) / self.scale)
        return -abs_z - 2.0 * jnp.log1p(jnp.exp(-abs_z)) - jnp.log(self.scale)

    def cdf(self, value):
        """``P(X <= value)``."""
        return jax.nn.sigmoid((value - self.loc) / self.scale)

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return self.loc + self.scale * (jnp.log(q) - jnp.log1p(-q))

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        return jnp.broadcast_to(2.0 + jnp.log(self.scale), self.batch_shape)

    @property
    def mean(self):
        return jnp.broadcast_to(self.loc, self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to(self.scale**2 * math.pi**2 / 3.0, self.batch_shape)


class LogNormal(Distribution):
    """``exp(X)`` for ``X ~ N(loc, scale^2)``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True
    reparametrized_params = ("loc", "scale")

    def __init__(self, loc=0.0, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("LogNormal", loc=loc, scale=scale)
        self.loc, self.scale = p["loc"], p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.normal(key, self.shape(sample_shape), dtype=self.loc.dtype)
        return jnp.exp(self.loc + self.scale * eps)

    def log_prob(self, value):
        value = self._check_value(value)
        log_value = jnp.log(value)
        z = (log_value - self.loc) / self.scale
        log_prob = -0.5 * z**2 - jnp.log(self.scale) - _HALF_LOG_2PI - log_value
        return _where_support(value > 0, log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        safe = jnp.where(value > 0, value, 1.0)
        return jnp.where(value > 0, ndtr((jnp.log(safe) - self.loc) / self.scale), 0.0)

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return jnp.exp(self.loc + self.scale * ndtri(q))

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        return jnp.broadcast_to(
            self.loc + 0.5 + _HALF_LOG_2PI + jnp.log(self.scale), self.batch_shape
        )

    @property
    def mean(self):
        return jnp.broadcast_to(
            jnp.exp(self.loc + 0.5 * self.scale**2), self.batch_shape
        )

    @property
    def variance(self):
        s2 = self.scale**2
        var = jnp.expm1(s2) * jnp.exp(2.0 * self.loc + s2)
        return jnp.broadcast_to(var, self.batch_shape)


# --- gamma family and the unit interval ------------------------------------------


class Gamma(_IcdfByBisection, Distribution):
    """The gamma distribution with shape ``concentration`` and ``rate``."""

    _unit_to_support = staticmethod(_unit_to_positive)
    arg_constraints = {
        "concentration": constraints.positive,
        "rate": constraints.positive,
    }
    support = constraints.positive
    has_rsample = True
    reparametrized_params = ("concentration", "rate")

    def __init__(self, concentration, rate=1.0, *, validate_args=None):
        p, batch_shape = _params(
            type(self).__name__, concentration=concentration, rate=rate
        )
        self.concentration, self.rate = p["concentration"], p["rate"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        conc = jnp.broadcast_to(self.concentration, shape)
        return _standard_gamma(key, conc, shape, conc.dtype) / self.rate

    def log_prob(self, value):
        value = self._check_value(value)
        c, r = self.concentration, self.rate
        log_prob = _xlogy(c, r) + _xlogy(c - 1.0, value) - r * value - gammaln(c)
        return _where_support(value >= 0, log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        return gammainc(self.concentration, self.rate * jnp.maximum(value, 0.0))

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        c = self.concentration
        return jnp.broadcast_to(
            c - jnp.log(self.rate) + gammaln(c) + (1.0 - c) * digamma(c),
            self.batch_shape,
        )

    @property
    def mean(self):
        return jnp.broadcast_to(self.concentration / self.rate, self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to(self.concentration / self.rate**2, self.batch_shape)


class Chi2(Gamma):
    """The chi-squared distribution with ``df`` degrees of freedom.

    The sum of ``df`` squared standard normals (for integer ``df``), i.e.
    ``Gamma(df / 2, rate=1 / 2)``; ``df`` may be any positive real.

    Parameters
    ----------
    df : array_like
        Degrees of freedom, > 0.
    validate_args : bool, optional
        Check the parameter (and ``log_prob`` values).

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> d = dist.Chi2(3.0)
    >>> float(d.mean), float(d.variance)
    (3.0, 6.0)
    """

    arg_constraints = {"df": constraints.positive}
    reparametrized_params = ("df",)

    def __init__(self, df, *, validate_args=None):
        # df is set first: Gamma's constructor validates arg_constraints.
        self.df = as_float_array(df)
        super().__init__(0.5 * self.df, 0.5, validate_args=validate_args)


class InverseGamma(_IcdfByBisection, Distribution):
    """``1 / X`` for ``X ~ Gamma(concentration, rate)``.

    ``rate`` is the scale of the inverse gamma (``scipy.stats.invgamma``'s
    ``scale``).
    """

    _unit_to_support = staticmethod(_unit_to_positive)
    arg_constraints = {
        "concentration": constraints.positive,
        "rate": constraints.positive,
    }
    support = constraints.positive
    has_rsample = True
    reparametrized_params = ("concentration", "rate")

    def __init__(self, concentration, rate=1.0, *, validate_args=None):
        p, batch_shape = _params("InverseGamma", concentration=concentration, rate=rate)
        self.concentration, self.rate = p["concentration"], p["rate"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        conc = jnp.broadcast_to(self.concentration, shape)
        return self.rate / _standard_gamma(key, conc, shape, conc.dtype)

    def log_prob(self, value):
        value = self._check_value(value)
        c, r = self.concentration, self.rate
        log_prob = _xlogy(c, r) - gammaln(c) - (c + 1.0) * jnp.log(value) - r / value
        return _where_support(value > 0, log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        safe = jnp.where(value > 0, value, 1.0)
        upper = gammaincc(self.concentration, self.rate / safe)
        return jnp.where(value > 0, upper, 0.0)

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        c = self.concentration
        value = c + jnp.log(self.rate) + gammaln(c) - (1.0 + c) * digamma(c)
        return jnp.broadcast_to(value, self.batch_shape)

    @property
    def mean(self):
        c, r = self.concentration, self.rate
        return jnp.broadcast_to(
            jnp.where(c > 1, r / (c - 1.0), jnp.inf), self.batch_shape
        )

    @property
    def variance(self):
        c, r = self.concentration, self.rate
        var = jnp.where(c > 2, r**2 / ((c - 1.0) ** 2 * (c - 2.0)), jnp.inf)
        return jnp.broadcast_to(var, self.batch_shape)


def _clip_unit(x):
    # Keep draws strictly inside (0, 1), where the log density is finite.
    finfo = jnp.finfo(x.dtype)
    return jnp.clip(x, finfo.tiny, 1.0 - finfo.eps)


class Beta(_IcdfByBisection, Distribution):
    """The beta distribution on [0, 1], ``x^(c1-1) (1-x)^(c0-1) / B(c1, c0)``."""

    _unit_to_support = staticmethod(_identity)
    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True
    reparametrized_params = ("concentration1", "concentration0")

    def __init__(self, concentration1, concentration0, *, validate_args=None):
        p, batch_shape = _params(
            "Beta", concentration1=concentration1, concentration0=concentration0
        )
        self.concentration1 = p["concentration1"]
        self.concentration0 = p["concentration0"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        # X = G1 / (G1 + G0) with independent gamma draws.
        key1, key0 = jax.random.split(key)
        shape = self.shape(sample_shape)
        c1 = jnp.broadcast_to(self.concentration1, shape)
        c0 = jnp.broadcast_to(self.concentration0, shape)
        g1 = _standard_gamma(key1, c1, shape, c1.dtype)
        g0 = _standard_gamma(key0, c0, shape, c0.dtype)
        return _clip_unit(g1 / (g1 + g0))

    def log_prob(self, value):
        value = self._check_value(value)
        c1, c0 = self.concentration1, self.concentration0
        log_prob = _xlogy(c1 - 1.0, value) + _xlog1py(c0 - 1.0, -value) - betaln(c1, c0)
        return _where_support((value >= 0) & (value <= 1), log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        x = jnp.clip(value, 0.0, 1.0)
        return betainc(self.concentration1, self.concentration0, x)

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        a, b = self.concentration1, self.concentration0
        return jnp.broadcast_to(
            betaln(a, b)
            - (a - 1.0) * digamma(a)
            - (b - 1.0) * digamma(b)
            + (a + b - 2.0) * digamma(a + b),
            self.batch_shape,
        )

    @property
    def mean(self):
        c1, c0 = self.concentration1, self.concentration0
        return jnp.broadcast_to(c1 / (c1 + c0), self.batch_shape)

    @property
    def variance(self):
        c1, c0 = self.concentration1, self.concentration0
        total = c1 + c0
        return jnp.broadcast_to(c1 * c0 / (total**2 * (total + 1.0)), self.batch_shape)


class Uniform(Distribution):
    """The uniform distribution on ``[low, high]``."""

    arg_constraints = {"low": constraints.real, "high": constraints.real}
    has_rsample = True
    reparametrized_params = ("low", "high")

    def __init__(self, low=0.0, high=1.0, *, validate_args=None):
        p, batch_shape = _params("Uniform", low=low, high=high)
        self.low, self.high = p["low"], p["high"]
        super().__init__(batch_shape, validate_args=validate_args)

    def _validate_params(self):
        super()._validate_params()
        check_param("Uniform", "high", constraints.greater_than(self.low), self.high)

    @property
    def support(self):
        return constraints.interval(self.low, self.high)

    def sample(self, key, sample_shape=()):
        u = jax.random.uniform(key, self.shape(sample_shape), dtype=self.low.dtype)
        return self.low + (self.high - self.low) * u

    def log_prob(self, value):
        value = self._check_value(value)
        log_prob = -jnp.log(self.high - self.low) + jnp.zeros_like(value)
        return _where_support((value >= self.low) & (value <= self.high), log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        return jnp.clip((value - self.low) / (self.high - self.low), 0.0, 1.0)

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return self.low + q * (self.high - self.low)

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        return jnp.broadcast_to(jnp.log(self.high - self.low), self.batch_shape)

    @property
    def mean(self):
        return jnp.broadcast_to(0.5 * (self.low + self.high), self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to((self.high - self.low) ** 2 / 12.0, self.batch_shape)


class Dirichlet(Distribution):
    """The Dirichlet distribution on the simplex; ``concentration`` has shape
    ``batch_shape + (K,)``."""

    arg_constraints = {
        "concentration": constraints.independent(constraints.positive, 1)
    }
    support = constraints.simplex
    has_rsample = True
    reparametrized_params = ("concentration",)

    def __init__(self, concentration, *, validate_args=None):
        conc = as_float_array(concentration)
        # One category is allowed (NumPyro does): the point mass at [1.0].
        if conc.ndim < 1 or conc.shape[-1] < 1:
            raise ValueError(
                "Dirichlet: concentration needs a last axis of size >= 1 (the "
                f"categories), got shape {conc.shape}"
            )
        self.concentration = conc
        super().__init__(conc.shape[:-1], conc.shape[-1:], validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        conc = jnp.broadcast_to(self.concentration, shape)
        if shape[-1] == 1:
            return jnp.ones(shape, conc.dtype)  # clipping would give 1 - eps
        g = _standard_gamma(key, conc, shape, conc.dtype)
        return _clip_unit(g / jnp.sum(g, axis=-1, keepdims=True))

    def log_prob(self, value):
        value = self._check_value(value)
        c = self.concentration
        log_norm = gammaln(jnp.sum(c, -1)) - jnp.sum(gammaln(c), -1)
        return jnp.sum(_xlogy(c - 1.0, value), axis=-1) + log_norm

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        c = self.concentration
        k = c.shape[-1]
        total = jnp.sum(c, -1)
        return (
            jnp.sum(gammaln(c), -1)
            - gammaln(total)
            + (total - k) * digamma(total)
            - jnp.sum((c - 1.0) * digamma(c), -1)
        )

    @property
    def mean(self):
        c = self.concentration
        return jnp.broadcast_to(c / jnp.sum(c, -1, keepdims=True), self.shape())

    @property
    def variance(self):
        c = self.concentration
        total = jnp.sum(c, -1, keepdims=True)
        var = c * (total - c) / (total**2 * (total + 1.0))
        return jnp.broadcast_to(var, self.shape())


# --- multivariate ---------------------------------------------------------------


def _gaussian_entropy(scale_tril):
    """Entropy of a k-variate normal with covariance ``L L^T``:
    ``k (1 + log 2 pi) / 2 + log det L``."""
    k = scale_tril.shape[-1]
    log_det = jnp.sum(jnp.log(jnp.diagonal(scale_tril, axis1=-2, axis2=-1)), -1)
    return k * (0.5 + _HALF_LOG_2PI) + log_det


class MultivariateNormal(Distribution):
    """The multivariate normal ``N(loc, Sigma)``.

    Give exactly one of ``covariance_matrix`` (``Sigma``), ``precision_matrix``
    (``Sigma^{-1}``) or ``scale_tril`` (lower Cholesky factor ``L`` with
    ``Sigma = L L^T``). Only ``L`` is stored; ``log_prob`` uses a triangular
    solve and the log-diagonal of ``L``, never an explicit inverse.

    Parameters
    ----------
    loc : array_like, default=0.0
        Mean, shape ``batch_shape + (K,)`` (a scalar broadcasts).
    covariance_matrix, precision_matrix, scale_tril : array_like, optional
        Shape ``batch_shape + (K, K)``.
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "covariance_matrix": constraints.positive_definite,
        "precision_matrix": constraints.positive_definite,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector
    has_rsample = True
    reparametrized_params = (
        "loc",
        "covariance_matrix",
        "precision_matrix",
        "scale_tril",
    )

    def __init__(
        self,
        loc=0.0,
        covariance_matrix=None,
        precision_matrix=None,
        scale_tril=None,
        *,
        validate_args=None,
    ):
        name, matrix = self._the_matrix(covariance_matrix, precision_matrix, scale_tril)
        if validate_args:
            check_param("MultivariateNormal", name, self.arg_constraints[name], matrix)
        if name == "covariance_matrix":
            matrix = jnp.linalg.cholesky(matrix)
        elif name == "precision_matrix":
            matrix = cholesky_of_inverse(matrix)
        loc = as_float_array(loc)
        loc = loc[None] if loc.ndim == 0 else loc
        batch_shape = broadcast_param_shapes(
            "MultivariateNormal", loc=loc.shape[:-1], **{name: matrix.shape[:-2]}
        )
        event_shape = broadcast_param_shapes(
            "MultivariateNormal (event size)",
            loc=loc.shape[-1:],
            **{name: matrix.shape[-1:]},
        )
        self.loc = jnp.broadcast_to(loc, batch_shape + event_shape)
        self.scale_tril = jnp.broadcast_to(matrix, batch_shape + event_shape * 2)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @staticmethod
    def _the_matrix(covariance_matrix, precision_matrix, scale_tril):
        given = {
            k: v
            for k, v in (
                ("covariance_matrix", covariance_matrix),
                ("precision_matrix", precision_matrix),
                ("scale_tril", scale_tril),
            )
            if v is not None
        }
        if len(given) != 1:
            raise ValueError(
                "MultivariateNormal: give exactly one of covariance_matrix, "
                f"precision_matrix or scale_tril, got {sorted(given) or 'none'}"
            )
        ((name, matrix),) = given.items()
        matrix = as_float_array(matrix)
        if matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2]:
            raise ValueError(
                f"MultivariateNormal: {name} must be a (batch of) square matrices, "
                f"got shape {matrix.shape}"
            )
        return name, matrix

    @property
    def covariance_matrix(self):
        """``L L^T``."""
        return self.scale_tril @ jnp.swapaxes(self.scale_tril, -2, -1)

    @property
    def precision_matrix(self):
        """``(L L^T)^{-1}``, via two triangular solves."""
        eye = jnp.broadcast_to(
            jnp.eye(self.event_shape[0], dtype=self.loc.dtype), self.scale_tril.shape
        )
        inv_l = solve_triangular(self.scale_tril, eye, lower=True)
        return jnp.swapaxes(inv_l, -2, -1) @ inv_l

    def sample(self, key, sample_shape=()):
        eps = jax.random.normal(key, self.shape(sample_shape), dtype=self.loc.dtype)
        return self.loc + jnp.matmul(self.scale_tril, eps[..., None])[..., 0]

    def log_prob(self, value):
        value = self._check_value(value)
        diff = value - self.loc
        chol = jnp.broadcast_to(self.scale_tril, diff.shape + diff.shape[-1:])
        # Mahalanobis term ||L^{-1}(x - mu)||^2 by forward substitution.
        z = solve_triangular(chol, diff[..., None], lower=True)[..., 0]
        diag = jnp.diagonal(self.scale_tril, axis1=-2, axis2=-1)
        half_log_det = jnp.sum(jnp.log(diag), axis=-1)
        k = self.event_shape[0]
        return -0.5 * jnp.sum(z**2, axis=-1) - half_log_det - k * _HALF_LOG_2PI

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        return jnp.broadcast_to(_gaussian_entropy(self.scale_tril), self.batch_shape)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return jnp.sum(self.scale_tril**2, axis=-1)


_LKJ_SAMPLE_METHODS = ("onion", "cvine")


class LKJCholesky(Distribution):
    """LKJ distribution over Cholesky factors ``L`` of correlation matrices.

    The correlation matrix ``C = L L^T`` has density proportional to
    ``det(C)^(concentration - 1)`` (Lewandowski, Kurowicka & Joe 2009). As a
    density over the strictly lower triangle of ``L`` this is
    ``prod_{i=2}^{d} L_ii^(d - i + 2 concentration - 2) / c_d`` (1-based
    ``i``), the extra powers being the Jacobian of ``L -> C``; ``c_d`` is
    the normaliser of equation (16) of the paper. Samples use the onion
    method (section 3.2 of the paper), written directly for ``L``.

    Parameters
    ----------
    dimension : int
        Size ``d >= 2`` of the matrices.
    concentration : array_like, default=1.0
        ``eta > 0``; 1 is uniform over correlation matrices, larger values
        favour the identity.
    sample_method : {"onion", "cvine"}, default="onion"
        Sampling algorithm: the onion method, or the C-vine of partial
        correlations (section 2.4 of the paper). Both draw from the same law.
    """

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky
    has_rsample = True
    reparametrized_params = ("concentration",)

    def __init__(
        self, dimension, concentration=1.0, sample_method="onion", *, validate_args=None
    ):
        if int(dimension) != dimension or dimension < 2:
            raise ValueError(
                f"LKJCholesky: dimension must be an integer >= 2, got {dimension}"
            )
        if sample_method not in _LKJ_SAMPLE_METHODS:
            raise ValueError(
                "LKJCholesky: sample_method must be 'onion' or 'cvine', got "
                f"{sample_method!r}"
            )
        self.dimension = int(dimension)
        self.sample_method = sample_method
        self.concentration = as_float_array(concentration)
        d = self.dimension
        super().__init__(self.concentration.shape, (d, d), validate_args=validate_args)

    def _log_normalizer(self):
        # log c_d = sum_{k=1}^{d-1} [(2 eta - 2 + d - k)(d - k) log 2
        #                            + (d - k) log B(b_k, b_k)], b_k = eta + (d-k-1)/2
        d, eta = self.dimension, self.concentration[..., None]
        k = jnp.arange(1, d, dtype=eta.dtype)
        b = eta + 0.5 * (d - k - 1.0)
        terms = (2.0 * eta - 2.0 + d - k) * (d - k) * _LOG_2 + (d - k) * betaln(b, b)
        return jnp.sum(terms, axis=-1)

    def log_prob(self, value):
        value = self._check_value(value)
        d, eta = self.dimension, self.concentration[..., None]
        log_diag = jnp.log(jnp.diagonal(value, axis1=-2, axis2=-1)[..., 1:])
        i = jnp.arange(2, d + 1, dtype=log_diag.dtype)
        exponent = d - i + 2.0 * (eta - 1.0)
        return jnp.sum(exponent * log_diag, axis=-1) - self._log_normalizer()

    def sample(self, key, sample_shape=()):
        if self.sample_method == "cvine":
            return self._sample_cvine(key, sample_shape)
        return self._sample_onion(key, sample_shape)

    def _sample_cvine(self, key, sample_shape):
        # In the C-vine the partial correlation of (i, j) given the variables
        # before j is Beta(b_j, b_j) on (-1, 1), b_j = eta + (d - 2 - j) / 2
        # (0-based column j), all independent; signed stick-breaking turns
        # them into the rows of L (section 2.4 of the paper).
        d = self.dimension
        shape = tuple(sample_shape) + self.batch_shape
        dtype = self.concentration.dtype
        _, cols = np.tril_indices(d, -1)
        b = self.concentration[..., None] + 0.5 * (d - 2.0 - cols.astype(dtype))
        b = jnp.broadcast_to(b, shape + (len(cols),))
        key1, key0 = jax.random.split(key)
        g1 = _standard_gamma(key1, b, b.shape, dtype)
        g0 = _standard_gamma(key0, b, b.shape, dtype)
        return signed_stick_breaking_tril(2.0 * g1 / (g1 + g0) - 1.0)

    def _sample_onion(self, key, sample_shape):
        d = self.dimension
        shape = tuple(sample_shape) + self.batch_shape
        key_g1, key_g0, key_dir = jax.random.split(key, 3)
        dtype = self.concentration.dtype
        # Row i (0-based, i >= 1) has squared norm y_i ~ Beta(i/2, eta + (d-1-i)/2)
        # off the diagonal, spread uniformly over the sphere in R^i.
        k = jnp.arange(d - 1, dtype=dtype)
        conc1 = jnp.broadcast_to(0.5 * (k + 1.0), shape + (d - 1,))
        conc0 = self.concentration[..., None] + 0.5 * (d - 2.0 - k)
        conc0 = jnp.broadcast_to(conc0, shape + (d - 1,))
        g1 = _standard_gamma(key_g1, conc1, conc1.shape, dtype)
        g0 = _standard_gamma(key_g0, conc0, conc0.shape, dtype)
        y = jnp.clip(g1 / (g1 + g0), 0.0, 1.0 - jnp.finfo(dtype).eps)
        y = jnp.concatenate([jnp.zeros(shape + (1,), dtype), y], axis=-1)
        z = jnp.tril(jax.random.normal(key_dir, shape + (d, d), dtype=dtype), -1)
        norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
        direction = z / jnp.where(norm > 0, norm, 1.0)
        off_diag = jnp.sqrt(y)[..., None] * direction
        return off_diag + jnp.sqrt(1.0 - y)[..., None] * jnp.eye(d, dtype=dtype)


# --- truncated normal -------------------------------------------------------------


def _log_normal_pdf(z):
    return -0.5 * z**2 - _HALF_LOG_2PI


class TruncatedNormal(Distribution):
    """``N(loc, scale^2)`` restricted to ``[low, high]`` (either may be None).

    The normalising mass ``Phi(b) - Phi(a)`` (standardised bounds) is computed
    in log space on the side of the mode where it is accurate, and samples use
    the inverse CDF on that side too, so moderately far tails stay accurate.
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "low": constraints.real,
        "high": constraints.real,
    }
    has_rsample = True
    reparametrized_params = ("loc", "scale", "low", "high")

    def __init__(self, loc=0.0, scale=1.0, low=None, high=None, *, validate_args=None):
        given = {"loc": loc, "scale": scale, "low": low, "high": high}
        p, batch_shape = _params(
            "TruncatedNormal", **{k: v for k, v in given.items() if v is not None}
        )
        self.loc, self.scale = p["loc"], p["scale"]
        self.low, self.high = p.get("low"), p.get("high")
        super().__init__(batch_shape, validate_args=validate_args)

    def _validate_params(self):
        super()._validate_params()
        if self.low is not None and self.high is not None:
            check_param(
                "TruncatedNormal", "high", constraints.greater_than(self.low), self.high
            )

    @property
    def support(self):
        if self.low is not None and self.high is not None:
            return constraints.interval(self.low, self.high)
        if self.low is not None:
            return constraints.greater_than(self.low)
        if self.high is not None:
            return constraints.less_than(self.high)
        return constraints.real

    def _std_bounds(self):
        # Missing bounds are constant infinities, so no gradient flows to them.
        a = -jnp.inf if self.low is None else (self.low - self.loc) / self.scale
        b = jnp.inf if self.high is None else (self.high - self.loc) / self.scale
        return a, b

    def _log_mass(self):
        """``log(Phi(b) - Phi(a))``, case by case on which bounds exist."""
        a, b = self._std_bounds()
        if self.low is None and self.high is None:
            return jnp.zeros(self.batch_shape, self.loc.dtype)
        if self.low is None:
            return log_ndtr(b)
        if self.high is None:
            return log_ndtr(-a)
        # Right of the mode Phi(a) ~ 1 loses digits; reflect: Phi(-a) - Phi(-b).
        flip = a > 0
        lo, hi = jnp.where(flip, -b, a), jnp.where(flip, -a, b)
        return log_ndtr(hi) + log1mexp(log_ndtr(lo) - log_ndtr(hi))

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        u = jax.random.uniform(key, shape, dtype=self.loc.dtype)
        a, b = self._std_bounds()
        flip = jnp.asarray(a > 0) if self.low is not None else jnp.asarray(False)
        lo, hi = jnp.where(flip, -b, a), jnp.where(flip, -a, b)
        cdf_lo, cdf_hi = ndtr(lo), ndtr(hi)
        z = ndtri(cdf_lo + u * (cdf_hi - cdf_lo))
        z = jnp.clip(z, lo, hi)
        return self.loc + self.scale * jnp.where(flip, -z, z)

    def log_prob(self, value):
        value = self._check_value(value)
        z = (value - self.loc) / self.scale
        log_prob = _log_normal_pdf(z) - jnp.log(self.scale) - self._log_mass()
        inside = jnp.ones_like(z, dtype=bool)
        if self.low is not None:
            inside = inside & (value >= self.low)
        if self.high is not None:
            inside = inside & (value <= self.high)
        return _where_support(inside, log_prob)

    def cdf(self, value):
        """``P(X <= value)``."""
        a, b = self._std_bounds()
        z = jnp.clip((value - self.loc) / self.scale, a, b)
        mass = jnp.exp(self._log_mass())
        return jnp.clip((ndtr(z) - ndtr(a)) / mass, 0.0, 1.0)

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        a, b = self._std_bounds()
        mass = jnp.exp(self._log_mass())
        z = jnp.clip(ndtri(ndtr(a) + q * mass), a, b)
        return self.loc + self.scale * z

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        _, _, a_pdf, b_pdf = self._pdf_ratios()
        return jnp.broadcast_to(
            0.5 + _HALF_LOG_2PI + jnp.log(self.scale) + self._log_mass()
            + 0.5 * (a_pdf - b_pdf),
            self.batch_shape,
        )

    def _pdf_ratios(self):
        """``phi(a) / Z``, ``phi(b) / Z``, ``a phi(a) / Z``, ``b phi(b) / Z``."""
        a, b = self._std_bounds()
        log_mass = self._log_mass()
        zero = jnp.zeros_like(log_mass)
        ra = zero if self.low is None else jnp.exp(_log_normal_pdf(a) - log_mass)
        rb = zero if self.high is None else jnp.exp(_log_normal_pdf(b) - log_mass)
        return (
            ra,
            rb,
            (zero if self.low is None else a * ra),
            (zero if self.high is None else b * rb),
        )

    @property
    def mean(self):
        ra, rb, _, _ = self._pdf_ratios()
        return jnp.broadcast_to(self.loc + self.scale * (ra - rb), self.batch_shape)

    @property
    def variance(self):
        ra, rb, ara, brb = self._pdf_ratios()
        var = self.scale**2 * (1.0 + ara - brb - (ra - rb) ** 2)
        return jnp.broadcast_to(var, self.batch_shape)


# --- multivariate: random walk, low-rank normal, LKJ ----------------------------


class GaussianRandomWalk(Distribution):
    """A random walk of ``num_steps`` Gaussian steps started from zero.

    ``x_0 ~ N(0, scale^2)`` and ``x_t - x_{t-1} ~ N(0, scale^2)``, so a draw
    is the cumulative sum of ``num_steps`` independent normal steps; the
    event shape is ``(num_steps,)``.

    Parameters
    ----------
    scale : array_like, default=1.0
        Standard deviation of each step, > 0; its shape is the batch shape.
    num_steps : int, default=1
        Length of the walk, >= 1.

    Examples
    --------
    >>> import jax
    >>> from core_ppl.distributions import GaussianRandomWalk
    >>> walk = GaussianRandomWalk(scale=0.5, num_steps=4)
    >>> walk.sample(jax.random.PRNGKey(0), (3,)).shape
    (3, 4)
    >>> walk.variance.tolist()  # t * scale^2
    [0.25, 0.5, 0.75, 1.0]
    """

    arg_constraints = {"scale": constraints.positive}
    support = constraints.real_vector
    has_rsample = True
    reparametrized_params = ("scale",)

    def __init__(self, scale=1.0, num_steps=1, *, validate_args=None):
        if int(num_steps) != num_steps or num_steps < 1:
            raise ValueError(
                f"GaussianRandomWalk: num_steps must be an integer >= 1, got "
                f"{num_steps!r}"
            )
        self.num_steps = int(num_steps)
        self.scale = as_float_array(scale)
        super().__init__(
            self.scale.shape, (self.num_steps,), validate_args=validate_args
        )

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        steps = jax.random.normal(key, shape, dtype=self.scale.dtype)
        return jnp.cumsum(steps, axis=-1) * self.scale[..., None]

    def log_prob(self, value):
        value = self._check_value(value)
        # The steps (with x_{-1} = 0) are iid N(0, scale^2): the map from steps
        # to the walk is unit lower triangular, so no Jacobian term.
        steps = jnp.diff(value, axis=-1, prepend=jnp.zeros_like(value[..., :1]))
        z = steps / self.scale[..., None]
        log_norm = self.num_steps * (jnp.log(self.scale) + _HALF_LOG_2PI)
        return -0.5 * jnp.sum(z**2, axis=-1) - log_norm

    @property
    def mean(self):
        return jnp.zeros(self.shape(), dtype=self.scale.dtype)

    @property
    def variance(self):
        t = jnp.arange(1, self.num_steps + 1, dtype=self.scale.dtype)
        return t * self.scale[..., None] ** 2


def _low_rank_capacitance_tril(cov_factor, cov_diag):
    """Cholesky factor of ``I_r + W^T D^{-1} W``, the Woodbury capacitance."""
    scaled = cov_factor / jnp.sqrt(cov_diag[..., None])
    rank = cov_factor.shape[-1]
    capacitance = jnp.swapaxes(scaled, -2, -1) @ scaled + jnp.eye(
        rank, dtype=cov_factor.dtype
    )
    return jnp.linalg.cholesky(capacitance)


class LowRankMultivariateNormal(Distribution):
    """``N(loc, W W^T + diag(D))`` with a low-rank-plus-diagonal covariance.

    ``W = cov_factor`` has shape ``(..., n, r)`` with usually ``r << n``.
    ``log_prob`` never forms the ``n x n`` covariance: the Woodbury identity
    gives the Mahalanobis term and the matrix determinant lemma
    ``det(W W^T + D) = det(I_r + W^T D^{-1} W) det(D)`` the log-determinant,
    for ``O(n r^2)`` work per evaluation.

    Parameters
    ----------
    loc : array_like
        Mean, shape ``batch_shape + (n,)``.
    cov_factor : array_like
        ``W``, shape ``batch_shape + (n, r)``.
    cov_diag : array_like
        ``D``, positive, shape ``batch_shape + (n,)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from core_ppl.distributions import LowRankMultivariateNormal
    >>> d = LowRankMultivariateNormal(jnp.zeros(3), jnp.ones((3, 1)), jnp.ones(3))
    >>> d.event_shape, d.covariance_matrix.tolist()
    ((3,), [[2.0, 1.0, 1.0], [1.0, 2.0, 1.0], [1.0, 1.0, 2.0]])
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "cov_factor": constraints.independent(constraints.real, 2),
        "cov_diag": constraints.independent(constraints.positive, 1),
    }
    support = constraints.real_vector
    has_rsample = True
    reparametrized_params = ("loc", "cov_factor", "cov_diag")

    def __init__(self, loc, cov_factor, cov_diag, *, validate_args=None):
        loc, cov_factor, cov_diag = (
            as_float_array(v) for v in (loc, cov_factor, cov_diag)
        )
        n = self._check_shapes(loc, cov_factor, cov_diag)
        batch_shape = broadcast_param_shapes(
            "LowRankMultivariateNormal",
            loc=loc.shape[:-1],
            cov_factor=cov_factor.shape[:-2],
            cov_diag=cov_diag.shape[:-1],
        )
        self.loc = jnp.broadcast_to(loc, batch_shape + (n,))
        factor_shape = batch_shape + cov_factor.shape[-2:]
        self.cov_factor = jnp.broadcast_to(cov_factor, factor_shape)
        self.cov_diag = jnp.broadcast_to(cov_diag, batch_shape + (n,))
        super().__init__(batch_shape, (n,), validate_args=validate_args)

    @staticmethod
    def _check_shapes(loc, cov_factor, cov_diag):
        name = "LowRankMultivariateNormal"
        for arg, value, ndim in (
            ("loc", loc, 1),
            ("cov_factor", cov_factor, 2),
            ("cov_diag", cov_diag, 1),
        ):
            if value.ndim < ndim:
                raise ValueError(
                    f"{name}: {arg} needs at least {ndim} dimension(s), got shape "
                    f"{value.shape}"
                )
        n = loc.shape[-1]
        if cov_factor.shape[-2] != n or cov_diag.shape[-1] != n:
            raise ValueError(
                f"{name}: event sizes disagree: loc with shape {loc.shape}, "
                f"cov_factor with shape {cov_factor.shape} (expected (..., {n}, r)), "
                f"cov_diag with shape {cov_diag.shape} (expected (..., {n}))"
            )
        return n

    def sample(self, key, sample_shape=()):
        key_w, key_d = jax.random.split(key)
        shape = self.shape(sample_shape)
        rank = self.cov_factor.shape[-1]
        dtype = self.loc.dtype
        eps_w = jax.random.normal(key_w, shape[:-1] + (rank,), dtype=dtype)
        eps_d = jax.random.normal(key_d, shape, dtype=dtype)
        low_rank = jnp.matmul(self.cov_factor, eps_w[..., None])[..., 0]
        return self.loc + low_rank + jnp.sqrt(self.cov_diag) * eps_d

    def log_prob(self, value):
        value = self._check_value(value)
        diff = value - self.loc
        tril = _low_rank_capacitance_tril(self.cov_factor, self.cov_diag)
        # Woodbury: x^T S^{-1} x = x^T D^{-1} x - |K^{-1} W^T D^{-1} x|^2
        # with K K^T the capacitance.
        w_dinv_x = jnp.matmul(
            jnp.swapaxes(self.cov_factor, -2, -1), (diff / self.cov_diag)[..., None]
        )
        tril = jnp.broadcast_to(tril, w_dinv_x.shape[:-2] + tril.shape[-2:])
        z = solve_triangular(tril, w_dinv_x, lower=True)[..., 0]
        mahalanobis = jnp.sum(diff**2 / self.cov_diag, -1) - jnp.sum(z**2, -1)
        log_det = jnp.sum(jnp.log(self.cov_diag), -1) + 2.0 * jnp.sum(
            jnp.log(jnp.diagonal(tril, axis1=-2, axis2=-1)), -1
        )
        n = self.event_shape[0]
        return -0.5 * (mahalanobis + log_det) - n * _HALF_LOG_2PI

    def entropy(self):
        """Differential entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        return jnp.broadcast_to(_gaussian_entropy(self.scale_tril), self.batch_shape)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return jnp.sum(self.cov_factor**2, axis=-1) + self.cov_diag

    @property
    def covariance_matrix(self):
        """``W W^T + diag(D)``, shape ``batch_shape + (n, n)``."""
        w = self.cov_factor
        return w @ jnp.swapaxes(w, -2, -1) + _diag_matrix(self.cov_diag)

    @property
    def precision_matrix(self):
        """``D^{-1} - D^{-1} W C^{-1} W^T D^{-1}`` (Woodbury), ``C`` the
        capacitance."""
        tril = _low_rank_capacitance_tril(self.cov_factor, self.cov_diag)
        # A = K^{-1} W^T D^{-1}, so D^{-1} W C^{-1} W^T D^{-1} = A^T A.
        a = solve_triangular(
            tril,
            jnp.swapaxes(self.cov_factor / self.cov_diag[..., None], -2, -1),
            lower=True,
        )
        return _diag_matrix(1.0 / self.cov_diag) - jnp.swapaxes(a, -2, -1) @ a

    @property
    def scale_tril(self):
        """Lower Cholesky factor of the covariance (forms the dense matrix)."""
        return jnp.linalg.cholesky(self.covariance_matrix)


def _diag_matrix(diag):
    return diag[..., :, None] * jnp.eye(diag.shape[-1], dtype=diag.dtype)


class LKJ(Distribution):
    """LKJ distribution over correlation matrices ``C``.

    The density is ``det(C)^(concentration - 1) / c_d`` with respect to the
    strictly lower triangle of ``C`` (Lewandowski, Kurowicka & Joe 2009);
    ``c_d`` is :class:`LKJCholesky`'s normaliser. It is the image of
    :class:`LKJCholesky` under ``L -> L L^T``, whose Jacobian
    ``prod_j L_jj^(d - j)`` (see ``CorrMatrixCholeskyTransform``) turns the
    powers ``d - i + 2 eta - 2`` of ``L_ii`` into ``2 eta - 2``. Each
    off-diagonal entry is marginally ``2 B - 1`` with ``B ~ Beta(eta - 1 +
    d/2, eta - 1 + d/2)`` (section 3.2 of the paper), which gives its
    variance ``1 / (2 eta + d - 1)``.

    Parameters
    ----------
    dimension : int
        Size ``d >= 2`` of the matrices.
    concentration : array_like, default=1.0
        ``eta > 0``; its shape is the batch shape. 1 is uniform over
        correlation matrices, larger values favour the identity.
    sample_method : {"onion"}, default="onion"
        Sampling algorithm, that of :class:`LKJCholesky`.

    Examples
    --------
    >>> import jax
    >>> from core_ppl.distributions import LKJ
    >>> d = LKJ(3, concentration=2.0)
    >>> d.sample(jax.random.PRNGKey(0), (5,)).shape
    (5, 3, 3)
    >>> round(float(d.variance[0, 1]), 4)  # 1 / (2 * 2 + 3 - 1)
    0.1667
    """

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_matrix
    has_rsample = True
    reparametrized_params = ("concentration",)

    def __init__(
        self, dimension, concentration=1.0, sample_method="onion", *, validate_args=None
    ):
        if int(dimension) != dimension or dimension < 2:
            raise ValueError(f"LKJ: dimension must be an integer >= 2, got {dimension}")
        if sample_method not in _LKJ_SAMPLE_METHODS:
            raise ValueError(
                f"LKJ: sample_method must be 'onion' or 'cvine', got {sample_method!r}"
            )
        self.dimension = d = int(dimension)
        self.sample_method = sample_method
        self.concentration = as_float_array(concentration)
        super().__init__(self.concentration.shape, (d, d), validate_args=validate_args)

    def _cholesky_dist(self):
        return LKJCholesky(self.dimension, self.concentration, self.sample_method)

    def sample(self, key, sample_shape=()):
        chol = self._cholesky_dist().sample(key, sample_shape)
        return chol @ jnp.swapaxes(chol, -2, -1)

    def log_prob(self, value):
        value = self._check_value(value)
        chol = jnp.linalg.cholesky(value)
        d = self.dimension
        log_diag = jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1))
        # Change of variables C -> L: subtract log|det dC/dL|.
        powers = jnp.arange(d - 1, -1, -1, dtype=log_diag.dtype)
        log_jacobian = jnp.sum(powers * log_diag, axis=-1)
        return self._cholesky_dist().log_prob(chol) - log_jacobian

    @property
    def mean(self):
        eye = jnp.eye(self.dimension, dtype=self.concentration.dtype)
        return jnp.broadcast_to(eye, self.shape())

    @property
    def variance(self):
        d = self.dimension
        off_diag = 1.0 / (2.0 * self.concentration + d - 1.0)
        eye = jnp.eye(d, dtype=self.concentration.dtype)
        return off_diag[..., None, None] * (1.0 - eye)

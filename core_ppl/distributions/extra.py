"""More scalar continuous distributions: Gumbel, Pareto, Kumaraswamy,
SoftLaplace and AsymmetricLaplace.

Each is sampled by pushing a standard draw (uniform, exponential or Gumbel)
through a differentiable map of its parameters, so every sample here is
reparameterised.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import betaln, digamma

from core_ppl.distributions import constraints
from core_ppl.distributions.continuous import _params, _where_support
from core_ppl.distributions.distribution import Distribution

__all__ = [
    "AsymmetricLaplace",
    "Gumbel",
    "Kumaraswamy",
    "Pareto",
    "SoftLaplace",
]

_EULER_GAMMA = 0.5772156649015329
_LOG_2_OVER_PI = math.log(2.0 / math.pi)


def _uniform(key, shape, dtype):
    # Open interval (0, 1): the quantile functions below are infinite at 0 and 1.
    tiny = jnp.finfo(dtype).tiny
    return jax.random.uniform(key, shape, dtype=dtype, minval=tiny, maxval=1.0)


def _times_log(coef, value, log_fn):
    """``coef * log_fn(value)``, with ``0 * log 0 = 0`` in value and gradient.

    At an edge of the unit interval a zero exponent meets an infinite log
    (Kumaraswamy with ``a = 1`` at 0, ``b = 1`` at 1, where the density is
    finite): the log is evaluated at a safe point there, so no NaN reaches
    the value or the gradient.
    """
    is_zero = coef == 0
    safe_value = jnp.where(is_zero, 0.5, value)
    return jnp.where(is_zero, 0.0, coef * log_fn(safe_value))


class Gumbel(Distribution):
    """The Gumbel (type I extreme value) distribution.

    Density ``exp(-(z + exp(-z))) / scale`` with ``z = (x - loc) / scale``.

    Parameters
    ----------
    loc : array_like, default=0.0
        Location (the mode).
    scale : array_like, default=1.0
        Scale, > 0.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import math
    >>> import core_ppl.distributions as dist
    >>> d = dist.Gumbel(0.0, 1.0)
    >>> math.isclose(float(d.log_prob(0.0)), -1.0, rel_tol=1e-6)
    True
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    reparametrized_params = ("loc", "scale")

    def __init__(self, loc=0.0, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("Gumbel", loc=loc, scale=scale)
        self.loc, self.scale = p["loc"], p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.gumbel(key, self.shape(sample_shape), dtype=self.loc.dtype)
        return self.loc + self.scale * eps

    def log_prob(self, value):
        value = self._check_value(value)
        z = (value - self.loc) / self.scale
        return -(z + jnp.exp(-z)) - jnp.log(self.scale)

    def cdf(self, value):
        """``P(X <= value) = exp(-exp(-z))``."""
        return jnp.exp(-jnp.exp(-(value - self.loc) / self.scale))

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return self.loc - self.scale * jnp.log(-jnp.log(q))

    def entropy(self):
        """``log(scale) + gamma + 1`` (Euler's gamma)."""
        return jnp.broadcast_to(
            jnp.log(self.scale) + _EULER_GAMMA + 1.0, self.batch_shape
        )

    @property
    def mean(self):
        return jnp.broadcast_to(self.loc + self.scale * _EULER_GAMMA, self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to((math.pi * self.scale) ** 2 / 6.0, self.batch_shape)


class Pareto(Distribution):
    """The Pareto (type I) distribution on ``[scale, inf)``.

    Density ``alpha scale^alpha / x^(alpha + 1)``; sampled as ``scale *
    exp(E / alpha)`` with ``E`` standard exponential.

    Parameters
    ----------
    scale : array_like
        Minimum value, > 0.
    alpha : array_like
        Tail index (shape), > 0.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {"scale": constraints.positive, "alpha": constraints.positive}
    has_rsample = True
    reparametrized_params = ("scale", "alpha")

    def __init__(self, scale, alpha, *, validate_args=None):
        p, batch_shape = _params("Pareto", scale=scale, alpha=alpha)
        self.scale, self.alpha = p["scale"], p["alpha"]
        super().__init__(batch_shape, validate_args=validate_args)

    @property
    def support(self):
        return constraints.greater_than_eq(self.scale)

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        eps = jax.random.exponential(key, shape, dtype=self.scale.dtype)
        return self.scale * jnp.exp(eps / self.alpha)

    def log_prob(self, value):
        value = self._check_value(value)
        log_prob = (
            jnp.log(self.alpha)
            + self.alpha * jnp.log(self.scale)
            - (self.alpha + 1.0) * jnp.log(value)
        )
        return _where_support(value >= self.scale, log_prob)

    def cdf(self, value):
        """``P(X <= value) = 1 - (scale / value)^alpha`` above ``scale``."""
        ratio = self.scale / jnp.maximum(value, self.scale)
        return -jnp.expm1(self.alpha * jnp.log(ratio))

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        return self.scale * jnp.exp(-jnp.log1p(-q) / self.alpha)

    def entropy(self):
        """``log(scale / alpha) + 1 / alpha + 1``."""
        a = self.alpha
        return jnp.broadcast_to(
            jnp.log(self.scale / a) + 1.0 / a + 1.0, self.batch_shape
        )

    @property
    def mean(self):
        a = self.alpha
        mean = jnp.where(a > 1, a * self.scale / (a - 1.0), jnp.inf)
        return jnp.broadcast_to(mean, self.batch_shape)

    @property
    def variance(self):
        a = self.alpha
        var = jnp.where(
            a > 2, self.scale**2 * a / ((a - 1.0) ** 2 * (a - 2.0)), jnp.inf
        )
        return jnp.broadcast_to(var, self.batch_shape)


class Kumaraswamy(Distribution):
    """The Kumaraswamy distribution on the unit interval.

    Density ``a b x^(a-1) (1 - x^a)^(b-1)`` with ``a = concentration1`` and
    ``b = concentration0``; its cdf ``1 - (1 - x^a)^b`` inverts in closed
    form, which gives reparameterised samples.

    Parameters
    ----------
    concentration1 : array_like
        ``a`` > 0.
    concentration0 : array_like
        ``b`` > 0.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True
    reparametrized_params = ("concentration1", "concentration0")

    def __init__(self, concentration1, concentration0, *, validate_args=None):
        p, batch_shape = _params(
            "Kumaraswamy", concentration1=concentration1, concentration0=concentration0
        )
        self.concentration1 = p["concentration1"]
        self.concentration0 = p["concentration0"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        u = _uniform(key, self.shape(sample_shape), self.concentration1.dtype)
        # x = (1 - (1 - u)^(1/b))^(1/a), in log space: 1 - (1-u)^(1/b) is
        # -expm1(log1p(-u) / b), accurate for small u.
        log_x = jnp.log(-jnp.expm1(jnp.log1p(-u) / self.concentration0))
        x = jnp.exp(log_x / self.concentration1)
        finfo = jnp.finfo(x.dtype)
        return jnp.clip(x, finfo.tiny, 1.0 - finfo.eps)

    def log_prob(self, value):
        value = self._check_value(value)
        a, b = self.concentration1, self.concentration0
        log_prob = (
            jnp.log(a)
            + jnp.log(b)
            + _times_log(a - 1.0, value, jnp.log)
            + _times_log(b - 1.0, value, lambda x: jnp.log1p(-(x**a)))
        )
        return _where_support((value >= 0) & (value <= 1), log_prob)

    def entropy(self):
        """``(1 - 1/b) + (1 - 1/a) H_b - log(a b)``, ``H_b`` the harmonic
        number ``digamma(b + 1) + gamma``."""
        a, b = self.concentration1, self.concentration0
        harmonic = digamma(b + 1.0) + _EULER_GAMMA
        return (1.0 - 1.0 / b) + (1.0 - 1.0 / a) * harmonic - jnp.log(a * b)

    def _raw_moment(self, n):
        # E[X^n] = b B(1 + n / a, b).
        a, b = self.concentration1, self.concentration0
        return b * jnp.exp(betaln(1.0 + n / a, b))

    @property
    def mean(self):
        return jnp.broadcast_to(self._raw_moment(1.0), self.batch_shape)

    @property
    def variance(self):
        var = self._raw_moment(2.0) - self._raw_moment(1.0) ** 2
        return jnp.broadcast_to(var, self.batch_shape)


class SoftLaplace(Distribution):
    """A smooth, heavier-than-normal alternative to the Laplace distribution.

    Density ``1 / (pi scale cosh(z))`` with ``z = (x - loc) / scale`` (the
    hyperbolic secant distribution): log-concave, with exponential tails like
    Laplace's but a smooth peak, so gradient-based samplers behave.

    Parameters
    ----------
    loc : array_like, default=0.0
        Location (mean and median).
    scale : array_like, default=1.0
        Scale, > 0 (standard deviation ``pi scale / 2``).
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    reparametrized_params = ("loc", "scale")

    def __init__(self, loc=0.0, scale=1.0, *, validate_args=None):
        p, batch_shape = _params("SoftLaplace", loc=loc, scale=scale)
        self.loc, self.scale = p["loc"], p["scale"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        u = _uniform(key, self.shape(sample_shape), self.loc.dtype)
        return self.icdf(u)

    def log_prob(self, value):
        value = self._check_value(value)
        z = (value - self.loc) / self.scale
        # 1 / cosh(z) = 2 / (e^z + e^-z), with logaddexp for large |z|.
        return _LOG_2_OVER_PI - jnp.log(self.scale) - jnp.logaddexp(z, -z)

    def cdf(self, value):
        """``P(X <= value) = (2 / pi) arctan(exp(z))``."""
        return (2.0 / math.pi) * jnp.arctan(jnp.exp((value - self.loc) / self.scale))

    def icdf(self, q):
        """The quantile function, ``loc + scale log(tan(pi q / 2))``."""
        return self.loc + self.scale * jnp.log(jnp.tan(0.5 * math.pi * q))

    def entropy(self):
        """``log(2 pi scale)``: ``-E log p = log(pi scale) + E log cosh(z)``
        and ``E log cosh(z) = log 2``."""
        return jnp.broadcast_to(jnp.log(2.0 * math.pi * self.scale), self.batch_shape)

    @property
    def mean(self):
        return jnp.broadcast_to(self.loc, self.batch_shape)

    @property
    def variance(self):
        return jnp.broadcast_to((0.5 * math.pi * self.scale) ** 2, self.batch_shape)


class AsymmetricLaplace(Distribution):
    """A Laplace distribution with different scales left and right of ``loc``.

    With ``left = scale * asymmetry`` and ``right = scale / asymmetry``, the
    density is ``exp(-|x - loc| / s) / (left + right)`` where ``s`` is
    ``left`` below ``loc`` and ``right`` above it.

    Parameters
    ----------
    loc : array_like, default=0.0
        Location (the mode).
    scale : array_like, default=1.0
        Scale, > 0.
    asymmetry : array_like, default=1.0
        > 0; values above 1 put more mass left of ``loc``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "asymmetry": constraints.positive,
    }
    support = constraints.real
    has_rsample = True
    reparametrized_params = ("loc", "scale", "asymmetry")

    def __init__(self, loc=0.0, scale=1.0, asymmetry=1.0, *, validate_args=None):
        p, batch_shape = _params(
            "AsymmetricLaplace", loc=loc, scale=scale, asymmetry=asymmetry
        )
        self.loc, self.scale, self.asymmetry = p["loc"], p["scale"], p["asymmetry"]
        super().__init__(batch_shape, validate_args=validate_args)

    @property
    def left_scale(self):
        return self.scale * self.asymmetry

    @property
    def right_scale(self):
        return self.scale / self.asymmetry

    def sample(self, key, sample_shape=()):
        u = _uniform(key, self.shape(sample_shape), self.loc.dtype)
        return self.icdf(u)

    def log_prob(self, value):
        value = self._check_value(value)
        left, right = self.left_scale, self.right_scale
        d = value - self.loc
        return -jnp.abs(d) / jnp.where(d < 0, left, right) - jnp.log(left + right)

    def cdf(self, value):
        """``P(X <= value)``."""
        left, right = self.left_scale, self.right_scale
        d = value - self.loc
        total = left + right
        below = left / total * jnp.exp(jnp.minimum(d, 0.0) / left)
        above = 1.0 - right / total * jnp.exp(-jnp.maximum(d, 0.0) / right)
        return jnp.where(d < 0, below, above)

    def icdf(self, q):
        """The quantile function, inverse of ``cdf``."""
        left, right = self.left_scale, self.right_scale
        p_left = left / (left + right)
        # Each branch is evaluated at a safe argument so that neither the
        # value nor the gradient of the unused branch is NaN.
        q_below = jnp.minimum(q, p_left)
        q_above = jnp.maximum(q, p_left)
        below = left * jnp.log(q_below / p_left)
        above = -right * jnp.log((1.0 - q_above) / (1.0 - p_left))
        return self.loc + jnp.where(q < p_left, below, above)

    def entropy(self):
        """``1 + log(left + right)``: ``E|x - loc| / s`` is 1 on either side."""
        entropy = 1.0 + jnp.log(self.left_scale + self.right_scale)
        return jnp.broadcast_to(entropy, self.batch_shape)

    @property
    def mean(self):
        mean = self.loc + self.right_scale - self.left_scale
        return jnp.broadcast_to(mean, self.batch_shape)

    @property
    def variance(self):
        var = self.left_scale**2 + self.right_scale**2
        return jnp.broadcast_to(var, self.batch_shape)

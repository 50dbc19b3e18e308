"""Truncated distributions: a symmetric location-scale base restricted to
``[low, high]``, where either bound may be infinite.

The base is one of :class:`Normal`, :class:`Cauchy`, :class:`StudentT`,
:class:`Laplace`, :class:`Logistic` and :class:`SoftLaplace`, all symmetric
about ``loc``. Work happens on the standardised bounds ``a = (low - loc) /
scale`` and ``b = (high - loc) / scale``. When the interval lies right of the
centre (``a > 0``), ``F(a)`` and ``F(b)`` are both close to one and lose their
digits, so the interval is reflected to ``[-b, -a]``, where the cdf values
are small and exact (symmetry: ``1 - F(z) = F(-z)``). The normalising mass
``F(b) - F(a)`` and the inverse-cdf draw ``F^{-1}(F(a) + u (F(b) - F(a)))``
are both computed in that frame, then reflected back.

Samples are ``loc + scale * z`` with ``z`` a differentiable function of the
standardised bounds, so they are reparameterised. A StudentT base is the
exception in one respect: its cdf is JAX's ``betainc``, which has no
gradient with respect to ``df``, so neither ``df`` of a truncated StudentT
can be inferred by gradient methods nor its samples differentiated in ``df``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import betainc, log_ndtr, ndtr, ndtri

from core_ppl.distributions import constraints
from core_ppl.distributions.continuous import (
    Cauchy,
    Laplace,
    Logistic,
    Normal,
    StudentT,
    _where_support,
)
from core_ppl.distributions.distribution import (
    Distribution,
    as_float_array,
    broadcast_param_shapes,
    check_param,
)
from core_ppl.distributions.extra import SoftLaplace
from core_ppl.distributions.util import log1mexp

__all__ = [
    "LeftTruncatedDistribution",
    "RightTruncatedDistribution",
    "TruncatedCauchy",
    "TruncatedDistribution",
    "TwoSidedTruncatedDistribution",
]


# --- standardised cdf and quantile of each supported family ------------------


def _student_cdf(df, z):
    # F(z) = I_{df / (df + z^2)}(df / 2, 1 / 2) / 2 for z <= 0, by symmetry above.
    tail = 0.5 * betainc(0.5 * df, 0.5, df / (df + z**2))
    return jnp.where(z <= 0, tail, 1.0 - tail)


def _student_icdf(df, q):
    """The standard t quantile: bisection on ``log w`` (``w = df / (df + z^2)``),
    then one Newton step from the stopped-gradient root so that the result
    carries the implicit-function derivative ``dz/dq = 1 / f(z)``."""
    dtype = jnp.result_type(q, float)
    q_tail = jnp.minimum(q, 1.0 - q)  # solve in the left tail, reflect after
    lo = jnp.full(jnp.shape(q_tail), math.log(jnp.finfo(dtype).tiny), dtype)
    hi = jnp.zeros(jnp.shape(q_tail), dtype)
    df_b = jnp.broadcast_to(df, jnp.shape(q_tail))
    q_s = lax.stop_gradient(q_tail)

    def halve(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        too_big = 0.5 * betainc(0.5 * df_b, 0.5, jnp.exp(mid)) > q_s
        return jnp.where(too_big, lo, mid), jnp.where(too_big, mid, hi)

    lo, hi = lax.fori_loop(0, 64 if dtype == jnp.float64 else 40, halve, (lo, hi))
    w = jnp.exp(0.5 * (lo + hi))
    z0 = lax.stop_gradient(-jnp.sqrt(df_b * (1.0 - w) / w))
    density = jnp.exp(StudentT(df_b).log_prob(z0))
    z = z0 - (_student_cdf(df_b, z0) - q_tail) / density
    return jnp.where(q <= 0.5, z, -z)


def _family(base):
    """``(cdf, log_cdf, icdf)`` of the standardised base, as functions of ``z``
    (or ``q``). ``log_cdf`` is accurate in the left tail, the only place the
    reflected computations use it."""
    if isinstance(base, Normal):
        return ndtr, log_ndtr, ndtri
    if isinstance(base, Cauchy):
        # atan2(1, -z) = pi / 2 + atan(z), without cancellation for z << 0.
        def cdf(z):
            return jnp.arctan2(1.0, -z) / math.pi

        def icdf(q):
            return -1.0 / jnp.tan(math.pi * q)

        return cdf, lambda z: jnp.log(cdf(z)), icdf
    if isinstance(base, Laplace):

        def cdf(z):
            return jnp.where(
                z < 0,
                0.5 * jnp.exp(jnp.minimum(z, 0.0)),
                1.0 - 0.5 * jnp.exp(-jnp.maximum(z, 0.0)),
            )

        def log_cdf(z):
            return jnp.where(z < 0, math.log(0.5) + z, jnp.log(cdf(z)))

        def icdf(q):
            q_lo, q_hi = jnp.minimum(q, 0.5), jnp.maximum(q, 0.5)
            return jnp.where(q < 0.5, jnp.log(2.0 * q_lo), -jnp.log(2.0 * (1 - q_hi)))

        return cdf, log_cdf, icdf
    if isinstance(base, Logistic):
        return (
            jax.nn.sigmoid,
            lambda z: -jax.nn.softplus(-z),
            lambda q: jnp.log(q) - jnp.log1p(-q),
        )
    if isinstance(base, SoftLaplace):

        def cdf(z):
            return (2.0 / math.pi) * jnp.arctan(jnp.exp(z))

        return (
            cdf,
            lambda z: jnp.log(cdf(z)),
            lambda q: jnp.log(jnp.tan(0.5 * math.pi * q)),
        )
    if isinstance(base, StudentT):
        df = base.df
        return (
            lambda z: _student_cdf(df, z),
            lambda z: jnp.log(_student_cdf(df, z)),
            lambda q: _student_icdf(df, q),
        )
    raise AssertionError("unreachable: checked by _check_base")


_SUPPORTED = (Cauchy, Laplace, Logistic, Normal, SoftLaplace, StudentT)


def _check_base(name, base_dist):
    if not isinstance(base_dist, _SUPPORTED):
        names = ", ".join(t.__name__ for t in _SUPPORTED)
        raise TypeError(
            f"{name}: base_dist must be one of {names}, got {type(base_dist).__name__}"
        )


def _broadcast_base(base_dist, batch_shape):
    """A copy of ``base_dist`` with every parameter broadcast to ``batch_shape``."""
    params = {
        k: jnp.broadcast_to(getattr(base_dist, k), batch_shape)
        for k in base_dist.arg_constraints
    }
    return type(base_dist)(**params)


# --- the truncated distribution -----------------------------------------------


class _Truncated(Distribution):
    """Shared machinery; ``low`` or ``high`` is None for an open side."""

    has_rsample = True
    _sides = ()

    def _init(self, base_dist, low, high, validate_args):
        name = type(self).__name__
        _check_base(name, base_dist)
        bounds = {"low": low, "high": high}
        bounds = {k: as_float_array(v) for k, v in bounds.items() if v is not None}
        batch_shape = broadcast_param_shapes(
            name,
            base_dist=base_dist.batch_shape,
            **{k: v.shape for k, v in bounds.items()},
        )
        self.base_dist = _broadcast_base(base_dist, batch_shape)
        for key, value in bounds.items():
            setattr(self, key, jnp.broadcast_to(value, batch_shape))
        super().__init__(batch_shape, validate_args=validate_args)

    @property
    def reparametrized_params(self):
        return self._sides

    def _std_bounds(self):
        base = self.base_dist
        low, high = getattr(self, "low", None), getattr(self, "high", None)
        # A missing side is a constant infinity, so no gradient flows to it.
        a = -jnp.inf if low is None else (low - base.loc) / base.scale
        b = jnp.inf if high is None else (high - base.loc) / base.scale
        return a, b

    def _reflected(self):
        """The standardised interval in the frame where its cdf values are
        small: ``(flip, lo, hi)`` with ``[lo, hi] = [-b, -a]`` where flipped."""
        a, b = self._std_bounds()
        flip = jnp.asarray(a > 0)
        lo = jnp.where(flip, -b, a)
        hi = jnp.where(flip, -a, b)
        return flip, lo, hi

    def _log_mass(self):
        """``log(F(b) - F(a))``, the base probability of ``[low, high]``."""
        _, log_cdf, _ = _family(self.base_dist)
        _, lo, hi = self._reflected()
        log_hi, log_lo = log_cdf(hi), log_cdf(lo)
        return log_hi + log1mexp(jnp.minimum(log_lo - log_hi, 0.0))

    def sample(self, key, sample_shape=()):
        cdf, _, icdf = _family(self.base_dist)
        shape = self.shape(sample_shape)
        dtype = self.base_dist.loc.dtype
        u = jax.random.uniform(key, shape, dtype=dtype)
        flip, lo, hi = self._reflected()
        cdf_lo, cdf_hi = cdf(lo), cdf(hi)
        q = cdf_lo + u * (cdf_hi - cdf_lo)
        # Keep q inside (0, 1), where every quantile function is finite.
        tiny = jnp.finfo(dtype).tiny
        z = jnp.clip(icdf(jnp.clip(q, tiny, 1.0 - jnp.finfo(dtype).epsneg)), lo, hi)
        base = self.base_dist
        return base.loc + base.scale * jnp.where(flip, -z, z)

    def log_prob(self, value):
        value = self._check_value(value)
        log_prob = self.base_dist.log_prob(value) - self._log_mass()
        # Closed at the bounds, as scipy's truncated densities are (the
        # bounds themselves have measure zero under ``support``).
        inside = jnp.isfinite(value)
        if "low" in self.__dict__:
            inside = inside & (value >= self.low)
        if "high" in self.__dict__:
            inside = inside & (value <= self.high)
        return _where_support(inside, log_prob)

    def cdf(self, value):
        """``P(X <= value)`` under the truncated distribution."""
        cdf, _, _ = _family(self.base_dist)
        a, b = self._std_bounds()
        base = self.base_dist
        z = jnp.clip((value - base.loc) / base.scale, a, b)
        # Differences of cdf values in the reflected frame where it is exact.
        flip = jnp.asarray(a > 0)
        num = jnp.where(flip, cdf(-a) - cdf(-z), cdf(z) - cdf(a))
        return num / jnp.exp(self._log_mass())

    # Moments in closed form for Normal and Cauchy bases.

    def _normal_moments(self):
        a, b = self._std_bounds()
        log_mass = self._log_mass()

        def ratio(z):  # phi(z) / Z and z phi(z) / Z, zero at an infinite bound
            finite = jnp.isfinite(z)
            z = jnp.where(finite, z, 0.0)
            r = jnp.exp(-0.5 * z**2 - 0.5 * math.log(2 * math.pi) - log_mass)
            return jnp.where(finite, r, 0.0), jnp.where(finite, z * r, 0.0)

        (ra, ara), (rb, brb) = ratio(a), ratio(b)
        mean = ra - rb
        return mean, 1.0 + ara - brb - mean**2

    def _cauchy_moments(self):
        a, b = self._std_bounds()
        angle = jnp.arctan(b) - jnp.arctan(a)
        finite = jnp.isfinite(a) & jnp.isfinite(b)
        a_f, b_f = jnp.where(finite, a, 0.0), jnp.where(finite, b, 1.0)
        mean = (jnp.log1p(b_f**2) - jnp.log1p(a_f**2)) / (2.0 * angle)
        second = ((b_f - a_f) - angle) / angle
        # One open side: the mean diverges towards it; the variance is infinite.
        open_mean = jnp.where(jnp.isfinite(a), jnp.inf, -jnp.inf)
        open_mean = jnp.where(jnp.isfinite(a) | jnp.isfinite(b), open_mean, jnp.nan)
        mean = jnp.where(finite, mean, open_mean)
        var = jnp.where(finite, second - mean**2, jnp.inf)
        return mean, var

    def _std_moments(self):
        if type(self.base_dist) is Normal:
            return self._normal_moments()
        if type(self.base_dist) is Cauchy:
            return self._cauchy_moments()
        raise NotImplementedError(
            f"{type(self).__name__} defines mean and variance for Normal and "
            f"Cauchy bases only, not {type(self.base_dist).__name__}"
        )

    @property
    def mean(self):
        mean, _ = self._std_moments()
        base = self.base_dist
        return jnp.broadcast_to(base.loc + base.scale * mean, self.batch_shape)

    @property
    def variance(self):
        _, var = self._std_moments()
        return jnp.broadcast_to(self.base_dist.scale**2 * var, self.batch_shape)


class LeftTruncatedDistribution(_Truncated):
    """``base_dist`` restricted to ``(low, inf)``.

    Parameters
    ----------
    base_dist : Normal, Cauchy, StudentT, Laplace, Logistic or SoftLaplace
        The distribution before truncation.
    low : array_like, default=0.0
        The lower bound.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {"low": constraints.real}
    _sides = ("low",)

    def __init__(self, base_dist, low=0.0, *, validate_args=None):
        self._init(base_dist, low, None, validate_args)

    @property
    def support(self):
        return constraints.greater_than(self.low)


class RightTruncatedDistribution(_Truncated):
    """``base_dist`` restricted to ``(-inf, high)``.

    Parameters
    ----------
    base_dist : Normal, Cauchy, StudentT, Laplace, Logistic or SoftLaplace
        The distribution before truncation.
    high : array_like, default=0.0
        The upper bound.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {"high": constraints.real}
    _sides = ("high",)

    def __init__(self, base_dist, high=0.0, *, validate_args=None):
        self._init(base_dist, None, high, validate_args)

    @property
    def support(self):
        return constraints.less_than(self.high)


class TwoSidedTruncatedDistribution(_Truncated):
    """``base_dist`` restricted to ``[low, high]``.

    Parameters
    ----------
    base_dist : Normal, Cauchy, StudentT, Laplace, Logistic or SoftLaplace
        The distribution before truncation.
    low : array_like, default=0.0
        The lower bound.
    high : array_like, default=1.0
        The upper bound, > ``low``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import jax
    >>> import core_ppl.distributions as dist
    >>> d = dist.TwoSidedTruncatedDistribution(dist.Laplace(0.0, 1.0), -1.0, 2.0)
    >>> x = d.sample(jax.random.PRNGKey(0), (1000,))
    >>> bool((x >= -1.0).all() and (x <= 2.0).all())
    True
    """

    arg_constraints = {"low": constraints.real, "high": constraints.real}
    _sides = ("low", "high")

    def __init__(self, base_dist, low=0.0, high=1.0, *, validate_args=None):
        self._init(base_dist, low, high, validate_args)

    def _validate_params(self):
        super()._validate_params()
        check_param(
            type(self).__name__, "high", constraints.greater_than(self.low), self.high
        )

    @property
    def support(self):
        return constraints.interval(self.low, self.high)


def TruncatedDistribution(base_dist, low=None, high=None, *, validate_args=None):
    """``base_dist`` restricted to ``[low, high]``; a None bound is open.

    Returns a :class:`LeftTruncatedDistribution`,
    :class:`RightTruncatedDistribution` or
    :class:`TwoSidedTruncatedDistribution`, as NumPyro's factory does.

    Parameters
    ----------
    base_dist : Normal, Cauchy, StudentT, Laplace, Logistic or SoftLaplace
        The distribution before truncation.
    low, high : array_like, optional
        The bounds; give at least one.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> d = dist.TruncatedDistribution(dist.Cauchy(0.0, 1.0), low=0.0)
    >>> type(d).__name__, d.support
    ('LeftTruncatedDistribution', greater_than(lower_bound=0))
    """
    if low is None and high is None:
        raise ValueError("TruncatedDistribution: give at least one of 'low' and 'high'")
    if high is None:
        return LeftTruncatedDistribution(base_dist, low, validate_args=validate_args)
    if low is None:
        return RightTruncatedDistribution(base_dist, high, validate_args=validate_args)
    return TwoSidedTruncatedDistribution(
        base_dist, low, high, validate_args=validate_args
    )


def TruncatedCauchy(loc=0.0, scale=1.0, *, low=None, high=None, validate_args=None):
    """A Cauchy distribution truncated to ``[low, high]`` (either may be None).

    A shortcut for ``TruncatedDistribution(Cauchy(loc, scale), low, high)``;
    with neither bound it is the plain :class:`Cauchy`.
    """
    base = Cauchy(loc, scale, validate_args=validate_args)
    if low is None and high is None:
        return base
    return TruncatedDistribution(base, low, high, validate_args=validate_args)

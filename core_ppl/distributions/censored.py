"""Censored observations: a base distribution whose value is either seen
exactly or only known to lie beyond a reported bound.

``log_prob(value)`` is the base log density where ``censored`` is False,
and the log probability of the censored tail where it is True: ``log F(value)``
for left censoring (the true value is at most ``value``) and ``log(1 -
F(value))`` for right censoring (at least ``value``), ``F`` being the base's
``cdf``. This is the survival-analysis likelihood of R's ``Surv(time, event,
type = "left" | "right")``, with ``censored = 1 - event`` for right censoring.
"""

from __future__ import annotations

import jax.numpy as jnp

from core_ppl.distributions import constraints
from core_ppl.distributions.distribution import Distribution, broadcast_param_shapes

__all__ = ["LeftCensoredDistribution", "RightCensoredDistribution"]


def _has_own_cdf(base_dist):
    # A cdf defined by the distribution itself, not a base-class placeholder
    # that raises NotImplementedError.
    own = getattr(type(base_dist), "cdf", None)
    return callable(own) and own is not getattr(Distribution, "cdf", None)


class _Censored(Distribution):
    arg_constraints = {"censored": constraints.boolean}

    def __init__(self, base_dist, censored=False, *, validate_args=None):
        name = type(self).__name__
        if not isinstance(base_dist, Distribution):
            raise TypeError(
                f"{name}: base_dist must be a Distribution, got "
                f"{type(base_dist).__name__}"
            )
        if not _has_own_cdf(base_dist):
            raise TypeError(
                f"{name}: {type(base_dist).__name__} has no 'cdf' method; a "
                "censored likelihood needs the base distribution's cdf"
            )
        if base_dist.event_shape:
            raise ValueError(
                f"{name}: base_dist must be scalar, got event_shape "
                f"{base_dist.event_shape}"
            )
        censored = jnp.asarray(censored)
        batch_shape = broadcast_param_shapes(
            name, base_dist=base_dist.batch_shape, censored=censored.shape
        )
        self.base_dist = base_dist
        self.censored = jnp.broadcast_to(censored.astype(bool), batch_shape)
        super().__init__(batch_shape, validate_args=validate_args)

    @property
    def support(self):
        return self.base_dist.support

    def sample(self, key, sample_shape=()):
        """Draws of the uncensored variable (the censoring is a property of
        the observation, not of the variable)."""
        return self.base_dist.expand(self.batch_shape).sample(key, sample_shape)

    def _censored_log_prob(self, value):
        raise NotImplementedError

    def log_prob(self, value):
        value = self._check_value(value)
        return jnp.where(
            self.censored,
            self._censored_log_prob(value),
            self.base_dist.log_prob(value),
        )


class LeftCensoredDistribution(_Censored):
    """``base_dist`` observed with left censoring.

    Parameters
    ----------
    base_dist : Distribution
        A scalar distribution with a ``cdf`` method (Normal, Exponential,
        Weibull, LogNormal...).
    censored : array_like of bool, default=False
        True where the true value is only known to be at most the reported
        one: ``log_prob`` is then ``log F(value)``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import math
    >>> import jax.numpy as jnp
    >>> import core_ppl.distributions as dist
    >>> d = dist.LeftCensoredDistribution(dist.Normal(0.0, 1.0), jnp.array([0, 1]))
    >>> lp = d.log_prob(jnp.array([0.0, 0.0]))
    >>> math.isclose(float(lp[1]), math.log(0.5), rel_tol=1e-6)
    True
    """

    def _censored_log_prob(self, value):
        # Floor F well above 0 so that log stays finite (and its gradient too)
        # where the base puts no mass below the bound.
        floor = 100.0 * jnp.finfo(jnp.result_type(value, float)).tiny
        return jnp.log(jnp.clip(self.base_dist.cdf(value), floor, 1.0))


class RightCensoredDistribution(_Censored):
    """``base_dist`` observed with right censoring.

    Parameters
    ----------
    base_dist : Distribution
        A scalar distribution with a ``cdf`` method (Exponential, Weibull,
        LogNormal, Normal...).
    censored : array_like of bool, default=False
        True where the true value is only known to be at least the reported
        one (e.g. a subject still alive at the end of follow-up): ``log_prob``
        is then ``log(1 - F(value))``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import math
    >>> import jax.numpy as jnp
    >>> import core_ppl.distributions as dist
    >>> d = dist.RightCensoredDistribution(dist.Exponential(0.1), jnp.array([0, 1]))
    >>> lp = d.log_prob(jnp.array([5.0, 8.0]))
    >>> math.isclose(float(lp[1]), -0.8, rel_tol=1e-5)
    True
    """

    def _censored_log_prob(self, value):
        eps = jnp.finfo(jnp.result_type(value, float)).eps
        return jnp.log1p(-jnp.clip(self.base_dist.cdf(value), 0.0, 1.0 - eps))

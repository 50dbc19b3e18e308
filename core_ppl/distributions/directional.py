"""Distributions on circles and spheres: :class:`VonMises` (angles) and
:class:`ProjectedNormal` (unit vectors).

Von Mises draws use the rejection sampler of Best & Fisher (1979), run on
the whole batch at once inside ``lax.while_loop`` until every element has
been accepted (each round accepts with probability above 0.65 for any
concentration). Projected normal draws normalise a normal vector, which is
differentiable in the concentration.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import i0e, i1e, log_ndtr

from core_ppl.distributions import constraints
from core_ppl.distributions.continuous import _params
from core_ppl.distributions.distribution import Distribution, as_float_array

__all__ = ["ProjectedNormal", "VonMises"]

_LOG_2PI = math.log(2.0 * math.pi)
# Below this concentration the von Mises is uniform to within 1e-5 in
# density; the sampler's constants are evaluated there instead of at 0.
_MIN_CONCENTRATION = 1e-5


def _wrap_angle(x):
    """``x`` mapped to ``[-pi, pi)``."""
    return jnp.remainder(x + math.pi, 2.0 * math.pi) - math.pi


def _best_fisher_r(kappa):
    # r = (1 + rho^2) / (2 rho), rho = (tau - sqrt(2 tau)) / (2 kappa) with
    # tau = 1 + sqrt(1 + 4 kappa^2). rho rewritten without the cancellation
    # of tau - sqrt(2 tau) at small kappa: rho = 2 kappa tau / ((s + 1)(tau +
    # sqrt(2 tau))), s = sqrt(1 + 4 kappa^2).
    s = jnp.sqrt(1.0 + 4.0 * kappa**2)
    tau = 1.0 + s
    rho = 2.0 * kappa * tau / ((s + 1.0) * (tau + jnp.sqrt(2.0 * tau)))
    return (1.0 + rho**2) / (2.0 * rho)


def _von_mises_centred(key, kappa, shape, dtype):
    """Angles in ``[-pi, pi]`` from ``VonMises(0, kappa)`` of ``shape``."""
    kappa = jnp.broadcast_to(jnp.maximum(kappa, _MIN_CONCENTRATION), shape)
    r = _best_fisher_r(kappa)

    def propose(key):
        u1, u2, u3 = jax.random.uniform(key, (3,) + shape, dtype=dtype)
        z = jnp.cos(math.pi * u1)
        f = (1.0 + r * z) / (r + z)
        c = kappa * (r - f)
        u2 = jnp.maximum(u2, jnp.finfo(dtype).tiny)
        accept = (c * (2.0 - c) > u2) | (jnp.log(c / u2) + 1.0 - c >= 0.0)
        theta = jnp.sign(u3 - 0.5) * jnp.arccos(jnp.clip(f, -1.0, 1.0))
        return accept, theta

    def not_done(state):
        return ~jnp.all(state[1])

    def one_round(state):
        key, done, theta = state
        key, sub = jax.random.split(key)
        accept, proposal = propose(sub)
        take = accept & ~done
        return key, done | accept, jnp.where(take, proposal, theta)

    init = (key, jnp.zeros(shape, bool), jnp.zeros(shape, dtype))
    _, _, theta = lax.while_loop(not_done, one_round, init)
    return theta


class VonMises(Distribution):
    """The von Mises distribution: a normal-like law for angles.

    Density ``exp(k cos(x - loc)) / (2 pi I0(k))`` on ``[-pi, pi]`` with
    ``k = concentration``.

    Parameters
    ----------
    loc : array_like
        The centre (mean direction), any real (read modulo ``2 pi``).
    concentration : array_like
        ``k`` > 0; large values approach ``N(loc, 1 / k)``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Notes
    -----
    ``mean`` is the mean direction ``loc`` and ``variance`` the circular
    variance ``1 - I1(k) / I0(k)``, as in NumPyro. Draws are not
    differentiable with respect to ``concentration`` (``has_rsample`` is
    False).

    Examples
    --------
    >>> import jax
    >>> import core_ppl.distributions as dist
    >>> d = dist.VonMises(3.0, 2.0)
    >>> x = d.sample(jax.random.PRNGKey(0), (100,))
    >>> bool(((x >= -3.1416) & (x <= 3.1416)).all())
    True
    """

    arg_constraints = {
        "loc": constraints.real,
        "concentration": constraints.positive,
    }
    support = constraints.circular
    reparametrized_params = ("loc",)

    def __init__(self, loc, concentration, *, validate_args=None):
        p, batch_shape = _params("VonMises", loc=loc, concentration=concentration)
        self.loc, self.concentration = p["loc"], p["concentration"]
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        theta = _von_mises_centred(key, self.concentration, shape, self.loc.dtype)
        return _wrap_angle(self.loc + theta)

    def log_prob(self, value):
        value = self._check_value(value)
        k = self.concentration
        # log I0(k) = log i0e(k) + k: the scaled Bessel function never overflows.
        log_prob = k * (jnp.cos(value - self.loc) - 1.0) - _LOG_2PI - jnp.log(i0e(k))
        inside = (value >= -math.pi) & (value <= math.pi)
        return jnp.where(inside, log_prob, -jnp.inf)

    def entropy(self):
        """``log(2 pi I0(k)) - k I1(k) / I0(k)``."""
        k = self.concentration
        ratio = i1e(k) / i0e(k)
        entropy = _LOG_2PI + jnp.log(i0e(k)) + k * (1.0 - ratio)
        return jnp.broadcast_to(entropy, self.batch_shape)

    @property
    def mean(self):
        return jnp.broadcast_to(self.loc, self.batch_shape)

    @property
    def variance(self):
        k = self.concentration
        return jnp.broadcast_to(1.0 - i1e(k) / i0e(k), self.batch_shape)


def _normalize(x):
    norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
    return x / jnp.maximum(norm, jnp.finfo(x.dtype).tiny)


class ProjectedNormal(Distribution):
    """The direction ``x / |x|`` of ``x ~ N(concentration, I)``: a law on the
    unit sphere, centred at ``concentration / |concentration|``.

    Parameters
    ----------
    concentration : array_like
        A vector (last axis: the dimension ``d``); its norm sets how
        concentrated the directions are.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Notes
    -----
    ``log_prob`` is the density with respect to the surface measure of the
    sphere, ``p(x) = int_0^inf r^(d-1) N(r x; mu, I) dr``, which has closed
    forms for ``d = 2`` and ``d = 3`` only; other dimensions raise
    ``NotImplementedError``, as in NumPyro. With ``t = x . mu`` it is
    ``(2 pi)^(-d/2) exp(-(|mu|^2 - t^2) / 2) J_d(t)`` where
    ``J_2(t) = exp(-t^2/2) + t sqrt(2 pi) Phi(t)`` and
    ``J_3(t) = t exp(-t^2/2) + (1 + t^2) sqrt(2 pi) Phi(t)``.
    """

    arg_constraints = {"concentration": constraints.real_vector}
    support = constraints.sphere
    has_rsample = True
    reparametrized_params = ("concentration",)

    def __init__(self, concentration, *, validate_args=None):
        concentration = as_float_array(concentration)
        if concentration.ndim < 1 or concentration.shape[-1] < 2:
            raise ValueError(
                "ProjectedNormal: concentration must be a vector of size >= 2, got "
                f"shape {concentration.shape}"
            )
        self.concentration = concentration
        super().__init__(
            concentration.shape[:-1],
            concentration.shape[-1:],
            validate_args=validate_args,
        )

    def sample(self, key, sample_shape=()):
        shape = self.shape(sample_shape)
        eps = jax.random.normal(key, shape, dtype=self.concentration.dtype)
        return _normalize(self.concentration + eps)

    def log_prob(self, value):
        value = self._check_value(value)
        dim = self.event_shape[0]
        if dim not in (2, 3):
            raise NotImplementedError(
                f"ProjectedNormal.log_prob is implemented for dimensions 2 and 3, "
                f"got {dim}"
            )
        mu = self.concentration
        t = jnp.sum(value * mu, axis=-1)
        m2 = jnp.sum(mu**2, axis=-1)
        # J_d(t) = exp(-t^2/2) * (a(t) + b(t) sqrt(2 pi) Phi(t) exp(t^2/2)),
        # with the last product formed in log space.
        log_phi_ratio = 0.5 * math.log(2 * math.pi) + log_ndtr(t) + 0.5 * t**2
        if dim == 2:
            j = 1.0 + t * jnp.exp(log_phi_ratio)
        else:
            j = t + (1.0 + t**2) * jnp.exp(log_phi_ratio)
        return -0.5 * dim * _LOG_2PI - 0.5 * m2 + jnp.log(j)

    @property
    def mean(self):
        """The mean direction ``concentration / |concentration|``."""
        return jnp.broadcast_to(_normalize(self.concentration), self.shape())

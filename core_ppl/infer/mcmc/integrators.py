"""Symplectic integrators for Hamiltonian dynamics.

The Hamiltonian is ``H(q, p) = -log pi(q) + K(p)``; with the sign convention of
this package the integrators take the *log density* and its gradient, so the
"force" is ``+grad log pi``. An integrator is built from a log density and a
:class:`~core_ppl.infer.mcmc.metrics.Metric` and returns
``one_step(state, step_size) -> state``. Running backward in time is the same
update with a negative ``step_size``.

The state caches the log density and its gradient at the current position, so
a step costs exactly one gradient evaluation (Neal 2011, "MCMC using
Hamiltonian dynamics", section 5.2.3.3: the last half momentum step of one
leapfrog step and the first of the next use the same gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["IntegratorState", "energy_error", "velocity_verlet"]


class IntegratorState(NamedTuple):
    """A point in phase space with the log density cached.

    position : array, shape (dim,)
        Position ``q`` on the unconstrained space.
    momentum : array, shape (dim,)
        Momentum ``p``.
    logdensity : scalar
        ``log pi(q)``, i.e. minus the potential energy.
    logdensity_grad : array, shape (dim,)
        Gradient of ``log pi`` at ``q``.
    """

    position: jax.Array
    momentum: jax.Array
    logdensity: jax.Array
    logdensity_grad: jax.Array


def velocity_verlet(logdensity_fn: Callable, metric) -> Callable:
    """The leapfrog (velocity Verlet) integrator.

    Parameters
    ----------
    logdensity_fn : callable
        ``position -> scalar`` log density (minus the potential energy).
    metric : Metric
        Supplies ``velocity(p) = M^{-1} p``, the derivative of the kinetic
        energy.

    Returns
    -------
    one_step : callable
        ``one_step(state, step_size) -> IntegratorState``.
    """
    value_and_grad = jax.value_and_grad(logdensity_fn)

    def one_step(state: IntegratorState, step_size) -> IntegratorState:
        # Half kick, full drift, half kick (Neal 2011, eq. 5.18-5.20).
        half_step = 0.5 * step_size
        momentum = state.momentum + half_step * state.logdensity_grad
        position = state.position + step_size * metric.velocity(momentum)
        logdensity, logdensity_grad = value_and_grad(position)
        momentum = momentum + half_step * logdensity_grad
        return IntegratorState(
            position=position,
            momentum=momentum,
            logdensity=logdensity,
            logdensity_grad=logdensity_grad,
        )

    return one_step


def energy_error(energy, initial_energy):
    """``H - H0`` of an integrated point, ``+inf`` when ``H`` is not finite.

    A NaN energy counts as ``+inf``, weight zero and a divergence (Stan). So
    does ``-inf``: a log density of ``+inf`` at a numerical edge (a
    probability that underflowed to 0 under a density with a pole there),
    whose weight would otherwise be infinite and take the draw.
    """
    return jnp.where(jnp.isfinite(energy), energy - initial_energy, jnp.inf)

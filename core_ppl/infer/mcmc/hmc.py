"""Hamiltonian Monte Carlo with a fixed number of leapfrog steps.

The kernel draws a momentum, integrates ``num_integration_steps`` leapfrog
steps and accepts the end point with the Metropolis probability
``min(1, exp(H0 - H1))`` (Duane et al. 1987; Neal 2011, section 5.3.2).
The carried state is :class:`HMCState`; what happened during a step is
reported in :class:`HMCInfo` and never fed back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from core_ppl.infer.mcmc.integrators import IntegratorState, velocity_verlet
from core_ppl.infer.mcmc.metrics import gaussian_euclidean

__all__ = ["HMCInfo", "HMCState", "build_kernel", "init"]


class HMCState(NamedTuple):
    """State carried between transitions of HMC and NUTS.

    position : array, shape (dim,)
        Current point on the unconstrained space.
    logdensity : scalar
        ``log pi(position)`` (minus the potential energy).
    logdensity_grad : array, shape (dim,)
        Its gradient, cached so a transition needs no extra evaluation.
    """

    position: jax.Array
    logdensity: jax.Array
    logdensity_grad: jax.Array


class HMCInfo(NamedTuple):
    """What happened during one HMC transition.

    is_divergent : bool
        ``H1 - H0`` exceeded the divergence threshold (or was NaN).
    is_accepted : bool
        The end point was accepted.
    acceptance_rate : scalar
        ``min(1, exp(H0 - H1))``, the statistic step-size adaptation targets.
    num_integration_steps : int
        Leapfrog steps taken.
    energy : scalar
        Hamiltonian of the returned state (with the momentum it ended with).
    """

    is_divergent: jax.Array
    is_accepted: jax.Array
    acceptance_rate: jax.Array
    num_integration_steps: jax.Array
    energy: jax.Array


def init(position, logdensity_fn: Callable) -> HMCState:
    """Evaluate the log density and its gradient at ``position``."""
    logdensity, logdensity_grad = jax.value_and_grad(logdensity_fn)(position)
    return HMCState(
        position=position, logdensity=logdensity, logdensity_grad=logdensity_grad
    )


def build_kernel(integrator: Callable = velocity_verlet, divergence_threshold=1000.0):
    """Build an HMC transition kernel.

    Parameters
    ----------
    integrator : callable, default=velocity_verlet
        ``integrator(logdensity_fn, metric) -> one_step``.
    divergence_threshold : float, default=1000
        Energy error ``H1 - H0`` above which the transition is divergent
        (Stan's ``max_deltaH``).

    Returns
    -------
    kernel : callable
        ``kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix,
        num_integration_steps) -> (HMCState, HMCInfo)``. The number of steps
        may be a traced integer.
    """

    def kernel(
        rng_key,
        state,
        logdensity_fn,
        step_size,
        inverse_mass_matrix,
        num_integration_steps,
    ):
        metric = gaussian_euclidean(inverse_mass_matrix)
        integrate = integrator(logdensity_fn, metric)
        momentum_key, accept_key = jax.random.split(rng_key)
        momentum = metric.sample_momentum(momentum_key, state.position)
        start = IntegratorState(
            state.position, momentum, state.logdensity, state.logdensity_grad
        )
        initial_energy = -state.logdensity + metric.kinetic_energy(momentum)
        end = jax.lax.fori_loop(
            0, num_integration_steps, lambda _, s: integrate(s, step_size), start
        )
        energy = -end.logdensity + metric.kinetic_energy(end.momentum)
        delta = jnp.where(jnp.isnan(energy), jnp.inf, energy - initial_energy)
        acceptance_rate = jnp.exp(jnp.minimum(-delta, 0.0))
        uniform = jax.random.uniform(accept_key, (), acceptance_rate.dtype)
        is_accepted = uniform < acceptance_rate
        new_state = jax.tree.map(
            lambda new, old: jnp.where(is_accepted, new, old),
            HMCState(end.position, end.logdensity, end.logdensity_grad),
            state,
        )
        info = HMCInfo(
            is_divergent=delta > divergence_threshold,
            is_accepted=is_accepted,
            acceptance_rate=acceptance_rate,
            num_integration_steps=jnp.asarray(num_integration_steps, jnp.int32),
            energy=jnp.where(is_accepted, energy, initial_energy),
        )
        return new_state, info

    return kernel

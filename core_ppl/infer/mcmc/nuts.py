"""The No-U-Turn Sampler: one transition.

Multinomial NUTS as in Stan (Hoffman & Gelman 2014; Betancourt 2017,
arXiv:1701.02434, appendix A): draw a momentum, grow a trajectory by doubling
until the generalised U-turn criterion (with Stan's extra checks across
subtrees) or a divergence stops it, and return a point drawn from the
trajectory with biased progressive sampling at the top level and multinomial
sampling inside subtrees. The tree is built iteratively
(:mod:`~core_ppl.infer.mcmc.trajectory`), so the whole transition is
``jit``/``vmap``-able. The acceptance statistic reported for step-size
adaptation is the mean of ``min(1, exp(H0 - H))`` over every leapfrog step
taken (Stan's ``sum_metro_prob / n_leapfrog``).

Random bits: ``momentum_key, tree_key = split(rng_key)``; the momentum is
``metric.sample_momentum(momentum_key, position)`` and the tree's bits come
from ``tree_key`` as documented in :mod:`~core_ppl.infer.mcmc.trajectory`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from core_ppl.infer.mcmc.hmc import HMCState
from core_ppl.infer.mcmc.integrators import IntegratorState, velocity_verlet
from core_ppl.infer.mcmc.metrics import gaussian_euclidean
from core_ppl.infer.mcmc.trajectory import expand

__all__ = ["NUTSInfo", "build_kernel"]


class NUTSInfo(NamedTuple):
    """What happened during one NUTS transition.

    is_divergent : bool
        A leapfrog step had ``H - H0`` above the threshold (or NaN).
    is_turning : bool
        Expansion stopped on a U-turn (inside the last subtree or across the
        merged trajectory).
    acceptance_rate : scalar
        Mean of ``min(1, exp(H0 - H))`` over all leapfrog steps taken.
    num_integration_steps : int
        Leapfrog steps taken (Stan's ``n_leapfrog__``).
    energy : scalar
        Hamiltonian of the returned point.
    tree_depth : int
        Number of accepted doublings (Stan's ``treedepth__``).
    """

    is_divergent: jax.Array
    is_turning: jax.Array
    acceptance_rate: jax.Array
    num_integration_steps: jax.Array
    energy: jax.Array
    tree_depth: jax.Array


def build_kernel(integrator: Callable = velocity_verlet, divergence_threshold=1000.0):
    """Build a NUTS transition kernel.

    Parameters
    ----------
    integrator : callable, default=velocity_verlet
        ``integrator(logdensity_fn, metric) -> one_step``.
    divergence_threshold : float, default=1000
        Energy error ``H - H0`` above which a step is divergent (Stan's
        ``max_deltaH``).

    Returns
    -------
    kernel : callable
        ``kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix,
        max_num_doublings=10) -> (HMCState, NUTSInfo)``; ``max_num_doublings``
        must be a Python int (it sizes the U-turn buffers).
    """

    def kernel(
        rng_key,
        state: HMCState,
        logdensity_fn,
        step_size,
        inverse_mass_matrix,
        max_num_doublings: int = 10,
    ):
        metric = gaussian_euclidean(inverse_mass_matrix)
        integrate = integrator(logdensity_fn, metric)
        momentum_key, tree_key = jax.random.split(rng_key)
        momentum = metric.sample_momentum(momentum_key, state.position)
        start = IntegratorState(
            position=state.position,
            momentum=momentum,
            logdensity=state.logdensity,
            logdensity_grad=state.logdensity_grad,
        )
        initial_energy = -state.logdensity + metric.kinetic_energy(momentum)
        step_size = jnp.asarray(step_size, initial_energy.dtype)
        result = expand(
            tree_key,
            start,
            initial_energy,
            step_size,
            integrate,
            metric,
            int(max_num_doublings),
            float(divergence_threshold),
        )
        chosen = result.proposal.state
        new_state = HMCState(
            position=chosen.position,
            logdensity=chosen.logdensity,
            logdensity_grad=chosen.logdensity_grad,
        )
        info = NUTSInfo(
            is_divergent=result.is_diverging,
            is_turning=result.is_turning,
            acceptance_rate=result.sum_accept_prob / result.num_steps,
            num_integration_steps=result.num_steps,
            energy=result.proposal.energy,
            tree_depth=result.depth,
        )
        return new_state, info

    return kernel

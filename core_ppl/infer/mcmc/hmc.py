"""Hamiltonian Monte Carlo with a fixed number of leapfrog steps, and the
public :class:`HMC` sampler description.

The kernel draws a momentum, integrates ``num_integration_steps`` leapfrog
steps and accepts the end point with the Metropolis probability
``min(1, exp(H0 - H1))`` (Duane et al. 1987; Neal 2011, section 5.3.2).
The carried state is :class:`HMCState`; what happened during a step is
reported in :class:`HMCInfo` and never fed back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.infer.initialization import init_to_uniform
from core_ppl.infer.mcmc.integrators import IntegratorState, velocity_verlet
from core_ppl.infer.mcmc.metrics import gaussian_euclidean

__all__ = [
    "HMC",
    "AlgorithmSpec",
    "HMCInfo",
    "HMCState",
    "build_kernel",
    "init",
    "num_steps_for",
]


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


# --- the public sampler description ----------------------------------------------


class AlgorithmSpec(NamedTuple):
    """The structural (hashable, compile-time) settings of HMC or NUTS.

    algorithm : str
        ``"hmc"`` or ``"nuts"``.
    max_tree_depth : int
        NUTS only: maximum number of doublings.
    dense_mass : bool
        Dense rather than diagonal inverse mass matrix.
    adapt_step_size, adapt_mass_matrix : bool
        What the warmup adapts.
    fixed_num_steps : bool
        HMC only: ``num_steps`` given, rather than ``trajectory_length``.
    """

    algorithm: str
    max_tree_depth: int
    dense_mass: bool
    adapt_step_size: bool
    adapt_mass_matrix: bool
    fixed_num_steps: bool


def _check_positive(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class HMC:
    """Hamiltonian Monte Carlo with Stan's windowed warmup.

    Parameters
    ----------
    model : callable, optional
        A core_ppl model; give either ``model`` or ``potential_fn``.
    potential_fn : callable, optional
        ``potential_fn(params) -> scalar`` potential energy (minus the log
        density) over a pytree of unconstrained parameters; then
        ``MCMC.run`` needs ``init_params``.
    step_size : float, default=1.0
        Initial (or, without adaptation, fixed) leapfrog step size.
    trajectory_length : float, default=2*pi
        Integration time; the number of steps is
        ``ceil(trajectory_length / step_size)``, capped at
        ``MAX_NUM_STEPS``.
    num_steps : int, optional
        Fixed number of leapfrog steps; overrides ``trajectory_length``.
    adapt_step_size : bool, default=True
        Tune the step size by dual averaging during warmup.
    adapt_mass_matrix : bool, default=True
        Estimate the inverse mass matrix in Stan's windows during warmup.
    dense_mass : bool, default=False
        Use a dense inverse mass matrix instead of a diagonal one.
    target_accept_prob : float, default=0.8
        Target of dual averaging.
    inverse_mass_matrix : array, optional
        Initial inverse mass matrix, ``(dim,)`` or ``(dim, dim)`` as
        ``dense_mass`` says; identity by default.
    init_strategy : callable, default=init_to_uniform
        How a model's starting point is chosen.

    See Also
    --------
    NUTS : the adaptive-path variant, usually the better choice.
    """

    #: Cap on ``ceil(trajectory_length / step_size)``, so that a tiny step
    #: size early in warmup cannot stall the sampler.
    MAX_NUM_STEPS = 1024

    def __init__(
        self,
        model=None,
        *,
        potential_fn=None,
        step_size=1.0,
        trajectory_length=2 * math.pi,
        num_steps=None,
        adapt_step_size=True,
        adapt_mass_matrix=True,
        dense_mass=False,
        target_accept_prob=0.8,
        inverse_mass_matrix=None,
        init_strategy=init_to_uniform,
    ):
        self._init_common(
            model,
            potential_fn,
            step_size,
            adapt_step_size,
            adapt_mass_matrix,
            dense_mass,
            target_accept_prob,
            inverse_mass_matrix,
            init_strategy,
        )
        self.trajectory_length = _check_positive("trajectory_length", trajectory_length)
        if num_steps is not None and not (
            isinstance(num_steps, (int, np.integer)) and num_steps >= 1
        ):
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        self.num_steps = None if num_steps is None else int(num_steps)

    def _init_common(
        self,
        model,
        potential_fn,
        step_size,
        adapt_step_size,
        adapt_mass_matrix,
        dense_mass,
        target_accept_prob,
        inverse_mass_matrix,
        init_strategy,
    ):
        if (model is None) == (potential_fn is None):
            raise ValueError("give exactly one of model= and potential_fn=")
        for name, fn in (("model", model), ("potential_fn", potential_fn)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
        if not (
            isinstance(target_accept_prob, (int, float)) and 0 < target_accept_prob < 1
        ):
            raise ValueError(
                f"target_accept_prob must lie in (0, 1), got {target_accept_prob!r}"
            )
        if not callable(init_strategy):
            raise TypeError("init_strategy must be callable, e.g. init_to_uniform")
        self._model = model
        self._potential_fn = potential_fn
        self.step_size = _check_positive("step_size", step_size)
        self.adapt_step_size = bool(adapt_step_size)
        self.adapt_mass_matrix = bool(adapt_mass_matrix)
        self.dense_mass = bool(dense_mass)
        self.target_accept_prob = float(target_accept_prob)
        self.inverse_mass_matrix = inverse_mass_matrix
        self.init_strategy = init_strategy

    @property
    def model(self):
        """The model, or None when sampling a ``potential_fn``."""
        return self._model

    @property
    def potential_fn(self):
        """The potential function, or None when sampling a model."""
        return self._potential_fn

    def _spec(self) -> AlgorithmSpec:
        return AlgorithmSpec(
            algorithm="hmc",
            max_tree_depth=0,
            dense_mass=self.dense_mass,
            adapt_step_size=self.adapt_step_size,
            adapt_mass_matrix=self.adapt_mass_matrix,
            fixed_num_steps=self.num_steps is not None,
        )

    def _num_steps_settings(self):
        return self.trajectory_length, 1 if self.num_steps is None else self.num_steps

    def __repr__(self):
        target = "model" if self._model is not None else "potential_fn"
        return f"{type(self).__name__}({target}=..., step_size={self.step_size})"


def num_steps_for(trajectory_length, step_size, max_num_steps=HMC.MAX_NUM_STEPS):
    """``ceil(trajectory_length / step_size)`` clipped to ``[1, max_num_steps]``."""
    ratio = jnp.ceil(trajectory_length / step_size)
    ratio = jnp.where(jnp.isfinite(ratio), ratio, max_num_steps)
    return jnp.clip(ratio, 1, max_num_steps).astype(jnp.int32)

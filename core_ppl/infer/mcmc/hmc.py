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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.infer.initialization import init_to_uniform
from core_ppl.infer.mcmc import adaptation
from core_ppl.infer.mcmc.integrators import (
    IntegratorState,
    energy_error,
    velocity_verlet,
)
from core_ppl.infer.mcmc.kernel import Algorithm, MCMCKernel, WarmupSchedule
from core_ppl.infer.mcmc.metrics import gaussian_euclidean
from core_ppl.infer.mcmc.select import tree_where

__all__ = [
    "HMC",
    "HMCInfo",
    "HMCKernelState",
    "HMCParameters",
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
        delta = energy_error(energy, initial_energy)
        acceptance_rate = jnp.exp(jnp.minimum(-delta, 0.0))
        uniform = jax.random.uniform(accept_key, (), acceptance_rate.dtype)
        is_accepted = uniform < acceptance_rate
        new_state = tree_where(
            is_accepted,
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


# --- the public kernel ----------------------------------------------------------------


class HMCKernelState(NamedTuple):
    """Per-chain state of the :class:`HMC` and :class:`~core_ppl.infer.NUTS`
    kernels.

    hmc : HMCState
        Flat position with its cached log density and gradient.
    warmup : WarmupState
        Step size, inverse mass matrix and the adaptation's estimators.
    """

    hmc: HMCState
    warmup: adaptation.WarmupState


class HMCParameters(NamedTuple):
    """Traced settings of HMC and NUTS (a new value compiles nothing).

    step_size : scalar
        Initial step size.
    inverse_mass_matrix : array or None
        Initial inverse mass matrix; None for the identity, built once the
        number of parameters is known.
    target_accept_prob : scalar
    trajectory_length : scalar
        HMC: integration time (unless ``num_steps`` is fixed).
    num_steps : int
        HMC: fixed number of leapfrog steps.
    """

    step_size: Any
    inverse_mass_matrix: Any
    target_accept_prob: Any
    trajectory_length: Any
    num_steps: Any


def _check_positive(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _initial_inverse_mass_matrix(minv, dense, dim, dtype):
    """The user's inverse mass matrix checked against ``dim``, or identity."""
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"parameters must be floating point, got dtype {dtype}")
    shape = (dim, dim) if dense else (dim,)
    if minv is None:
        return jnp.eye(dim, dtype=dtype) if dense else jnp.ones(dim, dtype)
    if minv.shape != shape:
        raise ValueError(
            f"inverse_mass_matrix must have shape {shape} for {dim} "
            f"unconstrained parameters (dense_mass={dense}), got {minv.shape}"
        )
    return jnp.asarray(minv, dtype)


class HMC(MCMCKernel):
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

    Notes
    -----
    As a kernel (:class:`~core_ppl.infer.mcmc.kernel.MCMCKernel`) its state
    is :class:`HMCKernelState`; two HMC kernels with equal structural
    settings compare equal, so they share one compiled program, and the
    numeric settings travel as traced :class:`HMCParameters`.
    """

    #: Cap on ``ceil(trajectory_length / step_size)``, so that a tiny step
    #: size early in warmup cannot stall the sampler.
    MAX_NUM_STEPS = 1024

    sample_field = "hmc.position"
    default_fields = ("diverging",)

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

    def static_key(self):
        # Equal kernels share a compiled program.
        return (
            self._model,
            self._potential_fn,
            self.init_strategy,
            self.dense_mass,
            self.adapt_step_size,
            self.adapt_mass_matrix,
            self.num_steps is not None,
        )

    # --- the kernel interface ------------------------------------------------------

    def parameters(self, dtype):
        minv = self.inverse_mass_matrix
        return HMCParameters(
            step_size=np.asarray(self.step_size, dtype),
            inverse_mass_matrix=None if minv is None else np.asarray(minv, dtype),
            target_accept_prob=np.asarray(self.target_accept_prob, dtype),
            trajectory_length=np.asarray(self.trajectory_length or 0.0, dtype),
            num_steps=np.asarray(self.num_steps or 1, np.int32),
        )

    def warmup_schedule(self, num_warmup):
        """Stan's windows: a restart at the first iteration (step-size
        heuristic) and after each slow window (new metric)."""
        in_window = np.zeros(num_warmup, bool)
        is_restart = np.zeros(num_warmup, bool)
        if self.adapt_mass_matrix:
            in_window, is_window_end = adaptation.build_schedule(num_warmup)
            is_restart[1:] = is_window_end[:-1]
        if num_warmup > 0:
            is_restart[0] = self.adapt_step_size
        return WarmupSchedule(is_restart=is_restart, in_window=in_window)

    def field_dtypes(self, dtype):
        return {
            "num_steps": jnp.int32,
            "diverging": jnp.bool_,
            "accept_prob": dtype,
            "potential_energy": dtype,
            "energy": dtype,
            "step_size": dtype,
        }

    def get_diagnostics_str(self, state):
        step_size = np.asarray(state.warmup.step_size)
        return "step size " + np.array2string(step_size, precision=2)

    def _transition(self, params):
        """``(rng_key, HMCState, logdensity_fn, step_size, inverse_mass_matrix)
        -> (HMCState, info)``."""
        kernel = build_kernel(velocity_verlet)
        fixed = self.num_steps is not None

        def transition(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix):
            num_steps = (
                params.num_steps
                if fixed
                else num_steps_for(params.trajectory_length, step_size)
            )
            return kernel(
                rng_key, state, logdensity_fn, step_size, inverse_mass_matrix, num_steps
            )

        return transition

    def build(self, target, unravel, params):
        warmup_init, update, restart, final = adaptation.warmup_adaptation(
            velocity_verlet,
            not self.dense_mass,
            params.target_accept_prob,
            self.adapt_step_size,
            self.adapt_mass_matrix,
        )
        return Algorithm(
            init=self._build_init(params, warmup_init),
            step=self._build_step(params),
            fields=self._fields,
            adapt=self._build_adapt(update, final),
            restart=self._build_restart(restart),
            summary=_summary,
        )

    def _build_init(self, params, warmup_init):
        def init_chain(rng_key, position, logdensity_fn, param_info=None):
            if param_info is None:
                state = init(position, logdensity_fn)
            else:  # the search already evaluated the potential and its gradient
                state = HMCState(
                    position, -param_info.potential_energy, -param_info.z_grad
                )
            dim, dtype = position.shape[0], position.dtype
            minv = _initial_inverse_mass_matrix(
                params.inverse_mass_matrix, self.dense_mass, dim, dtype
            )
            step_size = jnp.asarray(params.step_size, dtype)
            return HMCKernelState(state, warmup_init(step_size, minv, position))

        return init_chain

    def _build_step(self, params):
        transition = self._transition(params)

        def step(rng_key, state, logdensity_fn, it):
            warm = state.warmup
            new, info = transition(
                rng_key,
                state.hmc,
                logdensity_fn,
                warm.step_size,
                warm.inverse_mass_matrix,
            )
            return state._replace(hmc=new), info

        return step

    @staticmethod
    def _build_adapt(update, final):
        def adapt(state, info, it):
            warm = update(
                state.warmup, state.hmc.position, info.acceptance_rate, it.in_window
            )
            final_step_size, _ = final(warm)
            step_size = jnp.where(it.is_last_warmup, final_step_size, warm.step_size)
            return state._replace(warmup=warm._replace(step_size=step_size))

        return adapt

    @staticmethod
    def _build_restart(restart):
        def restart_phase(rng_key, state, logdensity_fn, it):
            warm = restart(
                rng_key, state.warmup, state.hmc, logdensity_fn, it.iteration == 0
            )
            return state._replace(warmup=warm)

        return restart_phase

    @staticmethod
    def _fields(state, info):
        return {
            "num_steps": info.num_integration_steps,
            "diverging": info.is_divergent,
            "accept_prob": info.acceptance_rate,
            "potential_energy": -state.hmc.logdensity,
            "energy": info.energy,
            "step_size": state.warmup.step_size,
        }

    def __repr__(self):
        target = "model" if self._model is not None else "potential_fn"
        return f"{type(self).__name__}({target}=..., step_size={self.step_size})"


def _summary(state):
    return {
        "potential_energy": -state.hmc.logdensity,
        "z_grad": -state.hmc.logdensity_grad,
        "step_size": state.warmup.step_size,
        "inverse_mass_matrix": state.warmup.inverse_mass_matrix,
    }


def num_steps_for(trajectory_length, step_size, max_num_steps=HMC.MAX_NUM_STEPS):
    """``ceil(trajectory_length / step_size)`` clipped to ``[1, max_num_steps]``."""
    ratio = jnp.ceil(trajectory_length / step_size)
    ratio = jnp.where(jnp.isfinite(ratio), ratio, max_num_steps)
    return jnp.clip(ratio, 1, max_num_steps).astype(jnp.int32)

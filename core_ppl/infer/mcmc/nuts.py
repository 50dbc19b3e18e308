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

Random bits: :func:`draw_randomness` takes everything a transition may use
(the momentum's standard normals and the tree's directions, biased-sampling
uniforms and leaf Gumbels, see :mod:`~core_ppl.infer.mcmc.trajectory`) from
ONE ``jax.random.uniform`` call. Each ``jax.random`` call site is a separate
threefry loop costing about 0.2 s of XLA compile on CPU, so the number of
call sites, not of numbers, is what matters; the ~2**max_depth extra
uniforms cost microseconds per transition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.infer.initialization import init_to_uniform
from core_ppl.infer.mcmc.hmc import HMC, HMCState
from core_ppl.infer.mcmc.integrators import IntegratorState, velocity_verlet
from core_ppl.infer.mcmc.metrics import gaussian_euclidean
from core_ppl.infer.mcmc.trajectory import expand, num_tree_uniforms, tree_randomness

__all__ = ["NUTS", "NUTSInfo", "build_kernel", "draw_randomness"]


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


def draw_randomness(rng_key, position, max_depth: int):
    """``(standard_normal, TreeRandomness)`` of one transition, from one call.

    The uniforms are drawn on ``(-1, 1)`` as ``jax.random.normal`` does, so
    ``sqrt(2) erfinv(u)`` is its standard normal; the tree's share is mapped
    to ``(0, 1)`` and kept off both ends (a leaf's Gumbel is
    ``-log(-log(u))``).
    """
    dim, dtype = position.shape[0], position.dtype
    uniform = jax.random.uniform(
        rng_key,
        (dim + num_tree_uniforms(max_depth),),
        dtype,
        minval=jnp.nextafter(jnp.asarray(-1.0, dtype), jnp.asarray(0.0, dtype)),
        maxval=1.0,
    )
    normal = jnp.sqrt(jnp.asarray(2.0, dtype)) * jax.lax.erf_inv(uniform[:dim])
    eps = jnp.finfo(dtype).eps
    tree_uniform = jnp.clip(0.5 * (uniform[dim:] + 1.0), eps, 1.0 - eps)
    return normal, tree_randomness(tree_uniform, max_depth)


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
        max_depth = int(max_num_doublings)
        normal, randomness = draw_randomness(rng_key, state.position, max_depth)
        momentum = metric.momentum_from_normal(normal)
        start = IntegratorState(
            position=state.position,
            momentum=momentum,
            logdensity=state.logdensity,
            logdensity_grad=state.logdensity_grad,
        )
        initial_energy = -state.logdensity + metric.kinetic_energy(momentum)
        step_size = jnp.asarray(step_size, initial_energy.dtype)
        result = expand(
            randomness,
            start,
            initial_energy,
            step_size,
            integrate,
            metric,
            max_depth,
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


class NUTS(HMC):
    """The No-U-Turn Sampler (multinomial, Stan's variant) with Stan's warmup.

    Parameters
    ----------
    model : callable, optional
        A core_ppl model; give either ``model`` or ``potential_fn``.
    potential_fn : callable, optional
        ``potential_fn(params) -> scalar`` potential energy over a pytree of
        unconstrained parameters; then ``MCMC.run`` needs ``init_params``.
    step_size : float, default=1.0
        Initial (or, without adaptation, fixed) step size.
    adapt_step_size : bool, default=True
        Tune the step size by dual averaging during warmup.
    adapt_mass_matrix : bool, default=True
        Estimate the inverse mass matrix in Stan's windows during warmup.
    dense_mass : bool, default=False
        Use a dense inverse mass matrix.
    target_accept_prob : float, default=0.8
        Target of dual averaging for the mean acceptance statistic.
    max_tree_depth : int, default=10
        Maximum number of doublings: at most ``2**max_tree_depth - 1``
        leapfrog steps per draw.
    inverse_mass_matrix : array, optional
        Initial inverse mass matrix; identity by default.
    init_strategy : callable, default=init_to_uniform
        How a model's starting point is chosen.

    Examples
    --------
    >>> import jax, core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl.infer import MCMC, NUTS
    >>> def model(y):
    ...     mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    ...     ppl.sample("y", dist.Normal(mu, 1.0), obs=y)
    >>> mcmc = MCMC(NUTS(model), num_warmup=200, num_samples=200,
    ...             progress_bar=False)
    >>> mcmc.run(jax.random.PRNGKey(0), jax.numpy.ones(5))
    >>> mcmc.get_samples()["mu"].shape
    (200,)
    """

    def __init__(
        self,
        model=None,
        *,
        potential_fn=None,
        step_size=1.0,
        adapt_step_size=True,
        adapt_mass_matrix=True,
        dense_mass=False,
        target_accept_prob=0.8,
        max_tree_depth=10,
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
        if not (
            isinstance(max_tree_depth, (int, np.integer)) and 1 <= max_tree_depth <= 30
        ):
            raise ValueError(
                f"max_tree_depth must be an integer in [1, 30], got {max_tree_depth!r}"
            )
        self.max_tree_depth = int(max_tree_depth)
        self.trajectory_length = None
        self.num_steps = None

    def static_key(self):
        return super().static_key() + (self.max_tree_depth,)

    def field_dtypes(self, dtype):
        return {**super().field_dtypes(dtype), "tree_depth": jnp.int32}

    def _transition(self, params):
        kernel = build_kernel(velocity_verlet)

        def transition(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix):
            return kernel(
                rng_key,
                state,
                logdensity_fn,
                step_size,
                inverse_mass_matrix,
                self.max_tree_depth,
            )

        return transition

    @staticmethod
    def _fields(state, info):
        return {**HMC._fields(state, info), "tree_depth": info.tree_depth}

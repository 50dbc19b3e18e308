"""Building NUTS trajectories without recursion.

A NUTS transition grows a trajectory by repeated doubling (Hoffman & Gelman
2014, section 3; Betancourt 2017, arXiv:1701.02434, appendix A):

* ``expand`` runs the outer ``lax.while_loop``: at depth ``d`` it picks a
  direction at random, builds a subtree of ``2^d`` leapfrog steps from the end
  of the trajectory in that direction, and stops when the subtree diverged or
  made an internal U-turn (the subtree's points are then discarded), when the
  merged trajectory makes a U-turn, or at the maximum depth. A valid subtree's
  proposal replaces the current one by biased progressive sampling.
* ``build_subtree`` runs the inner ``lax.while_loop``, one leapfrog leaf per
  iteration: the leaf joins the subtree's proposal by multinomial (Gumbel-max)
  sampling, and :mod:`~core_ppl.infer.mcmc.termination` runs the U-turn checks
  of every recursive merge the leaf completes.

Random bits: a :class:`TreeRandomness` holds every number a transition may
need, drawn up front (see :mod:`~core_ppl.infer.mcmc.nuts`). Doubling ``d`` uses
``is_forward[d]`` and ``bias_uniform[d]``; leaf ``n`` of its subtree uses
``leaf_uniform[2**d - 1 + n]`` as a Gumbel variate ``-log(-log(u))``. A
reference recursion fed with the same numbers makes the same decisions (see
the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from core_ppl.infer.mcmc import proposal as proposal_lib
from core_ppl.infer.mcmc import termination
from core_ppl.infer.mcmc.integrators import IntegratorState, energy_error
from core_ppl.infer.mcmc.metrics import Metric
from core_ppl.infer.mcmc.proposal import Proposal
from core_ppl.infer.mcmc.select import tree_where

__all__ = [
    "ExpansionState",
    "LeafContext",
    "SubtreeState",
    "Trajectory",
    "TreeRandomness",
    "build_subtree",
    "expand",
    "leaf_gumbel",
    "num_tree_uniforms",
    "tree_randomness",
]


class Trajectory(NamedTuple):
    """The trajectory of a transition, in time order.

    leftmost_state, rightmost_state : IntegratorState
        Its earliest and latest points.
    leftmost_velocity, rightmost_velocity : array
        Their sharp momenta ``M^{-1} p``.
    momentum_sum : array
        Sum of the momenta of all its points.
    """

    leftmost_state: IntegratorState
    rightmost_state: IntegratorState
    leftmost_velocity: jax.Array
    rightmost_velocity: jax.Array
    momentum_sum: jax.Array


class SubtreeState(NamedTuple):
    """A subtree under construction, in integration order.

    first_momentum, first_velocity : array
        Momentum and sharp momentum of its first leaf.
    last_state : IntegratorState
        Its last leaf, where the next leapfrog step starts.
    last_velocity : array
        Sharp momentum of the last leaf.
    momentum_sum : array
        Sum of the momenta of its leaves.
    proposal : Proposal
        Multinomial draw among its leaves, with their total log weight.
    uturn : IterativeUTurnState
        Per-level buffers of the iterative U-turn checks.
    num_leaves : int
        Leapfrog steps taken so far.
    is_turning, is_diverging : bool
        Why building stopped early, if it did.
    sum_accept_prob : scalar
        Sum over its leaves of ``min(1, exp(H0 - H))``.
    """

    first_momentum: jax.Array
    first_velocity: jax.Array
    last_state: IntegratorState
    last_velocity: jax.Array
    momentum_sum: jax.Array
    proposal: Proposal
    uturn: termination.IterativeUTurnState
    num_leaves: jax.Array
    is_turning: jax.Array
    is_diverging: jax.Array
    sum_accept_prob: jax.Array


class ExpansionState(NamedTuple):
    """Carry of the doubling loop.

    trajectory : Trajectory
    proposal : Proposal
        Current draw; ``log_weight`` is the whole trajectory's.
    depth : int
        Number of accepted doublings (Stan's ``treedepth``).
    is_turning, is_diverging : bool
        Why expansion stopped, if it did before the maximum depth.
    num_steps : int
        Leapfrog steps taken, including those of a rejected last subtree.
    sum_accept_prob : scalar
        Sum of ``min(1, exp(H0 - H))`` over those steps.
    """

    trajectory: Trajectory
    proposal: Proposal
    depth: jax.Array
    is_turning: jax.Array
    is_diverging: jax.Array
    num_steps: jax.Array
    sum_accept_prob: jax.Array


class TreeRandomness(NamedTuple):
    """Every random number a transition of at most ``max_depth`` doublings uses.

    is_forward : bool array, shape (max_depth,)
        Direction of each doubling.
    bias_uniform : array, shape (max_depth,)
        Uniform of each doubling's biased progressive sampling.
    leaf_uniform : array, shape (2**max_depth - 1,)
        Uniforms in ``(0, 1)`` of all leaves: leaf ``n`` of doubling ``d`` at
        ``2**d - 1 + n`` (see :func:`leaf_gumbel`).
    """

    is_forward: jax.Array
    bias_uniform: jax.Array
    leaf_uniform: jax.Array


def num_tree_uniforms(max_depth: int) -> int:
    """How many uniforms a :class:`TreeRandomness` for ``max_depth`` holds."""
    return 2 * max_depth + 2**max_depth - 1


def tree_randomness(uniform, max_depth: int) -> TreeRandomness:
    """Split ``num_tree_uniforms(max_depth)`` uniforms in ``(0, 1)`` into a
    :class:`TreeRandomness`."""
    return TreeRandomness(
        is_forward=uniform[:max_depth] < 0.5,
        bias_uniform=uniform[max_depth : 2 * max_depth],
        leaf_uniform=uniform[2 * max_depth :],
    )


def leaf_gumbel(randomness: TreeRandomness, depth, leaf_index):
    """The Gumbel variate of leaf ``leaf_index`` of doubling ``depth``."""
    uniform = randomness.leaf_uniform[jnp.left_shift(1, depth) - 1 + leaf_index]
    return -jnp.log(-jnp.log(uniform))


# --- one leaf --------------------------------------------------------------


def _new_subtree(start: IntegratorState, max_depth: int) -> SubtreeState:
    zeros = jnp.zeros_like(start.position)
    dtype = start.logdensity.dtype
    return SubtreeState(
        first_momentum=zeros,
        first_velocity=zeros,
        last_state=start,
        last_velocity=zeros,
        momentum_sum=zeros,
        proposal=proposal_lib.empty_proposal(start),
        uturn=termination.new_uturn_state(max_depth, start.position),
        num_leaves=jnp.zeros((), jnp.int32),
        is_turning=jnp.zeros((), bool),
        is_diverging=jnp.zeros((), bool),
        sum_accept_prob=jnp.zeros((), dtype),
    )


def _leaf_energy(state, metric, initial_energy, divergence_threshold):
    energy = -state.logdensity + metric.kinetic_energy(state.momentum)
    delta = energy_error(energy, initial_energy)
    return energy, -delta, delta > divergence_threshold


class LeafContext(NamedTuple):
    """What every leaf of one transition shares.

    randomness : TreeRandomness
    integrate : callable
        ``(IntegratorState, signed step size) -> IntegratorState``.
    metric : Metric
    initial_energy : scalar
        The Hamiltonian ``H0`` of the transition's starting point.
    max_depth : int
        Maximum number of doublings (static).
    divergence_threshold : float
        A leaf with ``H - H0`` above it is a divergence.
    """

    randomness: TreeRandomness
    integrate: Callable
    metric: Metric
    initial_energy: jax.Array
    max_depth: int
    divergence_threshold: float


def _add_leaf(subtree, context: LeafContext, step_size, depth):
    n, metric = subtree.num_leaves, context.metric
    state = context.integrate(subtree.last_state, step_size)
    energy, log_weight, is_diverging = _leaf_energy(
        state, metric, context.initial_energy, context.divergence_threshold
    )
    velocity = metric.velocity(state.momentum)
    gumbel = leaf_gumbel(context.randomness, depth, n)
    leaf = proposal_lib.leaf_proposal(state, energy, log_weight, gumbel)
    uturn, is_turning = termination.update_and_check(
        subtree.uturn, n, state.momentum, velocity, metric.is_turning
    )
    is_first = n == 0
    return SubtreeState(
        first_momentum=jnp.where(is_first, state.momentum, subtree.first_momentum),
        first_velocity=jnp.where(is_first, velocity, subtree.first_velocity),
        last_state=state,
        last_velocity=velocity,
        momentum_sum=subtree.momentum_sum + state.momentum,
        proposal=proposal_lib.multinomial_sampling(subtree.proposal, leaf),
        uturn=uturn,
        num_leaves=n + 1,
        # A divergent leaf ends the subtree before any U-turn check (Stan).
        is_turning=is_turning & ~is_diverging,
        is_diverging=is_diverging,
        # min(1, exp(log_weight)) with exp(-inf) = 0 for NaN energies.
        sum_accept_prob=subtree.sum_accept_prob + jnp.exp(jnp.minimum(log_weight, 0.0)),
    )


def build_subtree(
    context: LeafContext, start: IntegratorState, depth, step_size
) -> SubtreeState:
    """Take up to ``2^depth`` leapfrog steps from ``start``, one per iteration.

    ``step_size`` is signed: negative builds backward in time. Building stops
    at the first divergent leaf or U-turn; such a subtree is invalid.
    """
    num_leaves = jnp.left_shift(jnp.int32(1), depth)

    def do_keep_building(subtree):
        return (
            (subtree.num_leaves < num_leaves)
            & ~subtree.is_turning
            & ~subtree.is_diverging
        )

    def add_leaf(subtree):
        return _add_leaf(subtree, context, step_size, depth)

    return jax.lax.while_loop(
        do_keep_building, add_leaf, _new_subtree(start, context.max_depth)
    )


# --- doubling --------------------------------------------------------------


def _merge_trajectory(trajectory, subtree, is_forward, is_valid):
    """Join a valid subtree to the trajectory end it was built from (time
    order); an invalid one leaves the trajectory unchanged. One select per
    array, because each select is a kernel to compile and run."""
    end = subtree.last_state
    extend_left, extend_right = is_valid & ~is_forward, is_valid & is_forward
    return Trajectory(
        leftmost_state=tree_where(extend_left, end, trajectory.leftmost_state),
        rightmost_state=tree_where(extend_right, end, trajectory.rightmost_state),
        leftmost_velocity=jnp.where(
            extend_left, subtree.last_velocity, trajectory.leftmost_velocity
        ),
        rightmost_velocity=jnp.where(
            extend_right, subtree.last_velocity, trajectory.rightmost_velocity
        ),
        momentum_sum=trajectory.momentum_sum
        + jnp.where(is_valid, subtree.momentum_sum, 0.0),
    )


def _is_turning_after_merge(trajectory, subtree, is_forward, metric):
    # In integration order the old trajectory comes first: its "last" point is
    # the end the subtree grew from, its "first" the opposite end.
    near_momentum = jnp.where(
        is_forward,
        trajectory.rightmost_state.momentum,
        trajectory.leftmost_state.momentum,
    )
    near_velocity = jnp.where(
        is_forward, trajectory.rightmost_velocity, trajectory.leftmost_velocity
    )
    far_velocity = jnp.where(
        is_forward, trajectory.leftmost_velocity, trajectory.rightmost_velocity
    )
    return termination.is_turning_merge(
        metric.is_turning,
        a_first_velocity=far_velocity,
        a_last_momentum=near_momentum,
        a_last_velocity=near_velocity,
        a_momentum_sum=trajectory.momentum_sum,
        b_first_momentum=subtree.first_momentum,
        b_first_velocity=subtree.first_velocity,
        b_last_velocity=subtree.last_velocity,
        b_momentum_sum=subtree.momentum_sum,
    )


def _double(
    state: ExpansionState, randomness: TreeRandomness, build: Callable, metric: Metric
):
    is_forward = randomness.is_forward[state.depth]
    trajectory = state.trajectory
    start = tree_where(
        is_forward, trajectory.rightmost_state, trajectory.leftmost_state
    )
    subtree = build(start, state.depth, is_forward)
    # An invalid subtree is discarded whole (Stan: "if (!valid_subtree) break").
    is_valid = ~(subtree.is_turning | subtree.is_diverging)
    proposal = proposal_lib.biased_progressive_sampling(
        randomness.bias_uniform[state.depth],
        state.proposal,
        subtree.proposal,
        is_valid,
    )
    is_turning = _is_turning_after_merge(trajectory, subtree, is_forward, metric)
    return ExpansionState(
        trajectory=_merge_trajectory(trajectory, subtree, is_forward, is_valid),
        proposal=proposal,
        depth=state.depth + is_valid.astype(state.depth.dtype),
        is_turning=jnp.where(is_valid, is_turning, subtree.is_turning),
        is_diverging=subtree.is_diverging,
        num_steps=state.num_steps + subtree.num_leaves,
        sum_accept_prob=state.sum_accept_prob + subtree.sum_accept_prob,
    )


def expand(
    randomness: TreeRandomness,
    initial_state: IntegratorState,
    initial_energy,
    step_size,
    integrate: Callable,
    metric: Metric,
    max_depth: int,
    divergence_threshold: float,
) -> ExpansionState:
    """Grow the trajectory from ``initial_state`` until it stops.

    Parameters
    ----------
    randomness : TreeRandomness
        Directions, biased-sampling uniforms and leaf Gumbels, drawn for at
        least ``max_depth`` doublings.
    initial_state : IntegratorState
        Starting point with its freshly drawn momentum.
    initial_energy : scalar
        Its Hamiltonian ``H0``.
    step_size : scalar
        Positive leapfrog step size.
    integrate : callable
        ``(IntegratorState, signed step size) -> IntegratorState``.
    metric : Metric
    max_depth : int
        Maximum number of doublings (static).
    divergence_threshold : float
        A leaf with ``H - H0`` above it is a divergence.

    Returns
    -------
    ExpansionState
    """
    velocity = metric.velocity(initial_state.momentum)
    trajectory = Trajectory(
        leftmost_state=initial_state,
        rightmost_state=initial_state,
        leftmost_velocity=velocity,
        rightmost_velocity=velocity,
        momentum_sum=initial_state.momentum,
    )
    zero = jnp.zeros((), initial_energy.dtype)
    # The initial point has weight exp(H0 - H0) = 1.
    proposal = Proposal(
        state=initial_state, energy=initial_energy, log_weight=zero, score=zero
    )

    context = LeafContext(
        randomness, integrate, metric, initial_energy, max_depth, divergence_threshold
    )

    def build(start, depth, is_forward):
        signed_step_size = jnp.where(is_forward, step_size, -step_size)
        return build_subtree(context, start, depth, signed_step_size)

    def do_keep_expanding(state):
        return (state.depth < max_depth) & ~state.is_turning & ~state.is_diverging

    def expand_once(state):
        return _double(state, randomness, build, metric)

    state = ExpansionState(
        trajectory=trajectory,
        proposal=proposal,
        depth=jnp.zeros((), jnp.int32),
        is_turning=jnp.zeros((), bool),
        is_diverging=jnp.zeros((), bool),
        num_steps=jnp.zeros((), jnp.int32),
        sum_accept_prob=zero,
    )
    return jax.lax.while_loop(do_keep_expanding, expand_once, state)

"""The no-U-turn checks of a tree built one leaf at a time.

Recursive NUTS (Hoffman & Gelman 2014, Algorithm 3; Stan ``base_nuts``)
builds a subtree of depth ``d`` as two subtrees of depth ``d - 1`` and, after
each merge of a left half ``A = a_1..a_k`` with a right half ``B = b_1..b_k``
(integration order), requires

1. the criterion on ``A + B``: ``p#(a_1)``, ``p#(b_k)`` and ``rho_A + rho_B``;
2. the criterion on ``a_1 .. b_1``: ``p#(a_1)``, ``p#(b_1)`` and
   ``rho_A + p(b_1)``;
3. the criterion on ``a_k .. b_k``: ``p#(a_k)``, ``p#(b_k)`` and
   ``p(a_k) + rho_B``.

Checks 2 and 3 are Stan's extra checks across subtrees (stan-dev/stan PR 2800)
that catch U-turns missed when the halves straddle the turning point. The
criterion is symmetric in the two velocities, so integration order may run
backward in time.

JAX cannot trace recursion, so the tree is built leaf by leaf (Phan, Pradhan &
Jankowiak 2019, section 3). With leaves numbered ``n = 0, 1, ...`` inside the
subtree, leaf ``n`` *opens* a block of ``2^l`` leaves at every level ``l``
with ``n mod 2^l = 0`` and *closes* one at every level with
``(n + 1) mod 2^l = 0``; closing a level ``l >= 1`` block is exactly the
recursion's merge of its two level ``l - 1`` halves. Instead of NumPyro's
checkpoint indices we keep, per level, the facts the three checks need:
the momentum sum of the open block, its first momentum and velocity, and the
sum and last momentum/velocity of the previous completed block (the left
half of the next merge). That is ``O(max_depth x dim)`` memory, and the checks
of all levels closing at a leaf are evaluated at once, vectorised over levels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "IterativeUTurnState",
    "is_turning_merge",
    "new_uturn_state",
    "update_and_check",
]


class IterativeUTurnState(NamedTuple):
    """Per-level facts of the blocks of a subtree under construction.

    Every field has shape ``(max_depth, dim)``; row ``l`` is about blocks of
    ``2^l`` leaves.

    block_momentum_sum : array
        Sum of momenta of the block currently open at level ``l``.
    block_first_momentum, block_first_velocity : array
        Momentum and velocity of the first leaf of that block.
    previous_momentum_sum : array
        Momentum sum of the last completed block at level ``l``.
    previous_last_momentum, previous_last_velocity : array
        Momentum and velocity of the last leaf of that completed block.
    """

    block_momentum_sum: jax.Array
    block_first_momentum: jax.Array
    block_first_velocity: jax.Array
    previous_momentum_sum: jax.Array
    previous_last_momentum: jax.Array
    previous_last_velocity: jax.Array


def new_uturn_state(max_depth: int, position: jax.Array) -> IterativeUTurnState:
    """Empty per-level buffers for subtrees of depth below ``max_depth``."""
    zeros = jnp.zeros((max(max_depth, 1),) + jnp.shape(position), position.dtype)
    return IterativeUTurnState(*([zeros] * 6))


def is_turning_merge(
    is_turning: Callable,
    a_first_velocity,
    a_last_momentum,
    a_last_velocity,
    a_momentum_sum,
    b_first_momentum,
    b_first_velocity,
    b_last_velocity,
    b_momentum_sum,
):
    """True when merging ``A`` then ``B`` (integration order) makes a U-turn.

    Evaluates the three checks of the module docstring; all arguments may be
    stacked along leading axes.
    """
    whole = is_turning(
        a_first_velocity, b_last_velocity, a_momentum_sum + b_momentum_sum
    )
    left = is_turning(
        a_first_velocity, b_first_velocity, a_momentum_sum + b_first_momentum
    )
    right = is_turning(
        a_last_velocity, b_last_velocity, a_last_momentum + b_momentum_sum
    )
    return whole | left | right


def _levels_mask(index, num_levels):
    # Level l is hit when the low l bits of ``index`` are all zero.
    levels = jnp.arange(num_levels, dtype=jnp.int32)
    low_bits = jnp.left_shift(jnp.int32(1), levels) - 1
    return (jnp.bitwise_and(index, low_bits) == 0)[:, None]


def update_and_check(
    state: IterativeUTurnState, leaf_index, momentum, velocity, is_turning: Callable
):
    """Add leaf ``leaf_index`` and run the checks of every merge it completes.

    Parameters
    ----------
    state : IterativeUTurnState
    leaf_index : int scalar
        0-based index of the new leaf inside its subtree.
    momentum, velocity : array, shape (dim,)
        The new leaf's momentum and sharp momentum.
    is_turning : callable
        The metric's criterion.

    Returns
    -------
    (IterativeUTurnState, bool)
        Updated buffers and whether any completed merge makes a U-turn.
    """
    leaf_index = jnp.asarray(leaf_index, jnp.int32)
    num_levels = state.block_momentum_sum.shape[0]
    opens = _levels_mask(leaf_index, num_levels)
    closes = _levels_mask(leaf_index + 1, num_levels)
    block_sum = jnp.where(opens, 0.0, state.block_momentum_sum) + momentum
    first_momentum = jnp.where(opens, momentum, state.block_first_momentum)
    first_velocity = jnp.where(opens, velocity, state.block_first_velocity)
    # Closing level l >= 1 merges A = previous level l-1 block with
    # B = the level l-1 block that this leaf closes.
    turning = is_turning_merge(
        is_turning,
        a_first_velocity=first_velocity[1:],
        a_last_momentum=state.previous_last_momentum[:-1],
        a_last_velocity=state.previous_last_velocity[:-1],
        a_momentum_sum=state.previous_momentum_sum[:-1],
        b_first_momentum=first_momentum[:-1],
        b_first_velocity=first_velocity[:-1],
        b_last_velocity=velocity,
        b_momentum_sum=block_sum[:-1],
    )
    any_turning = jnp.any(closes[1:, 0] & turning)
    new_state = IterativeUTurnState(
        block_momentum_sum=block_sum,
        block_first_momentum=first_momentum,
        block_first_velocity=first_velocity,
        previous_momentum_sum=jnp.where(closes, block_sum, state.previous_momentum_sum),
        previous_last_momentum=jnp.where(
            closes, momentum, state.previous_last_momentum
        ),
        previous_last_velocity=jnp.where(
            closes, velocity, state.previous_last_velocity
        ),
    )
    return new_state, any_turning

"""Proposals: which point of a trajectory becomes the next state.

Multinomial NUTS (Betancourt 2017, arXiv:1701.02434, appendix A.3) gives every
point ``z`` of a trajectory the weight ``w(z) = exp(H0 - H(z))`` (``H0`` is the
energy of the starting point, so weights are relative).

* Inside a subtree the proposal is a draw with probability ``w(z) / W``. We
  draw it with the Gumbel-max trick (Gumbel 1954; Maddison, Tarlow & Minka
  2014, "A* sampling", section 2): every leaf gets an independent Gumbel
  variate ``g`` and the proposal is the leaf with the largest
  ``score = log w + g``. This is exactly the categorical draw that Stan obtains
  by merging halves with probability ``W_2 / (W_1 + W_2)``, but the result
  does not depend on the *order* of merges: the iterative builder, which adds
  one leaf at a time, and Stan's recursion, which merges halves, pick the same
  point from the same random bits.
* At the top level the new subtree's proposal replaces the current one with
  probability ``min(1, W_new / W_old)`` (biased progressive sampling,
  Betancourt 2017, appendix A.3.2; Stan ``base_nuts::transition``), which
  favours points far from the start.

Weights are kept in log space; a point whose energy is NaN has weight zero.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from core_ppl.infer.mcmc.integrators import IntegratorState
from core_ppl.infer.mcmc.select import tree_where

__all__ = [
    "Proposal",
    "biased_progressive_sampling",
    "empty_proposal",
    "leaf_proposal",
    "multinomial_sampling",
]


class Proposal(NamedTuple):
    """A candidate next state and the weight of the points it was drawn from.

    state : IntegratorState
        The candidate point.
    energy : scalar
        Its Hamiltonian ``H = -log pi(q) + K(p)``.
    log_weight : scalar
        ``log sum exp(H0 - H)`` over the points the candidate represents.
    score : scalar
        ``log w + Gumbel`` of the candidate, the key of the Gumbel-max draw
        (unused at the top level).
    """

    state: IntegratorState
    energy: jax.Array
    log_weight: jax.Array
    score: jax.Array


def empty_proposal(state: IntegratorState) -> Proposal:
    """A proposal representing no point (weight zero); any leaf replaces it."""
    neg_inf = jnp.full((), -jnp.inf, state.logdensity.dtype)
    return Proposal(state=state, energy=-neg_inf, log_weight=neg_inf, score=neg_inf)


def leaf_proposal(state, energy, log_weight, gumbel) -> Proposal:
    """The proposal made of one trajectory point."""
    return Proposal(
        state=state, energy=energy, log_weight=log_weight, score=log_weight + gumbel
    )


def multinomial_sampling(proposal: Proposal, new_proposal: Proposal) -> Proposal:
    """Merge two disjoint groups of points by Gumbel-max (uniform progressive).

    The merged proposal is the one with the larger score; its probability of
    being each point is proportional to that point's weight.
    """
    take_new = new_proposal.score > proposal.score
    chosen = tree_where(take_new, new_proposal, proposal)
    return chosen._replace(
        log_weight=jnp.logaddexp(proposal.log_weight, new_proposal.log_weight)
    )


def biased_progressive_sampling(
    uniform, proposal: Proposal, new_proposal: Proposal, is_valid=True
) -> Proposal:
    """Top-level merge: prefer the new subtree (Betancourt 2017, A.3.2).

    Parameters
    ----------
    uniform : scalar
        A Uniform(0, 1) draw; the new proposal is taken when
        ``uniform < W_new / W_old`` (always when ``W_new >= W_old``).
    proposal, new_proposal : Proposal
        The current trajectory's proposal and the new subtree's.
    is_valid : bool scalar, default=True
        False for a subtree that diverged or turned: it is discarded whole
        and ``proposal`` is returned unchanged.
    """
    take_new = is_valid & (
        uniform < jnp.exp(new_proposal.log_weight - proposal.log_weight)
    )
    chosen = tree_where(take_new, new_proposal, proposal)
    merged_log_weight = jnp.logaddexp(proposal.log_weight, new_proposal.log_weight)
    return chosen._replace(
        log_weight=jnp.where(is_valid, merged_log_weight, proposal.log_weight)
    )

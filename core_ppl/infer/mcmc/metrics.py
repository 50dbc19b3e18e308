"""Euclidean metrics: the Gaussian kinetic energy of HMC.

Momenta are drawn from ``N(0, M)``; the kinetic energy is
``K(p) = p^T M^{-1} p / 2`` and the velocity ("sharp" momentum, Betancourt
2017, arXiv:1701.02434, section 4.2) is ``p# = dK/dp = M^{-1} p``. What
warmup estimates, and what users pass, is the *inverse* mass matrix
``M^{-1}``, an estimate of the posterior (co)variance: a vector for a diagonal
metric, a matrix for a dense one.

The metric also owns the generalised no-U-turn criterion, because it is
expressed with sharp momenta (Betancourt 2017, appendix A.4.2; Stan's
``base_nuts::compute_criterion``): a trajectory with momentum sum ``rho`` and
end velocities ``p#-``, ``p#+`` keeps expanding only while
``p#- . rho > 0`` and ``p#+ . rho > 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

__all__ = ["Metric", "gaussian_euclidean"]


class Metric(NamedTuple):
    """Functions of a Gaussian Euclidean metric.

    sample_momentum : callable
        ``(rng_key, position) -> momentum`` drawn from ``N(0, M)``.
    momentum_from_normal : callable
        ``z -> momentum``: maps a standard normal vector to a draw from
        ``N(0, M)`` (for callers that draw ``z`` together with other numbers).
    kinetic_energy : callable
        ``momentum -> p^T M^{-1} p / 2``.
    velocity : callable
        ``momentum -> M^{-1} p`` (the sharp momentum).
    is_turning : callable
        ``(velocity_left, velocity_right, momentum_sum) -> bool``; True when
        the generalised U-turn criterion says stop. Works on stacked inputs
        (the last axis is the dimension), as the iterative tree checks many
        levels at once.
    """

    sample_momentum: Callable
    momentum_from_normal: Callable
    kinetic_energy: Callable
    velocity: Callable
    is_turning: Callable


def _is_turning(velocity_left, velocity_right, momentum_sum):
    # Stan's compute_criterion keeps going only while both dot products are
    # strictly positive; written as "not both positive" a NaN counts as turning.
    left = jnp.sum(velocity_left * momentum_sum, axis=-1)
    right = jnp.sum(velocity_right * momentum_sum, axis=-1)
    return ~((left > 0) & (right > 0))


def gaussian_euclidean(inverse_mass_matrix: jax.Array) -> Metric:
    """Build the metric for a diagonal or dense inverse mass matrix.

    Parameters
    ----------
    inverse_mass_matrix : array, shape (dim,) or (dim, dim)
        Diagonal of ``M^{-1}`` or the full symmetric positive definite
        ``M^{-1}``.

    Returns
    -------
    Metric
    """
    inverse_mass_matrix = jnp.asarray(inverse_mass_matrix)
    if inverse_mass_matrix.ndim == 1:
        return _diagonal_metric(inverse_mass_matrix)
    if inverse_mass_matrix.ndim == 2:
        return _dense_metric(inverse_mass_matrix)
    raise ValueError(
        "inverse_mass_matrix must have shape (dim,) or (dim, dim), got "
        f"{inverse_mass_matrix.shape}"
    )


def _standard_normal(rng_key, position):
    return jax.random.normal(rng_key, jnp.shape(position), jnp.result_type(position))


def _diagonal_metric(inverse_mass_matrix):
    mass_sqrt = jnp.sqrt(1.0 / inverse_mass_matrix)
    return _metric(
        momentum_from_normal=lambda z: z * mass_sqrt,
        velocity=lambda momentum: inverse_mass_matrix * momentum,
    )


def _dense_metric(inverse_mass_matrix):
    # M^{-1} = C C^T  =>  M = C^{-T} C^{-1}, so p = C^{-T} z has covariance M
    # without ever forming M.
    chol = jnp.linalg.cholesky(inverse_mass_matrix)
    return _metric(
        momentum_from_normal=lambda z: jsl.solve_triangular(
            chol, z, lower=True, trans="T"
        ),
        velocity=lambda momentum: inverse_mass_matrix @ momentum,
    )


def _metric(momentum_from_normal, velocity):
    """The metric whose momenta are ``momentum_from_normal(N(0, I))`` and
    whose sharp momentum is ``velocity``: the diagonal and dense metrics
    differ only in these two maps."""

    def sample_momentum(rng_key, position):
        return momentum_from_normal(_standard_normal(rng_key, position))

    def kinetic_energy(momentum):
        return 0.5 * jnp.dot(momentum, velocity(momentum))

    return Metric(
        sample_momentum=sample_momentum,
        momentum_from_normal=momentum_from_normal,
        kinetic_energy=kinetic_energy,
        velocity=velocity,
        is_turning=_is_turning,
    )

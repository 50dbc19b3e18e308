"""Warmup: Stan's step-size heuristic, dual averaging, Welford (co)variance
and the windowed schedule.

Each part is an ``(init, update, final)`` triple of pure functions over a
NamedTuple, so the warmup is a ``lax.scan`` whose inputs ``xs`` are the
schedule computed here in NumPy (BlackJAX ``window_adaptation`` shape; the
algorithm is Stan's, see ``docs/nuts.md``):

* iterations ``[0, init_buffer)`` adapt the step size only;
* slow windows of 25, 50, 100, ... iterations also accumulate the draws in a
  Welford estimator; at the end of each window the inverse mass matrix is set
  to the regularised (co)variance, the step-size heuristic is rerun and dual
  averaging restarts around ``log(10 * step_size)``;
* the terminal buffer adapts the step size with the final metric, and the
  warmup ends with the dual-averaged step size ``exp(x_bar)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.infer.mcmc.integrators import IntegratorState, energy_error
from core_ppl.infer.mcmc.metrics import gaussian_euclidean
from core_ppl.infer.mcmc.select import tree_where

__all__ = [
    "DualAveragingState",
    "WarmupState",
    "WelfordState",
    "build_schedule",
    "dual_averaging",
    "find_reasonable_step_size",
    "warmup_adaptation",
    "welford_covariance",
]


# --- step-size heuristic -----------------------------------------------------

_NUM_HEURISTIC_MOMENTA = 16


def find_reasonable_step_size(
    rng_key,
    state,
    logdensity_fn,
    step_size,
    inverse_mass_matrix,
    integrator,
    target=0.8,
    max_iterations=100,
):
    """Stan's ``base_hmc::init_stepsize``: double or halve until one leapfrog
    step's acceptance crosses ``target``.

    A first step decides the direction (``H0 - H1 > log 0.8``: grow, else
    shrink); then, with a fresh momentum each time from the same position,
    the step size is doubled (halved) while the comparison has not flipped.
    Stan throws when the step size leaves ``(0, 1e7]``; under ``jit`` the
    search stops there instead (the caller can check the result).

    Parameters
    ----------
    rng_key : PRNG key
    state : HMCState
        Position with its cached log density and gradient.
    logdensity_fn : callable
    step_size : scalar
        Starting step size.
    inverse_mass_matrix : array
    integrator : callable
        ``integrator(logdensity_fn, metric) -> one_step``.
    target : float, default=0.8
    max_iterations : int, default=100

    Returns
    -------
    step_size : scalar
    """
    metric = gaussian_euclidean(inverse_mass_matrix)
    integrate = integrator(logdensity_fn, metric)
    log_target = jnp.log(target)
    step_size = jnp.asarray(step_size, state.logdensity.dtype)

    # Stan draws a fresh momentum at every iteration. Drawing 16 at once (and
    # cycling through them should the search run longer, by when the step
    # size has changed 2**16-fold) takes one random call site instead of a
    # key fold and a draw per iteration: each site costs compile time.
    position = state.position
    normals = jax.random.normal(
        rng_key, (_NUM_HEURISTIC_MOMENTA,) + position.shape, position.dtype
    )

    def delta_energy(i, eps):
        momentum = metric.momentum_from_normal(normals[i % _NUM_HEURISTIC_MOMENTA])
        start = IntegratorState(
            state.position, momentum, state.logdensity, state.logdensity_grad
        )
        end = integrate(start, eps)
        h0 = -start.logdensity + metric.kinetic_energy(start.momentum)
        h1 = -end.logdensity + metric.kinetic_energy(end.momentum)
        return -energy_error(h1, h0)

    # The first evaluation (i = 0) only sets the direction; one loop holds
    # both so the momentum draw is compiled once.
    def keep_searching(carry):
        i, eps, _, done = carry
        return ~done & (i < max_iterations) & (eps <= 1e7) & (eps > 0)

    def search_once(carry):
        i, eps, direction, _ = carry
        delta = delta_energy(i, eps)
        direction = jnp.where(i == 0, jnp.where(delta > log_target, 1, -1), direction)
        done = (i > 0) & jnp.where(
            direction == 1, ~(delta > log_target), ~(delta < log_target)
        )
        factor = jnp.where(direction == 1, 2.0, 0.5).astype(eps.dtype)
        eps = jnp.where(done | (i == 0), eps, eps * factor)
        return i + 1, eps, direction, done

    start = (jnp.int32(0), step_size, jnp.int32(0), jnp.zeros((), bool))
    _, step_size, _, _ = jax.lax.while_loop(keep_searching, search_once, start)
    return step_size


# --- dual averaging ----------------------------------------------------------


class DualAveragingState(NamedTuple):
    """Nesterov dual averaging of ``log(step_size)`` (Hoffman & Gelman 2014,
    section 3.2.1).

    log_step_size : scalar
        ``x``, the log step size to use next.
    log_step_size_avg : scalar
        ``x_bar``, its weighted average; ``exp(x_bar)`` ends the warmup.
    step : int
        ``t``, iterations since the last restart.
    avg_error : scalar
        ``s_bar``, running average of ``target - acceptance``.
    mu : scalar
        The point ``x`` shrinks toward, ``log(10 * step_size)``.
    """

    log_step_size: jax.Array
    log_step_size_avg: jax.Array
    step: jax.Array
    avg_error: jax.Array
    mu: jax.Array


def dual_averaging(target_accept_prob=0.8, gamma=0.05, t0=10.0, kappa=0.75):
    """Stan's ``stepsize_adaptation`` as ``(init, update, final)``.

    ``init(step_size, mu=None)`` starts from ``step_size`` with
    ``mu = log(10 * step_size)`` unless given; ``update(state,
    acceptance_rate)`` learns from one transition; ``final(state)`` returns
    ``exp(x_bar)``.
    """

    def init(step_size, mu=None):
        log_step_size = jnp.log(step_size)
        mu = jnp.log(10.0) + log_step_size if mu is None else mu
        zero = jnp.zeros_like(log_step_size)
        return DualAveragingState(
            log_step_size=log_step_size,
            log_step_size_avg=zero,
            step=jnp.zeros((), jnp.int32),
            avg_error=zero,
            mu=jnp.asarray(mu, log_step_size.dtype),
        )

    def update(state, acceptance_rate):
        t = state.step + 1
        t_float = t.astype(state.avg_error.dtype)
        # Stan clips the statistic at 1; a NaN statistic counts as 0.
        accept = jnp.clip(jnp.nan_to_num(acceptance_rate, nan=0.0), max=1.0)
        eta = 1.0 / (t_float + t0)
        avg_error = (1.0 - eta) * state.avg_error + eta * (target_accept_prob - accept)
        log_step_size = state.mu - avg_error * jnp.sqrt(t_float) / gamma
        weight = t_float ** (-kappa)
        log_step_size_avg = (
            1.0 - weight
        ) * state.log_step_size_avg + weight * log_step_size
        return DualAveragingState(
            log_step_size=log_step_size.astype(state.log_step_size.dtype),
            log_step_size_avg=log_step_size_avg.astype(state.log_step_size.dtype),
            step=t,
            avg_error=avg_error.astype(state.avg_error.dtype),
            mu=state.mu,
        )

    def final(state):
        return jnp.exp(state.log_step_size_avg)

    return init, update, final


# --- Welford (co)variance ----------------------------------------------------


class WelfordState(NamedTuple):
    """Welford's online mean and sum of squared deviations.

    mean : array, shape (dim,)
    m2 : array, shape (dim,) or (dim, dim)
        Sum of ``delta * (x - mean)`` (outer product when dense).
    count : int
    """

    mean: jax.Array
    m2: jax.Array
    count: jax.Array


def welford_covariance(is_diagonal: bool, shrinkage: float = 5.0, jitter: float = 1e-3):
    """Stan's ``var_adaptation``/``covar_adaptation`` estimator.

    ``final`` returns the inverse mass matrix
    ``n / (n + 5) * S + 1e-3 * 5 / (n + 5) * I`` where ``S`` is the sample
    (co)variance of the ``n`` accumulated draws.
    """

    def init(position):
        dim = jnp.shape(position)[0]
        shape = (dim,) if is_diagonal else (dim, dim)
        return WelfordState(
            mean=jnp.zeros_like(position),
            m2=jnp.zeros(shape, position.dtype),
            count=jnp.zeros((), jnp.int32),
        )

    def update(state, position):
        count = state.count + 1
        delta = position - state.mean
        mean = state.mean + delta / count.astype(position.dtype)
        increment = (
            delta * (position - mean)
            if is_diagonal
            else jnp.outer(position - mean, delta)
        )
        return WelfordState(mean=mean, m2=state.m2 + increment, count=count)

    def final(state):
        n = state.count.astype(state.mean.dtype)
        covariance = state.m2 / (n - 1.0)
        regulariser = jitter * shrinkage / (n + shrinkage)
        identity = 1.0 if is_diagonal else jnp.eye(state.mean.shape[0], dtype=n.dtype)
        return (n / (n + shrinkage)) * covariance + regulariser * identity

    return init, update, final


# --- the schedule ------------------------------------------------------------


def build_schedule(
    num_warmup: int, init_buffer: int = 75, term_buffer: int = 50, base_window: int = 25
):
    """Stan's windowed adaptation schedule (``windowed_adaptation``).

    Returns
    -------
    in_window : ndarray of bool, shape (num_warmup,)
        The iteration's draw feeds the (co)variance estimator.
    is_window_end : ndarray of bool, shape (num_warmup,)
        The metric is updated after this iteration.
    """
    in_window = np.zeros(num_warmup, bool)
    is_window_end = np.zeros(num_warmup, bool)
    if num_warmup < 20:  # Stan: "No adaptation will take place"
        return in_window, is_window_end
    if init_buffer + base_window + term_buffer > num_warmup:
        init_buffer = int(0.15 * num_warmup)
        term_buffer = int(0.1 * num_warmup)
        base_window = num_warmup - (init_buffer + term_buffer)
    last = num_warmup - term_buffer - 1
    in_window[init_buffer : num_warmup - term_buffer] = True
    window_size, window_end = base_window, init_buffer + base_window - 1
    while window_end <= last:
        is_window_end[window_end] = True
        if window_end == last:
            break
        # Stan's compute_next_window: double, and stretch the next window to
        # the terminal buffer when the one after it would not fit.
        window_size *= 2
        window_end += window_size
        if window_end + 2 * window_size >= num_warmup - term_buffer:
            window_end = last
    return in_window, is_window_end


# --- the combined warmup -------------------------------------------------------


class WarmupState(NamedTuple):
    """Per-chain state of the windowed warmup.

    step_size : scalar
        Step size for the next transition.
    inverse_mass_matrix : array, shape (dim,) or (dim, dim)
    dual_averaging : DualAveragingState
    welford : WelfordState
    """

    step_size: jax.Array
    inverse_mass_matrix: jax.Array
    dual_averaging: DualAveragingState
    welford: WelfordState


def warmup_adaptation(
    integrator: Callable,
    is_diagonal: bool,
    target_accept_prob=0.8,
    adapt_step_size: bool = True,
    adapt_mass_matrix: bool = True,
):
    """Stan's warmup as ``(init, update, restart, final)`` per chain.

    ``init(step_size, inverse_mass_matrix, position)`` holds the user's
    settings; ``restart(rng_key, warmup_state, state, logdensity_fn,
    is_first)`` starts a phase of step-size adaptation: at the first warmup
    iteration (``is_first``) it keeps the initial metric and sets
    ``mu = log(10 * step_size)`` from the user's step size, as Stan does;
    after a slow window it installs the regularised Welford estimate and
    uses ``mu = log(10 * new step size)``; both times it reruns the step-size
    heuristic and restarts dual averaging. ``update(warmup_state, position,
    acceptance_rate, in_window)`` learns from one transition and
    ``final(warmup_state) -> (step_size, inverse_mass_matrix)``. Restarts are
    separate so the scan can ``lax.cond`` on the (chain-independent)
    schedule outside the ``vmap`` over chains, and one copy of the heuristic
    serves every restart.
    """
    da_init, da_update, da_final = dual_averaging(target_accept_prob)
    # Stan's heuristic always aims at 0.8, whatever the dual averaging's target.
    find_step_size = functools.partial(
        find_reasonable_step_size, integrator=integrator, target=0.8
    )
    wf_init, wf_update, wf_final = welford_covariance(is_diagonal)

    def init(step_size, inverse_mass_matrix, position):
        step_size = jnp.asarray(step_size, position.dtype)
        return WarmupState(
            step_size=step_size,
            inverse_mass_matrix=inverse_mass_matrix,
            dual_averaging=da_init(step_size),
            welford=wf_init(position),
        )

    def restart(rng_key, warmup_state, state, logdensity_fn, is_first):
        inverse_mass_matrix = warmup_state.inverse_mass_matrix
        if adapt_mass_matrix:
            inverse_mass_matrix = jnp.where(
                is_first, inverse_mass_matrix, wf_final(warmup_state.welford)
            )
        step_size = warmup_state.step_size
        dual_averaging_state = warmup_state.dual_averaging
        if adapt_step_size:
            step_size = find_step_size(
                rng_key, state, logdensity_fn, step_size, inverse_mass_matrix
            )
            mu = jnp.log(10.0 * jnp.where(is_first, warmup_state.step_size, step_size))
            dual_averaging_state = da_init(step_size, mu)
        return WarmupState(
            step_size=step_size,
            inverse_mass_matrix=inverse_mass_matrix,
            dual_averaging=dual_averaging_state,
            welford=wf_init(state.position),
        )

    def update(warmup_state, position, acceptance_rate, in_window):
        welford = warmup_state.welford
        if adapt_mass_matrix:
            welford = tree_where(in_window, wf_update(welford, position), welford)
        if not adapt_step_size:
            return warmup_state._replace(welford=welford)
        da_state = da_update(warmup_state.dual_averaging, acceptance_rate)
        return warmup_state._replace(
            step_size=jnp.exp(da_state.log_step_size),
            dual_averaging=da_state,
            welford=welford,
        )

    def final(warmup_state):
        if not adapt_step_size:
            return warmup_state.step_size, warmup_state.inverse_mass_matrix
        return da_final(warmup_state.dual_averaging), warmup_state.inverse_mass_matrix

    return init, update, restart, final

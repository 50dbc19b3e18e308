"""The kernel interface: what :class:`~core_ppl.infer.MCMC` knows of a sampler.

A kernel is an :class:`MCMCKernel` (NumPyro's name and public attributes:
``model``, ``sample_field``, ``default_fields``, ``postprocess_fn``,
``get_diagnostics_str``) whose :meth:`MCMCKernel.build` returns, inside the
compiled run, an :class:`Algorithm`: BlackJAX-style pure per-chain functions
over the kernel's own state (a NamedTuple). The driver never asks a kernel's
name. It

1. asks the kernel for each chain's starting point
   (:meth:`MCMCKernel.initial_position`), flattens it with
   ``ravel_pytree`` and hands the kernel the flat log density;
2. runs ``Algorithm.init`` once, then one ``lax.scan`` over warmup and
   sampling whose body calls ``restart`` where the kernel's schedule says a
   warmup phase begins, ``step`` at every iteration and ``adapt`` at every
   warmup iteration, each ``vmap``-ped over chains;
3. records ``Algorithm.fields`` and the state's ``sample_field`` (the flat
   position) at the kept iterations, and maps the kept positions through
   :meth:`MCMCKernel.postprocess_fn`.

Each iteration's entry of the schedule travels as an :class:`Iteration`,
read by name. ``docs/kernels.md`` walks through writing a kernel.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from core_ppl.infer.initialization import init_to_uniform
from core_ppl.infer.util import constrain_fn, find_valid_initial_params

__all__ = [
    "MAX_INIT_TRIES",
    "Algorithm",
    "Iteration",
    "MCMCKernel",
    "Target",
    "WarmupSchedule",
]

# Stan's number of attempts at a finite starting point.
MAX_INIT_TRIES = 100


class Target(NamedTuple):
    """The distribution to sample, as the driver hands it to a kernel inside
    the compiled run.

    model : callable or None
        The model, or None when sampling a ``potential_fn``.
    model_args : tuple
    model_kwargs : dict
        The model's arguments (arrays traced).
    potential_fn : callable
        ``potential_fn(z) -> scalar`` over a dict of unconstrained latent
        values (minus the log density).
    """

    model: Callable | None
    model_args: tuple
    model_kwargs: dict
    potential_fn: Callable


class WarmupSchedule(NamedTuple):
    """A kernel's warmup plan, one entry per warmup iteration (NumPy).

    is_restart : ndarray of bool, shape (num_warmup,)
        ``Algorithm.restart`` runs before this iteration's step.
    in_window : ndarray of bool, shape (num_warmup,)
        The iteration's draw feeds an estimator (e.g. the mass matrix).
    """

    is_restart: np.ndarray
    in_window: np.ndarray


class Iteration(NamedTuple):
    """One iteration's entry of the run's schedule, scanned as ``xs``.

    iteration : int
        Index over warmup and sampling together.
    is_warmup : bool
        ``iteration < num_warmup``.
    is_restart, in_window : bool
        From the kernel's :class:`WarmupSchedule` (False while sampling).
    is_last_warmup : bool
        The last warmup iteration: adaptation should leave its final values.
    slot : int
        Index of the kept draw this iteration produces, or -1.
    """

    iteration: Any
    is_warmup: Any
    is_restart: Any
    in_window: Any
    is_last_warmup: Any
    slot: Any


class Algorithm(NamedTuple):
    """Pure per-chain functions of a kernel, built inside the compiled run.

    ``logdensity_fn`` maps a flat position to ``log pi`` (minus the potential).

    init : callable
        ``init(rng_key, position, logdensity_fn, param_info) -> state``.
        ``param_info`` is None, or a ``ParamInfo`` whose ``z`` and ``z_grad``
        are flat, found by the init search (reuse its potential and gradient).
    step : callable
        ``step(rng_key, state, logdensity_fn, it) -> (state, info)`` with
        ``it`` an :class:`Iteration`.
    fields : callable
        ``fields(state, info) -> dict`` of scalars recorded at kept draws;
        names and dtypes as :meth:`MCMCKernel.field_dtypes` declares.
    adapt : callable or None
        ``adapt(state, info, it) -> state`` after each warmup step.
    restart : callable or None
        ``restart(rng_key, state, logdensity_fn, it) -> state`` before the
        steps the schedule marks ``is_restart``.
    summary : callable or None
        ``summary(state) -> dict`` with any of ``potential_energy``,
        ``z_grad`` (flat), ``step_size`` and ``inverse_mass_matrix``, for
        :class:`~core_ppl.infer.mcmc.sampler.MCMCState`.
    """

    init: Callable
    step: Callable
    fields: Callable
    adapt: Callable | None = None
    restart: Callable | None = None
    summary: Callable | None = None


class MCMCKernel:
    """Base class of the samplers :class:`~core_ppl.infer.MCMC` runs.

    A kernel is a static argument of the compiled run: two kernels that
    compare equal must build the same program, so whatever may change
    between runs without recompiling (step sizes, targets) goes through
    :meth:`parameters`, which are traced. Kernels compare by
    :meth:`static_key`; by default only a kernel equals itself.

    Subclasses set ``model`` (or ``potential_fn``) and ``init_strategy`` and
    implement :meth:`build` and :meth:`field_dtypes`.

    Attributes
    ----------
    sample_field : str
        Attribute of the state (dotted for nested NamedTuples) holding the
        flat position, read with ``operator.attrgetter`` as NumPyro does.
    default_fields : tuple of str
        Fields returned by ``MCMC.get_extra_fields`` without being asked.
    """

    sample_field = "position"
    default_fields: tuple = ()
    model: Callable | None = None
    potential_fn: Callable | None = None
    init_strategy: Callable = staticmethod(init_to_uniform)

    # --- host side ------------------------------------------------------------

    def static_key(self):
        """Hashable settings that fix the program :meth:`build` makes, or
        None (the default) for a kernel equal only to itself."""
        return None

    def __eq__(self, other):
        key = self.static_key()
        if key is None:
            return self is other
        return type(other) is type(self) and key == other.static_key()

    def __hash__(self):
        key = self.static_key()
        return object.__hash__(self) if key is None else hash((type(self), key))

    def parameters(self, dtype):
        """Traced settings passed to :meth:`build` (a pytree of arrays)."""
        return ()

    def warmup_schedule(self, num_warmup: int) -> WarmupSchedule:
        """Where warmup phases begin; by default nowhere."""
        none = np.zeros(num_warmup, bool)
        return WarmupSchedule(is_restart=none, in_window=none)

    def field_dtypes(self, dtype) -> dict:
        """``{name: dtype}`` of what ``Algorithm.fields`` records; ``dtype``
        is the position's floating dtype."""
        raise NotImplementedError

    def get_diagnostics_str(self, state) -> str:
        """A short line about ``state`` for logs (NumPyro's name)."""
        return ""

    # --- inside the compiled run ----------------------------------------------

    def initial_position(self, rng_key, target: Target):
        """One chain's starting point when the user gives none.

        Returns ``(z, is_valid, param_info)``: unconstrained values by site,
        whether the point is usable, and the ``ParamInfo`` of the search (or
        None). The default retries ``init_strategy`` as Stan does.
        """
        if target.model is None:
            raise ValueError("init_params is required when sampling a potential_fn")
        param_info, is_valid = find_valid_initial_params(
            rng_key,
            target.model,
            target.model_args,
            target.model_kwargs,
            init_strategy=self.init_strategy,
            max_tries=MAX_INIT_TRIES,
        )
        return param_info.z, is_valid, param_info

    def build(self, target: Target, unravel: Callable, params) -> Algorithm:
        """The per-chain functions; ``unravel`` maps a flat position back to
        the dict of sites."""
        raise NotImplementedError

    def postprocess_fn(self, model_args, model_kwargs):
        """``z -> samples``: constrained values and deterministic sites of a
        model's draw (identity for a ``potential_fn``)."""
        if self.model is None:
            return lambda z: z

        def postprocess(z):
            return constrain_fn(
                self.model, model_args, model_kwargs, z, return_deterministic=True
            )

        return postprocess

    def get_sample(self, state):
        """The flat position of ``state`` (its ``sample_field``)."""
        return operator.attrgetter(self.sample_field)(state)

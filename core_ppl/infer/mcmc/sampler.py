"""The MCMC driver: warmup and sampling compiled once, for all chains.

:class:`MCMC` turns a kernel (an :class:`~core_ppl.infer.mcmc.kernel.MCMCKernel`
such as :class:`~core_ppl.infer.NUTS`, :class:`~core_ppl.infer.HMC` or
:class:`~core_ppl.infer.HMCGibbs`) into one call of a module-level
``jax.jit`` function, :func:`_run_chains`, whose *static* argument is a
hashable :class:`RunConfig` (the kernel, numbers of iterations) and whose
*traced* arguments are the PRNG keys, the initial positions or kernel
states, the kernel's parameters (step size, mass matrix, target acceptance)
and the model's array arguments. A new ``MCMC`` object with an equal kernel,
or new data of the same shapes, therefore reuses the compiled program.

The driver knows kernels only through their interface (see
:mod:`~core_ppl.infer.mcmc.kernel`). Inside, positions are flat vectors
(``ravel_pytree`` of the unconstrained parameters); warmup and sampling are
one ``lax.scan`` over iterations whose body ``vmap``-s the kernel's step
over chains. The schedule is computed in NumPy and scanned as ``xs`` (an
:class:`~core_ppl.infer.mcmc.kernel.Iteration` of arrays); a kernel's
restart at the start of a warmup phase runs under ``lax.cond`` on that
chain-independent flag, outside the ``vmap``, so it costs nothing on other
iterations. Constrained samples and deterministic sites are computed in the
same program.

Chain methods: ``"vectorized"`` (one program, chains batched),
``"sequential"`` (the same program called with one chain at a time) and
``"parallel"`` (the vectorized program with the chain axis split over a
device mesh, :mod:`core_ppl.infer.sharding`). ``data_devices`` splits the
model's data rows over devices in the same way, for any chain method.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from core_ppl.diagnostics import print_summary as _print_summary
from core_ppl.infer import progress, sharding
from core_ppl.infer.mcmc.kernel import (
    MAX_INIT_TRIES,
    Iteration,
    MCMCKernel,
    Target,
)
from core_ppl.infer.util import (
    merge_model_args,
    potential_energy,
    raise_no_valid_initial_point,
    split_model_args,
)
from core_ppl.jit import jit

__all__ = ["MCMC", "MCMCState", "RunConfig"]

_CHAIN_METHODS = ("vectorized", "parallel", "sequential")

class MCMCState(NamedTuple):
    """Where sampling stopped; assign it to ``MCMC.post_warmup_state`` to
    continue without warmup.

    Leaves have a leading chain axis when ``num_chains > 1`` (NumPyro's
    convention). Fields a kernel does not have (e.g. a step size) are None.

    z : dict
        Unconstrained parameter values.
    potential_energy : array
        Potential energy at ``z``.
    z_grad : dict
        Gradient of the potential energy.
    step_size : array
        Adapted step size.
    inverse_mass_matrix : array
        Adapted inverse mass matrix.
    rng_key : array
        A fresh key to continue from.
    kernel_state : NamedTuple
        The kernel's own state, from which a continued run starts.
    """

    z: Any
    potential_energy: jax.Array | None
    z_grad: Any
    step_size: jax.Array | None
    inverse_mass_matrix: jax.Array | None
    rng_key: jax.Array
    kernel_state: Any = None


class RunConfig(NamedTuple):
    """Static (hashable) description of a compiled run.

    kernel : MCMCKernel
        The sampler; kernels that compare equal build the same program.
    model_static : StaticArgs or None
        Non-array model arguments (see ``core_ppl.infer.util.split_model_args``).
    num_warmup, num_samples, thinning : int
    postprocess_fn : callable or None
        The user's ``z -> samples`` map (``MCMC(postprocess_fn=...)``); None
        for the kernel's own.
    """

    kernel: MCMCKernel
    model_static: Any
    num_warmup: int
    num_samples: int
    thinning: int
    postprocess_fn: Callable | None = None


class _ChainInputs(NamedTuple):
    """Traced per-chain inputs (leading chain axis).

    ``position`` is None when the run searches the starting point (the
    kernel's ``initial_position``, inside the run: that saves compiling a
    program of its own); ``state`` is the kernel state a continued run
    starts from, else None.
    """

    rng_key: jax.Array
    position: Any
    state: Any


class _RunOutputs(NamedTuple):
    samples: Any
    fields: Any
    last_state: MCMCState
    initial_position: Any
    init_is_valid: jax.Array


class _SharedInputs(NamedTuple):
    """Traced inputs common to all chains."""

    params: Any  # the kernel's parameters()
    progress_token: jax.Array | None  # None: no bar, no host callback


# --- progress bar ----------------------------------------------------------------


def _warmup_or_sample(num_warmup):
    """``on_report`` of the bar: name the phase the run is in."""

    def on_report(bar, done):
        bar.set_description("sample" if done > num_warmup else "warmup", False)

    return on_report


# --- the compiled run ---------------------------------------------------------


def _over_chains(fn, in_axes=0):
    """``jax.vmap`` over the leading chain axis, or, for a single chain, a plain
    call on the squeezed inputs: unbatched while-loops need no ``select`` on
    every carried value, which makes one-chain programs faster to compile and
    to run."""
    batched = jax.vmap(fn, in_axes)

    def call(*args):
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        sizes = {
            jnp.shape(leaf)[0]
            for arg, axis in zip(args, axes)
            if axis is not None
            for leaf in jax.tree.leaves(arg)
        }
        if sizes != {1}:
            return batched(*args)
        squeezed = [
            arg if axis is None else jax.tree.map(lambda x: x[0], arg)
            for arg, axis in zip(args, axes)
        ]
        return jax.tree.map(lambda x: jnp.expand_dims(x, 0), fn(*squeezed))

    return call


def _target(config, model_arrays):
    kernel = config.kernel
    if kernel.model is None:
        return Target(None, (), {}, kernel.potential_fn)
    model_args, model_kwargs = merge_model_args(model_arrays, config.model_static)
    return Target(
        model=kernel.model,
        model_args=model_args,
        model_kwargs=model_kwargs,
        potential_fn=partial(potential_energy, kernel.model, model_args, model_kwargs),
    )


def _schedule(config):
    """The run's :class:`Iteration` entries, computed in NumPy (scanned as xs).

    The kernel's warmup schedule, padded with the sampling iterations;
    ``slot`` is the index of the kept draw an iteration produces, or -1.
    """
    num_warmup, num_samples = config.num_warmup, config.num_samples
    total = num_warmup + num_samples
    warmup = config.kernel.warmup_schedule(num_warmup)
    pad = np.zeros(num_samples, bool)
    iteration = np.arange(total, dtype=np.int32)
    slot = np.full(total, -1, np.int32)
    num_kept = num_samples // config.thinning
    slot[num_warmup + config.thinning * np.arange(1, num_kept + 1) - 1] = np.arange(
        num_kept
    )
    return Iteration(
        iteration=iteration,
        is_warmup=iteration < num_warmup,
        is_restart=np.concatenate([np.asarray(warmup.is_restart, bool), pad]),
        in_window=np.concatenate([np.asarray(warmup.in_window, bool), pad]),
        is_last_warmup=iteration == num_warmup - 1,
        slot=slot,
    )


def _record(buffers, algorithm, kernel, states, infos, slot):
    positions, fields = buffers
    new_fields = _over_chains(algorithm.fields)(states, infos)
    positions = positions.at[:, slot].set(kernel.get_sample(states))
    fields = jax.tree.map(lambda b, x: b.at[:, slot].set(x), fields, new_fields)
    return positions, fields


def _scan_iterations(config, algorithm, logdensity_fn, states, shared, iteration_keys):
    """Warmup and sampling as ONE scan, so the kernel is compiled once.

    ``iteration_keys`` has shape ``(iterations, chains, 2, key)``: the step's
    and the restart's key of every iteration, split before the loop in one
    call (each ``jax.random`` call site costs compile time). A restart runs
    under ``lax.cond`` on the schedule, which is the same for every chain,
    so the cond is not batched and the restart costs nothing elsewhere. Kept
    draws are written into preallocated buffers (updated in place).
    """
    kernel = config.kernel
    schedule = _schedule(config)
    has_restarts = algorithm.restart is not None and bool(schedule.is_restart.any())
    has_adapt = algorithm.adapt is not None and config.num_warmup > 0
    total = config.num_warmup + config.num_samples
    buffers = _draw_buffers(config, kernel.get_sample(states))
    step = _over_chains(algorithm.step, (0, 0, None, None))
    if has_restarts:
        restart = _over_chains(algorithm.restart, (0, 0, None, None))
    if has_adapt:
        adapt = _over_chains(algorithm.adapt, (0, 0, None))

    def one_iteration(carry, xs):
        states, buffers = carry
        it, step_keys = xs
        if has_restarts:
            states = jax.lax.cond(
                it.is_restart,
                lambda s: restart(step_keys[:, 1], s, logdensity_fn, it),
                lambda s: s,
                states,
            )
        states, infos = step(step_keys[:, 0], states, logdensity_fn, it)
        if has_adapt:
            states = jax.lax.cond(
                it.is_warmup, lambda s: adapt(s, infos, it), lambda s: s, states
            )
        buffers = jax.lax.cond(
            it.slot >= 0,
            lambda b: _record(b, algorithm, kernel, states, infos, it.slot),
            lambda b: b,
            buffers,
        )
        progress.report(shared.progress_token, it.iteration + 1, total)
        return (states, buffers), None

    xs = (jax.tree.map(jnp.asarray, schedule), iteration_keys)
    (states, buffers), _ = jax.lax.scan(one_iteration, (states, buffers), xs)
    return states, buffers


def _draw_buffers(config, position):
    """Zeroed per-chain buffers for the kept positions and per-draw fields.

    The fields' dtypes are declared by the kernel rather than found by
    tracing a step (``jax.eval_shape``), which would trace the whole kernel
    a second time.
    """
    num_chains, num_kept = position.shape[0], config.num_samples // config.thinning
    dtype = position.dtype
    field_dtypes = config.kernel.field_dtypes(dtype)
    return (
        jnp.zeros((num_chains, num_kept) + position.shape[1:], dtype),
        {
            name: jnp.zeros((num_chains, num_kept), field_dtype)
            for name, field_dtype in field_dtypes.items()
        },
    )


def _postprocess(config, target, unravel, positions):
    params = jax.vmap(jax.vmap(unravel))(positions)
    postprocess = config.postprocess_fn or config.kernel.postprocess_fn(
        target.model_args, target.model_kwargs
    )
    return jax.vmap(jax.vmap(postprocess))(params)


def _initial_positions(config, chains, target, init_keys):
    """The chains' starting points: given, or found by the kernel inside
    the run (see ``MCMCKernel.initial_position``).

    Returns ``(position, is_valid, param_info)``; ``param_info`` (potential
    and gradient at the found points) is None for given points.
    """
    if chains.position is not None:
        num_chains = chains.rng_key.shape[0]
        return chains.position, jnp.ones((num_chains,), bool), None

    def search(key):
        return config.kernel.initial_position(key, target)

    return _over_chains(search)(init_keys)


def _initial_states(algorithm, chains, flat, logdensity_fn, param_info, init_keys):
    """The kernel states to start from: a continued run's, or new ones."""
    if chains.state is not None:
        return chains.state
    if param_info is not None:
        ravel = jax.vmap(lambda tree: ravel_pytree(tree)[0])
        param_info = param_info._replace(z=flat, z_grad=ravel(param_info.z_grad))
    init = _over_chains(algorithm.init, (0, 0, None, 0))
    return init(init_keys, flat, logdensity_fn, param_info)


def _last_state(algorithm, kernel, states, unravel, rng_key):
    summary = {}
    if algorithm.summary is not None:
        summary = _over_chains(algorithm.summary)(states)
    if summary.get("z_grad") is not None:
        summary["z_grad"] = jax.vmap(unravel)(summary["z_grad"])
    return MCMCState(
        z=jax.vmap(unravel)(kernel.get_sample(states)),
        potential_energy=summary.get("potential_energy"),
        z_grad=summary.get("z_grad"),
        step_size=summary.get("step_size"),
        inverse_mass_matrix=summary.get("inverse_mass_matrix"),
        rng_key=rng_key,
        kernel_state=states,
    )


def _run_chains(
    config: RunConfig, chains: _ChainInputs, shared: _SharedInputs, model_arrays
):
    """Init search, warmup and sampling for a batch of chains (traced once per
    config and shapes)."""
    total = config.num_warmup + config.num_samples
    # Per chain, in one split: two keys per iteration, one to continue from
    # and two to start (the init search's and the kernel init's).
    keys = jax.vmap(lambda key: jax.random.split(key, (total + 2, 2)))(
        chains.rng_key
    )
    target = _target(config, model_arrays)
    position, init_is_valid, param_info = _initial_positions(
        config, chains, target, keys[:, total + 1, 0]
    )
    _, unravel = ravel_pytree(jax.tree.map(lambda x: x[0], position))
    flat = jax.vmap(lambda z: ravel_pytree(z)[0])(position)

    def logdensity_fn(flat_position):
        return -target.potential_fn(unravel(flat_position))

    algorithm = config.kernel.build(target, unravel, shared.params)
    states = _initial_states(
        algorithm, chains, flat, logdensity_fn, param_info, keys[:, total + 1, 1]
    )
    states, (positions, fields) = _scan_iterations(
        config,
        algorithm,
        logdensity_fn,
        states,
        shared,
        jnp.swapaxes(keys[:, :total], 0, 1),
    )
    last = _last_state(algorithm, config.kernel, states, unravel, keys[:, total, 0])
    samples = _postprocess(config, target, unravel, positions)
    return _RunOutputs(samples, fields, last, position, init_is_valid)


_run_jit = jit(_run_chains, static_argnums=0)


# --- the public driver -------------------------------------------------------------


def _chain_keys(rng_key, num_chains):
    """One raw ``uint32`` key per chain, shape ``(num_chains, 2)``."""
    rng_key = jnp.asarray(rng_key)
    if jnp.issubdtype(rng_key.dtype, jax.dtypes.prng_key):
        rng_key = jax.random.key_data(rng_key)
    if rng_key.ndim == 1:
        # One chain: no eager jax.random call, which would compile on a first fit.
        return (
            np.asarray(rng_key)[None]
            if num_chains == 1
            else jax.random.split(rng_key, num_chains)
        )
    if rng_key.ndim == 2 and rng_key.shape[0] == num_chains:
        return rng_key
    raise ValueError(
        f"rng_key must be one key or a batch of num_chains={num_chains} keys, "
        f"got shape {rng_key.shape}"
    )


def _check_int(name, value, minimum):
    if (
        not isinstance(value, (int, np.integer))
        or isinstance(value, bool)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _add_chain_axis(tree, num_chains, name):
    """Validate (or, for one chain, add) the leading chain axis of ``tree``."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"{name} has no parameters to sample")
    if num_chains == 1:
        return jax.tree.map(lambda x: jnp.asarray(x)[None], tree)
    for leaf in leaves:
        if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != num_chains:
            raise ValueError(
                f"{name} must have a leading axis of size num_chains={num_chains} "
                f"on every leaf, got a leaf of shape {jnp.shape(leaf)}"
            )
    return jax.tree.map(jnp.asarray, tree)


class MCMC:
    """Run an MCMC sampler: warmup, then sampling, for one or more chains.

    Parameters
    ----------
    sampler : MCMCKernel
        What to run: NUTS, HMC, HMCGibbs, DiscreteHMCGibbs or a user's
        kernel (see ``docs/kernels.md``).
    num_warmup : int
        Warmup (adaptation) iterations per chain; their draws are discarded.
    num_samples : int
        Post-warmup iterations per chain.
    num_chains : int, default=1
    thinning : int, default=1
        Keep every ``thinning``-th post-warmup draw
        (``num_samples // thinning`` draws per chain).
    chain_method : {"vectorized", "parallel", "sequential"}, default="vectorized"
        ``"vectorized"`` batches the chains in one program; ``"parallel"``
        runs the same program with the chains split in equal blocks over
        as many devices as divide ``num_chains`` (one chain per device when
        there are enough), falling back to vectorized with a warning when
        no block of chains can have a device of its own; ``"sequential"``
        runs the chains one after another with the same compiled program.
        Same keys, same draws (up to rounding) for all three.
    data_devices : int, optional
        Split the rows of the model's data over this many devices (None: no
        split). One compiled program for all devices: each evaluates the
        log density on its rows and the partial sums are added across
        devices inside the program. A layout, like ``chain_method``, so it
        sits beside it: the draws equal the one-device draws up to
        rounding. Rows are the array arguments whose leading axis is as
        long as that of the first array argument; their number must be a
        multiple of ``data_devices`` (see :mod:`core_ppl.infer.sharding`).
        With ``chain_method="parallel"``, chains and rows share a
        ``(chains, rows)`` mesh of ``chain devices * data_devices``
        devices.
    progress_bar : bool, default=True
        Show a tqdm bar fed from inside the compiled loop.
    jit_model_args : bool, default=False
        NumPyro's switch to compile the run as a function of the model's
        array arguments, so that new data of the same shapes reuse it. Our
        runs always do (array arguments are traced, the others static), so
        both values behave the same; it is accepted for NumPyro code.
    postprocess_fn : callable, optional
        ``z -> samples``: maps one draw's unconstrained values (a dict by
        site) to what ``get_samples`` returns, instead of the sampler's own
        map (constrained values and deterministic sites). It runs inside the
        compiled program, so it must be traceable by JAX; it is part of the
        program's cache key, so pass the same function object to reuse it.

    Attributes
    ----------
    post_warmup_state : MCMCState or None
        Set it (e.g. to ``last_state``) and the next ``run`` skips warmup and
        continues from that state with its step size and mass matrix.
    last_state : MCMCState
        State after the last draw of the latest run.

    Examples
    --------
    >>> mcmc = MCMC(NUTS(model), num_warmup=500, num_samples=500)  # doctest: +SKIP
    >>> mcmc.run(jax.random.PRNGKey(0), X, y=y)                    # doctest: +SKIP
    >>> mcmc.print_summary()                                       # doctest: +SKIP
    """

    def __init__(
        self,
        sampler,
        *,
        num_warmup,
        num_samples,
        num_chains=1,
        thinning=1,
        chain_method="vectorized",
        progress_bar=True,
        data_devices=None,
        jit_model_args=False,
        postprocess_fn=None,
    ):
        if not isinstance(sampler, MCMCKernel):
            raise TypeError(
                "sampler must be an MCMCKernel (e.g. NUTS or HMC), got "
                f"{type(sampler).__name__}"
            )
        if chain_method not in _CHAIN_METHODS:
            raise ValueError(
                f"chain_method must be one of {_CHAIN_METHODS}, got {chain_method!r}"
            )
        self.sampler = sampler
        self.num_warmup = _check_int("num_warmup", num_warmup, 0)
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.num_chains = _check_int("num_chains", num_chains, 1)
        self.thinning = _check_int("thinning", thinning, 1)
        if self.thinning > self.num_samples:
            raise ValueError(
                f"thinning={thinning} keeps no draw of num_samples={num_samples}"
            )
        self.chain_method = chain_method
        self.data_devices = sharding.check_num_devices("data_devices", data_devices)
        self.progress_bar = bool(progress_bar)
        if not isinstance(jit_model_args, bool):
            raise TypeError(
                f"jit_model_args must be a bool, got {type(jit_model_args).__name__}"
            )
        self.jit_model_args = jit_model_args
        if postprocess_fn is not None and not callable(postprocess_fn):
            raise TypeError(
                "postprocess_fn must be a callable z -> samples, got "
                f"{type(postprocess_fn).__name__}"
            )
        self.postprocess_fn = postprocess_fn
        self.post_warmup_state = None
        self._last_state = None
        self._samples = None
        self._fields = None
        self._extra_fields = ()

    @property
    def last_state(self):
        """The :class:`MCMCState` after the latest run's last draw."""
        return self._last_state

    # --- run ---------------------------------------------------------------------

    def run(self, rng_key, *args, extra_fields=(), init_params=None, **kwargs):
        """Run warmup (unless ``post_warmup_state`` is set) and sampling.

        Parameters
        ----------
        rng_key : PRNG key
            One key, or ``num_chains`` keys stacked.
        *args, **kwargs
            The model's arguments. Arrays are traced (new data of the same
            shapes reuses the compiled program); other values are static.
        extra_fields : tuple of str, default=()
            Per-draw fields to keep besides the kernel's ``default_fields``
            (``"diverging"`` for HMC and NUTS): any the kernel records, for
            HMC ``num_steps, accept_prob, potential_energy, energy,
            step_size`` and, for NUTS, also ``tree_depth``.
        init_params : pytree, optional
            Initial unconstrained parameters (leading chain axis when
            ``num_chains > 1``). Required with ``potential_fn``.
        """
        self._extra_fields = self._check_extra_fields(extra_fields)
        config, chains, shared, model_arrays = self._prepare(
            rng_key, args, kwargs, init_params
        )
        outputs = self._dispatch(config, chains, shared, model_arrays)
        if chains.position is None:
            self._check_initial_positions(outputs, args, kwargs)
        self._samples = outputs.samples
        self._fields = outputs.fields
        self._store_last_state(outputs.last_state)

    def _check_initial_positions(self, outputs, args, kwargs):
        """Raise, naming the offending sites, if a chain found no finite
        starting point (its run is then meaningless)."""
        is_valid = np.asarray(outputs.init_is_valid)
        if is_valid.all():
            return
        first_bad = int(np.argmin(is_valid))
        z = jax.tree.map(lambda x: x[first_bad], outputs.initial_position)
        raise_no_valid_initial_point(
            self.sampler.model, args, kwargs, z, MAX_INIT_TRIES
        )

    def _check_extra_fields(self, extra_fields):
        if isinstance(extra_fields, str):
            extra_fields = (extra_fields,)
        available = tuple(self.sampler.field_dtypes(jnp.float32))
        for name in extra_fields:
            if name not in available:
                raise ValueError(
                    f"unknown extra field {name!r}; available: {', '.join(available)}"
                )
        return tuple(extra_fields)

    def _prepare(self, rng_key, args, kwargs, init_params):
        # Host-side values are NumPy arrays: eager JAX operations would each
        # compile a small program on the first fit.
        sampler, num_chains = self.sampler, self.num_chains
        model_arrays, model_static = [], None
        if sampler.model is not None:
            model_arrays, model_static = split_model_args(args, kwargs)
        elif args or kwargs:
            raise ValueError(
                "model arguments were given but the sampler has a potential_fn; "
                "close the data over the potential function instead"
            )
        state = self.post_warmup_state
        position, kernel_state = self._initial_position(init_params, state)
        config = RunConfig(
            kernel=sampler,
            model_static=model_static,
            num_warmup=0 if state is not None else self.num_warmup,
            num_samples=self.num_samples,
            thinning=self.thinning,
            postprocess_fn=self.postprocess_fn,
        )
        chains = _ChainInputs(_chain_keys(rng_key, num_chains), position, kernel_state)
        dtype = jax.dtypes.canonicalize_dtype(np.float64)
        shared = _SharedInputs(
            params=sampler.parameters(dtype), progress_token=progress.NO_BAR
        )
        return config, chains, shared, model_arrays

    def _initial_position(self, init_params, state):
        """``(position, kernel_state)``: given starting points (None for the
        run to search them), and the kernel state to continue from."""
        num_chains = self.num_chains
        if state is not None:
            if not isinstance(state, MCMCState) or state.kernel_state is None:
                raise TypeError(
                    "post_warmup_state must be an MCMCState from last_state"
                )
            return (
                _add_chain_axis(state.z, num_chains, "post_warmup_state.z"),
                _add_chain_axis(
                    state.kernel_state, num_chains, "post_warmup_state.kernel_state"
                ),
            )
        if init_params is not None:
            return _add_chain_axis(init_params, num_chains, "init_params"), None
        if self.sampler.model is None:
            raise ValueError("init_params is required when sampling a potential_fn")
        return None, None

    def _chain_layout(self):
        """The chain method to run, and the devices the chains split over:
        the most devices (free of ``data_devices``) dividing ``num_chains``."""
        num_chains = self.num_chains
        if self.chain_method != "parallel":
            return self.chain_method, 1
        free = jax.device_count() // (self.data_devices or 1)
        chain_devices = max(
            d for d in range(1, min(free, num_chains) + 1) if num_chains % d == 0
        )
        if num_chains > 1 and chain_devices == 1:
            warnings.warn(
                f"chain_method='parallel' needs one device per chain (or per equal "
                f"block of chains) but there are {free} device(s) free for "
                f"{num_chains} chains; running the chains vectorized instead",
                UserWarning,
                stacklevel=4,
            )
            return "vectorized", 1
        return "parallel", chain_devices

    def _dispatch(self, config, chains, shared, model_arrays):
        method, chain_devices = self._chain_layout()
        if (self.data_devices or 1) * chain_devices > 1:
            # Laid out on the mesh, the arrays make jit compile one program
            # for all its devices (GSPMD): the sums over rows and chains
            # become all-reduces inside that program. One device needs no
            # layout (and keeps the on-disk program cache).
            mesh = sharding.device_mesh(self.data_devices or 1, chain_devices)
            model_arrays = sharding.shard_rows(model_arrays, mesh)
            if method == "parallel":
                chains = sharding.shard_chains(chains, mesh)
        total = config.num_warmup + config.num_samples
        if method == "sequential":
            return self._run_sequential(config, chains, shared, model_arrays, total)
        with progress.ProgressBar(
            self.progress_bar,
            total,
            f"{self.num_chains} chain(s)",
            _warmup_or_sample(config.num_warmup),
        ) as bar:
            shared = shared._replace(progress_token=bar.traced_token())
            return _run_jit(config, chains, shared, model_arrays)

    def _run_sequential(self, config, chains, shared, model_arrays, total):
        outputs = []
        for c in range(self.num_chains):
            one = jax.tree.map(lambda x, c=c: x[c : c + 1], chains)
            with progress.ProgressBar(
                self.progress_bar,
                total,
                f"chain {c + 1}/{self.num_chains}",
                _warmup_or_sample(config.num_warmup),
            ) as bar:
                token = bar.traced_token()
                out = _run_jit(
                    config, one, shared._replace(progress_token=token), model_arrays
                )
                outputs.append(jax.block_until_ready(out))
        return jax.tree.map(lambda *xs: jnp.concatenate(xs), *outputs)

    def _store_last_state(self, last):
        step_size = np.asarray(1.0 if last.step_size is None else last.step_size)
        if not np.all(np.isfinite(step_size)) or np.any(step_size > 1e7):
            warnings.warn(
                f"adapted step size {step_size} is not finite or exceeds 1e7: the "
                "posterior may be improper",
                UserWarning,
                stacklevel=3,
            )
        if self.num_chains == 1:
            last = jax.tree.map(lambda x: x[0], last)
        self._last_state = last

    # --- results -------------------------------------------------------------------

    def _require_run(self):
        if self._samples is None:
            raise RuntimeError("no samples yet: call run() first")

    def get_samples(self, group_by_chain=False):
        """Constrained draws (and deterministic sites) by site name.

        Parameters
        ----------
        group_by_chain : bool, default=False
            Shape ``(num_chains, num_draws, ...)`` instead of
            ``(num_chains * num_draws, ...)``.
        """
        self._require_run()
        return self._group(self._samples, group_by_chain)

    def get_extra_fields(self, group_by_chain=False):
        """Per-draw statistics: the kernel's ``default_fields`` (``diverging``
        for HMC and NUTS) and the requested ``extra_fields``."""
        self._require_run()
        defaults = tuple(self.sampler.default_fields)
        names = defaults + tuple(f for f in self._extra_fields if f not in defaults)
        return self._group({n: self._fields[n] for n in names}, group_by_chain)

    @staticmethod
    def _group(tree, group_by_chain):
        if group_by_chain:
            return tree
        return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)

    def print_summary(self, prob=0.9, exclude_deterministic=True):
        """Print mean, sd, median, HPDI, ESS and R-hat of every site, and the
        number of divergent transitions."""
        self._require_run()
        samples = self._samples
        if exclude_deterministic and self.sampler.model is not None:
            latent = self._last_state.z
            samples = {k: v for k, v in samples.items() if k in latent}
        _print_summary(jax.device_get(samples), prob=prob, group_by_chain=True)
        if "diverging" in self._fields:
            diverging = np.asarray(self._fields["diverging"])
            print(f"Number of divergences: {int(diverging.sum())}")

"""The MCMC driver: warmup and sampling compiled once, for all chains.

:class:`MCMC` turns a sampler description (:class:`~core_ppl.infer.NUTS` or
:class:`~core_ppl.infer.HMC`) into one call of a module-level ``jax.jit``
function, :func:`_run_chains`, whose *static* argument is a hashable
:class:`RunConfig` (model function, algorithm settings, numbers of
iterations) and whose *traced* arguments are the PRNG keys, the initial
positions, the tunables (step size, mass matrix, target acceptance) and the
model's array arguments. A new ``MCMC`` object, or new data of the same
shapes, therefore reuses the compiled program.

Inside, positions are flat vectors (``ravel_pytree`` of the unconstrained
parameters); warmup and sampling are ``lax.scan`` loops over iterations whose
body ``vmap``-s the transition over chains. The warmup schedule is computed
in NumPy and scanned as ``xs``; the metric update at the end of a window runs
under ``lax.cond`` on that chain-independent flag, outside the ``vmap``, so
it costs nothing on other iterations. Constrained samples and deterministic
sites are computed in the same program.

Chain methods: ``"vectorized"`` (one program, chains batched),
``"sequential"`` (the same program called with one chain at a time) and
``"parallel"`` (the vectorized program with the chain axis split over a
device mesh, :mod:`core_ppl.infer.sharding`). ``data_devices`` splits the
model's data rows over devices in the same way, for any chain method.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from core_ppl.diagnostics import print_summary as _print_summary
from core_ppl.infer import progress, sharding
from core_ppl.infer.mcmc import adaptation, hmc, nuts
from core_ppl.infer.mcmc.integrators import velocity_verlet
from core_ppl.infer.util import (
    constrain_fn,
    find_valid_initial_params,
    merge_model_args,
    potential_energy,
    raise_no_valid_initial_point,
    split_model_args,
)
from core_ppl.jit import jit

__all__ = ["MCMC", "MCMCState", "RunConfig"]

_CHAIN_METHODS = ("vectorized", "parallel", "sequential")
_COMMON_FIELDS = (
    "num_steps",
    "diverging",
    "accept_prob",
    "potential_energy",
    "energy",
    "step_size",
)

# Incremented each time JAX traces the run (i.e. compiles it); read by tests.
# Under a lock: runs are traced in several threads at once (GridSearchCV under
# joblib's threading backend), and ``+=`` on a dict entry is not atomic.
_TRACE_COUNT = {"run": 0}
_TRACE_COUNT_LOCK = threading.Lock()
# Stan's number of attempts at a finite starting point.
MAX_INIT_TRIES = 100


class MCMCState(NamedTuple):
    """Where sampling stopped; assign it to ``MCMC.post_warmup_state`` to
    continue without warmup.

    Leaves have a leading chain axis when ``num_chains > 1`` (NumPyro's
    convention).

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
    """

    z: Any
    potential_energy: jax.Array
    z_grad: Any
    step_size: jax.Array
    inverse_mass_matrix: jax.Array
    rng_key: jax.Array


class RunConfig(NamedTuple):
    """Static (hashable) description of a compiled run.

    spec : AlgorithmSpec
    model : callable or None
    potential_fn : callable or None
    model_static : StaticArgs or None
        Non-array model arguments (see ``core_ppl.infer.util.split_model_args``).
    num_warmup, num_samples, thinning : int
    init_strategy : callable or None
        Set when the run itself searches the model's starting point (no
        ``init_params`` and no ``post_warmup_state``). Searching inside the
        run instead of in a program of its own saves one compilation.
    """

    spec: hmc.AlgorithmSpec
    model: Callable | None
    potential_fn: Callable | None
    model_static: Any
    num_warmup: int
    num_samples: int
    thinning: int
    init_strategy: Callable | None


class _ChainInputs(NamedTuple):
    """Traced per-chain inputs (leading chain axis).

    ``position`` is None when the run searches the starting point;
    ``inverse_mass_matrix`` is None for the identity (its size is only known
    once the model is traced).
    """

    rng_key: jax.Array
    position: Any
    step_size: jax.Array
    inverse_mass_matrix: jax.Array | None


class _RunOutputs(NamedTuple):
    samples: Any
    fields: Any
    last_state: MCMCState
    initial_position: Any
    init_is_valid: jax.Array


class _SharedInputs(NamedTuple):
    """Traced inputs common to all chains."""

    target_accept_prob: jax.Array
    trajectory_length: jax.Array
    num_steps: jax.Array
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


def _logdensity_fn(config, model_arrays, unravel):
    if config.model is not None:
        model_args, model_kwargs = merge_model_args(model_arrays, config.model_static)

        def potential(params):
            return potential_energy(config.model, model_args, model_kwargs, params)
    else:
        potential = config.potential_fn

    def logdensity_fn(flat_position):
        return -potential(unravel(flat_position))

    return logdensity_fn


def _make_transition(spec, logdensity_fn, shared):
    """Per-chain ``transition(key, state, step_size, inverse_mass_matrix)``."""
    if spec.algorithm == "nuts":
        kernel = nuts.build_kernel(velocity_verlet)

        def transition(rng_key, state, step_size, inverse_mass_matrix):
            return kernel(
                rng_key,
                state,
                logdensity_fn,
                step_size,
                inverse_mass_matrix,
                spec.max_tree_depth,
            )
    else:
        kernel = hmc.build_kernel(velocity_verlet)

        def transition(rng_key, state, step_size, inverse_mass_matrix):
            num_steps = (
                shared.num_steps
                if spec.fixed_num_steps
                else hmc.num_steps_for(shared.trajectory_length, step_size)
            )
            return kernel(
                rng_key, state, logdensity_fn, step_size, inverse_mass_matrix, num_steps
            )

    return transition


def _draw_fields(state, info, step_size):
    fields = {
        "num_steps": info.num_integration_steps,
        "diverging": info.is_divergent,
        "accept_prob": info.acceptance_rate,
        "potential_energy": -state.logdensity,
        "energy": info.energy,
        "step_size": step_size,
    }
    if hasattr(info, "tree_depth"):
        fields["tree_depth"] = info.tree_depth
    return fields


def _schedule(config):
    """Per-iteration flags of the whole run, computed in NumPy (scanned as xs).

    Returns ``(is_restart, in_window, is_last_warmup, slot)`` over
    ``num_warmup + num_samples`` iterations: ``is_restart`` marks the
    iterations that begin with a step-size restart (the first warmup
    iteration, and the one after each slow window, where the new metric is
    installed); ``slot`` is the index of the kept draw an iteration produces,
    or -1.
    """
    spec, num_warmup = config.spec, config.num_warmup
    total = num_warmup + config.num_samples
    in_window, is_restart = np.zeros(total, bool), np.zeros(total, bool)
    if spec.adapt_mass_matrix:
        in_window[:num_warmup], is_window_end = adaptation.build_schedule(num_warmup)
        is_restart[1:num_warmup] = is_window_end[:-1]
    is_restart[0] = spec.adapt_step_size and num_warmup > 0
    is_last_warmup = np.arange(total) == num_warmup - 1
    slot = np.full(total, -1, np.int32)
    num_kept = config.num_samples // config.thinning
    slot[num_warmup + config.thinning * np.arange(1, num_kept + 1) - 1] = np.arange(
        num_kept
    )
    return is_restart, in_window, is_last_warmup, slot


def _restart(warm, states, xs, key, restart, logdensity_fn):
    """Begin a step-size phase (and install a new metric) for all chains."""
    i, is_restart = xs[0], xs[1]
    # The schedule is the same for every chain, so this cond is not batched
    # and the heuristic runs only where a phase begins.
    return jax.lax.cond(
        is_restart,
        lambda w: _over_chains(restart, (0, 0, 0, None, None))(
            key, w, states, logdensity_fn, i == 0
        ),
        lambda w: w,
        warm,
    )


def _adapt(warm, states, infos, xs, update, final):
    """Learn from one warmup transition, for all chains."""
    in_window, is_last_warmup = xs[2], xs[3]
    warm = _over_chains(update, (0, 0, 0, None))(
        warm, states.position, infos.acceptance_rate, in_window
    )
    final_step_size, _ = _over_chains(final)(warm)
    return warm._replace(
        step_size=jnp.where(is_last_warmup, final_step_size, warm.step_size)
    )


def _record(buffers, states, infos, step_size, slot):
    positions, fields = buffers
    new_fields = _over_chains(_draw_fields)(states, infos, step_size)
    positions = positions.at[:, slot].set(states.position)
    fields = jax.tree.map(lambda b, x: b.at[:, slot].set(x), fields, new_fields)
    return positions, fields


def _scan_iterations(
    config, transition, logdensity_fn, states, chains, shared, iteration_keys
):
    """Warmup and sampling as ONE scan, so the kernel is compiled once.

    ``iteration_keys`` has shape ``(iterations, chains, 2, key)``: the
    transition's and the restart's key of every iteration, split before the
    loop in one call (each ``jax.random`` call site costs compile time).
    Kept draws are written into preallocated buffers (updated in place).
    """
    spec = config.spec
    init, update, restart, final = adaptation.warmup_adaptation(
        velocity_verlet,
        not spec.dense_mass,
        shared.target_accept_prob,
        spec.adapt_step_size,
        spec.adapt_mass_matrix,
    )
    warm = _over_chains(init)(
        chains.step_size, chains.inverse_mass_matrix, states.position
    )
    schedule = _schedule(config)
    has_restarts = bool(schedule[0].any())
    total = config.num_warmup + config.num_samples
    buffers = _draw_buffers(config, states)

    def one_iteration(carry, xs):
        states, warm, buffers = carry
        i, slot, step_keys = xs[0], xs[-2], xs[-1]
        if has_restarts:
            warm = _restart(warm, states, xs, step_keys[:, 1], restart, logdensity_fn)
        states, infos = _over_chains(transition)(
            step_keys[:, 0], states, warm.step_size, warm.inverse_mass_matrix
        )
        if config.num_warmup > 0:
            warm = jax.lax.cond(
                i < config.num_warmup,
                lambda w: _adapt(w, states, infos, xs, update, final),
                lambda w: w,
                warm,
            )
        buffers = jax.lax.cond(
            slot >= 0,
            lambda b: _record(b, states, infos, warm.step_size, slot),
            lambda b: b,
            buffers,
        )
        progress.report(shared.progress_token, i + 1, total)
        return (states, warm, buffers), None

    xs = (
        (jnp.arange(total),)
        + tuple(jnp.asarray(x) for x in schedule)
        + (iteration_keys,)
    )
    (states, warm, buffers), _ = jax.lax.scan(
        one_iteration, (states, warm, buffers), xs
    )
    return states, warm.step_size, warm.inverse_mass_matrix, buffers


def _draw_buffers(config, states):
    """Zeroed per-chain buffers for the kept positions and per-draw fields.

    The fields' dtypes are listed rather than found by tracing a transition
    (``jax.eval_shape``), which would trace the whole kernel a second time.
    """
    position = states.position
    num_chains, num_kept = position.shape[0], config.num_samples // config.thinning
    dtype = position.dtype
    field_dtypes = {
        "num_steps": jnp.int32,
        "diverging": jnp.bool_,
        "accept_prob": dtype,
        "potential_energy": dtype,
        "energy": dtype,
        "step_size": dtype,
    }
    if config.spec.algorithm == "nuts":
        field_dtypes["tree_depth"] = jnp.int32
    return (
        jnp.zeros((num_chains, num_kept) + position.shape[1:], dtype),
        {
            name: jnp.zeros((num_chains, num_kept), field_dtype)
            for name, field_dtype in field_dtypes.items()
        },
    )


def _postprocess(config, model_arrays, unravel, positions):
    params = jax.vmap(jax.vmap(unravel))(positions)
    if config.model is None:
        return params
    model_args, model_kwargs = merge_model_args(model_arrays, config.model_static)

    def constrain(z):
        return constrain_fn(
            config.model, model_args, model_kwargs, z, return_deterministic=True
        )

    return jax.vmap(jax.vmap(constrain))(params)


def _initial_positions(config, chains, model_arrays, init_keys):
    """The chains' starting points: given, or found by the run itself with
    Stan's retry loop (see ``core_ppl.infer.util.find_valid_initial_params``).

    Returns ``(position, is_valid, param_info)``; ``param_info`` (potential
    and gradient at the found points) is None for given points.
    """
    if config.init_strategy is None:
        num_chains = chains.rng_key.shape[0]
        return chains.position, jnp.ones((num_chains,), bool), None
    model_args, model_kwargs = merge_model_args(model_arrays, config.model_static)

    def search(key):
        return find_valid_initial_params(
            key,
            config.model,
            model_args,
            model_kwargs,
            init_strategy=config.init_strategy,
            max_tries=MAX_INIT_TRIES,
        )

    param_info, is_valid = _over_chains(search)(init_keys)
    return param_info.z, is_valid, param_info


def _check_tunables(config, chains, dim, dtype):
    """Cast the step sizes, and build or check the inverse mass matrices,
    now that the number of unconstrained parameters is known."""
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"parameters must be floating point, got dtype {dtype}")
    num_chains = chains.rng_key.shape[0]
    dense = config.spec.dense_mass
    shape = (dim, dim) if dense else (dim,)
    minv = chains.inverse_mass_matrix
    if minv is None:
        minv = jnp.eye(dim, dtype=dtype) if dense else jnp.ones(dim, dtype)
        minv = jnp.broadcast_to(minv, (num_chains,) + shape)
    elif minv.shape[1:] != shape:
        raise ValueError(
            f"inverse_mass_matrix must have shape {shape} for {dim} "
            f"unconstrained parameters (dense_mass={dense}), got {minv.shape[1:]}"
        )
    return chains.step_size.astype(dtype), minv.astype(dtype)


def _run_chains(
    config: RunConfig, chains: _ChainInputs, shared: _SharedInputs, model_arrays
):
    """Init search, warmup and sampling for a batch of chains (traced once per
    config and shapes)."""
    with _TRACE_COUNT_LOCK:
        _TRACE_COUNT["run"] += 1
    total = config.num_warmup + config.num_samples
    # Per chain, in one split: two keys per iteration, one to continue from
    # and one for the init search.
    keys = jax.vmap(lambda key: jax.random.split(key, (total + 2, 2)))(
        chains.rng_key
    )
    position, init_is_valid, param_info = _initial_positions(
        config, chains, model_arrays, keys[:, total + 1, 0]
    )
    one_position = jax.tree.map(lambda x: x[0], position)
    one_flat, unravel = ravel_pytree(one_position)
    flat = jax.vmap(lambda z: ravel_pytree(z)[0])(position)
    step_size, inverse_mass_matrix = _check_tunables(
        config, chains, one_flat.shape[0], one_flat.dtype
    )
    chains = chains._replace(
        step_size=step_size, inverse_mass_matrix=inverse_mass_matrix
    )
    logdensity_fn = _logdensity_fn(config, model_arrays, unravel)
    transition = _make_transition(config.spec, logdensity_fn, shared)
    if param_info is None:
        states = _over_chains(hmc.init, (0, None))(flat, logdensity_fn)
    else:  # the search already evaluated the potential and its gradient
        states = hmc.HMCState(
            position=flat,
            logdensity=-param_info.potential_energy,
            logdensity_grad=-jax.vmap(lambda g: ravel_pytree(g)[0])(param_info.z_grad),
        )
    states, step_size, inverse_mass_matrix, (positions, fields) = _scan_iterations(
        config,
        transition,
        logdensity_fn,
        states,
        chains,
        shared,
        jnp.swapaxes(keys[:, :total], 0, 1),
    )
    last = MCMCState(
        z=jax.vmap(unravel)(states.position),
        potential_energy=-states.logdensity,
        z_grad=jax.vmap(unravel)(-states.logdensity_grad),
        step_size=step_size,
        inverse_mass_matrix=inverse_mass_matrix,
        rng_key=keys[:, total, 0],
    )
    samples = _postprocess(config, model_arrays, unravel, positions)
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
    sampler : NUTS or HMC
        What to run.
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
    ):
        if not isinstance(sampler, hmc.HMC):
            raise TypeError(
                f"sampler must be a NUTS or HMC instance, got {type(sampler).__name__}"
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
            Per-draw fields to keep besides ``"diverging"``: any of
            ``num_steps, accept_prob, potential_energy, energy, step_size``
            and, for NUTS, ``tree_depth``.
        init_params : pytree, optional
            Initial unconstrained parameters (leading chain axis when
            ``num_chains > 1``). Required with ``potential_fn``.
        """
        self._extra_fields = self._check_extra_fields(extra_fields)
        config, chains, shared, model_arrays = self._prepare(
            rng_key, args, kwargs, init_params
        )
        outputs = self._dispatch(config, chains, shared, model_arrays)
        if config.init_strategy is not None:
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
        available = _COMMON_FIELDS + (
            ("tree_depth",) if self.sampler._spec().algorithm == "nuts" else ()
        )
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
        position = self._initial_position(init_params, state)
        step_size, inverse_mass_matrix = self._initial_tunables(state)
        trajectory_length, num_steps = sampler._num_steps_settings()
        dtype = step_size.dtype
        config = RunConfig(
            spec=sampler._spec(),
            model=sampler.model,
            potential_fn=sampler.potential_fn,
            model_static=model_static,
            num_warmup=0 if state is not None else self.num_warmup,
            num_samples=self.num_samples,
            thinning=self.thinning,
            init_strategy=sampler.init_strategy if position is None else None,
        )
        chains = _ChainInputs(
            _chain_keys(rng_key, num_chains), position, step_size, inverse_mass_matrix
        )
        shared = _SharedInputs(
            target_accept_prob=np.asarray(sampler.target_accept_prob, dtype),
            trajectory_length=np.asarray(trajectory_length, dtype),
            num_steps=np.asarray(num_steps, np.int32),
            progress_token=progress.NO_BAR,
        )
        return config, chains, shared, model_arrays

    def _initial_position(self, init_params, state):
        """Given starting points, or None for the run to search them."""
        num_chains = self.num_chains
        if state is not None:
            if not isinstance(state, MCMCState):
                raise TypeError("post_warmup_state must be an MCMCState (last_state)")
            return _add_chain_axis(state.z, num_chains, "post_warmup_state.z")
        if init_params is not None:
            return _add_chain_axis(init_params, num_chains, "init_params")
        if self.sampler.model is None:
            raise ValueError("init_params is required when sampling a potential_fn")
        return None

    def _initial_tunables(self, state):
        """Step sizes and inverse mass matrices with a chain axis; the
        matrices are None for the identity (built once the size is known)."""
        num_chains, sampler = self.num_chains, self.sampler
        if state is not None:
            dtype = jnp.result_type(*jax.tree.leaves(state.z))
            step_size = np.broadcast_to(np.asarray(state.step_size, dtype), (num_chains,))
            minv = jnp.asarray(state.inverse_mass_matrix, dtype)
            return step_size, (minv[None] if num_chains == 1 else minv)
        dtype = jax.dtypes.canonicalize_dtype(np.float64)
        step_size = np.full((num_chains,), sampler.step_size, dtype)
        if sampler.inverse_mass_matrix is None:
            return step_size, None
        minv = np.asarray(sampler.inverse_mass_matrix, dtype)
        return step_size, np.broadcast_to(minv, (num_chains,) + minv.shape)

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
        step_size = np.asarray(last.step_size)
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
        """Per-draw statistics: ``diverging`` and the requested ``extra_fields``."""
        self._require_run()
        names = ("diverging",) + tuple(
            f for f in self._extra_fields if f != "diverging"
        )
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
        diverging = np.asarray(self._fields["diverging"])
        print(f"Number of divergences: {int(diverging.sum())}")

"""The one bridge from a model to arrays.

Inference algorithms never look inside a model; they call the functions here:

* :func:`log_density` runs the model with given (constrained) site values and
  sums the log probabilities of its sample sites, honouring ``scale`` and
  ``mask``.
* :func:`potential_energy` is the negative log density over *unconstrained*
  latent values, including the log-Jacobians of the bijections from
  unconstrained space (``biject_to``), the target of HMC/NUTS (NumPyro paper,
  section 3).
* :func:`constrain_fn` maps unconstrained values back to the model's support.
* :func:`initialize_model` finds a finite starting point and packages the
  above as closures.
* :func:`log_likelihood` evaluates the observed sites' log densities per
  posterior draw (NumPyro's helper, e.g. for WAIC or PSIS-LOO).

:class:`~core_ppl.infer.predictive.Predictive` can be imported from here too,
as from NumPyro's ``numpyro.infer.util``.

All of them are pure functions of ``(model, model_args, model_kwargs,
params)`` so that a jitted sampler can take the data as traced arguments and
keep ``model`` static: the compiled program is then reused for new data of the
same shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from core_ppl.distributions.transforms import biject_to
from core_ppl.handlers import seed, substitute, trace
from core_ppl.infer.initialization import init_to_uniform, uniform_radius
from core_ppl.jit import jit

__all__ = [
    "ModelInfo",
    "ParamInfo",
    "Predictive",
    "constrain_fn",
    "find_initial_params",
    "find_valid_initial_params",
    "initialize_model",
    "log_density",
    "log_likelihood",
    "merge_model_args",
    "potential_energy",
    "raise_no_valid_initial_point",
    "split_model_args",
    "unconstrain_fn",
]


class ParamInfo(NamedTuple):
    """A starting point of inference.

    z : dict
        Unconstrained values of the latent sites.
    potential_energy : array
        The potential energy at ``z``.
    z_grad : dict
        Its gradient, same structure as ``z``.
    """

    z: dict
    potential_energy: jax.Array
    z_grad: dict


class ModelInfo(NamedTuple):
    """What :func:`initialize_model` returns.

    param_info : ParamInfo
        The initial point.
    potential_fn : callable
        ``potential_fn(z) -> scalar``, closed over the model's arguments.
    postprocess_fn : callable
        ``postprocess_fn(z) -> dict`` of constrained values and deterministic
        sites.
    model_trace : dict
        A trace of the model at the initial point.
    """

    param_info: ParamInfo
    potential_fn: Callable
    postprocess_fn: Callable
    model_trace: dict


# --- log densities -------------------------------------------------------------


def _site_log_prob(site, log_det=None):
    log_prob = site["fn"].log_prob(site["value"])
    if log_det is not None:
        log_prob = log_prob + log_det
    if site["scale"] is not None:
        log_prob = site["scale"] * log_prob
    return jnp.sum(log_prob)


def _trace_log_joint(model_trace, log_dets=None):
    log_dets = {} if log_dets is None else log_dets
    log_joint = jnp.zeros(())
    for name, site in model_trace.items():
        if site["type"] == "sample":
            log_joint = log_joint + _site_log_prob(site, log_dets.get(name))
    return log_joint


def log_density(model, model_args, model_kwargs, params):
    """Log joint density of ``model`` with sites set to ``params``.

    Parameters
    ----------
    model : callable
    model_args : tuple
    model_kwargs : dict
    params : dict
        Constrained values of (some) sample or param sites, by name.

    Returns
    -------
    log_joint : array, shape ()
    model_trace : dict
        The trace of the run, e.g. to read the values of other sites.
    """
    model_kwargs = {} if model_kwargs is None else model_kwargs
    model_trace = trace(substitute(model, data=params)).get_trace(
        *model_args, **model_kwargs
    )
    return _trace_log_joint(model_trace), model_trace


def _constrained_trace(model, model_args, model_kwargs, params):
    """Run the model with latent sites set to ``biject_to(support)(params)``.

    Returns the trace and the log-Jacobian of each transformed site.
    """
    model_kwargs = {} if model_kwargs is None else model_kwargs

    def is_transformed(site):
        return (
            site["type"] == "sample"
            and not site["is_observed"]
            and site["name"] in params
        )

    def constrain_site(site):
        if not is_transformed(site):
            return None
        return biject_to(site["fn"].support)(params[site["name"]])

    model_trace = trace(substitute(model, substitute_fn=constrain_site)).get_trace(
        *model_args, **model_kwargs
    )
    # The log-Jacobians are read off the trace rather than saved by
    # constrain_site: inside contrib.control_flow.scan, constrain_site runs
    # once per step inside a traced loop body, while the trace holds each
    # site once, for the whole series.
    log_dets = {
        name: biject_to(site["fn"].support).log_abs_det_jacobian(
            params[name], site["value"]
        )
        for name, site in model_trace.items()
        if is_transformed(site)
    }
    return model_trace, log_dets


def potential_energy(model, model_args, model_kwargs, params):
    """Negative log joint over unconstrained latent ``params``, with the
    log-Jacobians of the transforms (so HMC samples the right density)."""
    model_trace, log_dets = _constrained_trace(model, model_args, model_kwargs, params)
    return -_trace_log_joint(model_trace, log_dets)


def constrain_fn(model, model_args, model_kwargs, params, return_deterministic=False):
    """Map unconstrained latent ``params`` to the model's support.

    With ``return_deterministic=True`` the values of ``deterministic`` sites
    are included.
    """
    model_trace, _ = _constrained_trace(model, model_args, model_kwargs, params)
    return {
        name: site["value"]
        for name, site in model_trace.items()
        if name in params or (return_deterministic and site["type"] == "deterministic")
    }


def unconstrain_fn(model, model_args, model_kwargs, params):
    """Map constrained latent ``params`` to unconstrained space."""
    model_kwargs = {} if model_kwargs is None else model_kwargs
    # Seeded so that latent sites missing from ``params`` can run.
    model_trace = trace(seed(substitute(model, data=params), rng_seed=0)).get_trace(
        *model_args, **model_kwargs
    )
    return {
        name: biject_to(model_trace[name]["fn"].support).inv(value)
        for name, value in params.items()
    }


# --- initialisation ------------------------------------------------------------


def _latent_sites(model_trace):
    return {
        name: site
        for name, site in model_trace.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def _init_point(rng_key, model, model_args, model_kwargs, init_strategy):
    """One candidate starting point, on the unconstrained space."""
    model_kwargs = {} if model_kwargs is None else model_kwargs
    seeded = substitute(seed(model, rng_seed=rng_key), substitute_fn=init_strategy)
    model_trace = trace(seeded).get_trace(*model_args, **model_kwargs)
    return {
        name: biject_to(site["fn"].support).inv(site["value"])
        for name, site in _latent_sites(model_trace).items()
    }


# Fractional part of the golden ratio: successive multiples are spread evenly
# over [0, 1) (a Weyl sequence).
_GOLDEN = 0.6180339887498949


def _attempt_fn(rng_key, model, model_args, model_kwargs, init_strategy):
    """``attempt(tries) -> (z, potential, grad)`` of the ``tries``-th candidate."""
    potential_and_grad = jax.value_and_grad(
        partial(potential_energy, model, model_args, model_kwargs)
    )
    radius = uniform_radius(init_strategy)
    if radius is None:

        def attempt(tries):
            key = jax.random.fold_in(rng_key, tries)
            z = _init_point(key, model, model_args, model_kwargs, init_strategy)
            return (z, *potential_and_grad(z))

        return attempt

    # init_to_uniform: every unconstrained coordinate ~ U(-radius, radius).
    # One draw of the flat vector, shifted by a Weyl sequence for each retry,
    # keeps every attempt uniform on the box and distinct from the others
    # (retries need new points, not independent ones) with one random call
    # site instead of a seed split and a draw per sample site and attempt;
    # each call site is a threefry loop that costs compile time.
    z_shapes = jax.eval_shape(
        partial(
            _init_point,
            model=model,
            model_args=model_args,
            model_kwargs=model_kwargs,
            init_strategy=init_strategy,
        ),
        rng_key,
    )
    zeros, unravel = jax.flatten_util.ravel_pytree(
        jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), z_shapes)
    )
    base = jax.random.uniform(rng_key, zeros.shape, zeros.dtype)

    def attempt(tries):
        uniform = jnp.mod(base + tries * _GOLDEN, 1.0)
        z = unravel(radius * (2.0 * uniform - 1.0))
        return (z, *potential_and_grad(z))

    return attempt


def _is_finite_point(energy, grad):
    leaves = [energy] + jax.tree_util.tree_leaves(grad)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def find_valid_initial_params(
    rng_key, model, model_args=(), model_kwargs=None, init_strategy=init_to_uniform,
    max_tries=100,
):
    """Try up to ``max_tries`` starting points until the potential and its
    gradient are finite (Stan retries 100 times). Pure and jittable.

    Returns
    -------
    param_info : ParamInfo
    is_valid : bool array, shape ()
    """

    attempt = _attempt_fn(rng_key, model, model_args, model_kwargs, init_strategy)

    def keep_trying(carry):
        tries, _, energy, grad = carry
        return (tries < max_tries) & ~_is_finite_point(energy, grad)

    def try_again(carry):
        tries = carry[0]
        return (tries + 1, *attempt(tries))

    # The first attempt runs inside the loop too (from a NaN placeholder), so
    # the model and its gradient are compiled once, not twice.
    z, energy, grad = jax.tree_util.tree_map(
        lambda s: jnp.full(s.shape, jnp.nan, s.dtype),
        jax.eval_shape(attempt, jnp.int32(0)),
    )
    carry = (jnp.int32(0), z, energy, grad)
    _, z, energy, grad = jax.lax.while_loop(keep_trying, try_again, carry)
    return ParamInfo(z, energy, grad), _is_finite_point(energy, grad)


def raise_no_valid_initial_point(model, model_args, model_kwargs, z, max_tries):
    """Raise the ValueError of a failed init search, naming the sites whose
    log density or gradient is not finite at its last attempt ``z``."""
    reason = _explain_invalid_point(model, model_args, model_kwargs or {}, z)
    raise ValueError(
        f"Cannot find a finite initial point for the model after {max_tries} "
        f"tries: {reason}. Check the priors' parameters, the data (e.g. "
        "observations outside a distribution's support) and init_strategy."
    )


def _explain_invalid_point(model, model_args, model_kwargs, z):
    """Name the sites whose log density or gradient is not finite at ``z``."""
    model_trace, log_dets = _constrained_trace(model, model_args, model_kwargs, z)
    bad = [
        name
        for name, site in model_trace.items()
        if site["type"] == "sample"
        and not np.isfinite(float(_site_log_prob(site, log_dets.get(name))))
    ]
    if not bad:
        grad = jax.grad(partial(potential_energy, model, model_args, model_kwargs))(z)
        bad = [n for n, g in grad.items() if not np.all(np.isfinite(np.asarray(g)))]
        return f"the gradient is not finite for site(s) {bad}"
    return f"the log density is not finite at site(s) {bad}"


# --- compile-once plumbing ------------------------------------------------------


class StaticArgs(NamedTuple):
    """The hashable part of a model's arguments (see :func:`split_model_args`).

    treedef : PyTreeDef
        Structure of ``(model_args, model_kwargs)``.
    is_array : tuple of bool
        Which leaves are arrays (traced) rather than static values.
    values : tuple
        The static leaves, in order.
    """

    treedef: object
    is_array: tuple
    values: tuple


def split_model_args(model_args, model_kwargs):
    """Split a model's arguments into array leaves and a hashable rest.

    Jitted inference takes the arrays as traced arguments and the rest as a
    static argument, so new data of the same shapes reuses the compiled
    program, while Python values (sizes, flags) may shape the program.

    Returns
    -------
    arrays : list of arrays
    static : StaticArgs
    """
    leaves, treedef = jax.tree_util.tree_flatten(
        (tuple(model_args), dict(model_kwargs or {}))
    )
    is_array = tuple(isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves)
    values = tuple(leaf for leaf, a in zip(leaves, is_array) if not a)
    for value in values:
        try:
            hash(value)
        except TypeError:
            raise TypeError(
                f"model argument {value!r} of type {type(value).__name__} is "
                "neither an array nor hashable; pass arrays as numpy/jax arrays"
            ) from None
    arrays = [leaf for leaf, a in zip(leaves, is_array) if a]
    return arrays, StaticArgs(treedef, is_array, values)


def merge_model_args(arrays, static):
    """Inverse of :func:`split_model_args`: returns ``(model_args, model_kwargs)``."""
    arrays, values = iter(arrays), iter(static.values)
    leaves = [next(arrays) if a else next(values) for a in static.is_array]
    return jax.tree_util.tree_unflatten(static.treedef, leaves)


@partial(
    jit,
    static_argnames=("model", "static", "init_strategy", "max_tries", "is_batched"),
)
def _find_initial_params_jit(
    rng_key, arrays, *, model, static, init_strategy, max_tries, is_batched
):
    model_args, model_kwargs = merge_model_args(arrays, static)
    find = partial(
        find_valid_initial_params, model=model, model_args=model_args,
        model_kwargs=model_kwargs, init_strategy=init_strategy, max_tries=max_tries,
    )
    return jax.vmap(find)(rng_key) if is_batched else find(rng_key)


def _is_key_batch(rng_key):
    if jnp.issubdtype(rng_key.dtype, jax.dtypes.prng_key):
        return rng_key.ndim == 1
    return rng_key.ndim == 2


def find_initial_params(
    rng_key, model, *, init_strategy=init_to_uniform, model_args=(), model_kwargs=None,
    max_tries=100,
):
    """The compiled search of :func:`initialize_model`, without the extras.

    Compiled once per model, strategy and argument shapes; raises a
    ValueError naming the offending site(s) when no finite point is found.
    Returns a :class:`ParamInfo` (batched like ``rng_key``).
    """
    model_kwargs = {} if model_kwargs is None else dict(model_kwargs)
    rng_key = jnp.asarray(rng_key)
    is_batched = _is_key_batch(rng_key)
    arrays, static = split_model_args(model_args, model_kwargs)
    param_info, is_valid = _find_initial_params_jit(
        rng_key, arrays, model=model, static=static, init_strategy=init_strategy,
        max_tries=max_tries, is_batched=is_batched,
    )
    if not np.all(np.asarray(is_valid)):
        z = param_info.z
        if is_batched:
            first_bad = int(np.argmin(np.asarray(is_valid).reshape(-1)))
            z = jax.tree_util.tree_map(lambda x: x[first_bad], z)
        raise_no_valid_initial_point(model, model_args, model_kwargs, z, max_tries)
    return param_info


def initialize_model(
    rng_key, model, *, init_strategy=init_to_uniform, model_args=(), model_kwargs=None,
    max_tries=100,
):
    """Find a finite starting point for inference on ``model``.

    Parameters
    ----------
    rng_key : jax.random key, or a batch of keys (one starting point each,
        stacked along a leading axis of every leaf of ``z``)
    model : callable
    init_strategy : callable, default=init_to_uniform
    model_args, model_kwargs : the model's arguments
    max_tries : int, default=100

    Returns
    -------
    ModelInfo

    Raises
    ------
    ValueError
        Naming the offending site(s) when no finite point is found.
    """
    model_kwargs = {} if model_kwargs is None else dict(model_kwargs)
    param_info = find_initial_params(
        rng_key, model, init_strategy=init_strategy, model_args=model_args,
        model_kwargs=model_kwargs, max_tries=max_tries,
    )
    first_z = param_info.z
    if _is_key_batch(jnp.asarray(rng_key)):
        first_z = jax.tree_util.tree_map(lambda x: x[0], param_info.z)
    constrained = constrain_fn(model, model_args, model_kwargs, first_z, True)
    model_trace = trace(seed(substitute(model, data=constrained), rng_seed=0)).get_trace(
        *model_args, **model_kwargs
    )
    return ModelInfo(
        param_info=param_info,
        potential_fn=partial(potential_energy, model, model_args, model_kwargs),
        postprocess_fn=partial(
            constrain_fn, model, model_args, model_kwargs, return_deterministic=True
        ),
        model_trace=model_trace,
    )


# --- log-likelihood per draw -----------------------------------------------------


def _observed_log_probs(model, model_args, model_kwargs, draw):
    """Log density of every observed sample site at one posterior ``draw``,
    unreduced (batch shape of the site) and unscaled, as NumPyro reports it:
    ``mask`` still zeroes masked entries (they are not part of the data)."""
    model_trace = trace(substitute(model, data=draw)).get_trace(
        *model_args, **model_kwargs
    )
    return {
        name: site["fn"].log_prob(site["value"])
        for name, site in model_trace.items()
        if site["type"] == "sample" and site["is_observed"]
    }


@partial(jit, static_argnames=("num_draws", "model", "static", "parallel"))
def _log_likelihood_jit(draws, arrays, *, num_draws, model, static, parallel):
    model_args, model_kwargs = merge_model_args(arrays, static)

    def one(xs):
        draw, _ = xs
        return _observed_log_probs(model, model_args, model_kwargs, draw)

    # The index only gives the map its length when ``draws`` is empty.
    xs = (draws, jnp.arange(num_draws))
    return jax.vmap(one)(xs) if parallel else jax.lax.map(one, xs)


def _batch_shape(posterior_samples, batch_ndims):
    shapes = {name: tuple(jnp.shape(v)) for name, v in posterior_samples.items()}
    if not shapes:
        return (1,) * batch_ndims
    batch_shapes = {shape[:batch_ndims] for shape in shapes.values()}
    if len(batch_shapes) != 1 or any(len(s) < batch_ndims for s in shapes.values()):
        raise ValueError(
            f"log_likelihood: posterior_samples must share their first "
            f"{batch_ndims} (batch_ndims) dimensions, got shapes {shapes}"
        )
    return batch_shapes.pop()


def log_likelihood(
    model, posterior_samples, *args, parallel=False, batch_ndims=1, **kwargs
):
    """Log-likelihood of every observation, for every posterior draw.

    The model runs once per draw with the draw's values substituted, and
    each observed sample site reports ``fn.log_prob(obs)``: one value per
    observation (the site's batch shape), unscaled by ``scale`` or
    subsampling, zero where ``mask`` drops an entry. This is the pointwise
    log-likelihood of WAIC and PSIS-LOO.

    Parameters
    ----------
    model : callable
        The model; its observed sites are those given ``obs``.
    posterior_samples : dict of str to array
        Draws of (at least) every latent site, each with ``batch_ndims``
        leading batch dimensions, e.g. ``mcmc.get_samples()``.
    *args, **kwargs
        The model's arguments.
    parallel : bool, default=False
        Evaluate all draws at once with ``vmap`` (faster, memory grows with
        the number of draws) instead of one after the other (``lax.map``).
    batch_ndims : int, default=1
        Leading batch dimensions of the draws: 0 for a single draw, 1 for
        ``(num_draws, ...)``, 2 for ``(num_chains, num_draws, ...)``.

    Returns
    -------
    dict of str to jax.Array
        Observed site name -> array of shape ``batch_shape + site batch
        shape``.

    Raises
    ------
    ValueError
        When the draws do not share their batch shape, or ``batch_ndims``
        is negative.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import core_ppl as ppl
    >>> import core_ppl.distributions as dist
    >>> def model(y):
    ...     mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    ...     with ppl.plate("rows", y.shape[0]):
    ...         ppl.sample("y", dist.Normal(mu, 1.0), obs=y)
    >>> draws = {"mu": jnp.array([0.0, 1.0])}
    >>> log_likelihood(model, draws, jnp.array([0.0, 1.0, 2.0]))["y"].shape
    (2, 3)
    """
    if int(batch_ndims) != batch_ndims or batch_ndims < 0:
        raise ValueError(
            f"log_likelihood: batch_ndims must be a non-negative int, got "
            f"{batch_ndims!r}"
        )
    posterior_samples = {
        name: jnp.asarray(value) for name, value in dict(posterior_samples).items()
    }
    if batch_ndims == 0:
        return _observed_log_probs(model, args, kwargs, posterior_samples)
    batch_shape = _batch_shape(posterior_samples, batch_ndims)
    num_draws = int(np.prod(batch_shape))
    draws = {
        name: jnp.reshape(value, (num_draws,) + value.shape[batch_ndims:])
        for name, value in posterior_samples.items()
    }
    arrays, static = split_model_args(args, kwargs)
    out = _log_likelihood_jit(
        draws, arrays, num_draws=num_draws, model=model, static=static,
        parallel=bool(parallel),
    )
    return {
        name: jnp.reshape(value, batch_shape + value.shape[1:])
        for name, value in out.items()
    }


def __getattr__(name):
    # predictive.py imports this module, so Predictive cannot be imported at
    # the top; resolving it on first access keeps NumPyro's import path
    # (``from numpyro.infer.util import Predictive``) without a cycle.
    if name == "Predictive":
        from core_ppl.infer.predictive import Predictive

        return Predictive
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

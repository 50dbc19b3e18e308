"""Modelling primitives: ``sample``, ``param``, ``plate``, ``deterministic``,
``factor``, ``prng_key``, ``subsample`` and ``plate_stack``.

Each primitive builds a :class:`~core_ppl.runtime.Message` and sends it through
the handler stack, so what a primitive *does* is decided by the handlers around
it. Outside any handler a primitive simply runs: ``param`` returns its initial
value, ``sample`` returns ``obs`` or raises asking for a random key.
"""

from __future__ import annotations

import contextlib
import functools
from numbers import Integral
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.jit import jit
from core_ppl.runtime import Messenger, apply_stack, handler_stack

__all__ = [
    "CondIndepStackFrame",
    "deterministic",
    "factor",
    "param",
    "plate",
    "plate_stack",
    "prng_key",
    "sample",
    "subsample",
]


def _identity(value, *args, **kwargs):
    return value


def _send(msg_type, name, fn, args=(), kwargs=None, value=None, **fields):
    """Build a message with every key of :class:`~core_ppl.runtime.Message`,
    send it through the handler stack and return it."""
    msg = {
        "type": msg_type,
        "name": name,
        "fn": fn,
        "args": args,
        "kwargs": {} if kwargs is None else kwargs,
        "value": value,
        "scale": None,
        "mask": None,
        "is_observed": False,
        "intermediates": [],
        "cond_indep_stack": [],
        "infer": {},
    }
    msg.update(fields)
    return apply_stack(msg)


def sample(name, fn, obs=None, obs_mask=None, sample_shape=(), infer=None):
    """Draw a value for site ``name`` from distribution ``fn``, or observe ``obs``.

    Parameters
    ----------
    name : str
        Site name, unique within the model.
    fn : Distribution
        The distribution of the site.
    obs : array, optional
        Observed value; makes the site an observation.
    obs_mask : bool array, optional
        Where False, ``obs`` is missing: those entries become a latent site
        named ``f"{name}_unobserved"`` and are imputed.
    sample_shape : tuple, default=()
        Extra leading shape of the draw.
    infer : dict, optional
        Hints to inference algorithms.
    """
    if not callable(getattr(fn, "sample", None)) or not hasattr(fn, "log_prob"):
        raise TypeError(
            f"sample site '{name}' expects a distribution, got {type(fn).__name__}"
        )
    if obs_mask is not None:
        return _sample_with_missing_values(name, fn, obs, obs_mask, sample_shape)
    msg = _send(
        "sample", name, fn,
        kwargs={"rng_key": None, "sample_shape": tuple(sample_shape)},
        value=obs, is_observed=obs is not None,
        infer={} if infer is None else dict(infer),
    )
    return msg["value"]


def _sample_with_missing_values(name, fn, obs, obs_mask, sample_shape):
    # Observed entries score under the mask; the missing ones are a latent
    # site of their own, as in NumPyro's ``obs_mask`` semantics. The mask
    # covers batch dimensions only: an event (a row of a MultivariateNormal)
    # is observed or missing as a whole.
    if obs is None:
        raise ValueError(f"sample site '{name}': obs_mask requires obs")
    obs_mask = jnp.asarray(obs_mask, dtype=bool)
    event_ndim = len(fn.event_shape)
    batch_ndim = jnp.ndim(obs) - event_ndim
    if obs_mask.ndim > batch_ndim:
        raise ValueError(
            f"sample site '{name}': obs_mask of shape {obs_mask.shape} must "
            f"broadcast to the batch shape {jnp.shape(obs)[:batch_ndim]} of obs "
            f"(obs shape {jnp.shape(obs)} minus the event shape {fn.event_shape})"
        )
    imputed = sample(
        f"{name}_unobserved", fn.mask(~obs_mask), sample_shape=sample_shape
    )
    sample(name, fn.mask(obs_mask), obs=obs, sample_shape=sample_shape)
    event_mask = jnp.reshape(obs_mask, obs_mask.shape + (1,) * event_ndim)
    return jnp.where(event_mask, obs, imputed)


def _param_value(init_value, constraint=None, event_dim=None, rng_key=None):
    if callable(init_value):
        if rng_key is None:
            raise ValueError(
                "param with a callable init_value needs a random key: run the "
                "model under core_ppl.handlers.seed"
            )
        return init_value(rng_key)
    return init_value


def param(name, init_value=None, constraint=None, event_dim=None):
    """A learnable parameter, optimised by SVI and substituted by handlers.

    ``constraint`` (default ``constraints.real``) is the set the value lives
    in; SVI optimises it in unconstrained space through ``biject_to``.
    ``init_value`` may be an array or a function of a random key.
    """
    if constraint is None:
        from core_ppl.distributions import constraints

        constraint = constraints.real
    value = _send(
        "param", name, _param_value, args=(init_value,),
        kwargs={"constraint": constraint, "event_dim": event_dim, "rng_key": None},
    )["value"]
    if value is None:
        raise ValueError(
            f"param site '{name}' has no value: give init_value or substitute one"
        )
    return value


def deterministic(name, value):
    """Record ``value`` under ``name`` in traces and predictions."""
    return _send("deterministic", name, _identity, args=(value,))["value"]


def factor(name, log_factor):
    """Add ``log_factor`` to the model's log density (an observed ``Unit`` site)."""
    from core_ppl.distributions.distribution import Unit

    unit = Unit(log_factor)
    sample(name, unit, obs=jnp.zeros(unit.batch_shape + (0,)))


def _draw_key(rng_key=None):
    return rng_key


def prng_key():
    """Return a fresh random key from the enclosing ``seed``, or None outside one."""
    return _send("prng_key", "_prng_key", _draw_key, kwargs={"rng_key": None})["value"]


# --- plates ------------------------------------------------------------------


class CondIndepStackFrame(NamedTuple):
    """One enclosing plate of a site.

    name : str
        The plate's name.
    dim : int
        The (negative) batch dimension the plate indexes.
    size : int
        The full size of the plate.
    subsample_size : int
        How many of ``size`` elements this run sees.
    """

    name: str
    dim: int
    size: int
    subsample_size: int


def _draws_for_distinct(size, subsample_size):
    """How many iid uniform draws from ``range(size)`` almost surely contain
    ``subsample_size`` distinct values.

    The number of draws needed is a sum of independent geometric variables
    (the coupon collector), with mean ``sum_i n / (n - i)`` and variance
    ``sum_i i n / (n - i)^2`` over ``i < subsample_size``; mean + 8 sd + 16 is
    exceeded with negligible probability (and a shortfall is redrawn anyway).
    """
    i = np.arange(subsample_size, dtype=np.float64)
    mean = np.sum(size / (size - i))
    sd = np.sqrt(np.sum(i * size / (size - i) ** 2))
    return int(np.ceil(mean + 8.0 * sd)) + 16


@functools.partial(jit, static_argnums=(1, 2, 3))
def _distinct_uniform_indices(rng_key, size, subsample_size, num_draws):
    """The first ``subsample_size`` distinct values of iid uniform draws from
    ``range(size)``: a uniform ordered sample without replacement.

    Each new distinct value of an iid stream is uniform over the values not
    yet seen (sequential sampling without replacement), so no permutation of
    ``range(size)`` is needed: the cost is ``O(num_draws log num_draws)``,
    independent of ``size``. Blocks of ``num_draws`` with too few distinct
    values are redrawn; the shortfall event is invariant under relabelling
    ``range(size)``, so rejecting it keeps the sample uniform. Jitted so that
    eager (unjitted) model runs reuse one compiled loop per shape.
    """

    def draw(carry):
        key, _, _ = carry
        key, subkey = jax.random.split(key)
        values = jax.random.randint(subkey, (num_draws,), 0, size, jnp.int32)
        order = jnp.argsort(values, stable=True)
        ranked = values[order]
        is_new = jnp.concatenate([jnp.ones(1, bool), ranked[1:] != ranked[:-1]])
        first = jnp.zeros(num_draws, bool).at[order].set(is_new)
        (where,) = jnp.nonzero(first, size=subsample_size, fill_value=0)
        return key, values[where], jnp.sum(first) >= subsample_size

    init = (rng_key, jnp.zeros(subsample_size, jnp.int32), jnp.array(False))
    return jax.lax.while_loop(lambda carry: ~carry[2], draw, init)[1]


def _subsample_indices(size, subsample_size, rng_key=None):
    if subsample_size == size:
        return jnp.arange(size)
    if rng_key is None:
        raise ValueError(
            "plate with subsample_size < size needs a random key: run the model "
            "under core_ppl.handlers.seed"
        )
    num_draws = _draws_for_distinct(size, subsample_size)
    if num_draws < size // 4:
        # Mini-batches much smaller than the data: cost independent of size
        # (top_k over ``size`` uniforms would touch every row at every step).
        return _distinct_uniform_indices(rng_key, size, subsample_size, num_draws)
    # The indices of the k largest of n uniforms are a uniform draw without
    # replacement, in O(n log k) rather than the O(n log n) of a permutation.
    return jax.lax.top_k(jax.random.uniform(rng_key, (size,)), subsample_size)[1]


def _enclosing_plates():
    return [h for h in handler_stack() if isinstance(h, plate)]


class plate(Messenger):
    """Declare conditionally independent data along one batch dimension.

    Inside ``with plate("data", N):`` every ``sample`` site's batch shape is
    broadcast so that dimension ``dim`` has size ``subsample_size`` (default
    ``size``); with ``subsample_size < size`` the log density of the sites is
    multiplied by ``size / subsample_size``, giving an unbiased estimate of
    the full-data log density (NumPyro paper, section 2.2). Entering the plate
    returns the indices of the subsample.

    A plate may be entered more than once in a model, by one plate object or
    by several of the same name: they are one plate, so they must have the
    same ``size`` and ``subsample_size`` (``trace`` raises a ValueError
    otherwise), and under :class:`~core_ppl.handlers.seed` they subsample the
    same indices within one run of the model. A plate cannot be nested in a
    plate of its own name.

    Parameters
    ----------
    name : str
        Plate name.
    size : int
        Number of elements in the full data.
    subsample_size : int, optional
        Elements used per run, drawn without replacement.
    dim : int, optional
        Negative batch dimension; by default the rightmost one no enclosing
        plate uses.
    """

    def __init__(self, name, size, subsample_size=None, dim=None):
        size = int(size)
        subsample_size = size if subsample_size is None else int(subsample_size)
        if size < 0 or not 0 <= subsample_size <= size:
            raise ValueError(
                f"plate '{name}': need 0 <= subsample_size <= size, got "
                f"size={size}, subsample_size={subsample_size}"
            )
        if dim is not None and dim >= 0:
            raise ValueError(f"plate '{name}': dim must be negative, got {dim}")
        self.name = name
        self.size = size
        self.subsample_size = subsample_size
        self.dim = dim
        self._requested_dim = dim  # re-entered elsewhere, the plate re-allocates
        super().__init__()

    def __enter__(self):
        enclosing = _enclosing_plates()
        if any(p.name == self.name for p in enclosing):
            raise ValueError(
                f"plate '{self.name}' is entered inside a plate of the same "
                "name; nested plates need distinct names"
            )
        in_use = {p.dim for p in enclosing}
        self.dim = self._requested_dim
        if self.dim is None:
            self.dim = -1
            while self.dim in in_use:
                self.dim -= 1
        elif self.dim in in_use:
            raise ValueError(
                f"plate '{self.name}': dim {self.dim} is already used by an "
                "enclosing plate"
            )
        super().__enter__()
        # A plate that does not subsample has its indices already, so it asks
        # ``seed`` for no key (as in NumPyro): plates then leave the key stream
        # of the other sites alone, even when ``block`` hides them.
        is_full = self.subsample_size == self.size
        self.indices = _send(
            "plate", self.name, _subsample_indices,
            args=(self.size, self.subsample_size), kwargs={"rng_key": None},
            value=jnp.arange(self.size) if is_full else None,
        )["value"]
        return self.indices

    @property
    def frame(self):
        return CondIndepStackFrame(
            self.name, self.dim, self.size, self.subsample_size
        )

    def process_message(self, msg):
        if msg["type"] not in ("sample", "deterministic", "param"):
            return
        msg["cond_indep_stack"].append(self.frame)
        if msg["type"] != "sample":
            return
        fn = msg["fn"]
        batch_shape = tuple(fn.batch_shape)
        ndim = max(len(batch_shape), -self.dim)
        target = [1] * (ndim - len(batch_shape)) + list(batch_shape)
        current = target[self.dim]
        if current not in (1, self.subsample_size):
            raise ValueError(
                f"sample site '{msg['name']}' has batch shape {batch_shape}, "
                f"whose dim {self.dim} has size {current}, but plate "
                f"'{self.name}' has size {self.subsample_size}"
            )
        target[self.dim] = self.subsample_size
        target = tuple(target)
        if target != batch_shape:
            msg["fn"] = fn.expand(target)
        if self.subsample_size < self.size:
            factor_ = self.size / self.subsample_size
            msg["scale"] = factor_ if msg["scale"] is None else msg["scale"] * factor_

    def postprocess_message(self, msg):
        # A param with an ``event_dim`` is local to the plate (one row per
        # element, as in NumPyro): the model sees the subsampled rows, while
        # the handlers outside the plate (trace, so SVI) already saw the whole.
        if msg["type"] not in ("subsample", "param"):
            return
        event_dim = msg["kwargs"].get("event_dim")
        if event_dim is not None and msg["value"] is not None:
            msg["value"] = self._subsample_data(
                msg["value"], event_dim, msg["type"], msg["name"]
            )

    def _subsample_data(self, data, event_dim, kind="subsample", name=None):
        # The plate indexes batch dim ``self.dim`` of the data, counted left of
        # its ``event_dim`` rightmost (event) dimensions.
        dim = self.dim - event_dim
        shape = jnp.shape(data)
        if len(shape) < -dim or shape[dim] == 1:
            return data  # broadcast along this plate
        if shape[dim] != self.size:
            what = "subsample" if kind == "subsample" else f"param '{name}'"
            raise ValueError(
                f"{what}(..., event_dim={event_dim}) inside plate "
                f"'{self.name}' (size {self.size}, dim {self.dim}): data of "
                f"shape {shape} has size {shape[dim]} at dim {dim}, expected "
                f"{self.size} or 1"
            )
        if self.subsample_size == self.size:
            return data
        return jnp.take(data, self.indices, axis=dim)


def subsample(data, event_dim):
    """Subsample ``data`` by the indices of the enclosing plates.

    Inside ``with plate("data", N, subsample_size=k):``, ``subsample(x,
    event_dim=0)`` is ``x[indices]`` along the plate's dimension, so a model
    can take its full data set as argument. Dimensions of size 1 and plates
    that do not subsample leave the data unchanged; outside any plate it is
    returned as is.

    Parameters
    ----------
    data : array
        Batched data; the plate of dim ``d`` indexes its dimension
        ``d - event_dim``.
    event_dim : int
        Number of rightmost dimensions of ``data`` that are one event.

    Returns
    -------
    array
        The subsampled data.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import core_ppl as ppl
    >>> from core_ppl import handlers
    >>> x = jnp.arange(10.0)
    >>> with handlers.seed(rng_seed=0), ppl.plate("data", 10, subsample_size=3):
    ...     batch = ppl.subsample(x, event_dim=0)
    >>> batch.shape
    (3,)
    """
    if not isinstance(event_dim, Integral) or isinstance(event_dim, bool):
        raise TypeError(f"subsample: event_dim must be an int, got {event_dim!r}")
    if event_dim < 0:
        raise ValueError(f"subsample: event_dim must be >= 0, got {event_dim}")
    return _send(
        "subsample", "_subsample", _identity, args=(data,),
        kwargs={"event_dim": int(event_dim)}, value=data,
    )["value"]


@contextlib.contextmanager
def plate_stack(prefix, sizes, rightmost_dim=-1):
    """Enter one plate per size, at contiguous dimensions.

    The plates are named ``f"{prefix}_{i}"`` and the plate of ``sizes[-1 -
    i]`` has dim ``rightmost_dim - i``: the last size is the rightmost
    dimension, as in a batch shape.

    Parameters
    ----------
    prefix : str
        Name prefix of the plates.
    sizes : iterable of int
        Plate sizes, leftmost first.
    rightmost_dim : int, default=-1
        The (negative) dim of the last plate.

    Examples
    --------
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> with handlers.seed(rng_seed=0), ppl.plate_stack("grid", (2, 3)):
    ...     x = ppl.sample("x", dist.Normal(0.0, 1.0))
    >>> x.shape
    (2, 3)
    """
    if not isinstance(rightmost_dim, Integral) or rightmost_dim >= 0:
        raise ValueError(
            f"plate_stack: rightmost_dim must be a negative int, got {rightmost_dim!r}"
        )
    with contextlib.ExitStack() as stack:
        for i, size in enumerate(reversed(tuple(sizes))):
            stack.enter_context(plate(f"{prefix}_{i}", size, dim=rightmost_dim - i))
        yield

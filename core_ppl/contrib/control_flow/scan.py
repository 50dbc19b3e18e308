"""``scan``: a ``jax.lax.scan`` whose body may contain random sites.

A time-series model written as a Python loop unrolls into one copy of the
loop body per step, which makes compile time grow with the series length.
:func:`scan` keeps the loop rolled, yet the handlers around the model see the
same sites a loop would produce, each once, with a leading time dimension:
``trace`` records site ``x`` with value shape ``(T,) + step_shape`` and a
distribution of batch shape ``(T,) + step_batch_shape``, so the model's log
density is the sum over the steps.

The shape of the algorithm (see ``docs/scan.md`` for the reasoning):

1. Before the loop, draw one key from the enclosing ``seed`` (``prng_key``).
2. Inside the loop body, swap the handler stack for a *step stack* built from
   the enclosing one: each ``trace`` becomes a fresh per-step recorder, the
   innermost ``seed`` becomes a ``seed`` keyed by ``fold_in(key, t)``, plates
   stay as they are, and every other handler (``substitute``, ``condition``,
   ``replay``, ``block``, ``scale``, ``mask``, ...) runs on each step's
   messages through a proxy that takes entry ``t`` of any value it supplies
   with one dimension too many (a value given for the whole series).
3. The loop returns the recorded sites; ``lax.scan`` stacks them along time.
   Their distributions are rebuilt with the time dimension in their batch
   shape, and each stacked site is handed to the enclosing ``trace``
   handlers, as if the model had made it outside the loop.

The handlers of the step stack are created inside the loop body, so no
handler outlives the trace of the body with a tracer in it.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections import OrderedDict
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.distributions.distribution import (
    Distribution,
    ExpandedDistribution,
    Independent,
    MaskedDistribution,
)
from core_ppl.handlers import seed, trace
from core_ppl.primitives import plate, prng_key
from core_ppl.runtime import Messenger, handler_stack

__all__ = ["scan"]


class _Step(NamedTuple):
    """What the loop scans over.

    index : int array, shape ()
        Position of the step in ``xs`` (also under ``reverse=True``).
    x : pytree
        The slice of ``xs`` for this step (None when ``xs`` is None).
    """

    index: jax.Array
    x: Any


class _SiteArrays(NamedTuple):
    """The traced parts of one recorded site, stacked along time by the loop.

    value : array
        The site's value.
    fn : Distribution or None
        The distribution of a sample site.
    scale : array or None
        A traced log-density multiplier (Python numbers stay static).
    mask : array or None
        A traced mask (Python bools stay static).
    """

    value: Any
    fn: Any
    scale: Any
    mask: Any


class _SiteStatic(NamedTuple):
    """The untraced parts of one recorded site, read once while tracing.

    fields : dict
        The message keys that hold no arrays (name, type, infer, ...).
    fn_skeleton : tuple or None
        Per-step shapes of the distribution's wrappers, see
        :func:`_skeleton`.
    step_batch_shape : tuple
        Shape of the site's per-step log density (``batch_shape`` of ``fn``).
    """

    fields: dict
    fn_skeleton: Any
    step_batch_shape: tuple


# --- the step stack ------------------------------------------------------------


def _step_value_ndim(msg):
    """Number of dims a per-step value of this site has; None if unknown."""
    if msg["type"] == "sample":
        sample_shape = tuple(msg["kwargs"].get("sample_shape", ()))
        return len(msg["fn"].shape(sample_shape))
    if msg["type"] == "deterministic":
        return jnp.ndim(msg["args"][0])
    if msg["type"] == "plate":
        return 1
    return None  # params are the same at every step: never sliced


class _StepInfo(NamedTuple):
    """Where a step stands, for the handlers of its stack.

    index : int array, shape ()
        Position of the step in ``xs``.
    length : int
        Number of steps of the loop.
    key : jax.random key or None
        The step's key, ``fold_in(key, index)``; None outside ``seed``.
    """

    index: jax.Array
    length: int
    key: Any


def _name_hash(name):
    # A stable 31-bit integer per site name (Python's hash() is salted).
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _entry_at_step(msg, series, step):
    """Entry ``step.index`` of a value given for the whole loop.

    A latent sample site may be given a shorter series, e.g. posterior draws
    of the observed part of a forecast: the steps past its end draw new
    values (NumPyro's convention), with a key of their own.
    """
    num, name = series.shape[0], msg["name"]
    if num == step.length:
        return series[step.index]
    if num > step.length or msg["type"] != "sample" or msg["is_observed"]:
        raise ValueError(
            f"scan: site '{name}' was given a series of shape {series.shape} "
            f"for a loop of {step.length} steps; only a latent sample site may "
            "be given fewer steps than the loop"
        )
    if step.key is None:
        raise ValueError(
            f"scan: site '{name}' was given {num} of {step.length} steps and "
            "needs a random key to draw the others: run the model under seed"
        )
    key = jax.random.fold_in(step.key, _name_hash(name))
    draw = msg["fn"](rng_key=key, sample_shape=msg["kwargs"]["sample_shape"])
    if num == 0:
        return draw
    given = series[jnp.minimum(step.index, num - 1)]
    return jnp.where(step.index < num, given, draw)


class _at_step(Messenger):
    """Run ``handler`` on a step's messages, taking the step's entry of any
    value it supplies for the whole series (one leading dim too many)."""

    def __init__(self, handler, step):
        self.handler = handler
        self.step = step
        super().__init__()

    def process_message(self, msg):
        before = msg["value"]
        self.handler.process_message(msg)
        value = msg["value"]
        if value is None or value is before:
            return
        step_ndim = _step_value_ndim(msg)
        if step_ndim is not None and jnp.ndim(value) == step_ndim + 1:
            msg["value"] = _entry_at_step(msg, jnp.asarray(value), self.step)

    def postprocess_message(self, msg):
        self.handler.postprocess_message(msg)


class _step_trace(trace):
    """A ``trace`` for one step of the loop, standing in for an enclosing one."""

    def __init__(self):
        super().__init__()
        self.trace = OrderedDict()


def _step_stack(outer, step):
    """The handler stack of one step, and its recorders (one per ``trace``)."""
    innermost_seed = max(
        (i for i, h in enumerate(outer) if isinstance(h, seed)), default=None
    )
    stack, recorders = [], []
    for i, handler in enumerate(outer):
        if isinstance(handler, trace):
            recorders.append(_step_trace())
            stack.append(recorders[-1])
        elif isinstance(handler, seed):
            if i == innermost_seed and step.key is not None:
                stack.append(seed(rng_seed=step.key))
        elif isinstance(handler, plate):
            # Plates only append frames and broadcast batch shapes; keeping the
            # instance lets plates inside ``f`` see which dims are taken.
            stack.append(handler)
        else:
            stack.append(_at_step(handler, step))
    return stack, recorders


# Whether the calling thread is tracing a scanned function (per thread, like
# the handler stack).
_IN_BODY = threading.local()


def _is_in_body():
    return getattr(_IN_BODY, "value", False)


@contextlib.contextmanager
def _swapped_stack(stack):
    """Run with the calling thread's handler stack replaced by ``stack``."""
    current = handler_stack()
    saved = list(current)
    current[:] = stack
    _IN_BODY.value = True
    try:
        yield
    finally:
        current[:] = saved
        _IN_BODY.value = False


# --- splitting sites into traced and static parts ---------------------------------


def _is_array(x):
    return isinstance(x, (jax.Array, np.ndarray))


def _skeleton(fn):
    """Per-step ``(batch_shape, base skeleton)`` of a distribution's wrappers,
    pure Python, so the stacked distribution can be rebuilt after the loop."""
    base = getattr(fn, "base_dist", None)
    inner = _skeleton(base) if isinstance(base, Distribution) else None
    return (tuple(fn.batch_shape), inner)


def _split_site(site):
    fn = site["fn"] if site["type"] == "sample" else None
    if fn is not None:
        # The sample shape joins the batch shape, so that value, distribution
        # and log density all gain the time dim in the same place.
        sample_shape = tuple(site["kwargs"].get("sample_shape", ()))
        fn = fn.expand(sample_shape + tuple(fn.batch_shape))
    scale, mask = site["scale"], site["mask"]
    arrays = _SiteArrays(
        value=site["value"],
        fn=fn,
        scale=scale if _is_array(scale) else None,
        mask=mask if _is_array(mask) else None,
    )
    fields = {
        key: value
        for key, value in site.items()
        if key not in ("value", "fn", "args", "kwargs", "scale", "mask")
    }
    fields["fn"] = None if fn is not None else site["fn"]
    # Auxiliary values of a draw are tracers of the loop body: not kept.
    fields["intermediates"] = []
    fields["kwargs"] = {
        k: v for k, v in site["kwargs"].items() if k not in ("rng_key", "sample_shape")
    }
    fields["scale"] = None if _is_array(scale) else scale
    fields["mask"] = None if _is_array(mask) else mask
    fields["args"] = site["args"] if site["type"] == "plate" else ()
    static = _SiteStatic(
        fields=fields,
        fn_skeleton=None if fn is None else _skeleton(fn),
        step_batch_shape=() if fn is None else tuple(fn.batch_shape),
    )
    return arrays, static


# --- adding the time dimension -------------------------------------------------------


def _insert_unit_dims(x, num):
    """``(T,) + rest`` -> ``(T,) + (1,) * num + rest``."""
    shape = jnp.shape(x)
    return jnp.reshape(x, shape[:1] + (1,) * num + shape[1:])


def _align_to_time(x, step_ndim):
    """Stacked ``(T,) + s`` with ``s`` right-aligned in a ``step_ndim``-dim
    per-step shape -> ``(T,) + (1,) * (step_ndim - len(s)) + s``."""
    return _insert_unit_dims(x, max(0, step_ndim - (jnp.ndim(x) - 1)))


def _with_time(fn, skeleton, length, pad, name):
    """The stacked ``fn`` as a distribution of batch shape
    ``(length,) + (1,) * pad + step_batch_shape``.

    Plain distributions re-derive their batch shape from their (stacked)
    parameters; wrappers record theirs, so they are rebuilt around their
    rebuilt base.
    """
    step_batch, base_skeleton = skeleton
    target = (length,) + (1,) * pad + step_batch
    if isinstance(fn, ExpandedDistribution):
        extra = pad + len(step_batch) - len(base_skeleton[0])
        base = _with_time(fn.base_dist, base_skeleton, length, extra, name)
        return ExpandedDistribution(base, target)
    if isinstance(fn, Independent):
        base = _with_time(fn.base_dist, base_skeleton, length, pad, name)
        return Independent(base, fn.reinterpreted_batch_ndims)
    if isinstance(fn, MaskedDistribution):
        base = _with_time(fn.base_dist, base_skeleton, length, pad, name)
        mask = fn._mask
        if _is_array(mask):
            mask = _align_to_time(mask, pad + len(step_batch))
        return MaskedDistribution(base, mask)
    if base_skeleton is None:
        stacked = jax.tree_util.tree_map(lambda x: _insert_unit_dims(x, pad), fn)
        if stacked.batch_shape == target:
            return stacked
    raise NotImplementedError(
        f"scan: cannot give the distribution {type(fn).__name__} of sample site "
        f"'{name}' a time dimension (its batch shape does not follow its "
        "parameters); build it from plain distributions, expand, to_event or mask"
    )


def _stacked_site(arrays, static, length):
    """One site of the loop, as the enclosing handlers should see it."""
    site = dict(static.fields)
    site["cond_indep_stack"] = list(site["cond_indep_stack"])
    site["infer"] = dict(site["infer"])
    step_ndim = len(static.step_batch_shape)
    value = arrays.value
    if site["type"] == "param":
        value = value[0]  # a param takes the same value at every step
    site["value"] = value
    if site["type"] == "sample":
        site["fn"] = _with_time(arrays.fn, static.fn_skeleton, length, 0, site["name"])
        site["kwargs"] = {**site["kwargs"], "rng_key": None, "sample_shape": ()}
    else:
        site["args"] = (value,) if site["type"] != "plate" else site["args"]
        site["kwargs"] = {**site["kwargs"]}
    if arrays.scale is not None:
        site["scale"] = _align_to_time(arrays.scale, step_ndim)
    if arrays.mask is not None:
        site["mask"] = _align_to_time(arrays.mask, step_ndim)
    return site


# --- the primitive ------------------------------------------------------------------


def _scan_length(xs, length):
    """The number of steps, checked against the leading dims of ``xs``."""
    shapes = [jnp.shape(leaf) for leaf in jax.tree_util.tree_leaves(xs)]
    if any(len(shape) == 0 for shape in shapes):
        raise ValueError(
            "scan: every leaf of xs needs a leading (time) dimension, got leaves "
            f"of shapes {shapes}"
        )
    leading = {shape[0] for shape in shapes}
    if len(leading) > 1:
        raise ValueError(
            f"scan: the leaves of xs have different leading dims, shapes {shapes}"
        )
    if length is None:
        if not leading:
            raise ValueError("scan: give length when xs is None (or has no leaves)")
        return int(leading.pop())
    if int(length) != length or length < 0:
        raise ValueError(f"scan: length must be a non-negative int, got {length!r}")
    length = int(length)
    if leading and leading != {length}:
        raise ValueError(
            f"scan: length={length} disagrees with the leading dim of xs, "
            f"shapes {shapes}"
        )
    return length


def scan(f, init, xs, length=None, reverse=False, history=1):
    """Scan ``f`` over the leading axis of ``xs``, with random sites inside.

    The same loop as :func:`jax.lax.scan` (compiled once, whatever the
    length), but ``f`` may call ``sample``, ``deterministic`` and ``param``,
    and may open plates. Handlers outside the scan see each site once, with a
    leading time dimension: ``trace`` records values of shape ``(T,) +
    step_shape`` and distributions of batch shape ``(T,) +
    step_batch_shape``, so the model's log density is the sum over steps.

    * ``seed``: step ``t`` draws with its own key, ``fold_in(key, t)``.
    * ``substitute``, ``condition``, ``replay``: a value with one dimension
      more than a step's value is read at index ``t`` (a series); a value of
      a step's shape is used at every step. A latent sample site given a
      series shorter than the loop draws its later steps (forecasting from
      posterior draws of the observed steps).
    * ``plate``: plates inside ``f`` work as usual (their dims count from the
      right, the time dim is leftmost); a plate around the scan adds its dim
      to every site of every step.

    Parameters
    ----------
    f : callable
        ``f(carry, x) -> (carry, y)``; the carry keeps its shapes.
    init : pytree
        The initial carry.
    xs : pytree or None
        Arrays scanned over their leading axis; None scans ``length`` times.
    length : int, optional
        Number of steps; needed when ``xs`` is None.
    reverse : bool, default=False
        Run from the last step to the first; values stay aligned with ``xs``.
    history : int, default=1
        NumPyro's Markov order (a non-negative int). It only matters when
        discrete latents are enumerated, which core_ppl does not do, so it has
        no effect here, as in NumPyro for models without enumeration.

    Returns
    -------
    carry : pytree
        The final carry.
    ys : pytree
        The stacked outputs ``y``, each with a leading time dimension.

    Examples
    --------
    A Gaussian random walk:

    >>> import jax.numpy as jnp
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> from core_ppl.contrib.control_flow import scan
    >>> def model(T):
    ...     def step(level, _):
    ...         level = ppl.sample("level", dist.Normal(level, 1.0))
    ...         return level, level
    ...     return scan(step, jnp.zeros(()), None, length=T)
    >>> tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(5)
    >>> tr["level"]["value"].shape, tr["level"]["fn"].batch_shape
    ((5,), (5,))
    """
    if not callable(f):
        raise TypeError(f"scan: f must be callable, got {type(f).__name__}")
    if isinstance(history, bool) or not isinstance(history, (int, np.integer)):
        raise TypeError(f"scan: history must be an int, got {history!r}")
    if history < 0:
        raise ValueError(f"scan: history must be >= 0, got {history}")
    if _is_in_body():
        raise NotImplementedError(
            "scan: a scan inside a scanned function is not supported; merge the "
            "loops, or scan over the outer loop and vectorise the inner one"
        )
    length = _scan_length(xs, length)
    key = prng_key()  # None outside seed: then every site needs a value
    outer = list(handler_stack())
    statics = []

    def body(carry, step):
        step_key = None if key is None else jax.random.fold_in(key, step.index)
        info = _StepInfo(index=step.index, length=length, key=step_key)
        stack, recorders = _step_stack(outer, info)
        with _swapped_stack(stack):
            out = f(carry, step.x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(
                "scan: f(carry, x) must return a pair (carry, y), got "
                f"{type(out).__name__}"
            )
        split = [[_split_site(s) for s in rec.trace.values()] for rec in recorders]
        statics[:] = [[static for _, static in sites] for sites in split]
        return out[0], (out[1], [[arrays for arrays, _ in sites] for sites in split])

    steps = _Step(index=jnp.arange(length), x=xs)
    carry, (ys, stacked) = jax.lax.scan(body, init, steps, reverse=reverse)
    recorders = [h for h in outer if isinstance(h, trace)]
    for recorder, arrays, static in zip(recorders, stacked, statics):
        for site_arrays, site_static in zip(arrays, static):
            site = _stacked_site(site_arrays, site_static, length)
            recorder.postprocess_message(site)
    return carry, ys

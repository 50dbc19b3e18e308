"""Effect handlers: small messengers that give primitives their meaning.

Each handler is a :class:`~core_ppl.runtime.Messenger` that overrides
``process_message`` (on the way down the stack, before the value exists)
and/or ``postprocess_message`` (on the way back, value known). They compose by
nesting: ``trace(seed(condition(model, data), 0))``. Use them as wrappers or as
context managers. Create them inside any function you ``jax.jit``: a handler
that outlives a trace holds tracers (the ``seed`` note of the NumPyro paper).

Example
-------
>>> import core_ppl as ppl, core_ppl.distributions as dist
>>> from core_ppl import handlers
>>> def model():
...     return ppl.sample("x", dist.Normal(0.0, 1.0))
>>> tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()
>>> tr["x"]["type"]
'sample'
"""

from __future__ import annotations

from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.runtime import Messenger

__all__ = [
    "block",
    "condition",
    "mask",
    "replay",
    "scale",
    "seed",
    "substitute",
    "trace",
]


class trace(Messenger):
    """Record every site a model visits, in order.

    ``trace(model).get_trace(*args, **kwargs)`` runs the model and returns an
    ``OrderedDict`` mapping site names to copies of their messages (see
    :class:`~core_ppl.runtime.Message` for the keys). A name used twice is a
    ValueError, except for a plate entered again with the same sizes, which
    keeps its first record.
    """

    def __enter__(self):
        super().__enter__()
        self.trace = OrderedDict()
        return self.trace

    def postprocess_message(self, msg):
        if msg["type"] in ("prng_key", "subsample"):
            return  # not sites of the model
        name = msg["name"]
        if name in self.trace:
            recorded = self.trace[name]
            if recorded["type"] != "plate" or msg["type"] != "plate":
                raise ValueError(
                    f"site name '{name}' is used twice in one run of the model; "
                    "site names must be unique (only a plate may be entered again)"
                )
            _check_same_plate(name, recorded["args"], msg["args"])
            return  # the plate entered again: its first record stands
        site = dict(msg)
        site["kwargs"] = dict(msg["kwargs"])
        site["cond_indep_stack"] = list(msg["cond_indep_stack"])
        self.trace[name] = site

    def get_trace(self, *args, **kwargs):
        """Run the wrapped model and return its trace."""
        self(*args, **kwargs)
        return self.trace


def _check_same_plate(name, first_args, args):
    """Plates of one name are one plate: the same ``(size, subsample_size)``
    (their messages' ``args``) every time."""
    if tuple(first_args) != tuple(args):
        raise ValueError(
            f"plate '{name}' is entered with size={args[0]}, "
            f"subsample_size={args[1]} but was first entered with "
            f"size={first_args[0]}, subsample_size={first_args[1]}: "
            "plates of one name are one plate and must have the same sizes"
        )


class seed(Messenger):
    """Give random sites keys split from ``rng_seed``.

    Each ``sample`` (unobserved, without a value), subsampled ``plate``,
    ``prng_key`` and callable-initialised ``param`` site receives a fresh key,
    so draws are reproducible for a given seed and distinct across sites.
    Every plate of one name gets the same key within one activation of the
    handler, so a plate entered twice in a model subsamples the same indices
    both times. Sites hidden by an inner ``block`` still get their keys:
    hiding changes what outer handlers see, not what a site needs to run.

    Parameters
    ----------
    fn : callable, optional
        The model to wrap.
    rng_seed : int or jax.random key
        The seed.
    """

    serves_hidden_sites = True  # keys are what a hidden site needs to run

    def __init__(self, fn=None, rng_seed=None):
        if rng_seed is None:
            raise ValueError("seed needs rng_seed: an int or a jax.random key")
        if isinstance(rng_seed, (int, np.integer)):
            rng_seed = jax.random.PRNGKey(int(rng_seed))
        elif not (
            isinstance(rng_seed, (jax.Array, np.ndarray))
            and (jnp.issubdtype(rng_seed.dtype, jax.dtypes.prng_key)
                 or rng_seed.shape == (2,))
        ):
            raise TypeError(
                f"seed: rng_seed must be an int or a single jax.random key, got "
                f"{type(rng_seed).__name__} with shape {getattr(rng_seed, 'shape', None)}"
            )
        self.rng_key = rng_seed
        self.plate_keys = {}
        super().__init__(fn)

    def __enter__(self):
        # plate name -> (its (size, subsample_size), its key), per activation
        self.plate_keys = {}
        return super().__enter__()

    def process_message(self, msg):
        needs_key = (
            msg["type"] in ("sample", "plate", "prng_key", "param")
            and msg["value"] is None
            and "rng_key" in msg["kwargs"]
            and msg["kwargs"]["rng_key"] is None
        )
        if msg["type"] == "param" and not callable(msg["args"][0]):
            needs_key = False
        if not needs_key:
            return
        if msg["type"] == "plate" and msg["name"] in self.plate_keys:
            first_args, site_key = self.plate_keys[msg["name"]]
            _check_same_plate(msg["name"], first_args, msg["args"])
            msg["kwargs"]["rng_key"] = site_key
            return
        self.rng_key, site_key = jax.random.split(self.rng_key)
        msg["kwargs"]["rng_key"] = site_key
        if msg["type"] == "plate":
            self.plate_keys[msg["name"]] = (msg["args"], site_key)


class substitute(Messenger):
    """Replace site values by ``data[name]`` or ``substitute_fn(site)``.

    Applies to ``sample``, ``param``, ``deterministic`` and ``plate`` sites.
    Unlike :class:`condition`, a substituted sample site stays latent.
    """

    def __init__(self, fn=None, data=None, substitute_fn=None):
        if (data is None) == (substitute_fn is None):
            raise ValueError("substitute needs exactly one of data or substitute_fn")
        self.data = data
        self.substitute_fn = substitute_fn
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] not in ("sample", "param", "deterministic", "plate"):
            return
        if self.data is not None:
            value = self.data.get(msg["name"])
        else:
            value = self.substitute_fn(msg)
        if value is not None:
            msg["value"] = value


class condition(Messenger):
    """Observe sample sites: ``data[name]`` becomes the value and the site is
    marked ``is_observed``."""

    def __init__(self, fn=None, data=None, condition_fn=None):
        if (data is None) == (condition_fn is None):
            raise ValueError("condition needs exactly one of data or condition_fn")
        self.data = data
        self.condition_fn = condition_fn
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] != "sample":
            return
        if self.data is not None:
            value = self.data.get(msg["name"])
        else:
            value = self.condition_fn(msg)
        if value is not None:
            msg["value"] = value
            msg["is_observed"] = True


class block(Messenger):
    """Hide sites from the handlers outside this one.

    By default every site is hidden. ``hide`` lists names to hide (others
    are exposed); ``expose`` lists names to expose (others are hidden);
    ``hide_fn(site) -> bool`` decides per site.
    """

    def __init__(self, fn=None, hide_fn=None, hide=None, expose=None):
        if sum(x is not None for x in (hide_fn, hide, expose)) > 1:
            raise ValueError("block takes at most one of hide_fn, hide, expose")
        if hide is not None:
            hidden = set(hide)
            hide_fn = lambda msg: msg["name"] in hidden
        elif expose is not None:
            exposed = set(expose)
            hide_fn = lambda msg: msg["name"] not in exposed
        elif hide_fn is None:
            hide_fn = lambda msg: True
        self.hide_fn = hide_fn
        super().__init__(fn)

    def process_message(self, msg):
        if self.hide_fn(msg):
            msg["stop"] = True


class replay(Messenger):
    """Reuse the values of latent sample sites recorded in ``trace``
    (``guide_trace`` is NumPyro's name for it)."""

    def __init__(self, fn=None, trace=None, guide_trace=None):
        trace = guide_trace if trace is None else trace
        if trace is None:
            raise ValueError("replay needs a trace (a dict of sites from handlers.trace)")
        self.trace = trace
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] not in ("sample", "plate") or msg["name"] not in self.trace:
            return
        if msg["type"] == "sample" and msg["is_observed"]:
            return
        recorded = self.trace[msg["name"]]
        if recorded["type"] != msg["type"]:
            raise ValueError(
                f"replay: site '{msg['name']}' is a {msg['type']} site in the model "
                f"but a {recorded['type']} site in the trace"
            )
        msg["value"] = recorded["value"]


def _check_positive_scale(scale):
    try:
        is_bad = bool(np.any(np.asarray(scale) <= 0))
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return  # traced: cannot check inside jit
    if is_bad:
        raise ValueError(f"scale must be positive, got {scale}")


class scale(Messenger):
    """Multiply the log density of sample sites by ``scale`` (a positive
    number or an array broadcastable to the sites' batch shapes)."""

    def __init__(self, fn=None, scale=1.0):
        _check_positive_scale(scale)
        self.scale = scale
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] != "sample":
            return
        msg["scale"] = self.scale if msg["scale"] is None else self.scale * msg["scale"]


class mask(Messenger):
    """Drop the log density of sample sites where ``mask`` is False.

    ``mask`` is a boolean (or boolean array broadcastable to the sites' batch
    shapes). Values are still drawn everywhere; only the log density changes.
    """

    def __init__(self, fn=None, mask=True):
        dtype = jnp.result_type(mask)
        if dtype != jnp.bool_:
            raise TypeError(f"mask must be boolean, got dtype {dtype}")
        self.mask = mask
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] != "sample":
            return
        msg["fn"] = msg["fn"].mask(self.mask)
        msg["mask"] = self.mask if msg["mask"] is None else msg["mask"] & self.mask

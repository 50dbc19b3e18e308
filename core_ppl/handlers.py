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

import warnings
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.jit import model_scope
from core_ppl.runtime import Messenger, apply_stack, handler_stack

__all__ = [
    "block",
    "condition",
    "do",
    "infer_config",
    "lift",
    "mask",
    "reparam",
    "replay",
    "scale",
    "scope",
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
        # The scope marks the model's own loops for core_ppl.jit's choice of
        # compile options; it changes nothing else.
        with model_scope():
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


# --- reparametrisation, lifting, interventions, scopes -------------------------


def _identity(value):
    return value


def _make_deterministic(msg, value):
    """Turn a sample message into a ``deterministic`` one recording ``value``.

    The keys of :class:`~core_ppl.runtime.Message` stay present, so handlers
    further out (``trace``, ``plate``, ``substitute``) read it as they read a
    site made by :func:`~core_ppl.primitives.deterministic`.
    """
    msg["type"] = "deterministic"
    msg["fn"] = _identity
    msg["args"] = (value,)
    msg["kwargs"] = {}
    msg["value"] = value
    msg["is_observed"] = False
    msg["scale"] = None
    msg["mask"] = None


class reparam(Messenger):
    """Reparametrise sample sites with strategies from
    :mod:`core_ppl.infer.reparam`.

    A strategy is called as ``strategy(name, fn, obs)`` and returns ``(new_fn,
    value)``; it may draw auxiliary sites, which travel through the whole
    handler stack. When ``new_fn`` is None the site becomes a
    ``deterministic`` site recording ``value``: it adds nothing to the log
    density, its auxiliary sites do. Otherwise the site keeps its name with
    distribution ``new_fn``, observed at ``value`` when one is returned.

    Parameters
    ----------
    fn : callable, optional
        The model to wrap.
    config : dict or callable
        ``{site name: strategy}``, or ``config(site) -> strategy or None``
        called on each sample site.

    Examples
    --------
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> from core_ppl.infer.reparam import LocScaleReparam
    >>> def model():
    ...     return ppl.sample("x", dist.Normal(1.0, 2.0))
    >>> noncentred = handlers.reparam(model, config={"x": LocScaleReparam(0)})
    >>> tr = handlers.trace(handlers.seed(noncentred, rng_seed=0)).get_trace()
    >>> [(name, site["type"]) for name, site in tr.items()]
    [('x_decentered', 'sample'), ('x', 'deterministic')]
    >>> bool(tr["x"]["value"] == 1.0 + 2.0 * tr["x_decentered"]["value"])
    True
    """

    def __init__(self, fn=None, config=None):
        if not (isinstance(config, dict) or callable(config)):
            raise TypeError(
                "reparam: config must be a dict {site name: strategy} or a "
                f"callable site -> strategy, got {type(config).__name__}"
            )
        self.config = config
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] != "sample":
            return
        if isinstance(self.config, dict):
            strategy = self.config.get(msg["name"])
        else:
            strategy = self.config(msg)
        if strategy is None:
            return
        new_fn, value = strategy(msg["name"], msg["fn"], msg["value"])
        if new_fn is None and value is None:
            raise ValueError(
                f"reparam: the strategy for site '{msg['name']}' returned neither "
                "a distribution nor a value"
            )
        if new_fn is None:
            _make_deterministic(msg, value)
            return
        if value is not None and msg["value"] is None:
            msg["is_observed"] = True
        msg["fn"] = new_fn
        msg["value"] = value


def _is_distribution(obj):
    return callable(getattr(obj, "sample", None)) and hasattr(obj, "log_prob")


class lift(Messenger):
    """Turn ``param`` sites into ``sample`` sites drawn from a prior.

    Parameters
    ----------
    fn : callable, optional
        The model to wrap.
    prior : Distribution or dict
        One prior for every param site, or ``{param name: prior}``; params
        without a prior in the dict stay params.

    Notes
    -----
    A lifted site is latent and needs a key, so put ``seed`` outside
    ``lift``. A param read twice under one name sees the first draw; the
    second read is hidden from the handlers outside, so traces record one
    site.

    Examples
    --------
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> def model():
    ...     return ppl.param("w", 0.5)
    >>> lifted = handlers.lift(model, prior={"w": dist.Normal(0.0, 1.0)})
    >>> site = handlers.trace(handlers.seed(lifted, rng_seed=0)).get_trace()["w"]
    >>> site["type"], isinstance(site["fn"], dist.Normal)
    ('sample', True)
    """

    def __init__(self, fn=None, prior=None):
        priors = prior.values() if isinstance(prior, dict) else [prior]
        if not all(_is_distribution(p) for p in priors):
            raise TypeError(
                "lift: prior must be a distribution or a dict of distributions, "
                f"got {prior!r}"
            )
        self.prior = prior
        self._lifted = {}
        super().__init__(fn)

    def __enter__(self):
        # A fresh record per run: a wrapped model may run many times.
        self._lifted = {}
        return super().__enter__()

    def process_message(self, msg):
        if msg["type"] != "param":
            return
        name = msg["name"]
        if isinstance(self.prior, dict):
            prior = self.prior.get(name)
        else:
            prior = self.prior
        if prior is None:
            return
        msg["type"] = "sample"
        msg["fn"] = prior
        msg["args"] = ()
        msg["kwargs"] = {"rng_key": None, "sample_shape": ()}
        msg["is_observed"] = False
        if name in self._lifted:
            msg["value"] = self._lifted[name]["value"]
            msg["is_observed"] = True
            msg["stop"] = True
        else:
            # The message itself: its value is filled in by the time the
            # model reads the param again.
            self._lifted[name] = msg


def _send_unintervened_copy(msg, splitters):
    """Send a copy of ``msg`` through the whole stack, as ``do`` does.

    The copy meets the inner handlers again, so the fields they accumulate
    (plate frames, scales, masks) restart empty rather than being applied
    twice. Every ``do`` handler in ``splitters`` lets the copy pass, which
    keeps nested interventions on one site from recursing forever.
    """
    copy = dict(
        msg,
        kwargs=dict(msg["kwargs"]),
        infer=dict(msg["infer"]),
        cond_indep_stack=[],
        scale=None,
        mask=None,
        intermediates=[],
    )
    for h in splitters:
        h._splitting.add(id(copy))
    try:
        apply_stack(copy)
    finally:
        for h in splitters:
            h._splitting.discard(id(copy))


class do(Messenger):
    """Intervene on sample sites: ``do(model, data={"z": 1.0})`` makes the
    model use ``z = 1.0`` downstream.

    As in NumPyro (after Pyro), the intervened site is split in two: a fresh
    draw keeps the name ``z`` and is recorded by the handlers outside, but
    its value is used nowhere; the model continues with the intervention,
    recorded under ``z__CF`` as an observed site that only handlers inside
    ``do`` see. Combined with :class:`condition` this represents
    counterfactuals (single world intervention graphs).

    Parameters
    ----------
    fn : callable, optional
        The model to wrap.
    data : dict
        ``{site name: intervention value}``.

    Examples
    --------
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> def model():
    ...     z = ppl.sample("z", dist.Normal(0.0, 1.0))
    ...     return ppl.sample("y", dist.Normal(z, 0.1))
    >>> intervened = handlers.do(model, data={"z": 10.0})
    >>> tr = handlers.trace(handlers.seed(intervened, rng_seed=0)).get_trace()
    >>> list(tr), bool(tr["z"]["value"] != 10.0), bool(tr["y"]["value"] > 9.0)
    (['z', 'y'], True, True)
    """

    def __init__(self, fn=None, data=None):
        if not isinstance(data, dict):
            raise TypeError(
                f"do: data must be a dict {{site name: value}}, got {data!r}"
            )
        self.data = data
        # ids of the copies this handler is re-sending, so it lets them pass.
        self._splitting = set()
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] != "sample" or id(msg) in self._splitting:
            return
        intervention = self.data.get(msg["name"])
        if intervention is None:
            return
        # Other do handlers splitting this very message: a second intervention.
        others = [
            h for h in handler_stack() if isinstance(h, do) and id(msg) in h._splitting
        ]
        if others:
            warnings.warn(
                f"do: site '{msg['name']}' is intervened on by two do handlers; "
                "this is almost certainly a mistake",
                RuntimeWarning,
                stacklevel=2,
            )
        _send_unintervened_copy(msg, [self, *others])
        msg["name"] = msg["name"] + "__CF"
        msg["value"] = intervention
        msg["is_observed"] = True
        msg["stop"] = True


class scope(Messenger):
    """Prefix the names of sites (and of plates) with ``prefix + divider``.

    Lets one sub-model be used several times in a model without name clashes.

    Parameters
    ----------
    fn : callable, optional
        The model to wrap.
    prefix : str
        The prefix.
    divider : str, default="/"
        Put between the prefix and the name.
    hide_types : list of str, optional
        Site types (``"sample"``, ``"param"``, ``"deterministic"``,
        ``"plate"``) whose names are left alone; with ``"plate"`` the plate
        frames recorded on sites are left alone too.

    Examples
    --------
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> def layer():
    ...     return ppl.sample("w", dist.Normal(0.0, 1.0))
    >>> def model():
    ...     return handlers.scope(layer, prefix="a")() + handlers.scope(
    ...         layer, prefix="b")()
    >>> list(handlers.trace(handlers.seed(model, rng_seed=0)).get_trace())
    ['a/w', 'b/w']
    """

    def __init__(self, fn=None, prefix=None, divider="/", hide_types=None):
        if not isinstance(prefix, str):
            raise TypeError(f"scope: prefix must be a str, got {prefix!r}")
        if not isinstance(divider, str):
            raise TypeError(f"scope: divider must be a str, got {divider!r}")
        self.prefix = prefix
        self.divider = divider
        self.hide_types = frozenset(() if hide_types is None else hide_types)
        super().__init__(fn)

    def _scoped(self, name):
        return f"{self.prefix}{self.divider}{name}"

    def process_message(self, msg):
        if msg["type"] == "prng_key":
            return
        if msg["type"] not in self.hide_types:
            msg["name"] = self._scoped(msg["name"])
        if "plate" not in self.hide_types and msg["cond_indep_stack"]:
            msg["cond_indep_stack"] = [
                frame._replace(name=self._scoped(frame.name))
                for frame in msg["cond_indep_stack"]
            ]


class infer_config(Messenger):
    """Add ``config_fn(site)`` (a dict) to the ``infer`` dict of sample sites.

    Parameters
    ----------
    fn : callable, optional
        The model to wrap.
    config_fn : callable
        ``config_fn(site) -> dict`` of inference hints.

    Examples
    --------
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> def model():
    ...     return ppl.sample("x", dist.Normal(0.0, 1.0))
    >>> configured = handlers.infer_config(model, lambda site: {"tag": 1})
    >>> handlers.trace(handlers.seed(configured, rng_seed=0)).get_trace()["x"]["infer"]
    {'tag': 1}
    """

    def __init__(self, fn=None, config_fn=None):
        if not callable(config_fn):
            raise TypeError(
                f"infer_config: config_fn must be callable, got {config_fn!r}"
            )
        self.config_fn = config_fn
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] != "sample":
            return
        # A new dict: the one the model passed to ``sample`` is never mutated.
        msg["infer"] = {**msg["infer"], **self.config_fn(msg)}

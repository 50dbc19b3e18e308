"""Reparametrisation strategies, applied to a model by
:class:`core_ppl.handlers.reparam`.

A strategy changes the coordinates a sampler sees without changing the model.
Called as ``strategy(name, fn, obs)`` on a sample site, it draws auxiliary
sites (named after the site) and returns ``(new_fn, value)``; with ``new_fn``
None the original site becomes a deterministic function of the auxiliary
ones. The classic use is the funnel of hierarchical models (Neal 2003): in
``theta ~ N(mu, tau)`` the posterior of ``theta`` narrows as ``tau`` shrinks,
which NUTS cannot cross with one step size (divergences); sampling
``theta_decentered ~ N(0, 1)`` and setting ``theta = mu + tau *
theta_decentered`` removes the funnel (Papaspiliopoulos, Roberts and Skold
2007, "A general framework for the parametrization of hierarchical models";
Gorinova, Moore and Hoffman 2020, "Automatic reparameterisation of
probabilistic programs", for the partially centred family used here).

Strategies see through the wrappers that ``plate`` and ``to_event`` add
(:class:`~core_ppl.distributions.ExpandedDistribution`,
:class:`~core_ppl.distributions.Independent`): they rewrite the distribution
inside and wrap the auxiliary one the same way, so the auxiliary site has the
original site's shape and plates.

Examples
--------
>>> import core_ppl as ppl, core_ppl.distributions as dist
>>> from core_ppl import handlers
>>> from core_ppl.infer.reparam import LocScaleReparam
>>> def model():
...     tau = ppl.sample("tau", dist.HalfNormal(1.0))
...     with ppl.plate("J", 3):
...         return ppl.sample("theta", dist.Normal(0.0, tau))
>>> noncentred = handlers.reparam(model, config={"theta": LocScaleReparam(0)})
>>> tr = handlers.trace(handlers.seed(noncentred, rng_seed=0)).get_trace()
>>> tr["theta_decentered"]["fn"].batch_shape, tr["theta"]["type"]
((3,), 'deterministic')
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.distributions import constraints
from core_ppl.distributions.distribution import (
    ExpandedDistribution,
    Independent,
    TransformedDistribution,
)
from core_ppl.primitives import param, sample

__all__ = ["LocScaleReparam", "Reparam", "TransformReparam"]


# --- base class and wrapper handling -------------------------------------------


class Reparam:
    """Base class of reparametrisation strategies.

    Subclasses implement ``__call__(name, fn, obs) -> (new_fn, value)``:
    ``name`` is the site's name, ``fn`` its distribution and ``obs`` its
    value so far (None for a latent site). Returning ``new_fn=None`` with a
    value makes the site deterministic.
    """

    def __call__(self, name, fn, obs):
        raise NotImplementedError

    @staticmethod
    def _unwrap(fn):
        """Strip ``expand``/``to_event`` wrappers from ``fn``.

        Returns the distribution inside, the batch shape the wrappers
        broadcast it to, and the event dim of ``fn``.
        """
        shape, event_dim = fn.shape(), fn.event_dim
        while isinstance(fn, (ExpandedDistribution, Independent)):
            fn = fn.base_dist
        batch_shape = shape[: len(shape) - fn.event_dim]
        return fn, batch_shape, event_dim

    @staticmethod
    def _wrap(fn, batch_shape, event_dim):
        """Broadcast ``fn`` to ``batch_shape`` and reinterpret batch dims as
        event dims until it has ``event_dim`` of them: the inverse of
        :meth:`_unwrap` for a new distribution inside."""
        fn = fn.expand(batch_shape)
        return fn.to_event(event_dim - fn.event_dim)


def _reject_observed(strategy, name, obs):
    # Auxiliary coordinates of data make no sense: the data's value is fixed.
    if obs is not None:
        raise ValueError(
            f"{type(strategy).__name__} reparametrises latent sites only, but "
            f"site '{name}' is observed"
        )


_TRACED_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
)


def _is_concrete_one(x):
    try:
        return bool(np.all(np.asarray(x) == 1))
    except _TRACED_ERRORS:
        return False


def _is_python_zero(x):
    return isinstance(x, (int, float, np.number)) and x == 0


# --- location-scale families -------------------------------------------------------


class LocScaleReparam(Reparam):
    """(Partially) non-centre a location-scale site ``x ~ D(loc, scale)``.

    With centredness ``c`` the site draws ``x_decentered ~ D(c * loc,
    scale ** c)`` and records ``x = loc + scale ** (1 - c) * (x_decentered -
    c * loc)`` as a deterministic site, which has the law of ``x``. ``c = 0``
    is the non-centred parametrisation (``x = loc + scale * eps``), ``c = 1``
    leaves the site alone.

    Parameters
    ----------
    centered : float or array in [0, 1], optional
        Fixed centredness. By default (None) it is learnt: a ``param`` site
        named ``f"{name}_centered"`` in (0, 1), initialised at 0.5 and shaped
        like one event of the site, which SVI optimises (under MCMC it stays
        at its initial value).
    shape_params : tuple of str, default=()
        Parameters of the distribution other than ``loc`` and ``scale``
        (``("df",)`` for ``StudentT``), passed on unchanged.

    Examples
    --------
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> from core_ppl.infer.reparam import LocScaleReparam
    >>> def model():
    ...     return ppl.sample("x", dist.StudentT(3.0, 1.0, 2.0))
    >>> strategy = LocScaleReparam(centered=0, shape_params=("df",))
    >>> reparametrised = handlers.reparam(model, config={"x": strategy})
    >>> tr = handlers.trace(handlers.seed(reparametrised, rng_seed=0)).get_trace()
    >>> d = tr["x_decentered"]["fn"]
    >>> float(d.df), float(d.loc), float(d.scale)
    (3.0, 0.0, 1.0)
    """

    def __init__(self, centered=None, shape_params=()):
        if centered is not None:
            _check_centered(centered)
        if isinstance(shape_params, str) or not all(
            isinstance(p, str) for p in shape_params
        ):
            raise TypeError(
                "LocScaleReparam: shape_params must be a tuple of parameter "
                f"names, got {shape_params!r}"
            )
        self.centered = centered
        self.shape_params = tuple(shape_params)

    def __call__(self, name, fn, obs):
        _reject_observed(self, name, obs)
        _check_real_support(name, fn)
        if self.centered is not None and _is_concrete_one(self.centered):
            return fn, obs
        event_shape = fn.event_shape
        fn, batch_shape, event_dim = self._unwrap(fn)
        _check_loc_scale(name, fn)
        centered = self.centered
        if centered is None:
            centered = param(
                f"{name}_centered",
                jnp.full(event_shape, 0.5),
                constraint=constraints.unit_interval,
            )
        params = {key: getattr(fn, key) for key in self.shape_params}
        if _is_python_zero(centered):
            # Fully non-centred: a standard distribution, free of loc/scale.
            params["loc"] = jnp.zeros_like(fn.loc)
            params["scale"] = jnp.ones_like(fn.scale)
        else:
            params["loc"] = fn.loc * centered
            params["scale"] = fn.scale**centered
        decentered_fn = self._wrap(type(fn)(**params), batch_shape, event_dim)
        decentered = sample(f"{name}_decentered", decentered_fn)
        value = fn.loc + fn.scale ** (1 - centered) * (decentered - centered * fn.loc)
        return None, value


def _check_centered(centered):
    if not isinstance(centered, (int, float, np.number, np.ndarray, jax.Array)):
        raise TypeError(
            "LocScaleReparam: centered must be a number or an array in [0, 1], "
            f"got {type(centered).__name__}"
        )
    try:
        value = np.asarray(centered)
        is_valid = bool(np.all((value >= 0) & (value <= 1)))
    except _TRACED_ERRORS:
        return  # traced: cannot check inside jit
    if not is_valid:
        raise ValueError(
            f"LocScaleReparam: centered must lie in [0, 1], got {centered!r}"
        )


def _check_real_support(name, fn):
    support = fn.support
    while isinstance(support, constraints._Independent):
        support = support.base_constraint
    if support is not constraints.real:
        raise ValueError(
            "LocScaleReparam needs a distribution on the real line, but site "
            f"'{name}' has {type(fn).__name__} with support {fn.support!r}"
        )


def _check_loc_scale(name, fn):
    if not (hasattr(fn, "loc") and hasattr(fn, "scale")):
        raise TypeError(
            "LocScaleReparam needs a location-scale distribution (with loc and "
            f"scale, possibly expanded or to_event-ed); site '{name}' has "
            f"{type(fn).__name__}"
        )


# --- transformed distributions ------------------------------------------------------


class TransformReparam(Reparam):
    """Sample the base of a ``TransformedDistribution`` site and transform it.

    A site ``x ~ TransformedDistribution(base, transforms)`` becomes
    ``x_base ~ base`` (with the site's batch shape and plates) and the
    deterministic site ``x = transforms(x_base)``. The sampler then works on
    the base's coordinates, e.g. a standard normal instead of a log-normal.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> from core_ppl.distributions.transforms import ExpTransform
    >>> from core_ppl.infer.reparam import TransformReparam
    >>> def model():
    ...     base = dist.Normal(0.0, 1.0)
    ...     return ppl.sample("x", dist.TransformedDistribution(base, ExpTransform()))
    >>> reparametrised = handlers.reparam(model, config={"x": TransformReparam()})
    >>> tr = handlers.trace(handlers.seed(reparametrised, rng_seed=0)).get_trace()
    >>> bool(tr["x"]["value"] == jnp.exp(tr["x_base"]["value"]))
    True
    """

    def __call__(self, name, fn, obs):
        _reject_observed(self, name, obs)
        fn, batch_shape, event_dim = self._unwrap(fn)
        if not isinstance(fn, TransformedDistribution):
            raise TypeError(
                "TransformReparam needs a TransformedDistribution (possibly "
                f"expanded or to_event-ed); site '{name}' has {type(fn).__name__}"
            )
        # Event dims the wrappers added to the transformed distribution are
        # added to its base as well.
        base = fn.base_dist
        base_event_dim = base.event_dim + event_dim - fn.event_dim
        value = sample(f"{name}_base", self._wrap(base, batch_shape, base_event_dim))
        for transform in fn.transforms:
            value = transform(value)
        return None, value

"""Initialisation strategies: where a sampler or optimiser starts.

A strategy is a function ``strategy(site) -> constrained value`` used as the
``substitute_fn`` of :class:`~core_ppl.handlers.substitute` while the model runs
under :class:`~core_ppl.handlers.seed` (which gives each site its
``kwargs["rng_key"]``). Called with keyword arguments only, each returns a
configured strategy, so both ``init_to_median`` and
``init_to_median(num_samples=31)`` can be passed. Configured strategies
compare equal when their settings do: a strategy is a static argument of the
compiled samplers, so ``init_to_median(num_samples=31)`` written twice must
not compile twice.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from core_ppl.distributions.transforms import biject_to

__all__ = [
    "init_to_feasible",
    "init_to_median",
    "init_to_sample",
    "init_to_uniform",
    "init_to_value",
]


class _ConfiguredStrategy(partial):
    """A strategy with its settings, equal to another with the same ones
    (settings that cannot be hashed, such as arrays, fall back to identity)."""

    def _settings(self):
        return (self.func, self.args, tuple(sorted(self.keywords.items())))

    def _hashable_settings(self):
        try:
            hash(self._settings())
        except TypeError:
            return None
        return self._settings()

    def __hash__(self):
        settings = self._hashable_settings()
        return object.__hash__(self) if settings is None else hash(settings)

    def __eq__(self, other):
        if not isinstance(other, _ConfiguredStrategy):
            return NotImplemented
        mine, theirs = self._hashable_settings(), other._hashable_settings()
        if mine is None or theirs is None:
            return self is other
        return mine == theirs


def uniform_radius(init_strategy):
    """The radius if ``init_strategy`` is :func:`init_to_uniform` (plain or
    configured), else None: inference may then draw the whole unconstrained
    vector at once instead of running the strategy site by site."""
    if init_strategy is init_to_uniform:
        return 2.0
    if init_strategy is init_to_feasible:
        # The box of radius 0: the point 0 of the unconstrained space.
        return 0.0
    if isinstance(init_strategy, partial) and init_strategy.func is init_to_uniform:
        return float(init_strategy.keywords.get("radius", 2.0))
    return None


def _is_latent(site):
    return site["type"] == "sample" and not site["is_observed"]


def init_to_uniform(site=None, radius=2.0):
    """Start each latent uniformly in ``(-radius, radius)`` on the
    unconstrained space (Stan's default, radius 2)."""
    if site is None:
        return _ConfiguredStrategy(init_to_uniform, radius=radius)
    if not _is_latent(site) or site["value"] is not None:
        return None
    fn = site["fn"]
    transform = biject_to(fn.support)
    shape = fn.shape(site["kwargs"].get("sample_shape", ()))
    unconstrained_shape = transform.inverse_shape(shape)
    key = site["kwargs"]["rng_key"]
    unconstrained = jax.random.uniform(
        key, unconstrained_shape, minval=-radius, maxval=radius
    )
    return transform(unconstrained)


def init_to_feasible(site=None):
    """Start each latent at an arbitrary point of its support, ignoring the
    distribution's parameters: the image of 0 on the unconstrained space
    (e.g. 0 for a real, 1 for a positive value, the midpoint of an
    interval, the uniform vector of a simplex), as NumPyro's strategy.

    Deterministic, so retries of the initial-point search all give the same
    point; use it where any valid point will do.
    """
    if site is None:
        return init_to_feasible
    if not _is_latent(site) or site["value"] is not None:
        return None
    fn = site["fn"]
    transform = biject_to(fn.support)
    shape = fn.shape(site["kwargs"].get("sample_shape", ()))
    return transform(jnp.zeros(transform.inverse_shape(shape)))


def init_to_sample(site=None):
    """Start each latent at a draw from its prior."""
    if site is None:
        return init_to_sample
    if not _is_latent(site) or site["value"] is not None:
        return None
    return site["fn"].sample(
        site["kwargs"]["rng_key"], site["kwargs"].get("sample_shape", ())
    )


def init_to_median(site=None, num_samples=15):
    """Start each latent at the elementwise median of ``num_samples`` prior
    draws: a robust central point that exists for heavy-tailed priors.
    A site whose distribution cannot be sampled (``ImproperUniform``)
    starts as :func:`init_to_uniform` with radius 2 starts it."""
    if site is None:
        return _ConfiguredStrategy(init_to_median, num_samples=num_samples)
    if not _is_latent(site) or site["value"] is not None:
        return None
    sample_shape = (num_samples,) + tuple(site["kwargs"].get("sample_shape", ()))
    try:
        draws = site["fn"].sample(site["kwargs"]["rng_key"], sample_shape)
    except NotImplementedError:
        return init_to_uniform(site)
    return jnp.median(draws, axis=0)


def init_to_value(site=None, values=None):
    """Start at the given constrained ``values`` (a dict by site name); other
    latents start as :func:`init_to_uniform`."""
    values = {} if values is None else values
    if site is None:
        return _ConfiguredStrategy(init_to_value, values=values)
    if not _is_latent(site) or site["value"] is not None:
        return None
    if site["name"] in values:
        return jnp.asarray(values[site["name"]])
    return init_to_uniform(site)

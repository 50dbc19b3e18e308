"""Finite mixtures: a Categorical choice of component, then a draw from it.

A mixture of ``K`` components with weights ``w`` has density ``p(x) =
sum_k w_k p_k(x)``, computed in log space as ``logsumexp_k(log w_k + log
p_k(x))`` so that it stays finite when every component density underflows.
The component index is marginalised out, which makes a mixture usable as the
likelihood of a gradient-based sampler (NUTS) with no discrete latent.

Two ways to give the components, as in NumPyro:

* :class:`MixtureSameFamily`: one distribution whose rightmost batch
  dimension, of size ``K``, indexes the components (e.g. ``Normal(locs,
  scales)`` with ``locs`` of shape ``(K,)``);
* :class:`MixtureGeneral`: a list of ``K`` distributions of any families that
  share one support and event shape.

:func:`Mixture` picks between them from the type of its second argument.
Moments follow from the law of total expectation and variance: ``E[x] =
sum_k w_k mu_k`` and ``Var[x] = sum_k w_k (sigma_k^2 + (mu_k - E[x])^2)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from core_ppl.distributions.discrete import Categorical
from core_ppl.distributions.distribution import Distribution, broadcast_param_shapes

__all__ = ["Mixture", "MixtureGeneral", "MixtureSameFamily"]


# --- shared machinery ------------------------------------------------------------


def _check_mixing(name, mixing_distribution):
    if not isinstance(mixing_distribution, Categorical):
        raise TypeError(
            f"{name}: mixing_distribution must be a Categorical, got "
            f"{type(mixing_distribution).__name__}"
        )
    return mixing_distribution.num_categories


class _MixtureBase(Distribution):
    """What both mixtures share once the components are stacked.

    Subclasses provide ``_stacked_log_probs(value)``, ``_stacked_cdfs(value)``,
    ``_stacked_samples(key, sample_shape)``, ``_stacked_means()`` and
    ``_stacked_variances()``: each result carries a mixture axis of size ``K``
    just left of the event dims, i.e. at ``-(event_dim + 1)`` (last for the
    log densities and CDFs).

    ``has_rsample`` stays False: a draw is a discrete choice of component,
    so it is not differentiable with respect to the weights.
    """

    @property
    def mixture_size(self):
        """The number of components ``K``."""
        return self.mixing_distribution.num_categories

    @property
    def mixture_dim(self):
        """Position of the mixture axis in stacked component values."""
        return -self.event_dim - 1

    def _log_weights(self):
        # Categorical stores probs or logits; either way, normalised log weights.
        mixing = self.mixing_distribution
        if "logits" in mixing.__dict__:
            return jax.nn.log_softmax(mixing.logits, axis=-1)
        return jnp.log(mixing.probs)

    def _weights_for_event(self):
        """Weights of shape ``batch + (K,) + (1,) * event_dim``, for moments."""
        weights = jnp.exp(self._log_weights())
        return jnp.reshape(weights, weights.shape + (1,) * self.event_dim)

    def component_log_probs(self, value):
        """``log w_k + log p_k(value)`` for each component, on the last axis.

        Normalising over the last axis gives the posterior probability that
        ``value`` came from each component (the responsibilities).
        """
        return self._log_weights() + self._stacked_log_probs(value)

    def log_prob(self, value):
        value = self._check_value(value)
        return logsumexp(self.component_log_probs(value), axis=-1)

    def cdf(self, value):
        """``P(X <= value) = sum_k w_k F_k(value)``, for univariate components
        that define ``cdf``."""
        if self.event_dim:
            raise NotImplementedError(
                f"{type(self).__name__}.cdf needs univariate components, got "
                f"event shape {self.event_shape}"
            )
        weights = jnp.exp(self._log_weights())
        return jnp.sum(weights * self._stacked_cdfs(value), axis=-1)

    def sample_with_intermediates(self, key, sample_shape=()):
        """Draw ``(samples, [indices])``: the values and the chosen components."""
        key_mix, key_comp = jax.random.split(key)
        sample_shape = tuple(sample_shape)
        logits = jnp.broadcast_to(
            self._log_weights(), self.batch_shape + (self.mixture_size,)
        )
        indices = jax.random.categorical(
            key_mix, logits, axis=-1, shape=sample_shape + self.batch_shape
        )
        # Every component is drawn and the chosen one kept: vectorised, and the
        # draw stays reparameterised given the indices.
        stacked = self._stacked_samples(key_comp, sample_shape)
        picks = jnp.reshape(indices, indices.shape + (1,) * (self.event_dim + 1))
        picks = jnp.broadcast_to(
            picks, indices.shape + (1,) + stacked.shape[len(indices.shape) + 1 :]
        )
        samples = jnp.take_along_axis(stacked, picks, axis=self.mixture_dim)
        return jnp.squeeze(samples, axis=self.mixture_dim), [indices]

    def sample(self, key, sample_shape=()):
        return self.sample_with_intermediates(key, sample_shape)[0]

    @property
    def mean(self):
        weights = self._weights_for_event()
        return jnp.sum(weights * self._stacked_means(), axis=self.mixture_dim)

    @property
    def variance(self):
        weights = self._weights_for_event()
        means = self._stacked_means()
        mean = jnp.sum(weights * means, axis=self.mixture_dim, keepdims=True)
        spread = self._stacked_variances() + (means - mean) ** 2
        return jnp.sum(weights * spread, axis=self.mixture_dim)


def _broadcast_stacked(x, batch_shape, k, event_shape):
    return jnp.broadcast_to(x, tuple(batch_shape) + (k,) + tuple(event_shape))


# --- same family -------------------------------------------------------------------


class MixtureSameFamily(_MixtureBase):
    """A mixture whose components are the batch of one distribution.

    Parameters
    ----------
    mixing_distribution : Categorical
        The weights, over ``K`` categories; its batch shape broadcasts with
        the mixture's.
    component_distribution : Distribution
        The components, indexed by its rightmost batch dimension, of size
        ``K``. Its event shape is the mixture's (univariate or multivariate
        components alike).

    Attributes
    ----------
    mixture_size : int
        ``K``.

    Notes
    -----
    Like the other wrappers, a mixture keeps its batch shape across ``vmap``
    only when every leaf carries the mapped axis: give the weights and the
    components the full batch shape, or build the mixture inside the mapped
    function.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import core_ppl.distributions as dist
    >>> mix = dist.MixtureSameFamily(
    ...     dist.Categorical(probs=jnp.array([0.3, 0.7])),
    ...     dist.Normal(jnp.array([-1.0, 1.0]), jnp.array([0.1, 0.5])),
    ... )
    >>> mix.batch_shape, mix.event_shape, mix.mixture_size
    ((), (), 2)
    >>> round(float(mix.mean), 4), round(float(mix.variance), 4)
    (0.4, 1.018)
    """

    def __init__(
        self, mixing_distribution, component_distribution, *, validate_args=None
    ):
        name = "MixtureSameFamily"
        k = _check_mixing(name, mixing_distribution)
        if not isinstance(component_distribution, Distribution):
            raise TypeError(
                f"{name}: component_distribution must be a Distribution, got "
                f"{type(component_distribution).__name__}"
            )
        comp_batch = component_distribution.batch_shape
        if not comp_batch or comp_batch[-1] != k:
            raise ValueError(
                f"{name}: the rightmost batch dimension of component_distribution "
                f"(batch shape {comp_batch}) must index the {k} components of "
                "mixing_distribution"
            )
        batch_shape = broadcast_param_shapes(
            name,
            mixing_distribution=mixing_distribution.batch_shape,
            component_distribution=comp_batch[:-1],
        )
        self.mixing_distribution = mixing_distribution
        self.component_distribution = component_distribution
        super().__init__(
            batch_shape,
            component_distribution.event_shape,
            validate_args=validate_args,
        )

    def _infer_batch_shape(self, default):
        # Rebuilt from the children after a vmap, as plain distributions do.
        mixing, comp = self.mixing_distribution, self.component_distribution
        if isinstance(mixing, Distribution) and isinstance(comp, Distribution):
            try:
                return jnp.broadcast_shapes(mixing.batch_shape, comp.batch_shape[:-1])
            except ValueError:
                pass
        return default

    @property
    def support(self):
        return self.component_distribution.support

    def _stacked_log_probs(self, value):
        # Insert the mixture axis left of the event dims; the components
        # broadcast the value against their batch of K.
        value = jnp.expand_dims(value, self.mixture_dim)
        return self.component_distribution.log_prob(value)

    def _stacked_cdfs(self, value):
        return self.component_distribution.cdf(jnp.expand_dims(value, -1))

    def _stacked_samples(self, key, sample_shape):
        comp = self.component_distribution
        full_batch = self.batch_shape + (self.mixture_size,)
        return comp.expand(full_batch).sample(key, sample_shape)

    def _stacked_means(self):
        comp = self.component_distribution
        return _broadcast_stacked(
            comp.mean, self.batch_shape, self.mixture_size, self.event_shape
        )

    def _stacked_variances(self):
        comp = self.component_distribution
        return _broadcast_stacked(
            comp.variance, self.batch_shape, self.mixture_size, self.event_shape
        )


# --- general -------------------------------------------------------------------------


class MixtureGeneral(_MixtureBase):
    """A mixture of a list of distributions, possibly of different families.

    Parameters
    ----------
    mixing_distribution : Categorical
        The weights, over ``K`` categories.
    component_distributions : list of Distribution
        ``K`` distributions with one event shape and batch shapes that
        broadcast with ``mixing_distribution``'s.
    support : Constraint, optional
        The mixture's support. By default the components' common support;
        components whose supports differ (``positive`` and ``real``, say)
        need it given explicitly.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import core_ppl.distributions as dist
    >>> mix = dist.MixtureGeneral(
    ...     dist.Categorical(probs=jnp.array([0.5, 0.5])),
    ...     [dist.Normal(0.0, 1.0), dist.StudentT(5.0, 2.0, 1.0)],
    ... )
    >>> mix.mixture_size, float(mix.mean)
    (2, 1.0)
    """

    def __init__(
        self,
        mixing_distribution,
        component_distributions,
        *,
        support=None,
        validate_args=None,
    ):
        name = "MixtureGeneral"
        k = _check_mixing(name, mixing_distribution)
        components = self._check_components(name, k, component_distributions)
        component_shapes = {
            f"component_distributions[{i}]": c.batch_shape
            for i, c in enumerate(components)
        }
        batch_shape = broadcast_param_shapes(
            name,
            mixing_distribution=mixing_distribution.batch_shape,
            **component_shapes,
        )
        self._check_common_support(name, components, support)
        self.mixing_distribution = mixing_distribution
        self.component_distributions = components
        self._support = support
        super().__init__(
            batch_shape, components[0].event_shape, validate_args=validate_args
        )

    @staticmethod
    def _check_components(name, k, component_distributions):
        components = list(component_distributions)
        if not all(isinstance(c, Distribution) for c in components):
            raise TypeError(
                f"{name}: component_distributions must be a list of Distributions, "
                f"got {[type(c).__name__ for c in components]}"
            )
        if len(components) != k:
            raise ValueError(
                f"{name}: mixing_distribution has {k} categories but "
                f"{len(components)} component_distributions were given"
            )
        event_shapes = {c.event_shape for c in components}
        if len(event_shapes) > 1:
            raise ValueError(
                f"{name}: component_distributions must share one event shape, got "
                f"{[c.event_shape for c in components]}"
            )
        return components

    @staticmethod
    def _check_common_support(name, components, support):
        if support is not None:
            return
        first = components[0].support
        # Parametrised supports (interval(a, b)) are new objects per
        # distribution: compare their printed form, which names the bounds.
        differ = [
            c.support is not first and repr(c.support) != repr(first)
            for c in components
        ]
        if any(differ):
            raise ValueError(
                f"{name}: component_distributions have different supports "
                f"{[repr(c.support) for c in components]}; pass support= to "
                "name the mixture's"
            )

    @property
    def support(self):
        if self._support is not None:
            return self._support
        return self.component_distributions[0].support

    # The list of components is a pytree child, so jit/vmap/grad see its leaves.
    def _leaf_names(self):
        return super()._leaf_names() + ("component_distributions",)

    def _infer_batch_shape(self, default):
        children = [self.mixing_distribution, *self.component_distributions]
        if all(isinstance(c, Distribution) for c in children):
            try:
                return jnp.broadcast_shapes(*(c.batch_shape for c in children))
            except ValueError:
                pass
        return default

    def _stack(self, values):
        shape = self.batch_shape + self.event_shape
        return jnp.stack(
            [jnp.broadcast_to(v, shape) for v in values], axis=self.mixture_dim
        )

    @staticmethod
    def _stack_batched(values):
        # Per-component results over sample + batch dims, stacked last.
        shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in values))
        return jnp.stack([jnp.broadcast_to(v, shape) for v in values], axis=-1)

    def _stacked_log_probs(self, value):
        return self._stack_batched(
            [c.log_prob(value) for c in self.component_distributions]
        )

    def _stacked_cdfs(self, value):
        return self._stack_batched([c.cdf(value) for c in self.component_distributions])

    def _stacked_samples(self, key, sample_shape):
        keys = jax.random.split(key, self.mixture_size)
        draws = [
            c.expand(self.batch_shape).sample(k, sample_shape)
            for k, c in zip(keys, self.component_distributions)
        ]
        return jnp.stack(draws, axis=self.mixture_dim)

    def _stacked_means(self):
        return self._stack([c.mean for c in self.component_distributions])

    def _stacked_variances(self):
        return self._stack([c.variance for c in self.component_distributions])


def Mixture(
    mixing_distribution, component_distributions, *, support=None, validate_args=None
):
    """A mixture: :class:`MixtureSameFamily` or :class:`MixtureGeneral`.

    Parameters
    ----------
    mixing_distribution : Categorical
        The weights over ``K`` components.
    component_distributions : Distribution or list of Distribution
        One distribution whose rightmost batch dimension indexes the ``K``
        components, or a list of ``K`` distributions.
    support : Constraint, optional
        Only for a list of components; see :class:`MixtureGeneral`.

    Returns
    -------
    MixtureSameFamily or MixtureGeneral

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import core_ppl.distributions as dist
    >>> weights = dist.Categorical(probs=jnp.array([0.4, 0.6]))
    >>> type(dist.Mixture(weights, dist.Normal(jnp.zeros(2), 1.0))).__name__
    'MixtureSameFamily'
    >>> type(dist.Mixture(weights, [dist.Normal(), dist.Laplace()])).__name__
    'MixtureGeneral'
    """
    if isinstance(component_distributions, Distribution):
        if support is not None:
            raise ValueError(
                "Mixture: support= applies to a list of component_distributions; "
                "a single component distribution brings its own support"
            )
        return MixtureSameFamily(
            mixing_distribution, component_distributions, validate_args=validate_args
        )
    return MixtureGeneral(
        mixing_distribution,
        component_distributions,
        support=support,
        validate_args=validate_args,
    )

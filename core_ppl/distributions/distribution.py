"""The ``Distribution`` base class, its wrappers and a few special distributions.

Shapes follow NumPyro (and the Pyro tensor-shape tutorial): a draw from
``d.sample(key, sample_shape)`` has shape ``sample_shape + batch_shape +
event_shape``. ``batch_shape`` indexes independent, not identically
distributed, copies; ``event_shape`` is the shape of one draw, whose
coordinates are dependent (or declared so with ``to_event``). ``log_prob``
sums over the event dims, so its result has shape ``broadcast(sample_shape +
batch_shape)``.

Every subclass is registered as a JAX pytree whose leaves are its array
attributes (its parameters, and the base distribution of a wrapper) and whose
static part holds the shapes, flags and constraints. So a
distribution can be passed through ``jit``, ``vmap`` and ``grad``. Unflattening
never re-runs ``__init__`` (leaves may be tracers, gradients or placeholders)
and never validates; the batch shape is re-derived from the parameter leaves
(constructors broadcast every parameter to the batch shape), which keeps
``vmap`` over a distribution's leading batch axis consistent. Wrappers keep
their recorded shapes, so map over plain distributions, or build wrappers
inside the mapped function.

Wrappers: :class:`ExpandedDistribution` (``expand``), :class:`Independent`
(``to_event``), :class:`MaskedDistribution` (``mask``),
:class:`TransformedDistribution` (a base pushed through bijections). Special
distributions:
:class:`Delta`, :class:`Unit` (used by ``factor``) and
:class:`ImproperUniform`.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.distributions import constraints
from core_ppl.distributions.transforms import ComposeTransform, Transform
from core_ppl.distributions.util import sum_rightmost

__all__ = [
    "Delta",
    "Distribution",
    "ExpandedDistribution",
    "ImproperUniform",
    "Independent",
    "MaskedDistribution",
    "TransformedDistribution",
    "Unit",
    "enable_validation",
    "validation_enabled",
]


# --- helpers ----------------------------------------------------------------


def is_tracer(x):
    """True when ``x`` is abstract (inside ``jit``/``grad``), so not checkable."""
    return isinstance(x, jax.core.Tracer)


def as_float_array(x):
    """``x`` as a JAX array of the default float dtype unless already floating."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def broadcast_param_shapes(dist_name, **shapes):
    """Broadcast parameter shapes, naming every parameter if they clash."""
    try:
        return tuple(jnp.broadcast_shapes(*shapes.values()))
    except ValueError:
        detail = ", ".join(f"{k} with shape {tuple(v)}" for k, v in shapes.items())
        raise ValueError(
            f"{dist_name}: parameter shapes do not broadcast: {detail}"
        ) from None


def _describe(value):
    value = np.asarray(value)
    if value.size <= 6:
        return f"{value.tolist()!r}"
    return f"an array of shape {value.shape}"


def check_param(dist_name, name, constraint, value):
    """Raise ``ValueError`` when a concrete ``value`` is outside ``constraint``."""
    ok = constraint(value)
    if is_tracer(ok) or bool(jnp.all(ok)):
        return
    bad = np.asarray(value)
    if constraint.event_dim == 0 and bad.ndim:
        bad = bad[~np.asarray(jnp.broadcast_to(ok, bad.shape))]
    raise ValueError(
        f"{dist_name}: parameter '{name}' must satisfy the constraint "
        f"{constraint!r}, got invalid value(s) {_describe(bad)}"
    )


# --- validation by default -----------------------------------------------------

# What ``validate_args=None`` means: the process-wide default set by
# ``enable_validation`` (NumPyro's convention), False until a user opts in.
_VALIDATE_BY_DEFAULT = [False]


def enable_validation(is_validate=True):
    """Validate the parameters and ``log_prob`` values of every distribution
    created without an explicit ``validate_args`` (or stop, with False).

    A setting the user opts into for the whole process, as NumPyro's
    ``enable_validation``; the packages never call it. Checks run on concrete
    values only, so jitted code is unaffected.

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> with dist.validation_enabled():  # doctest: +ELLIPSIS
    ...     dist.Normal(0.0, -1.0)
    Traceback (most recent call last):
    ...
    ValueError: Normal: parameter 'scale' must satisfy the constraint positive, ...
    """
    _VALIDATE_BY_DEFAULT[0] = bool(is_validate)


@contextlib.contextmanager
def validation_enabled(is_validate=True):
    """``enable_validation(is_validate)`` inside a ``with`` block only."""
    previous = _VALIDATE_BY_DEFAULT[0]
    enable_validation(is_validate)
    try:
        yield
    finally:
        enable_validation(previous)


# --- base class ---------------------------------------------------------------


class Distribution:
    """A probability distribution over arrays (base class).

    Parameters
    ----------
    batch_shape : tuple, default=()
        Shape of the independent copies.
    event_shape : tuple, default=()
        Shape of one draw.
    validate_args : bool, optional
        Check parameters at construction and values in ``log_prob``, raising
        ``ValueError`` on the first violation. Checks only run on concrete
        arrays (not under ``jit``).

    Attributes
    ----------
    arg_constraints : dict
        Constraint of each named parameter.
    support : Constraint
        The set the values live in.
    has_rsample : bool
        True when ``sample`` is differentiable with respect to the
        parameters (reparameterised), as needed by SVI's pathwise gradient.
    """

    arg_constraints: dict = {}
    support = None
    has_rsample = False
    reparametrized_params: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(
            cls, lambda d: d.tree_flatten(), cls.tree_unflatten
        )

    def __init__(self, batch_shape=(), event_shape=(), *, validate_args=None):
        self._batch_shape = tuple(int(s) for s in batch_shape)
        self._event_shape = tuple(int(s) for s in event_shape)
        if validate_args is None:
            validate_args = _VALIDATE_BY_DEFAULT[0]
        self._validate_args = bool(validate_args)
        if self._validate_args:
            self._validate_params()

    # --- pytree protocol --------------------------------------------------

    def _leaf_names(self):
        # Parameters and any other array or distribution attribute are leaves;
        # everything else (shapes, flags, constraints, None) is static.
        return tuple(
            name
            for name, value in self.__dict__.items()
            if isinstance(value, (jax.Array, np.ndarray, Distribution))
            or (name in self.arg_constraints and value is not None)
        )

    def tree_flatten(self):
        leaf_names = self._leaf_names()
        static = tuple(
            sorted((k, v) for k, v in self.__dict__.items() if k not in leaf_names)
        )
        return tuple(self.__dict__[n] for n in leaf_names), (leaf_names, static)

    @classmethod
    def tree_unflatten(cls, aux, leaves):
        leaf_names, static = aux
        self = object.__new__(cls)
        self.__dict__.update(dict(static))
        self.__dict__.update(zip(leaf_names, leaves))
        self._batch_shape = self._infer_batch_shape(self._batch_shape)
        return self

    def _infer_batch_shape(self, default):
        # After vmap strips (or adds) a leading axis the leaves' shapes, not
        # the recorded shape, are the truth. Leaves that are not arrays
        # (tree-structure placeholders) leave the recorded shape in place.
        shapes = []
        for name, constraint in self.arg_constraints.items():
            value = self.__dict__.get(name)
            if value is None:
                continue
            shape = getattr(value, "shape", None)
            if shape is None and not isinstance(value, (int, float)):
                return default
            shape = tuple(jnp.shape(value))
            shapes.append(shape[: len(shape) - constraint.event_dim])
        if not shapes:
            return default
        try:
            return tuple(jnp.broadcast_shapes(*shapes))
        except ValueError:
            return default

    # --- shapes -----------------------------------------------------------

    @property
    def batch_shape(self):
        """Shape of the independent copies, a tuple."""
        return self._batch_shape

    @property
    def event_shape(self):
        """Shape of one draw, a tuple."""
        return self._event_shape

    @property
    def event_dim(self):
        """Number of event dimensions."""
        return len(self._event_shape)

    @property
    def is_discrete(self):
        """True when the support is a set of integers."""
        return self.support.is_discrete

    def shape(self, sample_shape=()):
        """Shape of ``sample(key, sample_shape)``."""
        return tuple(sample_shape) + self.batch_shape + self.event_shape

    # --- validation -------------------------------------------------------

    def _validate_params(self):
        name = type(self).__name__
        for param, constraint in self.arg_constraints.items():
            value = self.__dict__.get(param)
            if value is not None:
                check_param(name, param, constraint, value)

    def _validate_sample(self, value):
        """Raise ``ValueError`` when a concrete ``value`` is outside the support."""
        ok = self.support(value)
        if is_tracer(ok) or bool(jnp.all(ok)):
            return
        raise ValueError(
            f"{type(self).__name__}: log_prob value outside the support "
            f"{self.support!r}: {_describe(value)}"
        )

    def _check_value(self, value):
        """``value`` as an array, validated when ``validate_args`` is set."""
        value = jnp.asarray(value)
        if self._validate_args:
            self._validate_sample(value)
        return value

    # --- the distribution interface -------------------------------------

    def sample(self, key, sample_shape=()):
        """Draw an array of shape ``sample_shape + batch_shape + event_shape``."""
        raise NotImplementedError

    def __call__(self, rng_key=None, sample_shape=()):
        # The handler runtime calls ``fn(rng_key=..., sample_shape=...)``.
        return self.sample(rng_key, sample_shape)

    def log_prob(self, value):
        """Log density (or mass) of ``value``, summed over the event dims."""
        raise NotImplementedError

    @property
    def mean(self):
        """The mean, of shape ``batch_shape + event_shape``."""
        raise NotImplementedError(f"{type(self).__name__} does not define a mean")

    @property
    def variance(self):
        """The variance, of shape ``batch_shape + event_shape``."""
        raise NotImplementedError(f"{type(self).__name__} does not define a variance")

    # --- optional methods (NumPyro's names), where a closed form exists ------

    has_enumerate_support = False

    def cdf(self, value):
        """The cumulative distribution function ``P(X <= value)``."""
        raise NotImplementedError(f"{type(self).__name__} does not define cdf")

    def icdf(self, q):
        """The quantile function, inverse of :meth:`cdf`."""
        raise NotImplementedError(f"{type(self).__name__} does not define icdf")

    def entropy(self):
        """The entropy ``-E[log p(X)]``, of shape ``batch_shape``."""
        raise NotImplementedError(f"{type(self).__name__} does not define entropy")

    def enumerate_support(self, expand=True):
        """Every value of a finite support, along a new leftmost axis.

        With ``expand=True`` the result has shape ``(n,) + batch_shape +
        event_shape``; with ``expand=False`` the batch dims are left as
        ones, to be broadcast (NumPyro's convention, used by enumeration).
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no finite support to enumerate"
        )

    @classmethod
    def infer_shapes(cls, *args, **kwargs):
        """``(batch_shape, event_shape)`` of ``cls(*args, **kwargs)`` from the
        shapes of its array arguments, without creating any array.

        Tuples stand for the shapes of array arguments; other arguments (a
        dimension, a method name) are passed as they are. The constructor
        runs once on abstract values (``jax.eval_shape``).

        Examples
        --------
        >>> import core_ppl.distributions as dist
        >>> dist.Normal.infer_shapes((3, 1), (4,))
        ((3, 4), ())
        >>> dist.Dirichlet.infer_shapes((5, 3))
        ((5,), (3,))
        """
        found = []

        def abstract(x):
            if isinstance(x, tuple) and all(isinstance(s, int) for s in x):
                return jax.ShapeDtypeStruct(x, jnp.result_type(float))
            return None

        shaped = [abstract(a) for a in args]
        shaped_kw = {k: abstract(v) for k, v in kwargs.items()}

        def build(array_args, array_kwargs):
            a = [x if s is None else s for x, s in zip(args, array_args)]
            k = {
                name: kwargs[name] if arr is None else arr
                for name, arr in array_kwargs.items()
            }
            d = cls(*a, **k)
            found.append((tuple(d.batch_shape), tuple(d.event_shape)))
            return jnp.zeros(())

        jax.eval_shape(build, shaped, shaped_kw)
        return found[0]

    # --- reshaping ----------------------------------------------------------

    def expand(self, batch_shape):
        """Broadcast to a larger ``batch_shape`` (draws are independent)."""
        batch_shape = tuple(int(s) for s in batch_shape)
        if batch_shape == self.batch_shape:
            return self
        return ExpandedDistribution(self, batch_shape)

    def expand_by(self, sample_shape):
        """Prepend ``sample_shape`` to the batch shape."""
        return self.expand(tuple(sample_shape) + self.batch_shape)

    def to_event(self, reinterpreted_batch_ndims=None):
        """Declare the rightmost ``n`` batch dims (default: all) as event dims."""
        n = reinterpreted_batch_ndims
        n = len(self.batch_shape) if n is None else int(n)
        if n == 0:
            return self
        return Independent(self, n)

    def mask(self, mask):
        """Drop the log density where ``mask`` is False (bool or bool array)."""
        if isinstance(mask, bool) and mask:
            return self
        return MaskedDistribution(self, mask)

    def __repr__(self):
        return (
            f"{type(self).__name__}(batch_shape={self.batch_shape}, "
            f"event_shape={self.event_shape})"
        )


# --- wrappers -------------------------------------------------------------------


def _expansion_plan(base_batch, batch_shape, name):
    """Check that ``base_batch`` broadcasts to ``batch_shape``; return new dims.

    Returns the positions (in ``batch_shape``) where the base has no draw of
    its own: left of the base's dims, or where the base has size 1.
    """
    if len(base_batch) > len(batch_shape):
        raise ValueError(
            f"{name}.expand: cannot expand batch shape {base_batch} to the "
            f"shorter shape {batch_shape}"
        )
    padded = (1,) * (len(batch_shape) - len(base_batch)) + tuple(base_batch)
    for old, new in zip(padded, batch_shape):
        if old != new and old != 1:
            raise ValueError(
                f"{name}.expand: cannot expand batch shape {base_batch} to "
                f"{batch_shape} (sizes must match or be 1)"
            )
    return tuple(i for i, (o, n) in enumerate(zip(padded, batch_shape)) if o != n)


class ExpandedDistribution(Distribution):
    """``base_dist`` broadcast to a larger batch shape with independent draws."""

    def __init__(self, base_dist, batch_shape):
        batch_shape = tuple(int(s) for s in batch_shape)
        name = type(base_dist).__name__
        if isinstance(base_dist, ExpandedDistribution):
            # Check against the expanded shape, then expand the original.
            _expansion_plan(base_dist.batch_shape, batch_shape, name)
            base_dist = base_dist.base_dist
        self._new_dims = _expansion_plan(base_dist.batch_shape, batch_shape, name)
        self.base_dist = base_dist
        super().__init__(batch_shape, base_dist.event_shape)

    def _infer_batch_shape(self, default):
        return default

    @property
    def support(self):
        return self.base_dist.support

    @property
    def has_rsample(self):
        return self.base_dist.has_rsample

    def sample(self, key, sample_shape=()):
        sample_shape = tuple(sample_shape)
        n_sample, n_batch = len(sample_shape), len(self.batch_shape)
        extra = tuple(self.batch_shape[i] for i in self._new_dims)
        draws = self.base_dist.sample(key, sample_shape + extra)
        # draws: sample + extra + base_batch + event. Pad base_batch with ones
        # on the left, then move each extra axis to its place in the batch.
        pad = n_batch - len(self.base_dist.batch_shape)
        lead = n_sample + len(extra)
        draws = jnp.reshape(draws, draws.shape[:lead] + (1,) * pad + draws.shape[lead:])
        order = list(range(n_sample))
        singletons = []
        for i in range(n_batch):
            if i in self._new_dims:
                order.append(n_sample + self._new_dims.index(i))
                singletons.append(lead + i)
            else:
                order.append(lead + i)
        order += list(range(lead + n_batch, draws.ndim)) + singletons
        draws = jnp.transpose(draws, order)
        return jnp.reshape(draws, self.shape(sample_shape))

    def log_prob(self, value):
        log_prob = self.base_dist.log_prob(value)
        value_batch = jnp.shape(value)[: jnp.ndim(value) - self.event_dim]
        shape = jnp.broadcast_shapes(value_batch, self.batch_shape)
        return jnp.broadcast_to(log_prob, shape)

    @property
    def mean(self):
        return jnp.broadcast_to(self.base_dist.mean, self.shape())

    @property
    def variance(self):
        return jnp.broadcast_to(self.base_dist.variance, self.shape())

    def _broadcast_batch(self, x):
        """``x`` of the base's batch shape broadcast to this batch shape."""
        x_batch = jnp.shape(x)[: jnp.ndim(x) - self.event_dim]
        shape = jnp.broadcast_shapes(x_batch, self.batch_shape)
        return jnp.broadcast_to(x, shape + jnp.shape(x)[len(x_batch) :])

    def cdf(self, value):
        return self._broadcast_batch(self.base_dist.cdf(value))

    def icdf(self, q):
        return self._broadcast_batch(self.base_dist.icdf(q))

    def entropy(self):
        return jnp.broadcast_to(self.base_dist.entropy(), self.batch_shape)

    @property
    def has_enumerate_support(self):
        return self.base_dist.has_enumerate_support

    def enumerate_support(self, expand=True):
        values = self.base_dist.enumerate_support(expand=False)
        n, event = values.shape[0], self.event_shape
        values = jnp.reshape(values, (n,) + (1,) * len(self.batch_shape) + event)
        if expand:
            values = jnp.broadcast_to(values, (n,) + self.batch_shape + event)
        return values


class Independent(Distribution):
    """Reinterpret the rightmost ``reinterpreted_batch_ndims`` batch dims as event.

    ``log_prob`` sums the base log density over those dims, which turns a
    batch of independent scalars into one vector-valued variable.
    """

    def __init__(self, base_dist, reinterpreted_batch_ndims, *, validate_args=None):
        n = int(reinterpreted_batch_ndims)
        batch = base_dist.batch_shape
        if not 0 <= n <= len(batch):
            raise ValueError(
                f"Independent: reinterpreted_batch_ndims must be between 0 and "
                f"len(batch_shape)={len(batch)} of {type(base_dist).__name__} "
                f"with batch shape {batch}, got {n}"
            )
        self.base_dist = base_dist
        self.reinterpreted_batch_ndims = n
        split = len(batch) - n
        super().__init__(
            batch[:split],
            batch[split:] + base_dist.event_shape,
            validate_args=validate_args,
        )

    def _infer_batch_shape(self, default):
        return default

    @property
    def support(self):
        return constraints.independent(
            self.base_dist.support, self.reinterpreted_batch_ndims
        )

    @property
    def has_rsample(self):
        return self.base_dist.has_rsample

    def sample(self, key, sample_shape=()):
        return self.base_dist.sample(key, sample_shape)

    def log_prob(self, value):
        return sum_rightmost(
            self.base_dist.log_prob(value), self.reinterpreted_batch_ndims
        )

    @property
    def mean(self):
        return self.base_dist.mean

    @property
    def variance(self):
        return self.base_dist.variance

    def entropy(self):
        return sum_rightmost(self.base_dist.entropy(), self.reinterpreted_batch_ndims)


class MaskedDistribution(Distribution):
    """``base_dist`` whose log density is zero where ``mask`` is False.

    ``mask`` is a bool or a bool array broadcastable to the batch shape; the
    batch shape grows to the broadcast shape. Sampling is unchanged.
    """

    def __init__(self, base_dist, mask):
        if isinstance(mask, bool):
            self._mask = mask
            batch_shape = base_dist.batch_shape
        else:
            mask = jnp.asarray(mask)
            if mask.dtype != jnp.bool_:
                raise TypeError(
                    f"mask must be a bool or a bool array, got dtype {mask.dtype}"
                )
            batch_shape = broadcast_param_shapes(
                f"{type(base_dist).__name__}.mask",
                batch_shape=base_dist.batch_shape,
                mask=mask.shape,
            )
            self._mask = mask
        self.base_dist = base_dist.expand(batch_shape)
        super().__init__(batch_shape, base_dist.event_shape)

    def _infer_batch_shape(self, default):
        return default

    @property
    def support(self):
        return self.base_dist.support

    @property
    def has_rsample(self):
        return self.base_dist.has_rsample

    def sample(self, key, sample_shape=()):
        return self.base_dist.sample(key, sample_shape)

    def log_prob(self, value):
        if isinstance(self._mask, bool):  # only False reaches here
            value_batch = jnp.shape(value)[: jnp.ndim(value) - self.event_dim]
            shape = jnp.broadcast_shapes(value_batch, self.batch_shape)
            return jnp.zeros(shape)
        log_prob = self.base_dist.log_prob(value)
        return jnp.where(self._mask, log_prob, 0.0)

    @property
    def mean(self):
        return self.base_dist.mean

    @property
    def variance(self):
        return self.base_dist.variance

    @property
    def has_enumerate_support(self):
        return self.base_dist.has_enumerate_support

    def enumerate_support(self, expand=True):
        # The mask weighs log densities only: the support is the base's.
        return self.base_dist.enumerate_support(expand)


# --- special distributions ------------------------------------------------------


class Delta(Distribution):
    """A point mass at ``v``, with an optional extra ``log_density``.

    Parameters
    ----------
    v : array_like
        The location; its rightmost ``event_dim`` dims form the event.
    log_density : array_like, default=0.0
        Added to ``log_prob`` (e.g. a log-Jacobian in an autoguide).
    event_dim : int, default=0
        Number of rightmost dims of ``v`` that form one draw.
    """

    has_rsample = True
    reparametrized_params = ("v", "log_density")

    def __init__(self, v=0.0, log_density=0.0, event_dim=0, *, validate_args=None):
        v = as_float_array(v)
        event_dim = int(event_dim)
        if not 0 <= event_dim <= v.ndim:
            raise ValueError(
                f"Delta: event_dim must be between 0 and v.ndim={v.ndim}, "
                f"got {event_dim}"
            )
        self.v = v
        self.log_density = as_float_array(log_density)
        self._event_dim = event_dim
        split = v.ndim - event_dim
        batch_shape = broadcast_param_shapes(
            "Delta", v=v.shape[:split], log_density=self.log_density.shape
        )
        super().__init__(batch_shape, v.shape[split:], validate_args=validate_args)

    @property
    def arg_constraints(self):
        return {
            "v": constraints.independent(constraints.real, self._event_dim),
            "log_density": constraints.real,
        }

    @property
    def support(self):
        return constraints.independent(constraints.real, self._event_dim)

    def sample(self, key, sample_shape=()):
        return jnp.broadcast_to(self.v, self.shape(sample_shape))

    def log_prob(self, value):
        value = self._check_value(value)
        log_prob = jnp.log(value == self.v)
        return sum_rightmost(log_prob, self._event_dim) + self.log_density

    @property
    def mean(self):
        return jnp.broadcast_to(self.v, self.shape())

    @property
    def variance(self):
        return jnp.zeros(self.shape(), dtype=self.v.dtype)


class Unit(Distribution):
    """The trivial distribution over empty arrays, weighted by ``log_factor``.

    Its only value has shape ``batch_shape + (0,)`` and log density
    ``log_factor``; ``factor(name, log_factor)`` observes it to add an
    arbitrary term to a model's log density.
    """

    arg_constraints = {"log_factor": constraints.real}
    support = constraints.real

    def __init__(self, log_factor, *, validate_args=None):
        self.log_factor = as_float_array(log_factor)
        super().__init__(self.log_factor.shape, (0,), validate_args=validate_args)

    def _validate_params(self):
        # -inf is a legitimate factor (it rules a configuration out); NaN is not.
        if not is_tracer(self.log_factor) and bool(jnp.any(jnp.isnan(self.log_factor))):
            raise ValueError("Unit: parameter 'log_factor' contains NaN")

    def sample(self, key, sample_shape=()):
        return jnp.zeros(self.shape(sample_shape), dtype=self.log_factor.dtype)

    def log_prob(self, value):
        shape = jnp.broadcast_shapes(jnp.shape(value)[:-1], self.batch_shape)
        return jnp.broadcast_to(self.log_factor, shape)

    @property
    def mean(self):
        return jnp.zeros(self.shape(), dtype=self.log_factor.dtype)

    @property
    def variance(self):
        return jnp.zeros(self.shape(), dtype=self.log_factor.dtype)


class ImproperUniform(Distribution):
    """A flat (improper) density, ``log_prob = 0``, on ``support``.

    Useful for parameters that should be free in a model (inference
    initialises them via ``support.feasible_like``). It cannot be sampled.

    Parameters
    ----------
    support : Constraint
        The set the values live in.
    batch_shape, event_shape : tuple
        The shapes of the variable.
    """

    def __init__(self, support, batch_shape, event_shape, *, validate_args=None):
        if not isinstance(support, constraints.Constraint):
            raise TypeError(
                f"ImproperUniform: support must be a Constraint, got {support!r}"
            )
        event_shape = tuple(event_shape)
        if len(event_shape) < support.event_dim:
            raise ValueError(
                f"ImproperUniform: event_shape {event_shape} has fewer dims than "
                f"the support's event_dim={support.event_dim}"
            )
        self._support = support
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @property
    def support(self):
        extra = self.event_dim - self._support.event_dim
        if extra:
            return constraints.independent(self._support, extra)
        return self._support

    def sample(self, key, sample_shape=()):
        raise NotImplementedError(
            "ImproperUniform has no normalised density and cannot be sampled; "
            "give the site a value (substitute/condition) or an init strategy "
            "such as init_to_uniform/init_to_median"
        )

    def log_prob(self, value):
        value = self._check_value(value)
        value_batch = jnp.shape(value)[: jnp.ndim(value) - self.event_dim]
        shape = jnp.broadcast_shapes(value_batch, self.batch_shape)
        return jnp.zeros(shape, dtype=jnp.result_type(value, float))


# --- transformed distributions ---------------------------------------------------


def _flatten_transform(transform, leaves):
    """Append the array attributes of ``transform`` (and of the transforms it
    holds) to ``leaves``; return a hashable recipe that rebuilds it.

    Transforms are plain objects, not pytrees, yet they may hold traced
    parameters (``AffineTransform(mu, sigma)`` inside a model), so a
    transformed distribution must expose them as leaves to cross ``jit`` or
    ``vmap``.
    """
    fields = []
    for key, value in sorted(vars(transform).items()):
        if isinstance(value, Transform):
            fields.append((key, "transform", _flatten_transform(value, leaves)))
        elif isinstance(value, (list, tuple)) and value and all(
            isinstance(v, Transform) for v in value
        ):
            parts = tuple(_flatten_transform(v, leaves) for v in value)
            fields.append((key, "transforms", parts))
        elif isinstance(value, (jax.Array, np.ndarray)):
            leaves.append(value)
            fields.append((key, "leaf", None))
        else:
            fields.append((key, "static", value))
    return type(transform), tuple(fields)


def _unflatten_transform(recipe, leaves):
    """Rebuild a transform from :func:`_flatten_transform`'s recipe, taking its
    arrays from the iterator ``leaves``. ``__init__`` is not re-run."""
    cls, fields = recipe
    transform = object.__new__(cls)
    for key, kind, payload in fields:
        if kind == "transform":
            value = _unflatten_transform(payload, leaves)
        elif kind == "transforms":
            value = [_unflatten_transform(part, leaves) for part in payload]
        elif kind == "leaf":
            value = next(leaves)
        else:
            value = payload
        setattr(transform, key, value)
    return transform


def _as_transform_list(transforms):
    if isinstance(transforms, Transform):
        return [transforms]
    if isinstance(transforms, (list, tuple)) and transforms and all(
        isinstance(t, Transform) for t in transforms
    ):
        return list(transforms)
    raise TypeError(
        "TransformedDistribution: transforms must be a Transform or a non-empty "
        f"list of Transforms, got {transforms!r}"
    )


class TransformedDistribution(Distribution):
    """The distribution of ``y = t_n(...t_1(x))`` for ``x ~ base_distribution``.

    ``log_prob`` is the change-of-variables formula: the base log density of
    ``x = t^{-1}(y)`` minus the log-Jacobian ``log|det dy/dx|`` of every
    transform. When the transforms act on more dims than the base's events
    (a vector transform over a batch of scalars), those batch dims become
    event dims, as in NumPyro. When the transforms' parameters broadcast the
    base to a larger batch shape, the base is expanded, so every element of
    the batch gets its own draw.

    Parameters
    ----------
    base_distribution : Distribution
        The distribution of ``x``. A ``TransformedDistribution`` is unwrapped:
        its transforms come first.
    transforms : Transform or list of Transform
        Applied in order.
    validate_args : bool, optional
        Check ``log_prob`` values against the support.

    Attributes
    ----------
    base_dist : Distribution
        The (possibly expanded or ``to_event``-ed) base distribution.
    transforms : list of Transform
        The transforms, in the order they are applied.

    Notes
    -----
    ``mean`` and ``variance`` are not available in general and raise
    ``NotImplementedError``; subclasses with closed forms override them.
    ``cdf`` and ``icdf`` are those of the base, for a scalar distribution
    whose transforms are monotone (each defines ``sign``), e.g. an
    ``AffineTransform`` with a negative scale flips the tail.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import core_ppl.distributions as dist
    >>> from core_ppl.distributions.transforms import ExpTransform
    >>> d = dist.TransformedDistribution(dist.Normal(0.0, 1.0), ExpTransform())
    >>> d.support
    positive
    >>> bool(jnp.isclose(d.log_prob(2.0), dist.LogNormal(0.0, 1.0).log_prob(2.0)))
    True
    """

    def __init__(self, base_distribution, transforms, *, validate_args=None):
        if not isinstance(base_distribution, Distribution):
            raise TypeError(
                "TransformedDistribution: base_distribution must be a "
                f"Distribution, got {type(base_distribution).__name__}"
            )
        transforms = _as_transform_list(transforms)
        if isinstance(base_distribution, TransformedDistribution):
            transforms = base_distribution.transforms + transforms
            base_distribution = base_distribution.base_dist
        composed = ComposeTransform(transforms)
        base = self._match_event_dims(base_distribution, composed.domain.event_dim)
        shape = tuple(composed.forward_shape(base.shape()))
        event_dim = composed.codomain.event_dim + max(
            base.event_dim - composed.domain.event_dim, 0
        )
        base_shape = tuple(composed.inverse_shape(shape))
        base_batch = base_shape[: len(base_shape) - base.event_dim]
        self.base_dist = base.expand(base_batch)
        self.transforms = transforms
        split = len(shape) - event_dim
        super().__init__(shape[:split], shape[split:], validate_args=validate_args)

    @staticmethod
    def _match_event_dims(base, domain_event_dim):
        # A transform of vectors over a base of scalars: the scalars along the
        # transform's event dims are one draw, so reinterpret them as events.
        extra = domain_event_dim - base.event_dim
        if extra <= 0:
            return base
        if extra > len(base.batch_shape):
            raise ValueError(
                f"TransformedDistribution: the transforms act on {domain_event_dim} "
                f"event dims but {type(base).__name__} has shape {base.shape()}"
            )
        return base.to_event(extra)

    # --- pytree protocol: transforms hold arrays but are not pytrees --------

    def tree_flatten(self):
        leaves = [self.base_dist]
        recipes = tuple(_flatten_transform(t, leaves) for t in self.transforms)
        static = (self._batch_shape, self._event_shape, self._validate_args)
        return tuple(leaves), (recipes, static)

    @classmethod
    def tree_unflatten(cls, aux, leaves):
        recipes, static = aux
        self = object.__new__(cls)
        leaves = iter(leaves)
        self.base_dist = next(leaves)
        self.transforms = [_unflatten_transform(r, leaves) for r in recipes]
        self._batch_shape, self._event_shape, self._validate_args = static
        return self

    # --- the distribution interface -------------------------------------

    @property
    def support(self):
        codomain = ComposeTransform(self.transforms).codomain
        extra = self.event_dim - codomain.event_dim
        return constraints.independent(codomain, extra) if extra > 0 else codomain

    @property
    def has_rsample(self):
        return self.base_dist.has_rsample

    def sample(self, key, sample_shape=()):
        x = self.base_dist.sample(key, sample_shape)
        for transform in self.transforms:
            x = transform(x)
        return x

    def log_prob(self, value):
        value = self._check_value(value)
        batch_ndim = jnp.ndim(value) - self.event_dim
        # Walk back from y to x; each log-Jacobian is summed down to the
        # batch shape, since the event dims of this distribution may cover
        # batch dims of a transform (a scalar transform over a vector event).
        log_prob = 0.0
        y = value
        for transform in reversed(self.transforms):
            x = transform.inv(y)
            log_det = transform.log_abs_det_jacobian(x, y)
            log_prob = log_prob - sum_rightmost(log_det, jnp.ndim(log_det) - batch_ndim)
            y = x
        base_log_prob = self.base_dist.log_prob(y)
        return log_prob + sum_rightmost(
            base_log_prob, jnp.ndim(base_log_prob) - batch_ndim
        )

    def _monotone_sign(self, method):
        # A scalar y = t(x) with t monotone has P(Y <= y) = P(X <= t^-1(y))
        # where t increases and P(X >= t^-1(y)) where it decreases; other
        # transforms have no such closed form.
        if self.event_dim != 0:
            raise NotImplementedError(
                f"TransformedDistribution.{method} is defined for scalar "
                f"distributions only; this one has event_shape {self.event_shape}"
            )
        sign = 1
        for transform in self.transforms:
            sign = sign * transform.sign
        return sign

    def cdf(self, value):
        sign = self._monotone_sign("cdf")
        x = value
        for transform in reversed(self.transforms):
            x = transform.inv(x)
        below = self.base_dist.cdf(x)
        return jnp.where(sign > 0, below, 1.0 - below)

    def icdf(self, q):
        sign = self._monotone_sign("icdf")
        x = self.base_dist.icdf(jnp.where(sign > 0, q, 1.0 - q))
        for transform in self.transforms:
            x = transform(x)
        return x

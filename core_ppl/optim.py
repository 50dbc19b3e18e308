"""First-order optimisers over pytrees of parameters.

Two layers, as in optax's ``GradientTransformation`` design:

1. **Transformations** are pairs of pure functions ``(init, update)``:
   ``init(params) -> state`` and ``update(updates, state, params=None) ->
   (updates, state)``. Each one rewrites a gradient pytree into an update
   pytree (clip it, rescale it with Adam's moments, multiply by the learning
   rate), and :func:`chain` composes them left to right. A transformation's
   state is a NamedTuple pytree, so it lives inside ``jit``/``scan``.

2. **Optimisers** with NumPyro's names (:class:`Adam`, :class:`SGD`,
   :class:`ClippedAdam`, :class:`Adagrad`, :class:`RMSProp`,
   :class:`Momentum`) wrap one transformation and also carry the
   parameters, offering ``init(params) -> state``, ``update(grads, state) ->
   state`` and ``get_params(state) -> params``, the interface SVI uses. They
   compare equal when their settings are equal, so a jitted SVI loop that
   takes the optimiser as a static argument is compiled once per setting.

:func:`optax_to_numpyro` wraps any object with optax's ``init``/``update``
interface (an ``optax.GradientTransformation``, or a duck-typed stand-in) in
the same optimiser interface; optax itself is never imported here.

Updates follow the optax sign convention: a transformation returns the
*descent* step to add to the parameters (``apply_updates``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "ClippedAdam",
    "Momentum",
    "RMSProp",
    "GradientTransformation",
    "OptimizerState",
    "adam",
    "apply_updates",
    "chain",
    "clip",
    "clip_by_global_norm",
    "optax_to_numpyro",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_momentum",
    "scale_by_rms",
    "sgd",
]

_tree_map = jax.tree_util.tree_map


class GradientTransformation(NamedTuple):
    """A gradient transformation: a pair of pure functions.

    init : callable
        ``init(params) -> state``.
    update : callable
        ``update(updates, state, params=None) -> (updates, state)``.
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple]


def apply_updates(params, updates):
    """Add ``updates`` to ``params`` leaf by leaf, keeping each leaf's dtype."""
    return _tree_map(lambda p, u: (p + u).astype(jnp.result_type(p)), params, updates)


# --- transformations ---------------------------------------------------------


class EmptyState(NamedTuple):
    """State of a stateless transformation (no fields)."""


class ScaleByScheduleState(NamedTuple):
    """State of a scheduled learning rate.

    count : int32 array
        Updates applied so far; the schedule is evaluated at this count.
    """

    count: Any


class ScaleByAdamState(NamedTuple):
    """State of Adam's moment estimates (Kingma and Ba 2015, Algorithm 1).

    count : int32 array
        Updates applied so far (``t - 1`` in the paper).
    mu : pytree
        Exponential moving average of the gradients (first moment).
    nu : pytree
        Exponential moving average of the squared gradients (second moment).
    """

    count: Any
    mu: Any
    nu: Any


def _check_positive(name, value):
    if not callable(value) and not float(value) > 0:
        raise ValueError(f"{name} must be positive or a schedule, got {value!r}")


def scale_by_learning_rate(learning_rate):
    """Multiply updates by ``-learning_rate``, turning a direction into a step.

    Parameters
    ----------
    learning_rate : float or callable
        A constant, or a schedule ``learning_rate(count) -> float`` of the
        number of updates applied so far (0 for the first update).
    """
    _check_positive("learning_rate", learning_rate)
    if not callable(learning_rate):

        def update_constant(updates, state, params=None):
            return _tree_map(lambda u: -learning_rate * u, updates), state

        return GradientTransformation(lambda params: EmptyState(), update_constant)

    def init(params):
        return ScaleByScheduleState(count=jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        step = learning_rate(state.count)
        updates = _tree_map(lambda u: (-step * u).astype(u.dtype), updates)
        return updates, ScaleByScheduleState(count=state.count + 1)

    return GradientTransformation(init, update)


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8):
    """Rescale gradients by Adam's bias-corrected moments.

    Returns ``m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)`` and
    ``v_hat = v / (1 - b2^t)`` (Kingma and Ba 2015, Algorithm 1); the
    correction undoes the bias of moving averages started at zero.
    """
    if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
        raise ValueError(f"b1 and b2 must lie in [0, 1), got b1={b1}, b2={b2}")

    def init(params):
        zeros = _tree_map(jnp.zeros_like, params)
        return ScaleByAdamState(count=jnp.zeros((), jnp.int32), mu=zeros, nu=zeros)

    def update(updates, state, params=None):
        mu = _tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
        nu = _tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)
        t = state.count + 1
        c1 = 1 - b1 ** t.astype(jnp.result_type(float))
        c2 = 1 - b2 ** t.astype(jnp.result_type(float))
        direction = _tree_map(
            lambda m, v: ((m / c1) / (jnp.sqrt(v / c2) + eps)).astype(m.dtype), mu, nu
        )
        return direction, ScaleByAdamState(count=t, mu=mu, nu=nu)

    return GradientTransformation(init, update)


class ScaleByAdagradState(NamedTuple):
    """State of Adagrad's accumulators.

    sum_of_squares : pytree
        Running sum of the squared gradients.
    momentum : pytree
        Exponential moving average of the rescaled gradients.
    """

    sum_of_squares: Any
    momentum: Any


def scale_by_adagrad(momentum=0.9, eps=1e-8):
    """Rescale gradients by the root of their accumulated squares (Adagrad).

    Returns ``m_t = momentum * m_{t-1} + (1 - momentum) * g_t / (sqrt(G_t) +
    eps)`` with ``G_t`` the running sum of ``g^2`` (Duchi, Hazan and Singer
    2011, section 1; the moving average ``m`` is that of NumPyro's
    ``Adagrad``). A coordinate whose gradient has always been zero gets a
    zero step, whatever ``eps``.
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    if not float(eps) >= 0:
        raise ValueError(f"eps must be non-negative, got {eps!r}")

    def init(params):
        zeros = _tree_map(jnp.zeros_like, params)
        return ScaleByAdagradState(sum_of_squares=zeros, momentum=zeros)

    def rescale(g, total):
        # jnp.where keeps 0 / 0 out of the result when eps == 0.
        safe = jnp.where(total > 0, total, 1.0)
        return jnp.where(total > 0, g / (jnp.sqrt(safe) + eps), 0.0)

    def update(updates, state, params=None):
        total = _tree_map(lambda s, g: s + g * g, state.sum_of_squares, updates)
        rescaled = _tree_map(rescale, updates, total)
        avg = _tree_map(
            lambda m, r: (momentum * m + (1 - momentum) * r).astype(m.dtype),
            state.momentum,
            rescaled,
        )
        return avg, ScaleByAdagradState(sum_of_squares=total, momentum=avg)

    return GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    """State of RMSProp.

    nu : pytree
        Exponential moving average of the squared gradients.
    """

    nu: Any


def scale_by_rms(gamma=0.9, eps=1e-8):
    """Divide gradients by the root of a moving average of their squares.

    Returns ``g_t / sqrt(v_t + eps)`` with ``v_t = gamma v_{t-1} + (1 - gamma)
    g_t^2`` started at zero (Tieleman and Hinton 2012, lecture 6.5); ``eps``
    sits inside the root, as in NumPyro's ``RMSProp``.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must lie in [0, 1), got {gamma!r}")
    if not float(eps) >= 0:
        raise ValueError(f"eps must be non-negative, got {eps!r}")

    def init(params):
        return ScaleByRmsState(nu=_tree_map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        nu = _tree_map(lambda v, g: gamma * v + (1 - gamma) * g * g, state.nu, updates)
        direction = _tree_map(
            lambda g, v: (g / jnp.sqrt(v + eps)).astype(g.dtype), updates, nu
        )
        return direction, ScaleByRmsState(nu=nu)

    return GradientTransformation(init, update)


class ScaleByMomentumState(NamedTuple):
    """State of heavy-ball momentum.

    velocity : pytree
        ``mass * velocity + gradient``, accumulated over the steps.
    """

    velocity: Any


def scale_by_momentum(mass):
    """Heavy-ball momentum: the direction is ``v_t = mass * v_{t-1} + g_t``.

    (Polyak 1964; the undamped form of NumPyro's ``Momentum``.)
    """
    if not float(mass) >= 0.0:
        raise ValueError(f"mass must be non-negative, got {mass!r}")

    def init(params):
        return ScaleByMomentumState(velocity=_tree_map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        velocity = _tree_map(
            lambda v, g: (mass * v + g).astype(v.dtype), state.velocity, updates
        )
        return velocity, ScaleByMomentumState(velocity=velocity)

    return GradientTransformation(init, update)


def clip_by_global_norm(max_norm):
    """Rescale the whole gradient pytree so its joint L2 norm is <= ``max_norm``.

    Clipping the global norm keeps the gradient's direction (Pascanu, Mikolov
    and Bengio 2013, section 3.2), unlike clipping each element.
    """
    _check_positive("max_norm", max_norm)

    def update(updates, state, params=None):
        leaves = jax.tree_util.tree_leaves(updates)
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves))
        factor = jnp.where(norm > max_norm, max_norm / norm, 1.0)
        return _tree_map(lambda u: (u * factor).astype(u.dtype), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def clip(max_delta):
    """Clip every gradient element to ``[-max_delta, max_delta]``.

    Unlike :func:`clip_by_global_norm` this can change the gradient's
    direction; it is the clipping of NumPyro's and Pyro's ``ClippedAdam``,
    which bounds each coordinate's step independently of the others.
    """
    _check_positive("max_delta", max_delta)

    def update(updates, state, params=None):
        return _tree_map(lambda u: jnp.clip(u, -max_delta, max_delta), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def chain(*transformations):
    """Compose transformations, applying them left to right.

    The state is the tuple of the parts' states.
    """

    def init(params):
        return tuple(t.init(params) for t in transformations)

    def update(updates, state, params=None):
        new_state = []
        for transformation, part in zip(transformations, state):
            updates, part = transformation.update(updates, part, params)
            new_state.append(part)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def sgd(learning_rate):
    """Plain stochastic gradient descent: ``params - learning_rate * grad``."""
    return chain(scale_by_learning_rate(learning_rate))


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma and Ba 2015) with an optional learning-rate schedule."""
    return chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(learning_rate))


# --- NumPyro-style optimisers ------------------------------------------------


class OptimizerState(NamedTuple):
    """State of an optimiser: the parameters and the transformation's state.

    params : pytree
        Current parameter values (unconstrained, for SVI).
    transform_state : pytree
        State of the underlying :class:`GradientTransformation`.
    """

    params: Any
    transform_state: Any


class _Optimizer:
    """An optimiser that carries its parameters, with NumPyro's interface.

    Subclasses set ``self._config`` (the settings, used for equality and
    hashing) and ``self.transformation``.
    """

    _config: tuple
    transformation: GradientTransformation

    def init(self, params):
        """Return the initial :class:`OptimizerState` holding ``params``."""
        return OptimizerState(
            params=params, transform_state=self.transformation.init(params)
        )

    def update(self, grads, state):
        """Take one step along ``grads``; return the new state."""
        updates, transform_state = self.transformation.update(
            grads, state.transform_state, state.params
        )
        return OptimizerState(
            params=apply_updates(state.params, updates),
            transform_state=transform_state,
        )

    def get_params(self, state):
        """Return the parameters held by ``state``."""
        return state.params

    def __eq__(self, other):
        return type(self) is type(other) and self._config == other._config

    def __hash__(self):
        return hash((type(self).__name__, self._config))

    def __repr__(self):
        return f"{type(self).__name__}{self._config}"


class SGD(_Optimizer):
    """Stochastic gradient descent.

    Parameters
    ----------
    step_size : float or callable
        Learning rate, or a schedule of the step count.
    """

    def __init__(self, step_size):
        self._config = (step_size,)
        self.transformation = sgd(step_size)


class Adam(_Optimizer):
    """Adam (Kingma and Ba 2015).

    Parameters
    ----------
    step_size : float or callable
        Learning rate, or a schedule of the step count.
    b1, b2 : float, default=0.9, 0.999
        Decay rates of the first and second moment estimates.
    eps : float, default=1e-8
        Added to the denominator for numerical stability.
    """

    def __init__(self, step_size, b1=0.9, b2=0.999, eps=1e-8):
        self._config = (step_size, b1, b2, eps)
        self.transformation = adam(step_size, b1, b2, eps)


def _decayed(step_size, lrd):
    """The schedule ``step_size(t) * lrd ** t`` (Pyro's ``ClippedAdam`` decay)."""
    _check_positive("learning_rate", step_size)
    if not float(lrd) > 0:
        raise ValueError(f"lrd must be positive, got {lrd!r}")
    base = step_size if callable(step_size) else (lambda count: step_size)

    def schedule(count):
        return base(count) * lrd ** jnp.asarray(count, jnp.result_type(float))

    return schedule


class ClippedAdam(_Optimizer):
    """Adam on gradients clipped elementwise to ``[-clip_norm, clip_norm]``.

    Parameters
    ----------
    step_size : float or callable
        Learning rate, or a schedule of the step count.
    b1, b2, eps : float
        As in :class:`Adam`.
    clip_norm : float, default=10.0
        Each gradient element is clipped to ``[-clip_norm, clip_norm]`` before
        Adam's moment updates (NumPyro's ``ClippedAdam``); the name is
        NumPyro's, although no norm is taken.
    lrd : float, optional
        Learning-rate decay: step ``t`` (from 0) uses ``step_size * lrd ** t``,
        as Pyro's ``ClippedAdam`` does. ``None`` (default) means no decay.

    Notes
    -----
    Elementwise clipping bounds each coordinate's contribution to Adam's
    moments, so one outlying gradient (common with single-particle ELBO
    estimates) cannot dominate them; :func:`clip_by_global_norm` is the
    direction-preserving alternative, available through :func:`chain`.
    """

    def __init__(
        self, step_size, b1=0.9, b2=0.999, eps=1e-8, *, clip_norm=10.0, lrd=None
    ):
        _check_positive("clip_norm", clip_norm)
        self._config = (step_size, b1, b2, eps, clip_norm, lrd)
        schedule = step_size if lrd is None else _decayed(step_size, lrd)
        self.transformation = chain(clip(clip_norm), adam(schedule, b1, b2, eps))


class Adagrad(_Optimizer):
    """Adagrad (Duchi, Hazan and Singer 2011) with NumPyro's momentum.

    Parameters
    ----------
    step_size : float or callable
        Learning rate, or a schedule of the step count.
    momentum : float, default=0.9
        Decay of the moving average of the rescaled gradients, as in
        NumPyro's ``Adagrad(step_size, momentum=0.9)``; 0 gives plain Adagrad.
    eps : float, default=1e-8
        Added to the root of the accumulated squared gradients.

    Notes
    -----
    Step ``t`` moves each coordinate by ``-step_size * m_t`` with ``m_t =
    momentum * m_{t-1} + (1 - momentum) * g_t / (sqrt(sum_{s<=t} g_s^2) +
    eps)``.
    """

    def __init__(self, step_size, momentum=0.9, eps=1e-8):
        self._config = (step_size, momentum, eps)
        self.transformation = chain(
            scale_by_adagrad(momentum, eps), scale_by_learning_rate(step_size)
        )


class RMSProp(_Optimizer):
    """RMSProp (Tieleman and Hinton 2012).

    Parameters
    ----------
    step_size : float or callable
        Learning rate, or a schedule of the step count.
    gamma : float, default=0.9
        Decay of the moving average of the squared gradients.
    eps : float, default=1e-8
        Added to that average inside the square root (NumPyro's placement).

    Notes
    -----
    Step ``t`` moves each coordinate by ``-step_size * g_t / sqrt(v_t + eps)``
    with ``v_t = gamma * v_{t-1} + (1 - gamma) * g_t^2``, ``v_0 = 0``.
    """

    def __init__(self, step_size, gamma=0.9, eps=1e-8):
        self._config = (step_size, gamma, eps)
        self.transformation = chain(
            scale_by_rms(gamma, eps), scale_by_learning_rate(step_size)
        )


class Momentum(_Optimizer):
    """Gradient descent with heavy-ball momentum (Polyak 1964).

    Parameters
    ----------
    step_size : float or callable
        Learning rate, or a schedule of the step count.
    mass : float
        Momentum coefficient (non-negative, usually below 1): step ``t``
        moves by ``-step_size * v_t`` with ``v_t = mass * v_{t-1} + g_t``,
        ``v_0 = 0``.
    """

    def __init__(self, step_size, mass):
        self._config = (step_size, mass)
        self.transformation = chain(
            scale_by_momentum(mass), scale_by_learning_rate(step_size)
        )


# --- optax interoperability ----------------------------------------------------


class _OptaxOptimizer(_Optimizer):
    """An optimiser around an object with optax's ``init``/``update``."""

    def __init__(self, transformation):
        self._config = (transformation,)
        self.transformation = transformation

    def __hash__(self):
        # optax's GradientTransformation is a NamedTuple of closures: hashable
        # by identity of its functions, which is what equality compares too.
        return hash((type(self).__name__, id(self.transformation)))

    def __eq__(self, other):
        return (
            type(self) is type(other) and self.transformation is other.transformation
        )


def optax_to_numpyro(transformation):
    """Wrap an optax gradient transformation as a core_ppl optimiser.

    Parameters
    ----------
    transformation : object
        Anything with optax's interface: ``init(params) -> opt_state`` and
        ``update(grads, opt_state, params) -> (updates, opt_state)``, whose
        updates are *added* to the parameters (e.g. ``optax.adam(1e-2)``).

    Returns
    -------
    optimiser
        With ``init``, ``update`` and ``get_params``, usable by :class:`SVI`.
        Two wrappers compare equal only when they wrap the same object, so
        reuse one wrapper to reuse a compiled SVI program.

    Examples
    --------
    A stand-in for ``optax.sgd(0.5)``:

    >>> import jax.numpy as jnp
    >>> from core_ppl.optim import GradientTransformation, optax_to_numpyro
    >>> sgd = GradientTransformation(
    ...     init=lambda params: (),
    ...     update=lambda grads, state, params=None: (-0.5 * grads, state),
    ... )
    >>> opt = optax_to_numpyro(sgd)
    >>> state = opt.update(jnp.array(2.0), opt.init(jnp.array(1.0)))
    >>> float(opt.get_params(state))
    0.0
    """
    for method in ("init", "update"):
        if not callable(getattr(transformation, method, None)):
            raise TypeError(
                "optax_to_numpyro: transformation must have callable init and "
                f"update methods (optax's interface), got {transformation!r}"
            )
    return _OptaxOptimizer(transformation)

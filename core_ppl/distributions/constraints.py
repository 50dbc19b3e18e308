"""Constraints: the sets that distribution supports and parameters live in.

A :class:`Constraint` answers three questions about a set:

* ``constraint(x)``: is ``x`` inside (a boolean array over the batch, i.e. with
  the rightmost ``event_dim`` dimensions reduced);
* ``constraint.event_dim``: how many rightmost dimensions form one element
  (0 for scalars, 1 for a simplex vector, 2 for a Cholesky factor);
* ``constraint.feasible_like(prototype)``: a point of the set with the shape of
  ``prototype``, used to initialise inference.

``is_discrete`` marks sets of integers, which gradient-based samplers cannot
explore. The bijections from unconstrained space live in ``transforms.py``
(``biject_to``), keyed on the constraint's type.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = [
    "Constraint",
    "boolean",
    "circular",
    "corr_cholesky",
    "corr_matrix",
    "greater_than",
    "greater_than_eq",
    "independent",
    "integer_interval",
    "interval",
    "l1_ball",
    "less_than",
    "lower_cholesky",
    "nonnegative",
    "nonnegative_integer",
    "open_interval",
    "ordered_vector",
    "positive",
    "positive_definite",
    "positive_integer",
    "positive_ordered_vector",
    "real",
    "real_matrix",
    "real_vector",
    "scaled_unit_lower_cholesky",
    "simplex",
    "softplus_lower_cholesky",
    "softplus_positive",
    "sphere",
    "unit_interval",
    "zero_sum",
]


class Constraint:
    """A region of the reals (base class).

    Attributes
    ----------
    event_dim : int
        Number of rightmost dimensions that make one element of the set.
    is_discrete : bool
        True for sets of integers.
    """

    event_dim = 0
    is_discrete = False

    def __call__(self, x):
        """Return a boolean array: True where ``x`` lies in the set."""
        raise NotImplementedError

    def check(self, value):
        """Boolean array of shape ``value.shape[:-event_dim]``: True where an
        element of ``value`` lies in the set (NumPyro's name for calling
        the constraint)."""
        return self(value)

    def feasible_like(self, prototype):
        """Return a point of the set with the shape of ``prototype``."""
        raise NotImplementedError

    def __repr__(self):
        return type(self).__name__.lstrip("_")


def _float_zeros(prototype):
    prototype = jnp.asarray(prototype)
    dtype = prototype.dtype if jnp.issubdtype(prototype.dtype, jnp.floating) else float
    return jnp.zeros(jnp.shape(prototype), dtype=dtype)


def _fmt(bound):
    # Print python numbers and 0-d arrays as numbers, larger arrays by shape.
    if jnp.ndim(bound) == 0:
        try:
            return f"{float(bound):g}"
        except (TypeError, jax.errors.ConcretizationTypeError):  # a tracer
            return "<traced>"
    return f"<array of shape {jnp.shape(bound)}>"


# --- continuous, scalar -------------------------------------------------------


class _Real(Constraint):
    def __call__(self, x):
        # Finite reals only: NaN and +-inf are not valid values.
        return jnp.isfinite(x)

    def feasible_like(self, prototype):
        return _float_zeros(prototype)

    def __repr__(self):
        return "real"


class _GreaterThan(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def __call__(self, x):
        return (x > self.lower_bound) & jnp.isfinite(x)

    def feasible_like(self, prototype):
        return jnp.broadcast_to(self.lower_bound + 1.0, jnp.shape(prototype)) + (
            _float_zeros(prototype)
        )

    def __repr__(self):
        return f"greater_than(lower_bound={_fmt(self.lower_bound)})"


class _Positive(_GreaterThan):
    def __init__(self):
        super().__init__(0.0)

    def __repr__(self):
        return "positive"


class _SoftplusPositive(_Positive):
    # The same set as ``positive``; only its bijection differs (softplus, whose
    # log-Jacobian is bounded where exp's grows linearly).
    def __repr__(self):
        return "softplus_positive"


class _GreaterThanEq(_GreaterThan):
    def __call__(self, x):
        return (x >= self.lower_bound) & jnp.isfinite(x)

    def __repr__(self):
        return f"greater_than_eq(lower_bound={_fmt(self.lower_bound)})"


class _Nonnegative(_GreaterThanEq):
    def __init__(self):
        super().__init__(0.0)

    def __repr__(self):
        return "nonnegative"


class _LessThan(Constraint):
    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def __call__(self, x):
        return (x < self.upper_bound) & jnp.isfinite(x)

    def feasible_like(self, prototype):
        return jnp.broadcast_to(self.upper_bound - 1.0, jnp.shape(prototype)) + (
            _float_zeros(prototype)
        )

    def __repr__(self):
        return f"less_than(upper_bound={_fmt(self.upper_bound)})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound):
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def __call__(self, x):
        return (x >= self.lower_bound) & (x <= self.upper_bound)

    def feasible_like(self, prototype):
        mid = (self.lower_bound + self.upper_bound) / 2
        return jnp.broadcast_to(mid, jnp.shape(prototype)) + _float_zeros(prototype)

    def __repr__(self):
        return (
            f"interval(lower_bound={_fmt(self.lower_bound)}, "
            f"upper_bound={_fmt(self.upper_bound)})"
        )


class _UnitInterval(_Interval):
    def __init__(self):
        super().__init__(0.0, 1.0)

    def __repr__(self):
        return "unit_interval"


# --- continuous, structured ---------------------------------------------------


class _Simplex(Constraint):
    event_dim = 1

    def __call__(self, x):
        x = jnp.asarray(x)
        # A sum of K rounded terms is off by up to ~K eps: scale the tolerance.
        eps = jnp.finfo(_float_zeros(x).dtype).eps
        tol = 10 * max(x.shape[-1] if x.ndim else 1, 1) * float(eps)
        total_ok = jnp.abs(jnp.sum(x, axis=-1) - 1.0) <= tol
        return jnp.all(x >= 0, axis=-1) & total_ok

    def feasible_like(self, prototype):
        k = jnp.shape(prototype)[-1]
        return jnp.full_like(_float_zeros(prototype), 1.0 / k)

    def __repr__(self):
        return "simplex"


class _OrderedVector(Constraint):
    event_dim = 1

    def __call__(self, x):
        x = jnp.asarray(x)
        increasing = jnp.all(x[..., 1:] > x[..., :-1], axis=-1)
        return increasing & jnp.all(jnp.isfinite(x), axis=-1)

    def feasible_like(self, prototype):
        zeros = _float_zeros(prototype)
        return zeros + jnp.arange(jnp.shape(prototype)[-1], dtype=zeros.dtype)

    def __repr__(self):
        return "ordered_vector"


def _eye_like(prototype):
    shape = jnp.shape(prototype)
    eye = jnp.eye(shape[-1], dtype=_float_zeros(prototype).dtype)
    return jnp.broadcast_to(eye, shape)


def _symmetric_tol(x):
    # Round-off allowance for identities that hold exactly in exact arithmetic.
    return 100 * float(jnp.finfo(_float_zeros(x).dtype).eps)


class _LowerCholesky(Constraint):
    event_dim = 2

    def __call__(self, x):
        x = jnp.asarray(x)
        is_lower = jnp.all(jnp.triu(x, k=1) == 0, axis=(-2, -1))
        diag = jnp.diagonal(x, axis1=-2, axis2=-1)
        return (
            is_lower & jnp.all(diag > 0, axis=-1) & jnp.all(jnp.isfinite(x), (-2, -1))
        )

    def feasible_like(self, prototype):
        return _eye_like(prototype)

    def __repr__(self):
        return "lower_cholesky"


class _CorrCholesky(_LowerCholesky):
    def __call__(self, x):
        x = jnp.asarray(x)
        # Rows of a correlation Cholesky factor have unit Euclidean norm.
        row_norm = jnp.linalg.norm(x, axis=-1)
        unit_rows = jnp.all(jnp.abs(row_norm - 1.0) <= _symmetric_tol(x), axis=-1)
        return super().__call__(x) & unit_rows

    def __repr__(self):
        return "corr_cholesky"


class _ScaledUnitLowerCholesky(_LowerCholesky):
    # The same set as ``lower_cholesky``; only its bijection differs
    # (``diag(softplus(.)) @ U`` with ``U`` unit lower triangular).
    def __repr__(self):
        return "scaled_unit_lower_cholesky"


class _CorrMatrix(Constraint):
    event_dim = 2

    def __call__(self, x):
        x = jnp.asarray(x)
        tol = _symmetric_tol(x)
        asym = jnp.max(jnp.abs(x - jnp.swapaxes(x, -2, -1)), axis=(-2, -1))
        diag = jnp.diagonal(x, axis1=-2, axis2=-1)
        unit_diag = jnp.all(jnp.abs(diag - 1.0) <= tol, axis=-1)
        # eigvalsh reads one triangle only, hence the explicit symmetry test.
        positive = jnp.all(jnp.linalg.eigvalsh(x) > 0, axis=-1)
        return (asym <= tol) & unit_diag & positive

    def feasible_like(self, prototype):
        return _eye_like(prototype)

    def __repr__(self):
        return "corr_matrix"


class _PositiveDefinite(Constraint):
    event_dim = 2

    def __call__(self, x):
        x = jnp.asarray(x)
        scale = jnp.max(jnp.abs(x), axis=(-2, -1)) + 1.0
        asym = jnp.max(jnp.abs(x - jnp.swapaxes(x, -2, -1)), axis=(-2, -1))
        is_symmetric = asym <= _symmetric_tol(x) * scale
        # eigvalsh reads one triangle only, hence the explicit symmetry test.
        return is_symmetric & jnp.all(jnp.linalg.eigvalsh(x) > 0, axis=-1)

    def feasible_like(self, prototype):
        return _eye_like(prototype)

    def __repr__(self):
        return "positive_definite"


class _Independent(Constraint):
    """Reinterpret ``n`` batch dimensions of ``base_constraint`` as event dims."""

    def __init__(self, base_constraint, reinterpreted_batch_ndims):
        if not isinstance(base_constraint, Constraint):
            raise TypeError(
                f"independent expects a Constraint, got {base_constraint!r}"
            )
        n = int(reinterpreted_batch_ndims)
        if n < 0:
            raise ValueError(
                f"independent: reinterpreted_batch_ndims must be >= 0, got {n}"
            )
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = n

    @property
    def event_dim(self):
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    def __call__(self, x):
        ok = self.base_constraint(x)
        n = self.reinterpreted_batch_ndims
        return jnp.all(ok, axis=tuple(range(-n, 0))) if n else ok

    def feasible_like(self, prototype):
        return self.base_constraint.feasible_like(prototype)

    def __repr__(self):
        return (
            f"independent({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"
        )


# --- added for issue 19: more supports and their bijections -----------------


class _Circular(_Interval):
    # Angles in [-pi, pi]; bijected like any interval.
    def __init__(self):
        super().__init__(-math.pi, math.pi)

    def __repr__(self):
        return "circular"


class _OpenInterval(_Interval):
    def __call__(self, x):
        return (x > self.lower_bound) & (x < self.upper_bound)

    def __repr__(self):
        return (
            f"open_interval(lower_bound={_fmt(self.lower_bound)}, "
            f"upper_bound={_fmt(self.upper_bound)})"
        )


class _PositiveOrderedVector(_OrderedVector):
    def __call__(self, x):
        x = jnp.asarray(x)
        return super().__call__(x) & jnp.all(x > 0, axis=-1)

    def feasible_like(self, prototype):
        return super().feasible_like(prototype) + 1.0

    def __repr__(self):
        return "positive_ordered_vector"


class _SoftplusLowerCholesky(_LowerCholesky):
    # The same set as ``lower_cholesky``; only its bijection differs
    # (softplus on the diagonal instead of exp).
    def __repr__(self):
        return "softplus_lower_cholesky"


class _L1Ball(Constraint):
    """Vectors of L1 norm below one (the open unit L1 ball)."""

    event_dim = 1

    def __call__(self, x):
        eps = jnp.finfo(_float_zeros(x).dtype).eps
        return jnp.sum(jnp.abs(x), axis=-1) < 1.0 + eps

    def feasible_like(self, prototype):
        return _float_zeros(prototype)

    def __repr__(self):
        return "l1_ball"


class _Sphere(Constraint):
    """Vectors of unit Euclidean norm."""

    event_dim = 1

    def __call__(self, x):
        x = jnp.asarray(x)
        norm = jnp.linalg.norm(x, axis=-1)
        return jnp.abs(norm - 1.0) <= _symmetric_tol(x) * max(x.shape[-1], 1)

    def feasible_like(self, prototype):
        zeros = _float_zeros(prototype)
        return zeros + 1.0 / math.sqrt(jnp.shape(prototype)[-1])

    def __repr__(self):
        return "sphere"


class _ZeroSum(Constraint):
    """Arrays whose sum along each of the rightmost ``event_dim`` axes is zero."""

    def __init__(self, event_dim=1):
        self.event_dim = int(event_dim)

    def __call__(self, x):
        x = jnp.asarray(x)
        x = x.astype(_float_zeros(x).dtype)
        axes = tuple(range(-self.event_dim, 0))
        # Round-off grows with the magnitude of the entries and their number.
        tol = _symmetric_tol(x) * (jnp.max(jnp.abs(x), axis=axes) + 1.0)
        ok = jnp.all(jnp.isfinite(x), axis=axes)
        for axis in axes:
            total = jnp.abs(jnp.sum(x, axis=axis, keepdims=True))
            ok = ok & (jnp.max(total, axis=axes) <= tol * x.shape[axis])
        return ok

    def feasible_like(self, prototype):
        return _float_zeros(prototype)

    def __repr__(self):
        return f"zero_sum(event_dim={self.event_dim})"


# --- discrete -----------------------------------------------------------------


class _Boolean(Constraint):
    is_discrete = True

    def __call__(self, x):
        return (x == 0) | (x == 1)

    def feasible_like(self, prototype):
        return jnp.zeros(jnp.shape(prototype), dtype=jnp.asarray(prototype).dtype)

    def __repr__(self):
        return "boolean"


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound):
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def __call__(self, x):
        is_int = x == jnp.floor(x)
        return is_int & (x >= self.lower_bound) & (x <= self.upper_bound)

    def feasible_like(self, prototype):
        low = jnp.broadcast_to(self.lower_bound, jnp.shape(prototype))
        return low.astype(jnp.asarray(prototype).dtype)

    def __repr__(self):
        return (
            f"integer_interval(lower_bound={_fmt(self.lower_bound)}, "
            f"upper_bound={_fmt(self.upper_bound)})"
        )


class _IntegerGreaterThanEq(Constraint):
    is_discrete = True

    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def __call__(self, x):
        return (x == jnp.floor(x)) & (x >= self.lower_bound)

    def feasible_like(self, prototype):
        low = jnp.broadcast_to(self.lower_bound, jnp.shape(prototype))
        return low.astype(jnp.asarray(prototype).dtype)

    def __repr__(self):
        if self.lower_bound == 0:
            return "nonnegative_integer"
        if self.lower_bound == 1:
            return "positive_integer"
        return f"integer_greater_than_eq(lower_bound={_fmt(self.lower_bound)})"


# --- public instances and factories -----------------------------------------

real = _Real()
real_vector = _Independent(real, 1)
real_matrix = _Independent(real, 2)
positive = _Positive()
softplus_positive = _SoftplusPositive()
nonnegative = _Nonnegative()
unit_interval = _UnitInterval()
simplex = _Simplex()
ordered_vector = _OrderedVector()
lower_cholesky = _LowerCholesky()
scaled_unit_lower_cholesky = _ScaledUnitLowerCholesky()
corr_cholesky = _CorrCholesky()
corr_matrix = _CorrMatrix()
positive_definite = _PositiveDefinite()
circular = _Circular()
positive_ordered_vector = _PositiveOrderedVector()
softplus_lower_cholesky = _SoftplusLowerCholesky()
l1_ball = _L1Ball()
sphere = _Sphere()
boolean = _Boolean()
nonnegative_integer = _IntegerGreaterThanEq(0)
positive_integer = _IntegerGreaterThanEq(1)


def interval(lower_bound, upper_bound):
    """The closed interval ``[lower_bound, upper_bound]`` (bounds may be arrays)."""
    return _Interval(lower_bound, upper_bound)


def greater_than(lower_bound):
    """The open half-line ``(lower_bound, inf)``."""
    return _GreaterThan(lower_bound)


def greater_than_eq(lower_bound):
    """The closed half-line ``[lower_bound, inf)``."""
    return _GreaterThanEq(lower_bound)


def less_than(upper_bound):
    """The open half-line ``(-inf, upper_bound)``."""
    return _LessThan(upper_bound)


def integer_interval(lower_bound, upper_bound):
    """The integers ``lower_bound, ..., upper_bound`` (inclusive)."""
    return _IntegerInterval(lower_bound, upper_bound)


def independent(base_constraint, reinterpreted_batch_ndims):
    """``base_constraint`` on each of the rightmost ``n`` dims, jointly as one event."""
    return _Independent(base_constraint, reinterpreted_batch_ndims)


def open_interval(lower_bound, upper_bound):
    """The open interval ``(lower_bound, upper_bound)`` (bounds may be arrays)."""
    return _OpenInterval(lower_bound, upper_bound)


def zero_sum(event_dim=1):
    """Arrays summing to zero along each of their rightmost ``event_dim`` axes."""
    return _ZeroSum(event_dim)

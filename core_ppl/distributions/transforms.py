"""Bijective transforms and the ``biject_to`` registry.

A :class:`Transform` maps its ``domain`` onto its ``codomain`` bijectively and
reports ``log_abs_det_jacobian(x, y)``, the log of the absolute Jacobian
determinant of ``y = t(x)``, summed over the transform's event dimensions so
that the result has the batch shape. Inference runs in unconstrained space:
``biject_to(constraint)`` returns the transform from ``R^n`` onto the set, so a
sampler proposes ``u``, the model sees ``t(u)``, and the density gains
``log_abs_det_jacobian(u, t(u))`` (change of variables).

Shape-changing transforms (stick-breaking, Cholesky parametrisations) map a
vector of free coordinates onto a structured value and report the density
with respect to Lebesgue measure on the free coordinates of the value (e.g.
the first ``K - 1`` coordinates of a simplex, the strictly lower triangle of
a correlation Cholesky factor). ``forward_shape``/``inverse_shape`` convert
the shapes.

The parametrisations follow the Stan reference manual ("Constraint
transforms" chapter) and Lewandowski, Kurowicka & Joe (2009) for correlation
matrices.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.scipy.fft  # noqa: F401  (DiscreteCosineTransform)
from jax import lax
from jax.scipy.special import expit, logit

from core_ppl.distributions import constraints
from core_ppl.distributions.util import (
    matrix_to_tril_vec,
    sum_rightmost,
    vec_to_tril_matrix,
)

__all__ = [
    "AffineTransform",
    "CholeskyTransform",
    "ComposeTransform",
    "CorrCholeskyTransform",
    "CorrMatrixCholeskyTransform",
    "DiscreteCosineTransform",
    "ExpTransform",
    "HaarTransform",
    "IdentityTransform",
    "IndependentTransform",
    "L1BallTransform",
    "LowerCholeskyTransform",
    "OrderedTransform",
    "PermuteTransform",
    "PositiveDefiniteTransform",
    "PowerTransform",
    "RecursiveLinearTransform",
    "ReshapeTransform",
    "ScaledUnitLowerCholeskyTransform",
    "SigmoidTransform",
    "SimplexToOrderedTransform",
    "SoftplusLowerCholeskyTransform",
    "SoftplusTransform",
    "StickBreakingTransform",
    "Transform",
    "ZeroSumTransform",
    "biject_to",
]


class Transform:
    """A bijection ``domain -> codomain`` (base class).

    Subclasses implement ``__call__``, ``_inverse`` and
    ``log_abs_det_jacobian``; shape-changing ones also ``forward_shape`` and
    ``inverse_shape``.
    """

    domain = constraints.real
    codomain = constraints.real

    def __call__(self, x):
        raise NotImplementedError

    def _inverse(self, y):
        raise NotImplementedError

    def log_abs_det_jacobian(self, x, y):
        """Return ``log|det dy/dx|`` summed over event dims (batch-shaped)."""
        raise NotImplementedError

    @property
    def sign(self):
        """The sign of the derivative of a scalar monotone transform: +1
        (increasing) or -1 (decreasing), an array for elementwise parameters.
        Only scalar bijections define it."""
        raise NotImplementedError(f"{type(self).__name__} does not define a sign")

    @property
    def inv(self):
        """The inverse transform, ``codomain -> domain``."""
        return _InverseTransform(self)

    def forward_shape(self, shape):
        """Shape of ``t(x)`` for ``x`` of shape ``shape``."""
        return tuple(shape)

    def inverse_shape(self, shape):
        """Shape of ``t.inv(y)`` for ``y`` of shape ``shape``."""
        return tuple(shape)

    def __repr__(self):
        return f"{type(self).__name__}()"


class _InverseTransform(Transform):
    def __init__(self, base):
        self.base = base

    @property
    def domain(self):
        return self.base.codomain

    @property
    def codomain(self):
        return self.base.domain

    @property
    def inv(self):
        return self.base

    @property
    def sign(self):
        # The inverse of a monotone map is monotone in the same direction.
        return self.base.sign

    def __call__(self, y):
        return self.base._inverse(y)

    def _inverse(self, x):
        return self.base(x)

    def log_abs_det_jacobian(self, y, x):
        # Inverse function theorem: the Jacobians are inverse matrices.
        return -self.base.log_abs_det_jacobian(x, y)

    def forward_shape(self, shape):
        return self.base.inverse_shape(shape)

    def inverse_shape(self, shape):
        return self.base.forward_shape(shape)

    def __repr__(self):
        return f"{self.base!r}.inv"


# --- elementwise transforms ---------------------------------------------------


class IdentityTransform(Transform):
    """``y = x``."""

    sign = 1

    def __call__(self, x):
        return x

    def _inverse(self, y):
        return y

    def log_abs_det_jacobian(self, x, y):
        return jnp.zeros(jnp.shape(x), dtype=jnp.result_type(x, float))


class ExpTransform(Transform):
    """``y = exp(x)``, from the reals onto the positive half-line."""

    codomain = constraints.positive
    sign = 1

    def __call__(self, x):
        return jnp.exp(x)

    def _inverse(self, y):
        return jnp.log(y)

    def log_abs_det_jacobian(self, x, y):
        return jnp.asarray(x, dtype=jnp.result_type(x, float))


class SoftplusTransform(Transform):
    """``y = log(1 + exp(x))``, a gentler map onto the positive half-line."""

    codomain = constraints.softplus_positive
    sign = 1

    def __call__(self, x):
        return jax.nn.softplus(x)

    def _inverse(self, y):
        # log(exp(y) - 1) written to stay finite for large y.
        return y + jnp.log(-jnp.expm1(-y))

    def log_abs_det_jacobian(self, x, y):
        return -jax.nn.softplus(-x)


def _clipped_expit(x):
    # Keep y strictly inside (0, 1): densities such as Beta's are infinite on
    # the boundary, which a rounded sigmoid of a large |x| would reach.
    finfo = jnp.finfo(jnp.result_type(x, float))
    return jnp.clip(expit(x), finfo.tiny, 1.0 - finfo.eps)


class SigmoidTransform(Transform):
    """``y = 1 / (1 + exp(-x))``, from the reals onto the unit interval."""

    codomain = constraints.unit_interval
    sign = 1

    def __call__(self, x):
        return _clipped_expit(x)

    def _inverse(self, y):
        return logit(y)

    def log_abs_det_jacobian(self, x, y):
        # d sigmoid/dx = sigmoid(x) sigmoid(-x), in log space.
        return -jax.nn.softplus(x) - jax.nn.softplus(-x)


def _concrete_sign(scale):
    """+1 or -1 when ``scale`` is concrete and of one sign, else None."""
    try:
        scale = jnp.asarray(scale)
        if bool(jnp.all(scale > 0)):
            return 1
        if bool(jnp.all(scale < 0)):
            return -1
    except jax.errors.ConcretizationTypeError:
        pass
    return None


class AffineTransform(Transform):
    """``y = loc + scale * x`` elementwise.

    Parameters
    ----------
    loc, scale : array_like
        Shift and (nonzero) scale; they broadcast with ``x``.
    domain : Constraint, default=constraints.real
        The set the transform is applied to; it decides the codomain, e.g.
        ``AffineTransform(a, b - a, domain=unit_interval)`` maps onto
        ``interval(a, b)``.
    """

    def __init__(self, loc, scale, domain=constraints.real):
        self.loc = loc
        self.scale = scale
        self.domain = domain

    @property
    def codomain(self):
        domain, loc, scale = self.domain, self.loc, self.scale
        if isinstance(domain, constraints._Interval):
            a = loc + scale * domain.lower_bound
            b = loc + scale * domain.upper_bound
            return constraints.interval(jnp.minimum(a, b), jnp.maximum(a, b))
        sign = _concrete_sign(scale)
        if isinstance(domain, constraints._GreaterThan) and sign is not None:
            bound = loc + scale * domain.lower_bound
            if sign > 0:
                return constraints.greater_than(bound)
            return constraints.less_than(bound)
        # Unknown sign (traced scale) or an unbounded domain: the whole line
        # is the tightest set we can name.
        return constraints.real

    @property
    def sign(self):
        return jnp.sign(self.scale)

    def __call__(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        shape = jnp.broadcast_shapes(jnp.shape(x), jnp.shape(self.scale))
        return jnp.broadcast_to(jnp.log(jnp.abs(self.scale)), shape)

    def forward_shape(self, shape):
        return jnp.broadcast_shapes(
            tuple(shape), jnp.shape(self.loc), jnp.shape(self.scale)
        )

    def inverse_shape(self, shape):
        return self.forward_shape(shape)

    def __repr__(self):
        return f"AffineTransform(loc={self.loc}, scale={self.scale})"


# --- composition and reinterpretation ---------------------------------------


class ComposeTransform(Transform):
    """Apply ``parts`` in order: ``y = parts[-1](...parts[0](x))``."""

    def __init__(self, parts):
        parts = list(parts)
        if not parts:
            raise ValueError("ComposeTransform needs at least one transform")
        self.parts = parts

    @property
    def domain(self):
        # The input event rank must cover every part's event rank, seen
        # through the rank changes of the parts before it.
        event_dim = self.parts[-1].codomain.event_dim
        for part in reversed(self.parts):
            extra = max(event_dim - part.codomain.event_dim, 0)
            event_dim = part.domain.event_dim + extra
        base = self.parts[0].domain
        return _with_event_dim(base, event_dim)

    @property
    def codomain(self):
        event_dim = self.parts[0].domain.event_dim
        for part in self.parts:
            extra = max(event_dim - part.domain.event_dim, 0)
            event_dim = part.codomain.event_dim + extra
        return _with_event_dim(self.parts[-1].codomain, event_dim)

    @property
    def sign(self):
        sign = 1
        for part in self.parts:
            sign = sign * part.sign
        return sign

    def __call__(self, x):
        for part in self.parts:
            x = part(x)
        return x

    def _inverse(self, y):
        for part in reversed(self.parts):
            y = part._inverse(y)
        return y

    def log_abs_det_jacobian(self, x, y):
        # Chain rule: sum each part's term, reduced to the batch shape of x.
        batch_ndim = jnp.ndim(x) - self.domain.event_dim
        total = 0.0
        for i, part in enumerate(self.parts):
            y_part = y if i == len(self.parts) - 1 else part(x)
            term = part.log_abs_det_jacobian(x, y_part)
            total = total + sum_rightmost(term, jnp.ndim(term) - batch_ndim)
            x = y_part
        return total

    def forward_shape(self, shape):
        for part in self.parts:
            shape = part.forward_shape(shape)
        return tuple(shape)

    def inverse_shape(self, shape):
        for part in reversed(self.parts):
            shape = part.inverse_shape(shape)
        return tuple(shape)

    def __repr__(self):
        return f"ComposeTransform({self.parts!r})"


def _with_event_dim(constraint, event_dim):
    extra = event_dim - constraint.event_dim
    return constraints.independent(constraint, extra) if extra > 0 else constraint


class IndependentTransform(Transform):
    """Treat the rightmost ``reinterpreted_batch_ndims`` dims of ``base`` as event.

    The log-Jacobian of ``base`` is summed over those dims.
    """

    def __init__(self, base_transform, reinterpreted_batch_ndims):
        n = int(reinterpreted_batch_ndims)
        if n < 0:
            raise ValueError(
                f"IndependentTransform: reinterpreted_batch_ndims must be >= 0, got {n}"
            )
        self.base_transform = base_transform
        self.reinterpreted_batch_ndims = n

    @property
    def domain(self):
        return constraints.independent(
            self.base_transform.domain, self.reinterpreted_batch_ndims
        )

    @property
    def codomain(self):
        return constraints.independent(
            self.base_transform.codomain, self.reinterpreted_batch_ndims
        )

    @property
    def sign(self):
        return self.base_transform.sign

    def __call__(self, x):
        return self.base_transform(x)

    def _inverse(self, y):
        return self.base_transform._inverse(y)

    def log_abs_det_jacobian(self, x, y):
        term = self.base_transform.log_abs_det_jacobian(x, y)
        return sum_rightmost(term, self.reinterpreted_batch_ndims)

    def forward_shape(self, shape):
        return self.base_transform.forward_shape(shape)

    def inverse_shape(self, shape):
        return self.base_transform.inverse_shape(shape)

    def __repr__(self):
        return (
            f"IndependentTransform({self.base_transform!r}, "
            f"{self.reinterpreted_batch_ndims})"
        )


# --- structured transforms ----------------------------------------------------


def _check_last_dim(name, x, minimum=1):
    if jnp.ndim(x) < 1 or jnp.shape(x)[-1] < minimum:
        raise ValueError(
            f"{name} expects an input with a last dimension of size >= {minimum}, "
            f"got shape {jnp.shape(x)}"
        )


def _tril_size_to_dim(n, strict, name):
    """Solve ``K(K-1)/2 == n`` (strict) or ``K(K+1)/2 == n`` for the integer K."""
    k = (1 + math.isqrt(1 + 8 * n)) // 2 if strict else (math.isqrt(1 + 8 * n) - 1) // 2
    if (k * (k - 1) if strict else k * (k + 1)) != 2 * n:
        kind = "K(K-1)/2" if strict else "K(K+1)/2"
        raise ValueError(f"{name}: last dimension {n} is not of the form {kind}")
    return k


def _exclusive_cumsum(x, axis=-1):
    return jnp.cumsum(x, axis=axis) - x


class StickBreakingTransform(Transform):
    """Map ``R^(K-1)`` onto the ``K``-simplex by stick breaking.

    ``z_i = sigmoid(x_i - log(K - 1 - i))`` is the fraction broken off what is
    left of the stick; the offset makes ``x = 0`` the uniform vector (Stan
    reference manual, "Unit simplex"). The log-Jacobian is that of the map
    onto the first ``K - 1`` coordinates, whose Jacobian is triangular.
    """

    domain = constraints.real_vector
    codomain = constraints.simplex

    @staticmethod
    def _offset(km1, dtype):
        return jnp.log(jnp.arange(km1, 0, -1, dtype=dtype))

    def _logits(self, x):
        _check_last_dim("StickBreakingTransform", x)
        x = jnp.asarray(x, dtype=jnp.result_type(x, float))
        return x - self._offset(x.shape[-1], x.dtype)

    def __call__(self, x):
        t = self._logits(x)
        # Work in log space: log z = -softplus(-t), log(1 - z) = -softplus(t).
        log_rest = jnp.cumsum(-jax.nn.softplus(t), axis=-1)
        log_rest_before = jnp.concatenate(
            [jnp.zeros_like(t[..., :1]), log_rest[..., :-1]], axis=-1
        )
        log_y = jnp.concatenate(
            [-jax.nn.softplus(-t) + log_rest_before, log_rest[..., -1:]], axis=-1
        )
        # Keep y inside the open simplex: exp of a log below log(tiny)
        # flushes to 0 (or to a denormal), where a Dirichlet with
        # concentration < 1 has log density +inf and a NaN gradient. Such x
        # (about -87 in float32) are reached in the exp(0.1 x) tails of
        # sparse Dirichlet posteriors; clamped, the density there decays
        # with the Jacobian instead (NumPyro clamps too).
        return jnp.maximum(jnp.exp(log_y), jnp.finfo(log_y.dtype).tiny)

    def _inverse(self, y):
        _check_last_dim("StickBreakingTransform.inv", y, minimum=2)
        # rest[i] = sum_{j > i} y_j, summed from the right to avoid 1 - cumsum.
        tail = jnp.flip(jnp.cumsum(jnp.flip(y, -1), axis=-1), -1)[..., 1:]
        x = jnp.log(y[..., :-1]) - jnp.log(tail)
        return x + self._offset(x.shape[-1], x.dtype)

    def log_abs_det_jacobian(self, x, y):
        t = self._logits(x)
        log_1m_z = -jax.nn.softplus(t)
        log_rest_before = _exclusive_cumsum(log_1m_z)
        # dy_i/dx_i = rest_i * z_i * (1 - z_i); dy_i/dx_j = 0 for j > i.
        return jnp.sum(-jax.nn.softplus(-t) + log_1m_z + log_rest_before, axis=-1)

    def forward_shape(self, shape):
        _check_shape_last("StickBreakingTransform", shape, 1)
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        _check_shape_last("StickBreakingTransform.inv", shape, 2)
        return tuple(shape[:-1]) + (shape[-1] - 1,)


def _check_shape_last(name, shape, minimum):
    if len(shape) < 1 or shape[-1] < minimum:
        raise ValueError(
            f"{name} expects a shape whose last size is >= {minimum}, "
            f"got {tuple(shape)}"
        )


class LowerCholeskyTransform(Transform):
    """Map ``R^(K(K+1)/2)`` onto lower-triangular matrices with positive diagonal.

    The first ``K(K-1)/2`` coordinates fill the strictly lower triangle (row
    by row), the last ``K`` are the logs of the diagonal.
    """

    domain = constraints.real_vector
    codomain = constraints.lower_cholesky

    def __call__(self, x):
        _check_last_dim("LowerCholeskyTransform", x)
        k = _tril_size_to_dim(jnp.shape(x)[-1], False, "LowerCholeskyTransform")
        strict = vec_to_tril_matrix(x[..., :-k], -1)
        return strict + _diag_embed(jnp.exp(x[..., -k:]))

    def _inverse(self, y):
        diag = jnp.diagonal(y, axis1=-2, axis2=-1)
        return jnp.concatenate([matrix_to_tril_vec(y, -1), jnp.log(diag)], axis=-1)

    def log_abs_det_jacobian(self, x, y):
        k = jnp.shape(y)[-1]
        return jnp.sum(x[..., -k:], axis=-1)

    def forward_shape(self, shape):
        k = _tril_size_to_dim(shape[-1], False, "LowerCholeskyTransform")
        return tuple(shape[:-1]) + (k, k)

    def inverse_shape(self, shape):
        k = shape[-1]
        return tuple(shape[:-2]) + (k * (k + 1) // 2,)


def _diag_embed(diag):
    k = jnp.shape(diag)[-1]
    return diag[..., :, None] * jnp.eye(k, dtype=diag.dtype)


def _log_1m_tanh_sq(x):
    # log(1 - tanh(x)^2) = 2 (log 2 - |x| - softplus(-2|x|)), finite for all x.
    ax = jnp.abs(x)
    return 2.0 * (math.log(2.0) - ax - jax.nn.softplus(-2.0 * ax))


class CorrCholeskyTransform(Transform):
    """Map ``R^(K(K-1)/2)`` onto Cholesky factors of correlation matrices.

    Each coordinate becomes a canonical partial correlation ``z = tanh(x)``
    in the strictly lower triangle (row by row); each row is then built by
    stick breaking on the squared norm, ``L_ij = z_ij sqrt(1 - sum_{k<j}
    L_ik^2)`` and ``L_ii = sqrt(1 - sum_{k<i} L_ik^2)``, so every row has unit
    norm (Lewandowski, Kurowicka & Joe 2009, section 3; Stan reference manual,
    "Cholesky factors of correlation matrices"). The log-Jacobian is with
    respect to the strictly lower triangle of ``L``.
    """

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky

    def _pieces(self, x):
        _check_last_dim("CorrCholeskyTransform", x)
        x = jnp.asarray(x, dtype=jnp.result_type(x, float))
        k = _tril_size_to_dim(x.shape[-1], True, "CorrCholeskyTransform")
        z = vec_to_tril_matrix(jnp.tanh(x), -1)
        log_1m_z2 = vec_to_tril_matrix(_log_1m_tanh_sq(x), -1)
        # log of the stick left in row i before column j: prod_{k<j}(1 - z_ik^2).
        log_rest = _exclusive_cumsum(log_1m_z2)
        return k, z, log_1m_z2, log_rest

    def __call__(self, x):
        k, z, _, log_rest = self._pieces(x)
        z_full = z + jnp.eye(k, dtype=z.dtype)
        return z_full * jnp.exp(0.5 * log_rest)

    def _inverse(self, y):
        strict = jnp.tril(y, -1)
        rest = 1.0 - _exclusive_cumsum(strict**2)
        z = matrix_to_tril_vec(strict / jnp.sqrt(rest), -1)
        eps = jnp.finfo(z.dtype).eps
        return jnp.arctanh(jnp.clip(z, -1.0 + eps, 1.0 - eps))

    def log_abs_det_jacobian(self, x, y):
        _, _, log_1m_z2, log_rest = self._pieces(x)
        # tanh contributes 1 - z^2; row-wise stick breaking is triangular with
        # diagonal sqrt(rest), summed over the strictly lower triangle.
        strict_rest = jnp.tril(log_rest, -1)
        return jnp.sum(log_1m_z2, axis=(-2, -1)) + 0.5 * jnp.sum(
            strict_rest, axis=(-2, -1)
        )

    def forward_shape(self, shape):
        k = _tril_size_to_dim(shape[-1], True, "CorrCholeskyTransform")
        return tuple(shape[:-1]) + (k, k)

    def inverse_shape(self, shape):
        k = shape[-1]
        return tuple(shape[:-2]) + (k * (k - 1) // 2,)


class PositiveDefiniteTransform(Transform):
    """Map ``R^(K(K+1)/2)`` onto positive definite matrices as ``L L^T``.

    ``L`` comes from :class:`LowerCholeskyTransform`. The log-Jacobian is with
    respect to the lower triangle (diagonal included) of the symmetric
    output; the map ``L -> L L^T`` contributes ``2^K prod_i L_ii^(K - i + 1)``
    (1-based ``i``).
    """

    domain = constraints.real_vector
    codomain = constraints.positive_definite

    def __call__(self, x):
        chol = LowerCholeskyTransform()(x)
        return chol @ jnp.swapaxes(chol, -2, -1)

    def _inverse(self, y):
        return LowerCholeskyTransform()._inverse(jnp.linalg.cholesky(y))

    def log_abs_det_jacobian(self, x, y):
        k = jnp.shape(y)[-1]
        log_diag = x[..., -k:]  # log L_ii
        # exp on the diagonal gives one more power of L_ii: K - i + 2 in all.
        powers = jnp.arange(k + 1, 1, -1, dtype=log_diag.dtype)
        return k * math.log(2.0) + jnp.sum(powers * log_diag, axis=-1)

    def forward_shape(self, shape):
        return LowerCholeskyTransform().forward_shape(shape)

    def inverse_shape(self, shape):
        return LowerCholeskyTransform().inverse_shape(shape)


class ScaledUnitLowerCholeskyTransform(Transform):
    """Map ``R^(K(K+1)/2)`` onto lower Cholesky factors ``L = diag(s) U``.

    The first ``K(K-1)/2`` coordinates fill the strict lower triangle of the
    unit lower triangular ``U`` (row by row), the last ``K`` give the row
    scales ``s = softplus(x)``, which are also the diagonal of ``L``.
    Row ``i`` (from 0) of ``L`` is ``s_i`` times ``i`` free entries and the
    diagonal, so ``log|det J| = sum_i (i log s_i + log sigmoid(x_i))``.
    """

    domain = constraints.real_vector
    codomain = constraints.scaled_unit_lower_cholesky

    @staticmethod
    def _dim(size):
        return _tril_size_to_dim(size, False, "ScaledUnitLowerCholeskyTransform")

    def __call__(self, x):
        k = self._dim(jnp.shape(x)[-1])
        unit = vec_to_tril_matrix(x[..., :-k], -1)
        unit = unit + jnp.eye(k, dtype=unit.dtype)
        return unit * jax.nn.softplus(x[..., -k:])[..., :, None]

    def _inverse(self, y):
        diag = jnp.diagonal(y, axis1=-2, axis2=-1)
        strict = matrix_to_tril_vec(y / diag[..., :, None], -1)
        return jnp.concatenate([strict, SoftplusTransform()._inverse(diag)], axis=-1)

    def log_abs_det_jacobian(self, x, y):
        k = jnp.shape(y)[-1]
        diag = jnp.diagonal(y, axis1=-2, axis2=-1)
        free_per_row = jnp.arange(k, dtype=diag.dtype)
        log_sigmoid = -jax.nn.softplus(-x[..., -k:])
        return jnp.sum(free_per_row * jnp.log(diag) + log_sigmoid, axis=-1)

    def forward_shape(self, shape):
        k = self._dim(shape[-1])
        return tuple(shape[:-1]) + (k, k)

    def inverse_shape(self, shape):
        k = shape[-1]
        return tuple(shape[:-2]) + (k * (k + 1) // 2,)


class OrderedTransform(Transform):
    """Map ``R^K`` onto increasing vectors: ``y_0 = x_0``, ``y_i = y_{i-1} +
    exp(x_i)``.

    The Jacobian is lower triangular with diagonal ``1, exp(x_1), ...``
    (Stan reference manual, "Ordered vector").
    """

    domain = constraints.real_vector
    codomain = constraints.ordered_vector

    def __call__(self, x):
        _check_last_dim("OrderedTransform", x)
        x = jnp.asarray(x, dtype=jnp.result_type(x, float))
        steps = jnp.concatenate([x[..., :1], jnp.exp(x[..., 1:])], axis=-1)
        return jnp.cumsum(steps, axis=-1)

    def _inverse(self, y):
        _check_last_dim("OrderedTransform.inv", y)
        gaps = jnp.log(y[..., 1:] - y[..., :-1])
        return jnp.concatenate([y[..., :1], gaps], axis=-1)

    def log_abs_det_jacobian(self, x, y):
        return jnp.sum(x[..., 1:], axis=-1)


# --- more transforms (issue 19) -------------------------------------------------


class PowerTransform(Transform):
    """``y = x ** exponent`` on the positive half-line.

    Parameters
    ----------
    exponent : array_like
        Nonzero; broadcasts with ``x``.
    """

    domain = constraints.positive
    codomain = constraints.positive

    def __init__(self, exponent):
        self.exponent = exponent

    @property
    def sign(self):
        return jnp.sign(self.exponent)

    def __call__(self, x):
        return jnp.power(x, self.exponent)

    def _inverse(self, y):
        return jnp.power(y, 1.0 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        # dy/dx = exponent * x^(exponent - 1) = exponent * y / x.
        return jnp.log(jnp.abs(self.exponent * y / x))

    def forward_shape(self, shape):
        return jnp.broadcast_shapes(tuple(shape), jnp.shape(self.exponent))

    def inverse_shape(self, shape):
        return self.forward_shape(shape)


class SoftplusLowerCholeskyTransform(Transform):
    """Map ``R^(K(K+1)/2)`` onto lower-triangular matrices with positive
    diagonal, as :class:`LowerCholeskyTransform` but with ``softplus`` on the
    diagonal (a log-Jacobian bounded in ``x``)."""

    domain = constraints.real_vector
    codomain = constraints.softplus_lower_cholesky

    def __call__(self, x):
        _check_last_dim("SoftplusLowerCholeskyTransform", x)
        k = _tril_size_to_dim(jnp.shape(x)[-1], False, "SoftplusLowerCholeskyTransform")
        strict = vec_to_tril_matrix(x[..., :-k], -1)
        return strict + _diag_embed(jax.nn.softplus(x[..., -k:]))

    def _inverse(self, y):
        diag = jnp.diagonal(y, axis1=-2, axis2=-1)
        free_diag = SoftplusTransform()._inverse(diag)
        return jnp.concatenate([matrix_to_tril_vec(y, -1), free_diag], axis=-1)

    def log_abs_det_jacobian(self, x, y):
        k = jnp.shape(y)[-1]
        return jnp.sum(-jax.nn.softplus(-x[..., -k:]), axis=-1)

    def forward_shape(self, shape):
        return LowerCholeskyTransform().forward_shape(shape)

    def inverse_shape(self, shape):
        return LowerCholeskyTransform().inverse_shape(shape)


class CholeskyTransform(Transform):
    """``y = cholesky(x)``, from positive definite matrices onto lower
    Cholesky factors.

    The log-Jacobian is with respect to the lower triangles (diagonal
    included) of both. The inverse ``L -> L L^T`` has Jacobian ``2^K prod_i
    L_ii^(K - i)`` (0-based ``i``): entry ``(i, j)``, ``j <= i``, of ``L L^T``
    depends on ``L_ij`` with coefficient ``L_jj`` (doubled on the diagonal)
    and otherwise on entries before it, row by row.
    """

    domain = constraints.positive_definite
    codomain = constraints.lower_cholesky

    def __call__(self, x):
        return jnp.linalg.cholesky(x)

    def _inverse(self, y):
        return y @ jnp.swapaxes(y, -2, -1)

    def log_abs_det_jacobian(self, x, y):
        k = jnp.shape(y)[-1]
        log_diag = jnp.log(jnp.diagonal(y, axis1=-2, axis2=-1))
        powers = jnp.arange(k, 0, -1, dtype=log_diag.dtype)
        return -(k * math.log(2.0) + jnp.sum(powers * log_diag, axis=-1))


class CorrMatrixCholeskyTransform(CholeskyTransform):
    """Map a correlation matrix ``C`` to its Cholesky factor ``L``.

    Both have ``K(K-1)/2`` free coordinates (the strictly lower triangles);
    the log-Jacobian is with respect to those. For ``i > j``,
    ``C_ij = L_ij L_jj + sum_{k<j} L_ik L_jk`` involves only ``L_ij`` and
    entries before it (row by row), so the Jacobian of ``L -> L L^T`` is
    triangular with diagonal ``dC_ij/dL_ij = L_jj``: ``log|det dC/dL| =
    sum_j (K - j) log L_jj`` (1-based ``j``). This direction reports its
    negative.
    """

    domain = constraints.corr_matrix
    codomain = constraints.corr_cholesky

    def log_abs_det_jacobian(self, x, y):
        k = jnp.shape(y)[-1]
        log_diag = jnp.log(jnp.diagonal(y, axis1=-2, axis2=-1))
        powers = jnp.arange(k - 1, -1, -1, dtype=log_diag.dtype)
        return -jnp.sum(powers * log_diag, axis=-1)


class SimplexToOrderedTransform(Transform):
    """Map a ``K``-simplex onto an increasing vector of ``K - 1`` cutpoints:
    ``y = logit(cumsum(x)[:-1]) + anchor_point``.

    The cutpoints of an ordinal logistic model whose category probabilities
    (at predictor ``anchor_point``) are ``x``; a Dirichlet prior on ``x``
    becomes a prior on the cutpoints (Betancourt, "Ordinal regression" case
    study, section 2.2). The log-Jacobian is with respect to the first
    ``K - 1`` coordinates of the simplex.

    Parameters
    ----------
    anchor_point : array_like, default=0.0
        Broadcasts with the batch shape of ``x``.
    """

    domain = constraints.simplex
    codomain = constraints.ordered_vector

    def __init__(self, anchor_point=0.0):
        self.anchor_point = anchor_point

    def _anchor(self):
        return jnp.expand_dims(jnp.asarray(self.anchor_point), -1)

    def __call__(self, x):
        _check_last_dim("SimplexToOrderedTransform", x, minimum=2)
        return logit(jnp.cumsum(x[..., :-1], axis=-1)) + self._anchor()

    def _inverse(self, y):
        s = expit(y - self._anchor())
        zeros = jnp.zeros_like(s[..., :1])
        s = jnp.concatenate([zeros, s, zeros + 1.0], axis=-1)
        return jnp.diff(s, axis=-1)

    def log_abs_det_jacobian(self, x, y):
        # cumsum has unit triangular Jacobian; logit'(s) = 1 / (s (1 - s)).
        t = y - self._anchor()
        return jnp.sum(jax.nn.softplus(t) + jax.nn.softplus(-t), axis=-1)

    def forward_shape(self, shape):
        _check_shape_last("SimplexToOrderedTransform", shape, 2)
        return tuple(shape[:-1]) + (shape[-1] - 1,)

    def inverse_shape(self, shape):
        return tuple(shape[:-1]) + (shape[-1] + 1,)


class L1BallTransform(Transform):
    """Map ``R^K`` onto the open unit L1 ball.

    ``t = tanh(x)`` gives signed fractions in ``(-1, 1)``; stick breaking
    then spends fraction ``|t_i|`` of what is left of the unit L1 budget on
    coordinate ``i``: ``y_i = t_i prod_{j<i} (1 - |t_j|)``. The Jacobian is
    triangular, with diagonal ``(1 - t_i^2) prod_{j<i} (1 - |t_j|)``.
    """

    domain = constraints.real_vector
    codomain = constraints.l1_ball

    @staticmethod
    def _log_remainder(abs_t):
        # log prod_{j<i} (1 - |t_j|), exclusive of i.
        return _exclusive_cumsum(jnp.log1p(-abs_t))

    def __call__(self, x):
        _check_last_dim("L1BallTransform", x)
        t = jnp.tanh(x)
        return t * jnp.exp(self._log_remainder(jnp.abs(t)))

    def _inverse(self, y):
        _check_last_dim("L1BallTransform.inv", y)
        finfo = jnp.finfo(jnp.result_type(y, float))
        remainder = 1.0 - _exclusive_cumsum(jnp.abs(y))
        t = y / jnp.maximum(remainder, finfo.tiny)
        return jnp.arctanh(jnp.clip(t, -1.0 + finfo.eps, 1.0 - finfo.eps))

    def log_abs_det_jacobian(self, x, y):
        t = jnp.tanh(x)
        log_rest = self._log_remainder(jnp.abs(t))
        return jnp.sum(_log_1m_tanh_sq(x) + log_rest, axis=-1)


class PermuteTransform(Transform):
    """Permute the last axis: ``y = x[..., permutation]`` (volume preserving).

    Parameters
    ----------
    permutation : array_like of int
        A permutation of ``0, ..., K-1``.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, permutation):
        permutation = jnp.asarray(permutation)
        if permutation.ndim != 1:
            raise ValueError(
                "PermuteTransform: permutation must be a vector, got shape "
                f"{permutation.shape}"
            )
        if not isinstance(permutation, jax.core.Tracer):
            size = permutation.shape[0]
            if sorted(permutation.tolist()) != list(range(size)):
                raise ValueError(
                    "PermuteTransform: permutation must contain each of 0..."
                    f"{size - 1} once, got {permutation.tolist()}"
                )
        self.permutation = permutation

    def __call__(self, x):
        return jnp.take(x, self.permutation, axis=-1)

    def _inverse(self, y):
        size = self.permutation.shape[0]
        inverse = jnp.zeros(size, self.permutation.dtype)
        positions = jnp.arange(size, dtype=self.permutation.dtype)
        inverse = inverse.at[self.permutation].set(positions)
        return jnp.take(y, inverse, axis=-1)

    def log_abs_det_jacobian(self, x, y):
        return jnp.zeros(jnp.shape(x)[:-1], dtype=jnp.result_type(x, float))


class ReshapeTransform(Transform):
    """Reshape the event ``inverse_shape -> forward_shape``; batch dims are kept.

    Parameters
    ----------
    forward_shape : tuple of int
        The event shape of the output.
    inverse_shape : tuple of int
        The event shape of the input; same number of elements.
    """

    def __init__(self, forward_shape, inverse_shape):
        forward_shape = tuple(int(s) for s in forward_shape)
        inverse_shape = tuple(int(s) for s in inverse_shape)
        if math.prod(forward_shape) != math.prod(inverse_shape):
            raise ValueError(
                f"ReshapeTransform: forward_shape {forward_shape} and inverse_shape "
                f"{inverse_shape} hold different numbers of elements"
            )
        self._forward_shape = forward_shape
        self._inverse_shape = inverse_shape

    @property
    def domain(self):
        return constraints.independent(constraints.real, len(self._inverse_shape))

    @property
    def codomain(self):
        return constraints.independent(constraints.real, len(self._forward_shape))

    @staticmethod
    def _swap_event(shape, old, new, name):
        shape = tuple(shape)
        split = len(shape) - len(old)
        if split < 0 or shape[split:] != old:
            raise ValueError(
                f"ReshapeTransform{name}: expected a shape ending in {old}, got {shape}"
            )
        return shape[:split] + new

    def forward_shape(self, shape):
        return self._swap_event(shape, self._inverse_shape, self._forward_shape, "")

    def inverse_shape(self, shape):
        return self._swap_event(shape, self._forward_shape, self._inverse_shape, ".inv")

    def __call__(self, x):
        return jnp.reshape(x, self.forward_shape(jnp.shape(x)))

    def _inverse(self, y):
        return jnp.reshape(y, self.inverse_shape(jnp.shape(y)))

    def log_abs_det_jacobian(self, x, y):
        batch = jnp.shape(x)[: jnp.ndim(x) - len(self._inverse_shape)]
        return jnp.zeros(batch, dtype=jnp.result_type(x, float))


def _move_to_last(x, dim, flatten):
    """``x`` with the event starting at ``dim`` as its last axis: the trailing
    dims flattened into one (``flatten``) or axis ``dim`` moved last; and the
    function that undoes it."""
    x = jnp.asarray(x, dtype=jnp.result_type(x, float))
    if dim == -1:
        return x, lambda z: z
    if flatten:
        event = x.shape[dim:]
        flat = jnp.reshape(x, x.shape[:dim] + (-1,))
        return flat, lambda z: jnp.reshape(z, z.shape[:-1] + event)
    return jnp.moveaxis(x, dim, -1), lambda z: jnp.moveaxis(z, -1, dim)


class DiscreteCosineTransform(Transform):
    """The orthonormal DCT-II along ``dim``, optionally reweighted by
    frequency.

    With ``smooth = s``, coefficient ``k`` is multiplied by ``(k + 1/2)^s``
    divided by the geometric mean of these weights, so the map stays volume
    preserving (log-Jacobian 0): ``s = 0`` maps white noise to white noise,
    ``s = 1`` whitens Brownian-like (``1/f^2``) noise, ``s = -1`` violet noise.

    Parameters
    ----------
    dim : int, default=-1
        The (negative) axis transformed; the dims from it rightwards are the
        event.
    smooth : float, default=0.0
        The frequency weighting exponent.
    """

    def __init__(self, dim=-1, smooth=0.0):
        if dim >= 0:
            raise ValueError(
                f"DiscreteCosineTransform: dim must be negative, got {dim}"
            )
        self.dim = int(dim)
        self.smooth = float(smooth)

    @property
    def domain(self):
        return constraints.independent(constraints.real, -self.dim)

    @property
    def codomain(self):
        return constraints.independent(constraints.real, -self.dim)

    def _weight(self, n, dtype):
        log_freq = jnp.log(jnp.arange(n, dtype=dtype) + 0.5)
        return jnp.exp(self.smooth * (log_freq - jnp.mean(log_freq)))

    def __call__(self, x):
        x, undo = _move_to_last(x, self.dim, flatten=False)
        y = jax.scipy.fft.dct(x, type=2, norm="ortho", axis=-1)
        if self.smooth:
            y = y * self._weight(y.shape[-1], y.dtype)
        return undo(y)

    def _inverse(self, y):
        y, undo = _move_to_last(y, self.dim, flatten=False)
        if self.smooth:
            y = y / self._weight(y.shape[-1], y.dtype)
        return undo(jax.scipy.fft.idct(y, type=2, norm="ortho", axis=-1))

    def log_abs_det_jacobian(self, x, y):
        batch = jnp.shape(x)[: jnp.ndim(x) + self.dim]
        return jnp.zeros(batch, dtype=jnp.result_type(x, float))


_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def _haar(x):
    # Pairwise sums (recursed on) and differences, both scaled by 1/sqrt(2);
    # an odd element left over stays in the middle.
    n = x.shape[-1] // 2
    even, odd, rest = x[..., 0 : 2 * n : 2], x[..., 1 : 2 * n : 2], x[..., 2 * n :]
    low = (even + odd) * _INV_SQRT2
    high = (even - odd) * _INV_SQRT2
    if n >= 2:
        low = _haar(low)
    return jnp.concatenate([low, rest, high], axis=-1)


def _inverse_haar(y):
    size = y.shape[-1]
    n = size // 2
    low, rest, high = y[..., :n], y[..., n : size - n], y[..., size - n :]
    if n >= 2:
        low = _inverse_haar(low)
    even = (low + high) * _INV_SQRT2
    odd = (low - high) * _INV_SQRT2
    pairs = jnp.stack([even, odd], axis=-1).reshape(even.shape[:-1] + (2 * n,))
    return jnp.concatenate([pairs, rest], axis=-1)


class HaarTransform(Transform):
    """The orthonormal Haar wavelet transform along ``dim`` (volume preserving).

    Parameters
    ----------
    dim : int, default=-1
        The (negative) axis transformed; the dims from it rightwards are the
        event.
    flatten : bool, default=True
        With ``dim < -1``: transform the flattened event (True) or the axis
        ``dim`` alone (False).
    """

    def __init__(self, dim=-1, flatten=True):
        if dim >= 0:
            raise ValueError(f"HaarTransform: dim must be negative, got {dim}")
        self.dim = int(dim)
        self.flatten = bool(flatten)

    @property
    def domain(self):
        return constraints.independent(constraints.real, -self.dim)

    @property
    def codomain(self):
        return constraints.independent(constraints.real, -self.dim)

    def __call__(self, x):
        x, undo = _move_to_last(x, self.dim, self.flatten)
        return undo(_haar(x))

    def _inverse(self, y):
        y, undo = _move_to_last(y, self.dim, self.flatten)
        return undo(_inverse_haar(y))

    def log_abs_det_jacobian(self, x, y):
        batch = jnp.shape(x)[: jnp.ndim(x) + self.dim]
        return jnp.zeros(batch, dtype=jnp.result_type(x, float))


class RecursiveLinearTransform(Transform):
    """The linear recursion ``y_t = A y_{t-1} + x_t``, ``y_{-1} = 0``, over the
    time axis -2 of a ``(..., T, D)`` array.

    Turns white noise into a vector autoregression; the Jacobian is block
    lower triangular with identity blocks, so its log-determinant is 0.

    Parameters
    ----------
    transition_matrix : array_like
        ``A``, of shape ``(..., D, D)``.
    """

    domain = constraints.real_matrix
    codomain = constraints.real_matrix

    def __init__(self, transition_matrix):
        transition_matrix = jnp.asarray(transition_matrix)
        if transition_matrix.ndim < 2 or (
            transition_matrix.shape[-1] != transition_matrix.shape[-2]
        ):
            raise ValueError(
                "RecursiveLinearTransform: transition_matrix must be square, got "
                f"shape {transition_matrix.shape}"
            )
        self.transition_matrix = transition_matrix

    def _apply(self, y):
        return jnp.einsum("...ij,...j->...i", self.transition_matrix, y)

    def __call__(self, x):
        x = jnp.asarray(x, dtype=jnp.result_type(x, float))
        shape = self.forward_shape(jnp.shape(x))
        x = jnp.broadcast_to(x, shape)
        steps = jnp.moveaxis(x, -2, 0)

        def step(y_prev, x_t):
            y_t = self._apply(y_prev) + x_t
            return y_t, y_t

        _, ys = lax.scan(step, jnp.zeros_like(steps[0]), steps)
        return jnp.moveaxis(ys, 0, -2)

    def _inverse(self, y):
        previous = jnp.concatenate([jnp.zeros_like(y[..., :1, :]), y[..., :-1, :]], -2)
        a = jnp.expand_dims(self.transition_matrix, -3)
        return y - jnp.einsum("...ij,...j->...i", a, previous)

    def log_abs_det_jacobian(self, x, y):
        return jnp.zeros(jnp.shape(x)[:-2], dtype=jnp.result_type(x, float))

    def forward_shape(self, shape):
        batch = jnp.broadcast_shapes(
            tuple(shape[:-2]), jnp.shape(self.transition_matrix)[:-2]
        )
        return tuple(batch) + tuple(shape[-2:])

    def inverse_shape(self, shape):
        return self.forward_shape(shape)


class ZeroSumTransform(Transform):
    """Map ``R^(n-1)`` onto the vectors of ``R^n`` that sum to zero, along each
    of the last ``transform_ndims`` axes.

    Along one axis, with ``s = sum(x)``: ``y_i = x_i - s / (n + sqrt(n))`` for
    ``i < n - 1`` and ``y_{n-1} = -s / sqrt(n)``. This is an isometry onto
    the hyperplane (its columns are orthonormal: a Householder reflection
    taking the last basis vector to ``-1 / sqrt(n)``), so the density is
    with respect to the hyperplane's own ``(n-1)``-dimensional Lebesgue
    measure and the log-Jacobian is 0.

    Parameters
    ----------
    transform_ndims : int, default=1
        How many trailing axes are made to sum to zero.
    """

    def __init__(self, transform_ndims=1):
        self.transform_ndims = int(transform_ndims)
        if self.transform_ndims < 1:
            raise ValueError(
                f"ZeroSumTransform: transform_ndims must be >= 1, got {transform_ndims}"
            )

    @property
    def domain(self):
        return constraints.independent(constraints.real, self.transform_ndims)

    @property
    def codomain(self):
        return constraints.zero_sum(self.transform_ndims)

    def __call__(self, x):
        x = jnp.asarray(x, dtype=jnp.result_type(x, float))
        for axis in range(-self.transform_ndims, 0):
            x = jnp.moveaxis(self._extend(jnp.moveaxis(x, axis, -1)), -1, axis)
        return x

    def _inverse(self, y):
        y = jnp.asarray(y, dtype=jnp.result_type(y, float))
        for axis in range(-self.transform_ndims, 0):
            y = jnp.moveaxis(self._reduce(jnp.moveaxis(y, axis, -1)), -1, axis)
        return y

    @staticmethod
    def _extend(x):
        n = x.shape[-1] + 1
        root = math.sqrt(n)
        total = jnp.sum(x, axis=-1, keepdims=True)
        return jnp.concatenate([x - total / (n + root), -total / root], axis=-1)

    @staticmethod
    def _reduce(y):
        n = y.shape[-1]
        root = math.sqrt(n)
        total = -root * y[..., -1:]  # the sum of the free coordinates
        return y[..., :-1] + total / (n + root)

    def log_abs_det_jacobian(self, x, y):
        batch = jnp.shape(x)[: jnp.ndim(x) - self.transform_ndims]
        return jnp.zeros(batch, dtype=jnp.result_type(x, float))

    def forward_shape(self, shape):
        k = self.transform_ndims
        return tuple(shape[:-k]) + tuple(s + 1 for s in shape[-k:])

    def inverse_shape(self, shape):
        k = self.transform_ndims
        return tuple(shape[:-k]) + tuple(s - 1 for s in shape[-k:])


# --- biject_to ----------------------------------------------------------------


class ConstraintRegistry:
    """Dispatch from a constraint's type to a factory of its bijection.

    ``biject_to(constraint)`` walks the constraint's class hierarchy (most
    specific first) and calls the first registered factory. Register new
    constraints with ``@biject_to.register(ConstraintType)``.
    """

    def __init__(self):
        self._registry = {}

    def register(self, constraint_type, factory=None):
        if factory is None:
            return lambda f: self.register(constraint_type, f)
        self._registry[constraint_type] = factory
        return factory

    def __call__(self, constraint):
        if not isinstance(constraint, constraints.Constraint):
            raise TypeError(f"biject_to expects a Constraint, got {constraint!r}")
        if constraint.is_discrete:
            raise ValueError(
                f"a site with a discrete support ({constraint!r}) cannot be sampled "
                "by HMC/NUTS or fitted by SVI in unconstrained space: observe it, "
                "marginalise it out, or give it a continuous relaxation"
            )
        for cls in type(constraint).__mro__:
            if cls in self._registry:
                return self._registry[cls](constraint)
        raise NotImplementedError(
            f"biject_to has no transform registered for constraint {constraint!r}"
        )


biject_to = ConstraintRegistry()


@biject_to.register(constraints._Real)
def _biject_real(constraint):
    return IdentityTransform()


@biject_to.register(constraints._GreaterThan)
def _biject_greater_than(constraint):
    # Covers positive and nonnegative too: exp maps onto (0, inf), which is
    # all of the closed half-line but the boundary point (measure zero).
    if isinstance(constraint, (constraints._Positive, constraints._Nonnegative)):
        return ExpTransform()
    return ComposeTransform(
        [
            ExpTransform(),
            AffineTransform(constraint.lower_bound, 1.0, constraints.positive),
        ]
    )


@biject_to.register(constraints._LessThan)
def _biject_less_than(constraint):
    return ComposeTransform(
        [
            ExpTransform(),
            AffineTransform(constraint.upper_bound, -1.0, constraints.positive),
        ]
    )


@biject_to.register(constraints._SoftplusPositive)
def _biject_softplus_positive(constraint):
    return SoftplusTransform()


@biject_to.register(constraints._Interval)
def _biject_interval(constraint):
    if isinstance(constraint, constraints._UnitInterval):
        return SigmoidTransform()
    low, high = constraint.lower_bound, constraint.upper_bound
    affine = AffineTransform(low, high - low, constraints.unit_interval)
    return ComposeTransform([SigmoidTransform(), affine])


@biject_to.register(constraints._Simplex)
def _biject_simplex(constraint):
    return StickBreakingTransform()


@biject_to.register(constraints._CorrCholesky)
def _biject_corr_cholesky(constraint):
    return CorrCholeskyTransform()


@biject_to.register(constraints._CorrMatrix)
def _biject_corr_matrix(constraint):
    return ComposeTransform(
        [CorrCholeskyTransform(), CorrMatrixCholeskyTransform().inv]
    )


@biject_to.register(constraints._OrderedVector)
def _biject_ordered_vector(constraint):
    return OrderedTransform()


@biject_to.register(constraints._LowerCholesky)
def _biject_lower_cholesky(constraint):
    return LowerCholeskyTransform()


@biject_to.register(constraints._ScaledUnitLowerCholesky)
def _biject_scaled_unit_lower_cholesky(constraint):
    return ScaledUnitLowerCholeskyTransform()


@biject_to.register(constraints._PositiveDefinite)
def _biject_positive_definite(constraint):
    return PositiveDefiniteTransform()


@biject_to.register(constraints._Independent)
def _biject_independent(constraint):
    base = biject_to(constraint.base_constraint)
    return IndependentTransform(base, constraint.reinterpreted_batch_ndims)


@biject_to.register(constraints._PositiveOrderedVector)
def _biject_positive_ordered_vector(constraint):
    return ComposeTransform([OrderedTransform(), ExpTransform()])


@biject_to.register(constraints._SoftplusLowerCholesky)
def _biject_softplus_lower_cholesky(constraint):
    return SoftplusLowerCholeskyTransform()


@biject_to.register(constraints._L1Ball)
def _biject_l1_ball(constraint):
    return L1BallTransform()


@biject_to.register(constraints._ZeroSum)
def _biject_zero_sum(constraint):
    return ZeroSumTransform(constraint.event_dim)

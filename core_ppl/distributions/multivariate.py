"""Multivariate distributions: :class:`MultivariateStudentT`, the Wishart
family (:class:`Wishart`, :class:`WishartCholesky`), :class:`ZeroSumNormal`
and the linear-Gaussian :class:`GaussianStateSpace`.

Matrices are stored through their lower Cholesky factor (``scale_tril``),
as in :class:`MultivariateNormal`: densities use triangular solves and the
log-diagonal of the factor, never an explicit inverse or determinant.
Wishart draws use the Bartlett decomposition (Bartlett 1933; Smith & Hocking
1972): ``X = (L A)(L A)^T`` with ``A`` lower triangular, ``A_ii^2 ~
Chi2(nu - i)`` (0-based ``i``) and standard normal entries below the
diagonal. The chi-square draws are Gamma draws, differentiable in ``nu``.

:class:`ZeroSumNormal` and :class:`GaussianStateSpace` are transformed
distributions (a normal base through :class:`ZeroSumTransform` and
:class:`RecursiveLinearTransform`); they carry their parameters as extra
pytree leaves so ``mean`` and ``variance`` survive ``jit``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import digamma, gammaln, multigammaln

from core_ppl.distributions import constraints
from core_ppl.distributions.continuous import MultivariateNormal, Normal
from core_ppl.distributions.distribution import (
    Distribution,
    TransformedDistribution,
    as_float_array,
    broadcast_param_shapes,
    check_param,
)
from core_ppl.distributions.transforms import (
    RecursiveLinearTransform,
    ZeroSumTransform,
)
from core_ppl.distributions.util import cholesky_of_inverse

__all__ = [
    "GaussianStateSpace",
    "InverseWishart",
    "MultivariateStudentT",
    "Wishart",
    "WishartCholesky",
    "ZeroSumNormal",
]

_LOG_2 = math.log(2.0)
_LOG_PI = math.log(math.pi)


def _square(name, param, matrix):
    matrix = as_float_array(matrix)
    if matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(
            f"{name}: {param} must be a (batch of) square matrices, got shape "
            f"{matrix.shape}"
        )
    return matrix


def _one_matrix(name, **given):
    """The one matrix parameter given, as ``(its name, scale_tril)``."""
    given = {k: v for k, v in given.items() if v is not None}
    if len(given) != 1:
        raise ValueError(
            f"{name}: give exactly one of {', '.join(k for k in _MATRIX_KINDS)}, "
            f"got {sorted(given) or 'none'}"
        )
    ((param, matrix),) = given.items()
    return param, _square(name, param, matrix)


_MATRIX_KINDS = ("scale_matrix", "rate_matrix", "scale_tril")


def _to_scale_tril(param, matrix):
    if param in ("scale_matrix", "covariance_matrix"):
        return jnp.linalg.cholesky(matrix)
    if param in ("rate_matrix", "precision_matrix"):
        return cholesky_of_inverse(matrix)
    return matrix


def _log_diag(tril):
    return jnp.log(jnp.diagonal(tril, axis1=-2, axis2=-1))


def _transpose(m):
    return jnp.swapaxes(m, -2, -1)


# --- multivariate Student t ---------------------------------------------------------


class MultivariateStudentT(Distribution):
    """The multivariate Student t: ``loc + L z / sqrt(g / df)`` with ``z ~
    N(0, I)`` and ``g ~ Chi2(df)``.

    Density ``Gamma((df + K)/2) / (Gamma(df/2) (df pi)^(K/2) |L|) (1 +
    |L^{-1}(x - loc)|^2 / df)^(-(df + K)/2)``.

    Parameters
    ----------
    df : array_like
        Degrees of freedom, > 0 (batch shape).
    loc : array_like, default=0.0
        Location, shape ``batch_shape + (K,)``.
    scale_tril : array_like
        Lower Cholesky factor ``L`` of the scale matrix, ``(..., K, K)``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real_vector,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector
    has_rsample = True
    reparametrized_params = ("df", "loc", "scale_tril")

    def __init__(self, df, loc=0.0, scale_tril=None, *, validate_args=None):
        name = "MultivariateStudentT"
        if scale_tril is None:
            raise ValueError(f"{name}: scale_tril is required")
        scale_tril = _square(name, "scale_tril", scale_tril)
        df, loc = as_float_array(df), as_float_array(loc)
        loc = loc[None] if loc.ndim == 0 else loc
        batch_shape = broadcast_param_shapes(
            name, df=df.shape, loc=loc.shape[:-1], scale_tril=scale_tril.shape[:-2]
        )
        event_shape = broadcast_param_shapes(
            f"{name} (event size)", loc=loc.shape[-1:], scale_tril=scale_tril.shape[-1:]
        )
        self.df = jnp.broadcast_to(df, batch_shape)
        self.loc = jnp.broadcast_to(loc, batch_shape + event_shape)
        self.scale_tril = jnp.broadcast_to(scale_tril, batch_shape + event_shape * 2)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @property
    def covariance_matrix(self):
        """``df / (df - 2) L L^T`` (infinite for ``1 < df <= 2``)."""
        scale = self.scale_tril @ _transpose(self.scale_tril)
        return self._variance_factor()[..., None, None] * scale

    @property
    def precision_matrix(self):
        """The inverse of ``covariance_matrix``."""
        return jnp.linalg.inv(self.covariance_matrix)

    def sample(self, key, sample_shape=()):
        key_z, key_g = jax.random.split(key)
        shape = self.shape(sample_shape)
        dtype = self.loc.dtype
        z = jax.random.normal(key_z, shape, dtype=dtype)
        half_df = jnp.broadcast_to(0.5 * self.df, shape[:-1])
        g = jax.random.gamma(key_g, half_df, dtype=dtype)  # Chi2(df) / 2
        scaled = jnp.matmul(self.scale_tril, z[..., None])[..., 0]
        return self.loc + scaled * jnp.sqrt(half_df / g)[..., None]

    def log_prob(self, value):
        value = self._check_value(value)
        diff = value - self.loc
        chol = jnp.broadcast_to(self.scale_tril, diff.shape + diff.shape[-1:])
        z = solve_triangular(chol, diff[..., None], lower=True)[..., 0]
        k, df = self.event_shape[0], self.df
        log_norm = (
            gammaln(0.5 * (df + k))
            - gammaln(0.5 * df)
            - 0.5 * k * (jnp.log(df) + _LOG_PI)
            - jnp.sum(_log_diag(self.scale_tril), axis=-1)
        )
        return log_norm - 0.5 * (df + k) * jnp.log1p(jnp.sum(z**2, axis=-1) / df)

    def entropy(self):
        """``log|L| + K/2 log(df pi) + log Gamma(df/2) - log Gamma((df + K)/2)
        + (df + K)/2 (psi((df + K)/2) - psi(df/2))``."""
        k, df = self.event_shape[0], self.df
        half, half_k = 0.5 * df, 0.5 * (df + k)
        return (
            jnp.sum(_log_diag(self.scale_tril), axis=-1)
            + 0.5 * k * (jnp.log(df) + _LOG_PI)
            + gammaln(half)
            - gammaln(half_k)
            + half_k * (digamma(half_k) - digamma(half))
        )

    def _variance_factor(self):
        df = self.df
        factor = jnp.where(df > 2, df / (df - 2.0), jnp.inf)
        return jnp.where(df <= 1, jnp.nan, factor)

    @property
    def mean(self):
        return jnp.where(self.df[..., None] > 1, self.loc, jnp.nan)

    @property
    def variance(self):
        diag = jnp.sum(self.scale_tril**2, axis=-1)
        return self._variance_factor()[..., None] * diag


# --- Wishart family ------------------------------------------------------------------


class _WishartBase(Distribution):
    arg_constraints = {
        "concentration": constraints.positive,
        "scale_tril": constraints.lower_cholesky,
    }
    has_rsample = True
    reparametrized_params = ("concentration", "scale_tril")

    def __init__(
        self,
        concentration,
        scale_matrix=None,
        rate_matrix=None,
        scale_tril=None,
        *,
        validate_args=None,
    ):
        name = type(self).__name__
        param, matrix = _one_matrix(
            name,
            scale_matrix=scale_matrix,
            rate_matrix=rate_matrix,
            scale_tril=scale_tril,
        )
        if validate_args and param != "scale_tril":
            check_param(name, param, constraints.positive_definite, matrix)
        matrix = _to_scale_tril(param, matrix)
        concentration = as_float_array(concentration)
        batch_shape = broadcast_param_shapes(
            name, concentration=concentration.shape, **{param: matrix.shape[:-2]}
        )
        event_shape = matrix.shape[-2:]
        self.concentration = jnp.broadcast_to(concentration, batch_shape)
        self.scale_tril = jnp.broadcast_to(matrix, batch_shape + event_shape)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def _validate_params(self):
        super()._validate_params()
        # The density needs nu > K - 1 (Gamma_K(nu / 2) is finite there).
        k = self.event_shape[-1]
        check_param(
            type(self).__name__,
            "concentration",
            constraints.greater_than(k - 1.0),
            self.concentration,
        )

    @property
    def scale_matrix(self):
        """``L L^T``, the scale matrix ``S``."""
        return self.scale_tril @ _transpose(self.scale_tril)

    @property
    def rate_matrix(self):
        """``S^{-1}``."""
        eye = jnp.broadcast_to(
            jnp.eye(self.event_shape[-1], dtype=self.scale_tril.dtype),
            self.scale_tril.shape,
        )
        inv_l = solve_triangular(self.scale_tril, eye, lower=True)
        return _transpose(inv_l) @ inv_l

    def _sample_tril(self, key, sample_shape):
        """``L A``, the lower Cholesky factor of a Wishart draw (Bartlett)."""
        k = self.event_shape[-1]
        shape = tuple(sample_shape) + self.batch_shape
        dtype = self.scale_tril.dtype
        key_g, key_z = jax.random.split(key)
        # A_ii^2 ~ Chi2(nu - i) = 2 Gamma((nu - i) / 2).
        half_dof = 0.5 * (self.concentration[..., None] - jnp.arange(k, dtype=dtype))
        half_dof = jnp.broadcast_to(half_dof, shape + (k,))
        diag = jnp.sqrt(2.0 * jax.random.gamma(key_g, half_dof, dtype=dtype))
        below = jnp.tril(jax.random.normal(key_z, shape + (k, k), dtype=dtype), -1)
        a = below + diag[..., None] * jnp.eye(k, dtype=dtype)
        return self.scale_tril @ a

    def _log_prob_of_tril(self, chol):
        """The Wishart log density of ``X = chol chol^T``."""
        k, nu = self.event_shape[-1], self.concentration
        shape = jnp.broadcast_shapes(chol.shape, self.scale_tril.shape)
        chol = jnp.broadcast_to(chol, shape)
        scale_tril = jnp.broadcast_to(self.scale_tril, shape)
        # tr(S^{-1} X) = |L^{-1} C|_F^2; log|X| = 2 sum log C_ii.
        trace = jnp.sum(solve_triangular(scale_tril, chol, lower=True) ** 2, (-2, -1))
        log_det_x = 2.0 * jnp.sum(_log_diag(chol), axis=-1)
        log_det_s = 2.0 * jnp.sum(_log_diag(self.scale_tril), axis=-1)
        return (
            0.5 * (nu - k - 1.0) * log_det_x
            - 0.5 * trace
            - 0.5 * nu * k * _LOG_2
            - 0.5 * nu * log_det_s
            - multigammaln(0.5 * nu, k)
        )


class Wishart(_WishartBase):
    """The Wishart distribution over positive definite ``K x K`` matrices.

    Density ``|X|^((nu - K - 1)/2) exp(-tr(S^{-1} X) / 2) / (2^(nu K / 2)
    |S|^(nu / 2) Gamma_K(nu / 2))``, the law of ``sum_i x_i x_i^T`` for ``nu``
    draws ``x_i ~ N(0, S)``.

    Parameters
    ----------
    concentration : array_like
        Degrees of freedom ``nu`` > ``K - 1``.
    scale_matrix, rate_matrix, scale_tril : array_like, optional
        ``S``, ``S^{-1}`` or the lower Cholesky factor of ``S``; give exactly
        one, shape ``batch_shape + (K, K)``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import core_ppl.distributions as dist
    >>> d = dist.Wishart(5.0, scale_matrix=jnp.eye(2))
    >>> d.mean.tolist()
    [[5.0, 0.0], [0.0, 5.0]]
    """

    support = constraints.positive_definite

    def sample(self, key, sample_shape=()):
        chol = self._sample_tril(key, sample_shape)
        return chol @ _transpose(chol)

    def log_prob(self, value):
        value = self._check_value(value)
        return self._log_prob_of_tril(jnp.linalg.cholesky(value))

    @property
    def mean(self):
        return self.concentration[..., None, None] * self.scale_matrix

    @property
    def variance(self):
        # Var X_ij = nu (S_ij^2 + S_ii S_jj).
        s = self.scale_matrix
        diag = jnp.diagonal(s, axis1=-2, axis2=-1)
        return self.concentration[..., None, None] * (
            s**2 + diag[..., :, None] * diag[..., None, :]
        )


class WishartCholesky(_WishartBase):
    """The lower Cholesky factor ``C`` of a :class:`Wishart` matrix ``X = C
    C^T``.

    Its density (with respect to the lower triangle of ``C``) is the Wishart
    density of ``C C^T`` times the Jacobian ``2^K prod_i C_ii^(K - i)``
    (0-based ``i``) of ``C -> C C^T``. Parameters as :class:`Wishart`.
    """

    support = constraints.lower_cholesky

    def sample(self, key, sample_shape=()):
        return self._sample_tril(key, sample_shape)

    def log_prob(self, value):
        value = self._check_value(value)
        k = self.event_shape[-1]
        powers = jnp.arange(k, 0, -1, dtype=value.dtype)
        log_jacobian = k * _LOG_2 + jnp.sum(powers * _log_diag(value), axis=-1)
        return self._log_prob_of_tril(value) + log_jacobian


class InverseWishart(_WishartBase):
    """The inverse Wishart distribution: ``X^{-1}`` for ``X ~ Wishart(nu,
    Psi^{-1})``, a prior for covariance matrices.

    Density ``|Psi|^(nu/2) |X|^(-(nu + K + 1)/2) exp(-tr(Psi X^{-1}) / 2) /
    (2^(nu K / 2) Gamma_K(nu / 2))``.

    Parameters
    ----------
    concentration : array_like
        Degrees of freedom ``nu`` > ``K - 1``.
    scale_matrix, rate_matrix, scale_tril : array_like, optional
        ``Psi``, ``Psi^{-1}`` or the lower Cholesky factor of ``Psi``; give
        exactly one, shape ``batch_shape + (K, K)``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Notes
    -----
    ``mean`` is ``Psi / (nu - K - 1)`` (finite for ``nu > K + 1``) and
    ``variance`` the entrywise ``((nu - K + 1) Psi_ij^2 + (nu - K - 1)
    Psi_ii Psi_jj) / ((nu - K) (nu - K - 1)^2 (nu - K - 3))`` (finite for
    ``nu > K + 3``); infinite below those bounds.
    """

    support = constraints.positive_definite

    def sample(self, key, sample_shape=()):
        # B = chol(Psi^{-1}) A is the Cholesky factor of the Wishart draw W;
        # X = W^{-1} = B^{-T} B^{-1}.
        lower = cholesky_of_inverse(self.scale_matrix)
        chol = _WishartBase._sample_tril(self._with_tril(lower), key, sample_shape)
        eye = jnp.broadcast_to(jnp.eye(chol.shape[-1], dtype=chol.dtype), chol.shape)
        inv = solve_triangular(chol, eye, lower=True)
        return _transpose(inv) @ inv

    def _with_tril(self, scale_tril):
        # A shallow copy whose scale factor is ``scale_tril`` (for the sampler).
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__, scale_tril=scale_tril)
        return other

    def log_prob(self, value):
        value = self._check_value(value)
        chol = jnp.linalg.cholesky(value)
        shape = jnp.broadcast_shapes(chol.shape, self.scale_tril.shape)
        chol = jnp.broadcast_to(chol, shape)
        scale_tril = jnp.broadcast_to(self.scale_tril, shape)
        k, nu = self.event_shape[-1], self.concentration
        # tr(Psi X^{-1}) = |C^{-1} L|_F^2 with X = C C^T and Psi = L L^T.
        trace = jnp.sum(solve_triangular(chol, scale_tril, lower=True) ** 2, (-2, -1))
        log_det_x = 2.0 * jnp.sum(_log_diag(chol), axis=-1)
        log_det_psi = 2.0 * jnp.sum(_log_diag(self.scale_tril), axis=-1)
        return (
            0.5 * nu * log_det_psi
            - 0.5 * (nu + k + 1.0) * log_det_x
            - 0.5 * trace
            - 0.5 * nu * k * _LOG_2
            - multigammaln(0.5 * nu, k)
        )

    @property
    def mean(self):
        k = self.event_shape[-1]
        nu = self.concentration[..., None, None]
        return jnp.where(nu > k + 1, self.scale_matrix / (nu - k - 1.0), jnp.inf)

    @property
    def variance(self):
        k = self.event_shape[-1]
        nu = self.concentration[..., None, None]
        psi = self.scale_matrix
        diag = jnp.diagonal(psi, axis1=-2, axis2=-1)
        outer = diag[..., :, None] * diag[..., None, :]
        num = (nu - k + 1.0) * psi**2 + (nu - k - 1.0) * outer
        den = (nu - k) * (nu - k - 1.0) ** 2 * (nu - k - 3.0)
        return jnp.where(nu > k + 3, num / den, jnp.inf)


# --- transformed normals ----------------------------------------------------------


class _TransformedWithParams(TransformedDistribution):
    """A transformed distribution that also carries ``_param_names`` as pytree
    leaves, so its closed-form moments can read them after ``jit``."""

    _param_names: tuple = ()

    def tree_flatten(self):
        leaves, aux = super().tree_flatten()
        extra = tuple(getattr(self, n) for n in self._param_names)
        return tuple(leaves) + extra, aux

    @classmethod
    def tree_unflatten(cls, aux, leaves):
        split = len(leaves) - len(cls._param_names)
        self = super().tree_unflatten(aux, leaves[:split])
        for name, value in zip(cls._param_names, leaves[split:]):
            setattr(self, name, value)
        return self


class ZeroSumNormal(_TransformedWithParams):
    """A normal vector (or array) constrained to sum to zero along each of its
    event axes: ``N(0, scale^2 I)`` restricted to that subspace.

    The draws are ``ZeroSumTransform`` images of ``N(0, scale^2)`` vectors
    with one fewer element per axis; the transform is an isometry, so the
    density is that of the normal on the subspace (with respect to its own
    Lebesgue measure) and each element has variance ``scale^2 prod_i (1 -
    1/n_i)``. Useful for identifiable group effects next to an intercept.

    Parameters
    ----------
    scale : array_like
        Standard deviation, > 0 (batch shape).
    event_shape : tuple of int
        The shape of one draw; every axis sums to zero.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).

    Examples
    --------
    >>> import jax
    >>> import core_ppl.distributions as dist
    >>> x = dist.ZeroSumNormal(1.0, (4,)).sample(jax.random.PRNGKey(0))
    >>> abs(float(x.sum())) < 1e-5
    True
    """

    arg_constraints = {"scale": constraints.positive}
    has_rsample = True
    reparametrized_params = ("scale",)
    _param_names = ("scale",)

    def __init__(self, scale, event_shape, *, validate_args=None):
        event_shape = tuple(int(n) for n in event_shape)
        if not event_shape or min(event_shape) < 1:
            raise ValueError(
                "ZeroSumNormal: event_shape must be a non-empty tuple of positive "
                f"sizes, got {event_shape}"
            )
        scale = as_float_array(scale)
        self.scale = scale
        n = len(event_shape)
        free = tuple(s - 1 for s in event_shape)
        base = Normal(0.0, scale.reshape(scale.shape + (1,) * n))
        base = base.expand(scale.shape + free).to_event(n)
        super().__init__(base, ZeroSumTransform(n), validate_args=validate_args)

    @property
    def support(self):
        return constraints.zero_sum(self.event_dim)

    @property
    def mean(self):
        return jnp.zeros(self.shape(), dtype=self.scale.dtype)

    @property
    def variance(self):
        factor = math.prod(1.0 - 1.0 / n for n in self.event_shape)
        var = (self.scale**2 * factor).reshape(self.batch_shape + (1,) * self.event_dim)
        return jnp.broadcast_to(var, self.shape())


class GaussianStateSpace(_TransformedWithParams):
    """A linear-Gaussian state space: ``x_t = A x_{t-1} + e_t`` with ``e_t ~
    N(0, Q)`` independently and ``x_{-1} = 0``, over ``num_steps`` steps.

    A draw has event shape ``(num_steps, D)``. It is ``N(0, Q)`` noise pushed
    through :class:`RecursiveLinearTransform`, whose Jacobian determinant is
    1, so ``log_prob`` is the noise density of the innovations ``x_t - A
    x_{t-1}``.

    Parameters
    ----------
    num_steps : int
        Number of time steps.
    transition_matrix : array_like
        ``A``, shape ``(..., D, D)``.
    covariance_matrix, precision_matrix, scale_tril : array_like, optional
        ``Q``, ``Q^{-1}`` or the lower Cholesky factor of ``Q``; give exactly
        one, shape ``(..., D, D)``.
    validate_args : bool, optional
        Check the parameters (and ``log_prob`` values).
    """

    arg_constraints = {
        "transition_matrix": constraints.real_matrix,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_matrix
    has_rsample = True
    reparametrized_params = ("transition_matrix", "scale_tril")
    _param_names = ("transition_matrix", "scale_tril")

    def __init__(
        self,
        num_steps,
        transition_matrix,
        covariance_matrix=None,
        precision_matrix=None,
        scale_tril=None,
        *,
        validate_args=None,
    ):
        name = "GaussianStateSpace"
        num_steps = int(num_steps)
        if num_steps < 1:
            raise ValueError(f"{name}: num_steps must be >= 1, got {num_steps}")
        transition_matrix = _square(name, "transition_matrix", transition_matrix)
        given = {
            "covariance_matrix": covariance_matrix,
            "precision_matrix": precision_matrix,
            "scale_tril": scale_tril,
        }
        given = {k: v for k, v in given.items() if v is not None}
        if len(given) != 1:
            raise ValueError(
                f"{name}: give exactly one of covariance_matrix, precision_matrix "
                f"or scale_tril, got {sorted(given) or 'none'}"
            )
        ((param, matrix),) = given.items()
        scale_tril = _to_scale_tril(param, _square(name, param, matrix))
        batch_shape = broadcast_param_shapes(
            name,
            transition_matrix=transition_matrix.shape[:-2],
            **{param: scale_tril.shape[:-2]},
        )
        dim = broadcast_param_shapes(
            f"{name} (state size)",
            transition_matrix=transition_matrix.shape[-1:],
            **{param: scale_tril.shape[-1:]},
        )
        self.transition_matrix = jnp.broadcast_to(
            transition_matrix, batch_shape + dim * 2
        )
        self.scale_tril = jnp.broadcast_to(scale_tril, batch_shape + dim * 2)
        noise = MultivariateNormal(
            jnp.zeros(dim, self.scale_tril.dtype),
            scale_tril=self.scale_tril[..., None, :, :],
        )
        noise = noise.expand(batch_shape + (num_steps,)).to_event(1)
        transform = RecursiveLinearTransform(self.transition_matrix)
        super().__init__(noise, transform, validate_args=validate_args)

    @property
    def num_steps(self):
        return self.event_shape[0]

    @property
    def mean(self):
        return jnp.zeros(self.shape(), dtype=self.scale_tril.dtype)

    @property
    def covariance_matrix(self):
        """The marginal covariance of each state, ``(..., num_steps, D, D)``:
        ``P_t = A P_{t-1} A^T + Q`` from ``P_0 = Q``."""
        a, q = self.transition_matrix, self.scale_tril @ _transpose(self.scale_tril)

        def step(p, _):
            p = a @ p @ _transpose(a) + q
            return p, p

        _, ps = lax.scan(step, jnp.zeros_like(q), None, length=self.num_steps)
        return jnp.moveaxis(ps, 0, -3)

    @property
    def variance(self):
        return jnp.diagonal(self.covariance_matrix, axis1=-2, axis2=-1)

"""Array helpers that distributions and models share, under NumPyro's names.

A model ported from NumPyro may import these from
``numpyro.distributions.util``; here they live in
``core_ppl.distributions.util`` with the same names and signatures. They are
pure functions of arrays, usable under ``jit``, ``vmap`` and ``grad``.

* shapes: :func:`promote_shapes`, :func:`sum_rightmost`;
* triangular matrices: :func:`vec_to_tril_matrix`, :func:`matrix_to_tril_vec`,
  :func:`add_diag`, :func:`cholesky_of_inverse`, :func:`cholesky_update`,
  :func:`signed_stick_breaking_tril`;
* probabilities and logs: :func:`clamp_probs`, :func:`log1mexp`,
  :func:`logdiffexp`, :func:`logmatmulexp`, :func:`entr`,
  :func:`binary_cross_entropy_with_logits`, :func:`safe_normalize`;
* keys: :func:`is_prng_key`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

__all__ = [
    "add_diag",
    "binary_cross_entropy_with_logits",
    "cholesky_of_inverse",
    "cholesky_update",
    "clamp_probs",
    "entr",
    "is_prng_key",
    "log1mexp",
    "logdiffexp",
    "logmatmulexp",
    "matrix_to_tril_vec",
    "promote_shapes",
    "safe_normalize",
    "signed_stick_breaking_tril",
    "sum_rightmost",
    "vec_to_tril_matrix",
]

# --- shapes ---------------------------------------------------------------------


def promote_shapes(*args, shape=()):
    """Left-pad the shapes of ``args`` with ones to a common number of dims.

    Arrays keep their data (no broadcasting), so they broadcast against each
    other and against ``shape`` afterwards. A single argument is returned as
    a one-element list, as in NumPyro.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> a, b = promote_shapes(jnp.ones(3), jnp.ones((2, 1)))
    >>> a.shape, b.shape
    ((1, 3), (2, 1))
    """
    if len(args) < 2 and not shape:
        return list(args)
    ndims = [jnp.ndim(arg) for arg in args]
    num_dims = max(ndims + [len(shape)])
    return [
        jnp.reshape(arg, (1,) * (num_dims - nd) + jnp.shape(arg))
        if nd < num_dims
        else arg
        for arg, nd in zip(args, ndims)
    ]


def sum_rightmost(x, dim):
    """Sum ``x`` over its rightmost ``dim`` dimensions (none when ``dim <= 0``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> sum_rightmost(jnp.ones((2, 3, 4)), 2).tolist()
    [12.0, 12.0]
    """
    x = jnp.asarray(x)
    dim = min(int(dim), x.ndim)
    if dim <= 0:
        return x
    return jnp.sum(x, axis=tuple(range(-dim, 0)))


# --- triangular matrices -----------------------------------------------------------


def _tril_dim(length, diagonal):
    """The ``n`` of an ``n x n`` matrix whose lower triangle below (or at)
    ``diagonal`` has ``length`` entries; ValueError when there is none."""
    # Entries of tril(n, k) for k <= 0: m (m + 1) / 2 with m = n + k.
    m = int(round((math.sqrt(1 + 8 * length) - 1) / 2))
    if m * (m + 1) // 2 != length:
        raise ValueError(
            f"vec_to_tril_matrix: a last dim of size {length} is not the size of "
            "a triangle (1, 3, 6, 10, ...)"
        )
    return m - diagonal


def vec_to_tril_matrix(t, diagonal=0):
    """Fill a lower triangular matrix, row by row, from the last axis of ``t``.

    Parameters
    ----------
    t : array, shape (..., m)
        The entries, in the row-major order of ``jnp.tril_indices``.
    diagonal : int, default=0
        ``0`` fills the diagonal too, ``-1`` only the strict lower triangle
        (then ``m = n (n - 1) / 2``). Must be ``<= 0``.

    Returns
    -------
    array, shape (..., n, n)

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> vec_to_tril_matrix(jnp.array([1.0, 2.0, 3.0])).tolist()
    [[1.0, 0.0], [2.0, 3.0]]
    """
    if diagonal > 0:
        raise ValueError(f"vec_to_tril_matrix: diagonal must be <= 0, got {diagonal}")
    t = jnp.asarray(t)
    n = _tril_dim(t.shape[-1], diagonal)
    rows, cols = jnp.tril_indices(n, diagonal)
    out = jnp.zeros(t.shape[:-1] + (n, n), dtype=t.dtype)
    return out.at[..., rows, cols].set(t)


def matrix_to_tril_vec(x, diagonal=0):
    """The lower triangle of ``x`` (at and below ``diagonal``) as a vector,
    inverse of :func:`vec_to_tril_matrix`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> matrix_to_tril_vec(jnp.array([[1.0, 9.0], [2.0, 3.0]])).tolist()
    [1.0, 2.0, 3.0]
    """
    x = jnp.asarray(x)
    rows, cols = jnp.tril_indices(x.shape[-1], diagonal)
    return x[..., rows, cols]


def add_diag(matrix, diag):
    """``matrix`` with ``diag`` (a scalar or a batch of vectors) added to its
    diagonal."""
    matrix = jnp.asarray(matrix)
    eye = jnp.eye(matrix.shape[-1], dtype=matrix.dtype)
    return matrix + jnp.asarray(diag)[..., None] * eye


def cholesky_of_inverse(matrix):
    """The lower Cholesky factor of ``matrix^{-1}`` for a positive definite
    ``matrix`` (a precision), without forming the inverse.

    With ``J`` the reversal permutation, ``chol(J M J) = Lf`` gives ``M = U
    U^T`` for the upper triangular ``U = J Lf J``; then ``M^{-1} = U^{-T}
    U^{-1}``, and ``U^{-T}`` is lower triangular, found by one triangular
    solve.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> p = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    >>> low = cholesky_of_inverse(p)
    >>> bool(jnp.allclose(low @ low.T @ p, jnp.eye(2), atol=1e-5))
    True
    """
    matrix = jnp.asarray(matrix)
    flipped = jnp.flip(jnp.linalg.cholesky(jnp.flip(matrix, (-2, -1))), (-2, -1))
    eye = jnp.broadcast_to(jnp.eye(matrix.shape[-1], dtype=matrix.dtype), matrix.shape)
    return solve_triangular(jnp.swapaxes(flipped, -2, -1), eye, lower=True)


def cholesky_update(L, x, coef=1.0):
    """The Cholesky factor of ``L L^T + coef x x^T`` (a rank-one update, or a
    downdate for ``coef < 0``, which must leave the matrix positive
    definite), in ``O(n^2)`` rather than the ``O(n^3)`` of a new factor.

    The column sweep of the classic algorithm (Golub and Van Loan, section
    6.5.4): column ``k`` absorbs ``x_k`` through a (hyperbolic, for a
    downdate) rotation, and the rest of ``x`` moves on to the next columns.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> L = jnp.array([[2.0, 0.0], [1.0, 1.0]])
    >>> x = jnp.array([1.0, 2.0])
    >>> new = cholesky_update(L, x)
    >>> bool(jnp.allclose(new @ new.T, L @ L.T + jnp.outer(x, x)))
    True
    """
    L = jnp.asarray(L)
    if not jnp.issubdtype(L.dtype, jnp.floating):
        L = L.astype(jnp.result_type(float))
    coef = jnp.asarray(coef, L.dtype)
    sign = jnp.sign(coef)
    x = jnp.broadcast_to(
        jnp.sqrt(jnp.abs(coef)) * jnp.asarray(x, L.dtype), L.shape[:-1]
    )
    index = jnp.arange(L.shape[-1])

    def column(x, inputs):
        col, k = inputs  # column k of L, shape (..., n)
        d, xk = col[..., k], x[..., k]
        r = jnp.sqrt(d**2 + sign * xk**2)
        c, s = (r / d)[..., None], (xk / d)[..., None]
        below = index > k
        new_col = jnp.where(below, (col + sign * s * x) / c, col)
        new_col = jnp.where(index == k, r[..., None], new_col)
        new_x = jnp.where(below, c * x - s * new_col, x)
        return new_x, new_col

    _, cols = jax.lax.scan(column, x, (jnp.moveaxis(L, -1, 0), index))
    return jnp.moveaxis(cols, 0, -1)


def signed_stick_breaking_tril(t):
    """The Cholesky factor of a correlation matrix from values in ``(-1, 1)``.

    ``t`` (shape ``(..., n (n - 1) / 2)``) fills the strict lower triangle
    row by row; row ``i`` of the result takes, at column ``j``, the fraction
    ``t_ij`` of the squared norm its earlier entries left, and the diagonal
    the rest, so every row has unit norm (NumPyro's
    ``signed_stick_breaking_tril``; the C-vine of Lewandowski et al. 2009).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> low = signed_stick_breaking_tril(jnp.array([0.6]))
    >>> [[round(v, 6) for v in row] for row in low.tolist()]
    [[1.0, 0.0], [0.6, 0.8]]
    """
    z = vec_to_tril_matrix(t, diagonal=-1)
    remaining = jnp.cumprod(1.0 - z**2, axis=-1)
    before = jnp.concatenate(
        [jnp.ones_like(remaining[..., :1]), remaining[..., :-1]], axis=-1
    )
    eye = jnp.eye(z.shape[-1], dtype=z.dtype)
    return jnp.tril(z * jnp.sqrt(before), -1) + eye * jnp.sqrt(before)


# --- probabilities and logarithms ---------------------------------------------


def clamp_probs(probs):
    """``probs`` clipped into ``[eps, 1 - eps]`` (``eps`` of their dtype), so
    their logarithms and those of their complements are finite."""
    probs = jnp.asarray(probs)
    if not jnp.issubdtype(probs.dtype, jnp.floating):
        probs = probs.astype(jnp.result_type(float))
    eps = jnp.finfo(probs.dtype).eps
    return jnp.clip(probs, eps, 1.0 - eps)


def log1mexp(x):
    """``log(1 - exp(x))`` for ``x <= 0``, accurate near 0 and far from it
    (Maechler 2012, "Accurately computing log(1 - exp(-|a|))")."""
    x = jnp.asarray(x)
    return jnp.where(x > -math.log(2.0), jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


def logdiffexp(a, b):
    """``log(exp(a) - exp(b))`` for ``a >= b``, without overflow; ``-inf``
    where ``a == b``."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    return jnp.where(a > b, a + log1mexp(jnp.minimum(b - a, 0.0)), -jnp.inf)


def logmatmulexp(x, y):
    """``log(exp(x) @ exp(y))`` for log-scale matrices, computed stably."""
    x_max = jnp.max(x, axis=-1, keepdims=True)
    y_max = jnp.max(y, axis=-2, keepdims=True)
    x_max = jax.lax.stop_gradient(jnp.where(jnp.isfinite(x_max), x_max, 0.0))
    y_max = jax.lax.stop_gradient(jnp.where(jnp.isfinite(y_max), y_max, 0.0))
    product = jnp.exp(x - x_max) @ jnp.exp(y - y_max)
    return jnp.log(product) + x_max + y_max


def entr(p):
    """The entropy term ``-p log p`` (0 at ``p = 0``, ``-inf`` for ``p < 0``)."""
    p = jnp.asarray(p)
    safe = jnp.where(p > 0, p, 1.0)
    return jnp.where(p > 0, -p * jnp.log(safe), jnp.where(p == 0, 0.0, -jnp.inf))


def binary_cross_entropy_with_logits(x, y):
    """``-(y log sigmoid(x) + (1 - y) log sigmoid(-x))``, stable for large
    ``|x|``."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    return jnp.clip(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x))) - x * y


def safe_normalize(x, *, p=2):
    """``x / |x|_p`` along the last axis; a zero vector maps to the first unit
    vector rather than NaN."""
    x = jnp.asarray(x)
    norm = jnp.linalg.norm(x, ord=p, axis=-1, keepdims=True)
    unit = jnp.zeros_like(x).at[..., 0].set(1.0)
    is_zero = norm == 0
    return jnp.where(is_zero, unit, x / jnp.where(is_zero, 1.0, norm))


# --- keys ---------------------------------------------------------------------


def is_prng_key(key):
    """Whether ``key`` is a JAX random key (typed, or a raw ``uint32[2]``)."""
    try:
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            return True
        return key.shape[-1:] == (2,) and key.dtype == jnp.uint32
    except AttributeError:
        return False

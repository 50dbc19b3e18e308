"""Pure JAX mathematics of the sparse kernel interaction model (SKIM).

The model (Agrawal, Huggins, Trippe, Broderick 2019, "The Kernel Interaction
Trick", arXiv 1905.06501; docs/skim.md) is a regression on all main effects
and all pairwise interactions,

    f(x) = theta_0 + sum_i theta_i x_i + sum_{i<j} theta_ij x_i x_j,

whose coefficients are independent zero-mean Gaussians *given* O(P)
hyperparameters. Integrating the coefficients out leaves a Gaussian process
whose kernel costs O(P) per pair of points (the "kernel interaction trick"),
so MCMC only runs over the hyperparameters. This module holds every piece of
that computation as pure functions of arrays, in three chapters:

1. **Kernel** -- :func:`kernel_params` maps a hyperparameter draw to the
   kernel scales, :func:`interaction_kernel` evaluates ``k(X, Z)`` with two
   matrix products (O(N M P) for all pairs of points).
2. **GP marginal likelihood** -- :func:`log_marginal_likelihood` (and its
   sample-weighted form) from a Cholesky factor, never an inverse, with a
   custom reverse-mode rule; :func:`condition_gp` keeps the factor of one
   draw for :func:`predict_latent` and the coefficients. Padding rows are
   decoupled exactly (``is_observed``).
3. **Coefficient recovery** -- each coefficient is a linear functional of f,
   ``theta = sum_g w_g f(q_g)`` over a few *probe* points q_g
   (:func:`main_effect_probes`, :func:`interaction_probes`,
   :func:`value_probes`), so its conditional posterior is Gaussian and
   follows from GP prediction at the probes (:func:`coefficient_moments`,
   :func:`coefficient_covariance`). Probes differ from a base point on one
   or two coordinates, which :func:`probe_kernel` exploits.
   :func:`mixture_moments` then averages over hyperparameter draws.

Nothing here knows about scikit-learn, standardisation or the PPL; the
estimator in ``_sparse_interaction.py`` composes these functions.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve, solve_triangular

from core_ppl.jit import jit

__all__ = [
    "GPCondition",
    "KernelParams",
    "ProbeSet",
    "coefficient_covariance",
    "coefficient_moments",
    "concatenate_probes",
    "condition_gp",
    "interaction_kernel",
    "interaction_probes",
    "kernel_params",
    "log_marginal_likelihood",
    "main_effect_probes",
    "mixture_moments",
    "predict_latent",
    "probe_kernel",
    "training_gram",
    "value_probes",
    "weighted_log_marginal_likelihood",
]

#: Jitter added to the diagonal of the training Gram matrix (docs/skim.md 2).
DEFAULT_JITTER = 1e-4

# Extra diagonal jitter relative to the mean kernel diagonal, in units of the
# dtype's machine epsilon. Negligible in float64 (~2e-15 relative) but it keeps
# float32 Cholesky factorisations of kernels spanning many orders of magnitude
# positive definite.
_RELATIVE_JITTER_EPS = 10.0

# Blocks up to this size end the recursions of ``_triangular_inverse`` and
# ``_lower_gram``; larger ones are split in two.
_RECURSION_BLOCK = 32


# --- 1. Kernel -------------------------------------------------------------


class KernelParams(NamedTuple):
    """Scales of the SKIM kernel for one hyperparameter draw.

    Parameters
    ----------
    eta1 : scalar
        Global scale of the main effects.
    eta2 : scalar
        Global scale of the pairwise interactions.
    kappa : array of shape (P,)
        Per-feature (regularised horseshoe) scales; ``theta_i`` has prior sd
        ``eta1 * kappa_i`` and ``theta_ij`` has ``eta2 * kappa_i * kappa_j``.
    c : scalar
        Prior standard deviation of the intercept ``theta_0``.
    """

    eta1: jax.Array
    eta2: jax.Array
    kappa: jax.Array
    c: jax.Array


def kernel_params(eta1, msq, xisq, lam, c):
    """Derived kernel scales of docs/skim.md section 2, items 7 and 8.

    Parameters
    ----------
    eta1 : scalar
        Global shrinkage of the main effects.
    msq : scalar
        Squared slab scale ``m^2``.
    xisq : scalar
        Interaction scale ``xi^2``.
    lam : array of shape (P,)
        Local shrinkage ``lambda_i``.
    c : scalar
        Prior sd of the intercept.

    Returns
    -------
    KernelParams
        With ``eta2 = eta1^2 sqrt(xi^2) / m^2`` and the regularised horseshoe
        ``kappa_i = m lambda_i / sqrt(m^2 + eta1^2 lambda_i^2)``.
    """
    m = jnp.sqrt(msq)
    eta2 = jnp.square(eta1) * jnp.sqrt(xisq) / msq
    # hypot avoids overflowing (eta1 * lambda)^2: HalfCauchy draws of lambda
    # reach 1e20 in the tails, beyond float32's range once squared.
    kappa = m * lam / jnp.hypot(m, eta1 * lam)
    return KernelParams(eta1=eta1, eta2=eta2, kappa=kappa, c=jnp.asarray(c))


@jit
def interaction_kernel(X, Z, params):
    """Evaluate the SKIM kernel between all rows of ``X`` and ``Z``.

    ``k(x, z) = c^2 + eta1^2 <u, v> + eta2^2 sum_{i<j} u_i u_j v_i v_j`` with
    ``u = kappa * x`` and ``v = kappa * z`` (docs/skim.md 2.1). The pair sum
    uses ``sum_{i<j} u_i u_j v_i v_j = (<u, v>^2 - <u*u, v*v>) / 2``, so the
    whole matrix costs two matrix products, O(N M P).

    Parameters
    ----------
    X : array of shape (N, P)
    Z : array of shape (M, P)
    params : KernelParams

    Returns
    -------
    array of shape (N, M)
    """
    U = X * params.kappa
    V = Z * params.kappa
    return _kernel_from_inner_products(U @ V.T, jnp.square(U) @ jnp.square(V).T, params)


def _kernel_from_inner_products(dot, dot_sq, params):
    """The kernel from ``dot = <u, v>`` and ``dot_sq = <u*u, v*v>``."""
    # The direct form (not the example's expanded (1 + <u,v>)^2 form) avoids
    # cancelling the constant and linear terms it adds and subtracts.
    pairs = 0.5 * (jnp.square(dot) - dot_sq)
    return (
        jnp.square(params.c)
        + jnp.square(params.eta1) * dot
        + jnp.square(params.eta2) * pairs
    )


@jit
def training_gram(X, params, noise_var, jitter=DEFAULT_JITTER, is_observed=None):
    """Training covariance ``K = k(X, X) + diag(noise_var + jitter)``, symmetric.

    Parameters
    ----------
    X : array of shape (N, P)
    params : KernelParams
    noise_var : scalar or array of shape (N,)
        Observation noise variance ``sigma^2``, or one per row.
    jitter : float, default=1e-4
        Absolute diagonal jitter (docs/skim.md 2). A further
        ``10 * eps * mean(diag k)`` is added, which only matters in float32.
    is_observed : bool array of shape (N,), optional
        Rows marked False (padding) are decoupled from all others and get
        unit variance, so that they add exactly nothing to the quadratic
        form or the log determinant when their target is 0.

    Returns
    -------
    array of shape (N, N)
    """
    K = interaction_kernel(X, X, params)
    # Round-off makes U U^T asymmetric in the last bits; Cholesky reads one
    # triangle only, so symmetrise explicitly to make gradients consistent.
    K = 0.5 * (K + K.T)
    eps = jnp.finfo(K.dtype).eps
    diag = noise_var + jitter + _RELATIVE_JITTER_EPS * eps * jnp.mean(jnp.diag(K))
    eye = jnp.eye(K.shape[0], dtype=K.dtype)
    K = K + jnp.broadcast_to(diag, K.shape[:1]) * eye
    if is_observed is not None:
        K = jnp.where(is_observed[:, None] & is_observed[None, :], K, eye)
    return K


# --- 2. GP marginal likelihood and prediction -------------------------------


class GPCondition(NamedTuple):
    """The GP conditioned on the training data, for one hyperparameter draw.

    Parameters
    ----------
    chol_inv : array of shape (N, N)
        ``L^{-1}``, the inverse of the lower Cholesky factor of the training
        covariance ``K = L L^T``.
    alpha : array of shape (N,)
        ``K^{-1} y``, from two triangular solves; 0 on unobserved rows.
    is_observed : bool array of shape (N,)
        False on padding rows, which are decoupled from everything.
    """

    chol_inv: jax.Array
    alpha: jax.Array
    is_observed: jax.Array

    def whiten(self, cross):
        """``L^{-1} K_xq`` for a (M, N) cross-covariance ``K_qx``, with the
        columns of unobserved rows zeroed: shape (N, M).

        A product with the stored inverse factor rather than a triangular
        solve: the same N^2 M multiply-adds at matmul speed, several times
        faster on CPU when M (probes, or new rows) is in the thousands.
        """
        return self.chol_inv @ jnp.where(self.is_observed, cross, 0.0).T

    def mean(self, cross):
        """``K_qx K^{-1} y`` for a (M, N) cross-covariance: shape (M,)."""
        return jnp.where(self.is_observed, cross, 0.0) @ self.alpha


@jit
def condition_gp(X, y, params, noise_var, jitter=DEFAULT_JITTER, is_observed=None):
    """Factorise the training covariance and solve ``K alpha = y``.

    Parameters
    ----------
    X : array of shape (N, P)
    y : array of shape (N,)
        Centred targets (the GP has zero mean).
    params : KernelParams
    noise_var : scalar or array of shape (N,)
        Entries on unobserved rows are ignored (may be infinite).
    jitter : float, default=1e-4
    is_observed : bool array of shape (N,), optional
        Rows marked False (padding) are left out exactly; None means all.

    Returns
    -------
    GPCondition
    """
    if is_observed is None:
        is_observed = jnp.ones(y.shape, dtype=bool)
    y = jnp.where(is_observed, y, 0.0)
    noise_var = jnp.where(is_observed, noise_var, 1.0)
    gram = training_gram(X, params, noise_var, jitter, is_observed)
    chol = jnp.linalg.cholesky(gram)
    alpha = cho_solve((chol, True), y)
    chol_inv = _triangular_inverse(chol)
    return GPCondition(chol_inv=chol_inv, alpha=alpha, is_observed=is_observed)


def _triangular_inverse(chol):
    """Inverse of a lower-triangular matrix, by recursive 2 x 2 blocks.

    ``[[A, 0], [C, D]]^{-1} = [[A^{-1}, 0], [-D^{-1} C A^{-1}, D^{-1}]]``:
    N^3 / 3 multiply-adds, nearly all in matrix products, where a triangular
    solve against the identity costs N^3 / 2 at a fraction of matmul speed.
    """
    n = chol.shape[0]
    if n <= _RECURSION_BLOCK:
        eye = jnp.eye(n, dtype=chol.dtype)
        return solve_triangular(chol, eye, lower=True)
    half = n // 2
    top = _triangular_inverse(chol[:half, :half])
    bottom = _triangular_inverse(chol[half:, half:])
    lower_left = -bottom @ (chol[half:, :half] @ top)
    zeros = jnp.zeros((half, n - half), dtype=chol.dtype)
    return jnp.block([[top, zeros], [lower_left, bottom]])


def _lower_gram(lower):
    """``M^T M`` for a lower-triangular M, by recursive 2 x 2 blocks.

    With ``M = [[A, 0], [C, D]]``, ``M^T M = [[A^T A + C^T C, C^T D],
    [D^T C, D^T D]]``: N^3 / 3 multiply-adds instead of a full product's N^3
    (LAPACK's ``lauum``).
    """
    n = lower.shape[0]
    if n <= _RECURSION_BLOCK:
        return lower.T @ lower
    half = n // 2
    top, left, bottom = lower[:half, :half], lower[half:, :half], lower[half:, half:]
    off_diagonal = bottom.T @ left
    upper_left = _lower_gram(top) + left.T @ left
    return jnp.block(
        [[upper_left, off_diagonal.T], [off_diagonal, _lower_gram(bottom)]]
    )


@jax.custom_vjp
def _gaussian_log_density(cov, y):
    """``-1/2 y^T cov^{-1} y - 1/2 log det cov``, from a Cholesky factor.

    The value uses one triangular solve, never an inverse. The gradient is
    the classic ``d/dK = (alpha alpha^T - K^{-1}) / 2`` with ``alpha = K^{-1}
    y`` (Rasmussen and Williams 2006, eq. 5.9), with ``K^{-1} = L^{-T} L^{-1}``
    from blocked triangular inversion and product (LAPACK's ``potri``, 2 N^3
    / 3 multiply-adds in matrix products): a triangular solve against the
    identity and a full product do more than twice the arithmetic, and
    differentiating through ``cholesky`` more still. Only
    reverse mode is defined (NUTS and SVI need nothing else).
    """
    value, _ = _gaussian_log_density_fwd(cov, y)
    return value


def _gaussian_log_density_fwd(cov, y):
    chol = jnp.linalg.cholesky(cov)
    white = solve_triangular(chol, y, lower=True)
    value = -0.5 * jnp.dot(white, white) - jnp.sum(jnp.log(jnp.diag(chol)))
    return value, (chol, white)


def _gaussian_log_density_bwd(residuals, cotangent):
    chol, white = residuals
    chol_inv = _triangular_inverse(chol)
    alpha = chol_inv.T @ white
    cov_inv = _lower_gram(chol_inv)
    grad_cov = 0.5 * cotangent * (jnp.outer(alpha, alpha) - cov_inv)
    return grad_cov, -cotangent * alpha


_gaussian_log_density.defvjp(_gaussian_log_density_fwd, _gaussian_log_density_bwd)


@jit
def log_marginal_likelihood(
    X, y, params, noise_var, jitter=DEFAULT_JITTER, is_observed=None
):
    """Log density of ``y ~ MultivariateNormal(0, K)`` (docs/skim.md 2.2).

    ``-1/2 y^T K^{-1} y - sum log diag L - N/2 log(2 pi)``, computed from the
    Cholesky factor ``L`` with a single triangular solve. Cost O(N^2 P + N^3)
    for the value and for its gradient (which has a custom rule, see
    ``_gaussian_log_density``).

    Parameters
    ----------
    X : array of shape (N, P)
    y : array of shape (N,)
    params : KernelParams
    noise_var : scalar or array of shape (N,)
    jitter : float, default=1e-4
    is_observed : bool array of shape (N,), optional
        Rows marked False are left out exactly (see :func:`training_gram`).

    Returns
    -------
    scalar
    """
    gram = training_gram(X, params, noise_var, jitter, is_observed)
    if is_observed is None:
        n_observed = y.shape[0]
    else:
        y = jnp.where(is_observed, y, 0.0)
        n_observed = jnp.sum(is_observed)
    return _gaussian_log_density(gram, y) - 0.5 * n_observed * math.log(2.0 * math.pi)


@jit
def weighted_log_marginal_likelihood(
    X, y, params, noise_var, weight, jitter=DEFAULT_JITTER
):
    """Log marginal likelihood with each row's likelihood raised to its weight.

    Computes ``log int prod_n N(y_n | f_n, v)^{w_n} GP(df)`` with
    ``v = noise_var + jitter``.

    Raising a Gaussian likelihood to the power ``w`` gives, up to a factor
    free of f, a Gaussian with variance ``v / w``:
    ``N(y | f, v)^w = N(y | f, v / w) * (2 pi v / w)^{1/2} (2 pi v)^{-w/2}``.
    So the weighted marginal likelihood is the GP one with per-row noise
    ``v / w`` plus that factor, and an integer weight k is exactly k copies
    of the row. Rows of weight 0 (padding) drop out.

    Parameters
    ----------
    X : array of shape (N, P)
    y : array of shape (N,)
    params : KernelParams
    noise_var : scalar
        Observation noise variance ``sigma^2``.
    weight : array of shape (N,)
        Non-negative row weights.
    jitter : float, default=1e-4
        Added to ``noise_var`` before weighting, so it acts as extra noise.

    Returns
    -------
    scalar
    """
    is_observed = weight > 0
    safe_weight = jnp.where(is_observed, weight, 1.0)
    var = noise_var + jitter
    row_var = var / safe_weight
    log_2pi = math.log(2.0 * math.pi)
    factor = 0.5 * (log_2pi + jnp.log(row_var)) - 0.5 * safe_weight * (
        log_2pi + jnp.log(var)
    )
    gp = log_marginal_likelihood(X, y, params, row_var, 0.0, is_observed)
    return gp + jnp.sum(jnp.where(is_observed, factor, 0.0))


@jit
def predict_latent(X, condition, params, X_new):
    """Posterior mean and variance of the noise-free f at new points.

    Parameters
    ----------
    X : array of shape (N, P)
        Training inputs used in ``condition``.
    condition : GPCondition
    params : KernelParams
    X_new : array of shape (M, P)

    Returns
    -------
    mean : array of shape (M,)
        ``K_*x K^{-1} y``.
    var : array of shape (M,)
        ``k(x*, x*) - K_*x K^{-1} K_x*``, clipped at zero against round-off.
        Add the noise variance for the predictive distribution of y.
    """
    cross = interaction_kernel(X_new, X, params)
    mean = condition.mean(cross)
    white = condition.whiten(cross)
    U_new = jnp.square(X_new * params.kappa)
    prior_var = _kernel_from_inner_products(
        jnp.sum(U_new, axis=1), jnp.sum(jnp.square(U_new), axis=1), params
    )
    var = prior_var - jnp.sum(jnp.square(white), axis=0)
    return mean, jnp.maximum(var, 0.0)


# --- 3. Probes and coefficient recovery -------------------------------------


class ProbeSet(NamedTuple):
    """Probe points and weights that express coefficients as functionals of f.

    Coefficient ``m`` equals ``sum_g weights[m, g] * f(q_mg)`` for every f of
    the SKIM form, because the intercept and all other effects cancel in the
    weighted sum (docs/skim.md 3). Each probe is a shared base point plus an
    offset on a few coordinates, ``q_mg = base + sum_k offsets[m, g, k]
    e_{index[m, k]}``, so a kernel value at a probe costs O(K) instead of
    O(P) (see :func:`probe_kernel`).

    Parameters
    ----------
    base : array of shape (P,)
        The point the probes are centred on (0 in the standardised space).
    index : int array of shape (M, K)
        The K coordinates each coefficient's probes move along.
    offsets : array of shape (M, G, K)
        Offsets of the ``G`` probes of each coefficient along those
        coordinates.
    weights : array of shape (M, G)
        Weights of the probes in the coefficient's functional.
    """

    base: jax.Array
    index: jax.Array
    offsets: jax.Array
    weights: jax.Array

    def points(self):
        """Dense probe coordinates, an array of shape (M, G, P)."""
        onehot = jax.nn.one_hot(self.index, self.base.shape[0], dtype=self.base.dtype)
        return self.base + jnp.einsum("mgk,mkp->mgp", self.offsets, onehot)


def _as_base(base, n_features, dtype):
    if base is None:
        return np.zeros(n_features, dtype=dtype)
    return np.asarray(base, dtype=dtype).reshape(n_features)


def main_effect_probes(n_features, base=None, dtype=float):
    """Probes ``base + e_i`` and ``base - e_i`` with weights ``(1/2, -1/2)``.

    ``(f(b + e_i) - f(b - e_i)) / 2`` is the slope of f along coordinate i at
    ``b``: ``theta_i + sum_{j != i} theta_ij b_j`` (exact, as the model has no
    squared terms); at ``b = 0`` it is ``theta_i``.

    Parameters
    ----------
    n_features : int
    base : array-like of shape (n_features,), default=None
        Where the slopes are taken; None means the origin.
    dtype : dtype, default=float

    Returns
    -------
    ProbeSet
        ``n_features`` coefficients, ``G = 2`` probes each, ``K = 1``.
    """
    # Probes are constants: build them in NumPy rather than as traced ops.
    index = np.arange(n_features)[:, None]
    offsets = np.broadcast_to(np.asarray([[1.0], [-1.0]], dtype), (n_features, 2, 1))
    weights = np.broadcast_to(np.asarray([0.5, -0.5], dtype), (n_features, 2))
    return ProbeSet(
        base=jnp.asarray(_as_base(base, n_features, dtype)),
        index=jnp.asarray(index, dtype=jnp.int32),
        offsets=jnp.asarray(offsets),
        weights=jnp.asarray(weights),
    )


def interaction_probes(pairs, n_features, base=None, dtype=float):
    """Probes at ``base + (+-1) e_i + (+-1) e_j``, weights ``(1, -1, -1, 1) / 4``.

    The four signs ``(1,1), (1,-1), (-1,1), (-1,-1)`` cancel the intercept
    and both main effects (at any base point), leaving ``theta_ij``.

    Parameters
    ----------
    pairs : int array-like of shape (M, 2)
        Feature index pairs ``(i, j)`` with ``i != j``.
    n_features : int
    base : array-like of shape (n_features,), default=None
    dtype : dtype, default=float

    Returns
    -------
    ProbeSet
        M coefficients, ``G = 4`` probes each, ``K = 2``.
    """
    pairs = np.asarray(pairs, dtype=np.int32).reshape(-1, 2)
    if np.any(pairs[:, 0] == pairs[:, 1]):
        raise ValueError("interaction_probes: pairs must have i != j.")
    signs = np.asarray([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=dtype)
    offsets = np.broadcast_to(signs, (pairs.shape[0], 4, 2))
    weights = np.broadcast_to(np.asarray([1, -1, -1, 1], dtype) / 4, (len(pairs), 4))
    return ProbeSet(
        base=jnp.asarray(_as_base(base, n_features, dtype)),
        index=jnp.asarray(pairs),
        offsets=jnp.asarray(offsets),
        weights=jnp.asarray(weights),
    )


def value_probes(n_features, base=None, dtype=float):
    """The value ``f(base)`` as one probed "coefficient".

    Shaped like :func:`main_effect_probes` (two probes, the second with
    weight 0) so that it can be stacked onto them with
    :func:`concatenate_probes`; the estimator uses it for the intercept.

    Parameters
    ----------
    n_features : int
    base : array-like of shape (n_features,), default=None
    dtype : dtype, default=float

    Returns
    -------
    ProbeSet
        One coefficient, ``G = 2``, ``K = 1``.
    """
    return ProbeSet(
        base=jnp.asarray(_as_base(base, n_features, dtype)),
        index=jnp.zeros((1, 1), dtype=jnp.int32),
        offsets=jnp.zeros((1, 2, 1), dtype=dtype),
        weights=jnp.asarray([[1.0, 0.0]], dtype=dtype),
    )


def concatenate_probes(*probe_sets):
    """Stack probe sets with the same base point, G and K into one set.

    Parameters
    ----------
    *probe_sets : ProbeSet

    Returns
    -------
    ProbeSet
    """
    first = probe_sets[0]
    for other in probe_sets[1:]:
        if not np.array_equal(np.asarray(other.base), np.asarray(first.base)):
            raise ValueError("concatenate_probes: probe sets must share the base.")
    return ProbeSet(
        base=first.base,
        index=jnp.concatenate([p.index for p in probe_sets]),
        offsets=jnp.concatenate([p.offsets for p in probe_sets]),
        weights=jnp.concatenate([p.weights for p in probe_sets]),
    )


def _probe_coordinates(probes, params):
    """Scaled base ``kappa * b`` and scaled probe values on the moved axes."""
    scaled_base = probes.base * params.kappa
    kappa_moved = params.kappa[probes.index][:, None, :]  # (M, 1, K)
    base_moved = scaled_base[probes.index][:, None, :]  # (M, 1, K)
    moved = base_moved + kappa_moved * probes.offsets  # (M, G, K)
    return scaled_base, base_moved, moved


@jit
def probe_kernel(probes, X, params):
    """Kernel between every probe and every row of ``X``, in O(M G K N + N P).

    With ``u = kappa * q`` for a probe ``q`` that differs from the base ``b``
    on coordinates ``index`` only, ``<u, v> = <kappa b, v> + sum_k (u_k -
    kappa_k b_k) v_k``, and likewise for ``<u*u, v*v>``: the O(P) part is
    shared by all probes.

    Parameters
    ----------
    probes : ProbeSet
    X : array of shape (N, P)
    params : KernelParams

    Returns
    -------
    array of shape (M, G, N)
    """
    scaled_base, base_moved, moved = _probe_coordinates(probes, params)
    V = X * params.kappa
    V_moved = jnp.moveaxis(V[:, probes.index], 0, -1)  # (M, K, N)
    dot = V @ scaled_base + jnp.einsum("mgk,mkn->mgn", moved - base_moved, V_moved)
    dot_sq = jnp.square(V) @ jnp.square(scaled_base) + jnp.einsum(
        "mgk,mkn->mgn",
        jnp.square(moved) - jnp.square(base_moved),
        jnp.square(V_moved),
    )
    return _kernel_from_inner_products(dot, dot_sq, params)


def _probe_prior_blocks(probes, params):
    """``k(q_mg, q_mh)`` for the probes of each coefficient: shape (M, G, G)."""
    scaled_base, base_moved, moved = _probe_coordinates(probes, params)
    base_moved = base_moved[:, 0]  # (M, K)
    # Coordinates off the moved axes hold the base in both probes.
    off_axes = jnp.sum(jnp.square(scaled_base)) - jnp.sum(jnp.square(base_moved), -1)
    off_axes_sq = jnp.sum(scaled_base**4) - jnp.sum(base_moved**4, axis=-1)
    dot = off_axes[:, None, None] + jnp.einsum("mgk,mhk->mgh", moved, moved)
    dot_sq = off_axes_sq[:, None, None] + jnp.einsum(
        "mgk,mhk->mgh", jnp.square(moved), jnp.square(moved)
    )
    return _kernel_from_inner_products(dot, dot_sq, params)


def _probe_cross_covariance(X, params, probes):
    """``B[m] = sum_g w_mg k(q_mg, X)``: Cov(theta_m, f(X)) under the prior."""
    return jnp.einsum("mg,mgn->mn", probes.weights, probe_kernel(probes, X, params))


@jit
def coefficient_moments(X, condition, params, probes):
    """Conditional posterior mean and variance of each probed coefficient.

    With ``a`` the probe weights, ``E[theta] = a^T K_qx K^{-1} y`` and
    ``Var[theta] = a^T K_qq a - |L^{-1} K_xq a|^2`` (docs/skim.md 3). Only the
    ``G x G`` prior blocks of each coefficient are formed, so the cost is
    O(M G K N + M N^2): linear in the number of coefficients M.

    Parameters
    ----------
    X : array of shape (N, P)
        Training inputs used in ``condition``.
    condition : GPCondition
    params : KernelParams
    probes : ProbeSet

    Returns
    -------
    mean : array of shape (M,)
    var : array of shape (M,)
        Clipped at zero against round-off.
    """
    cross = _probe_cross_covariance(X, params, probes)
    mean = condition.mean(cross)
    white = condition.whiten(cross)
    blocks = _probe_prior_blocks(probes, params)
    prior_var = jnp.einsum("mg,mgh,mh->m", probes.weights, blocks, probes.weights)
    var = prior_var - jnp.sum(jnp.square(white), axis=0)
    return mean, jnp.maximum(var, 0.0)


@jit
def coefficient_covariance(X, condition, params, probes):
    """Joint conditional posterior covariance of the probed coefficients.

    ``A K_qq A^T - (L^{-1} K_xq A^T)^T (L^{-1} K_xq A^T)`` with the sparse
    weight matrix ``A`` applied block by block. Forms the full (M G) x (M G)
    prior covariance of the probes, so use it for modest M (joint draws).

    Parameters
    ----------
    X : array of shape (N, P)
    condition : GPCondition
    params : KernelParams
    probes : ProbeSet

    Returns
    -------
    array of shape (M, M)
        Symmetric.
    """
    points = probes.points()
    n_coef, n_probe, n_features = points.shape
    flat = points.reshape(n_coef * n_probe, n_features)
    prior = interaction_kernel(flat, flat, params)
    prior = prior.reshape(n_coef, n_probe, n_coef, n_probe)
    prior = jnp.einsum("mg,mgkh,kh->mk", probes.weights, prior, probes.weights)
    white = condition.whiten(_probe_cross_covariance(X, params, probes))
    cov = prior - white.T @ white
    return 0.5 * (cov + cov.T)


def mixture_moments(means, variances):
    """Mean and variance of an equal-weight mixture of Gaussians over draws.

    Law of total variance (docs/skim.md 3.1): the mixture variance is the
    mean conditional variance plus the variance of the conditional means.
    Written with array methods only, so it computes in the precision of its
    inputs: float64 NumPy arrays give float64 results whatever JAX's
    precision (the estimator's summaries), and JAX arrays stay traceable.

    Parameters
    ----------
    means : array of shape (S, ...)
        Conditional means, one row per hyperparameter draw.
    variances : array of shape (S, ...)
        Conditional variances.

    Returns
    -------
    mean : array of shape (...)
    var : array of shape (...)

    Examples
    --------
    >>> import numpy as np
    >>> mean, var = mixture_moments(np.array([0.0, 2.0]), np.array([1.0, 3.0]))
    >>> float(mean), float(var)
    (1.0, 3.0)
    """
    mean = means.mean(axis=0)
    # Centre before squaring: (1/S) sum mu^2 - mean^2 cancels catastrophically
    # when the draws agree closely, which is the common case.
    spread = ((means - mean) ** 2).mean(axis=0)
    return mean, variances.mean(axis=0) + spread

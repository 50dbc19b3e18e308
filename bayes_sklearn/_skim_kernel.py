"""Pure JAX mathematics of the sparse kernel interaction model (SKIM).

The model (Agrawal, Huggins, Trippe, Broderick 2019, "The Kernel Interaction
Trick", arXiv 1905.06501; notes/skim.md) is a regression on all main effects
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
2. **GP marginal likelihood** -- :func:`condition_gp` factorises the training
   Gram matrix once (Cholesky, never an inverse); :func:`log_marginal_likelihood`
   and :func:`predict_latent` reuse that factor.
3. **Coefficient recovery** -- each coefficient is a linear functional of f,
   ``theta = sum_g w_g f(q_g)`` over a few *probe* points q_g
   (:func:`main_effect_probes`, :func:`interaction_probes`), so its
   conditional posterior is Gaussian and follows from GP prediction at the
   probes (:func:`coefficient_moments`, :func:`coefficient_covariance`).
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

__all__ = [
    "GPCondition",
    "KernelParams",
    "ProbeSet",
    "coefficient_covariance",
    "coefficient_moments",
    "condition_gp",
    "interaction_kernel",
    "interaction_probes",
    "kernel_params",
    "log_marginal_likelihood",
    "main_effect_probes",
    "mixture_moments",
    "predict_latent",
    "training_gram",
]

#: Jitter added to the diagonal of the training Gram matrix (notes/skim.md 2).
DEFAULT_JITTER = 1e-4

# Extra diagonal jitter relative to the mean kernel diagonal, in units of the
# dtype's machine epsilon. Negligible in float64 (~2e-15 relative) but it keeps
# float32 Cholesky factorisations of kernels spanning many orders of magnitude
# positive definite.
_RELATIVE_JITTER_EPS = 10.0


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
    """Derived kernel scales of notes/skim.md section 2, items 7 and 8.

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


@jax.jit
def interaction_kernel(X, Z, params):
    """Evaluate the SKIM kernel between all rows of ``X`` and ``Z``.

    ``k(x, z) = c^2 + eta1^2 <u, v> + eta2^2 sum_{i<j} u_i u_j v_i v_j`` with
    ``u = kappa * x`` and ``v = kappa * z`` (notes/skim.md 2.1). The pair sum
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
    dot = U @ V.T
    # The direct form (not the example's expanded (1 + <u,v>)^2 form) avoids
    # cancelling the constant and linear terms it adds and subtracts.
    pairs = 0.5 * (jnp.square(dot) - jnp.square(U) @ jnp.square(V).T)
    return (
        jnp.square(params.c)
        + jnp.square(params.eta1) * dot
        + jnp.square(params.eta2) * pairs
    )


@jax.jit
def training_gram(X, params, noise_var, jitter=DEFAULT_JITTER):
    """Training covariance ``K = k(X, X) + (noise_var + jitter) I``, symmetric.

    Parameters
    ----------
    X : array of shape (N, P)
    params : KernelParams
    noise_var : scalar
        Observation noise variance ``sigma^2``.
    jitter : float, default=1e-4
        Absolute diagonal jitter (notes/skim.md 2). A further
        ``10 * eps * mean(diag k)`` is added, which only matters in float32.

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
    return K + diag * jnp.eye(K.shape[0], dtype=K.dtype)


# --- 2. GP marginal likelihood and prediction -------------------------------


class GPCondition(NamedTuple):
    """The GP conditioned on the training data, for one hyperparameter draw.

    Parameters
    ----------
    chol : array of shape (N, N)
        Lower Cholesky factor ``L`` of the training covariance, ``K = L L^T``.
    alpha : array of shape (N,)
        ``K^{-1} y``, from two triangular solves.
    """

    chol: jax.Array
    alpha: jax.Array


@jax.jit
def condition_gp(X, y, params, noise_var, jitter=DEFAULT_JITTER):
    """Factorise the training covariance and solve ``K alpha = y``.

    Parameters
    ----------
    X : array of shape (N, P)
    y : array of shape (N,)
        Centred targets (the GP has zero mean).
    params : KernelParams
    noise_var : scalar
    jitter : float, default=1e-4

    Returns
    -------
    GPCondition
    """
    chol = jnp.linalg.cholesky(training_gram(X, params, noise_var, jitter))
    alpha = cho_solve((chol, True), y)
    return GPCondition(chol=chol, alpha=alpha)


@jax.jit
def log_marginal_likelihood(X, y, params, noise_var, jitter=DEFAULT_JITTER):
    """Log density of ``y ~ MultivariateNormal(0, K)`` (notes/skim.md 2.2).

    ``-1/2 y^T K^{-1} y - sum log diag L - N/2 log(2 pi)``, computed from the
    Cholesky factor with a single triangular solve. Cost O(N^2 P + N^3).

    Parameters
    ----------
    X : array of shape (N, P)
    y : array of shape (N,)
    params : KernelParams
    noise_var : scalar
    jitter : float, default=1e-4

    Returns
    -------
    scalar
    """
    chol = jnp.linalg.cholesky(training_gram(X, params, noise_var, jitter))
    white = solve_triangular(chol, y, lower=True)
    n = y.shape[0]
    return (
        -0.5 * jnp.dot(white, white)
        - jnp.sum(jnp.log(jnp.diag(chol)))
        - 0.5 * n * math.log(2.0 * math.pi)
    )


@jax.jit
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
    mean = cross @ condition.alpha
    white = solve_triangular(condition.chol, cross.T, lower=True)
    prior_var = jax.vmap(lambda x: interaction_kernel(x[None], x[None], params))(
        X_new
    ).reshape(-1)
    var = prior_var - jnp.sum(jnp.square(white), axis=0)
    return mean, jnp.maximum(var, 0.0)


# --- 3. Probes and coefficient recovery -------------------------------------


class ProbeSet(NamedTuple):
    """Probe points and weights that express coefficients as functionals of f.

    Coefficient ``m`` equals ``sum_g weights[g] * f(points[m, g])`` for every
    f of the SKIM form, because the intercept, the other main effects and the
    other interactions cancel in the weighted sum (notes/skim.md 3).

    Parameters
    ----------
    points : array of shape (M, G, P)
        ``G`` probe points for each of ``M`` coefficients.
    weights : array of shape (G,)
        The same weights for every coefficient of the set.
    """

    points: jax.Array
    weights: jax.Array


def main_effect_probes(n_features, dtype=float):
    """Probes ``+e_i`` and ``-e_i`` with weights ``(1/2, -1/2)`` for every i.

    ``f(e_i) - f(-e_i) = 2 theta_i`` as the model has no squared terms.

    Parameters
    ----------
    n_features : int
    dtype : dtype, default=float

    Returns
    -------
    ProbeSet
        ``points`` of shape (n_features, 2, n_features).
    """
    eye = np.eye(n_features, dtype=dtype)
    points = np.stack([eye, -eye], axis=1)
    return ProbeSet(
        points=jnp.asarray(points), weights=jnp.asarray([0.5, -0.5], dtype=dtype)
    )


def interaction_probes(pairs, n_features, dtype=float):
    """Probes at ``(x_i, x_j) in {(1,1), (1,-1), (-1,1), (-1,-1)}``, others 0.

    The weights ``(1, -1, -1, 1) / 4`` cancel the intercept and both main
    effects, leaving ``theta_ij``.

    Parameters
    ----------
    pairs : int array of shape (M, 2)
        Feature index pairs ``(i, j)`` with ``i != j``.
    n_features : int
    dtype : dtype, default=float

    Returns
    -------
    ProbeSet
        ``points`` of shape (M, 4, n_features).
    """
    # Probes are constants: build them in NumPy rather than as traced ops.
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    signs = np.asarray([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=dtype)
    points = np.zeros((len(pairs), 4, n_features), dtype=dtype)
    rows = np.arange(len(pairs))[:, None]
    points[rows, :, pairs[:, :1]] = signs[None, :, 0]
    points[rows, :, pairs[:, 1:]] = signs[None, :, 1]
    weights = np.asarray([0.25, -0.25, -0.25, 0.25], dtype=dtype)
    return ProbeSet(points=jnp.asarray(points), weights=jnp.asarray(weights))


def _probe_cross_covariance(X, params, probes):
    """``B[m] = sum_g w_g k(q_mg, X)``: Cov(theta_m, f(X)) under the prior."""
    n_coef, n_probe, n_features = probes.points.shape
    flat = probes.points.reshape(n_coef * n_probe, n_features)
    cross = interaction_kernel(flat, X, params).reshape(n_coef, n_probe, -1)
    return jnp.einsum("g,mgn->mn", probes.weights, cross)


@jax.jit
def coefficient_moments(X, condition, params, probes):
    """Conditional posterior mean and variance of each probed coefficient.

    With ``a`` the probe weights, ``E[theta] = a^T K_qx K^{-1} y`` and
    ``Var[theta] = a^T K_qq a - |L^{-1} K_xq a|^2`` (notes/skim.md 3). Only the
    ``G x G`` prior blocks of each coefficient are formed, so the cost is
    O(M G N P + M N^2), linear in the number of coefficients M.

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
    mean = cross @ condition.alpha
    white = solve_triangular(condition.chol, cross.T, lower=True)
    blocks = jax.vmap(lambda q: interaction_kernel(q, q, params))(probes.points)
    prior_var = jnp.einsum("g,mgh,h->m", probes.weights, blocks, probes.weights)
    var = prior_var - jnp.sum(jnp.square(white), axis=0)
    return mean, jnp.maximum(var, 0.0)


@jax.jit
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
    n_coef, n_probe, n_features = probes.points.shape
    flat = probes.points.reshape(n_coef * n_probe, n_features)
    prior = interaction_kernel(flat, flat, params)
    prior = prior.reshape(n_coef, n_probe, n_coef, n_probe)
    prior = jnp.einsum("g,mgkh,h->mk", probes.weights, prior, probes.weights)
    cross = _probe_cross_covariance(X, params, probes)
    white = solve_triangular(condition.chol, cross.T, lower=True)
    cov = prior - white.T @ white
    return 0.5 * (cov + cov.T)


@jax.jit
def mixture_moments(means, variances):
    """Mean and variance of an equal-weight mixture of Gaussians over draws.

    Law of total variance (notes/skim.md 3.1): the mixture variance is the
    mean conditional variance plus the variance of the conditional means.

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
    """
    mean = jnp.mean(means, axis=0)
    # Centre before squaring: (1/S) sum mu^2 - mean^2 cancels catastrophically
    # when the draws agree closely, which is the common case.
    spread = jnp.mean(jnp.square(means - mean), axis=0)
    return mean, jnp.mean(variances, axis=0) + spread

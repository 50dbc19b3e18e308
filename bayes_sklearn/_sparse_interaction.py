"""Sparse kernel interaction model (SKIM): sparse main effects and interactions.

The regression ``f(x) = theta_0 + sum_i theta_i x_i + sum_{i<j} theta_ij x_i x_j``
has O(P^2) coefficients. With the hierarchical sparsity prior of Agrawal,
Huggins, Trippe and Broderick (2019) the coefficients are Gaussian given O(P)
hyperparameters, so f is a Gaussian process with a kernel that costs O(P) per
pair of points (``_skim_kernel``). The estimator therefore works in three
stages:

1. **fit**: standardise X and y, then sample the hyperparameters
   ``(sigma, eta1, msq, xisq, lambda[P])`` with NUTS (or approximate them
   with SVI) on the GP marginal likelihood (:func:`sparse_interaction_model`),
   O(N^2 P + N^3) per gradient; :func:`estimate_fit_seconds` prices a fit
   from that cost, and a long one warns first (:class:`FitTimeWarning`);
2. **coefficients**: for each retained draw, the conditional posterior of
   every coefficient is Gaussian and follows from GP prediction at probe
   points; averaging over draws gives a Gaussian mixture (docs/skim.md 3);
3. **selection**: a feature is active when its standardised main effect is
   more than ``selection_z`` posterior sds away from zero; an interaction is
   active when the same holds for it and both parents are relevant: active,
   or given weight by the kernel's per-feature scales (docs/skim.md 4).

Prediction is the GP posterior predictive, averaged over draws.
"""

from __future__ import annotations

import warnings
from numbers import Real
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.special import ndtr
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

import core_ppl as ppl
import core_ppl.distributions as dist
from bayes_sklearn import _skim_kernel as sk
from bayes_sklearn._base import BaseBayesianEstimator, ModelInputs, bucket_size
from core_ppl.jit import jit

__all__ = [
    "FitTimeWarning",
    "SparseInteractionRegressor",
    "estimate_fit_seconds",
    "sparse_interaction_model",
]

#: Largest training set accepted: the exact GP stores and factorises
#: ``n_samples x n_samples`` matrices in every gradient evaluation (about ten of
#: them alive at once, per chain), so 5000 rows already need ~2 GiB in float64.
MAX_N_SAMPLES = 5000

#: Posterior draws used for coefficients and predictions, evenly thinned from
#: all draws of all chains. Each costs one Cholesky factorisation; with an
#: effective sample size of 100 or more, the Monte Carlo error of a mixture
#: mean is at most a tenth of its sd.
MAX_SUMMARY_DRAWS = 200

# Coefficients per probe batch: bounds the (batch, 4, n_samples) cross
# covariances kept alive when all P (P - 1) / 2 interactions are recovered.
_PROBE_BATCH = 2048
# Every P <= 16 shares one compiled sampler (zero columns are exact padding);
# a padding column costs one more lambda to sample and O(N^2) kernel work,
# little next to the O(N^3) factorisation, while a compilation costs ~30 s.
_MIN_PADDED_FEATURES = 16
# Prediction works on chunks of _PREDICT_CHUNK rows, so that each row's
# arithmetic (hence its rounding) is the same whatever else is predicted with
# it; one call takes at most _PREDICT_BLOCK chunks, padded to a bucket size.
_PREDICT_CHUNK = 64
_PREDICT_BLOCK = 64
# A feature whose posterior mean slab weight (eta1 kappa_i / m)^2 exceeds
# this is a candidate parent of interactions (docs/skim.md 4). The weights of
# shrunk features sit near (phi lambda_i / m)^2, below 1e-2 in every fit we
# ran, those of features the data use between 0.1 and 0.9 (parents of
# interactions without main effects included): the threshold lies between.
_RELEVANT_SLAB_WEIGHT = 0.05


# --- the model -------------------------------------------------------------------


def sparse_interaction_model(
    X,
    y,
    weight,
    n_features,
    expected_sparsity,
    alpha1,
    beta1,
    alpha2,
    beta2,
    alpha3,
    c,
    jitter,
):
    """SKIM, the NumPyro-example variant of docs/skim.md section 2.

    ``sigma ~ HalfNormal(alpha3)``, ``eta1 ~ HalfCauchy(phi)`` with the
    Piironen-Vehtari global scale ``phi = sigma S / sqrt(N) / (P - S)``,
    ``msq ~ InverseGamma(alpha1, beta1)``, ``xisq ~ InverseGamma(alpha2,
    beta2)``, ``lambda_i ~ HalfCauchy(1)``; ``y`` is a zero-mean GP with the
    kernel of :func:`~bayes_sklearn._skim_kernel.interaction_kernel`. The GP
    marginal likelihood enters through ``factor``, computed from our own
    Cholesky factor: cheaper than a ``MultivariateNormal`` site (one
    factorisation and a custom gradient rule), and padding rows and sample
    weights act exactly (see
    :func:`~bayes_sklearn._skim_kernel.weighted_log_marginal_likelihood`).

    Parameters
    ----------
    X : array of shape (n_rows, n_columns)
        Standardised features; zero on padding rows and padding columns.
        A zero column adds nothing to the kernel, so the ``lambda`` of a
        padding column keeps its prior and is dropped after sampling.
    y : array of shape (n_rows,)
        Centred and scaled targets; zero on padding rows.
    weight : array of shape (n_rows,)
        Sample weights, 0 on padding rows. ``N`` in ``phi`` is their sum.
    n_features : array of shape ()
        ``P``, the number of real (not padding) columns.
    expected_sparsity : array of shape ()
        ``S``, the expected number of active features, ``0 < S < P``.
    alpha1, beta1 : array of shape ()
        Shape and scale of the inverse-gamma prior on ``msq`` (slab).
    alpha2, beta2 : array of shape ()
        Shape and scale of the inverse-gamma prior on ``xisq``.
    alpha3 : array of shape ()
        Scale of the half-normal prior on the noise sd ``sigma``.
    c : array of shape ()
        Prior sd of the intercept.
    jitter : array of shape ()
        Diagonal jitter of the training Gram matrix.
    """
    sigma = ppl.sample("sigma", dist.HalfNormal(alpha3))
    phi = sigma * (expected_sparsity / jnp.sqrt(jnp.sum(weight)))
    phi = phi / (n_features - expected_sparsity)
    eta1 = ppl.sample("eta1", dist.HalfCauchy(phi))
    msq = ppl.sample("msq", dist.InverseGamma(alpha1, beta1))
    xisq = ppl.sample("xisq", dist.InverseGamma(alpha2, beta2))
    with ppl.plate("features", X.shape[1]):
        lam = ppl.sample("lambda", dist.HalfCauchy(jnp.ones_like(alpha3)))
    params = sk.kernel_params(eta1, msq, xisq, lam, c)
    log_ml = sk.weighted_log_marginal_likelihood(
        X, y, params, jnp.square(sigma), weight, jitter
    )
    ppl.factor("y", log_ml)


# --- standardisation -----------------------------------------------------------------


class _Standardiser(NamedTuple):
    """Column standardisation of X and y under frequency weights.

    Attributes
    ----------
    x_mean, x_scale : ndarray of shape (n_features,)
        Weighted column means and sds of ``X`` (sd 1 for constant columns).
    y_mean, y_scale : float
        Weighted mean and sd of ``y``.
    """

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float
    y_scale: float

    def transform_X(self, X):
        return (X - self.x_mean) / self.x_scale

    def transform_y(self, y):
        return (y - self.y_mean) / self.y_scale


def _standardiser(X, y, weight):
    """The :class:`_Standardiser` of the rows of positive weight."""
    keep = weight > 0
    x_mean, x_scale = _weighted_moments(X[keep], weight[keep])
    y_mean, y_scale = _weighted_moments(y[keep, None], weight[keep])
    return _Standardiser(x_mean, x_scale, float(y_mean[0]), float(y_scale[0]))


def _weighted_moments(A, weight):
    """Column means and sds under frequency weights; zero sds become 1."""
    mean = np.average(A, axis=0, weights=weight)
    var = np.average(np.square(A - mean), axis=0, weights=weight)
    scale = np.sqrt(var)
    # A constant column carries no information; scale 1 keeps it finite, as
    # sklearn's StandardScaler does. The threshold is relative round-off.
    is_constant = scale <= 1e3 * np.finfo(np.float64).eps * (1.0 + np.abs(mean))
    return mean, np.where(is_constant, 1.0, scale)


def _padded_columns(X):
    """Append the zero columns of the feature bucket (exact padding)."""
    n_padded = bucket_size(X.shape[1], _MIN_PADDED_FEATURES)
    return np.pad(X, [(0, 0), (0, n_padded - X.shape[1])])


class _Training(NamedTuple):
    """What ``_model_inputs`` computed that ``_set_fitted_attributes`` needs.

    Attributes
    ----------
    standardiser : _Standardiser
        The weighted standardisation of ``X`` and ``y``.
    X : ndarray of shape (n_rows, n_padded)
        Standardised ``X`` with the zero columns of the feature bucket,
        padded with zero rows to the row bucket.
    y, weight : ndarray of shape (n_rows,)
        Standardised ``y`` and the sample weights, padded with zeros.
    """

    standardiser: _Standardiser
    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray


class _GP(NamedTuple):
    """The trained GP that coefficients and predictions are computed from.

    Attributes
    ----------
    X, y, weight : ndarray
        The padded training set of :class:`_Training`.
    draws : dict of str to ndarray
        At most ``MAX_SUMMARY_DRAWS`` hyperparameter draws, evenly thinned;
        ``"lambda"`` has the padded number of columns (1 on padding).
    c : float
        Prior sd of the intercept.
    """

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    draws: dict
    c: float

    def args(self):
        """Arguments of the per-draw jitted functions, as JAX arrays."""
        arrays = (self.X, self.y, self.weight, self.draws, np.float64(self.c))
        arrays = (*arrays, sk.DEFAULT_JITTER)
        return jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), arrays)


def _trained_gp(training, samples, c):
    """The :class:`_GP` of a fit: its training set and thinned draws."""
    keep = _thinned_indices(samples["sigma"].shape[0], MAX_SUMMARY_DRAWS)
    draws = {name: samples[name][keep] for name in ("sigma", "eta1", "msq", "xisq")}
    n_features, n_padded = samples["lambda"].shape[1], training.X.shape[1]
    draws["lambda"] = np.pad(
        samples["lambda"][keep],
        [(0, 0), (0, n_padded - n_features)],
        constant_values=1.0,
    )
    return _GP(X=training.X, y=training.y, weight=training.weight, draws=draws, c=c)


# --- per-draw computations ---------------------------------------------------------
# Module-level jitted functions of arrays, mapped over draws with lax.map so
# that memory stays at one draw's worth of N x N matrices.


def _draw_condition(X, y, weight, draw, c, jitter):
    """Kernel scales and conditioned GP of one hyperparameter draw.

    Row ``n`` has noise variance ``(sigma^2 + jitter) / weight_n``, matching
    :func:`~bayes_sklearn._skim_kernel.weighted_log_marginal_likelihood`;
    rows of weight 0 (padding) are left out.
    """
    params = sk.kernel_params(
        draw["eta1"], draw["msq"], draw["xisq"], draw["lambda"], c
    )
    is_observed = weight > 0
    noise = (jnp.square(draw["sigma"]) + jitter) / jnp.where(is_observed, weight, 1.0)
    return params, sk.condition_gp(X, y, params, noise, 0.0, is_observed)


@jit
def _probe_moments_per_draw(X, y, weight, draws, c, jitter, probe_sets):
    """Conditional (mean, var) of each probe set's coefficients, per draw.

    Returns one ``(mean, var)`` pair of ``(S, M)`` arrays per probe set; all
    sets share each draw's Cholesky factorisation.
    """

    def one_draw(draw):
        params, condition = _draw_condition(X, y, weight, draw, c, jitter)
        return tuple(
            sk.coefficient_moments(X, condition, params, probes)
            for probes in probe_sets
        )

    return jax.lax.map(one_draw, draws)


@jit
def _predict_per_draw(X, y, weight, draws, c, jitter, chunks):
    """Latent mean, latent variance and noise variance per draw at the rows of
    ``chunks`` (C, R, P): arrays of shapes (S, C * R), (S, C * R) and (S,).
    Each draw's Cholesky factorisation serves all chunks."""

    def one_draw(draw):
        params, condition = _draw_condition(X, y, weight, draw, c, jitter)
        mean, var = jax.lax.map(
            lambda rows: sk.predict_latent(X, condition, params, rows), chunks
        )
        return mean.reshape(-1), var.reshape(-1), jnp.square(draw["sigma"])

    return jax.lax.map(one_draw, draws)


class _EffectDraws(NamedTuple):
    """Per-draw conditional moments of all effects, as (means, variances).

    Parameters
    ----------
    standardised : pair of ndarray of shape (S, P)
        Main effects on the standardised scale (used for selection).
    user : pair of ndarray of shape (S, P)
        Slopes at ``x = 0`` on the standardised-y scale, per unit of z.
    intercept : pair of ndarray of shape (S,)
        The function at ``x = 0`` on the standardised-y scale.
    pairs : ndarray of shape (M, 2)
        All pairs ``i < j`` of real features.
    pair_moments : pair of ndarray of shape (S, M)
        Their interactions on the standardised scale.
    """

    standardised: tuple
    user: tuple
    intercept: tuple
    pairs: np.ndarray
    pair_moments: tuple


def _pair_batches(pairs, n_features):
    """Interaction probe sets of at most ``_PROBE_BATCH`` pairs each, the last
    one filled up by repeating its first pair so that all share one shape."""
    size = min(len(pairs), _PROBE_BATCH)
    batches = []
    for start in range(0, len(pairs), max(size, 1)):
        batch = pairs[start : start + size]
        filled = np.concatenate([batch, np.repeat(batch[:1], size - len(batch), 0)])
        batches.append(sk.interaction_probes(filled, n_features))
    return batches


def _mixture_sd(means, variances):
    """Mixture mean and sd over draws (docs/skim.md 3.1) in float64 NumPy,
    whatever JAX's precision."""
    mean, var = sk.mixture_moments(
        np.asarray(means, np.float64), np.asarray(variances, np.float64)
    )
    return mean, np.sqrt(var)


def _mixture_quantiles(means, variances, probs):
    """Quantiles of equal-weight Gaussian mixtures, one per column, by bisection.

    Parameters
    ----------
    means, variances : ndarray of shape (S, M)
    probs : sequence of float

    Returns
    -------
    ndarray of shape (len(probs), M)
    """
    means = np.asarray(means, dtype=np.float64)
    sds = np.sqrt(np.maximum(np.asarray(variances, dtype=np.float64), 1e-300))
    out = []
    for prob in probs:
        low = (means - 40 * sds).min(axis=0)
        high = (means + 40 * sds).max(axis=0)
        for _ in range(100):  # halves an 80-sd bracket far below round-off
            mid = 0.5 * (low + high)
            below = ndtr((mid - means) / sds).mean(axis=0) < prob
            low, high = np.where(below, mid, low), np.where(below, high, mid)
        out.append(0.5 * (low + high))
    return np.asarray(out)


def _thinned_indices(n_total, n_keep):
    """Evenly spaced indices of at most ``n_keep`` of ``n_total`` draws."""
    if n_total <= n_keep:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, n_keep).round().astype(int))


def _predict_draws(gp, X_std):
    """Per-draw latent mean, latent variance and noise variance of the
    :class:`_GP` at standardised, column-padded rows, in chunks of fixed size
    (see ``_PREDICT_CHUNK``)."""
    args = gp.args()
    n_rows, n_columns = X_std.shape
    n_chunks = -(-n_rows // _PREDICT_CHUNK)
    chunks = np.zeros((n_chunks * _PREDICT_CHUNK, n_columns))
    chunks[:n_rows] = X_std
    chunks = chunks.reshape(n_chunks, _PREDICT_CHUNK, n_columns)
    means, variances = [], []
    noise = np.zeros(gp.draws["sigma"].shape[0])
    for start in range(0, n_chunks, _PREDICT_BLOCK):
        block = chunks[start : start + _PREDICT_BLOCK]
        padded = bucket_size(len(block), 1)
        block = np.pad(block, [(0, padded - len(block)), (0, 0), (0, 0)])
        mean, var, noise = _predict_per_draw(*args, jnp.asarray(block))
        means.append(np.asarray(mean, np.float64))
        variances.append(np.asarray(var, np.float64))
    return (
        np.concatenate(means, axis=1)[:, :n_rows],
        np.concatenate(variances, axis=1)[:, :n_rows],
        np.asarray(noise, np.float64),
    )


# --- coefficients and selection --------------------------------------------------
# Pure functions from the trained GP to the fitted attributes; the estimator
# assigns what they return in one place.


def _probe_all_effects(gp, standardiser):
    """Per-draw conditional moments of every effect, in one pass per batch.

    Probes the standardised main effects (slopes at the data mean), the
    user-unit slopes and the value at ``x = 0`` (the intercept), and all
    pairs of the padded feature set, so that data sets in one feature
    bucket share one compiled program. Pair batches beyond the first
    (more than ``_PROBE_BATCH`` pairs) are padded by repetition.
    """
    args = gp.args()
    n_features, n_padded = standardiser.x_mean.shape[0], gp.X.shape[1]
    origin = _padded_columns(standardiser.transform_X(np.zeros((1, n_features))))[0]
    user = sk.concatenate_probes(
        sk.main_effect_probes(n_padded, base=origin),
        sk.value_probes(n_padded, base=origin),
    )
    pairs = np.stack(np.triu_indices(n_padded, k=1), axis=1)
    batches = _pair_batches(pairs, n_padded)
    first = (sk.main_effect_probes(n_padded), user, *batches[:1])
    moments = list(_probe_moments_per_draw(*args, first))
    moments += [_probe_moments_per_draw(*args, (b,))[0] for b in batches[1:]]
    moments = [
        (np.asarray(m, np.float64), np.asarray(v, np.float64)) for m, v in moments
    ]
    n_draws = moments[0][0].shape[0]
    pair_moments = [
        np.concatenate([m[k] for m in moments[2:]], axis=1)[:, : len(pairs)]
        if batches
        else np.zeros((n_draws, 0))
        for k in (0, 1)
    ]
    is_real = pairs[:, 1] < n_features
    return _EffectDraws(
        standardised=tuple(a[:, :n_features] for a in moments[0]),
        user=tuple(a[:, :n_features] for a in moments[1]),
        intercept=tuple(a[:, n_padded] for a in moments[1]),
        pairs=pairs[is_real],
        pair_moments=tuple(a[:, is_real] for a in pair_moments),
    )


class _MainEffects(NamedTuple):
    """Main effects and the intercept, as the estimator reports them.

    Attributes
    ----------
    coef, coef_std : ndarray of shape (P,)
        Mixture mean and sd of the slopes at ``x = 0``, in user units.
    intercept : float
        Mixture mean of the function at ``x = 0``, in user units.
    active : ndarray of shape (n_active,)
        Features whose standardised effect is ``selection_z`` sds from 0.
    z : ndarray of shape (P,)
        ``|mean| / sd`` of the standardised effects.
    draws : pair of ndarray of shape (S, P)
        Per-draw means and variances of ``coef`` (for :meth:`summary`).
    """

    coef: np.ndarray
    coef_std: np.ndarray
    intercept: float
    active: np.ndarray
    z: np.ndarray
    draws: tuple


def _main_effects(effects, standardiser, selection_z):
    """Selection on the standardised scale (docs/skim.md 4), report in user
    units: slopes along ``z_i = (x_i - mu_i) / s_i`` times ``s_y / s_i``."""
    mean, sd = _mixture_sd(*effects.standardised)
    unit = standardiser.y_scale / standardiser.x_scale
    means, variances = effects.user
    draws = (means * unit, variances * unit**2)
    coef, coef_std = _mixture_sd(*draws)
    intercept, _ = _mixture_sd(*effects.intercept)
    return _MainEffects(
        coef=coef,
        coef_std=coef_std,
        intercept=float(standardiser.y_mean + standardiser.y_scale * intercept),
        active=np.flatnonzero(np.abs(mean) > selection_z * sd),
        z=np.abs(mean) / np.where(sd > 0, sd, np.inf),
        draws=draws,
    )


def _slab_weights(samples):
    """Posterior mean of each feature's slab weight ``(eta1 kappa_i / m)^2``.

    In (0, 1): the share of the slab scale ``m`` that the horseshoe lets
    feature ``i`` use (docs/skim.md 4). Both its main effect (prior sd
    ``eta1 kappa_i``) and its interactions (prior sd ``eta2 kappa_i
    kappa_j``) scale with it.

    Parameters
    ----------
    samples : dict of str to ndarray
        ``posterior_samples_`` of a fit.

    Returns
    -------
    ndarray of shape (n_features,)
    """
    eta1, msq = samples["eta1"][:, None], samples["msq"][:, None]
    xisq, lam = samples["xisq"][:, None], samples["lambda"]
    params = sk.kernel_params(eta1, msq, xisq, lam, 1.0)
    kappa = np.asarray(params.kappa, dtype=np.float64)
    return np.mean(np.square(eta1 * kappa) / msq, axis=0)


class _Interactions(NamedTuple):
    """Pairwise interactions, as the estimator reports them.

    Attributes
    ----------
    coef, coef_std : ndarray of shape (P, P)
        Mixture mean and sd in user units, strictly upper triangular.
    active : ndarray of shape (n_active, 2)
        Active pairs ``(i, j)``, ``i < j``.
    z : ndarray of shape (n_active,)
        ``|mean| / sd`` of the active pairs on the standardised scale.
    draws : pair of ndarray of shape (S, n_active)
        Per-draw means and variances of the active pairs in user units.
    """

    coef: np.ndarray
    coef_std: np.ndarray
    active: np.ndarray
    z: np.ndarray
    draws: tuple


def _interactions(effects, standardiser, candidates, selection_z):
    """Interactions in user units; pairs of ``candidates`` whose standardised
    interaction is more than ``selection_z`` sds from zero are active."""
    pairs = effects.pairs
    n_features = standardiser.x_scale.shape[0]
    mean, sd = _mixture_sd(*effects.pair_moments)
    scale = standardiser.x_scale
    unit = standardiser.y_scale / (scale[pairs[:, 0]] * scale[pairs[:, 1]])
    coef = np.zeros((n_features, n_features))
    coef_std = np.zeros((n_features, n_features))
    coef[pairs[:, 0], pairs[:, 1]] = mean * unit
    coef_std[pairs[:, 0], pairs[:, 1]] = sd * unit
    is_active = np.isin(pairs, candidates).all(axis=1)
    is_active &= np.abs(mean) > selection_z * sd
    means, variances = effects.pair_moments
    return _Interactions(
        coef=coef,
        coef_std=coef_std,
        active=pairs[is_active],
        z=np.abs(mean[is_active]) / sd[is_active],
        draws=(
            means[:, is_active] * unit[is_active],
            variances[:, is_active] * unit[is_active] ** 2,
        ),
    )


class _FittedState(NamedTuple):
    """Everything :meth:`predict` and :meth:`summary` need beyond the public
    fitted attributes; set once, by ``_set_fitted_attributes``.

    Attributes
    ----------
    standardiser : _Standardiser
    gp : _GP
    main_draws : pair of ndarray of shape (S, P)
        Per-draw means and variances of the main effects in user units.
    main_z : ndarray of shape (P,)
    pair_draws : pair of ndarray of shape (S, n_active_interactions)
    pair_z : ndarray of shape (n_active_interactions,)
    """

    standardiser: _Standardiser
    gp: _GP
    main_draws: tuple
    main_z: np.ndarray
    pair_draws: tuple
    pair_z: np.ndarray


# --- fit time ----------------------------------------------------------------------


class FitTimeWarning(UserWarning):
    """A :class:`SparseInteractionRegressor` fit is expected to take long.

    Raised by ``fit`` before sampling starts, with the estimate of
    :func:`estimate_fit_seconds` and the settings that shorten it.
    """


#: A fit expected to take longer than this many seconds warns before it starts.
LONG_FIT_SECONDS = 60.0

# The cost model of estimate_fit_seconds, calibrated on one core of the
# 2-core CPU development machine (float32, single-threaded BLAS, see
# benchmarks/skim.py): a gradient of the GP marginal likelihood costs a fixed
# overhead plus multiply-adds at _SECONDS_PER_MAC: 4/3 N^3 for the Cholesky
# factor, its inverse and L^-T L^-1, and about _KERNEL_MACS N^2 P for the
# kernel and its gradient (within 15% of measured gradients for N = 64 to
# 512, P = 16 to 64). A default NUTS fit took about _STEPS_PER_100_SAMPLES
# leapfrog steps per iteration (warmup and sampling) at N = 100 and about
# twice as many at N = 200: the trees deepen as the posterior narrows, so the
# model grows the steps in proportion to N (which reproduces the 25 minutes
# reported for a default fit at N = 500).
_SECONDS_PER_MAC = 4e-11
_GRADIENT_OVERHEAD_SECONDS = 2.5e-4
_KERNEL_MACS = 8
_STEPS_PER_100_SAMPLES = 32


def estimate_fit_seconds(
    n_samples,
    n_features,
    *,
    inference="nuts",
    n_warmup=500,
    n_draws=500,
    n_chains=1,
    svi_steps=2000,
):
    """Rough wall-clock seconds of a :class:`SparseInteractionRegressor` fit.

    A cost model, not a measurement: every gradient of the exact GP
    likelihood costs O(N^2 P + N^3) (docs/skim.md 2.2) on the padded sizes;
    NUTS takes about 32 gradients (leapfrog steps) per iteration per 100
    samples (its trees deepen as N grows), SVI one per step; recovering the
    coefficients costs one factorisation and O(N^2 P^2) work per retained
    draw. Calibrated on one CPU core; compile time is not included, and the
    number of leapfrog steps varies from data set to data set, so read the
    result as an order of magnitude.

    Parameters
    ----------
    n_samples, n_features : int
        Shape of the training data.
    inference, n_warmup, n_draws, n_chains, svi_steps
        As in :class:`SparseInteractionRegressor`.

    Returns
    -------
    float
        Estimated seconds, increasing in every argument that adds work
        (``n_draws`` beyond ``MAX_SUMMARY_DRAWS`` only through NUTS).

    Examples
    --------
    >>> nuts = estimate_fit_seconds(500, 20)
    >>> svi = estimate_fit_seconds(500, 20, inference="svi")
    >>> nuts > 60 > svi
    True
    """
    n = bucket_size(n_samples, SparseInteractionRegressor._min_padded_rows)
    p = bucket_size(n_features, _MIN_PADDED_FEATURES)
    gradient = _GRADIENT_OVERHEAD_SECONDS + _SECONDS_PER_MAC * (
        4 / 3 * n**3 + _KERNEL_MACS * n**2 * p
    )
    if inference == "nuts":
        steps = _STEPS_PER_100_SAMPLES * max(1.0, n_samples / 100)
        n_gradients = n_chains * (n_warmup + n_draws) * steps
        n_kept = min(n_chains * n_draws, MAX_SUMMARY_DRAWS)
    else:  # one "chain" of draws from the fitted guide
        n_gradients = svi_steps
        n_kept = min(n_draws, MAX_SUMMARY_DRAWS)
    # Per retained draw: factor and invert K (2/3 N^3), then whiten the
    # cross-covariances of all P (P - 1) / 2 pairs and 3 P main effects.
    per_draw = 2 / 3 * n**3 + n**2 * (p * (p - 1) / 2 + 3 * p)
    return n_gradients * gradient + n_kept * _SECONDS_PER_MAC * per_draw


def _warn_if_long_fit(estimator, n_samples, n_features):
    """FitTimeWarning (and a line when verbose) before a long fit."""
    settings = dict(
        n_warmup=estimator.n_warmup,
        n_draws=estimator.n_draws,
        n_chains=estimator.n_chains,
        svi_steps=estimator.svi_steps,
    )
    seconds = estimate_fit_seconds(
        n_samples, n_features, inference=estimator.inference, **settings
    )
    name = type(estimator).__name__
    if estimator.verbose > 0:
        print(f"{name}: fit expected to take about {seconds:.0f} s", flush=True)
    if seconds <= LONG_FIT_SECONDS:
        return
    if estimator.inference == "nuts":
        svi = estimate_fit_seconds(n_samples, n_features, inference="svi", **settings)
        advice = (
            f"For an approximate fit in about {svi:.0f} s use inference='svi'; "
            "or lower n_warmup and n_draws, or fit on a subset of the rows"
        )
    else:
        advice = "Lower svi_steps or n_draws, or fit on a subset of the rows"
    warnings.warn(
        f"{name}: this fit is expected to take about {seconds / 60:.1f} minutes "
        f"({n_samples} samples, {n_features} features, inference="
        f"'{estimator.inference}'): the exact Gaussian process costs O(N^3) per "
        f"gradient. {advice}.",
        FitTimeWarning,
        stacklevel=5,  # the caller of fit
    )


# --- the estimator -------------------------------------------------------------------


class SparseInteractionRegressor(RegressorMixin, BaseBayesianEstimator):
    """Bayesian regression with sparse main effects and pairwise interactions.

    The sparse kernel interaction model (SKIM) of Agrawal et al. (2019):
    ``y = theta_0 + sum_i theta_i x_i + sum_{i<j} theta_ij x_i x_j + noise``
    with a regularised-horseshoe prior on the main effects and interactions
    whose scale is the product of their parents' scales (an interaction is
    only large when both of its features matter). The O(P^2) coefficients
    are integrated out analytically: NUTS samples only the O(P)
    hyperparameters of the equivalent Gaussian process, and every
    coefficient's posterior is recovered afterwards in closed form.

    Parameters
    ----------
    expected_sparsity : float, default=None
        ``S``, the prior guess of the number of relevant features; sets the
        global shrinkage scale ``sigma S / sqrt(n_samples) / (P - S)``
        (Piironen and Vehtari 2017). Must be smaller than ``n_features``.
        None means ``max(1, n_features / 10)``, capped at ``n_features / 2``
        so that one or two features still work.

    alpha1 : float, default=3.0
        Shape of the inverse-gamma prior on the squared slab scale ``m^2``,
        which caps how large a relevant main effect can be.

    beta1 : float, default=1.0
        Scale of that inverse-gamma prior.

    alpha2 : float, default=3.0
        Shape of the inverse-gamma prior on ``xi^2``, the scale of the
        interactions relative to the main effects.

    beta2 : float, default=1.0
        Scale of that inverse-gamma prior.

    alpha3 : float, default=1.0
        Scale of the half-normal prior on the noise sd (in units of the sd
        of ``y``).

    c : float, default=1.0
        Prior sd of the intercept, in units of the sd of ``y``.

    selection_z : float, default=3.0
        A feature (interaction) is reported active when its posterior mean is
        more than ``selection_z`` posterior sds away from zero.

    inference : {"nuts", "svi"}, default="nuts"
        ``"nuts"`` samples the hyperparameters with the No-U-Turn Sampler;
        ``"svi"`` fits a mean-field normal approximation to their logarithms
        with one gradient per step instead of tens per NUTS iteration: the
        fast path for a few hundred rows or more (approximate; see
        :func:`estimate_fit_seconds`).

    n_warmup : int, default=500
        NUTS warmup iterations per chain; discarded.

    n_draws : int, default=500
        Posterior draws kept per chain (or drawn from the SVI guide).

    n_chains : int, default=1
        Number of NUTS chains, run vectorized in one compiled program.

    svi_steps : int, default=2000
        Adam steps of SVI; ignored by NUTS.

    random_state : int, RandomState instance, Generator or None, default=None
        Seeds the fit's random key; an int makes fits reproducible bit for
        bit.

    verbose : int, default=0
        ``0`` is quiet; ``> 0`` shows a progress bar while sampling.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Posterior mean of the main effects in the units of ``X`` and ``y``:
        the slope of the regression function along each feature at
        ``x = 0`` (see Notes).

    coef_std_ : ndarray of shape (n_features,)
        Posterior sd of ``coef_``.

    interaction_coef_ : ndarray of shape (n_features, n_features)
        Posterior mean of the pairwise interactions in user units, strictly
        upper triangular: entry ``[i, j]`` with ``i < j`` multiplies
        ``x_i x_j``, all other entries are 0.

    interaction_coef_std_ : ndarray of shape (n_features, n_features)
        Posterior sd of ``interaction_coef_``, also upper triangular.

    intercept_ : float
        Posterior mean of the regression function at ``x = 0``.

    active_features_ : ndarray of shape (n_active,)
        Indices of the features whose standardised main effect is more than
        ``selection_z`` posterior sds from zero, in increasing order.

    active_interactions_ : ndarray of shape (n_active_interactions, 2)
        Pairs ``(i, j)``, ``i < j``, whose standardised interaction is more
        than ``selection_z`` posterior sds from zero, among the relevant
        features: the active ones and those whose kernel scale the
        posterior raised (a parent need not have a main effect, see
        Notes).

    posterior_samples_ : dict of str to ndarray
        Draws of the hyperparameters, chains concatenated: ``"sigma"``,
        ``"eta1"``, ``"msq"``, ``"xisq"`` of shape ``(n_chains * n_draws,)``
        and ``"lambda"`` of shape ``(n_chains * n_draws, n_features)``, on
        the standardised scale.

    diagnostics_ : dict
        NUTS: ``n_divergences``, ``max_r_hat``, ``min_ess`` (and
        ``inference``, ``n_chains``, ``n_draws``). SVI: ``final_elbo`` and
        the ``elbo`` trace.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column
        names; they also label :meth:`summary`.

    See Also
    --------
    sklearn.linear_model.BayesianRidge : Bayesian linear regression without
        interactions or sparsity.
    sklearn.linear_model.LassoCV : Sparse point estimate; with
        ``PolynomialFeatures(interaction_only=True)`` it searches the
        interactions explicitly in O(P^2) features.
    BayesianLogisticRegression : Bayesian logistic regression.

    Notes
    -----
    **Model.** ``X`` columns are standardised and ``y`` is centred and scaled
    (with sample weights as frequencies). On that scale, ``sigma ~
    HalfNormal(alpha3)``, ``eta1 ~ HalfCauchy(phi)``, ``m^2 ~ InvGamma(alpha1,
    beta1)``, ``xi^2 ~ InvGamma(alpha2, beta2)``, ``lambda_i ~ HalfCauchy(1)``
    and, given those, ``theta_i ~ N(0, eta1^2 kappa_i^2)`` and ``theta_ij ~
    N(0, eta2^2 kappa_i^2 kappa_j^2)`` with ``kappa_i = m lambda_i / sqrt(m^2
    + eta1^2 lambda_i^2)`` and ``eta2 = eta1^2 xi / m^2``. There are no
    squared terms ``x_i^2``. The noise-free function is a Gaussian process;
    its marginal likelihood (a Cholesky factorisation, O(N^3 + N^2 P) per
    gradient) is all NUTS sees.

    **Coefficients.** Each coefficient is a linear functional of the
    function (a weighted sum of its values at two or four probe points), so
    given a hyperparameter draw its posterior is Gaussian; over draws it is
    a Gaussian mixture, whose mean and sd (law of total variance) are
    reported. At most ``MAX_SUMMARY_DRAWS`` = 200 draws, evenly thinned from
    all chains, are used for this and for :meth:`predict`; every draw costs
    one N x N Cholesky factorisation, and all P (P - 1) / 2 interactions
    cost O(P^2 N^2) per draw.

    **Units.** Selection uses the effects on the standardised scale, i.e.
    the average slopes over the training data, which do not depend on the
    units or the origin of ``X``. ``coef_`` and ``interaction_coef_`` are in
    user units so that, at the posterior mean, ``predict(X) = intercept_ + X
    @ coef_ + sum_{i<j} interaction_coef_[i, j] x_i x_j``. Centring moves
    main effects by interactions: with column means ``mu`` and sds ``s``,
    ``interaction_coef_[i, j] = s_y theta_ij / (s_i s_j)`` but ``coef_[i] =
    s_y theta_i / s_i - sum_{j != i} beta_ij mu_j`` with ``beta_ij`` the
    interaction of i and j (``interaction_coef_[min(i, j), max(i, j)]``).
    These are computed exactly by probing at ``x = 0``, so
    a feature that only interacts can have a nonzero ``coef_`` when the
    other feature's mean is not 0.

    **Selection.** An interaction's prior sd is the product of its parents'
    kernel scales, so the posterior raises the scale of a feature that only
    interacts, as much as for one with a main effect. Interactions are
    therefore searched among the active features and the features whose
    posterior mean slab weight ``(eta1 kappa_i / m)^2`` exceeds 0.05
    (docs/skim.md 4), which finds ``x1 x3`` in ``y = x1 x3 + noise``.

    **Fit time.** Every gradient costs O(N^3 + N^2 P) and NUTS takes tens
    to hundreds of them per iteration, more as N grows: a default fit of
    500 rows was reported to take about 25 CPU-minutes (see
    :func:`estimate_fit_seconds`), and ``fit`` warns with a
    :class:`FitTimeWarning` before one expected to exceed a minute
    (``verbose > 0`` prints every estimate). ``inference="svi"`` needs one
    gradient per step: 15 times fewer at 100 rows, 75 times at 500.

    **Sample weights** raise each row's likelihood to its weight (noise
    variance ``sigma^2 / w``), so an integer weight is exactly repeating the
    row.

    **Compilation.** Rows and columns are padded to a few bucket sizes (every
    ``P <= 16`` shares one) so that fits on data of similar shape reuse one
    compiled sampler; padding rows are decoupled from the GP and zero
    columns add nothing to the kernel, so the padding is exact. ``fit`` and
    ``predict`` limit BLAS to one thread: inside XLA's own thread pool,
    multi-threaded LAPACK calls on small matrices oversubscribe the cores.

    **Limits.** The GP is exact, so memory grows as ``n_samples^2`` and time
    as ``n_samples^3``: ``fit`` refuses more than ``MAX_N_SAMPLES`` = 5000
    rows. float64 (``jax.enable_x64``) is recommended; in float32 a jitter of
    ``1e-4`` plus ``10 eps`` times the mean kernel diagonal keeps the
    Cholesky factorisation stable.

    References
    ----------
    R. Agrawal, J. H. Huggins, B. Trippe and T. Broderick, The Kernel
    Interaction Trick: Fast Bayesian Discovery of Pairwise Interactions in
    High Dimensions, ICML 2019, arXiv:1905.06501.

    J. Piironen and A. Vehtari, Sparsity information and regularization in
    the horseshoe and other shrinkage priors, Electronic Journal of
    Statistics, Vol. 11, No. 2, 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_sklearn import SparseInteractionRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 5))
    >>> y = 2 * X[:, 0] - X[:, 1] + 1.5 * X[:, 0] * X[:, 1]
    >>> y = y + 0.05 * rng.normal(size=60)
    >>> reg = SparseInteractionRegressor(n_warmup=500, n_draws=1000,
    ...                                  random_state=0).fit(X, y)
    >>> reg.active_features_
    array([0, 1])
    >>> reg.active_interactions_
    array([[0, 1]])
    >>> mean, std = reg.predict(X[:3], return_std=True)
    """

    _parameter_constraints: dict = {
        **BaseBayesianEstimator._parameter_constraints,
        "expected_sparsity": [Interval(Real, 0, None, closed="neither"), None],
        "alpha1": [Interval(Real, 0, None, closed="neither")],
        "beta1": [Interval(Real, 0, None, closed="neither")],
        "alpha2": [Interval(Real, 0, None, closed="neither")],
        "beta2": [Interval(Real, 0, None, closed="neither")],
        "alpha3": [Interval(Real, 0, None, closed="neither")],
        "c": [Interval(Real, 0, None, closed="left")],
        "selection_z": [Interval(Real, 0, None, closed="neither")],
    }

    _validation_kwargs: dict = {"y_numeric": True}

    def __init__(
        self,
        *,
        expected_sparsity=None,
        alpha1=3.0,
        beta1=1.0,
        alpha2=3.0,
        beta2=1.0,
        alpha3=1.0,
        c=1.0,
        selection_z=3.0,
        inference="nuts",
        n_warmup=500,
        n_draws=500,
        n_chains=1,
        svi_steps=2000,
        random_state=None,
        verbose=0,
    ):
        self.expected_sparsity = expected_sparsity
        self.alpha1 = alpha1
        self.beta1 = beta1
        self.alpha2 = alpha2
        self.beta2 = beta2
        self.alpha3 = alpha3
        self.c = c
        self.selection_z = selection_z
        self.inference = inference
        self.n_warmup = n_warmup
        self.n_draws = n_draws
        self.n_chains = n_chains
        self.svi_steps = svi_steps
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y, sample_weight=None):
        """Sample the posterior given the training data and select effects.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Training data, at most ``MAX_N_SAMPLES`` = 5000 rows.
        y : array-like of shape (n_samples,)
            Target values, numeric: strings raise ``ValueError``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each raises its sample's likelihood to that
            power, as if the sample were repeated that many times.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with _single_threaded_blas():
            return self._fit(X, y, sample_weight)

    # --- hooks of the base -------------------------------------------------------

    def _get_model(self, context):
        return sparse_interaction_model

    def _model_inputs(self, X, y, sample_weight):
        name = type(self).__name__
        y = _numeric_target(name, y)
        _check_training_size(name, X, sample_weight)
        n_features = X.shape[1]
        sparsity = self._resolved_sparsity(n_features)
        _warn_if_long_fit(self, X.shape[0], n_features)
        standardiser = _standardiser(X, y, sample_weight)
        X_std = _padded_columns(standardiser.transform_X(X))
        y_std = standardiser.transform_y(y)
        # The training set for coefficients and predictions, padded like the
        # sampler's so that fits of similar size share compiled programs.
        n_rows = bucket_size(X.shape[0], self._min_padded_rows)
        train = (
            np.pad(a, [(0, n_rows - X.shape[0])] + [(0, 0)] * (a.ndim - 1))
            for a in (X_std, y_std, sample_weight)
        )
        hyperparameters = (
            n_features,
            sparsity,
            self.alpha1,
            self.beta1,
            self.alpha2,
            self.beta2,
            self.alpha3,
            self.c,
            sk.DEFAULT_JITTER,
        )
        return ModelInputs(
            rows=(X_std, y_std),
            hyperparameters=tuple(np.float64(v) for v in hyperparameters),
            context=_Training(standardiser, *train),
        )

    def _resolved_sparsity(self, n_features):
        """``expected_sparsity`` or its default; must satisfy ``0 < S < P``."""
        if self.expected_sparsity is None:
            return min(max(1.0, n_features / 10), n_features / 2)
        if self.expected_sparsity >= n_features:
            raise ValueError(
                f"{type(self).__name__}: expected_sparsity="
                f"{self.expected_sparsity} must be smaller than n_features="
                f"{n_features}: the global scale is proportional to "
                "S / (n_features - S). Use a smaller value, or None for the "
                "default."
            )
        return float(self.expected_sparsity)

    def _trim_draws(self, grouped, context):
        n_features = context.standardiser.x_mean.shape[0]
        return {**grouped, "lambda": grouped["lambda"][..., :n_features]}

    def _parameter_labels(self):
        return {"lambda": (self._feature_labels(),)}

    def _set_fitted_attributes(self, context):
        samples, standardiser = self.posterior_samples_, context.standardiser
        gp = _trained_gp(context, samples, self.c)
        effects = _probe_all_effects(gp, standardiser)
        main = _main_effects(effects, standardiser, self.selection_z)
        # Interactions are searched among the features the kernel gives
        # weight to, not only those with a main effect (docs/skim.md 4).
        is_relevant = _slab_weights(samples) > _RELEVANT_SLAB_WEIGHT
        candidates = np.union1d(main.active, np.flatnonzero(is_relevant))
        pairs = _interactions(effects, standardiser, candidates, self.selection_z)
        self.coef_, self.coef_std_ = main.coef, main.coef_std
        self.intercept_ = main.intercept
        self.active_features_ = main.active
        self.interaction_coef_, self.interaction_coef_std_ = pairs.coef, pairs.coef_std
        self.active_interactions_ = pairs.active
        self._fitted_state_ = _FittedState(
            standardiser=standardiser,
            gp=gp,
            main_draws=main.draws,
            main_z=main.z,
            pair_draws=pairs.draws,
            pair_z=pairs.z,
        )

    # --- prediction ----------------------------------------------------------------

    def predict(self, X, return_std=False):
        """Posterior predictive mean (and sd) of the target.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Input data.
        return_std : bool, default=False
            Also return the posterior predictive sd of a new observation:
            the sd of the mixture over draws of the GP predictive
            distributions, including the noise ``sigma^2``.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
            Posterior predictive mean, in the units of ``y``.
        y_std : ndarray of shape (n_samples,)
            Posterior predictive sd; only when ``return_std`` is True.
        """
        X = self._validate_X_predict(X)
        state = self._fitted_state_
        X_std = state.standardiser.transform_X(np.asarray(X, dtype=np.float64))
        with _single_threaded_blas():
            latent_mean, latent_var, noise = _predict_draws(
                state.gp, _padded_columns(X_std)
            )
        mean, sd = _mixture_sd(latent_mean, latent_var + noise[:, None])
        y_mean = state.standardiser.y_mean + state.standardiser.y_scale * mean
        if not return_std:
            return y_mean
        return y_mean, state.standardiser.y_scale * sd

    # --- reporting -----------------------------------------------------------------

    def summary(self, prob=0.9, kind="effects"):
        """Table of the active effects, or of the sampled hyperparameters.

        Parameters
        ----------
        prob : float, default=0.9
            Probability mass of the central credible interval.
        kind : {"effects", "hyperparameters"}, default="effects"
            ``"effects"`` lists the active main effects and interactions in
            user units; ``"hyperparameters"`` is the base class's table of
            the sampled sites with ESS and R-hat.

        Returns
        -------
        pandas.DataFrame
            For effects: index ``feature`` or ``feature_a:feature_b``;
            columns ``effect`` ("main" or "interaction"), ``mean``, ``sd``,
            the equal-tailed credible interval of the Gaussian mixture
            (``ci_<lower>%``, ``ci_<upper>%``) and ``z``, the standardised
            ``|mean| / sd`` used for selection.
        """
        check_is_fitted(self)
        if kind == "hyperparameters":
            return super().summary(prob=prob)
        if kind != "effects":
            raise ValueError(
                f"summary: kind must be 'effects' or 'hyperparameters', got {kind!r}."
            )
        if not 0 < prob < 1:
            raise ValueError(f"summary: prob must be in (0, 1), got {prob!r}.")
        names = self._feature_labels()
        mains, pairs = self.active_features_, self.active_interactions_
        index = [str(names[i]) for i in mains]
        index += [f"{names[i]}:{names[j]}" for i, j in pairs]
        state = self._fitted_state_
        means = np.concatenate([state.main_draws[0][:, mains], state.pair_draws[0]], 1)
        variances = np.concatenate(
            [state.main_draws[1][:, mains], state.pair_draws[1]], axis=1
        )
        mean, sd = _mixture_sd(means, variances)
        probs = ((1 - prob) / 2, (1 + prob) / 2)
        low, high = _mixture_quantiles(means, variances, probs)
        return pd.DataFrame(
            {
                "effect": ["main"] * len(mains) + ["interaction"] * len(pairs),
                "mean": mean,
                "sd": sd,
                f"ci_{100 * probs[0]:g}%": low,
                f"ci_{100 * probs[1]:g}%": high,
                "z": np.concatenate([state.main_z[mains], state.pair_z]),
            },
            index=pd.Index(index, dtype=object),
        )


def _single_threaded_blas():
    """Limit BLAS/LAPACK to one thread while the GP computations run.

    Every gradient calls LAPACK on one N x N matrix per chain, from inside
    XLA's own thread pool; multi-threaded OpenBLAS on top of that
    oversubscribes the cores and, on a loaded machine, makes Cholesky
    factorisations an order of magnitude slower or worse. scikit-learn's
    KMeans limits BLAS threads around its loop for the same reason.
    """
    return threadpool_limits(limits=1, user_api="blas")


def _check_training_size(name, X, sample_weight):
    """Clear errors instead of out-of-memory failures or NaN posteriors."""
    if X.shape[0] > MAX_N_SAMPLES:
        raise ValueError(
            f"{name}: X has {X.shape[0]} samples, more than MAX_N_SAMPLES="
            f"{MAX_N_SAMPLES}. The exact Gaussian process needs n_samples^2 "
            "memory per gradient and n_samples^3 time; fit on a random subset."
        )
    if not np.any(sample_weight > 0):
        raise ValueError("Sample weights must contain at least one non-zero number.")


def _numeric_target(name, y):
    """``y`` as floats, or a clear error for class labels (strings)."""
    if y.dtype.kind in "biuf":
        return y
    raise ValueError(
        f"Unknown label type: {name} is a regressor and needs a numeric target "
        f"y, got dtype {y.dtype} with values such as {y[0]!r}. Encode the "
        "target as numbers, or use a classifier (BayesianLogisticRegression)."
    )

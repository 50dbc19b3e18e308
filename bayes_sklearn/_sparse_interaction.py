"""Sparse kernel interaction model (SKIM): sparse main effects and interactions.

The regression ``f(x) = theta_0 + sum_i theta_i x_i + sum_{i<j} theta_ij x_i x_j``
has O(P^2) coefficients. With the hierarchical sparsity prior of Agrawal,
Huggins, Trippe and Broderick (2019) the coefficients are Gaussian given O(P)
hyperparameters, so f is a Gaussian process with a kernel that costs O(P) per
pair of points (``_skim_kernel``). The estimator therefore works in three
stages:

1. **fit**: standardise X and y, then sample the hyperparameters
   ``(sigma, eta1, msq, xisq, lambda[P])`` with NUTS on the GP marginal
   likelihood (:func:`sparse_interaction_model`), O(N^2 P + N^3) per gradient;
2. **coefficients**: for each retained draw, the conditional posterior of
   every coefficient is Gaussian and follows from GP prediction at probe
   points; averaging over draws gives a Gaussian mixture (docs/skim.md 3);
3. **selection**: a feature is active when its standardised main effect is
   more than ``selection_z`` posterior sds away from zero; an interaction is
   active when both parents are active and the same holds for it (docs/skim.md 4).

Prediction is the GP posterior predictive, averaged over draws.
"""

from __future__ import annotations

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

__all__ = ["SparseInteractionRegressor", "sparse_interaction_model"]

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


class _Standardiser:
    """Column standardisation of X and y under frequency weights.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    weight : ndarray of shape (n_samples,)
        Only rows of positive weight are used.

    Attributes
    ----------
    x_mean, x_scale : ndarray of shape (n_features,)
    y_mean, y_scale : float
    """

    def __init__(self, X, y, weight):
        keep = weight > 0
        self.x_mean, self.x_scale = _weighted_moments(X[keep], weight[keep])
        y_mean, y_scale = _weighted_moments(y[keep, None], weight[keep])
        self.y_mean, self.y_scale = float(y_mean[0]), float(y_scale[0])

    def transform_X(self, X):
        return (X - self.x_mean) / self.x_scale

    def transform_y(self, y):
        return (y - self.y_mean) / self.y_scale


class _Training(NamedTuple):
    """What ``_model_inputs`` computed that ``_set_fitted_attributes`` needs.

    Attributes
    ----------
    standardiser : _Standardiser
        The weighted standardisation of ``X`` and ``y``.
    train : tuple of ndarray
        Standardised ``X`` (feature-padded), ``y`` and the sample weights,
        padded to the row bucket: the GP's training set for coefficients
        and predictions.
    """

    standardiser: _Standardiser
    train: tuple


def _weighted_moments(A, weight):
    """Column means and sds under frequency weights; zero sds become 1."""
    mean = np.average(A, axis=0, weights=weight)
    var = np.average(np.square(A - mean), axis=0, weights=weight)
    scale = np.sqrt(var)
    # A constant column carries no information; scale 1 keeps it finite, as
    # sklearn's StandardScaler does. The threshold is relative round-off.
    is_constant = scale <= 1e3 * np.finfo(np.float64).eps * (1.0 + np.abs(mean))
    return mean, np.where(is_constant, 1.0, scale)


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
    """Mixture mean and sd over draws (law of total variance, docs/skim.md
    3.1), in float64 NumPy as :func:`~bayes_sklearn._skim_kernel.
    mixture_moments`, whatever JAX's precision."""
    means = np.asarray(means, dtype=np.float64)
    mean = means.mean(axis=0)
    spread = np.square(means - mean).mean(axis=0)
    return mean, np.sqrt(np.asarray(variances, np.float64).mean(axis=0) + spread)


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
        (faster, approximate).

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
        Pairs ``(i, j)``, ``i < j``, of active features whose interaction is
        more than ``selection_z`` posterior sds from zero.

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
    >>> reg = SparseInteractionRegressor(n_warmup=200, n_draws=200,
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
            Target values.
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
        _check_training_size(type(self).__name__, X, sample_weight)
        n_features = X.shape[1]
        sparsity = self._resolved_sparsity(n_features)
        standardiser = _Standardiser(X, y, sample_weight)
        X_std = self._padded_columns(standardiser.transform_X(X))
        y_std = standardiser.transform_y(y)
        # The training set for coefficients and predictions, padded like the
        # sampler's so that fits of similar size share compiled programs.
        n_rows = bucket_size(X.shape[0], self._min_padded_rows)
        train = tuple(
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
            context=_Training(standardiser=standardiser, train=train),
        )

    def _padded_columns(self, X):
        """Append the zero columns of the feature bucket (exact padding)."""
        n_padded = bucket_size(X.shape[1], _MIN_PADDED_FEATURES)
        return np.pad(X, [(0, 0), (0, n_padded - X.shape[1])])

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
        return {**grouped, "lambda": grouped["lambda"][..., : self.n_features_in_]}

    def _parameter_labels(self):
        return {"lambda": (self._feature_labels(),)}

    def _set_fitted_attributes(self, context):
        # Fitted state kept for prediction and for the steps below.
        self._standardiser, self._train = context.standardiser, context.train
        effects = self._probe_all_effects()
        self._set_main_effects(effects)
        self._set_interactions(effects)

    # --- coefficient recovery ------------------------------------------------------

    def _gp_args(self):
        """Training arrays, thinned draws and fixed hyperparameters of the GP,
        all padded (padding columns get lambda = 1; their inputs are 0)."""
        samples = self.posterior_samples_
        keep = _thinned_indices(samples["sigma"].shape[0], MAX_SUMMARY_DRAWS)
        draws = {name: samples[name][keep] for name in ("sigma", "eta1", "msq", "xisq")}
        n_padded = self._train[0].shape[1]
        draws["lambda"] = np.pad(
            samples["lambda"][keep],
            [(0, 0), (0, n_padded - self.n_features_in_)],
            constant_values=1.0,
        )
        arrays = (*self._train, draws, np.float64(self.c), sk.DEFAULT_JITTER)
        return jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), arrays)

    def _probe_all_effects(self):
        """Per-draw conditional moments of every effect, in one pass per batch.

        Probes the standardised main effects (slopes at the data mean), the
        user-unit slopes and the value at ``x = 0`` (the intercept), and all
        pairs of the padded feature set, so that data sets in one feature
        bucket share one compiled program. Pair batches beyond the first
        (more than ``_PROBE_BATCH`` pairs) are padded by repetition.
        """
        args = self._gp_args()
        n_features, n_padded = self.n_features_in_, self._train[0].shape[1]
        origin = self._standardiser.transform_X(np.zeros((1, n_features)))
        origin = self._padded_columns(origin)[0]
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

    def _set_main_effects(self, effects):
        mean, sd = _mixture_sd(*effects.standardised)
        self._main_z = np.abs(mean) / np.where(sd > 0, sd, np.inf)
        self.active_features_ = np.flatnonzero(np.abs(mean) > self.selection_z * sd)
        # Slopes along z_i = (x_i - mu_i) / s_i, times s_y / s_i: user units.
        standardiser = self._standardiser
        unit = standardiser.y_scale / standardiser.x_scale
        means, variances = effects.user
        self._main_draws = (means * unit, variances * unit**2)
        self.coef_, self.coef_std_ = _mixture_sd(*self._main_draws)
        intercept, _ = _mixture_sd(*effects.intercept)
        self.intercept_ = float(standardiser.y_mean + standardiser.y_scale * intercept)

    def _set_interactions(self, effects):
        n_features, pairs = self.n_features_in_, effects.pairs
        mean, sd = _mixture_sd(*effects.pair_moments)
        scale = self._standardiser.x_scale
        unit = self._standardiser.y_scale / (scale[pairs[:, 0]] * scale[pairs[:, 1]])
        self.interaction_coef_ = np.zeros((n_features, n_features))
        self.interaction_coef_std_ = np.zeros((n_features, n_features))
        self.interaction_coef_[pairs[:, 0], pairs[:, 1]] = mean * unit
        self.interaction_coef_std_[pairs[:, 0], pairs[:, 1]] = sd * unit
        is_active = np.isin(pairs, self.active_features_).all(axis=1)
        is_active &= np.abs(mean) > self.selection_z * sd
        self.active_interactions_ = pairs[is_active]
        self._pair_z = np.abs(mean[is_active]) / sd[is_active]
        means, variances = effects.pair_moments
        self._pair_draws = (
            means[:, is_active] * unit[is_active],
            variances[:, is_active] * unit[is_active] ** 2,
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
        X_std = self._standardiser.transform_X(np.asarray(X, dtype=np.float64))
        with _single_threaded_blas():
            latent_mean, latent_var, noise = self._predict_draws(
                self._padded_columns(X_std)
            )
        mean, sd = _mixture_sd(latent_mean, latent_var + noise[:, None])
        y_mean = self._standardiser.y_mean + self._standardiser.y_scale * mean
        if not return_std:
            return y_mean
        return y_mean, self._standardiser.y_scale * sd

    def _predict_draws(self, X_std):
        """Per-draw latent mean, latent variance and noise variance at
        standardised rows, in chunks of fixed size (see ``_PREDICT_CHUNK``)."""
        args = self._gp_args()
        n_rows, n_columns = X_std.shape
        n_chunks = -(-n_rows // _PREDICT_CHUNK)
        chunks = np.zeros((n_chunks * _PREDICT_CHUNK, n_columns))
        chunks[:n_rows] = X_std
        chunks = chunks.reshape(n_chunks, _PREDICT_CHUNK, n_columns)
        means, variances = [], []
        noise = np.zeros(args[3]["sigma"].shape[0])
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
        means = np.concatenate([self._main_draws[0][:, mains], self._pair_draws[0]], 1)
        variances = np.concatenate(
            [self._main_draws[1][:, mains], self._pair_draws[1]], axis=1
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
                "z": np.concatenate([self._main_z[mains], self._pair_z]),
            },
            index=pd.Index(index, dtype=object),
        )


def _single_threaded_blas():
    """Limit BLAS/LAPACK to one thread while the GP computations run.

    Every gradient calls LAPACK on one N x N matrix per chain, from inside
    XLA's own thread pool; multi-threaded OpenBLAS on top of that
    oversubscribes the cores and, on a loaded machine, made Cholesky
    factorisations 20-100 times slower (measured on 2 cores). scikit-learn's
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

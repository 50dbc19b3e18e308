"""Bayesian logistic regression: binary (Bernoulli) and multiclass (softmax).

The model is the generalized linear model of Gelman et al. (2013, chapter 16)
with independent normal priors,

    coef ~ Normal(0, prior_scale),  intercept ~ Normal(0, intercept_prior_scale),
    y_i ~ Bernoulli(logit = x_i . coef + intercept)           (two classes)
    y_i ~ Categorical(logits = coef x_i + intercept)          (K > 2 classes),

with each observation's log-likelihood multiplied by its sample weight. For
K > 2 the K coefficient vectors are constrained to sum to zero (only their
differences enter the likelihood; see :func:`sum_to_zero_basis`). The
posterior is sampled with NUTS (or approximated with SVI) by the shared base,
in coordinates that its Laplace approximation makes close to standard normal
(see ``_laplace``), and predictions average the per-draw class probabilities:
the posterior predictive distribution.
"""

from __future__ import annotations

from numbers import Real
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.special import log_expit, log_softmax, logsumexp
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets

import core_ppl as ppl
import core_ppl.distributions as dist
from bayes_sklearn._base import (
    BaseBayesianEstimator,
    ModelInputs,
    PosteriorClassifierMixin,
    bucket_size,
)
from bayes_sklearn._laplace import laplace_approximation
from bayes_sklearn._predict import chunk_rows, glm_log_mean_proba, map_row_chunks
from core_ppl import handlers
from core_ppl.distributions import constraints

__all__ = ["BayesianLogisticRegression"]

# Padding buckets. A gradient of this model costs O(rows * features), small
# next to NUTS's per-step overhead for small data, so a generous minimum costs
# little at run time and lets data sets of different shapes share one
# compiled sampler. Every data set of at most _MIN_PADDED_ROWS rows shares a
# program with its own cross-validation folds, so a GridSearchCV on it,
# refit included, compiles once; with quarter-octave buckets alone the folds
# and the refit (4/5 vs all of the rows, for 5 folds) nearly never share one.
# 640 covers breast cancer (569 rows, folds of 455) and stays below 1024
# rows, where XLA's CPU gradient takes a slower path; the padding costs small
# data (iris) less per fit than one compile (benchmarks/model_selection.py).
_MIN_PADDED_ROWS = 640
_MIN_PADDED_FEATURES = 8
# Up to this many coefficients NUTS samples in the coordinates of the Laplace
# approximation; beyond, the coefficients are only scaled by their prior. The
# dense map costs a matrix-vector product and its gradient per leapfrog step;
# once the matrix outgrows the CPU cache (hundreds of coefficients, e.g.
# digits' 585) that costs more than the shorter trajectories save.
_MAX_LAPLACE_COEFFICIENTS = 256
# The Laplace approximation only preconditions the model. For a minibatch fit
# (batch_size set) on more rows than this, it is computed on this many evenly
# spaced rows, their weights scaled up to the total, so that its host-side
# Newton iterations do not grow with the data that SVI touches a batch at a
# time.
_MAX_LAPLACE_ROWS_MINIBATCH = 100_000


# --- the model -----------------------------------------------------------------
# A module-level function taking data and hyperparameters as arrays, so that
# the compiled sampler is reused across fits (see ``_base``). Shapes select
# the variant, statically under jit: ``mode`` of shape ``(n_columns,)`` is
# the binary model, ``(n_classes - 1, n_columns)`` the softmax one; a vector
# ``scale`` replaces the matrix when there are too many coefficients.


def sum_to_zero_basis(n_classes):
    """Orthonormal basis of the vectors of length ``n_classes`` summing to 0.

    The columns of the Helmert contrast matrix, normalized: shape
    ``(n_classes, n_classes - 1)``. If ``z`` has i.i.d. ``Normal(0, s)``
    rows, ``basis @ z`` is ``Normal(0, s)`` around zero restricted to
    class-sums of zero, the same for every class.
    """
    basis = np.zeros((n_classes, n_classes - 1))
    for j in range(1, n_classes):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -j
        basis[:, j - 1] /= np.sqrt(j * (j + 1))
    return basis


def _class_basis(n_classes):
    """Maps a row's latent outputs to its class logits (see ``_laplace``):
    the log-odds of class 1 for two classes, else the class contrasts."""
    if n_classes == 2:
        return np.array([[0.0], [1.0]])
    return sum_to_zero_basis(n_classes)


def _observe(logits, y, weight):
    """Score ``y`` given ``logits``, each row's log-likelihood times its weight.

    Rows of weight 0 (padding, or zero sample weight) are masked out; the
    others are scaled, which is the likelihood of ``weight`` copies of the row.
    """
    if logits.ndim == 1:
        likelihood = dist.Bernoulli(logits=logits)
    else:
        likelihood = dist.Categorical(logits=logits)
    is_weighted = weight > 0
    with (
        ppl.plate("data", logits.shape[0]),
        handlers.mask(mask=is_weighted),
        handlers.scale(scale=jnp.where(is_weighted, weight, 1.0)),
    ):
        ppl.sample("y", likelihood, obs=y)


def _logistic_model(design, y, weight, prior_scale, mode, scale):
    """Logistic regression, sampled in the coordinates ``z`` of ``_laplace``.

    Parameters
    ----------
    design : array of shape (n_rows, n_columns)
        Features, then a column of ones when there is an intercept.
    y : array of shape (n_rows,)
        Class index (0/1 as float for two classes, int otherwise).
    weight : array of shape (n_rows,)
        Sample weights; 0 on padding rows.
    prior_scale : array of shape (n_columns,) or (n_classes - 1, n_columns)
        Prior standard deviation of each coefficient (contrast).
    mode, scale : arrays
        The coefficients are ``mode + scale @ z`` (``mode`` shaped like
        ``prior_scale``, ``scale`` a square matrix), or ``mode + scale * z``
        for a vector ``scale``.
    """
    z = ppl.sample("z", dist.ImproperUniform(constraints.real, (), (mode.size,)))
    step = scale @ z if scale.ndim == 2 else scale * z
    coef = mode + step.reshape(mode.shape)
    # The prior is on the coefficients; z's flat reference measure and the
    # map's constant Jacobian leave it unchanged.
    ppl.factor("coef_prior", dist.Normal(0.0, prior_scale).log_prob(coef).sum())
    if mode.ndim == 2:  # class contrasts -> one coefficient vector per class
        basis = jnp.asarray(sum_to_zero_basis(mode.shape[0] + 1), coef.dtype)
        coef = basis @ coef
    _observe(design @ coef.T, y, weight)


def _design(X, fit_intercept):
    """The model's design: ``X``, zero columns up to the feature bucket, and
    a column of ones for the intercept; sparse (CSR) when ``X`` is.

    Zero columns leave the likelihood unchanged: their coefficients keep
    their prior, independent of the rest, and are trimmed after the fit. A
    sparse ``X`` stays sparse: its padding columns store nothing, and the
    intercept column adds one entry per row; nothing is centred, so nothing
    is densified.
    """
    n_rows, n_features = X.shape
    n_padded = bucket_size(n_features, _MIN_PADDED_FEATURES)
    if not sp.issparse(X):
        design = np.pad(X, [(0, 0), (0, n_padded - n_features)])
        if fit_intercept:
            design = np.hstack([design, np.ones((n_rows, 1), X.dtype)])
        return design
    csr = sp.csr_array(X)
    design = sp.csr_array(
        (csr.data, csr.indices, csr.indptr), shape=(n_rows, n_padded)
    )
    if fit_intercept:
        ones = sp.csr_array(np.ones((n_rows, 1), X.dtype))
        design = sp.hstack([design, ones], format="csr")
    return design


class _Encoding(NamedTuple):
    """What ``_model_inputs`` computed that the later hooks need.

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
        The class labels, sorted; ``y`` was encoded as their indices.
    mode, scale : ndarray
        The sampler's coordinates: coefficients ``mode + scale @ z`` (or
        ``mode + scale * z`` for a vector ``scale``), see ``_logistic_model``.
    """

    classes: np.ndarray
    mode: np.ndarray
    scale: np.ndarray


# --- the estimator ---------------------------------------------------------------


class BayesianLogisticRegression(
    ClassifierMixin, PosteriorClassifierMixin, BaseBayesianEstimator
):
    """Bayesian logistic regression with normal priors, sampled by NUTS.

    Binary problems use a Bernoulli likelihood with one coefficient vector;
    problems with more classes use a softmax (multinomial) likelihood with
    one coefficient vector per class. Predictions are posterior predictive
    probabilities: the class probabilities averaged over posterior draws.

    Parameters
    ----------
    prior_scale : float, default=1.0
        Standard deviation of the normal prior on every coefficient. Smaller
        values shrink more; on standardized features ``prior_scale=1``
        matches the L2 penalty of scikit-learn's ``LogisticRegression(C=1)``
        (see Notes).

    intercept_prior_scale : float, default=10.0
        Standard deviation of the normal prior on the intercept(s): weakly
        informative, as the intercept is usually not meant to be shrunk.

    fit_intercept : bool, default=True
        Whether to include an intercept (one per class in the softmax model).

    inference : {"nuts", "svi"}, default="nuts"
        ``"nuts"`` samples the posterior with the No-U-Turn Sampler;
        ``"svi"`` fits a mean-field normal approximation by stochastic
        variational inference and draws from it (faster, approximate).

    n_warmup : int, default=500
        NUTS warmup iterations per chain (step size and mass matrix
        adaptation); discarded.

    n_draws : int, default=1000
        Posterior draws kept per chain (or drawn from the SVI guide). With
        fewer, the R-hat check (> 1.01 warns) trips by chance more often.

    n_chains : int, default=1
        Number of NUTS chains, run vectorized in one compiled program. One
        chain is the fastest (the R-hat check then compares its two halves);
        use 2 or more to also compare chains started apart, at about 1.7
        times the run time on CPU.

    svi_steps : int, default=2000
        Adam steps of SVI; ignored by NUTS.
    batch_size : int, default=None
        Rows per SVI step: each step fits on a minibatch of ``batch_size``
        rows drawn anew without replacement, its log-likelihood scaled by
        ``n_samples / batch_size`` (an unbiased estimate of the full one), so
        that a step's cost does not grow with ``n_samples``. None, or a size
        of at least ``n_samples``, uses all rows. Needs ``inference="svi"``.

    random_state : int, RandomState instance, Generator or None, default=None
        Seeds the fit's random key. Pass an int for reproducible fits, bit
        for bit.

    verbose : int, default=0
        ``0`` is quiet; ``> 0`` shows a progress bar while sampling.
    n_devices : int, default=None
        Split the rows of the data over this many devices (None: one
        device), for NUTS and SVI alike; the posterior is the same up to
        rounding. On CPU, make the devices with
        ``core_ppl.set_host_device_count`` before JAX starts.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen during fit.

    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Posterior mean of the coefficients; one row for two classes (the
        log-odds of ``classes_[1]``), otherwise one row per class, summing to
        zero over the classes (see Notes).

    intercept_ : ndarray of shape (1,) or (n_classes,)
        Posterior mean of the intercept(s); zeros if ``fit_intercept=False``.

    posterior_samples_ : dict of str to ndarray
        Posterior draws, chains concatenated: ``"coef"`` of shape
        ``(n_chains * n_draws, n_features)`` for two classes, else
        ``(n_chains * n_draws, n_classes, n_features)``, and ``"intercept"``
        of shape ``(n_chains * n_draws,)`` or ``(n_chains * n_draws,
        n_classes)`` when ``fit_intercept=True``.

    diagnostics_ : dict
        NUTS: ``n_divergences``, ``max_r_hat``, ``min_ess`` (and
        ``inference``, ``n_chains``, ``n_draws``). SVI: ``final_elbo`` and
        the ``elbo`` trace.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit. Defined only when ``X`` has
        feature names that are all strings; they also label
        :meth:`summary`.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : Maximum a posteriori (L2
        penalized) logistic regression: a point estimate, no uncertainty.
    sklearn.linear_model.BayesianRidge : Bayesian linear regression.
    SparseInteractionRegressor : Bayesian regression with sparse pairwise
        interactions.

    Notes
    -----
    ``LogisticRegression(C=C)`` minimizes ``||w||^2 / 2 + C * NLL(w)``; the
    negative log posterior here is ``||w||^2 / (2 prior_scale^2) + NLL(w)``
    (plus the intercept prior), so ``prior_scale = sqrt(C)`` gives the same
    mode. This estimator reports the posterior *mean* and averages
    probabilities over the posterior instead of plugging in the mode, which
    tempers overconfident probabilities far from the data.

    The softmax likelihood only depends on differences between the classes'
    coefficient vectors. The model therefore samples ``n_classes - 1``
    contrast vectors with the normal prior and maps them to one vector per
    class through an orthonormal basis of the vectors summing to zero: the
    class effects are exchangeable, each with prior scale ``prior_scale``
    around the constraint, and sum to zero over the classes, as the
    coefficients of ``LogisticRegression``'s penalized multinomial loss do.
    This is the model with independent per-class priors, minus the common
    component that the data cannot inform (its predictions are identical),
    and NUTS samples it several times faster.

    Before sampling, ``fit`` finds the posterior mode by Newton's method and
    NUTS samples ``z``, with ``coefficients = mode + L z`` and ``L L^T`` the
    inverse Hessian of the negative log posterior at the mode (the Laplace
    approximation, under which ``z`` is standard normal). This changes the
    sampler's coordinates, not the posterior, and cuts the trajectories that
    correlated features call for: on standardized breast-cancer data, ~7
    leapfrog steps per draw instead of ~31 at ``prior_scale=1`` and ~15
    instead of ~130 at ``prior_scale=10``. Beyond 256 coefficients (features
    plus intercept, times ``n_classes - 1`` for more than two classes) the
    map would cost more than it saves, and NUTS samples the coefficients
    divided by their prior scale.

    ``predict``, ``predict_proba`` and ``decision_function`` all derive from
    the posterior predictive probabilities, so they always agree:
    ``decision_function`` returns their log-odds (two classes) or their
    logarithms (more classes). The linear predictor at the posterior mean is
    ``X @ coef_.T + intercept_``.

    ``X`` may be a scipy.sparse CSR or CSC matrix (one-hot encoded
    categoricals, for instance): the sampler multiplies by it as a sparse
    matrix, nothing is centred or densified, and prediction densifies one
    chunk of rows at a time.

    Rows are padded with zero-weight rows, and features with zero columns,
    up to a few bucket sizes, so that fits on data of similar shapes
    (cross-validation folds, grid points, feature selection) reuse one
    compiled sampler. The coefficients of padding columns keep their prior
    and are dropped from the results.

    References
    ----------
    A. Gelman, J. B. Carlin, H. S. Stern, D. B. Dunson, A. Vehtari and
    D. B. Rubin, Bayesian Data Analysis, 3rd edition, chapter 16, 2013.

    A. Gelman, A. Jakulin, M. G. Pittau and Y.-S. Su, A weakly informative
    default prior distribution for logistic and other regression models,
    Annals of Applied Statistics, Vol. 2, No. 4, 2008.

    M. D. Hoffman and A. Gelman, The No-U-Turn Sampler, Journal of Machine
    Learning Research, Vol. 15, 2014.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from bayes_sklearn import BayesianLogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = BayesianLogisticRegression(n_warmup=300, n_draws=400,
    ...                                  random_state=0).fit(X, y)
    >>> clf.predict(X[:2])
    array([0, 0])
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    >>> clf.predict_proba_draws(X[:2]).shape
    (400, 2, 3)
    """

    _parameter_constraints: dict = {
        **BaseBayesianEstimator._parameter_constraints,
        "prior_scale": [Interval(Real, 0, None, closed="neither")],
        "intercept_prior_scale": [Interval(Real, 0, None, closed="neither")],
        "fit_intercept": ["boolean"],
    }

    def __init__(
        self,
        *,
        prior_scale=1.0,
        intercept_prior_scale=10.0,
        fit_intercept=True,
        inference="nuts",
        n_warmup=500,
        n_draws=1000,
        n_chains=1,
        svi_steps=2000,
        batch_size=None,
        random_state=None,
        verbose=0,
        n_devices=None,
    ):
        self.prior_scale = prior_scale
        self.intercept_prior_scale = intercept_prior_scale
        self.fit_intercept = fit_intercept
        self.inference = inference
        self.n_warmup = n_warmup
        self.n_draws = n_draws
        self.n_chains = n_chains
        self.svi_steps = svi_steps
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose
        self.n_devices = n_devices

    def fit(self, X, y, sample_weight=None):
        """Sample the posterior of the coefficients given the training data.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Training data. A sparse matrix (CSR or CSC) stays sparse.
        y : array-like of shape (n_samples,)
            Class labels, of any type; at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each multiplies its sample's
            log-likelihood, as if the sample were repeated that many times.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight)

    # --- hooks of the base ---------------------------------------------------------

    _min_padded_rows = _MIN_PADDED_ROWS
    # The design stays sparse (see _design) and the model's only use of it
    # is a product, which BCOO supports.
    _accept_sparse = ("csr", "csc")

    def _get_model(self, context):
        return _logistic_model

    def _model_inputs(self, X, y, sample_weight):
        check_classification_targets(y)
        classes, y_index = np.unique(y, return_inverse=True)
        _check_two_weighted_classes(
            type(self).__name__, classes, y_index, sample_weight
        )
        n_classes = classes.shape[0]
        design = _design(X, self.fit_intercept)
        n_outputs = 1 if n_classes == 2 else n_classes - 1
        prior_scale = np.full((n_outputs, design.shape[1]), float(self.prior_scale))
        if self.fit_intercept:
            prior_scale[:, -1] = self.intercept_prior_scale
        mode, scale = np.zeros_like(prior_scale), prior_scale.reshape(-1)
        if prior_scale.size <= _MAX_LAPLACE_COEFFICIENTS:
            rows, weight = _laplace_rows(
                design.shape[0], sample_weight, self.batch_size
            )
            try:
                mode, scale = laplace_approximation(
                    design[rows].astype(np.float64),
                    y_index[rows],
                    weight,
                    prior_scale,
                    _class_basis(n_classes),
                )
            except np.linalg.LinAlgError:
                # The Hessian is singular in floating point (a prior too weak
                # for the data to pin every direction): keep the prior scale.
                pass
        if n_classes == 2:
            mode, prior_scale = mode[0], prior_scale[0]
        y_obs = y_index.astype(np.float64 if n_classes == 2 else np.int32)
        return ModelInputs(
            rows=(design, y_obs),
            hyperparameters=(prior_scale, mode, scale),
            context=_Encoding(classes=classes, mode=mode, scale=scale),
        )

    def _trim_draws(self, grouped, context):
        # z -> coefficients (see _logistic_model); softmax contrasts -> one
        # effect per class; padding columns dropped, the intercept split off.
        mode, scale = context.mode, context.scale
        z = grouped["z"].astype(np.float64)
        step = z @ scale.T if scale.ndim == 2 else z * scale
        coef = mode + step.reshape(z.shape[:2] + mode.shape)
        if context.classes.shape[0] > 2:
            basis = sum_to_zero_basis(context.classes.shape[0])
            coef = np.einsum("kj,cdjf->cdkf", basis, coef)
        dtype = grouped["z"].dtype
        draws = {"coef": coef[..., : self.n_features_in_].astype(dtype)}
        if self.fit_intercept:
            draws["intercept"] = coef[..., -1].astype(dtype)
        return draws

    def _set_fitted_attributes(self, context):
        self.classes_ = context.classes
        n_outputs = 1 if self.classes_.shape[0] == 2 else self.classes_.shape[0]
        coef = self.posterior_samples_["coef"].mean(axis=0, dtype=np.float64)
        self.coef_ = coef.reshape(n_outputs, -1)
        if self.fit_intercept:
            intercept = self.posterior_samples_["intercept"]
            self.intercept_ = intercept.mean(axis=0, dtype=np.float64).reshape(-1)
        else:
            self.intercept_ = np.zeros(n_outputs)

    def _parameter_labels(self):
        features = self._feature_labels()
        if self.classes_.shape[0] == 2:
            return {"coef": (features,)}
        return {"coef": (self.classes_, features), "intercept": (self.classes_,)}

    # --- prediction ------------------------------------------------------------------

    def _log_proba_draws(self, X):
        """Per-draw log class probabilities of validated ``X`` (dense or
        sparse): shape ``(n_draws_total, n_samples, n_classes)``."""
        coef = self.posterior_samples_["coef"].astype(np.float64)
        intercept = self.posterior_samples_.get("intercept")
        n_draws, n_features = coef.shape[0], coef.shape[-1]
        # X on the left, so that a sparse X stays sparse: (rows, draws * outputs).
        logits = np.asarray(X @ coef.reshape(-1, n_features).T)
        logits = logits.reshape(X.shape[0], n_draws, -1).transpose(1, 0, 2)
        if intercept is not None:
            logits += intercept.reshape(n_draws, 1, -1)
        if coef.ndim == 2:  # binary: the log-odds of class 1
            logits = logits[..., 0]
            return np.stack([log_expit(-logits), log_expit(logits)], axis=-1)
        return log_softmax(logits, axis=-1)

    def predict_log_proba(self, X):
        """Log of the posterior predictive class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``log mean_draws p(class | x, draw)``, columns ordered as
            ``classes_``.
        """
        X = self._validate_X_predict(X)
        coef = jnp.asarray(self.posterior_samples_["coef"], jnp.float32)
        intercept = self.posterior_samples_.get("intercept")
        if intercept is None:
            intercept = np.zeros(coef.shape[:-1])
        intercept = jnp.asarray(intercept, jnp.float32)
        chunk = chunk_rows(coef.shape[0], len(self.classes_), X.shape[1])
        # One compiled pass per chunk of rows (see _predict): float32, and
        # no (draws, rows, classes) array beyond one chunk's.
        log_proba = map_row_chunks(glm_log_mean_proba, X, chunk, coef, intercept)
        log_proba = log_proba.astype(np.float64)
        # Renormalized in float64, so that the probabilities sum to 1 to the
        # last bit and not only to float32 rounding.
        return log_proba - logsumexp(log_proba, axis=1, keepdims=True)

    def predict_proba_draws(self, X):
        """Class probabilities under each posterior draw, for uncertainty.

        Their mean over the first axis is :meth:`predict_proba`; their
        spread shows how sure the model is about each probability.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        ndarray of shape (n_chains * n_draws, n_samples, n_classes)
            ``p(class | x, draw)`` for every draw.
        """
        return np.exp(self._log_proba_draws(self._validate_X_predict(X)))

    def decision_function(self, X):
        """Confidence scores consistent with :meth:`predict`.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the log-odds of ``classes_[1]`` under the
            posterior predictive distribution (positive means
            ``classes_[1]``). Otherwise the log posterior predictive
            probability of each class.
        """
        log_proba = self.predict_log_proba(X)
        if log_proba.shape[1] == 2:
            return log_proba[:, 1] - log_proba[:, 0]
        return log_proba


def _laplace_rows(n_rows, sample_weight, batch_size):
    """The rows the Laplace approximation is computed on, and their weights:
    all of them, or for a minibatch fit on many rows an evenly spaced subset
    whose weights are scaled by ``n_rows / subset size`` (an unbiased
    estimate of the log-likelihood's sum, as for the minibatches)."""
    if batch_size is None or n_rows <= _MAX_LAPLACE_ROWS_MINIBATCH:
        return slice(None), sample_weight
    rows = np.linspace(0, n_rows - 1, _MAX_LAPLACE_ROWS_MINIBATCH).astype(np.intp)
    return rows, sample_weight[rows] * (n_rows / rows.size)


def _check_two_weighted_classes(name, classes, y_index, sample_weight):
    """Raise a ValueError naming the classes unless two of them carry weight."""
    if classes.shape[0] < 2:
        raise ValueError(
            f"{name} needs samples of at least 2 classes in the data, but the "
            f"data contains only one class: {classes[0]}"
        )
    weighted = np.unique(y_index[sample_weight > 0])
    if weighted.shape[0] < 2:
        raise ValueError(
            f"{name} needs samples of at least 2 classes with positive "
            f"sample_weight, but only class {classes[weighted[0]]} has any"
        )

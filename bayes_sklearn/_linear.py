"""Bayesian linear and Poisson regression, made with the public ModelRegressor.

The linear model is scikit-learn's ``BayesianRidge`` with its hyperpriors made part
of the posterior instead of maximized (Tipping 2001, MacKay 1992):

    lambda ~ Gamma(lambda_1, lambda_2),  coef ~ Normal(0, 1 / sqrt(lambda)),
    alpha ~ Gamma(alpha_1, alpha_2),     intercept ~ flat,
    y_i ~ Normal(x_i . coef + intercept, 1 / sqrt(alpha))
          or StudentT(df, x_i . coef + intercept, 1 / sqrt(alpha)).

With the default Gamma(1e-6, 1e-6) hyperpriors (those of ``BayesianRidge``)
the prior is nearly scale free, so no standardization is needed. Everything
else (padding, sample weights, prediction, the summary) is the public base's
(see ``_model``): each estimator is its model function and its docstring.
Poisson regression is the log-link GLM for counts with normal priors.
"""

from __future__ import annotations

from numbers import Real

import jax.numpy as jnp
import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

import core_ppl as ppl
import core_ppl.distributions as dist
from bayes_sklearn._base import BaseBayesianEstimator
from bayes_sklearn._model import ModelRegressor
from core_ppl.distributions import constraints

__all__ = ["BayesianLinearRegression", "BayesianPoissonRegressor"]


def linear_regression_model(
    X,
    y=None,
    *,
    noise="normal",
    df=4.0,
    fit_intercept=True,
    alpha_1=1e-6,
    alpha_2=1e-6,
    lambda_1=1e-6,
    lambda_2=1e-6,
):
    """Linear regression with Gamma hyperpriors on both precisions."""
    n_features = X.shape[1]
    lambda_ = ppl.sample("lambda", dist.Gamma(lambda_1, lambda_2))
    coef = ppl.sample(
        "coef",
        dist.Normal(0.0, 1.0 / jnp.sqrt(lambda_)).expand((n_features,)).to_event(1),
    )
    alpha = ppl.sample("alpha", dist.Gamma(alpha_1, alpha_2))
    mean = X @ coef
    if fit_intercept:
        mean = mean + ppl.sample(
            "intercept", dist.ImproperUniform(constraints.real, (), ())
        )
    scale = 1.0 / jnp.sqrt(alpha)
    if noise == "normal":
        likelihood = dist.Normal(mean, scale)
    else:
        likelihood = dist.StudentT(df, mean, scale)
    with ppl.plate("rows", X.shape[0]):
        ppl.sample("y", likelihood, obs=y)


class BayesianLinearRegression(ModelRegressor, model=linear_regression_model):
    """Bayesian linear regression: BayesianRidge's model, sampled by NUTS.

    Normal noise, or Student-t noise (``noise="student_t"``) for a fit that
    outliers in ``y`` do not drag. The precisions of the coefficients and of
    the noise get Gamma hyperpriors and are sampled with the coefficients,
    instead of being set to their evidence maximum as ``BayesianRidge``
    does, so their uncertainty reaches the predictions.

    Parameters
    ----------
    noise : {"normal", "student_t"}, default="normal"
        Distribution of the noise.
    df : float, default=4.0
        Degrees of freedom of the Student-t noise (> 1); smaller is more
        robust. The predictive sd is infinite for ``df <= 2``.
    fit_intercept : bool, default=True
        Whether to fit an intercept (flat prior).
    alpha_1, alpha_2 : float, default=1e-6
        Shape and rate of the Gamma prior on the noise precision ``alpha``.
    lambda_1, lambda_2 : float, default=1e-6
        Shape and rate of the Gamma prior on the coefficients' precision.
    inference : {"nuts", "svi"}, default="nuts"
        ``"nuts"`` samples the posterior; ``"svi"`` fits a mean-field normal
        approximation and draws from it.
    n_warmup : int, default=500
        NUTS warmup iterations per chain; discarded.
    n_draws : int, default=1000
        Posterior draws kept per chain (or drawn from the SVI guide).
    n_chains : int, default=1
        Number of NUTS chains, run vectorized.
    svi_steps : int, default=2000
        Adam steps of SVI; ignored by NUTS.
    batch_size : int, default=None
        Rows per SVI step: each step fits on a minibatch of ``batch_size``
        rows drawn anew without replacement, its log-likelihood scaled by
        ``n_samples / batch_size`` (an unbiased estimate of the full one), so
        that a step's cost does not grow with ``n_samples``. None, or a size
        of at least ``n_samples``, uses all rows. Needs ``inference="svi"``.
    random_state : int, RandomState instance, Generator or None, default=None
        Seeds the fit's random key; an int makes fits reproducible.
    verbose : int, default=0
        ``0`` is quiet; ``> 0`` shows a progress bar while sampling.
    n_devices : int, default=None
        Split the rows of the data over this many devices (None: one
        device), for NUTS and SVI alike; the posterior is the same up to
        rounding. On CPU, make the devices with
        ``core_ppl.set_host_device_count`` before JAX starts.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Posterior mean of the coefficients.
    intercept_ : float
        Posterior mean of the intercept (0 when ``fit_intercept=False``).
    posterior_samples_ : dict of str to ndarray
        Draws of ``coef``, ``lambda``, ``alpha`` and ``intercept``, chains
        concatenated, draws first.
    diagnostics_ : dict
        Convergence facts (see ``BaseBayesianEstimator``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.linear_model.BayesianRidge : The same model with the precisions
        set to their evidence maximum.
    ModelRegressor : The public base this estimator is made with.

    Notes
    -----
    ``predict(X, return_std=True)`` returns the mean and sd of the posterior
    predictive distribution of a new observation, noise included.

    ``X`` may be a scipy.sparse CSR or CSC matrix: the sampler multiplies by
    it as a sparse matrix (nothing is centred or densified).

    References
    ----------
    M. E. Tipping, Sparse Bayesian Learning and the Relevance Vector
    Machine, Journal of Machine Learning Research, Vol. 1, 2001.

    D. J. C. MacKay, Bayesian Interpolation, Computation and Neural
    Systems, Vol. 4, No. 3, 1992.

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_sklearn import BayesianLinearRegression
    >>> X = np.linspace(-1, 1, 30)[:, None]
    >>> y = 2 * X[:, 0] + 1 + 0.1 * np.cos(7 * X[:, 0])
    >>> reg = BayesianLinearRegression(n_warmup=200, n_draws=300,
    ...                                random_state=0).fit(X, y)
    >>> np.round(reg.coef_, 1), round(reg.intercept_, 1)
    (array([2.]), 1.0)
    >>> mean, std = reg.predict(X[:2], return_std=True)
    """

    _parameter_constraints: dict = {
        **BaseBayesianEstimator._parameter_constraints,
        "noise": [StrOptions({"normal", "student_t"})],
        "df": [Interval(Real, 1, None, closed="neither")],
        "fit_intercept": ["boolean"],
        "alpha_1": [Interval(Real, 0, None, closed="neither")],
        "alpha_2": [Interval(Real, 0, None, closed="neither")],
        "lambda_1": [Interval(Real, 0, None, closed="neither")],
        "lambda_2": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        noise="normal",
        df=4.0,
        fit_intercept=True,
        alpha_1=1e-6,
        alpha_2=1e-6,
        lambda_1=1e-6,
        lambda_2=1e-6,
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
        self.noise = noise
        self.df = df
        self.fit_intercept = fit_intercept
        self.alpha_1 = alpha_1
        self.alpha_2 = alpha_2
        self.lambda_1 = lambda_1
        self.lambda_2 = lambda_2
        self.inference = inference
        self.n_warmup = n_warmup
        self.n_draws = n_draws
        self.n_chains = n_chains
        self.svi_steps = svi_steps
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose
        self.n_devices = n_devices

    # The model's only use of X is X @ coef, which a BCOO matrix supports:
    # a sparse X stays sparse in fit, and prediction densifies one chunk of
    # rows at a time.
    _accept_sparse = ("csr", "csc")

    def _set_fitted_attributes(self, context):
        super()._set_fitted_attributes(context)
        self.coef_, self.intercept_ = _posterior_mean_line(self.posterior_samples_)

    def _parameter_labels(self):
        return {"coef": (self._feature_labels(),)}


def _posterior_mean_line(samples):
    """``coef_`` and ``intercept_``: posterior means (intercept 0 if absent)."""
    coef = samples["coef"].mean(axis=0, dtype=np.float64)
    intercept = samples.get("intercept")
    return coef, 0.0 if intercept is None else float(intercept.mean(dtype=np.float64))


# --- Poisson regression ----------------------------------------------------------


def poisson_regression_model(
    X, y=None, *, prior_scale=1.0, intercept_prior_scale=10.0, fit_intercept=True
):
    """Poisson regression with a log link and normal priors."""
    coef = ppl.sample(
        "coef", dist.Normal(0.0, prior_scale).expand((X.shape[1],)).to_event(1)
    )
    log_rate = X @ coef
    if fit_intercept:
        log_rate = log_rate + ppl.sample(
            "intercept", dist.Normal(0.0, intercept_prior_scale)
        )
    with ppl.plate("rows", X.shape[0]):
        ppl.sample("y", dist.Poisson(jnp.exp(log_rate)), obs=y)


class BayesianPoissonRegressor(ModelRegressor, model=poisson_regression_model):
    """Bayesian Poisson regression (log link) for counts, sampled by NUTS.

    ``y_i ~ Poisson(exp(x_i . coef + intercept))`` with independent normal
    priors; predictions are posterior predictive means (and sds).

    Parameters
    ----------
    prior_scale : float, default=1.0
        Standard deviation of the normal prior on every coefficient. The
        posterior mode is ``PoissonRegressor(alpha)``'s solution for
        ``alpha = 1 / (n_samples * prior_scale**2)`` (its loss is a mean
        over the samples), so a large ``prior_scale`` approaches the
        unpenalized fit.
    intercept_prior_scale : float, default=10.0
        Standard deviation of the normal prior on the intercept.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    inference : {"nuts", "svi"}, default="nuts"
        ``"nuts"`` samples the posterior; ``"svi"`` fits a mean-field normal
        approximation and draws from it.
    n_warmup : int, default=500
        NUTS warmup iterations per chain; discarded.
    n_draws : int, default=1000
        Posterior draws kept per chain (or drawn from the SVI guide).
    n_chains : int, default=1
        Number of NUTS chains, run vectorized.
    svi_steps : int, default=2000
        Adam steps of SVI; ignored by NUTS.
    batch_size : int, default=None
        Rows per SVI step: each step fits on a minibatch of ``batch_size``
        rows drawn anew without replacement, its log-likelihood scaled by
        ``n_samples / batch_size`` (an unbiased estimate of the full one), so
        that a step's cost does not grow with ``n_samples``. None, or a size
        of at least ``n_samples``, uses all rows. Needs ``inference="svi"``.
    random_state : int, RandomState instance, Generator or None, default=None
        Seeds the fit's random key; an int makes fits reproducible.
    verbose : int, default=0
        ``0`` is quiet; ``> 0`` shows a progress bar while sampling.
    n_devices : int, default=None
        Split the rows of the data over this many devices (None: one
        device), for NUTS and SVI alike; the posterior is the same up to
        rounding. On CPU, make the devices with
        ``core_ppl.set_host_device_count`` before JAX starts.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Posterior mean of the coefficients (log rate ratios).
    intercept_ : float
        Posterior mean of the intercept (0 when ``fit_intercept=False``).
    posterior_samples_ : dict of str to ndarray
        Draws of ``coef`` and ``intercept``, chains concatenated.
    diagnostics_ : dict
        Convergence facts (see ``BaseBayesianEstimator``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.linear_model.PoissonRegressor : The posterior mode (L2
        penalized maximum likelihood).
    ModelRegressor : The public base this estimator is made with.

    Notes
    -----
    Features are used as given: standardize them (``StandardScaler``) so
    that one prior scale suits every coefficient and ``exp`` cannot
    overflow while the sampler adapts.

    ``X`` may be a scipy.sparse CSR or CSC matrix: the sampler multiplies by
    it as a sparse matrix (nothing is centred or densified; scale sparse
    columns with ``MaxAbsScaler``, which keeps them sparse).

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_sklearn import BayesianPoissonRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 1))
    >>> y = rng.poisson(np.exp(0.5 * X[:, 0] + 1.0))
    >>> reg = BayesianPoissonRegressor(n_warmup=200, n_draws=300,
    ...                                random_state=0).fit(X, y)
    >>> np.round(reg.coef_, 1), round(reg.intercept_, 1)
    (array([0.5]), 1.0)
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags

    def _model_inputs(self, X, y, sample_weight):
        if np.any(y < 0):
            raise ValueError(
                f"{type(self).__name__}: y holds counts and must be non-negative, "
                f"got min(y) = {y.min()}"
            )
        return super()._model_inputs(X, y, sample_weight)

    # The model's only use of X is X @ coef, which a BCOO matrix supports:
    # a sparse X stays sparse in fit, and prediction densifies one chunk of
    # rows at a time.
    _accept_sparse = ("csr", "csc")

    def _set_fitted_attributes(self, context):
        super()._set_fitted_attributes(context)
        self.coef_, self.intercept_ = _posterior_mean_line(self.posterior_samples_)

    def _parameter_labels(self):
        return {"coef": (self._feature_labels(),)}

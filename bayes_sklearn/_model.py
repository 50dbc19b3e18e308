"""Your own core_ppl model as a scikit-learn estimator.

A model is a plain function ``model(X, y=None, *, hyper=default, ...)`` that
observes the response at one sample site (``"y"`` unless told otherwise).
:func:`make_estimator` (or subclassing :class:`ModelRegressor` /
:class:`ModelClassifier` with ``model=``) turns it into an estimator class
whose constructor parameters are the model's keyword-only hyperparameters
next to the shared inference ones. Everything else is the shared base's:

- ``fit`` pads the rows to a bucket and passes the float hyperparameters as
  arrays to one cached wrapper of the model per (model, response, other
  hyperparameters), so folds and grid points reuse one compiled sampler;
- ``sample_weight`` scales the response site's log-likelihood through a
  handler (:class:`weigh_site`), zero weight masking the padding rows: the
  model's author writes nothing for it;
- prediction traces the model with each posterior draw substituted and
  ``y=None``, and averages the response site's distribution over draws
  (its mean and variance for a regressor, its class probabilities for a
  classifier), in one compiled, vectorized pass per chunk of rows.

Float (or float array) defaults mark hyperparameters that travel as arrays;
the others (ints, booleans, strings, None) are fixed at trace time, so each
of their values is a program of its own. A classifier's model that takes a
keyword-only ``n_classes`` receives the number of classes seen in fit (not a
constructor parameter).
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets

from bayes_sklearn._base import (
    BaseBayesianEstimator,
    ModelInputs,
    PosteriorClassifierMixin,
    _as_jax,
    _jax_key,
    _pad_rows,
    _rows_as_jax,
    bucket_size,
)
from bayes_sklearn._predict import chunk_rows, map_row_chunks
from core_ppl import handlers
from core_ppl.jit import jit
from core_ppl.runtime import Messenger

__all__ = ["ModelClassifier", "ModelRegressor", "make_estimator", "weigh_site"]

# The constructor parameters every model estimator has, with their defaults
# (those of the built-in estimators).
INFERENCE_DEFAULTS = {
    "inference": "nuts",
    "n_warmup": 500,
    "n_draws": 1000,
    "n_chains": 1,
    "svi_steps": 2000,
    "batch_size": None,
    "random_state": None,
    "verbose": 0,
    "n_devices": None,
}
# A classifier hands the number of classes to a model that asks for it.
_N_CLASSES = "n_classes"


# --- the weighting handler -----------------------------------------------------


class weigh_site(Messenger):
    """Multiply one sample site's log density by per-row weights.

    Rows of weight 0 are masked out (so padding rows and rows of zero
    ``sample_weight`` contribute nothing, whatever their values); the
    others are scaled: the log-likelihood of ``weight`` copies of the row.

    Parameters
    ----------
    fn : callable, optional
        The model to wrap.
    site : str
        Name of the sample site to weigh; other sites are untouched.
    weight : array of shape (n_rows,)
        Non-negative weights, broadcast against the site's batch shape.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import core_ppl as ppl
    >>> import core_ppl.distributions as dist
    >>> from core_ppl.infer.util import log_density
    >>> def model(y):
    ...     ppl.sample("y", dist.Normal(0.0, 1.0), obs=y)
    >>> y = jnp.array([0.0, 1.0])
    >>> weighted = weigh_site(model, site="y", weight=jnp.array([2.0, 0.0]))
    >>> bool(log_density(weighted, (y,), {}, {})[0] == 2 * dist.Normal(
    ...     0.0, 1.0).log_prob(0.0))
    True
    """

    def __init__(self, fn=None, site="y", weight=None):
        self.site = site
        self.weight = weight
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] != "sample" or msg["name"] != self.site:
            return
        is_weighted = self.weight > 0
        msg["fn"] = msg["fn"].mask(is_weighted)
        msg["mask"] = is_weighted if msg["mask"] is None else msg["mask"] & is_weighted
        scale = jnp.where(is_weighted, self.weight, 1.0)
        msg["scale"] = scale if msg["scale"] is None else scale * msg["scale"]


# --- the model's hyperparameters ---------------------------------------------------


class Hyperparameters(NamedTuple):
    """The keyword-only hyperparameters of a model, by how they travel.

    Attributes
    ----------
    defaults : dict
        Name -> default, in the model's order (``n_classes`` excluded).
    traced : tuple of str
        Names with a float (array) default: passed as arrays, so a new
        value reuses the compiled program.
    takes_n_classes : bool
        Whether the model takes ``n_classes`` (filled in by classifiers).
    """

    defaults: dict
    traced: tuple
    takes_n_classes: bool


def _is_float_default(value):
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    return isinstance(value, (float, np.floating))


def model_hyperparameters(model):
    """Read a model's hyperparameters from its signature.

    Parameters
    ----------
    model : callable
        ``model(X, y=None, *, hyper=default, ...)``.

    Returns
    -------
    Hyperparameters
        Its keyword-only parameters with their defaults.

    Raises
    ------
    TypeError
        When ``model`` is not a callable of that shape, or a keyword-only
        parameter has no default.
    ValueError
        When a hyperparameter's name is one of the inference parameters.
    """
    if not callable(model):
        raise TypeError(f"model must be a callable, got {type(model).__name__}")
    parameters = list(inspect.signature(model).parameters.values())
    positional = [
        p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) != 2 or positional[1].default is not None:
        raise TypeError(
            f"model {model.__name__!r} must take exactly two positional "
            "parameters, X and y=None, then keyword-only hyperparameters; got "
            f"the signature {inspect.signature(model)}"
        )
    defaults, takes_n_classes = {}, False
    for p in parameters:
        if p.kind != p.KEYWORD_ONLY:
            continue
        if p.name == _N_CLASSES:
            takes_n_classes = True
        elif p.default is p.empty:
            raise TypeError(
                f"model {model.__name__!r}: the hyperparameter {p.name!r} needs a "
                "default value (it becomes a constructor parameter)"
            )
        elif p.name in INFERENCE_DEFAULTS:
            raise ValueError(
                f"model {model.__name__!r}: the hyperparameter {p.name!r} has the "
                "name of an inference parameter; rename it"
            )
        else:
            defaults[p.name] = p.default
    traced = tuple(name for name, v in defaults.items() if _is_float_default(v))
    return Hyperparameters(defaults, traced, takes_n_classes)


def _split_values(estimator, hyper, n_classes):
    """(traced values as float arrays, static items as a hashable tuple)."""
    traced = []
    for name in hyper.traced:
        value = getattr(estimator, name)
        try:
            traced.append(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(
                f"{type(estimator).__name__}: {name} must be a float or an array "
                f"of floats, got {value!r}"
            ) from None
    static = [
        (name, getattr(estimator, name))
        for name in hyper.defaults
        if name not in hyper.traced
    ]
    if hyper.takes_n_classes:
        static.append((_N_CLASSES, n_classes))
    static = tuple(static)
    try:
        hash(static)
    except TypeError:
        raise TypeError(
            f"{type(estimator).__name__}: non-float hyperparameters must be "
            f"hashable (they select the compiled program), got {dict(static)}"
        ) from None
    return tuple(traced), static


# --- module-level wrappers: one identity per program ---------------------------------
# The inference drivers and jit key their compiled programs on the model
# function's identity, so each wrapper is made once per (model, response,
# traced names, static values) and reused by every fit.


@functools.cache
def _training_model(model, response, traced, static):
    def training_model(X, y, weight, *values):
        with weigh_site(site=response, weight=weight):
            model(X, y, **dict(zip(traced, values)), **dict(static))

    training_model.__qualname__ = f"training_model[{model.__qualname__}]"
    return training_model


@functools.cache
def _prediction_model(model, traced, static):
    def prediction_model(X, *values):
        model(X, None, **dict(zip(traced, values)), **dict(static))

    prediction_model.__qualname__ = f"prediction_model[{model.__qualname__}]"
    return prediction_model


def _response_site(model, response, draw, rng_key, X, values):
    """The response site of ``model(X)`` with the latent sites set to ``draw``."""
    conditioned = handlers.seed(handlers.substitute(model, data=draw), rng_key)
    model_trace = handlers.trace(conditioned).get_trace(X, *values)
    if response not in model_trace:
        raise ValueError(f"the model has no sample site named {response!r}")
    return model_trace[response]


def _moments_per_draw(draws, keys, X, values, *, model, response):
    """Mean and variance of the response distribution under each draw."""

    def one_draw(draw, rng_key):
        fn = _response_site(model, response, draw, rng_key, X, values)["fn"]
        shape = fn.batch_shape + fn.event_shape
        return jnp.broadcast_to(fn.mean, shape), jnp.broadcast_to(fn.variance, shape)

    return jax.vmap(one_draw)(draws, keys)


def _log_proba_per_draw(draws, keys, X, values, *, model, response, n_classes):
    """Log probability of each class index under each draw."""

    def one_draw(draw, rng_key):
        fn = _response_site(model, response, draw, rng_key, X, values)["fn"]
        index = jnp.ones(X.shape[0], jnp.int32)
        return jnp.stack([fn.log_prob(k * index) for k in range(n_classes)], -1)

    return jax.vmap(one_draw)(draws, keys)


# The compiled programs of prediction, one call per chunk of rows (see
# _predict): each averages over the draws inside, so only one chunk's
# (draws, rows) values ever exist. X comes last, as map_row_chunks passes it.


@functools.partial(jit, static_argnames=("model", "response"))
def _predictive_moments(draws, keys, values, X, *, model, response):
    """Posterior predictive mean and variance of the response of each row:
    the mean of the draws' means, and the variance of the mixture."""
    means, variances = _moments_per_draw(
        draws, keys, X, values, model=model, response=response
    )
    mean = means.mean(axis=0)
    # Two passes (mean, then squared deviations): no cancellation in float32.
    spread = jnp.square(means - mean).mean(axis=0)
    return mean, variances.mean(axis=0) + spread


@functools.partial(jit, static_argnames=("model", "response", "n_classes"))
def _predictive_log_proba(draws, keys, values, X, *, model, response, n_classes):
    """``log mean_draws p(class | x, draw)`` of each row, renormalized."""
    log_proba = _log_proba_per_draw(
        draws, keys, X, values, model=model, response=response, n_classes=n_classes
    )
    log_mean = jax.nn.logsumexp(log_proba, axis=0) - jnp.log(log_proba.shape[0])
    # Renormalize: a model may leave a little mass outside the classes.
    return log_mean - jax.nn.logsumexp(log_mean, axis=1, keepdims=True)


@functools.partial(jit, static_argnames=("model", "response"))
def _response_draws(draws, keys, values, X, *, model, response):
    """One draw of the response under each posterior draw: rows first."""

    def one_draw(draw, rng_key):
        return _response_site(model, response, draw, rng_key, X, values)["value"]

    return jnp.moveaxis(jax.vmap(one_draw)(draws, keys), 0, 1)


def _check_response_site(model, response, args):
    """ValueError unless ``response`` is an observed site scored per row.

    Traced abstractly (``jax.eval_shape``): nothing is computed.
    """
    found = {}

    def feasible(site):
        # A feasible value for every latent site: an improper prior
        # (ImproperUniform) cannot be sampled.
        if site["type"] != "sample" or site["is_observed"]:
            return None
        return site["fn"].support.feasible_like(jnp.zeros(site["fn"].shape()))

    def probe(*args):
        substituted = handlers.substitute(model, substitute_fn=feasible)
        seeded = handlers.seed(substituted, jax.random.PRNGKey(0))
        site = handlers.trace(seeded).get_trace(*args).get(response)
        if site is None or site["type"] != "sample":
            raise ValueError(f"no sample site named {response!r}")
        found["observed"] = site["is_observed"]
        found["shape"] = jnp.shape(site["fn"].log_prob(site["value"]))

    try:
        jax.eval_shape(probe, *args)
    except ValueError as error:
        if response not in str(error):
            raise
        raise ValueError(
            f"the model has no sample site named {response!r}: pass the name of "
            "the site that observes y as response="
        ) from None
    n_rows = args[0].shape[0]
    if not found["observed"] or found["shape"] != (n_rows,):
        raise ValueError(
            f"the model's site {response!r} must observe y (obs=y) with one "
            f"log-likelihood term per row, shape ({n_rows},); got observed="
            f"{found['observed']} and shape {found['shape']}"
        )


# --- the shared estimator ----------------------------------------------------------


class _Fitted(NamedTuple):
    """What fit hands from ``_model_inputs`` to ``_set_fitted_attributes``.

    Attributes
    ----------
    traced : tuple of ndarray
        The values of the traced hyperparameters.
    static : tuple of (str, object)
        The other hyperparameters (and ``n_classes``).
    classes : ndarray or None
        Class labels (classifiers only).
    """

    traced: tuple
    static: tuple
    classes: np.ndarray | None = None


def _make_init(defaults):
    """A keyword-only ``__init__`` over ``defaults`` that only assigns, with a
    real signature (scikit-learn's ``get_params`` reads it)."""

    def __init__(self, **params):
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword arguments {unknown}"
            )
        for name, default in defaults.items():
            setattr(self, name, params.get(name, default))

    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = inspect.Signature(
        [self_param]
        + [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in defaults.items()
        ]
    )
    return __init__


class _ModelEstimator(BaseBayesianEstimator):
    """The machinery shared by :class:`ModelRegressor` and
    :class:`ModelClassifier`; see those."""

    _model = None
    _response = "y"
    _hyperparameters = Hyperparameters({}, (), False)

    def __init_subclass__(cls, model=None, response=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if response is not None:
            if not isinstance(response, str):
                raise TypeError(f"response must be a str, got {response!r}")
            cls._response = response
        if model is None:
            return
        hyper = model_hyperparameters(model)
        cls._model = staticmethod(model)
        cls._hyperparameters = hyper
        if "__init__" not in cls.__dict__:
            cls.__init__ = _make_init({**hyper.defaults, **INFERENCE_DEFAULTS})
        cls._parameter_constraints = {
            **BaseBayesianEstimator._parameter_constraints,
            # Validated in fit instead (floats must convert to arrays, the
            # others are the model's business), unless the class declares
            # constraints of its own.
            **{name: "no_validation" for name in hyper.defaults},
            **cls.__dict__.get("_parameter_constraints", {}),
        }

    # --- hooks of the base ---------------------------------------------------------

    def _get_model(self, context):
        return _training_model(
            type(self)._model,
            self._response,
            self._hyperparameters.traced,
            context.static,
        )

    def _fit(self, X, y, sample_weight=None):
        if type(self)._model is None:
            raise TypeError(
                f"{type(self).__name__} has no model: subclass it with "
                "model=<function>, or use make_estimator"
            )
        return super()._fit(X, y, sample_weight)

    def __reduce_ex__(self, protocol):
        # A class made by make_estimator is re-created from its model on
        # unpickling, so instances pickle wherever the model is importable.
        made_by = type(self).__dict__.get("_made_by")
        if made_by is None:
            return super().__reduce_ex__(protocol)
        return _new_instance, made_by, self.__getstate__()

    def _encode(self, X, y_rows, n_classes, classes):
        traced, static = _split_values(self, self._hyperparameters, n_classes)
        context = _Fitted(traced=traced, static=static, classes=classes)
        n_padded = bucket_size(X.shape[0], self._min_padded_rows)
        probe_args = (
            _rows_as_jax(X, n_padded),  # BCOO for a sparse X (_accept_sparse)
            _as_jax(_pad_rows(y_rows, n_padded)),
            _as_jax(np.ones(n_padded)),
            *(_as_jax(v) for v in traced),
        )
        _check_response_site(self._get_model(context), self._response, probe_args)
        return ModelInputs(rows=(X, y_rows), hyperparameters=traced, context=context)

    def _set_fitted_attributes(self, context):
        # Kept for prediction: the hyperparameters the posterior was fitted with.
        self._fitted_with = context

    def _parameter_labels(self):
        # A vector site with one element per feature is, in nearly every
        # model, a coefficient per feature: label it by the feature names.
        features = self._feature_labels()
        return {
            name: (features,)
            for name, value in self.posterior_samples_.items()
            if value.shape[1:] == (self.n_features_in_,)
        }

    # --- prediction over draws -----------------------------------------------------

    def _prediction_args(self):
        context = self._fitted_with
        model = _prediction_model(
            type(self)._model, self._hyperparameters.traced, context.static
        )
        return model, tuple(_as_jax(v) for v in context.traced)

    def _over_chunks(self, kernel, X, draws, keys, n_outputs=1, **static):
        """``kernel(draws, keys, values, chunk, ...)`` over fixed-size chunks
        of the rows of ``X`` (see ``_predict``); results concatenated along
        their first axis, the rows."""
        model, values = self._prediction_args()
        draws = {name: jnp.asarray(value) for name, value in draws.items()}
        n_draws = keys.shape[0]
        chunk = chunk_rows(n_draws, n_outputs, X.shape[1])
        return map_row_chunks(
            kernel,
            X,
            chunk,
            draws,
            keys,
            values,
            model=model,
            response=self._response,
            **static,
        )

    def _all_draws(self):
        n_total = next(iter(self.posterior_samples_.values())).shape[0]
        keys = jax.random.split(jax.random.PRNGKey(0), n_total)
        return self.posterior_samples_, keys

    def sample_posterior_predictive(self, X, n_draws=100, *, random_state=None):
        """Draws of the response from the posterior predictive distribution.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Input data.
        n_draws : int, default=100
            Number of draws; each uses one posterior draw (chosen without
            replacement when there are enough, else with replacement).
        random_state : int, RandomState instance, Generator or None, default=None
            Seeds the choice of posterior draws and the response noise.

        Returns
        -------
        ndarray of shape (n_draws, n_samples)
            Simulated responses (class labels for a classifier).
        """
        X = self._validate_X_predict(X)
        if not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
            raise ValueError(f"n_draws must be a positive int, got {n_draws!r}")
        rng_key = _jax_key(random_state)
        choice_key, draw_key = jax.random.split(rng_key)
        n_total = next(iter(self.posterior_samples_.values())).shape[0]
        index = np.asarray(
            jax.random.choice(
                choice_key, n_total, (n_draws,), replace=n_draws > n_total
            )
        )
        draws = {name: v[index] for name, v in self.posterior_samples_.items()}
        keys = jax.random.split(draw_key, n_draws)
        values = self._over_chunks(_response_draws, X, draws, keys)
        return self._decode_response(np.moveaxis(values, 0, 1))

    def _decode_response(self, values):
        return np.asarray(values)


class ModelRegressor(RegressorMixin, _ModelEstimator):
    """A regressor made of your own core_ppl model.

    Subclass it with ``model=`` (or call :func:`make_estimator`): the
    model is ``model(X, y=None, *, hyper=default, ...)`` and observes ``y``
    at the sample site named ``response`` (default ``"y"``) with one
    log-likelihood term per row. Its keyword-only hyperparameters become
    constructor parameters next to the inference ones below.

    Parameters
    ----------
    inference : {"nuts", "svi"}, default="nuts"
        ``"nuts"`` samples the posterior with the No-U-Turn Sampler;
        ``"svi"`` fits a mean-field normal approximation and draws from it.
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
    posterior_samples_ : dict of str to ndarray
        Draws of every latent site, chains concatenated, draws first.
    diagnostics_ : dict
        Convergence facts (see ``BaseBayesianEstimator``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during fit, when ``X`` has string column names.

    See Also
    --------
    make_estimator : Make such a class from a model function.
    ModelClassifier : The classifier counterpart.

    Notes
    -----
    ``sample_weight`` multiplies the response site's log-likelihood (rows of
    weight 0 are masked), through a handler: the model needs no code for it.
    Predictions average the response distribution over the posterior: the
    mean of its means, and the sd of the mixture (noise included).

    Examples
    --------
    >>> import numpy as np
    >>> import core_ppl as ppl
    >>> import core_ppl.distributions as dist
    >>> from bayes_sklearn import ModelRegressor
    >>> def line(X, y=None, *, prior_scale=1.0):
    ...     coef = ppl.sample("coef", dist.Normal(0.0, prior_scale).expand(
    ...         (X.shape[1],)).to_event(1))
    ...     sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
    ...     with ppl.plate("rows", X.shape[0]):
    ...         ppl.sample("y", dist.Normal(X @ coef, sigma), obs=y)
    >>> class Line(ModelRegressor, model=line):
    ...     pass
    >>> X = np.linspace(-1, 1, 20)[:, None]
    >>> y = 2 * X[:, 0] + 0.3 * np.random.default_rng(0).normal(size=20)
    >>> reg = Line(prior_scale=2.0, n_warmup=200, n_draws=200, random_state=0)
    >>> reg.get_params()["prior_scale"]
    2.0
    >>> reg.fit(X, y).predict(X[:2], return_std=True)[0].shape
    (2,)
    """

    _validation_kwargs = {"y_numeric": True}

    def _model_inputs(self, X, y, sample_weight):
        return self._encode(X, np.asarray(y, np.float64), 0, None)

    def predict(self, X, return_std=False):
        """Posterior predictive mean (and sd) of the response.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Input data.
        return_std : bool, default=False
            Also return the posterior predictive sd: the sd of the mixture
            over draws of the response distribution, noise included.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
            Mean over draws of the response distribution's mean.
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std`` is True.
        """
        X = self._validate_X_predict(X)
        mean, variance = self._over_chunks(
            _predictive_moments, X, *self._all_draws(), n_outputs=2
        )
        mean = mean.astype(np.float64)
        if not return_std:
            return mean
        return mean, np.sqrt(variance.astype(np.float64))


class ModelClassifier(
    ClassifierMixin, PosteriorClassifierMixin, _ModelEstimator
):
    """A classifier made of your own core_ppl model.

    As :class:`ModelRegressor`, but ``y`` holds class labels: the model
    observes their indices into ``classes_`` (``0 .. n_classes - 1``, as
    int32), e.g. with ``Bernoulli`` or ``Categorical``. A model that takes a
    keyword-only ``n_classes`` receives the number of classes seen in fit.
    Probabilities are the response distribution's, averaged over draws.

    Parameters
    ----------
    inference, n_warmup, n_draws, n_chains, svi_steps, batch_size, random_state,
    verbose, n_devices
        As in :class:`ModelRegressor`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen during fit.
    posterior_samples_ : dict of str to ndarray
        Draws of every latent site, chains concatenated, draws first.
    diagnostics_ : dict
        Convergence facts (see ``BaseBayesianEstimator``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during fit, when ``X`` has string column names.

    See Also
    --------
    make_estimator : Make such a class from a model function.
    ModelRegressor : The regressor counterpart.

    Examples
    --------
    >>> import numpy as np
    >>> import core_ppl as ppl
    >>> import core_ppl.distributions as dist
    >>> from bayes_sklearn import ModelClassifier
    >>> def logistic(X, y=None, *, prior_scale=1.0):
    ...     coef = ppl.sample("coef", dist.Normal(0.0, prior_scale).expand(
    ...         (X.shape[1],)).to_event(1))
    ...     with ppl.plate("rows", X.shape[0]):
    ...         ppl.sample("y", dist.Bernoulli(logits=X @ coef), obs=y)
    >>> class Logistic(ModelClassifier, model=logistic):
    ...     pass
    >>> X = np.linspace(-2, 2, 40)[:, None]
    >>> noise = np.random.default_rng(0).normal(size=40)
    >>> y = np.where(X[:, 0] + noise > 0, "pos", "neg")
    >>> clf = Logistic(n_warmup=200, n_draws=300, random_state=0).fit(X, y)
    >>> clf.classes_
    array(['neg', 'pos'], dtype='<U3')
    >>> clf.predict([[-1.5], [1.5]])
    array(['neg', 'pos'], dtype='<U3')
    """

    def _model_inputs(self, X, y, sample_weight):
        # Lazy import: _logistic imports the base, as this module does.
        from bayes_sklearn._logistic import _check_two_weighted_classes

        check_classification_targets(y)
        classes, index = np.unique(y, return_inverse=True)
        _check_two_weighted_classes(type(self).__name__, classes, index, sample_weight)
        return self._encode(X, index.astype(np.int32), len(classes), classes)

    def _set_fitted_attributes(self, context):
        super()._set_fitted_attributes(context)
        self.classes_ = context.classes

    def predict_log_proba(self, X):
        """Log of the posterior predictive class probabilities.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``log mean_draws p(class | x, draw)``, columns as ``classes_``.
        """
        X = self._validate_X_predict(X)
        n_classes = len(self.classes_)
        log_mean = self._over_chunks(
            _predictive_log_proba,
            X,
            *self._all_draws(),
            n_outputs=n_classes,
            n_classes=n_classes,
        ).astype(np.float64)
        # Renormalized again in float64: probabilities that sum to 1 to the
        # last bit, not only to float32 rounding.
        return log_mean - logsumexp(log_mean, axis=1, keepdims=True)


    def _decode_response(self, values):
        return self.classes_[np.asarray(values).astype(np.int64)]


# --- the factory -------------------------------------------------------------------

_BASES = {"regressor": ModelRegressor, "classifier": ModelClassifier}


def _default_name(model, kind):
    words = model.__name__.strip("_").split("_")
    return "".join(word[:1].upper() + word[1:] for word in words) + kind.title()


@functools.cache
def _make_class(model, kind, response, name, module):
    cls = type(name, (_BASES[kind],), {}, model=model, response=response)
    cls.__module__, cls.__qualname__ = module, name
    cls._made_by = (model, kind, response, name, module)
    return cls


def _new_instance(model, kind, response, name, module):
    """Unpickle: re-create (or find) the class, then an empty instance."""
    cls = _make_class(model, kind, response, name, module)
    return cls.__new__(cls)


def make_estimator(model, kind="regressor", response="y", name=None):
    """Make a scikit-learn estimator class of a core_ppl model.

    Parameters
    ----------
    model : callable
        A module-level function ``model(X, y=None, *, hyper=default, ...)``
        that observes ``y`` at the sample site ``response``, one
        log-likelihood term per row. Its keyword-only hyperparameters become
        constructor parameters (float defaults travel as arrays: a grid over
        them compiles one program).
    kind : {"regressor", "classifier"}, default="regressor"
        The base class: :class:`ModelRegressor` or :class:`ModelClassifier`.
    response : str, default="y"
        Name of the sample site that observes ``y``.
    name : str, default=None
        The class name; by default the model's name in CamelCase followed by
        ``Regressor`` or ``Classifier``. Bind the class to this name in your
        module so that pickle finds it (instances pickle regardless, by
        re-creating the class from ``model``, which must be importable).

    Returns
    -------
    type
        The estimator class; the same class for the same arguments.

    Examples
    --------
    >>> import core_ppl as ppl
    >>> import core_ppl.distributions as dist
    >>> from bayes_sklearn import make_estimator
    >>> def line(X, y=None, *, prior_scale=1.0):
    ...     coef = ppl.sample("coef", dist.Normal(0.0, prior_scale).expand(
    ...         (X.shape[1],)).to_event(1))
    ...     with ppl.plate("rows", X.shape[0]):
    ...         ppl.sample("y", dist.Normal(X @ coef, 1.0), obs=y)
    >>> Line = make_estimator(line, name="Line")
    >>> sorted(Line().get_params())[:4]
    ['batch_size', 'inference', 'n_chains', 'n_devices']
    >>> Line(prior_scale=3.0).prior_scale
    3.0
    """
    if kind not in _BASES:
        raise ValueError(f"kind must be 'regressor' or 'classifier', got {kind!r}")
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {response!r}")
    model_hyperparameters(model)  # clear errors before making the class
    if name is None:
        name = _default_name(model, kind)
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    module = sys._getframe(1).f_globals.get("__name__", model.__module__)
    return _make_class(model, kind, response, name, module)


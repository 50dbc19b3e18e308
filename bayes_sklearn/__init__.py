"""bayes_sklearn: scikit-learn estimators with full Bayesian inference.

Each estimator fits a probabilistic model written in :mod:`core_ppl` by NUTS
(or SVI) and exposes the posterior through the usual scikit-learn API: fitted
``_`` attributes are posterior means, predictions are posterior predictive
quantities, ``posterior_samples_`` holds the draws and ``summary()`` tabulates
them. Importing this package changes no global JAX setting.
"""

from bayes_sklearn._base import BaseBayesianEstimator
from bayes_sklearn._linear import BayesianLinearRegression, BayesianPoissonRegressor
from bayes_sklearn._logistic import BayesianLogisticRegression
from bayes_sklearn._model import ModelClassifier, ModelRegressor, make_estimator
from bayes_sklearn._persistence import (
    InconsistentVersionWarning,
    load,
    save,
    trusted_types,
)
from bayes_sklearn._persistence import __version__ as __version__
from bayes_sklearn._sparse_interaction import (
    FitTimeWarning,
    SparseInteractionRegressor,
    estimate_fit_seconds,
)

__all__ = [
    "BaseBayesianEstimator",
    "BayesianLinearRegression",
    "BayesianLogisticRegression",
    "BayesianPoissonRegressor",
    "FitTimeWarning",
    "InconsistentVersionWarning",
    "ModelClassifier",
    "ModelRegressor",
    "SparseInteractionRegressor",
    "estimate_fit_seconds",
    "load",
    "make_estimator",
    "save",
    "trusted_types",
]

"""Estimators fitted in several threads at once: ``GridSearchCV(n_jobs=2)``
under joblib's threading backend gives the same results as ``n_jobs=1``."""

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV, ShuffleSplit

from bayes_sklearn import BayesianLogisticRegression
from core_ppl.compile_events import count_compiles

# Short runs trip the R-hat check by chance; not what is tested here.
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


def _data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    logits = X @ np.array([1.5, -1.0, 0.0]) + 0.3
    return X, (rng.uniform(size=80) < 1 / (1 + np.exp(-logits))).astype(int)


def _search(n_jobs):
    estimator = BayesianLogisticRegression(
        n_warmup=50, n_draws=50, n_chains=1, random_state=0
    )
    # Candidates alternate fit_intercept, which changes the compiled program,
    # and there is one split: the first two fits, one per worker, trace two
    # different models at the same time (JAX would make two traces of one
    # program wait for each other).
    grid = [
        {"prior_scale": [scale], "fit_intercept": [fit_intercept]}
        for scale in (0.1, 3.0)
        for fit_intercept in (True, False)
    ]
    cv = ShuffleSplit(n_splits=1, test_size=0.5, random_state=0)
    return GridSearchCV(estimator, grid, cv=cv, n_jobs=n_jobs, error_score="raise")


def test_grid_search_in_threads_equals_serial_search():
    X, y = _data()
    # Programs of the MCMC driver built (compiled, or loaded from the cache).
    with count_compiles("_run_chains") as counter:
        with parallel_config(backend="threading"):
            threaded = _search(n_jobs=2).fit(X, y)
    assert counter.programs <= 2  # no program built twice
    serial = _search(n_jobs=1).fit(X, y)
    scores = serial.cv_results_["mean_test_score"]
    assert len(set(scores.tolist())) > 1  # the candidates differ
    for key in ("split0_test_score", "mean_test_score", "rank_test_score"):
        np.testing.assert_array_equal(threaded.cv_results_[key],
                                      serial.cv_results_[key])
    assert threaded.best_params_ == serial.best_params_
    np.testing.assert_array_equal(threaded.best_estimator_.coef_,
                                  serial.best_estimator_.coef_)

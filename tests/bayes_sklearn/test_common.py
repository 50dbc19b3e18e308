"""scikit-learn's own estimator checks, run on every bayes_sklearn estimator.

The budgets are tiny (the checks test the API, not the posterior), so the
sampler's convergence warnings are expected and silenced here; the quality of
the posterior is tested in each estimator's own test module.
"""

from functools import partial

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from bayes_sklearn import BayesianLogisticRegression, SparseInteractionRegressor

_SMALL_BUDGET = dict(n_warmup=50, n_draws=50, n_chains=1, random_state=0)

# SKIM's sampler compiles once per (row bucket, feature bucket), ~30 s each,
# and the checks use five; 20 + 20 iterations keep its fits (GP, O(N^3))
# cheap. test_sparse_interaction uses the same budget, so a process that runs
# both files compiles the common shapes once.
_SKIM_BUDGET = dict(n_warmup=20, n_draws=20, n_chains=1, random_state=0)

ESTIMATORS = [
    BayesianLogisticRegression(**_SMALL_BUDGET),
    SparseInteractionRegressor(**_SKIM_BUDGET),
]

# Each entry is a property a sampling-based Bayesian estimator cannot have.
EXPECTED_FAILED_CHECKS = {
    "BayesianLogisticRegression": {
        # Weighting a row by k gives exactly the posterior of repeating it k
        # times, but MCMC *draws* are a chaotic function of the floating-point
        # log density, whose rounding depends on the row layout: the two fits
        # agree in distribution, not to the 1e-7 this check demands. The
        # equivalence is tested within Monte Carlo error in test_logistic.
        "check_sample_weight_equivalence_on_dense_data": (
            "MCMC draws agree with the repeated-rows fit only in distribution"
        ),
        # The same check on sparse X (the estimator accepts it).
        "check_sample_weight_equivalence_on_sparse_data": (
            "MCMC draws agree with the repeated-rows fit only in distribution"
        ),
    },
    "SparseInteractionRegressor": {
        # As above: the weighted GP marginal likelihood equals the one of the
        # repeated rows exactly (test_skim_kernel), but the draws, hence the
        # predictions, agree only in distribution.
        "check_sample_weight_equivalence_on_dense_data": (
            "MCMC draws agree with the repeated-rows fit only in distribution"
        ),
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


def _check_name(check):
    while isinstance(check, partial):
        check = check.func
    return check.__name__


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    reason = _expected_failed_checks(estimator).get(_check_name(check))
    if reason is not None:
        # Known to fail (see above); running it anyway would cost sampler
        # compilations for data shapes that no other check uses.
        pytest.skip(reason)
    check(estimator)

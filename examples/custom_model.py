"""Your own model as a scikit-learn estimator, grid-searched.

A robust regression written in core_ppl (Student-t noise, whose degrees of
freedom ``df`` set how heavy the tails are) becomes an estimator class with
``make_estimator``: its keyword-only hyperparameters ``prior_scale`` and
``df`` are constructor parameters, so ``GridSearchCV`` can choose ``df``
by cross-validation. The hyperparameters travel to the sampler as arrays and
the rows are padded to a common size, so the 10 fits of the search (3 values
x 3 folds, then the refit) run one compiled NUTS program.

Run with ``python examples/custom_model.py`` (under a minute on a laptop).
"""

import os
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold

import core_ppl as ppl
import core_ppl.distributions as dist
from bayes_sklearn import make_estimator


def robust_regression(X, y=None, *, prior_scale=1.0, df=4.0):
    """Linear regression with Student-t noise; ``y`` is observed at "y"."""
    n_features = X.shape[1]
    coef = ppl.sample(
        "coef", dist.Normal(0.0, prior_scale).expand((n_features,)).to_event(1)
    )
    intercept = ppl.sample("intercept", dist.Normal(0.0, 10.0))
    sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
    with ppl.plate("rows", X.shape[0]):
        ppl.sample("y", dist.StudentT(df, X @ coef + intercept, sigma), obs=y)


RobustRegressor = make_estimator(robust_regression, name="RobustRegressor")
# tests/test_examples.py runs every example with tiny budgets through this
# variable; the figures printed then mean nothing.
QUICK = os.environ.get("BAYES_SKLEARN_EXAMPLE_QUICK") == "1"
BUDGET = dict(n_warmup=20, n_draws=20) if QUICK else dict(n_warmup=300, n_draws=500)


def make_data(rng, n_samples=150):
    """A linear signal with 10% gross outliers in y."""
    X = rng.normal(size=(n_samples, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.3 * rng.normal(size=n_samples)
    outliers = rng.uniform(size=n_samples) < 0.1
    y[outliers] += rng.normal(0.0, 8.0, size=outliers.sum())
    return X, y


def main():
    X, y = make_data(np.random.default_rng(0))
    search = GridSearchCV(
        RobustRegressor(random_state=0, **BUDGET),
        {"df": [3.0, 6.0, 100.0]},  # 100: nearly Normal noise
        cv=KFold(n_splits=3, shuffle=True, random_state=0),
        scoring="neg_median_absolute_error",
    )
    start = time.perf_counter()
    search.fit(X, y)
    elapsed = time.perf_counter() - start
    print(
        pd.DataFrame(
            {
                "df": search.cv_results_["param_df"],
                "median abs error": -search.cv_results_["mean_test_score"],
                "fit time (s)": search.cv_results_["mean_fit_time"],
            }
        )
        .round(3)
        .to_string(index=False)
    )
    print(f"10 fits in {elapsed:.1f} s; best df = {search.best_params_['df']}")

    reg = search.best_estimator_
    print("\nposterior summary of the refit:")
    print(reg.summary().round(3).to_string())
    print(f"planted coef: [1.0, -2.0, 0.5]; Ridge: {Ridge().fit(X, y).coef_.round(3)}")
    mean, std = reg.predict(X[:3], return_std=True)
    print(f"\npredict(X[:3], return_std=True): {mean.round(2)} +- {std.round(2)}")
    draws = reg.sample_posterior_predictive(X[:3], 5, random_state=0)
    print(f"sample_posterior_predictive(X[:3], 5):\n{draws.round(2)}")


if __name__ == "__main__":
    main()

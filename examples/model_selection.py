"""Choosing the prior scale of BayesianLogisticRegression by cross-validation.

A Pipeline(StandardScaler, BayesianLogisticRegression) goes into GridSearchCV
like any scikit-learn classifier. The prior scale is passed to the sampler as
an array and the rows are padded to a common size, so all 16 fits of the
search (15 cross-validation fits and the refit on all 569 rows) run the same
compiled NUTS program: only the first fit compiles.

Run with ``python examples/model_selection.py``.
"""

import os
import time

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from bayes_sklearn import BayesianLogisticRegression
from core_ppl.util import set_small_loop_threshold

# tests/test_examples.py runs every example with tiny budgets through this
# variable; the figures printed then mean nothing.
QUICK = os.environ.get("BAYES_SKLEARN_EXAMPLE_QUICK") == "1"
BUDGET = dict(n_warmup=20, n_draws=20) if QUICK else {}


def main():
    X, y = load_breast_cancer(return_X_y=True)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("clf", BayesianLogisticRegression(random_state=0, **BUDGET)),
        ]
    )
    search = GridSearchCV(
        pipe,
        {"clf__prior_scale": [0.1, 1.0, 10.0]},
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=0),
        scoring="neg_log_loss",
    )
    start = time.perf_counter()
    search.fit(X, y)
    elapsed = time.perf_counter() - start

    results = pd.DataFrame(
        {
            "prior_scale": search.cv_results_["param_clf__prior_scale"],
            "log loss": -search.cv_results_["mean_test_score"],
            "sd over folds": search.cv_results_["std_test_score"],
            "fit time (s)": search.cv_results_["mean_fit_time"],
        }
    )
    print(results.round(4).to_string(index=False))
    print(f"\nbest prior_scale: {search.best_params_['clf__prior_scale']}")
    print(f"16 fits (5 folds x 3 prior scales, then the refit) in {elapsed:.1f} s")
    clf = search.best_estimator_[-1]
    print(f"refit diagnostics: {clf.diagnostics_}")


if __name__ == "__main__":
    # Opt-in, before JAX starts: XLA compiles each small loop of NUTS into one
    # CPU function instead of launching its kernels one by one, which makes
    # sampling on data of this size ~1.5x faster (see core_ppl.util).
    set_small_loop_threshold()
    main()

"""A grid search over BayesianLogisticRegression on a dask cluster.

The search of examples/model_selection.py (breast-cancer data, 3 prior scales
x 5 folds, then the refit: 16 fits) runs twice: in this process
(``n_jobs=1``), then on a ``dask.distributed`` cluster through joblib's dask
backend, which is all it takes: scikit-learn hands its loop of fits to
joblib, and ``parallel_config(backend="dask")`` sends them to the workers.

Here the cluster is a ``LocalCluster`` of worker processes on this machine;
on a real one, pass the scheduler's address to ``Client`` instead and
nothing else changes. Each worker loads the compiled NUTS program from the
on-disk cache (``core_ppl.cache``, ``CORE_PPL_CACHE_DIR``), which the first
search filled, instead of compiling it: point ``CORE_PPL_CACHE_DIR`` at a
directory every worker can read (private to the user) to get the same on a
cluster. Both searches find the same scores, bit for bit.

Needs the ``dask[distributed]`` extra. Run with

    python examples/grid_search_on_dask.py [--n-workers 2]
"""

import argparse
import os
import time
import warnings

import numpy as np
from joblib import parallel_config
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from bayes_sklearn import BayesianLogisticRegression

# tests/test_examples.py runs every example with tiny budgets through this
# variable; the figures printed then mean nothing.
QUICK = os.environ.get("BAYES_SKLEARN_EXAMPLE_QUICK") == "1"
BUDGET = dict(n_warmup=20, n_draws=20) if QUICK else {}


def search(n_jobs):
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("clf", BayesianLogisticRegression(random_state=0, **BUDGET)),
        ]
    )
    return GridSearchCV(
        pipe,
        {"clf__prior_scale": [0.1, 1.0, 10.0]},
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=0),
        scoring="neg_log_loss",
        n_jobs=n_jobs,
    )


def timed_fit(X, y, n_jobs):
    start = time.perf_counter()
    fitted = search(n_jobs).fit(X, y)
    return fitted, time.perf_counter() - start


def main(n_workers):
    from dask.distributed import Client, LocalCluster

    if QUICK:  # tiny budgets do not converge; the smoke test only runs
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = load_breast_cancer(return_X_y=True)
    serial, serial_time = timed_fit(X, y, n_jobs=1)
    print(f"n_jobs=1: 16 fits in {serial_time:.1f} s")

    start = time.perf_counter()
    with LocalCluster(
        n_workers=n_workers, threads_per_worker=1, dashboard_address=None
    ) as cluster, Client(cluster):
        startup = time.perf_counter() - start
        with parallel_config(backend="dask"):  # n_jobs=-1: every worker
            distributed, dask_time = timed_fit(X, y, n_jobs=-1)
    print(
        f"dask, {n_workers} worker processes: 16 fits in {dask_time:.1f} s "
        f"({serial_time / dask_time:.1f}x), after {startup:.1f} s to start "
        "the cluster"
    )
    scores = [s.cv_results_["mean_test_score"] for s in (serial, distributed)]
    same = np.array_equal(*scores)
    print(f"best prior_scale: {distributed.best_params_['clf__prior_scale']}")
    print(f"same scores as n_jobs=1: {same}")


if __name__ == "__main__":  # worker processes import this file: keep the guard
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-workers", type=int, default=2)
    main(parser.parse_args().n_workers)

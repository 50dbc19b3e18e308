"""Model selection on a cluster: scikit-learn's searches over our estimators,
run by joblib on a dask.distributed ``LocalCluster`` and on Ray, give the
sequential search's results, and each worker process compiles the sampler at
most once (not at all when the on-disk program cache is warm).

Compiles are counted in the workers themselves: the estimator below records
the XLA compiles of the MCMC driver's program during its fit
(:func:`core_ppl.compile_events.count_compiles`) and the process it ran in,
and two scorers report them into ``cv_results_``. The module's cache
directory is fresh, so the dask workers, new processes, find it cold; the Ray
workers, started after them, find it warm.

One cluster of each kind serves the whole module (start-up takes seconds).
Worker processes import this module to unpickle the estimator: dask's spawn
hands them the parent's ``sys.path``, Ray gets it as ``PYTHONPATH``.
"""

import os
import sys
import tempfile
from collections import Counter

import numpy as np
import pytest
from joblib import parallel_config
from scipy.stats import loguniform
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_validate

from bayes_sklearn import BayesianLogisticRegression
from core_ppl.cache import ENV_VAR
from core_ppl.compile_events import count_compiles

# Tiny budgets trip the convergence checks; not what is tested here.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore", category=ConvergenceWarning),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

# The function of the MCMC driver's compiled program.
_SAMPLER_PROGRAM = "_run_chains"


class CountingLogisticRegression(BayesianLogisticRegression):
    """Records the sampler's XLA compiles during ``fit`` and the process
    that fitted, for the scorers below."""

    def fit(self, X, y, sample_weight=None):
        with count_compiles(_SAMPLER_PROGRAM) as counter:
            super().fit(X, y, sample_weight=sample_weight)
        self.compiles_ = counter.backend_compiles
        self.pid_ = os.getpid()
        return self


def _compiles(estimator, X, y):
    return estimator.compiles_


def _pid(estimator, X, y):
    return estimator.pid_


SCORING = {"accuracy": "accuracy", "compiles": _compiles, "pid": _pid}


def _data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    logits = X @ np.array([1.5, -1.0, 0.0]) + 0.3
    return X, (rng.uniform(size=60) < 1 / (1 + np.exp(-logits))).astype(int)


def _searches(n_jobs):
    """A grid search, a randomized search and a cross-validation: 10 fits in
    the workers, all of one compiled program (the folds pad to one bucket)."""
    X, y = _data()
    estimator = CountingLogisticRegression(
        n_warmup=30, n_draws=30, n_chains=1, random_state=0
    )
    common = dict(cv=2, scoring=SCORING, refit="accuracy", n_jobs=n_jobs)
    grid = GridSearchCV(estimator, {"prior_scale": [0.1, 1.0]}, **common)
    randomized = RandomizedSearchCV(
        estimator,
        {"prior_scale": loguniform(0.1, 10.0)},
        n_iter=2,
        random_state=0,
        **common,
    )
    return {
        "grid": grid.fit(X, y),
        "randomized": randomized.fit(X, y),
        "cv": cross_validate(
            estimator, X, y, cv=2, scoring=SCORING, n_jobs=n_jobs,
            return_estimator=True,
        ),
    }


def _compiles_per_process(runs):
    """Sampler compiles summed per process over every fit of ``runs``."""
    per_process = Counter()
    for name in ("grid", "randomized"):
        results = runs[name].cv_results_
        for split in range(2):
            for pid, n in zip(
                results[f"split{split}_test_pid"],
                results[f"split{split}_test_compiles"],
                strict=True,
            ):
                per_process[int(pid)] += int(n)
    cv = runs["cv"]
    for pid, n in zip(cv["test_pid"], cv["test_compiles"], strict=True):
        per_process[int(pid)] += int(n)
    return per_process


def _assert_same_results(got, expected):
    for name in ("grid", "randomized"):
        for key in ("split0_test_accuracy", "split1_test_accuracy",
                    "mean_test_accuracy", "rank_test_accuracy"):
            np.testing.assert_array_equal(
                got[name].cv_results_[key], expected[name].cv_results_[key]
            )
        assert got[name].best_params_ == expected[name].best_params_
        np.testing.assert_array_equal(
            got[name].best_estimator_.coef_, expected[name].best_estimator_.coef_
        )
    np.testing.assert_array_equal(
        got["cv"]["test_accuracy"], expected["cv"]["test_accuracy"]
    )
    for fold, reference in zip(got["cv"]["estimator"], expected["cv"]["estimator"],
                               strict=True):
        np.testing.assert_array_equal(fold.coef_, reference.coef_)
        np.testing.assert_array_equal(
            fold.posterior_samples_["coef"], reference.posterior_samples_["coef"]
        )


# --- fixtures: one cache directory, one cluster of each kind -------------------------


@pytest.fixture(scope="module")
def fresh_cache():
    """A cold cache directory for this module, this process and its workers."""
    before = os.environ.get(ENV_VAR)
    with tempfile.TemporaryDirectory(prefix="core_ppl-cluster-cache-") as path:
        os.environ[ENV_VAR] = path
        try:
            yield path
        finally:
            if before is None:
                del os.environ[ENV_VAR]
            else:
                os.environ[ENV_VAR] = before


@pytest.fixture(scope="module")
def dask_runs(fresh_cache):
    from dask.distributed import Client, LocalCluster

    # Processes, not threads: each worker is a Python process of its own, as
    # on a real cluster. They start with this process's environment.
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        worker_pids = set(client.run(os.getpid).values())
        with parallel_config(backend="dask"):
            runs = _searches(n_jobs=-1)
    return runs, worker_pids


@pytest.fixture(scope="module")
def sequential_runs(fresh_cache):
    return _searches(n_jobs=1)


@pytest.fixture(scope="module")
def ray_runs(fresh_cache, dask_runs):
    # After the dask workers, which compiled into (or loaded from) the
    # module's cache directory: the Ray workers find it warm.
    import ray
    from ray.util.joblib import register_ray

    register_ray()
    env = {ENV_VAR: fresh_cache, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    try:
        with parallel_config(backend="ray", n_jobs=2):
            return _searches(n_jobs=2)
    finally:
        ray.shutdown()


# --- dask ----------------------------------------------------------------------------


def test_dask_searches_equal_the_sequential_searches(dask_runs, sequential_runs):
    runs, _ = dask_runs
    _assert_same_results(runs, sequential_runs)


def test_dask_workers_compile_the_sampler_at_most_once_each(dask_runs):
    runs, worker_pids = dask_runs
    per_process = _compiles_per_process(runs)
    # Every fit ran in a worker, not here.
    assert set(per_process) <= worker_pids
    assert os.getpid() not in per_process
    assert all(n <= 1 for n in per_process.values()), per_process


# --- Ray -----------------------------------------------------------------------------


def test_ray_searches_equal_the_sequential_searches(ray_runs, sequential_runs):
    _assert_same_results(ray_runs, sequential_runs)


def test_ray_workers_load_the_sampler_from_the_warm_cache(ray_runs):
    per_process = _compiles_per_process(ray_runs)
    assert os.getpid() not in per_process
    assert sum(per_process.values()) == 0, per_process

"""Benchmark: GridSearchCV over BayesianLogisticRegression, compile cache on/off.

The search is the one of examples/model_selection.py: breast-cancer data,
Pipeline(StandardScaler, BayesianLogisticRegression), prior_scale in
{0.1, 1, 10}, 5-fold CV, then a refit: 16 fits. It runs twice in one process:

- cached: the estimator as shipped. Its model is a module-level function
  taking data and hyperparameters as arrays, and rows are padded to buckets,
  so all 16 fits share one compiled NUTS program: the 455/456-row CV
  training sets and the 569-row refit all pad to the estimator's minimum
  row bucket, 640.
- uncached: the same estimator, except that every fit samples a fresh
  wrapper of the model function and starts from ``jax.clear_caches()``, so
  every fit traces and compiles its sampler again: what a closure over the
  data or the hyperparameters (or no padding) would cost.

Both print the wall time, the CPU time of the process (steadier than the
wall time on a shared machine), the number of sampler programs built (the
MCMC driver's program, compiled or loaded from the on-disk cache) and of all
XLA compilations (both counted by ``core_ppl.compile_events.count_compiles``),
for the whole search and for its 15 cross-validation fits alone (the whole search minus
``refit_time_``). Run with

    python benchmarks/model_selection.py [--n-warmup N] [--n-draws N]
        [--small-loop-threshold BYTES]
"""

import argparse
import os
import time
import warnings

import jax
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from bayes_sklearn import BayesianLogisticRegression
from core_ppl.compile_events import count_compiles
from core_ppl.util import set_small_loop_threshold


class UncachedBayesianLogisticRegression(BayesianLogisticRegression):
    """The shipped estimator with the compile cache defeated on every fit."""

    def _get_model(self, context):
        model = super()._get_model(context)

        def fresh_model(*args):  # a new function identity: a new cache key
            return model(*args)

        jax.clear_caches()
        return fresh_model


def run_search(estimator, X, y):
    """Fit the grid search; return (wall seconds, refit wall seconds, CPU
    seconds, sampler compiles, XLA compiles)."""
    pipe = Pipeline([("scale", StandardScaler()), ("clf", estimator)])
    search = GridSearchCV(
        pipe,
        {"clf__prior_scale": [0.1, 1.0, 10.0]},
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=0),
        n_jobs=1,
    )
    jax.clear_caches()
    start, cpu_start = time.perf_counter(), time.process_time()
    # Sampler programs built (compiled, or loaded from the on-disk cache), and
    # every program XLA compiled.
    with count_compiles("_run_chains") as sampler, count_compiles() as every:
        search.fit(X, y)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return elapsed, search.refit_time_, cpu, sampler.programs, every.backend_compiles


def main():
    defaults = BayesianLogisticRegression().get_params()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-warmup", type=int, default=defaults["n_warmup"])
    parser.add_argument("--n-draws", type=int, default=defaults["n_draws"])
    parser.add_argument("--n-chains", type=int, default=defaults["n_chains"])
    parser.add_argument(
        "--small-loop-threshold",
        type=int,
        help="call core_ppl.util.set_small_loop_threshold(BYTES) first",
    )
    args = parser.parse_args()
    if args.small_loop_threshold is not None:  # before JAX starts
        set_small_loop_threshold(args.small_loop_threshold)
    budget = dict(
        n_warmup=args.n_warmup,
        n_draws=args.n_draws,
        n_chains=args.n_chains,
        random_state=0,
    )
    # Small budgets trip the R-hat check by chance; this script only times.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = load_breast_cancer(return_X_y=True)
    print(f"GridSearchCV, 3 prior scales x 5 folds + refit = 16 fits; {budget}")
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print(
        f"{'':<10}{'wall (s)':>10}{'CV fits (s)':>13}{'CPU (s)':>10}"
        f"{'sampler programs':>18}{'XLA compiles':>14}"
    )
    results = {}
    for name, cls in [
        ("cached", BayesianLogisticRegression),
        ("uncached", UncachedBayesianLogisticRegression),
    ]:
        wall, refit, cpu, sampler_compiles, xla_compiles = run_search(
            cls(**budget), X, y
        )
        results[name] = (wall, wall - refit, cpu)
        print(
            f"{name:<10}{wall:>10.1f}{wall - refit:>13.1f}{cpu:>10.1f}"
            f"{sampler_compiles:>18}{xla_compiles:>14}"
        )
    ratios = [
        u / c for u, c in zip(results["uncached"], results["cached"], strict=True)
    ]
    print(
        "speed-up of the compile cache: "
        f"{ratios[0]:.1f}x wall for the whole search, {ratios[1]:.1f}x for the "
        f"15 CV fits, {ratios[2]:.1f}x in CPU time"
    )


if __name__ == "__main__":
    main()

"""Benchmark: BayesianLogisticRegression(inference="svi", batch_size=...) on
millions of rows.

Synthetic data: ``N`` rows of ``--n-features`` standard normal float32
features, labels drawn from a known logistic model (coefficients in [-1, 1],
intercept 0.5). Each size is fitted twice by the estimator as shipped: the
first fit includes compiling the SVI program, the second (another seed, the
same shapes) reuses it, so its time is the one a user sees from then on. A
step draws ``batch_size`` rows inside the compiled loop, so a step's cost
does not depend on ``N``: the data cross to the device once per fit, and
what grows with ``N`` is only that copy (and validating and padding the
rows on the host). Printed: the wall time of both fits, the CPU time of
the second (steadier on a shared machine), its wall time per SVI step
(everything of the fit included), the largest error of the posterior mean
coefficients against the true ones, and the peak resident memory of the
process.

Run the full benchmark (1M and 10M rows, about 4 GB of memory at 10M) with

    python benchmarks/svi_minibatch.py

and a quick one (1M rows, fewer steps) with ``--quick``.
"""

import argparse
import resource
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from bayes_sklearn import BayesianLogisticRegression


def make_data(n_rows, n_features, seed=0):
    """Float32 features and labels of a known logistic model."""
    rng = np.random.default_rng(seed)
    coef = rng.uniform(-1.0, 1.0, size=n_features).astype(np.float32)
    X = rng.standard_normal((n_rows, n_features), dtype=np.float32)
    logits = X @ coef + np.float32(0.5)
    y = (rng.random(n_rows, dtype=np.float32) < 1 / (1 + np.exp(-logits))).astype(
        np.int8
    )
    return X, y, coef


def timed_fit(X, y, seed, *, batch_size, svi_steps):
    estimator = BayesianLogisticRegression(
        inference="svi",
        batch_size=batch_size,
        svi_steps=svi_steps,
        n_draws=200,
        random_state=seed,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    estimator.fit(X, y)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return estimator, wall, cpu


def peak_memory_gb():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M rows, 500 steps")
    parser.add_argument("--rows", type=int, nargs="+", help="sizes to fit instead")
    parser.add_argument("--n-features", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--svi-steps", type=int, default=2000)
    args = parser.parse_args()
    sizes = [1_000_000] if args.quick else [1_000_000, 10_000_000]
    sizes = args.rows or sizes
    steps = 500 if args.quick else args.svi_steps
    # Fits this short may not have levelled off; this script times them.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    print(
        f"BayesianLogisticRegression(inference='svi', batch_size={args.batch_size},"
        f" svi_steps={steps}), {args.n_features} features"
    )
    print(
        f"{'rows':>12}{'1st fit (s)':>13}{'2nd fit (s)':>13}{'CPU (s)':>10}"
        f"{'ms/step':>10}"
        f"{'max |coef err|':>16}{'peak RSS (GB)':>15}"
    )
    for n_rows in sizes:
        X, y, coef = make_data(n_rows, args.n_features)
        budget = dict(batch_size=args.batch_size, svi_steps=steps)
        _, first, _ = timed_fit(X, y, 0, **budget)
        fitted, second, cpu = timed_fit(X, y, 1, **budget)
        error = np.abs(fitted.coef_.ravel() - coef).max()
        print(
            f"{n_rows:>12,}{first:>13.1f}{second:>13.1f}{cpu:>10.1f}"
            f"{1e3 * second / steps:>10.2f}{error:>16.3f}{peak_memory_gb():>15.2f}"
        )
        del X, y


if __name__ == "__main__":
    main()

"""Prediction over posterior draws: the compiled, chunked path against NumPy.

A fitted ``BayesianLogisticRegression`` (``--n-draws`` draws, ``--n-features``
standard normal features, ``--n-classes`` classes, fitted on 2,000 rows)
predicts ``predict_proba`` on ``--n-rows`` new rows:

- ``numpy``: the reference implementation below, the package's former path:
  float64 NumPy over all draws, blocks of at most 2**22 (draws x rows x
  classes) elements, ``logsumexp`` over the draws;
- ``compiled``: the estimator's ``predict_proba`` (``bayes_sklearn._predict``:
  one compiled float32 program per fixed-size chunk of rows), timed after a
  first call on a few rows has compiled it (its compile time is printed).

With ``--regressor``, ``BayesianLinearRegression.predict(X, return_std=True)``
is timed the same way against a float64 NumPy reference. The script also
prints the largest difference between the two results. Usage, from the
repository root::

    python benchmarks/predict.py [--n-rows 200000] [--n-features 50]
        [--n-draws 1000] [--n-classes 2] [--regressor] [--repeat 3]

Keep ``--n-rows`` small on a shared machine: the NumPy path at 200,000 rows
and 1,000 draws takes tens of seconds of CPU.

Measured on the shared 2-core CPU (load ~8), one run each, float32 JAX:

======================================  =========  ========  =====
200,000 x 50, 1,000 draws               NumPy      compiled  ratio
======================================  =========  ========  =====
predict_proba, 2 classes                35.9 s     1.05 s    34x
predict(return_std=True), linear        4.2 s      0.66 s    6.4x
======================================  =========  ========  =====

At 20,000 x 50 with 3 classes: 3.4 s against 0.27 s (13x). The compiled
results differ from NumPy's float64 ones by at most 1e-6.
"""

import argparse
import time
import warnings

import numpy as np
from scipy.special import log_expit, log_softmax, logsumexp
from sklearn.exceptions import ConvergenceWarning

from bayes_sklearn import BayesianLinearRegression, BayesianLogisticRegression

_BLOCK_ELEMENTS = 2**22


# --- the reference implementations (the former NumPy paths) ----------------------


def numpy_log_proba_draws(coef, intercept, X):
    """Per-draw log class probabilities, float64: (draws, rows, classes)."""
    coef = coef.astype(np.float64)
    if coef.ndim == 2:
        logits = coef @ X.T
        if intercept is not None:
            logits += intercept[:, None]
        return np.stack([log_expit(-logits), log_expit(logits)], axis=-1)
    logits = np.swapaxes(coef @ X.T, 1, 2)
    if intercept is not None:
        logits += intercept[:, None, :]
    return log_softmax(logits, axis=-1)


def numpy_predict_proba(samples, n_classes, X):
    """The former ``predict_proba``: blocks of rows, logsumexp over draws."""
    coef, intercept = samples["coef"], samples.get("intercept")
    block = max(1, _BLOCK_ELEMENTS // (coef.shape[0] * n_classes))
    out = np.empty((X.shape[0], n_classes))
    for start in range(0, X.shape[0], block):
        rows = slice(start, start + block)
        log_mean = logsumexp(numpy_log_proba_draws(coef, intercept, X[rows]), axis=0)
        out[rows] = log_mean - logsumexp(log_mean, axis=1, keepdims=True)
    return np.exp(out)


def numpy_predict_linear(samples, X):
    """Posterior predictive mean and sd of linear regression, float64 NumPy."""
    block = max(1, _BLOCK_ELEMENTS // samples["coef"].shape[0])
    coef = samples["coef"].astype(np.float64)
    intercept = samples.get("intercept", np.zeros(coef.shape[0]))
    noise_var = 1.0 / samples["alpha"].astype(np.float64)
    mean, std = np.empty(X.shape[0]), np.empty(X.shape[0])
    for start in range(0, X.shape[0], block):
        rows = slice(start, start + block)
        means = coef @ X[rows].T + intercept[:, None]  # (draws, rows)
        mean[rows] = means.mean(axis=0)
        std[rows] = np.sqrt(noise_var.mean() + means.var(axis=0))
    return mean, std


# --- timing ----------------------------------------------------------------------


def _best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def _fit(estimator, n_features, n_classes, rng):
    X = rng.normal(size=(2000, n_features))
    coef = rng.normal(size=(n_classes, n_features)) / np.sqrt(n_features)
    if isinstance(estimator, BayesianLinearRegression):
        y = X @ coef[0] + rng.normal(size=2000)
    else:
        y = np.argmax(X @ coef.T + rng.gumbel(size=(2000, n_classes)), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def _report(name, numpy_s, compiled_s, compile_s, difference):
    print(
        f"{name}: numpy {numpy_s:.2f} s, compiled {compiled_s:.2f} s "
        f"(compile {compile_s:.2f} s), ratio {numpy_s / compiled_s:.1f}x, "
        f"max |difference| {difference:.2e}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=200_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--n-draws", type=int, default=1000)
    parser.add_argument("--n-classes", type=int, default=2)
    parser.add_argument("--regressor", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n_rows, args.n_features))
    budget = dict(n_warmup=200, n_draws=args.n_draws, random_state=0)
    print(
        f"predict on {args.n_rows} x {args.n_features}, {args.n_draws} draws "
        f"(best of {args.repeat})"
    )

    clf = _fit(
        BayesianLogisticRegression(**budget), args.n_features, args.n_classes, rng
    )
    compile_s, _ = _best_of(lambda: clf.predict_proba(X[:3]), 1)
    compiled_s, new = _best_of(lambda: clf.predict_proba(X), args.repeat)
    numpy_s, old = _best_of(
        lambda: numpy_predict_proba(clf.posterior_samples_, args.n_classes, X),
        args.repeat,
    )
    _report(
        f"BayesianLogisticRegression.predict_proba ({args.n_classes} classes)",
        numpy_s,
        compiled_s,
        compile_s,
        np.abs(new - old).max(),
    )

    if args.regressor:
        reg = _fit(BayesianLinearRegression(**budget), args.n_features, 1, rng)
        compile_s, _ = _best_of(lambda: reg.predict(X[:3], return_std=True), 1)
        compiled_s, new = _best_of(
            lambda: reg.predict(X, return_std=True), args.repeat
        )
        numpy_s, old = _best_of(
            lambda: numpy_predict_linear(reg.posterior_samples_, X), args.repeat
        )
        difference = max(np.abs(a - b).max() for a, b in zip(new, old))
        _report(
            "BayesianLinearRegression.predict(return_std=True)",
            numpy_s,
            compiled_s,
            compile_s,
            difference,
        )


if __name__ == "__main__":
    main()

"""Finding sparse main effects and pairwise interactions with SKIM.

The synthetic problem of the NumPyro sparse-regression example (docs/skim.md
section 5): 100 samples of 20 standard-normal features; only the first three
matter, with coefficients drawn from U(0.5, 3), plus one interaction
``x0 * x1`` of strength 1 and noise of sd 0.05. Among the 20 main effects and
190 possible interactions, the sparse kernel interaction model should report
exactly the planted ones, with credible intervals around the truth.

A second problem plants an interaction ``x3 * x4`` whose parents have no
main effect at all: the model still finds it, because an interaction's
prior scale is the product of its parents' kernel scales, which the
posterior raises (docs/skim.md section 4).

The exact Gaussian process costs O(N^3) per gradient, so the script prints
the estimated fit time first; ``--inference svi`` is the fast path for a
few hundred rows or more.

Run with ``python examples/sparse_interactions.py`` (``--x64`` for float64,
``--inference svi`` for the fast path).
"""

import argparse
import time

import jax
import numpy as np
from sklearn.metrics import r2_score

from bayes_sklearn import SparseInteractionRegressor, estimate_fit_seconds


def make_data(rng, n_samples=100, n_features=20, n_active=3, noise=0.05):
    """Planted main effects on the first ``n_active`` features and x0 * x1."""
    X = rng.normal(size=(2 * n_samples, n_features))
    coef = np.zeros(n_features)
    coef[:n_active] = 0.5 + 2.5 * rng.uniform(size=n_active)
    f = X @ coef + 1.0 * X[:, 0] * X[:, 1]
    y = f + noise * rng.normal(size=2 * n_samples)
    train, test = slice(0, n_samples), slice(n_samples, None)
    return (X[train], y[train]), (X[test], f[test]), coef


def main(args):
    rng = np.random.default_rng(args.seed)
    (X, y), (X_test, f_test), coef = make_data(rng)
    planted = {f"x{i}": round(float(coef[i]), 3) for i in range(3)}
    print(f"planted main effects: {planted}")
    print("planted interaction: x0:x1 = 1.0\n")

    budget = dict(
        inference=args.inference, n_warmup=args.n_warmup, n_draws=args.n_draws
    )
    estimate = estimate_fit_seconds(*X.shape, **budget)
    print(f"estimated fit time (excluding compilation): {estimate:.0f} s")
    reg = SparseInteractionRegressor(**budget, random_state=args.seed)
    start = time.perf_counter()
    reg.fit(X, y)
    print(f"fit in {time.perf_counter() - start:.1f} s; {reg.diagnostics_}\n")

    # Active effects with 90% credible intervals, in the units of X and y.
    print(reg.summary(prob=0.9).round(3).to_string(), "\n")
    found = set(reg.active_features_) == {0, 1, 2}
    found &= [tuple(p) for p in reg.active_interactions_] == [(0, 1)]
    print("recovered exactly the planted effects:", found)
    r2 = r2_score(f_test, reg.predict(X_test))
    print(f"held-out R^2 of the posterior mean: {r2:.4f}")

    mean, std = reg.predict(X_test[:3], return_std=True)
    for m, s, f in zip(mean, std, f_test[:3], strict=True):
        print(f"  prediction {m:7.3f} +- {s:.3f}   (noise-free truth {f:7.3f})")

    # An interaction whose parents have no main effect (centred columns, so
    # the slopes of x3 and x4 at the data mean are exactly 0).
    X = rng.normal(size=(100, 8))
    X -= X.mean(axis=0)
    y = X[:, 0] + X[:, 3] * X[:, 4] + 0.05 * rng.normal(size=100)
    reg = SparseInteractionRegressor(**budget, random_state=args.seed).fit(X, y)
    print("\ny = x0 + x3 * x4: active features", reg.active_features_.tolist())
    print("active interactions", reg.active_interactions_.tolist())
    print(reg.summary(prob=0.9).round(3).to_string())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-warmup", type=int, default=300)
    parser.add_argument("--n-draws", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--x64", action="store_true", help="compute in float64")
    parser.add_argument("--inference", choices=["nuts", "svi"], default="nuts")
    args = parser.parse_args()
    with jax.enable_x64(args.x64):
        main(args)

"""Finding sparse main effects and pairwise interactions with SKIM.

The synthetic problem of the NumPyro sparse-regression example (docs/skim.md
section 5): 100 samples of 20 standard-normal features; only the first three
matter, with coefficients drawn from U(0.5, 3), plus one interaction
``x0 * x1`` of strength 1 and noise of sd 0.05. Among the 20 main effects and
190 possible interactions, the sparse kernel interaction model should report
exactly the planted ones, with credible intervals around the truth.

Run with ``python examples/sparse_interactions.py`` (``--x64`` for float64).
"""

import argparse
import time

import jax
import numpy as np
from sklearn.metrics import r2_score

from bayes_sklearn import SparseInteractionRegressor


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

    reg = SparseInteractionRegressor(
        n_warmup=args.n_warmup, n_draws=args.n_draws, random_state=args.seed
    )
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-warmup", type=int, default=300)
    parser.add_argument("--n-draws", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--x64", action="store_true", help="compute in float64")
    args = parser.parse_args()
    with jax.enable_x64(args.x64):
        main(args)

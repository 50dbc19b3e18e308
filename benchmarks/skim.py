"""Cost of SparseInteractionRegressor as the features and the samples grow.

For each configuration (synthetic data of docs/skim.md section 5: three
active features and the interaction x0 * x1) this prints

* ``fit s``: one ``fit`` (compiling where the configuration needs a new
  program, sampling, recovering all main effects and interactions), split
  into ``compile s`` (JAX's own monitoring events) and ``run s``;
* ``ms/leapfrog``: post-warmup sampling of ``--n-draws`` draws, compile time
  subtracted, divided by the number of leapfrog steps, the measure of the
  NumPyro paper (Phan et al. 2019, SKIM benchmark) that removes the effect of
  the tree depth;
* ``steps/draw``: mean leapfrog steps per NUTS transition in that run.

Cost per leapfrog step is O(N^2 P + N^3): linear in P, cubic in N.
Run ``python benchmarks/skim.py``, or shrink it with ``--quick``,
``--features``, ``--samples``, ``--n-warmup``, ``--n-draws``. SKIM posteriors
need deep trees early in warmup, so a fit costs thousands of leapfrog steps
per hundred iterations.
"""

import argparse
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from compile_timer import TIMER
from sklearn.exceptions import ConvergenceWarning

from bayes_sklearn import SparseInteractionRegressor
from bayes_sklearn._base import bucket_size
from bayes_sklearn._sparse_interaction import (
    _single_threaded_blas,
    sparse_interaction_model,
)
from core_ppl.infer import MCMC, NUTS

# Warmup before timing leapfrog steps: enough to leave the initial point.
_LEAPFROG_WARMUP = 50


def make_data(rng, n_samples, n_features):
    X = rng.normal(size=(n_samples, n_features))
    coef = np.zeros(n_features)
    coef[:3] = 0.5 + 2.5 * rng.uniform(size=3)
    y = X @ coef + X[:, 0] * X[:, 1] + 0.05 * rng.normal(size=n_samples)
    return X, y


def model_args(reg, X, y):
    """The padded arrays the estimator hands to the sampler."""
    weight = np.ones(len(y))
    inputs = reg._model_inputs(X, y, weight)
    rows, hyper = inputs.rows, inputs.hyperparameters
    n_rows = bucket_size(len(y), reg._min_padded_rows)
    padded = [np.pad(r, [(0, n_rows - len(y))] + [(0, 0)] * (r.ndim - 1)) for r in rows]
    weight = np.pad(weight, (0, n_rows - len(y)))
    return tuple(jnp.asarray(a) for a in (*padded, weight, *hyper))


def time_leapfrog(args, n_draws, seed):
    """ms per leapfrog step and mean steps per draw, sampling only: a short
    warmup (the cost of a step does not depend on how well it adapted), then
    ``n_draws`` post-warmup draws, their compile time subtracted."""
    mcmc = MCMC(
        NUTS(sparse_interaction_model),
        num_warmup=_LEAPFROG_WARMUP,
        num_samples=1,
        progress_bar=False,
    )
    key = jax.random.PRNGKey(seed)
    mcmc.run(key, *args)
    sampler = MCMC(
        NUTS(sparse_interaction_model),
        num_warmup=0,
        num_samples=n_draws,
        progress_bar=False,
    )
    sampler.post_warmup_state = mcmc.last_state

    def sample():
        sampler.run(jax.random.fold_in(key, 1), *args, extra_fields=("num_steps",))
        jax.block_until_ready(sampler.get_samples())

    wall, compiling = TIMER.time(sample)
    steps = np.asarray(sampler.get_extra_fields()["num_steps"])
    return 1e3 * (wall - compiling) / steps.sum(), steps.mean()


def one_configuration(n_samples, n_features, opts):
    rng = np.random.default_rng(opts.seed)
    X, y = make_data(rng, n_samples, n_features)
    reg = SparseInteractionRegressor(
        n_warmup=opts.n_warmup, n_draws=opts.n_draws, random_state=opts.seed
    )
    wall, compiling = TIMER.time(lambda: reg.fit(X, y))
    with _single_threaded_blas():
        ms, steps = time_leapfrog(model_args(reg, X, y), opts.n_draws, opts.seed)
    found = set(reg.active_features_) >= {0, 1, 2} and any(
        tuple(p) == (0, 1) for p in reg.active_interactions_
    )
    return dict(
        N=n_samples,
        P=n_features,
        fit=wall,
        compile=compiling,
        run=wall - compiling,
        ms=ms,
        steps=steps,
        found=found,
    )


def print_row(row):
    print(
        f"{row['N']:>5} {row['P']:>5} {row['fit']:>8.1f} {row['compile']:>10.1f} "
        f"{row['run']:>8.1f} {row['ms']:>12.3f} {row['steps']:>11.1f} "
        f"{row['found']!s:>7}",
        flush=True,
    )


def print_growth(rows, name):
    """Ratios to the smallest configuration and a fitted power law.

    The exponent is the least-squares slope of log(cost) on log(size); the
    O(N^2 P + N^3) cost of a leapfrog step predicts at most 1 in P and between
    2 and 3 in N (less while fixed overheads dominate at small sizes).
    """
    size = np.array([row[name] for row in rows], dtype=float)
    print(f"ratios to {name} = {size[0]:.0f}:", flush=True)
    for key, label in (("run", "fit run"), ("ms", "ms/leapfrog")):
        cost = np.array([row[key] for row in rows])
        ratios = ", ".join(f"{r:.2f}" for r in cost / cost[0])
        line = f"  {label:<12} x [{ratios}]"
        if len(rows) > 1:
            slope = np.polyfit(np.log(size), np.log(cost), 1)[0]
            line += f"   fitted exponent: cost ~ {name}^{slope:.2f}"
        print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--samples", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--n-samples-for-features", type=int, default=200)
    parser.add_argument("--n-features-for-samples", type=int, default=16)
    parser.add_argument("--n-warmup", type=int, default=200)
    parser.add_argument("--n-draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--x64", action="store_true", help="compute in float64")
    parser.add_argument(
        "--quick", action="store_true", help="P in {8, 16}, N in {100, 200}, 100+100"
    )
    opts = parser.parse_args()
    if opts.quick:
        opts.features, opts.samples = [8, 16], [100, 200]
        opts.n_warmup = opts.n_draws = 100
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(
        f"backend {jax.default_backend()}, x64={opts.x64}, "
        f"{opts.n_warmup} warmup + {opts.n_draws} draws, 1 chain",
        flush=True,
    )
    header = (
        f"{'N':>5} {'P':>5} {'fit s':>8} {'compile s':>10} {'run s':>8} "
        f"{'ms/leapfrog':>12} {'steps/draw':>11} {'found':>7}"
    )
    with jax.enable_x64(opts.x64):
        print(f"\ngrowing P at N = {opts.n_samples_for_features}\n{header}", flush=True)
        rows = []
        for p in opts.features:
            rows.append(one_configuration(opts.n_samples_for_features, p, opts))
            print_row(rows[-1])
        print_growth(rows, "P")
        print(f"\ngrowing N at P = {opts.n_features_for_samples}\n{header}", flush=True)
        rows = []
        for n in opts.samples:
            rows.append(one_configuration(n, opts.n_features_for_samples, opts))
            print_row(rows[-1])
        print_growth(rows, "N")


if __name__ == "__main__":
    main()

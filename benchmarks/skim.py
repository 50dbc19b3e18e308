"""SparseInteractionRegressor: NUTS against the SVI fast path, and its cost.

By default this compares, for each ``--samples`` N (100, 200, 500) on the
synthetic problem of docs/skim.md section 5 (P = 20, three active features
and the interaction x0 * x1, held-out rows for the RMSE), a NUTS fit and an
``inference="svi"`` fit side by side:

* ``est s``: :func:`~bayes_sklearn._sparse_interaction.estimate_fit_seconds`
  for the configuration, printed before the fit;
* ``fit s``: one ``fit`` (sampling or SVI, then recovering every main
  effect and interaction), ``compile s``, the part JAX spent compiling, and
  ``run s``, the rest, which the estimate is for;
* ``rmse``: root mean squared error of ``predict`` on 200 held-out rows
  against the noise-free function (the noise sd is 0.05);
* ``features`` / ``interactions``: the active ones found, and ``found``:
  exactly {0, 1, 2} and {(0, 1)}.

The full figures (default budgets, 500 + 500 NUTS iterations and 2000 SVI
steps, N up to 500: about half an hour on one CPU core) come from
``python benchmarks/skim.py``; ``--quick`` runs N = 100 only with 100 + 100
NUTS iterations, in a minute or two.

``--scaling`` adds the cost tables of the sampler alone as the features and
the samples grow: ``ms/leapfrog`` (post-warmup sampling of ``--n-draws``
draws, compile time subtracted, per leapfrog step, the measure of the NumPyro
paper, Phan et al. 2019, that removes the effect of the tree depth) and
``steps/draw`` (mean leapfrog steps per NUTS transition). Cost per leapfrog
step is O(N^2 P + N^3): linear in P, cubic in N. Shrink it with
``--features``, ``--scaling-samples``, ``--n-warmup``, ``--n-draws``.
"""

import argparse
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from compile_timer import TIMER
from sklearn.exceptions import ConvergenceWarning

from bayes_sklearn import SparseInteractionRegressor, estimate_fit_seconds
from bayes_sklearn._base import bucket_size
from bayes_sklearn._sparse_interaction import (
    _single_threaded_blas,
    sparse_interaction_model,
)
from core_ppl.infer import MCMC, NUTS

# Warmup before timing leapfrog steps: enough to leave the initial point.
_LEAPFROG_WARMUP = 50


def make_data(rng, n_samples, n_features, n_test=0):
    """Training rows and, with ``n_test``, held-out rows with the noise-free
    function: ``((X, y), (X_test, f_test))``."""
    n_total = n_samples + n_test
    X = rng.normal(size=(n_total, n_features))
    coef = np.zeros(n_features)
    coef[:3] = 0.5 + 2.5 * rng.uniform(size=3)
    f = X @ coef + X[:, 0] * X[:, 1]
    y = f + 0.05 * rng.normal(size=n_total)
    train = (X[:n_samples], y[:n_samples])
    return train if not n_test else (train, (X[n_samples:], f[n_samples:]))


def model_args(reg, X, y):
    """The padded arrays the estimator hands to the sampler."""
    weight = np.ones(len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FitTimeWarning, already shown by fit
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


# --- NUTS against SVI -----------------------------------------------------------

_N_TEST = 200
_COMPARE_FEATURES = 20


def compare_one(n_samples, inference, opts):
    """One fit of the synthetic problem; its times, accuracy and findings."""
    rng = np.random.default_rng(opts.seed)
    (X, y), (X_test, f_test) = make_data(rng, n_samples, _COMPARE_FEATURES, _N_TEST)
    budget = dict(n_warmup=opts.compare_warmup, n_draws=opts.compare_draws)
    reg = SparseInteractionRegressor(
        inference=inference, svi_steps=opts.svi_steps, random_state=opts.seed, **budget
    )
    estimate = estimate_fit_seconds(
        n_samples,
        _COMPARE_FEATURES,
        inference=inference,
        svi_steps=opts.svi_steps,
        **budget,
    )
    wall, compiling = TIMER.time(lambda: reg.fit(X, y))
    rmse = float(np.sqrt(np.mean(np.square(reg.predict(X_test) - f_test))))
    features = [int(i) for i in reg.active_features_]
    pairs = [tuple(int(i) for i in pair) for pair in reg.active_interactions_]
    return dict(
        N=n_samples,
        inference=inference,
        estimate=estimate,
        fit=wall,
        compile=compiling,
        rmse=rmse,
        features=features,
        pairs=pairs,
        found=features == [0, 1, 2] and pairs == [(0, 1)],
    )


def print_compare_row(row):
    pairs = " ".join(f"{i}:{j}" for i, j in row["pairs"]) or "-"
    print(
        f"{row['N']:>5} {row['inference']:>5} {row['estimate']:>7.0f} "
        f"{row['fit']:>7.1f} {row['compile']:>9.1f} "
        f"{row['fit'] - row['compile']:>7.1f} {row['rmse']:>7.3f} "
        f"{str(row['features']):>12} {pairs:>14} {row['found']!s:>6}",
        flush=True,
    )


def run_compare(opts):
    print(
        f"\nNUTS ({opts.compare_warmup} + {opts.compare_draws}) against SVI "
        f"({opts.svi_steps} steps, {opts.compare_draws} draws), P = "
        f"{_COMPARE_FEATURES}, RMSE on {_N_TEST} held-out rows",
        flush=True,
    )
    print(
        f"{'N':>5} {'inf':>5} {'est s':>7} {'fit s':>7} {'compile s':>9} "
        f"{'run s':>7} {'rmse':>7} {'features':>12} {'interactions':>14} {'found':>6}",
        flush=True,
    )
    for n in opts.samples:
        for inference in ("nuts", "svi"):
            print_compare_row(compare_one(n, inference, opts))


# --- cost of the sampler as P and N grow -----------------------------------------


def run_scaling(opts):
    header = (
        f"{'N':>5} {'P':>5} {'fit s':>8} {'compile s':>10} {'run s':>8} "
        f"{'ms/leapfrog':>12} {'steps/draw':>11} {'found':>7}"
    )
    print(
        f"\nsampler cost, {opts.n_warmup} warmup + {opts.n_draws} draws",
        flush=True,
    )
    print(f"\ngrowing P at N = {opts.n_samples_for_features}\n{header}", flush=True)
    rows = []
    for p in opts.features:
        rows.append(one_configuration(opts.n_samples_for_features, p, opts))
        print_row(rows[-1])
    print_growth(rows, "P")
    print(f"\ngrowing N at P = {opts.n_features_for_samples}\n{header}", flush=True)
    rows = []
    for n in opts.scaling_samples:
        rows.append(one_configuration(n, opts.n_features_for_samples, opts))
        print_row(rows[-1])
    print_growth(rows, "N")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--compare-warmup", type=int, default=500)
    parser.add_argument("--compare-draws", type=int, default=500)
    parser.add_argument("--svi-steps", type=int, default=2000)
    parser.add_argument("--scaling", action="store_true", help="add the cost tables")
    parser.add_argument("--features", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument(
        "--scaling-samples", type=int, nargs="+", default=[100, 200, 400]
    )
    parser.add_argument("--n-samples-for-features", type=int, default=200)
    parser.add_argument("--n-features-for-samples", type=int, default=16)
    parser.add_argument("--n-warmup", type=int, default=200)
    parser.add_argument("--n-draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--x64", action="store_true", help="compute in float64")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="N = 100 and NUTS 100 + 100 (scaling: P in {8, 16}, N in {100, 200})",
    )
    opts = parser.parse_args()
    if opts.quick:
        opts.samples = [100]
        opts.compare_warmup = opts.compare_draws = 100
        opts.features, opts.scaling_samples = [8, 16], [100, 200]
        opts.n_warmup = opts.n_draws = 100
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"backend {jax.default_backend()}, x64={opts.x64}, 1 chain", flush=True)
    with jax.enable_x64(opts.x64), _single_threaded_blas():
        run_compare(opts)
        if opts.scaling:
            run_scaling(opts)


if __name__ == "__main__":
    main()

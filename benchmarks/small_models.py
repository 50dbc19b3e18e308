"""NUTS on two small models: compile time, run time, ESS/s, leapfrog steps/s.

* Logistic regression on scikit-learn's breast-cancer data (569 x 30,
  standardised), Normal(0, 1) priors on the 30 coefficients and intercept.
* Eight schools, non-centred.

For each: a first fit in a fresh process (a new ``MCMC`` object; its compile
time is what JAX's own monitoring events report for tracing, lowering and
XLA compilation), a fit with a second new ``MCMC`` object (what a refit pays:
compile time should be zero), ESS/s (smallest bulk ESS over all latent
parameters divided by that fit's warmup+sampling time), leapfrog steps/s
on a post-warmup run of the same length, and for core_ppl the relative
cost of the progress bar (target <= 0.05).

If ``numpyro`` is importable (it is never a dependency: use a separate
virtual environment) the same models run with NumPyro in the same process
and the ratios are printed; our targets are compile <= 0.5x and ESS/s >=
1.5x NumPyro's.

Usage::

    python benchmarks/small_models.py [--warmup 500] [--samples 500] [--chains 1]
    # with the comparison, from a venv holding numpyro and scikit-learn:
    PYTHONPATH=. /path/to/venv/bin/python benchmarks/small_models.py
    # both libraries with XLA's small loops compiled as one function each
    # (core_ppl.util.set_small_loop_threshold):
    python benchmarks/small_models.py --small-loop-threshold 1048576
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from compile_timer import TIMER
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.diagnostics import effective_sample_size
from core_ppl.infer import MCMC, NUTS
from core_ppl.util import set_small_loop_threshold


def models(ppl, dist):
    """The two models, written once against a library's ``sample`` /
    ``deterministic`` and distributions: ``models(core_ppl,
    core_ppl.distributions)`` or ``models(numpyro, numpyro.distributions)``
    (a NumPyro model ports by changing its imports)."""

    def logistic_regression(X, y):
        intercept = ppl.sample("intercept", dist.Normal(0.0, 1.0))
        beta = ppl.sample(
            "beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1)
        )
        ppl.sample("y", dist.Bernoulli(logits=intercept + X @ beta), obs=y)

    def eight_schools(sigma, y):
        mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
        tau = ppl.sample("tau", dist.HalfCauchy(5.0))
        theta_tilde = ppl.sample(
            "theta_tilde", dist.Normal(0.0, 1.0).expand([8]).to_event(1)
        )
        ppl.deterministic("theta", mu + tau * theta_tilde)
        ppl.sample("y", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)

    return {
        "breast_cancer_logreg": logistic_regression,
        "eight_schools_noncentred": eight_schools,
    }


def datasets():
    """Model arguments by benchmark name."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    schools_y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    schools_sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    return {
        "breast_cancer_logreg": (
            jnp.asarray(X, jnp.float32),
            jnp.asarray(y, jnp.float32),
        ),
        "eight_schools_noncentred": (
            jnp.asarray(schools_sigma, jnp.float32),
            jnp.asarray(schools_y, jnp.float32),
        ),
    }


def _timed_run(mcmc, seed, args, **kwargs):
    def fit():
        mcmc.run(jax.random.PRNGKey(seed), *args, **kwargs)
        jax.block_until_ready(mcmc.get_samples())

    return TIMER.time(fit)


def _min_ess(mcmc):
    samples = mcmc.get_samples(group_by_chain=True)
    return min(
        float(np.nanmin(effective_sample_size(np.asarray(v))))
        for k, v in samples.items()
        if k in mcmc.last_state.z
    )


def benchmark(mcmc_class, nuts_class, model, args, num_warmup, num_samples, num_chains):
    """First fit (new MCMC object, nothing compiled), a second new MCMC
    object (what a refit pays), then leapfrog steps/s after warmup."""

    def new_mcmc():
        return mcmc_class(
            nuts_class(model),
            num_warmup=num_warmup,
            num_samples=num_samples,
            num_chains=num_chains,
            progress_bar=False,
        )

    first = _timed_run(new_mcmc(), 0, args)
    mcmc = new_mcmc()
    second = _timed_run(mcmc, 1, args)
    run_time = second.wall_s - second.compile_s
    ess = _min_ess(mcmc)
    # Leapfrog steps/s on post-warmup sampling (compile that program first).
    warm_state = mcmc.last_state
    for seed in (2, 3):
        mcmc.post_warmup_state = warm_state
        sampled = _timed_run(mcmc, seed, args, extra_fields=("num_steps",))
    fields = mcmc.get_extra_fields()
    steps = int(np.sum(fields["num_steps"]))
    return {
        "first_fit_s": first.wall_s,
        "compile_s": first.compile_s,
        "refit_compile_s": second.compile_s,
        "warmup+sampling_s": run_time,
        "min_ess": ess,
        "ess_per_s": ess / run_time,
        "leapfrog_per_s": steps / (sampled.wall_s - sampled.compile_s),
        "mean_steps": steps / (num_samples * num_chains),
        "divergences": int(np.sum(fields["diverging"])),
    }


def _print(name, result):
    print(name)
    for key, value in result.items():
        print(f"  {key:>18}: {value:,.2f}")


def progress_bar_overhead(model, args, num_warmup, num_samples, num_chains):
    """Relative cost of the progress bar: the same compiled program (the bar
    only changes a traced token) run with and without it, in 5 interleaved
    pairs; the median of the pairs' ratios resists this machine's noise."""

    def run_time(progress_bar):
        mcmc = MCMC(
            NUTS(model),
            num_warmup=num_warmup,
            num_samples=num_samples,
            num_chains=num_chains,
            progress_bar=progress_bar,
        )
        return _timed_run(mcmc, 7, args).wall_s

    run_time(True)  # imports and sets up tqdm once
    ratios = [run_time(True) / run_time(False) for _ in range(5)]
    return float(np.median(ratios)) - 1.0


def run_one(library, name, budget):
    """One (library, model) benchmark; meant for a fresh process."""
    data = datasets()[name]
    if library == "core_ppl":
        model = models(ppl, dist)[name]
        result = benchmark(MCMC, NUTS, model, data, *budget)
        result["progress_bar_overhead"] = progress_bar_overhead(model, data, *budget)
        return result
    import numpyro
    import numpyro.distributions
    import numpyro.infer

    model = models(numpyro, numpyro.distributions)[name]
    return benchmark(numpyro.infer.MCMC, numpyro.infer.NUTS, model, data, *budget)


def _in_fresh_process(library, name, args):
    """Run :func:`run_one` in a new interpreter, so that nothing compiled for
    an earlier model or library is reused by this one's first fit."""
    command = [
        sys.executable,
        __file__,
        f"--only={library}:{name}",
        f"--warmup={args.warmup}",
        f"--samples={args.samples}",
        f"--chains={args.chains}",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument(
        "--small-loop-threshold",
        type=int,
        help="call core_ppl.util.set_small_loop_threshold(BYTES) first; the "
        "fresh processes of both libraries inherit it",
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)  # LIBRARY:MODEL
    args = parser.parse_args()
    if args.small_loop_threshold is not None:  # before JAX starts
        set_small_loop_threshold(args.small_loop_threshold)
    budget = (args.warmup, args.samples, args.chains)
    if args.only:
        print(json.dumps(run_one(*args.only.split(":"), budget)))
        return
    print(
        f"device {jax.devices()[0]}, {args.chains} chain(s), "
        f"{args.warmup} warmup + {args.samples} draws; each first fit in a "
        f"fresh process; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    )
    libraries = ["core_ppl"]
    if importlib.util.find_spec("numpyro") is not None:
        import numpyro

        libraries.append("numpyro")
        print(f"numpyro {numpyro.__version__}: same models, data and budget")
    else:
        print("numpyro is not importable: no comparison (it is never a dependency)")
    for name in datasets():
        results = {lib: _in_fresh_process(lib, name, args) for lib in libraries}
        for lib, result in results.items():
            _print(f"{name} ({lib})", result)
        if "numpyro" in results:
            ours, theirs = results["core_ppl"], results["numpyro"]
            print(
                f"  ours/numpyro: compile {ours['compile_s'] / theirs['compile_s']:.2f}"
                " (target <= 0.5), first fit "
                f"{ours['first_fit_s'] / theirs['first_fit_s']:.2f}, ESS/s "
                f"{ours['ess_per_s'] / theirs['ess_per_s']:.2f} (target >= 1.5)"
            )


if __name__ == "__main__":
    main()

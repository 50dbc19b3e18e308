"""Benchmark: NUTS with the data's rows on one device vs split over several.

COVTYPE-shaped synthetic logistic regression (581,012 rows x 54 float32
features, labels drawn from a known linear model; coefficients ~ Normal(0,
1), intercept ~ Normal(0, 10)), sampled by ``MCMC(NUTS(model))`` twice with
the same key: once on one device, once with ``data_devices=D`` (the rows
split over ``D`` devices, :mod:`core_ppl.infer.sharding`). On CPU the
``D`` devices are XLA host devices (``--xla_force_host_platform_device_count``,
set here before JAX starts) sharing the machine's cores; on a machine with
several accelerators they are the accelerators.

Each configuration runs once to compile, then is timed on a second run with
a new ``MCMC`` object (same shapes: the compiled program is reused). Printed:

- time per leapfrog step: the timed run's wall time over its number of
  leapfrog steps (the sum of NUTS's ``num_steps`` over all iterations,
  warmup included), i.e. mostly one gradient of the log density over all
  rows;
- the posterior means of both runs and ``max |diff| / MCSE`` over the 55
  parameters, where ``MCSE = sqrt(mcse_1**2 + mcse_D**2)`` and each run's
  ``mcse = sd / sqrt(ESS)``. Same key and the same sums up to rounding, so
  the two chains coincide until rounding differences grow; in float32 they
  part within tens of iterations and are then as good as independent, so
  the ratio is the largest of 55 ``|N(0, 1)|``-like values, typically 2 to
  3.5. A wrong split (a device seeing only its own rows) would move the
  means by many MCSEs.

Run from the repository root. Full figures (minutes on a 2-core machine)::

    python benchmarks/sharded.py

A smoke run (4,000 rows, 50 + 50 iterations), the only one run while
cores are shared::

    python benchmarks/sharded.py --quick
"""

import argparse
import os
import sys
import time

ROWS, FEATURES = 581_012, 54


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="4,000 rows, 50 + 50 iterations"
    )
    args = parser.parse_args()
    if args.quick:
        args.rows, args.warmup, args.samples = 4_000, 50, 50
    # Equal blocks per device: drop the last few rows if needed (COVTYPE's
    # 581,012 rows split over 2 or 4 devices as they are).
    args.rows -= args.rows % args.devices
    return args


def _data(rows, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    coef = rng.normal(0.0, 0.5, FEATURES).astype(np.float32)
    logits = X @ coef - 0.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    return X, y


def logistic(X, y=None):
    import core_ppl as ppl
    import core_ppl.distributions as dist

    coef = ppl.sample(
        "coef", dist.Normal(0.0, 1.0).expand((X.shape[1],)).to_event(1)
    )
    intercept = ppl.sample("intercept", dist.Normal(0.0, 10.0))
    with ppl.plate("rows", X.shape[0]):
        ppl.sample("y", dist.Bernoulli(logits=X @ coef + intercept), obs=y)


def _run(args, X, y, data_devices):
    """Compile, then time a second run; returns seconds per leapfrog step
    and the draws (one vector of all parameters per draw)."""
    import jax
    import numpy as np

    from core_ppl.infer import MCMC, NUTS

    def run():
        mcmc = MCMC(
            NUTS(logistic),
            num_warmup=args.warmup,
            num_samples=args.samples,
            data_devices=data_devices,
            progress_bar=False,
        )
        start = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(args.seed), X, y=y, extra_fields=("num_steps",))
        samples = jax.block_until_ready(mcmc.get_samples())
        return time.perf_counter() - start, mcmc, samples

    run()  # compiles
    seconds, mcmc, samples = run()
    # Warmup's steps are not kept; NUTS's sampling steps per iteration stand
    # for them (the step size settles early in warmup).
    steps = np.asarray(mcmc.get_extra_fields()["num_steps"])
    total_steps = steps.mean() * (args.warmup + args.samples)
    draws = np.column_stack(
        [np.asarray(samples["coef"]), np.asarray(samples["intercept"])[:, None]]
    )
    return seconds / total_steps, draws


def _mean_and_mcse(draws):
    import numpy as np

    from core_ppl.diagnostics import effective_sample_size

    ess = effective_sample_size(draws[None].astype(np.float64))
    return draws.mean(axis=0), draws.std(axis=0, ddof=1) / np.sqrt(ess)


def main():
    args = _arguments()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import core_ppl

    core_ppl.set_host_device_count(args.devices)  # before JAX starts
    import jax
    import numpy as np

    X, y = _data(args.rows, args.seed)
    print(
        f"{args.rows} rows x {FEATURES} features, NUTS {args.warmup} + "
        f"{args.samples} iterations, {jax.device_count()} "
        f"{jax.default_backend()} devices"
    )
    results = {}
    for data_devices in (None, args.devices):
        per_step, draws = _run(args, X, y, data_devices)
        results[data_devices] = draws
        print(
            f"rows on {data_devices or 1} device(s): "
            f"{1e3 * per_step:.2f} ms per leapfrog step"
        )
    mean_1, mcse_1 = _mean_and_mcse(results[None])
    mean_d, mcse_d = _mean_and_mcse(results[args.devices])
    ratio = np.abs(mean_1 - mean_d) / np.sqrt(mcse_1**2 + mcse_d**2)
    moved = np.mean(np.ptp(results[None], axis=0) > 0)
    print(f"parameters whose chain moved: {moved:.0%}")
    print(
        f"posterior means: max |diff| = {np.abs(mean_1 - mean_d).max():.2e}, "
        f"max |diff| / MCSE = {np.nanmax(ratio):.3f} over {ratio.size} parameters"
    )


if __name__ == "__main__":
    main()

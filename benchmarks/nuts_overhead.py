"""Overhead of the NUTS machinery per leapfrog step.

Bayesian logistic regression on synthetic data of the COVTYPE shape
(581,012 x 54, float32). The figure of merit is

    (sampling time / leapfrog steps taken) / (time of one jitted
     value-and-grad of the same potential energy)

measured in the same process: 1.0 means the tree building, U-turn checks,
sampling and bookkeeping cost nothing next to the gradient. The data are a
traced argument of the compiled sampler (never a baked-in constant).

Usage::

    python benchmarks/nuts_overhead.py [--rows 581012] [--samples 100]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.infer import MCMC, NUTS
from core_ppl.infer.util import potential_energy
from core_ppl.jit import jit


def logistic_regression(X, y):
    beta = ppl.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    ppl.sample("y", dist.Bernoulli(logits=X @ beta), obs=y)


def synthetic_covtype(rows, cols=54, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, cols), dtype=np.float32)
    beta = rng.standard_normal(cols).astype(np.float32) / np.sqrt(cols)
    y = (rng.random(rows) < 1 / (1 + np.exp(-X @ beta))).astype(np.float32)
    return jnp.asarray(X), jnp.asarray(y)


def time_gradient(X, y, repeats):
    """Median wall time of one jitted value-and-grad of the potential,
    compiled with the sampler's XLA options (``core_ppl.jit``)."""
    grad = jit(
        jax.value_and_grad(
            lambda z, X, y: potential_energy(logistic_regression, (X, y), {}, z)
        )
    )
    z = {"beta": jnp.zeros(X.shape[1], X.dtype)}
    jax.block_until_ready(grad(z, X, y))
    times = []
    for i in range(repeats):
        z = {"beta": jnp.full(X.shape[1], 0.01 * i, X.dtype)}
        start = time.perf_counter()
        jax.block_until_ready(grad(z, X, y))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_sampling(X, y, num_warmup, num_samples):
    """Warm up, then time a post-warmup run (compiled beforehand)."""
    mcmc = MCMC(
        NUTS(logistic_regression),
        num_warmup=num_warmup,
        num_samples=num_samples,
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(0), X, y)
    warm_state = mcmc.last_state
    mcmc.post_warmup_state = warm_state
    mcmc.run(jax.random.PRNGKey(1), X, y)  # compiles the sampling-only program
    mcmc.post_warmup_state = warm_state
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(2), X, y, extra_fields=("num_steps",))
    jax.block_until_ready(mcmc.get_samples())
    elapsed = time.perf_counter() - start
    steps = int(np.sum(mcmc.get_extra_fields()["num_steps"]))
    return elapsed, steps, float(warm_state.step_size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=581_012)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--grad-repeats", type=int, default=30)
    args = parser.parse_args()
    X, y = synthetic_covtype(args.rows)
    print(f"data {X.shape} {X.dtype}, device {jax.devices()[0]}")
    elapsed, steps, step_size = time_sampling(X, y, args.warmup, args.samples)
    grad_time = time_gradient(X, y, args.grad_repeats)
    per_step = elapsed / steps
    print(
        f"sampling: {args.samples} draws, {steps} leapfrog steps in {elapsed:.2f} s "
        f"(step size {step_size:.3g})"
    )
    print(f"time per leapfrog step inside NUTS: {per_step * 1e3:.3f} ms")
    print(f"time of one jitted value_and_grad:  {grad_time * 1e3:.3f} ms")
    print(f"overhead ratio: {per_step / grad_time:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()

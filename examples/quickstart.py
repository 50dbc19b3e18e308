"""Quickstart: a core_ppl model, its log density, and NUTS on it.

Eight schools (Rubin 1981), the classic hierarchical model, non-centred.
Run with ``make demo`` or ``python examples/quickstart.py``.
"""

import os

import jax
import numpy as np

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.infer import MCMC, NUTS
from core_ppl.infer.util import log_density

# tests/test_examples.py runs every example with tiny budgets through this
# variable; the figures printed then mean nothing.
QUICK = os.environ.get("BAYES_SKLEARN_EXAMPLE_QUICK") == "1"
NUM_WARMUP, NUM_SAMPLES = (20, 20) if QUICK else (500, 500)

# Estimated treatment effects and their standard errors in eight schools.
y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0], dtype=np.float32)
sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0], dtype=np.float32)


def eight_schools(sigma, y=None):
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    tau = ppl.sample("tau", dist.HalfCauchy(5.0))
    with ppl.plate("school", sigma.shape[0]):
        theta_raw = ppl.sample("theta_raw", dist.Normal(0.0, 1.0))
        theta = ppl.deterministic("theta", mu + tau * theta_raw)
        ppl.sample("obs", dist.Normal(theta, sigma), obs=y)


def main():
    # A model is a function; handlers give it meaning.
    tr = handlers.trace(handlers.seed(eight_schools, rng_seed=0)).get_trace(sigma, y)
    print("sites of the model:", [(name, site["type"]) for name, site in tr.items()])
    params = {"mu": 0.0, "tau": 1.0, "theta_raw": np.zeros(8, np.float32)}
    log_joint, _ = log_density(eight_schools, (sigma, y), {}, params)
    print(f"log joint density at mu=0, tau=1, theta_raw=0: {float(log_joint):.3f}")

    # NUTS: warmup, adaptation and sampling for all chains in one XLA program.
    mcmc = MCMC(NUTS(eight_schools), num_warmup=NUM_WARMUP,
                num_samples=NUM_SAMPLES, num_chains=2, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), sigma, y=y)
    mcmc.print_summary()
    theta = mcmc.get_samples()["theta"]
    print("posterior mean effect per school:", np.round(np.asarray(theta.mean(0)), 1))


if __name__ == "__main__":
    main()

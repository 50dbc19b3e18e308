"""NUTS on two small models: compile time, run time, ESS/s, leapfrog steps/s.

* Logistic regression on scikit-learn's breast-cancer data (569 x 30,
  standardised), Normal(0, 1) priors on the 30 coefficients and intercept.
* Eight schools, non-centred.

For each: the first ``run`` (compile + warmup + sampling) and a second run of
the same compiled program with a new key (warmup + sampling only) give the
compile time; ESS/s is the smallest bulk ESS over all parameters divided by
the warmup+sampling time; leapfrog steps/s is measured on a post-warmup run
of the same length. A NumPyro comparison runs only if ``numpyro`` happens to
be importable (it is never a dependency).

Usage::

    python benchmarks/small_models.py [--warmup 500] [--samples 500] [--chains 1]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.diagnostics import effective_sample_size
from core_ppl.infer import MCMC, NUTS


def logistic_regression(X, y):
    intercept = ppl.sample("intercept", dist.Normal(0.0, 1.0))
    beta = ppl.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    ppl.sample("y", dist.Bernoulli(logits=intercept + X @ beta), obs=y)


def eight_schools(sigma, y):
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    tau = ppl.sample("tau", dist.HalfCauchy(5.0))
    theta_tilde = ppl.sample(
        "theta_tilde", dist.Normal(0.0, 1.0).expand([8]).to_event(1)
    )
    ppl.deterministic("theta", mu + tau * theta_tilde)
    ppl.sample("y", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)


def datasets():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    schools_y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    schools_sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    return {
        "breast_cancer_logreg": (
            logistic_regression,
            (jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)),
        ),
        "eight_schools_noncentred": (
            eight_schools,
            (
                jnp.asarray(schools_sigma, jnp.float32),
                jnp.asarray(schools_y, jnp.float32),
            ),
        ),
    }


def _timed_run(mcmc, seed, args, **kwargs):
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), *args, **kwargs)
    jax.block_until_ready(mcmc.get_samples())
    return time.perf_counter() - start


def _min_ess(mcmc):
    samples = mcmc.get_samples(group_by_chain=True)
    latent = mcmc.last_state.z
    return min(
        float(np.nanmin(effective_sample_size(np.asarray(v))))
        for k, v in samples.items()
        if k in latent
    )


def benchmark(model, args, num_warmup, num_samples, num_chains):
    mcmc = MCMC(
        NUTS(model),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        progress_bar=False,
    )
    first = _timed_run(mcmc, 0, args)
    run_time = _timed_run(mcmc, 1, args)
    ess = _min_ess(mcmc)
    # Leapfrog steps/s on post-warmup sampling (compile that program first).
    warm_state = mcmc.last_state
    for seed in (2, 3):
        mcmc.post_warmup_state = warm_state
        sample_time = _timed_run(mcmc, seed, args, extra_fields=("num_steps",))
    steps = int(np.sum(mcmc.get_extra_fields()["num_steps"]))
    divergences = int(np.sum(mcmc.get_extra_fields()["diverging"]))
    return {
        "compile_s": first - run_time,
        "warmup+sampling_s": run_time,
        "min_ess": ess,
        "ess_per_s": ess / run_time,
        "leapfrog_per_s": steps / sample_time,
        "mean_steps": steps / (num_samples * num_chains),
        "divergences": divergences,
    }


def numpyro_comparison(name, num_warmup, num_samples):
    try:
        import numpyro  # noqa: F401  (optional, never a dependency)
    except ImportError:
        return
    print(f"  numpyro is importable but no comparison is wired for {name}; skipped")
    return


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--chains", type=int, default=1)
    args = parser.parse_args()
    print(
        f"device {jax.devices()[0]}, {args.chains} chain(s), "
        f"{args.warmup} warmup + {args.samples} draws"
    )
    for name, (model, data) in datasets().items():
        result = benchmark(model, data, args.warmup, args.samples, args.chains)
        print(name)
        for key, value in result.items():
            print(f"  {key:>18}: {value:,.2f}")
        numpyro_comparison(name, args.warmup, args.samples)


if __name__ == "__main__":
    main()

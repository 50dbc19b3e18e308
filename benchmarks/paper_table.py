"""The NumPyro paper's three benchmark models, side by side with NumPyro.

* ``hmm``: a semi-supervised hidden Markov model (K = 3 hidden categories,
  10 words, 100 labelled and 500 unlabelled steps, simulated), Dirichlet
  priors on the transition and emission simplexes, the unlabelled part
  marginalised by the forward algorithm in ``lax.scan`` and added with
  ``factor``.
* ``skim``: the sparse kernel interaction model (docs/skim.md) on
  simulated data, N = 100, P = 20.
* ``covtype``: logistic regression on COVTYPE-shaped data (581,012 x 54,
  simulated standard normal features): the jitted gradient of the potential and the
  cost of a leapfrog step (HMC with 10 fixed steps and no adaptation), as
  multiples of that gradient.

Each (library, model) runs in a fresh interpreter, so nothing compiled for
one is reused by the other; ours and NumPyro's alternate in pairs (the order
flips each pair) and the table prints, per figure, ours / NumPyro's as the
median over the pairs with the smallest and largest pair in brackets. For
the sampled models one fit (warmup + draws, its compile time from JAX's
monitoring events) is followed by a second run of the same number of draws
from the adapted state; that run gives the time per leapfrog step, steps per
draw, min ESS per draw, min ESS per second of sampling (compile time
subtracted) and divergences. ``--show-warmup`` prints each run's adapted
step size and inverse mass matrix. ``--in-process REPEATS`` also times
the COVTYPE gradient and the samplers' leapfrog steps (with ``--gradient``
also the HMM's and SKIM's gradients) with both libraries in one process,
alternating (less noisy on a shared machine). ``--sweep SEEDS`` runs that
many single chains of HMM and SKIM per library (one fresh process each) and
prints the quartiles of their divergences, min ESS per draw, steps per draw
and step sizes: single HMM chains vary more than the samplers differ, so a
few pairs cannot settle those figures. ``--sweep-pairs PAIRS`` repeats the
sweep PAIRS times with other seeds, the libraries alternating, and prints
per figure the ratio of the chains' means in each pair of sweeps, as the
median over the pairs with their smallest and largest.
``--small-loop-threshold BYTES`` runs both libraries with XLA's small loops
compiled as one function each (``core_ppl.util.set_small_loop_threshold``).

Run it from a virtual environment holding numpyro (never a dependency)::

    PYTHONPATH=. /path/to/numpyro-venv/bin/python benchmarks/paper_table.py --quick
"""

import argparse
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from compile_timer import TIMER

LIBRARIES = ("core_ppl", "numpyro")
MODELS = ("hmm", "skim", "covtype")


def _library(name):
    """``(ppl, dist, infer, initialize_model)`` of a library by name."""
    if name == "core_ppl":
        import core_ppl as ppl
        import core_ppl.distributions as dist
        import core_ppl.infer as infer
        from core_ppl.infer.util import initialize_model
    else:
        import numpyro as ppl
        import numpyro.distributions as dist
        import numpyro.infer as infer
        from numpyro.infer.util import initialize_model
    return ppl, dist, infer, initialize_model


# --- the models, written once ------------------------------------------------


def models(ppl, dist):
    """The three models against a library's primitives and distributions."""

    def forward_log_prob(log_transition, log_emission, words):
        # log alpha_t(k) = log p(words[:t+1], state_t = k); the first hidden
        # state is uniform. Summing over the previous state is a logsumexp.
        num_categories = log_transition.shape[0]
        start = log_emission[:, words[0]] - jnp.log(num_categories)

        def step(log_alpha, word):
            previous = log_alpha[:, None] + log_transition
            return jax.nn.logsumexp(previous, axis=0) + log_emission[:, word], None

        log_alpha, _ = jax.lax.scan(step, start, words[1:])
        return jax.nn.logsumexp(log_alpha)

    def hmm(transition_prior, emission_prior, categories, words, unlabelled):
        num_categories, num_words = transition_prior.shape[0], emission_prior.shape[0]
        transition = ppl.sample(
            "transition_prob",
            dist.Dirichlet(
                jnp.broadcast_to(transition_prior, (num_categories, num_categories))
            ),
        )
        emission = ppl.sample(
            "emission_prob",
            dist.Dirichlet(
                jnp.broadcast_to(emission_prior, (num_categories, num_words))
            ),
        )
        ppl.sample(
            "labelled_categories",
            dist.Categorical(transition[categories[:-1]]),
            obs=categories[1:],
        )
        ppl.sample(
            "labelled_words", dist.Categorical(emission[categories]), obs=words
        )
        log_prob = forward_log_prob(jnp.log(transition), jnp.log(emission), unlabelled)
        ppl.factor("forward_log_prob", log_prob)

    def skim_kernel(X, eta1, eta2, c):
        # The quadratic kernel of docs/skim.md with a small jitter.
        dot = X @ X.T
        k1 = 0.5 * eta2**2 * (1.0 + dot) ** 2
        k2 = -0.5 * eta2**2 * (X**2) @ (X**2).T
        k3 = (eta1**2 - eta2**2) * dot
        k4 = c**2 - 0.5 * eta2**2
        return k1 + k2 + k3 + k4 + 1e-4 * jnp.eye(X.shape[0])

    def skim(X, y):
        n, p = X.shape
        sparsity = max(1.0, p / 10)
        sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
        phi = sigma * (sparsity / np.sqrt(n)) / (p - sparsity)
        eta1 = ppl.sample("eta1", dist.HalfCauchy(phi))
        msq = ppl.sample("msq", dist.InverseGamma(3.0, 1.0))
        xisq = ppl.sample("xisq", dist.InverseGamma(3.0, 1.0))
        eta2 = eta1**2 * jnp.sqrt(xisq) / msq
        lam = ppl.sample("lambda", dist.HalfCauchy(jnp.ones(p)).to_event(1))
        kappa = jnp.sqrt(msq) * lam / jnp.sqrt(msq + (eta1 * lam) ** 2)
        cov = skim_kernel(kappa * X, eta1, eta2, 1.0) + sigma**2 * jnp.eye(n)
        # NumPyro validates parameters by default, and a covariance built from
        # a prior draw (HalfCauchy scales) can fail its float32 check while
        # tracing at initialisation: validate in neither library.
        likelihood = dist.MultivariateNormal(
            jnp.zeros(n), covariance_matrix=cov, validate_args=False
        )
        ppl.sample("y", likelihood, obs=y)

    def logistic_regression(X, y):
        beta = ppl.sample(
            "beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1)
        )
        ppl.sample("y", dist.Bernoulli(logits=X @ beta), obs=y)

    return {"hmm": hmm, "skim": skim, "covtype": logistic_regression}


# --- the data ------------------------------------------------------------------


def hmm_data(seed=0, num_categories=3, num_words=10, labelled=100, unlabelled=500):
    rng = np.random.default_rng(seed)
    transition = rng.dirichlet(np.ones(num_categories), size=num_categories)
    emission = rng.dirichlet(np.full(num_words, 0.1), size=num_categories)
    states = [rng.integers(num_categories)]
    for _ in range(labelled + unlabelled - 1):
        states.append(rng.choice(num_categories, p=transition[states[-1]]))
    words = np.array([rng.choice(num_words, p=emission[s]) for s in states])
    states = np.array(states)
    return (
        jnp.ones(num_categories),
        jnp.full(num_words, 0.1),
        jnp.asarray(states[:labelled], jnp.int32),
        jnp.asarray(words[:labelled], jnp.int32),
        jnp.asarray(words[labelled:], jnp.int32),
    )


def skim_data(seed=0, n=100, p=20):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    coef = np.zeros(p)
    coef[:3] = 0.5 + 2.5 * rng.uniform(size=3)
    y = X @ coef + X[:, 0] * X[:, 1] + 0.05 * rng.normal(size=n)
    return jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)


def covtype_data(seed=0, n=581_012, p=54):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p), dtype=np.float32)
    coef = rng.normal(scale=0.5, size=p).astype(np.float32)
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-(X @ coef)))).astype(np.float32)
    return jnp.asarray(X), jnp.asarray(y)


DATA = {"hmm": hmm_data, "skim": skim_data, "covtype": covtype_data}


# --- one (library, model) run, in a fresh process ------------------------------


def _min_ess(samples, latent):
    from core_ppl.diagnostics import effective_sample_size

    return min(
        float(np.nanmin(effective_sample_size(np.asarray(samples[k])[None])))
        for k in latent
    )


def _warmup_state(state):
    """Step size and the inverse mass matrix's diagonal, as plain lists."""
    # NumPyro keeps them in the state's adapt_state, core_ppl in the state.
    adapted = getattr(state, "adapt_state", state)
    imm, step = adapted.inverse_mass_matrix, adapted.step_size
    if isinstance(imm, dict):  # NumPyro keys it by the tuple of site names
        imm = jnp.concatenate([jnp.ravel(v) for v in imm.values()])
    imm = np.asarray(imm)
    diag = np.diag(imm) if imm.ndim == 2 else imm
    return float(step), [round(float(v), 4) for v in diag]


def _fit_and_resample(infer, model, args, num_warmup, num_draws, seed):
    """Fit (warmup + draws), then ``num_draws`` more from the adapted state;
    the figures of that second run, compile time subtracted."""
    mcmc = infer.MCMC(
        infer.NUTS(model),
        num_warmup=num_warmup,
        num_samples=num_draws,
        progress_bar=False,
    )
    fit = TIMER.time(
        lambda: jax.block_until_ready(
            mcmc.run(jax.random.PRNGKey(seed), *args) or mcmc.get_samples()
        )
    )
    step_size, imm = _warmup_state(mcmc.last_state)
    latent = list(mcmc.last_state.z)
    mcmc.post_warmup_state = mcmc.last_state
    sampled = TIMER.time(
        lambda: jax.block_until_ready(
            mcmc.run(
                jax.random.PRNGKey(seed + 1000), *args, extra_fields=("num_steps",)
            )
            or mcmc.get_samples()
        )
    )
    seconds = sampled.wall_s - sampled.compile_s
    fields = mcmc.get_extra_fields()
    steps = int(np.sum(fields["num_steps"]))
    ess = _min_ess(mcmc.get_samples(), latent)
    return {
        "compile_s": fit.compile_s,
        "leapfrog_ms": 1e3 * seconds / steps,
        "steps_per_draw": steps / num_draws,
        "min_ess_per_draw": ess / num_draws,
        "min_ess_per_s": ess / seconds,
        "divergences": int(np.sum(fields["diverging"])),
        "step_size": step_size,
        "inverse_mass_diag": imm,
    }


def sample_model(library, name, num_warmup, num_draws, seed):
    """One fit and resampling run of ``name`` with ``library``."""
    ppl, dist, infer, _ = _library(library)
    model, args = models(ppl, dist)[name], DATA[name]()
    return _fit_and_resample(infer, model, args, num_warmup, num_draws, seed)


SWEEP_FIGURES = (
    "divergences", "min_ess_per_draw", "steps_per_draw", "leapfrog_ms",
    "min_ess_per_s", "step_size",
)


def sweep_seeds(library, name, num_warmup, num_draws, seeds, first_seed=0):
    """Chains started from ``seeds`` different keys (``first_seed`` on) in
    one process (the program compiled once): per chain the divergences, min
    ESS per draw, steps per draw, time per leapfrog step, min ESS per second
    (compile time subtracted) and adapted step size of a second run of
    ``num_draws`` from the adapted state. Single chains of the HMM vary far
    more than the two samplers differ, so compare these distributions, not
    a few pairs."""
    ppl, dist, infer, _ = _library(library)
    model, args = models(ppl, dist)[name], DATA[name]()
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        figures = _fit_and_resample(infer, model, args, num_warmup, num_draws, seed)
        rows.append({key: figures[key] for key in SWEEP_FIGURES})
    return rows


def summarise_sweep(name, sweeps):
    lines = [f"{name}: {len(sweeps['core_ppl'])} chains per library, one seed each"]
    for key in SWEEP_FIGURES:
        parts = []
        for lib in LIBRARIES:
            values = np.array([row[key] for row in sweeps[lib]], float)
            q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
            parts.append(
                f"{lib} median {median:.4g} [{q1:.4g}, {q3:.4g}] mean "
                f"{values.mean():.4g}"
            )
        medians = [np.median([row[key] for row in sweeps[lib]]) for lib in LIBRARIES]
        if key != "divergences" and medians[1] > 0:
            parts.append(f"ratio of medians {medians[0] / medians[1]:.2f}")
        lines.append(f"  {key:>17}: " + "; ".join(parts))
    zero = [sum(row["divergences"] == 0 for row in sweeps[lib]) for lib in LIBRARIES]
    lines.append(f"  chains without divergences: ours {zero[0]}, numpyro {zero[1]}")
    return "\n".join(lines)


def summarise_sweep_pairs(name, pairs):
    """Per figure, ours / NumPyro's ratio of the chains' means in each pair
    of sweeps: the median over the pairs [min, max]. Pooling a sweep's
    chains first makes each pair's ratio far less noisy than one chain's."""
    lines = [
        f"{name}: {len(pairs)} pairs of sweeps, ratio of the chains' means per "
        "pair, median [min, max]"
    ]
    for key in SWEEP_FIGURES:
        means = {
            lib: np.array([np.mean([row[key] for row in p[lib]]) for p in pairs])
            for lib in LIBRARIES
        }
        if key == "divergences":
            lines.append(
                f"  {key:>17}: mean per chain, ours "
                f"{np.round(means['core_ppl'], 2).tolist()}, numpyro "
                f"{np.round(means['numpyro'], 2).tolist()}"
            )
            continue
        ratio = means["core_ppl"] / means["numpyro"]
        lines.append(
            f"  {key:>17}: {np.median(ratio):.2f} [{ratio.min():.2f}, "
            f"{ratio.max():.2f}]  (pairs: {np.round(ratio, 2).tolist()})"
        )
    return "\n".join(lines)


def _median_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_gradient(library, num_draws, seed):
    """The jitted gradient of the potential, and a leapfrog step of HMC with
    10 fixed steps (no adaptation) as a multiple of it."""
    ppl, dist, infer, initialize_model = _library(library)
    model, args = models(ppl, dist)["covtype"], DATA["covtype"]()
    info = initialize_model(jax.random.PRNGKey(seed), model, model_args=args)
    z = info.param_info.z
    grad = jax.jit(jax.value_and_grad(info.potential_fn))
    gradient_ms = 1e3 * _median_seconds(
        lambda: jax.block_until_ready(grad(z)), repeats=20
    )
    num_steps = 10
    mcmc = infer.MCMC(
        infer.HMC(
            model, step_size=1e-3, num_steps=num_steps, adapt_step_size=False,
            adapt_mass_matrix=False,
        ),
        num_warmup=0,
        num_samples=num_draws,
        progress_bar=False,
    )
    run = TIMER.time(
        lambda: jax.block_until_ready(
            mcmc.run(jax.random.PRNGKey(seed), *args) or mcmc.get_samples()
        )
    )
    leapfrog_ms = 1e3 * (run.wall_s - run.compile_s) / (num_draws * num_steps)
    return {
        "compile_s": run.compile_s,
        "gradient_ms": gradient_ms,
        "leapfrog_ms": leapfrog_ms,
        "leapfrog_per_gradient": leapfrog_ms / gradient_ms,
    }


def _gradient(library, name, args):
    ppl, dist, _, initialize_model = _library(library)
    model = models(ppl, dist)[name]
    info = initialize_model(jax.random.PRNGKey(0), model, model_args=args)
    grad = jax.jit(jax.value_and_grad(info.potential_fn))
    z = info.param_info.z

    def gradient():  # seconds per call
        start = time.perf_counter()
        jax.block_until_ready(grad(z))
        return time.perf_counter() - start

    return gradient


def _warm_sampler(library, name, args, num_warmup, num_draws):
    ppl, dist, infer, _ = _library(library)
    mcmc = infer.MCMC(
        infer.NUTS(models(ppl, dist)[name]),
        num_warmup=num_warmup,
        num_samples=num_draws,
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(0), *args)
    state = mcmc.last_state

    def sample():  # seconds per leapfrog step, compile time subtracted
        mcmc.post_warmup_state = state
        run = TIMER.time(
            lambda: jax.block_until_ready(
                mcmc.run(jax.random.PRNGKey(1), *args, extra_fields=("num_steps",))
                or mcmc.get_samples()
            )
        )
        steps = int(np.sum(mcmc.get_extra_fields()["num_steps"]))
        return (run.wall_s - run.compile_s) / steps

    return sample


def in_process(name, opts, repeats, gradient=False):
    """Ours and NumPyro's in one process, called alternately ``repeats``
    times: the model's jitted gradient (always for COVTYPE), or a sampled
    model's time per leapfrog step from its adapted state. Each pair's ratio
    sees the same load, which on a shared machine moves more between
    processes than between two calls."""
    args = DATA[name]()
    gradient = gradient or name == "covtype"
    if gradient:
        timed = {lib: _gradient(lib, name, args) for lib in LIBRARIES}
    else:
        budget = {"hmm": opts.hmm, "skim": opts.skim}[name]
        timed = {lib: _warm_sampler(lib, name, args, *budget) for lib in LIBRARIES}
    for call in timed.values():  # compile and warm up
        call()
    seconds = {lib: [] for lib in LIBRARIES}
    for _ in range(repeats):
        for lib, call in timed.items():
            seconds[lib].append(call())
    ratio = np.array(seconds["core_ppl"]) / np.array(seconds["numpyro"])
    what = "gradient" if gradient else "leapfrog step"
    return (
        f"{name} {what}, one process, {repeats} alternating calls: ours "
        f"{1e3 * np.median(seconds['core_ppl']):.4g} ms, numpyro "
        f"{1e3 * np.median(seconds['numpyro']):.4g} ms; ratio median "
        f"{np.median(ratio):.3f}, quartiles [{np.quantile(ratio, 0.25):.3f}, "
        f"{np.quantile(ratio, 0.75):.3f}]"
    )


def run_one(library, name, opts, seed):
    if name == "covtype":
        return time_gradient(library, opts.covtype_draws, seed)
    budget = {"hmm": opts.hmm, "skim": opts.skim}[name]
    return sample_model(library, name, *budget, seed)


def _in_fresh_process(library, name, opts, seed):
    command = [
        sys.executable, __file__, f"--only={library}:{name}:{seed}",
        f"--hmm={opts.hmm[0]},{opts.hmm[1]}", f"--skim={opts.skim[0]},{opts.skim[1]}",
        f"--covtype-draws={opts.covtype_draws}",
    ]
    # Compile times are of a cold start: core_ppl's on-disk program cache off.
    env = {**os.environ, "CORE_PPL_CACHE_DIR": "off"}
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{library}:{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sweep_in_fresh_process(library, name, opts, first_seed=0):
    command = [
        sys.executable, __file__,
        f"--only-sweep={library}:{name}:{opts.sweep}:{first_seed}",
        f"--hmm={opts.hmm[0]},{opts.hmm[1]}", f"--skim={opts.skim[0]},{opts.skim[1]}",
    ]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{library}:{name} sweep failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the table -----------------------------------------------------------------

FIGURES = {
    "hmm": (
        "compile_s", "leapfrog_ms", "steps_per_draw", "min_ess_per_draw",
        "min_ess_per_s", "divergences",
    ),
    "skim": (
        "compile_s", "leapfrog_ms", "steps_per_draw", "min_ess_per_draw",
        "min_ess_per_s", "divergences",
    ),
    "covtype": ("compile_s", "gradient_ms", "leapfrog_ms", "leapfrog_per_gradient"),
}


def summarise(name, pairs):
    """Per figure: our and NumPyro's medians, and the pairs' ratio as median
    [min, max]. Divergences are counts: their ratio is not printed."""
    lines = [f"{name} ({len(pairs)} pairs)"]
    for key in FIGURES[name]:
        ours = np.array([p["core_ppl"][key] for p in pairs], float)
        theirs = np.array([p["numpyro"][key] for p in pairs], float)
        line = (
            f"  {key:>22}: ours {np.median(ours):9.4g}  numpyro "
            f"{np.median(theirs):9.4g}"
        )
        if key == "divergences":
            line += f"  (ours {ours.astype(int).tolist()}, numpyro "
            line += f"{theirs.astype(int).tolist()})"
        else:
            ratio = ours / theirs
            line += (
                f"  ratio {np.median(ratio):.2f} "
                f"[{ratio.min():.2f}, {ratio.max():.2f}]"
            )
        lines.append(line)
    return "\n".join(lines)


def _budget(text):
    warmup, draws = (int(v) for v in text.split(","))
    return warmup, draws


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--hmm", type=_budget, default=(500, 500), help="WARMUP,DRAWS")
    parser.add_argument("--skim", type=_budget, default=(500, 500), help="WARMUP,DRAWS")
    parser.add_argument("--covtype-draws", type=int, default=20)
    parser.add_argument(
        "--quick", action="store_true",
        help="HMM 500+500, SKIM 200+200, COVTYPE 5 draws of 10 steps",
    )
    parser.add_argument("--show-warmup", action="store_true")
    parser.add_argument(
        "--in-process",
        type=int,
        metavar="REPEATS",
        help="also time both libraries in one process, alternating REPEATS "
        "times (COVTYPE gradient; leapfrog step of HMM and SKIM)",
    )
    parser.add_argument(
        "--gradient",
        action="store_true",
        help="with --in-process, also time the jitted gradient of HMM and SKIM",
    )
    parser.add_argument(
        "--small-loop-threshold",
        type=int,
        help="call core_ppl.util.set_small_loop_threshold(BYTES) first; the "
        "fresh processes of both libraries inherit it",
    )
    parser.add_argument(
        "--sweep",
        type=int,
        metavar="SEEDS",
        help="also run SEEDS single chains of HMM and SKIM per library, each "
        "library in one fresh process, and print the figures' quartiles",
    )
    parser.add_argument(
        "--sweep-pairs",
        type=int,
        default=1,
        metavar="PAIRS",
        help="with --sweep, run PAIRS sweeps per library (other seeds each, "
        "the libraries alternating) and also print each figure's ratio of "
        "the chains' means per pair",
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)  # LIBRARY:MODEL:SEED
    parser.add_argument("--only-sweep", help=argparse.SUPPRESS)  # LIB:MODEL:SEEDS
    opts = parser.parse_args()
    if opts.small_loop_threshold is not None:  # before JAX starts
        from core_ppl.util import set_small_loop_threshold

        set_small_loop_threshold(opts.small_loop_threshold)
    if opts.quick:
        opts.skim, opts.covtype_draws = (200, 200), 5
    if opts.only:
        library, name, seed = opts.only.split(":")
        print(json.dumps(run_one(library, name, opts, int(seed))))
        return
    if opts.only_sweep:
        library, name, seeds, first_seed = opts.only_sweep.split(":")
        budget = {"hmm": opts.hmm, "skim": opts.skim}[name]
        rows = sweep_seeds(library, name, *budget, int(seeds), int(first_seed))
        print(json.dumps(rows))
        return
    import numpyro

    print(
        f"device {jax.devices()[0]}, jax {jax.__version__}, numpyro "
        f"{numpyro.__version__}; HMM {opts.hmm}, SKIM {opts.skim} (warmup, draws), "
        f"1 chain; COVTYPE {opts.covtype_draws} HMC draws; fresh process per run; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}",
        flush=True,
    )
    for name in opts.models:
        pairs = []
        for i in range(opts.pairs):
            order = LIBRARIES if i % 2 == 0 else LIBRARIES[::-1]
            pairs.append({lib: _in_fresh_process(lib, name, opts, i) for lib in order})
            if opts.show_warmup and name != "covtype":
                for lib in LIBRARIES:
                    r = pairs[-1][lib]
                    print(
                        f"  pair {i} {lib:>8}: step size {r['step_size']:.4g}, "
                        f"ESS/draw {r['min_ess_per_draw']:.3f}, divergences "
                        f"{r['divergences']}, steps/draw {r['steps_per_draw']:.1f}"
                        f"\n    inverse mass diag {r['inverse_mass_diag']}",
                        flush=True,
                    )
        if pairs:  # --pairs 0 with --in-process times in one process only
            print(summarise(name, pairs), flush=True)
        if opts.sweep and name != "covtype":
            sweep_pairs = []
            for i in range(opts.sweep_pairs):
                order = LIBRARIES if i % 2 == 0 else LIBRARIES[::-1]
                sweep_pairs.append({
                    lib: _sweep_in_fresh_process(lib, name, opts, i * opts.sweep)
                    for lib in order
                })
            chains = {
                lib: [row for pair in sweep_pairs for row in pair[lib]]
                for lib in LIBRARIES
            }
            print(summarise_sweep(name, chains), flush=True)
            if opts.sweep_pairs > 1:
                print(summarise_sweep_pairs(name, sweep_pairs), flush=True)
        if opts.in_process:
            print(in_process(name, opts, opts.in_process), flush=True)
            if opts.gradient and name != "covtype":
                print(in_process(name, opts, opts.in_process, True), flush=True)


if __name__ == "__main__":
    main()

"""A first fit in a new process, with an empty and with a warm compile cache.

Every measurement runs in a fresh Python process (what a notebook restart, a
joblib worker or a new script pays), and the kinds alternate within each
round, so that slow phases of a shared machine fall on all of them:

- ``cold``: ``BayesianLogisticRegression(n_warmup=500, n_draws=500,
  n_chains=1).fit`` on standardised breast cancer, with an empty cache
  directory (``CORE_PPL_CACHE_DIR``), so everything compiles;
- ``warm``: the same fit with the directory the cold run of the round has
  just filled, so the sampler's executable is loaded instead of compiled;
- ``numpyro``: NumPyro's ``MCMC(NUTS(model), num_warmup=500,
  num_samples=500).run`` of the same model (coefficients ~ Normal(0, 1),
  intercept ~ Normal(0, 10), Bernoulli likelihood), when
  ``--numpyro-python`` names a Python that has numpyro (it is never a
  dependency of ours);
- with ``--grid``: a ``GridSearchCV(n_jobs=2)`` of 16 such fits
  (``prior_scale`` in {0.1, 1, 10}, 5 folds, refit), cold and warm: its two
  worker processes load or compile the sampler;
- with ``--predict``: ``SparseInteractionRegressor.predict`` in a new
  process after unpickling a fitted estimator, cold and warm.

The times are of the call alone (after imports and data loading, the same
for both libraries), plus the whole process as seen from outside. Medians
over ``--rounds`` rounds. Usage, from the repository root::

    python benchmarks/first_fit.py [--rounds 3] [--grid] [--predict]
        [--numpyro-python /path/to/venv-with-numpyro/bin/python]
"""

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time

N_WARMUP = N_DRAWS = 500
_EVENT = "/jax/core/compile/backend_compile_duration"


# --- what each fresh process measures ------------------------------------------------


def _data():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _timed(call):
    """Seconds of ``call()`` and the XLA compilations it caused."""
    import jax

    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kwargs: compiles.append(duration)
        if event == _EVENT
        else None
    )
    start = time.perf_counter()
    call()
    return {
        "call_s": time.perf_counter() - start,
        "compiles": len(compiles),
        "compile_s": sum(compiles),
    }


def _fit():
    from bayes_sklearn import BayesianLogisticRegression

    X, y = _data()
    model = BayesianLogisticRegression(
        n_warmup=N_WARMUP, n_draws=N_DRAWS, n_chains=1, random_state=0
    )
    return _timed(lambda: model.fit(X, y))


def _numpyro():
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    def model(X, y):
        coef = numpyro.sample("coef", dist.Normal(0.0, 1.0).expand([X.shape[1]]))
        intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
        numpyro.sample("y", dist.Bernoulli(logits=X @ coef + intercept), obs=y)

    X, y = _data()
    X, y = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)
    mcmc = MCMC(
        NUTS(model), num_warmup=N_WARMUP, num_samples=N_DRAWS, progress_bar=False
    )

    def fit():
        mcmc.run(jax.random.PRNGKey(0), X, y)
        jax.block_until_ready(mcmc.get_samples())

    return _timed(fit)


def _grid():
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from bayes_sklearn import BayesianLogisticRegression

    X, y = _data()
    search = GridSearchCV(
        BayesianLogisticRegression(
            n_warmup=N_WARMUP, n_draws=N_DRAWS, n_chains=1, random_state=0
        ),
        {"prior_scale": [0.1, 1.0, 10.0]},
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        n_jobs=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _timed(lambda: search.fit(X, y))


def _sparse_interaction_data():
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 8))
    y = X[:, 0] - 2.0 * X[:, 1] + X[:, 0] * X[:, 2] + 0.3 * rng.normal(size=100)
    return X, y


def _pickle_sparse_interaction(path):
    from bayes_sklearn import SparseInteractionRegressor

    X, y = _sparse_interaction_data()
    model = SparseInteractionRegressor(n_warmup=200, n_draws=200, random_state=0)
    with open(path, "wb") as file:
        pickle.dump(model.fit(X, y), file)
    return {}


def _predict(path):
    with open(path, "rb") as file:
        model = pickle.load(file)
    X, _ = _sparse_interaction_data()
    return _timed(lambda: model.predict(X))


WORKERS = {
    "fit": _fit,
    "numpyro": _numpyro,
    "grid": _grid,
    "pickle": _pickle_sparse_interaction,
    "predict": _predict,
}


# --- the driver -----------------------------------------------------------------------


def _run(python, worker, cache_dir, *args):
    """Run one worker in a fresh process; its figures plus the process's
    wall time."""
    env = {**os.environ, "CORE_PPL_CACHE_DIR": cache_dir}
    paths = [os.getcwd(), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    start = time.perf_counter()
    out = subprocess.run(
        [python, __file__, "--worker", worker, *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def _pairs(label, python, worker, rounds, *args, extra=None):
    """Cold then warm, in fresh processes, ``rounds`` times; with ``extra``
    (a ``(name, python, worker)``), that too in each round."""
    results = {"cold": [], "warm": []}
    if extra is not None:
        results[extra[0]] = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as parent:
            cache_dir = os.path.join(parent, "cache")
            results["cold"].append(_run(python, worker, cache_dir, *args))
            results["warm"].append(_run(python, worker, cache_dir, *args))
        if extra is not None:
            results[extra[0]].append(_run(extra[1], extra[2], "off"))
    _print(label, results)
    return results


def _median(runs, key):
    return statistics.median(run[key] for run in runs)


def _print(label, results):
    print(f"{label} (medians of {len(results['cold'])} fresh processes each)")
    for kind, runs in results.items():
        calls = ", ".join(f"{run['call_s']:.2f}" for run in runs)
        print(
            f"  {kind:8s} call {_median(runs, 'call_s'):6.2f} s [{calls}]"
            f"  XLA compiles {_median(runs, 'compiles'):4.0f}"
            f" ({_median(runs, 'compile_s'):.2f} s)"
            f"  process {_median(runs, 'process_s'):6.2f} s"
        )
    if "numpyro" in results:
        theirs = _median(results["numpyro"], "call_s")
        for kind in ("cold", "warm"):
            ratio = _median(results[kind], "call_s") / theirs
            print(f"  {kind} / numpyro: {ratio:.2f}x")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--numpyro-python")
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--predict", action="store_true")
    args, rest = parser.parse_known_args()
    if args.worker is not None:
        print(json.dumps(WORKERS[args.worker](*rest)))
        return
    python = sys.executable
    extra = None
    if args.numpyro_python:
        extra = ("numpyro", args.numpyro_python, "numpyro")
    _pairs("BayesianLogisticRegression.fit", python, "fit", args.rounds, extra=extra)
    if args.grid:
        _pairs("GridSearchCV(n_jobs=2), 16 fits", python, "grid", args.rounds)
    if args.predict:
        with tempfile.TemporaryDirectory() as parent:
            path = os.path.join(parent, "model.pkl")
            _run(python, "pickle", "off", path)
            _pairs(
                "SparseInteractionRegressor.predict after unpickling",
                python,
                "predict",
                args.rounds,
                path,
            )


if __name__ == "__main__":
    main()

"""Models run in several threads at once (``GridSearchCV`` under joblib's
threading backend): each thread has its own handler stack, and the shared
module-level state (compile caches, counters, progress bars) is locked, so
runs made in threads are bit-identical to the same runs made one by one."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.compile_events import count_compiles
from core_ppl.infer import MCMC, NUTS, SVI, Trace_ELBO
from core_ppl.infer.autoguide import AutoNormal
from core_ppl.jit import jit
from core_ppl.optim import Adam
from core_ppl.runtime import handler_stack


def _regression(x, y=None):
    # A model of its own, so that the first compile happens in the threads.
    w = ppl.sample("w", dist.Normal(0.0, 1.0))
    b = ppl.sample("b", dist.Normal(0.0, 1.0))
    with ppl.plate("data", x.shape[0]):
        ppl.sample("y", dist.Normal(w * x + b, 0.5), obs=y)


def _data(seed):
    # Two data sizes: the first two jobs, one per worker, trace and compile
    # programs of their own at the same time; the last two reuse them.
    rng = np.random.RandomState(seed)
    x = rng.normal(size=10 + seed % 2).astype(np.float32)
    return x, (0.7 * x - 0.2 + 0.5 * rng.normal(size=x.shape)).astype(np.float32)


def _mcmc_run(seed):
    mcmc = MCMC(NUTS(_regression), num_warmup=40, num_samples=40,
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), *_data(seed))
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}


def _in_threads(fn, jobs):
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(fn, jobs))


def test_mcmc_runs_in_threads_equal_sequential_runs_bit_for_bit():
    # Programs of the MCMC driver built, compiled or loaded from the cache.
    with count_compiles("_run_chains") as counter:
        threaded = _in_threads(_mcmc_run, range(4))
        # Two shapes, two programs; the sequential runs reuse them.
        assert counter.programs == 2
        sequential = [_mcmc_run(seed) for seed in range(4)]
    assert counter.programs == 2
    for got, expected in zip(threaded, sequential, strict=True):
        assert set(got) == {"w", "b"}
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name])
    assert not np.array_equal(sequential[0]["w"], sequential[1]["w"])


def _svi_run(seed):
    svi = SVI(_regression, AutoNormal(_regression), Adam(0.05), Trace_ELBO())
    result = svi.run(jax.random.PRNGKey(seed), 60, *_data(seed),
                     progress_bar=False)
    return np.asarray(result.losses), {k: np.asarray(v)
                                       for k, v in result.params.items()}


def test_svi_runs_in_threads_equal_sequential_runs_bit_for_bit():
    threaded = _in_threads(_svi_run, range(4))
    sequential = [_svi_run(seed) for seed in range(4)]
    for (losses, params), (losses_seq, params_seq) in zip(
        threaded, sequential, strict=True
    ):
        np.testing.assert_array_equal(losses, losses_seq)
        for name in params_seq:
            np.testing.assert_array_equal(params[name], params_seq[name])


def test_handler_stacks_of_threads_are_separate():
    # Each thread holds its handlers open while the other runs its model:
    # no site of one thread reaches the other's trace.
    barrier = threading.Barrier(2)

    def run(name):
        with handlers.trace() as tr, handlers.seed(rng_seed=0):
            barrier.wait()
            ppl.sample(name, dist.Normal(0.0, 1.0))
            barrier.wait()
        return list(tr), len(handler_stack())

    assert _in_threads(run, ["a", "b"]) == [(["a"], 0), (["b"], 0)]


def test_a_jitted_function_called_from_threads_at_once_compiles_once():
    traces = []

    @jit
    def slow_to_trace(x):
        traces.append(1)
        time.sleep(0.2)  # the other threads arrive while this one traces
        return x + 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        out = list(pool.map(lambda _: slow_to_trace(jnp.ones(3)), range(4)))
    assert len(traces) == 1
    for y in out:
        np.testing.assert_array_equal(y, np.full(3, 2.0))

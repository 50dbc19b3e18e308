"""Rows and chains split over devices (``core_ppl.infer.sharding``).

The multi-device runs happen in ONE child process started with four CPU
devices (``XLA_FLAGS`` must be set before JAX starts, and this process has
started it already) and float64, so that the comparisons measure the
layout, not float32 rounding. The child prints its results as JSON; the
tests below check them.

Tolerances: the sharded runs add the log density's terms in another order
(per device, then across devices), so their draws differ from the
one-device draws by rounding, amplified by the sampler's 60 iterations
(about 1e-10 here in float64). ``ATOL = 1e-6`` is far above that and far
below anything a wrong layout would give: a device summing only its own
quarter of the rows, or a chain run with another chain's key, moves the
draws by a sizeable fraction of the posterior sd (about 0.3).
"""


import jax
import numpy as np
import pytest

from core_ppl.infer import MCMC, NUTS, SVI, Trace_ELBO
from core_ppl.infer.autoguide import AutoNormal
from core_ppl.infer.sharding import (
    check_num_devices,
    device_mesh,
    num_rows,
    shard_chains,
    shard_rows,
)
from core_ppl.optim import Adam
from tests.host_devices import run_on_host_devices

ATOL = 1e-6

CHILD = r"""
import json

import jax
import jax.numpy as jnp
import numpy as np

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.infer import MCMC, NUTS, SVI, Trace_ELBO
from core_ppl.infer.autoguide import AutoNormal
from core_ppl.infer.sharding import shard_rows
from core_ppl.infer.util import potential_energy
from core_ppl.optim import Adam


def logistic(X, y=None):
    coef = ppl.sample(
        "coef", dist.Normal(0.0, 1.0).expand((X.shape[1],)).to_event(1)
    )
    with ppl.plate("rows", X.shape[0]):
        ppl.sample("y", dist.Bernoulli(logits=X @ coef), obs=y)


rng = np.random.RandomState(0)
X = rng.normal(size=(64, 3))
p = 1 / (1 + np.exp(-X @ np.array([1.0, -0.5, 0.0])))
y = (rng.rand(64) < p).astype(float)
out = {"devices": jax.device_count(), "x64": bool(jax.config.jax_enable_x64)}


def draws(chain_method="vectorized", data_devices=None):
    mcmc = MCMC(
        NUTS(logistic), num_warmup=30, num_samples=30, num_chains=2,
        chain_method=chain_method, data_devices=data_devices, progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(1), X, y=y)
    coef = mcmc.get_samples(group_by_chain=True)["coef"]
    out["spec_" + chain_method + str(data_devices)] = list(
        getattr(coef.sharding, "spec", ())
    )
    return np.asarray(coef).tolist()


out["one_device"] = draws()
out["rows_on_4"] = draws(data_devices=4)
out["parallel"] = draws("parallel")
out["parallel_rows_on_2"] = draws("parallel", data_devices=2)


def svi_fit(data_devices=None):
    svi = SVI(
        logistic, AutoNormal(logistic), Adam(0.05), Trace_ELBO(),
        data_devices=data_devices,
    )
    result = svi.run(jax.random.PRNGKey(2), 50, X, y=y, progress_bar=False)
    params = {k: np.asarray(v).tolist() for k, v in result.params.items()}
    return np.asarray(result.losses).tolist(), params


out["svi_one"] = svi_fit()
out["svi_4"] = svi_fit(4)
Xs, ys = shard_rows((X, y), 4)
out["x_spec"] = list(Xs.sharding.spec)
out["x_shards"] = [list(s.data.shape) for s in Xs.addressable_shards]
out["x_equal"] = bool(np.array_equal(np.asarray(Xs), X))
potential = jax.jit(lambda z, X, y: potential_energy(logistic, (X,), {"y": y}, z))
hlo = potential.lower({"coef": jnp.zeros(3)}, Xs, ys).compile().as_text()
out["all_reduce"] = "all-reduce" in hlo
try:
    shard_rows((X[:63], y[:63]), 4)
    out["indivisible"] = None
except ValueError as error:
    out["indivisible"] = str(error)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def four_devices():
    out = run_on_host_devices(CHILD)
    assert out["devices"] == 4 and out["x64"]
    return out


# --- four devices (child process) ----------------------------------------------


def test_mcmc_with_rows_on_four_devices_gives_the_one_device_draws(four_devices):
    one = np.asarray(four_devices["one_device"])
    assert one.shape == (2, 30, 3) and np.ptp(one) > 0.1  # chains that moved
    np.testing.assert_allclose(four_devices["rows_on_4"], one, rtol=0, atol=ATOL)


def test_parallel_chains_give_the_vectorized_draws(four_devices):
    one = np.asarray(four_devices["one_device"])
    # Two chains on two of the four devices, then on a (2 chains, 2 rows) mesh.
    np.testing.assert_allclose(four_devices["parallel"], one, rtol=0, atol=ATOL)
    np.testing.assert_allclose(
        four_devices["parallel_rows_on_2"], one, rtol=0, atol=ATOL
    )
    # Each device computed its own chains: the draws come back split.
    assert four_devices["spec_parallelNone"] == ["chains"]
    assert four_devices["spec_parallel2"] == ["chains"]
    assert four_devices["spec_vectorized4"] == []  # rows split, chains not


def test_svi_with_rows_on_four_devices_follows_the_one_device_run(four_devices):
    losses_one, params_one = four_devices["svi_one"]
    losses_four, params_four = four_devices["svi_4"]
    assert len(losses_one) == 50
    np.testing.assert_allclose(losses_four, losses_one, rtol=1e-9)
    assert params_four.keys() == params_one.keys()
    for name in params_one:
        np.testing.assert_allclose(
            params_four[name], params_one[name], rtol=0, atol=ATOL
        )


def test_rows_split_evenly_and_the_potential_sum_is_an_all_reduce(four_devices):
    assert four_devices["x_spec"] == ["rows"]
    assert four_devices["x_shards"] == [[16, 3]] * 4
    assert four_devices["x_equal"]
    assert four_devices["all_reduce"]


def test_rows_that_do_not_split_evenly_are_refused(four_devices):
    message = four_devices["indivisible"]
    assert message is not None
    assert "63 rows" in message and "data_devices=4" in message
    assert "64 rows" in message  # where to pad to


# --- one device (this process) -------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "2"])
def test_data_devices_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="data_devices must be None or an integer"):
        MCMC(NUTS(lambda: None), num_warmup=1, num_samples=1, data_devices=bad)


def test_more_data_devices_than_visible_are_refused():
    too_many = jax.device_count() + 1
    for make in (
        lambda: MCMC(
            NUTS(lambda: None), num_warmup=1, num_samples=1, data_devices=too_many
        ),
        lambda: SVI(
            lambda: None, AutoNormal(lambda: None), Adam(0.1), Trace_ELBO(),
            data_devices=too_many,
        ),
    ):
        with pytest.raises(ValueError, match=f"data_devices={too_many} but only"):
            make()
    assert check_num_devices("n", None) is None


def test_rows_are_the_leading_axis_of_the_first_array():
    X, y, scale = np.ones((6, 2)), np.zeros(6), np.ones(2)
    assert num_rows((3.0, X, y)) == 6  # a scalar first: not an array with an axis
    assert num_rows({"a": 1.0}) is None
    X_before = X.copy()
    placed = shard_rows((X, y, scale, "static"), device_mesh(data_devices=1))
    assert placed[3] == "static"
    for before, after in zip((X, y, scale), placed[:3]):
        assert isinstance(after, jax.Array)
        np.testing.assert_array_equal(after, before)
    np.testing.assert_array_equal(X, X_before)  # the input is not modified
    chains = shard_chains({"k": np.arange(4.0), "none": None}, device_mesh())
    assert chains["none"] is None
    np.testing.assert_array_equal(chains["k"], np.arange(4.0))

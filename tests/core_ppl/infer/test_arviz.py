"""core_ppl.infer.to_arviz: MCMC draws and sampler statistics as InferenceData."""

import sys

import arviz as az
import jax
import numpy as np
import pytest

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.infer import MCMC, NUTS, to_arviz
from core_ppl.infer.arviz import from_draws, sample_stats

N_CHAINS, N_DRAWS = 2, 60
ALL_FIELDS = (
    "num_steps",
    "accept_prob",
    "energy",
    "potential_energy",
    "step_size",
    "tree_depth",
)


def model(x):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0).expand((3,)).to_event(1))
    ppl.deterministic("total", mu.sum())
    with ppl.plate("rows", x.shape[0]):
        ppl.sample("x", dist.Normal(mu[0], 1.0), obs=x)


@pytest.fixture(scope="module")
def mcmc():
    sampler = MCMC(
        NUTS(model),
        num_warmup=60,
        num_samples=N_DRAWS,
        num_chains=N_CHAINS,
        progress_bar=False,
    )
    sampler.run(jax.random.PRNGKey(0), np.linspace(-1, 1, 5), extra_fields=ALL_FIELDS)
    return sampler


def test_posterior_is_grouped_by_chain_and_equals_the_draws(mcmc):
    idata = to_arviz(mcmc)
    samples = mcmc.get_samples(group_by_chain=True)
    assert set(idata.posterior.data_vars) == {"mu", "total"}
    assert dict(idata.posterior["mu"].sizes) == {
        "chain": N_CHAINS,
        "draw": N_DRAWS,
        "mu_dim_0": 3,
    }
    for name, value in samples.items():
        np.testing.assert_array_equal(idata.posterior[name].values, np.asarray(value))
    assert idata.posterior.attrs["inference_library"] == "core_ppl"


def test_sample_stats_take_arviz_names_and_signs(mcmc):
    idata = to_arviz(mcmc)
    stats = idata.sample_stats
    assert set(stats.data_vars) == {
        "diverging",
        "n_steps",
        "acceptance_rate",
        "energy",
        "lp",
        "step_size",
        "tree_depth",
    }
    fields = mcmc.get_extra_fields(group_by_chain=True)
    np.testing.assert_array_equal(stats["n_steps"].values, fields["num_steps"])
    np.testing.assert_array_equal(stats["lp"].values, -fields["potential_energy"])
    np.testing.assert_array_equal(
        stats["acceptance_rate"].values, fields["accept_prob"]
    )
    assert stats["diverging"].dtype == bool
    assert stats["diverging"].shape == (N_CHAINS, N_DRAWS)
    np.testing.assert_array_equal(stats["tree_depth"].values, fields["tree_depth"])


def test_only_recorded_fields_become_sample_stats():
    # The fixture's settings: the same compiled program, other fields kept.
    sampler = MCMC(
        NUTS(model),
        num_warmup=60,
        num_samples=N_DRAWS,
        num_chains=N_CHAINS,
        progress_bar=False,
    )
    sampler.run(jax.random.PRNGKey(1), np.zeros(5))
    assert list(to_arviz(sampler).sample_stats.data_vars) == ["diverging"]


def test_coords_and_dims_name_the_axes(mcmc):
    idata = to_arviz(mcmc, coords={"axis": ["a", "b", "c"]}, dims={"mu": ["axis"]})
    assert idata.posterior["mu"].dims == ("chain", "draw", "axis")
    assert list(idata.posterior["axis"].values) == ["a", "b", "c"]
    np.testing.assert_array_equal(
        idata.posterior["mu"].sel(axis="b").values,
        np.asarray(mcmc.get_samples(group_by_chain=True)["mu"])[:, :, 1],
    )


def test_az_summary_runs_and_agrees_with_numpy(mcmc):
    table = az.summary(to_arviz(mcmc))
    assert list(table.index) == ["mu[0]", "mu[1]", "mu[2]", "total"]
    draws = np.asarray(mcmc.get_samples()["mu"])
    np.testing.assert_allclose(table["mean"].values[:3], draws.mean(0), atol=1e-3)


def test_bad_dims_are_rejected(mcmc):
    with pytest.raises(ValueError, match="'nope'"):
        to_arviz(mcmc, dims={"nope": ["axis"]})
    with pytest.raises(ValueError, match=r"dims\['mu'\].*at most 1"):
        to_arviz(mcmc, dims={"mu": ["a", "b"]})


def test_not_an_mcmc_is_a_type_error():
    with pytest.raises(TypeError, match="MCMC"):
        to_arviz({"mu": np.zeros((1, 3))})


def test_from_draws_checks_the_chain_and_draw_axes():
    with pytest.raises(ValueError, match=r"\(n_chains, n_draws, ...\)"):
        from_draws({"a": np.zeros((2, 5)), "b": np.zeros((2, 4))})
    with pytest.raises(ValueError, match="sample_stats"):
        from_draws({"a": np.zeros((2, 5))}, {"lp": np.zeros((1, 5))})


def test_sample_stats_renames_without_mutating():
    fields = {"potential_energy": np.array([[1.0]]), "custom": np.array([[2.0]])}
    stats = sample_stats(fields)
    assert stats == {"lp": -1.0, "custom": 2.0}
    assert fields["potential_energy"][0, 0] == 1.0


def test_missing_arviz_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz", None)  # import arviz now fails
    with pytest.raises(ImportError, match=r"pip install arviz.*bayes-sklearn\[arviz\]"):
        from_draws({"a": np.zeros((1, 2))})

"""HMCGibbs and DiscreteHMCGibbs against posteriors computed by enumerating
the discrete sites exactly: a change-point model (Poisson counts, a discrete
switch point, conjugate Gamma rates) and a two-component Gaussian mixture
with explicit assignments."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.diagnostics import effective_sample_size
from core_ppl.infer import HMC, MCMC, NUTS, DiscreteHMCGibbs, HMCGibbs

# --- change point -------------------------------------------------------------------

SHAPE, RATE = 2.0, 0.5  # Gamma prior of both Poisson rates
COUNTS = np.array([3, 1, 2, 4, 2, 1, 6, 5, 3, 7, 4, 6], np.int32)
T = len(COUNTS)


def change_point(y):
    tau = ppl.sample("tau", dist.Categorical(probs=jnp.ones(T) / T))
    lam1 = ppl.sample("lam1", dist.Gamma(SHAPE, RATE))
    lam2 = ppl.sample("lam2", dist.Gamma(SHAPE, RATE))
    rate = jnp.where(jnp.arange(T) < tau, lam1, lam2)
    ppl.sample("y", dist.Poisson(rate), obs=y)


def _segment_log_evidence(total, n):
    """log of int Gamma(lam; a, b) prod Poisson(y_t; lam) dlam, up to the
    1/y_t! terms shared by every tau."""
    a, b = SHAPE, RATE
    return (
        a * np.log(b)
        - special.gammaln(a)
        + special.gammaln(a + total)
        - (a + total) * np.log(b + n)
    )


def _change_point_posterior():
    """Exact p(tau | y) and E[lam1 | y], E[lam2 | y] (Gamma-Poisson conjugacy)."""
    taus = np.arange(T)
    before = np.array([COUNTS[:tau].sum() for tau in taus])
    after = COUNTS.sum() - before
    log_post = _segment_log_evidence(before, taus) + _segment_log_evidence(
        after, T - taus
    )
    probs = np.exp(log_post - special.logsumexp(log_post))
    lam1 = np.sum(probs * (SHAPE + before) / (RATE + taus))
    lam2 = np.sum(probs * (SHAPE + after) / (RATE + T - taus))
    return probs, lam1, lam2


def _within_mc_error(draws, expected, z=5.0):
    """``draws`` grouped by chain; the mean within z standard errors (ESS)."""
    draws = np.asarray(draws, np.float64)
    ess = effective_sample_size(draws)
    se = draws.std() / np.sqrt(ess)
    assert abs(draws.mean() - expected) < z * se, (draws.mean(), expected, se)


def _assert_change_point(samples):
    probs, lam1, lam2 = _change_point_posterior()
    tau = np.asarray(samples["tau"])
    assert tau.dtype == np.int32 and tau.min() >= 0 and tau.max() < T
    _within_mc_error(tau, np.sum(probs * np.arange(T)))
    mode = int(np.argmax(probs))
    _within_mc_error(tau == mode, probs[mode])
    _within_mc_error(samples["lam1"], lam1)
    _within_mc_error(samples["lam2"], lam2)


def _poisson_gibbs_fn(rng_key, gibbs_sites, hmc_sites):
    """tau | lam1, lam2, y: enumerate the T switch points."""
    taus = jnp.arange(T)
    rate = jnp.where(
        jnp.arange(T)[None, :] < taus[:, None], hmc_sites["lam1"], hmc_sites["lam2"]
    )
    y = jnp.asarray(COUNTS)
    log_lik = jnp.sum(y * jnp.log(rate) - rate, axis=1)
    return {"tau": jax.random.categorical(rng_key, log_lik).astype(jnp.int32)}


def _run(kernel, *args, num_warmup=300, num_samples=1500):
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=2,
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(0), *args, extra_fields=("accept_prob",))
    return mcmc


def test_hmc_gibbs_change_point_matches_enumeration():
    kernel = HMCGibbs(
        NUTS(change_point), gibbs_fn=_poisson_gibbs_fn, gibbs_sites=["tau"]
    )
    mcmc = _run(kernel, jnp.asarray(COUNTS))
    _assert_change_point(mcmc.get_samples(group_by_chain=True))
    assert set(mcmc.get_extra_fields()) == {"diverging", "accept_prob"}
    assert set(mcmc.last_state.z) == {"tau", "lam1", "lam2"}


@pytest.mark.slow
def test_discrete_hmc_gibbs_modified_change_point_matches_enumeration():
    mcmc = _run(
        DiscreteHMCGibbs(HMC(change_point, num_steps=5), modified=True),
        jnp.asarray(COUNTS),
    )
    _assert_change_point(mcmc.get_samples(group_by_chain=True))


# --- Gaussian mixture with explicit assignments -------------------------------------

MIX_Y = np.array([-2.3, -1.6, -2.0, -0.3, 0.4, 1.7, 2.4, 2.0], np.float32)
PRIOR_MEANS = (-2.0, 2.0)  # distinct priors: no label switching


def mixture(y):
    mu0 = ppl.sample("mu0", dist.Normal(PRIOR_MEANS[0], 1.0))
    mu1 = ppl.sample("mu1", dist.Normal(PRIOR_MEANS[1], 1.0))
    with ppl.plate("data", y.shape[0]):
        z = ppl.sample("z", dist.Bernoulli(0.5))
        ppl.sample("y", dist.Normal(jnp.where(z == 1, mu1, mu0), 1.0), obs=y)


def _mixture_posterior():
    """Exact E[mu0 | y], sd[mu0 | y] and P(z_i = 1 | y) over all 2**n
    assignments: given z, (y, mu0) is jointly Gaussian."""
    n, y = len(MIX_Y), MIX_Y.astype(np.float64)
    weights, means, second = [], [], []
    for z in itertools.product((0, 1), repeat=n):
        z = np.array(z)
        a0 = (z == 0).astype(float)
        cov = np.eye(n) + np.outer(a0, a0) + np.outer(1 - a0, 1 - a0)
        loc = np.where(z == 1, PRIOR_MEANS[1], PRIOR_MEANS[0])
        weights.append(stats.multivariate_normal(loc, cov).logpdf(y))
        gain = np.linalg.solve(cov, a0)
        mean = PRIOR_MEANS[0] + gain @ (y - loc)
        var = 1.0 - a0 @ gain
        means.append(mean)
        second.append(var + mean**2)
    assignments = np.array(list(itertools.product((0, 1), repeat=n)))
    w = np.exp(np.array(weights) - special.logsumexp(weights))
    mean = w @ np.array(means)
    sd = np.sqrt(w @ np.array(second) - mean**2)
    return mean, sd, w @ assignments


@pytest.mark.slow
@pytest.mark.parametrize("random_walk", [False, True])
def test_discrete_hmc_gibbs_mixture_matches_enumeration(random_walk):
    mcmc = _run(
        DiscreteHMCGibbs(NUTS(mixture), random_walk=random_walk),
        jnp.asarray(MIX_Y),
        num_samples=1000,
    )
    samples = mcmc.get_samples(group_by_chain=True)
    mean, sd, p_z = _mixture_posterior()
    assert samples["z"].shape == (2, 1000, len(MIX_Y))
    _within_mc_error(samples["mu0"], mean)
    mu0 = np.asarray(samples["mu0"], np.float64)
    ess = effective_sample_size(mu0)
    assert abs(mu0.std() - sd) < 5 * sd / np.sqrt(2 * ess)
    for i in (3, 4):  # the two ambiguous points
        _within_mc_error(samples["z"][..., i] == 1, p_z[i])


def test_bad_arguments():
    with pytest.raises(TypeError, match="inner_kernel"):
        HMCGibbs(object(), gibbs_fn=_poisson_gibbs_fn, gibbs_sites=["tau"])
    with pytest.raises(TypeError, match="gibbs_sites"):
        HMCGibbs(NUTS(change_point), gibbs_fn=_poisson_gibbs_fn, gibbs_sites="tau")
    with pytest.raises(TypeError, match="gibbs_fn"):
        HMCGibbs(NUTS(change_point), gibbs_fn=None, gibbs_sites=["tau"])

    misnamed = HMCGibbs(
        NUTS(change_point), gibbs_fn=_poisson_gibbs_fn, gibbs_sites=["switch"]
    )
    with pytest.raises(ValueError, match=r"gibbs_sites \['switch'\] are not latent"):
        MCMC(misnamed, num_warmup=1, num_samples=1, progress_bar=False).run(
            jax.random.PRNGKey(0), jnp.asarray(COUNTS)
        )

    def poisson_latent():
        ppl.sample("k", dist.Poisson(3.0))

    mcmc = MCMC(
        DiscreteHMCGibbs(NUTS(poisson_latent)),
        num_warmup=1,
        num_samples=1,
        progress_bar=False,
    )
    with pytest.raises(ValueError, match="site 'k' .* cannot be enumerated"):
        mcmc.run(jax.random.PRNGKey(0))

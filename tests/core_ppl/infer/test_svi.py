"""Tests of core_ppl.infer.svi and core_ppl.infer.elbo."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.distributions import constraints
from core_ppl.infer import (
    SVI,
    RenyiELBO,
    Trace_ELBO,
    TraceMeanField_ELBO,
)
from core_ppl.infer.autoguide import AutoNormal
from core_ppl.infer.elbo import _kl_divergence
from core_ppl.optim import Adam

# --- a conjugate model with a hand-written guide -----------------------------------


def normal_model(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0]):
        ppl.sample("y", dist.Normal(mu, 1.0), obs=y)


def normal_guide(y):
    loc = ppl.param("loc", 0.5)
    scale = ppl.param("scale", 0.8, constraint=constraints.positive)
    ppl.sample("mu", dist.Normal(loc, scale))


Y = jnp.array([0.3, 1.2, 2.0, 0.7])


def analytic_elbo(y, loc, scale):
    """E_q[log p(y, mu) - log q(mu)] for q = N(loc, scale^2), in closed form."""
    n = y.shape[0]
    log_lik = -0.5 * n * np.log(2 * np.pi) - 0.5 * (
        ((y - loc) ** 2).sum() + n * scale**2
    )
    log_prior = -0.5 * np.log(2 * np.pi) - 0.5 * (loc**2 + scale**2)
    entropy = 0.5 * np.log(2 * np.pi * np.e * scale**2)
    return log_lik + log_prior + entropy


def test_trace_elbo_matches_closed_form():
    # The single-particle ELBO has sd ~ |d/dmu log p| scale ~ 1.5 here; with
    # 20000 particles the SE is ~0.01, and 0.06 is about 5 SEs.
    params = {"loc": jnp.array(0.5), "scale": jnp.array(0.8)}
    loss = jax.jit(
        lambda key: Trace_ELBO(num_particles=20_000).loss(
            key, params, normal_model, normal_guide, Y
        )
    )(jax.random.PRNGKey(0))
    np.testing.assert_allclose(-loss, analytic_elbo(np.asarray(Y), 0.5, 0.8), atol=0.06)


def test_params_are_optimised_in_unconstrained_space():
    svi = SVI(normal_model, normal_guide, Adam(0.01), Trace_ELBO())
    state = svi.init(jax.random.PRNGKey(0), Y)
    unconstrained = svi.optim.get_params(state.optim_state)
    np.testing.assert_allclose(unconstrained["scale"], np.log(0.8), rtol=1e-6)
    np.testing.assert_allclose(svi.get_params(state)["scale"], 0.8, rtol=1e-6)
    # evaluate() scores the state's parameters with the key update() will use.
    loss = svi.evaluate(state, Y)
    new_state, update_loss = svi.update(state, Y)
    np.testing.assert_allclose(loss, update_loss, rtol=1e-6)
    assert not np.allclose(svi.get_params(new_state)["loc"], 0.5)
    init = svi.init(jax.random.PRNGKey(0), Y, init_params={"scale": 2.0})
    np.testing.assert_allclose(svi.get_params(init)["scale"], 2.0, rtol=1e-6)


def test_run_is_reproducible_and_independent_of_progress_bar(capsys):
    svi = SVI(normal_model, normal_guide, Adam(0.05), Trace_ELBO())
    quiet = svi.run(jax.random.PRNGKey(1), 200, Y, progress_bar=False)
    again = svi.run(jax.random.PRNGKey(1), 200, Y, progress_bar=False)
    shown = svi.run(jax.random.PRNGKey(1), 200, Y, progress_bar=True)
    assert quiet.losses.shape == (200,)
    for other in (again, shown):
        np.testing.assert_array_equal(other.losses, quiet.losses)
        for name in quiet.params:
            np.testing.assert_array_equal(other.params[name], quiet.params[name])
    assert "200/200" in capsys.readouterr().err
    # The optimum of this conjugate problem: loc = sum(y) / (n + 1).
    assert abs(float(quiet.params["loc"]) - float(Y.sum()) / 5) < 0.1


def test_stable_update_skips_non_finite_steps():
    # The log density and its gradient are NaN where mu > 1.5 (sqrt of a
    # negative number), and the data pull mu to 3: the guide's draws fall over
    # that cliff on some steps. Plain updates then turn the parameters into
    # NaN for good; stable updates skip those steps.
    def model(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
        ppl.factor("cliff", jnp.sqrt(1.5 - mu))
        with ppl.plate("data", y.shape[0]):
            ppl.sample("y", dist.Normal(mu, 1.0), obs=y)

    def guide(y):
        ppl.sample("mu", dist.Normal(ppl.param("loc", 0.0), 0.5))

    svi = SVI(model, guide, Adam(0.05), Trace_ELBO())
    y = jnp.full(20, 3.0)
    for stable_update in (False, True):
        result = svi.run(
            jax.random.PRNGKey(0),
            200,
            y,
            progress_bar=False,
            stable_update=stable_update,
        )
        assert np.isnan(result.losses).any()  # the cliff was met
        loc = float(result.params["loc"])
        if stable_update:
            assert np.isfinite(loc) and loc > 0.5  # and the run made progress
        else:
            assert np.isnan(loc)


def test_no_recompilation_for_new_data_of_the_same_shape():
    traces = []

    def counting_model(y):
        traces.append(1)  # runs once per Python execution (eager or tracing)
        normal_model(y)

    def fit(y):
        guide = AutoNormal(counting_model)
        svi = SVI(counting_model, guide, Adam(0.05), Trace_ELBO())
        state = svi.init(jax.random.PRNGKey(0), y)
        before = len(traces)
        result = svi.run(
            jax.random.PRNGKey(0), 50, y, progress_bar=False, init_state=state
        )
        return result, len(traces) - before

    first, first_traces = fit(Y)
    second, second_traces = fit(Y + 1.0)
    assert first_traces > 0
    assert second_traces == 0
    assert float(second.params["mu_auto_loc"]) > float(first.params["mu_auto_loc"])


# --- TraceMeanField_ELBO and RenyiELBO ----------------------------------------------


def per_draw_losses(elbo, params, num_draws, model=normal_model, guide=normal_guide):
    keys = jax.random.split(jax.random.PRNGKey(0), num_draws)
    return np.asarray(
        jax.jit(jax.vmap(lambda key: elbo.loss(key, params, model, guide, Y)))(keys),
        np.float64,
    )


def test_mean_field_elbo_has_trace_elbo_expectation_and_less_variance():
    # With mu = m + s e, e ~ N(0, 1), each loss is a e^2 + b e + const, of
    # variance 2 a^2 + b^2 (by hand): the likelihood alone gives a = n s^2 / 2,
    # b = -s sum(y - m); Trace_ELBO adds the prior and -log q terms,
    # a += (s^2 - 1) / 2 and b += m s. For a guide wider than the posterior
    # and on the far side of the prior (early in a fit) these add to the
    # likelihood's noise, which the closed-form KL removes. (Near the optimum
    # they cancel it instead: the analytic KL is not always less noisy.)
    m, s, n = -1.0, 1.5, Y.shape[0]
    params = {"loc": jnp.array(m), "scale": jnp.array(s)}
    a_lik, b_lik = n * s**2 / 2, -s * float(jnp.sum(Y - m))
    a_all, b_all = a_lik + (s**2 - 1) / 2, b_lik + m * s
    expected_var = {
        "mean_field": 2 * a_lik**2 + b_lik**2,
        "trace": 2 * a_all**2 + b_all**2,
    }
    assert expected_var["mean_field"] < 0.8 * expected_var["trace"]
    num_draws = 20_000
    losses = {
        "mean_field": per_draw_losses(TraceMeanField_ELBO(), params, num_draws),
        "trace": per_draw_losses(Trace_ELBO(), params, num_draws),
    }
    elbo = analytic_elbo(np.asarray(Y, np.float64), m, s)
    for name, draws in losses.items():
        se = draws.std() / np.sqrt(num_draws)
        assert abs(-draws.mean() - elbo) < 5 * se, name
        # The standard error of a sample variance: sd of (x - mean)^2 / sqrt(n).
        centred = (draws - draws.mean()) ** 2
        var_se = centred.std() / np.sqrt(num_draws)
        assert abs(draws.var() - expected_var[name]) < 5 * var_se, name


def test_mean_field_elbo_falls_back_to_monte_carlo_for_unknown_pairs():
    # A LogNormal guide against a LogNormal prior has no closed form here:
    # the term stays log p - log q, so both estimators agree draw by draw.
    def model():
        ppl.sample("s", dist.LogNormal(0.0, 1.0))

    def guide():
        ppl.sample("s", dist.LogNormal(ppl.param("m", 0.3), 0.7))

    params = {"m": jnp.array(0.3)}
    for key in jax.random.split(jax.random.PRNGKey(0), 3):
        np.testing.assert_allclose(
            TraceMeanField_ELBO().loss(key, params, model, guide),
            Trace_ELBO().loss(key, params, model, guide),
            rtol=1e-6,
        )


def monte_carlo_kl(q, p, num_draws=200_000):
    """E_q[log q - log p] with scipy densities, and its standard error."""
    draws = q.rvs(size=num_draws, random_state=0)
    log_ratio = q.logpdf(draws) - p.logpdf(draws)
    return log_ratio.mean(), log_ratio.std() / np.sqrt(num_draws)


def test_closed_form_kl_against_monte_carlo():
    kl = _kl_divergence(dist.Normal(0.5, 0.8), dist.Normal(-0.2, 1.3))
    want, se = monte_carlo_kl(stats.norm(0.5, 0.8), stats.norm(-0.2, 1.3))
    assert abs(float(kl) - want) < 5 * se
    rng = np.random.default_rng(3)
    lq = np.tril(rng.normal(size=(3, 3)), -1) + np.diag([0.7, 1.2, 0.9])
    lp = np.tril(rng.normal(size=(3, 3)), -1) + np.diag([1.1, 0.8, 1.5])
    mq, mp = rng.normal(size=3), rng.normal(size=3)
    kl = _kl_divergence(
        dist.MultivariateNormal(mq, scale_tril=lq),
        dist.MultivariateNormal(mp, scale_tril=lp),
    )
    want, se = monte_carlo_kl(
        stats.multivariate_normal(mq, lq @ lq.T),
        stats.multivariate_normal(mp, lp @ lp.T),
    )
    assert abs(float(kl) - want) < 5 * se
    # Through to_event and expand: the per-element KLs, summed over the event.
    q = dist.Normal(jnp.array([0.0, 1.0]), 0.5).to_event(1)
    p = dist.Normal(0.0, 1.0).expand((2,)).to_event(1)
    each = [_kl_divergence(dist.Normal(m, 0.5), dist.Normal(0.0, 1.0)) for m in (0, 1)]
    np.testing.assert_allclose(_kl_divergence(q, p), sum(each), rtol=1e-6)
    batched = _kl_divergence(dist.Normal(jnp.zeros(3), 0.5), dist.Normal(0.0, 1.0))
    assert batched.shape == (3,)
    assert _kl_divergence(dist.Normal(0.0, 1.0), dist.Cauchy(0.0, 1.0)) is None
    assert _kl_divergence(q, dist.Normal(0.0, 1.0).expand((2,))) is None


def local_model(y):
    with ppl.plate("data", y.shape[0]):
        z = ppl.sample("z", dist.Normal(0.0, 1.0))
        ppl.sample("y", dist.Normal(z, 1.0), obs=y)


def local_exact_guide(y):
    # z_i | y_i ~ N(y_i / 2, 1 / 2).
    with ppl.plate("data", y.shape[0]):
        ppl.sample("z", dist.Normal(y / 2, 0.5**0.5))


def exact_guide(y):
    n = y.shape[0]
    ppl.sample("mu", dist.Normal(jnp.sum(y) / (n + 1), (n + 1) ** -0.5))


def test_renyi_elbo_at_the_exact_posterior_is_the_log_evidence():
    # With q the posterior every weight p(y, z) / q(z) equals p(y), so the
    # bound is exact for any alpha and number of particles.
    y = np.asarray(Y, np.float64)
    n = y.shape[0]
    log_evidence = stats.multivariate_normal(np.zeros(n), np.eye(n) + 1.0).logpdf(y)
    local_evidence = stats.norm(0.0, 2**0.5).logpdf(y).sum()
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    for elbo in (RenyiELBO(), RenyiELBO(alpha=0.5, num_particles=5)):

        @jax.jit
        @jax.vmap
        def losses(key, elbo=elbo):
            return (
                elbo.loss(key, {}, normal_model, exact_guide, Y),
                elbo.loss(key, {}, local_model, local_exact_guide, Y),
            )

        global_loss, local_loss = losses(keys)
        np.testing.assert_allclose(-global_loss, log_evidence, rtol=1e-5)
        np.testing.assert_allclose(-local_loss, local_evidence, rtol=1e-5)


def test_renyi_elbo_lies_between_the_elbo_and_the_log_evidence():
    # For a guide off the posterior the importance-weighted bound (alpha = 0)
    # is tighter than the ELBO and below log p(y) (Burda et al. 2016, thm 1).
    y = np.asarray(Y, np.float64)
    n = y.shape[0]
    log_evidence = stats.multivariate_normal(np.zeros(n), np.eye(n) + 1.0).logpdf(y)
    params = {"loc": jnp.array(0.5), "scale": jnp.array(0.8)}
    draws = -per_draw_losses(RenyiELBO(num_particles=8), params, 4000)
    se = draws.std() / np.sqrt(draws.size)
    assert draws.mean() > analytic_elbo(y, 0.5, 0.8) + 5 * se
    assert draws.mean() < log_evidence - 5 * se


@pytest.mark.parametrize(
    "elbo",
    [Trace_ELBO(), TraceMeanField_ELBO(), RenyiELBO(), RenyiELBO(0.5, 4)],
    ids=repr,
)
def test_svi_with_each_elbo_recovers_the_posterior(elbo):
    # mu | y ~ N(0.84, 0.447^2); the guide family contains it, and each
    # objective is maximised there. Over 3 seeds the final loc was within
    # 0.045 of 0.84 and the scale within 0.025 of 0.447; the tolerances
    # (0.25 and 0.15 posterior sd) are about twice those.
    svi = SVI(normal_model, normal_guide, Adam(lambda t: 0.05 * 0.998**t), elbo)
    result = svi.run(jax.random.PRNGKey(0), 2000, Y, progress_bar=False)
    post_sd = 5**-0.5
    assert abs(float(result.params["loc"]) - float(Y.sum()) / 5) < 0.25 * post_sd
    assert abs(float(result.params["scale"]) - post_sd) < 0.15 * post_sd


def test_renyi_elbo_refuses_bad_settings_and_local_subsampling():
    with pytest.raises(ValueError, match="alpha"):
        RenyiELBO(alpha=1.0)
    with pytest.raises(TypeError, match="alpha"):
        RenyiELBO(alpha="0")
    with pytest.raises(ValueError, match="num_particles"):
        RenyiELBO(num_particles=0)
    assert RenyiELBO() == RenyiELBO(0, 2) != RenyiELBO(0.5)

    def model(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        with ppl.plate("data", y.shape[0], subsample_size=2) as idx:
            ppl.sample("y", dist.Normal(mu, 1.0), obs=y[idx])

    with pytest.raises(ValueError, match="RenyiELBO.*'data'"):
        RenyiELBO().loss(jax.random.PRNGKey(0), {}, model, exact_guide, Y)


def test_renyi_elbo_particles_share_the_mini_batch():
    # All sites in one subsampled plate: one bound per data point, scaled by
    # size / batch. At the exact posterior point i's bound is log N(y_i; 0, 2)
    # whatever the draws, so the loss is -(10 / 4) times the sum of those over
    # the batch, if all particles see the same batch; particles on different
    # batches would average different points' weights instead. With y_i^2 =
    # 2^i / 10 the 210 possible batch sums differ by >= 2.5 / 40 = 0.06.
    y = jnp.sqrt(2.0 ** jnp.arange(10) / 10)

    def model(y):
        with ppl.plate("data", 10, subsample_size=4) as idx:
            z = ppl.sample("z", dist.Normal(0.0, 1.0))
            ppl.sample("y", dist.Normal(z, 1.0), obs=y[idx])

    def guide(y):
        with ppl.plate("data", 10, subsample_size=4) as idx:
            ppl.sample("z", dist.Normal(y[idx] / 2, 0.5**0.5))

    log_evidence = stats.norm(0.0, 2**0.5).logpdf(np.asarray(y, np.float64))
    batch_losses = np.array(
        [
            -2.5 * log_evidence[list(batch)].sum()
            for batch in itertools.combinations(range(10), 4)
        ]
    )
    elbo = RenyiELBO(num_particles=3)
    for key in jax.random.split(jax.random.PRNGKey(1), 4):
        loss = float(elbo.loss(key, {}, model, guide, y))
        assert np.min(np.abs(batch_losses - loss)) < 1e-3

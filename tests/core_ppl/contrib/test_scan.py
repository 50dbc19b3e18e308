"""Tests of core_ppl.contrib.control_flow.scan.

The reference model is the local-level model
``level_t = level_{t-1} + N(0, sigma_level)``, ``y_t ~ N(level_t, sigma_obs)``
with ``level_0 = 0``, checked against a hand-written log density and a NumPy
Kalman filter with Rauch-Tung-Striebel smoother.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.contrib.control_flow import scan
from core_ppl.diagnostics import effective_sample_size
from core_ppl.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO
from core_ppl.infer.autoguide import AutoDiagonalNormal, AutoNormal
from core_ppl.infer.util import constrain_fn, log_density, potential_energy
from core_ppl.optim import Adam

SIGMA_LEVEL, SIGMA_OBS = 0.5, 1.0
T = 20


def local_level(y=None, T=T):
    def step(level, y_t):
        level = ppl.sample("level", dist.Normal(level, SIGMA_LEVEL))
        ppl.sample("y", dist.Normal(level, SIGMA_OBS), obs=y_t)
        return level, level

    _, levels = scan(step, jnp.zeros(()), y, length=T)
    return levels


def simulated_data(seed=0):
    rng = np.random.default_rng(seed)
    levels = np.cumsum(rng.normal(0.0, SIGMA_LEVEL, T))
    y = levels + rng.normal(0.0, SIGMA_OBS, T)
    return levels.astype(np.float32), y.astype(np.float32)


def kalman_smoother(y, sigma_level, sigma_obs):
    """Posterior means and variances of the levels given all of ``y``.

    Forward Kalman filter from ``level_0 = 0`` (known), then the backward
    Rauch-Tung-Striebel recursion.
    """
    n = len(y)
    pred_m, pred_v = np.zeros(n), np.zeros(n)
    filt_m, filt_v = np.zeros(n), np.zeros(n)
    m, v = 0.0, 0.0
    for t in range(n):
        pred_m[t], pred_v[t] = m, v + sigma_level**2
        gain = pred_v[t] / (pred_v[t] + sigma_obs**2)
        m = pred_m[t] + gain * (y[t] - pred_m[t])
        v = (1.0 - gain) * pred_v[t]
        filt_m[t], filt_v[t] = m, v
    smooth_m, smooth_v = filt_m.copy(), filt_v.copy()
    for t in range(n - 2, -1, -1):
        back = filt_v[t] / pred_v[t + 1]
        smooth_m[t] = filt_m[t] + back * (smooth_m[t + 1] - pred_m[t + 1])
        smooth_v[t] = filt_v[t] + back**2 * (smooth_v[t + 1] - pred_v[t + 1])
    return smooth_m, smooth_v


# --- (a) log density ------------------------------------------------------------------


def test_log_density_is_the_sum_over_steps():
    levels, y = simulated_data()
    log_joint, model_trace = log_density(local_level, (y,), {}, {"level": levels})
    previous = np.concatenate([[0.0], levels[:-1]])
    expected = stats.norm.logpdf(levels, previous, SIGMA_LEVEL).sum()
    expected += stats.norm.logpdf(y, levels, SIGMA_OBS).sum()
    np.testing.assert_allclose(float(log_joint), expected, rtol=1e-5)
    site = model_trace["level"]
    np.testing.assert_allclose(
        site["fn"].log_prob(site["value"]),
        stats.norm.logpdf(levels, previous, SIGMA_LEVEL),
        rtol=1e-5,
    )


# --- (b), (c) NUTS against the Kalman smoother, then Predictive --------------------


@pytest.fixture(scope="module")
def nuts_run():
    _, y = simulated_data()
    mcmc = MCMC(NUTS(local_level), num_warmup=500, num_samples=1000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), y)
    return y, mcmc.get_samples()


@pytest.mark.slow
def test_nuts_posterior_matches_kalman_smoother(nuts_run):
    y, samples = nuts_run
    draws = np.asarray(samples["level"])
    assert draws.shape == (1000, T)
    mean, var = kalman_smoother(y.astype(np.float64), SIGMA_LEVEL, SIGMA_OBS)
    ess = effective_sample_size(draws[None])
    # Monte Carlo standard error of each posterior mean: sd / sqrt(ESS).
    mcse = np.sqrt(var / ess)
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 5.0 * mcse)


@pytest.mark.slow
def test_predictive_with_posterior_samples(nuts_run):
    _, samples = nuts_run
    predictions = Predictive(local_level, samples)(jax.random.PRNGKey(1), None)
    assert set(predictions) == {"y"}
    y_new = np.asarray(predictions["y"])
    assert y_new.shape == (1000, T)
    # Given the levels, y_t - level_t ~ N(0, sigma_obs) independently.
    residuals = (y_new - np.asarray(samples["level"])).ravel()
    se = SIGMA_OBS / np.sqrt(residuals.size)
    assert abs(residuals.mean()) < 5.0 * se
    assert abs(residuals.std() / SIGMA_OBS - 1.0) < 5.0 / np.sqrt(2 * residuals.size)


def test_prior_predictive_shapes():
    out = Predictive(local_level, num_samples=7)(jax.random.PRNGKey(2))
    assert out["level"].shape == (7, T) and out["y"].shape == (7, T)


# --- (d) handlers ---------------------------------------------------------------------


@pytest.mark.slow
def test_forecast_from_a_shorter_series_of_posterior_draws(nuts_run):
    y, samples = nuts_run
    horizon = 3
    forecast = Predictive(local_level, samples, return_sites=["level", "y"])(
        jax.random.PRNGKey(3), None, T=T + horizon
    )
    levels = np.asarray(forecast["level"])
    assert levels.shape == (1000, T + horizon) and forecast["y"].shape == levels.shape
    np.testing.assert_array_equal(levels[:, :T], samples["level"])
    # Past the draws the walk goes on: level_{T+h} - level_T ~ N(0, h sigma^2)
    # given the draw, so over the draws the increments have mean 0, sd
    # sqrt(h) sigma_level.
    for h in range(1, horizon + 1):
        step = levels[:, T - 1 + h] - levels[:, T - 1]
        sd = np.sqrt(h) * SIGMA_LEVEL
        assert abs(step.mean()) < 5.0 * sd / np.sqrt(step.size)
        assert abs(step.std() / sd - 1.0) < 5.0 / np.sqrt(2 * step.size)
    with pytest.raises(ValueError, match="fewer steps than the loop"):
        handlers.seed(handlers.condition(local_level, data={"y": y[:5]}), 0)()


def test_history_has_no_effect_without_enumeration():
    seeded = handlers.seed(noise_model, rng_seed=0)
    eps = seeded(6)

    def model(length, history):
        def step(carry, _):
            return carry, ppl.sample("eps", dist.Normal(0.0, 1.0))

        return scan(step, jnp.zeros(()), None, length=length, history=history)[1]

    for history in (0, 1, 2):
        np.testing.assert_array_equal(handlers.seed(model, rng_seed=0)(6, history), eps)


def test_trace_records_each_site_once_with_a_time_dim():
    tr = handlers.trace(handlers.seed(local_level, rng_seed=0)).get_trace()
    assert list(tr) == ["level", "y"]
    for site in tr.values():
        assert site["type"] == "sample" and not site["is_observed"]
        assert site["value"].shape == (T,)
        assert site["fn"].batch_shape == (T,)
    # The loop's output is the stacked carry, i.e. the recorded levels.
    levels = handlers.seed(local_level, rng_seed=0)()
    np.testing.assert_array_equal(levels, tr["level"]["value"])


def test_condition_and_substitute_feed_one_time_step_each():
    levels, y = simulated_data()
    data = {"level": levels, "y": y}
    tr = handlers.trace(handlers.condition(local_level, data=data)).get_trace()
    assert tr["level"]["is_observed"] and tr["y"]["is_observed"]
    np.testing.assert_array_equal(tr["level"]["value"], levels)
    np.testing.assert_array_equal(tr["y"]["value"], y)
    # y_t is centred on the level of its own step.
    np.testing.assert_array_equal(tr["y"]["fn"].loc, levels)

    seeded = handlers.seed(handlers.substitute(local_level, data={"level": levels}), 3)
    tr = handlers.trace(seeded).get_trace()
    assert not tr["level"]["is_observed"]
    np.testing.assert_array_equal(tr["level"]["value"], levels)
    np.testing.assert_array_equal(tr["level"]["fn"].loc[1:], levels[:-1])


def test_value_of_a_step_shape_is_used_at_every_step():
    tr = handlers.trace(
        handlers.seed(
            handlers.substitute(local_level, data={"level": jnp.float32(2.0)}), 0
        )
    ).get_trace()
    np.testing.assert_array_equal(tr["level"]["value"], np.full(T, 2.0))


def noise_model(length):
    def step(carry, _):
        return carry, ppl.sample("eps", dist.Normal(0.0, 1.0))

    return scan(step, jnp.zeros(()), None, length=length)[1]


def test_seed_gives_every_step_its_own_draw():
    n = 2000
    eps = np.asarray(handlers.seed(noise_model, rng_seed=0)(n))
    np.testing.assert_array_equal(eps, handlers.seed(noise_model, rng_seed=0)(n))
    assert not np.allclose(eps, handlers.seed(noise_model, rng_seed=1)(n))
    # iid N(0, 1) across steps: mean, sd and lag-1 autocorrelation.
    assert abs(eps.mean()) < 5.0 / np.sqrt(n)
    assert abs(eps.std() - 1.0) < 5.0 / np.sqrt(2 * n)
    lag1 = np.corrcoef(eps[:-1], eps[1:])[0, 1]
    assert abs(lag1) < 5.0 / np.sqrt(n)


def test_without_seed_a_latent_site_asks_for_a_key():
    with pytest.raises(ValueError, match="needs a random key"):
        local_level()


def plated_model(y=None, num_series=3, length=4):
    def step(level, y_t):
        with ppl.plate("series", num_series):
            level = ppl.sample("level", dist.Normal(level, SIGMA_LEVEL))
            ppl.sample("y", dist.Normal(level, SIGMA_OBS), obs=y_t)
        ppl.deterministic("total", level.sum())
        return level, None

    return scan(step, jnp.zeros(num_series), y, length=length)


def test_plate_inside_the_scanned_function():
    rng = np.random.default_rng(1)
    levels = rng.normal(size=(4, 3)).astype(np.float32)
    y = rng.normal(size=(4, 3)).astype(np.float32)
    log_joint, tr = log_density(plated_model, (y,), {}, {"level": levels})
    assert tr["level"]["fn"].batch_shape == (4, 3)
    assert [f.name for f in tr["level"]["cond_indep_stack"]] == ["series"]
    assert tr["series"]["type"] == "plate"
    np.testing.assert_allclose(tr["total"]["value"], levels.sum(1), rtol=1e-6)
    previous = np.concatenate([np.zeros((1, 3)), levels[:-1]])
    expected = stats.norm.logpdf(levels, previous, SIGMA_LEVEL).sum()
    expected += stats.norm.logpdf(y, levels, SIGMA_OBS).sum()
    np.testing.assert_allclose(float(log_joint), expected, rtol=1e-5)


def test_plate_around_the_scan_broadcasts_every_step():
    def step(level, _):
        level = ppl.sample("level", dist.Normal(level, SIGMA_LEVEL))
        return level, None

    def model():
        with ppl.plate("series", 3):
            return scan(step, jnp.zeros(3), None, length=5)

    tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()
    assert tr["level"]["value"].shape == (5, 3)
    assert tr["level"]["fn"].batch_shape == (5, 3)
    # Each series is its own random walk: the carry has the plate's shape.
    assert len(np.unique(np.asarray(tr["level"]["value"][0]))) == 3


def test_sample_shape_and_wrappers_gain_the_time_dim():
    def model():
        def step(carry, _):
            a = ppl.sample("a", dist.Normal(carry, 1.0), sample_shape=(2,))
            b = ppl.sample("b", dist.Normal(jnp.zeros(3), 1.0).to_event(1))
            m = ppl.sample(
                "m",
                dist.Normal(0.0, 1.0).expand((3,)).mask(jnp.array([True, False, True])),
            )
            return carry + 1.0, (a, b, m)

        return scan(step, jnp.zeros(()), None, length=4)

    tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()
    assert tr["a"]["value"].shape == (4, 2) and tr["a"]["fn"].batch_shape == (4, 2)
    assert tr["b"]["fn"].batch_shape == (4,) and tr["b"]["fn"].event_shape == (3,)
    assert tr["m"]["fn"].batch_shape == (4, 3)
    for name in "abm":
        site = tr[name]
        assert site["fn"].log_prob(site["value"]).shape == site["fn"].batch_shape
    # Site a of step t is centred on the carry t.
    a_lp = tr["a"]["fn"].log_prob(tr["a"]["value"])
    centre = np.arange(4.0)[:, None]
    np.testing.assert_allclose(
        a_lp, stats.norm.logpdf(tr["a"]["value"], centre), rtol=1e-5
    )
    m_lp = tr["m"]["fn"].log_prob(tr["m"]["value"])
    np.testing.assert_array_equal(np.asarray(m_lp)[:, 1], 0.0)


def test_reverse_runs_backwards_with_values_aligned_to_xs():
    xs = jnp.arange(1.0, 6.0)

    def model():
        def step(total, x):
            total = total + x
            ppl.deterministic("total", total)
            return total, total

        return scan(step, jnp.zeros(()), xs, reverse=True)

    tr = handlers.trace(model).get_trace()
    expected = np.cumsum(np.asarray(xs)[::-1])[::-1]
    np.testing.assert_array_equal(tr["total"]["value"], expected)
    np.testing.assert_array_equal(model()[1], expected)


def test_block_scale_and_params_around_and_inside_the_loop():
    levels, y = simulated_data()
    seeded = handlers.seed(local_level, rng_seed=0)
    tr = handlers.trace(handlers.block(seeded, hide=["y"])).get_trace()
    assert list(tr) == ["level"]
    single, _ = log_density(local_level, (y,), {}, {"level": levels})
    scaled = handlers.scale(local_level, 2.0)
    double, _ = log_density(scaled, (y,), {}, {"level": levels})
    np.testing.assert_allclose(float(double), 2.0 * float(single), rtol=1e-6)

    def drifting(length=5):
        def step(level, _):
            drift = ppl.param("drift", 0.5)
            level = ppl.sample("level", dist.Normal(level + drift, 1.0))
            return level, None

        return scan(step, jnp.zeros(()), None, length=length)

    substituted = handlers.substitute(drifting, data={"drift": jnp.float32(3.0)})
    tr = handlers.trace(handlers.seed(substituted, rng_seed=0)).get_trace()
    # A param is one value shared by the steps, recorded without a time dim.
    assert tr["drift"]["type"] == "param" and jnp.shape(tr["drift"]["value"]) == ()
    previous = np.concatenate([[0.0], np.asarray(tr["level"]["value"])[:-1]])
    np.testing.assert_allclose(tr["level"]["fn"].loc, previous + 3.0, rtol=1e-6)


def test_supports_that_change_with_the_step_are_transformed_per_step():
    def model(length=6):
        def step(low, _):
            ppl.sample("u", dist.Uniform(low, low + 2.0))
            return low + 1.0, None

        return scan(step, jnp.zeros(()), None, length=length)

    z = {"u": jnp.zeros(6)}
    values = constrain_fn(model, (), {}, z)
    # The interval's bijection maps 0 to its midpoint.
    np.testing.assert_allclose(values["u"], np.arange(6.0) + 1.0, rtol=1e-6)
    # Uniform density 1/2 times the Jacobian 2 * sigmoid'(0) = 1/2 per step.
    expected = -6 * (np.log(0.5) + np.log(0.5))
    np.testing.assert_allclose(
        float(potential_energy(model, (), {}, z)), expected, rtol=1e-6
    )


def test_bad_arguments():
    step = lambda c, x: (c, x)
    with pytest.raises(ValueError, match="history must be >= 0"):
        scan(step, 0.0, jnp.zeros(3), history=-1)
    with pytest.raises(TypeError, match="history must be an int"):
        scan(step, 0.0, jnp.zeros(3), history=1.5)
    with pytest.raises(ValueError, match="length=4 disagrees"):
        scan(step, 0.0, jnp.zeros(3), length=4)
    with pytest.raises(ValueError, match="give length"):
        scan(step, 0.0, None)
    with pytest.raises(ValueError, match="leading .time. dimension"):
        scan(step, 0.0, jnp.float32(1.0))
    with pytest.raises(ValueError, match="non-negative int"):
        scan(step, 0.0, None, length=-1)
    with pytest.raises(ValueError, match="different leading dims"):
        scan(step, 0.0, (jnp.zeros(3), jnp.zeros(2)))
    with pytest.raises(TypeError, match="pair"):
        scan(lambda c, x: c, 0.0, jnp.zeros(3))
    with pytest.raises(TypeError, match="callable"):
        scan(None, 0.0, jnp.zeros(3))
    with pytest.raises(NotImplementedError, match="inside a scanned function"):
        scan(lambda c, x: scan(step, c, x), 0.0, jnp.zeros((2, 3)))


# --- (e) SVI -------------------------------------------------------------------------


def log_evidence(y, sigma_level, sigma_obs):
    """``log p(y)`` of the local-level model, by the Kalman filter's
    prediction decomposition ``y_t | y_<t ~ N(pred_mean, pred_var + sigma_obs^2)``."""
    mean, var, total = 0.0, 0.0, 0.0
    for y_t in y:
        pred_var = var + sigma_level**2
        total += stats.norm.logpdf(y_t, mean, np.sqrt(pred_var + sigma_obs**2))
        gain = pred_var / (pred_var + sigma_obs**2)
        mean, var = mean + gain * (y_t - mean), (1.0 - gain) * pred_var
    return total


def mean_field_gap(sigma_level, sigma_obs, length):
    """``min_q KL(q || posterior)`` over fully factorised Gaussians ``q``.

    The posterior is Gaussian with precision ``Lam``; the best factorised
    Gaussian has the exact means and variances ``1 / Lam_tt`` (Bishop 2006,
    section 10.1.2), at KL ``(sum_t log Lam_tt - log det Lam) / 2``.
    """
    diff = np.eye(length) - np.eye(length, k=-1)
    precision = diff.T @ diff / sigma_level**2 + np.eye(length) / sigma_obs**2
    log_det = np.linalg.slogdet(precision)[1]
    return 0.5 * (np.log(np.diag(precision)).sum() - log_det)


@pytest.mark.parametrize("guide_class", [AutoNormal, AutoDiagonalNormal])
def test_svi_with_an_autoguide(guide_class):
    _, y = simulated_data()
    guide = guide_class(local_level)
    svi = SVI(local_level, guide, Adam(0.02), Trace_ELBO())
    result = svi.run(jax.random.PRNGKey(0), 2000, y, progress_bar=False)
    losses = np.asarray(result.losses)
    assert np.all(np.isfinite(losses))
    assert losses[-500:].mean() < losses[:100].mean()
    draws = guide.sample_posterior(
        jax.random.PRNGKey(1), result.params, sample_shape=(10,)
    )["level"]
    assert draws.shape == (10, T)
    # Each loss estimates -ELBO >= -log p(y) + (the smallest KL a factorised
    # Gaussian can reach), whatever the guide's parameters: a lower bound up
    # to the Monte Carlo error of the mean of the last losses.
    optimum = -log_evidence(y.astype(np.float64), SIGMA_LEVEL, SIGMA_OBS)
    optimum += mean_field_gap(SIGMA_LEVEL, SIGMA_OBS, T)
    last = losses[-500:]
    assert last.mean() > optimum - 5.0 * last.std() / np.sqrt(last.size)
    # And near it: a step's term lost or counted twice moves the loss by
    # several nats, while the guide left jittering by Adam's constant step
    # size costs a fraction of one.
    assert last.mean() < optimum + 2.0

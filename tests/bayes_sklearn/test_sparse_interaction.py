"""Tests of SparseInteractionRegressor (SKIM).

Most tests share one small budget and data with at most 64 rows and 8
features, so that they reuse a single compiled sampler (rows and features are
padded to buckets). The recovery test on the synthetic problem of
docs/skim.md section 5 is the expensive one and is marked slow.
"""

import pickle
import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV

from bayes_sklearn import SparseInteractionRegressor
from bayes_sklearn import _skim_kernel as sk
from bayes_sklearn import _sparse_interaction as si
from core_ppl.infer.util import log_density

# The API tests check plumbing, not convergence: tiny budgets warn.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# The budget of test_common, so that both reuse the same compiled programs.
_FAST = dict(n_warmup=20, n_draws=20, n_chains=1, random_state=0)


def _planted(rng, n=60, p=5, shift=0.0, scale=1.0, noise=0.05):
    """y = 2 x0 - x1 + 1.5 x0 x1 + noise, on shifted and scaled columns."""
    Z = rng.normal(size=(n, p))
    y = 2 * Z[:, 0] - Z[:, 1] + 1.5 * Z[:, 0] * Z[:, 1] + noise * rng.normal(size=n)
    return shift + scale * Z, y


@pytest.fixture(scope="module")
def fitted():
    """One fit on columns with nonzero means and unequal scales."""
    rng = np.random.default_rng(0)
    X, y = _planted(
        rng,
        shift=np.array([1.0, -2.0, 0.5, 3.0, 0.0]),
        scale=np.array([2.0, 0.5, 1.0, 3.0, 1.0]),
    )
    return SparseInteractionRegressor(**_FAST).fit(X, y), X, y


# --- the model -------------------------------------------------------------------


def test_model_log_density_is_priors_plus_gp_marginal_likelihood(x64):
    rng = np.random.default_rng(1)
    n, p = 12, 3
    X, y = rng.normal(size=(n, p)), rng.normal(size=n)
    weight = np.ones(n)
    hyper = dict(S=1.0, a1=3.0, b1=2.0, a2=4.0, b2=1.5, a3=0.7, c=1.2, jitter=1e-4)
    args = (X, y, weight, p, *hyper.values())
    params = dict(sigma=0.3, eta1=0.8, msq=1.7, xisq=0.6, lam=rng.uniform(0.5, 2, p))
    value, _ = log_density(
        si.sparse_interaction_model,
        tuple(jnp.asarray(a) for a in args),
        {},
        {
            **{k: jnp.asarray(v) for k, v in params.items() if k != "lam"},
            "lambda": jnp.asarray(params["lam"]),
        },
    )
    phi = params["sigma"] * hyper["S"] / np.sqrt(n) / (p - hyper["S"])
    priors = (
        stats.halfnorm(scale=hyper["a3"]).logpdf(params["sigma"])
        + stats.halfcauchy(scale=phi).logpdf(params["eta1"])
        + stats.invgamma(hyper["a1"], scale=hyper["b1"]).logpdf(params["msq"])
        + stats.invgamma(hyper["a2"], scale=hyper["b2"]).logpdf(params["xisq"])
        + stats.halfcauchy().logpdf(params["lam"]).sum()
    )
    kernel = sk.kernel_params(
        params["eta1"],
        params["msq"],
        params["xisq"],
        jnp.asarray(params["lam"]),
        hyper["c"],
    )
    gram = np.asarray(sk.training_gram(jnp.asarray(X), kernel, params["sigma"] ** 2))
    likelihood = stats.multivariate_normal(np.zeros(n), gram).logpdf(y)
    np.testing.assert_allclose(float(value), priors + likelihood, rtol=1e-9)


# --- fitted attributes -----------------------------------------------------------


def test_fitted_attributes_shapes_and_types(fitted):
    reg, X, _ = fitted
    p = X.shape[1]
    assert reg.coef_.shape == reg.coef_std_.shape == (p,)
    assert reg.interaction_coef_.shape == reg.interaction_coef_std_.shape == (p, p)
    # Strictly upper triangular: entry [i, j], i < j, multiplies x_i x_j.
    assert np.all(np.tril(reg.interaction_coef_) == 0)
    assert np.all(np.tril(reg.interaction_coef_std_) == 0)
    assert np.all(np.triu(reg.interaction_coef_std_, 1)[np.triu_indices(p, 1)] > 0)
    assert np.all(reg.coef_std_ > 0)
    assert isinstance(reg.intercept_, float)
    for attr in (reg.coef_, reg.interaction_coef_, reg.active_features_):
        assert isinstance(attr, np.ndarray)
    assert reg.active_interactions_.shape[1] == 2
    assert reg.posterior_samples_["lambda"].shape == (20, p)
    assert set(reg.posterior_samples_) == {"sigma", "eta1", "msq", "xisq", "lambda"}


def test_planted_effects_found_in_user_units(fitted):
    # In the units of X (x0 = 1 + 2 z0, x1 = -2 + z1 / 2) the planted
    # 2 z0 - z1 + 1.5 z0 z1 is -8 + 4 x0 - 3.5 x1 + 1.5 x0 x1: centring and
    # scaling move the main effects by the interaction.
    reg, _, _ = fitted
    np.testing.assert_array_equal(reg.active_features_, [0, 1])
    np.testing.assert_array_equal(reg.active_interactions_, [[0, 1]])
    truth = np.array([4.0, -3.5, 0.0, 0.0, 0.0])
    assert np.all(np.abs(reg.coef_ - truth) < 5 * reg.coef_std_)
    error = abs(reg.interaction_coef_[0, 1] - 1.5)
    assert error < 5 * reg.interaction_coef_std_[0, 1]
    assert abs(reg.intercept_ + 8.0) < 0.1


def test_predict_mean_equals_the_polynomial_of_the_posterior_means(fitted):
    # Every per-draw GP mean is the polynomial of that draw's conditional
    # coefficient means, so the user-unit coefficients reproduce predict()
    # even though X is shifted and scaled (interactions move main effects
    # under centring): exactly in float64 (2e-13 seen), to float32 round-off
    # amplified by the kernel's condition number here (2e-4 sd(y) seen). A
    # wrong unit conversion would be off by O(sd(y)).
    reg, X, y = fitted
    X_new = np.random.default_rng(2).normal(size=(40, X.shape[1])) * 2
    polynomial = (
        reg.intercept_
        + X_new @ reg.coef_
        + np.einsum("ni,ij,nj->n", X_new, reg.interaction_coef_, X_new)
    )
    np.testing.assert_allclose(reg.predict(X_new), polynomial, atol=1e-2 * y.std())


def test_predict_std_includes_noise_and_grows_away_from_data(fitted):
    reg, X, y = fitted
    mean, std = reg.predict(X, return_std=True)
    sigma = reg.posterior_samples_["sigma"].mean() * y.std()
    assert np.all(std >= 0.9 * sigma)
    far = X[:5] + 30.0
    _, std_far = reg.predict(far, return_std=True)
    assert np.all(std_far > std[:5])
    assert r2_score(y, mean) > 0.99


def test_summary_lists_active_effects_with_feature_names():
    rng = np.random.default_rng(3)
    X, y = _planted(rng, p=4)
    frame = pd.DataFrame(X, columns=["temp", "humidity", "wind", "rain"])
    reg = SparseInteractionRegressor(**_FAST).fit(frame, y)
    table = reg.summary()
    assert list(table.index) == ["temp", "humidity", "temp:humidity"]
    assert list(table["effect"]) == ["main", "main", "interaction"]
    assert {"mean", "sd", "ci_5%", "ci_95%", "z"} <= set(table.columns)
    assert np.all(table["ci_5%"] < table["mean"]) and np.all(
        table["mean"] < table["ci_95%"]
    )
    np.testing.assert_allclose(table.loc["temp", "mean"], reg.coef_[0])
    np.testing.assert_allclose(
        table.loc["temp:humidity", "sd"], reg.interaction_coef_std_[0, 1]
    )
    hyper = reg.summary(kind="hyperparameters")
    assert "lambda[humidity]" in hyper.index and "r_hat" in hyper.columns
    with pytest.raises(ValueError, match="kind"):
        reg.summary(kind="coefficients")


def test_mixture_quantiles_of_a_single_gaussian():
    means = np.zeros((3, 2)) + [1.0, -2.0]
    variances = np.ones((3, 2)) * [4.0, 0.25]
    q = si._mixture_quantiles(means, variances, (0.05, 0.95))
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(
        q, [[1 - 2 * z, -2 - 0.5 * z], [1 + 2 * z, -2 + 0.5 * z]]
    )


# --- interactions whose parents have no main effect ----------------------------


def _centred(rng, n=60, p=5):
    """Standard-normal columns centred exactly, so that the standardised main
    effect of a feature that only interacts is exactly 0 (docs/skim.md 4)."""
    X = rng.normal(size=(n, p))
    return X - X.mean(axis=0)


@pytest.mark.parametrize(
    "planted, pair, coef",
    [
        # y = x0 + x0 x2: x2 has no main effect, x0 has one.
        (lambda X: X[:, 0] + X[:, 0] * X[:, 2], (0, 2), 1.0),
        # y = x1 x3: neither parent has a main effect.
        (lambda X: X[:, 1] * X[:, 3], (1, 3), 1.0),
    ],
    ids=["x0+x0x2", "x1x3"],
)
@pytest.mark.parametrize("inference", ["nuts", "svi"])
def test_interaction_without_parent_main_effect_is_active(
    planted, pair, coef, inference
):
    rng = np.random.default_rng(20)
    X = _centred(rng)
    y = planted(X) + 0.05 * rng.normal(size=X.shape[0])
    reg = SparseInteractionRegressor(**_FAST, inference=inference, svi_steps=500)
    reg.fit(X, y)
    # The case of the issue: a parent is not active as a main effect...
    assert pair[1] not in reg.active_features_
    # ...yet the planted pair, and only it, is an active interaction.
    np.testing.assert_array_equal(reg.active_interactions_, [pair])
    error = abs(reg.interaction_coef_[pair] - coef)
    assert error < 5 * reg.interaction_coef_std_[pair]
    names = list(reg.summary().index)
    assert f"x{pair[0]}:x{pair[1]}" in names
    # The kernel's scales single out exactly the planted parents.
    weights = si._slab_weights(reg.posterior_samples_)
    np.testing.assert_array_equal(
        np.flatnonzero(weights > si._RELEVANT_SLAB_WEIGHT), pair
    )


def test_slab_weights_by_hand():
    rng = np.random.default_rng(21)
    samples = {
        "eta1": rng.uniform(0.01, 1.0, size=7),
        "msq": rng.uniform(0.2, 2.0, size=7),
        "xisq": rng.uniform(0.2, 2.0, size=7),
        "lambda": rng.uniform(0.1, 50.0, size=(7, 3)),
    }
    # w = (eta1 kappa / m)^2 with kappa = m lambda / sqrt(m^2 + eta1^2 lambda^2)
    # is eta1^2 lambda^2 / (m^2 + eta1^2 lambda^2), averaged over draws.
    scaled = np.square(samples["eta1"][:, None] * samples["lambda"])
    expected = np.mean(scaled / (samples["msq"][:, None] + scaled), axis=0)
    np.testing.assert_allclose(si._slab_weights(samples), expected, rtol=1e-5)


# --- fit time --------------------------------------------------------------------


def test_fit_time_estimate_grows_with_every_budget():
    base = dict(n_samples=200, n_features=20)
    # n_draws below MAX_SUMMARY_DRAWS, so that more draws add summary work.
    settings = dict(n_warmup=500, n_draws=100, n_chains=1, svi_steps=2000)
    for inference in ("nuts", "svi"):
        reference = si.estimate_fit_seconds(**base, inference=inference, **settings)
        grown = [
            dict(base, n_samples=400),
            dict(base, n_features=80),
        ]
        for args in grown:
            estimate = si.estimate_fit_seconds(**args, inference=inference, **settings)
            assert estimate > reference
        more_work = ("n_warmup", "n_chains") if inference == "nuts" else ("svi_steps",)
        for name in ("n_draws", *more_work):
            larger = dict(settings, **{name: 2 * settings[name]})
            estimate = si.estimate_fit_seconds(**base, inference=inference, **larger)
            assert estimate > reference, name
    # Monotone along a grid of sizes. At large N a gradient is cubic in N;
    # NUTS takes steps in proportion to N, SVI a fixed number.
    sizes = [50, 100, 200, 500, 1000, 2000, 5000]
    for inference in ("nuts", "svi"):
        estimates = [si.estimate_fit_seconds(n, 20, inference=inference) for n in sizes]
        assert np.all(np.diff(estimates) > 0)
    ratio = si.estimate_fit_seconds(4096, 20) / si.estimate_fit_seconds(2048, 20)
    assert 14 < ratio < 16
    ratio = si.estimate_fit_seconds(4096, 20, inference="svi") / (
        si.estimate_fit_seconds(2048, 20, inference="svi")
    )
    assert 7 < ratio < 8


def test_fit_time_estimate_of_the_issue():
    # A default NUTS fit on 500 rows takes about 25 minutes: it must warn;
    # SVI is the fast path, well under a minute; 100 rows take seconds.
    nuts = si.estimate_fit_seconds(500, 20)
    svi = si.estimate_fit_seconds(500, 20, inference="svi")
    assert 15 * 60 < nuts < 40 * 60
    assert nuts > 10 * si.LONG_FIT_SECONDS > 10 * svi
    assert si.estimate_fit_seconds(100, 20) < si.LONG_FIT_SECONDS


def test_long_fit_warns_before_running():
    # The warning is decided from the shapes alone: no fit runs here.
    reg = SparseInteractionRegressor()
    with pytest.warns(si.FitTimeWarning, match=r"minutes.*inference='svi'"):
        si._warn_if_long_fit(reg, 500, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", si.FitTimeWarning)
        si._warn_if_long_fit(SparseInteractionRegressor(inference="svi"), 500, 20)
        si._warn_if_long_fit(reg, 60, 5)
    assert issubclass(si.FitTimeWarning, UserWarning)


def test_fit_warns_when_over_the_time_limit(monkeypatch):
    # A tiny fit under a patched limit of 0 s warns before sampling.
    monkeypatch.setattr(si, "LONG_FIT_SECONDS", 0.0)
    X, y = _planted(np.random.default_rng(22), n=30, p=3)
    with pytest.warns(si.FitTimeWarning, match="expected to take"):
        SparseInteractionRegressor(**_FAST).fit(X, y)


def test_verbose_prints_the_estimate(capsys):
    reg = SparseInteractionRegressor(verbose=1, inference="svi")
    si._warn_if_long_fit(reg, 100, 4)
    expected = si.estimate_fit_seconds(100, 4, inference="svi")
    assert f"fit expected to take about {expected:.0f} s" in capsys.readouterr().out


# --- scikit-learn integration ---------------------------------------------------


def test_pickle_round_trip_predicts_identically(fitted):
    reg, X, _ = fitted
    clone = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(clone.predict(X), reg.predict(X))
    np.testing.assert_array_equal(clone.coef_, reg.coef_)


def test_grid_search_over_expected_sparsity():
    rng = np.random.default_rng(4)
    X, y = _planted(rng, n=48, p=5)
    search = GridSearchCV(
        SparseInteractionRegressor(**_FAST),
        {"expected_sparsity": [1.0, 2.0]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["expected_sparsity"] in (1.0, 2.0)
    assert search.best_score_ > 0.9


def test_fit_is_reproducible_bit_for_bit():
    rng = np.random.default_rng(5)
    X, y = _planted(rng, n=30, p=3)
    first = SparseInteractionRegressor(**_FAST).fit(X, y)
    second = SparseInteractionRegressor(**_FAST).fit(X, y)
    np.testing.assert_array_equal(first.coef_, second.coef_)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))


# --- edge cases and bad input ---------------------------------------------------


def test_one_feature_works():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 1))
    y = 3 * X[:, 0] + 0.1 * rng.normal(size=40)
    reg = SparseInteractionRegressor(**_FAST).fit(X, y)
    assert reg.interaction_coef_.shape == (1, 1)
    assert reg.active_interactions_.shape == (0, 2)
    np.testing.assert_array_equal(reg.active_features_, [0])
    assert abs(reg.coef_[0] - 3) < 0.2


def test_fewer_samples_than_features_works():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(6, 8))
    y = X[:, 0] + 0.1 * rng.normal(size=6)
    reg = SparseInteractionRegressor(**_FAST).fit(X, y)
    mean, std = reg.predict(X, return_std=True)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    assert np.all(np.isfinite(reg.interaction_coef_))


def test_fit_in_float64_under_x64(x64):
    # With x64 enabled every stage runs in float64, so the per-draw identity
    # "GP mean = polynomial of the conditional coefficient means" holds to
    # float64 round-off (2e-13 seen), where float32 only reaches ~1e-4.
    rng = np.random.default_rng(13)
    X, y = _planted(rng, n=30, p=3)
    reg = SparseInteractionRegressor(**_FAST).fit(X, y)
    assert all(v.dtype == np.float64 for v in reg.posterior_samples_.values())
    polynomial = (
        reg.intercept_
        + X @ reg.coef_
        + np.einsum("ni,ij,nj->n", X, reg.interaction_coef_, X)
    )
    np.testing.assert_allclose(reg.predict(X), polynomial, atol=1e-9 * y.std())


def test_fit_does_not_mutate_input():
    rng = np.random.default_rng(14)
    X, y = _planted(rng, n=30, p=3)
    weight = rng.uniform(0.5, 2.0, size=30)
    copies = X.copy(), y.copy(), weight.copy()
    reg = SparseInteractionRegressor(**_FAST).fit(X, y, sample_weight=weight)
    reg.predict(X, return_std=True)
    for array, copy in zip((X, y, weight), copies, strict=True):
        np.testing.assert_array_equal(array, copy)


def test_zero_weight_rows_are_ignored():
    # A row of weight 0 is left out of the GP exactly, so a wild outlier
    # with weight 0 must not spoil the fit.
    rng = np.random.default_rng(8)
    X, y = _planted(rng, n=30, p=3)
    X_out = np.vstack([X, [[50.0, -50.0, 10.0]]])
    y_out = np.append(y, 1e3)
    weight = np.append(np.ones(30), 0.0)
    reg = SparseInteractionRegressor(**_FAST).fit(X_out, y_out, sample_weight=weight)
    assert r2_score(y, reg.predict(X)) > 0.99


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha1": -1.0}, "alpha1"),
        ({"beta2": 0.0}, "beta2"),
        ({"c": -0.5}, "'c'"),
        ({"selection_z": 0}, "selection_z"),
        ({"expected_sparsity": 0.0}, "expected_sparsity"),
        ({"expected_sparsity": "few"}, "expected_sparsity"),
        ({"n_warmup": 0}, "n_warmup"),
        ({"inference": "gibbs"}, "inference"),
    ],
)
def test_invalid_constructor_values_raise(params, match):
    X, y = _planted(np.random.default_rng(9), n=10, p=3)
    with pytest.raises(ValueError, match=match):
        SparseInteractionRegressor(**params).fit(X, y)


def test_expected_sparsity_must_be_below_n_features():
    X, y = _planted(np.random.default_rng(10), n=10, p=3)
    with pytest.raises(ValueError, match="expected_sparsity=3.*n_features=3"):
        SparseInteractionRegressor(expected_sparsity=3).fit(X, y)


def test_bad_data_raises():
    X, y = _planted(np.random.default_rng(11), n=10, p=3)
    reg = SparseInteractionRegressor(**_FAST)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        reg.fit(X_nan, y)
    with pytest.raises(ValueError, match="infinity"):
        reg.fit(X, np.where(np.arange(10) == 0, np.inf, y))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        reg.fit(X, y[:-1])
    with pytest.raises(ValueError, match="2D array"):
        reg.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="at least one non-zero"):
        reg.fit(X, y, sample_weight=np.zeros(10))
    with pytest.raises(ValueError, match="Negative values"):
        reg.fit(X, y, sample_weight=np.where(np.arange(10) == 0, -1.0, 1.0))


def test_string_target_is_a_clear_error():
    X, _ = _planted(np.random.default_rng(23), n=10, p=3)
    y = np.array(["low", "high"] * 5)
    with pytest.raises(ValueError, match="Unknown label type.*numeric target"):
        SparseInteractionRegressor(**_FAST).fit(X, y)
    # Strings in an object array fail as in Ridge, before any sampling.
    with pytest.raises(ValueError, match="could not convert string to float"):
        SparseInteractionRegressor(**_FAST).fit(X, y.astype(object))


def test_fitted_state_is_one_private_attribute(fitted):
    # Hooks hand state over by return value; what prediction and summary
    # need is one NamedTuple set in _set_fitted_attributes.
    reg, _, _ = fitted
    private = {name for name in vars(reg) if name.startswith("_")}
    assert private == {"_fitted_state_"}
    assert isinstance(reg._fitted_state_, si._FittedState)


def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        SparseInteractionRegressor(2.0)


def test_wrong_number_of_features_at_predict(fitted):
    reg, X, _ = fitted
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:, :3])


def test_too_many_samples_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(si, "MAX_N_SAMPLES", 20)
    X, y = _planted(np.random.default_rng(12), n=21, p=3)
    with pytest.raises(ValueError, match="MAX_N_SAMPLES=20"):
        SparseInteractionRegressor(**_FAST).fit(X, y)


def test_default_expected_sparsity():
    reg = SparseInteractionRegressor()
    assert reg._resolved_sparsity(1) == 0.5
    assert reg._resolved_sparsity(2) == 1.0
    assert reg._resolved_sparsity(20) == 2.0
    assert reg._resolved_sparsity(100) == 10.0


# --- recovery on the synthetic problem of docs/skim.md section 5 ---------------


def _synthetic(seed, n=100, p=20):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n, p))
    coef = np.zeros(p)
    coef[:3] = 0.5 + 2.5 * rng.uniform(size=3)
    f = X @ coef + X[:, 0] * X[:, 1]
    y = f + 0.05 * rng.normal(size=2 * n)
    return (X[:n], y[:n]), (X[n:], f[n:]), coef


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_planted_effects(seed):
    # float32, the default users get; the float64 path runs the same jitted
    # functions (test_skim_kernel, test_fit_in_float64_under_x64).
    (X, y), (X_test, f_test), coef = _synthetic(seed)
    reg = SparseInteractionRegressor(n_warmup=200, n_draws=200, random_state=seed)
    reg.fit(X, y)
    assert set(range(3)) <= set(reg.active_features_)
    assert len(reg.active_features_) <= 4  # at most one spurious feature
    pairs = {tuple(pair) for pair in reg.active_interactions_}
    assert (0, 1) in pairs and len(pairs) <= 2
    # Planted coefficients lie within 3 posterior sds of the truth.
    assert np.all(np.abs(reg.coef_[:3] - coef[:3]) < 3 * reg.coef_std_[:3])
    assert abs(reg.interaction_coef_[0, 1] - 1.0) < 3 * reg.interaction_coef_std_[0, 1]
    assert r2_score(f_test, reg.predict(X_test)) > 0.9

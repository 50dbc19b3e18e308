"""The estimators' convergence warnings (bayes_sklearn/_base.py): each one
triggered by a real fit with a budget too small to converge, each naming
what to change, and none on a healthy fit."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from bayes_sklearn import BayesianLogisticRegression, _base


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _convergence_warnings(estimator, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X, y)
    return [
        str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)
    ]


# --- NUTS ---------------------------------------------------------------------


def test_healthy_nuts_fit_does_not_warn(iris):
    # The default budget on standardized iris: R-hat ~ 1, bulk ESS ~ n_draws.
    clf = BayesianLogisticRegression(random_state=0)
    assert _convergence_warnings(clf, *iris) == []
    assert clf.diagnostics_["min_bulk_ess"] >= 100
    assert clf.diagnostics_["r_hat_undefined"] is None


def test_low_bulk_ess_warns_and_names_the_remedy(iris):
    # 50 draws: the ESS is at most 50 log10(50) = 85 < 100 (Stan's cap), so
    # the warning cannot depend on the sampler's luck.
    clf = BayesianLogisticRegression(n_warmup=50, n_draws=50, random_state=0)
    messages = _convergence_warnings(clf, *iris)
    assert clf.diagnostics_["min_bulk_ess"] < 100
    assert any(
        "bulk effective sample size" in m and "Increase n_draws" in m for m in messages
    ), messages


def test_r_hat_that_cannot_be_computed_warns_and_says_why(iris):
    # Split R-hat needs 4 draws per chain: it was NaN and skipped silently.
    clf = BayesianLogisticRegression(n_warmup=50, n_draws=3, random_state=0)
    messages = _convergence_warnings(clf, *iris)
    assert np.isnan(clf.diagnostics_["max_r_hat"])
    assert any(
        "R-hat cannot be computed" in m and "n_draws=3" in m for m in messages
    ), messages


def test_why_r_hat_is_undefined_names_stuck_and_non_finite_sites():
    rng = np.random.default_rng(0)
    grouped = {
        "fine": rng.normal(size=(2, 10, 3)),
        "stuck": np.concatenate(
            # Each chain constant (R-hat 0/0 or x/0), one element of three.
            [np.ones((2, 10, 1)) * [[[1.0]], [[2.0]]], rng.normal(size=(2, 10, 2))],
            axis=-1,
        ),
        "overflow": np.full((2, 10), np.inf),
    }
    reason = _base._why_r_hat_undefined(grouped)
    assert "'overflow' (1 of 1 elements) are not finite" in reason
    assert "'stuck' (1 of 3 elements) never change within a chain" in reason
    assert "n_warmup" in reason and "'fine'" not in reason
    assert _base._why_r_hat_undefined({"fine": grouped["fine"]}) is None
    short = _base._why_r_hat_undefined({"fine": grouped["fine"][:, :3]})
    assert "at least 4 draws per chain, got n_draws=3" in short
    diagnostics = dict(
        n_divergences=0, n_chains=2, n_draws=10, max_r_hat=1.0,
        min_bulk_ess=500.0, r_hat_undefined=reason,
    )
    with pytest.warns(ConvergenceWarning, match="R-hat cannot be computed.*stuck"):
        _base._warn_if_not_converged(diagnostics, "Model")


def test_bulk_ess_threshold_is_per_chain():
    diagnostics = dict(n_divergences=0, n_chains=4, n_draws=1000, max_r_hat=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _base._warn_if_not_converged({**diagnostics, "min_bulk_ess": 400.0}, "M")
    with pytest.warns(ConvergenceWarning, match="399 < 400 \\(100 per chain\\)"):
        _base._warn_if_not_converged({**diagnostics, "min_bulk_ess": 399.0}, "M")


# --- SVI ----------------------------------------------------------------------


def test_svi_trend_statistic_on_synthetic_traces():
    # Flat noisy losses: the statistic is ~N(0, 1); a trend of one noise sd
    # per 100 steps over 2000 steps sits far above the threshold of 4.
    rng = np.random.default_rng(1)
    noise = rng.normal(size=2000)
    assert abs(_base._svi_trend(10.0 + noise)) < 4
    assert _base._svi_trend(10.0 + noise - np.arange(2000) / 100) > 10
    assert _base._svi_trend(np.r_[noise[:-1], np.nan]) == np.inf
    assert _base._svi_trend(noise[:19]) is None  # too short to judge
    assert _base._svi_trend(np.ones(100)) == 0.0  # exactly flat


def test_healthy_svi_fit_does_not_warn(iris):
    # test_logistic's SVI budget; the loss is flat well before 1000 steps.
    clf = BayesianLogisticRegression(
        inference="svi", svi_steps=1000, n_draws=200, random_state=0
    )
    assert _convergence_warnings(clf, *iris) == []


@pytest.mark.parametrize(
    "svi_steps, match",
    [(100, "has not levelled off"), (10, "only 10 SVI steps, too few")],
)
def test_svi_still_falling_warns(iris, svi_steps, match):
    clf = BayesianLogisticRegression(
        inference="svi", svi_steps=svi_steps, n_draws=200, random_state=0
    )
    messages = _convergence_warnings(clf, *iris)
    assert any(match in m and "Increase svi_steps" in m for m in messages), messages

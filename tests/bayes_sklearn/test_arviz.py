"""Estimator.to_arviz: the posterior grouped by chain, NUTS's sample stats, and
axes named after the features and classes.

Data, budgets and models are those of ``test_persistence``, so that the two
modules share compiled programs (in one process, or through the session's
on-disk cache).
"""

import sys
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from bayes_sklearn import (
    BayesianLinearRegression,
    BayesianLogisticRegression,
    BayesianPoissonRegressor,
    SparseInteractionRegressor,
)
from tests.bayes_sklearn.test_persistence import BUDGET, LineRegressor, _data

FEATURES = ["age", "income", "height"]
SAMPLE_STATS = {
    "diverging",
    "n_steps",
    "tree_depth",
    "acceptance_rate",
    "energy",
    "lp",
    "step_size",
}


def _fit(estimator, kind, frame=False):
    X, y = _data()
    if frame:
        X = pd.DataFrame(X, columns=FEATURES)
    target = {
        "regression": y,
        "counts": np.round(np.exp(0.5 * y)),
        "binary": np.where(y > 0, "yes", "no"),
        "multiclass": np.digitize(y, [-0.5, 0.5]),
    }[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tiny budgets
        return estimator.fit(X, target)


# name -> (estimator, target kind, fitted on a DataFrame, the per-feature site)
CASES = {
    "linear": (BayesianLinearRegression, "regression", True, "coef"),
    "poisson": (BayesianPoissonRegressor, "counts", False, "coef"),
    "logistic": (BayesianLogisticRegression, "binary", False, "coef"),
    "skim": (SparseInteractionRegressor, "regression", True, "lambda"),
    "model_regressor": (LineRegressor, "regression", True, "coef"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    make, kind, frame, site = CASES[request.param]
    return _fit(make(**BUDGET), kind, frame), frame, site


@pytest.fixture(scope="module")
def softmax():
    return _fit(BayesianLogisticRegression(**BUDGET), "multiclass", frame=True)


def _grouped(estimator):
    n_chains = estimator.diagnostics_["n_chains"]
    return {
        name: value.reshape((n_chains, -1) + value.shape[1:])
        for name, value in estimator.posterior_samples_.items()
    }


def test_posterior_is_grouped_by_chain_and_equals_the_draws(case):
    estimator, _, _ = case
    idata = estimator.to_arviz()
    grouped = _grouped(estimator)
    assert set(idata.posterior.data_vars) == set(grouped)
    for name, value in grouped.items():
        data = idata.posterior[name]
        assert data.dims[:2] == ("chain", "draw")
        assert data.shape == (BUDGET["n_chains"], BUDGET["n_draws"]) + value.shape[2:]
        np.testing.assert_array_equal(data.values, value)
    assert idata.posterior.attrs["estimator"] == type(estimator).__name__


def test_sample_stats_are_nuts_per_draw_statistics(case):
    estimator, _, _ = case
    stats = estimator.to_arviz().sample_stats
    assert set(stats.data_vars) == SAMPLE_STATS
    for name in SAMPLE_STATS:
        assert stats[name].shape == (BUDGET["n_chains"], BUDGET["n_draws"])
    assert int(stats["diverging"].sum()) == estimator.diagnostics_["n_divergences"]
    assert np.all(stats["n_steps"].values >= 1)
    assert np.all((stats["acceptance_rate"] >= 0) & (stats["acceptance_rate"] <= 1))
    assert np.all(stats["step_size"].values > 0)


def test_feature_axes_are_named_after_the_features(case):
    estimator, frame, site = case
    idata = estimator.to_arviz()
    assert idata.posterior[site].dims == ("chain", "draw", "feature")
    expected = FEATURES if frame else ["x0", "x1", "x2"]
    assert list(idata.posterior["feature"].values) == expected
    np.testing.assert_array_equal(
        idata.posterior[site].sel(feature=expected[1]).values,
        _grouped(estimator)[site][:, :, 1],
    )


def test_az_summary_runs_and_agrees_with_the_draws(case):
    estimator, frame, site = case
    idata = estimator.to_arviz()
    table = az.summary(idata, kind="stats")
    n_scalars = sum(
        int(np.prod(v.shape[1:])) for v in estimator.posterior_samples_.values()
    )
    assert len(table) == n_scalars
    name = f"{site}[{FEATURES[0] if frame else 'x0'}]"
    draws = estimator.posterior_samples_[site][:, 0].astype(np.float64)
    # az.summary rounds to 3 significant decimals.
    assert table.loc[name, "mean"] == pytest.approx(draws.mean(), abs=1e-3)


def test_classes_and_features_name_the_softmax_axes(softmax):
    idata = softmax.to_arviz()
    assert idata.posterior["coef"].dims == ("chain", "draw", "class", "feature")
    assert idata.posterior["intercept"].dims == ("chain", "draw", "class")
    assert list(idata.posterior["class"].values) == list(softmax.classes_)
    assert list(idata.posterior["feature"].values) == FEATURES
    np.testing.assert_array_equal(
        idata.posterior["coef"].sel(**{"class": 2, "feature": "income"}).values,
        _grouped(softmax)["coef"][:, :, 2, 1],
    )


def test_an_svi_fit_is_one_chain_without_sample_stats():
    estimator = _fit(
        LineRegressor(inference="svi", svi_steps=50, **BUDGET), "regression"
    )
    idata = estimator.to_arviz()
    assert "sample_stats" not in idata.groups()
    assert dict(idata.posterior["coef"].sizes) == {
        "chain": 1,
        "draw": BUDGET["n_draws"],
        "feature": 3,
    }
    np.testing.assert_array_equal(
        idata.posterior["coef"].values[0], estimator.posterior_samples_["coef"]
    )


@pytest.mark.parametrize("frame", [True, False])
def test_model_estimator_summary_labels_per_feature_sites(frame):
    estimator = _fit(LineRegressor(**BUDGET), "regression", frame)
    names = FEATURES if frame else ["x0", "x1", "x2"]
    assert list(estimator.summary().index) == [f"coef[{n}]" for n in names] + [
        "sigma"
    ]


def test_to_arviz_needs_a_fit():
    with pytest.raises(NotFittedError):
        BayesianLinearRegression().to_arviz()


def test_missing_arviz_names_the_install_command(monkeypatch, softmax):
    monkeypatch.setitem(sys.modules, "arviz", None)
    with pytest.raises(ImportError, match=r"pip install arviz.*bayes-sklearn\[arviz\]"):
        softmax.to_arviz()

"""Saving fitted estimators: skops files trusting only our types, the package
version, and the warning on unpickling a fit made by another version."""

import importlib.metadata
import io
import pickle
import sys
import warnings

import numpy as np
import pytest
import skops.io as skops_io
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skops.io.exceptions import UntrustedTypesFoundException

import bayes_sklearn
import core_ppl
import core_ppl as ppl
import core_ppl.distributions as dist
from bayes_sklearn import (
    BayesianLinearRegression,
    BayesianLogisticRegression,
    BayesianPoissonRegressor,
    InconsistentVersionWarning,
    SparseInteractionRegressor,
    _persistence,
    make_estimator,
    trusted_types,
)

BUDGET = dict(n_warmup=30, n_draws=20, n_chains=2, random_state=0)


# --- module-level models and classes, so that skops and pickle find them --------


def line_model(X, y=None, *, prior_scale=1.0):
    coef = ppl.sample(
        "coef", dist.Normal(0.0, prior_scale).expand((X.shape[1],)).to_event(1)
    )
    sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
    with ppl.plate("rows", X.shape[0]):
        ppl.sample("y", dist.Normal(X @ coef, sigma), obs=y)


def logit_model(X, y=None, *, prior_scale=1.0):
    coef = ppl.sample(
        "coef", dist.Normal(0.0, prior_scale).expand((X.shape[1],)).to_event(1)
    )
    with ppl.plate("rows", X.shape[0]):
        ppl.sample("y", dist.Bernoulli(logits=X @ coef), obs=y)


LineRegressor = make_estimator(line_model, name="LineRegressor")
LogitClassifier = make_estimator(logit_model, kind="classifier", name="LogitClassifier")


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -0.5, 0.0]) + 0.3 * rng.normal(size=40)
    return X, y


def _fit(estimator, kind):
    X, y = _data()
    target = {
        "regression": y,
        "counts": np.round(np.exp(0.5 * y)),
        "binary": np.where(y > 0, "yes", "no"),
        "multiclass": np.digitize(y, [-0.5, 0.5]),
    }[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tiny budgets
        return estimator.fit(X, target)


CASES = {
    "linear": (BayesianLinearRegression, "regression"),
    "poisson": (BayesianPoissonRegressor, "counts"),
    "logistic": (BayesianLogisticRegression, "binary"),
    "skim": (SparseInteractionRegressor, "regression"),
    # SVI: a diagnostics_ of another shape (the ELBO trace), one chain.
    "model_regressor_svi": (
        lambda **kw: LineRegressor(inference="svi", svi_steps=50, **kw),
        "regression",
    ),
    "model_classifier": (LogitClassifier, "binary"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def fitted(request):
    make, kind = CASES[request.param]
    return _fit(make(**BUDGET), kind)


def _predictions(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return estimator.predict(X), estimator.predict_proba(X)
    return estimator.predict(X, return_std=True)


def _assert_same_fit(loaded, estimator):
    X, _ = _data()
    assert type(loaded) is type(estimator)
    assert loaded.get_params() == estimator.get_params()
    assert loaded.posterior_samples_.keys() == estimator.posterior_samples_.keys()
    for name, value in estimator.posterior_samples_.items():
        np.testing.assert_array_equal(loaded.posterior_samples_[name], value)
    for after, before in zip(_predictions(loaded, X), _predictions(estimator, X)):
        np.testing.assert_array_equal(after, before)


# --- skops ---------------------------------------------------------------------


def test_skops_round_trip_trusts_only_our_types(fitted, tmp_path):
    path = tmp_path / "fit.skops"
    skops_io.dump(fitted, path)
    untrusted = skops_io.get_untrusted_types(file=path)
    # NumPy, plain Python and scikit-learn types are trusted by skops; the rest
    # are ours: the estimator's class and the containers of its state.
    assert all(name.startswith(("bayes_sklearn.", __name__)) for name in untrusted)
    trusted = trusted_types(type(fitted))
    assert set(untrusted) <= set(trusted)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same version: no warning
        loaded = skops_io.load(path, trusted=trusted)
    _assert_same_fit(loaded, fitted)


def test_save_and_load_wrap_skops(fitted):
    buffer = io.BytesIO()
    bayes_sklearn.save(fitted, buffer)
    extra = [type(fitted)] if type(fitted).__module__ == __name__ else []
    loaded = bayes_sklearn.load(io.BytesIO(buffer.getvalue()), trusted=extra)
    _assert_same_fit(loaded, fitted)


def test_loading_without_trust_names_the_untrusted_types(tmp_path):
    path = tmp_path / "fit.skops"
    skops_io.dump(_fit(BayesianPoissonRegressor(**BUDGET), "counts"), path)
    with pytest.raises(UntrustedTypesFoundException, match="BayesianPoissonRegressor"):
        skops_io.load(path)


def test_a_users_class_must_be_trusted_explicitly():
    buffer = io.BytesIO()
    bayes_sklearn.save(_fit(LogitClassifier(**BUDGET), "binary"), buffer)
    with pytest.raises(UntrustedTypesFoundException, match="LogitClassifier"):
        bayes_sklearn.load(io.BytesIO(buffer.getvalue()))
    loaded = bayes_sklearn.load(io.BytesIO(buffer.getvalue()), trusted=LogitClassifier)
    assert type(loaded) is LogitClassifier


def test_a_pipeline_round_trips():
    pipeline = _fit(
        make_pipeline(StandardScaler(), BayesianLinearRegression(**BUDGET)),
        "regression",
    )
    buffer = io.BytesIO()
    bayes_sklearn.save(pipeline, buffer)
    loaded = bayes_sklearn.load(io.BytesIO(buffer.getvalue()))
    X, _ = _data()
    np.testing.assert_array_equal(loaded.predict(X), pipeline.predict(X))


def test_trusted_types_lists_our_state_types_and_given_classes():
    names = trusted_types()
    assert names == sorted(names)
    assert "bayes_sklearn._linear.BayesianLinearRegression" in names
    assert "bayes_sklearn._model._Fitted" in names
    assert all(name.startswith("bayes_sklearn.") for name in names)
    # Callables (handlers) and warnings are never fitted state.
    assert "bayes_sklearn._model.weigh_site" not in names
    assert "bayes_sklearn._persistence.InconsistentVersionWarning" not in names
    assert f"{__name__}.LineRegressor" in trusted_types(LineRegressor)


@pytest.mark.parametrize("bad", [int, "bayes_sklearn.X", StandardScaler])
def test_trusted_types_rejects_other_classes(bad):
    with pytest.raises(TypeError, match="BaseBayesianEstimator"):
        trusted_types(bad)


def test_missing_skops_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(ImportError, match=r"pip install skops.*bayes-sklearn\[skops\]"):
        bayes_sklearn.save(BayesianLinearRegression(), io.BytesIO())
    with pytest.raises(ImportError, match="pip install skops"):
        bayes_sklearn.load(io.BytesIO())


# --- version --------------------------------------------------------------------


def test_version_comes_from_the_distribution():
    expected = importlib.metadata.version("bayes-sklearn")
    assert bayes_sklearn.__version__ == core_ppl.__version__ == expected


def test_version_without_installed_metadata(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert core_ppl._distribution_version() == "0+unknown"


@pytest.mark.parametrize("name", ["linear", "model_classifier"])
def test_pickle_of_this_version_loads_silently(name):
    make, kind = CASES[name]
    estimator = _fit(make(**BUDGET), kind)
    data = pickle.dumps(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = pickle.loads(data)
    assert "_bayes_sklearn_version" not in vars(loaded)
    _assert_same_fit(loaded, estimator)


@pytest.mark.parametrize("name", ["logistic", "model_classifier"])
def test_pickle_of_another_version_warns_naming_both(name, monkeypatch):
    make, kind = CASES[name]
    estimator = _fit(make(**BUDGET), kind)
    with monkeypatch.context() as patch:
        patch.setattr(_persistence, "__version__", "0.0.1")
        data = pickle.dumps(estimator)
    with pytest.warns(InconsistentVersionWarning) as record:
        loaded = pickle.loads(data)
    (warning,) = [w.message for w in record]
    assert isinstance(warning, UserWarning)
    assert warning.original_version == "0.0.1"
    assert warning.current_version == bayes_sklearn.__version__
    assert "0.0.1" in str(warning) and bayes_sklearn.__version__ in str(warning)
    assert type(estimator).__name__ in str(warning)
    _assert_same_fit(loaded, estimator)


def test_skops_load_of_another_version_warns(monkeypatch):
    estimator = _fit(BayesianLinearRegression(**BUDGET), "regression")
    buffer = io.BytesIO()
    with monkeypatch.context() as patch:
        patch.setattr(_persistence, "__version__", "0.0.1")
        bayes_sklearn.save(estimator, buffer)
    with pytest.warns(InconsistentVersionWarning, match="0.0.1"):
        bayes_sklearn.load(io.BytesIO(buffer.getvalue()))


def test_state_without_a_version_warns_and_is_not_mutated():
    estimator = _fit(BayesianLinearRegression(**BUDGET), "regression")
    state = estimator.__getstate__()
    assert state["_bayes_sklearn_version"] == bayes_sklearn.__version__
    assert "_bayes_sklearn_version" not in vars(estimator)
    del state["_bayes_sklearn_version"]
    copy = dict(state)
    empty = BayesianLinearRegression.__new__(BayesianLinearRegression)
    with pytest.warns(InconsistentVersionWarning, match="unknown"):
        empty.__setstate__(state)
    assert state == copy
    np.testing.assert_array_equal(empty.coef_, estimator.coef_)

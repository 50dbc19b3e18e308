"""Estimators with ``n_devices``: the rows of the data split over devices.

The fits on several devices run in ONE child process with four CPU devices
and float64 (see ``tests/core_ppl/infer/test_sharding.py`` for why). Same
seed, same data: the draws must equal the one-device draws up to rounding
amplified by the sampler (about 1e-10 in float64); ``ATOL = 1e-6`` is far
above that and far below the effect of a wrong split (posterior sds here
are about 0.2).
"""


import jax
import numpy as np
import pytest
from sklearn.base import clone

from bayes_sklearn import BayesianLinearRegression, BayesianLogisticRegression
from bayes_sklearn._base import _padded_rows
from tests.host_devices import run_on_host_devices

ATOL = 1e-6

CHILD = r"""
import json
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from bayes_sklearn import BayesianLogisticRegression

warnings.simplefilter("ignore", ConvergenceWarning)
rng = np.random.RandomState(0)
X = rng.normal(size=(50, 3))
y = (rng.rand(50) < 1 / (1 + np.exp(-X @ np.array([1.5, -1.0, 0.0])))).astype(int)
out = {}
for inference in ("nuts", "svi"):
    for n_devices in (None, 4, 3):
        if inference == "svi" and n_devices == 3:
            continue
        est = BayesianLogisticRegression(
            inference=inference, n_warmup=30, n_draws=30, svi_steps=60,
            random_state=0, n_devices=n_devices,
        ).fit(X, y)
        out[f"{inference}_{n_devices}"] = {
            "coef": np.asarray(est.posterior_samples_["coef"]).tolist(),
            "proba": est.predict_proba(X[:5]).tolist(),
        }
# Folds of 25 rows and the refit on 50 share the 64-row bucket: no new program.
search = GridSearchCV(
    BayesianLogisticRegression(n_warmup=30, n_draws=30, random_state=0),
    {"n_devices": [None, 4]},
    cv=2,
).fit(X, y)
out["grid_scores"] = search.cv_results_["mean_test_score"].tolist()
out["grid_best_n_devices"] = search.best_estimator_.n_devices
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def fits():
    return run_on_host_devices(CHILD)


@pytest.mark.parametrize("n_devices", [4, 3])
def test_nuts_fit_on_several_devices_equals_the_one_device_fit(fits, n_devices):
    # 50 rows: padded to 64 for 4 devices, to 66 (22 per device) for 3.
    one = fits["nuts_None"]
    assert np.ptp(one["coef"]) > 0.1  # the chain moved
    sharded = fits[f"nuts_{n_devices}"]
    np.testing.assert_allclose(sharded["coef"], one["coef"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(sharded["proba"], one["proba"], rtol=0, atol=ATOL)


def test_svi_fit_on_four_devices_equals_the_one_device_fit(fits):
    one, sharded = fits["svi_None"], fits["svi_4"]
    np.testing.assert_allclose(sharded["coef"], one["coef"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(sharded["proba"], one["proba"], rtol=0, atol=ATOL)


def test_grid_search_over_n_devices_scores_both_alike(fits):
    # Same seed per fit: the two settings give the same draws up to
    # rounding, hence the same held-out accuracy.
    scores = fits["grid_scores"]
    assert len(scores) == 2 and 0.5 < scores[0] <= 1
    assert scores[1] == pytest.approx(scores[0], abs=1e-12)
    assert fits["grid_best_n_devices"] in (None, 4)


# --- parameters (this process, one device) -----------------------------------


def test_n_devices_is_a_constructor_parameter():
    for cls in (BayesianLogisticRegression, BayesianLinearRegression):
        est = cls(n_devices=4)
        assert est.get_params()["n_devices"] == 4
        assert clone(est).n_devices == 4
        assert cls().n_devices is None


def test_more_devices_than_visible_name_n_devices():
    X, y = np.random.RandomState(0).normal(size=(10, 2)), np.arange(10) % 2
    too_many = jax.device_count() + 1
    est = BayesianLogisticRegression(n_devices=too_many, n_warmup=5, n_draws=5)
    with pytest.raises(ValueError, match=f"n_devices={too_many} but only"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="n_devices"):
        BayesianLogisticRegression(n_devices=0).fit(X, y)


def test_padding_rounds_the_bucket_up_to_a_multiple_of_the_devices():
    assert _padded_rows(50, 64, None) == 64
    assert _padded_rows(50, 64, 4) == 64
    assert _padded_rows(50, 64, 3) == 66
    assert _padded_rows(1000, 64, 7) % 7 == 0 and _padded_rows(1000, 64, 7) >= 1000

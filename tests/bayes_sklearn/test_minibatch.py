"""SVI on minibatches (``batch_size``): the same variational posterior as
full-batch SVI, and ``batch_size`` checked.

Each fit's answer carries two random errors, the optimiser's jitter around
the optimum (Adam takes steps of about its learning rate, with noisy
gradients) and the Monte Carlo error of the draws. Both average out over
independent seeds, so the tests compare averages over seeds against their
references, within 4.5 standard errors estimated from the spread over
seeds: a bias of the minibatch estimate (a wrong likelihood scale, padding
rows counted) would show as a mean error far outside that.
"""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import core_ppl as ppl
import core_ppl.distributions as dist
from bayes_sklearn import BayesianLogisticRegression, make_estimator

# Short runs trip the ELBO trend check by chance; not what is tested here.
pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)

N_ROWS, BATCH_SIZE, N_SEEDS, Z = 200, 25, 8, 4.5
SVI = dict(inference="svi", svi_steps=1000, n_draws=500)


def line(X, y=None, *, prior_scale=1.0):
    coef = ppl.sample(
        "coef", dist.Normal(0.0, prior_scale).expand([X.shape[1]]).to_event(1)
    )
    with ppl.plate("rows", X.shape[0]):
        ppl.sample("y", dist.Normal(X @ coef, 1.0), obs=y)


Line = make_estimator(line, name="Line")


def _data(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N_ROWS, 2))
    return X, X @ np.array([1.0, -0.5]) + rng.normal(size=N_ROWS)


def _mean_field_optimum(X, y):
    """Means and sds of the best mean-field normal for ``line``: the
    posterior is normal with precision ``P = X'X + I``; the optimum of the
    ELBO has its mean and the sds ``1 / sqrt(diag(P))`` (Bishop 2006,
    section 10.1.2)."""
    precision = X.T @ X + np.eye(X.shape[1])
    return np.linalg.solve(precision, X.T @ y), 1 / np.sqrt(np.diag(precision))


def _fits(estimator, X, y, statistic):
    return np.array(
        [
            statistic(estimator.set_params(random_state=seed).fit(X, y))
            for seed in range(N_SEEDS)
        ]
    )


def _assert_mean_within(values, reference):
    """The mean over seeds is ``reference`` within Z standard errors."""
    se = values.std(axis=0, ddof=1) / np.sqrt(len(values))
    assert np.all(np.abs(values.mean(axis=0) - reference) < Z * se + 1e-12)


@pytest.mark.slow
def test_minibatch_svi_finds_the_mean_field_optimum_of_a_conjugate_model():
    X, y = _data()
    mean, sd = _mean_field_optimum(X, y)
    # Padded to 256 rows: the batches are drawn from the padding rows too.
    estimator = Line(batch_size=BATCH_SIZE, **SVI)
    draws = [
        estimator.set_params(random_state=seed).fit(X, y).posterior_samples_["coef"]
        for seed in range(N_SEEDS)
    ]
    _assert_mean_within(np.array([d.mean(axis=0) for d in draws]), mean)
    _assert_mean_within(np.array([d.std(axis=0) for d in draws]), sd)


@pytest.mark.slow
def test_minibatch_svi_logistic_regression_agrees_with_full_batch_svi():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(N_ROWS, 2))
    y = (rng.uniform(size=N_ROWS) < 1 / (1 + np.exp(-X @ [1.5, -1.0]))).astype(int)

    def coef(fitted):
        return fitted.posterior_samples_["coef"].reshape(-1, 2).mean(axis=0)

    full = _fits(BayesianLogisticRegression(**SVI), X, y, coef)
    mini = _fits(BayesianLogisticRegression(batch_size=BATCH_SIZE, **SVI), X, y, coef)
    difference = mini.mean(axis=0) - full.mean(axis=0)
    se = np.sqrt((mini.var(axis=0, ddof=1) + full.var(axis=0, ddof=1)) / N_SEEDS)
    assert np.all(np.abs(difference) < Z * se)


def test_a_batch_of_all_rows_is_the_full_batch_fit():
    X, y = _data()
    budget = dict(SVI, random_state=0)  # the programs of the tests above
    full = Line(**budget).fit(X, y)
    for batch_size in (N_ROWS, 10 * N_ROWS):
        clipped = Line(batch_size=batch_size, **budget).fit(X, y)
        np.testing.assert_array_equal(
            clipped.posterior_samples_["coef"], full.posterior_samples_["coef"]
        )


def test_batch_size_leaves_the_data_alone_and_draws_batches():
    X, y = _data()
    budget = dict(SVI, random_state=0)
    X_before, y_before = X.copy(), y.copy()
    full = Line(**budget).fit(X, y)
    mini = Line(batch_size=BATCH_SIZE, **budget).fit(X, y)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert mini.get_params()["batch_size"] == BATCH_SIZE
    assert not np.array_equal(
        mini.posterior_samples_["coef"], full.posterior_samples_["coef"]
    )


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, "10"])
def test_batch_size_must_be_a_positive_int(batch_size):
    X, y = _data()
    with pytest.raises(ValueError, match="batch_size"):
        BayesianLogisticRegression(inference="svi", batch_size=batch_size).fit(
            X, y > 0
        )


@pytest.mark.parametrize("estimator", [BayesianLogisticRegression, Line])
def test_batch_size_needs_svi(estimator):
    X, y = _data()
    with pytest.raises(ValueError, match="batch_size=10 needs inference='svi'"):
        estimator(batch_size=10).fit(X, (y > 0).astype(int))


def test_laplace_rows_subsample_only_large_minibatch_fits(monkeypatch):
    """The Laplace preconditioner of a minibatch fit on many rows is computed
    on an evenly spaced subset whose weights sum to the total (an unbiased
    estimate of the log-likelihood); a full-batch fit uses every row."""
    from bayes_sklearn import _logistic

    monkeypatch.setattr(_logistic, "_MAX_LAPLACE_ROWS_MINIBATCH", 100)
    weight = np.linspace(0.5, 1.5, 1000)
    rows, scaled = _logistic._laplace_rows(1000, weight, batch_size=32)
    assert rows.size == 100 and rows[0] == 0 and rows[-1] == 999
    np.testing.assert_allclose(scaled.sum(), weight.sum(), rtol=0.01)
    rows, same = _logistic._laplace_rows(1000, weight, batch_size=None)
    assert rows == slice(None) and same is weight
    rows, same = _logistic._laplace_rows(50, weight[:50], batch_size=32)
    assert rows == slice(None)

"""Prediction over posterior draws (bayes_sklearn._predict and its users).

References are computed here in float64 NumPy from the posterior draws, the
way the package did before prediction was compiled; the compiled float32
path must agree to float32 rounding. No timings are asserted (see
benchmarks/predict.py for those).
"""

import jax
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import log_expit, log_softmax, logsumexp

from bayes_sklearn import BayesianLinearRegression, BayesianPoissonRegressor, _predict
from bayes_sklearn._predict import (
    chunk_rows,
    glm_log_mean_proba,
    iter_row_chunks,
    map_row_chunks,
)


def _reference_log_mean_proba(coef, intercept, X):
    """float64 NumPy: per-draw log probabilities, log-mean-exp over draws."""
    coef, intercept = coef.astype(np.float64), intercept.astype(np.float64)
    if coef.ndim == 2:
        logits = coef @ X.T + intercept[:, None]  # (draws, rows)
        per_draw = np.stack([log_expit(-logits), log_expit(logits)], axis=-1)
    else:
        logits = np.einsum("dkf,nf->dnk", coef, X) + intercept[:, None, :]
        per_draw = log_softmax(logits, axis=-1)
    log_mean = logsumexp(per_draw, axis=0) - np.log(coef.shape[0])
    return log_mean - logsumexp(log_mean, axis=1, keepdims=True)


def _trace_counter(name):
    """Count JAX's traces of the function called ``name``."""
    counts = {"traces": 0}

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            counts["traces"] += kwargs.get("fun_name") == name

    return counts, listen


def test_chunk_rows_bounds_the_blocks():
    # The benchmark's shape: 1000 draws, 2 classes, 50 features.
    assert chunk_rows(1000, 2, 50) == 2048
    for n_draws, n_outputs, n_features in [
        (1000, 2, 50),
        (4000, 10, 30),
        (50, 1, 10**5),
    ]:
        chunk = chunk_rows(n_draws, n_outputs, n_features)
        assert chunk & (chunk - 1) == 0  # a power of two
        assert chunk * n_draws * n_outputs <= _predict._BLOCK_ELEMENTS
        assert chunk * n_features <= _predict._BLOCK_ELEMENTS
    assert chunk_rows(10, 1, 2) == _predict._MAX_CHUNK_ROWS  # small X pads little
    assert chunk_rows(10**8, 10, 2) == _predict._MIN_CHUNK_ROWS  # still progresses


def test_row_chunks_are_padded_and_sparse_is_densified_per_chunk():
    X = np.arange(22.0).reshape(11, 2)
    chunks = list(iter_row_chunks(sp.csc_array(X), 4))
    assert [n for _, n in chunks] == [4, 4, 3]
    assert all(
        chunk.shape == (4, 2) and chunk.dtype == np.float32 for chunk, _ in chunks
    )
    np.testing.assert_array_equal(np.vstack([c for c, _ in chunks])[:11], X)
    np.testing.assert_array_equal(chunks[-1][0][3], 0.0)  # the padding row


@pytest.mark.parametrize("n_classes", [2, 3])
def test_glm_log_mean_proba_matches_float64_reference(n_classes):
    rng = np.random.default_rng(n_classes)
    n_draws, n_features = 300, 5
    shape = (
        (n_draws, n_features) if n_classes == 2 else (n_draws, n_classes, n_features)
    )
    coef = rng.normal(size=shape).astype(np.float32)
    intercept = rng.normal(size=shape[:-1]).astype(np.float32)
    # Rows near the data and far out, where some class probabilities are far
    # below float32's smallest number: the log probabilities stay finite.
    X = np.vstack([rng.normal(size=(200, n_features)), 60 * rng.normal(size=(20, 5))])
    reference = _reference_log_mean_proba(coef, intercept, X)
    chunk = 64  # four chunks, the last one padded
    counts, listen = _trace_counter("glm_log_mean_proba")
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        results = [
            map_row_chunks(glm_log_mean_proba, rows, chunk, coef, intercept)
            for rows in (X, X[:1], X[:chunk], X[: chunk + 1])
        ]
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    # One program for every X: fixed chunk shape, padded last chunk.
    assert counts["traces"] == 1
    log_proba = results[0]
    assert log_proba.shape == (X.shape[0], n_classes)
    assert np.all(np.isfinite(log_proba))
    # float32 rounding of logits up to ~200 in size: relative 1e-6 of the
    # log probability, absolute ~1e-6 near 0.
    np.testing.assert_allclose(log_proba, reference, rtol=1e-5, atol=2e-5)
    for part in results[1:]:
        np.testing.assert_array_equal(part, log_proba[: part.shape[0]])


def _line_data(n_rows=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 3))
    return X, X @ np.array([0.5, -0.3, 0.2]) + 1.0 + 0.3 * rng.normal(size=n_rows)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "estimator_class", [BayesianLinearRegression, BayesianPoissonRegressor]
)
def test_regressor_predict_matches_float64_reference(estimator_class, monkeypatch):
    X, y = _line_data()
    if estimator_class is BayesianPoissonRegressor:
        y = np.random.default_rng(1).poisson(np.exp(0.3 * y))
    reg = estimator_class(n_warmup=30, n_draws=60, random_state=0).fit(X, y)
    # Chunks of 16 rows: 60 rows take four calls, the last one padded.
    monkeypatch.setattr(_predict, "_MAX_CHUNK_ROWS", 16)
    mean, std = reg.predict(X, return_std=True)
    samples = {k: v.astype(np.float64) for k, v in reg.posterior_samples_.items()}
    linear = samples["coef"] @ X.T + samples["intercept"][:, None]  # (draws, rows)
    if estimator_class is BayesianLinearRegression:
        means, noise = linear, (1.0 / samples["alpha"]).mean()
    else:  # Poisson: the variance is the mean
        means = np.exp(linear)
        noise = means.mean(axis=0)
    np.testing.assert_allclose(mean, means.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        std, np.sqrt(noise + means.var(axis=0)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(reg.predict(X), mean)
    np.testing.assert_array_equal(reg.predict(X[:7]), mean[:7])
    simulated = reg.sample_posterior_predictive(X, 5, random_state=0)
    assert simulated.shape == (5, X.shape[0])
    assert np.all(np.isfinite(simulated))

"""Tests of the Laplace approximation that sets BayesianLogisticRegression's
sampling coordinates, against references written here: the binary negative
log posterior minimized by scipy, and finite differences of a softmax one."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime, minimize
from scipy.special import expit, log_expit, log_softmax

from bayes_sklearn import BayesianLogisticRegression, _logistic
from bayes_sklearn._laplace import laplace_approximation
from bayes_sklearn._logistic import sum_to_zero_basis

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n_rows, n_features, n_classes, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features)) @ rng.normal(size=(n_features,) * 2)
    design = np.hstack([X, np.ones((n_rows, 1))])
    truth = rng.normal(size=(n_features + 1, n_classes))
    y = np.argmax(design @ truth + rng.gumbel(size=(n_rows, n_classes)), axis=1)
    weight = rng.uniform(0.0, 3.0, n_rows)
    weight[:5] = 0.0
    return design, y, weight


def test_binary_mode_and_covariance():
    design, y, weight = _data(300, 4, 2, seed=0)
    prior_scale = np.array([[1.0, 2.0, 0.5, 1.0, 10.0]])

    def neg_log_posterior(w):
        z = design @ w
        log_lik = weight * (y * log_expit(z) + (1 - y) * log_expit(-z))
        return -log_lik.sum() + 0.5 * np.sum((w / prior_scale[0]) ** 2)

    def gradient(w):
        return -design.T @ (weight * (y - expit(design @ w))) + w / prior_scale[0] ** 2

    reference = minimize(
        neg_log_posterior, np.zeros(5), jac=gradient, method="BFGS", tol=1e-12
    ).x
    p = expit(design @ reference)
    hessian = design.T @ (design * (weight * p * (1 - p))[:, None])
    hessian += np.diag(prior_scale[0] ** -2.0)

    mode, scale = laplace_approximation(
        design, y, weight, prior_scale, np.array([[0.0], [1.0]])
    )
    assert mode.shape == (1, 5) and scale.shape == (5, 5)
    np.testing.assert_allclose(mode[0], reference, atol=1e-5)
    np.testing.assert_allclose(scale @ scale.T, np.linalg.inv(hessian), rtol=1e-4)
    np.testing.assert_array_equal(scale, np.triu(scale))


def test_softmax_mode_and_hessian_match_finite_differences():
    n_classes, n_features = 4, 3
    design, y, weight = _data(400, n_features, n_classes, seed=1)
    basis = sum_to_zero_basis(n_classes)
    prior_scale = np.full((n_classes - 1, n_features + 1), 2.0)

    def neg_log_posterior(w):
        contrasts = w.reshape(prior_scale.shape)
        log_proba = log_softmax(design @ contrasts.T @ basis.T, axis=1)
        log_lik = weight * log_proba[np.arange(len(y)), y]
        return -log_lik.sum() + 0.5 * np.sum((w / prior_scale.ravel()) ** 2)

    mode, scale = laplace_approximation(design, y, weight, prior_scale, basis)
    flat = mode.ravel()
    step = 1e-5
    gradient = approx_fprime(flat, neg_log_posterior, step)
    assert np.max(np.abs(gradient)) < 1e-3  # the mode
    hessian = np.array(
        [
            (
                approx_fprime(flat + step * e, neg_log_posterior, step)
                - approx_fprime(flat - step * e, neg_log_posterior, step)
            )
            / (2 * step)
            for e in np.eye(flat.size)
        ]
    )
    precision = np.linalg.inv(scale @ scale.T)
    np.testing.assert_allclose(precision, hessian, rtol=1e-3, atol=1e-2)


def test_without_the_laplace_map_the_posterior_is_the_same(monkeypatch):
    # Above _MAX_LAPLACE_COEFFICIENTS the sampler works in prior-scaled
    # coordinates; the posterior must not depend on that choice.
    design, y, _ = _data(200, 3, 3, seed=2)
    X = design[:, :-1]
    budget = dict(n_warmup=300, n_draws=600, random_state=0)
    laplace = BayesianLogisticRegression(**budget).fit(X, y).summary()
    monkeypatch.setattr(_logistic, "_MAX_LAPLACE_COEFFICIENTS", 0)
    scaled = BayesianLogisticRegression(**budget).fit(X, y).summary()
    # 5 Monte Carlo standard errors of the difference of two means.
    se = np.sqrt(
        laplace["sd"] ** 2 / laplace["ess"] + scaled["sd"] ** 2 / scaled["ess"]
    )
    assert np.all(np.abs(laplace["mean"] - scaled["mean"]) < 5 * se)


def test_numerically_singular_hessian_keeps_the_prior_scale():
    # 10 rows, 50 features and a prior of scale 1e8: the Hessian's 40
    # directions the data do not see have curvature 1e-16, singular next to
    # the rest in float64. The fit then samples prior-scaled coordinates.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 50)), np.arange(10) % 2
    design = np.hstack([X, np.ones((10, 1))])
    with pytest.raises(np.linalg.LinAlgError):
        laplace_approximation(
            design, y, np.ones(10), np.full((1, 51), 1e8), np.array([[0.0], [1.0]])
        )
    fitted = BayesianLogisticRegression(
        prior_scale=1e8, n_warmup=50, n_draws=50, random_state=0
    ).fit(X, y)
    assert fitted.coef_.shape == (1, 50) and np.all(np.isfinite(fitted.coef_))

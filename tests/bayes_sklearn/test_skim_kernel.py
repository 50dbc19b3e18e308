"""Tests of the pure SKIM mathematics against explicit feature expansions."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from threadpoolctl import threadpool_limits

from bayes_sklearn import _skim_kernel as sk

# Exact-equality checks against explicit linear algebra need float64.
pytestmark = pytest.mark.usefixtures("x64")


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    # As the estimator does: multi-threaded OpenBLAS inside XLA's thread pool
    # oversubscribes the cores and slows small LAPACK calls many times over.
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _random_params(rng, n_features):
    lam = rng.uniform(0.2, 2.0, size=n_features)
    return sk.kernel_params(
        eta1=jnp.asarray(0.7),
        msq=jnp.asarray(1.5),
        xisq=jnp.asarray(0.8),
        lam=jnp.asarray(lam),
        c=jnp.asarray(1.3),
    )


def _pairs(n_features):
    return list(itertools.combinations(range(n_features), 2))


def _expand(X, params):
    """phi(x): all main and pairwise (i<j) features, scaled by eta and kappa."""
    X = np.asarray(X)
    kappa = np.asarray(params.kappa)
    main = float(params.eta1) * kappa * X
    pairs = [
        float(params.eta2) * kappa[i] * kappa[j] * X[:, i] * X[:, j]
        for i, j in _pairs(X.shape[1])
    ]
    return np.column_stack([main, *pairs]) if pairs else main


def _blr_posterior(X, y, params, noise_var):
    """Explicit Bayesian linear regression on [1, x_i, x_i x_j]."""
    P = X.shape[1]
    pairs = _pairs(P)
    kappa = np.asarray(params.kappa)
    features = np.column_stack(
        [np.ones(len(X)), X] + [X[:, i] * X[:, j] for i, j in pairs]
    )
    prior_sd = np.concatenate(
        [
            [float(params.c)],
            float(params.eta1) * kappa,
            [float(params.eta2) * kappa[i] * kappa[j] for i, j in pairs],
        ]
    )
    precision = features.T @ features / noise_var + np.diag(prior_sd**-2.0)
    cov = np.linalg.inv(precision)
    mean = cov @ features.T @ y / noise_var
    return mean, cov, features


def _effective_noise(X, params, noise_var):
    gram = np.asarray(sk.training_gram(jnp.asarray(X), params, noise_var))
    kern = np.asarray(sk.interaction_kernel(jnp.asarray(X), jnp.asarray(X), params))
    return gram[0, 0] - kern[0, 0]


def _data(rng, n=30, p=4):
    X = rng.normal(size=(n, p))
    y = X[:, 0] - 0.5 * X[:, 1] + 0.8 * X[:, 0] * X[:, 2] + 0.1 * rng.normal(size=n)
    return X, y - y.mean()


def test_kernel_params_regularised_horseshoe():
    params = sk.kernel_params(
        jnp.asarray(0.5),
        jnp.asarray(4.0),
        jnp.asarray(9.0),
        jnp.asarray([1e-3, 1.0, 1e30]),
        1.0,
    )
    assert np.isclose(float(params.eta2), 0.25 * 3.0 / 4.0)
    kappa = np.asarray(params.kappa)
    # kappa ~ lambda for small eta1*lambda, capped at m / eta1 = 4 for huge ones.
    assert np.isclose(kappa[0], 1e-3, rtol=1e-6)
    assert np.isclose(kappa[1], 2.0 / np.sqrt(4.0 + 0.25))
    assert np.isclose(kappa[2], 4.0)


@pytest.mark.parametrize("n_features", [1, 2, 5])
def test_kernel_equals_explicit_feature_inner_product(n_features):
    rng = np.random.default_rng(0)
    params = _random_params(rng, n_features)
    X = rng.normal(size=(7, n_features))
    Z = rng.normal(size=(5, n_features))
    expected = float(params.c) ** 2 + _expand(X, params) @ _expand(Z, params).T
    got = sk.interaction_kernel(jnp.asarray(X), jnp.asarray(Z), params)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=1e-12)


def test_training_gram_is_symmetric_with_noise_on_diagonal():
    rng = np.random.default_rng(1)
    params = _random_params(rng, 3)
    X = jnp.asarray(rng.normal(size=(6, 3)))
    gram = np.asarray(sk.training_gram(X, params, 0.3, jitter=1e-4))
    np.testing.assert_array_equal(gram, gram.T)
    noise = _effective_noise(np.asarray(X), params, 0.3)
    assert np.isclose(noise, 0.3 + 1e-4, rtol=1e-9)


def test_log_marginal_likelihood_matches_scipy():
    rng = np.random.default_rng(2)
    params = _random_params(rng, 3)
    X, y = _data(rng, n=20, p=3)
    gram = np.asarray(sk.training_gram(jnp.asarray(X), params, 0.2))
    expected = multivariate_normal(np.zeros(len(y)), gram).logpdf(y)
    got = sk.log_marginal_likelihood(jnp.asarray(X), jnp.asarray(y), params, 0.2)
    np.testing.assert_allclose(float(got), expected, rtol=1e-10)


def _apply_probes(f, probes):
    """sum_g w_mg f(q_mg) for every coefficient m."""
    values = f(np.asarray(probes.points()))
    return np.einsum("mg,mg->m", values, np.asarray(probes.weights))


def _random_function(rng, P):
    theta0 = rng.normal()
    theta = rng.normal(size=P)
    inter = np.triu(rng.normal(size=(P, P)), k=1)

    def f(x):  # linear + pairwise interaction function, no squares
        return theta0 + x @ theta + np.einsum("...i,ij,...j->...", x, inter, x)

    return f, theta, inter


def test_probe_weights_recover_coefficients_exactly():
    rng = np.random.default_rng(3)
    P = 5
    f, theta, inter = _random_function(rng, P)
    recovered = _apply_probes(f, sk.main_effect_probes(P))
    np.testing.assert_allclose(recovered, theta, rtol=1e-12, atol=1e-12)

    pairs = np.asarray(_pairs(P))
    recovered = _apply_probes(f, sk.interaction_probes(pairs, P))
    np.testing.assert_allclose(recovered, inter[pairs[:, 0], pairs[:, 1]], atol=1e-12)


def test_probes_at_a_base_point_recover_slopes_and_interactions():
    # The estimator probes at the standardised image of x = 0 to report
    # coefficients in user units: slopes there include interaction terms.
    rng = np.random.default_rng(4)
    P = 4
    f, theta, inter = _random_function(rng, P)
    base = rng.normal(size=P)
    recovered = _apply_probes(f, sk.main_effect_probes(P, base=base))
    np.testing.assert_allclose(recovered, theta + (inter + inter.T) @ base)

    pairs = np.asarray(_pairs(P))
    recovered = _apply_probes(f, sk.interaction_probes(pairs, P, base=base))
    np.testing.assert_allclose(recovered, inter[pairs[:, 0], pairs[:, 1]], atol=1e-12)


def test_value_probe_stacks_onto_main_effect_probes():
    rng = np.random.default_rng(15)
    P = 3
    f, theta, inter = _random_function(rng, P)
    base = rng.normal(size=P)
    probes = sk.concatenate_probes(
        sk.main_effect_probes(P, base=base), sk.value_probes(P, base=base)
    )
    recovered = _apply_probes(f, probes)
    np.testing.assert_allclose(recovered[:P], theta + (inter + inter.T) @ base)
    np.testing.assert_allclose(recovered[P], f(base))
    with pytest.raises(ValueError, match="base"):
        sk.concatenate_probes(sk.main_effect_probes(P), sk.value_probes(P, base=base))


def test_interaction_probes_reject_repeated_index():
    with pytest.raises(ValueError, match="i != j"):
        sk.interaction_probes([[1, 1]], 3)


def test_probe_kernel_equals_dense_kernel_at_probe_points():
    rng = np.random.default_rng(11)
    P = 5
    params = _random_params(rng, P)
    X = jnp.asarray(rng.normal(size=(9, P)))
    probes = sk.interaction_probes(_pairs(P), P, base=rng.normal(size=P))
    points = probes.points()
    dense = sk.interaction_kernel(points.reshape(-1, P), X, params)
    got = sk.probe_kernel(probes, X, params)
    np.testing.assert_allclose(
        np.asarray(got), np.asarray(dense).reshape(got.shape), rtol=1e-11
    )


def test_coefficient_moments_equal_explicit_bayesian_linear_regression():
    rng = np.random.default_rng(5)
    P = 4
    params = _random_params(rng, P)
    X, y = _data(rng, n=25, p=P)
    noise_var = _effective_noise(X, params, 0.05)
    mean, cov, _ = _blr_posterior(X, y, params, noise_var)
    cond = sk.condition_gp(jnp.asarray(X), jnp.asarray(y), params, 0.05)

    got_mean, got_var = sk.coefficient_moments(
        jnp.asarray(X), cond, params, sk.main_effect_probes(P)
    )
    np.testing.assert_allclose(np.asarray(got_mean), mean[1 : P + 1], rtol=1e-8)
    np.testing.assert_allclose(np.asarray(got_var), np.diag(cov)[1 : P + 1], rtol=1e-7)

    probes = sk.interaction_probes(np.asarray(_pairs(P)), P)
    got_mean, got_var = sk.coefficient_moments(jnp.asarray(X), cond, params, probes)
    np.testing.assert_allclose(np.asarray(got_mean), mean[P + 1 :], rtol=1e-8)
    np.testing.assert_allclose(np.asarray(got_var), np.diag(cov)[P + 1 :], rtol=1e-7)


def test_slope_moments_at_a_base_point_equal_linear_regression():
    # Slope i at b is the linear combination theta_i + sum_j theta_ij b_j of
    # the regression coefficients: its moments are a^T mean and a^T cov a.
    rng = np.random.default_rng(12)
    P = 3
    params = _random_params(rng, P)
    X, y = _data(rng, n=20, p=P)
    base = rng.normal(size=P)
    noise_var = _effective_noise(X, params, 0.1)
    mean, cov, _ = _blr_posterior(X, y, params, noise_var)
    combos = np.zeros((P, len(mean)))
    combos[np.arange(P), 1 + np.arange(P)] = 1.0
    for k, (i, j) in enumerate(_pairs(P)):
        combos[i, P + 1 + k], combos[j, P + 1 + k] = base[j], base[i]
    cond = sk.condition_gp(jnp.asarray(X), jnp.asarray(y), params, 0.1)
    probes = sk.main_effect_probes(P, base=base)
    got_mean, got_var = sk.coefficient_moments(jnp.asarray(X), cond, params, probes)
    np.testing.assert_allclose(np.asarray(got_mean), combos @ mean, rtol=1e-8)
    expected_var = np.einsum("mi,ij,mj->m", combos, cov, combos)
    np.testing.assert_allclose(np.asarray(got_var), expected_var, rtol=1e-7)


def test_coefficient_covariance_equals_explicit_bayesian_linear_regression():
    rng = np.random.default_rng(6)
    P = 3
    params = _random_params(rng, P)
    X, y = _data(rng, n=15, p=P)
    noise_var = _effective_noise(X, params, 0.1)
    _, cov, _ = _blr_posterior(X, y, params, noise_var)
    cond = sk.condition_gp(jnp.asarray(X), jnp.asarray(y), params, 0.1)
    probes = sk.interaction_probes(np.asarray(_pairs(P)), P)
    got = sk.coefficient_covariance(jnp.asarray(X), cond, params, probes)
    np.testing.assert_allclose(np.asarray(got), cov[P + 1 :, P + 1 :], atol=1e-10)
    _, var = sk.coefficient_moments(jnp.asarray(X), cond, params, probes)
    np.testing.assert_allclose(np.diag(np.asarray(got)), np.asarray(var), rtol=1e-8)


def test_predict_latent_equals_explicit_bayesian_linear_regression():
    rng = np.random.default_rng(7)
    P = 3
    params = _random_params(rng, P)
    X, y = _data(rng, n=20, p=P)
    X_new = rng.normal(size=(6, P))
    noise_var = _effective_noise(X, params, 0.1)
    mean, cov, _ = _blr_posterior(X, y, params, noise_var)
    _, _, features_new = _blr_posterior(X_new, np.zeros(6), params, 1.0)

    cond = sk.condition_gp(jnp.asarray(X), jnp.asarray(y), params, 0.1)
    got_mean, got_var = sk.predict_latent(
        jnp.asarray(X), cond, params, jnp.asarray(X_new)
    )
    np.testing.assert_allclose(np.asarray(got_mean), features_new @ mean, rtol=1e-8)
    expected_var = np.einsum("ni,ij,nj->n", features_new, cov, features_new)
    np.testing.assert_allclose(np.asarray(got_var), expected_var, rtol=1e-7)


def test_mixture_moments_law_of_total_variance():
    means = jnp.asarray([[0.0, 1.0], [2.0, 1.0]])
    variances = jnp.asarray([[1.0, 0.5], [3.0, 0.5]])
    mean, var = sk.mixture_moments(means, variances)
    np.testing.assert_allclose(np.asarray(mean), [1.0, 1.0])
    # Mixture of N(0,1) and N(2,3): E[var] = 2, Var[mean] = 1.
    np.testing.assert_allclose(np.asarray(var), [3.0, 0.5])


def test_mixture_moments_keep_numpy_float64_without_x64():
    # The estimator's summaries call the same body on float64 NumPy arrays:
    # they must stay float64 NumPy even when JAX computes in float32.
    # Means 1 + 1e-9 k: their spread (~1e-18) is lost in float32.
    means = 1.0 + 1e-9 * np.arange(4.0)[:, None]
    mean, var = sk.mixture_moments(means, np.zeros((4, 1)))
    assert isinstance(mean, np.ndarray) and mean.dtype == np.float64
    np.testing.assert_allclose(var, [np.var(means)], rtol=1e-6)
    assert var[0] > 0


def test_float32_cholesky_is_finite_for_extreme_scales():
    # Heavy-tailed lambda draws make kernel entries span many decades; the
    # float32 factorisation must stay finite thanks to the relative jitter.
    rng = np.random.default_rng(8)
    X = jnp.asarray(rng.normal(size=(60, 8)), dtype=jnp.float32)
    y = jnp.asarray(rng.normal(size=60), dtype=jnp.float32)
    lam = jnp.asarray([1e-6, 1e-3, 1.0, 30.0, 1e3, 1e8, 1e12, 0.1], jnp.float32)
    with jax.enable_x64(False):
        params = sk.kernel_params(
            jnp.float32(3.0), jnp.float32(50.0), jnp.float32(5.0), lam, 1.0
        )
        value, grad = jax.jit(
            jax.value_and_grad(lambda s: sk.log_marginal_likelihood(X, y, params, s))
        )(jnp.float32(1e-6))
    assert value.dtype == jnp.float32
    assert np.isfinite(float(value)) and np.isfinite(float(grad))


def test_padding_rows_drop_out_of_the_marginal_likelihood():
    rng = np.random.default_rng(9)
    params = _random_params(rng, 3)
    X, y = _data(rng, n=12, p=3)
    X_pad = np.vstack([X, np.zeros((4, 3))])
    y_pad = np.concatenate([y, np.zeros(4)])
    is_observed = np.arange(16) < 12
    expected = sk.log_marginal_likelihood(jnp.asarray(X), jnp.asarray(y), params, 0.2)
    got = sk.log_marginal_likelihood(
        jnp.asarray(X_pad),
        jnp.asarray(y_pad),
        params,
        0.2,
        is_observed=jnp.asarray(is_observed),
    )
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-10)


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(10)
    params = _random_params(rng, 3)
    X, y = _data(rng, n=6, p=3)
    weight = np.asarray([2.0, 1.0, 0.0, 3.0, 1.0, 1.0])
    repeats = weight.astype(int)
    expected = sk.log_marginal_likelihood(
        jnp.asarray(np.repeat(X, repeats, axis=0)),
        jnp.asarray(np.repeat(y, repeats)),
        params,
        0.15,
        jitter=1e-4,
    )
    got = sk.weighted_log_marginal_likelihood(
        jnp.asarray(X),
        jnp.asarray(y),
        params,
        0.15,
        jnp.asarray(weight),
        jitter=1e-4,
    )
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-9)


def test_marginal_likelihood_gradient_matches_autodiff_through_cholesky():
    # The custom reverse rule must agree with differentiating the Cholesky.
    rng = np.random.default_rng(13)
    P = 4
    X = jnp.asarray(rng.normal(size=(40, P)))
    y = jnp.asarray(rng.normal(size=40))
    is_observed = jnp.asarray(np.arange(40) < 35)

    def reference(z):
        params = sk.kernel_params(z[0], z[1], z[2], z[4:], 1.0)
        gram = sk.training_gram(X, params, z[3], is_observed=is_observed)
        chol = jnp.linalg.cholesky(gram)
        white = jax.scipy.linalg.solve_triangular(
            chol, jnp.where(is_observed, y, 0.0), lower=True
        )
        return -0.5 * white @ white - jnp.sum(jnp.log(jnp.diag(chol)))

    def ours(z):
        params = sk.kernel_params(z[0], z[1], z[2], z[4:], 1.0)
        return sk.log_marginal_likelihood(X, y, params, z[3], is_observed=is_observed)

    z = jnp.asarray(rng.uniform(0.3, 1.5, size=P + 4))
    np.testing.assert_allclose(
        np.asarray(jax.jit(jax.grad(ours))(z)),
        np.asarray(jax.jit(jax.grad(reference))(z)),
        rtol=1e-8,
    )


def test_blocked_inverse_from_cholesky():
    rng = np.random.default_rng(16)
    A = rng.normal(size=(75, 75))
    cov = A @ A.T / 75 + np.eye(75)
    chol = jnp.asarray(np.linalg.cholesky(cov))
    inverse = jax.jit(lambda c: sk._lower_gram(sk._triangular_inverse(c)))(chol)
    np.testing.assert_allclose(np.asarray(inverse), np.linalg.inv(cov), atol=1e-10)

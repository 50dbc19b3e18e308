"""core_ppl.distributions.util against NumPy/SciPy and hand computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp

from core_ppl.distributions import util

pytestmark = pytest.mark.usefixtures("x64")

RNG = np.random.default_rng(0)


def _spd(n, batch=()):
    a = RNG.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def test_promote_shapes_pads_on_the_left():
    a, b, c = util.promote_shapes(jnp.ones(3), jnp.ones((2, 1)), 5.0)
    assert (a.shape, b.shape, c.shape) == ((1, 3), (2, 1), (1, 1))
    (d,) = util.promote_shapes(jnp.ones(3), shape=(4, 3))
    assert d.shape == (1, 3)
    assert util.promote_shapes(jnp.ones(2))[0].shape == (2,)


def test_sum_rightmost():
    x = jnp.asarray(RNG.normal(size=(2, 3, 4)))
    np.testing.assert_allclose(util.sum_rightmost(x, 2), x.sum((1, 2)))
    np.testing.assert_array_equal(util.sum_rightmost(x, 0), x)
    np.testing.assert_allclose(util.sum_rightmost(x, -1), x)


@pytest.mark.parametrize("diagonal", [0, -1])
def test_vec_to_tril_matrix_round_trip(diagonal):
    n = 4
    mat = np.tril(RNG.normal(size=(2, n, n)), diagonal)
    rows, cols = np.tril_indices(n, diagonal)
    vec = util.matrix_to_tril_vec(jnp.asarray(mat), diagonal)
    np.testing.assert_array_equal(vec, mat[:, rows, cols])
    np.testing.assert_array_equal(util.vec_to_tril_matrix(vec, diagonal), mat)


def test_vec_to_tril_matrix_rejects_bad_sizes():
    with pytest.raises(ValueError, match="size 4"):
        util.vec_to_tril_matrix(jnp.ones(4))
    with pytest.raises(ValueError, match="diagonal"):
        util.vec_to_tril_matrix(jnp.ones(3), diagonal=1)


def test_add_diag():
    m = jnp.asarray(RNG.normal(size=(2, 3, 3)))
    d = jnp.asarray(RNG.normal(size=(2, 3)))
    expected = np.asarray(m) + np.stack([np.diag(row) for row in np.asarray(d)])
    np.testing.assert_allclose(util.add_diag(m, d), expected)


def test_cholesky_of_inverse():
    p = _spd(4, (2,))
    low = util.cholesky_of_inverse(jnp.asarray(p))
    np.testing.assert_allclose(low, np.linalg.cholesky(np.linalg.inv(p)), rtol=1e-10)


@pytest.mark.parametrize("coef", [1.0, 2.5, -0.5])
def test_cholesky_update(coef):
    m = _spd(4, (3,))
    x = RNG.normal(size=(3, 4))
    new = util.cholesky_update(jnp.asarray(np.linalg.cholesky(m)), jnp.asarray(x), coef)
    target = m + coef * x[..., :, None] * x[..., None, :]
    np.testing.assert_allclose(new, np.linalg.cholesky(target), rtol=1e-9, atol=1e-12)


def test_signed_stick_breaking_tril_gives_a_correlation_cholesky():
    t = jnp.tanh(jnp.asarray(RNG.normal(size=(5, 6))))
    low = np.asarray(util.signed_stick_breaking_tril(t))
    assert low.shape == (5, 4, 4)
    np.testing.assert_allclose(np.linalg.norm(low, axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(np.triu(low, 1), 0.0)
    # The first column holds the correlations with variable 0: t itself.
    np.testing.assert_allclose(low[:, 1:, 0], np.asarray(t)[:, [0, 1, 3]])


def test_clamp_probs():
    eps = np.finfo(np.float64).eps
    np.testing.assert_array_equal(
        util.clamp_probs(jnp.array([0.0, 0.3, 1.0])), [eps, 0.3, 1.0 - eps]
    )
    assert util.clamp_probs(jnp.array([0.0], jnp.float32)).dtype == jnp.float32


def test_log1mexp_and_logdiffexp():
    x = np.array([-1e-20, -1e-5, -0.5, -1.0, -50.0])
    # (At x = -50 the value is -exp(-50) ~ -2e-22; the naive reference rounds
    # it to 0, hence the absolute tolerance.)
    expected = np.log(-np.expm1(x))
    np.testing.assert_allclose(util.log1mexp(x), expected, rtol=1e-12, atol=1e-20)
    a, b = np.array([1.0, 800.0, 2.0]), np.array([0.5, 799.0, 2.0])
    expected = [np.log(np.e - np.exp(0.5)), 800.0 + np.log1p(-np.exp(-1.0)), -np.inf]
    np.testing.assert_allclose(util.logdiffexp(a, b), expected)


def test_logmatmulexp():
    x, y = RNG.normal(size=(2, 3, 4)) * 50, RNG.normal(size=(4, 5)) * 50
    expected = sp.logsumexp(x[..., :, :, None] + y[None, None], axis=-2)
    np.testing.assert_allclose(
        util.logmatmulexp(jnp.asarray(x), jnp.asarray(y)), expected
    )


def test_entr():
    p = np.array([0.0, 0.2, 1.0, -0.1])
    np.testing.assert_allclose(util.entr(jnp.asarray(p)), sp.entr(p))
    assert np.isfinite(jax.grad(lambda q: util.entr(q))(0.3))


def test_binary_cross_entropy_with_logits():
    x = np.array([-40.0, -1.0, 0.0, 2.0, 40.0])
    y = np.array([0.0, 1.0, 0.5, 0.0, 1.0])
    expected = -(y * sp.log_expit(x) + (1 - y) * sp.log_expit(-x))
    actual = util.binary_cross_entropy_with_logits(x, y)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-15)


def test_safe_normalize():
    x = jnp.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(util.safe_normalize(x), [[0.6, 0.8], [1.0, 0.0]])
    np.testing.assert_allclose(util.safe_normalize(x, p=1), [[3 / 7, 4 / 7], [1, 0]])


def test_is_prng_key():
    assert util.is_prng_key(jax.random.PRNGKey(0))
    assert util.is_prng_key(jax.random.key(0))
    assert not util.is_prng_key(jnp.zeros(2))
    assert not util.is_prng_key(3)

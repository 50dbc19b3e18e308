"""MultivariateStudentT, Wishart, WishartCholesky, ZeroSumNormal and
GaussianStateSpace: densities against scipy or an explicitly built joint
normal, sampling moments within Monte Carlo error, shapes and validation."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import core_ppl.distributions as dist

from .checks import check_moments

pytestmark = pytest.mark.usefixtures("x64")


@functools.partial(jax.jit, static_argnums=2)
def _sample(d, key, n):
    return d.sample(key, (n,))


def _draws(d, n, seed=0):
    return np.asarray(_sample(d, jax.random.PRNGKey(seed), n))


@jax.jit
def _lp(d, x):
    return d.log_prob(x)


@jax.jit
def _support(d, x):
    return d.support(x)


def _spd(rng, k):
    a = rng.normal(size=(k, k))
    return a @ a.T + k * np.eye(k)


def test_multivariate_student_t_against_scipy():
    rng = np.random.default_rng(0)
    cov = _spd(rng, 3)
    loc = rng.normal(size=3)
    d = dist.MultivariateStudentT(6.0, loc, np.linalg.cholesky(cov))
    draws = _draws(d, 20000)
    ref = st.multivariate_t(loc, cov, df=6.0)
    np.testing.assert_allclose(_lp(d, draws[:5]), ref.logpdf(draws[:5]), rtol=1e-9)
    check_moments(draws, d.mean, d.variance)
    np.testing.assert_allclose(d.covariance_matrix, cov * 6.0 / 4.0, rtol=1e-12)
    # Batched df against a loop over scipy.
    batch = dist.MultivariateStudentT(
        jnp.array([1.5, 3.0]), loc, np.linalg.cholesky(cov)
    )
    x = draws[:2]
    for i, df in enumerate([1.5, 3.0]):
        expected = st.multivariate_t(loc, cov, df=df).logpdf(x)
        np.testing.assert_allclose(_lp(batch, x[:, None])[:, i], expected)
    assert (
        np.isinf(batch.variance[0]).all()
        and np.isnan(dist.MultivariateStudentT(0.5, loc, np.eye(3)).mean).all()
    )
    with pytest.raises(ValueError, match="scale_tril is required"):
        dist.MultivariateStudentT(3.0, loc)


def test_multivariate_student_t_is_reparameterised():
    # Pathwise in loc and scale_tril (finite differences of a fixed-key draw);
    # in df the gamma draw's implicit gradient, finite but not a finite
    # difference of the rejection sampler.
    def first(params):
        loc, tril, df = params
        d = dist.MultivariateStudentT(df, loc, tril)
        return d.sample(jax.random.PRNGKey(1))[1]

    loc, tril = jnp.array([0.3, -0.2]), jnp.array([[1.0, 0.0], [0.4, 0.8]])
    g_loc, g_tril, g_df = jax.jit(jax.grad(first))((loc, tril, 4.0))
    np.testing.assert_allclose(g_loc, [0.0, 1.0])
    eps = 1e-6
    bump = jnp.zeros((2, 2)).at[1, 0].set(eps)
    draw = jax.jit(first)
    fd = (draw((loc, tril + bump, 4.0)) - draw((loc, tril - bump, 4.0))) / (2 * eps)
    np.testing.assert_allclose(g_tril[1, 0], fd, rtol=1e-6)
    assert np.isfinite(g_df)


@pytest.mark.parametrize("param", ["scale_matrix", "rate_matrix", "scale_tril"])
def test_wishart_against_scipy(param):
    rng = np.random.default_rng(1)
    scale = _spd(rng, 3) / 3
    given = {
        "scale_matrix": scale,
        "rate_matrix": np.linalg.inv(scale),
        "scale_tril": np.linalg.cholesky(scale),
    }[param]
    d = dist.Wishart(5.5, **{param: given})
    np.testing.assert_allclose(d.scale_matrix, scale, rtol=1e-10)
    draws = _draws(d, 10000)
    ref = st.wishart(df=5.5, scale=scale)
    expected = [ref.logpdf(x) for x in draws[:3]]
    np.testing.assert_allclose(_lp(d, draws[:3]), expected, rtol=1e-9)
    assert bool(jnp.all(_support(d, draws[:100])))
    flat = draws.reshape(len(draws), -1)
    check_moments(flat, d.mean.reshape(-1), d.variance.reshape(-1))
    np.testing.assert_allclose(d.mean, 5.5 * scale)


def test_wishart_cholesky_density_and_draws():
    scale = np.array([[2.0, 0.5], [0.5, 1.0]])
    d = dist.WishartCholesky(4.0, scale_matrix=scale)
    w = dist.Wishart(4.0, scale_matrix=scale)
    chol = _draws(d, 10000, seed=2)
    assert bool(jnp.all(_support(d, chol)))
    # X = C C^T has the Wishart moments.
    x = chol @ np.swapaxes(chol, -1, -2)
    check_moments(x.reshape(len(x), -1), w.mean.reshape(-1), w.variance.reshape(-1))

    # The density of C: Wishart density of C C^T times |d(tril X)/d(tril C)|,
    # the latter from jax.jacobian.
    rows, cols = np.tril_indices(2)

    def tril_x(v):
        c = jnp.zeros((2, 2)).at[rows, cols].set(v)
        return (c @ c.T)[rows, cols]

    jacobians = jax.jit(jax.vmap(jax.jacobian(tril_x)))(chol[:3, rows, cols])
    expected = [
        st.wishart(df=4.0, scale=scale).logpdf(c @ c.T)
        + np.linalg.slogdet(np.asarray(jac))[1]
        for c, jac in zip(chol[:3], jacobians)
    ]
    np.testing.assert_allclose(_lp(d, chol[:3]), expected, rtol=1e-9)


def test_inverse_wishart_against_scipy():
    rng = np.random.default_rng(3)
    psi = _spd(rng, 2)
    d = dist.InverseWishart(8.0, scale_matrix=psi)
    draws = _draws(d, 20000, seed=4)
    ref = st.invwishart(df=8.0, scale=psi)
    expected = [ref.logpdf(x) for x in draws[:3]]
    np.testing.assert_allclose(_lp(d, draws[:3]), expected, rtol=1e-9)
    np.testing.assert_allclose(d.mean, ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(np.diag(d.variance), np.diag(ref.var()), rtol=1e-12)
    check_moments(
        draws.reshape(len(draws), -1), d.mean.reshape(-1), d.variance.reshape(-1)
    )
    same = dist.InverseWishart(8.0, rate_matrix=np.linalg.inv(psi))
    np.testing.assert_allclose(_lp(same, draws[0]), _lp(d, draws[0]))


def test_wishart_validation_and_shapes():
    with pytest.raises(ValueError, match="exactly one"):
        dist.Wishart(3.0)
    with pytest.raises(ValueError, match="exactly one"):
        dist.Wishart(3.0, scale_matrix=jnp.eye(2), scale_tril=jnp.eye(2))
    with pytest.raises(ValueError, match="'concentration'"):
        dist.Wishart(0.5, scale_matrix=jnp.eye(3), validate_args=True)
    with pytest.raises(ValueError, match="square"):
        dist.WishartCholesky(3.0, scale_tril=jnp.ones((2, 3)))
    d = dist.Wishart(jnp.array([3.0, 4.0]), scale_tril=jnp.eye(2))
    assert d.batch_shape == (2,) and d.event_shape == (2, 2)
    key = jax.random.PRNGKey(0)
    assert jax.eval_shape(lambda k: d.sample(k, (5,)), key).shape == (5, 2, 2, 2)
    assert jax.eval_shape(d.log_prob, jnp.eye(2)).shape == (2,)


@pytest.mark.parametrize("event_shape", [(4,), (3, 4)])
def test_zero_sum_normal(event_shape):
    scale = jnp.array([0.5, 2.0])
    d = dist.ZeroSumNormal(scale, event_shape)
    assert d.batch_shape == (2,) and d.event_shape == event_shape
    draws = _draws(d, 20000)
    for axis in range(-len(event_shape), 0):
        np.testing.assert_allclose(draws.sum(axis=axis), 0.0, atol=1e-10)
    assert bool(jnp.all(_support(d, draws[:10])))
    flat = draws.reshape(len(draws), -1)
    check_moments(flat, d.mean.reshape(-1), d.variance.reshape(-1))
    # On its subspace of dimension m = prod(n_i - 1) the density is the
    # isotropic normal's: -m/2 log(2 pi s^2) - |y|^2 / (2 s^2).
    m = math.prod(n - 1 for n in event_shape)
    y = draws[:3]
    sq = (y**2).reshape(3, 2, -1).sum(-1)
    s2 = np.asarray(scale) ** 2
    expected = -0.5 * m * np.log(2 * np.pi * s2) - sq / (2 * s2)
    np.testing.assert_allclose(_lp(d, y), expected, rtol=1e-10)
    jitted = jax.jit(lambda d: d.variance)(d)
    np.testing.assert_allclose(jitted, d.variance)


def _state_space_cov(a, q, num_steps):
    """Covariance of the stacked states: x = M e with M's (t, s) block A^(t-s)."""
    dim = a.shape[0]
    m = np.zeros((num_steps * dim, num_steps * dim))
    for t in range(num_steps):
        for s in range(t + 1):
            m[t * dim : (t + 1) * dim, s * dim : (s + 1) * dim] = (
                np.linalg.matrix_power(a, t - s)
            )
    return m @ np.kron(np.eye(num_steps), q) @ m.T


def test_gaussian_state_space_against_the_joint_normal():
    a = np.array([[0.8, 0.2], [-0.3, 0.5]])
    q = np.array([[1.0, 0.3], [0.3, 0.5]])
    d = dist.GaussianStateSpace(4, a, covariance_matrix=q)
    assert d.event_shape == (4, 2) and d.num_steps == 4
    cov = _state_space_cov(a, q, 4)
    draws = _draws(d, 20000)
    ref = st.multivariate_normal(np.zeros(8), cov)
    np.testing.assert_allclose(
        _lp(d, draws[:4]), ref.logpdf(draws[:4].reshape(4, -1)), rtol=1e-9
    )
    np.testing.assert_allclose(d.variance.reshape(-1), np.diag(cov), rtol=1e-10)
    check_moments(draws.reshape(len(draws), -1), np.zeros(8), np.diag(cov))
    # The three ways to give the noise agree; batched transition matrices.
    d2 = dist.GaussianStateSpace(4, a, precision_matrix=np.linalg.inv(q))
    np.testing.assert_allclose(_lp(d2, draws[:2]), _lp(d, draws[:2]))
    batch = dist.GaussianStateSpace(4, np.stack([a, 0.5 * a]), scale_tril=np.eye(2))
    assert batch.batch_shape == (2,) and _lp(batch, draws[:3, None]).shape == (3, 2)
    with pytest.raises(ValueError, match="exactly one"):
        dist.GaussianStateSpace(4, a)
    with pytest.raises(ValueError, match="num_steps"):
        dist.GaussianStateSpace(0, a, covariance_matrix=q)

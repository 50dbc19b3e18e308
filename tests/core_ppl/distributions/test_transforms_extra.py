"""The transforms of issue 19: round trips, log-det-Jacobians against
``jax.jacobian`` of the map between free coordinates, shapes, signs, and
``biject_to`` round trips for every registered constraint."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl.distributions as dist
from core_ppl.distributions import constraints
from core_ppl.distributions import transforms as T

pytestmark = pytest.mark.usefixtures("x64")


def _tril(m, k=0):
    rows, cols = np.tril_indices(m.shape[-1], k)
    return m[..., rows, cols]


def _sym_from_tril(v, n):
    rows, cols = np.tril_indices(n)
    m = jnp.zeros((n, n)).at[rows, cols].set(v)
    return m + jnp.tril(m, -1).T


def _vector(x):
    return x


# (id, transform, input, x -> free vector, free vector -> x, y -> free vector)
def _cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    pd = a @ a.T + 4 * np.eye(4)
    simplex = rng.dirichlet(np.ones(5))
    return [
        ("Power", T.PowerTransform(2.5), rng.uniform(0.5, 2, 4), None, None, None),
        ("PowerNeg", T.PowerTransform(-0.7), rng.uniform(0.5, 2, 4), None, None, None),
        ("DCT", T.DiscreteCosineTransform(), rng.normal(size=6), None, None, None),
        (
            "DCTsmooth",
            T.DiscreteCosineTransform(smooth=1.5),
            rng.normal(size=7),
            None,
            None,
            None,
        ),
        ("Haar", T.HaarTransform(), rng.normal(size=7), None, None, None),
        (
            "Haar2d",
            T.HaarTransform(dim=-2, flatten=False),
            rng.normal(size=(5, 3)),
            jnp.ravel,
            lambda v: v.reshape(5, 3),
            jnp.ravel,
        ),
        (
            "Permute",
            T.PermuteTransform(jnp.array([2, 0, 3, 1])),
            rng.normal(size=4),
            None,
            None,
            None,
        ),
        (
            "Reshape",
            T.ReshapeTransform((2, 3), (6,)),
            rng.normal(size=6),
            None,
            None,
            jnp.ravel,
        ),
        ("L1Ball", T.L1BallTransform(), rng.normal(size=5), None, None, None),
        (
            "RecursiveLinear",
            T.RecursiveLinearTransform(0.5 * rng.normal(size=(2, 2))),
            rng.normal(size=(4, 2)),
            jnp.ravel,
            lambda v: v.reshape(4, 2),
            jnp.ravel,
        ),
        (
            "SoftplusLowerCholesky",
            T.SoftplusLowerCholeskyTransform(),
            rng.normal(size=6),
            None,
            None,
            _tril,
        ),
        (
            "Cholesky",
            T.CholeskyTransform(),
            pd,
            _tril,
            lambda v: _sym_from_tril(v, 4),
            _tril,
        ),
        (
            "SimplexToOrdered",
            T.SimplexToOrderedTransform(anchor_point=0.7),
            simplex,
            lambda x: x[:-1],
            lambda v: jnp.concatenate([v, 1.0 - jnp.sum(v, keepdims=True)]),
            None,
        ),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_round_trip_log_det_and_shapes(case):
    _, t, x, x_free, from_free, y_free = case
    x = jnp.asarray(x)
    x_free = x_free or _vector
    from_free = from_free or _vector
    y_free = y_free or _vector

    @jax.jit
    def check(x):
        # Everything in one program: one compilation per case.
        y = t(x)
        jac = jax.jacobian(lambda v: y_free(t(from_free(v))))(x_free(x))
        return {
            "y": y,
            "in_codomain": jnp.all(t.codomain(y)),
            "x_back": t.inv(y),
            "y_again": t.inv.inv(x),
            # Elementwise transforms report one term per element: sum them.
            "log_det": jnp.sum(t.log_abs_det_jacobian(x, y)),
            "inv_log_det": jnp.sum(t.inv.log_abs_det_jacobian(y, x)),
            "jac": jac,
        }

    out = check(x)
    y = out["y"]
    assert bool(out["in_codomain"])
    np.testing.assert_allclose(out["x_back"], x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out["y_again"], y)
    assert tuple(t.forward_shape(x.shape)) == y.shape
    assert tuple(t.inverse_shape(y.shape)) == x.shape
    _, expected = np.linalg.slogdet(np.asarray(out["jac"]))
    np.testing.assert_allclose(out["log_det"], expected, atol=1e-9)
    # The inverse reports the negative.
    np.testing.assert_allclose(out["inv_log_det"], -expected, atol=1e-9)


def test_batched_log_det_shapes():
    x = jnp.ones((3, 4, 2))
    t = T.RecursiveLinearTransform(jnp.eye(2) * 0.3)
    assert t.log_abs_det_jacobian(x, t(x)).shape == (3,)
    assert T.L1BallTransform().log_abs_det_jacobian(x, x).shape == (3, 4)
    assert T.DiscreteCosineTransform(dim=-2).log_abs_det_jacobian(x, x).shape == (3,)
    y = T.ZeroSumTransform(2)(x)
    assert y.shape == (3, 5, 3)
    assert T.ZeroSumTransform(2).log_abs_det_jacobian(x, y).shape == (3,)


def test_recursive_linear_is_the_recursion():
    a = jnp.array([[0.5, 0.1], [-0.2, 0.9]])
    x = jnp.arange(8.0).reshape(4, 2)
    y = T.RecursiveLinearTransform(a)(x)
    expected, prev = [], jnp.zeros(2)
    for t in range(4):
        prev = a @ prev + x[t]
        expected.append(prev)
    np.testing.assert_allclose(y, jnp.stack(expected), rtol=1e-12)
    # Batched matrices broadcast with the input.
    batch = T.RecursiveLinearTransform(jnp.stack([a, 2 * a]))
    assert batch(x).shape == (2, 4, 2)


@pytest.mark.parametrize("ndims, shape", [(1, (4,)), (2, (3, 4)), (1, (2, 5))])
def test_zero_sum_is_an_isometry_onto_the_hyperplane(ndims, shape):
    t = T.ZeroSumTransform(ndims)
    x = jnp.asarray(np.random.default_rng(1).normal(size=shape))
    y = t(x)
    for axis in range(-ndims, 0):
        np.testing.assert_allclose(jnp.sum(y, axis=axis), 0.0, atol=1e-12)
    np.testing.assert_allclose(t.inv(y), x, rtol=1e-12)
    # Columns of the Jacobian are orthonormal: J^T J = I, so log|det| = 0.
    jac = jax.jit(jax.jacobian(lambda v: jnp.ravel(t(v.reshape(x.shape)))))(
        jnp.ravel(x)
    )
    np.testing.assert_allclose(jac.T @ jac, np.eye(x.size), atol=1e-12)
    np.testing.assert_allclose(t.log_abs_det_jacobian(x, y), 0.0)


def test_haar_and_dct_are_orthonormal_and_match_scipy():
    import scipy.fft

    x = np.random.default_rng(2).normal(size=(3, 6))
    np.testing.assert_allclose(
        T.DiscreteCosineTransform()(x), scipy.fft.dct(x, norm="ortho"), atol=1e-12
    )
    for size in (1, 2, 5, 8):
        eye = jnp.eye(size)
        basis = T.HaarTransform()(eye)
        np.testing.assert_allclose(basis @ basis.T, eye, atol=1e-12)
    # Haar of a constant vector of length 2^k puts everything in coefficient 0.
    np.testing.assert_allclose(T.HaarTransform()(jnp.ones(8))[0], math.sqrt(8))


def test_sign():
    assert T.PowerTransform(-2.0).sign == -1 and T.PowerTransform(0.5).sign == 1
    assert T.ExpTransform().sign == 1 and T.ExpTransform().inv.sign == 1
    np.testing.assert_array_equal(
        T.AffineTransform(0.0, jnp.array([2.0, -1.0])).sign, [1.0, -1.0]
    )
    composed = T.ComposeTransform([T.SigmoidTransform(), T.AffineTransform(1.0, -3.0)])
    assert composed.sign == -1
    with pytest.raises(NotImplementedError, match="sign"):
        T.StickBreakingTransform().sign


def test_validation():
    with pytest.raises(ValueError, match="permutation"):
        T.PermuteTransform(jnp.array([0, 0, 1]))
    with pytest.raises(ValueError, match="different numbers"):
        T.ReshapeTransform((2, 3), (5,))
    with pytest.raises(ValueError, match="square"):
        T.RecursiveLinearTransform(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="negative"):
        T.HaarTransform(dim=0)


# --- biject_to --------------------------------------------------------------------


BIJECT_CASES = [
    (constraints.real, (3,)),
    (constraints.real_vector, (2, 3)),
    (constraints.positive, (3,)),
    (constraints.nonnegative, (3,)),
    (constraints.softplus_positive, (3,)),
    (constraints.greater_than(2.0), (3,)),
    (constraints.greater_than_eq(-1.0), (3,)),
    (constraints.less_than(1.0), (3,)),
    (constraints.interval(-1.0, 3.0), (3,)),
    (constraints.open_interval(-1.0, 3.0), (3,)),
    (constraints.unit_interval, (3,)),
    (constraints.circular, (3,)),
    (constraints.simplex, (2, 4)),
    (constraints.ordered_vector, (4,)),
    (constraints.positive_ordered_vector, (4,)),
    (constraints.lower_cholesky, (3, 3)),
    (constraints.scaled_unit_lower_cholesky, (3, 3)),
    (constraints.softplus_lower_cholesky, (3, 3)),
    (constraints.corr_cholesky, (3, 3)),
    (constraints.corr_matrix, (3, 3)),
    (constraints.positive_definite, (3, 3)),
    (constraints.l1_ball, (2, 4)),
    (constraints.zero_sum(), (4,)),
    (constraints.zero_sum(2), (3, 4)),
    (constraints.independent(constraints.positive, 1), (2, 3)),
]


@pytest.mark.parametrize("constraint, shape", BIJECT_CASES, ids=repr)
def test_biject_to_round_trip(constraint, shape):
    t = dist.biject_to(constraint)
    free_shape = tuple(t.inverse_shape(shape))
    u = jnp.asarray(np.random.default_rng(3).normal(size=free_shape))

    @jax.jit
    def check(u):
        y = t(u)
        return y, jnp.all(constraint(y)), t.inv(y), t.log_abs_det_jacobian(u, y)

    y, inside, u_back, log_det = check(u)
    assert y.shape == shape
    assert bool(inside)
    np.testing.assert_allclose(u_back, u, rtol=1e-7, atol=1e-9)
    batch = free_shape[: len(free_shape) - t.domain.event_dim]
    assert jnp.shape(log_det) == batch


def test_new_constraints():
    assert constraints.sphere(jnp.array([0.6, 0.8]))
    assert not constraints.sphere(jnp.array([0.6, 0.9]))
    assert not constraints.l1_ball(jnp.array([0.6, -0.5]))
    assert constraints.zero_sum()(jnp.array([1.0, -0.5, -0.5]))
    assert not constraints.zero_sum()(jnp.array([1.0, -0.5, -0.4]))
    assert not constraints.open_interval(0.0, 1.0)(1.0)
    assert not constraints.positive_ordered_vector(jnp.array([-1.0, 2.0]))
    assert repr(constraints.zero_sum(2)) == "zero_sum(event_dim=2)"
    for c, shape in [
        (constraints.sphere, (3,)),
        (constraints.l1_ball, (3,)),
        (constraints.zero_sum(2), (2, 3)),
        (constraints.positive_ordered_vector, (3,)),
        (constraints.circular, ()),
    ]:
        assert bool(jnp.all(c(c.feasible_like(jnp.zeros(shape)))))

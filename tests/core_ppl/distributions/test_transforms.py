"""Transforms: round trips, log-Jacobians against autodiff, shapes, biject_to."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl.distributions as dist
from core_ppl.distributions import constraints
from core_ppl.distributions import transforms as T
from core_ppl.distributions.transforms import biject_to

pytestmark = pytest.mark.usefixtures("x64")


def _tril(y, k):
    rows, cols = np.tril_indices(y.shape[-1], k)
    return y[..., rows, cols]


def _all(y):
    return y


# The log-Jacobian of a shape-changing transform is with respect to the free
# coordinates of its output: drop the last simplex entry, keep the lower
# triangle of a (symmetric or triangular) matrix, the strict one for a
# correlation factor whose diagonal is determined by the rest.
CASES = [
    ("real", constraints.real, (3,), _all),
    ("real_vector", constraints.real_vector, (3,), _all),
    ("positive", constraints.positive, (3,), _all),
    ("nonnegative", constraints.nonnegative, (3,), _all),
    ("unit_interval", constraints.unit_interval, (3,), _all),
    ("interval", constraints.interval(-1.0, 3.0), (3,), _all),
    ("greater_than", constraints.greater_than(2.0), (3,), _all),
    ("less_than", constraints.less_than(1.0), (3,), _all),
    ("simplex", constraints.simplex, (3,), lambda y: y[..., :-1]),
    ("lower_cholesky", constraints.lower_cholesky, (6,), lambda y: _tril(y, 0)),
    ("positive_definite", constraints.positive_definite, (6,), lambda y: _tril(y, 0)),
    ("corr_cholesky", constraints.corr_cholesky, (6,), lambda y: _tril(y, -1)),
    ("independent", constraints.independent(constraints.positive, 1), (3,), _all),
]


@pytest.mark.parametrize(
    "constraint, x_event_shape, free", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_biject_to(constraint, x_event_shape, free):
    t = biject_to(constraint)

    @jax.jit  # one compilation per case instead of one per operation
    def run(x):
        y = t(x)
        jac = jax.vmap(jax.jacobian(lambda v: free(t(v)).reshape(-1)))(x)
        return (
            y,
            t.inv(y),
            t.log_abs_det_jacobian(x, y),
            t.inv.log_abs_det_jacobian(y, x),
            jac,
        )

    x = jax.random.normal(jax.random.PRNGKey(0), (2,) + x_event_shape)
    y, x_again, ladj, inv_ladj, jac = run(x)
    # Lands in the constraint, with the shapes the transform announces.
    assert bool(jnp.all(constraint(y)))
    assert y.shape == t.forward_shape(x.shape)
    assert t.inverse_shape(y.shape) == x.shape
    assert t.codomain.event_dim == constraint.event_dim
    np.testing.assert_allclose(x_again, x, rtol=1e-8, atol=1e-10)
    # log|det J| summed over the event dims, against autodiff, per batch row.
    assert ladj.shape == x.shape[: x.ndim - t.domain.event_dim]
    logdet = np.linalg.slogdet(np.asarray(jac).reshape(2, jac.shape[1], -1))[1]
    np.testing.assert_allclose(ladj.reshape(2, -1).sum(-1), logdet, rtol=1e-8)
    # The inverse's log-Jacobian is the negative.
    np.testing.assert_allclose(inv_ladj, -ladj, rtol=1e-10)
    assert t.inv.inv is t


def test_rank_changing_composition():
    t = T.ComposeTransform(
        [
            T.IndependentTransform(T.AffineTransform(1.0, 0.5), 1),
            T.StickBreakingTransform(),
        ]
    )
    assert t.domain.event_dim == 1 and t.codomain.event_dim == 1
    assert t.forward_shape((2, 3)) == (2, 4) and t.inverse_shape((2, 4)) == (2, 3)

    @jax.jit
    def run(x):
        y = t(x)
        jac = jax.jacobian(lambda v: t(v)[:-1])(x[0])
        return y, t.inv(y), t.log_abs_det_jacobian(x, y), jac

    x = jnp.array([[0.3, -1.2, 2.0], [0.0, 0.5, -0.5]])
    y, x_again, ladj, jac = run(x)
    assert y.shape == (2, 4) and ladj.shape == (2,)
    np.testing.assert_allclose(x_again, x, rtol=1e-10)
    np.testing.assert_allclose(ladj[0], np.linalg.slogdet(jac)[1], rtol=1e-10)
    # Elementwise parts after a vector -> matrix part are reduced to the batch.
    t2 = T.ComposeTransform([T.CorrCholeskyTransform(), T.AffineTransform(0.0, 2.0)])
    assert t2.domain.event_dim == 1 and t2.codomain.event_dim == 2
    ladj2 = jax.jit(lambda v: t2.log_abs_det_jacobian(v, t2(v)))(jnp.zeros((5, 3)))
    assert ladj2.shape == (5,)


def test_stable_for_extreme_inputs():
    x = jnp.array([-40.0, 0.0, 40.0])
    for t in (
        T.SigmoidTransform(),
        T.StickBreakingTransform(),
        T.CorrCholeskyTransform(),
    ):
        ladj_fn = jax.jit(lambda v, t=t: t.log_abs_det_jacobian(v, t(v)).sum())
        assert bool(jnp.isfinite(ladj_fn(x)))
        assert bool(jnp.all(jnp.isfinite(jax.jit(jax.grad(ladj_fn))(x))))
    assert bool(jnp.all(constraints.unit_interval(T.SigmoidTransform()(x))))


def test_traced_bounds_under_jit():
    # Bounds may themselves be model variables (Uniform(0, x)).
    @jax.jit
    def constrain(low, x):
        return biject_to(constraints.interval(low, low + 2.0))(x)

    y = constrain(jnp.array([0.0, 5.0]), jnp.zeros(2))
    np.testing.assert_allclose(y, [1.0, 6.0])


def test_affine_codomain():
    assert isinstance(
        T.AffineTransform(2.0, 3.0, constraints.positive).codomain,
        constraints._GreaterThan,
    )
    assert isinstance(
        T.AffineTransform(2.0, -1.0, constraints.positive).codomain,
        constraints._LessThan,
    )
    interval = T.AffineTransform(1.0, -2.0, constraints.unit_interval).codomain
    assert float(interval.lower_bound) == -1.0 and float(interval.upper_bound) == 1.0


def test_softplus_transform():
    t = T.SoftplusTransform()
    x = jnp.array([-3.0, 0.0, 25.0])
    np.testing.assert_allclose(t.inv(t(x)), x, rtol=1e-8)
    np.testing.assert_allclose(
        t.log_abs_det_jacobian(x, t(x)),
        jnp.log(jax.vmap(jax.grad(t))(x)),
        rtol=1e-8,
        atol=1e-14,  # autodiff's log(1 - 1e-11) has only ~5 correct digits
    )


@pytest.mark.parametrize(
    "constraint",
    [
        constraints.boolean,
        constraints.nonnegative_integer,
        constraints.integer_interval(0, 3),
        constraints.independent(constraints.positive_integer, 1),
    ],
)
def test_discrete_constraints_are_rejected(constraint):
    with pytest.raises(ValueError, match="discrete support"):
        biject_to(constraint)


def test_biject_to_errors_and_registration():
    class _Odd(constraints.Constraint):
        def __call__(self, x):
            return x > 0

    with pytest.raises(NotImplementedError, match="no transform registered"):
        biject_to(_Odd())
    with pytest.raises(TypeError, match="Constraint"):
        biject_to("positive")
    registry = T.ConstraintRegistry()
    registry.register(_Odd, lambda c: T.ExpTransform())
    assert isinstance(registry(_Odd()), T.ExpTransform)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="K\\(K-1\\)/2"):
        T.CorrCholeskyTransform()(jnp.zeros(4))
    with pytest.raises(ValueError, match="K\\(K\\+1\\)/2"):
        T.LowerCholeskyTransform()(jnp.zeros(4))


# --- ordered_vector, softplus_positive, corr_matrix -------------------------

NEW_CASES = [
    ("ordered_vector", constraints.ordered_vector, (4,), _all),
    ("softplus_positive", constraints.softplus_positive, (3,), _all),
    ("corr_matrix", constraints.corr_matrix, (6,), lambda y: _tril(y, -1)),
]


@pytest.mark.parametrize(
    "constraint, x_event_shape, free",
    [c[1:] for c in NEW_CASES],
    ids=[c[0] for c in NEW_CASES],
)
def test_biject_to_new_constraints(constraint, x_event_shape, free):
    # Round trip, codomain, shapes and log-Jacobian against jax.jacobian.
    test_biject_to(constraint, x_event_shape, free)


def test_new_bijections_are_the_expected_transforms():
    assert isinstance(biject_to(constraints.ordered_vector), T.OrderedTransform)
    assert isinstance(biject_to(constraints.softplus_positive), T.SoftplusTransform)
    # positive keeps exp; softplus_positive is chosen explicitly.
    assert isinstance(biject_to(constraints.positive), T.ExpTransform)
    assert T.SoftplusTransform().codomain is constraints.softplus_positive


def test_ordered_transform_by_hand():
    t = T.OrderedTransform()
    x = jnp.array([0.5, 0.0, jnp.log(2.0)])
    y = t(x)
    np.testing.assert_allclose(y, [0.5, 1.5, 3.5], rtol=1e-12)
    np.testing.assert_allclose(t.log_abs_det_jacobian(x, y), np.log(2.0), rtol=1e-12)
    # Tiny gaps stay strictly ordered; the inverse keeps the digits that the
    # sums kept (gap / |y| ~ 1e-9 leaves ~7 in float64).
    x = jnp.array([[3.0, -20.0, 1.0, -15.0]])
    y = t(x)
    assert bool(constraints.ordered_vector(y)[0])
    np.testing.assert_allclose(t.inv(y), x, rtol=1e-6)


def test_corr_matrix_cholesky_transform():
    t = T.CorrMatrixCholeskyTransform()
    corr = jnp.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]])
    chol = t(corr)
    assert bool(constraints.corr_cholesky(chol))
    np.testing.assert_allclose(t.inv(chol), corr, atol=1e-12)
    # -sum_j (K - j) log L_jj, 1-based j: here -(log L_22 + 0 * log L_33).
    expected = -np.log(np.linalg.cholesky(np.asarray(corr))[1, 1])
    np.testing.assert_allclose(t.log_abs_det_jacobian(corr, chol), expected)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_stick_breaking_is_centred_on_the_uniform_simplex(k):
    """biject_to(simplex) shifts the i-th logit by -log(K - 1 - i) (Stan's
    and NumPyro's choice), so zero maps to the uniform simplex and a warmup
    started at the origin starts at the Dirichlet(1)'s mean; each coordinate
    is the logit of its stick fraction y_i / (y_i + ... + y_K), shifted."""
    t = biject_to(constraints.simplex)
    np.testing.assert_allclose(t(jnp.zeros(k - 1)), np.full(k, 1.0 / k), rtol=1e-12)
    np.testing.assert_allclose(t.inv(jnp.full(k, 1.0 / k)), 0.0, atol=1e-12)
    y = np.random.default_rng(k).dirichlet(np.ones(k))
    rest = np.cumsum(y[::-1])[::-1]
    fraction = y[:-1] / rest[:-1]
    expected = np.log(fraction / (1 - fraction)) + np.log(np.arange(k - 1, 0, -1))
    np.testing.assert_allclose(t.inv(jnp.asarray(y)), expected, rtol=1e-10)


def test_stick_breaking_stays_inside_the_open_simplex_far_out():
    """Far in the tails (x about -87 in float32) exp flushes a coordinate to
    0, where Dirichlet(0.1) has log density +inf and a NaN gradient: the
    transform keeps every coordinate at least ``tiny`` instead, so the
    Dirichlet's log density in unconstrained space stays finite."""
    concentration = jnp.full(10, 0.1)
    d = dist.Dirichlet(concentration)
    t = T.StickBreakingTransform()

    def log_density(x):
        y = t(x)
        return d.log_prob(y) + t.log_abs_det_jacobian(x, y)

    for v in (-90.0, -200.0, 90.0, 300.0):
        x = jnp.zeros(9).at[0].set(v)
        y = t(x)
        assert jnp.all(y >= jnp.finfo(y.dtype).tiny)
        assert jnp.isfinite(log_density(x))
        assert jnp.all(jnp.isfinite(jax.grad(log_density)(x)))
    # Inside the float32 range nothing changes: Stan's stick breaking,
    # computed here in float64 NumPy.
    x = np.zeros(9)
    x[0] = -50.0
    z = 1.0 / (1.0 + np.exp(-(x - np.log(np.arange(9, 0, -1)))))
    rest = np.concatenate([[1.0], np.cumprod(1.0 - z)])
    expected = np.concatenate([z * rest[:-1], rest[-1:]])
    np.testing.assert_allclose(t(jnp.asarray(x, jnp.float32)), expected, rtol=1e-5)

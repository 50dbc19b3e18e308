"""Constraints: membership, event dims, feasible points, reprs."""

import jax.numpy as jnp
import numpy as np
import pytest

from core_ppl.distributions import constraints as C

L_OK = jnp.array([[1.0, 0.0], [0.5, 2.0]])
CORR_OK = jnp.array([[1.0, 0.0], [0.6, 0.8]])

# (constraint, values inside, values outside); each value is one event.
MEMBERSHIP = [
    (C.real, [0.0, -1e30], [jnp.nan, jnp.inf]),
    (C.positive, [1e-30, 3.0], [0.0, -1.0, jnp.inf]),
    (C.nonnegative, [0.0, 2.0], [-1e-9]),
    (C.unit_interval, [0.0, 0.5, 1.0], [-0.1, 1.1]),
    (C.interval(-1.0, 2.0), [-1.0, 2.0], [2.5]),
    (C.greater_than(2.0), [2.5], [2.0, 1.0]),
    (C.less_than(2.0), [1.5], [2.0]),
    (
        C.simplex,
        [jnp.array([0.2, 0.8]), jnp.array([1.0, 0.0])],
        [jnp.array([0.5, 0.6])],
    ),
    (C.real_vector, [jnp.zeros(3)], [jnp.array([0.0, jnp.nan])]),
    (C.lower_cholesky, [L_OK], [L_OK.T, -L_OK]),
    (C.corr_cholesky, [CORR_OK, jnp.eye(2)], [L_OK]),
    (
        C.positive_definite,
        [jnp.array([[2.0, 0.5], [0.5, 1.0]])],
        [jnp.array([[1.0, 2.0], [2.0, 1.0]]), jnp.array([[1.0, 0.5], [0.0, 1.0]])],
    ),
    (C.boolean, [0, 1, True], [2, 0.5]),
    (C.nonnegative_integer, [0, 7], [-1, 1.5]),
    (C.positive_integer, [1, 7], [0]),
    (C.integer_interval(0, 3), [0, 3], [4, -1, 1.5]),
    (C.independent(C.positive, 1), [jnp.ones(3)], [jnp.array([1.0, -1.0])]),
]


@pytest.mark.parametrize("constraint, inside, outside", MEMBERSHIP, ids=repr)
def test_membership(constraint, inside, outside):
    for value in inside:
        assert bool(constraint(jnp.asarray(value))), (constraint, value)
    for value in outside:
        assert not bool(constraint(jnp.asarray(value))), (constraint, value)


def test_event_dims_and_batches():
    assert C.real.event_dim == 0 and C.simplex.event_dim == 1
    assert C.corr_cholesky.event_dim == 2 and C.positive_definite.event_dim == 2
    assert C.independent(C.simplex, 2).event_dim == 3
    # The result is reduced over the event dims only.
    assert C.simplex(jnp.full((4, 3), 1 / 3)).shape == (4,)
    assert C.independent(C.real, 1)(jnp.zeros((4, 3))).shape == (4,)
    assert C.lower_cholesky(jnp.broadcast_to(jnp.eye(2), (5, 2, 2))).shape == (5,)


@pytest.mark.parametrize("constraint, _in, _out", MEMBERSHIP, ids=repr)
def test_feasible_like(constraint, _in, _out):
    prototype = jnp.zeros((4, 3, 3))
    point = constraint.feasible_like(prototype)
    assert point.shape == prototype.shape
    assert bool(jnp.all(constraint(point)))


def test_discreteness():
    for c in (C.boolean, C.nonnegative_integer, C.integer_interval(0, 2)):
        assert c.is_discrete
    for c in (C.real, C.positive, C.simplex, C.corr_cholesky):
        assert not c.is_discrete
    assert C.independent(C.boolean, 1).is_discrete


def test_reprs_are_readable():
    assert repr(C.positive) == "positive"
    assert repr(C.interval(0.0, 2.5)) == "interval(lower_bound=0, upper_bound=2.5)"
    assert (
        repr(C.greater_than(np.zeros(3)))
        == "greater_than(lower_bound=<array of shape (3,)>)"
    )
    assert repr(C.independent(C.real, 1)) == "independent(real, 1)"
    assert repr(C.nonnegative_integer) == "nonnegative_integer"
    assert (
        repr(C.integer_interval(0, 3))
        == "integer_interval(lower_bound=0, upper_bound=3)"
    )


def test_independent_rejects_bad_arguments():
    with pytest.raises(TypeError, match="Constraint"):
        C.independent("real", 1)
    with pytest.raises(ValueError, match=">= 0"):
        C.independent(C.real, -1)


# --- ordered_vector, softplus_positive, corr_matrix -------------------------

NEW_MEMBERSHIP = [
    (
        C.ordered_vector,
        [jnp.array([-1.0, 0.0, 2.5]), jnp.array([3.0])],
        [jnp.array([0.0, 0.0]), jnp.array([1.0, -1.0]), jnp.array([0.0, jnp.inf])],
    ),
    (C.softplus_positive, [1e-30, 3.0], [0.0, -1.0, jnp.inf]),
    (
        C.corr_matrix,
        [jnp.eye(3), jnp.array([[1.0, 0.6], [0.6, 1.0]])],
        [
            jnp.array([[1.0, 0.6], [0.5, 1.0]]),  # not symmetric
            jnp.array([[2.0, 0.6], [0.6, 1.0]]),  # diagonal not 1
            jnp.array([[1.0, 1.2], [1.2, 1.0]]),  # not positive definite
        ],
    ),
]


@pytest.mark.parametrize(
    "constraint, inside, outside",
    NEW_MEMBERSHIP,
    ids=[repr(case[0]) for case in NEW_MEMBERSHIP],
)
def test_new_constraints_membership_and_feasible_point(constraint, inside, outside):
    test_membership(constraint, inside, outside)
    test_feasible_like(constraint, inside, outside)


def test_new_constraints_shapes_and_reprs():
    assert C.ordered_vector.event_dim == 1 and C.corr_matrix.event_dim == 2
    assert C.softplus_positive.event_dim == 0
    assert C.ordered_vector(jnp.zeros((4, 3)) + jnp.arange(3.0)).shape == (4,)
    assert C.corr_matrix(jnp.broadcast_to(jnp.eye(2), (5, 2, 2))).shape == (5,)
    assert repr(C.ordered_vector) == "ordered_vector"
    assert repr(C.softplus_positive) == "softplus_positive"
    assert repr(C.corr_matrix) == "corr_matrix"
    # softplus_positive is the positive half-line, with its own bijection.
    assert isinstance(C.softplus_positive, type(C.positive))

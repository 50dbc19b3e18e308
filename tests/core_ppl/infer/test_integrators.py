"""Leapfrog integrator and Gaussian metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core_ppl.infer.mcmc.integrators import IntegratorState, velocity_verlet
from core_ppl.infer.mcmc.metrics import gaussian_euclidean

COV = np.array([[2.0, 0.6], [0.6, 0.5]])


def _logdensity(q):
    return -0.5 * q @ jnp.linalg.solve(COV, q)


def _start(metric, seed=0):
    q = jnp.array([0.3, -1.2])
    p = metric.sample_momentum(jax.random.PRNGKey(seed), q)
    logdensity, grad = jax.value_and_grad(_logdensity)(q)
    return IntegratorState(q, p, logdensity, grad)


def _energy(state, metric):
    return -state.logdensity + metric.kinetic_energy(state.momentum)


@pytest.mark.parametrize("inverse_mass_matrix", [np.array([1.5, 0.4]), COV])
@pytest.mark.parametrize("jitted", [False, True])
def test_leapfrog_is_reversible_and_nearly_conserves_energy(
    x64, inverse_mass_matrix, jitted
):
    metric = gaussian_euclidean(jnp.asarray(inverse_mass_matrix))
    step = velocity_verlet(_logdensity, metric)
    if jitted:
        step = jax.jit(step)
    state = _start(metric)
    forward = state
    for _ in range(20):
        forward = step(forward, 0.05)
    backward = forward
    for _ in range(20):
        backward = step(backward, -0.05)
    np.testing.assert_allclose(backward.position, state.position, atol=1e-10)
    np.testing.assert_allclose(backward.momentum, state.momentum, atol=1e-10)
    # Leapfrog's energy error is O(step_size^2) and does not drift.
    assert abs(_energy(forward, metric) - _energy(state, metric)) < 1e-2
    # The cached log density and gradient are those of the new position.
    np.testing.assert_allclose(forward.logdensity, _logdensity(forward.position))
    np.testing.assert_allclose(
        forward.logdensity_grad, jax.grad(_logdensity)(forward.position)
    )


def test_leapfrog_evaluates_the_gradient_once_per_step():
    calls = []

    def counting_logdensity(q):
        calls.append(1)  # runs once per trace of the density
        return _logdensity(q)

    metric = gaussian_euclidean(jnp.ones(2))
    state = _start(metric)
    step = velocity_verlet(counting_logdensity, metric)
    jax.make_jaxpr(step)(state, 0.1)
    # One value-and-grad pass per step: the start's gradient comes from the
    # cached state, not from a second evaluation.
    assert len(calls) == 1


def test_leapfrog_exact_for_free_particle():
    metric = gaussian_euclidean(jnp.array([2.0, 0.5]))
    step = velocity_verlet(lambda q: jnp.zeros(()), metric)
    q, p = jnp.array([1.0, 2.0]), jnp.array([0.5, -1.0])
    state = step(IntegratorState(q, p, jnp.zeros(()), jnp.zeros(2)), 0.3)
    np.testing.assert_allclose(state.position, q + 0.3 * jnp.array([2.0, 0.5]) * p)
    np.testing.assert_allclose(state.momentum, p)


@pytest.mark.parametrize("inverse_mass_matrix", [np.array([4.0, 0.25]), COV])
def test_momentum_has_covariance_mass_matrix(inverse_mass_matrix):
    metric = gaussian_euclidean(jnp.asarray(inverse_mass_matrix))
    keys = jax.random.split(jax.random.PRNGKey(1), 20000)
    momenta = jax.vmap(lambda k: metric.sample_momentum(k, jnp.zeros(2)))(keys)
    mass = np.linalg.inv(
        np.diag(inverse_mass_matrix)
        if inverse_mass_matrix.ndim == 1
        else inverse_mass_matrix
    )
    # Entries of a sample covariance of n=20000 normals: sd ~ sqrt(2/n) * scale.
    np.testing.assert_allclose(
        np.cov(np.asarray(momenta).T),
        mass,
        atol=5 * np.sqrt(2 / 20000) * np.abs(mass).max(),
    )
    p = momenta[0]
    minv = jnp.asarray(inverse_mass_matrix)
    sharp = minv * p if minv.ndim == 1 else minv @ p
    np.testing.assert_allclose(metric.velocity(p), sharp, rtol=1e-6)
    np.testing.assert_allclose(metric.kinetic_energy(p), 0.5 * p @ sharp, rtol=1e-6)


def test_uturn_criterion_is_stans():
    metric = gaussian_euclidean(jnp.ones(2))
    rho = jnp.array([1.0, 0.0])
    assert not metric.is_turning(jnp.array([1.0, 1.0]), jnp.array([0.5, -3.0]), rho)
    assert metric.is_turning(jnp.array([1.0, 1.0]), jnp.array([-0.5, 3.0]), rho)
    assert metric.is_turning(jnp.array([0.0, 1.0]), jnp.array([1.0, 0.0]), rho)
    assert metric.is_turning(jnp.array([jnp.nan, 1.0]), jnp.array([1.0, 0.0]), rho)
    # Stacked over levels, as the iterative tree uses it.
    stacked = metric.is_turning(
        jnp.ones((3, 2)), jnp.ones((3, 2)), jnp.array([[1.0, 0], [-1, 0], [0, 1]])
    )
    np.testing.assert_array_equal(stacked, [False, True, False])


def test_metric_rejects_bad_shape():
    with pytest.raises(ValueError, match="inverse_mass_matrix"):
        gaussian_euclidean(jnp.ones((2, 2, 2)))

"""Tests of core_ppl.optim."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core_ppl.optim import (
    SGD,
    Adam,
    ClippedAdam,
    apply_updates,
    clip,
    clip_by_global_norm,
    sgd,
)


@pytest.fixture
def tree():
    return {"a": jnp.array([1.0, -2.0]), "b": (jnp.array(3.0),)}


@pytest.fixture
def grads():
    return {"a": jnp.array([0.5, 1.0]), "b": (jnp.array(-2.0),)}


def leaves(t):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(t)]


def test_sgd_update_by_hand(tree, grads):
    opt = SGD(0.1)
    state = opt.update(grads, opt.init(tree))
    expected = [np.array([0.95, -2.1]), np.array(3.2)]
    for got, want in zip(leaves(opt.get_params(state)), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_adam_two_steps_by_hand(tree, grads):
    lr, b1, b2, eps = 0.01, 0.8, 0.9, 1e-8
    opt = Adam(lr, b1=b1, b2=b2, eps=eps)
    state = opt.init(tree)
    grads2 = jax.tree_util.tree_map(lambda g: -3.0 * g, grads)
    state = opt.update(grads, state)
    state = opt.update(grads2, state)
    # Kingma and Ba (2015), Algorithm 1, written out for t = 1, 2.
    params = leaves(tree)
    for i, (p, g1, g2) in enumerate(zip(params, leaves(grads), leaves(grads2))):
        m = (1 - b1) * g1
        v = (1 - b2) * g1**2
        p = p - lr * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
        m = b1 * m + (1 - b1) * g2
        v = b2 * v + (1 - b2) * g2**2
        p = p - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
        np.testing.assert_allclose(leaves(opt.get_params(state))[i], p, rtol=1e-5)


def test_schedule_is_called_with_step_count(tree, grads):
    opt = SGD(lambda count: 0.1 * (count + 1.0))
    state = opt.init(tree)
    for _ in range(3):
        state = opt.update(grads, state)
    # Steps 0.1, 0.2, 0.3: total 0.6 times the gradient.
    expected = [p - 0.6 * g for p, g in zip(leaves(tree), leaves(grads))]
    for got, want in zip(leaves(state.params), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_clip_by_global_norm(grads):
    # Global norm of grads is sqrt(0.25 + 1 + 4) = sqrt(5.25).
    transform = clip_by_global_norm(1.0)
    clipped, _ = transform.update(grads, transform.init(grads))
    total = np.sqrt(sum(np.sum(x**2) for x in leaves(clipped)))
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        leaves(clipped)[0], leaves(grads)[0] / np.sqrt(5.25), rtol=1e-6
    )
    small, _ = clip_by_global_norm(10.0).update(grads, ())
    for got, want in zip(leaves(small), leaves(grads)):
        np.testing.assert_array_equal(got, want)


def test_clip_is_elementwise(grads):
    clipped, _ = clip(0.75).update(grads, ())
    expected = [np.array([0.5, 0.75]), np.array(-0.75)]
    for got, want in zip(leaves(clipped), expected):
        np.testing.assert_array_equal(got, want)


def test_clipped_adam_clips_each_element_and_decays_by_hand(tree, grads):
    lr, b1, b2, eps, clip_norm, lrd = 0.1, 0.8, 0.9, 1e-8, 0.75, 0.5
    opt = ClippedAdam(lr, b1, b2, eps, clip_norm=clip_norm, lrd=lrd)
    grads2 = jax.tree_util.tree_map(lambda g: -3.0 * g, grads)
    state = opt.update(grads2, opt.update(grads, opt.init(tree)))
    # NumPyro's ClippedAdam: clip each element to [-clip_norm, clip_norm], then
    # Kingma and Ba (2015), Algorithm 1; step t (from 0) uses lr * lrd**t.
    # grads (0.5, 1.0, -2.0) clip to (0.5, 0.75, -0.75): only the first keeps
    # its value, so global-norm clipping (which rescales all three) differs.
    for i, (p, g1, g2) in enumerate(zip(leaves(tree), leaves(grads), leaves(grads2))):
        g1, g2 = np.clip(g1, -clip_norm, clip_norm), np.clip(g2, -clip_norm, clip_norm)
        m, v = (1 - b1) * g1, (1 - b2) * g1**2
        p = p - lr * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
        m, v = b1 * m + (1 - b1) * g2, b2 * v + (1 - b2) * g2**2
        p = p - lr * lrd * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
        np.testing.assert_allclose(leaves(opt.get_params(state))[i], p, rtol=1e-5)


def test_clipped_adam_without_clipping_is_adam(tree, grads):
    clipped = ClippedAdam(0.1, clip_norm=100.0)
    plain = Adam(0.1)
    got = clipped.update(grads, clipped.init(tree)).params
    want = plain.update(grads, plain.init(tree)).params
    for a, b in zip(leaves(got), leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize(
    "opt", [Adam(0.05), SGD(0.05), ClippedAdam(0.05, clip_norm=1.0)], ids=repr
)
def test_converges_on_quadratic(opt):
    # f(x) = 0.5 (x - c)^T A (x - c), minimum at c.
    a = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    c = jnp.array([1.0, -3.0])
    loss = lambda x: 0.5 * (x - c) @ a @ (x - c)

    @jax.jit
    def run(state):
        def step(state, _):
            return opt.update(jax.grad(loss)(opt.get_params(state)), state), None

        return jax.lax.scan(step, state, None, length=2000)[0]

    x = opt.get_params(run(opt.init(jnp.zeros(2))))
    np.testing.assert_allclose(x, c, atol=1e-3)


def test_equality_and_hash_follow_settings():
    assert Adam(0.1) == Adam(0.1, b1=0.9)
    assert hash(Adam(0.1)) == hash(Adam(0.1))
    assert Adam(0.1) != Adam(0.2)
    assert Adam(0.1) != SGD(0.1)
    assert ClippedAdam(0.1, lrd=0.99) != ClippedAdam(0.1)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="learning_rate"):
        SGD(-1.0)
    with pytest.raises(ValueError, match="b1"):
        Adam(0.1, b1=1.0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_by_global_norm(0.0)
    with pytest.raises(ValueError, match="clip_norm"):
        ClippedAdam(0.1, clip_norm=0.0)
    with pytest.raises(ValueError, match="lrd"):
        ClippedAdam(0.1, lrd=0.0)


def test_keeps_dtype_and_does_not_mutate(tree, grads):
    opt = sgd(0.1)
    before = leaves(tree)
    updates, _ = opt.update(grads, opt.init(tree))
    new = apply_updates(tree, updates)
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(new))
    for got, want in zip(leaves(tree), before):
        np.testing.assert_array_equal(got, want)

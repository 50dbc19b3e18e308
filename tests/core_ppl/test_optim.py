"""Tests of core_ppl.optim."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core_ppl.optim import (
    SGD,
    Adagrad,
    Adam,
    ClippedAdam,
    Momentum,
    RMSProp,
    apply_updates,
    clip,
    clip_by_global_norm,
    optax_to_numpyro,
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


# --- Adagrad, RMSProp, Momentum, optax_to_numpyro ----------------------------------


def two_steps(opt, tree, grads):
    """Apply ``grads`` then ``-3 * grads``; return the final leaves."""
    grads2 = jax.tree_util.tree_map(lambda g: -3.0 * g, grads)
    state = opt.update(grads2, opt.update(grads, opt.init(tree)))
    return leaves(opt.get_params(state)), leaves(grads), leaves(grads2)


def test_adagrad_two_steps_by_hand(tree, grads):
    lr, momentum, eps = 0.1, 0.5, 1e-8
    got, g1s, g2s = two_steps(Adagrad(lr, momentum, eps=eps), tree, grads)
    for p, g1, g2, out in zip(leaves(tree), g1s, g2s, got):
        m = (1 - momentum) * g1 / (np.sqrt(g1**2) + eps)
        p = p - lr * m
        m = momentum * m + (1 - momentum) * g2 / (np.sqrt(g1**2 + g2**2) + eps)
        p = p - lr * m
        np.testing.assert_allclose(out, p, rtol=1e-5)


def test_rmsprop_two_steps_by_hand(tree, grads):
    lr, gamma, eps = 0.1, 0.8, 1e-8
    got, g1s, g2s = two_steps(RMSProp(lr, gamma=gamma, eps=eps), tree, grads)
    for p, g1, g2, out in zip(leaves(tree), g1s, g2s, got):
        v = (1 - gamma) * g1**2
        p = p - lr * g1 / np.sqrt(v + eps)
        v = gamma * v + (1 - gamma) * g2**2
        p = p - lr * g2 / np.sqrt(v + eps)
        np.testing.assert_allclose(out, p, rtol=1e-5)


def test_momentum_two_steps_by_hand(tree, grads):
    lr, mass = 0.1, 0.7
    got, g1s, g2s = two_steps(Momentum(lr, mass), tree, grads)
    for p, g1, g2, out in zip(leaves(tree), g1s, g2s, got):
        # v1 = g1, v2 = mass * g1 + g2.
        want = p - lr * g1 - lr * (mass * g1 + g2)
        np.testing.assert_allclose(out, want, rtol=1e-5)


def test_adagrad_zero_gradient_gives_zero_step(tree):
    zeros = jax.tree_util.tree_map(jnp.zeros_like, tree)
    opt = Adagrad(0.1, eps=0.0)
    got = leaves(opt.get_params(opt.update(zeros, opt.init(tree))))
    for a, b in zip(got, leaves(tree)):
        np.testing.assert_array_equal(a, b)


class DuckSGD:
    """An object with optax's interface but no optax: scaled SGD with a count."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def init(self, params):
        return jnp.zeros((), jnp.int32)

    def update(self, grads, state, params=None):
        step = jax.tree_util.tree_map(lambda g: -self.learning_rate * g, grads)
        return step, state + 1


def test_optax_to_numpyro_with_a_duck_typed_transformation(tree, grads):
    opt = optax_to_numpyro(DuckSGD(0.1))
    got, g1s, g2s = two_steps(opt, tree, grads)
    for p, g1, g2, out in zip(leaves(tree), g1s, g2s, got):
        np.testing.assert_allclose(out, p - 0.1 * g1 - 0.1 * g2, rtol=1e-6)
    state = opt.update(grads, opt.init(tree))
    assert int(state.transform_state) == 1
    assert opt == opt and opt != optax_to_numpyro(DuckSGD(0.1))
    with pytest.raises(TypeError, match="init and update"):
        optax_to_numpyro(object())


def test_optax_to_numpyro_with_optax_adam_matches_our_adam(tree, grads):
    optax = pytest.importorskip("optax")
    wrapped = optax_to_numpyro(optax.adam(0.01, b1=0.8, b2=0.9))
    got, _, _ = two_steps(wrapped, tree, grads)
    want, _, _ = two_steps(Adam(0.01, b1=0.8, b2=0.9), tree, grads)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_optax_to_numpyro_drives_svi():
    optax = pytest.importorskip("optax")
    import core_ppl as ppl
    import core_ppl.distributions as dist
    from core_ppl.infer import SVI, Trace_ELBO

    def model():
        ppl.sample("x", dist.Normal(1.5, 1.0))

    def guide():
        ppl.sample("x", dist.Normal(ppl.param("loc", 0.0), 1.0))

    svi = SVI(model, guide, optax_to_numpyro(optax.adam(0.05)), Trace_ELBO())
    result = svi.run(jax.random.PRNGKey(0), 1000, progress_bar=False)
    # The exact posterior is in the family: loc -> 1.5. Adam's steady-state
    # jitter at lr 0.05 is about 0.05, far below the tolerance.
    np.testing.assert_allclose(result.params["loc"], 1.5, atol=0.2)


@pytest.mark.parametrize(
    "opt",
    [
        Adagrad(0.5, momentum=0.0),
        # RMSProp's steps have size ~lr near the optimum (it divides by the
        # gradient's own scale), so the rate decays to settle within 1e-3.
        RMSProp(lambda count: 0.02 * 0.998**count),
        Momentum(0.05, mass=0.5),
    ],
    ids=["Adagrad", "RMSProp", "Momentum"],
)
def test_new_optimisers_converge_on_quadratic(opt):
    test_converges_on_quadratic(opt)


def test_new_optimisers_bad_settings_raise():
    with pytest.raises(ValueError, match="momentum"):
        Adagrad(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="gamma"):
        RMSProp(0.1, gamma=-0.1)
    with pytest.raises(ValueError, match="mass"):
        Momentum(0.1, mass=-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        RMSProp(0.0)
    assert RMSProp(0.1) == RMSProp(0.1, gamma=0.9) != RMSProp(0.1, gamma=0.5)

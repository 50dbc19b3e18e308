"""core_ppl.jit: jax.jit with core_ppl's compile options, chosen at first use."""

import subprocess
import sys
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl.jit as core_jit


@partial(core_jit.jit, static_argnames="power")
def _power_sum(x, *, power):
    """Sum of x ** power."""
    return jnp.sum(x**power)


def test_jit_computes_what_jax_jit_computes_and_exposes_its_methods():
    x = jnp.linspace(-1.0, 2.0, 7)
    expected = jax.jit(lambda x: jnp.sum(x**3))(x)
    # Other compile options may round differently, hence a tolerance.
    np.testing.assert_allclose(_power_sum(x, power=3), expected, rtol=1e-6)
    assert _power_sum.__name__ == "_power_sum"
    assert _power_sum.__doc__ == "Sum of x ** power."
    compiled = _power_sum.lower(x, power=3).compile()
    np.testing.assert_allclose(compiled(x), expected, rtol=1e-6)
    before = _power_sum._cache_size()
    _power_sum(x + 1.0, power=3)  # same shapes: no new compile
    assert _power_sum._cache_size() == before
    _power_sum(jnp.ones(8), power=3)  # a new shape compiles, and is counted
    assert _power_sum._cache_size() == before + 1


def test_jit_works_inside_a_users_transformations():
    # JAX refuses compile options on a nested jit; a traced call must join
    # the enclosing program instead (an SVI update inside a user's jit, a
    # kernel inside a model inside MCMC).
    x = jnp.arange(6.0).reshape(2, 3)
    inside_jit = jax.jit(lambda x: _power_sum(x, power=2) + 1.0)(x)
    np.testing.assert_allclose(inside_jit, jnp.sum(x**2) + 1.0)
    per_row = jax.vmap(lambda row: _power_sum(row, power=2))(x)
    np.testing.assert_allclose(per_row, jnp.sum(x**2, axis=1))
    grad = jax.grad(lambda x: _power_sum(x, power=2))(x)
    np.testing.assert_allclose(grad, 2.0 * x)


def test_cpu_programs_compile_with_the_cpu_options_of_their_size():
    if jax.default_backend() != "cpu":
        pytest.skip("the options apply to the CPU backend only")
    # This jaxlib accepts the options (the fallback below covers one that
    # does not), so CPU programs use them.
    assert core_jit.compiler_options() == core_jit.CPU_COMPILER_OPTIONS
    assert (
        core_jit.compiler_options(small=True)
        == core_jit.SMALL_PROGRAM_CPU_COMPILER_OPTIONS
    )
    # The size class follows the bytes of the array arguments, so the same
    # shapes always meet the same compiled program.
    limit = core_jit.SMALL_PROGRAM_BYTES // 4  # float32 elements
    small, large = jnp.ones(limit, jnp.float32), jnp.ones(limit + 1, jnp.float32)
    fn = core_jit.jit(jnp.sum)
    np.testing.assert_array_equal(fn(small), limit)
    np.testing.assert_array_equal(fn(large), limit + 1)
    assert set(fn._top_level) == {True, False}
    assert fn._cache_size() == 2
    fn(small + 1.0), fn(large + 1.0)
    assert fn._cache_size() == 2


def _scan_sum(x, length):
    total, _ = jax.lax.scan(lambda c, _: (c * 0.9 + x, None), x, None, length=length)
    return total


def test_model_loop_steps_counts_the_scans_of_models_only():
    def program(x):
        with core_jit.model_scope():
            inside = _scan_sum(x, 300)
        # A loop of the program itself (a sampler's) is not the model's.
        return jax.grad(lambda x: _scan_sum(x, 7) * inside)(x)

    jaxpr = jax.jit(program).trace(1.0).jaxpr
    # The model's scan runs forward, and again transposed for the gradient,
    # where it is nested in the program's while loop of the gradient.
    assert core_jit.model_loop_steps(jaxpr) == 300
    unmarked = jax.jit(jax.grad(lambda x: _scan_sum(x, 300))).trace(1.0)
    assert core_jit.model_loop_steps(unmarked.jaxpr) == 0

    def marked(x):
        with core_jit.model_scope():
            return _scan_sum(x, 300)

    traced = jax.jit(jax.grad(marked)).trace(1.0)
    assert core_jit.model_loop_steps(traced.jaxpr) == 600


def test_programs_running_a_looping_model_compile_with_the_loop_options(
    monkeypatch,
):
    if jax.default_backend() != "cpu":
        pytest.skip("the options apply to the CPU backend only")
    assert core_jit.compiler_options(small=True, loops=True) == {
        **core_jit.SMALL_PROGRAM_CPU_COMPILER_OPTIONS,
        **core_jit.LOOP_PROGRAM_CPU_COMPILER_OPTIONS,
    }
    chosen = []
    original = core_jit.compiler_options

    def spy(small=False, loops=False):
        chosen.append(loops)
        return original(small, loops)

    monkeypatch.setattr(core_jit, "compiler_options", spy)

    def run(x, length):
        with core_jit.model_scope():
            return _scan_sum(x, length)

    fn = core_jit.jit(run, static_argnums=1)
    expected = jax.jit(run, static_argnums=1)(jnp.ones(3), core_jit.MODEL_LOOP_STEPS)
    np.testing.assert_allclose(
        fn(jnp.ones(3), core_jit.MODEL_LOOP_STEPS), expected, rtol=1e-6
    )
    fn(jnp.ones(3), 5)  # a short loop keeps the options of its size
    assert chosen[-2:] == [True, False]


def test_an_option_this_xla_lacks_falls_back_to_its_defaults(monkeypatch):
    # A jaxlib that renames or drops an option must still compile our
    # programs, with XLA's defaults, instead of failing on every call.
    unknown = {"xla_cpu_no_such_option_here": True}
    monkeypatch.setattr(core_jit, "CPU_COMPILER_OPTIONS", unknown)
    monkeypatch.setattr(core_jit, "SMALL_PROGRAM_CPU_COMPILER_OPTIONS", unknown)
    core_jit.compiler_options.cache_clear()
    try:
        assert core_jit.compiler_options(small=False) is None
        assert core_jit.compiler_options(small=True) is None
        fresh = core_jit.jit(lambda x: x * 2.0)
        np.testing.assert_array_equal(fresh(jnp.ones(3)), 2.0)
        assert fresh._top_level[True] is fresh._nested  # the plain jax.jit
    finally:
        core_jit.compiler_options.cache_clear()


def test_import_starts_no_backend():
    # The options depend on the backend, so they are chosen at the first
    # call; importing must not start JAX (nor change its settings).
    code = (
        "import bayes_sklearn, core_ppl.infer; from jax._src import xla_bridge; "
        "assert not xla_bridge.backends_are_initialized()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

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
    np.testing.assert_array_equal(_power_sum(x, power=3), expected)
    assert _power_sum.__name__ == "_power_sum"
    assert _power_sum.__doc__ == "Sum of x ** power."
    # lower/compile and the cache are those of the underlying jax.jit object
    compiled = _power_sum.lower(x, power=3).compile()
    np.testing.assert_array_equal(compiled(x), expected)
    before = _power_sum._cache_size()
    _power_sum(x + 1.0, power=3)  # same shapes: no new compile
    assert _power_sum._cache_size() == before


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


def test_cpu_programs_compile_with_the_cpu_options():
    if jax.default_backend() != "cpu":
        pytest.skip("the options apply to the CPU backend only")
    # This jaxlib accepts the option (the fallback below covers one that
    # does not), so CPU programs use it.
    assert core_jit.compiler_options() == {"xla_cpu_use_fusion_emitters": False}


def test_an_option_this_xla_lacks_falls_back_to_its_defaults(monkeypatch):
    # A jaxlib that renames or drops the option must still compile our
    # programs, with XLA's defaults, instead of failing on every call.
    monkeypatch.setattr(
        core_jit, "CPU_COMPILER_OPTIONS", {"xla_cpu_no_such_option_here": True}
    )
    core_jit.compiler_options.cache_clear()
    try:
        assert core_jit.compiler_options() is None
        fresh = core_jit.jit(lambda x: x * 2.0)
        np.testing.assert_array_equal(fresh(jnp.ones(3)), 2.0)
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

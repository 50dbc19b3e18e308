"""``count_compiles``: traces, programs and XLA compiles, told apart."""

import threading

import jax
import jax.numpy as jnp
import pytest

from core_ppl import cache
from core_ppl.compile_events import CompileCounter, count_compiles
from core_ppl.jit import jit


def _fresh_function():
    """A function no cache has seen, calling a jitted function."""

    @jax.jit
    def inner(x):
        return jnp.sin(x)

    def outer(x):
        return inner(x) * 2.0

    return outer


def test_counts_traces_programs_and_compiles_by_name():
    fun = _fresh_function()
    jitted = jax.jit(fun)
    # Made outside the block: creating arrays runs small programs of its own.
    three, other_three, four = jnp.ones(3), jnp.zeros(3), jnp.ones(4)
    with count_compiles("outer") as outer, count_compiles() as every:
        jitted(three)
        jitted(other_three)  # same signature: nothing new
        jitted(four)  # a new shape: a new program
    assert (outer.traces, outer.programs, outer.backend_compiles) == (2, 2, 2)
    # The nested jitted function is part of its caller's program.
    assert (every.traces, every.programs, every.backend_compiles) == (2, 2, 2)
    assert outer.name == "outer" and every.name is None


def test_a_program_loaded_from_the_disk_cache_is_not_a_backend_compile(tmp_path):
    fun, x = _fresh_function(), jnp.ones(3)
    saved = dict(cache._settings)
    cache.set_dir(tmp_path)
    try:
        with count_compiles("outer") as cold:
            jit(fun)(x)
        # A new jit of the same function, JAX's caches emptied: as in a new
        # process, the program is built again and comes from the directory.
        jax.clear_caches()
        with count_compiles("outer") as warm:
            jit(fun)(x)
    finally:
        cache._settings.update(saved)
    assert (cold.programs, cold.backend_compiles) == (1, 1)
    assert (warm.programs, warm.backend_compiles) == (1, 0)


def test_counts_other_threads_and_stops_at_exit():
    fun, five, six = jax.jit(_fresh_function()), jnp.ones(5), jnp.ones(6)
    with count_compiles("outer") as counter:
        thread = threading.Thread(target=fun, args=(five,))
        thread.start()
        thread.join()
    fun(six)  # after the block: not counted
    assert counter == CompileCounter(1, 1, 1, name="outer")


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="name must be a str"):
        with count_compiles(name=3):
            pass

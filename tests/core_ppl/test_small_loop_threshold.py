"""core_ppl.util.set_small_loop_threshold edits XLA_FLAGS, and XLA honours it."""

import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import pytest

from core_ppl.util import set_small_loop_threshold

OPTION = "xla_cpu_small_while_loop_byte_threshold"


@pytest.fixture
def no_backend_warning(monkeypatch):
    monkeypatch.setattr("core_ppl.util._backends_started", lambda: False)


def test_sets_the_option_in_an_empty_environment(monkeypatch, no_backend_warning):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    set_small_loop_threshold(4096)
    assert os.environ["XLA_FLAGS"] == f"--xla_backend_extra_options={OPTION}=4096"


def test_keeps_other_flags_and_options(monkeypatch, no_backend_warning):
    monkeypatch.setenv(
        "XLA_FLAGS",
        f"--xla_cpu_enable_fast_math=false "
        f"--xla_backend_extra_options=other_option=1,{OPTION}=7",
    )
    set_small_loop_threshold()
    flags = os.environ["XLA_FLAGS"].split()
    assert flags == [
        "--xla_cpu_enable_fast_math=false",
        f"--xla_backend_extra_options=other_option=1,{OPTION}={2**20}",
    ]


@pytest.mark.parametrize(
    "value, error",
    [(1.5, TypeError), (True, TypeError), ("8", TypeError), (-1, ValueError)],
)
def test_rejects_bad_thresholds(monkeypatch, value, error):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    with pytest.raises(error, match="num_bytes"):
        set_small_loop_threshold(value)
    assert "XLA_FLAGS" not in os.environ


def test_warns_once_jax_has_started(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    jnp.zeros(1).block_until_ready()  # starts the CPU backend
    with pytest.warns(RuntimeWarning, match="new processes only"):
        set_small_loop_threshold()


_PROGRAM = textwrap.dedent(
    """
    import sys
    from core_ppl.util import set_small_loop_threshold
    set_small_loop_threshold(int(sys.argv[1]))
    import jax, jax.numpy as jnp
    loop = jax.jit(lambda x: jax.lax.fori_loop(0, 10, lambda i, x: x * 2 + 1, x))
    print(loop.lower(jnp.ones(8)).compile().as_text().count("xla_cpu_small_call"))
    """
)


@pytest.mark.parametrize("num_bytes, is_one_function", [(2**20, True), (0, False)])
def test_xla_compiles_small_loops_as_one_function(num_bytes, is_one_function):
    # A fresh interpreter: XLA reads XLA_FLAGS when its backend starts. This
    # also catches a jaxlib that renames the option.
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(num_bytes)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert (int(out.stdout.split()[-1]) > 0) == is_one_function

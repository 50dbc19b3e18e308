"""``jit``: ``jax.jit`` with the XLA options core_ppl compiles its programs with.

On CPU, XLA generates each fused kernel either with its newer MLIR "fusion
emitters" (the default) or with its older LLVM IR emitters
(``xla_cpu_use_fusion_emitters=False``). A NUTS run with warmup is ~200 small
kernels, and the older emitters compile them much faster while the code
they produce runs as fast. Measured on a 2-core CPU, compiling the sampler
took 4.3-5.0 s instead of 5.8-6.5 s for eight schools (7.0 s instead of
10.9 s of CPU time), 3.7-4.4 s instead of 4.8-5.7 s for breast cancer and
13 s instead of 19 s for SKIM (``benchmarks/skim.py --quick``). Sampling
times were equal within the noise; the NUTS draws of the first two were
bit-identical, SKIM's differ in rounding; the test suite passed unchanged.

The option is a per-program compile option, so it is set on our programs
only, never process-wide: importing core_ppl changes no JAX setting, and a
user's own ``jax.jit`` compiles as before. It is used when JAX computes on
CPU and the installed XLA knows it; elsewhere programs compile with XLA's
defaults.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

__all__ = ["CPU_COMPILER_OPTIONS", "compiler_options", "jit"]

CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


@functools.cache
def compiler_options() -> dict | None:
    """The options core_ppl's programs compile with in this process: the
    CPU options on a CPU backend whose XLA accepts them, else None (XLA's
    defaults). Decided at the first compile, once JAX has chosen a backend."""
    if jax.default_backend() != "cpu":
        return None
    try:  # a trivial program: an XLA without the option refuses its name
        jax.jit(lambda: 0, compiler_options=CPU_COMPILER_OPTIONS).lower().compile()
    except (RuntimeError, TypeError):  # JaxRuntimeError; a jit without the argument
        return None
    return CPU_COMPILER_OPTIONS


class _Jitted:
    """``jax.jit(fun, **jit_kwargs)`` compiled with :func:`compiler_options`
    when called at the top level.

    JAX takes compile options only for a top-level program: a call with
    traced arguments is part of an enclosing program (the caller's jit,
    vmap, grad, ...), which compiles it with its own options, so that call
    goes to a plain ``jax.jit``. The top-level one is built at its first
    call, not at import, when no backend has started. Other attributes
    (``lower``, ``trace``, ...) are those of the top-level ``jax.jit``.
    """

    def __init__(self, fun: Callable, jit_kwargs: dict):
        functools.update_wrapper(self, fun)
        self._jit_kwargs = jit_kwargs
        self._nested = jax.jit(fun, **jit_kwargs)

    @functools.cached_property
    def _top_level(self):
        options = compiler_options()
        if options is None:  # also where jax.jit predates the argument
            return self._nested
        return jax.jit(self.__wrapped__, compiler_options=options, **self._jit_kwargs)

    def __call__(self, *args, **kwargs):
        leaves = jax.tree.leaves((args, kwargs))
        if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return self._nested(*args, **kwargs)
        return self._top_level(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):  # not a jit object's: copy, pickle, ...
            raise AttributeError(name)
        return getattr(self._top_level, name)


def jit(fun: Callable, /, **jit_kwargs) -> Callable:
    """``jax.jit(fun, **jit_kwargs)``, compiled with :func:`compiler_options`
    when called at the top level (with no traced argument).

    Use it as ``jax.jit`` is used, directly or as a decorator through
    ``functools.partial(jit, static_argnames=...)``.
    """
    return _Jitted(fun, jit_kwargs)

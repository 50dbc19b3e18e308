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

Programs whose array arguments are small (at most ``SMALL_PROGRAM_BYTES``)
also compile with LLVM optimisation level 2 instead of XLA's 3. Their runs
are bound by kernel launches, not arithmetic, so the extra optimisation buys
nothing there, and dropping it halves the compile: eight schools compiled in
2.2 s instead of 4.7 s, SKIM on 100 x 8 data in 5.0 s instead of 7.4 s, and
both sampled as fast (within 3%, the noise). With real data it does cost:
sampling was ~9% slower on breast cancer (569 x 30, 68 KB) and a
gradient on COVTYPE-sized data ~6% slower, hence the threshold.

These are per-program compile options, so they are set on our programs
only, never process-wide: importing core_ppl changes no JAX setting, and a
user's own ``jax.jit`` compiles as before. They are used when JAX computes
on CPU and the installed XLA knows them; elsewhere programs compile with
XLA's defaults.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import jax

__all__ = [
    "CPU_COMPILER_OPTIONS",
    "SMALL_PROGRAM_BYTES",
    "SMALL_PROGRAM_CPU_COMPILER_OPTIONS",
    "compiler_options",
    "jit",
]

CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
SMALL_PROGRAM_CPU_COMPILER_OPTIONS = {
    **CPU_COMPILER_OPTIONS,
    "xla_backend_optimization_level": 2,
}
SMALL_PROGRAM_BYTES = 2**14

# Guards the first call of compiler_options and each _Jitted's table of
# top-level jits: fits run in threads (GridSearchCV under joblib's threading
# backend) must share one jax.jit per size class, or each would compile the
# same program again.
_LOCK = threading.RLock()


@functools.cache
def compiler_options(small: bool = False) -> dict | None:
    """The options core_ppl's programs compile with in this process, for
    programs with ``small`` array arguments or not: the CPU options on a CPU
    backend whose XLA accepts them, else None (XLA's defaults). Decided at
    the first compile, once JAX has chosen a backend."""
    if jax.default_backend() != "cpu":
        return None
    options = SMALL_PROGRAM_CPU_COMPILER_OPTIONS if small else CPU_COMPILER_OPTIONS
    try:  # a trivial program: an XLA without an option refuses its name
        jax.jit(lambda: 0, compiler_options=options).lower().compile()
    except (RuntimeError, TypeError):  # JaxRuntimeError; a jit without the argument
        return None
    return options


class _Jitted:
    """``jax.jit(fun, **jit_kwargs)`` compiled with :func:`compiler_options`
    when called at the top level.

    JAX takes compile options only for a top-level program: a call with
    traced arguments is part of an enclosing program (the caller's jit,
    vmap, grad, ...), which compiles it with its own options, so that call
    goes to a plain ``jax.jit``. A top-level call goes to the ``jax.jit``
    of its size class, built at its first call (not at import, when no
    backend has started). The size class depends on shapes and dtypes only,
    so arguments of the same shapes always reuse the same compiled program.
    """

    def __init__(self, fun: Callable, jit_kwargs: dict):
        functools.update_wrapper(self, fun)
        self._jit_kwargs = jit_kwargs
        self._nested = jax.jit(fun, **jit_kwargs)
        self._top_level = {}  # small (bool) -> jax.jit

    def _jitted_for(self, args, kwargs):
        leaves = jax.tree.leaves((args, kwargs))
        if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return self._nested
        nbytes = sum(getattr(leaf, "nbytes", 0) for leaf in leaves)
        small = nbytes <= SMALL_PROGRAM_BYTES
        jitted = self._top_level.get(small)
        if jitted is None:
            with _LOCK:  # checked again: another thread may have built it
                jitted = self._top_level.get(small)
                if jitted is None:
                    jitted = self._jit_with(compiler_options(small))
                    self._top_level[small] = jitted
        return jitted

    def _jit_with(self, options):
        if options is None:  # also where jax.jit predates the argument
            return self._nested
        return jax.jit(self.__wrapped__, compiler_options=options, **self._jit_kwargs)

    def __call__(self, *args, **kwargs):
        return self._jitted_for(args, kwargs)(*args, **kwargs)

    def lower(self, *args, **kwargs):
        """``lower`` of the ``jax.jit`` these arguments are compiled with."""
        return self._jitted_for(args, kwargs).lower(*args, **kwargs)

    def _cache_size(self) -> int:
        """Programs compiled so far, over all size classes."""
        with _LOCK:
            top_level = tuple(self._top_level.values())
        jitted = {id(j): j for j in (self._nested, *top_level)}
        return sum(j._cache_size() for j in jitted.values())


def jit(fun: Callable, /, **jit_kwargs) -> Callable:
    """``jax.jit(fun, **jit_kwargs)``, compiled with :func:`compiler_options`
    when called at the top level (with no traced argument).

    Use it as ``jax.jit`` is used, directly or as a decorator through
    ``functools.partial(jit, static_argnames=...)``.
    """
    return _Jitted(fun, jit_kwargs)

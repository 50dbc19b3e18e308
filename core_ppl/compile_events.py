"""Count JAX's compilation work through its public monitoring events.

JAX reports each stage of turning a Python function into an executable as a
duration event of :mod:`jax.monitoring`, tagged with the function's name:

``/jax/core/compile/jaxpr_trace_duration``
    a jitted function was *traced* to a jaxpr (``fun_name`` is the
    function's name): each top-level program, and a function traced without
    being compiled (``jax.eval_shape``, ``.trace()``). Jitted functions
    called inside a traced one are part of its jaxpr and report nothing of
    their own;
``/jax/core/compile/jaxpr_to_mlir_module_duration``
    a top-level *program* was lowered to XLA (``jit(name)``). Each program
    a process builds is lowered once, and is then either compiled by XLA or,
    for core_ppl's own programs with the on-disk cache warm
    (:mod:`core_ppl.cache`), loaded from disk;
``/jax/core/compile/backend_compile_duration``
    XLA *compiled* a program (``jit(name)``): a program loaded from the
    on-disk cache does not count.

So "the grid search built the sampler once" is a count of ``programs``
(whatever the cache holds), and "a worker process compiled nothing" is a
count of ``backend_compiles``. :func:`count_compiles` counts all three while
it is open, in every thread of the process.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass, field

__all__ = ["CompileCounter", "count_compiles"]

_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "traces",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "programs",
    "/jax/core/compile/backend_compile_duration": "backend_compiles",
}
# Lowered and compiled programs are named after the transformation that made
# them, "jit(f)" or "pmap(f)"; traces name the function alone.
_WRAPPED_NAME = re.compile(r"^\w+\((.*)\)$")

_LOCK = threading.Lock()  # guards _ACTIVE and the counters' fields
_ACTIVE: list = []  # counters now open
_REGISTERED: list = []  # [True] once the one listener is registered


@dataclass
class CompileCounter:
    """Compilation events seen while :func:`count_compiles` was open.

    Attributes
    ----------
    traces : int
        Jitted functions traced to jaxprs (top-level calls, not the jitted
        functions they call).
    programs : int
        Top-level programs lowered to XLA: each was then compiled, or loaded
        from core_ppl's on-disk cache.
    backend_compiles : int
        Programs XLA compiled (loads from the on-disk cache excluded).
    name : str or None
        Only events of the function of this name were counted (None: all).
    """

    traces: int = 0
    programs: int = 0
    backend_compiles: int = 0
    name: str | None = field(default=None, repr=False)


def _function_name(fun_name) -> str:
    match = _WRAPPED_NAME.match(str(fun_name))
    return match.group(1) if match else str(fun_name)


def _listener(event, duration, **kwargs):
    kind = _EVENTS.get(event)
    if kind is None:
        return
    name = _function_name(kwargs.get("fun_name", ""))
    with _LOCK:
        for counter in _ACTIVE:
            if counter.name is None or counter.name == name:
                setattr(counter, kind, getattr(counter, kind) + 1)


def _register_once():
    # One listener for the process, registered on first use (never at
    # import): JAX offers no cheap way to remove one per context.
    with _LOCK:
        if _REGISTERED:
            return
        from jax import monitoring

        monitoring.register_event_duration_secs_listener(_listener)
        _REGISTERED.append(True)


@contextlib.contextmanager
def count_compiles(name: str | None = None):
    """Count JAX's traces, lowered programs and XLA compiles in a block.

    Events of every thread of this process count (fits run in threads under
    joblib's threading backend); worker processes count their own.

    Parameters
    ----------
    name : str, optional
        Count only the events of the jitted function of this ``__name__``
        (for example ``"_run_chains"``, the function of the MCMC driver's
        program). By default every function counts.

    Yields
    ------
    CompileCounter
        Updated while the block runs; read it inside or after the block.

    Examples
    --------
    >>> import jax
    >>> import jax.numpy as jnp
    >>> from core_ppl.compile_events import count_compiles
    >>> def cube(x):
    ...     return x**3
    >>> cube_jit = jax.jit(cube)
    >>> with count_compiles("cube") as counter:
    ...     _ = cube_jit(jnp.ones(3)), cube_jit(jnp.zeros(3))
    >>> counter.traces, counter.programs, counter.backend_compiles
    (1, 1, 1)
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__}")
    _register_once()
    counter = CompileCounter(name=name)
    with _LOCK:
        _ACTIVE.append(counter)
    try:
        yield counter
    finally:
        with _LOCK:
            _ACTIVE.remove(counter)

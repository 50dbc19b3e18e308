"""Wall time of a call split into JAX compilation and the rest.

Compilation is what JAX's own monitoring events report for tracing,
lowering and XLA compilation, so every library on JAX (ours, NumPyro) is
measured the same way. Shared by the benchmark scripts (run them from the
repository root: ``python benchmarks/<script>.py``).
"""

import time
from typing import NamedTuple

import jax


class Timed(NamedTuple):
    wall_s: float
    compile_s: float


class CompileTimer:
    """Accumulates the seconds of JAX's compile events since its creation."""

    EVENTS = (
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",
    )

    def __init__(self):
        self.seconds = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event in self.EVENTS:
            self.seconds += duration

    def time(self, fn):
        """Run ``fn()``; return its wall and compile seconds."""
        start, clock = self.seconds, time.perf_counter()
        fn()
        return Timed(time.perf_counter() - clock, self.seconds - start)


TIMER = CompileTimer()

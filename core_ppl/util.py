"""Process settings the user opts into: never applied by importing core_ppl.

XLA reads its options from the ``XLA_FLAGS`` environment variable once, when
JAX starts its first backend, so these helpers only edit that variable: call
them at the top of a script, before JAX runs anything. Child processes (for
example joblib workers of ``GridSearchCV(n_jobs=2)``) inherit the setting.
"""

from __future__ import annotations

import os
import warnings
from numbers import Integral

__all__ = ["set_small_loop_threshold"]

_EXTRA_OPTIONS_FLAG = "--xla_backend_extra_options="
_SMALL_LOOP_OPTION = "xla_cpu_small_while_loop_byte_threshold"


def set_small_loop_threshold(num_bytes: int = 2**20) -> None:
    """Let XLA compile each small loop on CPU into one function.

    By default XLA's CPU runtime launches every kernel (fused group of
    operations) of a ``lax.while_loop`` body separately, and on small models
    these launches, not the arithmetic, are most of the cost of a NUTS
    transition: a tree leaf of a 10-parameter model is ~35 kernel launches
    around one cheap gradient. XLA compiles a loop whose data, carried state
    included, fits in ``num_bytes`` into a single function instead
    (its CPU backend option ``xla_cpu_small_while_loop_byte_threshold``).

    Measured on a 2-core CPU (``benchmarks/small_models.py`` and
    ``model_selection.py``): NUTS on eight schools sampled ~4x faster and
    compiled ~25% faster; on breast cancer (569 x 30) sampling ran ~1.5x
    faster (a grid search of ``BayesianLogisticRegression``, compile
    included, 1.1-1.4x), and XLA kept one core busy instead of two. Loops over bigger data keep the default
    runtime, whose matrix products are faster on large arrays, hence a
    threshold rather than always on.

    Parameters
    ----------
    num_bytes : int, default=2**20
        Loops whose operands total at most this many bytes are compiled as
        one function; 0 turns the behaviour off.

    Notes
    -----
    This edits ``os.environ["XLA_FLAGS"]``, keeping the other flags there.
    Call it before JAX runs any computation: a backend already started has
    read the old value (a warning says so; new child processes still get
    the new one). It does nothing on GPU.

    Examples
    --------
    >>> import core_ppl.util
    >>> core_ppl.util.set_small_loop_threshold()  # first thing in a script
    """
    if not isinstance(num_bytes, Integral) or isinstance(num_bytes, bool):
        raise TypeError(f"num_bytes must be an int, got {type(num_bytes).__name__}")
    if num_bytes < 0:
        raise ValueError(f"num_bytes must be >= 0, got {num_bytes}")
    flags, extra_options = [], {}
    for flag in os.environ.get("XLA_FLAGS", "").split():
        if flag.startswith(_EXTRA_OPTIONS_FLAG):
            for option in flag[len(_EXTRA_OPTIONS_FLAG) :].split(","):
                key, _, value = option.partition("=")
                if key:
                    extra_options[key] = value
        else:
            flags.append(flag)
    extra_options[_SMALL_LOOP_OPTION] = str(int(num_bytes))
    joined = ",".join(f"{key}={value}" for key, value in extra_options.items())
    os.environ["XLA_FLAGS"] = " ".join([*flags, _EXTRA_OPTIONS_FLAG + joined])
    if _backends_started():
        warnings.warn(
            "JAX has already started its backends, which read XLA_FLAGS at "
            "start-up: set_small_loop_threshold takes effect in new processes "
            "only. Call it before JAX runs any computation.",
            RuntimeWarning,
            stacklevel=2,
        )


def _backends_started() -> bool:
    # Private JAX API, read defensively: without it, assume not started.
    try:
        from jax._src import xla_bridge
    except ImportError:
        return False
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if callable(started) else False

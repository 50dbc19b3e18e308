"""Process settings the user opts into: never applied by importing core_ppl.

:func:`enable_x64` changes JAX's default precision (a ``jax.config`` value),
as NumPyro's function of that name does. The others are XLA options: XLA
reads them from the ``XLA_FLAGS`` environment variable once, when JAX starts
its first backend, so these helpers only edit that variable: call them at the
top of a script, before JAX runs anything. Child processes (for example
joblib workers of ``GridSearchCV(n_jobs=2)``) inherit the setting.
"""

from __future__ import annotations

import os
import warnings
from numbers import Integral

from core_ppl.compile_events import CompileCounter, count_compiles

__all__ = [
    "CompileCounter",
    "clear_cache",
    "count_compiles",
    "enable_x64",
    "set_cache_dir",
    "set_host_device_count",
    "set_platform",
    "set_rng_seed",
    "set_small_loop_threshold",
]

_EXTRA_OPTIONS_FLAG = "--xla_backend_extra_options="
_SMALL_LOOP_OPTION = "xla_cpu_small_while_loop_byte_threshold"
_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count="


def enable_x64(use_x64: bool = True) -> None:
    """Make JAX create 64-bit arrays by default (32-bit with ``use_x64=False``).

    This sets ``jax.config``'s ``jax_enable_x64`` for the whole process, as
    NumPyro's ``enable_x64`` does. Call it at the start of a program: arrays
    made before keep their dtype. For one block of code only, prefer JAX's
    context manager ``jax.enable_x64(True)``.

    Parameters
    ----------
    use_x64 : bool, default=True
        True for 64-bit floats and ints by default. False for 32-bit, unless
        the environment variable ``JAX_ENABLE_X64`` asks for 64 (as in
        NumPyro, the user's environment wins over a library's False).

    Examples
    --------
    >>> import core_ppl
    >>> core_ppl.enable_x64()  # doctest: +SKIP
    """
    import jax

    if not use_x64:
        # Read as JAX reads its boolean environment variables.
        truthy = ("y", "yes", "t", "true", "on", "1")
        use_x64 = os.environ.get("JAX_ENABLE_X64", "").lower() in truthy
    jax.config.update("jax_enable_x64", bool(use_x64))


def set_rng_seed(rng_seed: int) -> None:
    """Seed Python's and NumPy's global random number generators.

    As NumPyro's ``set_rng_seed``: it makes code that draws from ``random``
    or ``numpy.random`` (a data simulation, an initial value) reproducible.
    JAX has no global state: its draws are fixed by the keys passed in.

    Parameters
    ----------
    rng_seed : int
        A seed in ``[0, 2**32)``.

    Examples
    --------
    >>> import numpy as np
    >>> import core_ppl
    >>> core_ppl.util.set_rng_seed(0); a = np.random.normal()
    >>> core_ppl.util.set_rng_seed(0); bool(np.random.normal() == a)
    True
    """
    import random

    import numpy as np

    if isinstance(rng_seed, bool) or not isinstance(rng_seed, Integral):
        raise TypeError(f"set_rng_seed: rng_seed must be an int, got {rng_seed!r}")
    if not 0 <= rng_seed < 2**32:
        raise ValueError(
            f"set_rng_seed: rng_seed must be in [0, 2**32), got {rng_seed}"
        )
    random.seed(int(rng_seed))
    np.random.seed(int(rng_seed))


def set_host_device_count(n: int) -> None:
    """Let XLA present the CPU as ``n`` devices, so that
    ``MCMC(..., chain_method="parallel")`` runs ``n`` chains side by side and
    ``data_devices`` can split the rows over them.

    By default XLA shows all CPU cores as one device. This sets the XLA flag
    ``--xla_force_host_platform_device_count=n`` in ``os.environ["XLA_FLAGS"]``
    (replacing an earlier value, keeping the other flags), as NumPyro's
    ``set_host_device_count`` does. It takes effect only if called before JAX
    starts its backend, at the top of a program (a warning says when it is
    too late); it does not change how many devices a GPU or TPU has.

    Parameters
    ----------
    n : int
        Number of CPU devices, at least 1.

    Examples
    --------
    >>> import core_ppl
    >>> core_ppl.set_host_device_count(4)  # doctest: +SKIP
    """
    if not isinstance(n, Integral) or isinstance(n, bool):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    flags = [
        flag
        for flag in os.environ.get("XLA_FLAGS", "").split()
        if not flag.startswith(_DEVICE_COUNT_FLAG)
    ]
    os.environ["XLA_FLAGS"] = " ".join([_DEVICE_COUNT_FLAG + str(int(n)), *flags])
    _warn_if_started("set_host_device_count")


def set_platform(platform: str | None = None) -> None:
    """Choose the backend JAX computes on: ``"cpu"``, ``"gpu"`` or ``"tpu"``.

    This sets ``jax.config``'s ``jax_platforms`` for the whole process (the
    setting that replaced ``jax_platform_name``, which NumPyro's
    ``set_platform`` sets). Call it at the start of a program, before JAX
    runs anything.

    Parameters
    ----------
    platform : str, optional
        The platform; by default the environment variable
        ``JAX_PLATFORM_NAME``, else ``"cpu"``.

    Examples
    --------
    >>> import core_ppl
    >>> core_ppl.set_platform("cpu")  # doctest: +SKIP
    """
    import jax

    if platform is None:
        platform = os.environ.get("JAX_PLATFORM_NAME", "cpu")
    if not isinstance(platform, str):
        raise TypeError(f"platform must be a str, got {type(platform).__name__}")
    jax.config.update("jax_platforms", platform)


def set_small_loop_threshold(num_bytes: int = 2**20) -> None:
    """Let XLA compile each small loop on CPU into one function.

    By default XLA's CPU runtime launches every kernel (fused group of
    operations) of a ``lax.while_loop`` body separately, and on small models
    these launches, not the arithmetic, are most of the cost of a NUTS
    transition: a tree leaf of a 10-parameter model is ~35 kernel launches
    around one cheap gradient. XLA compiles a loop whose data, carried state
    included, fits in ``num_bytes`` into a single function instead
    (its CPU backend option ``xla_cpu_small_while_loop_byte_threshold``).

    Small models then sample several times faster and compile faster, and
    XLA keeps one core busy instead of two (``benchmarks/small_models.py``
    and ``model_selection.py`` measure it; the README records the figures).
    Loops over bigger data keep the default runtime, whose matrix products
    are faster on large arrays, hence a threshold rather than always on.

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
    >>> core_ppl.util.set_small_loop_threshold()  # doctest: +SKIP
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
    _warn_if_started("set_small_loop_threshold")


def set_cache_dir(path, *, max_bytes: int | None = None) -> None:
    """Keep core_ppl's compiled programs in ``path``, or nowhere with None.

    By default the cache lives in ``CORE_PPL_CACHE_DIR`` when that variable
    is set (``off`` disables it), else in ``$XDG_CACHE_HOME/core_ppl`` or
    ``~/.cache/core_ppl``; this overrides both for the rest of the process
    (child processes follow the environment variable). The directory is
    created private to the user; one owned by someone else or writable by
    group or others is refused with a warning. Only core_ppl's own programs
    are cached: JAX's settings are unchanged. See :mod:`core_ppl.cache`.

    Parameters
    ----------
    path : str, path-like or None
        The directory; None disables the cache.
    max_bytes : int, optional
        Size bound of the directory; the least recently used programs are
        removed beyond it. Default: unchanged (1 GiB at start).

    Examples
    --------
    >>> import core_ppl.util
    >>> core_ppl.util.set_cache_dir(None)  # compile in every process  # doctest: +SKIP
    """
    from core_ppl import cache

    cache.set_dir(path, max_bytes)


def clear_cache() -> None:
    """Remove every compiled program from the cache directory in use.

    Programs already loaded in this process keep running; later processes
    compile them again.

    Examples
    --------
    >>> import core_ppl.util
    >>> core_ppl.util.clear_cache()  # doctest: +SKIP
    """
    from core_ppl import cache

    cache.clear()


def _warn_if_started(name: str) -> None:
    if _backends_started():
        warnings.warn(
            "JAX has already started its backends, which read XLA_FLAGS at "
            f"start-up: {name} takes effect in new processes only. Call it "
            "before JAX runs any computation.",
            RuntimeWarning,
            stacklevel=3,
        )


def _backends_started() -> bool:
    # Private JAX API, read defensively: without it, assume not started.
    try:
        from jax._src import xla_bridge
    except ImportError:
        return False
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if callable(started) else False

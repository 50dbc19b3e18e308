"""``jit``: ``jax.jit`` with the XLA options core_ppl compiles its programs with.

On CPU, XLA generates each fused kernel either with its newer MLIR "fusion
emitters" (the default) or with its older LLVM IR emitters
(``xla_cpu_use_fusion_emitters=False``). A NUTS run with warmup is a few
hundred small kernels; the older emitters compile them much faster and the
code they produce runs as fast, so core_ppl uses them.

Programs whose array arguments are small (at most ``SMALL_PROGRAM_BYTES``)
also compile with LLVM optimisation level 2 instead of XLA's 3. Their runs
are bound by kernel launches, not arithmetic, so the extra optimisation buys
nothing there, while the compile, most of a first fit, takes about half as
long. With large data the arithmetic dominates and level 3 pays, hence the
threshold; 256 KiB keeps data the size of breast cancer (569 x 30, padded
to 640 rows) on the small side. ``benchmarks/first_fit.py`` and
``benchmarks/small_models.py`` measure both choices; the README records the
figures.

Programs that run a model whose log density loops (``lax.scan`` loops of
at least ``MODEL_LOOP_STEPS`` steps in all, forward and backward: a hidden
Markov model's forward algorithm, a state-space model) are different: the
model's loop body runs hundreds of times per gradient, and it is what the
run costs. They also compile with XLA's copy insertion using region
analysis: without it XLA copies loop-carried values in every iteration, a
good part of a loop over a few numbers per step. On the benchmark HMM
(``benchmarks/paper_table.py``, a 500-step scan) a NUTS leapfrog step then
costs 0.93x of what it costs without (one process, 9 alternating runs),
level with NumPyro's, and compiles as fast. (XLA's newer emitters on top
gave another 2-3% on that model for a 20% longer compile.) Region analysis
makes our NUTS leaf loop about 1 microsecond slower (its per-level U-turn
buffers are then updated in place), so programs without such a loop do
without it. A model's code runs under :func:`model_scope`
(``core_ppl.handlers.trace`` does it), which is how its loops are told
apart from the samplers' own in the traced program.

These are per-program compile options, so they are set on our programs
only, never process-wide: importing core_ppl changes no JAX setting, and a
user's own ``jax.jit`` compiles as before. They are used when JAX computes
on CPU and the installed XLA knows them; elsewhere programs compile with
XLA's defaults.

Top-level programs also go through the on-disk cache of :mod:`core_ppl.cache`
(when it is on): a program another process has compiled is loaded instead of
compiled. The call is then traced and lowered as before (the lowered text is
the cache key), and only XLA's compilation is skipped.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable

import jax

from core_ppl import cache

__all__ = [
    "CPU_COMPILER_OPTIONS",
    "LOOP_PROGRAM_CPU_COMPILER_OPTIONS",
    "MODEL_LOOP_STEPS",
    "SMALL_PROGRAM_BYTES",
    "SMALL_PROGRAM_CPU_COMPILER_OPTIONS",
    "compiler_options",
    "jit",
    "model_loop_steps",
    "model_scope",
]

CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
SMALL_PROGRAM_CPU_COMPILER_OPTIONS = {
    **CPU_COMPILER_OPTIONS,
    "xla_backend_optimization_level": 2,
}
SMALL_PROGRAM_BYTES = 2**18
LOOP_PROGRAM_CPU_COMPILER_OPTIONS = {
    "xla_cpu_copy_insertion_use_region_analysis": True
}
# About 1 microsecond lost per NUTS leaf (region analysis) against ~10
# nanoseconds saved per loop step (the HMM of benchmarks/paper_table.py):
# break-even near a hundred steps each way.
MODEL_LOOP_STEPS = 256
_MODEL_SCOPE = "core_ppl_model"

# Guards the first call of compiler_options and each _Jitted's tables (the
# top-level jits, the compiled programs, the locks of programs compiling):
# fits run in threads (GridSearchCV under joblib's threading backend) must
# share one jax.jit per size class and one executable per signature, or each
# would compile the same program again.
_LOCK = threading.RLock()
_STATIC_KWARGS = frozenset({"static_argnums", "static_argnames"})


@functools.cache
def compiler_options(small: bool = False, loops: bool = False) -> dict | None:
    """The options core_ppl's programs compile with in this process, for
    programs with ``small`` array arguments or not, running a model that
    ``loops`` or not: the CPU options on a CPU backend whose XLA accepts
    them, else None (XLA's defaults). Decided at the first compile, once JAX
    has chosen a backend."""
    if jax.default_backend() != "cpu":
        return None
    options = SMALL_PROGRAM_CPU_COMPILER_OPTIONS if small else CPU_COMPILER_OPTIONS
    if loops:
        options = {**options, **LOOP_PROGRAM_CPU_COMPILER_OPTIONS}
    try:  # a trivial program: an XLA without an option refuses its name
        jax.jit(lambda: 0).lower().compile(compiler_options=options)
    except (RuntimeError, TypeError):  # JaxRuntimeError; a jit without the argument
        return compiler_options(small) if loops else None
    return options


def model_scope():
    """A context in which a model's code runs, so that :func:`jit` can find
    the model's loops in a traced program (see the module docstring)."""
    return jax.named_scope(_MODEL_SCOPE)


def model_loop_steps(jaxpr) -> int:
    """Total length of the ``scan`` loops that a (closed) jaxpr runs inside
    :func:`model_scope`, counting a loop's derivative (its transpose) too."""
    steps = 0
    for eqn in getattr(jaxpr, "jaxpr", jaxpr).eqns:
        if eqn.primitive.name == "scan" and _MODEL_SCOPE in str(
            eqn.source_info.name_stack
        ):
            steps += int(eqn.params["length"])
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    steps += model_loop_steps(sub)
    return steps


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

    A top-level call runs an executable of this object's own table, keyed
    by the call's signature (static arguments, tree structure and types of
    the others). At its first call the program is traced, its model loops
    counted (:func:`model_loop_steps`) to choose the options, and it is
    compiled, or loaded from the on-disk cache when that is on, by
    :func:`_load_or_compile`.
    """

    def __init__(self, fun: Callable, jit_kwargs: dict):
        functools.update_wrapper(self, fun)
        self._jit_kwargs = jit_kwargs
        self._nested = jax.jit(fun, **jit_kwargs)
        self._top_level = {}  # small (bool) -> jax.jit
        self._static = _static_arguments(fun, jit_kwargs)
        self._compiled = {}  # signature -> jax.stages.Compiled
        self._compiling = {}  # signature -> lock held while it compiles

    def _size_class(self, leaves) -> bool | None:
        """True for small array arguments, False for large, None if traced."""
        if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return None
        return sum(getattr(leaf, "nbytes", 0) for leaf in leaves) <= SMALL_PROGRAM_BYTES

    def _jitted_for(self, small):
        if small is None:
            return self._nested
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
        small = self._size_class(jax.tree.leaves((args, kwargs)))
        jitted = self._jitted_for(small)
        if small is None or self._static is None or not _is_explicit_context():
            return jitted(*args, **kwargs)
        dynamic_args, dynamic_kwargs, static = _split(self._static, args, kwargs)
        try:
            signature = _signature(static, (dynamic_args, dynamic_kwargs))
            compiled = self._compiled.get(signature)
        except TypeError:  # not an array, an unhashable static: jax.jit says so
            signature = None
        if signature is None:  # also arrays on another device than the default
            return jitted(*args, **kwargs)
        if compiled is None:
            compiled = self._compile_once(signature, small, args, kwargs)
        return compiled(*dynamic_args, **dynamic_kwargs)

    def _compile_once(self, signature, small, args, kwargs):
        """The executable of ``signature``, made by one thread while others
        calling with the same signature wait for it."""
        with _LOCK:
            lock = self._compiling.setdefault(signature, threading.Lock())
        try:
            with lock:
                compiled = self._compiled.get(signature)
                if compiled is None:
                    # Traced and lowered without options, which are then
                    # given in full to the compile (JAX would add a jit's
                    # own options to those).
                    traced = self._nested.trace(*args, **kwargs)
                    loops = model_loop_steps(traced.jaxpr) >= MODEL_LOOP_STEPS
                    compiled = _load_or_compile(
                        traced.lower(), compiler_options(small, loops)
                    )
                    with _LOCK:
                        self._compiled[signature] = compiled
        finally:  # also when tracing fails: the next call tries again
            with _LOCK:
                self._compiling.pop(signature, None)
        return compiled

    def lower(self, *args, **kwargs):
        """``lower`` of the ``jax.jit`` these arguments are compiled with."""
        small = self._size_class(jax.tree.leaves((args, kwargs)))
        return self._jitted_for(small).lower(*args, **kwargs)

    def _cache_size(self) -> int:
        """Programs compiled (or loaded) so far, over all size classes."""
        with _LOCK:
            top_level = tuple(self._top_level.values())
            own = len(self._compiled)
        jitted = {id(j): j for j in (self._nested, *top_level)}
        return own + sum(j._cache_size() for j in jitted.values())


# --- explicit compiles: when, and which program a call selects -----------------------


def _is_explicit_context() -> bool:
    """No context asks ``jax.jit`` for something else: eager execution
    (``jax.disable_jit``) or another default device."""
    return not jax.config.jax_disable_jit and jax.config.jax_default_device is None


def _static_arguments(fun, jit_kwargs):
    """``(positions, names)`` of the static arguments, each static argument
    known both ways as ``jax.jit`` resolves them; None when other ``jax.jit``
    options are used (the cache then stays out of the way)."""
    if not set(jit_kwargs) <= _STATIC_KWARGS:
        return None
    nums = jit_kwargs.get("static_argnums", ())
    names = jit_kwargs.get("static_argnames", ())
    nums = {nums} if isinstance(nums, int) else set(nums)
    names = {names} if isinstance(names, str) else set(names)
    try:
        parameters = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    for i, parameter in enumerate(parameters):
        positional = parameter.kind in (
            parameter.POSITIONAL_ONLY,
            parameter.POSITIONAL_OR_KEYWORD,
        )
        if positional and parameter.name in names:
            nums.add(i)
        if positional and i in nums and parameter.kind != parameter.POSITIONAL_ONLY:
            names.add(parameter.name)
    return frozenset(nums), frozenset(names)


def _split(static_arguments, args, kwargs):
    """``(dynamic args, dynamic kwargs, static values)`` of a call: a compiled
    program takes its dynamic arguments only."""
    nums, names = static_arguments
    dynamic_args = tuple(a for i, a in enumerate(args) if i not in nums)
    dynamic_kwargs = {k: v for k, v in kwargs.items() if k not in names}
    static = (
        tuple((i, a) for i, a in enumerate(args) if i in nums),
        tuple(sorted((k, v) for k, v in kwargs.items() if k in names)),
    )
    return dynamic_args, dynamic_kwargs, static


def _signature(static, dynamic):
    """What selects a program, as ``jax.jit`` selects it: the static values,
    the tree structure and the types of the array leaves, and the precision
    in force. None when a leaf lives on another device than the default one
    (such calls go to ``jax.jit``, which places the program there)."""
    leaves, treedef = jax.tree.flatten(dynamic)
    default_device = jax.devices()[0]
    for leaf in leaves:
        sharding = getattr(leaf, "sharding", None)
        if sharding is not None and sharding.device_set != {default_device}:
            return None
    types = tuple(jax.typeof(leaf) for leaf in leaves)
    return static, treedef, types, bool(jax.config.jax_enable_x64)


# --- the on-disk cache ---------------------------------------------------------------


def _has_host_callbacks(lowered, text) -> bool:
    # JAX records a program's host callbacks on its lowering (private, read
    # defensively); their executables hold pointers into this process.
    compile_args = getattr(getattr(lowered, "_lowering", None), "compile_args", None)
    if isinstance(compile_args, dict) and "host_callbacks" in compile_args:
        return bool(compile_args["host_callbacks"])
    return "callback" in text


def _load_or_compile(lowered, options):
    """The executable of ``lowered`` compiled with ``options``: loaded from
    the on-disk cache, or compiled and stored there (only compiled when the
    cache is off)."""
    from jax.experimental import serialize_executable

    if cache.cache_dir() is None:
        return lowered.compile(compiler_options=options)
    text = lowered.as_text()
    if _has_host_callbacks(lowered, text):
        return lowered.compile(compiler_options=options)
    # The lowered text omits arguments the program does not use, but the
    # executable still takes them: their structure, shapes and dtypes belong
    # in the key too, or two calls differing only there would share it.
    signature = jax.tree.map(
        lambda arg: (arg.shape, str(arg.dtype)), lowered.args_info
    )
    key = cache.program_key(f"{text}\n{lowered.in_tree}\n{signature}", options)
    body = cache.load(key)
    if body is not None:
        try:
            return serialize_executable.deserialize_and_load(
                body, lowered.in_tree, lowered.out_tree
            )
        except Exception:  # noqa: BLE001 - written by another JAX: recompile it
            pass
    compiled = lowered.compile(compiler_options=options)
    try:
        body, _, _ = serialize_executable.serialize(compiled)
    except Exception:  # noqa: BLE001 - not serialisable here (backend, constants)
        return compiled
    cache.store(key, body)
    return compiled


def jit(fun: Callable, /, **jit_kwargs) -> Callable:
    """``jax.jit(fun, **jit_kwargs)``, compiled with :func:`compiler_options`
    when called at the top level (with no traced argument).

    Use it as ``jax.jit`` is used, directly or as a decorator through
    ``functools.partial(jit, static_argnames=...)``.
    """
    return _Jitted(fun, jit_kwargs)

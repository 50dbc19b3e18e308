"""An on-disk cache of core_ppl's compiled programs, shared between processes.

Compiling is most of a first fit's time (a NUTS run with warmup is ~200
kernels), and every new process (a notebook restart, a joblib worker, an
unpickled estimator) would pay it again. :mod:`core_ppl.jit` therefore keeps
the executables of its top-level programs here, one file per program, and a
later process loads the executable instead of compiling it.

Mechanism: the executable of a program JAX has lowered is serialised with
``jax.experimental.serialize_executable``; the file name is a hash of
everything the executable depends on: the lowered program's text, the JAX
and jaxlib versions, the backend, device kind and CPU, the compile options
and ``XLA_FLAGS``. JAX's own persistent compilation cache would also do, but
it is switched on with process-wide ``jax.config`` settings, which would
cache every program of the user's as well: this cache is scoped to the
programs compiled through :func:`core_ppl.jit.jit` and changes no JAX
setting.

Location: ``CORE_PPL_CACHE_DIR`` when set (``off`` disables the cache), else
``$XDG_CACHE_HOME/core_ppl`` or ``~/.cache/core_ppl``;
:func:`core_ppl.util.set_cache_dir` overrides both in a process.

Safety: loading an executable runs code, so only a directory private to the
user is used. It is created with mode 0o700; one owned by another user or
writable by group or others is refused with a warning (once), and programs
then compile as without a cache. Entries are written to a temporary file in
the same directory and renamed (atomic on POSIX and Windows), so a reader
never sees a partial entry. Each entry starts with a magic string and the
SHA-256 of its body, so a truncated or corrupt file is detected, ignored and
rewritten; one the installed JAX cannot load likewise. The directory is
bounded (:data:`DEFAULT_MAX_BYTES`): after each write the least recently used
entries (by modification time, which each hit refreshes) are removed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import tempfile
import threading
import time
import warnings
from pathlib import Path

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENV_VAR",
    "cache_dir",
    "clear",
    "load",
    "program_key",
    "set_dir",
    "store",
]

ENV_VAR = "CORE_PPL_CACHE_DIR"
DEFAULT_MAX_BYTES = 2**30
_DISABLED = "off"
_SUFFIX = ".exe"
_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 3600.0  # a temporary file this old was left by a crashed writer
# Bump when the entry layout or the key's contents change.
_MAGIC = b"core_ppl-executable-v1\n"
_DIGEST_BYTES = 32

_LOCK = threading.RLock()  # guards the settings and the tables below
_UNSET = object()
_settings = {"dir": _UNSET, "max_bytes": DEFAULT_MAX_BYTES}
_checked: dict = {}  # directory -> usable (bool), decided once per process
_environment: list = []  # the key's environment part, computed once


# --- where --------------------------------------------------------------------------


def _default_dir() -> Path | None:
    value = os.environ.get(ENV_VAR)
    if value is not None and value.strip():
        return None if value.strip().lower() == _DISABLED else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "core_ppl"


def set_dir(path, max_bytes: int | None = None) -> None:
    """Use ``path`` (None: no cache) instead of the environment's choice, and
    keep at most ``max_bytes`` there. See :func:`core_ppl.util.set_cache_dir`."""
    if path is not None and not isinstance(path, (str, os.PathLike)):
        kind = type(path).__name__
        raise TypeError(f"path must be a str, a path or None, got {kind}")
    if max_bytes is not None:
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool):
            raise TypeError(
                f"max_bytes must be an int, got {type(max_bytes).__name__}"
            )
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    with _LOCK:
        _settings["dir"] = None if path is None else Path(path).expanduser()
        if max_bytes is not None:
            _settings["max_bytes"] = max_bytes


def _current_uid():
    """The user the directory must belong to (None where there are no uids)."""
    return os.getuid() if hasattr(os, "getuid") else None


def _refusal(path: Path) -> str | None:
    """Why ``path`` must not hold executables, or None when it may."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as error:
        return f"it cannot be created or read ({error})"
    uid = _current_uid()
    if uid is not None and info.st_uid != uid:
        return f"it is owned by another user (uid {info.st_uid})"
    if os.name == "posix" and info.st_mode & 0o022:
        return f"it is writable by group or others (mode {oct(info.st_mode & 0o777)})"
    return None


def cache_dir() -> Path | None:
    """The directory in use, or None when the cache is off or refused."""
    with _LOCK:
        path = _settings["dir"]
        if path is _UNSET:
            path = _default_dir()
        if path is None:
            return None
        usable = _checked.get(path)
        if usable is None:
            reason = _refusal(path)
            usable = reason is None
            _checked[path] = usable
            if not usable:
                warnings.warn(
                    f"core_ppl: not using the compile cache in {path}: {reason}. "
                    "A cached executable is code, so only a directory private to "
                    f"the user is used; set {ENV_VAR} to one (or to 'off').",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return path if usable else None


def clear() -> None:
    """Remove every entry (and stale temporary file) of the cache in use."""
    path = cache_dir()
    if path is None:
        return
    for entry in path.iterdir():
        if entry.name.endswith(_SUFFIX) or entry.name.startswith(_TMP_PREFIX):
            entry.unlink(missing_ok=True)


# --- what ---------------------------------------------------------------------------


def _cpu_fingerprint() -> str:
    """The CPU's features: an executable compiled for one CPU may use
    instructions another lacks (a home directory shared over a cluster)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    flags = line
                    break
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {flags}"


def _environment_key() -> str:
    """Versions, backend, devices and flags, fixed for a process once JAX
    has started its backend (``XLA_FLAGS`` is read then, hence the copy)."""
    with _LOCK:
        if not _environment:
            import jax
            import jaxlib

            device = jax.devices()[0]
            _environment.append(
                "\n".join(
                    (
                        _MAGIC.decode(),
                        f"jax {jax.__version__} jaxlib {jaxlib.__version__}",
                        f"{device.platform} {device.client.platform_version}",
                        f"{device.device_kind} x{jax.device_count()}",
                        _cpu_fingerprint(),
                        os.environ.get("XLA_FLAGS", ""),
                    )
                )
            )
        return _environment[0]


def program_key(program_text: str, compiler_options: dict | None) -> str:
    """The file name of a program: a hash of its lowered text, compile
    options and the environment's part (:func:`_environment_key`)."""
    digest = hashlib.sha256(_environment_key().encode())
    digest.update(repr(sorted((compiler_options or {}).items())).encode())
    digest.update(program_text.encode())
    return digest.hexdigest()


# --- entries ------------------------------------------------------------------------


def load(key: str) -> bytes | None:
    """The body stored under ``key``, or None if absent, truncated or corrupt
    (the caller compiles and stores it again)."""
    path = cache_dir()
    if path is None:
        return None
    entry = path / (key + _SUFFIX)
    try:
        data = entry.read_bytes()
    except OSError:  # absent, or removed by another process meanwhile
        return None
    header = len(_MAGIC) + _DIGEST_BYTES
    body = data[header:]
    digest = data[len(_MAGIC) : header]
    if not data.startswith(_MAGIC) or hashlib.sha256(body).digest() != digest:
        return None
    try:  # a hit: most recently used now
        os.utime(entry)
    except OSError:
        pass
    return body


def store(key: str, body: bytes) -> None:
    """Write ``body`` under ``key`` atomically, then trim the cache to its
    size bound. Failures (a full disk, a removed directory) only warn: the
    program has compiled and runs without the cache."""
    path = cache_dir()
    if path is None:
        return
    data = _MAGIC + hashlib.sha256(body).digest() + body
    try:
        handle, temporary = tempfile.mkstemp(dir=path, prefix=_TMP_PREFIX)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, path / (key + _SUFFIX))
        except BaseException:
            os.unlink(temporary)
            raise
        _trim(path)
    except OSError as error:
        warnings.warn(
            f"core_ppl: could not write to the compile cache in {path}: {error}",
            RuntimeWarning,
            stacklevel=2,
        )


def _trim(path: Path) -> None:
    """Remove least recently used entries until the directory fits its bound,
    and temporary files that crashed writers left behind."""
    with _LOCK:
        max_bytes = _settings["max_bytes"]
    entries, total, now = [], 0, time.time()
    for entry in path.iterdir():
        try:
            info = entry.stat()
        except OSError:  # removed meanwhile by another process
            continue
        if entry.name.startswith(_TMP_PREFIX):
            if now - info.st_mtime > _STALE_TMP_S:
                entry.unlink(missing_ok=True)
        elif entry.name.endswith(_SUFFIX):
            entries.append((info.st_mtime, info.st_size, entry))
            total += info.st_size
    for _, size, entry in sorted(entries, key=lambda e: e[:2]):
        if total <= max_bytes:
            break
        entry.unlink(missing_ok=True)
        total -= size

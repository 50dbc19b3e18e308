"""core_ppl.cache: compiled programs kept on disk and loaded by later processes."""

import json
import os
import subprocess
import sys
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl.jit as core_jit
import core_ppl.util
from core_ppl import cache
from core_ppl.distributions import Normal
from core_ppl.infer import MCMC, NUTS, SVI, Trace_ELBO
from core_ppl.optim import Adam
from core_ppl.primitives import param, sample

# --- helpers ------------------------------------------------------------------------

_COMPILES = []  # fun_name of each XLA compilation in this process


def _count_compile(event, duration, fun_name="", **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES.append(fun_name)


jax.monitoring.register_event_duration_secs_listener(_count_compile)


def _compiles(fn):
    """Run ``fn()``; return its result and the names of the programs XLA
    compiled meanwhile."""
    start = len(_COMPILES)
    result = fn()
    return result, _COMPILES[start:]


def _count(compiled, name):
    """How many of the ``compiled`` programs are ``name`` (JAX names them
    ``jit(name)``)."""
    return sum(f"({name})" in fun_name for fun_name in compiled)


@pytest.fixture
def cache_in(tmp_path):
    """Point the cache at a fresh directory for one test, then restore."""
    with cache._LOCK:
        saved = dict(cache._settings)
    path = tmp_path / "cache"
    core_ppl.util.set_cache_dir(path)
    yield path
    with cache._LOCK:
        cache._settings.update(saved)
        cache._checked.clear()


def _program():
    """A fresh core_ppl.jit of the same function: a new process in miniature
    (an empty in-memory table, the same lowered program)."""

    def cached_polynomial(x, *, power):
        return jnp.sum(x**power + 3.0 * x)

    return core_jit.jit(cached_polynomial, static_argnames="power")


X = jnp.linspace(-1.0, 1.0, 5)
EXPECTED = np.sum(np.asarray(X) ** 3 + 3.0 * np.asarray(X))


def _entries(path):
    return sorted(path.glob("*.exe"))


def _is_whole(entry):
    data = entry.read_bytes()
    header = len(cache._MAGIC) + cache._DIGEST_BYTES
    digest = cache.hashlib.sha256(data[header:]).digest()
    return data.startswith(cache._MAGIC) and data[len(cache._MAGIC) : header] == digest


# --- load instead of compile ---------------------------------------------------------


def _jax_settings():
    return {name: str(value) for name, value in jax.config.values.items()}


def test_a_stored_program_is_loaded_without_compiling(cache_in):
    settings = _jax_settings()
    value, compiled = _compiles(lambda: _program()(X, power=3))
    np.testing.assert_allclose(value, EXPECTED, rtol=1e-6)
    assert _count(compiled, "cached_polynomial") == 1
    assert len(_entries(cache_in)) == 1
    value, compiled = _compiles(lambda: _program()(X, power=3))
    np.testing.assert_allclose(value, EXPECTED, rtol=1e-6)
    assert _count(compiled, "cached_polynomial") == 0
    # Another static value or shape is another program, compiled and stored.
    program = _program()
    value, compiled = _compiles(lambda: program(X, power=2))
    np.testing.assert_allclose(value, np.sum(np.asarray(X) ** 2 + 3.0 * np.asarray(X)))
    assert _count(compiled, "cached_polynomial") == 1
    _compiles(lambda: program(jnp.ones(7), power=2))
    assert len(_entries(cache_in)) == 3
    assert program._cache_size() == 2
    core_ppl.util.clear_cache()
    assert _entries(cache_in) == []
    assert _jax_settings() == settings  # scoped to our programs


def test_arguments_the_program_ignores_are_part_of_the_key(cache_in):
    """XLA's lowered text drops unused arguments, yet the executable takes
    them: two calls differing only there must not share a cached program."""

    @core_jit.jit
    def add_one(x, unused):
        return x + 1.0

    first = add_one(jnp.zeros(3), {"a": jnp.zeros(())})
    second = add_one(jnp.zeros(3), {"b": jnp.zeros(2)})
    np.testing.assert_array_equal(first, second)
    assert len(_entries(cache_in)) == 2


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "empty", "incompatible"])
def test_a_damaged_entry_is_ignored_and_rewritten(cache_in, damage):
    _program()(X, power=3)
    (entry,) = _entries(cache_in)
    data = entry.read_bytes()
    header = len(cache._MAGIC) + cache._DIGEST_BYTES
    if damage == "corrupt":  # one flipped byte in the executable
        middle = (header + len(data)) // 2
        data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = b""
    else:  # a well-formed entry that no JAX can load
        body = b"not an executable"
        data = cache._MAGIC + cache.hashlib.sha256(body).digest() + body
    entry.write_bytes(data)
    value, compiled = _compiles(lambda: _program()(X, power=3))
    np.testing.assert_allclose(value, EXPECTED, rtol=1e-6)
    assert _count(compiled, "cached_polynomial") == 1
    # Rewritten whole: the next "process" loads it.
    assert entry.read_bytes() != data
    value, compiled = _compiles(lambda: _program()(X, power=3))
    np.testing.assert_allclose(value, EXPECTED, rtol=1e-6)
    assert _count(compiled, "cached_polynomial") == 0


def test_threads_compile_a_program_once(cache_in):
    program, results = _program(), []
    barrier = threading.Barrier(4)

    def call():
        barrier.wait()
        results.append(program(X, power=3))

    threads = [threading.Thread(target=call) for _ in range(4)]

    def run_all():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    _, compiled = _compiles(run_all)
    assert _count(compiled, "cached_polynomial") == 1
    assert len(results) == 4
    for result in results:
        np.testing.assert_allclose(result, EXPECTED, rtol=1e-6)


def test_least_recently_used_entries_go_first(cache_in):
    program = _program()
    for size in (3, 4, 5):
        program(jnp.ones(size), power=3)
    entries = _entries(cache_in)
    assert len(entries) == 3
    for age, entry in enumerate(entries):  # distinct, known use times
        os.utime(entry, (1e9 + age, 1e9 + age))
    oldest, middle, newest = entries
    size = max(e.stat().st_size for e in entries)
    core_ppl.util.set_cache_dir(cache_in, max_bytes=3 * size)
    assert cache.load(oldest.stem) is not None  # a hit makes it the newest
    _program()(jnp.ones(6), power=3)  # a fourth entry: one must go
    remaining = set(_entries(cache_in))
    # Least recently used first: middle, then newest; the entry just hit
    # stays. (The executables differ a little in size, so one or two go.)
    assert middle not in remaining and oldest in remaining
    assert sum(e.stat().st_size for e in remaining) <= 3 * size
    with pytest.raises(ValueError, match="max_bytes"):
        core_ppl.util.set_cache_dir(cache_in, max_bytes=-1)
    with pytest.raises(TypeError, match="path"):
        core_ppl.util.set_cache_dir(3)


# --- where the cache may live ---------------------------------------------------------


def _refused(path, match):
    """The program runs, uncached, and the refusal is warned about once."""
    with pytest.warns(RuntimeWarning, match=match):
        value = _program()(X, power=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = _program()(X, power=3)
    np.testing.assert_allclose(value, EXPECTED, rtol=1e-6)
    np.testing.assert_allclose(again, EXPECTED, rtol=1e-6)
    assert cache.cache_dir() is None
    assert _entries(path) == []


def test_a_group_writable_directory_is_refused(cache_in):
    cache_in.mkdir(mode=0o700)
    os.chmod(cache_in, 0o770)
    _refused(cache_in, "writable by group or others")


def test_a_directory_of_another_user_is_refused(cache_in, monkeypatch):
    cache_in.mkdir(mode=0o700)
    if hasattr(os, "getuid") and os.getuid() == 0:
        os.chown(cache_in, 65534, 65534)  # nobody
    else:
        monkeypatch.setattr(cache, "_current_uid", lambda: os.getuid() + 1)
    _refused(cache_in, "owned by another user")


def test_a_new_directory_is_private(cache_in):
    _program()(X, power=3)
    assert cache_in.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("how", ["env", "function"])
def test_the_cache_can_be_disabled(cache_in, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv(cache.ENV_VAR, "off")
        with cache._LOCK:
            cache._settings["dir"] = cache._UNSET
    else:
        core_ppl.util.set_cache_dir(None)
    assert cache.cache_dir() is None
    value, compiled = _compiles(lambda: _program()(X, power=3))
    np.testing.assert_allclose(value, EXPECTED, rtol=1e-6)
    assert _count(compiled, "cached_polynomial") == 1
    assert not cache_in.exists()


def test_default_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "chosen"))
    assert cache._default_dir() == tmp_path / "chosen"
    monkeypatch.delenv(cache.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache._default_dir() == tmp_path / "xdg" / "core_ppl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache._default_dir() == tmp_path / "home" / ".cache" / "core_ppl"


# --- programs of the samplers -------------------------------------------------------


def _normal_model(y=None):
    mu = sample("mu", Normal(0.0, 10.0))
    sample("y", Normal(mu, 1.0), obs=y)


def _normal_guide(y=None):
    sample("mu", Normal(param("loc", 0.0), 1.0))


Y = jnp.array([0.3, -0.2, 1.1, 0.4])


def test_progress_bar_is_a_separate_program_with_the_same_draws(cache_in, capsys):
    # Only programs without a bar have no host callback, hence are stored:
    # the bar adds a program variant and no entry.
    draws = {}
    for bar in (False, True):
        mcmc = MCMC(
            NUTS(_normal_model), num_warmup=30, num_samples=30, progress_bar=bar
        )
        mcmc.run(jax.random.PRNGKey(3), Y)
        draws[bar] = np.asarray(mcmc.get_samples()["mu"])
        if not bar:
            stored = len(_entries(cache_in))
    np.testing.assert_array_equal(draws[True], draws[False])
    assert stored >= 1 and len(_entries(cache_in)) == stored
    svi, losses = SVI(_normal_model, _normal_guide, Adam(0.1), Trace_ELBO()), {}
    for bar in (False, True):
        losses[bar] = svi.run(jax.random.PRNGKey(4), 20, Y, progress_bar=bar).losses
        if not bar:
            stored = len(_entries(cache_in))
    np.testing.assert_array_equal(losses[True], losses[False])
    assert len(_entries(cache_in)) == stored
    assert "20/20" in capsys.readouterr().err


_FIT = """
import json, sys
import jax
import numpy as np

compiled = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, fun_name="", **kw: compiled.append(fun_name)
    if event == "/jax/core/compile/backend_compile_duration" else None
)
from bayes_sklearn import BayesianLogisticRegression

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))
y = (X @ np.array([1.0, -1.0, 0.5]) + rng.normal(size=40) > 0).astype(int)
model = BayesianLogisticRegression(n_warmup=40, n_draws=40, n_chains=1, random_state=0)
model.fit(X, y)
print(json.dumps({"coef": model.coef_.tolist(), "compiled": compiled}))
"""


def _fit_processes(path, n):
    """Fit in ``n`` new processes started together on the cache ``path``."""
    env = {**os.environ, cache.ENV_VAR: str(path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _FIT], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * n
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def test_processes_share_the_sampler_program(tmp_path):
    path = tmp_path / "cache"
    # Two processes fill an empty cache at once: both write the same entry,
    # atomically, so neither reads a partial file.
    first = _fit_processes(path, 2)
    for run in first:
        assert _count(run["compiled"], "_run_chains") == 1
    entries = _entries(path)
    assert entries and all(_is_whole(entry) for entry in entries)
    assert not list(path.glob(cache._TMP_PREFIX + "*"))
    # A later process loads the sampler instead of compiling it, and draws
    # the same numbers.
    (later,) = _fit_processes(path, 1)
    assert _count(later["compiled"], "_run_chains") == 0
    for run in first:
        np.testing.assert_array_equal(run["coef"], later["coef"])


def test_errors_are_those_of_jax_jit(cache_in):
    with pytest.raises((TypeError, ValueError), match="hashable"):
        _program()(X, power=[3])  # static arguments must be hashable
    program = _program()
    with pytest.raises(TypeError):
        program("not an array", power=3)
    np.testing.assert_allclose(program(X, power=3), EXPECTED, rtol=1e-6)


def test_contexts_that_change_jax_jit_bypass_the_cache(cache_in):
    with jax.disable_jit():  # eager, op by op: nothing compiled or stored
        value, compiled = _compiles(lambda: _program()(X, power=3))
    assert _count(compiled, "cached_polynomial") == 0
    with jax.default_device(jax.devices()[0]):
        again = _program()(X, power=3)
    for result in (value, again):
        np.testing.assert_allclose(result, EXPECTED, rtol=1e-6)
    assert _entries(cache_in) == []

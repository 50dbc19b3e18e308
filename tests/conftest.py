"""Shared test configuration.

Float64 is enabled per test where a test needs it (``with jax.enable_x64(True)``)
rather than globally, so the suite also exercises the float32 default that users
get; importing the packages never changes JAX's configuration.

The on-disk cache of compiled programs (``core_ppl.cache``) points to a temporary
directory for the whole session, set in the environment before any test runs so
that processes the tests start use it too: the suite never reads or fills the
user's own cache.
"""

import os
import shutil
import tempfile

import jax
import pytest

_CACHE_DIR = tempfile.mkdtemp(prefix="core_ppl-test-cache-")
os.environ["CORE_PPL_CACHE_DIR"] = _CACHE_DIR


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)


@pytest.fixture
def x64():
    """Run a test in float64."""
    with jax.enable_x64(True):
        yield

"""Shared test configuration.

Float64 is enabled per test where a test needs it (``with jax.enable_x64(True)``)
rather than globally, so the suite also exercises the float32 default that users
get; importing the packages never changes JAX's configuration. The compile
cache's temporary directory is set up in the repository's top-level
``conftest.py``, so that doctests use it too.
"""

import jax
import pytest


@pytest.fixture
def x64():
    """Run a test in float64."""
    with jax.enable_x64(True):
        yield

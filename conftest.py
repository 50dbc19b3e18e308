"""Configuration for every test and doctest of the repository.

The on-disk cache of compiled programs (``core_ppl.cache``) points to a
temporary directory for the whole session, set in the environment before any
test runs so that processes the tests start use it too: neither the tests nor
the packages' doctests read or fill the user's own cache.
"""

import os
import shutil
import tempfile

_CACHE_DIR = tempfile.mkdtemp(prefix="core_ppl-test-cache-")
os.environ["CORE_PPL_CACHE_DIR"] = _CACHE_DIR


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)

"""The top level of core_ppl: what ``import core_ppl`` gives (and leaves
alone), and the process settings a user opts into, each checked in a fresh
interpreter because they act on the whole process."""

import json
import os
import subprocess
import sys

import pytest

import core_ppl
from core_ppl import util


def _run(code, **env):
    """Run ``code`` in a fresh interpreter and return what it prints last."""
    environ = {**os.environ, **env}
    environ.setdefault("JAX_PLATFORMS", "cpu")
    result = subprocess.run([sys.executable, "-c", code], check=True, env=environ,
                            capture_output=True, text=True)
    return result.stdout.strip().splitlines()[-1]


def test_import_alone_exposes_submodules_and_changes_no_jax_state():
    code = """
import json, jax
before = {k: str(v) for k, v in jax.config.values.items()}
import core_ppl
from jax._src import xla_bridge
changed = [k for k, v in jax.config.values.items() if str(v) != before.get(k)]
names = [core_ppl.distributions.Normal, core_ppl.infer.MCMC, core_ppl.infer.NUTS,
         core_ppl.optim.Adam, core_ppl.handlers.seed, core_ppl.diagnostics.summary]
print(json.dumps({"started": xla_bridge.backends_are_initialized(),
                  "changed": changed, "names": len(names)}))
"""
    assert json.loads(_run(code)) == {"started": False, "changed": [], "names": 6}


def test_top_level_names():
    for name in ("subsample", "plate_stack", "enable_x64", "set_host_device_count",
                 "set_platform", "enable_validation", "validation_enabled"):
        assert name in core_ppl.__all__ and callable(getattr(core_ppl, name))
    assert core_ppl.enable_x64 is util.enable_x64


def test_enable_x64_switches_the_default_precision_of_the_process():
    code = """
import core_ppl, jax.numpy as jnp
core_ppl.enable_x64()
wide = str(jnp.zeros(1).dtype)
core_ppl.enable_x64(False)
print(wide, jnp.zeros(1).dtype)
"""
    assert _run(code, JAX_ENABLE_X64="0") == "float64 float32"
    # The user's environment wins over use_x64=False.
    assert _run(code, JAX_ENABLE_X64="1") == "float64 float64"


def test_set_host_device_count_gives_that_many_cpu_devices():
    code = """
import os, core_ppl, jax
core_ppl.set_host_device_count(3)
core_ppl.set_host_device_count(4)  # replaces the earlier value
print(jax.device_count(), os.environ["XLA_FLAGS"])
"""
    other = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0"
    count, flags = _run(code, XLA_FLAGS=other).split(" ", 1)
    assert count == "4"
    assert flags.split() == ["--xla_force_host_platform_device_count=4", other]


def test_set_host_device_count_rejects_bad_counts():
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        core_ppl.set_host_device_count(0)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        core_ppl.set_host_device_count(2.0)


def test_set_platform_chooses_the_backend():
    code = """
import core_ppl, jax
core_ppl.set_platform("cpu")
print(jax.config.jax_platforms, jax.devices()[0].platform)
"""
    # Start with no platform chosen, so only set_platform can give "cpu".
    assert _run(code, JAX_PLATFORMS="") == "cpu cpu"


def test_enable_validation_sets_the_default_of_validate_args():
    import core_ppl.distributions as dist

    dist.Normal(0.0, -1.0)  # not validated by default
    with core_ppl.validation_enabled():
        with pytest.raises(ValueError, match="'scale'"):
            dist.Normal(0.0, -1.0)
        dist.Normal(0.0, -1.0, validate_args=False)  # an explicit False wins
        with pytest.raises(ValueError, match="outside the support"):
            dist.Exponential(1.0).log_prob(-1.0)
    dist.Normal(0.0, -1.0)  # the previous default is back
    try:
        core_ppl.enable_validation()
        with pytest.raises(ValueError, match="'rate'"):
            dist.Poisson(-2.0)
    finally:
        core_ppl.enable_validation(False)

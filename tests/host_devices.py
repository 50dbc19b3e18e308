"""Run a script in a child process that sees several CPU devices.

XLA reads ``--xla_force_host_platform_device_count`` once, when its CPU
backend starts, so tests of sharding run their code in a fresh interpreter
(float64, so that results on one and on several devices can be compared
tightly) and read back the JSON object its last line prints.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_on_host_devices(code, num_devices=4, timeout=300):
    """Run ``code`` with ``num_devices`` CPU devices; return its last line's
    JSON object."""
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={num_devices}",
        "JAX_ENABLE_X64": "1",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])

"""Every script of examples/ runs to the end with tiny budgets.

Each runs in a subprocess, as a user runs it, with
``BAYES_SKLEARN_EXAMPLE_QUICK=1`` (the examples then use tiny sampler
budgets) or its own command-line flags, and must exit 0 and print the line
that reports its result. The figures printed are not checked: tiny budgets
do not converge. The subprocesses share the session's compile cache
(``CORE_PPL_CACHE_DIR``, set in the top-level conftest.py).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Example -> (extra command-line arguments, a line its output must contain).
RUNS = {
    "quickstart.py": ((), "posterior mean effect per school:"),
    "logistic_regression.py": ((), "posterior summary, largest effects first:"),
    "model_selection.py": ((), "best prior_scale:"),
    "custom_model.py": ((), "best df ="),
    "sparse_interactions.py": (
        ("--n-warmup", "20", "--n-draws", "20"),
        "held-out R^2 of the posterior mean:",
    ),
    "grid_search_on_dask.py": ((), "same scores as n_jobs=1: True"),
}


def test_every_example_is_run_here():
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(RUNS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs(name):
    arguments, expected = RUNS[name]
    env = dict(os.environ, BAYES_SKLEARN_EXAMPLE_QUICK="1")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout, done.stdout[-3000:]

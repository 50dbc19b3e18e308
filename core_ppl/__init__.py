"""core_ppl: a handler-based probabilistic programming language on JAX.

Models are plain Python functions calling :func:`sample`, :func:`param`,
:func:`plate`, :func:`deterministic` and :func:`factor`; effect handlers
(:mod:`core_ppl.handlers`) turn them into log densities, and
:mod:`core_ppl.infer` runs NUTS, HMC, SVI and predictions on them. The design
follows Phan, Pradhan and Jankowiak, "Composable Effects for Flexible and
Accelerated Probabilistic Programming in NumPyro" (2019); the public names
mirror NumPyro's so that a model ports by changing its imports, and
``import core_ppl`` alone makes ``core_ppl.distributions``, ``.infer``,
``.optim``, ``.handlers`` and ``.diagnostics`` available, as
``import numpyro`` does.

Importing this package changes no global JAX setting and starts no JAX
backend; :mod:`core_ppl.util` holds the process settings a user may opt into
(:func:`enable_x64`, :func:`set_host_device_count`, :func:`set_platform`,
re-exported here, as is :func:`~core_ppl.distributions.enable_validation`).
"""

from core_ppl import diagnostics, distributions, handlers, infer, optim
from core_ppl.distributions.distribution import (
    enable_validation,
    validation_enabled,
)
from core_ppl.primitives import (
    deterministic,
    factor,
    param,
    plate,
    plate_stack,
    prng_key,
    sample,
    subsample,
)
from core_ppl.util import enable_x64, set_host_device_count, set_platform


def _distribution_version():
    # Both packages ship in the bayes-sklearn distribution: its installed
    # metadata holds their version. A source tree that is not installed has
    # none, and says so with a version that sorts before every release.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bayes-sklearn")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _distribution_version()

__all__ = [
    "deterministic",
    "diagnostics",
    "distributions",
    "enable_validation",
    "enable_x64",
    "factor",
    "handlers",
    "infer",
    "optim",
    "param",
    "plate",
    "plate_stack",
    "prng_key",
    "sample",
    "set_host_device_count",
    "set_platform",
    "subsample",
    "validation_enabled",
]

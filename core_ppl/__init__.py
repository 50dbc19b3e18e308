"""core_ppl: a handler-based probabilistic programming language on JAX.

Models are plain Python functions calling :func:`sample`, :func:`param`,
:func:`plate`, :func:`deterministic` and :func:`factor`; effect handlers
(:mod:`core_ppl.handlers`) turn them into log densities, and
:mod:`core_ppl.infer` runs NUTS, HMC, SVI and predictions on them. The design
follows Phan, Pradhan and Jankowiak, "Composable Effects for Flexible and
Accelerated Probabilistic Programming in NumPyro" (2019); the public names
mirror NumPyro's so that a model ports by changing its imports.

Importing this package changes no global JAX setting; :mod:`core_ppl.util`
holds the process settings a user may opt into.
"""

from core_ppl import handlers
from core_ppl.primitives import (
    deterministic,
    factor,
    param,
    plate,
    prng_key,
    sample,
)

__version__ = "0.1.0"

__all__ = [
    "deterministic",
    "factor",
    "handlers",
    "param",
    "plate",
    "prng_key",
    "sample",
]

"""Probability distributions, constraints and transforms for ``core_ppl``.

``import core_ppl.distributions as dist`` gives the distributions
(``dist.Normal``...), the ``dist.constraints`` and ``dist.transforms`` modules
and ``dist.biject_to``, as in NumPyro.
"""

from core_ppl.distributions import constraints, transforms
from core_ppl.distributions.continuous import (
    Beta,
    Cauchy,
    Dirichlet,
    Exponential,
    Gamma,
    GaussianRandomWalk,
    HalfCauchy,
    HalfNormal,
    InverseGamma,
    Laplace,
    LKJ,
    LKJCholesky,
    LogNormal,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    StudentT,
    TruncatedNormal,
    Uniform,
)
from core_ppl.distributions.discrete import (
    Bernoulli,
    Binomial,
    Categorical,
    GammaPoisson,
    NegativeBinomial2,
    Poisson,
)
from core_ppl.distributions.distribution import (
    Delta,
    Distribution,
    ExpandedDistribution,
    ImproperUniform,
    Independent,
    MaskedDistribution,
    Unit,
)
from core_ppl.distributions.mixtures import Mixture, MixtureGeneral, MixtureSameFamily
from core_ppl.distributions.transforms import biject_to

__all__ = [
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Cauchy",
    "Delta",
    "Dirichlet",
    "Distribution",
    "ExpandedDistribution",
    "Exponential",
    "Gamma",
    "GammaPoisson",
    "GaussianRandomWalk",
    "HalfCauchy",
    "HalfNormal",
    "ImproperUniform",
    "Independent",
    "InverseGamma",
    "LKJ",
    "LKJCholesky",
    "Laplace",
    "LogNormal",
    "LowRankMultivariateNormal",
    "MaskedDistribution",
    "Mixture",
    "MixtureGeneral",
    "MixtureSameFamily",
    "MultivariateNormal",
    "NegativeBinomial2",
    "Normal",
    "Poisson",
    "StudentT",
    "TruncatedNormal",
    "Uniform",
    "Unit",
    "biject_to",
    "constraints",
    "transforms",
]

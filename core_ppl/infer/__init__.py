"""Inference on core_ppl models: NUTS/HMC and HMC-within-Gibbs (MCMC), SVI,
Predictive."""

from core_ppl.infer import autoguide, reparam
from core_ppl.infer.arviz import to_arviz
from core_ppl.infer.elbo import RenyiELBO, Trace_ELBO, TraceMeanField_ELBO
from core_ppl.infer.initialization import (
    init_to_feasible,
    init_to_median,
    init_to_sample,
    init_to_uniform,
    init_to_value,
)
from core_ppl.infer.mcmc import HMC, MCMC, NUTS, DiscreteHMCGibbs, HMCGibbs
from core_ppl.infer.predictive import Predictive
from core_ppl.infer.svi import SVI
from core_ppl.infer.util import log_density, log_likelihood, potential_energy

__all__ = [
    "HMC",
    "DiscreteHMCGibbs",
    "HMCGibbs",
    "MCMC",
    "NUTS",
    "SVI",
    "Predictive",
    "RenyiELBO",
    "TraceMeanField_ELBO",
    "Trace_ELBO",
    "autoguide",
    "init_to_feasible",
    "init_to_median",
    "init_to_sample",
    "init_to_uniform",
    "init_to_value",
    "log_density",
    "log_likelihood",
    "potential_energy",
    "reparam",
    "to_arviz",
]

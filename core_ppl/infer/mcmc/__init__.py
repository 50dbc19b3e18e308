"""MCMC on JAX: leapfrog integrators, Euclidean metrics, iterative NUTS, HMC,
Stan's windowed warmup and the :class:`MCMC` driver.

Modules, one idea each: ``integrators`` (velocity Verlet), ``metrics``
(kinetic energy, momentum, U-turn criterion), ``proposal`` (multinomial and
biased progressive sampling), ``termination`` (iterative U-turn checks),
``trajectory`` (tree building), ``nuts`` and ``hmc`` (transition kernels),
``adaptation`` (step size and mass matrix warmup), ``kernel`` (the interface
the driver knows kernels by), ``gibbs`` (HMC within Gibbs), ``sampler`` (the
compiled run and the public classes).
"""

from core_ppl.infer.mcmc.gibbs import DiscreteHMCGibbs, HMCGibbs
from core_ppl.infer.mcmc.hmc import HMC
from core_ppl.infer.mcmc.kernel import MCMCKernel
from core_ppl.infer.mcmc.nuts import NUTS
from core_ppl.infer.mcmc.sampler import MCMC, MCMCState

__all__ = [
    "HMC",
    "MCMC",
    "NUTS",
    "DiscreteHMCGibbs",
    "HMCGibbs",
    "MCMCKernel",
    "MCMCState",
]

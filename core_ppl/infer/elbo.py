"""Evidence lower bound objectives for stochastic variational inference.

For a model ``p(x, z)`` and a guide ``q(z)`` the ELBO is
``E_q[log p(x, z) - log q(z)] <= log p(x)``. :class:`Trace_ELBO` estimates it
with draws ``z = g(eps, phi)`` that are differentiable functions of the guide
parameters ``phi`` (the reparameterisation trick: Kingma and Welling 2014,
section 2.4; Titsias and Lazaro-Gredilla 2014), so that the gradient of the
Monte Carlo estimate is an unbiased estimate of the ELBO's gradient.

One particle is computed with effect handlers, as in the NumPyro paper
(section 3): run the guide under ``seed`` and ``trace`` to draw ``z`` and score
``log q(z)``, then *replay* the model against the guide's trace so each latent
site takes the guide's value, and score ``log p(x, z)``. Particles are
vectorised with ``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from core_ppl.handlers import replay, seed
from core_ppl.infer.util import log_density

__all__ = ["ELBO", "Trace_ELBO"]


class ELBO:
    """Base class of ELBO objectives.

    Parameters
    ----------
    num_particles : int, default=1
        Number of Monte Carlo draws averaged per estimate.
    """

    def __init__(self, num_particles=1):
        if (
            isinstance(num_particles, bool)
            or not isinstance(num_particles, int)
            or num_particles < 1
        ):
            raise ValueError(
                f"num_particles must be a positive int, got {num_particles!r}"
            )
        self.num_particles = num_particles

    def loss(self, rng_key, param_map, model, guide, *args, **kwargs):
        """Return a differentiable estimate of the negative ELBO.

        Parameters
        ----------
        rng_key : jax.random key
            Seeds the guide's and the model's draws.
        param_map : dict
            Constrained values of the ``param`` sites, by name.
        model, guide : callable
            The model and the guide; both take ``*args, **kwargs``.

        Returns
        -------
        jax.Array, shape ()
        """
        if self.num_particles == 1:
            elbo = self._single_particle_elbo(
                rng_key, param_map, model, guide, args, kwargs
            )
        else:
            keys = jax.random.split(rng_key, self.num_particles)
            elbo = jnp.mean(
                jax.vmap(
                    lambda key: self._single_particle_elbo(
                        key, param_map, model, guide, args, kwargs
                    )
                )(keys)
            )
        return -elbo

    def _single_particle_elbo(self, rng_key, param_map, model, guide, args, kwargs):
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))

    def __repr__(self):
        return f"{type(self).__name__}(num_particles={self.num_particles})"


def _check_reparameterisable(guide_trace):
    for name, site in guide_trace.items():
        if site["type"] != "sample" or site["is_observed"]:
            continue
        if not getattr(site["fn"], "has_rsample", False):
            raise ValueError(
                f"Trace_ELBO: guide site '{name}' has distribution "
                f"{type(site['fn']).__name__}, which is not reparameterisable "
                "(has_rsample is False), so its gradient cannot be estimated by "
                "the reparameterisation trick; use a continuous, "
                "reparameterisable distribution in the guide"
            )


def _check_guide_covers_model(model_trace, guide_trace):
    for name, site in model_trace.items():
        is_latent = site["type"] == "sample" and not site["is_observed"]
        if is_latent and name not in guide_trace:
            raise ValueError(
                f"Trace_ELBO: latent site '{name}' of the model has no "
                "matching sample site in the guide; the guide must sample "
                "every latent site of the model"
            )


class Trace_ELBO(ELBO):
    """The reparameterised Monte Carlo ELBO of Kingma and Welling (2014).

    Every latent site of the model must have a sample site of the same name
    in the guide, drawn from a reparameterisable distribution
    (``has_rsample``); guide-only (auxiliary) sites are allowed.

    Parameters
    ----------
    num_particles : int, default=1
        Number of draws averaged per estimate, vectorised with ``vmap``.
    """

    def _single_particle_elbo(self, rng_key, param_map, model, guide, args, kwargs):
        model_key, guide_key = jax.random.split(rng_key)
        guide_log_density, guide_trace = log_density(
            seed(guide, rng_seed=guide_key), args, kwargs, param_map
        )
        _check_reparameterisable(guide_trace)
        model_log_density, model_trace = log_density(
            replay(seed(model, rng_seed=model_key), trace=guide_trace),
            args,
            kwargs,
            param_map,
        )
        _check_guide_covers_model(model_trace, guide_trace)
        return model_log_density - guide_log_density

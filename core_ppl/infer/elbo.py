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

Two variants follow NumPyro:

* :class:`TraceMeanField_ELBO` replaces ``log p(z) - log q(z)`` of a latent
  site by ``-KL(q || p)`` computed in closed form when
  :func:`~core_ppl.distributions.kl_divergence` has a rule for the pair
  (Normal/Normal, MultivariateNormal/MultivariateNormal, Gamma/Gamma, ...,
  through ``to_event`` and ``expand``), which removes that term's Monte
  Carlo noise without changing the expectation; other sites keep the Monte
  Carlo term. It assumes a mean-field guide whose sites' distributions do
  not depend on the values of other latents in a way the KL would miss
  (NumPyro's caveat): the KL is that of the two conditional distributions
  seen in this particle.
* :class:`RenyiELBO` is the variational Renyi bound of order ``alpha`` (Li
  and Turner 2016, eq. 5): ``1/(1 - alpha) log E_q[(p(x, z)/q(z))^(1 -
  alpha)]``, estimated with ``num_particles`` draws inside the logarithm;
  ``alpha = 0`` gives the importance-weighted bound of Burda, Grosse and
  Salakhutdinov (2016), which tightens towards ``log p(x)`` as the number of
  particles grows. Plates that enclose every sample site of the model are
  treated as independent factors, each with its own bound (as NumPyro does),
  so a model of conditionally independent data points gets one bound per
  point rather than one for the whole data set.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp

from core_ppl.distributions.kl import kl_divergence
from core_ppl.handlers import replay, seed, substitute, trace
from core_ppl.infer.util import log_density

__all__ = ["ELBO", "RenyiELBO", "TraceMeanField_ELBO", "Trace_ELBO"]


class ELBO:
    """Base class of ELBO objectives.

    Parameters
    ----------
    num_particles : int, default=1
        Number of Monte Carlo draws averaged per estimate.
    vectorize_particles : bool, default=True
        Compute the particles at once with ``vmap`` (faster), or one after
        the other with ``lax.map`` (memory of one particle), as NumPyro's.
    """

    def __init__(self, num_particles=1, vectorize_particles=True):
        if (
            isinstance(num_particles, bool)
            or not isinstance(num_particles, int)
            or num_particles < 1
        ):
            raise ValueError(
                f"num_particles must be a positive int, got {num_particles!r}"
            )
        if not isinstance(vectorize_particles, bool):
            raise TypeError(
                f"vectorize_particles must be a bool, got {vectorize_particles!r}"
            )
        self.num_particles = num_particles
        self.vectorize_particles = vectorize_particles

    def _map_particles(self, fn, keys):
        """``fn`` over the particles' keys: vectorised or sequential."""
        if self.vectorize_particles:
            return jax.vmap(fn)(keys)
        return jax.lax.map(fn, keys)

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
                self._map_particles(
                    lambda key: self._single_particle_elbo(
                        key, param_map, model, guide, args, kwargs
                    ),
                    keys,
                )
            )
        return -elbo

    def _single_particle_elbo(self, rng_key, param_map, model, guide, args, kwargs):
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))

    def __repr__(self):
        return (
            f"{type(self).__name__}(num_particles={self.num_particles}, "
            f"vectorize_particles={self.vectorize_particles})"
        )


def _check_reparameterisable(guide_trace, elbo_name="Trace_ELBO"):
    for name, site in guide_trace.items():
        if site["type"] != "sample" or site["is_observed"]:
            continue
        if not getattr(site["fn"], "has_rsample", False):
            raise ValueError(
                f"{elbo_name}: guide site '{name}' has distribution "
                f"{type(site['fn']).__name__}, which is not reparameterisable "
                "(has_rsample is False), so its gradient cannot be estimated by "
                "the reparameterisation trick; use a continuous, "
                "reparameterisable distribution in the guide"
            )


def _check_guide_covers_model(model_trace, guide_trace, elbo_name="Trace_ELBO"):
    for name, site in model_trace.items():
        is_latent = site["type"] == "sample" and not site["is_observed"]
        if is_latent and name not in guide_trace:
            raise ValueError(
                f"{elbo_name}: latent site '{name}' of the model has no "
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
        Number of draws averaged per estimate.
    vectorize_particles : bool, default=True
        Draw them with ``vmap`` (True) or one after the other (False).
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


def _run_guide_and_model(rng_key, param_map, model, guide, args, kwargs, elbo_name):
    """Trace the guide, then the model replayed against it (one particle)."""
    model_key, guide_key = jax.random.split(rng_key)
    guide = substitute(seed(guide, rng_seed=guide_key), data=param_map)
    guide_trace = trace(guide).get_trace(*args, **kwargs)
    _check_reparameterisable(guide_trace, elbo_name)
    model = replay(seed(model, rng_seed=model_key), trace=guide_trace)
    model_trace = trace(substitute(model, data=param_map)).get_trace(*args, **kwargs)
    _check_guide_covers_model(model_trace, guide_trace, elbo_name)
    return model_trace, guide_trace


def _site_log_prob(site):
    """Scaled log density of a sample site, batch-shaped."""
    log_prob = site["fn"].log_prob(site["value"])
    return log_prob if site["scale"] is None else site["scale"] * log_prob


# --- closed-form KL divergences -------------------------------------------------


def _kl_divergence(q, p):
    """``KL(q || p)`` in closed form from the registry of
    :mod:`core_ppl.distributions.kl`, batch-shaped, or None when no closed
    form applies (no registered pair, or event shapes that differ)."""
    try:
        return kl_divergence(q, p)
    except (NotImplementedError, ValueError):
        return None


class TraceMeanField_ELBO(ELBO):
    """The ELBO with closed-form KL terms where the distributions allow.

    For each latent site of the model, ``log p(z) - log q(z)`` is replaced by
    ``-KL(q || p)``, scaled like the model site's log density, when the KL is
    known in closed form (see the module notes); otherwise the Monte Carlo
    term is kept. The expectation is that of :class:`Trace_ELBO`. The
    variance is usually lower (the prior and entropy terms' noise is gone),
    but not always: near the optimum that noise can cancel the likelihood's.
    Guide-only (auxiliary) sites contribute ``-log q``. Autoguides emit
    their sites as ``Delta`` draws, so with them this equals
    :class:`Trace_ELBO`.

    Parameters
    ----------
    num_particles : int, default=1
        Number of draws averaged per estimate.
    vectorize_particles : bool, default=True
        Draw them with ``vmap`` (True) or one after the other (False).
    """

    def _single_particle_elbo(self, rng_key, param_map, model, guide, args, kwargs):
        model_trace, guide_trace = _run_guide_and_model(
            rng_key, param_map, model, guide, args, kwargs, "TraceMeanField_ELBO"
        )
        elbo = jnp.zeros(())
        for name, site in model_trace.items():
            if site["type"] != "sample":
                continue
            if site["is_observed"]:
                elbo = elbo + jnp.sum(_site_log_prob(site))
                continue
            guide_site = guide_trace[name]
            kl = _kl_divergence(guide_site["fn"], site["fn"])
            if kl is None:
                elbo = elbo + jnp.sum(_site_log_prob(site))
                elbo = elbo - jnp.sum(_site_log_prob(guide_site))
            else:
                kl = kl if site["scale"] is None else site["scale"] * kl
                elbo = elbo - jnp.sum(kl)
        for name, site in guide_trace.items():
            if site["type"] == "sample" and name not in model_trace:
                elbo = elbo - jnp.sum(_site_log_prob(site))
        return elbo


# --- Renyi -----------------------------------------------------------------------


def _common_plates(model_trace):
    """The plates enclosing every sample site of the model."""
    frames = [
        set(site["cond_indep_stack"])
        for site in model_trace.values()
        if site["type"] == "sample"
    ]
    return set.intersection(*frames) if frames else set()


def _check_renyi_subsampling(model_trace, common):
    for site in model_trace.values():
        if site["type"] != "sample":
            continue
        for frame in site["cond_indep_stack"]:
            if frame not in common and frame.subsample_size < frame.size:
                raise ValueError(
                    f"RenyiELBO: site '{site['name']}' is in the subsampled plate "
                    f"'{frame.name}', which does not enclose every sample site; "
                    "RenyiELBO supports subsampling only in plates common to all "
                    "sample sites (e.g. a data plate around the whole model)"
                )


class _seed_plates(seed):
    """``seed`` for subsampled plates only: every particle of a Renyi bound
    must see the same mini-batch, since the bound averages their weights
    data point by data point."""

    def process_message(self, msg):
        if msg["type"] == "plate":
            super().process_message(msg)


def _keep_dims(log_prob, dims):
    """Sum ``log_prob`` over every axis but the (negative) plate ``dims``;
    return it with ``max(-dims)`` axes, so all sites' terms broadcast."""
    log_prob = jnp.asarray(log_prob)
    depth = max((-d for d in dims), default=0)
    for axis in range(log_prob.ndim):
        if axis - log_prob.ndim not in dims:
            log_prob = jnp.sum(log_prob, axis=axis, keepdims=True)
    log_prob = log_prob.reshape(log_prob.shape[max(log_prob.ndim - depth, 0) :])
    return log_prob.reshape((1,) * (depth - log_prob.ndim) + log_prob.shape)


class RenyiELBO(ELBO):
    """The variational Renyi bound of order ``alpha`` (Li and Turner 2016).

    The loss is ``-1/(1 - alpha) log (1/S) sum_s w_s^(1 - alpha)`` with
    ``w_s = p(x, z_s) / q(z_s)`` for ``S = num_particles`` reparameterised
    draws ``z_s ~ q``, computed with ``logsumexp``. For ``0 <= alpha < 1``
    its expectation lies between the ELBO and ``log p(x)``; ``alpha = 0`` is
    the importance-weighted bound (Burda et al. 2016), exact at any ``S``
    when ``q`` is the posterior. Plates enclosing every sample site of the
    model get one bound per element (their subsampling scale is applied to
    the sum of those bounds).

    Parameters
    ----------
    alpha : float, default=0
        Order of the divergence; ``alpha = 1`` is the ordinary ELBO and is
        refused (use :class:`Trace_ELBO`).
    num_particles : int, default=2
        Draws inside the logarithm.
    vectorize_particles : bool, default=True
        Draw them with ``vmap`` (True) or one after the other (False).
    """

    def __init__(self, alpha=0, num_particles=2, vectorize_particles=True):
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"RenyiELBO: alpha must be a float, got {alpha!r}")
        if not math.isfinite(alpha) or alpha == 1:
            raise ValueError(
                f"RenyiELBO: alpha must be finite and != 1, got {alpha!r}; "
                "alpha = 1 is the ordinary ELBO, use Trace_ELBO"
            )
        super().__init__(
            num_particles=num_particles, vectorize_particles=vectorize_particles
        )
        self.alpha = float(alpha)

    def __repr__(self):
        return (
            f"RenyiELBO(alpha={self.alpha}, num_particles={self.num_particles}, "
            f"vectorize_particles={self.vectorize_particles})"
        )

    def _particle(self, rng_key, param_map, model, guide, args, kwargs):
        """Log weight of one draw, per element of the common plates, and the
        subsampling scale of those plates."""
        model_trace, guide_trace = _run_guide_and_model(
            rng_key, param_map, model, guide, args, kwargs, "RenyiELBO"
        )
        common = _common_plates(model_trace)
        _check_renyi_subsampling(model_trace, common)
        dims = {frame.dim for frame in common}
        plate_scale = math.prod(f.size / f.subsample_size for f in common)
        log_weight = jnp.zeros(())
        for tr, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
            for site in tr.values():
                if site["type"] == "sample":
                    term = _keep_dims(_site_log_prob(site), dims)
                    log_weight = log_weight + sign * term
        # Per-site log densities of subsampled plates carry the size/m scale;
        # the bound is taken per element, so remove it here, reapply later.
        return log_weight / plate_scale, jnp.asarray(plate_scale)

    def loss(self, rng_key, param_map, model, guide, *args, **kwargs):
        plate_key, rng_key = jax.random.split(rng_key)
        keys = jax.random.split(rng_key, self.num_particles)

        def particle(key):
            return self._particle(
                key,
                param_map,
                _seed_plates(model, rng_seed=plate_key),
                _seed_plates(guide, rng_seed=plate_key),
                args,
                kwargs,
            )

        log_weights, plate_scale = self._map_particles(particle, keys)
        scaled = (1.0 - self.alpha) * log_weights
        log_mean = jax.nn.logsumexp(scaled, axis=0) - math.log(self.num_particles)
        return -jnp.sum(log_mean / (1.0 - self.alpha)) * plate_scale[0]

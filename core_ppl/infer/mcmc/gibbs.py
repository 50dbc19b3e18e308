"""HMC within Gibbs: some sites updated by Gibbs steps, the rest by HMC/NUTS.

Each iteration of :class:`HMCGibbs` first draws new values of the Gibbs
sites given the others, then takes one step of the inner HMC or NUTS kernel
on the remaining sites with the model conditioned on the new Gibbs values
(Metropolis-within-Gibbs; the inner kernel's potential and gradient are
re-evaluated first, since the conditional changed). The inner kernel keeps
its own state and warmup: its step size and mass matrix adapt to the
conditional it sees.

:class:`DiscreteHMCGibbs` supplies the Gibbs step for every latent site with
a finite support (Bernoulli, Categorical, Binomial...): a sweep over the
elements of each discrete site, in random order, each redrawn from its full
conditional by enumerating the support (Gibbs), or by a Metropolised
proposal: Liu's (1996) modified Gibbs, which never proposes the current
value, or a uniform random-walk proposal. Each is a Metropolis-Hastings
update that leaves the conditional invariant.

The flat position the driver records holds the HMC sites unconstrained and
the Gibbs sites as they are (discrete values as floats; ``ravel_pytree``'s
inverse casts them back).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from core_ppl.distributions import constraints
from core_ppl.handlers import condition, seed, trace
from core_ppl.infer.mcmc import hmc
from core_ppl.infer.mcmc.kernel import MAX_INIT_TRIES, Algorithm, MCMCKernel
from core_ppl.infer.util import (
    constrain_fn,
    find_valid_initial_params,
    potential_energy,
)

__all__ = ["DiscreteHMCGibbs", "HMCGibbs", "HMCGibbsState"]


class HMCGibbsState(NamedTuple):
    """Per-chain state of :class:`HMCGibbs` and :class:`DiscreteHMCGibbs`.

    position : array, shape (dim,)
        Flat position of all latent sites (the recorded sample).
    inner : HMCKernelState
        The inner kernel's state over the HMC sites only.
    """

    position: jax.Array
    inner: Any


class _Split(NamedTuple):
    """A position cut into its Gibbs and HMC parts."""

    gibbs: dict
    hmc: dict  # unconstrained HMC sites
    unravel_hmc: Callable


def _conditional_potential(target, gibbs):
    """Potential over the HMC sites with the Gibbs sites observed."""
    conditioned = condition(target.model, data=gibbs)

    def potential(z):
        return potential_energy(conditioned, target.model_args, target.model_kwargs, z)

    return potential


def _check_sites(names, sites):
    """``names``, once each is known to be a site of ``sites``."""
    unknown = sorted(set(names).difference(sites))
    if not unknown:
        return names
    raise ValueError(
        f"gibbs_sites {unknown} are not latent sites of the model; it has "
        f"{sorted(sites)}"
    )


def _prior_trace(rng_key, target):
    return trace(seed(target.model, rng_seed=rng_key)).get_trace(
        *target.model_args, **target.model_kwargs
    )


class HMCGibbs(MCMCKernel):
    """HMC/NUTS on some sites, the user's Gibbs update on the others.

    Parameters
    ----------
    inner_kernel : HMC or NUTS
        Samples the non-Gibbs latent sites; built on the model.
    gibbs_fn : callable
        ``gibbs_fn(rng_key, gibbs_sites, hmc_sites) -> dict`` of new values
        of the Gibbs sites, drawn from (or leaving invariant) their
        conditional given ``hmc_sites`` (constrained values), NumPyro's
        convention.
    gibbs_sites : list of str
        Names of the sites ``gibbs_fn`` updates; they start from a prior
        draw.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl.infer import MCMC, NUTS, HMCGibbs
    >>> def model():
    ...     x = ppl.sample("x", dist.Normal(0.0, 1.0))
    ...     ppl.sample("y", dist.Normal(x, 1.0))
    >>> def gibbs_fn(rng_key, gibbs_sites, hmc_sites):
    ...     # x | y ~ Normal(y / 2, sqrt(1 / 2))
    ...     y = hmc_sites["y"]
    ...     return {"x": y / 2 + jnp.sqrt(0.5) * jax.random.normal(rng_key)}
    >>> kernel = HMCGibbs(NUTS(model), gibbs_fn=gibbs_fn, gibbs_sites=["x"])
    >>> mcmc = MCMC(kernel, num_warmup=100, num_samples=100, progress_bar=False)
    >>> mcmc.run(jax.random.PRNGKey(0))
    >>> sorted(mcmc.get_samples())
    ['x', 'y']
    """

    sample_field = "position"

    def __init__(self, inner_kernel, gibbs_fn, gibbs_sites):
        if not isinstance(inner_kernel, hmc.HMC) or inner_kernel.model is None:
            raise TypeError(
                "inner_kernel must be an HMC or NUTS kernel built on a model, got "
                f"{inner_kernel!r}"
            )
        if not callable(gibbs_fn):
            raise TypeError(f"gibbs_fn must be callable, got {type(gibbs_fn).__name__}")
        if isinstance(gibbs_sites, str) or not all(
            isinstance(name, str) for name in gibbs_sites
        ):
            raise TypeError(
                f"gibbs_sites must be a list of site names, got {gibbs_sites!r}"
            )
        self.inner_kernel = inner_kernel
        self._gibbs_fn = gibbs_fn
        self._gibbs_sites = tuple(gibbs_sites)
        self.default_fields = inner_kernel.default_fields

    model = property(lambda self: self.inner_kernel.model)
    init_strategy = property(lambda self: self.inner_kernel.init_strategy)

    def static_key(self):
        return (self.inner_kernel, self._gibbs_fn, self._gibbs_sites)

    # --- host side: the inner kernel's settings ---------------------------------

    def parameters(self, dtype):
        return self.inner_kernel.parameters(dtype)

    def warmup_schedule(self, num_warmup):
        return self.inner_kernel.warmup_schedule(num_warmup)

    def field_dtypes(self, dtype):
        return self.inner_kernel.field_dtypes(dtype)

    def get_diagnostics_str(self, state):
        return self.inner_kernel.get_diagnostics_str(state.inner)

    # --- the Gibbs part ----------------------------------------------------------

    def gibbs_sites(self, target):
        """Names of the Gibbs sites (traced models may decide them)."""
        return self._gibbs_sites

    def gibbs_update(self, rng_key, target, gibbs, hmc_z):
        """New Gibbs values given the HMC sites' unconstrained ``hmc_z``."""
        hmc_sites = constrain_fn(
            condition(target.model, data=gibbs),
            target.model_args,
            target.model_kwargs,
            hmc_z,
        )
        new = self._gibbs_fn(rng_key, dict(gibbs), hmc_sites)
        missing = set(gibbs) - set(new)
        if missing:
            raise ValueError(f"gibbs_fn returned no value for sites {sorted(missing)}")
        return {
            name: jnp.asarray(new[name]).astype(value.dtype).reshape(value.shape)
            for name, value in gibbs.items()
        }

    # --- inside the run -------------------------------------------------------

    def initial_position(self, rng_key, target):
        """Gibbs sites from a prior draw; HMC sites by the inner kernel's
        ``init_strategy`` on the model conditioned on them."""
        prior_key, search_key = jax.random.split(rng_key)
        model_trace = _prior_trace(prior_key, target)
        names = _check_sites(self.gibbs_sites(target), model_trace)
        gibbs = {name: model_trace[name]["value"] for name in names}
        param_info, is_valid = find_valid_initial_params(
            search_key,
            condition(target.model, data=gibbs),
            target.model_args,
            target.model_kwargs,
            init_strategy=self.init_strategy,
            max_tries=MAX_INIT_TRIES,
        )
        return {**param_info.z, **gibbs}, is_valid, None

    def build(self, target, unravel, params):
        inner = self.inner_kernel.build(target, None, params)
        names = self.gibbs_sites(target)

        def split(position):
            z = unravel(position)
            _check_sites(names, z)
            hmc_z = {k: v for k, v in z.items() if k not in names}
            return _Split(
                gibbs={k: z[k] for k in names},
                hmc=hmc_z,
                unravel_hmc=ravel_pytree(hmc_z)[1],
            )

        def conditional_logdensity(gibbs, unravel_hmc):
            potential = _conditional_potential(target, gibbs)
            return lambda flat: -potential(unravel_hmc(flat))

        def init(rng_key, position, logdensity_fn, param_info=None):
            parts = split(position)
            logdensity = conditional_logdensity(parts.gibbs, parts.unravel_hmc)
            flat_hmc = ravel_pytree(parts.hmc)[0]
            return HMCGibbsState(position, inner.init(rng_key, flat_hmc, logdensity))

        def step(rng_key, state, logdensity_fn, it):
            gibbs_key, hmc_key = jax.random.split(rng_key)
            parts = split(state.position)
            gibbs = self.gibbs_update(gibbs_key, target, parts.gibbs, parts.hmc)
            logdensity = conditional_logdensity(gibbs, parts.unravel_hmc)
            # The conditional changed: refresh the cached density and gradient.
            inner_state = state.inner._replace(
                hmc=hmc.init(state.inner.hmc.position, logdensity)
            )
            inner_state, info = inner.step(hmc_key, inner_state, logdensity, it)
            z = {**parts.unravel_hmc(inner_state.hmc.position), **gibbs}
            position = ravel_pytree(z)[0].astype(state.position.dtype)
            return HMCGibbsState(position, inner_state), info

        def restart(rng_key, state, logdensity_fn, it):
            parts = split(state.position)
            logdensity = conditional_logdensity(parts.gibbs, parts.unravel_hmc)
            return state._replace(
                inner=inner.restart(rng_key, state.inner, logdensity, it)
            )

        def adapt(state, info, it):
            return state._replace(inner=inner.adapt(state.inner, info, it))

        def summary(state):
            # The inner gradient is over the HMC sites only: no z_grad.
            return {**inner.summary(state.inner), "z_grad": None}

        return Algorithm(
            init=init,
            step=step,
            fields=lambda state, info: inner.fields(state.inner, info),
            adapt=adapt,
            restart=restart,
            summary=summary,
        )

    def postprocess_fn(self, model_args, model_kwargs):
        model = self.model
        names = self._postprocess_sites(model, model_args, model_kwargs)

        def postprocess(z):
            gibbs = {k: z[k] for k in names}
            hmc_z = {k: v for k, v in z.items() if k not in names}
            values = constrain_fn(
                condition(model, data=gibbs),
                model_args,
                model_kwargs,
                hmc_z,
                return_deterministic=True,
            )
            return {**values, **gibbs}

        return postprocess

    def _postprocess_sites(self, model, model_args, model_kwargs):
        return self._gibbs_sites


# --- discrete sites ------------------------------------------------------------


def _enumerable_support(name, site):
    """``(lower, size)`` of a site's finite integer support, known statically."""
    support = site["fn"].support
    while isinstance(support, constraints._Independent):
        support = support.base_constraint
    if isinstance(support, constraints._Boolean):
        return 0, 2
    if isinstance(support, constraints._IntegerInterval):
        try:
            lower, upper = int(support.lower_bound), int(support.upper_bound)
        except (TypeError, jax.errors.ConcretizationTypeError) as error:
            raise ValueError(
                f"DiscreteHMCGibbs: the support of site {name!r} must have bounds "
                "known at compile time (scalars, not traced arrays)"
            ) from error
        return lower, upper - lower + 1
    raise ValueError(
        f"DiscreteHMCGibbs: site {name!r} has support {support!r}, which cannot "
        "be enumerated; give it a finite support (e.g. Categorical, Bernoulli)"
    )


def _discrete_sites(model_trace):
    """``{name: (lower, size)}`` of the discrete latent sites, in trace order."""
    return {
        name: _enumerable_support(name, site)
        for name, site in model_trace.items()
        if site["type"] == "sample"
        and not site["is_observed"]
        and site["fn"].support.is_discrete
    }


class DiscreteHMCGibbs(HMCGibbs):
    """Gibbs updates of the discrete latent sites, HMC/NUTS for the rest.

    Every latent site with a finite integer support (``Bernoulli``,
    ``Categorical``, ``Binomial``...) is updated one element at a time, in a
    random order at each iteration; the continuous sites by ``inner_kernel``
    on the model conditioned on the discrete values.

    Parameters
    ----------
    inner_kernel : HMC or NUTS
        Samples the continuous latent sites; built on the model.
    random_walk : bool, default=False
        Propose a value uniformly from the support, accepted by Metropolis,
        instead of drawing from the element's full conditional.
    modified : bool, default=False
        Never propose the current value: Liu's (1996) Metropolised Gibbs
        (draw from the conditional without the current value, accepted with
        probability ``min(1, (1 - p(old)) / (1 - p(new)))``), or with
        ``random_walk`` a uniform proposal among the other values.

    References
    ----------
    Liu, J. S. (1996). Peskun's theorem and a modified discrete-state Gibbs
    sampler. Biometrika 83(3).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl.infer import MCMC, NUTS, DiscreteHMCGibbs
    >>> def model(y):
    ...     mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    ...     k = ppl.sample("k", dist.Bernoulli(0.5))
    ...     ppl.sample("y", dist.Normal(mu + 3.0 * k, 1.0), obs=y)
    >>> mcmc = MCMC(DiscreteHMCGibbs(NUTS(model)), num_warmup=100,
    ...             num_samples=100, progress_bar=False)
    >>> mcmc.run(jax.random.PRNGKey(0), jnp.ones(3))
    >>> mcmc.get_samples()["k"].dtype
    dtype('int32')
    """

    def __init__(self, inner_kernel, random_walk=False, modified=False):
        super().__init__(inner_kernel, _no_gibbs_fn, ())
        self.random_walk = bool(random_walk)
        self.modified = bool(modified)

    def static_key(self):
        return super().static_key() + (self.random_walk, self.modified)

    def gibbs_sites(self, target):
        return tuple(_discrete_sites(_prior_trace(jax.random.PRNGKey(0), target)))

    def _postprocess_sites(self, model, model_args, model_kwargs):
        model_trace = trace(seed(model, rng_seed=0)).get_trace(
            *model_args, **model_kwargs
        )
        return tuple(_discrete_sites(model_trace))

    def gibbs_update(self, rng_key, target, gibbs, hmc_z):
        supports = _discrete_sites(_prior_trace(jax.random.PRNGKey(0), target))

        def logdensity(values):
            return -_conditional_potential(target, values)(hmc_z)

        for index, name in enumerate(gibbs):
            lower, size = supports[name]
            if size > 1:
                site_key = jax.random.fold_in(rng_key, index)
                gibbs = self._sweep_site(site_key, name, lower, size, gibbs, logdensity)
        return gibbs

    def _sweep_site(self, rng_key, name, lower, size, gibbs, logdensity):
        """Update each element of site ``name`` once, in a random order."""
        shape = jnp.shape(gibbs[name])
        num_elements = max(int(jnp.size(gibbs[name])), 1)
        order_key, uniform_key = jax.random.split(rng_key)
        order = jax.random.permutation(order_key, num_elements)
        dtype = jnp.result_type(float)
        uniforms = jax.random.uniform(uniform_key, (num_elements, 2), dtype)

        def with_element(values, i, value):
            flat = values[name].reshape(-1).at[i].set(value)
            return {**values, name: flat.reshape(shape)}

        def update_element(j, values):
            i = order[j]
            current = (values[name].reshape(-1)[i] - lower).astype(jnp.int32)
            new, log_accept = self._propose(
                lambda v: logdensity(with_element(values, i, v + lower)),
                current,
                size,
                uniforms[j, 0],
            )
            accept = jnp.log(uniforms[j, 1]) < log_accept
            value = (jnp.where(accept, new, current) + lower).astype(values[name].dtype)
            return with_element(values, i, value)

        return jax.lax.fori_loop(0, num_elements, update_element, gibbs)

    def _propose(self, logdensity, current, size, uniform):
        """``(proposal, log acceptance ratio)`` for one element whose value,
        shifted to ``0..size-1``, is ``current``; ``uniform`` in (0, 1)."""
        if self.random_walk:
            if self.modified:  # uniform among the other values
                offset = 1 + jnp.floor(uniform * (size - 1)).astype(current.dtype)
                new = (current + jnp.minimum(offset, size - 1)) % size
            else:
                new = jnp.minimum(jnp.floor(uniform * size), size - 1)
                new = new.astype(current.dtype)
            return new, logdensity(new) - logdensity(current)
        log_p = jax.vmap(logdensity)(jnp.arange(size, dtype=jnp.int32))
        log_p = jnp.where(jnp.isnan(log_p), -jnp.inf, log_p)
        probs = jax.nn.softmax(log_p)
        if not self.modified:  # exact draw from the conditional: always accepted
            return _inverse_cdf(probs, uniform), jnp.zeros((), probs.dtype)
        others = probs.at[current].set(0.0)
        new = _inverse_cdf(others / jnp.sum(others), uniform)
        # Liu (1996): accept with min(1, (1 - p_old) / (1 - p_new)).
        log_accept = jnp.log1p(-probs[current]) - jnp.log1p(-probs[new])
        return new, log_accept


def _inverse_cdf(probs, uniform):
    """Index ``k`` with ``cdf[k-1] <= uniform < cdf[k]``."""
    cdf = jnp.cumsum(probs)
    index = jnp.sum(cdf <= uniform * cdf[-1])
    return jnp.minimum(index, probs.shape[0] - 1).astype(jnp.int32)


def _no_gibbs_fn(rng_key, gibbs_sites, hmc_sites):
    raise AssertionError("DiscreteHMCGibbs updates its sites itself")

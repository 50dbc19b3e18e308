"""Automatic guides: variational families built from a model's latent sites.

On its first call an autoguide traces the model abstractly (``jax.eval_shape``)
to list its continuous latent sites, their shapes, supports and enclosing
plates, then runs one small compiled program that draws the initial values
with ``init_loc_fn`` and checks that every site's log density is finite there.
(No gradient is needed to start a guide, so this is much cheaper to compile
than :func:`~core_ppl.infer.util.initialize_model`.) Afterwards calling the
guide with the model's arguments samples every latent site:

* the variational distribution lives in *unconstrained* space, where every
  latent is a real array; a constrained site ``z = T(u)``, with
  ``T = biject_to(support)``, is emitted as a ``Delta`` at ``T(u)`` carrying
  ``-log|det dT/du|``, so the guide's log density is that of ``z`` (change of
  variables) while ``u`` is an auxiliary site only the guide has;
* :class:`AutoNormal` and :class:`AutoDelta` keep one set of parameters per
  site, sized to the *full* plates: under ``plate(..., subsample_size=m)``
  the guide slices the parameters with the plate's indices and scales the
  sites' log density by ``size / m``, as the model does, so local latents of
  mini-batched models are fitted without bias;
* :class:`AutoDiagonalNormal`, :class:`AutoMultivariateNormal`,
  :class:`AutoLowRankMultivariateNormal` and
  :class:`AutoLaplaceApproximation` (the ``AutoContinuous`` family) flatten
  all unconstrained latents into one vector and place a joint distribution
  on it.

How a scale is parameterised matters to the optimiser even when the family
is the same. :class:`AutoMultivariateNormal` optimises its Cholesky factor
as ``L = diag(s) U``, ``s = softplus(a)`` and ``U`` unit lower triangular
(NumPyro's ``scaled_unit_lower_cholesky``). Adam moves every unconstrained
coordinate by about its step size: on the diagonal (a log or softplus
scale) that is a relative change, but with the plain ``lower_cholesky`` map
(free strict lower triangle, ``exp`` diagonal) each off-diagonal entry
``L_ij`` also moves by that absolute amount, however small row ``i``'s scale
is. For a tight posterior (sds of a few hundredths against a step size of
0.01) that noise keeps the ELBO several nats short, and growing. In
``diag(s) U`` the entry is ``s_i u_ij``, so its steps shrink with the row's
scale (``benchmarks/svi.py``,
``--mvn-quality``: the gap to NumPyro closes; ``exp`` or ``softplus`` for
``s`` made no difference there, ``softplus`` is NumPyro's choice).

The parameter names follow NumPyro: ``{site}_{prefix}_loc`` and
``{site}_{prefix}_scale`` for per-site guides, ``{prefix}_loc``,
``{prefix}_scale``, ``{prefix}_scale_tril`` and ``{prefix}_cov_factor`` for
the flattened ones.

Two autoguides of the same type over the same model whose prototypes agree
(sites, shapes, supports, plates) compare equal, so a compiled SVI program is
reused by a fresh guide built for new data of the same shapes.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections import OrderedDict
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

import core_ppl.distributions as dist
from core_ppl.distributions import constraints
from core_ppl.distributions.distribution import sum_rightmost
from core_ppl.distributions.transforms import (
    IdentityTransform,
    IndependentTransform,
    biject_to,
)
from core_ppl.handlers import block, scale, seed, substitute, trace
from core_ppl.infer.initialization import _is_latent, init_to_median
from core_ppl.infer.util import (
    merge_model_args,
    potential_energy,
    split_model_args,
)
from core_ppl.jit import jit
from core_ppl.primitives import param, plate, prng_key, sample

__all__ = [
    "AutoContinuous",
    "AutoDelta",
    "AutoDiagonalNormal",
    "AutoGuide",
    "AutoGuideList",
    "AutoLaplaceApproximation",
    "AutoLowRankMultivariateNormal",
    "AutoMultivariateNormal",
    "AutoNormal",
]


class LatentSite(NamedTuple):
    """What an autoguide knows about one latent site of the model.

    name : str
        The site's name.
    shape : tuple
        Shape of the constrained value, with subsampled plates at full size.
    event_dim : int
        Number of rightmost dims of the value forming one event.
    unconstrained_shape : tuple
        Shape of the unconstrained value, plates at full size.
    unconstrained_event_dim : int
        Event dims of the unconstrained value (a Cholesky factor's two event
        dims become one, for instance).
    support : Constraint
        The site's support; ``biject_to(support)`` maps into it.
    subsample_frames : tuple of CondIndepStackFrame
        The enclosing plates with ``subsample_size < size``.
    """

    name: str
    shape: tuple
    event_dim: int
    unconstrained_shape: tuple
    unconstrained_event_dim: int
    support: object
    subsample_frames: tuple


# --- helpers ---------------------------------------------------------------------


def _freeze(obj):
    """A hashable description of a constraint (type and parameters)."""
    if isinstance(obj, (jax.Array, np.ndarray)):
        arr = np.asarray(obj)
        return ("array", arr.shape, arr.dtype.str, arr.tobytes())
    if isinstance(obj, constraints.Constraint):
        items = sorted(vars(obj).items())
        return (type(obj).__name__, tuple((k, _freeze(v)) for k, v in items))
    return obj


def _depends_on_trace(obj):
    """Whether a constraint's parameters are tracers (values of other sites
    in an abstract run of the model)."""
    if isinstance(obj, constraints.Constraint):
        return any(_depends_on_trace(v) for v in vars(obj).values())
    return isinstance(obj, jax.core.Tracer)


def _is_identity(transform):
    if isinstance(transform, IndependentTransform):
        return _is_identity(transform.base_transform)
    return isinstance(transform, IdentityTransform)


def _periodic_repeat(x, size, axis):
    """Tile ``x`` along ``axis`` to length ``size`` (init values of a
    subsampled site, seen at ``subsample_size``, for the full plate)."""
    return jnp.take(x, jnp.arange(size) % x.shape[axis], axis=axis)


def _describe_site(site):
    """The :class:`LatentSite` of a (possibly abstract) trace site."""
    value_shape = tuple(jnp.shape(site["value"]))
    event_dim = len(site["fn"].event_shape)
    support = site["fn"].support
    u_shape = list(biject_to(support).inverse_shape(value_shape))
    u_event_dim = len(u_shape) - (len(value_shape) - event_dim)
    frames = tuple(f for f in site["cond_indep_stack"] if f.subsample_size < f.size)
    shape = list(value_shape)
    for frame in frames:
        shape[frame.dim - event_dim] = frame.size
        u_shape[frame.dim - u_event_dim] = frame.size
    return LatentSite(
        name=site["name"],
        shape=tuple(shape),
        event_dim=event_dim,
        unconstrained_shape=tuple(u_shape),
        unconstrained_event_dim=u_event_dim,
        support=support,
        subsample_frames=frames,
    )


def _subsample(x, site, indices, event_dim):
    """Select the current mini-batch of a full-size per-site parameter."""
    for frame in site.subsample_frames:
        x = jnp.take(x, indices[frame.name], axis=frame.dim - event_dim)
    return x


def _subsample_scale(site):
    factor = 1.0
    for frame in site.subsample_frames:
        factor *= frame.size / frame.subsample_size
    return scale(scale=factor) if factor != 1.0 else contextlib.nullcontext()


def _sample_delta(site, transform, unconstrained):
    """Emit ``site`` at ``T(u)`` with log density ``-log|det dT/du|``."""
    value = transform(unconstrained)
    log_density = -transform.log_abs_det_jacobian(unconstrained, value)
    log_density = sum_rightmost(
        log_density, jnp.ndim(log_density) - jnp.ndim(value) + site.event_dim
    )
    delta = dist.Delta(value, log_density=log_density, event_dim=site.event_dim)
    return sample(site.name, delta)


# --- base class --------------------------------------------------------------------


class AutoGuide:
    """Base class of automatic guides.

    Parameters
    ----------
    model : callable
        The model to approximate the posterior of.
    prefix : str, default="auto"
        Prefix of the guide's parameter and auxiliary site names.
    init_loc_fn : callable, default=init_to_median
        Initialisation strategy for the latent locations.
    init_scale : float, default=0.1
        Initial scale of the guide (per unconstrained coordinate).
    """

    # Whether latent sites may sit inside subsampled plates (per-site guides
    # slice full-size parameters with the plate's indices).
    handles_local_latents = True

    def __init__(
        self, model, *, prefix="auto", init_loc_fn=init_to_median, init_scale=0.1
    ):
        if not callable(model):
            raise TypeError(f"{type(self).__name__}: model must be callable")
        if not float(init_scale) > 0:
            raise ValueError(
                f"{type(self).__name__}: init_scale must be positive, got {init_scale}"
            )
        self.model = model
        self.prefix = prefix
        self.init_loc_fn = init_loc_fn
        self.init_scale = float(init_scale)
        self._sites = None
        self._init_locs = None
        self._setup_args = None
        self._model_sites = _ModelSites()

    # -- prototype --

    def _setup_prototype(self, *args, **kwargs):
        rng_key = prng_key()
        rng_key = jax.random.PRNGKey(0) if rng_key is None else rng_key
        # Block: the prototype runs of the model must not reach the handlers
        # around the guide (e.g. the trace SVI records).
        with block():
            sites, self._model_sites = _inspect_model(self, args, kwargs)
            arrays, static = split_model_args(args, kwargs)
            init_locs, is_finite = _init_locs_jit(
                rng_key,
                arrays,
                model=self.model,
                init_loc_fn=self.init_loc_fn,
                static=static,
            )
        _check_finite(is_finite, type(self).__name__)
        self._sites, self._init_locs = sites, init_locs
        self._setup_args = (args, kwargs)

    def _ensure_prototype(self, args, kwargs):
        if self._sites is None:
            self._setup_prototype(*args, **kwargs)

    def _require_prototype(self, method):
        if self._sites is None:
            raise RuntimeError(
                f"{type(self).__name__}.{method}: the guide has not seen the model "
                "yet; run SVI.init/SVI.run (or call the guide) first"
            )

    def _enter_subsample_plates(self):
        # Record each subsampled plate once, so the model (replayed against
        # the guide's trace) uses the same mini-batch indices.
        indices = {}
        for site in self._sites.values():
            for f in site.subsample_frames:
                if f.name not in indices:
                    with plate(f.name, f.size, f.subsample_size, dim=f.dim) as idx:
                        indices[f.name] = idx
        return indices

    # -- equality: same compiled program --

    def _program_key(self):
        sites = None
        if self._sites is not None:
            sites = tuple(
                (
                    s.name,
                    s.shape,
                    s.event_dim,
                    s.unconstrained_shape,
                    s.unconstrained_event_dim,
                    _freeze(s.support),
                    s.subsample_frames,
                )
                for s in self._sites.values()
            )
        return (type(self), self.model, self.prefix, sites)

    def __eq__(self, other):
        return (
            isinstance(other, AutoGuide) and self._program_key() == other._program_key()
        )

    def __hash__(self):
        return hash(self._program_key())

    def __call__(self, *args, **kwargs):
        raise NotImplementedError

    def sample_posterior(self, rng_key, params, *args, sample_shape=(), **kwargs):
        """Draw constrained latent values from the fitted guide.

        Parameters
        ----------
        rng_key : jax.random key
        params : dict
            Constrained guide parameters, e.g. ``SVI.get_params(state)``.
        *args, **kwargs
            The model's arguments (by default those of the guide's first
            call), used by :class:`AutoLaplaceApproximation` and to compute
            the model's deterministic sites.
        sample_shape : tuple, default=()
            Leading shape of the draws.

        Returns
        -------
        dict
            Site name -> array of shape ``sample_shape + site_shape``: the
            latent sites and, as in NumPyro, the model's deterministic sites.
        """
        self._require_prototype("sample_posterior")
        sample_shape = tuple(sample_shape)
        latent = _sample_posterior_jit(
            rng_key, params, guide=self, sample_shape=sample_shape
        )
        return self._add_deterministic(
            rng_key, params, latent, sample_shape, args, kwargs
        )

    def _add_deterministic(self, rng_key, params, latent, sample_shape, args, kwargs):
        """``latent`` with the model's deterministic sites, computed by running
        the model on each draw (NumPyro's autoguides do the same)."""
        names = self._model_sites
        if not names.deterministic:
            return latent
        from core_ppl.infer.predictive import Predictive

        args, kwargs = (args, kwargs) if args or kwargs else self._setup_args
        # Only the model's own params: the guide's would be dead arguments of
        # the compiled program, whose text then no longer tells programs for
        # different guides apart (the on-disk cache keys on that text).
        predictive = Predictive(
            self.model,
            latent,
            params={k: v for k, v in params.items() if k in names.params},
            return_sites=names.deterministic,
            batch_ndims=len(sample_shape),
        )
        # A key of its own: the latent draws stay those of ``rng_key``.
        values = predictive(jax.random.fold_in(rng_key, 1), *args, **kwargs)
        return {**latent, **values}

    def _sample_posterior(self, rng_key, params, sample_shape):
        raise NotImplementedError

    def median(self, params):
        """Posterior median of each latent site (constrained)."""
        raise NotImplementedError

    def quantiles(self, params, quantiles):
        """Marginal posterior quantiles of each latent site (constrained).

        Returns a dict of arrays shaped ``(len(quantiles),) + site_shape``.
        """
        raise NotImplementedError


def _init_trace(rng_key, model, init_loc_fn, args, kwargs):
    seeded = substitute(seed(model, rng_seed=rng_key), substitute_fn=init_loc_fn)
    return trace(seeded).get_trace(*args, **kwargs)


def _inspect_model(guide, args, kwargs):
    """Describe the model's latent sites, tracing it abstractly
    (``jax.eval_shape``: nothing is drawn or compiled).

    Latent sites must be continuous, and inside subsampled plates only if
    the guide handles local latents.
    """
    found, deterministic = [], []

    def inspect(rng_key):
        model_trace = _init_trace(rng_key, guide.model, guide.init_loc_fn, args, kwargs)
        found.extend(site for site in model_trace.values() if _is_latent(site))
        deterministic.append(_ModelSites.of(model_trace))

    jax.eval_shape(inspect, jax.random.PRNGKey(0))
    guide_name = type(guide).__name__
    if not found:
        raise ValueError(f"{guide_name}: the model has no latent sample sites")
    sites = OrderedDict()
    for site in found:
        name, support = site["name"], site["fn"].support
        if isinstance(_innermost(site["fn"]), dist.Delta):
            raise ValueError(
                f"{guide_name}: latent site '{name}' is a Delta (a point mass); "
                "an autoguide cannot fit it: observe it (obs=...) or make it a "
                "deterministic site"
            )
        if support.is_discrete:
            raise ValueError(
                f"{guide_name}: latent site '{name}' has a discrete support "
                f"({support!r}); autoguides handle continuous latents only: "
                "observe it or marginalise it out"
            )
        if _depends_on_trace(support):
            raise ValueError(
                f"{guide_name}: the support of latent site '{name}' ({support!r}) "
                "depends on other latent sites; autoguides need supports fixed "
                "by the model's arguments"
            )
        sites[name] = _describe_site(site)
        frames = sites[name].subsample_frames
        if frames and not guide.handles_local_latents:
            raise ValueError(
                f"{guide_name}: latent site '{name}' is inside the subsampled "
                f"plate '{frames[0].name}'; use AutoNormal or AutoDelta for local "
                "latent variables"
            )
    return sites, deterministic[0]


class _ModelSites(NamedTuple):
    """Names of a model's sites that ``sample_posterior`` needs.

    latent : tuple of str
        Its latent sample sites.
    deterministic : tuple of str
        Its deterministic sites, returned with the latent draws.
    params : tuple of str
        Its own param sites, substituted when computing the deterministic
        sites (and only those: see ``AutoGuide._add_deterministic``).
    """

    latent: tuple = ()
    deterministic: tuple = ()
    params: tuple = ()

    @classmethod
    def of(cls, model_trace):
        def names(keep):
            return tuple(n for n, site in model_trace.items() if keep(site))

        return cls(
            latent=names(_is_latent),
            deterministic=names(lambda site: site["type"] == "deterministic"),
            params=names(lambda site: site["type"] == "param"),
        )


def _innermost(fn):
    """The distribution under the wrappers (expand, to_event, mask)."""
    while hasattr(fn, "base_dist") and not isinstance(fn, dist.TransformedDistribution):
        fn = fn.base_dist
    return fn


@functools.partial(jit, static_argnames=("model", "init_loc_fn", "static"))
def _init_locs_jit(rng_key, arrays, *, model, init_loc_fn, static):
    """Unconstrained initial values of the latent sites (full plate size),
    and whether each sample site's log density is finite there."""
    args, kwargs = merge_model_args(arrays, static)
    model_trace = _init_trace(rng_key, model, init_loc_fn, args, kwargs)
    init_locs, is_finite = {}, {}
    for name, site in model_trace.items():
        if site["type"] != "sample":
            continue
        log_prob = site["fn"].log_prob(site["value"])
        is_finite[name] = jnp.all(jnp.isfinite(log_prob))
        if _is_latent(site):
            info = _describe_site(site)
            u = biject_to(info.support).inv(site["value"])
            is_finite[name] &= jnp.all(jnp.isfinite(u))
            # A subsampled site was seen at subsample size: tile to full size.
            for frame in info.subsample_frames:
                axis = frame.dim - info.unconstrained_event_dim
                u = _periodic_repeat(u, frame.size, axis)
            init_locs[name] = u
    return init_locs, is_finite


def _check_finite(is_finite, guide_name):
    if any(isinstance(ok, jax.core.Tracer) for ok in is_finite.values()):
        raise RuntimeError(
            f"{guide_name} must first be called outside jax.jit/vmap (e.g. by "
            "SVI.init), to inspect the model"
        )
    bad = [name for name, ok in is_finite.items() if not bool(ok)]
    if bad:
        raise ValueError(
            f"{guide_name}: at the initial values from init_loc_fn the log density "
            f"of site(s) {bad} is not finite; check the data and priors, or pass "
            "another init_loc_fn (e.g. init_to_value)"
        )


def _normal_quantiles(loc, scale_, quantiles):
    q = jnp.asarray(quantiles, dtype=jnp.result_type(float))
    if q.ndim != 1 or not bool(jnp.all((q > 0) & (q < 1))):
        raise ValueError(f"quantiles must be a 1-d list in (0, 1), got {quantiles}")
    z = ndtri(q).reshape((-1,) + (1,) * jnp.ndim(loc))
    return loc + scale_ * z


# --- per-site guides ---------------------------------------------------------------


class AutoNormal(AutoGuide):
    """Independent Normal in unconstrained space for every latent site.

    Parameters ``{site}_{prefix}_loc`` and ``{site}_{prefix}_scale`` (positive)
    have the site's unconstrained shape at full plate size. Mean-field:
    correlations between coordinates are ignored.
    """

    def __call__(self, *args, **kwargs):
        self._ensure_prototype(args, kwargs)
        indices = self._enter_subsample_plates()
        result = {}
        for name, site in self._sites.items():
            event_dim = site.unconstrained_event_dim
            loc = param(
                f"{name}_{self.prefix}_loc", self._init_locs[name], event_dim=event_dim
            )
            scale_ = param(
                f"{name}_{self.prefix}_scale",
                jnp.full(site.unconstrained_shape, self.init_scale),
                constraint=constraints.positive,
                event_dim=event_dim,
            )
            loc = _subsample(loc, site, indices, event_dim)
            scale_ = _subsample(scale_, site, indices, event_dim)
            base = dist.Normal(loc, scale_).to_event(event_dim)
            with _subsample_scale(site):
                result[name] = self._sample_site(site, base)
        return result

    def _sample_site(self, site, base):
        transform = biject_to(site.support)
        if _is_identity(transform):
            return sample(site.name, base)
        u = sample(
            f"{site.name}_{self.prefix}_base", base, infer={"is_auxiliary": True}
        )
        return _sample_delta(site, transform, u)

    def _loc_scale(self, params, name):
        return (
            params[f"{name}_{self.prefix}_loc"],
            params[f"{name}_{self.prefix}_scale"],
        )

    def _sample_posterior(self, rng_key, params, sample_shape):
        keys = jax.random.split(rng_key, len(self._sites))
        draws = {}
        for key, (name, site) in zip(keys, self._sites.items()):
            loc, scale_ = self._loc_scale(params, name)
            eps = jax.random.normal(key, sample_shape + jnp.shape(loc))
            draws[name] = biject_to(site.support)(loc + scale_ * eps)
        return draws

    def median(self, params):
        self._require_prototype("median")
        return {
            name: biject_to(site.support)(self._loc_scale(params, name)[0])
            for name, site in self._sites.items()
        }

    def quantiles(self, params, quantiles):
        self._require_prototype("quantiles")
        return {
            name: biject_to(site.support)(
                _normal_quantiles(*self._loc_scale(params, name), quantiles)
            )
            for name, site in self._sites.items()
        }


class AutoDelta(AutoGuide):
    """Point mass at a learned value for every latent site: MAP estimation.

    The parameter ``{site}_{prefix}_loc`` lives in the site's support (SVI
    optimises it in unconstrained space). With a Delta guide the ELBO is the
    log joint density, so SVI finds the mode of the posterior density in the
    model's own (constrained) parametrisation.
    """

    def __call__(self, *args, **kwargs):
        self._ensure_prototype(args, kwargs)
        indices = self._enter_subsample_plates()
        result = {}
        for name, site in self._sites.items():
            value = param(
                f"{name}_{self.prefix}_loc",
                biject_to(site.support)(self._init_locs[name]),
                constraint=site.support,
                event_dim=site.event_dim,
            )
            value = _subsample(value, site, indices, site.event_dim)
            result[name] = sample(name, dist.Delta(value, event_dim=site.event_dim))
        return result

    def median(self, params):
        self._require_prototype("median")
        return {name: params[f"{name}_{self.prefix}_loc"] for name in self._sites}

    def _sample_posterior(self, rng_key, params, sample_shape):
        return {
            name: jnp.broadcast_to(value, sample_shape + jnp.shape(value))
            for name, value in self.median(params).items()
        }

    def quantiles(self, params, quantiles):
        num = len(quantiles)
        return {
            name: jnp.broadcast_to(value, (num,) + jnp.shape(value))
            for name, value in self.median(params).items()
        }


# --- guides over the flattened latent vector ---------------------------------------


class AutoContinuous(AutoGuide):
    """Base of guides with a joint distribution over all unconstrained latents,
    flattened and concatenated in the model's site order.

    Subsampled plates around latent sites are not supported (the latent
    vector would grow with the data); use :class:`AutoNormal` for those.
    """

    handles_local_latents = False

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        sizes = [math.prod(s.unconstrained_shape) for s in self._sites.values()]
        self._offsets = np.cumsum([0] + sizes)
        self._init_latent = jnp.concatenate(
            [jnp.ravel(self._init_locs[name]) for name in self._sites]
        )

    @property
    def latent_dim(self):
        """Length of the flattened unconstrained latent vector."""
        self._require_prototype("latent_dim")
        return int(self._offsets[-1])

    def _unpack(self, latent):
        """Split a (batch of) latent vector(s) into unconstrained site values."""
        batch = jnp.shape(latent)[:-1]
        return {
            name: latent[..., start:stop].reshape(batch + site.unconstrained_shape)
            for (name, site), start, stop in zip(
                self._sites.items(), self._offsets[:-1], self._offsets[1:]
            )
        }

    def _constrain(self, latent):
        return {
            name: biject_to(self._sites[name].support)(u)
            for name, u in self._unpack(latent).items()
        }

    def __call__(self, *args, **kwargs):
        self._ensure_prototype(args, kwargs)
        latent = self._sample_latent()
        return {
            name: _sample_delta(
                self._sites[name], biject_to(self._sites[name].support), u
            )
            for name, u in self._unpack(latent).items()
        }

    def _loc_param(self):
        return param(f"{self.prefix}_loc", self._init_latent, event_dim=1)

    def _sample_latent(self):
        raise NotImplementedError

    def get_posterior(self, params):
        """The guide's distribution over the unconstrained latent vector."""
        raise NotImplementedError

    def _marginal_sd(self, params):
        return jnp.sqrt(jnp.diagonal(self.get_posterior(params).covariance_matrix))

    def _sample_posterior(self, rng_key, params, sample_shape):
        posterior = self.get_posterior(params)
        return self._constrain(posterior.sample(rng_key, sample_shape))

    def median(self, params):
        self._require_prototype("median")
        return self._constrain(params[f"{self.prefix}_loc"])

    def quantiles(self, params, quantiles):
        self._require_prototype("quantiles")
        loc = params[f"{self.prefix}_loc"]
        return self._constrain(
            _normal_quantiles(loc, self._marginal_sd(params), quantiles)
        )


class AutoDiagonalNormal(AutoContinuous):
    """Normal with diagonal covariance over the flattened unconstrained latents.

    Parameters ``{prefix}_loc`` and ``{prefix}_scale`` (positive), each of
    length :attr:`latent_dim`.
    """

    def _sample_latent(self):
        loc = self._loc_param()
        scale_ = param(
            f"{self.prefix}_scale",
            jnp.full(self.latent_dim, self.init_scale),
            constraint=constraints.positive,
            event_dim=1,
        )
        return sample(
            f"_{self.prefix}_latent",
            dist.Normal(loc, scale_).to_event(1),
            infer={"is_auxiliary": True},
        )

    def get_posterior(self, params):
        loc, scale_ = params[f"{self.prefix}_loc"], params[f"{self.prefix}_scale"]
        return dist.Normal(loc, scale_).to_event(1)

    def _marginal_sd(self, params):
        return params[f"{self.prefix}_scale"]


class AutoMultivariateNormal(AutoContinuous):
    """Multivariate Normal over the flattened unconstrained latents.

    Parameters ``{prefix}_loc`` and ``{prefix}_scale_tril``, a lower
    Cholesky factor of the covariance, started at ``init_scale * I``. SVI
    optimises it as ``diag(softplus(a)) @ U`` with ``U`` unit lower
    triangular (the constraint :data:`scaled_unit_lower_cholesky`, as in
    NumPyro); see the module notes for why this parameterisation.
    """

    scale_tril_constraint = constraints.scaled_unit_lower_cholesky

    def _sample_latent(self):
        loc = self._loc_param()
        scale_tril = param(
            f"{self.prefix}_scale_tril",
            jnp.eye(self.latent_dim) * self.init_scale,
            constraint=self.scale_tril_constraint,
            event_dim=2,
        )
        return sample(
            f"_{self.prefix}_latent",
            dist.MultivariateNormal(loc, scale_tril=scale_tril),
            infer={"is_auxiliary": True},
        )

    def get_posterior(self, params):
        return dist.MultivariateNormal(
            params[f"{self.prefix}_loc"],
            scale_tril=params[f"{self.prefix}_scale_tril"],
        )


def _low_rank_normal(loc, cov_factor, scale):
    """``N(loc, D (W W^T + I) D)`` with ``D = diag(scale)``, the law of
    :class:`AutoLowRankMultivariateNormal`: ``(D W)(D W)^T + D^2`` in the
    form of :class:`~core_ppl.distributions.LowRankMultivariateNormal`."""
    return dist.LowRankMultivariateNormal(
        loc, scale[..., None] * cov_factor, scale**2
    )


class AutoLowRankMultivariateNormal(AutoContinuous):
    """Normal with low-rank-plus-diagonal covariance over the flattened
    unconstrained latents.

    The covariance is ``D (W W^T + I) D`` with ``D = diag({prefix}_scale)``
    and ``W = {prefix}_cov_factor`` of shape ``(latent_dim, rank)``, as in
    NumPyro: ``rank`` directions of correlation at ``O(latent_dim * rank)``
    parameters and ``O(latent_dim * rank^2)`` cost per ELBO evaluation, where
    :class:`AutoMultivariateNormal` needs ``O(latent_dim^2)`` and
    ``O(latent_dim^3)``.

    Parameters
    ----------
    model : callable
        The model.
    prefix : str, default="auto"
        Prefix of the parameter names.
    init_loc_fn : callable, default=init_to_median
        Initialisation strategy for ``{prefix}_loc``.
    init_scale : float, default=0.1
        Initial value of every entry of ``{prefix}_scale`` (``W`` starts at
        zero, so the guide starts as ``AutoDiagonalNormal``'s).
    rank : int, optional
        Rank of ``W``; by default ``round(sqrt(latent_dim))``, NumPyro's rule.

    Notes
    -----
    ``{prefix}_scale`` is optimised through ``softplus`` (NumPyro's
    ``softplus_positive``); ``W`` is unconstrained and multiplies the whitened
    coordinates, so its entries are correlations-like numbers whatever the
    scale of each latent.
    """

    def __init__(
        self,
        model,
        *,
        prefix="auto",
        init_loc_fn=init_to_median,
        init_scale=0.1,
        rank=None,
    ):
        is_int = isinstance(rank, (int, np.integer)) and not isinstance(rank, bool)
        if rank is not None and not (is_int and rank >= 1):
            raise ValueError(
                f"AutoLowRankMultivariateNormal: rank must be a positive int or "
                f"None, got {rank!r}"
            )
        super().__init__(
            model, prefix=prefix, init_loc_fn=init_loc_fn, init_scale=init_scale
        )
        self.rank = None if rank is None else int(rank)

    def _program_key(self):
        return super()._program_key() + (self.rank,)

    @property
    def _rank(self):
        if self.rank is not None:
            return self.rank
        return max(1, int(round(self.latent_dim**0.5)))

    def _sample_latent(self):
        loc = self._loc_param()
        cov_factor = param(
            f"{self.prefix}_cov_factor", jnp.zeros((self.latent_dim, self._rank))
        )
        scale_ = param(
            f"{self.prefix}_scale",
            jnp.full(self.latent_dim, self.init_scale),
            constraint=constraints.softplus_positive,
            event_dim=1,
        )
        return sample(
            f"_{self.prefix}_latent",
            _low_rank_normal(loc, cov_factor, scale_),
            infer={"is_auxiliary": True},
        )

    def get_posterior(self, params):
        """``MultivariateNormal`` with the guide's mean and dense covariance."""
        posterior = self._low_rank(params)
        return dist.MultivariateNormal(
            posterior.loc, covariance_matrix=posterior.covariance_matrix
        )

    def _low_rank(self, params):
        return _low_rank_normal(
            params[f"{self.prefix}_loc"],
            params[f"{self.prefix}_cov_factor"],
            params[f"{self.prefix}_scale"],
        )

    def _sample_posterior(self, rng_key, params, sample_shape):
        draws = self._low_rank(params).sample(rng_key, sample_shape)
        return self._constrain(draws)

    def _marginal_sd(self, params):
        return jnp.sqrt(self._low_rank(params).variance)


class AutoLaplaceApproximation(AutoContinuous):
    """Laplace approximation: MAP in unconstrained space, then a Gaussian.

    During SVI the guide is a point mass at ``{prefix}_loc``, so the loss is
    the potential energy (negative log joint plus log-Jacobians) and SVI
    finds its minimum. :meth:`get_posterior` then returns
    ``MultivariateNormal(loc, covariance=H^{-1})`` where ``H`` is the Hessian
    of the potential at the mode (Laplace 1774; MacKay 2003, chapter 27).
    """

    def _sample_latent(self):
        loc = self._loc_param()
        return sample(
            f"_{self.prefix}_latent",
            dist.Delta(loc, event_dim=1),
            infer={"is_auxiliary": True},
        )

    def _potential(self, params, args, kwargs):
        # The model's own param sites take their fitted values; subsampled
        # plates, if any, are seeded deterministically.
        model = seed(substitute(self.model, data=params), rng_seed=0)

        def potential(latent):
            return potential_energy(model, args, kwargs, self._unpack(latent))

        return potential

    def _model_args(self, args, kwargs):
        # The model's arguments default to those of the guide's first call.
        return (args, kwargs) if args or kwargs else self._setup_args

    def hessian(self, params, *args, **kwargs):
        """Hessian of the potential energy at ``params[f"{prefix}_loc"]``.

        The model's arguments default to those the guide was first called
        with.
        """
        self._require_prototype("hessian")
        arrays, static = split_model_args(*self._model_args(args, kwargs))
        return _hessian_jit(params, arrays, guide=self, static=static)

    def get_posterior(self, params, *args, **kwargs):
        return self._posterior(params, self.hessian(params, *args, **kwargs))

    def _posterior(self, params, precision):
        # Covariance = precision^{-1}; symmetrise against round-off.
        covariance = jnp.linalg.inv(precision)
        covariance = 0.5 * (covariance + covariance.T)
        return dist.MultivariateNormal(
            params[f"{self.prefix}_loc"], scale_tril=jnp.linalg.cholesky(covariance)
        )

    def sample_posterior(self, rng_key, params, *args, sample_shape=(), **kwargs):
        precision = self.hessian(params, *args, **kwargs)
        sample_shape = tuple(sample_shape)
        latent = _sample_laplace_jit(
            rng_key, params, precision, guide=self, sample_shape=sample_shape
        )
        return self._add_deterministic(
            rng_key, params, latent, sample_shape, args, kwargs
        )

    def _marginal_sd(self, params):
        return jnp.sqrt(jnp.diagonal(jnp.linalg.inv(self.hessian(params))))


# --- a guide made of parts -----------------------------------------------------------


class AutoGuideList(AutoGuide):
    """A guide made of autoguides, each over some of the model's latent sites.

    Give each part the model restricted to its sites, e.g.
    ``handlers.block(model, expose=["z"])`` for one part and
    ``handlers.block(model, hide=["z"])`` for another; the parts' sites must
    not overlap, and together they must cover every latent site of the model.
    Calling the guide calls every part in the order appended; parameters keep
    the parts' own names (give parts distinct ``prefix`` values if two parts
    of one type would otherwise share a name).

    Parameters
    ----------
    model : callable
        The whole model.
    prefix, init_loc_fn, init_scale
        As in :class:`AutoGuide`; the parts use their own.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import core_ppl as ppl, core_ppl.distributions as dist
    >>> from core_ppl import handlers
    >>> from core_ppl.infer.autoguide import AutoDelta, AutoGuideList, AutoNormal
    >>> def model():
    ...     ppl.sample("a", dist.Normal(0.0, 1.0))
    ...     ppl.sample("b", dist.HalfNormal(1.0))
    >>> guide = AutoGuideList(model)
    >>> guide.append(AutoNormal(handlers.block(model, expose=["a"])))
    >>> guide.append(AutoDelta(handlers.block(model, expose=["b"])))
    >>> sorted(handlers.seed(guide, rng_seed=0)())
    ['a', 'b']
    """

    def __init__(
        self, model, *, prefix="auto", init_loc_fn=init_to_median, init_scale=0.1
    ):
        super().__init__(
            model, prefix=prefix, init_loc_fn=init_loc_fn, init_scale=init_scale
        )
        self._guides = []

    def append(self, part):
        """Add an autoguide over some of the model's latent sites."""
        if not isinstance(part, AutoGuide):
            raise TypeError(
                f"AutoGuideList.append: part must be an AutoGuide, got "
                f"{type(part).__name__}"
            )
        if self._sites is not None:
            raise RuntimeError(
                "AutoGuideList.append: the guide has already seen the model; "
                "append every part before the first call"
            )
        self._guides.append(part)

    def __getitem__(self, index):
        return self._guides[index]

    def __len__(self):
        return len(self._guides)

    def _setup_prototype(self, *args, **kwargs):
        if not self._guides:
            raise ValueError("AutoGuideList: append at least one part first")
        sites = OrderedDict()
        for part in self._guides:
            part._ensure_prototype(args, kwargs)
            for name, site in part._sites.items():
                if name in sites:
                    raise ValueError(
                        f"AutoGuideList: latent site '{name}' is in two parts; "
                        "restrict each part's model with handlers.block"
                    )
                sites[name] = site
        self._model_sites = _model_sites(self.model, args, kwargs)
        missing = [name for name in self._model_sites.latent if name not in sites]
        if missing:
            raise ValueError(
                f"AutoGuideList: latent site(s) {missing} of the model are in no "
                "part; append a part for them"
            )
        self._sites = sites
        self._setup_args = (args, kwargs)

    def _program_key(self):
        parts = tuple(part._program_key() for part in self._guides)
        return super()._program_key() + (parts,)

    def __call__(self, *args, **kwargs):
        self._ensure_prototype(args, kwargs)
        result = {}
        for part in self._guides:
            result.update(part(*args, **kwargs))
        return result

    def sample_posterior(self, rng_key, params, *args, sample_shape=(), **kwargs):
        self._require_prototype("sample_posterior")
        sample_shape = tuple(sample_shape)
        latent = {}
        for i, part in enumerate(self._guides):
            draws = part.sample_posterior(
                jax.random.fold_in(rng_key, i),
                params,
                *args,
                sample_shape=sample_shape,
                **kwargs,
            )
            latent.update({name: draws[name] for name in part._sites})
        return self._add_deterministic(
            rng_key, params, latent, sample_shape, args, kwargs
        )

    def median(self, params):
        self._require_prototype("median")
        return {k: v for part in self._guides for k, v in part.median(params).items()}

    def quantiles(self, params, quantiles):
        self._require_prototype("quantiles")
        return {
            k: v
            for part in self._guides
            for k, v in part.quantiles(params, quantiles).items()
        }


def _model_sites(model, args, kwargs):
    """The :class:`_ModelSites` of ``model``, traced abstractly."""
    found = []

    def inspect(rng_key):
        with block():
            seeded = seed(model, rng_seed=rng_key)
            model_trace = trace(seeded).get_trace(*args, **kwargs)
        found.append(_ModelSites.of(model_trace))

    jax.eval_shape(inspect, jax.random.PRNGKey(0))
    return found[0]


# --- compiled helpers (the guide is static: equal guides share the program) --------


def _laplace_hessian(guide, params, args, kwargs):
    loc = params[f"{guide.prefix}_loc"]
    return jax.hessian(guide._potential(params, args, kwargs))(loc)


@functools.partial(jit, static_argnames=("guide", "static"))
def _hessian_jit(params, arrays, *, guide, static):
    return _laplace_hessian(guide, params, *merge_model_args(arrays, static))


@functools.partial(jit, static_argnames=("guide", "sample_shape"))
def _sample_laplace_jit(rng_key, params, precision, *, guide, sample_shape):
    posterior = guide._posterior(params, precision)
    return guide._constrain(posterior.sample(rng_key, sample_shape))


@functools.partial(jit, static_argnames=("guide", "sample_shape"))
def _sample_posterior_jit(rng_key, params, *, guide, sample_shape):
    return guide._sample_posterior(rng_key, params, sample_shape)

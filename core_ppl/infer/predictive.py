"""Prior and posterior predictive draws.

:class:`Predictive` runs the model once per draw, with the draw's latent values
substituted, under its own random key, and records the sites asked for:

* prior predictive: no posterior, ``num_samples`` runs of the model;
* posterior predictive: one run per posterior draw (e.g. MCMC samples);
* from a guide: each run first draws the latents from the guide (with
  ``params`` substituted), then runs the model on them.

Draw ``i`` uses key ``jax.random.split(rng_key, num_samples)[i]`` (split
again into a guide and a model key when a guide is given), so one draw can be
reproduced by hand with ``seed(substitute(model, draw_i), key_i)``.

The runs are vectorised with ``vmap`` over chunks of ``batch_size`` draws and
the chunks processed sequentially by ``lax.map``, so memory stays bounded for
many draws; the whole computation is one compiled program, cached on the
model, guide, the sites asked for and the argument shapes.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from core_ppl.handlers import seed, substitute, trace
from core_ppl.infer.util import merge_model_args, split_model_args
from core_ppl.jit import jit

__all__ = ["Predictive"]


def _recorded_sites(model_trace, substituted, return_sites):
    if return_sites is not None:
        missing = [name for name in return_sites if name not in model_trace]
        if missing:
            raise ValueError(
                f"Predictive: return_sites {missing} are not sites of the model "
                f"(sites: {[n for n in model_trace]})"
            )
        return return_sites
    # By default: what the draws did not fix, i.e. the predictions, plus
    # deterministic sites (NumPyro's convention).
    return [
        name
        for name, site in model_trace.items()
        if (site["type"] == "sample" and name not in substituted)
        or site["type"] == "deterministic"
    ]


def _guide_draw(rng_key, guide, params, args, kwargs):
    """Latent (and plate) values drawn from the guide with ``params``."""
    guide_trace = trace(
        seed(substitute(guide, data=params), rng_seed=rng_key)
    ).get_trace(*args, **kwargs)
    return {
        name: site["value"]
        for name, site in guide_trace.items()
        if site["type"] in ("sample", "plate")
    }


def _predict_one(rng_key, draw, *, model, guide, params, args, kwargs, return_sites):
    if guide is not None:
        guide_key, rng_key = jax.random.split(rng_key)
        draw = {**_guide_draw(guide_key, guide, params, args, kwargs), **draw}
    data = {**params, **draw}
    model_trace = trace(seed(substitute(model, data=data), rng_seed=rng_key)).get_trace(
        *args, **kwargs
    )
    sites = _recorded_sites(model_trace, data, return_sites)
    return {name: model_trace[name]["value"] for name in sites}


@partial(
    jit,
    static_argnames=("model", "guide", "static", "return_sites", "batch_size"),
)
def _predict_jit(
    keys, draws, params, arrays, *, model, guide, static, return_sites, batch_size
):
    args, kwargs = merge_model_args(arrays, static)
    predict = partial(
        _predict_one,
        model=model,
        guide=guide,
        params=params,
        args=args,
        kwargs=kwargs,
        return_sites=return_sites,
    )
    return jax.lax.map(lambda x: predict(*x), (keys, draws), batch_size=batch_size)


def _num_draws(posterior_samples, batch_ndims):
    shapes = {name: jnp.shape(v) for name, v in posterior_samples.items()}
    batch_shapes = {s[:batch_ndims] for s in shapes.values()}
    if len(batch_shapes) != 1 or any(len(s) < batch_ndims for s in shapes.values()):
        raise ValueError(
            f"Predictive: posterior_samples must share their first {batch_ndims} "
            f"(batch_ndims) dimensions, got shapes {shapes}"
        )
    (batch_shape,) = batch_shapes
    return batch_shape


class Predictive:
    """Draw from the prior or posterior predictive distribution of a model.

    Parameters
    ----------
    model : callable
        The model.
    posterior_samples : dict, optional
        Draws of (some) sites, each with ``batch_ndims`` leading batch
        dimensions, e.g. ``mcmc.get_samples()``.
    guide : callable, optional
        A guide to draw the latents from (with ``params``), instead of
        ``posterior_samples``.
    params : dict, optional
        Constrained values of ``param`` sites, e.g. ``svi_result.params``.
    num_samples : int, optional
        Number of draws; required without ``posterior_samples``.
    return_sites : list of str, optional
        Sites to return. By default the sample sites not fixed by the draws
        (the predictions) and the deterministic sites.
    batch_ndims : int, default=1
        Leading batch dimensions of ``posterior_samples`` (2 for draws grouped
        by chain); the outputs keep them.
    batch_size : int, default=100
        Draws vectorised together; chunks are processed one after the other.

    Examples
    --------
    >>> predictive = Predictive(model, mcmc.get_samples())     # doctest: +SKIP
    >>> predictive(jax.random.PRNGKey(1), x_new)["y"].shape    # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        posterior_samples=None,
        *,
        guide=None,
        params=None,
        num_samples=None,
        return_sites=None,
        batch_ndims=1,
        batch_size=100,
    ):
        if not callable(model):
            raise TypeError(f"Predictive: model must be callable, got {model!r}")
        if posterior_samples is not None and guide is not None:
            raise ValueError("Predictive: give posterior_samples or guide, not both")
        if int(batch_size) < 1:
            raise ValueError(f"Predictive: batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.guide = guide
        self.params = {} if params is None else dict(params)
        self.return_sites = None if return_sites is None else tuple(return_sites)
        self.batch_size = int(batch_size)
        self.posterior_samples = (
            {} if posterior_samples is None else dict(posterior_samples)
        )
        self.batch_shape = self._batch_shape(num_samples, batch_ndims)

    def _batch_shape(self, num_samples, batch_ndims):
        if not self.posterior_samples:
            if num_samples is None:
                raise ValueError(
                    "Predictive: num_samples is required without posterior_samples"
                )
            if int(num_samples) < 1:
                raise ValueError(
                    f"Predictive: num_samples must be >= 1, got {num_samples}"
                )
            return (int(num_samples),)
        batch_shape = _num_draws(self.posterior_samples, batch_ndims)
        if num_samples is not None and int(num_samples) != math.prod(batch_shape):
            raise ValueError(
                f"Predictive: num_samples={num_samples} disagrees with the "
                f"{math.prod(batch_shape)} draws of posterior_samples "
                f"(batch shape {batch_shape})"
            )
        return batch_shape

    def __call__(self, rng_key, *args, **kwargs):
        """Return a dict of draws, each shaped ``batch_shape + site_shape``."""
        num = math.prod(self.batch_shape)
        keys = jax.random.split(rng_key, num)
        draws = {
            name: jnp.reshape(value, (num,) + jnp.shape(value)[len(self.batch_shape) :])
            for name, value in self.posterior_samples.items()
        }
        arrays, static = split_model_args(args, kwargs)
        out = _predict_jit(
            keys,
            draws,
            self.params,
            arrays,
            model=self.model,
            guide=self.guide,
            static=static,
            return_sites=self.return_sites,
            batch_size=min(self.batch_size, num),
        )
        return {
            name: jnp.reshape(value, self.batch_shape + jnp.shape(value)[1:])
            for name, value in out.items()
        }

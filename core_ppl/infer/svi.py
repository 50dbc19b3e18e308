"""Stochastic variational inference: optimise a guide's parameters.

The shape of the algorithm (Hoffman, Blei, Wang and Paisley 2013; Ranganath,
Gerrish and Blei 2014), as in NumPyro:

1. ``init`` runs the guide and then the model (replayed against the guide)
   once, collects every ``param`` site, and maps each value to unconstrained
   space with ``biject_to(constraint).inv``; the optimiser starts there.
2. A step evaluates the loss (e.g. :class:`~core_ppl.infer.elbo.Trace_ELBO`)
   with each ``param`` site substituted by ``biject_to(constraint)(u)`` for
   the unconstrained ``u``, differentiates it with respect to ``u`` and hands
   the gradient to the optimiser. Optimising in unconstrained space keeps
   positive scales positive without projections.
3. ``run`` performs ``num_steps`` steps as one compiled ``lax.scan``. Its
   progress bar is fed from inside the loop (:mod:`core_ppl.infer.progress`)
   by the same compiled program with or without a bar, so results do not
   depend on the bar.

Compiled functions are module level and take the model's arrays as traced
arguments, with the model, guide, optimiser and loss as a static, hashable
configuration (see :func:`core_ppl.infer.util.split_model_args`): a second
SVI on new data of the same shapes reuses the compiled program.

With ``data_devices``, the model's arrays are laid out on a device mesh
before they enter those programs (:mod:`core_ppl.infer.sharding`): the rows
split over the devices, so the loss and its gradient are computed on each
device's rows and summed across devices inside the same compiled step.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core_ppl.distributions.transforms import biject_to
from core_ppl.handlers import replay, seed, substitute, trace
from core_ppl.infer import progress, sharding
from core_ppl.infer.util import merge_model_args, split_model_args
from core_ppl.jit import jit

__all__ = ["SVI", "SVIRunResult", "SVIState"]


class SVIState(NamedTuple):
    """What SVI carries from step to step.

    optim_state : OptimizerState
        The optimiser's state, holding the unconstrained parameters.
    rng_key : jax.random key
        Key for the next step's draws.
    """

    optim_state: Any
    rng_key: Any


class SVIRunResult(NamedTuple):
    """The result of :meth:`SVI.run`.

    params : dict
        Constrained values of the ``param`` sites after the last step.
    state : SVIState
        The final state, to continue with :meth:`SVI.update`.
    losses : jax.Array, shape (num_steps,)
        The loss before each step.
    """

    params: dict
    state: SVIState
    losses: Any


class _SVIConfig(NamedTuple):
    # The static part of a compiled SVI program; hashable.
    model: Any
    guide: Any
    optim: Any
    loss: Any
    stable_update: bool


# --- one step --------------------------------------------------------------------


def _constrain_param_site(unconstrained, site):
    """``substitute_fn`` mapping a param site's unconstrained value into its
    constraint set, using the site's own ``constraint``."""
    if site["type"] != "param" or site["name"] not in unconstrained:
        return None
    return biject_to(site["kwargs"]["constraint"])(unconstrained[site["name"]])


def _loss_fn(unconstrained, rng_key, config, args, kwargs):
    substitute_fn = partial(_constrain_param_site, unconstrained)
    model = substitute(config.model, substitute_fn=substitute_fn)
    guide = substitute(config.guide, substitute_fn=substitute_fn)
    return config.loss.loss(rng_key, {}, model, guide, *args, **kwargs)


def _all_finite(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def _step(state, args, kwargs, config):
    """One optimisation step; returns the new state and the loss before it."""
    rng_key, step_key = jax.random.split(state.rng_key)
    optim = config.optim
    loss, grads = jax.value_and_grad(_loss_fn)(
        optim.get_params(state.optim_state), step_key, config, args, kwargs
    )
    optim_state = optim.update(grads, state.optim_state)
    if config.stable_update:
        # Skip the step (keep the old parameters and moments) when the loss
        # or its gradient is not finite, as NumPyro's ``stable_update``.
        is_finite = jnp.isfinite(loss) & _all_finite(grads)
        optim_state = jax.tree_util.tree_map(
            lambda new, old: jnp.where(is_finite, new, old),
            optim_state,
            state.optim_state,
        )
    return SVIState(optim_state=optim_state, rng_key=rng_key), loss


@partial(jit, static_argnames=("config", "static"))
def _update_jit(state, arrays, *, config, static):
    args, kwargs = merge_model_args(arrays, static)
    return _step(state, args, kwargs, config)


@partial(jit, static_argnames=("config", "static"))
def _evaluate_jit(state, arrays, *, config, static):
    args, kwargs = merge_model_args(arrays, static)
    step_key = jax.random.split(state.rng_key)[1]
    params = config.optim.get_params(state.optim_state)
    return _loss_fn(params, step_key, config, args, kwargs)


# --- the compiled loop -------------------------------------------------------------


def _show_loss(bar, done, loss):
    """``on_report`` of the bar: show the latest loss."""
    bar.set_postfix_str(f"loss {float(loss):.4g}", refresh=False)


@partial(jit, static_argnames=("config", "static", "num_steps"))
def _run_jit(state, arrays, bar_token, *, config, static, num_steps):
    args, kwargs = merge_model_args(arrays, static)

    def body(state, step):
        state, loss = _step(state, args, kwargs, config)
        progress.report(bar_token, step + 1, num_steps, loss)
        return state, loss

    return jax.lax.scan(body, state, jnp.arange(num_steps, dtype=jnp.int32))


# --- the user-facing class -----------------------------------------------------------


def _collect_param_sites(guide_trace, model_trace):
    sites = {}
    for tr in (guide_trace, model_trace):
        for name, site in tr.items():
            if site["type"] == "param" and name not in sites:
                sites[name] = site
    return sites


class SVI:
    """Stochastic variational inference.

    Parameters
    ----------
    model : callable
        The model.
    guide : callable
        The variational family, e.g. an autoguide; it takes the model's
        arguments and samples every latent site of the model.
    optim : core_ppl.optim optimiser
        E.g. ``Adam(0.01)``; anything with ``init``, ``update`` and
        ``get_params`` that is hashable.
    loss : ELBO
        E.g. ``Trace_ELBO()``.
    data_devices : int, optional
        Split the rows of the model's data over this many devices (None: no
        split), as ``MCMC(..., data_devices=...)`` does: each device
        evaluates the ELBO's terms of its rows, summed across devices inside
        the compiled step, so the optimisation follows the one-device run
        up to rounding. Rows are the array arguments whose leading axis is
        as long as that of the first array argument; their number must be
        a multiple of ``data_devices`` (see :mod:`core_ppl.infer.sharding`).

    Examples
    --------
    >>> svi = SVI(model, guide, Adam(0.01), Trace_ELBO())       # doctest: +SKIP
    >>> result = svi.run(jax.random.PRNGKey(0), 2000, x, y=y)   # doctest: +SKIP
    >>> result.params, result.losses                            # doctest: +SKIP
    """

    def __init__(self, model, guide, optim, loss, *, data_devices=None):
        for name, value in (("model", model), ("guide", guide)):
            if not callable(value):
                raise TypeError(f"SVI: {name} must be callable, got {value!r}")
        for method in ("init", "update", "get_params"):
            if not callable(getattr(optim, method, None)):
                raise TypeError(
                    f"SVI: optim must have init, update and get_params methods "
                    f"(e.g. core_ppl.optim.Adam), got {optim!r}"
                )
        if not callable(getattr(loss, "loss", None)):
            raise TypeError(
                f"SVI: loss must be an ELBO like Trace_ELBO(), got {loss!r}"
            )
        self.model = model
        self.guide = guide
        self.optim = optim
        self.loss = loss
        self.data_devices = sharding.check_num_devices("data_devices", data_devices)
        self._transforms = None

    def _model_arrays(self, args, kwargs):
        """``split_model_args``, the arrays laid out on the ``data_devices``
        mesh when there is one."""
        arrays, static = split_model_args(args, kwargs)
        if (self.data_devices or 1) > 1:
            arrays = sharding.shard_rows(arrays, self.data_devices)
        return arrays, static

    def _config(self, stable_update=False):
        return _SVIConfig(
            model=self.model,
            guide=self.guide,
            optim=self.optim,
            loss=self.loss,
            stable_update=bool(stable_update),
        )

    def init(self, rng_key, *args, init_params=None, **kwargs):
        """Run guide and model once and return the initial :class:`SVIState`.

        Parameters
        ----------
        rng_key : jax.random key
        *args, **kwargs
            The model's (and guide's) arguments.
        init_params : dict, optional
            Constrained initial values of ``param`` sites, overriding their
            ``init_value``.
        """
        rng_key, model_key, guide_key = jax.random.split(rng_key, 3)
        init_params = {} if init_params is None else dict(init_params)
        guide = substitute(seed(self.guide, rng_seed=guide_key), data=init_params)
        guide_trace = trace(guide).get_trace(*args, **kwargs)
        model = substitute(
            replay(seed(self.model, rng_seed=model_key), trace=guide_trace),
            data=init_params,
        )
        model_trace = trace(model).get_trace(*args, **kwargs)
        # No param sites at all is legitimate (NumPyro runs it): the loss is
        # then a Monte Carlo estimate at fixed guide, and the steps move nothing.
        sites = _collect_param_sites(guide_trace, model_trace)
        self._transforms = {
            name: biject_to(site["kwargs"]["constraint"])
            for name, site in sites.items()
        }
        unconstrained = {
            name: self._transforms[name].inv(jnp.asarray(site["value"]))
            for name, site in sites.items()
        }
        return SVIState(optim_state=self.optim.init(unconstrained), rng_key=rng_key)

    def get_params(self, state):
        """Constrained values of the ``param`` sites held by ``state``."""
        if self._transforms is None:
            raise RuntimeError("SVI.get_params: call SVI.init (or SVI.run) first")
        unconstrained = self.optim.get_params(state.optim_state)
        return {name: self._transforms[name](u) for name, u in unconstrained.items()}

    def update(self, state, *args, stable_update=False, **kwargs):
        """Take one step; return ``(new_state, loss)`` (loss before the step)."""
        arrays, static = self._model_arrays(args, kwargs)
        return _update_jit(
            state, arrays, config=self._config(stable_update), static=static
        )

    def stable_update(self, state, *args, **kwargs):
        """As :meth:`update`, but skip the step if loss or gradient is not finite."""
        return self.update(state, *args, stable_update=True, **kwargs)

    def evaluate(self, state, *args, **kwargs):
        """The loss at ``state``'s parameters, drawn with ``state``'s key."""
        arrays, static = self._model_arrays(args, kwargs)
        return _evaluate_jit(state, arrays, config=self._config(), static=static)

    def run(
        self,
        rng_key,
        num_steps,
        *args,
        progress_bar=True,
        stable_update=False,
        init_state=None,
        init_params=None,
        **kwargs,
    ):
        """Run ``num_steps`` optimisation steps as one compiled loop.

        Parameters
        ----------
        rng_key : jax.random key
        num_steps : int
        *args, **kwargs
            The model's arguments.
        progress_bar : bool, default=True
            Show a tqdm bar updated about every 5% of the steps.
        stable_update : bool, default=False
            Skip steps whose loss or gradient is not finite.
        init_state : SVIState, optional
            Continue from this state instead of calling :meth:`init`.
        init_params : dict, optional
            Passed to :meth:`init`.

        Returns
        -------
        SVIRunResult
        """
        if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)):
            raise TypeError(f"SVI.run: num_steps must be an int, got {num_steps!r}")
        if num_steps < 1:
            raise ValueError(f"SVI.run: num_steps must be >= 1, got {num_steps}")
        num_steps = int(num_steps)
        if init_state is None:
            init_state = self.init(rng_key, *args, init_params=init_params, **kwargs)
        arrays, static = self._model_arrays(args, kwargs)
        with progress.ProgressBar(progress_bar, num_steps, "SVI", _show_loss) as bar:
            state, losses = _run_jit(
                init_state,
                arrays,
                bar.traced_token(),
                config=self._config(stable_update),
                static=static,
                num_steps=num_steps,
            )
        return SVIRunResult(params=self.get_params(state), state=state, losses=losses)

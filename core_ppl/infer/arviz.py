"""Export draws to ArviZ's ``InferenceData`` (plots, summaries, comparisons).

ArviZ is an optional extra (``pip install arviz``): it is imported inside the
functions that need it, never when this module is imported.

Two steps, so that draws from elsewhere (a fitted estimator's) share the second:

1. :func:`to_arviz` reads an :class:`~core_ppl.infer.MCMC` through its public
   methods only (``get_samples`` and ``get_extra_fields``, grouped by chain);
2. :func:`from_draws` turns draws shaped ``(chain, draw, ...)`` and per-draw
   sampler statistics shaped ``(chain, draw)`` into ``InferenceData``.

Sampler statistics take the names of ArviZ's schema, those its own NumPyro
converter uses: ``num_steps`` becomes ``n_steps``, ``accept_prob`` becomes
``acceptance_rate``, and ``potential_energy`` becomes ``lp``, the log density
(its negative); ``diverging``, ``energy``, ``step_size`` and ``tree_depth``
keep their names.
"""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["from_draws", "sample_stats", "to_arviz"]

# MCMC's per-draw field -> ArviZ's sample_stats name (see the module docstring).
SAMPLE_STATS_NAMES = {
    "diverging": "diverging",
    "num_steps": "n_steps",
    "accept_prob": "acceptance_rate",
    "energy": "energy",
    "potential_energy": "lp",
    "step_size": "step_size",
    "tree_depth": "tree_depth",
}


def import_arviz():
    """Import ArviZ, or raise an ImportError that says how to install it."""
    try:
        import arviz
    except ImportError as error:
        raise ImportError(
            "exporting to ArviZ needs the optional package arviz: "
            "pip install arviz (or pip install 'bayes-sklearn[arviz]')"
        ) from error
    return arviz


def sample_stats(fields):
    """ArviZ's ``sample_stats`` from per-draw fields named as MCMC's.

    Parameters
    ----------
    fields : dict of str to array
        Per-draw statistics, e.g. ``mcmc.get_extra_fields(group_by_chain=True)``.

    Returns
    -------
    dict of str to ndarray
        The same statistics under ArviZ's names; ``lp`` is minus the
        potential energy. Unknown fields keep their names.

    Examples
    --------
    >>> import numpy as np
    >>> stats = sample_stats({"num_steps": np.array([[3, 7]]),
    ...                       "potential_energy": np.array([[1.5, 2.0]])})
    >>> sorted(stats), stats["lp"].tolist()
    (['lp', 'n_steps'], [[-1.5, -2.0]])
    """
    stats = {}
    for name, value in fields.items():
        value = np.asarray(jax.device_get(value))
        # ArviZ's lp is the log density; the sampler reports its negative.
        stats[SAMPLE_STATS_NAMES.get(name, name)] = (
            -value if name == "potential_energy" else value
        )
    return stats


def _check_draws(posterior, stats):
    """ValueError unless every site has the same leading (chain, draw) axes."""
    if not isinstance(posterior, dict) or not posterior:
        raise ValueError("posterior must be a non-empty dict of site draws")
    shapes = {name: np.shape(value) for name, value in posterior.items()}
    shapes.update({f"sample_stats[{n!r}]": np.shape(v) for n, v in stats.items()})
    leading = {shape[:2] for shape in shapes.values() if len(shape) >= 2}
    if len(leading) != 1 or any(len(shape) < 2 for shape in shapes.values()):
        raise ValueError(
            "every site's draws must be shaped (n_chains, n_draws, ...) with the "
            f"same n_chains and n_draws; got shapes {shapes}"
        )


def _check_dims(dims, posterior):
    """ValueError when ``dims`` names an unknown site or too many axes."""
    for name, site_dims in dims.items():
        if name not in posterior:
            raise ValueError(
                f"dims names the site {name!r}, which is not among the draws: "
                f"{sorted(posterior)}"
            )
        n_axes = np.ndim(posterior[name]) - 2
        if isinstance(site_dims, str) or len(site_dims) > n_axes:
            raise ValueError(
                f"dims[{name!r}] must be a list of at most {n_axes} axis names "
                f"(the site's draws have shape {np.shape(posterior[name])}), got "
                f"{site_dims!r}"
            )


def from_draws(posterior, stats=None, *, coords=None, dims=None, attrs=None):
    """ArviZ ``InferenceData`` from draws grouped by chain.

    Parameters
    ----------
    posterior : dict of str to array
        Draws of each site, shaped ``(n_chains, n_draws, *site_shape)``.
    stats : dict of str to array, optional
        Per-draw sampler statistics shaped ``(n_chains, n_draws)``, already
        under ArviZ's names (see :func:`sample_stats`).
    coords : dict of str to sequence, optional
        Labels of named axes, e.g. ``{"feature": ["age", "income"]}``.
    dims : dict of str to list of str, optional
        Names of each site's axes after ``(chain, draw)``, e.g.
        ``{"coef": ["feature"]}``; unnamed axes get ArviZ's default names
        (``coef_dim_0``, ...).
    attrs : dict, optional
        Attributes of the ``posterior`` group, besides the library's name
        and version.

    Returns
    -------
    arviz.InferenceData
        With a ``posterior`` group and, when ``stats`` is given, a
        ``sample_stats`` group.
    """
    stats = {} if stats is None else dict(stats)
    dims = {} if dims is None else dict(dims)
    posterior = {
        name: np.asarray(jax.device_get(value)) for name, value in posterior.items()
    }
    _check_draws(posterior, stats)
    _check_dims(dims, posterior)
    az = import_arviz()
    from core_ppl import __version__

    attrs = {
        "inference_library": "core_ppl",
        "inference_library_version": __version__,
        **({} if attrs is None else attrs),
    }
    return az.from_dict(
        posterior=posterior,
        sample_stats=stats or None,
        coords=None if coords is None else dict(coords),
        dims={name: list(value) for name, value in dims.items()},
        attrs=dict(attrs),
        posterior_attrs=dict(attrs),
    )


def to_arviz(mcmc, coords=None, dims=None):
    """Convert a run :class:`~core_ppl.infer.MCMC` to ArviZ's ``InferenceData``.

    Parameters
    ----------
    mcmc : MCMC
        A sampler after ``run``. Every recorded per-draw field becomes a
        sample statistic: ``diverging`` always, the others when requested
        with ``run(..., extra_fields=("num_steps", "accept_prob", "energy",
        "potential_energy", "step_size", "tree_depth"))``.
    coords : dict of str to sequence, optional
        Labels of named axes, e.g. ``{"feature": ["age", "income"]}``.
    dims : dict of str to list of str, optional
        Names of each site's axes after ``(chain, draw)``, e.g.
        ``{"coef": ["feature"]}``.

    Returns
    -------
    arviz.InferenceData
        ``posterior`` (every site, deterministic ones included, with
        dimensions ``(chain, draw, ...)``) and ``sample_stats`` (named as
        ArviZ's schema: ``diverging``, ``n_steps``, ``acceptance_rate``,
        ``energy``, ``lp``, ``step_size``, ``tree_depth``).

    Raises
    ------
    ImportError
        When arviz is not installed.

    Examples
    --------
    >>> import jax
    >>> import core_ppl as ppl
    >>> import core_ppl.distributions as dist
    >>> from core_ppl.infer import MCMC, NUTS, to_arviz
    >>> def model():
    ...     ppl.sample("mu", dist.Normal(0.0, 1.0).expand((2,)).to_event(1))
    >>> mcmc = MCMC(NUTS(model), num_warmup=50, num_samples=40, num_chains=2,
    ...             progress_bar=False)
    >>> mcmc.run(jax.random.PRNGKey(0), extra_fields=("num_steps",))
    >>> idata = to_arviz(mcmc, coords={"axis": ["a", "b"]}, dims={"mu": ["axis"]})
    >>> dict(idata.posterior["mu"].sizes)
    {'chain': 2, 'draw': 40, 'axis': 2}
    >>> sorted(idata.sample_stats.data_vars)
    ['diverging', 'n_steps']
    """
    for method in ("get_samples", "get_extra_fields"):
        if not callable(getattr(mcmc, method, None)):
            raise TypeError(
                f"mcmc must be a core_ppl MCMC (with {method}), got "
                f"{type(mcmc).__name__}"
            )
    posterior = mcmc.get_samples(group_by_chain=True)
    stats = sample_stats(mcmc.get_extra_fields(group_by_chain=True))
    return from_draws(posterior, stats, coords=coords, dims=dims)

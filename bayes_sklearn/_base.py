"""The shared estimator base: scikit-learn conventions around core_ppl inference.

Every estimator's ``fit`` has the same shape:

1. validate the constructor parameters (``_parameter_constraints``) and the
   data (``validate_data``, ``_check_sample_weight``);
2. turn ``random_state`` into a JAX key, so a fit is reproducible bit for bit;
3. let the subclass encode the data into row arrays and hyperparameter arrays;
4. pad the rows to a bucket size, with zero weight on the padding rows;
5. run NUTS (``core_ppl.infer.MCMC``) or SVI (an ``AutoNormal`` guide) on the
   subclass's module-level model function;
6. store NumPy draws in ``posterior_samples_``, convergence facts in
   ``diagnostics_``, and let the subclass derive its fitted attributes.

Why padding and array hyperparameters: the inference drivers cache their
compiled program on the model function's identity, the sampler settings and
the shapes of the arguments. Passing the data *and* the hyperparameters as
arrays to a module-level model, and rounding the number of rows up to a few
bucket sizes, makes the folds of a cross-validation and every point of a
hyperparameter grid reuse one compiled program.
"""

from __future__ import annotations

import functools
import warnings
from numbers import Integral
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.sparse as sp
from jax.experimental import sparse as jsparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    check_random_state,
    validate_data,
)

from bayes_sklearn import _arviz, _persistence
from core_ppl import plate
from core_ppl.diagnostics import split_rank_normalized_ess
from core_ppl.diagnostics import summary as _site_summaries
from core_ppl.distributions import biject_to
from core_ppl.infer import MCMC, NUTS, SVI, Trace_ELBO
from core_ppl.infer.autoguide import AutoNormal
from core_ppl.infer.initialization import init_to_feasible, init_to_median
from core_ppl.infer.sharding import check_num_devices
from core_ppl.optim import Adam

__all__ = [
    "BaseBayesianEstimator",
    "ModelInputs",
    "bucket_size",
    "sparse_rows_as_bcoo",
]

# Split R-hat above this means the chains disagree (Vehtari, Gelman, Simpson,
# Carpenter and Buerkner 2021, section 4: "R-hat < 1.01").
_R_HAT_THRESHOLD = 1.01
# Bulk ESS below this many per chain warns. Vehtari et al. (2021, section
# 4.3), and the documentation of Stan's ess_bulk, ask for a bulk ESS of at
# least 100 per chain: below it the R-hat and ESS estimates themselves are
# unreliable, and the Monte Carlo error of a posterior mean exceeds a tenth
# of the posterior sd. ESS <= S log10(S) for S draws, so one chain of fewer
# than 57 draws always warns.
_BULK_ESS_PER_CHAIN = 100
# SVI has levelled off when the mean loss over the last window of steps is no
# lower than over the window before, up to this many standard errors of the
# difference. The losses of single-particle ELBO steps are noisy but close to
# independent (each step draws fresh noise), so under a flat trace the
# difference of means over standard error is about N(0, 1): 4 leaves room
# for the correlation Adam's momentum adds (converged fits of our estimators
# stay below 3; runs of 50 to 200 steps are far above).
_SVI_TREND_Z = 4.0
# Windows are the last tenth of the steps, at least 50 steps where the run
# allows (shorter windows cannot see a trend under the noise); runs under 20
# steps (windows under 10) are too short to judge at all.
_SVI_MIN_WINDOW = 50
_SVI_SHORTEST_WINDOW = 10
# Adam's step size for SVI. The AutoNormal guide starts at scale 0.1 around
# the prior median, and 0.01 per step moves it over a few standardized units
# in the default number of steps without the noisy single-particle ELBO
# gradient throwing it around.
_SVI_STEP_SIZE = 0.01


# --- helpers -----------------------------------------------------------------


class ModelInputs(NamedTuple):
    """What ``_model_inputs`` hands to the sampler and to the later hooks.

    Attributes
    ----------
    rows : tuple of array
        Arrays whose first axis is the samples; the base pads them to the
        row bucket and passes them first to the model.
    hyperparameters : tuple
        Values passed to the model after the sample weights, as arrays, so
        that new values reuse the compiled program.
    context : object, default=None
        Whatever the encoding computed that ``_trim_draws`` and
        ``_set_fitted_attributes`` need (a standardiser, a change of
        coordinates, the class labels): handed to them by the base, never
        stored on the estimator in between.
    """

    rows: tuple
    hyperparameters: tuple
    context: Any = None


def bucket_size(n, minimum):
    """Round a size up to its bucket: ``minimum``, then quarter octaves.

    Buckets are ``minimum`` for ``n <= minimum``, then the multiples of
    ``2**(k - 2)`` in ``(2**k, 2**(k + 1)]``: at most 25% of a bucket is
    padding, and sizes that differ by a few units (the training folds of a
    cross-validation) nearly always share a bucket, hence a compiled program.

    Parameters
    ----------
    n : int
        The size to pad, e.g. the number of rows of the training data.
    minimum : int
        The smallest bucket; every ``n <= minimum`` shares it.

    Returns
    -------
    int
        The padded size, ``>= n``.
    """
    if n <= minimum:
        return minimum
    octave = (n - 1).bit_length() - 1  # 2**octave < n
    step = max(1, 2 ** (octave - 2))
    return -(-n // step) * step


def _padded_rows(n, minimum, n_devices):
    """Rows after padding: the bucket of ``n``, rounded up to a multiple of
    ``n_devices`` so the rows split evenly (buckets are multiples of powers
    of two, so with 2, 4 or 8 devices this rarely adds a row)."""
    n_padded = bucket_size(n, minimum)
    if n_devices is None:
        return n_padded
    return -(-n_padded // n_devices) * n_devices


def _pad_rows(array, n_rows):
    """Append zero rows so that ``array`` has ``n_rows`` rows."""
    padding = [(0, n_rows - array.shape[0])] + [(0, 0)] * (array.ndim - 1)
    return np.pad(array, padding)


def _as_jax(array):
    # Through NumPy first so that Python scalars become strongly typed
    # arrays: a weakly typed argument would be a different jit signature.
    return jnp.asarray(np.asarray(array))


# Stored entries of a sparse design are padded to a bucket of at least this
# many, as rows are (see bucket_size): data sets with about as many nonzeros
# (cross-validation folds, the encodings of one sparse format or another)
# share a compiled sampler.
_MIN_PADDED_NONZEROS = 1024


def sparse_rows_as_bcoo(X, n_rows):
    """A scipy.sparse ``X`` as a JAX ``BCOO`` matrix with ``n_rows`` rows.

    The extra rows are empty, like the zero rows of :func:`_pad_rows`, and
    the stored entries are padded to a bucket with zeros at index (0, 0),
    which add nothing to a product (BCOO sums duplicate entries). Only the
    nonzeros are copied: the dense matrix is never formed.

    Parameters
    ----------
    X : scipy.sparse matrix or array of shape (n_samples, n_features)
        Validated input.
    n_rows : int
        Rows of the result, ``>= n_samples``.

    Returns
    -------
    jax.experimental.sparse.BCOO of shape (n_rows, n_features)
    """
    coo = sp.coo_array(X)
    coo.sum_duplicates()
    n_stored = bucket_size(coo.nnz, _MIN_PADDED_NONZEROS)
    if max(n_rows, X.shape[1], n_stored) >= np.iinfo(np.int32).max:
        raise ValueError(
            f"sparse X of shape {X.shape} with {coo.nnz} nonzeros is too large "
            "for 32-bit indices"
        )
    indices = np.zeros((n_stored, 2), np.int32)
    indices[: coo.nnz, 0] = coo.row
    indices[: coo.nnz, 1] = coo.col
    data = np.zeros(n_stored, coo.dtype)
    data[: coo.nnz] = coo.data
    return jsparse.BCOO(
        (jnp.asarray(data), jnp.asarray(indices)),
        shape=(n_rows, X.shape[1]),
        indices_sorted=False,  # the padding entries close the list
        unique_indices=False,
    )


def _rows_as_jax(rows, n_rows):
    """Row array padded to ``n_rows`` rows, as a JAX array (``BCOO`` when
    sparse, so that a sparse design stays sparse in the model)."""
    if sp.issparse(rows):
        return sparse_rows_as_bcoo(rows, n_rows)
    return _as_jax(_pad_rows(np.asarray(rows), n_rows))


def _jax_key(random_state):
    """A JAX PRNG key drawn from ``random_state`` (None, int, RandomState or
    Generator), so that an int seed reproduces a fit bit for bit."""
    high = np.iinfo(np.int32).max
    if isinstance(random_state, np.random.Generator):
        seed = random_state.integers(high)
    else:
        seed = check_random_state(random_state).randint(high)
    return jax.random.PRNGKey(int(seed))


def _element_labels(name, shape, axis_labels):
    """Readable names of a site's scalar elements, e.g. ``coef[mean radius]``."""
    if shape == ():
        return [name]
    axes = [
        axis_labels[axis] if axis < len(axis_labels) else range(size)
        for axis, size in enumerate(shape)
    ]
    return [
        f"{name}[{', '.join(str(axes[a][i]) for a, i in enumerate(index))}]"
        for index in np.ndindex(*shape)
    ]


# --- inference runs ----------------------------------------------------------

# Per-draw statistics of NUTS kept in ``diagnostics_["sample_stats"]`` (for
# ``to_arviz``); the sampler records them all anyway, so asking costs nothing.
_SAMPLE_STATS = (
    "diverging",
    "num_steps",
    "tree_depth",
    "accept_prob",
    "energy",
    "potential_energy",
    "step_size",
)


def _run_nuts(
    model, rng_key, args, *, n_warmup, n_draws, n_chains, verbose, n_devices=None
):
    """NUTS on ``model(*args)``; returns draws grouped by chain and the
    per-draw statistics (``_SAMPLE_STATS``, each shaped ``(n_chains,
    n_draws)``), both as dicts of NumPy arrays."""
    mcmc = MCMC(
        NUTS(model),
        num_warmup=n_warmup,
        num_samples=n_draws,
        num_chains=n_chains,
        chain_method="vectorized",
        progress_bar=verbose > 0,
        data_devices=n_devices,
    )
    mcmc.run(rng_key, *args, extra_fields=_SAMPLE_STATS)
    grouped = {
        name: np.asarray(value)
        for name, value in mcmc.get_samples(group_by_chain=True).items()
    }
    extra = mcmc.get_extra_fields(group_by_chain=True)
    stats = {
        name: np.asarray(value).reshape(n_chains, n_draws)
        for name, value in extra.items()
    }
    return grouped, stats


def _init_to_finite_median(site=None):
    """The SVI guide's starting point: each latent's prior median
    (:func:`~core_ppl.infer.init_to_median`, NumPyro's default for
    autoguides), or where that median lies on the edge of the support in
    floating point (a Gamma(1e-6, 1e-6) hyperprior's median underflows to
    0, whose logarithm is -inf) the site's feasible point
    (:func:`~core_ppl.infer.init_to_feasible`) instead."""
    if site is None:
        return _init_to_finite_median
    median = init_to_median(site)
    if median is None:
        return None
    unconstrained = biject_to(site["fn"].support).inv(median)
    return jnp.where(
        jnp.all(jnp.isfinite(unconstrained)), median, init_to_feasible(site)
    )


@functools.cache
def _minibatch_model(model, n_row_args, n_rows, batch_size):
    """``model`` fitted on ``batch_size`` of its ``n_rows`` rows per call.

    The rows are the first ``n_row_args`` arguments (the weights last among
    them). A plate of ``n_rows`` with ``subsample_size=batch_size`` draws the
    rows, without replacement and anew at each SVI step, inside the compiled
    update: the data go to the device once, and a step touches only its
    batch. The plate would scale the sites *inside* it by ``n_rows /
    batch_size``; the model's prior sites must not be, so the plate only
    draws the rows and the factor goes into the row weights, which scale the
    likelihood alone. The sum of the batch's weighted log-likelihoods times
    ``n_rows / batch_size`` is an unbiased estimate of the full sum (the
    padding rows weigh 0, so drawing them too keeps it unbiased), hence an
    unbiased ELBO gradient (the NumPyro paper, section 2.2). Cached, so that
    every fit of these settings reuses one compiled program.
    """

    def minibatch_model(*args):
        rows, others = args[:n_row_args], args[n_row_args:]
        with plate("_minibatch", n_rows, subsample_size=batch_size) as indices:
            # Indexing, not ``subsample``, so that sparse (BCOO) rows work too.
            batch = [row[indices] for row in rows]
        batch[-1] = batch[-1] * (n_rows / batch_size)
        return model(*batch, *others)

    minibatch_model.__qualname__ = f"minibatch_model[{model.__qualname__}]"
    return minibatch_model


def _run_svi(
    model, rng_key, args, *, svi_steps, n_draws, verbose, minibatch=None, n_devices=None
):
    """SVI with a mean-field ``AutoNormal`` guide, then ``n_draws`` from it.

    ``minibatch``, ``(n_row_args, batch_size)`` or None, fits on minibatches
    of the rows (:func:`_minibatch_model`). Returns the draws (one "chain")
    and the ELBO trace (``-losses``).
    """
    if minibatch is not None:
        n_row_args, batch_size = minibatch
        n_rows = args[0].shape[0]
        model = _minibatch_model(model, n_row_args, n_rows, batch_size)
    fit_key, draw_key = jax.random.split(rng_key)
    guide = AutoNormal(model, init_loc_fn=_init_to_finite_median)
    svi = SVI(
        model, guide, Adam(_SVI_STEP_SIZE), Trace_ELBO(), data_devices=n_devices
    )
    result = svi.run(fit_key, svi_steps, *args, progress_bar=verbose > 0)
    draws = guide.sample_posterior(draw_key, result.params, sample_shape=(n_draws,))
    grouped = {name: np.asarray(value)[None] for name, value in draws.items()}
    return grouped, -np.asarray(result.losses)


def _finite_extreme(per_site, key, reduce):
    """``reduce`` (np.max or np.min) of ``key`` over all finite elements."""
    values = np.concatenate([np.ravel(stats[key]) for stats in per_site])
    values = values[np.isfinite(values)]
    return float(reduce(values)) if values.size else float("nan")


def _min_bulk_ess(grouped):
    """Smallest bulk ESS over all finite elements (NaN below 4 draws)."""
    values = [
        np.ravel(split_rank_normalized_ess(value))
        for value in grouped.values()
        if value.shape[1] >= 4
    ]
    values = np.concatenate(values) if values else np.array([])
    values = values[np.isfinite(values)]
    return float(values.min()) if values.size else float("nan")


def _describe_sites(counts, total):
    return ", ".join(
        f"'{name}' ({counts[name]} of {total[name]} elements)" for name in counts
    )


def _count_undefined_r_hat(value):
    """Elements of one site (draws ``(n_chains, n_draws, ...)``) whose split
    R-hat is undefined: ``(not finite, constant in every half chain)``."""
    is_finite = np.all(np.isfinite(value), axis=(0, 1))
    half = value.shape[1] // 2
    halves = np.concatenate([value[:, :half], value[:, -half:]], axis=0)
    # R-hat divides by the mean within-half variance: zero only when every
    # half chain is constant (a single moving chain keeps it positive).
    with np.errstate(invalid="ignore"):  # inf - inf in overflowed draws
        spread = np.ptp(halves, axis=1)
    is_stuck = np.all(spread == 0, axis=0) & is_finite
    return int(np.sum(~is_finite)), int(np.sum(is_stuck))


def _why_r_hat_undefined(grouped):
    """Why split R-hat is NaN or infinite for some parameters, else None.

    Split R-hat needs 4 draws per chain, finite draws, and draws that vary
    within each half chain (it divides by the within-chain variance): a
    chain that rejects every transition is constant.
    """
    if not grouped:
        return None
    n_draws = next(iter(grouped.values())).shape[1]
    if n_draws < 4:
        return (
            f"split R-hat needs at least 4 draws per chain, got n_draws={n_draws}. "
            "Increase n_draws"
        )
    sizes = {name: int(np.prod(value.shape[2:])) for name, value in grouped.items()}
    counts = {name: _count_undefined_r_hat(value) for name, value in grouped.items()}
    non_finite = {name: c[0] for name, c in counts.items() if c[0]}
    constant = {name: c[1] for name, c in counts.items() if c[1]}
    reasons = []
    if non_finite:
        reasons.append(
            f"the draws of {_describe_sites(non_finite, sizes)} are not finite "
            "(the sampler overflowed): standardize X or use a smaller prior scale"
        )
    if constant:
        reasons.append(
            f"the draws of {_describe_sites(constant, sizes)} never change within "
            "a chain (every transition was rejected, or the sampler is stuck): "
            "increase n_warmup so the step size adapts, and standardize X"
        )
    return "; ".join(reasons) if reasons else None


def _nuts_diagnostics(grouped, diverging):
    """Divergences, worst split R-hat, smallest ESS and bulk ESS over all
    sites, and why R-hat could not be computed where it could not."""
    per_site = list(_site_summaries(grouped, group_by_chain=True).values())
    return {
        "inference": "nuts",
        "n_chains": int(diverging.shape[0]),
        "n_draws": int(diverging.shape[1]),
        "n_divergences": int(diverging.sum()),
        "max_r_hat": _finite_extreme(per_site, "r_hat", np.max),
        "min_ess": _finite_extreme(per_site, "n_eff", np.min),
        "min_bulk_ess": _min_bulk_ess(grouped),
        "r_hat_undefined": _why_r_hat_undefined(grouped),
    }


def _warn_if_not_converged(diagnostics, estimator_name):
    """ConvergenceWarning naming the setting to change."""
    n_div = diagnostics["n_divergences"]
    if n_div:
        total = diagnostics["n_chains"] * diagnostics["n_draws"]
        warnings.warn(
            f"{estimator_name}: {n_div} of {total} NUTS transitions after warmup "
            "diverged, so the draws may miss part of the posterior. Increase "
            "n_warmup (a longer step-size adaptation), standardize X, or use a "
            "smaller prior scale.",
            ConvergenceWarning,
            stacklevel=5,  # the caller of fit
        )
    r_hat = diagnostics["max_r_hat"]
    if r_hat > _R_HAT_THRESHOLD:
        warnings.warn(
            f"{estimator_name}: the largest split R-hat is {r_hat:.3f} > "
            f"{_R_HAT_THRESHOLD}, so the chains have not mixed. Increase n_warmup "
            "and n_draws; with n_chains >= 2 the check also compares chains.",
            ConvergenceWarning,
            stacklevel=5,  # the caller of fit
        )
    undefined = diagnostics.get("r_hat_undefined")
    if undefined:
        warnings.warn(
            f"{estimator_name}: R-hat cannot be computed, so convergence was not "
            f"checked: {undefined}.",
            ConvergenceWarning,
            stacklevel=5,  # the caller of fit
        )
    bulk_ess = diagnostics.get("min_bulk_ess", float("nan"))
    threshold = _BULK_ESS_PER_CHAIN * diagnostics["n_chains"]
    if bulk_ess < threshold:
        warnings.warn(
            f"{estimator_name}: the smallest bulk effective sample size is "
            f"{bulk_ess:.0f} < {threshold} ({_BULK_ESS_PER_CHAIN} per chain), so "
            "posterior means, intervals and R-hat are unreliable. Increase n_draws "
            "(and n_warmup, so the sampler adapts), or standardize X so the sampler "
            "moves faster.",
            ConvergenceWarning,
            stacklevel=5,  # the caller of fit
        )


def _svi_window(num_steps):
    """Steps per window: the last tenth, at least 50 where the run allows."""
    return max(num_steps // 10, min(num_steps // 2, _SVI_MIN_WINDOW))


def _svi_trend(losses):
    """Standard errors by which the mean loss of the last window of steps is
    below that of the window before (about N(0, 1) once levelled off), or
    None when the run is too short to tell."""
    losses = np.asarray(losses, dtype=np.float64)
    window = _svi_window(losses.shape[0])
    if window < _SVI_SHORTEST_WINDOW:
        return None
    before, last = losses[-2 * window : -window], losses[-window:]
    drop = before.mean() - last.mean()
    if not np.isfinite(drop):
        return float("inf")  # the loss overflowed: certainly not settled
    se = np.sqrt((before.var(ddof=1) + last.var(ddof=1)) / window)
    if se == 0:
        return 0.0 if drop <= 0 else float("inf")
    return float(drop / se)


def _warn_if_svi_not_converged(elbo, estimator_name):
    """ConvergenceWarning when the SVI loss (-ELBO) is still going down."""
    trend = _svi_trend(-np.asarray(elbo))
    if trend is None:
        message = (
            f"only {len(elbo)} SVI steps, too few to check that the ELBO has "
            "levelled off, so the variational approximation may not have converged"
        )
    elif trend > _SVI_TREND_Z:
        message = (
            f"the ELBO has not levelled off: over the last {_svi_window(len(elbo))} "
            f"steps the loss is still falling ({trend:.1f} standard errors below "
            "the steps before), so the variational approximation has not converged"
        )
    else:
        return
    warnings.warn(
        f"{estimator_name}: {message}. Increase svi_steps, or standardize X.",
        ConvergenceWarning,
        stacklevel=5,  # the caller of fit
    )


# --- the base class ------------------------------------------------------------


class BaseBayesianEstimator(BaseEstimator):
    """Base class of the Bayesian estimators: posterior inference with core_ppl.

    Not meant to be used directly. Subclasses supply a probabilistic model and
    turn its posterior draws into scikit-learn attributes; this class does
    everything else (validation, random keys, padding, NUTS or SVI, draws,
    diagnostics, :meth:`summary`).

    Parameters
    ----------
    inference : {"nuts", "svi"}
        ``"nuts"`` samples the posterior with the No-U-Turn Sampler;
        ``"svi"`` fits a mean-field normal approximation (``AutoNormal``)
        by stochastic variational inference, then draws from it.
    n_warmup : int
        NUTS warmup (adaptation) iterations per chain, discarded.
    n_draws : int
        Posterior draws kept per chain (NUTS) or drawn from the fitted
        guide (SVI).
    n_chains : int
        Number of NUTS chains, run vectorized in one compiled program.
        Ignored by SVI.
    svi_steps : int
        Optimization steps of SVI (Adam). Ignored by NUTS.
    batch_size : int or None
        Rows per SVI step (minibatches drawn anew at each step, the
        log-likelihood scaled by ``n_samples / batch_size``); None or at
        least ``n_samples``: all rows. Only with ``inference="svi"``; read
        only where the subclass has the parameter.
    random_state : int, RandomState instance, Generator or None
        Seeds the JAX key of the fit. An int makes fits reproducible bit for
        bit.
    verbose : int
        ``0`` is quiet; ``> 0`` shows a progress bar.
    n_devices : int or None
        Split the rows of the data over this many devices (None: one
        device). The fit is the same up to rounding; the rows are padded
        (with zero weight) to a multiple of ``n_devices``. Subclasses that
        take it declare it in their ``__init__``; without it, one device.

    Attributes
    ----------
    posterior_samples_ : dict of str to ndarray
        Draws of every latent site, draws first, chains concatenated:
        shape ``(n_chains * n_draws, *site_shape)``.
    diagnostics_ : dict
        For NUTS: ``inference``, ``n_chains``, ``n_draws``,
        ``n_divergences``, ``max_r_hat``, ``min_ess`` and ``min_bulk_ess``
        (over all scalar parameters), ``r_hat_undefined`` (why R-hat
        could not be computed for some parameters, or None) and
        ``sample_stats`` (NUTS's per-draw statistics, each shaped
        ``(n_chains, n_draws)``: ``diverging``, ``num_steps``,
        ``tree_depth``, ``accept_prob``, ``energy``, ``potential_energy``,
        ``step_size``; see :meth:`to_arviz`). For SVI:
        ``inference``, ``n_chains`` (1), ``n_draws``, ``final_elbo`` (mean
        ELBO over the last tenth of the steps) and ``elbo`` (the whole
        trace). A fit warns (``ConvergenceWarning``, naming what to change)
        on divergences, R-hat above 1.01 or not computable, a bulk ESS
        below 100 per chain, or an SVI loss still falling at the last
        step.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when ``X`` has string column
        names.

    Notes
    -----
    Extension points, all used by :meth:`fit`:

    ``_parameter_constraints`` : dict
        Extend the shared constraints with the subclass's parameters:
        ``{**BaseBayesianEstimator._parameter_constraints, ...}``.
    ``_validation_kwargs`` : dict
        Extra keyword arguments of ``validate_data`` for ``(X, y)``, e.g.
        ``{"y_numeric": True}`` for a regressor.
    ``_get_model(self, context)`` : required
        Return the model function (``context`` is the one of
        :class:`ModelInputs`, for models that depend on the encoding). It
        must be a *module-level* function, or one made once and reused
        (its identity keys the compile cache), called as
        ``model(*rows, weight, *hyperparameters)``. ``weight`` has shape
        ``(n_padded,)``: the sample weight of each row, 0 on padding rows;
        the model must scale each row's log-likelihood by it (for example
        with ``handlers.mask(mask=weight > 0)`` and
        ``handlers.scale(scale=jnp.where(weight > 0, weight, 1.0))``).
    ``_model_inputs(self, X, y, sample_weight)`` : required
        Given validated NumPy ``X``, ``y`` and ``sample_weight``, return a
        :class:`ModelInputs`: ``rows``, a tuple of arrays whose first axis
        is the samples (padded here); ``hyperparameters``, a tuple of values
        (scalars or arrays, passed as arrays so new values reuse the
        compiled program); and ``context``, whatever the later hooks need
        from the encoding (e.g. the class labels), which the base hands to
        them: hooks pass state by return value, never through attributes
        set in one hook and read in another.
    ``_accept_sparse`` : bool or tuple of str, default=False
        The scipy.sparse formats ``fit`` and prediction accept, as
        ``validate_data``'s ``accept_sparse`` (e.g. ``("csr", "csc")``;
        other formats are converted to the first). A sparse row array of
        ``_model_inputs`` reaches the model as a JAX ``BCOO`` matrix (see
        :func:`sparse_rows_as_bcoo`), so the model must only use operations
        ``BCOO`` supports on it (``X @ coef``, ``X.shape``). Sets the
        ``input_tags.sparse`` tag.
    ``_min_padded_rows`` : int, default=64
        Smallest row bucket (see :func:`bucket_size`). Models whose cost
        grows slowly with the rows (linear predictors) can afford a larger
        one, so that small data sets of different sizes share a program.
    ``_trim_draws(self, grouped, context)`` : optional
        Trim the model's draws, a dict of NumPy arrays shaped ``(n_chains,
        n_draws, ...)``, to the reported parameters, before diagnostics and
        ``posterior_samples_``: drop parameters that exist only because of
        padding (e.g. coefficients of zero columns added in
        ``_model_inputs``), map reparameterized sites back.
    ``_set_fitted_attributes(self, context)`` : optional
        Derive attributes such as ``coef_`` or ``classes_`` from
        ``posterior_samples_`` and the ``context`` of ``_model_inputs``.
    ``_parameter_labels(self)`` : optional
        Map a site name to one label sequence per axis of the site, used by
        :meth:`summary` (default: feature names for nothing, indices for
        everything).

    Subclasses write their own keyword-only ``__init__`` that only assigns,
    and may override :meth:`fit` to document it, delegating to ``_fit``.
    Prediction methods start with ``self._validate_X_predict(X)``.
    """

    _parameter_constraints: dict = {
        "inference": [StrOptions({"nuts", "svi"})],
        "n_warmup": [Interval(Integral, 1, None, closed="left")],
        "n_draws": [Interval(Integral, 1, None, closed="left")],
        "n_chains": [Interval(Integral, 1, None, closed="left")],
        "svi_steps": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state", np.random.Generator],
        "verbose": ["verbose"],
        "n_devices": [Interval(Integral, 1, None, closed="left"), None],
    }

    _validation_kwargs: dict = {}
    _min_padded_rows: int = 64
    _accept_sparse: bool | tuple = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = bool(self._accept_sparse)
        return tags

    # --- fit ---------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Sample (or approximate) the posterior given the training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample: it multiplies the sample's
            log-likelihood. None means 1 for every sample.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight=None):
        self._validate_params()
        # Floats only: integer X would otherwise be a separate compiled program.
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=self._accept_sparse,
            dtype=[np.float64, np.float32],
            **self._validation_kwargs,
        )
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        minibatch = self._minibatch(X.shape[0])
        rng_key = _jax_key(self.random_state)
        inputs = self._model_inputs(X, y, sample_weight)
        n_devices = check_num_devices("n_devices", getattr(self, "n_devices", None))
        n_padded = _padded_rows(X.shape[0], self._min_padded_rows, n_devices)
        args = (
            *(_rows_as_jax(row, n_padded) for row in inputs.rows),
            _as_jax(_pad_rows(sample_weight, n_padded)),
            *(_as_jax(value) for value in inputs.hyperparameters),
        )
        if minibatch is not None:  # the rows, then the weights, then the rest
            minibatch = (len(inputs.rows) + 1, minibatch)
        self.posterior_samples_, self.diagnostics_ = self._infer(
            rng_key, args, inputs.context, minibatch=minibatch
        )
        self._set_fitted_attributes(inputs.context)
        return self

    def _minibatch(self, n_samples):
        """The rows per SVI step, or None for all of them (the full batch).

        Estimators without a ``batch_size`` parameter always use all rows.
        """
        batch_size = getattr(self, "batch_size", None)
        if batch_size is None:
            return None
        if self.inference != "svi":
            raise ValueError(
                f"{type(self).__name__}: batch_size={batch_size} needs "
                f"inference='svi' (minibatches are an SVI method), got "
                f"inference={self.inference!r}; set batch_size=None for NUTS"
            )
        # A batch of all rows is the full-batch fit (as scikit-learn's MLP
        # clips batch_size), so that cross-validation folds smaller than
        # the batch still fit.
        return None if batch_size >= n_samples else int(batch_size)

    def _infer(self, rng_key, args, context, minibatch=None):
        """Run the chosen inference; return merged draws and diagnostics.

        ``context`` is the one of :class:`ModelInputs`, for ``_trim_draws``;
        ``minibatch`` is ``(n_row_args, batch_size)`` for minibatch SVI.
        """
        model = self._get_model(context)
        if self.inference == "nuts":
            grouped, stats = _run_nuts(
                model,
                rng_key,
                args,
                n_warmup=self.n_warmup,
                n_draws=self.n_draws,
                n_chains=self.n_chains,
                verbose=self.verbose,
                n_devices=getattr(self, "n_devices", None),
            )
            grouped = self._trim_draws(grouped, context)
            diagnostics = _nuts_diagnostics(grouped, stats["diverging"])
            diagnostics["sample_stats"] = stats
            _warn_if_not_converged(diagnostics, type(self).__name__)
        else:
            grouped, elbo = _run_svi(
                model,
                rng_key,
                args,
                svi_steps=self.svi_steps,
                n_draws=self.n_draws,
                verbose=self.verbose,
                n_devices=getattr(self, "n_devices", None),
                minibatch=minibatch,
            )
            grouped = self._trim_draws(grouped, context)
            tail = max(1, elbo.shape[0] // 10)
            diagnostics = {
                "inference": "svi",
                "n_chains": 1,
                "n_draws": self.n_draws,
                "final_elbo": float(elbo[-tail:].mean()),
                "elbo": elbo,
            }
            _warn_if_svi_not_converged(elbo, type(self).__name__)
        merged = {
            name: value.reshape((-1,) + value.shape[2:])
            for name, value in grouped.items()
        }
        return merged, diagnostics

    # --- subclass hooks --------------------------------------------------------

    def _get_model(self, context):
        raise NotImplementedError(f"{type(self).__name__} must define _get_model")

    def _model_inputs(self, X, y, sample_weight):
        raise NotImplementedError(f"{type(self).__name__} must define _model_inputs")

    def _trim_draws(self, grouped, context):
        """Trim the model's draws to the reported parameters (identity here)."""
        return grouped

    def _set_fitted_attributes(self, context):
        """Derive subclass attributes from ``posterior_samples_`` (none here)."""

    def _parameter_labels(self):
        """Site name -> one label sequence per axis, for :meth:`summary`."""
        return {}

    # --- shared helpers for prediction and reporting ---------------------------

    def _validate_X_predict(self, X):
        """``check_is_fitted`` then ``validate_data(reset=False)``."""
        check_is_fitted(self)
        return validate_data(
            self,
            X,
            reset=False,
            accept_sparse=self._accept_sparse,
            dtype=[np.float64, np.float32],
        )

    def _feature_labels(self):
        """Column names seen in fit, else ``x0, x1, ...`` as scikit-learn."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return [f"x{i}" for i in range(self.n_features_in_)]
        return list(names)

    def summary(self, prob=0.9):
        """Posterior summary: one row per scalar parameter.

        Parameters
        ----------
        prob : float, default=0.9
            Probability mass of the highest posterior density interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``mean``, ``sd``, ``hdi_<lower>%``, ``hdi_<upper>%``,
            ``ess`` (effective sample size) and ``r_hat`` (split R-hat);
            the index names each parameter, e.g. ``coef[mean radius]``. For
            SVI the draws are independent, so ``ess`` and ``r_hat`` describe
            the draws, not the quality of the variational approximation.
        """
        check_is_fitted(self)
        n_chains = self.diagnostics_["n_chains"]
        grouped = {
            name: value.reshape((n_chains, -1) + value.shape[1:])
            for name, value in self.posterior_samples_.items()
        }
        per_site = _site_summaries(grouped, prob=prob, group_by_chain=True)
        labels = self._parameter_labels()
        frames = []
        for name, stats in per_site.items():
            low, high = (key for key in stats if key.endswith("%"))
            columns = {
                "mean": stats["mean"],
                "sd": stats["std"],
                f"hdi_{low}": stats[low],
                f"hdi_{high}": stats[high],
                "ess": stats["n_eff"],
                "r_hat": stats["r_hat"],
            }
            index = _element_labels(name, stats["mean"].shape, labels.get(name, ()))
            frames.append(
                pd.DataFrame({k: np.ravel(v) for k, v in columns.items()}, index=index)
            )
        return pd.concat(frames)

    def to_arviz(self):
        """The posterior as ArviZ's ``InferenceData`` (needs ``arviz``).

        Returns
        -------
        arviz.InferenceData
            ``posterior``: every site of ``posterior_samples_``, shaped
            ``(chain, draw, ...)``; axes that run over the features are named
            ``feature`` with the feature names as coordinates
            (``feature_names_in_``, else ``x0, x1, ...``), axes over the
            classes ``class``. ``sample_stats`` (NUTS only): ``diverging``,
            ``n_steps``, ``tree_depth``, ``acceptance_rate``, ``energy``,
            ``lp`` and ``step_size`` of every draw. An SVI fit has one chain
            of independent draws from the approximation, and no
            ``sample_stats``.

        Raises
        ------
        ImportError
            When arviz is not installed (``pip install arviz``).
        """
        check_is_fitted(self)
        return _arviz.estimator_to_arviz(self)

    # --- pickling ----------------------------------------------------------------

    def __getstate__(self):
        # The version that wrote the state, checked on loading, as
        # scikit-learn's estimators store ``_sklearn_version``. A copy: the
        # base may hand back ``self.__dict__`` itself.
        state = dict(super().__getstate__())
        state[_persistence.VERSION_KEY] = _persistence.__version__
        return state

    def __setstate__(self, state):
        state = _persistence.check_state_version(type(self).__name__, state)
        super().__setstate__(state)


class PosteriorClassifierMixin:
    """``predict_proba`` and ``predict`` of a Bayesian classifier, from its
    ``predict_log_proba`` (the posterior predictive log probabilities) and
    ``classes_``; shared by every classifier of the package."""

    def predict_proba(self, X):
        """Posterior predictive class probabilities, averaged over draws.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probability of each class, columns ordered as ``classes_``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Most probable class under the posterior predictive distribution.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predicted class labels, from ``classes_``.
        """
        log_proba = self.predict_log_proba(X)  # checks that self is fitted
        return self.classes_[np.argmax(log_proba, axis=1)]

"""A fitted estimator's posterior as ArviZ's ``InferenceData``.

The draws are regrouped by chain from ``posterior_samples_`` (chains
concatenated, draws first) and NUTS's per-draw statistics come from
``diagnostics_["sample_stats"]``; :func:`core_ppl.infer.arviz.from_draws`
does the rest. Axes get names from the estimator's ``_parameter_labels``
(the labels ``summary()`` prints): an axis labelled by the features is
``feature``, shared by every site, with the feature names as coordinates; one
labelled by ``classes_`` is ``class``; any other labelled axis keeps ArviZ's
default name (``<site>_dim_<axis>``) with its labels as coordinates.
"""

from __future__ import annotations

import numpy as np

from core_ppl.infer.arviz import from_draws, sample_stats

__all__ = ["estimator_to_arviz"]


def _axis_name(site, axis, labels, named):
    """Name of one labelled axis: a shared name when the labels are those of
    ``named`` (name -> labels), else ArviZ's default name of the axis."""
    for name, known in named.items():
        if known is not None and labels == known:
            return name
    return f"{site}_dim_{axis}"


def _dims_and_coords(posterior, site_labels, named):
    """ArviZ ``dims`` and ``coords`` of the sites that have axis labels."""
    dims, coords = {}, {}
    for site, labels in site_labels.items():
        if site not in posterior:
            continue
        shape = posterior[site].shape[2:]
        site_dims = []
        for axis, size in enumerate(shape):
            axis_labels = list(labels[axis]) if axis < len(labels) else None
            if axis_labels is None or len(axis_labels) != size:
                site_dims.append(f"{site}_dim_{axis}")
                continue
            name = _axis_name(site, axis, axis_labels, named)
            site_dims.append(name)
            coords[name] = axis_labels
        dims[site] = site_dims
    return dims, coords


def estimator_to_arviz(estimator):
    """ArviZ ``InferenceData`` of a fitted estimator's posterior.

    Parameters
    ----------
    estimator : BaseBayesianEstimator
        A fitted estimator.

    Returns
    -------
    arviz.InferenceData
        See ``BaseBayesianEstimator.to_arviz``.
    """
    n_chains = estimator.diagnostics_["n_chains"]
    posterior = {
        name: np.asarray(value).reshape((n_chains, -1) + np.shape(value)[1:])
        for name, value in estimator.posterior_samples_.items()
    }
    classes = getattr(estimator, "classes_", None)
    named = {
        "feature": list(estimator._feature_labels()),
        "class": None if classes is None else list(classes),
    }
    dims, coords = _dims_and_coords(posterior, estimator._parameter_labels(), named)
    stats = estimator.diagnostics_.get("sample_stats")
    return from_draws(
        posterior,
        None if stats is None else sample_stats(stats),
        coords=coords,
        dims=dims,
        attrs={"estimator": type(estimator).__name__},
    )

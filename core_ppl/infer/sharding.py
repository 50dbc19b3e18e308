"""Placing a run's arrays on several devices: rows of the data, chains.

JAX compiles one program for all devices of a :class:`jax.sharding.Mesh`
when the program's inputs are laid out over it (GSPMD): each device holds
its block of every sharded input, computes on it, and XLA inserts the
communication the program needs. A model's log density is a sum over the
rows of its data, so with the rows split over ``data_devices`` devices each
device sums its own rows and one all-reduce adds the partial sums, inside
the same compiled program as the rest of the sampler or optimiser. Nothing
in the model or the inference code changes: only where the arrays live.

Two mesh axes, so that both kinds of parallelism compose:

- ``"rows"`` (:data:`ROWS`): the data's rows, split in equal blocks;
- ``"chains"`` (:data:`CHAINS`): the MCMC chains of
  ``chain_method="parallel"``, split in equal blocks.

Every other array is replicated (each device holds all of it).

Which arguments are rows
------------------------
The number of rows is the leading axis of the *first* array argument with
at least one axis (``X`` in ``model(X, y)``). Every array argument whose
leading axis has that length is split over ``"rows"``; the others
(hyperparameter arrays, scalars) are replicated. The layout never changes
the result, only where the work is done: an array wrongly taken for rows
(a vector that happens to be as long as the data) is still used correctly,
GSPMD gathering it where needed.

The rows must split evenly: their number must be a multiple of
``data_devices``. Pad the data with rows that the model ignores (zero
weight, or ``handlers.mask``), as the estimators of ``bayes_sklearn`` do.

Examples
--------
>>> import numpy as np
>>> from core_ppl.infer.sharding import device_mesh, shard_rows
>>> mesh = device_mesh(data_devices=1)
>>> X, y, scale = shard_rows((np.ones((8, 3)), np.zeros(8), np.ones(3)), mesh)
>>> X.shape, y.shape, scale.shape
((8, 3), (8,), (3,))
"""

from __future__ import annotations

from numbers import Integral

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "CHAINS",
    "ROWS",
    "check_num_devices",
    "device_mesh",
    "num_rows",
    "row_sharding",
    "shard_chains",
    "shard_rows",
]

ROWS = "rows"
CHAINS = "chains"


def check_num_devices(name, value):
    """``value`` as an int in ``[1, jax.device_count()]``, or None.

    Raises a ValueError naming the argument ``name`` otherwise.
    """
    if value is None:
        return None
    available = jax.device_count()
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be None or an integer >= 1, got {value!r}")
    if value > available:
        raise ValueError(
            f"{name}={value} but only {available} device(s) are visible "
            f"({jax.default_backend()}); on CPU, set XLA_FLAGS="
            f"--xla_force_host_platform_device_count={value} before importing jax"
        )
    return int(value)


def device_mesh(data_devices=1, chain_devices=1):
    """A ``(chains, rows)`` mesh over the first ``chain_devices * data_devices``
    devices of ``jax.devices()`` (all hosts' devices in a multi-host run).

    Parameters
    ----------
    data_devices : int, default=1
        Devices the rows are split over.
    chain_devices : int, default=1
        Devices the chains are split over.

    Returns
    -------
    jax.sharding.Mesh
        Axes ``("chains", "rows")`` of sizes ``(chain_devices, data_devices)``.
    """
    data_devices = check_num_devices("data_devices", data_devices)
    chain_devices = check_num_devices("chain_devices", chain_devices)
    needed = data_devices * chain_devices
    check_num_devices("chain_devices * data_devices", needed)
    devices = np.asarray(jax.devices()[:needed]).reshape(chain_devices, data_devices)
    return Mesh(devices, (CHAINS, ROWS))


def row_sharding(mesh):
    """The layout of row arrays on ``mesh``: leading axis split over its
    ``"rows"`` axis, replicated over its ``"chains"`` axis.

    In a multi-host run, where each process loads only its own rows, build
    the global arrays with it:
    ``jax.make_array_from_process_local_data(row_sharding(mesh), local_X)``.
    """
    return NamedSharding(mesh, PartitionSpec(ROWS))


def _as_mesh(mesh):
    return mesh if isinstance(mesh, Mesh) else device_mesh(data_devices=mesh)


def _is_array(leaf):
    return isinstance(leaf, (jax.Array, np.ndarray))


def num_rows(tree):
    """Length of the leading axis of the first array leaf with an axis, or
    None when there is none."""
    for leaf in jax.tree.leaves(tree):
        if _is_array(leaf) and np.ndim(leaf) >= 1:
            return int(np.shape(leaf)[0])
    return None


def shard_rows(tree, mesh):
    """Place the array leaves of ``tree`` on ``mesh``: rows split, the rest
    replicated.

    Parameters
    ----------
    tree : pytree
        The model's arguments, e.g. ``(X, y)``. Leaves that are not arrays
        are returned as they are.
    mesh : jax.sharding.Mesh or int
        A mesh with a ``"rows"`` axis (:func:`device_mesh`), or the number
        of devices to split the rows over.

    Returns
    -------
    pytree
        The same structure, with ``jax.Array`` leaves laid out on ``mesh``.
        The inputs are not modified; arrays already laid out so (e.g. built
        with :func:`row_sharding` on each host of a multi-host run) stay
        where they are.

    Raises
    ------
    ValueError
        When the number of rows is not a multiple of the mesh's ``"rows"``
        size.
    """
    mesh = _as_mesh(mesh)
    n_rows = num_rows(tree)
    size = mesh.shape[ROWS]
    if n_rows is not None and n_rows % size:
        raise ValueError(
            f"the data have {n_rows} rows (leading axis of the first array "
            f"argument), not a multiple of data_devices={size}: pad them with "
            f"rows the model ignores (zero weight or handlers.mask) to "
            f"{-(-n_rows // size) * size} rows"
        )
    rows = row_sharding(mesh)
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(leaf):
        if not _is_array(leaf):
            return leaf
        is_row = np.ndim(leaf) >= 1 and np.shape(leaf)[0] == n_rows
        return jax.device_put(leaf, rows if is_row else replicated)

    return jax.tree.map(place, tree)


def shard_chains(tree, mesh):
    """Place the array leaves of ``tree`` (leading chain axis) on ``mesh``,
    chains split over its ``"chains"`` axis. None leaves stay None."""
    chains = NamedSharding(mesh, PartitionSpec(CHAINS))
    return jax.tree.map(lambda leaf: jax.device_put(leaf, chains), tree)

"""Choosing between two pytrees of the same structure without branching.

Inside ``vmap``-ed and ``jit``-ed transitions a Python ``if`` on a traced
flag is impossible and ``lax.cond`` would run both sides anyway once
batched, so the samplers pick leaf by leaf with ``jnp.where``.
"""

import jax
import jax.numpy as jnp

__all__ = ["tree_where"]


def tree_where(pred, on_true, on_false):
    """``jnp.where(pred, a, b)`` for each pair of leaves of two pytrees.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> tree_where(True, {"a": jnp.ones(2)}, {"a": jnp.zeros(2)})["a"]
    Array([1., 1.], dtype=float32)
    """
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)

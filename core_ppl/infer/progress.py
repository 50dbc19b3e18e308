"""Progress bars fed from inside compiled loops (MCMC and SVI share them).

A tqdm bar is registered on the host under an integer *token*, and the token
enters the compiled loop as a traced ``int32``. About every 5% of the
iterations a ``lax.cond`` fires a ``jax.debug.callback`` with the token and
the number of iterations done. Without a bar the token is None, and
:func:`report` then adds nothing to the program: a program with a host
callback cannot be written to disk (``core_ppl.cache``), so the common case,
no bar, must not carry one. Programs with a bar are therefore a second
variant, compiled once for all bars (the token is traced); the callback
reads values and never feeds any back, so both variants compute the same
numbers.

Each report is a host callback, a round trip from the compiled program to
Python, so their number, not the bar, is what costs: 20 per run keep it
within a few percent of the run time for runs of a second or more
(``benchmarks/small_models.py`` measures it).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["NO_BAR", "ProgressBar", "report"]

NO_BAR = None
_NUM_REPORTS = 20

_BARS: dict = {}  # token -> (tqdm bar, on_report)
_LOCK = threading.Lock()
_TOKENS = itertools.count()


def _on_host(token_and_done, *values):
    token, done = np.asarray(token_and_done).tolist()
    with _LOCK:
        entry = _BARS.get(token)
        if entry is None:
            return
        bar, on_report = entry
        # Callbacks may arrive out of order: only ever move forward.
        if done > bar.n:
            if on_report is not None:
                on_report(bar, done, *values)
            bar.update(done - bar.n)


def report(token, done, total: int, *values):
    """From inside a compiled loop: tell the host bar that ``done`` of
    ``total`` (static) iterations are finished, about every 5%.

    ``values`` (traced scalars, e.g. the current loss) are passed to the
    bar's ``on_report``. With ``token`` None (:data:`NO_BAR`, static) this
    adds nothing to the program.
    """
    if token is None:
        return
    every = max(1, total // _NUM_REPORTS)
    is_due = (done % every == 0) | (done == total)
    # One array for both integers: JAX moves each callback argument to a
    # device array first, a fixed cost per argument.
    token_and_done = jnp.stack([token, done]).astype(jnp.int32)
    jax.lax.cond(
        is_due,
        lambda: jax.debug.callback(_on_host, token_and_done, *values),
        lambda: None,
    )


class ProgressBar:
    """Context manager: a tqdm bar registered under :attr:`token`.

    Parameters
    ----------
    enabled : bool
        Without a bar :attr:`token` is :data:`NO_BAR` (None), for programs
        without the callback.
    total : int
        Number of iterations of the loop.
    description : str
    on_report : callable, optional
        ``on_report(bar, done, *values)`` runs before each update, e.g. to
        change the description or show a loss.
    """

    def __init__(self, enabled, total, description, on_report: Callable | None = None):
        self.token = NO_BAR
        self.enabled = bool(enabled)
        self.total = total
        self.description = description
        self.on_report = on_report

    def __enter__(self):
        if self.enabled:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total, desc=self.description, leave=True)
            with _LOCK:
                self.token = next(_TOKENS) % (2**31 - 1)
                _BARS[self.token] = (bar, self.on_report)
        return self

    def traced_token(self):
        """The token as the compiled loop takes it: an ``int32`` array, or
        None without a bar."""
        return None if self.token is NO_BAR else jnp.asarray(self.token, jnp.int32)

    def __exit__(self, *exc):
        if self.token is not NO_BAR:
            jax.effects_barrier()  # deliver the last reports first
            with _LOCK:
                bar, _ = _BARS.pop(self.token)
            bar.close()

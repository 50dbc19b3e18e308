"""The effect-handler runtime: a stack of messengers and the message protocol.

A model is a plain Python function. Each primitive (``sample``, ``param``, ...)
builds a *message*, a dict described by :class:`Message`, and hands it to
:func:`apply_stack`. The message travels down the handler stack from the most
recently entered handler to the oldest (``process_message``), gets a default
value if no handler supplied one, then travels back up in the opposite order
(``postprocess_message``). This is the design of Pyro's ``minipyro`` and of the
NumPyro paper (Phan, Pradhan, Jankowiak 2019, section 2): inference algorithms
are compositions of small handlers rather than special interpreters.

Each thread has its own stack (:func:`handler_stack`), so models run in
several threads at once (``GridSearchCV`` under joblib's threading backend)
never see each other's handlers. Handlers must be created *inside* any
function that is jitted or vmapped: a handler holding a tracer past the end of
its transformation would leak it. Every ``Messenger`` removes itself from the
stack even when the model raises, so no state survives an exception.

Blocking hides a site from the *view* of the handlers outside the block, not
from what the site needs to run. Handlers come in two kinds:

- handlers that look at or change sites (``trace``, ``condition``,
  ``substitute``, ``replay``, ``scale``, ``mask``, plates...): a message
  stopped by ``block`` (``msg["stop"]``) never reaches those outside it;
- handlers that only supply a resource the site needs to compute its value,
  and change nothing a handler could observe (``seed`` and its random keys):
  they set ``serves_hidden_sites = True`` and still process a stopped
  message, so ``seed(block(model))`` runs. They are not post-processed for
  it, as they must not record anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypedDict

__all__ = [
    "Message",
    "Messenger",
    "apply_stack",
    "default_process_message",
    "handler_stack",
]

_THREAD_STATE = threading.local()


def handler_stack() -> list[Messenger]:
    """The calling thread's handler stack; index 0 is the outermost handler.

    JAX traces a jitted function in the thread that calls it, so a per-thread
    stack is also what keeps one thread's tracers out of another's model.
    """
    try:
        return _THREAD_STATE.stack
    except AttributeError:
        _THREAD_STATE.stack = []
        return _THREAD_STATE.stack


class Message(TypedDict, total=False):
    """The record a primitive sends through the handler stack.

    type : str
        ``"sample"``, ``"param"``, ``"deterministic"``, ``"plate"``,
        ``"prng_key"`` or ``"subsample"`` (data indexed by the enclosing
        plates, whose ``kwargs`` hold ``event_dim``; not a site of the model).
    name : str
        The site name, unique within one run of the model, except that a
        plate may be entered again (same name, same sizes).
    fn : callable
        What produces the value: a distribution for ``sample`` sites (its
        ``sample`` method is called), a function for the others.
    args, kwargs : tuple, dict
        Arguments of ``fn``. For ``sample`` sites ``kwargs`` holds
        ``rng_key`` (set by :class:`~core_ppl.handlers.seed`) and
        ``sample_shape``.
    value : array or None
        The site's value; a handler may set it before the default runs.
    scale : float or array or None
        Multiplier of the site's log density (``scale`` handler, subsampled
        plates). ``None`` means 1.
    mask : bool array or None
        Where False, the site's log density is dropped (``mask`` handler).
    is_observed : bool
        True when the value is data (``obs=`` or ``condition``).
    intermediates : list
        Auxiliary values produced while sampling; unused by most sites.
    cond_indep_stack : list of CondIndepStackFrame
        The plates enclosing the site, innermost last.
    infer : dict
        Free-form hints to inference algorithms (e.g. ``{"enumerate": ...}``).
    stop : bool
        Set by ``block``: handlers further out do not see the message, except
        those with ``serves_hidden_sites`` (see the module docstring).
    """

    type: str
    name: str
    fn: Callable
    args: tuple
    kwargs: dict
    value: Any
    scale: Any
    mask: Any
    is_observed: bool
    intermediates: list
    cond_indep_stack: list
    infer: dict
    stop: bool


class Messenger:
    """Base class of every handler.

    Use it as a context manager (``with trace() as tr: model()``) or wrap a
    callable (``trace(model)(*args)``). Subclasses override
    ``process_message`` and/or ``postprocess_message`` and nothing else.

    ``serves_hidden_sites`` (default False) says whether the handler still
    processes messages that an inner ``block`` hid (see the module docstring).
    """

    serves_hidden_sites = False

    def __init__(self, fn: Callable | None = None):
        if fn is not None and not callable(fn):
            raise TypeError(
                f"{type(self).__name__} expects a callable to wrap, got {fn!r}"
            )
        self.fn = fn

    def __enter__(self):
        handler_stack().append(self)
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        # Remove ourselves, and anything entered after us that failed to exit,
        # so an exception inside a model never leaves the stack dirty.
        stack = handler_stack()
        if self in stack:
            del stack[stack.index(self) :]

    def process_message(self, msg: Message) -> None:
        pass

    def postprocess_message(self, msg: Message) -> None:
        pass

    def __call__(self, *args, **kwargs):
        if self.fn is None:
            raise TypeError(
                f"{type(self).__name__} was created without a function to wrap"
            )
        with self:
            return self.fn(*args, **kwargs)


def default_process_message(msg: Message) -> None:
    """Compute the value of a message no handler has filled in."""
    if msg["value"] is not None:
        return
    if msg["type"] == "sample" and msg["kwargs"].get("rng_key") is None:
        raise ValueError(
            f"sample site '{msg['name']}' needs a random key: run the model "
            "under core_ppl.handlers.seed(model, rng_seed=...) or pass obs=..."
        )
    msg["value"] = msg["fn"](*msg["args"], **msg["kwargs"])


def apply_stack(msg: Message) -> Message:
    """Send ``msg`` through the handler stack and return it with its value.

    Handlers see the message innermost first. A handler that sets
    ``msg["stop"]`` hides it from the handlers outside it (``block``), except
    from those that serve hidden sites (``seed``), which still process it.
    The value is then computed if still missing, and the handlers that saw
    the message unhidden post-process it, outermost first.
    """
    seen = []
    for handler in reversed(handler_stack()):
        if not msg.get("stop"):
            seen.append(handler)
        elif not handler.serves_hidden_sites:
            continue
        handler.process_message(msg)
    default_process_message(msg)
    for handler in reversed(seen):
        handler.postprocess_message(msg)
    return msg

"""Saving fitted estimators: the package version, pickles, and skops files.

Two ways to save a fit, as for scikit-learn's own estimators:

- **pickle** (or joblib): fast and general, but unpickling runs whatever code
  the file names, so load only files you made. The state of every estimator
  records the version of bayes-sklearn that wrote it
  (``BaseBayesianEstimator.__getstate__``); loading it under another version
  warns :class:`InconsistentVersionWarning`, as scikit-learn warns its own
  ``InconsistentVersionWarning``.
- **skops** (an optional extra, ``pip install skops``): ``skops.io.dump``
  writes a file that ``skops.io.load`` rebuilds without running code from
  it, constructing only the types it is told to trust. A fitted estimator's
  state holds only NumPy arrays, plain Python values and this package's own
  classes, so :func:`trusted_types` is the whole list to trust; :func:`save`
  and :func:`load` wrap the two calls.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

from core_ppl import __version__

__all__ = [
    "InconsistentVersionWarning",
    "__version__",
    "load",
    "save",
    "trusted_types",
]

# The key of the estimator state that holds the version which wrote it (as
# scikit-learn's ``_sklearn_version``).
VERSION_KEY = "_bayes_sklearn_version"
# What a state without that key was written by: a version before the key.
_UNKNOWN_VERSION = "unknown (a version before 0.1.0)"


class InconsistentVersionWarning(UserWarning):
    """A pickled estimator was written by another version of bayes-sklearn.

    The fitted state of another version may lack attributes this version
    reads, or mean something else by them: predictions may fail or be wrong.
    Refit the estimator with this version, or load the file with the version
    that wrote it.

    Parameters
    ----------
    estimator_name : str
        Class name of the unpickled estimator.
    current_version : str
        The version of bayes-sklearn running now.
    original_version : str
        The version that pickled the estimator.
    """

    def __init__(self, estimator_name, current_version, original_version):
        super().__init__(estimator_name, current_version, original_version)
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version

    def __str__(self):
        return (
            f"Trying to unpickle estimator {self.estimator_name} from "
            f"bayes-sklearn version {self.original_version} when using version "
            f"{self.current_version}. This might lead to breaking code or invalid "
            "results; refit the estimator with this version, or load it with "
            "the version that saved it."
        )


def check_state_version(estimator_name, state):
    """Remove the writing version from a copy of ``state``; warn if it differs.

    Parameters
    ----------
    estimator_name : str
        Named in the warning.
    state : dict
        An estimator's pickled state, as made by ``__getstate__``.

    Returns
    -------
    dict
        A copy of ``state`` without the version key.
    """
    state = dict(state)
    original = state.pop(VERSION_KEY, _UNKNOWN_VERSION)
    if original != __version__:
        warnings.warn(
            InconsistentVersionWarning(estimator_name, __version__, original),
            stacklevel=3,  # the caller of __setstate__ (pickle.load)
        )
    return state


# --- skops ---------------------------------------------------------------------


def _import_skops_io():
    try:
        import skops.io
    except ImportError as error:
        raise ImportError(
            "saving and loading with skops needs the optional package skops: "
            "pip install skops (or pip install 'bayes-sklearn[skops]')"
        ) from error
    return skops.io


def _type_name(cls):
    # skops names a type by its module and ``__name__``.
    return f"{cls.__module__}.{cls.__name__}"


def _may_hold_state(cls):
    # Fitted state is data: estimators, NamedTuples and plain containers.
    # Classes whose instances run code when called (handlers, objectives)
    # and warnings are never part of it, so they are not trusted.
    is_callable = any("__call__" in vars(base) for base in cls.__mro__[:-1])
    return not (is_callable or issubclass(cls, BaseException))


def _package_classes():
    """The classes defined in the modules of the bayes_sklearn package that
    may hold fitted state."""
    import bayes_sklearn

    classes = set()
    for info in pkgutil.iter_modules(bayes_sklearn.__path__):
        module = importlib.import_module(f"bayes_sklearn.{info.name}")
        classes.update(
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__ and _may_hold_state(cls)
        )
    return classes


def trusted_types(*estimator_classes):
    """The types to trust when loading a saved estimator with skops.

    Parameters
    ----------
    *estimator_classes : type
        Your own estimator classes (made with :func:`make_estimator` or by
        subclassing ``ModelRegressor``/``ModelClassifier``) to trust as well.
        They must be bound to a module-level name, so that skops finds them.

    Returns
    -------
    list of str
        Sorted, fully qualified names of the classes of this package (its
        estimators and the containers of their fitted state) and of
        ``estimator_classes``: pass it as ``skops.io.load(file,
        trusted=trusted_types())``. NumPy arrays, plain Python values and
        scikit-learn's own types are trusted by skops already.

    Raises
    ------
    TypeError
        When an element of ``estimator_classes`` is not a subclass of
        ``BaseBayesianEstimator``.

    Examples
    --------
    >>> from bayes_sklearn import trusted_types
    >>> "bayes_sklearn._logistic.BayesianLogisticRegression" in trusted_types()
    True
    """
    from bayes_sklearn._base import BaseBayesianEstimator

    for cls in estimator_classes:
        if not (isinstance(cls, type) and issubclass(cls, BaseBayesianEstimator)):
            raise TypeError(
                "estimator_classes must be subclasses of BaseBayesianEstimator, "
                f"got {cls!r}"
            )
    classes = _package_classes() | set(estimator_classes)
    return sorted({_type_name(cls) for cls in classes})


def save(estimator, file):
    """Save an estimator with ``skops.io.dump``, a file safe to share.

    Parameters
    ----------
    estimator : object
        A fitted estimator, or a pipeline holding one.
    file : str, path or binary file object
        Where to write.

    Raises
    ------
    ImportError
        When skops is not installed.

    See Also
    --------
    load : Load it back, trusting only this package's types.
    """
    _import_skops_io().dump(estimator, file)


def load(file, trusted=()):
    """Load an estimator saved by :func:`save` (or ``skops.io.dump``).

    Only NumPy, plain Python, scikit-learn and this package's types are
    constructed (:func:`trusted_types`); the file runs no code of its own.

    Parameters
    ----------
    file : str, path or binary file object
        What to read.
    trusted : sequence of type or str, default=()
        Further types to trust, e.g. your class made with
        :func:`make_estimator`. ``skops.io.get_untrusted_types(file=file)``
        lists the types a file holds that are not trusted yet: check them
        before adding them.

    Returns
    -------
    object
        The estimator (or pipeline) as saved.

    Raises
    ------
    skops.io.exceptions.UntrustedTypesFoundException
        When the file holds other types; the message names them.
    ImportError
        When skops is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_sklearn import BayesianLinearRegression, load, save
    >>> X = np.linspace(-1, 1, 20)[:, None]
    >>> reg = BayesianLinearRegression(n_warmup=50, n_draws=50, random_state=0)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # 50 draws: a low ESS warns
    ...     reg = reg.fit(X, 2 * X[:, 0] + 0.1 * np.cos(9 * X[:, 0]))
    >>> import io; buffer = io.BytesIO()
    >>> save(reg, buffer)
    >>> loaded = load(io.BytesIO(buffer.getvalue()))
    >>> bool(np.all(loaded.predict(X) == reg.predict(X)))
    True
    """
    if isinstance(trusted, (str, type)):
        trusted = [trusted]
    return _import_skops_io().load(file, trusted=trusted_types() + list(trusted))

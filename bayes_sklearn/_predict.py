"""Prediction over posterior draws: compiled, and chunked over the rows.

A posterior predictive quantity is an average over draws of a per-draw
quantity (class probabilities, a response distribution's moments). Formed in
NumPy it is a ``(n_draws, n_samples, n_outputs)`` float64 array, many
gigabytes for a few hundred thousand rows, computed in several passes. Here
one compiled program takes a fixed-size chunk of rows and returns the
average over draws for those rows only, so:

- memory stays bounded: one ``(n_draws, chunk, n_outputs)`` block at a time;
- the last chunk is padded with zero rows to the chunk size, so one program
  serves every ``X`` of any size (and every call of ``predict*``);
- sparse ``X`` (CSR/CSC) is densified one chunk at a time, never whole.

The chunk size depends on the number of draws, outputs and features only,
which the fitted posterior fixes: a fitted estimator compiles its prediction
program once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

__all__ = [
    "chunk_rows",
    "glm_log_mean_proba",
    "iter_row_chunks",
    "map_row_chunks",
]

# Elements of the largest block a chunk materializes: its (draws, rows,
# outputs) per-draw values, or its densified (rows, features) slice of a
# sparse X. 2**22 float32 values are 16 MiB: large enough that each call
# does plenty of work next to its dispatch, small enough for any cache-bound
# machine and to never matter for memory.
_BLOCK_ELEMENTS = 2**22
# Bounds of the rows per chunk (powers of two): at least a few rows so a
# huge posterior still makes progress per call, at most as many as keep the
# padding of a small X cheap.
_MIN_CHUNK_ROWS = 8
_MAX_CHUNK_ROWS = 4096


def chunk_rows(n_draws, n_outputs, n_features):
    """Rows per prediction chunk: a power of two bounding the block sizes.

    Parameters
    ----------
    n_draws : int
        Posterior draws averaged over.
    n_outputs : int
        Values per row and draw (classes, or 1).
    n_features : int
        Columns of ``X`` (a sparse chunk is densified).

    Returns
    -------
    int
        The number of rows of every chunk, the last one padded.
    """
    largest = max(n_draws * n_outputs, n_features, 1)
    rows = max(1, _BLOCK_ELEMENTS // largest)
    rows = 2 ** (rows.bit_length() - 1)  # a power of two, <= rows
    return int(min(max(rows, _MIN_CHUNK_ROWS), _MAX_CHUNK_ROWS))


def iter_row_chunks(X, chunk, dtype=np.float32):
    """Yield ``(padded_chunk, n_valid)`` over the rows of ``X``.

    Every ``padded_chunk`` is a dense ``(chunk, n_features)`` array of
    ``dtype``; the last one ends with zero rows. A sparse ``X`` is sliced by
    rows (as CSR) and densified one chunk at a time.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
        Validated input.
    chunk : int
        Rows per chunk.
    dtype : dtype, default=np.float32
        The dtype the compiled program computes in.
    """
    if sp.issparse(X):
        X = X.tocsr()  # row slices of CSC would scan every column
    for start in range(0, X.shape[0], chunk):
        part = X[start : start + chunk]
        part = part.toarray() if sp.issparse(part) else np.asarray(part)
        n_valid = part.shape[0]
        padded = np.zeros((chunk, X.shape[1]), dtype)
        padded[:n_valid] = part
        yield padded, n_valid


def map_row_chunks(kernel, X, chunk, *args, **kwargs):
    """``kernel(*args, padded_chunk, **kwargs)`` over the row chunks of ``X``.

    ``kernel`` returns a pytree of arrays whose first axis is the chunk's
    rows; the results, trimmed to the valid rows, are concatenated along
    that axis and returned as NumPy arrays. The calls are dispatched before
    any result is read back, so the host prepares the next chunk while the
    device computes.
    """
    parts = [
        (kernel(*args, jnp.asarray(padded), **kwargs), n_valid)
        for padded, n_valid in iter_row_chunks(X, chunk)
    ]
    if not parts:  # no rows: run once on an empty chunk for the shapes
        empty = np.zeros((chunk, X.shape[1]), np.float32)
        parts = [(kernel(*args, jnp.asarray(empty), **kwargs), 0)]
    trimmed = [jax.tree.map(lambda a, n=n: np.asarray(a)[:n], out) for out, n in parts]
    return jax.tree.map(lambda *pieces: np.concatenate(pieces, axis=0), *trimmed)


# --- generalized linear models --------------------------------------------------


def _logsumexp_last(values):
    """``log sum exp`` over the last axis (the draws), shifted by its maximum."""
    peak = jnp.max(values, axis=-1, keepdims=True)
    peak = jnp.where(jnp.isfinite(peak), peak, 0.0)
    return jnp.log(jnp.sum(jnp.exp(values - peak), axis=-1)) + peak[..., 0]


def _class_logits(coef, intercept, X):
    """Logits ``(rows, draws)`` (two classes) or ``(rows, classes, draws)``:
    the draws last, so that every reduction over them is contiguous."""
    if coef.ndim == 2:
        return X @ coef.T + intercept
    n_draws, n_features = coef.shape[0], coef.shape[-1]
    logits = (X @ coef.reshape(-1, n_features).T).reshape(X.shape[0], n_draws, -1)
    return jnp.swapaxes(logits + intercept, 1, 2)


def _log_mean_proba(logits):
    """``log mean_draws p`` of each class, through log probabilities and
    log-sum-exp over the draws: finite even where a probability is too
    small for float32, so predict_log_proba and decision_function stay
    finite far from the data."""
    if logits.ndim == 2:
        # log p(1) = log sigmoid(l), finite far out; log p(0) = log p(1) - l.
        log_p1 = jax.nn.log_sigmoid(logits)
        log_sums = jnp.stack(
            [_logsumexp_last(log_p1 - logits), _logsumexp_last(log_p1)], axis=-1
        )
    else:
        shifted = logits - jnp.max(logits, axis=1, keepdims=True)
        log_proba = shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=1, keepdims=True))
        log_sums = _logsumexp_last(log_proba)
    return log_sums - jnp.log(logits.shape[-1])


# jax.jit, not core_ppl.jit: this program is elementwise work over a large
# block, which XLA's newer CPU emitters run faster than the older ones
# core_ppl compiles its samplers with (see core_ppl/jit.py); its compile is
# short either way.
@jax.jit
def glm_log_mean_proba(coef, intercept, X):
    """Log posterior predictive class probabilities of a logistic model.

    Parameters
    ----------
    coef : array of shape (n_draws, n_features) or (n_draws, n_classes, n_features)
        Coefficient draws: the log-odds of class 1 (two classes), or one
        vector per class (softmax).
    intercept : array of shape (n_draws,) or (n_draws, n_classes)
        Intercept draws (zeros without an intercept).
    X : array of shape (n_rows, n_features)
        One chunk of rows.

    Returns
    -------
    array of shape (n_rows, n_classes)
        ``log mean_draws p(class | x, draw)``, renormalized so that the
        probabilities sum to one to rounding.

    Notes
    -----
    Every reduction over the draws runs along the last, contiguous axis:
    reducing over a middle axis, or over the classes stacked first, made
    XLA's CPU code 4 to 8 times slower. Averaging probabilities instead of
    log probabilities saved only ~25%, and needs a log-space fallback for
    tiny probabilities, which under ``lax.cond`` cost more than it saved.
    """
    log_mean = _log_mean_proba(_class_logits(coef, intercept, X))
    return log_mean - jax.nn.logsumexp(log_mean, axis=1, keepdims=True)

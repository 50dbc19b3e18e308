"""Checks shared by the distribution tests."""

import jax
import numpy as np


@jax.jit
def score(d, draws):
    """Log density, support membership, mean and variance in one program."""
    return d.log_prob(draws), d.support(draws), d.mean, d.variance


def check_moments(draws, mean, var):
    """Sample mean and variance of ``draws`` (draws first) within 5 Monte
    Carlo standard errors of ``mean`` and ``var``.

    The standard error of the variance uses the empirical fourth central
    moment; the tiny absolute slack keeps degenerate (zero-variance) entries
    from failing on round-off.
    """
    n = draws.shape[0]
    mean, var = np.asarray(mean), np.asarray(var)
    assert mean.shape == var.shape == draws.shape[1:]
    centred = draws - draws.mean(0)
    sample_var = centred.var(0)
    m4 = (centred**4).mean(0)
    np.testing.assert_array_less(
        np.abs(draws.mean(0) - mean), 5 * np.sqrt(var / n) + 1e-12
    )
    np.testing.assert_array_less(
        np.abs(sample_var - var), 5 * np.sqrt((m4 - sample_var**2) / n) + 1e-12
    )

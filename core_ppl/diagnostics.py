"""Convergence diagnostics and posterior summaries, in plain NumPy.

Everything here works on draws already pulled off the device, shaped
``(num_chains, num_draws, *site_shape)`` unless stated otherwise, and never
touches JAX: diagnostics run once per fit, where NumPy's float64 arithmetic
is cheaper and more accurate than a compiled kernel.

The estimators follow Stan's reference implementations:

* autocovariances via the FFT (Wiener-Khinchin), zero-padded to a power of
  two so the circular correlation equals the linear one;
* the effective sample size of Geyer (1992), as refined for several chains
  in Gelman et al., *Bayesian Data Analysis* (3rd ed.), section 11.5: the
  multi-chain autocorrelation ``rho_k = 1 - (W - mean_c acov_c(k)) / var+``
  summed with Geyer's initial positive and initial monotone sequences;
* the split potential scale reduction factor (split R-hat) of Gelman et al.
  (BDA3, section 11.4), and its rank-normalised, folded refinement of
  Vehtari, Gelman, Simpson, Carpenter and Buerkner (2021), "Rank-normalization,
  folding, and localization: an improved R-hat", *Bayesian Analysis*;
* the highest posterior density interval as the narrowest window holding a
  fraction ``prob`` of the sorted draws (Chen and Shao 1999).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

__all__ = [
    "autocorrelation",
    "autocovariance",
    "effective_sample_size",
    "gelman_rubin",
    "hpdi",
    "print_summary",
    "split_gelman_rubin",
    "split_rank_normalized_ess",
    "split_rank_normalized_rhat",
    "summary",
]


# --- autocorrelation ---------------------------------------------------------


def _next_power_of_two(n):
    return 1 << max(int(n) - 1, 0).bit_length()


def autocorrelation(x, axis=0):
    """Sample autocorrelation of ``x`` along ``axis``, computed with the FFT.

    The autocovariance at lag ``k`` is ``sum_t (x_t - m)(x_{t+k} - m) / n``
    (the biased estimator Stan uses: it keeps the sequence positive
    semi-definite); dividing by the lag-0 value gives the autocorrelation.

    Parameters
    ----------
    x : array_like
        Draws; ``axis`` indexes time.
    axis : int, default=0
        The time axis.

    Returns
    -------
    numpy.ndarray
        Same shape as ``x``; index ``k`` along ``axis`` holds lag ``k``.
        A constant series has autocorrelation 1 at lag 0 and 0 elsewhere.
    """
    acov = np.moveaxis(autocovariance(x, axis=axis), axis, 0)
    lag0 = acov[:1]
    # A constant series has zero variance: report rho_0 = 1 and rho_k = 0
    # instead of 0/0.
    rho = acov / np.where(lag0 > 0, lag0, 1.0)
    rho[0] = 1.0
    return np.moveaxis(rho, 0, axis)


def autocovariance(x, axis=0):
    """Biased sample autocovariance of ``x`` along ``axis`` (FFT based).

    Parameters
    ----------
    x : array_like
        Draws; ``axis`` indexes time.
    axis : int, default=0
        The time axis.

    Returns
    -------
    numpy.ndarray
        Same shape as ``x``; index ``k`` along ``axis`` holds
        ``sum_{t < n-k} (x_t - m)(x_{t+k} - m) / n``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("autocovariance: x must have at least one dimension")
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    # Pad to >= 2n so the circular correlation of the FFT has no wrap-around.
    m = 2 * _next_power_of_two(n)
    centred = x - x.mean(axis=-1, keepdims=True)
    freq = np.fft.rfft(centred, n=m, axis=-1)
    acov = np.fft.irfft(freq * np.conjugate(freq), n=m, axis=-1)[..., :n] / n
    return np.moveaxis(acov, -1, axis)


# --- effective sample size ---------------------------------------------------


def _check_chains(x, name, min_draws):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(
            f"{name}: x must be shaped (num_chains, num_draws, ...), got shape "
            f"{x.shape}"
        )
    if x.shape[1] < min_draws:
        raise ValueError(
            f"{name}: need at least {min_draws} draws per chain, got shape {x.shape}"
        )
    return x


def _variance_plus(x):
    """Within-chain variance W and the pooled estimate var+ (BDA3 eq. 11.3)."""
    n = x.shape[1]
    within = x.var(axis=1, ddof=1).mean(axis=0)
    between_over_n = x.mean(axis=1).var(axis=0, ddof=1) if x.shape[0] > 1 else 0.0
    return within, (n - 1) / n * within + between_over_n


def _num_pairs(num_draws):
    """How many lag pairs ``(2m, 2m+1)`` the truncation may use.

    Stan stops two pairs short of the end of the chain (lags up to about
    ``num_draws - 3``): the last autocorrelations rest on a handful of
    products and are pure noise. The first pair is always used.
    """
    return max(1, min(num_draws // 2, -(-(num_draws - 3) // 2)))


def _autocorrelation_time(rho, num_total):
    """Geyer's truncated estimate of the integrated autocorrelation time.

    ``rho`` holds the multi-chain autocorrelations, lags first. With the
    pairs ``P_m = rho_{2m} + rho_{2m+1}`` and ``k`` the index of the first
    pair that is not positive:

    * initial positive sequence: only ``P_0 .. P_{k-1}`` are summed;
    * initial monotone sequence: each of them is lowered to the smallest
      pair before it (Geyer 1992, section 3.3);
    * ``tau = -1 + 2 sum_{m<k} P_m + max(rho_{2k}, 0)``: the last even lag
      is added as Vehtari et al. (2021, section 3.2) do, which lowers the
      variance of the estimate for antithetic chains;
    * ``tau >= 1 / log10(S)`` for ``S`` draws in all: antithetic chains
      (negative odd lags, as NUTS produces on near-Gaussian targets) make
      the truncated sum small or negative, and the ESS would be huge or
      negative. Stan's rule caps the ESS at ``S log10(S)`` instead.
    """
    num_pairs = _num_pairs(rho.shape[0])
    pairs = rho[0 : 2 * num_pairs : 2] + rho[1 : 2 * num_pairs : 2]
    # Initial positive sequence: zero from the first non-positive pair on.
    is_kept = np.cumprod(pairs > 0, axis=0).astype(bool)
    first_bad = is_kept.sum(axis=0)
    # Initial monotone sequence: the running minimum.
    monotone = np.minimum.accumulate(np.where(is_kept, pairs, 0.0), axis=0)
    # rho_{2k}: the even lag after the last pair kept (0 past the end).
    padded = np.concatenate([rho, np.zeros((2,) + rho.shape[1:])], axis=0)
    last_even = np.take_along_axis(padded, (2 * first_bad)[None], axis=0)[0]
    tau = -1.0 + 2.0 * monotone.sum(axis=0) + np.maximum(last_even, 0.0)
    return np.maximum(tau, 1.0 / math.log10(num_total))


def effective_sample_size(x):
    """Effective sample size of draws from one or several chains.

    Parameters
    ----------
    x : array_like
        Draws shaped ``(num_chains, num_draws, ...)``, at least 2 draws.

    Returns
    -------
    numpy.ndarray
        The ESS of every scalar element, shaped ``x.shape[2:]``, in
        ``(0, S log10(S)]`` for ``S = num_chains * num_draws`` draws (Stan's
        bound). Constant or non-finite draws (zero or undefined variance)
        give NaN.

    Notes
    -----
    The multi-chain autocorrelation at lag ``k`` is
    ``rho_k = 1 - (W - mean_c acov_c(k)) / var+`` (BDA3, eq. 11.7), which
    also accounts for disagreement between chains. Pairs
    ``P_m = rho_{2m} + rho_{2m+1}`` are positive and decreasing for a
    reversible chain (Geyer 1992, section 3.3); the sum is truncated at the
    first non-positive pair and forced to be non-increasing (Geyer's initial
    monotone sequence), the next even lag is added as in Vehtari et al.
    (2021), and the autocorrelation time ``tau`` is bounded below by
    ``1 / log10(S)`` as in Stan, so ``ESS = S / tau <= S log10(S)`` even for
    antithetic chains.

    Examples
    --------
    Antithetic chains (``x_t = -x_{t-1}`` plus a little noise) reach Stan's
    cap instead of a negative ESS:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.cumsum(rng.normal(size=(1, 1000)) * 0.01, axis=1)
    >>> x = x * (-1.0) ** np.arange(1000)
    >>> float(effective_sample_size(x))  # 1000 * log10(1000)
    3000.0
    """
    x = _check_chains(x, "effective_sample_size", 2)
    num_chains, n = x.shape[:2]
    acov_mean = autocovariance(x, axis=1).mean(axis=0)
    within, var_plus = _variance_plus(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1.0 - (within - acov_mean) / var_plus
    rho[0] = 1.0
    is_defined = np.isfinite(var_plus) & (var_plus > 0)
    # Undefined elements get rho = 0 so the truncation runs on numbers; their
    # ESS is set to NaN below.
    rho = np.where(is_defined, rho, 0.0)
    tau = _autocorrelation_time(rho, num_chains * n)
    return np.where(is_defined, num_chains * n / tau, np.nan)


# --- R-hat ------------------------------------------------------------------


def gelman_rubin(x):
    """Potential scale reduction factor R-hat of whole chains (BDA3 eq. 11.4).

    Parameters
    ----------
    x : array_like
        Draws shaped ``(num_chains, num_draws, ...)``, at least 2 chains and
        2 draws.

    Returns
    -------
    numpy.ndarray
        ``sqrt(var+ / W)`` for every scalar element, shaped ``x.shape[2:]``.
    """
    x = _check_chains(x, "gelman_rubin", 2)
    if x.shape[0] < 2:
        raise ValueError(
            f"gelman_rubin: need at least 2 chains, got shape {x.shape}; use "
            "split_gelman_rubin for a single chain"
        )
    within, var_plus = _variance_plus(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(var_plus / within)


def _split_chains(x):
    # Split each chain in two halves, dropping the middle draw of an odd
    # count, so that a trend within a chain shows up as disagreement.
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, -half:]], axis=0)


def split_gelman_rubin(x):
    """Split R-hat: the PSRF of the chains cut in halves (BDA3 section 11.4).

    Parameters
    ----------
    x : array_like
        Draws shaped ``(num_chains, num_draws, ...)``, at least 4 draws. A
        single chain is allowed.

    Returns
    -------
    numpy.ndarray
        Split R-hat of every scalar element, shaped ``x.shape[2:]``; close
        to 1 when the chains agree with each other and with themselves.
    """
    x = _check_chains(x, "split_gelman_rubin", 4)
    return gelman_rubin(_split_chains(x))


def _rank_normalise(x):
    """Normal scores of the pooled ranks (Vehtari et al. 2021, eq. 14)."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    flat = x.reshape((-1,) + x.shape[2:])
    ranks = rankdata(flat, axis=0, method="average")
    size = flat.shape[0]
    return ndtri((ranks - 3.0 / 8.0) / (size + 0.25)).reshape(x.shape)


def split_rank_normalized_rhat(x):
    """Rank-normalised, folded split R-hat of Vehtari et al. (2021).

    Parameters
    ----------
    x : array_like
        Draws shaped ``(num_chains, num_draws, ...)``, at least 4 draws.

    Returns
    -------
    numpy.ndarray
        ``max(bulk R-hat, tail R-hat)`` per scalar element: the split R-hat
        of the rank-normalised draws and of the rank-normalised distances to
        the median. Unlike the classic statistic it is defined for heavy
        tails and detects chains that differ in scale only.
    """
    x = _check_chains(x, "split_rank_normalized_rhat", 4)
    split = _split_chains(x)
    bulk = gelman_rubin(_rank_normalise(split))
    folded = np.abs(split - np.median(split, axis=(0, 1)))
    tail = gelman_rubin(_rank_normalise(folded))
    return np.maximum(bulk, tail)


def split_rank_normalized_ess(x):
    """Bulk effective sample size of Vehtari et al. (2021, section 4.3).

    The ESS of the split chains after rank normalisation: it measures how
    well the bulk of the distribution (means, medians) is explored, and it
    is defined even where the variance is not (heavy tails).

    Parameters
    ----------
    x : array_like
        Draws shaped ``(num_chains, num_draws, ...)``, at least 4 draws.

    Returns
    -------
    numpy.ndarray
        The bulk ESS of every scalar element, shaped ``x.shape[2:]``; NaN
        where the draws are constant or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 500))
    >>> bool(1500 < split_rank_normalized_ess(x) < 2500)
    True
    """
    x = _check_chains(x, "split_rank_normalized_ess", 4)
    split = _split_chains(x)
    is_defined = np.all(np.isfinite(split), axis=(0, 1)) & (
        np.ptp(split, axis=(0, 1)) > 0
    )
    # Ranks of constant or non-finite draws mean nothing: keep them NaN.
    normalised = _rank_normalise(np.where(is_defined, split, 0.0))
    return np.where(is_defined, effective_sample_size(normalised), np.nan)


# --- intervals ---------------------------------------------------------------


def hpdi(x, prob=0.9, axis=0):
    """Highest posterior density interval: the narrowest ``prob`` window.

    Parameters
    ----------
    x : array_like
        Draws; ``axis`` indexes them.
    prob : float, default=0.9
        Probability mass of the interval, in ``(0, 1]``.
    axis : int, default=0
        The draw axis.

    Returns
    -------
    numpy.ndarray
        ``x``'s shape with ``axis`` of size 2: the lower then upper bound.
    """
    if not 0.0 < prob <= 1.0:
        raise ValueError(f"hpdi: prob must be in (0, 1], got {prob}")
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[axis] == 0:
        raise ValueError(f"hpdi: x needs draws along axis {axis}, got {x.shape}")
    sorted_x = np.sort(np.moveaxis(x, axis, 0), axis=0)
    mass = sorted_x.shape[0]
    # The interval [s_i, s_{i+L}] holds L+1 of the mass draws.
    length = min(max(math.floor(prob * mass), 1), mass) - 1
    widths = sorted_x[length:] - sorted_x[: mass - length]
    start = np.argmin(widths, axis=0)[None]
    lower = np.take_along_axis(sorted_x, start, axis=0)
    upper = np.take_along_axis(sorted_x, start + length, axis=0)
    return np.moveaxis(np.concatenate([lower, upper], axis=0), 0, axis)


# --- summaries ---------------------------------------------------------------


def _quantile_names(prob):
    lower = round(50 * (1.0 - prob), 6)
    return f"{lower:.1f}%", f"{100.0 - lower:.1f}%"


def _site_summary(value, prob):
    # ``value`` is (num_chains, num_draws, *site_shape).
    flat = value.reshape((-1,) + value.shape[2:])
    low_name, high_name = _quantile_names(prob)
    interval = hpdi(flat, prob=prob, axis=0)
    nan = np.full(value.shape[2:], np.nan)
    ess = effective_sample_size(value) if value.shape[1] >= 2 else nan
    r_hat = split_gelman_rubin(value) if value.shape[1] >= 4 else nan
    return OrderedDict(
        [
            ("mean", flat.mean(axis=0)),
            ("std", flat.std(axis=0)),
            ("median", np.median(flat, axis=0)),
            (low_name, interval[0]),
            (high_name, interval[1]),
            ("n_eff", ess),
            ("r_hat", r_hat),
        ]
    )


def summary(samples, prob=0.9, group_by_chain=True):
    """Mean, sd, median, HPDI, ESS and split R-hat of every site.

    Parameters
    ----------
    samples : dict of array_like, or array_like
        Draws per site. With ``group_by_chain=True`` each is shaped
        ``(num_chains, num_draws, ...)``; otherwise ``(num_draws, ...)`` and
        treated as one chain. A bare array is named ``"Param:0"``.
    prob : float, default=0.9
        Mass of the highest posterior density interval.
    group_by_chain : bool, default=True
        Whether the leading axis indexes chains.

    Returns
    -------
    dict
        Site name -> ordered dict with keys ``mean``, ``std``, ``median``,
        the HPDI bounds named after their quantiles (``"5.0%"``,
        ``"95.0%"`` for ``prob=0.9``), ``n_eff`` and ``r_hat``; each value is
        a NumPy array of the site's shape.
    """
    if not isinstance(samples, dict):
        samples = {"Param:0": samples}
    result = OrderedDict()
    for name, value in samples.items():
        value = np.asarray(value, dtype=np.float64)
        if not group_by_chain:
            value = value[None]
        if value.ndim < 2:
            raise ValueError(
                f"summary: site '{name}' needs shape (num_chains, num_draws, "
                f"...) with group_by_chain=True, got {value.shape}"
            )
        result[name] = _site_summary(value, prob)
    return result


def _element_names(name, shape):
    if shape == ():
        return [name]
    return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


def print_summary(samples, prob=0.9, group_by_chain=True):
    """Print :func:`summary` as a table with one row per scalar element.

    Parameters are those of :func:`summary`. Rows are named ``name`` for a
    scalar site and ``name[i,j]`` for the elements of an array site.
    """
    stats = summary(samples, prob=prob, group_by_chain=group_by_chain)
    columns = list(_quantile_names(prob))
    columns = ["mean", "std", "median", *columns, "n_eff", "r_hat"]
    rows = []
    for name, site in stats.items():
        shape = np.shape(site["mean"])
        for label, idx in zip(_element_names(name, shape), np.ndindex(*shape)):
            rows.append((label, [site[c][idx] for c in columns]))
    width = max([len(label) for label, _ in rows] + [10])
    header = " " * width + "".join(f"{c:>10}" for c in columns)
    lines = ["", header]
    for label, values in rows:
        cells = "".join(f"{v:>10.2f}" for v in values)
        lines.append(f"{label:>{width}}{cells}")
    print("\n".join(lines) + "\n")

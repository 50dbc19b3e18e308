"""Kullback-Leibler divergences in closed form, with a registry of pairs.

``kl_divergence(p, q)`` is ``KL(p || q) = E_p[log p(x) - log q(x)]``, of
shape ``broadcast(p.batch_shape, q.batch_shape)`` (summed over the event
dims). The function for a pair of types is registered with
:func:`register_kl`; a call picks the registered pair nearest to the
arguments' types along their method resolution orders (so ``Chi2`` uses the
``Gamma`` rule), as NumPyro and PyTorch do. Wrappers are unwrapped first:
``expand`` broadcasts the divergence of the bases, ``to_event`` sums it over
the reinterpreted dims.

Registered pairs: Normal/Normal, MultivariateNormal/MultivariateNormal,
Independent/Independent, ExpandedDistribution with any, Delta with any,
Beta/Beta, Gamma/Gamma, Dirichlet/Dirichlet, Weibull/Gamma,
Exponential/Exponential, Bernoulli/Bernoulli, Categorical/Categorical,
Poisson/Poisson.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import betaln, digamma, gammaln

from core_ppl.distributions.continuous import (
    Beta,
    Dirichlet,
    Exponential,
    Gamma,
    MultivariateNormal,
    Normal,
    Weibull,
)
from core_ppl.distributions.discrete import Bernoulli, Categorical, Poisson
from core_ppl.distributions.distribution import (
    Delta,
    Distribution,
    ExpandedDistribution,
    Independent,
)
from core_ppl.distributions.extra import Kumaraswamy
from core_ppl.distributions.util import sum_rightmost

__all__ = ["kl_divergence", "register_kl"]

_KL_REGISTRY = {}  # (type_p, type_q) -> function(p, q)
_EULER_GAMMA = 0.5772156649015329


def register_kl(type_p, type_q):
    """Decorator registering ``fn(p, q) = KL(p || q)`` for a pair of types.

    Subclasses inherit the rule unless a nearer pair is registered.

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> from core_ppl.distributions.kl import kl_divergence, register_kl
    >>> class MyNormal(dist.Normal):
    ...     pass
    >>> @register_kl(MyNormal, MyNormal)
    ... def _kl_mine(p, q):
    ...     return 0.0 * p.loc
    >>> float(kl_divergence(MyNormal(0.0, 1.0), MyNormal(1.0, 1.0)))
    0.0
    """
    for t in (type_p, type_q):
        if not (isinstance(t, type) and issubclass(t, Distribution)):
            raise TypeError(f"register_kl: expected Distribution subclasses, got {t!r}")

    def decorator(fn):
        _KL_REGISTRY[type_p, type_q] = fn
        _dispatch.cache_clear()
        return fn

    return decorator


@functools.lru_cache(maxsize=None)
def _dispatch(type_p, type_q):
    """The registered function of the pair nearest to ``(type_p, type_q)``."""
    mro_p, mro_q = type_p.__mro__, type_q.__mro__
    best, best_rank = None, None
    for (reg_p, reg_q), fn in _KL_REGISTRY.items():
        if reg_p in mro_p and reg_q in mro_q:
            rank = (mro_p.index(reg_p) + mro_q.index(reg_q), mro_p.index(reg_p))
            if best_rank is None or rank < best_rank:
                best, best_rank = fn, rank
    return best


def kl_divergence(p, q):
    """``KL(p || q)``, batch-shaped, in closed form.

    Parameters
    ----------
    p, q : Distribution
        Distributions of values of the same event shape.

    Returns
    -------
    jax.Array
        Shape ``broadcast(p.batch_shape, q.batch_shape)``.

    Raises
    ------
    NotImplementedError
        When no rule is registered for the pair of types.
    ValueError
        When the event shapes differ.

    Examples
    --------
    >>> import core_ppl.distributions as dist
    >>> kl = dist.kl_divergence(dist.Normal(0.0, 1.0), dist.Normal(1.0, 1.0))
    >>> round(float(kl), 6)
    0.5
    """
    if tuple(p.event_shape) != tuple(q.event_shape):
        raise ValueError(
            f"kl_divergence: event shapes differ: {type(p).__name__} has "
            f"{tuple(p.event_shape)}, {type(q).__name__} has {tuple(q.event_shape)}"
        )
    fn = _dispatch(type(p), type(q))
    if fn is None:
        raise NotImplementedError(
            f"kl_divergence: no closed form registered for "
            f"({type(p).__name__}, {type(q).__name__}); see register_kl"
        )
    batch_shape = jnp.broadcast_shapes(tuple(p.batch_shape), tuple(q.batch_shape))
    return jnp.broadcast_to(fn(p, q), batch_shape)


# --- wrappers ----------------------------------------------------------------------


def _unexpand(d):
    while isinstance(d, ExpandedDistribution):
        d = d.base_dist
    return d


@register_kl(ExpandedDistribution, Distribution)
def _kl_expanded_any(p, q):
    # Each element of an expanded batch is a copy of the base's element, so
    # the divergence of the bases, broadcast, is the divergence (kl_divergence
    # broadcasts the result to the full batch shape).
    return kl_divergence(_unexpand(p), q)


@register_kl(Distribution, ExpandedDistribution)
def _kl_any_expanded(p, q):
    return kl_divergence(p, _unexpand(q))


@register_kl(ExpandedDistribution, ExpandedDistribution)
def _kl_expanded_expanded(p, q):
    return kl_divergence(_unexpand(p), _unexpand(q))


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError(
            "kl_divergence: Independent distributions with different "
            f"reinterpreted_batch_ndims ({p.reinterpreted_batch_ndims} and "
            f"{q.reinterpreted_batch_ndims})"
        )
    inner = kl_divergence(p.base_dist, q.base_dist)
    return sum_rightmost(inner, p.reinterpreted_batch_ndims)


@register_kl(Delta, Distribution)
def _kl_delta_any(p, q):
    # E_p[log p - log q] at the single point v: p's weight log_density minus
    # q's log density there (the convention that a point mass has zero
    # entropy, as Pyro's Delta).
    return p.log_density - q.log_prob(p.v)


# --- continuous ---------------------------------------------------------------------


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    ratio = (p.scale / q.scale) ** 2
    return 0.5 * (ratio + ((p.loc - q.loc) / q.scale) ** 2 - 1.0 - jnp.log(ratio))


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    # 1/2 [tr(Sq^-1 Sp) + m^T Sq^-1 m - k + log det Sq - log det Sp], the trace
    # and the quadratic form through triangular solves by q's factor.
    k = p.event_shape[0]
    shape = jnp.broadcast_shapes(p.scale_tril.shape, q.scale_tril.shape)
    lq = jnp.broadcast_to(q.scale_tril, shape)
    trace_term = jnp.sum(
        solve_triangular(lq, jnp.broadcast_to(p.scale_tril, shape), lower=True) ** 2,
        axis=(-2, -1),
    )
    diff = jnp.broadcast_to((q.loc - p.loc)[..., None], shape[:-1] + (1,))
    mahalanobis = jnp.sum(solve_triangular(lq, diff, lower=True) ** 2, axis=(-2, -1))

    def half_log_det(tril):
        return jnp.sum(jnp.log(jnp.diagonal(tril, axis1=-2, axis2=-1)), -1)

    log_det = half_log_det(q.scale_tril) - half_log_det(p.scale_tril)
    return 0.5 * (trace_term + mahalanobis - k) + log_det


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    a_p, b_p, a_q, b_q = p.concentration, p.rate, q.concentration, q.rate
    return (
        (a_p - a_q) * digamma(a_p)
        - gammaln(a_p)
        + gammaln(a_q)
        + a_q * (jnp.log(b_p) - jnp.log(b_q))
        + a_p * (b_q - b_p) / b_p
    )


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    a_p, b_p = p.concentration1, p.concentration0
    a_q, b_q = q.concentration1, q.concentration0
    return (
        betaln(a_q, b_q)
        - betaln(a_p, b_p)
        + (a_p - a_q) * digamma(a_p)
        + (b_p - b_q) * digamma(b_p)
        + (a_q - a_p + b_q - b_p) * digamma(a_p + b_p)
    )


# Terms of the series for E[log(1 - X)] under a Kumaraswamy summed exactly;
# the rest, whose terms fall like Gamma(b) a^b m^-(1 + b), is added as its
# integral, so that small b (a slowly converging series) stays accurate.
_KUMARASWAMY_SERIES_TERMS = 1000


@register_kl(Kumaraswamy, Beta)
def _kl_kumaraswamy_beta(p, q):
    # Nalisnick and Smyth (2017), "Stick-breaking variational autoencoders",
    # appendix: E[log X] = (-euler_gamma - digamma(b) - 1/b) / a and
    # E[log(1 - X)] = -b sum_m B(m/a, b) / (m + a b) under Kumaraswamy(a, b).
    a, b = p.concentration1, p.concentration0
    alpha, beta = q.concentration1, q.concentration0
    euler_gamma = 0.5772156649015329
    m = jnp.arange(1, _KUMARASWAMY_SERIES_TERMS + 1, dtype=jnp.result_type(a, float))
    m = m.reshape(m.shape + (1,) * jnp.ndim(a + b))
    series = jnp.sum(jnp.exp(betaln(m / a, b)) / (m + a * b), axis=0)
    tail_start = _KUMARASWAMY_SERIES_TERMS + 0.5
    series = series + jnp.exp(gammaln(b) + b * jnp.log(a / tail_start)) / b
    expected_log_x = (-euler_gamma - digamma(b) - 1.0 / b) / a
    expected_log_1m_x = -b * series
    # KL = E[log k(X)] - E[log beta(X)], with
    # log k(x) = log(ab) + (a - 1) log x + (b - 1) log(1 - x^a) and
    # E[log(1 - X^a)] = -1/b (X^a is Beta(1, b) distributed).
    return (
        jnp.log(a * b)
        + (a - 1.0) * expected_log_x
        - (b - 1.0) / b
        + betaln(alpha, beta)
        - (alpha - 1.0) * expected_log_x
        - (beta - 1.0) * expected_log_1m_x
    )


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    c_p, c_q = p.concentration, q.concentration
    total_p = jnp.sum(c_p, -1)
    return (
        gammaln(total_p)
        - jnp.sum(gammaln(c_p), -1)
        - gammaln(jnp.sum(c_q, -1))
        + jnp.sum(gammaln(c_q), -1)
        + jnp.sum((c_p - c_q) * (digamma(c_p) - digamma(total_p)[..., None]), -1)
    )


@register_kl(Weibull, Gamma)
def _kl_weibull_gamma(p, q):
    # -H(p) - E_p[log q]; with E log x = log s - gamma / k, E x = s G(1 + 1/k)
    # and H(p) = gamma (1 - 1/k) + log(s / k) + 1 for Weibull(s, k).
    k, s = p.concentration, p.scale
    a, b = q.concentration, q.rate
    entropy = _EULER_GAMMA * (1.0 - 1.0 / k) + jnp.log(s / k) + 1.0
    mean_log = jnp.log(s) - _EULER_GAMMA / k
    mean = s * jnp.exp(gammaln(1.0 + 1.0 / k))
    cross = a * jnp.log(b) - gammaln(a) + (a - 1.0) * mean_log - b * mean
    return -entropy - cross


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    ratio = q.rate / p.rate
    return ratio - jnp.log(ratio) - 1.0


# --- discrete -----------------------------------------------------------------------


def _xlogy_ratio(p, log_p, log_q):
    """``p (log p - log q)``, 0 where ``p == 0`` (whatever ``log q``)."""
    is_zero = p == 0
    return jnp.where(is_zero, 0.0, p * (jnp.where(is_zero, 0.0, log_p - log_q)))


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    probs = jax.nn.sigmoid(p.logits)
    return _xlogy_ratio(
        probs, jax.nn.log_sigmoid(p.logits), jax.nn.log_sigmoid(q.logits)
    ) + _xlogy_ratio(
        1.0 - probs, jax.nn.log_sigmoid(-p.logits), jax.nn.log_sigmoid(-q.logits)
    )


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    if p.logits.shape[-1] != q.logits.shape[-1]:
        raise ValueError(
            "kl_divergence: Categorical distributions over different numbers of "
            f"categories ({p.logits.shape[-1]} and {q.logits.shape[-1]})"
        )
    log_p = jax.nn.log_softmax(p.logits, -1)
    log_q = jax.nn.log_softmax(q.logits, -1)
    return jnp.sum(_xlogy_ratio(jnp.exp(log_p), log_p, log_q), -1)


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return _xlogy_ratio(p.rate, jnp.log(p.rate), jnp.log(q.rate)) - p.rate + q.rate

"""GaussianRandomWalk, LowRankMultivariateNormal and LKJ: densities against
scipy and closed forms, moments within Monte Carlo error, shapes, validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.diagnostics import effective_sample_size
from core_ppl.distributions import constraints
from core_ppl.infer import MCMC, NUTS

from .checks import check_moments

pytestmark = pytest.mark.usefixtures("x64")

NUM_DRAWS = 20000


# --- GaussianRandomWalk ----------------------------------------------------------


def _walk_cov(scale, num_steps):
    # Cov(x_s, x_t) = scale^2 min(s, t) for the walk started at x_0 ~ N(0, s^2).
    t = np.arange(1, num_steps + 1)
    return scale**2 * np.minimum.outer(t, t)


def test_gaussian_random_walk_density_and_moments():
    scale = np.array([0.5, 2.0])
    d = dist.GaussianRandomWalk(scale, num_steps=4)
    assert d.batch_shape == (2,) and d.event_shape == (4,)
    assert d.support is constraints.real_vector
    draws = d.sample(jax.random.PRNGKey(0), (NUM_DRAWS,))
    assert draws.shape == (NUM_DRAWS, 2, 4)
    log_prob = d.log_prob(draws[:3])
    walk_mvn = [st.multivariate_normal(np.zeros(4), _walk_cov(s, 4)) for s in scale]
    head = np.asarray(draws[:3])
    expected = [[mvn.logpdf(x) for x, mvn in zip(row, walk_mvn)] for row in head]
    np.testing.assert_allclose(log_prob, expected, rtol=1e-10)
    np.testing.assert_allclose(d.variance, [np.diag(_walk_cov(s, 4)) for s in scale])
    check_moments(np.asarray(draws), d.mean, d.variance)
    # The increments are uncorrelated: the walk's covariance is scale^2 min(s, t).
    emp_cov = np.cov(np.asarray(draws[:, 0]), rowvar=False)
    cov = _walk_cov(0.5, 4)
    # Var of a Gaussian sample covariance: (S_ij^2 + S_ii S_jj) / n.
    se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / NUM_DRAWS)
    np.testing.assert_array_less(np.abs(emp_cov - cov), 5 * se)


def test_gaussian_random_walk_validation():
    with pytest.raises(ValueError, match="num_steps"):
        dist.GaussianRandomWalk(1.0, num_steps=0)
    with pytest.raises(ValueError, match="num_steps"):
        dist.GaussianRandomWalk(1.0, num_steps=2.5)
    with pytest.raises(ValueError, match="'scale'"):
        dist.GaussianRandomWalk(jnp.array([1.0, -1.0]), 3, validate_args=True)
    with pytest.raises(ValueError, match="support"):
        dist.GaussianRandomWalk(1.0, 2, validate_args=True).log_prob(
            jnp.array([0.0, jnp.nan])
        )


# --- LowRankMultivariateNormal ---------------------------------------------------


def _low_rank(rng, batch=(3,), n=5, r=2):
    loc = rng.normal(size=batch + (n,))
    cov_factor = rng.normal(size=(n, r))
    cov_diag = rng.uniform(0.5, 2.0, size=n)
    return dist.LowRankMultivariateNormal(loc, cov_factor, cov_diag)


def test_low_rank_log_prob_against_scipy_dense():
    d = _low_rank(np.random.default_rng(0))
    assert d.batch_shape == (3,) and d.event_shape == (5,)
    cov = np.asarray(d.covariance_matrix[0])
    x = np.random.default_rng(1).normal(size=(4, 1, 5))  # broadcasts over batch

    @jax.jit
    def views(d, x):
        mvn = dist.MultivariateNormal(d.loc, covariance_matrix=d.covariance_matrix)
        return (
            d.log_prob(x),
            mvn.log_prob(x),
            d.precision_matrix,
            d.scale_tril,
            d.variance,
            mvn.variance,
        )

    log_prob, mvn_log_prob, precision, scale_tril, var, mvn_var = views(d, x)
    assert log_prob.shape == (4, 3)
    mvns = [st.multivariate_normal(np.asarray(d.loc[j]), cov) for j in range(3)]
    expected = [[mvn.logpdf(row[0]) for mvn in mvns] for row in x]
    np.testing.assert_allclose(log_prob, expected, rtol=1e-10)
    # The dense views agree with each other and with MultivariateNormal.
    np.testing.assert_allclose(precision[0], np.linalg.inv(cov), atol=1e-12)
    np.testing.assert_allclose(scale_tril[0] @ scale_tril[0].T, cov, atol=1e-12)
    np.testing.assert_allclose(log_prob, mvn_log_prob, rtol=1e-10)
    np.testing.assert_allclose(var, mvn_var, rtol=1e-12)


def test_low_rank_log_prob_never_forms_the_dense_covariance():
    # O(n r^2): no n x n intermediate appears in the traced program.
    n, r = 40, 2
    d = _low_rank(np.random.default_rng(0), batch=(), n=n, r=r)
    jaxpr = jax.make_jaxpr(d.log_prob)(jnp.zeros(n))
    shapes = {
        tuple(v.aval.shape)
        for eqn in jaxpr.jaxpr.eqns
        for v in list(eqn.invars) + list(eqn.outvars)
        if hasattr(v, "aval")
    }
    assert (n, n) not in shapes
    assert (r, r) in shapes


def test_low_rank_moments():
    d = _low_rank(np.random.default_rng(2), batch=(2,), n=3, r=2)
    draws = np.asarray(d.sample(jax.random.PRNGKey(3), (NUM_DRAWS,)))
    assert draws.shape == (NUM_DRAWS, 2, 3)
    check_moments(draws, d.mean, d.variance)
    cov = np.asarray(d.covariance_matrix[0])
    emp_cov = np.cov(draws[:, 0], rowvar=False)
    # Var of a Gaussian sample covariance: (S_ij^2 + S_ii S_jj) / n.
    se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / NUM_DRAWS)
    np.testing.assert_array_less(np.abs(emp_cov - cov), 5 * se)


def test_low_rank_validation():
    loc, w, diag = jnp.zeros(3), jnp.ones((3, 2)), jnp.ones(3)
    with pytest.raises(ValueError, match="'cov_diag'"):
        dist.LowRankMultivariateNormal(loc, w, -diag, validate_args=True)
    with pytest.raises(ValueError, match="cov_factor with shape \\(4, 2\\)"):
        dist.LowRankMultivariateNormal(loc, jnp.ones((4, 2)), diag)
    with pytest.raises(ValueError, match="cov_diag with shape \\(2,\\)"):
        dist.LowRankMultivariateNormal(loc, w, jnp.ones(2))
    with pytest.raises(ValueError, match="cov_factor needs at least 2"):
        dist.LowRankMultivariateNormal(loc, jnp.ones(3), diag)
    with pytest.raises(ValueError, match="do not broadcast"):
        dist.LowRankMultivariateNormal(jnp.zeros((2, 3)), jnp.ones((4, 3, 2)), diag)


# --- LKJ -------------------------------------------------------------------------


def _corr2(r):
    r = np.asarray(r)
    ones = np.ones_like(r)
    return np.stack([np.stack([ones, r], -1), np.stack([r, ones], -1)], -2)


@jax.jit  # eta is traced: the cases below share one compiled program
def _lkj2_log_prob(eta, corr):
    return dist.LKJ(2, eta).log_prob(corr)


@pytest.mark.parametrize("eta", [0.5, 1.0, 3.0])
def test_lkj_dimension_two_is_a_scaled_beta(eta):
    # For d = 2 the correlation r is 2 B - 1 with B ~ Beta(eta, eta).
    r = np.array([-0.95, -0.3, 0.0, 0.4, 0.9])
    log_prob = _lkj2_log_prob(eta, _corr2(r))
    expected = st.beta(eta, eta).logpdf((r + 1) / 2) - math.log(2.0)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-10)


@jax.jit
def _lkj_scores(eta, corr, chol):
    return dist.LKJ(4, eta).log_prob(corr), dist.LKJCholesky(4, eta).log_prob(chol)


def test_lkj_density_ratios_and_uniform_normaliser():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(6, 6)))
    chol = dist.transforms.CorrCholeskyTransform()(x)
    corr = chol @ jnp.swapaxes(chol, -2, -1)
    _, log_det = np.linalg.slogdet(np.asarray(corr))
    log_diag = np.log(np.diagonal(np.asarray(chol), axis1=-2, axis2=-1))
    for eta in (0.6, 2.0):
        log_prob, chol_log_prob = _lkj_scores(eta, corr, chol)
        # Density ratios are det(C1 / C2)^(eta - 1) whatever the normaliser.
        np.testing.assert_allclose(
            log_prob - log_prob[0], (eta - 1) * (log_det - log_det[0]), atol=1e-10
        )
        # LKJCholesky's density less log|det dC/dL| = sum_j (d - j) log L_jj.
        jac = log_diag @ np.arange(3, -1, -1)
        np.testing.assert_allclose(log_prob, chol_log_prob - jac, rtol=1e-10)
    # eta = 1 is uniform over 3x3 correlation matrices, a set of volume pi^2/2.
    np.testing.assert_allclose(
        dist.LKJ(3, 1.0).log_prob(jnp.eye(3)), -math.log(math.pi**2 / 2), rtol=1e-12
    )


def test_lkj_samples_moments_and_wrappers():
    dim, eta = 3, jnp.array([0.8, 2.0])
    d = dist.LKJ(dim, eta)
    assert d.batch_shape == (2,) and d.event_shape == (3, 3)
    assert d.support is constraints.corr_matrix

    # One program (the LKJ sampler is slow to compile): draws from NUM_DRAWS
    # expanded copies, which are NUM_DRAWS independent draws of d, and the
    # log densities through expand, to_event and vmap.
    @jax.jit
    def run(d, key):
        expanded = d.expand((NUM_DRAWS,) + d.batch_shape)
        draws = expanded.sample(key)
        head = draws[:4]
        mapped = jax.vmap(lambda d, v: d.log_prob(v), in_axes=(0, 1))(d, head)
        return {
            "draws": draws,
            "in_support": d.support(draws),
            "log_prob": d.log_prob(head),
            "expanded": expanded.log_prob(draws)[:4],
            "joint": d.to_event(1).log_prob(head),
            "mapped": mapped.T,
        }

    out = run(d, jax.random.PRNGKey(4))
    draws = np.asarray(out["draws"])
    assert draws.shape == (NUM_DRAWS, 2, 3, 3)
    assert bool(jnp.all(out["in_support"]))
    np.testing.assert_allclose(out["expanded"], out["log_prob"], rtol=1e-12)
    np.testing.assert_allclose(out["joint"], out["log_prob"].sum(-1), rtol=1e-12)
    np.testing.assert_allclose(out["mapped"], out["log_prob"], rtol=1e-12)
    assert d.to_event(1).event_shape == (2, 3, 3)
    # Each off-diagonal entry is 2 Beta(a, a) - 1, a = eta - 1 + d/2: mean 0
    # and variance 1 / (2a + 1) (the identity and zero on the diagonal).
    a = np.asarray(eta) - 1 + dim / 2
    np.testing.assert_allclose(d.variance[:, 0, 1], 1 / (2 * a + 1), rtol=1e-12)
    np.testing.assert_allclose(d.mean, np.broadcast_to(np.eye(3), (2, 3, 3)))
    rows, cols = np.tril_indices(dim, -1)
    check_moments(
        draws[..., rows, cols],
        np.asarray(d.mean)[..., rows, cols],
        np.asarray(d.variance)[..., rows, cols],
    )
    assert float(jnp.max(d.variance[..., jnp.arange(3), jnp.arange(3)])) == 0.0


@pytest.mark.slow
def test_nuts_on_an_lkj_prior_recovers_its_moments():
    # With no data the posterior is the prior: NUTS explores corr_matrix
    # through biject_to, so this checks LKJ.log_prob and the transform's
    # log-Jacobian together, end to end.
    def model():
        ppl.sample("corr", dist.LKJ(3, 2.0))

    mcmc = MCMC(NUTS(model), num_warmup=200, num_samples=800, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    corr = np.asarray(mcmc.get_samples()["corr"])
    assert bool(jnp.all(constraints.corr_matrix(corr)))
    rows, cols = np.tril_indices(3, -1)
    r = corr[:, rows, cols]
    ess = effective_sample_size(r[None])
    a = 2.0 - 1 + 3 / 2
    var = 1 / (2 * a + 1)
    m4 = 3 / ((2 * a + 1) * (2 * a + 3))  # E r^4 for the symmetric beta
    assert np.all(np.abs(r.mean(0)) < 5 * np.sqrt(var / ess))
    assert np.all(np.abs((r**2).mean(0) - var) < 5 * np.sqrt((m4 - var**2) / ess))


def test_lkj_validation():
    with pytest.raises(ValueError, match="dimension"):
        dist.LKJ(1)
    with pytest.raises(ValueError, match="sample_method"):
        dist.LKJ(3, sample_method="bogus")
    with pytest.raises(ValueError, match="'concentration'"):
        dist.LKJ(3, jnp.array([1.0, -2.0]), validate_args=True)
    with pytest.raises(ValueError, match="corr_matrix"):
        dist.LKJ(2, validate_args=True).log_prob(_corr2(1.5))


# --- shared: shapes, wrappers, pytrees ------------------------------------------

# LKJ has the same checks in test_lkj_samples_moments_and_wrappers.

SHAPE_CASES = [
    ("random_walk", lambda: dist.GaussianRandomWalk(jnp.ones(3), 4)),
    ("low_rank", lambda: _low_rank(np.random.default_rng(0), batch=(3,), n=4)),
]


@jax.jit
def _shape_checks(d, key):
    # One program per case: sampling and scoring through the wrappers, and
    # the distribution passed in as a pytree.
    # The draws of the expanded distribution are those of five independent
    # copies of d: the first two serve as values of d (one sampler to compile).
    expanded = d.expand((5,) + d.batch_shape)
    expanded_draw = expanded.sample(key)
    value = expanded_draw[:2]
    joint = d.to_event(1)
    mapped = jax.vmap(lambda d, v: d.log_prob(v), in_axes=(0, 1))(d, value)
    return {
        "value": value,
        "in_support": d.support(value),
        "log_prob": d.log_prob(value),
        "expanded_draw": expanded_draw,
        "expanded_log_prob": expanded.log_prob(value[0]),
        "joint_log_prob": joint.log_prob(value),
        "mapped": mapped.T,
    }


@pytest.mark.parametrize(
    "make", [c[1] for c in SHAPE_CASES], ids=[c[0] for c in SHAPE_CASES]
)
def test_shapes_expand_to_event_and_pytrees(make):
    d = make()
    assert d.batch_shape == (3,)
    out = _shape_checks(d, jax.random.PRNGKey(0))
    assert out["value"].shape == d.shape((2,)) == (2, 3) + d.event_shape
    assert bool(jnp.all(out["in_support"]))
    np.testing.assert_allclose(out["log_prob"], d.log_prob(out["value"]), rtol=1e-12)
    # expand: new independent copies on the left, same density per copy.
    assert d.expand((5, 3)).batch_shape == (5, 3)
    assert out["expanded_draw"].shape == (5, 3) + d.event_shape
    np.testing.assert_allclose(
        out["expanded_log_prob"], np.broadcast_to(out["log_prob"][0], (5, 3))
    )
    # to_event sums the batch into one event.
    joint = d.to_event(1)
    assert joint.batch_shape == () and joint.event_shape == (3,) + d.event_shape
    np.testing.assert_allclose(out["joint_log_prob"], out["log_prob"].sum(-1))
    # vmap over the batch axis sees one unbatched distribution per slice.
    np.testing.assert_allclose(out["mapped"], out["log_prob"], rtol=1e-12)


def test_gradients():
    key = jax.random.PRNGKey(0)

    def mean_square(scale):
        draws = dist.GaussianRandomWalk(scale, 3).sample(key, (4000,))
        return jnp.mean(draws[:, -1] ** 2)

    # E[x_T^2] = T scale^2, d/dscale = 2 T scale = 12 at scale 2, T = 3; the
    # estimate is 2 mean(x_T^2) / scale, relative sd sqrt(2 / 4000) ~ 0.022.
    np.testing.assert_allclose(jax.jit(jax.grad(mean_square))(2.0), 12.0, rtol=0.11)
    # The Woodbury log density has the gradients of the dense one.
    d = _low_rank(np.random.default_rng(0), batch=(), n=3)
    x = jnp.array([0.5, -1.0, 2.0])

    def low_rank(loc, w, diag):
        return dist.LowRankMultivariateNormal(loc, w, diag).log_prob(x)

    def dense(loc, w, diag):
        cov = w @ w.T + jnp.diag(diag)
        return dist.MultivariateNormal(loc, covariance_matrix=cov).log_prob(x)

    params = (d.loc, d.cov_factor, d.cov_diag)
    grads, expected = jax.jit(
        lambda p: [jax.grad(f, argnums=(0, 1, 2))(*p) for f in (low_rank, dense)]
    )(params)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)

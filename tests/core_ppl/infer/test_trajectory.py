"""The iterative NUTS tree against a recursive reference (Stan's build_tree).

The reference below is a plain transcription of Stan's recursive
``base_nuts::transition``/``build_tree`` (with the two extra U-turn checks
across subtrees) in NumPy float64. It consumes the same random bits as the
iterative kernel (``core_ppl.infer.mcmc.nuts.draw_randomness``): the
momentum, and per doubling ``d`` the direction bit, the biased-sampling
uniform and the leaf Gumbels of ``core_ppl.infer.mcmc.trajectory``.
Multinomial sampling inside subtrees is a Gumbel-max draw, so merging halves
recursively or leaves one at a time picks the same point: every decision
must agree exactly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core_ppl.infer.mcmc import hmc, nuts, trajectory
from core_ppl.infer.mcmc.integrators import IntegratorState
from core_ppl.infer.mcmc.metrics import gaussian_euclidean

MAX_DEPTH = 8


# --- recursive reference ---------------------------------------------------


def _random_bits(randomness, depth):
    """The numbers the kernel uses at doubling ``depth``: direction, biased
    sampling uniform, and the Gumbels of the subtree's ``2**depth`` leaves."""
    gumbels = jax.vmap(lambda n: trajectory.leaf_gumbel(randomness, depth, n))(
        jnp.arange(2**depth)
    )
    return randomness.is_forward[depth], randomness.bias_uniform[depth], gumbels


class _Reference:
    def __init__(self, precision, inverse_mass_matrix, step_size, threshold=1000.0):
        self.precision = precision  # target N(0, precision^-1)
        self.minv = np.asarray(inverse_mass_matrix, np.float64)
        self.step_size = step_size
        self.threshold = threshold
        self.n_leapfrog = 0
        self.sum_metro_prob = 0.0
        self.divergent = False

    def grad_logp(self, q):
        return -self.precision @ q

    def velocity(self, p):
        return self.minv * p if self.minv.ndim == 1 else self.minv @ p

    def hamiltonian(self, q, p):
        return 0.5 * q @ self.precision @ q + 0.5 * p @ self.velocity(p)

    def leapfrog(self, q, p, eps):
        p = p + 0.5 * eps * self.grad_logp(q)
        q = q + eps * self.velocity(p)
        p = p + 0.5 * eps * self.grad_logp(q)
        return q, p

    @staticmethod
    def criterion(v_minus, v_plus, rho):
        return (v_plus @ rho > 0) and (v_minus @ rho > 0)

    def build_tree(self, depth, z, sign, h0, gumbels, out):
        """Stan's build_tree; returns validity and fills ``out`` like Stan's refs."""
        if depth == 0:
            q, p = self.leapfrog(*z, sign * self.step_size)
            z[:] = [q, p]
            leaf = self.n_leapfrog - out["first_leaf"]
            self.n_leapfrog += 1
            h = self.hamiltonian(q, p)
            h = np.inf if np.isnan(h) else h
            if h - h0 > self.threshold:
                self.divergent = True
            self.sum_metro_prob += min(1.0, np.exp(h0 - h))
            v = self.velocity(p)
            out.update(
                propose=q,
                score=(h0 - h) + gumbels[leaf],
                log_w=h0 - h,
                v_beg=v,
                v_end=v,
                p_beg=p,
                p_end=p,
                rho=p,
            )
            return not self.divergent
        init = {"first_leaf": out["first_leaf"]}
        if not self.build_tree(depth - 1, z, sign, h0, gumbels, init):
            return False
        final = {"first_leaf": out["first_leaf"]}
        if not self.build_tree(depth - 1, z, sign, h0, gumbels, final):
            return False
        better = final if final["score"] > init["score"] else init
        rho = init["rho"] + final["rho"]
        out.update(
            propose=better["propose"],
            score=better["score"],
            log_w=np.logaddexp(init["log_w"], final["log_w"]),
            v_beg=init["v_beg"],
            v_end=final["v_end"],
            p_beg=init["p_beg"],
            p_end=final["p_end"],
            rho=rho,
        )
        return (
            self.criterion(init["v_beg"], final["v_end"], rho)
            and self.criterion(
                init["v_beg"], final["v_beg"], init["rho"] + final["p_beg"]
            )
            and self.criterion(
                init["v_end"], final["v_end"], final["rho"] + init["p_end"]
            )
        )

    def transition(self, randomness, q0, p0):
        h0 = self.hamiltonian(q0, p0)
        v0 = self.velocity(p0)
        # Time-ordered ends: (q, p, v) at the left (backward) and right ends.
        left = right = (q0, p0, v0)
        rho, log_w, sample, depth, turning = p0, 0.0, q0, 0, False
        while depth < MAX_DEPTH:
            forward, uniform, gumbels = (
                np.asarray(x) for x in _random_bits(randomness, depth)
            )
            start = right if forward else left
            z = [start[0], start[1]]
            sub = {"first_leaf": self.n_leapfrog}
            if not self.build_tree(depth, z, 1 if forward else -1, h0, gumbels, sub):
                turning = not self.divergent
                break
            depth += 1
            if uniform < np.exp(sub["log_w"] - log_w):
                sample = sub["propose"]
            log_w = np.logaddexp(log_w, sub["log_w"])
            # Stan's top-level checks, in time order A (left) then B (right).
            end = (z[0], z[1], sub["v_end"])
            if forward:
                a_first, a_last, a_rho = left[2], right, rho
                b_first_p, b_first_v, b_last_v, b_rho = (
                    sub["p_beg"],
                    sub["v_beg"],
                    sub["v_end"],
                    sub["rho"],
                )
                right = end
            else:
                a_first, a_last, a_rho = (
                    sub["v_end"],
                    (None, sub["p_beg"], sub["v_beg"]),
                    sub["rho"],
                )
                b_first_p, b_first_v, b_last_v, b_rho = left[1], left[2], right[2], rho
                left = end
            rho = a_rho + b_rho
            if not (
                self.criterion(a_first, b_last_v, rho)
                and self.criterion(a_first, b_first_v, a_rho + b_first_p)
                and self.criterion(a_last[2], b_last_v, a_last[1] + b_rho)
            ):
                turning = True
                break
        return {
            "position": sample,
            "depth": depth,
            "turning": turning,
            "divergent": self.divergent,
            "n_leapfrog": self.n_leapfrog,
            "sum_accept": self.sum_metro_prob,
        }


# --- comparison -------------------------------------------------------------


def _targets():
    # All of dimension 4 so that the diagonal and the dense kernel compile once.
    iid = np.eye(4)
    cov = np.array(
        [
            [1.0, 0.95, 0.3, 0.0],
            [0.95, 1.0, 0.2, 0.1],
            [0.3, 0.2, 2.0, -0.5],
            [0.0, 0.1, -0.5, 0.5],
        ]
    )
    return {
        "iid_unit_metric": (iid, np.ones(4)),
        "iid_diag_metric": (iid, np.array([0.5, 1.0, 2.0, 1.5])),
        "correlated_diag_metric": (np.linalg.inv(cov), np.ones(4)),
        "correlated_dense_metric": (np.linalg.inv(cov), cov + 0.1 * np.eye(4)),
    }


@pytest.fixture(scope="module")
def jitted_kernel():
    kernel = nuts.build_kernel()

    def run(rng_key, position, precision, step_size, inverse_mass_matrix):
        def logdensity_fn(q):
            return -0.5 * q @ precision @ q

        state = hmc.init(position, logdensity_fn)
        return kernel(
            rng_key, state, logdensity_fn, step_size, inverse_mass_matrix, MAX_DEPTH
        )

    return jax.jit(run)


def _compare_one_transition(jitted_kernel, target, step_size, seed):
    """Run kernel and reference from the same bits; return why the tree stopped."""
    precision, inverse_mass_matrix = _targets()[target]
    dim = precision.shape[0]
    rng_key = jax.random.PRNGKey(seed)
    q0 = np.asarray(
        jax.random.normal(jax.random.PRNGKey(100 + seed), (dim,)), np.float64
    )
    state, info = jitted_kernel(
        rng_key,
        jnp.asarray(q0),
        jnp.asarray(precision),
        step_size,
        jnp.asarray(inverse_mass_matrix),
    )
    normal, randomness = nuts.draw_randomness(rng_key, jnp.asarray(q0), MAX_DEPTH)
    metric = gaussian_euclidean(jnp.asarray(inverse_mass_matrix))
    p0 = np.asarray(metric.momentum_from_normal(normal))
    ref = _Reference(precision, inverse_mass_matrix, step_size).transition(
        randomness, q0, p0
    )
    assert int(info.tree_depth) == ref["depth"]
    assert int(info.num_integration_steps) == ref["n_leapfrog"]
    assert bool(info.is_turning) == ref["turning"]
    assert bool(info.is_divergent) == ref["divergent"]
    np.testing.assert_allclose(
        float(info.acceptance_rate) * ref["n_leapfrog"], ref["sum_accept"], rtol=1e-9
    )
    np.testing.assert_allclose(
        np.asarray(state.position), ref["position"], rtol=1e-9, atol=1e-12
    )
    if ref["divergent"]:
        return "divergent"
    return "turning" if ref["turning"] else "max_depth"


@pytest.mark.parametrize("target", list(_targets()))
@pytest.mark.parametrize("step_size", [0.03, 0.3, 0.9, 1.7, 2.6])
def test_iterative_tree_matches_recursive_reference(
    x64, jitted_kernel, target, step_size
):
    for seed in range(5):
        _compare_one_transition(jitted_kernel, target, step_size, seed)


def test_comparison_covers_every_stopping_reason(x64, jitted_kernel):
    """U-turns, divergences and the depth cap are each compared at least once."""
    seen = set()
    # 20 is far beyond the stability limit 2 of the leapfrog on N(0, 1).
    for step_size in (0.005, 0.9, 20.0):
        for seed in range(5):
            seen.add(
                _compare_one_transition(
                    jitted_kernel, "iid_unit_metric", step_size, seed
                )
            )
    assert seen == {"turning", "divergent", "max_depth"}


def test_a_leaf_of_infinite_log_density_is_a_divergence_of_weight_zero():
    """A log density of +inf (a probability that underflowed to 0 under a
    pole of the density) must not win the multinomial draw."""
    metric = gaussian_euclidean(jnp.ones(1))
    state = IntegratorState(
        jnp.zeros(1), jnp.zeros(1), jnp.asarray(jnp.inf), jnp.zeros(1)
    )
    energy, log_weight, is_diverging = trajectory._leaf_energy(
        state, metric, jnp.asarray(1.0), 1000.0
    )
    assert log_weight == -jnp.inf and bool(is_diverging)

"""ELBO corners of issue 19: ``vectorize_particles`` and the KL registry in
``TraceMeanField_ELBO``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.handlers import seed, trace
from core_ppl.infer import RenyiELBO, Trace_ELBO, TraceMeanField_ELBO

DATA = jnp.array([0.3, -0.5, 1.2])


def _model():
    rate = ppl.sample("rate", dist.Gamma(2.0, 1.0))
    with ppl.plate("data", 3):
        ppl.sample("y", dist.Normal(0.0, 1.0 / jnp.sqrt(rate)), obs=DATA)


def _guide():
    a = ppl.param("a", 3.0, constraint=dist.constraints.positive)
    ppl.sample("rate", dist.Gamma(a, 1.5))


@pytest.mark.parametrize(
    "make_elbo",
    [
        lambda v: Trace_ELBO(num_particles=4, vectorize_particles=v),
        lambda v: TraceMeanField_ELBO(num_particles=4, vectorize_particles=v),
        lambda v: RenyiELBO(0.5, num_particles=4, vectorize_particles=v),
    ],
    ids=["trace", "mean-field", "renyi"],
)
def test_sequential_particles_give_the_vectorised_loss(x64, make_elbo):
    key = jax.random.PRNGKey(0)
    vectorised = make_elbo(True).loss(key, {}, _model, _guide)
    sequential = make_elbo(False).loss(key, {}, _model, _guide)
    np.testing.assert_allclose(sequential, vectorised, rtol=1e-12)
    assert make_elbo(True) != make_elbo(False)


def test_vectorize_particles_must_be_a_bool():
    with pytest.raises(TypeError, match="vectorize_particles"):
        Trace_ELBO(vectorize_particles=1)


def test_mean_field_uses_the_gamma_kl_in_closed_form(x64):
    # One particle of TraceMeanField: log-likelihood at the draw minus the
    # closed-form KL(Gamma(3, 1.5) || Gamma(2, 1)); the KL term has no noise,
    # so the loss minus the likelihood term is the same for every key.
    def kl_part(key):
        loss = TraceMeanField_ELBO().loss(key, {}, _model, _guide)
        guide_key = jax.random.split(key)[1]  # the ELBO's (model, guide) split
        guide_trace = trace(seed(_guide, rng_seed=guide_key)).get_trace()
        rate = guide_trace["rate"]["value"]
        loglik = dist.Normal(0.0, 1.0 / jnp.sqrt(rate)).log_prob(DATA).sum()
        return loss + loglik

    expected = dist.kl_divergence(dist.Gamma(3.0, 1.5), dist.Gamma(2.0, 1.0))
    for i in range(3):
        np.testing.assert_allclose(kl_part(jax.random.PRNGKey(i)), expected)

"""NumPyro's MCMC options ``postprocess_fn`` and ``jit_model_args``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl.infer import MCMC, NUTS

Y = jnp.array([0.3, -0.2, 1.1, 0.4])


def model(y):
    scale = ppl.sample("scale", dist.HalfNormal(1.0))
    with ppl.plate("rows", y.shape[0]):
        ppl.sample("y", dist.Normal(0.0, scale), obs=y)


def log_scale(z):
    # z holds the unconstrained draw: log(scale) for a positive site.
    return {"log_scale": z["scale"]}


def _run(**options):
    mcmc = MCMC(
        NUTS(model), num_warmup=100, num_samples=100, progress_bar=False, **options
    )
    mcmc.run(jax.random.PRNGKey(0), Y)
    return mcmc.get_samples()


def test_postprocess_fn_replaces_the_constraining_map():
    """The user's map sees the unconstrained draws; the same keys give the
    same chain, so its output is the log of the default samples."""
    default = _run()
    custom = _run(postprocess_fn=log_scale)
    assert set(custom) == {"log_scale"}
    np.testing.assert_allclose(
        custom["log_scale"], np.log(default["scale"]), rtol=1e-5, atol=1e-6
    )


def test_jit_model_args_is_accepted_and_changes_nothing():
    np.testing.assert_array_equal(
        _run(jit_model_args=True)["scale"], _run(jit_model_args=False)["scale"]
    )


def test_bad_options_are_refused():
    with pytest.raises(TypeError, match="jit_model_args"):
        MCMC(NUTS(model), num_warmup=1, num_samples=1, jit_model_args="yes")
    with pytest.raises(TypeError, match="postprocess_fn"):
        MCMC(NUTS(model), num_warmup=1, num_samples=1, postprocess_fn=3)

"""Regression tests of issue 19's primitive corners: ``obs_mask`` on a site
with an event shape, and a ``param`` with ``event_dim`` in a subsampled plate."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import core_ppl as ppl
import core_ppl.distributions as dist
from core_ppl import handlers
from core_ppl.infer.util import log_density

# --- obs_mask covers batch dimensions only -------------------------------------------


def _mvn_with_missing_rows(data, observed):
    cov = jnp.array([[1.0, 0.5], [0.5, 2.0]])
    with ppl.plate("rows", data.shape[0]):
        return ppl.sample(
            "y",
            dist.MultivariateNormal(jnp.zeros(2), cov),
            obs=data,
            obs_mask=observed,
        )


def test_obs_mask_with_event_shape_masks_whole_rows(x64):
    data = jnp.array([[1.0, -1.0], [0.0, 0.0], [0.5, 2.0]])
    observed = jnp.array([True, False, True])
    tr = handlers.trace(handlers.seed(_mvn_with_missing_rows, 0)).get_trace(
        data, observed
    )
    assert tr["y_unobserved"]["value"].shape == (3, 2)
    value = tr["y"]["value"]
    np.testing.assert_array_equal(value, data)
    imputed = jnp.array([[9.0, 9.0], [0.3, -0.7], [9.0, 9.0]])
    lp, _ = log_density(
        _mvn_with_missing_rows, (data, observed), {}, {"y_unobserved": imputed}
    )
    cov = np.array([[1.0, 0.5], [0.5, 2.0]])
    ref = stats.multivariate_normal(np.zeros(2), cov)
    expected = ref.logpdf(np.asarray(data)[[0, 2]]).sum() + ref.logpdf([0.3, -0.7])
    np.testing.assert_allclose(lp, expected, rtol=1e-10)


def test_obs_mask_with_event_shape_returns_rows_interleaved():
    data = jnp.array([[1.0, -1.0], [0.0, 0.0], [0.5, 2.0]])
    observed = jnp.array([True, False, True])
    out = handlers.seed(_mvn_with_missing_rows, 1)(data, observed)
    np.testing.assert_array_equal(out[0], data[0])
    np.testing.assert_array_equal(out[2], data[2])
    assert not np.allclose(out[1], data[1])


def test_obs_mask_of_the_event_shape_is_a_clear_error():
    data = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match="obs_mask of shape"):
        handlers.seed(_mvn_with_missing_rows, 0)(data, jnp.ones((3, 2), bool))


# --- param with event_dim inside a subsampled plate ---------------------------


def _local_param_model():
    with ppl.plate("data", 100, subsample_size=7) as idx:
        rows = ppl.param("w", jnp.arange(300.0).reshape(100, 3), event_dim=1)
        scalars = ppl.param("b", jnp.arange(100.0), event_dim=0)
        shared = ppl.param("c", jnp.arange(100.0))  # no event_dim: not local
    return idx, rows, scalars, shared


def test_param_with_event_dim_is_subsampled_in_plate():
    tr = handlers.trace(handlers.seed(_local_param_model, 0)).get_trace()
    idx, rows, scalars, shared = handlers.seed(_local_param_model, 0)()
    assert rows.shape == (7, 3) and scalars.shape == (7,)
    np.testing.assert_array_equal(rows, jnp.arange(300.0).reshape(100, 3)[idx])
    np.testing.assert_array_equal(scalars, jnp.arange(100.0)[idx])
    assert shared.shape == (100,)
    # Handlers outside the plate (so SVI) record the full parameter.
    assert tr["w"]["value"].shape == (100, 3)


def test_param_with_event_dim_of_wrong_size_is_a_clear_error():
    def model():
        with ppl.plate("data", 100, subsample_size=7):
            ppl.param("w", jnp.zeros((50, 3)), event_dim=1)

    with pytest.raises(ValueError, match="param 'w'"):
        handlers.seed(model, 0)()

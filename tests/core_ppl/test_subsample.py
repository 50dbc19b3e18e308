"""Tests of plate subsampling: uniform index draws without replacement."""

import itertools

import jax
import numpy as np
import pytest

import core_ppl as ppl
from core_ppl import handlers
from core_ppl.primitives import (
    _distinct_uniform_indices,
    _draws_for_distinct,
    _subsample_indices,
)


@pytest.mark.parametrize(
    ("size", "subsample_size"),
    [(100_000, 64), (10, 4), (7, 7)],
)
def test_indices_are_distinct_and_in_range(size, subsample_size):
    # The three paths: iid draws with rejection, top_k of uniforms, all indices.
    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    draws = np.stack([_subsample_indices(size, subsample_size, k) for k in keys])
    assert draws.shape == (16, subsample_size)
    assert draws.min() >= 0 and draws.max() < size
    for row in draws:
        assert len(np.unique(row)) == subsample_size


def test_large_data_avoids_work_proportional_to_size():
    # COVTYPE-sized data with a 1024 mini-batch uses the O(draws) path.
    assert _draws_for_distinct(581_012, 1024) < 581_012 // 4


def test_distinct_draws_are_uniform_even_when_blocks_are_redrawn():
    # With 6 draws from 12 values, about 30% of blocks have fewer than 5
    # distinct values and are redrawn, so the rejection step is exercised.
    size, k, reps = 12, 5, 20_000
    keys = jax.random.split(jax.random.PRNGKey(1), reps)
    sample = jax.jit(jax.vmap(lambda key: _distinct_uniform_indices(key, size, k, 6)))
    draws = np.asarray(sample(keys))
    assert all(len(set(row)) == k for row in draws)
    # Every (position, value) has probability 1/size; every unordered pair of
    # values is included with probability k (k - 1) / (size (size - 1)).
    # Tolerances are 5 binomial standard errors.
    for p, observed in [
        (1 / size, [(draws[:, j] == v).mean() for j in range(k) for v in range(size)]),
        (
            k * (k - 1) / (size * (size - 1)),
            [
                ((draws == a).any(1) & (draws == b).any(1)).mean()
                for a, b in itertools.combinations(range(size), 2)
            ],
        ),
    ]:
        se = np.sqrt(p * (1 - p) / reps)
        np.testing.assert_array_less(np.abs(np.array(observed) - p), 5 * se)


def test_subsampled_plate_is_reproducible_for_a_seed():
    def model():
        with ppl.plate("data", 100_000, subsample_size=64) as idx:
            return idx

    first = handlers.seed(model, 3)()
    again = handlers.seed(model, 3)()
    other = handlers.seed(model, 4)()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len(np.unique(np.asarray(first))) == 64

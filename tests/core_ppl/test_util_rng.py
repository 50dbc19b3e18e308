"""core_ppl.util.set_rng_seed."""

import random

import numpy as np
import pytest

from core_ppl.util import set_rng_seed


def test_set_rng_seed_makes_python_and_numpy_draws_reproducible():
    state = (random.getstate(), np.random.get_state())
    try:
        set_rng_seed(3)
        first = (random.random(), np.random.normal(size=2))
        set_rng_seed(3)
        second = (random.random(), np.random.normal(size=2))
        assert first[0] == second[0]
        np.testing.assert_array_equal(first[1], second[1])
        set_rng_seed(4)
        assert random.random() != first[0]
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])


def test_set_rng_seed_validates():
    with pytest.raises(TypeError, match="rng_seed"):
        set_rng_seed(1.5)
    with pytest.raises(ValueError, match="rng_seed"):
        set_rng_seed(-1)

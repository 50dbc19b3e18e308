"""Sparse X (scipy.sparse CSR/CSC) in the GLM estimators.

scikit-learn's own sparse checks (check_estimator_sparse_array/_matrix/_tag)
run in test_common and test_linear; here: a sparse fit samples the same
posterior as the dense fit of the same data, predictions do not depend on
the format, and a large sparse X reaches the sampler as a sparse matrix.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from jax.experimental import sparse as jsparse
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import core_ppl as ppl
import core_ppl.distributions as dist
from bayes_sklearn import (
    BaseBayesianEstimator,
    BayesianLinearRegression,
    BayesianLogisticRegression,
    BayesianPoissonRegressor,
    make_estimator,
)

GLM_ESTIMATORS = [
    BayesianLogisticRegression,
    BayesianLinearRegression,
    BayesianPoissonRegressor,
]
_BUDGET = dict(n_warmup=200, n_draws=500, random_state=0)
_COEF = np.array([1.0, -1.0, 0.5, 0.0, 0.4, -0.6])


def _sparse_data(estimator_class, n_rows=300, seed=0):
    """A CSC X (30% nonzero, as one-hot and count columns are) and a y the
    estimator can fit, from a planted linear predictor."""
    rng = np.random.default_rng(seed)
    X = (
        sp.random(n_rows, _COEF.size, density=0.3, format="csc", random_state=seed)
        * 2.0
    )
    linear = X @ _COEF
    if estimator_class is BayesianLogisticRegression:
        y = (rng.random(n_rows) < 1 / (1 + np.exp(-linear))).astype(int)
    elif estimator_class is BayesianPoissonRegressor:
        y = rng.poisson(np.exp(0.5 * linear))
    else:
        y = linear + 0.5 * rng.normal(size=n_rows)
    return X, y


@pytest.mark.parametrize("estimator_class", GLM_ESTIMATORS)
def test_sparse_tag(estimator_class):
    assert estimator_class().__sklearn_tags__().input_tags.sparse


def _line(X, y=None, *, prior_scale=1.0):
    coef = ppl.sample(
        "coef", dist.Normal(0.0, prior_scale).expand((X.shape[1],)).to_event(1)
    )
    with ppl.plate("rows", X.shape[0]):
        ppl.sample("y", dist.Normal(X @ coef, 1.0), obs=y)


def test_a_users_model_keeps_dense_input():
    # A user's model may do anything with X, which a BCOO matrix may not
    # support: sparse X is refused with scikit-learn's error, as by any
    # estimator without the sparse tag.
    estimator = make_estimator(_line)(n_warmup=10, n_draws=10)
    assert not estimator.__sklearn_tags__().input_tags.sparse
    assert not BaseBayesianEstimator().__sklearn_tags__().input_tags.sparse
    with pytest.raises(TypeError, match="[Ss]parse"):
        estimator.fit(sp.csr_array(np.eye(4)), np.arange(4.0))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator_class", GLM_ESTIMATORS)
def test_sparse_and_dense_fits_agree(estimator_class):
    X, y = _sparse_data(estimator_class)
    sparse_fit = estimator_class(**_BUDGET).fit(X, y)
    dense_fit = estimator_class(**_BUDGET).fit(X.toarray(), y)
    # Same data, same seed; the sums of the sparse products round differently
    # from the dense ones, and NUTS trajectories amplify rounding, so the
    # draws agree in distribution: posterior means within 5 Monte Carlo
    # standard errors of their difference (each sd / sqrt(ESS)).
    draws_s = sparse_fit.posterior_samples_["coef"]
    draws_d = dense_fit.posterior_samples_["coef"]
    ess_s = sparse_fit.diagnostics_["min_ess"]
    ess_d = dense_fit.diagnostics_["min_ess"]
    mcse = np.sqrt(draws_s.var(axis=0) / ess_s + draws_d.var(axis=0) / ess_d)
    assert np.all(np.abs(draws_s.mean(axis=0) - draws_d.mean(axis=0)) < 5 * mcse)
    # The relative Monte Carlo error of an sd is about 1 / sqrt(2 ESS).
    rtol = 5 * np.sqrt(1 / (2 * ess_s) + 1 / (2 * ess_d))
    np.testing.assert_allclose(draws_s.std(axis=0), draws_d.std(axis=0), rtol=rtol)
    # Predictions of one fit do not depend on the format of X: prediction
    # densifies a chunk of rows and runs the same program.
    for method in ("predict", "predict_proba", "decision_function"):
        if hasattr(sparse_fit, method):
            np.testing.assert_array_equal(
                getattr(sparse_fit, method)(X),
                getattr(sparse_fit, method)(X.toarray()),
            )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_multiclass_sparse_matches_dense_predictions():
    X, y = _sparse_data(BayesianLogisticRegression, n_rows=120, seed=1)
    y = y + (X[:, 0].toarray()[:, 0] > 1.0)  # a third class
    clf = BayesianLogisticRegression(n_warmup=50, n_draws=100, random_state=0)
    clf.fit(sp.csr_matrix(X), y)
    assert clf.coef_.shape == (3, X.shape[1])
    dense = X.toarray()
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(dense))
    # The per-draw probabilities (NumPy, float64) of sparse and dense X agree,
    # and average to predict_proba (compiled, float32).
    draws = clf.predict_proba_draws(X)
    np.testing.assert_allclose(draws, clf.predict_proba_draws(dense), rtol=1e-10)
    np.testing.assert_allclose(draws.mean(axis=0), clf.predict_proba(X), rtol=1e-5)


def _large_sparse_X(n_rows, n_features, per_row, seed=0):
    """CSR with ``per_row`` random columns in each row, built without ever
    forming a dense matrix (scipy.sparse.random is slow at this size)."""
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.integers(0, n_features, (n_rows, per_row)), axis=1)
    indptr = np.arange(0, n_rows * per_row + 1, per_row)
    data = rng.normal(size=n_rows * per_row)
    X = sp.csr_array((data, indices.ravel(), indptr), shape=(n_rows, n_features))
    X.sum_duplicates()
    return X


def test_large_sparse_X_reaches_the_sampler_sparse(monkeypatch):
    # 100,000 x 1,000 at 1% density: 800 MB as a dense float64 matrix, ~12 MB
    # of nonzeros. The sampler must receive the nonzeros only.
    X = _large_sparse_X(100_000, 1_000, per_row=10)
    y = (X @ np.linspace(-1, 1, 1_000) > 0).astype(int)
    seen = {}
    infer = BaseBayesianEstimator._infer

    def spy(self, rng_key, args, context, **kwargs):
        seen["design"] = args[0]
        return infer(self, rng_key, args, context, **kwargs)

    monkeypatch.setattr(BaseBayesianEstimator, "_infer", spy)
    clf = BayesianLogisticRegression(
        inference="svi", svi_steps=10, n_draws=10, random_state=0
    )
    with pytest.warns(ConvergenceWarning):  # 10 SVI steps are too few to judge
        clf.fit(X, y)
    design = seen["design"]
    assert isinstance(design, jsparse.BCOO)
    # Rows padded to a bucket, the intercept column stored; the stored
    # entries are the nonzeros and their padding (at most a quarter), never
    # the n_rows * n_columns of a dense design.
    assert design.shape[0] >= X.shape[0] and design.shape[1] > X.shape[1]
    assert X.nnz + X.shape[0] <= design.nse <= 1.25 * (X.nnz + X.shape[0]) + 1024
    proba = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    np.testing.assert_array_equal(proba[:50], clf.predict_proba(X[:50].toarray()))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_one_hot_pipeline_stays_sparse():
    # The user's case: categoricals one-hot encoded by a ColumnTransformer,
    # whose sparse output reaches the estimator as is. Same shapes as
    # test_multiclass_sparse_matches_dense_predictions: one compiled sampler.
    rng = np.random.default_rng(2)
    X = np.column_stack(
        [rng.choice(["a", "b", "c"], 120), rng.choice(["u", "v", "w"], 120)]
    )
    y = np.where(X[:, 0] == "a", 0, np.where(X[:, 1] == "u", 1, 2))
    encoder = ColumnTransformer(
        [("onehot", OneHotEncoder(), [0, 1])], sparse_threshold=1.0
    )
    assert sp.issparse(encoder.fit_transform(X))
    model = make_pipeline(
        encoder, BayesianLogisticRegression(n_warmup=50, n_draws=100, random_state=0)
    ).fit(X, y)
    assert model[-1].coef_.shape == (3, 6)
    assert model.score(X, y) > 0.9


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_minibatch_svi_on_sparse_rows_equals_dense():
    """Minibatches index the rows of a sparse design as of a dense one: the
    same batches, so the same fit up to float rounding."""
    X, y = _sparse_data(BayesianLogisticRegression)
    settings = dict(inference="svi", batch_size=64, svi_steps=200, random_state=0)
    sparse_fit = BayesianLogisticRegression(**settings).fit(X, y)
    dense_fit = BayesianLogisticRegression(**settings).fit(X.toarray(), y)
    np.testing.assert_allclose(sparse_fit.coef_, dense_fit.coef_, atol=1e-4)

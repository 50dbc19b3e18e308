"""Bayesian logistic regression on scikit-learn's breast-cancer data.

1. 5-fold cross-validated accuracy and log loss, next to scikit-learn's
   LogisticRegression (the posterior mode of the same model, C=1 being
   prior_scale=1 on standardized features);
2. the posterior summary: mean, sd, 90% credible interval, ESS and R-hat of
   each coefficient, named after the features;
3. a plot of the coefficients' credible intervals (when matplotlib is
   installed), written to examples/output/.

Run with ``python examples/logistic_regression.py`` (or ``make demo``).
"""

import os
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bayes_sklearn import BayesianLogisticRegression
from core_ppl.util import set_small_loop_threshold

OUTPUT = Path(__file__).resolve().parent / "output"
# tests/test_examples.py runs every example with tiny budgets through this
# variable; the figures printed then mean nothing.
QUICK = os.environ.get("BAYES_SKLEARN_EXAMPLE_QUICK") == "1"
BUDGET = dict(n_warmup=20, n_draws=20) if QUICK else {}


def compare(X, y):
    """Cross-validated accuracy and log loss of both models, printed."""
    models = {
        "BayesianLogisticRegression": BayesianLogisticRegression(
            random_state=0, **BUDGET
        ),
        "LogisticRegression (C=1)": LogisticRegression(C=1.0),
    }
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    print(f"{'model':<30}{'accuracy':>10}{'log loss':>10}{'time (s)':>10}")
    for name, model in models.items():
        start = time.perf_counter()
        scores = cross_validate(
            make_pipeline(StandardScaler(), model),
            X,
            y,
            cv=folds,
            scoring=("accuracy", "neg_log_loss"),
        )
        accuracy = scores["test_accuracy"].mean()
        loss = -scores["test_neg_log_loss"].mean()
        elapsed = time.perf_counter() - start
        print(f"{name:<30}{accuracy:>10.4f}{loss:>10.4f}{elapsed:>10.1f}")


def plot_intervals(table, path):
    """Posterior means and 90% credible intervals of the coefficients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = table.sort_values("mean")
    fig, ax = plt.subplots(figsize=(7, 8))
    rows = np.arange(len(table))
    ax.hlines(rows, table["hdi_5.0%"], table["hdi_95.0%"], color="tab:blue")
    ax.plot(table["mean"], rows, "o", color="tab:blue")
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_yticks(rows, [name[5:-1] for name in table.index], fontsize=7)
    ax.set_xlabel("coefficient (per standard deviation of the feature)")
    ax.set_title("Breast cancer: posterior means and 90% credible intervals")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    print(f"breast cancer: {X.shape[0]} samples, {X.shape[1]} features\n")
    compare(X, y)

    # pandas output keeps the feature names, which label the summary.
    pipe = make_pipeline(
        StandardScaler(), BayesianLogisticRegression(random_state=0, **BUDGET)
    )
    pipe.set_output(transform="pandas").fit(X, y)
    clf = pipe[-1]
    table = clf.summary()
    print(f"\ndiagnostics: {clf.diagnostics_}")
    print("\nposterior summary, largest effects first:")
    order = table["mean"].abs().sort_values(ascending=False).index
    print(table.loc[order].head(12).round(3).to_string())

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("\nmatplotlib is not installed: no plot")
        return
    path = OUTPUT / "logistic_coefficients.png"
    plot_intervals(table.drop(index="intercept"), path)
    print(f"\nplot of the coefficient intervals: {path}")


if __name__ == "__main__":
    # Opt-in, before JAX starts: XLA compiles each small loop of NUTS into one
    # CPU function instead of launching its kernels one by one, which makes
    # sampling on data of this size ~1.5x faster (see core_ppl.util).
    set_small_loop_threshold()
    main()

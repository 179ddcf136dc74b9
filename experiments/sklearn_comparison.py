"""NNClassifier beside scikit-learn's MLPClassifier, in 5-fold cross-validation.

Run ``python experiments/sklearn_comparison.py [--folds K] [--max-iter N]``.
On scikit-learn's wine, breast-cancer and digits data, each estimator runs in
a ``Pipeline`` after a ``StandardScaler``, with the same settings (one hidden
layer of 100 ReLU units, Adam at 1e-3, ``alpha=1e-4``, batches of
``min(200, n)``, at most 200 epochs with MLPClassifier's stopping rule), and
``cross_val_score`` reports its accuracy per fold. The table gives the mean
and standard deviation of the accuracy and the mean seconds per fit (one
process, one thread each).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nnscratch.sklearn import NNClassifier

DATASETS = {
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}

ESTIMATORS = {
    "MLPClassifier": MLPClassifier,
    "NNClassifier": NNClassifier,
}


def compare(folds: int = 5, max_iter: int = 200, seed: int = 0) -> list[dict]:
    """One row per data set and estimator: accuracy mean/std, seconds per fit."""
    rows = []
    for data_name, load in DATASETS.items():
        X, y = load(return_X_y=True)
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for name, kind in ESTIMATORS.items():
            pipeline = make_pipeline(
                StandardScaler(), kind(max_iter=max_iter, random_state=seed)
            )
            start = time.perf_counter()
            with warnings.catch_warnings():
                # Both warn when a fold stops at max_iter; the table shows it.
                warnings.simplefilter("ignore", ConvergenceWarning)
                scores = cross_validate(pipeline, X, y, cv=splits, n_jobs=1)
            elapsed = time.perf_counter() - start
            rows.append(
                {
                    "data": f"{data_name} ({len(X)}x{X.shape[1]})",
                    "estimator": name,
                    "accuracy": float(np.mean(scores["test_score"])),
                    "std": float(np.std(scores["test_score"])),
                    "fit_seconds": float(np.mean(scores["fit_time"])),
                    "total_seconds": elapsed,
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| data | estimator | accuracy (mean ± std) | seconds per fit |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['data']} | {row['estimator']} | "
            f"{100 * row['accuracy']:.2f} ± {100 * row['std']:.2f} | "
            f"{row['fit_seconds']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # the same single BLAS thread for both
        rows = compare(args.folds, args.max_iter, args.seed)
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()

"""NNClassifier / NNRegressor against scikit-learn's own checks and tools."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnscratch.sklearn import NNClassifier, NNRegressor

# Few epochs at a higher rate keep the ~110 checks at a few seconds in all.
FAST = {"max_iter": 40, "learning_rate_init": 0.01}
IRIS = {**FAST, "batch_size": 16}  # 150 rows: 10 steps per epoch

EXPECTED_FAILED_CHECKS: dict[str, str] = {}
"""Checks that cannot apply to these estimators, with the reason: none."""

pytestmark = pytest.mark.filterwarnings(
    # A run capped at max_iter warns, as MLPClassifier does.
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


@parametrize_with_checks(
    [NNClassifier(**FAST), NNRegressor(**FAST)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_scikit_learn_check_estimator(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_in_a_pipeline_with_standard_scaler(iris):
    X, y = iris
    pipeline = make_pipeline(StandardScaler(), NNClassifier(random_state=0, **IRIS))
    assert pipeline.fit(X, y).score(X, y) > 0.95
    probabilities = pipeline.predict_proba(X)
    assert probabilities.shape == (150, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert set(pipeline.predict(X)) == {0, 1, 2}


def test_cross_val_score(iris):
    X, y = iris
    pipeline = make_pipeline(StandardScaler(), NNClassifier(random_state=0, **IRIS))
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.9


def test_grid_search_cv(iris):
    X, y = iris
    search = GridSearchCV(
        make_pipeline(StandardScaler(), NNClassifier(random_state=0, **IRIS)),
        {
            "nnclassifier__hidden_layer_sizes": [(4,), (16, 8)],
            "nnclassifier__alpha": [1e-4, 1e-2],
        },
        cv=3,
    )
    search.fit(X, y)
    assert set(search.best_params_) == {
        "nnclassifier__hidden_layer_sizes",
        "nnclassifier__alpha",
    }
    assert search.best_score_ > 0.9
    assert search.best_estimator_[-1].hidden_layer_sizes in [(4,), (16, 8)]


@pytest.mark.parametrize("kind", [NNClassifier, NNRegressor])
def test_clone_round_trips_the_parameters(kind):
    estimator = kind(
        hidden_layer_sizes=(7, 3),
        activation="tanh",
        alpha=0.5,
        early_stopping=True,
        random_state=3,
        solver="sgd",
    )
    copy = clone(estimator)
    assert copy is not estimator
    assert copy.get_params() == estimator.get_params()
    copy.set_params(alpha=0.1)
    assert (copy.alpha, estimator.alpha) == (0.1, 0.5)
    assert not hasattr(copy, "model_")


def test_a_seed_repeats_a_fit_and_pickling_keeps_predictions(iris):
    X, y = iris
    first = NNClassifier(random_state=1, **FAST).fit(X, y)
    second = NNClassifier(random_state=1, **FAST).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(restored.predict_proba(X), first.predict_proba(X))


def test_mlp_like_attributes(iris):
    X, y = iris
    clf = NNClassifier(hidden_layer_sizes=(5, 4), random_state=0, **FAST).fit(X, y)
    assert [W.shape for W in clf.coefs_] == [(4, 5), (5, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(5,), (4,), (3,)]
    assert clf.n_iter_ == len(clf.loss_curve_) <= FAST["max_iter"]
    assert clf.loss_ == clf.loss_curve_[-1]
    assert clf.model_.loss_name == "cce"
    assert clf.model_.dtype == np.float64


def test_binary_labels_use_one_sigmoid_output():
    X = np.random.default_rng(0).normal(size=(60, 3))
    y = np.where(X[:, 0] > 0, "yes", "no")
    clf = NNClassifier(random_state=0, **FAST).fit(X, y)
    assert clf.model_.loss_name == "bce"
    assert list(clf.classes_) == ["no", "yes"]
    assert clf.predict_proba(X).shape == (60, 2)
    assert clf.score(X, y) > 0.9


def test_a_regressor_with_several_targets():
    X, y = make_regression(n_samples=120, n_features=4, n_targets=2, random_state=0)
    y = y / y.std(axis=0)
    reg = NNRegressor(hidden_layer_sizes=(32,), random_state=0, **FAST).fit(X, y)
    assert reg.predict(X).shape == (120, 2)
    assert reg.score(X, y) > 0.8


def test_training_stops_when_the_loss_stops_improving(iris):
    X, y = iris
    clf = NNClassifier(max_iter=500, tol=10.0, n_iter_no_change=3, random_state=0)
    # No epoch after the first improves by 10; the 4th such (> 3) stops it.
    clf.fit(X, y)
    assert clf.n_iter_ == 5


def test_early_stopping_holds_out_a_validation_split(iris):
    X, y = iris
    clf = NNClassifier(early_stopping=True, n_iter_no_change=2, random_state=0, **FAST)
    clf.fit(X, y)
    assert clf.best_loss_ is not None
    assert "val_loss" in clf.model_.history


def test_max_iter_reached_is_a_convergence_warning(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        NNClassifier(max_iter=2, random_state=0).fit(X, y)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"activation": "softmax"}, "activation"),
        ({"solver": "lbfgs"}, "solver"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_iter": 0}, "max_iter"),
        ({"alpha": -1.0}, "alpha"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_a_bad_parameter_is_a_value_error_at_fit(params, message, iris):
    X, y = iris
    clf = NNClassifier(**params)  # accepted here, as scikit-learn requires
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)


def test_sklearn_activation_names_are_accepted(iris):
    X, y = iris
    for name in ("identity", "logistic", "gelu"):
        NNClassifier(activation=name, random_state=0, max_iter=2).fit(X, y)


def test_without_scikit_learn_an_import_error_names_the_extra(monkeypatch):
    for name in list(sys.modules):
        if name == "nnscratch.sklearn" or name.startswith("nnscratch.sklearn."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"pip install 'nnscratch\[sklearn\]'"):
        import nnscratch.sklearn  # noqa: F401

"""The PyOD detector against the checks PyOD's own test suite applies to its detectors
(attributes after fit, shapes and ranges of scores, labels, probabilities and confidence,
fit_predict, fit_predict_score, cloning)."""

import numpy as np
import pytest

pyod = pytest.importorskip("pyod")
from pyod.utils.data import generate_data  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from hourglass.pyod import AutoEncoder  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    x_train, x_test, y_train, y_test = generate_data(n_train=200, n_test=100, n_features=10, contamination=0.1, random_state=42)
    clf = AutoEncoder(contamination=0.1, epochs=40, random_state=0).fit(x_train)
    return clf, x_train, x_test, y_train, y_test


def test_parameters_and_attributes(fitted):
    clf, x_train, *_ = fitted
    for attr in ("decision_scores_", "labels_", "threshold_", "_mu", "_sigma"):
        assert getattr(clf, attr, None) is not None, attr
    assert clf.decision_scores_.shape == (x_train.shape[0],)
    assert clf.labels_.shape == (x_train.shape[0],)
    assert set(np.unique(clf.labels_)) <= {0, 1}
    assert abs(clf.labels_.mean() - 0.1) < 0.02


def test_scores_rank_the_outliers(fitted):
    clf, x_train, x_test, y_train, y_test = fitted
    assert roc_auc_score(y_train, clf.decision_scores_) > 0.8
    scores = clf.decision_function(x_test)
    assert scores.shape == (x_test.shape[0],)
    assert roc_auc_score(y_test, scores) > 0.8


def test_labels_probabilities_and_confidence(fitted):
    clf, _, x_test, *_ = fitted
    labels = clf.predict(x_test)
    assert labels.shape == (x_test.shape[0],) and set(np.unique(labels)) <= {0, 1}
    for method in ("linear", "unify"):
        p = clf.predict_proba(x_test, method=method)
        assert p.shape == (x_test.shape[0], 2)
        assert p.min() >= 0 and p.max() <= 1
    with pytest.raises(ValueError):
        clf.predict_proba(x_test, method="something")
    labels, confidence = clf.predict(x_test, return_confidence=True)
    assert confidence.shape == labels.shape and confidence.min() >= 0 and confidence.max() <= 1


def test_fit_predict_and_fit_predict_score():
    x_train, _, y_train, _ = generate_data(n_train=200, n_test=10, n_features=6, contamination=0.1, random_state=1)
    clf = AutoEncoder(epochs=20, random_state=0)
    labels = clf.fit_predict(x_train)
    assert labels.shape == y_train.shape
    for scoring in ("roc_auc_score", "prc_n_score"):
        clf.fit_predict_score(x_train, y_train, scoring=scoring)
    with pytest.raises(NotImplementedError):
        clf.fit_predict_score(x_train, y_train, scoring="something")


def test_clone_and_contamination_checks():
    clf = AutoEncoder(epochs=3, contamination=0.2)
    assert clone(clf).get_params() == clf.get_params()
    with pytest.raises(ValueError):
        AutoEncoder(contamination=0.8)

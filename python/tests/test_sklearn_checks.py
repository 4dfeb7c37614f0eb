"""scikit-learn's own estimator checks, on every scikit-learn estimator of the package."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import hourglass

# Small, fast settings: the checks fit each estimator many times on tiny data.
ESTIMATORS = [
    hourglass.AutoEncoder(epochs=5, random_state=0),
    hourglass.OutlierDetector(epochs=5, random_state=0),
    hourglass.PCA(n_components=1),
    hourglass.Classifier(hidden=(16,), pretrain_epochs=2, epochs=40, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)

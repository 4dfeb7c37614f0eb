"""scikit-learn's own estimator checks, on every scikit-learn estimator of the package."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import hourglass

# Small, fast settings: the checks fit each estimator many times on tiny data.
ESTIMATORS = [
    hourglass.AutoEncoder(epochs=5, random_state=0),
    hourglass.OutlierDetector(epochs=5, random_state=0),
    # Windows of 2 steps: the checks' tables are short series.
    hourglass.SeriesOutlierDetector(window=2, epochs=5, random_state=0),
    hourglass.PCA(n_components=1),
    hourglass.Classifier(hidden=(16,), pretrain_epochs=2, epochs=40, random_state=0),
]


# A series detector scores each step from the windows around it, by design: reordering the
# rows or scoring a subset changes the windows, and a 1-D array is one channel, not an error.
SERIES_BY_DESIGN = {
    "check_methods_sample_order_invariance": "a step's score depends on its neighbouring steps",
    "check_methods_subset_invariance": "a step's score depends on its neighbouring steps",
    "check_fit1d": "a 1-D array is a series of one channel",
    "check_fit2d_predict1d": "a 1-D array is a series of one channel",
}


def expected_failures(estimator):
    return SERIES_BY_DESIGN if isinstance(estimator, hourglass.SeriesOutlierDetector) else {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)

"""``SeriesOutlierDetector``: anomalies in a time series, scored step by step."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin

from ._core import _AutoencoderBase
from ._params import AUTOENCODER, make_init, positive_int


class SeriesOutlierDetector(_AutoencoderBase, OutlierMixin, BaseEstimator):
    """Anomalies in a time series by the reconstruction error of its windows.

    ``X`` is one series: an array or DataFrame of shape ``(n_steps, n_channels)`` (a 1-D array
    is one channel), rows in time order. ``fit(X)`` cuts it into windows of ``window`` steps,
    ``stride`` apart, and trains an autoencoder on them (every ``AutoEncoder`` parameter; the
    default architecture is sized by the window's ``window * n_channels`` values). Scores come
    **per step**: every window of the series is scored and each step gets the mean score of
    the windows that contain it, so ``anomaly_scores(X)`` has one value per row of ``X``
    (higher = more anomalous), as the command line's ``score`` of a model trained with
    ``--window``; ``score_samples`` is its negative (**higher = more normal**), and
    ``predict`` flags the steps above the threshold set at ``fit`` from ``contamination``
    (stored in the model file). ``reconstruct`` and ``explain`` give one row per window
    (stride 1), each window's values channel-major.
    """

    __init__ = make_init(
        AUTOENCODER,
        {
            "window": (64, "steps per window"),
            "stride": (1, "steps between the starts of consecutive training windows"),
            "contamination": (0.1, "expected fraction of anomalous steps, in (0, 0.5]"),
        },
    )

    @staticmethod
    def _series(X):
        """A 1-D series (array, list or pandas Series) as one channel; 2-D data as it is."""
        # By the ``ndim`` it has (arrays, pandas), or of a list: array-likes that only convert
        # (scikit-learn's checks pass one) go to validation as they are.
        if getattr(X, "ndim", None) == 1 or (isinstance(X, (list, tuple)) and np.ndim(X) == 1):
            return np.asarray(X).reshape(-1, 1)
        return X

    def fit(self, X, y=None):
        """Trains on the windows of the series ``X`` and sets the threshold from its step
        scores (``y`` is ignored)."""
        window = positive_int("window", self.window, 2)
        stride = positive_int("stride", self.stride, 1)
        c = self.contamination
        if not isinstance(c, numbers.Real) or isinstance(c, bool) or not (0 < c <= 0.5):
            raise ValueError(f"contamination must be in (0, 0.5], got {c!r}")
        x = self._series(X)
        n = len(x) if hasattr(x, "__len__") else len(np.asarray(x))
        if n < window:
            raise ValueError(
                f"the series has {n} sample{'' if n == 1 else 's'} (time steps); a window needs at least {window}"
            )
        self._fit(x, windows=(window, stride))
        threshold = self.model_.calibrate(self._input(x), "contamination", float(c), threads=self._threads())
        self.offset_ = -threshold
        return self

    def anomaly_scores(self, X, metric="mse"):
        """Each step's score: the mean reconstruction error of the windows containing it, in
        the model's scaled units (**higher = more anomalous**); one per row of ``X``."""
        x = self._input(self._series(X))
        return self.model_.step_scores(x, metric=metric, threads=self._threads())

    def score_samples(self, X):
        """Negative step scores: **higher = more normal** (scikit-learn's convention)."""
        return -self.anomaly_scores(X)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for anomalous steps."""
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for normal steps, -1 for anomalous ones."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

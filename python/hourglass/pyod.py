"""``hourglass.pyod.AutoEncoder``: a PyOD detector (``pyod.models.base.BaseDetector``), so that
hourglass drops into PyOD's model lists and benchmarks unchanged. Needs ``pyod``."""

from __future__ import annotations

from pyod.models.base import BaseDetector

from ._core import _AutoencoderBase
from ._params import AUTOENCODER, DETECTOR, make_init

_init = make_init(AUTOENCODER, DETECTOR)


class AutoEncoder(_AutoencoderBase, BaseDetector):
    """An autoencoder outlier detector with PyOD's interface: after ``fit(X)``,
    ``decision_scores_`` (the training rows' scores), ``threshold_`` and ``labels_`` (0 inlier,
    1 outlier); ``decision_function(X)`` is the reconstruction error in the model's scaled
    units, **higher = more anomalous** (PyOD's convention); ``predict`` and
    ``predict_proba`` come from PyOD. Takes every ``hourglass.AutoEncoder`` parameter.
    """

    def __init__(self, **kwargs):
        _init(self, **kwargs)
        # PyOD checks contamination in its constructor.
        BaseDetector.__init__(self, contamination=self.contamination)

    __init__.__signature__ = __import__("inspect").signature(_init)
    __init__.__doc__ = _init.__doc__

    def fit(self, X, y=None):
        """Trains on ``X`` and sets ``decision_scores_``, ``threshold_`` and ``labels_``."""
        self._set_n_classes(y)
        self._fit(X)
        x = self._input(X)
        self._fit_neighbours(X, x)
        self.decision_scores_ = self.model_.scores(x, threads=self._threads())
        self._process_decision_scores()
        return self

    def decision_function(self, X):
        """Reconstruction error of each row: **higher = more anomalous** (PyOD's convention)."""
        return self.anomaly_scores(X)

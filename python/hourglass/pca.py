"""``hourglass.PCA``: exact PCA written as a linear autoencoder, the baseline every report
compares against; its model file works with every command of the command line."""

from __future__ import annotations

import numbers

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _native
from ._core import _AutoencoderBase
from ._params import as_float_array, make_init, seed_of, threads_of

_PARAMS = {
    "n_components": (2, "components kept (the code width)"),
    "scale": ("none", "feature scaling before PCA (which always centres): none, minmax or standard"),
    "itq": (None, "rounds of iterative quantization, rotating the code for binary hashing"),
    "random_state": (None, "seed of ITQ's initial rotation"),
    "n_jobs": (None, "threads (None or -1: all cores)"),
}


class PCA(_AutoencoderBase, TransformerMixin, BaseEstimator):
    """PCA as a linear autoencoder (f64 covariance, exact eigendecomposition). ``transform``
    projects, ``inverse_transform`` maps back, ``score_samples`` is the negative
    reconstruction error (**higher = more normal**). Fitted: ``model_``,
    ``explained_variance_``, ``explained_variance_ratio_``."""

    __init__ = make_init(_PARAMS)
    verbose = 0

    def fit(self, X, y=None):
        """Fits the components on ``X`` (``y`` is ignored)."""
        x = as_float_array(validate_data(self, X, dtype=[float], ensure_all_finite=True))
        if x.shape[0] < 2:
            raise ValueError(f"PCA needs at least 2 samples, got {x.shape[0]} sample")
        if not isinstance(self.n_components, numbers.Integral) or not 1 <= self.n_components <= x.shape[1]:
            raise ValueError(f"n_components must be in 1..={x.shape[1]}, got {self.n_components!r}")
        itq = None if self.itq is None else (int(self.itq), seed_of(self.random_state))
        model = _native.Model.pca(x, int(self.n_components), scaling=self.scale, itq=itq, threads=threads_of(self.n_jobs))
        info = self._set_model(model)
        ev = info["provenance"]["pca"]["eigenvalues"]
        self.explained_variance_ = ev[: self.n_components]
        self.explained_variance_ratio_ = [v / max(sum(ev), 1e-300) for v in self.explained_variance_]
        self.image_shape_ = None
        return self

    def transform(self, X):
        """The projections of ``X`` (float32)."""
        x = self._input(X)
        return self.model_.encode(x, threads=self._threads())

    def inverse_transform(self, X):
        """Rows in the data's units from projections."""
        check_is_fitted(self, "model_")
        return self.model_.decode(as_float_array(X), threads=self._threads())

    def score_samples(self, X):
        """Negative reconstruction error: **higher = more normal**."""
        return -self.anomaly_scores(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

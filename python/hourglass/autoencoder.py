"""scikit-learn estimators: ``AutoEncoder`` (a transformer) and ``OutlierDetector``."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, TransformerMixin

from ._core import _AutoencoderBase
from ._params import AUTOENCODER, DETECTOR, as_float_array, make_init, seed_of


class AutoEncoder(_AutoencoderBase, TransformerMixin, BaseEstimator):
    """An autoencoder ``x -> code -> x̂`` as a scikit-learn transformer.

    ``fit(X)`` trains it (any architecture and regularizer the command line has; 2-D arrays,
    DataFrames — categorical and missing values get the command line's table encoding — or
    images (N, H, W[, C]) with ``arch``); ``transform`` gives the codes (``layer=`` any encoder
    layer), ``inverse_transform`` decodes, ``reconstruct`` reconstructs, ``score_samples`` is
    the negative reconstruction error (**higher = more normal**, scikit-learn's convention;
    ``anomaly_scores`` has PyOD's, higher = more anomalous). Training is bit-identical for any
    ``n_jobs``; the GIL is released while it runs and Ctrl-C stops it cleanly. ``save`` writes
    the command line's model file; pickling keeps its bytes. ``inference_precision="int8"``
    (settable after ``fit``) runs the dense layers and the convolutions whose filters read at
    least 32 inputs in int8, as the command line's ``--precision int8``.

    Fitted attributes: ``model_``, ``n_features_in_``, ``feature_names_in_`` (named
    columns), ``history_`` (per-epoch losses and code sparsity), ``n_iter_``,
    ``best_epoch_``, ``code_dim_``, ``table_inputs_``, ``image_shape_``.
    """

    __init__ = make_init(AUTOENCODER)

    def fit(self, X, y=None):
        """Trains on the rows of ``X`` (``y`` is ignored)."""
        return self._fit(X)

    def transform(self, X, layer=None):
        """The codes of ``X`` (or the activations of encoder layer ``layer``), float32."""
        x = self._input(X)
        return self.model_.encode(x, layer=layer, threads=self._threads())

    def inverse_transform(self, X):
        """Decodes codes back to rows in the data's units."""
        self._in_precision()
        codes = as_float_array(X)
        if codes.ndim != 2 or codes.shape[1] != self.code_dim_:
            raise ValueError(f"codes must have {self.code_dim_} columns, got shape {codes.shape}")
        return self.model_.decode(codes, threads=self._threads())

    def score_samples(self, X):
        """Negative reconstruction error (mean squared, in the model's scaled units):
        **higher = more normal** (scikit-learn's convention)."""
        return -self.anomaly_scores(X)

    def score(self, X, y=None):
        """The mean of ``score_samples(X)``: the negative mean reconstruction error, higher is
        better (what ``GridSearchCV`` maximizes without a ``scoring``)."""
        return float(np.mean(self.score_samples(X)))

    def sample(self, n, random_state=None):
        """``n`` rows decoded from codes drawn from the prior N(0, I) (a model fitted with
        ``vae``), in the data's units."""
        self._in_precision()
        return self.model_.sample(int(n), seed_of(random_state), threads=self._threads())

    def log_likelihood(self, X, samples=100, random_state=0):
        """Each row's importance-weighted estimate of ``log p(x)`` in nats (a model fitted with
        ``vae``; ``samples`` code draws per row: more, a tighter bound), in the model's scaled
        units: Bernoulli decoder for loss='bce', Gaussian of variance 1/2 for 'mse'."""
        return self.variational_bounds(X, samples, random_state)["log_likelihood"]

    def variational_bounds(self, X, samples=100, random_state=0):
        """A pandas DataFrame of each row's ``elbo``, ``log_likelihood`` (importance-weighted),
        ``kl`` and ``reconstruction`` (``-E_q log p(x|z)``), in nats (a model fitted with ``vae``)."""
        import pandas as pd

        x = self._input(X)
        cols = self.model_.vae_bounds(x, int(samples), seed_of(random_state), threads=self._threads())
        return pd.DataFrame(dict(zip(("elbo", "log_likelihood", "kl", "reconstruction"), cols)))

    def calibrate(self, X, *, contamination=None, quantile=None, fpr=None):
        """Stores an anomaly threshold in the model from rows ``X`` that are (mostly) normal,
        as the command line's ``calibrate`` does (then its ``score`` flags rows): exactly one
        of ``contamination`` (the top fraction), ``quantile`` or ``fpr``. Returns the
        threshold on ``anomaly_scores`` (higher = more anomalous)."""
        rules = {k: v for k, v in {"contamination": contamination, "quantile": quantile, "fpr": fpr}.items() if v is not None}
        if len(rules) != 1:
            raise ValueError("give exactly one of contamination, quantile or fpr")
        (rule, value), = rules.items()
        x = self._input(X)
        return self.model_.calibrate(x, rule, float(value), threads=self._threads())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        # The engine computes in float32: codes and reconstructions are float32 whatever
        # the input's dtype.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class OutlierDetector(_AutoencoderBase, OutlierMixin, BaseEstimator):
    """Outlier detection by an autoencoder, as a scikit-learn outlier detector.

    ``fit(X)`` trains an autoencoder (every ``AutoEncoder`` parameter), keeps the code
    neighbourhood of the training rows (``neighbours``, default 10) and sets ``offset_`` so
    that a ``contamination`` fraction of the training rows are outliers (the threshold and the
    neighbourhood are stored in the model file, so the command line's ``score`` gives the same
    scores and flags the same rows). A row's anomaly score is its reconstruction error plus how
    isolated its code is among the training codes, each in units of its spread over the
    training rows: the code's distance to its ``neighbours``-th nearest training code (mse+knn)
    where the code is at least half the input's width (tables), its local outlier factor
    (mse+lof) where it compresses more (images) (``neighbours=None``: the error alone).
    ``score_samples`` is the negative anomaly score and ``decision_function`` is
    ``score_samples - offset_``: **higher = more normal**; ``predict`` gives +1 (inlier) or -1
    (outlier). ``anomaly_scores`` has PyOD's convention (higher = more anomalous), and
    ``explain`` names the features behind each score.
    """

    __init__ = make_init(AUTOENCODER, DETECTOR)

    def fit(self, X, y=None):
        """Trains on ``X`` and sets the threshold from its scores (``y`` is ignored)."""
        c = self.contamination
        if not isinstance(c, numbers.Real) or isinstance(c, bool) or not (0 < c <= 0.5):
            raise ValueError(f"contamination must be in (0, 0.5], got {c!r}")
        self._fit(X)
        x = self._input(X)
        self._fit_neighbours(X, x)
        threshold = self.model_.calibrate(x, "contamination", float(c), threads=self._threads())
        self.offset_ = -threshold
        return self

    def score_samples(self, X):
        """Negative reconstruction error: **higher = more normal** (scikit-learn's convention)."""
        return -self.anomaly_scores(X)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers, **higher = more normal**."""
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for inliers, -1 for outliers."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

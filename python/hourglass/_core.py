"""What the autoencoder estimators share: training through the native module, reading inputs
the way the model was trained, model files and pickling through the file's bytes.

Sign conventions, stated wherever a score is returned: scikit-learn's ``score_samples`` and
``decision_function`` are higher for more *normal* rows; PyOD's ``decision_function`` and
``decision_scores_``, the command line's ``score`` and the native ``scores`` are higher for
more *anomalous* rows. Scores are the reconstruction error in the model's scaled units.
"""

from __future__ import annotations

import json
import numbers
import warnings

import numpy as np
from sklearn.utils.validation import _num_samples, check_is_fitted

from . import _native
from ._data import prepare
from ._params import DETECTOR, design, inference_precision_of, resolve_scale, seed_of, table_settings, threads_of, training
from ._progress import Progress


def _image_shape(est, prep):
    if prep.image_shape is not None:
        return tuple(prep.image_shape)
    shape = getattr(est, "image_shape", None)
    if shape is None:
        return None
    shape = tuple(int(v) for v in shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or np.prod(shape) != prep.n_features:
        raise ValueError(f"image_shape {shape} does not fit rows of {prep.n_features} values")
    return shape


def _names(est, prep):
    """A named frame's column names for an array model's file (a table keeps its own)."""
    names = getattr(est, "feature_names_in_", None)
    if names is None or not isinstance(prep.data, np.ndarray) or len(names) != prep.n_features:
        return None
    return [str(n) for n in names]


class _PicklesModel:
    """Pickling through the model file's bytes: ``model_``, a native model of the class
    ``_native_class``, travels as the bytes of its file."""

    _native_class = _native.Model

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(self.__dict__)
        state = dict(state)
        if "model_" in state:
            state["model_"] = bytes(state["model_"].to_bytes())
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("model_"), (bytes, bytearray)):
            state["model_"] = self._native_class.from_bytes(bytes(state["model_"]))
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:
            self.__dict__.update(state)


class _AutoencoderBase(_PicklesModel):
    """Fitting and reading through a native ``Model``; attributes set by ``_fit``:
    ``model_``, ``n_features_in_`` (``feature_names_in_`` for named columns),
    ``history_`` (one dict per epoch), ``n_iter_`` (epochs run), ``best_epoch_``,
    ``code_dim_``, ``table_inputs_`` (the encoded table's columns, or None)."""

    def _fit(self, X, scale=None, windows=None):
        """Trains on ``X``; ``windows`` ``(length, stride)`` cuts it, a series of steps, into
        windows that are the training rows."""
        inference_precision_of(self._inference_precision())
        prep = prepare(self, X, reset=True)
        seed = seed_of(self.random_state)
        image_shape = _image_shape(self, prep)
        n_features, n_samples = prep.n_features, prep.n_samples
        if windows is not None:
            length, stride = windows
            n_features *= length
            n_samples = max(1, (n_samples - length) // stride + 1)
        progress = Progress(self.verbose)
        try:
            model, report = _native.Model.fit(
                prep.data,
                design(self, n_features),
                training(self, n_samples, seed, scale=scale or resolve_scale(self.scale, prep.data, windows is not None)),
                windows=windows,
                image_shape=image_shape,
                threads=threads_of(self.n_jobs),
                progress=progress,
                batches=progress.wants_batches,
                feature_names=_names(self, prep),
                **table_settings(self),
            )
        finally:
            progress.close()
        report = json.loads(report)
        self._set_model(model)
        self.history_ = progress.history
        self.n_iter_ = len(progress.history)
        self.best_epoch_ = report["best_epoch"]
        if report.get("interrupted"):
            warnings.warn(
                f"training interrupted after {self.n_iter_} complete epochs; the model keeps "
                f"the weights of epoch {self.best_epoch_}",
                RuntimeWarning,
                stacklevel=3,
            )
        return self

    def _fit_neighbours(self, X, x):
        """Keeps the code neighbourhood of the training rows ``X`` (``x``: them prepared by
        ``_input``), ``neighbours`` of them per row (fewer on tiny data), which makes mse+knn or
        mse+lof the model's score."""
        k = self.neighbours
        if k is None:
            return
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"neighbours must be a positive integer or None, got {k!r}")
        n = _num_samples(X)
        limit = min(n, _native.detector_defaults(n, 1)["neighbour_rows"]) - 1
        if k > limit and k != DETECTOR["neighbours"][0]:
            warnings.warn(f"neighbours={k} needs more training rows; using {limit} (as scikit-learn's LOF does)",
                          UserWarning, stacklevel=3)
        if limit >= 1:
            self.model_.fit_neighbours(x, int(min(k, limit)), threads=self._threads())

    def _set_model(self, model):
        self.model_ = model
        info = json.loads(model.info())
        self.code_dim_ = info["code_dim"]
        self.table_inputs_ = info["table_inputs"]
        return info

    def _input(self, X):
        self._in_precision()
        return prepare(self, X, reset=False).data

    def _in_precision(self):
        """Checks the estimator is fitted and puts its model in ``inference_precision`` (a
        parameter that may change after ``fit``; quantizing happens once per change)."""
        check_is_fitted(self, "model_")
        precision = inference_precision_of(self._inference_precision())
        if self.model_.precision() != precision:
            self.model_.set_precision(precision)

    def _inference_precision(self):
        # Estimators without the parameter (PCA) infer in f32.
        return getattr(self, "inference_precision", "f32")

    def _threads(self):
        return threads_of(self.n_jobs)

    def reconstruct(self, X):
        """The reconstruction of each row, in the data's units (flat rows, channel-major for
        images)."""
        x = self._input(X)
        return self.model_.reconstruct(x, threads=self._threads())

    def anomaly_scores(self, X, metric=None):
        """Each row's anomaly score: **higher = more anomalous** (PyOD's and the command line's
        convention). ``metric``: mse or mae (the reconstruction error in the model's scaled
        units), nll for a model fitted with ``vae`` (the row's negative log-likelihood in nats,
        importance-weighted over 32 code draws seeded by the row's own values), or mse+lof or
        mse+knn for a model with a code neighbourhood (the detectors' default: the error plus
        the local outlier factor of the row's code among the training rows' codes, or its
        distance to the k-th nearest of them, each in units of its training spread). None: the
        calibrated metric, else the neighbourhood's own (mse+knn where the code is at least half
        the input's width, else mse+lof), else mse."""
        x = self._input(X)
        return self.model_.scores(x, metric=metric, threads=self._threads())

    def explain(self, X, metric=None):
        """Why each row scores as it does, as a pandas DataFrame: ``score`` (higher = more
        anomalous, as ``anomaly_scores``), ``top_feature``, and for every feature its expected
        value (the reconstruction, in the data's units) and its share of the row's
        reconstruction error."""
        import pandas as pd

        x = self._input(X)
        scores, expected, share = self.model_.explain(x, metric=metric, threads=self._threads())
        names = self._feature_names()
        frame = pd.DataFrame({"score": scores, "top_feature": np.asarray(names, dtype=object)[np.argmax(share, axis=1)]})
        cols = {f"{n}.expected": expected[:, j] for j, n in enumerate(names)}
        cols.update({f"{n}.share": share[:, j] for j, n in enumerate(names)})
        return pd.concat([frame, pd.DataFrame(cols)], axis=1)

    def _feature_names(self):
        return json.loads(self.model_.info())["feature_names"]

    def save(self, path):
        """Writes the model file (the command line's format; written atomically)."""
        check_is_fitted(self, "model_")
        self.model_.save(str(path))

    def to_onnx(self, path, outputs=None):
        """Writes the model as ONNX (opset 17), scaler and table encoding inside the graph, as
        ``hourglass export`` does. ``outputs``: names among code, reconstruction, score,
        anomaly, per_feature (default: code, reconstruction, score, and anomaly once
        calibrated). A hashed column's input is its bucket index (a warning says so)."""
        check_is_fitted(self, "model_")
        for note in self.model_.to_onnx(str(path), None if outputs is None else list(outputs)):
            warnings.warn(note, stacklevel=2)

    def report(self, path, X=None, y=None, image_shape=None):
        """Writes the HTML report (``hourglass report``): the model card and training curves;
        with ``X``, its error distribution, code statistics, and for tables the features behind
        the error (for images, give ``image_shape`` (height, width[, channels])); ``y``: truthy
        where a row of ``X`` is a known anomaly (ROC and PR curves)."""
        check_is_fitted(self, "model_")
        x = None if X is None else self._input(X)
        anomaly = None if y is None else [bool(v) for v in np.asarray(y).ravel()]
        shape = None if image_shape is None else tuple(int(v) for v in image_shape)
        if shape is not None and len(shape) == 2:
            shape = (*shape, 1)
        self.model_.report(str(path), x, anomaly, shape, threads=self._threads())

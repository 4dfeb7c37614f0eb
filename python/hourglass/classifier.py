"""``hourglass.Classifier``: an encoder pretrained as a (denoising) autoencoder on the rows,
then fine-tuned with a softmax head — a scikit-learn classifier."""

from __future__ import annotations

import json

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _native
from ._core import _PicklesModel
from ._params import as_float_array, design, make_init, resolve_scale, seed_of, threads_of, training
from ._progress import Progress

_PARAMS = {
    "hidden": ((256, 128), "encoder widths, input side first; the last is the code the head reads"),
    "activation": ("relu", "activation of the encoder's layers"),
    "pretrain_epochs": (10, "epochs of unsupervised (denoising) autoencoder pretraining; 0: none"),
    "pretrain_noise": ("mask:0.25", "corruption while pretraining (None: a plain autoencoder)"),
    "epochs": (30, "epochs of supervised fine-tuning"),
    "freeze_epochs": (0, "fine-tuning epochs that train only the head"),
    "dropout": (0.0, "dropout on the encoder's layers while fine-tuning"),
    "batch_size": (64, "rows per mini-batch"),
    "learning_rate": (1e-3, "learning rate (Adam)"),
    "weight_decay": (0.0, "decoupled weight decay"),
    "scale": ("standard", "feature scaling fitted on the training rows: none, minmax, standard or auto (as "
                          "AutoEncoder's)"),
    "random_state": (None, "seed (int), a RandomState, or None"),
    "n_jobs": (None, "threads (None or -1: all cores); results do not depend on it"),
    "verbose": (0, "1: progress bars, 2: a line per epoch"),
}


class _Settings:
    """The autoencoder and training settings a classifier's parts take."""

    def __init__(self, clf, epochs, noise):
        widths = [int(w) for w in clf.hidden]
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"hidden must be positive widths, got {clf.hidden!r}")
        self.hidden, self.code, self.decoder_hidden = widths[:-1], widths[-1], None
        self.activation, self.code_activation = clf.activation, clf.activation
        self.output_activation, self.loss, self.init, self.tied, self.arch = None, "mse", "auto", False, None
        self.l1, self.kl, self.topk, self.topk_encode, self.code_dropout = 0.0, None, None, None, 0.0
        self.topk_start, self.topk_anneal = None, 0
        self.binary_code, self.decov, self.hidden_reg, self.max_norm = None, 0.0, None, None
        self.noise = noise
        self.epochs, self.batch_size, self.learning_rate = epochs, clf.batch_size, clf.learning_rate
        self.optimizer, self.momentum, self.nesterov = "adam", 0.9, False
        self.weight_decay, self.schedule, self.warmup, self.clip_norm = clf.weight_decay, "constant", 0, None
        self.validation_fraction, self.patience = 0.0, None
        self.scale, self.precision = clf.scale, "f32"


class Classifier(_PicklesModel, ClassifierMixin, BaseEstimator):
    """A classifier on a pretrained encoder: ``fit(X, y)`` pretrains a denoising autoencoder
    with the encoder ``hidden`` on ``X`` (``pretrain_epochs``), then trains the encoder and a
    softmax head on the labels (``epochs``; ``freeze_epochs`` train the head alone first).
    ``predict_proba``, ``predict``; ``classes_``; ``save`` writes the command line's classifier
    file. Bit-identical for any ``n_jobs``."""

    _native_class = _native.Classifier

    __init__ = make_init(_PARAMS)

    def fit(self, X, y):
        """Pretrains on ``X``, then fine-tunes on ``(X, y)``."""
        x = as_float_array(validate_data(self, X, dtype=[np.float32, np.float64], ensure_all_finite=True))
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        enc = LabelEncoder()
        yi = enc.fit_transform(y)
        self.classes_ = enc.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"the data holds one class ({self.classes_[0]!r}); a classifier needs two or more")
        seed = seed_of(self.random_state)
        threads = threads_of(self.n_jobs)
        pre = _Settings(self, int(self.pretrain_epochs), self.pretrain_noise)
        pre.scale = resolve_scale(self.scale, x)
        progress = Progress(self.verbose)
        try:
            if self.pretrain_epochs > 0:
                encoder, _ = _native.Model.fit(
                    x, design(pre, x.shape[1]), training(pre, x.shape[0], seed), threads=threads, progress=progress,
                    batches=progress.wants_batches,
                )
            else:
                # No pretraining: the same network from random weights, scaled as pretraining
                # would have been.
                encoder = _native.Model.new(design(pre, x.shape[1]), x, seed, scale=pre.scale)
            tune = _Settings(self, int(self.epochs), None)
            self.model_, report = _native.Classifier.finetune(
                encoder,
                x,
                yi.astype(np.uint64).tolist(),
                [str(c) for c in self.classes_],
                training(tune, x.shape[0], seed, freeze_epochs=int(self.freeze_epochs), scale="none"),
                dropout=float(self.dropout),
                from_scratch=self.pretrain_epochs == 0,
                threads=threads,
                progress=progress,
                batches=progress.wants_batches,
            )
        finally:
            progress.close()
        self.history_ = [h for h in progress.history if h.get("train_accuracy") is not None]
        self.n_iter_ = len(json.loads(report)["history"])
        return self

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "model_")
        x = as_float_array(validate_data(self, X, reset=False, dtype=[np.float32, np.float64], ensure_all_finite=True))
        return self.model_.predict_proba(x, threads=threads_of(self.n_jobs)).astype(np.float64)

    def predict(self, X):
        """The most probable class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def save(self, path):
        """Writes the classifier file (the command line's format)."""
        check_is_fitted(self, "model_")
        self.model_.save(str(path))

    def to_onnx(self, path):
        """Writes the classifier as ONNX (opset 17): ``probabilities`` (columns in the order of
        ``classes_``) and ``class`` (the index of the most probable one), scaler inside."""
        check_is_fitted(self, "model_")
        self.model_.to_onnx(str(path))

    def report(self, path, X=None, y=None):
        """Writes the HTML report: the model card and fine-tuning curves; with ``X`` and its
        true classes ``y``, accuracy and the confusion matrix."""
        check_is_fitted(self, "model_")
        x = None
        if X is not None:
            x = as_float_array(validate_data(self, X, reset=False, dtype=[np.float32, np.float64], ensure_all_finite=True))
        labels = None if y is None else [str(v) for v in np.asarray(y, dtype=object).ravel()]
        self.model_.report(str(path), x, labels, threads=threads_of(self.n_jobs))

    def _set_native(self, model):
        self.model_ = model
        self.classes_ = np.asarray(model.classes(), dtype=object)
        self.n_features_in_ = model.input_dim()

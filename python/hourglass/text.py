"""``TextAutoEncoder``: the sequence autoencoder of a text, as ``hourglass train --text``."""

from __future__ import annotations

import json

from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from . import _native
from ._core import _PicklesModel
from ._params import TRAINING, make_init, positive_int, seed_of, threads_of
from ._progress import Progress


def _text(X):
    if not isinstance(X, str):
        raise TypeError(f"a text is a str, got {type(X).__name__}")
    return ("text", X)


class TextAutoEncoder(_PicklesModel, BaseEstimator):
    """A recurrent autoencoder of a text's windows of tokens: the command line's
    ``train --text`` in Python, and the same model file.

    ``fit(text)`` cuts the text (a ``str``) into ``unit`` tokens — ``"chars"`` (characters; a
    run of white space is one space) or ``"words"`` (words and punctuation marks) — one-hot over
    a vocabulary of the ``max_vocabulary`` most frequent (the rest ``<other>``), and trains on
    its windows of ``window`` tokens, ``stride`` apart: an LSTM of ``units`` reads each window
    into a code of ``code`` (tanh), an LSTM writes it back, and a softmax gives each step a
    distribution over the vocabulary, trained with the categorical cross-entropy. Then
    ``reconstruct(text)`` writes a text back, ``transform(text)`` gives the code of every window
    (stride 1), ``token_scores(text)`` each token's mean reconstruction error over the windows
    holding it (higher = more unusual), and ``score(text)`` the share of tokens that come back.
    The defaults are the command line's for ``--text``: batches of 64 windows, Adam at 0.01,
    and ``epochs=None`` for at least 10 epochs and 1,000 optimizer steps.
    """

    __init__ = make_init(
        {
            "window": (16, "tokens per window"),
            "unit": ("chars", "chars (characters; a run of white space is one space) or words (words and "
                              "punctuation marks)"),
            "lowercase": (False, "lower-case the text first"),
            "units": (64, "units of the encoder's and the decoder's LSTM"),
            "code": (32, "width of the code (tanh)"),
            "max_vocabulary": (None, "most frequent tokens kept, the rest <other>; None: 100 characters or "
                                     "2,000 words"),
            "stride": (1, "tokens between the starts of consecutive training windows"),
            "epochs": (None, "passes over the windows; None: at least 10 and 1,000 optimizer steps"),
            "batch_size": (64, "windows per mini-batch"),
            "learning_rate": (1e-2, "learning rate (Adam)"),
            **{name: TRAINING[name] for name in ("random_state", "n_jobs", "verbose")},
        }
    )

    def fit(self, X, y=None):
        """Trains on the windows of the text ``X`` (``y`` is ignored)."""
        window = positive_int("window", self.window, 2)
        stride = positive_int("stride", self.stride)
        batch = positive_int("batch_size", self.batch_size)
        if self.unit not in ("chars", "words"):
            raise ValueError(f"unit must be 'chars' or 'words', got {self.unit!r}")
        vocabulary = self.max_vocabulary
        if vocabulary is None:
            vocabulary = 100 if self.unit == "chars" else 2000
        vocabulary = positive_int("max_vocabulary", vocabulary)
        text = _text(X)
        # None: at least 10 epochs and 1,000 optimizer steps (the command line's default for
        # windows; 0 asks the native side, which knows the number of windows).
        epochs = 0 if self.epochs is None else positive_int("epochs", self.epochs)
        lr = float(self.learning_rate)
        if not lr > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        design = {"hidden": [positive_int("units", self.units)], "code": positive_int("code", self.code), "loss": "ce"}
        train = {
            "epochs": epochs,
            "batch_size": batch,
            "lr": lr,
            "optimizer": "adam",
            "momentum": 0.9,
            "nesterov": False,
            "weight_decay": 0.0,
            "schedule": "constant",
            "warmup": 0,
            "clip_norm": None,
            "valid_fraction": 0.0,
            "patience": None,
            "seed": seed_of(self.random_state),
            "scale": "none",
            "precision": "f32",
            "noise": [],
            "max_norm": None,
        }
        progress = Progress(self.verbose)
        try:
            model, report = _native.Model.fit(
                text,
                json.dumps(design),
                json.dumps(train),
                windows=(window, stride),
                text=(self.unit, bool(self.lowercase)),
                max_categories=vocabulary,
                threads=threads_of(self.n_jobs),
                progress=progress,
                batches=progress.wants_batches,
            )
        finally:
            progress.close()
        self.history_ = progress.history
        self.n_iter_ = len(progress.history)
        self._set_model(model)
        return self

    def _set_model(self, model):
        self.model_ = model
        info = json.loads(model.info())
        self.code_dim_ = info["code_dim"]
        self.vocabulary_ = info["vocabulary"]
        return info

    def _threads(self):
        return threads_of(self.n_jobs)

    def transform(self, X):
        """The code of every window of the text ``X`` (stride 1): ``(n_windows, code)``."""
        check_is_fitted(self, "model_")
        return self.model_.encode(_text(X), threads=self._threads())

    def reconstruct(self, X):
        """The text ``X`` written back: each token the most probable under the mean of the
        distributions the windows holding it give (characters side by side; words separated
        by spaces)."""
        check_is_fitted(self, "model_")
        out = self.model_.reconstruct(_text(X), threads=self._threads())
        return self.model_.text_of(out)

    def token_scores(self, X):
        """Each token's score: the mean reconstruction error (mse over the vocabulary's
        probabilities) of the windows that hold it; higher = more unusual."""
        check_is_fitted(self, "model_")
        return self.model_.step_scores(_text(X), metric="mse", threads=self._threads())

    def score(self, X, y=None):
        """The share of the steps of every window of ``X`` whose most probable token is the
        input's (``hourglass eval``'s categorical accuracy; higher is better)."""
        check_is_fitted(self, "model_")
        accuracy, _ = self.model_.categorical(_text(X), threads=self._threads())
        return accuracy

    def cross_entropy(self, X):
        """The mean cross-entropy per step of every window of ``X``, in nats."""
        check_is_fitted(self, "model_")
        return self.model_.categorical(_text(X), threads=self._threads())[1]

    def save(self, path):
        """Writes the model file (the command line's format): ``hourglass reconstruct`` and
        ``score`` read texts with it."""
        check_is_fitted(self, "model_")
        self.model_.save(str(path))

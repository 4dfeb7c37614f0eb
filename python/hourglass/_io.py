"""Loading model files made anywhere (the command line, Python) as fitted estimators."""

from __future__ import annotations

import json

import numpy as np

from . import _native


def load(path):
    """A model file as a fitted estimator: an ``AutoEncoder`` (autoencoders and PCA models),
    a ``SeriesOutlierDetector`` (a model of a series' windows, ``train --window``), a
    ``TextAutoEncoder`` (a model of a text, ``train --text``), or a ``Classifier``. Its
    constructor parameters are the defaults; the model is the file's."""
    kind, model = _native.load(str(path))
    if kind == "classifier":
        from .classifier import Classifier

        est = Classifier()
        est._set_native(model)
        return est
    from .autoencoder import AutoEncoder
    from .series import SeriesOutlierDetector

    info = json.loads(model.info())
    windows = info.get("windows")
    if info.get("text") is not None:
        # A model of a text's windows (train --text).
        from .text import TextAutoEncoder

        text = info["text"]
        est = TextAutoEncoder(window=windows["length"], stride=windows["stride"], unit=text["unit"],
                              lowercase=text["lowercase"], max_vocabulary=len(info["vocabulary"]) - 1)
        est._set_model(model)
        report = info["provenance"].get("report") or {}
        est.history_ = report.get("history", [])
        est.n_iter_ = len(est.history_)
        return est
    if windows is not None:
        # A model of a series' windows: a detector of the series' steps.
        rule = (info.get("anomaly") or {}).get("rule") or {}
        contamination = rule["value"] if rule.get("rule") == "contamination" else 0.1
        est = SeriesOutlierDetector(window=windows["length"], stride=windows["stride"], contamination=contamination)
        est._set_model(model)
        if info.get("anomaly") is not None:
            est.offset_ = -info["anomaly"]["value"]
        names = info["feature_names"][:: windows["length"]]
        names = [n[: -len("@0")] if n.endswith("@0") else n for n in names]
        est.n_features_in_ = len(names)
    else:
        est = AutoEncoder()
        est._set_model(model)
        est.n_features_in_ = info["input_dim"]
        names = info["table_inputs"] or info["feature_names"]
    generic = all(n == f"c{i}" for i, n in enumerate(names))
    if not generic:
        est.feature_names_in_ = np.asarray(names, dtype=object)
        if info["table_inputs"] is not None:
            est.n_features_in_ = len(names)
    shape = info["provenance"].get("image_shape")
    est.image_shape_ = None if shape is None else tuple(shape)
    report = info["provenance"].get("report") or {}
    est.history_ = report.get("history", [])
    est.n_iter_ = len(est.history_)
    est.best_epoch_ = report.get("best_epoch")
    return est

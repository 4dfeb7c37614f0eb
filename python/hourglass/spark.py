"""Batch scoring on Apache Spark: a model scores a Spark DataFrame partition by partition.

``score_dataframe(df, "model.safetensors")`` returns ``df`` with a ``score`` column (the
reconstruction error, higher = more anomalous, as ``hourglass score`` computes it), an
``anomaly`` column when the model is calibrated, and with ``code=True`` the code units
``code_0 … code_{k-1}``. It runs through ``DataFrame.mapInArrow``: each worker process loads
the model once (from a broadcast copy of the file's bytes, so workers need no shared file
system) and scores Arrow batches as they come, so a partition is never held whole in memory.

Needs ``pyspark`` (3.3 or later) and ``pyarrow``; the model file is any autoencoder or PCA
model, trained by the command line or by Python.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from . import _native
from ._data import to_table

# Models already loaded in this (worker) process, by the digest of the file's bytes.
_LOADED: dict[str, object] = {}


def _model_bytes(model) -> bytes:
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            return f.read()
    native = getattr(model, "model_", None)
    if native is None:
        raise TypeError("model must be a model file's path or a fitted hourglass estimator")
    return bytes(native.to_bytes())


def _load(digest: str, payload) -> object:
    m = _LOADED.get(digest)
    if m is None:
        data = payload.value if hasattr(payload, "value") else payload
        m = _LOADED[digest] = _native.Model.from_bytes(data)
    return m


def _columns(info: dict, columns) -> list[str]:
    if columns is not None:
        return [str(c) for c in columns]
    names = info["table_inputs"] or info["feature_names"]
    if all(n == f"c{i}" for i, n in enumerate(names)):
        raise ValueError(
            f"the model's {len(names)} input columns have no names (it was trained on an array): "
            "give columns=[...] in the order of training"
        )
    return list(names)


def score_dataframe(df, model, *, columns=None, code=False, metric=None, threads=1):
    """``df`` with ``score`` (float64), ``anomaly`` (boolean, when the model is calibrated) and,
    with ``code=True``, ``code_0 …`` (float32) columns appended; its other columns pass through.

    ``model``: a model file's path or a fitted estimator. ``columns``: the model's inputs in
    ``df`` (default: the names the model was trained with: a CSV's header or a DataFrame's
    columns). ``metric``: mse, mae, mse+lof or mse+knn (default: the calibrated one, else the
    code neighbourhood's own for a model with one, else mse). ``threads``:
    threads per Spark task (default 1: Spark runs one task per core already); scores do not
    depend on it.
    """
    from pyspark.sql.types import BooleanType, DoubleType, FloatType, StructField, StructType

    payload = _model_bytes(model)
    native = _native.Model.from_bytes(payload)
    info = json.loads(native.info())
    inputs = _columns(info, columns)
    missing = [c for c in inputs if c not in df.columns]
    if missing:
        raise ValueError(f"the DataFrame lacks the model's input columns {missing} (it has {df.columns})")
    calibrated = info["anomaly"]
    if metric is None:
        metric = info["default_metric"]
    if metric not in ("mse", "mae", "mse+lof", "mse+knn"):
        raise ValueError(f"metric must be mse, mae, mse+lof or mse+knn, got {metric!r}")
    if calibrated and metric != calibrated["metric"]:
        raise ValueError(f"the model is calibrated for metric {calibrated['metric']!r}, asked for {metric!r}")
    table = info["table_inputs"] is not None
    if not table and len(inputs) != info["input_dim"]:
        raise ValueError(f"the model reads {info['input_dim']} columns, {len(inputs)} given")
    threshold = calibrated["value"] if calibrated else None
    code_dim = info["code_dim"] if code else 0
    added = [StructField("score", DoubleType(), False)]
    if threshold is not None:
        added.append(StructField("anomaly", BooleanType(), False))
    added += [StructField(f"code_{j}", FloatType(), False) for j in range(code_dim)]
    clash = [f.name for f in added if f.name in df.columns]
    if clash:
        raise ValueError(f"the DataFrame already has columns named {clash}")
    schema = StructType(df.schema.fields + added)
    digest = hashlib.sha256(payload).hexdigest()
    try:
        shared = df.sparkSession.sparkContext.broadcast(payload)
    except Exception:  # Spark Connect has no SparkContext: the bytes travel with the function
        shared = payload

    def score_batches(batches):
        import pyarrow as pa

        m = _load(digest, shared)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            data = _rows(batch, inputs, table)
            s = m.scores(data, metric=metric, threads=threads)
            arrays = list(batch.columns) + [pa.array(s, pa.float64())]
            if threshold is not None:
                arrays.append(pa.array(s > threshold, pa.bool_()))
            if code_dim:
                c = m.encode(data, threads=threads)
                arrays += [pa.array(np.ascontiguousarray(c[:, j]), pa.float32()) for j in range(code_dim)]
            yield pa.RecordBatch.from_arrays(arrays, names=schema.names)

    return df.mapInArrow(score_batches, schema)


def _rows(batch, inputs, table):
    """A batch's input columns as the native module takes them: a float32 matrix, or the table
    form (as a CSV of the same values would be read)."""
    if table:
        return to_table(batch.select(inputs).to_pandas())
    cols = []
    for name in inputs:
        col = batch.column(name)
        if col.null_count:
            raise ValueError(f"column {name!r} has missing values, and the model was trained without imputation")
        cols.append(col.to_numpy(zero_copy_only=False).astype(np.float32, copy=False))
    x = np.ascontiguousarray(np.column_stack(cols), dtype=np.float32)
    if not np.isfinite(x).all():
        bad = inputs[int(np.flatnonzero(~np.isfinite(x).all(axis=0))[0])]
        raise ValueError(f"column {bad!r} has a value that is not a finite number")
    return x

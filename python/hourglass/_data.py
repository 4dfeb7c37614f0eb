"""Input checking and conversion: NumPy arrays (read in place when they are float32 and
C-contiguous), lists, pandas DataFrames (kept by column when they need the table encoding the
command line stores in models: categories, missing values) and image arrays (N, H, W[, C])."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils.validation import check_array, validate_data

from ._params import as_float_array


@dataclass
class Prepared:
    """Data ready for the native module."""

    data: object  # a float32 C-contiguous 2-D array, or ("table", names, columns)
    n_samples: int
    n_features: int
    image_shape: tuple | None = None


def is_frame(x) -> bool:
    """Whether ``x`` is a pandas DataFrame (without importing pandas)."""
    return type(x).__name__ == "DataFrame" and hasattr(x, "columns") and hasattr(x, "dtypes")


def _numeric(dtype) -> bool:
    return dtype.kind in "biuf"


def needs_table(df, est) -> bool:
    """Whether a DataFrame goes by column: table settings are given, a column is not
    numeric, or a value is missing."""
    if getattr(est, "categorical", None) is not None or getattr(est, "impute", None) is not None:
        return True
    for name in df.columns:
        col = df[name]
        if not _numeric(col.dtype):
            return True
        if col.dtype.kind == "f" and col.isna().any():
            return True
    return False


def to_table(df) -> tuple:
    """``("table", names, columns)``: numeric columns as float64 arrays (NaN = missing), the
    others as strings (None = missing), the values a CSV of this frame would hold."""
    names, columns = [], []
    for name in df.columns:
        col = df[name]
        names.append(str(name))
        if _numeric(col.dtype):
            columns.append(np.ascontiguousarray(col.to_numpy(dtype=np.float64, na_value=np.nan)))
        else:
            columns.append([None if _missing(v) else str(v) for v in col.tolist()])
    return ("table", names, columns)


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN, pandas NA
    except (TypeError, ValueError):
        return False


def _images(est, x, reset: bool) -> Prepared:
    x = check_array(x, allow_nd=True, dtype=np.float32, ensure_all_finite=True, input_name="X")
    if x.ndim == 3:
        n, h, w = x.shape
        c = 1
        rows = x.reshape(n, h * w)
    else:
        n, h, w, c = x.shape
        rows = x.transpose(0, 3, 1, 2).reshape(n, c * h * w)
    shape = (h, w, c)
    if reset:
        est.n_features_in_ = h * w * c
        est.image_shape_ = shape
    elif getattr(est, "image_shape_", None) not in (None, shape):
        raise ValueError(f"X holds images of shape {shape}, but {type(est).__name__} was fitted on {est.image_shape_}")
    return Prepared(as_float_array(rows), n, h * w * c, shape)


def prepare(est, X, *, reset: bool) -> Prepared:
    """Checks ``X`` for ``fit`` (``reset``: sets ``n_features_in_`` and
    ``feature_names_in_``) or for a fitted estimator, and converts it."""
    table_model = not reset and getattr(est, "table_inputs_", None) is not None
    if is_frame(X) and (table_model or (reset and needs_table(X, est))):
        if X.shape[0] == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
        if reset:
            est.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
            est.n_features_in_ = X.shape[1]
        return Prepared(to_table(X), X.shape[0], X.shape[1])
    if table_model:
        raise ValueError(
            f"{type(est).__name__} was fitted on a table with encoded columns "
            f"({', '.join(est.table_inputs_)}): give a pandas DataFrame with those columns"
        )
    nd = getattr(X, "ndim", None)
    if nd in (3, 4) and not is_frame(X):
        return _images(est, X, reset)
    if reset and nd is None:
        nd3 = np.asarray(X).ndim if not hasattr(X, "tocsr") else 2
        if nd3 in (3, 4):
            return _images(est, np.asarray(X), reset)
    x = validate_data(est, X, reset=reset, dtype=[np.float32, np.float64], ensure_all_finite=True)
    if reset:
        est.image_shape_ = None
    x = as_float_array(x)
    return Prepared(x, x.shape[0], x.shape[1], getattr(est, "image_shape_", None))

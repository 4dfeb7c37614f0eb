"""Semantic hashing: binary codes packed 64 bits to a word, and Hamming search."""

from __future__ import annotations

import numpy as np

from . import _native


def hash_codes(model, X):
    """Packed binary codes of ``X`` under a fitted ``AutoEncoder`` or ``PCA`` (its code
    thresholded at 0.5 for sigmoid codes, 0 otherwise): ``(words, bits)``, ``words`` an
    (n, ceil(bits / 64)) uint64 array."""
    return model.model_.hash(model._input(X), threads=model._threads())


def hamming_search(database, queries, bits, k=10, radius=None):
    """The ``k`` nearest database codes of each query by Hamming distance (ties by index), or
    every code within ``radius``: an (n, 4) array of (query, rank, item, distance)."""
    db = np.ascontiguousarray(database, dtype=np.uint64)
    q = np.ascontiguousarray(queries, dtype=np.uint64)
    return _native.search(db, q, int(bits), k=int(k), radius=radius)

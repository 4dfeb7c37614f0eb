"""Anomaly-detection suite: every detector with its defaults on the same splits, in one run.

Settings: `semi` trains on 60 % of the normal rows (drawn by the seed) and scores the other
normal rows with every anomaly; `unsup` trains on all rows, anomalies included, and scores the
same rows. Scores are oriented higher = more anomalous. Per dataset and setting: ROC-AUC and
PR-AUC (average precision) averaged over the seeds, the mean over datasets, each method's
average rank (1 = best ROC-AUC; ties share the mean rank), and wall time (fit + score).

Usage: python bench/anomaly/suite.py [--seeds 3] [--only NAME,...] [--methods NAME,...] [--out DIR]
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, os.path.dirname(__file__))
import datasets  # noqa: E402

warnings.filterwarnings("ignore")


def hourglass_defaults(seed):
    import hourglass

    return hourglass.OutlierDetector(random_state=seed), lambda m, x: m.anomaly_scores(x)


def hourglass_with(seed, **kw):
    """The detector with some defaults replaced: `neighbours=None` scores by the error alone,
    `scale="standard"` as well gives the defaults before 2026-12-03."""
    import hourglass

    return hourglass.OutlierDetector(random_state=seed, **kw), lambda m, x: m.anomaly_scores(x)


class Budget:
    """Candidate: the defaults with an epoch budget of `rows_seen` rows (rows_seen // n epochs
    within [10, 50]) instead of the library's 60,000."""

    def __init__(self, seed, rows_seen):
        self.seed, self.rows_seen = seed, rows_seen

    def fit(self, x):
        import hourglass

        epochs = min(50, max(10, self.rows_seen // len(x)))
        self.m = hourglass.OutlierDetector(epochs=epochs, random_state=self.seed).fit(x)
        return self

    def scores(self, x):
        return self.m.anomaly_scores(x)


def hourglass_readme(seed):
    """The README's tabular recipe until 2026-12-03, as the command line ran it: --scale
    standard --hidden 32 --code 4, the command's defaults otherwise (10 epochs, batch 256, no
    validation). The README now shows the defaults (`hourglass train data -o m`), which are
    the `hourglass` method here."""
    import hourglass

    m = hourglass.OutlierDetector(hidden=[32], code=4, scale="standard", epochs=10, batch_size=256,
                                  validation_fraction=0.0, patience=None, neighbours=None, random_state=seed)
    return m, lambda m, x: m.anomaly_scores(x)


def hourglass_denoise(seed):
    """Candidate default: the Python detector's defaults plus mask noise (denoising), so a
    low-dimensional table's model cannot learn the identity."""
    import hourglass

    return hourglass.OutlierDetector(noise="mask:0.2", random_state=seed), lambda m, x: m.anomaly_scores(x)


class Ensemble:
    """Candidate default: five detectors with their own seeds and a random 70 % of the features
    each; every member's scores are centred and scaled by the median and IQR of its training
    scores, then averaged."""

    def __init__(self, seed, members=5):
        self.seed, self.members = seed, members

    def fit(self, x):
        import hourglass

        rng = np.random.default_rng(self.seed)
        d = x.shape[1]
        self.parts = []
        for i in range(self.members):
            cols = np.sort(rng.choice(d, size=max(1, int(np.ceil(0.7 * d))), replace=False)) if d > 3 else np.arange(d)
            m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed * 100 + i).fit(x[:, cols])
            s = m.anomaly_scores(x[:, cols])
            q1, med, q3 = np.percentile(s, [25, 50, 75])
            self.parts.append((cols, m, med, max(q3 - q1, 1e-12)))
        return self

    def scores(self, x):
        return np.mean([(m.anomaly_scores(x[:, c]) - med) / iqr for c, m, med, iqr in self.parts], axis=0)


class Standardized:
    """Candidate score: the detector's defaults, each feature's squared error divided by its
    mean on the training rows (so a feature that is always hard to reconstruct does not
    dominate), averaged over the features."""

    def __init__(self, seed):
        self.seed = seed

    def fit(self, x):
        import hourglass

        self.m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed).fit(x)
        self.spread = np.maximum(((x - self.m.reconstruct(x)) ** 2).mean(axis=0), 1e-12)
        return self

    def scores(self, x):
        return (((x - self.m.reconstruct(x)) ** 2) / self.spread).mean(axis=1)


class CodeDistance:
    """Candidate score: the reconstruction error plus the distance to the 5th nearest training
    row in code space, each centred and scaled by its training median and IQR."""

    def __init__(self, seed):
        self.seed = seed

    def fit(self, x):
        import hourglass
        from sklearn.neighbors import NearestNeighbors

        self.m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed).fit(x)
        codes = self.m.model_.encode(x)
        self.nn = NearestNeighbors(n_neighbors=min(6, len(x))).fit(codes)
        self.norm = [self._robust(self.m.anomaly_scores(x)), self._robust(self.nn.kneighbors(codes)[0][:, -1])]
        return self

    @staticmethod
    def _robust(s):
        q1, med, q3 = np.percentile(s, [25, 50, 75])
        return med, max(q3 - q1, 1e-12)

    def scores(self, x):
        parts = [self.m.anomaly_scores(x), self.nn.kneighbors(self.m.model_.encode(x))[0][:, -2]]
        return sum((p - med) / iqr for p, (med, iqr) in zip(parts, self.norm))


class InputDistance(CodeDistance):
    """Candidate score: the reconstruction error plus the distance to the 5th nearest training
    row in the model's scaled input space (the detector's standard scaler), each centred and
    scaled by its training median and IQR."""

    def fit(self, x):
        import hourglass
        from sklearn.neighbors import NearestNeighbors

        self.m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed).fit(x)
        self.mu, self.sd = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-12)
        z = (x - self.mu) / self.sd
        self.nn = NearestNeighbors(n_neighbors=min(6, len(x))).fit(z)
        self.norm = [self._robust(self.m.anomaly_scores(x)), self._robust(self.nn.kneighbors(z)[0][:, -1])]
        return self

    def scores(self, x):
        z = (x - self.mu) / self.sd
        parts = [self.m.anomaly_scores(x), self.nn.kneighbors(z)[0][:, -2]]
        return sum((p - med) / iqr for p, (med, iqr) in zip(parts, self.norm))


class CodeDensity(CodeDistance):
    """Candidate score: the reconstruction error plus the Mahalanobis distance of the code
    under a Gaussian fitted to the training codes, each scaled by its training median and
    IQR (a light DAGMM)."""

    def fit(self, x):
        import hourglass

        self.m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed).fit(x)
        c = self.m.model_.encode(x).astype(np.float64)
        self.mu = c.mean(axis=0)
        cov = np.cov(c, rowvar=False).reshape(c.shape[1], c.shape[1]) + 1e-6 * np.eye(c.shape[1])
        self.prec = np.linalg.inv(cov)
        self.norm = [self._robust(self.m.anomaly_scores(x)), self._robust(self._maha(c))]
        return self

    def _maha(self, c):
        d = c - self.mu
        return np.einsum("ij,jk,ik->i", d, self.prec, d)

    def scores(self, x):
        parts = [self.m.anomaly_scores(x), self._maha(self.m.model_.encode(x).astype(np.float64))]
        return sum((p - med) / iqr for p, (med, iqr) in zip(parts, self.norm))


class Hybrid(CodeDistance):
    """Candidate detector (part 2): fit the defaults, drop the 10 % worst-reconstructed training
    rows and refit on the rest (robust to contamination), then add three scores, each centred
    and scaled by its training median and IQR: the reconstruction error, the distance to the
    5th nearest kept row in standardized input space, and the Mahalanobis distance of the code
    under a Gaussian fitted to the kept rows' codes. `parts` selects a subset."""

    def __init__(self, seed, parts=("err", "knn", "maha"), trim=0.1, combine="sum", weights=None):
        self.seed, self.parts, self.trim, self.combine = seed, parts, trim, combine
        self.weights = weights or [1.0] * len(parts)

    def fit(self, x):
        import hourglass
        from sklearn.neighbors import NearestNeighbors

        self.m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed).fit(x)
        if self.trim:
            e = self.m.anomaly_scores(x)
            x = x[e <= np.quantile(e, 1 - self.trim)]
            self.m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed).fit(x)
        self.mu, self.sd = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-12)
        self.nn = NearestNeighbors(n_neighbors=min(6, len(x))).fit((x - self.mu) / self.sd)
        c = self.m.model_.encode(x).astype(np.float64)
        self.cmu = c.mean(axis=0)
        self.prec = np.linalg.inv(np.cov(c, rowvar=False).reshape(c.shape[1], -1) + 1e-6 * np.eye(c.shape[1]))
        self.norm = [self._robust(p) for p in self._parts(x, -1)]
        return self

    def _parts(self, x, nth):
        d = self.m.model_.encode(x).astype(np.float64) - self.cmu
        every = {"err": lambda: self.m.anomaly_scores(x),
                 "knn": lambda: self.nn.kneighbors((x - self.mu) / self.sd)[0][:, nth],
                 "maha": lambda: np.sqrt(np.einsum("ij,jk,ik->i", d, self.prec, d))}
        return [every[p]() for p in self.parts]

    def scores(self, x):
        z = [w * (p - med) / iqr for w, p, (med, iqr) in zip(self.weights, self._parts(x, -2), self.norm)]
        return np.max(z, axis=0) if self.combine == "max" else np.sum(z, axis=0)


def auto_scale(x):
    """The detector's `scale="auto"`: no scaling when every training value already lies in
    [0, 1] (images, flags, probabilities), else standard."""
    return "none" if x.min() >= 0 and x.max() <= 1 else "standard"


class CodeLof(CodeDistance):
    """Candidate score: the reconstruction error plus the local outlier factor (20 neighbours)
    of the code among the training rows' codes, each centred and scaled by its training median
    and IQR; `scale` "auto" resolves as `auto_scale`. `parts` selects a subset."""

    def __init__(self, seed, scale="auto", parts=("err", "lof"), k=20):
        self.seed, self.scale, self.parts, self.k = seed, scale, parts, k

    def fit(self, x):
        import hourglass
        from sklearn.neighbors import LocalOutlierFactor

        scale = auto_scale(x) if self.scale == "auto" else self.scale
        self.m = hourglass.OutlierDetector(neighbours=None, scale=scale, random_state=self.seed).fit(x)
        c = self.m.model_.encode(x)
        self.lof = LocalOutlierFactor(n_neighbors=min(self.k, len(x) - 1), novelty=True).fit(c)
        train = {"err": self.m.anomaly_scores(x), "lof": -self.lof.negative_outlier_factor_}
        self.norm = [self._robust(train[p]) for p in self.parts]
        return self

    def scores(self, x):
        every = {"err": lambda: self.m.anomaly_scores(x), "lof": lambda: -self.lof.score_samples(self.m.model_.encode(x))}
        return sum((every[p]() - med) / iqr for p, (med, iqr) in zip(self.parts, self.norm))


class FlooredLof(CodeDistance):
    """Candidate: the defaults' mse+lof, with every reachability distance floored at `floor`
    times the median of the reference rows' positive k-distances (duplicated codes otherwise
    get a density of 1e10, and a normal row next to them a huge LOF)."""

    def __init__(self, seed, floor=0.5, k=10):
        self.seed, self.floor, self.k = seed, floor, k

    def fit(self, x):
        import hourglass

        self.m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed).fit(x)
        c = self.m.model_.encode(x).astype(np.float64)
        rows = min(len(c), 10_000)
        d, i = self._reference(c[np.arange(rows) * len(c) // rows])
        lof = self.lrd[i].mean(axis=1) / self.lrd
        train = [self.m.anomaly_scores(x), lof]
        self.norm = [self._robust(t) for t in train]
        return self

    def _reference(self, z, n_neighbors=None):
        """Fits the neighbour search on the reference rows `z` (`n_neighbors` of them, default
        k): each one's k-distance, the reachability floor and the densities; returns each
        reference row's neighbours (distances, indices; itself left out)."""
        from sklearn.neighbors import NearestNeighbors

        self.nn = NearestNeighbors(n_neighbors=n_neighbors or self.k).fit(z)
        d, i = self.nn.kneighbors()
        self.kdist = d[:, self.k - 1]
        pos = self.kdist[self.kdist > 0]
        self.eps = self.floor * np.median(pos) if len(pos) else 0.0
        self.lrd = self._lrd(d[:, : self.k], i[:, : self.k])
        return d, i

    def _lrd(self, d, i):
        reach = np.maximum(np.maximum(d, self.kdist[i]), self.eps)
        return 1.0 / (reach.mean(axis=1) + 1e-10)

    def scores(self, x):
        d, i = self.nn.kneighbors(self.m.model_.encode(x).astype(np.float64))
        lof = self.lrd[i].mean(axis=1) / self._lrd(d, i)
        parts = [self.m.anomaly_scores(x), lof]
        return sum((p - med) / iqr for p, (med, iqr) in zip(parts, self.norm))


class LofMaha(FlooredLof):
    """Candidate: the defaults' mse+lof (floor 0.5) plus the Mahalanobis distance of the code
    under a Gaussian fitted to the training codes, robust-scaled like the other parts
    (`combine`: "sum", or "max" of the parts)."""

    def __init__(self, seed, combine="sum", k=10, weight=1.0, trim=0.0, shrink=False):
        super().__init__(seed, floor=0.5, k=k)
        self.combine, self.weight, self.trim, self.shrink = combine, weight, trim, shrink

    def fit(self, x):
        super().fit(x)
        c = self.m.model_.encode(x).astype(np.float64)
        if self.trim:
            s = super().scores(x)
            c = c[s <= np.quantile(s, 1 - self.trim)]
        self.mu = c.mean(axis=0)
        if self.shrink:
            from sklearn.covariance import LedoitWolf

            cov = LedoitWolf().fit(c).covariance_ + 1e-6 * np.eye(c.shape[1])
        else:
            cov = np.cov(c, rowvar=False) + 1e-6 * np.eye(c.shape[1])
        self.prec = np.linalg.pinv(cov)
        self.mnorm = self._robust(self._maha(c))
        return self

    def _maha(self, c):
        d = c - self.mu
        return np.sqrt(np.einsum("ij,jk,ik->i", d, self.prec, d))

    def scores(self, x):
        base = super().scores(x)
        med, iqr = self.mnorm
        m = (self._maha(self.m.model_.encode(x).astype(np.float64)) - med) / iqr
        if self.combine == "max":
            return np.maximum(base / 2, m)
        return base + self.weight * m


class Manifold(FlooredLof):
    """Candidate (2026-12-03, fourth round): the reconstruction error plus a neighbour score of
    the row's place on the learned manifold, each robust-scaled on the training rows.
    `space`: "recon" takes the reconstruction x̂ in the model's scaled input space (the
    decoder's own metric on the code, in input units, whatever the code's width), "code" the
    code; `nbr`: "lof" (floored, as the defaults) or "knn" (distance to the k-th neighbour);
    `code`: a function of the number of features giving the code width (None: the default);
    `parts`: which parts are summed."""

    def __init__(self, seed, space="recon", nbr="lof", k=10, code=None, parts=("err", "nbr"), weights=None):
        super().__init__(seed, floor=0.5, k=k)
        self.space, self.nbr, self.code, self.parts = space, nbr, code, parts
        self.weights = weights or [1.0] * len(parts)

    def _z(self, x):
        if self.space == "code":
            return self.m.model_.encode(x).astype(np.float64)
        r = self.m.reconstruct(x).astype(np.float64)
        return (r - self.mu) / self.sd

    def _nbr(self, d, i):
        if self.nbr == "knn":
            return d[:, -1]
        return self.lrd[i].mean(axis=1) / self._lrd(d, i)

    def fit(self, x):
        import hourglass

        kw = {} if self.code is None else {"code": self.code(x.shape[1])}
        self.m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed, **kw).fit(x)
        std = auto_scale(x) == "standard"
        self.mu = x.mean(axis=0).astype(np.float64) if std else 0.0
        self.sd = np.maximum(x.std(axis=0), 1e-12).astype(np.float64) if std else 1.0
        d, i = self._reference(self._z(x))
        c = self.m.model_.encode(x).astype(np.float64)
        self.cmu = c.mean(axis=0)
        self.prec = np.linalg.inv(np.cov(c, rowvar=False).reshape(c.shape[1], -1) + 1e-6 * np.eye(c.shape[1]))
        train = {"err": self.m.anomaly_scores(x), "nbr": self._nbr(d, i), "maha": self._maha(c)}
        self.norm = [self._robust(train[p]) for p in self.parts]
        return self

    def scores(self, x):
        d, i = self.nn.kneighbors(self._z(x))
        every = {"err": self.m.anomaly_scores(x), "nbr": self._nbr(d, i),
                 "maha": self._maha(self.m.model_.encode(x).astype(np.float64))}
        return sum(w * (every[p] - med) / iqr for w, p, (med, iqr) in zip(self.weights, self.parts, self.norm))

    def _maha(self, c):
        d = c - self.cmu
        return np.sqrt(np.einsum("ij,jk,ik->i", d, self.prec, d))


class Both(FlooredLof):
    """Candidate (2026-12-03, fourth round): the reconstruction error (weight `e`), the code's
    floored LOF among the training codes (k = 10, weight `l`) and the distance to the code's
    `kk`-th nearest training code (weight `n`), each robust-scaled on the training rows; the
    code `code(n_features)` wide (None: the default)."""

    def __init__(self, seed, e=0.5, l=1.0, n=1.0, kk=3, code=None):
        super().__init__(seed, floor=0.5, k=10)
        self.w, self.kk, self.code = (e, l, n), kk, code

    def fit(self, x):
        import hourglass

        kw = {} if self.code is None else {"code": self.code(x.shape[1])}
        self.m = hourglass.OutlierDetector(neighbours=None, random_state=self.seed, **kw).fit(x)
        d, i = self._reference(self.m.model_.encode(x).astype(np.float64), max(self.k, self.kk))
        self.norm = [self._robust(p) for p in self._parts(x, d, i)]
        return self

    def _parts(self, x, d, i):
        dk, ik = d[:, : self.k], i[:, : self.k]
        return [self.m.anomaly_scores(x), self.lrd[ik].mean(axis=1) / self._lrd(dk, ik), d[:, self.kk - 1]]

    def scores(self, x):
        d, i = self.nn.kneighbors(self.m.model_.encode(x).astype(np.float64))
        return sum(w * (p - med) / iqr for w, p, (med, iqr) in zip(self.w, self._parts(x, d, i), self.norm))


class StandardizedKnn:
    """Reference for the candidates above: the distance to the 5th nearest training row in
    the standardized input space alone (no autoencoder)."""

    def __init__(self, seed):
        self.seed = seed

    def fit(self, x):
        from sklearn.neighbors import NearestNeighbors

        self.mu, self.sd = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-12)
        self.nn = NearestNeighbors(n_neighbors=min(6, len(x))).fit((x - self.mu) / self.sd)
        return self

    def scores(self, x):
        return self.nn.kneighbors((x - self.mu) / self.sd)[0][:, -2]


def iforest(seed):
    from sklearn.ensemble import IsolationForest

    return IsolationForest(random_state=seed), lambda m, x: -m.score_samples(x)


def pyod(cls, **kw):
    def make(seed):
        import importlib

        mod, name = cls.rsplit(".", 1)
        c = getattr(importlib.import_module(mod), name)
        try:
            m = c(random_state=seed, **kw)
        except TypeError:
            m = c(**kw)
        return m, lambda m, x: m.decision_function(x)

    return make


METHODS = {
    "hourglass": hourglass_defaults,
    "hourglass-readme": hourglass_readme,
    "hourglass-denoise": hourglass_denoise,
    "hourglass-ens5": lambda seed: (Ensemble(seed), lambda m, x: m.scores(x)),
    "hourglass-std": lambda seed: (Standardized(seed), lambda m, x: m.scores(x)),
    "hourglass-codeknn": lambda seed: (CodeDistance(seed), lambda m, x: m.scores(x)),
    "hourglass-inputknn": lambda seed: (InputDistance(seed), lambda m, x: m.scores(x)),
    "hourglass-density": lambda seed: (CodeDensity(seed), lambda m, x: m.scores(x)),
    "hourglass-trim": lambda seed: (Hybrid(seed, parts=("err",)), lambda m, x: m.scores(x)),
    "hourglass-hybrid": lambda seed: (Hybrid(seed), lambda m, x: m.scores(x)),
    # Variants of the hybrid (part 2, second run): the largest scaled part instead of the sum,
    # without the reconstruction error, and the error and code parts at half weight.
    "hourglass-hybrid-max": lambda seed: (Hybrid(seed, combine="max"), lambda m, x: m.scores(x)),
    "hourglass-knnmaha": lambda seed: (Hybrid(seed, parts=("knn", "maha")), lambda m, x: m.scores(x)),
    "hourglass-knnmaha-max": lambda seed: (Hybrid(seed, parts=("knn", "maha"), combine="max"), lambda m, x: m.scores(x)),
    "hourglass-errknn-max": lambda seed: (Hybrid(seed, parts=("err", "knn"), combine="max"), lambda m, x: m.scores(x)),
    "hourglass-hybrid-w": lambda seed: (Hybrid(seed, weights=[0.5, 1.0, 0.5]), lambda m, x: m.scores(x)),
    "hourglass-auto": lambda seed: (CodeLof(seed, parts=("err",)), lambda m, x: m.scores(x)),
    "hourglass-codelof": lambda seed: (CodeLof(seed), lambda m, x: m.scores(x)),
    "hourglass-lof-only": lambda seed: (CodeLof(seed, parts=("lof",)), lambda m, x: m.scores(x)),
    "hourglass-floor0": lambda seed: (FlooredLof(seed, floor=0.0), lambda m, x: m.scores(x)),
    "hourglass-floor.1": lambda seed: (FlooredLof(seed, floor=0.1), lambda m, x: m.scores(x)),
    "hourglass-floor.5": lambda seed: (FlooredLof(seed, floor=0.5), lambda m, x: m.scores(x)),
    "hourglass-floor1": lambda seed: (FlooredLof(seed, floor=1.0), lambda m, x: m.scores(x)),
    "hourglass-floor2": lambda seed: (FlooredLof(seed, floor=2.0), lambda m, x: m.scores(x)),
    "hourglass-lofmaha": lambda seed: (LofMaha(seed), lambda m, x: m.scores(x)),
    "hourglass-lofmaha-w.5": lambda seed: (LofMaha(seed, weight=0.5), lambda m, x: m.scores(x)),
    "hourglass-lofmaha-lw": lambda seed: (LofMaha(seed, shrink=True), lambda m, x: m.scores(x)),
    "hourglass-lofmaha-trim": lambda seed: (LofMaha(seed, trim=0.1), lambda m, x: m.scores(x)),
    "hourglass-90k": lambda seed: (Budget(seed, 90_000), lambda m, x: m.scores(x)),
    "hourglass-mse": lambda seed: hourglass_with(seed, neighbours=None),
    "hourglass-before": lambda seed: hourglass_with(seed, neighbours=None, scale="standard"),
    "hourglass-reconlof": lambda seed: (Manifold(seed), lambda m, x: m.scores(x)),
    "hourglass-reconknn": lambda seed: (Manifold(seed, nbr="knn", k=5), lambda m, x: m.scores(x)),
    "hourglass-reconknn-only": lambda seed: (Manifold(seed, nbr="knn", k=5, parts=("nbr",)), lambda m, x: m.scores(x)),
    "hourglass-codelof-half": lambda seed: (Manifold(seed, space="code", code=lambda n: max(2, min(32, n // 2))), lambda m, x: m.scores(x)),
    "hourglass-reconlof-half": lambda seed: (Manifold(seed, code=lambda n: max(2, min(32, n // 2))), lambda m, x: m.scores(x)),
    "hourglass-reconknn-half": lambda seed: (Manifold(seed, nbr="knn", k=5, code=lambda n: max(2, min(32, n // 2))), lambda m, x: m.scores(x)),
    "hourglass-codeknn-half": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n // 2))), lambda m, x: m.scores(x)),
    "hourglass-codelof-3q": lambda seed: (Manifold(seed, space="code", code=lambda n: max(2, min(32, 3 * n // 4))), lambda m, x: m.scores(x)),
    "hourglass-reconknn-3q": lambda seed: (Manifold(seed, nbr="knn", k=5, code=lambda n: max(2, min(32, 3 * n // 4))), lambda m, x: m.scores(x)),
    "hourglass-codeknn-3q": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, 3 * n // 4))), lambda m, x: m.scores(x)),
    "hourglass-codelof-half4": lambda seed: (Manifold(seed, space="code", code=lambda n: max(4, min(32, n // 2))), lambda m, x: m.scores(x)),
    "hourglass-codeknn-full": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hourglass-codelof-full": lambda seed: (Manifold(seed, space="code", code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hourglass-codeknn-3q-maha": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, 3 * n // 4)), parts=("err", "nbr", "maha")), lambda m, x: m.scores(x)),
    "hourglass-codeknn-3q-nm": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, 3 * n // 4)), parts=("nbr", "maha")), lambda m, x: m.scores(x)),
    "hourglass-codeknn-3q-k10": lambda seed: (Manifold(seed, space="code", nbr="knn", k=10, code=lambda n: max(2, min(32, 3 * n // 4))), lambda m, x: m.scores(x)),
    "hourglass-full-e.5": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n)), weights=[0.5, 1.0]), lambda m, x: m.scores(x)),
    "hourglass-full-m.5": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n)), parts=("err", "nbr", "maha"), weights=[1.0, 1.0, 0.5]), lambda m, x: m.scores(x)),
    "hourglass-full-k3": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hourglass-full64": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(64, n))), lambda m, x: m.scores(x)),
    "hg-f-k3-e0.5-m0": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, n)), parts=("err", "nbr"), weights=[0.5, 1.0]), lambda m, x: m.scores(x)),
    "hg-f-k3-e0.5-m0.5": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, n)), parts=("err", "nbr", "maha"), weights=[0.5, 1.0, 0.5]), lambda m, x: m.scores(x)),
    "hg-f-k3-e0.5-m1": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, n)), parts=("err", "nbr", "maha"), weights=[0.5, 1.0, 1]), lambda m, x: m.scores(x)),
    "hg-f-k3-e0.25-m0": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, n)), parts=("err", "nbr"), weights=[0.25, 1.0]), lambda m, x: m.scores(x)),
    "hg-f-k3-e0.25-m0.5": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, n)), parts=("err", "nbr", "maha"), weights=[0.25, 1.0, 0.5]), lambda m, x: m.scores(x)),
    "hg-f-k3-e0.25-m1": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, n)), parts=("err", "nbr", "maha"), weights=[0.25, 1.0, 1]), lambda m, x: m.scores(x)),
    "hg-f-k5-e0.5-m0": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n)), parts=("err", "nbr"), weights=[0.5, 1.0]), lambda m, x: m.scores(x)),
    "hg-f-k5-e0.5-m0.5": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n)), parts=("err", "nbr", "maha"), weights=[0.5, 1.0, 0.5]), lambda m, x: m.scores(x)),
    "hg-f-k5-e0.5-m1": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n)), parts=("err", "nbr", "maha"), weights=[0.5, 1.0, 1]), lambda m, x: m.scores(x)),
    "hg-f-k5-e0.25-m0": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n)), parts=("err", "nbr"), weights=[0.25, 1.0]), lambda m, x: m.scores(x)),
    "hg-f-k5-e0.25-m0.5": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n)), parts=("err", "nbr", "maha"), weights=[0.25, 1.0, 0.5]), lambda m, x: m.scores(x)),
    "hg-f-k5-e0.25-m1": lambda seed: (Manifold(seed, space="code", nbr="knn", k=5, code=lambda n: max(2, min(32, n)), parts=("err", "nbr", "maha"), weights=[0.25, 1.0, 1]), lambda m, x: m.scores(x)),
    "hg-b-full-e.5": lambda seed: (Both(seed, e=0.5, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hg-b-full-e.25": lambda seed: (Both(seed, e=0.25, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hg-b-full-e.5-n.5": lambda seed: (Both(seed, e=0.5, n=0.5, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hg-b-full-lofonly": lambda seed: (Both(seed, e=1.0, n=0.0, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hg-b-full-e.5-l.5": lambda seed: (Both(seed, e=0.5, l=0.5, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hg-l-full-e.5": lambda seed: (Both(seed, e=0.5, n=0.0, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hg-l-full-e2": lambda seed: (Both(seed, e=2.0, n=0.0, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hg-l-full-e.25": lambda seed: (Both(seed, e=0.25, n=0.0, code=lambda n: max(2, min(32, n))), lambda m, x: m.scores(x)),
    "hourglass-quarter": lambda seed: (Both(seed, e=1.0, n=0.0, code=lambda n: max(2, min(32, n // 4))), lambda m, x: m.scores(x)),
    "hg-q-k3-e0.25": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, 3 * n // 4)), weights=[0.25, 1.0]), lambda m, x: m.scores(x)),
    "hg-q-k3-e0.5": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, 3 * n // 4)), weights=[0.5, 1.0]), lambda m, x: m.scores(x)),
    "hg-q-k3-e1.0": lambda seed: (Manifold(seed, space="code", nbr="knn", k=3, code=lambda n: max(2, min(32, 3 * n // 4)), weights=[1.0, 1.0]), lambda m, x: m.scores(x)),
    "hg-q-k10-e0.25": lambda seed: (Manifold(seed, space="code", nbr="knn", k=10, code=lambda n: max(2, min(32, 3 * n // 4)), weights=[0.25, 1.0]), lambda m, x: m.scores(x)),
    "hg-q-k10-e0.5": lambda seed: (Manifold(seed, space="code", nbr="knn", k=10, code=lambda n: max(2, min(32, 3 * n // 4)), weights=[0.5, 1.0]), lambda m, x: m.scores(x)),
    "hg-q-k10-e1.0": lambda seed: (Manifold(seed, space="code", nbr="knn", k=10, code=lambda n: max(2, min(32, 3 * n // 4)), weights=[1.0, 1.0]), lambda m, x: m.scores(x)),
    "knn-std": lambda seed: (StandardizedKnn(seed), lambda m, x: m.scores(x)),
    "iforest": iforest,
    "pca": pyod("pyod.models.pca.PCA"),
    "pyod-ae": pyod("pyod.models.auto_encoder.AutoEncoder", verbose=0),
    "lof": pyod("pyod.models.lof.LOF"),
    "knn": pyod("pyod.models.knn.KNN"),
    "ecod": pyod("pyod.models.ecod.ECOD"),
}


def custom(spec):
    """`hg:key=value;key=value`: hourglass's detector with these settings (values parsed as
    Python literals), for exploring candidate defaults from the command line."""
    import ast

    kw = {}
    for item in filter(None, spec[3:].split(";")):
        k, v = item.split("=", 1)
        try:
            kw[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            kw[k] = v

    def make(seed):
        import hourglass

        return hourglass.OutlierDetector(random_state=seed, **kw), lambda m, x: m.anomaly_scores(x)

    return make


def split(x, y, setting, seed):
    if setting == "unsup":
        return x, x, y
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(~y))
    cut = int(0.6 * len(normal))
    test = np.sort(np.concatenate([normal[cut:], np.flatnonzero(y)]))
    return x[normal[:cut]], x[test], y[test]


def one(method, x_train, x_test, y_test, seed):
    model, score = METHODS[method](seed)
    t = time.perf_counter()
    ours = method.startswith(("hourglass", "hg:", "hg-"))
    model.fit(x_train.astype(np.float32) if ours else x_train)
    s = np.asarray(score(model, x_test.astype(np.float32) if ours else x_test), np.float64)
    seconds = time.perf_counter() - t
    s = np.nan_to_num(s, nan=np.nanmax(s) if np.isfinite(s).any() else 0.0, posinf=1e300, neginf=-1e300)
    return roc_auc_score(y_test, s), average_precision_score(y_test, s), seconds


def ranks(values):
    """1 = highest; ties share the mean rank."""
    order = sorted(values, reverse=True)
    return [np.mean([i + 1 for i, v in enumerate(order) if v == x]) for x in values]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--methods", default=",".join(METHODS), help="names, or hg:key=value;… for hourglass with settings (separate methods with commas, so give one hg: spec per --methods entry without commas in values)")
    ap.add_argument("--settings", default="semi,unsup")
    ap.add_argument("--mnist", action="store_true", help="add one-class MNIST (semi-supervised; data/mnist)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../runs/anomaly"))
    a = ap.parse_args()
    methods = a.methods.split(",")
    for m in methods:
        if m.startswith("hg:"):
            METHODS[m] = custom(m)
    only = set(filter(None, a.only.split(",")))
    os.makedirs(a.out, exist_ok=True)
    results = {}
    described = []
    settings = [s_ for s_ in a.settings.split(",") if s_]
    for name, x, y, how in datasets.all_datasets() if settings else []:
        if only and name not in only:
            continue
        described.append((name, x.shape, int(y.sum()), how))
        for setting in settings:
            for method in methods:
                runs = [one(method, *split(x, y, setting, seed), seed) for seed in range(a.seeds)]
                auc, ap_, sec = (float(np.mean([r[i] for r in runs])) for i in range(3))
                results[(setting, name, method)] = (auc, ap_, sec)
                print(f"{setting:5} {name:15} {method:16} ROC-AUC {auc:.4f}  PR-AUC {ap_:.4f}  {sec:7.2f} s", file=sys.stderr, flush=True)
    for digit in range(10) if a.mnist else []:
        name, xtr, xte, yte, how = datasets.mnist_one_class(digit)
        if only and name not in only:
            continue
        described.append((name, xte.shape, int(yte.sum()), how))
        for method in methods:
            runs = [one(method, xtr, xte, yte, seed) for seed in range(a.seeds)]
            auc, ap_, sec = (float(np.mean([r[i] for r in runs])) for i in range(3))
            results[("images", name, method)] = (auc, ap_, sec)
            print(f"images {name:15} {method:16} ROC-AUC {auc:.4f}  PR-AUC {ap_:.4f}  {sec:7.2f} s", file=sys.stderr, flush=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump([{"setting": k[0], "dataset": k[1], "method": k[2], "roc_auc": v[0], "pr_auc": v[1], "seconds": v[2]}
                   for k, v in results.items()], f, indent=1)
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    simd = " ".join(sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma"))))
    import pyod
    import sklearn

    print(f"\n{time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores; scikit-learn {sklearn.__version__}, PyOD {pyod.__version__}; "
          f"{a.seeds} seeds; CPU flags: {simd}\n")
    print("| dataset | rows × features | anomalies | split |\n|---|---|---|---|")
    for name, shape, k, how in described:
        print(f"| {name} | {shape[0]} × {shape[1]} | {k} | {how} |")
    tables = [(s_, [d[0] for d in described if not d[0].startswith("mnist-")]) for s_ in settings]
    if a.mnist:
        tables.append(("images", [d[0] for d in described if d[0].startswith("mnist-")]))
    for setting, names in tables:
        if not names:
            continue
        print(f"\n**{setting}** — ROC-AUC (PR-AUC) per dataset, mean of {a.seeds} seeds\n")
        print("| dataset | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods))
        rank_sum = dict.fromkeys(methods, 0.0)
        for n in names:
            aucs = [results[(setting, n, m)][0] for m in methods]
            for m, r in zip(methods, ranks(aucs)):
                rank_sum[m] += r
            best = max(aucs)
            cells = [("**{:.3f}**" if v == best else "{:.3f}").format(v) + f" ({results[(setting, n, m)][1]:.3f})" for m, v in zip(methods, aucs)]
            print(f"| {n} | " + " | ".join(cells) + " |")
        mean = lambda m, i: np.mean([results[(setting, n, m)][i] for n in names])
        print("| **mean ROC-AUC (PR-AUC)** | " + " | ".join(f"{mean(m, 0):.3f} ({mean(m, 1):.3f})" for m in methods) + " |")
        print("| **average rank** | " + " | ".join(f"{rank_sum[m] / len(names):.2f}" for m in methods) + " |")
        print("| total seconds | " + " | ".join(f"{sum(results[(setting, n, m)][2] for n in names):.1f}" for m in methods) + " |")
        slow = [(n, results[(setting, n, "hourglass")][2] / max(results[(setting, n, "iforest")][2], 1e-9)) for n in names] if "hourglass" in methods and "iforest" in methods else []
        if slow:
            n, r = max(slow, key=lambda t: t[1])
            print(f"\nhourglass's largest time ratio to Isolation Forest ({setting}): {r:.1f}× on {n}.")


if __name__ == "__main__":
    main()

"""The suite's datasets: real tables from Debian's r-cran-mlbench (.rda files, read with the PyPI
`rdata` reader) and scikit-learn's bundled data, with ODDS's normal/anomaly splits where ODDS
defines one, and generated anomaly types after ADBench. Every split is documented here, and
each dataset is fixed (its own seed 0), so method seeds vary only the training split and the
methods' own randomness.

Each loader returns (name, X float64 [n, d], y bool [n] with True = anomaly, how it was made).
"""

import os

import numpy as np

MLBENCH = os.environ.get("MLBENCH", os.path.join(os.path.dirname(__file__), ".data/usr/lib/R/site-library/mlbench/data"))
CAP = 10_000  # rows kept of the largest tables (stratified), so every peer fits in time


def _rda(name):
    import warnings

    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return next(iter(rdata.read_rda(os.path.join(MLBENCH, name + ".rda")).values()))


def _numeric(frame):
    return np.column_stack([frame[c].astype(float).to_numpy() for c in frame.columns])


def _downsample(x, y, fraction, seed=0):
    """Keeps all normal rows and anomalies amounting to `fraction` of the normal rows."""
    rng = np.random.default_rng(seed)
    normal, anomal = np.flatnonzero(~y), np.flatnonzero(y)
    keep = rng.choice(anomal, size=max(1, min(len(anomal), round(fraction * len(normal)))), replace=False)
    idx = np.sort(np.concatenate([normal, keep]))
    return x[idx], y[idx]


def _cap(x, y, n=CAP, seed=0):
    """At most `n` rows, stratified by y."""
    if len(y) <= n:
        return x, y
    rng = np.random.default_rng(seed)
    keep = []
    for v in (False, True):
        idx = np.flatnonzero(y == v)
        keep.append(rng.choice(idx, size=round(n * len(idx) / len(y)), replace=False))
    idx = np.sort(np.concatenate(keep))
    return x[idx], y[idx]


def shuttle():
    d = _rda("Shuttle")
    d = d[d["Class"] != "High"]  # ODDS drops class 4
    x, y = _cap(_numeric(d.drop(columns="Class")), (d["Class"] != "Rad.Flow").to_numpy())
    return "shuttle", x, y, "ODDS: class 1 (Rad.Flow) normal, classes 2,3,5,6,7 anomalies, class 4 dropped; 10,000 rows kept (stratified)"


def satellite():
    d = _rda("Satellite")
    y = d["classes"].isin(["damp grey soil", "vegetation stubble", "cotton crop"]).to_numpy()
    return "satellite", _numeric(d.drop(columns="classes")), y, "ODDS: the three smallest classes are anomalies"


def glass():
    d = _rda("Glass")
    return "glass", _numeric(d.drop(columns="Type")), (d["Type"] == "6").to_numpy(), "ODDS: type 6 (tableware) anomalies"


def ionosphere():
    d = _rda("Ionosphere").drop(columns="V2")  # constant
    return "ionosphere", _numeric(d.drop(columns="Class")), (d["Class"] == "bad").to_numpy(), "ODDS: `bad` anomalies; constant V2 dropped"


def pima():
    d = _rda("PimaIndiansDiabetes")
    return "pima", _numeric(d.drop(columns="diabetes")), (d["diabetes"] == "pos").to_numpy(), "ODDS: diabetic anomalies"


def breastw():
    d = _rda("BreastCancer").dropna().drop(columns="Id")
    return "breastw", _numeric(d.drop(columns="Class")), (d["Class"] == "malignant").to_numpy(), "ODDS: malignant anomalies, rows with a missing value dropped"


def vowel():
    d = _rda("Vowel").drop(columns="V1")  # the speaker
    x, y = _downsample(_numeric(d.drop(columns="Class")), (d["Class"] == "hed").to_numpy(), 0.05)
    return "vowel", x, y, "defined: class `hed` anomalies, down-sampled to 5 % of the others; speaker column dropped"


def vehicle():
    d = _rda("Vehicle")
    x, y = _downsample(_numeric(d.drop(columns="Class")), (d["Class"] == "van").to_numpy(), 0.05)
    return "vehicle", x, y, "defined: class `van` anomalies, down-sampled to 5 % of the others"


def letter():
    d = _rda("LetterRecognition")
    x, y = _downsample(_numeric(d.drop(columns="lettr")), (d["lettr"] == "Z").to_numpy(), 0.03)
    x, y = _cap(x, y, 5000)
    return "letter", x, y, "defined: letter Z anomalies (3 % of the others), 5,000 rows kept (stratified)"


def votes():
    d = _rda("HouseVotes84")
    votes = d.drop(columns="Class")
    x = np.column_stack([votes[c].map({"y": 1.0, "n": 0.0}).astype(float).fillna(0.5).to_numpy() for c in votes.columns])
    x, y = _downsample(x, (d["Class"] == "republican").to_numpy(), 0.1)
    return "votes", x, y, "defined: republicans anomalies (10 % of democrats); y=1, n=0, missing=0.5"


def dna():
    d = _rda("DNA")
    x, y = _downsample(_numeric(d.drop(columns="Class")), (d["Class"] == "ei").to_numpy(), 0.05)
    return "dna", x, y, "defined: class `ei` anomalies (5 % of the others), 180 binary features"


def sonar():
    d = _rda("Sonar")
    x, y = _downsample(_numeric(d.drop(columns="Class")), (d["Class"] == "R").to_numpy(), 0.1)
    return "sonar", x, y, "defined: rocks anomalies (10 % of the mines)"


def wbc():
    from sklearn.datasets import load_breast_cancer

    x, t = load_breast_cancer(return_X_y=True)
    x, y = _downsample(x, t == 0, 21 / 357)
    return "wbc", x, y, "ODDS wbc-like (scikit-learn's WDBC): benign normal, 21 malignant anomalies"


def wine():
    from sklearn.datasets import load_wine

    x, t = load_wine(return_X_y=True)
    x, y = _downsample(x, t == 0, 10 / 119)
    return "wine", x, y, "ODDS: classes 2 and 3 normal, 10 rows of class 1 anomalies (scikit-learn's copy)"


def _base(seed=0, n=2000, d=10):
    """Normal rows from a 3-component Gaussian mixture with random covariances."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 3, (3, d))
    covs = []
    for _ in range(3):
        a = rng.normal(0, 1, (d, d)) / np.sqrt(d)
        covs.append(a @ a.T + 0.1 * np.eye(d))
    comp = rng.integers(0, 3, n)
    x = np.stack([rng.multivariate_normal(means[c], covs[c]) for c in comp])
    return rng, x, means, covs


def generated(kind, fraction=0.05):
    """ADBench's four anomaly types on a Gaussian-mixture table (10 features, 2,000 normal rows):
    local (the mixture with covariances scaled 5x), global (uniform over 1.1x the range),
    clustered (a tight cluster at a mean shifted 5 units), dependency (each feature drawn
    independently from its normal marginal, which breaks the correlations)."""
    rng, x, means, covs = _base()
    m = round(fraction * len(x))
    if kind == "local":
        comp = rng.integers(0, 3, m)
        a = np.stack([rng.multivariate_normal(means[c], 5 * covs[c]) for c in comp])
    elif kind == "global":
        lo, hi = x.min(0), x.max(0)
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * 1.1
        a = rng.uniform(mid - half, mid + half, (m, x.shape[1]))
    elif kind == "clustered":
        a = rng.multivariate_normal(means[0] + 5, 0.1 * covs[0], m)
    elif kind == "dependency":
        a = np.column_stack([rng.choice(x[:, j], m) for j in range(x.shape[1])])
    else:
        raise ValueError(kind)
    xs = np.concatenate([x, a])
    y = np.concatenate([np.zeros(len(x), bool), np.ones(m, bool)])
    return f"gen-{kind}", xs, y, f"generated: {kind} anomalies (5 %) on a 3-component Gaussian mixture, 10 features"


MNIST = os.path.join(os.path.dirname(__file__), "../../data/mnist")


def _idx(name):
    raw = open(os.path.join(MNIST, name), "rb").read()
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims[0], -1)


def mnist_one_class(digit):
    """One-class MNIST (the README's task): train on the training images of `digit`, score the
    10,000 test images; every other digit is an anomaly. Values in [0, 1]. Semi-supervised only:
    returns (name, train rows, test rows, test anomaly flags, how)."""
    xtr, ytr = _idx("train-images-idx3-ubyte"), _idx("train-labels-idx1-ubyte").ravel()
    xte, yte = _idx("t10k-images-idx3-ubyte"), _idx("t10k-labels-idx1-ubyte").ravel()
    return (f"mnist-{digit}", xtr[ytr == digit] / 255.0, xte / 255.0, yte != digit,
            f"one-class MNIST: train on the digit {digit}'s training images, score the test set")


REAL = [shuttle, satellite, glass, ionosphere, pima, breastw, vowel, vehicle, letter, votes, dna, sonar, wbc, wine]
GENERATED = ["local", "global", "clustered", "dependency"]


def all_datasets():
    for f in REAL:
        yield f()
    for k in GENERATED:
        yield generated(k)

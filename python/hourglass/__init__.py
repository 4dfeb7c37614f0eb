"""hourglass: train and use autoencoders on a CPU, from Python.

Estimators (scikit-learn's contract; PyOD's for ``hourglass.pyod.AutoEncoder``):

- ``AutoEncoder`` — a transformer: codes, reconstructions, ``score_samples``;
- ``OutlierDetector`` — outlier detection by reconstruction error;
- ``SeriesOutlierDetector`` — anomalies in a time series, scored per step from its windows;
- ``TextAutoEncoder`` — the sequence autoencoder of a text (characters or words);
- ``hourglass.pyod.AutoEncoder`` — a PyOD detector (needs ``pyod``);
- ``PCA`` — the exact linear baseline; ``Classifier`` — pretrain + fine-tune;
- ``hash_codes`` / ``hamming_search`` — semantic hashing;
- ``hourglass.spark.score_dataframe`` — batch scoring of a Spark DataFrame (needs ``pyspark``).

Models are the command line's ``.safetensors`` files: ``est.save(path)``, ``load(path)``.
Scores: scikit-learn's ``score_samples``/``decision_function`` are higher for more normal
rows; PyOD's ``decision_function`` and ``anomaly_scores`` are higher for more anomalous rows.
"""

from ._io import load
from ._native import FORMAT_VERSION, HourglassError, simd_level
from .autoencoder import AutoEncoder, OutlierDetector
from .classifier import Classifier
from .hashing import hamming_search, hash_codes
from .pca import PCA
from .series import SeriesOutlierDetector
from .text import TextAutoEncoder

__version__ = "0.1.0"

__all__ = [
    "AutoEncoder",
    "OutlierDetector",
    "SeriesOutlierDetector",
    "TextAutoEncoder",
    "PCA",
    "Classifier",
    "hash_codes",
    "hamming_search",
    "load",
    "HourglassError",
    "FORMAT_VERSION",
    "simd_level",
]

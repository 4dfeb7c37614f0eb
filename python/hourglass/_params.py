"""The estimators' parameters, stated once: names, defaults, meanings, and how they become the
library's settings (the same ones the command line's flags make).

scikit-learn's contract: ``__init__`` takes keyword-only parameters and stores them as they
are; everything is checked in ``fit``. ``make_init`` writes such an ``__init__`` from a list of
parameter names, so that three estimators sharing forty parameters state them once.
"""

from __future__ import annotations

import json
import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

from . import _native

# name -> (default, meaning). Order is the signature's order.
MODEL = {
    "hidden": (None, "encoder hidden widths, input side first; None: one layer of "
                     "min(256, max(4 * code, n_features // 2)) units"),
    "code": (None, "width of the code; None: max(2, min(32, 3 * n_features // 4))"),
    "decoder_hidden": (None, "decoder hidden widths, code side first; None mirrors the encoder"),
    "activation": ("relu", "hidden activation: identity, relu, leaky_relu, elu, sigmoid, tanh, gelu"),
    "code_activation": ("identity", "activation of the code layer"),
    "output_activation": (None, "activation of the output layer; None: sigmoid for loss='bce', else identity"),
    "loss": ("mse", "reconstruction loss: mse or bce"),
    "init": ("auto", "weight initialization: auto, he or xavier"),
    "tied": (False, "decoder weights are the transposes of the encoder's"),
    "arch": (None, "an architecture file (path), its TOML text, or a dict of the same keys, instead of "
                   "hidden/code/activations"),
    "l1": (0.0, "L1 penalty on the code"),
    "kl": (None, "KL sparsity (rho, beta) for a sigmoid code"),
    "topk": (None, "k-sparse code: keep the k largest code units"),
    "topk_encode": (None, "code units kept at encode time (default: topk)"),
    "topk_start": (None, "start training with this many code units ..."),
    "topk_anneal": (0, "... and lower it to topk over this many epochs"),
    "batch_topk": (False, "BatchTopK: topk is each row's budget on average over a training batch (the batch's "
                          "topk x rows largest values); inference keeps the values above a threshold "
                          "calibrated on the training rows"),
    "auxk": (None, "AuxK loss: each row's auxk largest dead code units reconstruct what the model leaves "
                   "unexplained, which revives them (a linear output right above the code, mse)"),
    "auxk_alpha": (1 / 32, "weight of the AuxK loss"),
    "auxk_window": (None, "training rows without firing after which a unit is dead; None: one epoch"),
    "code_dropout": (0.0, "dropout on the code in training"),
    "binary_code": (None, "binary code for hashing: 'noise:SIGMA' or 'ste' (sigmoid code)"),
    "decov": (0.0, "decorrelation penalty on the code (DeCov)"),
    "hidden_reg": (None, "regularizers of other layers: {layer: 'l1=...,dropout=...'}"),
    "max_norm": (None, "cap each unit's incoming weight norm after every step"),
    "unit_norm_decoder": (False, "rescale each code unit's decoder column (its dictionary atom) to unit norm "
                                 "after every step, as sparse dictionary (SAE) trainers do"),
    "tied_init": (False, "start each code unit's decoder column as its encoder row scaled to unit norm (the "
                         "tied initialization of sparse dictionary trainers), a one-layer dictionary centred "
                         "on the training rows' mean"),
    "pre_bias": (False, "a learned pre-encoder bias (one-layer dictionaries): the code is W (x - b) + c with b "
                        "the decoder's output bias, trained from both sides as sparse dictionary trainers do"),
    "vae": (None, "variational autoencoder (a Gaussian code): True, or a dict of beta (KL weight), capacity "
                  "(nats), warmup (epochs) and samples (above 1: trained on the IWAE bound with that many)"),
    "noise": (None, "input corruption (denoising), e.g. 'mask:0.25' or a list of such"),
    "image_shape": (None, "(height, width[, channels]) of flat image rows (2-D X); 3-D/4-D X carry it"),
}
TRAINING = {
    "epochs": (50, "passes over the training rows (fewer with early stopping); None: 60,000 // n_samples "
                   "within [10, 50]"),
    "batch_size": (None, "rows per mini-batch; None: n_samples // 32 within [16, 256] (small data needs "
                         "more, smaller steps)"),
    "learning_rate": (1e-3, "learning rate"),
    "optimizer": ("adam", "adam (AdamW) or sgd"),
    "momentum": (0.9, "SGD momentum"),
    "nesterov": (False, "SGD with Nesterov momentum"),
    "weight_decay": (0.0, "weight decay (decoupled for Adam)"),
    "schedule": ("constant", "learning-rate schedule: constant, step:EVERY,GAMMA, cosine[:MIN]"),
    "warmup": (0, "epochs of learning-rate warm-up"),
    "clip_norm": (None, "clip the gradient's global norm"),
    "validation_fraction": (0.1, "rows held out for validation and early stopping (0: none; "
                                 "none either below 20 rows)"),
    "patience": (10, "stop after this many epochs without a better validation loss and keep the best "
                     "weights (None: train all epochs)"),
    "binarize": (False, "dynamic binarization: each value p in [0, 1] a fresh 0/1 draw every epoch (binarized "
                        "MNIST)"),
    "scale": ("auto", "feature scaling fitted on the training rows: none, minmax, standard, or auto: none when "
                      "every training value already lies in [0, 1] (images, flags, probabilities; their rare "
                      "values are not blown up), else standard (always standard for tables with encoded "
                      "columns and for series windows)"),
    "precision": ("f32", "GEMM arithmetic in training: f32, or bf16 (AMX, or AVX512-BF16 on AMD; f32 with a warning elsewhere)"),
    "categorical": (None, "DataFrame columns to one-hot encode: names, or 'auto' for every text column"),
    "impute": (None, "fill missing numbers with the training 'mean' or 'median' (plus indicators)"),
    "max_categories": (50, "most categories kept per column"),
    "hash_buckets": (None, "hash columns with more categories than max_categories into this many features"),
    "random_state": (None, "seed (int), a RandomState, or None for a fresh seed"),
    "n_jobs": (None, "threads (None or -1: all cores); results do not depend on it"),
    "verbose": (0, "1: a progress bar per epoch (terminal or Jupyter); 2: a line per epoch"),
}
INFERENCE = {
    "inference_precision": ("f32", "arithmetic of transform, reconstruct and the scores: f32, or int8 (the weights of "
                                   "dense layers and convolutions quantized per output row or filter when first used, "
                                   "each input row with its own scale; other layers and training stay f32)"),
}
AUTOENCODER = {**MODEL, **TRAINING, **INFERENCE}
# The outlier detectors' own parameters (and their own defaults of shared ones).
DETECTOR = {
    "epochs": (None, "passes over the training rows (fewer with early stopping); None: about 60,000 rows seen, "
                     "60,000 // n_samples within [10, 50] (a 200-row table gets 50, MNIST's 6,000 images of a "
                     "digit 10)"),
    "contamination": (0.1, "expected fraction of outliers, in (0, 0.5]"),
    "neighbours": (10, "score by the reconstruction error plus how isolated the row's code is among its this many "
                       "nearest training codes (up to 10,000 training rows kept in the model), each in units of its "
                       "training spread: its distance to the farthest of them (mse+knn) where the code is at least "
                       "half the input's width (tables), its local outlier factor (mse+lof) where it compresses "
                       "more (images); None: the error alone (mse)"),
}


def inference_precision_of(value) -> str:
    """The inference precision, checked: "f32" or "int8"."""
    if value not in ("f32", "int8"):
        raise ValueError(f"inference_precision must be 'f32' or 'int8', got {value!r}")
    return value


def make_init(params: dict, extra: dict | None = None):
    """An ``__init__`` taking ``params`` (and ``extra``, whose defaults win for a name in both)
    as keyword-only arguments and storing them unchanged, as scikit-learn requires."""
    allp = {**params, **(extra or {})}
    args = ", ".join(f"{name}={default!r}" for name, (default, _) in allp.items())
    body = "\n".join(f"    self.{name} = {name}" for name in allp) or "    pass"
    ns: dict = {}
    exec(f"def __init__(self, *, {args}):\n{body}\n", ns)  # noqa: S102 - our own literal names
    init = ns["__init__"]
    init.__doc__ = "Parameters (keyword-only):\n\n" + "\n".join(
        f"{name} : default {default!r}\n    {meaning}" for name, (default, meaning) in allp.items()
    )
    return init


def positive_int(name, v, least=1) -> int:
    """An integer parameter of at least ``least``, checked (booleans are not integers here)."""
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {v!r}")
    return int(v)


def seed_of(random_state) -> int:
    """A seed for the library from scikit-learn's ``random_state``."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}")
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def threads_of(n_jobs):
    """The library's thread count from scikit-learn's ``n_jobs``."""
    if n_jobs is None or n_jobs == -1:
        return None
    if not isinstance(n_jobs, numbers.Integral) or n_jobs < 1:
        raise ValueError(f"n_jobs must be None, -1 or a positive integer, got {n_jobs!r}")
    return int(n_jobs)


def _widths(value, name):
    if value is None:
        return None
    if isinstance(value, numbers.Integral):
        value = (value,)
    try:
        widths = [int(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of positive integers, got {value!r}") from None
    if any(w < 1 for w in widths):
        raise ValueError(f"{name} must be a list of positive integers, got {value!r}")
    return widths


def _fraction(value, name, lo_open=False):
    if not isinstance(value, numbers.Real) or not (0 < value < 1 if lo_open else 0 <= value < 1):
        raise ValueError(f"{name} must be in {'(0, 1)' if lo_open else '[0, 1)'}, got {value!r}")
    return float(value)


ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu")
CHOICES = {
    "activation": ACTIVATIONS,
    "code_activation": ACTIVATIONS,
    "output_activation": (None, *ACTIVATIONS),
    "loss": ("mse", "bce"),
    "init": ("auto", "he", "xavier"),
    "optimizer": ("adam", "sgd"),
    "scale": ("auto", "none", "minmax", "standard"),
    "precision": ("f32", "bf16"),
    "impute": (None, "mean", "median"),
}


def check_choices(est):
    """A ValueError naming the parameter for a value outside its choices."""
    for name, allowed in CHOICES.items():
        if hasattr(est, name):
            v = getattr(est, name)
            if v not in allowed:
                shown = ", ".join(repr(a) for a in allowed)
                raise ValueError(f"{name} must be one of {shown}, got {v!r}")


def design(est, n_features: int) -> str:
    """The library's ``Design`` (JSON) for an estimator with these parameters."""
    check_choices(est)
    code = est.code
    if code is None and est.arch is None:
        code = _native.detector_defaults(0, n_features)["code"]
    if code is not None and (not isinstance(code, numbers.Integral) or code < 1):
        raise ValueError(f"code must be a positive integer, got {code!r}")
    hidden = _widths(est.hidden, "hidden")
    if hidden is None and est.arch is None:
        hidden = [_native.detector_defaults(0, n_features, int(code))["hidden"]]
    output = est.output_activation or ("sigmoid" if est.loss == "bce" else "identity")
    code_reg = []
    if est.l1:
        code_reg.append(f"l1={float(est.l1)}")
    if est.kl is not None:
        rho, beta = est.kl
        code_reg.append(f"kl={float(rho)}/{float(beta)}")
    if est.topk is not None:
        key = "batchtopk" if getattr(est, "batch_topk", False) else "topk"
        code_reg.append(f"{key}={int(est.topk)}")
    elif getattr(est, "batch_topk", False):
        raise ValueError("batch_topk needs topk (the rows' average budget of code units)")
    if est.topk_encode is not None:
        code_reg.append(f"topk-encode={int(est.topk_encode)}")
    if est.topk_start is not None:
        code_reg.append(f"topk-start={int(est.topk_start)}")
    if est.topk_anneal:
        code_reg.append(f"topk-anneal={int(est.topk_anneal)}")
    if est.code_dropout:
        code_reg.append(f"dropout={float(est.code_dropout)}")
    if est.binary_code is not None:
        code_reg.append(f"binary={est.binary_code}")
    if est.decov:
        code_reg.append(f"decov={float(est.decov)}")
    if getattr(est, "auxk", None) is not None:
        code_reg.append(f"auxk={int(est.auxk)}")
        code_reg.append(f"auxk-alpha={float(est.auxk_alpha)}")
        if est.auxk_window is not None:
            code_reg.append(f"auxk-window={int(est.auxk_window)}")
    hidden_reg = []
    for layer, spec in (est.hidden_reg or {}).items():
        hidden_reg.append([int(layer), [s for s in str(spec).split(",") if s]])
    arch = None
    if isinstance(est.arch, dict):
        arch = {"table": est.arch}
    elif est.arch is not None:
        text = str(est.arch)
        arch = {"text": text} if ("\n" in text or "[[" in text) else {"file": text}
    d = {
        "hidden": hidden or [],
        "code": None if code is None else int(code),
        "decoder_hidden": _widths(est.decoder_hidden, "decoder_hidden"),
        "activation": est.activation,
        "code_activation": est.code_activation,
        "output_activation": output,
        "loss": est.loss,
        "init": est.init,
        "tied": bool(est.tied),
        "arch": arch,
        "code_reg": code_reg,
        "hidden_reg": hidden_reg,
        "vae": _vae(getattr(est, "vae", None)),
    }
    return json.dumps(d)


def _vae(value):
    """The design's ``vae`` from the estimator's: None/False, True, or a dict."""
    if value is None or value is False:
        return None
    if value is True:
        return {"beta": 1.0, "capacity": 0.0, "warmup": 0}
    if isinstance(value, dict):
        unknown = set(value) - {"beta", "capacity", "warmup", "samples"}
        if unknown:
            raise ValueError(f"vae: unknown keys {sorted(unknown)}; expected beta, capacity, warmup, samples")
        return {
            "beta": float(value.get("beta", 1.0)),
            "capacity": float(value.get("capacity", 0.0)),
            "warmup": int(value.get("warmup", 0)),
            "samples": int(value.get("samples", 1)),
        }
    raise ValueError(f"vae must be None, True or a dict of beta, capacity, warmup, samples; got {value!r}")


def resolve_scale(scale: str, data, windows: bool = False) -> str:
    """The scaling ``scale="auto"`` stands for on this training data (the model stores the
    resolved one): none when every value of a numeric array lies in [0, 1] already, else
    standard; tables with encoded columns and series windows are always standardized."""
    if scale != "auto":
        return scale
    if windows or not isinstance(data, np.ndarray) or data.size == 0:
        return "standard"
    return "none" if float(data.min()) >= 0.0 and float(data.max()) <= 1.0 else "standard"


def training(est, n_samples: int, seed: int, freeze_epochs: int = 0, scale: str | None = None) -> str:
    """The training settings (JSON) for an estimator with these parameters, on ``n_samples``."""
    sized = _native.detector_defaults(n_samples, 1)
    batch = sized["batch_size"] if est.batch_size is None else est.batch_size
    epochs = sized["epochs"] if est.epochs is None else est.epochs
    for name, v in (("epochs", epochs), ("batch_size", batch), ("warmup", est.warmup), ("max_categories", getattr(est, "max_categories", 1))):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < (0 if name == "warmup" else 1):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    lr = est.learning_rate
    if not isinstance(lr, numbers.Real) or not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"learning_rate must be positive, got {lr!r}")
    valid = _fraction(est.validation_fraction, "validation_fraction")
    patience = est.patience
    if valid > 0 and (n_samples < 20 or round(n_samples * valid) < 1):
        valid = 0.0
    if valid == 0:
        patience = None
    if patience is not None and (not isinstance(patience, numbers.Integral) or patience < 1):
        raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
    noise = est.noise
    if noise is None:
        noise = []
    elif isinstance(noise, str):
        noise = [noise]
    t = {
        "epochs": int(epochs),
        "batch_size": int(batch),
        "lr": float(lr),
        "optimizer": est.optimizer,
        "momentum": float(est.momentum),
        "nesterov": bool(est.nesterov),
        "weight_decay": float(est.weight_decay),
        "schedule": est.schedule,
        "warmup": int(est.warmup),
        "clip_norm": None if est.clip_norm is None else float(est.clip_norm),
        "valid_fraction": valid,
        "patience": None if patience is None else int(patience),
        "seed": seed,
        "scale": est.scale if scale is None else scale,
        "precision": est.precision,
        "noise": [str(n) for n in noise],
        "max_norm": None if est.max_norm is None else float(est.max_norm),
        "freeze_epochs": int(freeze_epochs),
        "binarize": bool(getattr(est, "binarize", False)),
        "unit_norm_decoder": bool(getattr(est, "unit_norm_decoder", False)),
        "tied_init": bool(getattr(est, "tied_init", False)),
        "pre_bias": bool(getattr(est, "pre_bias", False)),
    }
    return json.dumps(t)


def table_settings(est) -> dict:
    """The table settings for the native module."""
    cat = est.categorical
    if isinstance(cat, str):
        cat = [cat]
    return {
        "categorical": None if cat is None else [str(c) for c in cat],
        "impute": est.impute,
        "max_categories": int(est.max_categories),
        "hash_buckets": None if est.hash_buckets is None else int(est.hash_buckets),
    }


def as_float_array(x) -> np.ndarray:
    """A float32 C-contiguous array of ``x`` (no copy when it is one already)."""
    return np.ascontiguousarray(x, dtype=np.float32)

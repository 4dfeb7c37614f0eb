"""hourglass from Python: overhead against the command line, and against PyOD's AutoEncoder on
MNIST one-class (train on one digit's training images, score the 10,000 test images; ROC-AUC of
"other digit"). Prints markdown tables for BENCHMARKS.md."""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
mnist = os.path.join(root, "data/mnist")
cli = os.path.join(root, "target/release/hourglass")
threads = int(os.environ.get("THREADS", "2"))
rounds = int(os.environ.get("ROUNDS", "3"))
epochs = int(os.environ.get("EPOCHS", "10"))
parts = sys.argv[1:] or ["overhead", "oneclass"]


def idx(name):
    raw = open(os.path.join(mnist, name), "rb").read()
    if name.endswith("idx1-ubyte"):
        return np.frombuffer(raw, dtype=np.uint8, offset=8)
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0


x_train, y_train = idx("train-images-idx3-ubyte"), idx("train-labels-idx1-ubyte")
x_test, y_test = idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte")

import hourglass  # noqa: E402

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
simd = " ".join(sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma"))))
print(f"{time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores, {threads} threads; hourglass SIMD level "
      f"{hourglass.simd_level()}; CPU flags: {simd}\n")


def overhead():
    """fit and score_samples from Python against the CLI's train and score, same settings."""
    settings = dict(hidden=[256], code=64, activation="relu", code_activation="identity", output_activation="identity",
                    epochs=3, batch_size=256, validation_fraction=0.0, scale="none", random_state=1, n_jobs=threads)
    res = {k: [] for k in ("cli_fit", "py_fit", "cli_fit_train", "py_fit_train", "cli_score", "py_score")}
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "m.safetensors")
        for r in range(rounds):
            for side in (("cli", "py") if r % 2 == 0 else ("py", "cli")):
                if side == "cli":
                    t = time.perf_counter()
                    subprocess.run([cli, "--threads", str(threads), "train", os.path.join(mnist, "train-images-idx3-ubyte"),
                                    "--hidden", "256", "--code", "64", "--output-activation", "identity", "--epochs", "3",
                                    "--batch-size", "256", "--seed", "1", "-q", "-o", model], check=True, capture_output=True)
                    res["cli_fit"].append(time.perf_counter() - t)
                    info = json.loads(subprocess.run([cli, "inspect", model, "--json"], check=True, capture_output=True).stdout)
                    res["cli_fit_train"].append(info["provenance"]["report"]["seconds"])
                    t = time.perf_counter()
                    subprocess.run([cli, "--threads", str(threads), "score", model, os.path.join(mnist, "t10k-images-idx3-ubyte"),
                                    "-o", os.path.join(d, "s.npy")], check=True, capture_output=True)
                    res["cli_score"].append(time.perf_counter() - t)
                else:
                    t = time.perf_counter()
                    ae = hourglass.AutoEncoder(**settings).fit(x_train)
                    res["py_fit"].append(time.perf_counter() - t)
                    res["py_fit_train"].append(sum(h["seconds"] for h in ae.history_))
                    t = time.perf_counter()
                    ae.score_samples(x_test)
                    res["py_score"].append(time.perf_counter() - t)
    b = {k: min(v) for k, v in res.items()}
    print(f"### Python against the CLI (MNIST, 784-256-64, 3 epochs, batch 256; best of {rounds} alternating rounds)\n")
    print("| task | CLI (s) | Python (s) | Python / CLI |")
    print("|---|---|---|---|")
    print(f"| fit, whole call (CLI: a process reading the IDX file and writing the model) | {b['cli_fit']:.3f} | {b['py_fit']:.3f} | {b['py_fit'] / b['cli_fit']:.3f} |")
    print(f"| fit, the training epochs alone (the report's seconds) | {b['cli_fit_train']:.3f} | {b['py_fit_train']:.3f} | {b['py_fit_train'] / b['cli_fit_train']:.3f} |")
    print(f"| scores of the 10,000 test images (CLI: a process reading and writing files) | {b['cli_score']:.3f} | {b['py_score']:.3f} | {b['py_score'] / b['cli_score']:.3f} |")
    print()


def oneclass():
    """MNIST one-class: hourglass and PyOD's AutoEncoder, same architecture and epochs, and
    both with their defaults."""
    import torch
    from pyod.models.auto_encoder import AutoEncoder as PyodAE
    from sklearn.metrics import roc_auc_score

    torch.set_num_threads(threads)
    same = dict(hidden=[128], code=32, activation="relu", code_activation="relu", output_activation="identity",
                epochs=epochs, batch_size=32, learning_rate=1e-3, scale="standard", validation_fraction=0.0,
                patience=None, random_state=0, n_jobs=threads)
    runs = {
        "hourglass, PyOD's architecture": lambda: hourglass.OutlierDetector(**same),
        "PyOD AutoEncoder, same architecture": lambda: PyodAE(hidden_neuron_list=[128, 32], epoch_num=epochs, batch_size=32,
                                                              lr=1e-3, dropout_rate=0.0, batch_norm=False, verbose=0,
                                                              random_state=0),
        "hourglass OutlierDetector, defaults": lambda: hourglass.OutlierDetector(random_state=0, n_jobs=threads),
        "PyOD AutoEncoder, defaults": lambda: PyodAE(verbose=0, random_state=0),
    }
    aucs = {k: [] for k in runs}
    times = {k: [] for k in runs}
    for digit in range(10):
        train = x_train[y_train == digit]
        anomalous = y_test != digit
        for name, make in runs.items():
            est = make()
            t = time.perf_counter()
            est.fit(train)
            times[name].append(time.perf_counter() - t)
            scores = est.decision_function(x_test)
            if isinstance(est, hourglass.OutlierDetector):
                scores = -scores  # scikit-learn's sign: higher = normal
            aucs[name].append(100 * roc_auc_score(anomalous, scores))
        print(f"digit {digit}: " + ", ".join(f"{k} {aucs[k][-1]:.2f} ({times[k][-1]:.1f} s)" for k in runs), file=sys.stderr)
    print(f"### MNIST one-class: hourglass against PyOD's AutoEncoder ({epochs} epochs where set; ROC-AUC x 100)\n")
    print("| model | " + " | ".join(str(d) for d in range(10)) + " | mean AUC | fit time, total (s) |")
    print("|---|" + "---|" * 12)
    for name in runs:
        print(f"| {name} | " + " | ".join(f"{a:.2f}" for a in aucs[name]) + f" | **{np.mean(aucs[name]):.2f}** | {sum(times[name]):.1f} |")
    same_ratio = sum(times["PyOD AutoEncoder, same architecture"]) / sum(times["hourglass, PyOD's architecture"])
    print(f"\nFit time, PyOD / hourglass with the same architecture and epochs: **{same_ratio:.1f}×**.")
    print()


for part in parts:
    {"overhead": overhead, "oneclass": oneclass}[part]()

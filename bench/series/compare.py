"""Sequence (window) autoencoders against PCA and Isolation Forest on windows, same run.

The series are the ones the `aeon` wheel really ships with labels:
  * KDD-TSAD 135 (UCR anomaly archive, InternalBleeding16): one channel, 7,501 steps; its
    first 1,200 steps are the archive's normal training prefix (semi-supervised setting:
    fit on the prefix, score the whole series).
The wheel's other multichannel series, Daphnet S06R02E0, holds no labelled anomaly (aeon 1.6
deprecates it for that reason), so it cannot measure a detector and is left out.

Every method sees the same windows (stride 1 to score) and turns window scores into step
scores the same way hourglass does: the mean over the windows that contain the step.
Metrics on the step scores, without point adjustment: VUS-PR (Paparrizos et al. 2022, aeon's
implementation), range-based F1 at the true number of anomaly ranges (aeon's
`f_score_at_k_ranges`), point ROC-AUC and PR-AUC.

Generated series (--generated): the anomaly types of Lai et al. 2021 on a two-channel
periodic series (see `generated`), to see where each method breaks.

Usage: python compare.py HOURGLASS_BINARY [--quick] [--generated]
       python compare.py HOURGLASS_BINARY --picture OUT.png   (the figure in BENCHMARKS.md)
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from aeon.benchmarking.metrics.anomaly_detection import f_score_at_k_ranges, range_pr_vus_score
from aeon.datasets import load_kdd_tsad_135
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score


def windows(x, w, stride=1):
    """(T, C) -> (n, C*w), channel-major like hourglass."""
    t, c = x.shape
    starts = np.arange(0, t - w + 1, stride)
    idx = starts[:, None] + np.arange(w)[None, :]
    return x[idx].transpose(0, 2, 1).reshape(len(starts), c * w)


def spread(win_scores, t, w):
    """Per-step mean of the scores of the windows containing each step."""
    s = np.zeros(t)
    n = np.zeros(t)
    for i, v in enumerate(win_scores):
        s[i : i + w] += v
        n[i : i + w] += 1
    return s / n


def metrics(y, s):
    return {
        "vus_pr": float(range_pr_vus_score(y, s)),
        "range_f1": float(f_score_at_k_ranges(y, s)),
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
    }


def standardize(fit, *xs):
    mu, sd = fit.mean(0), fit.std(0)
    sd[sd == 0] = 1
    return [(x - mu) / sd for x in xs]


def pca_scores(train, test, w):
    a, b = standardize(train, train, test)
    wa, wb = windows(a, w), windows(b, w)
    p = PCA(n_components=0.9, svd_solver="full").fit(wa)
    rec = p.inverse_transform(p.transform(wb))
    return spread(((wb - rec) ** 2).mean(1), len(test), w), p.n_components_


def iforest_scores(train, test, w, seed):
    a, b = standardize(train, train, test)
    f = IsolationForest(random_state=seed).fit(windows(a, w))
    return spread(-f.score_samples(windows(b, w)), len(test), w)


def hourglass_scores(binary, train, test, w, args, seed, tmp):
    tr, te, m, out = (os.path.join(tmp, n) for n in ("train.csv", "test.csv", "m.hg", "s.csv"))
    head = ",".join(f"c{i}" for i in range(train.shape[1]))
    np.savetxt(tr, train, delimiter=",", header=head, comments="", fmt="%.6g")
    np.savetxt(te, test, delimiter=",", header=head, comments="", fmt="%.6g")
    cmd = [binary, "train", tr, "--window", str(w), "--seed", str(seed), "-o", m, "--quiet", *args]
    subprocess.run(cmd, check=True, capture_output=True)
    subprocess.run([binary, "score", m, te, "-o", out], check=True, capture_output=True)
    return np.loadtxt(out, delimiter=",", skiprows=1)


def generated(kind, seed):
    """A two-channel series (periods 50 and 13, correlated channels, small noise): 2,000 normal
    steps to fit on, then 6,000 test steps holding five anomalies of one `kind`, after Lai et
    al. (NeurIPS 2021 datasets track): point `global` spikes; `contextual` values inside the
    normal range but out of phase; `shapelet` cycles replaced by a triangle wave; `seasonal`
    cycles at another frequency; `trend` a drift added over the stretch; and `noise` bursts."""
    rng = np.random.default_rng(seed)
    n_train, n_test = 2000, 6000
    t = np.arange(n_train + n_test)
    base = np.sin(2 * np.pi * t / 50) + 0.4 * np.sin(2 * np.pi * t / 13)
    x = np.stack([base, 0.6 * base + 0.5 * np.cos(2 * np.pi * t / 50)], 1)
    x += 0.05 * rng.standard_normal(x.shape)
    y = np.zeros(len(t), int)
    starts = n_train + np.sort(rng.choice(np.arange(200, n_test - 200, 400), 5, replace=False))
    for a in starts:
        if kind == "global":
            n = 1 + rng.integers(3)
            x[a : a + n] += rng.choice([-1, 1]) * (2.5 + rng.random())
        elif kind == "contextual":
            n = 10
            x[a : a + n] = x[a - 25 : a - 25 + n]  # half a period late
        else:
            n = 60 + rng.integers(40)
            tt = np.arange(n)
            if kind == "shapelet":
                tri = 2 * np.abs(2 * ((tt / 50) % 1) - 1) - 1
                x[a : a + n, 0] = tri + 0.05 * rng.standard_normal(n)
            elif kind == "seasonal":
                f = 2 * np.pi * tt / 25
                x[a : a + n, 0] = np.sin(f) + 0.4 * np.sin(2 * np.pi * tt / 13)
                x[a : a + n, 1] = 0.6 * x[a : a + n, 0] + 0.5 * np.cos(f)
            elif kind == "trend":
                x[a : a + n] += np.linspace(0, 1.5, n)[:, None]
            elif kind == "noise":
                x[a : a + n] += 0.5 * rng.standard_normal((n, 2))
        y[a : a + n] = 1
    return x[:n_train], x[n_train:], y[n_train:]


def conv1d_arch(tmp, w, c):
    """examples/series-conv1d.toml sized for windows of `w` steps of `c` channels: two
    stride-2 1-D convolutions (16, 32 filters, kernel 5), a code of 8, and back."""
    path = os.path.join(tmp, f"conv1d-{w}-{c}.toml")
    q = w // 4
    layer = lambda kind, f, extra="": f'[[{kind}]]\ntype = "{"conv1d" if kind == "encoder" else "conv_transpose1d"}"\nfilters = {f}\nkernel = 5\nstride = 2\npadding = 2\n{extra}\n'
    text = (
        'activation = "relu"\noutput_activation = "identity"\nloss = "mse"\n\n'
        + layer("encoder", 16)
        + layer("encoder", 32)
        + '[[encoder]]\ntype = "flatten"\n\n[[encoder]]\ntype = "dense"\nunits = 8\nactivation = "identity"\n\n'
        + f'[[decoder]]\ntype = "dense"\nunits = {32 * q}\n\n[[decoder]]\ntype = "reshape"\nshape = [32, 1, {q}]\n\n'
        + layer("decoder", 16, "output_padding = 1")
        + layer("decoder", c, "output_padding = 1")
    )
    with open(path, "w") as f:
        f.write(text)
    return path


def lstm_arch(tmp, w, c):
    """examples/series-lstm.toml sized for windows of `w` steps of `c` channels: an LSTM of 32
    units reads each window into its last state, a code of 8, repeated at every step of a
    decoder LSTM of 32 units, and a 1-D convolution of width 1 back to the channels."""
    path = os.path.join(tmp, f"lstm-{w}-{c}.toml")
    text = (
        'output_activation = "identity"\nloss = "mse"\n\n'
        '[[encoder]]\ntype = "lstm"\nunits = 32\n\n'
        '[[encoder]]\ntype = "dense"\nunits = 8\nactivation = "identity"\n\n'
        f'[[decoder]]\ntype = "repeat"\nsteps = {w}\n\n'
        '[[decoder]]\ntype = "lstm"\nunits = 32\nreturn_sequences = true\n\n'
        f'[[decoder]]\ntype = "conv1d"\nfilters = {c}\nkernel = 1\n'
    )
    with open(path, "w") as f:
        f.write(text)
    return path


def series():
    x, y = load_kdd_tsad_135(split="test")
    x = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
    yield "KDD-TSAD 135 (UCR InternalBleeding16)", "semi-supervised", x[:1200], x, np.asarray(y, int)
    if "--generated" in sys.argv:
        for kind in ["global", "contextual", "shapelet", "seasonal", "trend", "noise"]:
            train, test, y = generated(kind, 0)
            yield f"generated: {kind}", "semi-supervised", train, test, y


def picture(path, binary, tmp, w=128):
    """A PNG of the UCR series (its steps, the labelled anomaly shaded) over the step scores of
    hourglass (32-4, defaults otherwise), PCA and Isolation Forest on windows of `w` steps;
    each panel scaled to its own range, one pixel column per 1/900 of the series (its min to
    max)."""
    from PIL import Image, ImageDraw

    name, _, train, test, y = next(series())
    panels = [
        ("the series (test split, the labelled anomaly shaded)", test[:, 0]),
        ("hourglass --window %d --hidden 32 --code 4: step scores" % w,
         hourglass_scores(binary, train, test, w, ["--hidden", "32", "--code", "4"], 0, tmp)),
        ("PCA on windows (90 % of the variance): step scores", pca_scores(train, test, w)[0]),
        ("Isolation Forest on windows: step scores", iforest_scores(train, test, w, 0)),
    ]
    width, height, top_pad = 900, 120, 18
    img = Image.new("RGB", (width, height * len(panels) + 20), "white")
    d = ImageDraw.Draw(img)
    n = len(test)
    col = lambda i: int(i * (width - 1) / (n - 1))
    a, b = np.flatnonzero(y)[[0, -1]]
    for k, (title, v) in enumerate(panels):
        top = k * height
        d.rectangle([col(a) - 1, top + top_pad, col(b) + 1, top + height - 6], fill=(244, 166, 166))
        d.text((4, top + 3), title, fill="black")
        lo, hi = float(np.min(v)), float(np.max(v))
        yy = lambda u: top + top_pad + (1 - (u - lo) / (hi - lo or 1)) * (height - top_pad - 8)
        edges = np.linspace(0, n, width + 1).astype(int)
        prev = None
        for x in range(width):
            seg = v[edges[x] : max(edges[x + 1], edges[x] + 1)]
            y0, y1 = yy(seg.max()), yy(seg.min())
            if prev is not None:
                y0, y1 = min(y0, prev[1]), max(y1, prev[0])
            d.line([(x, y0), (x, y1)], fill=(31, 78, 140))
            prev = (yy(seg.max()), yy(seg.min()))
    d.text((4, height * len(panels) + 4), f"{name}: {n} steps; the anomaly is steps {a}-{b}", fill="black")
    img.save(path)


def main():
    binary = sys.argv[1]
    if "--picture" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            picture(sys.argv[sys.argv.index("--picture") + 1], binary, tmp)
        return
    quick = "--quick" in sys.argv
    seeds = [0] if quick else [0, 1, 2]
    recipes = {
        # Defaults otherwise: standard scaling, identity output, >= 1,000 optimizer steps.
        "hourglass 32-4": ["--hidden", "32", "--code", "4"],
        "hourglass 64-8": ["--hidden", "64", "--code", "8"],
        "hourglass conv1d 16-32-8": conv1d_arch,  # an architecture file per window
        "hourglass LSTM 32-8-32": lstm_arch,
        # The defaults before this benchmark (sigmoid output, 10 epochs), for the record.
        "hourglass 32-4, old defaults": ["--hidden", "32", "--code", "4", "--output-activation", "sigmoid",
                                         "--epochs", "10"],
    }
    # --only TEXT: the hourglass recipes whose name contains TEXT (the peers always run).
    if "--only" in sys.argv:
        only = sys.argv[sys.argv.index("--only") + 1]
        recipes = {r: a for r, a in recipes.items() if only in r}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, setting, train, test, y in series():
            # --window W: only windows of W steps.
            for w in [int(sys.argv[sys.argv.index("--window") + 1])] if "--window" in sys.argv else [32, 64, 128]:
                row = {"series": name, "setting": setting, "window": w, "steps": len(test),
                       "channels": test.shape[1], "anomalous_steps": int(y.sum())}
                t0 = time.perf_counter()
                s, k = pca_scores(train, test, w)
                row["PCA (90 %% var, %d comps)" % k] = dict(metrics(y, s), seconds=time.perf_counter() - t0)
                for label, fn in [("Isolation Forest", lambda sd: iforest_scores(train, test, w, sd))] + [
                    (r, lambda sd, a=a: hourglass_scores(
                        binary, train, test, w, a if isinstance(a, list) else ["--arch", a(tmp, w, test.shape[1])], sd, tmp))
                    for r, a in recipes.items()
                ]:
                    ms, secs = [], []
                    for sd in seeds:
                        t0 = time.perf_counter()
                        s = fn(sd)
                        secs.append(time.perf_counter() - t0)
                        ms.append(metrics(y, s))
                    row[label] = {k2: float(np.mean([m[k2] for m in ms])) for k2 in ms[0]}
                    row[label]["seconds"] = float(np.mean(secs))
                results.append(row)
                print(json.dumps(row), flush=True)
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()

"""The classic sequence-autoencoder demonstration, on characters: a recurrent autoencoder reads
windows of a text one character at a time into a code, and a decoder writes the window back.

The text becomes a one-column table of tokens (one character per row, in order); the command
line one-hot encodes it (`--categorical token`: the vocabulary is stored in the model) and cuts
it into windows (`--window N`), so each window is N steps of V channels. The model is an LSTM
encoder, a code, a `repeat` layer and an LSTM decoder with a width-1 `conv1d` back to the V
channels and a `softmax` layer over them at each step, trained with the categorical
cross-entropy (`loss = "ce"`; `--loss bce`: sigmoid outputs and binary cross-entropy on the
one-hot values, the first recipe, which writes spaces everywhere). Reported:
the share of characters whose most probable reconstruction is the character itself (each step
of each window, the last quarter of the text held out), and a few windows written back.

    bench/.venv/bin/python bench/series/tokens.py target/release/hourglass [TEXT] [--window N] [--code K] [--units U]
        [--epochs E] [--lr LR] [--chars N] [--loss ce|bce]

TEXT defaults to the README. Characters are lower-cased; newlines become spaces.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def arch(window, code, vocab, units, loss):
    head = {"ce": 'loss = "ce"\n', "bce": 'loss = "bce"\noutput_activation = "sigmoid"\n'}[loss]
    tail = '[[decoder]]\ntype = "softmax"\n' if loss == "ce" else ""
    return head + f"""
[[encoder]]
type = "lstm"
units = {units}
[[encoder]]
type = "dense"
units = {code}
activation = "tanh"
[[decoder]]
type = "repeat"
steps = {window}
[[decoder]]
type = "lstm"
units = {units}
return_sequences = true
[[decoder]]
type = "conv1d"
filters = {vocab}
kernel = 1
""" + tail


def token_name(ch):
    return {" ": "<space>", ",": "<comma>", '"': "<quote>"}.get(ch, ch)


def write_tokens(path, text):
    with open(path, "w") as f:
        f.write("token\n")
        for ch in text:
            f.write(token_name(ch) + "\n")


def main():
    binary = sys.argv[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    values = {i + 1 for i, a in enumerate(sys.argv) if a.startswith("--")}
    positional = [a for i, a in enumerate(sys.argv) if i >= 2 and i not in values and not a.startswith("--")]
    source = positional[0] if positional else os.path.join(root, "README.md")
    window, code, epochs, units = arg("--window", 16), arg("--code", 32), arg("--epochs", 0), arg("--units", 64)
    loss = sys.argv[sys.argv.index("--loss") + 1] if "--loss" in sys.argv else "ce"
    text = re.sub(r"\s+", " ", open(source, encoding="utf-8").read().lower())
    text = "".join(ch for ch in text if ch.isascii() and ch.isprintable())[: arg("--chars", 6000)]
    cut = len(text) * 3 // 4
    train, test = text[:cut], text[cut:]
    flags = sorted(set(re.findall(r"\b(avx2|fma|avx512f|avx512_bf16|avx512_vnni|amx_tile)\b", open("/proc/cpuinfo").read())))
    print(f"cpu flags: {' '.join(flags)}")
    print(f"text: {source}, {len(train)} characters to train on, {len(test)} held out; windows of {window}, code {code}, loss {loss}")
    with tempfile.TemporaryDirectory() as tmp:
        tr, te, a, m, rec = (os.path.join(tmp, n) for n in ("train.csv", "test.csv", "a.toml", "m.hg", "rec.npy"))
        write_tokens(tr, train)
        write_tokens(te, test)
        # The vocabulary: every character of the training text, and `token=<other>` for those
        # it never saw.
        vocab = len(set(train)) + 1
        with open(a, "w") as f:
            f.write(arch(window, code, vocab, units, loss))
        cmd = [binary, "train", tr, "--categorical", "token", "--max-categories", "1000", "--window", str(window), "--scale", "none",
               "--arch", a, "--seed", "0", "-o", m]
        if epochs:
            cmd += ["--epochs", str(epochs)]
        if "--lr" in sys.argv:
            cmd += ["--lr", sys.argv[sys.argv.index("--lr") + 1]]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr)
        print([l for l in (out.stdout + out.stderr).splitlines() if l.startswith("trained")][-1])
        inspect = subprocess.run([binary, "inspect", m, "--json"], capture_output=True, text=True, check=True).stdout
        for split, path, chars in [("train", tr, train), ("held out", te, test)]:
            subprocess.run([binary, "reconstruct", m, path, "-o", rec], check=True, capture_output=True)
            r = np.load(rec)  # windows x (channels * window), channel-major
            channels = r.shape[1] // window
            names = [n.rsplit("@", 1)[0].split("=", 1)[1] for n in json.loads(inspect)["provenance"]["feature_names"][::window]]
            r = r.reshape(len(r), channels, window)
            best = r.argmax(axis=1)  # windows x steps: the most probable token at each step
            decoded = [[names[j] for j in row] for row in best]
            truth = [[token_name(c) for c in chars[i : i + window]] for i in range(len(r))]
            hits = sum(d == t for dr, tr_ in zip(decoded, truth) for d, t in zip(dr, tr_))
            print(f"{split}: {100 * hits / (len(r) * window):.1f} % of characters reconstructed ({len(r)} windows)")
            for i in range(0, len(r), max(1, len(r) // 4))[:4]:
                show = lambda toks: "".join({"<space>": " ", "<comma>": ",", "<quote>": '"'}.get(t, t if len(t) == 1 else "?") for t in toks)
                print(f"   in: {show(truth[i])!r}\n  out: {show(decoded[i])!r}")


if __name__ == "__main__":
    main()

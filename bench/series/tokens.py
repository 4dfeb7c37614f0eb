"""The classic sequence-autoencoder demonstration, on characters: a recurrent autoencoder reads
windows of a text one character at a time into a code, and a decoder writes the window back.

The command line reads the text as characters (`--text chars`: a one-hot column over the
vocabulary, stored in the model) and cuts it into windows (`--window N`), so each window is N
steps of V channels. The model is an LSTM
encoder, a code, a `repeat` layer and an LSTM decoder with a width-1 `conv1d` back to the V
channels and a `softmax` layer over them at each step, trained with the categorical
cross-entropy (`loss = "ce"`; `--loss bce`: sigmoid outputs and binary cross-entropy on the
one-hot values, the first recipe, which writes spaces everywhere). Reported:
the share of characters whose most probable reconstruction is the character itself (`eval`:
each step of each window, the last quarter of the text held out), and a few windows written
back (`reconstruct`).

    bench/.venv/bin/python bench/series/tokens.py target/release/hourglass [TEXT] [--window N] [--code K] [--units U]
        [--epochs E] [--lr LR] [--batch-size B] [--chars N] [--loss ce|bce]

TEXT defaults to the README. Characters are lower-cased; newlines become spaces.
"""

import csv
import json
import os
import re
import subprocess
import sys
import tempfile



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
        tr, te, a, m, rec = (os.path.join(tmp, n) for n in ("train.txt", "test.txt", "a.toml", "m.hg", "rec.csv"))
        for path, chars in [(tr, train), (te, test)]:
            with open(path, "w") as f:
                f.write(chars)
        # `--text chars`: the vocabulary is every character of the training text (up to 1,000),
        # and `token=<other>` for those it never saw. Without --arch the command line builds
        # the LSTM sequence autoencoder with a softmax and loss ce; --loss bce gives it the
        # sigmoid outputs and the binary cross-entropy through an architecture file.
        cmd = [binary, "train", tr, "--text", "chars", "--max-categories", "1000", "--window", str(window), "--seed", "0", "-o", m]
        if loss == "ce":
            cmd += ["--hidden", str(units), "--code", str(code)]
        else:
            with open(a, "w") as f:
                f.write(arch(window, code, len(set(train)) + 1, units, loss))
            cmd += ["--arch", a]
        if epochs:
            cmd += ["--epochs", str(epochs)]
        for flag in ("--lr", "--batch-size"):
            if flag in sys.argv:
                cmd += [flag, sys.argv[sys.argv.index(flag) + 1]]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr)
        print([l for l in (out.stdout + out.stderr).splitlines() if l.startswith("trained")][-1])
        for split, path in [("train", tr), ("held out", te)]:
            ev = subprocess.run([binary, "eval", m, path, "--json"], capture_output=True, text=True, check=True).stdout
            c = json.loads(ev)["categorical"]
            print(f"{split}: {100 * c['accuracy']:.1f} % of characters reconstructed ({c['positions']} steps of every window)")
            subprocess.run([binary, "reconstruct", m, path, "-o", rec], check=True, capture_output=True)
            with open(rec) as f:
                rows = list(csv.reader(f))[1:]
            for r in rows[:: max(1, len(rows) // 4)][:4]:
                print(f"   in: {r[0]!r}\n  out: {r[1]!r}")


if __name__ == "__main__":
    main()

"""Recurrent autoencoders: hourglass against PyTorch on the same windows, same run.

The model is examples/series-lstm.toml (or its GRU twin): a recurrent layer of 32 units reads
each window of 64 steps into its last state, a linear code of 8, repeated at every step of a
decoder of 32 units, and a linear map of each step's state back to the channel (hourglass: a
1-D convolution of width 1; PyTorch: nn.Linear on every step, the same map). MSE, Adam 1e-3,
batch 256, shuffled, the same number of epochs on both sides, standardized windows of a
generated one-channel series (two sines and noise). Reported: training windows per second
(hourglass: its own "trained in" time; PyTorch: the training loop), best of alternating rounds,
and the final epoch's training loss on each side.

    bench/.venv/bin/python bench/series/rnn_speed.py target/release/hourglass [--epochs N] [--rounds R]
"""

import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

STEPS, WINDOW, BATCH = 12_000, 64, 256


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def series():
    rng = np.random.default_rng(0)
    t = np.arange(STEPS)
    return np.sin(2 * np.pi * t / 50) + 0.5 * np.sin(2 * np.pi * t / 13) + 0.1 * rng.standard_normal(STEPS)


def arch_text(kind):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(root, "examples", "series-lstm.toml")).read()
    return text.replace('"lstm"', f'"{kind}"')


def run_hourglass(binary, kind, x, epochs, tmp):
    csv, arch, model = (os.path.join(tmp, n) for n in ("s.csv", f"{kind}.toml", "m.hg"))
    np.savetxt(csv, x, header="value", comments="", fmt="%.7g")
    with open(arch, "w") as f:
        f.write(arch_text(kind))
    cmd = [binary, "train", csv, "--window", str(WINDOW), "--arch", arch, "--epochs", str(epochs),
           "--batch-size", str(BATCH), "--seed", "0", "-o", model]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    log = out.stdout + out.stderr
    m = re.search(r"trained (\d+) epochs in ([0-9.]+) s: train loss ([0-9.eE+-]+)", log)
    return float(m.group(2)), float(m.group(3))


class Net(torch.nn.Module):
    def __init__(self, kind):
        super().__init__()
        cell = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
        self.enc = cell(1, 32, batch_first=True)
        self.code = torch.nn.Linear(32, 8)
        self.dec = cell(8, 32, batch_first=True)
        self.out = torch.nn.Linear(32, 1)

    def forward(self, x):  # x: (batch, steps, 1)
        _, h = self.enc(x)
        h = h[0] if isinstance(h, tuple) else h
        code = self.code(h[-1])
        seq, _ = self.dec(code.unsqueeze(1).expand(-1, x.shape[1], -1))
        return self.out(seq)


def run_torch(kind, x, epochs):
    torch.manual_seed(0)
    windows = np.lib.stride_tricks.sliding_window_view(x, WINDOW)
    mean, std = x.mean(), x.std()
    data = torch.tensor((windows - mean) / std, dtype=torch.float32).unsqueeze(-1)
    net = Net(kind)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n = len(data)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, BATCH):
            b = data[perm[i : i + BATCH]]
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(b), b)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
    return time.perf_counter() - t0, total / n


def main():
    binary = sys.argv[1]
    epochs, rounds = arg("--epochs", 3), arg("--rounds", 2)
    threads = os.cpu_count()
    torch.set_num_threads(threads)
    flags = sorted(set(re.findall(r"\b(avx2|fma|avx512f|avx512_bf16|avx512_vnni|amx_tile)\b", open("/proc/cpuinfo").read())))
    print(f"cpu flags: {' '.join(flags)}; {threads} threads; PyTorch {torch.__version__}; {time.strftime('%Y-%m-%d')}")
    x = series()
    n_windows = STEPS - WINDOW + 1
    print(f"{n_windows} windows of {WINDOW} steps, batch {BATCH}, {epochs} epochs, best of {rounds} alternating rounds")
    print("| model | hourglass windows/s | PyTorch windows/s | ratio | hourglass last loss | PyTorch last loss |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ["lstm", "gru"]:
            hg, pt = [], []
            for _ in range(rounds):
                hg.append(run_hourglass(binary, kind, x, epochs, tmp))
                pt.append(run_torch(kind, x, epochs))
            (hs, hl), (ps, pl) = min(hg), min(pt)
            hr, pr = n_windows * epochs / hs, n_windows * epochs / ps
            print(f"| {kind.upper()} 32-8-32 | {hr:,.0f} | {pr:,.0f} | {hr / pr:.2f} | {hl:.4f} | {pl:.4f} |", flush=True)


if __name__ == "__main__":
    main()

"""PyTorch side of bench/run: the identical models and loops, one measurement per process.

Usage: python bench/torch_mlp.py TASK MNIST_TRAIN_IDX THREADS"""
import json
import sys
import time

import numpy as np
import torch
from torch import nn

from latency import median_latency_us

task, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(1)
raw = open(path, "rb").read()
x = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0)


def linear(n_in, n_out, relu):
    """Same init as hourglass's `auto`: He uniform for ReLU layers, Xavier uniform otherwise; zero bias."""
    layer = nn.Linear(n_in, n_out)
    if relu:
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    else:
        nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def autoencoder(deep):
    hidden, code = ([1000, 500, 250], 30) if deep else ([256], 64)
    enc, n = [], 784
    for h in hidden:
        enc += [linear(n, h, True), nn.ReLU()]
        n = h
    enc += [linear(n, code, False)]
    dec, n = [], code
    for h in reversed(hidden):
        dec += [linear(n, h, True), nn.ReLU()]
        n = h
    dec += [linear(n, 784, False), nn.Sigmoid()]
    return nn.Sequential(*enc), nn.Sequential(*dec)


def conv_autoencoder():
    """The issue-4 benchmark network, as examples/conv-mnist.toml describes it."""
    enc = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
    )
    dec = nn.Sequential(
        nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),
        nn.Flatten(),
    )
    return enc, dec


def train(deep):
    enc, dec = conv_autoencoder() if deep == "conv" else autoencoder(deep)
    model = nn.Sequential(enc, dec)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()

    def epoch(data):
        perm = torch.randperm(data.shape[0])
        total = torch.zeros(())
        for i in range(0, data.shape[0], 256):
            b = data[perm[i : i + 256]]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(b), b)
            loss.backward()
            opt.step()
            total += loss.detach()
        return total.item()

    epoch(x[:2560])  # warm-up, as on the hourglass side
    t = time.perf_counter()
    epoch(x)
    return x.shape[0] / (time.perf_counter() - t)


def single_rows():
    """1,000 single rows of the test set, each its own tensor."""
    return [x[i : i + 1].clone() for i in range(1000)]


with torch.inference_mode(mode=task in ("encode_small", "encode_conv", "latency_small", "latency_score")):
    if task == "train_small":
        value = train(False)
    elif task == "train_deep":
        value = train(True)
    elif task == "train_conv":
        value = train("conv")
    elif task in ("encode_small", "encode_conv"):
        enc, _ = conv_autoencoder() if task == "encode_conv" else autoencoder(False)
        chunks = [x[i * 1024 : (i + 1) * 1024] for i in range(x.shape[0] // 1024)]
        enc(chunks[0])
        t = time.perf_counter()
        n = sum(enc(c).shape[0] for c in chunks)
        value = n / (time.perf_counter() - t)
    elif task == "latency_small":
        enc, _ = autoencoder(False)
        value = median_latency_us(enc, single_rows())
    elif task == "latency_score":
        # As hourglass's: a standard scaler fitted on the data (constant columns divided by
        # 1), then encode, decode and the row's mean squared error as a Python float.
        enc, dec = autoencoder(False)
        mean, std = x.mean(0), x.std(0, correction=0)
        std = torch.where(std > 0, std, torch.ones_like(std))

        def score(r):
            z = (r - mean) / std
            return ((dec(enc(z)) - z) ** 2).mean().item()

        value = median_latency_us(score, single_rows())
    else:
        raise SystemExit(f"unknown task {task}")
print(json.dumps({"task": task, "value": value}))

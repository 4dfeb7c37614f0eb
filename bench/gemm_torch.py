"""PyTorch (MKL/oneDNN) side of bench/gemm: torch.mm at 2048^3 and at every GEMM shape of a
training step of the benchmark networks (batch 256), f32, one JSON line per shape.

Usage: python bench/gemm_torch.py THREADS"""
import json
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]))
NETS = [("small", [784, 256, 64, 256, 784]), ("deep", [784, 1000, 500, 250, 30, 250, 500, 1000, 784])]
BATCH = 256


def rate(a, b):
    """GFLOP/s of a @ b: the best of five timings of enough calls to take ~0.2 s."""
    torch.mm(a, b)
    t = time.perf_counter()
    torch.mm(a, b)
    reps = max(1, min(10000, int(0.2 / max(time.perf_counter() - t, 1e-7))))
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - t) / reps)
    m, k = a.shape
    return 2 * m * k * b.shape[1] / best / 1e9


def emit(net, gemm, a, b):
    m, k = a.shape
    print(json.dumps({"net": net, "gemm": gemm, "m": m, "k": k, "n": b.shape[1], "gflops": round(rate(a, b), 2)}), flush=True)


g = torch.Generator().manual_seed(1)
emit("peak", "2048^3", torch.rand(2048, 2048, generator=g), torch.rand(2048, 2048, generator=g))
for net, widths in NETS:
    for k, n in zip(widths, widths[1:]):
        x, w, dz = (torch.rand(BATCH, k, generator=g), torch.rand(n, k, generator=g), torch.rand(BATCH, n, generator=g))
        emit(net, f"{k}->{n} forward", x, w.t())
        emit(net, f"{k}->{n} dW", dz.t(), x)
        emit(net, f"{k}->{n} dX", dz, w)

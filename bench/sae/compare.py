"""Sparse dictionaries on real activations: hourglass against EleutherAI's sparsify (its
SparseCoder module, trained by the loop its Trainer runs) on the same activation matrix, with
the same width, k, batch, learning rate, epochs, AuxK settings and threads, on this CPU, in
one run. Prints a Markdown table (wall time per epoch, test FVU, dead fraction).

The activations: the 512 ReLU units of the first hidden layer of an MNIST autoencoder that
hourglass trains first (784-512-32, 5 epochs, seed 0): 60,000 training rows, 10,000 test rows.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

HG = "target/release/hourglass"
WORK = "bench/sae/.work"


def sh(*args):
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return out.stdout


def activations():
    os.makedirs(WORK, exist_ok=True)
    model = f"{WORK}/mnist-ae.hg"
    if not os.path.exists(f"{WORK}/test.npy"):
        sh(HG, "train", "data/mnist/train-images-idx3-ubyte", "--hidden", "512", "--code", "32",
           "--epochs", "5", "--seed", "0", "-q", "-o", model)
        for part, idx in (("train", "train"), ("test", "t10k")):
            sh(HG, "encode", model, f"data/mnist/{idx}-images-idx3-ubyte", "--layer", "0",
               "-o", f"{WORK}/{part}.npy")
    return f"{WORK}/train.npy", f"{WORK}/test.npy"


def fvu(x, x_hat):
    return float(((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


def run_hourglass(a, train, test):
    model = f"{WORK}/sae.hg"
    t0 = time.perf_counter()
    sh(HG, "train", train, "--code", str(a.width), "--code-activation", "relu",
       "--output-activation", "identity",
       "--code-reg", f"topk={a.k},auxk={a.auxk},auxk-alpha={a.alpha},auxk-window={a.window}",
       "--unit-norm-decoder", "--tied-init", "--pre-bias", "--init", "xavier", "--scale", "none", "--epochs", str(a.epochs),
       "--batch-size", str(a.batch), "--lr", str(a.lr), "--valid-fraction", "0", "--seed", "0",
       "--threads", str(a.threads), "-q", "-o", model)
    seconds = time.perf_counter() - t0
    on_test = json.loads(sh(HG, "eval", model, test, "--json"))
    on_train = json.loads(sh(HG, "eval", model, train, "--json"))
    return {
        "epoch_s": seconds / a.epochs,
        "test_fvu": on_test["fvu"],
        "train_fvu": on_train["fvu"],
        "dead": on_train["dead_fraction"],
        "l0": on_test["l0"],
    }


def run_sparsify(a, train, test):
    import sparsify.sparse_coder
    from sparsify import SparseCoder, SparseCoderConfig
    from sparsify.utils import eager_decode

    # sparsify picks its Triton (GPU) decoder when triton is installed; on a CPU, its eager one
    # (torch's embedding_bag).
    sparsify.sparse_coder.decoder_impl = eager_decode

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    x = torch.from_numpy(np.load(train))
    xt = torch.from_numpy(np.load(test))
    n, d = x.shape
    sae = SparseCoder(d, SparseCoderConfig(num_latents=a.width, k=a.k, normalize_decoder=True), device="cpu")
    opt = torch.optim.Adam(sae.parameters(), lr=a.lr)
    since = torch.zeros(a.width, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    first = True
    for _ in range(a.epochs):
        for idx in torch.randperm(n, generator=gen).split(a.batch):
            xb = x[idx]
            if first:  # the trainer's first step: the decoder bias at the batch mean
                sae.b_dec.data = xb.mean(0)
                first = False
            sae.set_decoder_norm_to_unit_norm()
            dead = since >= a.window
            out = sae(xb, dead_mask=dead)
            # sparsify's auxk term is scaled to its own k_aux = d // 2; ours names k_aux (= d // 2 here).
            loss = out.fvu + a.alpha * out.auxk_loss
            loss.backward()
            sae.remove_gradient_parallel_to_decoder_directions()
            opt.step()
            opt.zero_grad()
            fired = torch.zeros(a.width, dtype=torch.bool)
            fired[out.latent_indices.flatten()] = True
            since += len(idx)
            since[fired] = 0
    seconds = time.perf_counter() - t0
    sae.set_decoder_norm_to_unit_norm()
    with torch.no_grad():
        def recon(m):
            return torch.cat([sae(c).sae_out for c in m.split(4096)])
        fired = torch.zeros(a.width, dtype=torch.bool)
        for c in x.split(4096):
            fired[sae.encode(c).top_indices.flatten()] = True
        return {
            "epoch_s": seconds / a.epochs,
            "test_fvu": fvu(xt.numpy(), recon(xt).numpy()),
            "train_fvu": fvu(x.numpy(), recon(x).numpy()),
            "dead": 1.0 - fired.float().mean().item(),
            "l0": float(a.k),
        }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=4096)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=4e-4)  # sparsify's Adam rule: 2e-4 / sqrt(width / 2^14)
    p.add_argument("--auxk", type=int, default=256)  # sparsify's k_aux: d // 2
    p.add_argument("--alpha", type=float, default=1 / 32)
    p.add_argument("--window", type=int, default=60000)  # rows without firing: dead (one epoch)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    train, test = activations()
    d = np.load(train, mmap_mode="r").shape
    print(f"activations: {d[0]} x {d[1]} (train), width {a.width}, k {a.k}, batch {a.batch}, lr {a.lr}, "
          f"{a.epochs} epochs, AuxK {a.auxk} at {a.alpha:.4g} after {a.window} rows, {a.threads} threads, torch "
          f"{torch.__version__}", flush=True)
    rows = {"sparsify (SparseCoder)": run_sparsify(a, train, test)}
    print("sparsify:", rows["sparsify (SparseCoder)"], flush=True)
    rows["hourglass"] = run_hourglass(a, train, test)
    print("| trainer | s / epoch | test FVU | train FVU | dead (train rows) |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['epoch_s']:.1f} | {r['test_fvu']:.4f} | {r['train_fvu']:.4f} | {100 * r['dead']:.1f} % |")
    h, s = rows["hourglass"], rows["sparsify (SparseCoder)"]
    print(f"\nwall time per epoch: sparsify / hourglass = {s['epoch_s'] / h['epoch_s']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())

"""PyTorch side of bench/distributed/run: the small MNIST autoencoder (784-256-64-256-784, as
bench/torch_mlp.py's train_small) trained data-parallel with DistributedDataParallel over the
gloo backend, WORLD processes of one thread each, the global batch of 256 split between them.
Prints rank 0's samples/s over one epoch after a warm-up; with `timed`, the share of the epoch
spent in the gradient all-reduce instead (a communication hook that waits for each bucket: it
stops DDP's overlap of communication with the backward pass, so its samples/s are not the
throughput figure).

Usage: python torch_ddp.py MNIST_TRAIN_IDX WORLD [timed]"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def run(rank, world, path, out, timed):
    torch.set_num_threads(1)
    torch.manual_seed(1)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    raw = open(path, "rb").read()
    x = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0)
    shard = x[rank::world].contiguous()

    def linear(n_in, n_out, relu):
        layer = nn.Linear(n_in, n_out)
        if relu:
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        else:
            nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
        return layer

    model = nn.Sequential(
        linear(784, 256, True), nn.ReLU(), linear(256, 64, False),
        linear(64, 256, True), nn.ReLU(), linear(256, 784, False), nn.Sigmoid(),
    )
    comm = [0.0]
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)

        def timed_allreduce(state, bucket):
            t = time.perf_counter()
            tensor = bucket.buffer()
            dist.all_reduce(tensor)
            tensor.div_(world)
            comm[0] += time.perf_counter() - t
            fut = torch.futures.Future()
            fut.set_result(tensor)
            return fut

        if timed:
            model.register_comm_hook(None, timed_allreduce)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    batch = 256 // world

    def epoch(data):
        perm = torch.randperm(data.shape[0])
        for i in range(0, data.shape[0] - batch + 1, batch):
            b = data[perm[i : i + batch]]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(b), b)
            loss.backward()
            opt.step()

    epoch(shard[:2560])
    comm[0] = 0.0
    if world > 1:
        dist.barrier()
    t = time.perf_counter()
    epoch(shard)
    if world > 1:
        dist.barrier()
    seconds = time.perf_counter() - t
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"samples_per_sec": x.shape[0] / seconds, "comm_share": comm[0] / seconds}, f)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    path, world = sys.argv[1], int(sys.argv[2])
    timed = sys.argv[3:] == ["timed"]
    out = f"/tmp/torch_ddp_{os.getpid()}.json"
    if world == 1:
        run(0, 1, path, out, timed)
    else:
        mp.spawn(run, args=(world, path, out, timed), nprocs=world, join=True)
    print(open(out).read())
    os.remove(out)

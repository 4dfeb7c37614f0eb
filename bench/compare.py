"""Runs hourglass and PyTorch alternately on the same tasks, in the same run, and prints ratios.

Each measurement is its own process, so peak RSS (from wait4) belongs to that task alone."""
import json
import os
import platform
import subprocess
import sys
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
mnist = os.path.join(root, "data/mnist/train-images-idx3-ubyte")
threads = os.environ.get("THREADS", "2")
rounds = int(os.environ.get("ROUNDS", "3"))
tasks = sys.argv[1:] or ["train_small", "train_deep", "train_conv", "encode_small", "encode_conv", "latency_small"]
sides = {
    "hourglass": [os.path.join(root, "target/release/examples/bench_mlp")],
    "pytorch": [os.path.join(root, "bench/.venv/bin/python"), os.path.join(root, "bench/torch_mlp.py")],
    # Opt-in mixed precision (bf16 GEMMs on AMX, f32 weights and optimizer); training only.
    "hourglass-bf16": [os.path.join(root, "target/release/examples/bench_mlp")],
}


def measure(cmd, side):
    env = dict(os.environ, PRECISION="bf16" if side == "hourglass-bf16" else "f32")
    p = subprocess.Popen(cmd + [task, mnist, threads], stdout=subprocess.PIPE, text=True, env=env)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd} {task} failed")
    return json.loads(out.strip().splitlines()[-1])["value"], usage.ru_maxrss / 1024  # MiB


results = {}
for r in range(rounds):
    for task in tasks:
        names = [s for s in sides if task.startswith("train") or s != "hourglass-bf16"]
        order = names if r % 2 == 0 else list(reversed(names))
        for side in order:
            value, rss = measure(sides[side], side)
            results.setdefault((task, side), []).append((value, rss))
            print(f"round {r + 1} {task:14} {side:9} {value:12.1f}  peak RSS {rss:7.1f} MiB", file=sys.stderr)

torch_version = subprocess.run(sides["pytorch"][:1] + ["-c", "import torch; print(torch.__version__)"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"\n{time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores, {threads} threads, PyTorch {torch_version}, best of {rounds} alternating rounds\n")
print("| task | unit | hourglass | PyTorch | ratio (higher = hourglass better) | peak RSS hourglass / PyTorch (MiB) |")
print("|---|---|---|---|---|---|")
units = {"train_small": "samples/s", "train_deep": "samples/s", "train_conv": "samples/s", "encode_small": "samples/s", "encode_conv": "samples/s", "latency_small": "µs (median)"}
for task in tasks:
    lower_better = task.startswith("latency")
    pick = min if lower_better else max
    h = pick(v for v, _ in results[(task, "hourglass")])
    t = pick(v for v, _ in results[(task, "pytorch")])
    ratio = t / h if lower_better else h / t
    hr = min(m for _, m in results[(task, "hourglass")])
    tr = min(m for _, m in results[(task, "pytorch")])
    print(f"| {task} | {units[task]} | {h:,.1f} | {t:,.1f} | **{ratio:.2f}×** | {hr:.0f} / {tr:.0f} ({hr / tr:.2f}) |")
    if (task, "hourglass-bf16") in results:
        hb = pick(v for v, _ in results[(task, "hourglass-bf16")])
        br = min(m for _, m in results[(task, "hourglass-bf16")])
        print(f"| {task}, hourglass bf16 (AMX) | {units[task]} | {hb:,.1f} | {t:,.1f} | **{hb / t:.2f}×** | {br:.0f} / {tr:.0f} ({br / tr:.2f}) |")

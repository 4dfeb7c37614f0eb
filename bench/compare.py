"""Runs hourglass and PyTorch alternately on the same tasks, in the same run, and prints ratios;
on the inference tasks onnxruntime too, running the same models exported by `hourglass export`
(the inference peer: what people deploy with).

Each measurement is its own process, so peak RSS (from wait4) belongs to that task alone.
HOURGLASS_BASELINE=path/to/another/bench_mlp adds that build as a side ("baseline", e.g. the
commit before a change), measured in the same rounds, so a change is judged against its own
baseline and against PyTorch in one sitting. The bf16 side runs only where AMX-BF16 is present
(elsewhere it would measure f32 again); the CPU flags are printed with the results."""
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
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
amx = "amx_bf16" in flags and "amx_tile" in flags
intel = any(l.startswith("vendor_id") and "GenuineIntel" in l for l in open("/proc/cpuinfo"))
# As kernels::dpbf16::pays: AVX512-BF16 runs the bf16 GEMMs only off Intel (on an Intel CPU
# without AMX they would be slower than f32, so hourglass runs f32 there and says so).
bf16_unit = "AMX" if amx else ("AVX512-BF16" if "avx512_bf16" in flags and not intel else None)
sides = {
    "hourglass": [os.path.join(root, "target/release/examples/bench_mlp")],
    "pytorch": [os.path.join(root, "bench/.venv/bin/python"), os.path.join(root, "bench/torch_mlp.py")],
    "onnxruntime": [os.path.join(root, "bench/.venv/bin/python"), os.path.join(root, "bench/ort_mlp.py")],
}
if bf16_unit:
    # Opt-in mixed precision (bf16 GEMMs on AMX or with AVX512-BF16, f32 weights and
    # optimizer); training only.
    sides["hourglass-bf16"] = [os.path.join(root, "target/release/examples/bench_mlp")]
# int8 inference (the encode and latency tasks): hourglass --precision int8, and
# onnxruntime's dynamic quantization of the same exported model.
sides["hourglass-int8"] = sides["hourglass"]
sides["onnxruntime-int8"] = sides["onnxruntime"]
if os.environ.get("HOURGLASS_BASELINE"):
    sides["baseline"] = [os.environ["HOURGLASS_BASELINE"]]


def measure(cmd, side):
    precision = "bf16" if side == "hourglass-bf16" else "int8" if side.endswith("-int8") else "f32"
    env = dict(os.environ, PRECISION=precision)
    p = subprocess.Popen(cmd + [task, mnist, threads], stdout=subprocess.PIPE, text=True, env=env)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd} {task} failed")
    return json.loads(out.strip().splitlines()[-1])["value"], usage.ru_maxrss / 1024  # MiB


results = {}
for r in range(rounds):
    for task in tasks:
        train = task.startswith("train")
        names = [
            s
            for s in sides
            if (s != "hourglass-bf16" or train)
            and (not s.startswith("onnxruntime") or not train)
            and (not s.endswith("-int8") or not train)
            and (not s.startswith("onnxruntime") or task != "latency_score")
        ]
        order = names if r % 2 == 0 else list(reversed(names))
        for side in order:
            value, rss = measure(sides[side], side)
            results.setdefault((task, side), []).append((value, rss))
            print(f"round {r + 1} {task:14} {side:9} {value:12.1f}  peak RSS {rss:7.1f} MiB", file=sys.stderr)

torch_version = subprocess.run(sides["pytorch"][:1] + ["-c", "import torch; print(torch.__version__)"], capture_output=True, text=True).stdout.strip()
ort_version = subprocess.run(sides["pytorch"][:1] + ["-c", "import onnxruntime; print(onnxruntime.__version__)"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"\n{time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores, {threads} threads, PyTorch {torch_version}, onnxruntime {ort_version}, best of {rounds} alternating rounds")
simd = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "avx_vnni", "fma")))
print(f"CPU flags: {' '.join(simd)}; bf16 GEMMs: {bf16_unit or 'none (no AMX-BF16, and no AVX512-BF16 off Intel): no bf16 row'}\n")
print("| task | unit | hourglass | PyTorch | ratio (higher = hourglass better) | peak RSS hourglass / PyTorch (MiB) |")
print("|---|---|---|---|---|---|")
units = {"train_small": "samples/s", "train_deep": "samples/s", "train_conv": "samples/s", "encode_small": "samples/s", "encode_conv": "samples/s", "latency_small": "µs (median)", "latency_score": "µs (median)"}
for task in tasks:
    lower_better = task.startswith("latency")
    pick = min if lower_better else max
    h = pick(v for v, _ in results[(task, "hourglass")])
    t = pick(v for v, _ in results[(task, "pytorch")])
    ratio = t / h if lower_better else h / t
    hr = min(m for _, m in results[(task, "hourglass")])
    tr = min(m for _, m in results[(task, "pytorch")])
    print(f"| {task} | {units[task]} | {h:,.1f} | {t:,.1f} | **{ratio:.2f}×** | {hr:.0f} / {tr:.0f} ({hr / tr:.2f}) |")
    if (task, "baseline") in results:
        b = pick(v for v, _ in results[(task, "baseline")])
        br = min(m for _, m in results[(task, "baseline")])
        ratio_b = t / b if lower_better else b / t
        change = (h / b - 1) * 100 if not lower_better else (b / h - 1) * 100
        print(f"| {task}, baseline build | {units[task]} | {b:,.1f} | {t:,.1f} | **{ratio_b:.2f}×** (this build {change:+.1f} % against it) | {br:.0f} / {tr:.0f} ({br / tr:.2f}) |")
    if (task, "hourglass-bf16") in results:
        hb = pick(v for v, _ in results[(task, "hourglass-bf16")])
        br = min(m for _, m in results[(task, "hourglass-bf16")])
        print(f"| {task}, hourglass bf16 ({bf16_unit}) | {units[task]} | {hb:,.1f} | {t:,.1f} | **{hb / t:.2f}×** | {br:.0f} / {tr:.0f} ({br / tr:.2f}) |")

int8 = [t for t in tasks if (t, "hourglass-int8") in results]
if int8:
    print("\n| task | unit | hourglass int8 | hourglass f32 | PyTorch f32 | onnxruntime int8 (quantize_dynamic) | int8 vs PyTorch | int8 vs onnxruntime int8 |")
    print("|---|---|---|---|---|---|---|---|")
    for task in int8:
        lower_better = task.startswith("latency")
        pick = min if lower_better else max
        q = pick(v for v, _ in results[(task, "hourglass-int8")])
        h = pick(v for v, _ in results[(task, "hourglass")])
        t = pick(v for v, _ in results[(task, "pytorch")])
        o = pick(v for v, _ in results[(task, "onnxruntime-int8")]) if (task, "onnxruntime-int8") in results else None
        ratio = lambda peer: peer / q if lower_better else q / peer
        ort = f"{o:,.1f}" if o else "—"
        vs_ort = f"**{ratio(o):.2f}×**" if o else "—"
        print(f"| {task} | {units[task]} | {q:,.1f} | {h:,.1f} | {t:,.1f} | {ort} | **{ratio(t):.2f}×** | {vs_ort} |")

inference = [t for t in tasks if (t, "onnxruntime") in results]
if inference:
    print("\n| task | unit | hourglass | onnxruntime (same model, exported) | ratio (higher = hourglass better) |")
    print("|---|---|---|---|---|")
    for task in inference:
        lower_better = task.startswith("latency")
        pick = min if lower_better else max
        h = pick(v for v, _ in results[(task, "hourglass")])
        o = pick(v for v, _ in results[(task, "onnxruntime")])
        print(f"| {task} | {units[task]} | {h:,.1f} | {o:,.1f} | **{(o / h if lower_better else h / o):.2f}×** |")

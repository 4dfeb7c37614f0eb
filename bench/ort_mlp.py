"""onnxruntime side of bench/run: the encode tasks on the same models, exported by hourglass
(`bench_mlp export_small|export_conv`), one measurement per process.

Usage: python bench/ort_mlp.py TASK MNIST_TRAIN_IDX THREADS

With PRECISION=int8 the model first goes through onnxruntime's own dynamic quantization
(`quantize_dynamic`: int8 weights per output channel, activations quantized per call): the
int8 peer of `hourglass --precision int8`."""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

from latency import median_latency_us

task, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
raw = open(path, "rb").read()
x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0

kind = "conv" if task == "encode_conv" else "small"
with tempfile.TemporaryDirectory() as tmp:
    model = os.path.join(tmp, f"{kind}.onnx")
    subprocess.run([os.path.join(root, "target/release/examples/bench_mlp"), f"export_{kind}", model], check=True)
    if os.environ.get("PRECISION") == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = os.path.join(tmp, f"{kind}-int8.onnx")
        quantize_dynamic(model, quantized, weight_type=QuantType.QInt8, per_channel=True)
        model = quantized
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

run = lambda rows: session.run(["code"], {"input": rows})[0]
if task in ("encode_small", "encode_conv"):
    chunks = [x[i * 1024 : (i + 1) * 1024] for i in range(x.shape[0] // 1024)]
    run(chunks[0])
    t = time.perf_counter()
    n = sum(run(c).shape[0] for c in chunks)
    value = n / (time.perf_counter() - t)
elif task == "latency_small":
    value = median_latency_us(run, [np.ascontiguousarray(x[i : i + 1]) for i in range(1000)])
else:
    raise SystemExit(f"onnxruntime runs the encode tasks only, not {task}")
print(json.dumps({"task": task, "value": value}))

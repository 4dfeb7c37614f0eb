"""Single-row latency, shared by the PyTorch and onnxruntime bench scripts."""

import time


def median_latency_us(f, rows):
    """The median time of `f` on each of `rows` (one row each), after warm-up on the first 100."""
    for r in rows[:100]:
        f(r)
    times = []
    for r in rows:
        t = time.perf_counter()
        f(r)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2] * 1e6

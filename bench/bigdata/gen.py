"""Writes a generated table as Parquet, a row group at a time (memory stays at one group):
ROWS rows of 64 float32 features on an 8-dimensional linear manifold plus noise, 1 % of them
anomalies (ten times the noise), and a `kind` column (normal/anomaly).
Usage: python bench/bigdata/gen.py OUT.parquet ROWS [SEED]"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

out, rows = sys.argv[1], int(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
d, k, group = 64, 8, 500_000
w = np.random.default_rng(12345).normal(size=(k, d)).astype(np.float32) / np.sqrt(k)
names = [f"f{j}" for j in range(d)]
schema = pa.schema([(n, pa.float32()) for n in names] + [("kind", pa.string())])
with pq.ParquetWriter(out, schema, compression="snappy") as wr:
    for start in range(0, rows, group):
        n = min(group, rows - start)
        rng = np.random.default_rng([seed, start])
        x = rng.normal(size=(n, k)).astype(np.float32) @ w
        bad = rng.random(n) < 0.01
        x += rng.normal(size=(n, d)).astype(np.float32) * np.where(bad, 1.0, 0.1)[:, None].astype(np.float32)
        cols = [pa.array(x[:, j]) for j in range(d)] + [pa.array(np.where(bad, "anomaly", "normal"))]
        wr.write_table(pa.Table.from_arrays(cols, schema=schema))

#!/usr/bin/env python3
"""Makes the committed Parquet fixtures with pyarrow (the writer most users' files come from):
  types.parquet  five rows in row groups of two: every column kind hourglass reads (f64 with a
                 null, f32, int8, uint32 above 2^31, int64, bool, dictionary-encoded text with a
                 null, decimal(5,2)) and the kinds it refuses (timestamp, list);
  codecs-*.parquet  the same 3x2 numbers compressed with snappy, gzip, zstd and none.
Run:  python3 tests/data/make-parquet.py   (needs pyarrow)"""
import decimal
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

dst = pathlib.Path(__file__).resolve().parent
t = pa.table({
    "x": pa.array([1.5, None, -2.25, 1e-7, 3.0], pa.float64()),
    "y": pa.array([0.5, 1.5, 2.5, 3.5, 4.5], pa.float32()),
    "i8": pa.array([-128, 0, 1, 2, 127], pa.int8()),
    "u32": pa.array([0, 1, 4_000_000_000, 7, 8], pa.uint32()),
    "i64": pa.array([-(2**40), 0, 5, 6, 2**40], pa.int64()),
    "b": pa.array([True, False, True, True, False]),
    "s": pa.array(["north", "south", None, "north", "east"]).dictionary_encode(),
    "dec": pa.array([decimal.Decimal("1.25"), decimal.Decimal("-3.50"), decimal.Decimal("0.01"),
                     decimal.Decimal("100.00"), decimal.Decimal("7.77")], pa.decimal128(5, 2)),
    "ts": pa.array([0, 1, 2, 3, 4], pa.timestamp("ms")),
    "lst": pa.array([[1], [2, 3], [], [4], [5]], pa.list_(pa.int32())),
})
pq.write_table(t, dst / "types.parquet", row_group_size=2, compression="snappy")
n = pa.table({"a": pa.array([1.0, 2.0, 3.0]), "b": pa.array([0.25, 0.5, 0.75], pa.float32())})
for codec in ["snappy", "gzip", "zstd", "none"]:
    pq.write_table(n, dst / f"codecs-{codec}.parquet", compression=codec)

#!/usr/bin/env python3
"""Makes the committed MNIST slices: the first 1,000 images and labels of the MNIST test set,
gzipped IDX. Run after scripts/fetch-mnist:  python3 tests/data/make-fixtures.py"""
import gzip
import pathlib

root = pathlib.Path(__file__).resolve().parents[2]
src, dst, n = root / "data/mnist", root / "tests/data", 1000
img = (src / "t10k-images-idx3-ubyte").read_bytes()
lab = (src / "t10k-labels-idx1-ubyte").read_bytes()
hdr = bytes([0, 0, 8, 3]) + n.to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
(dst / "mnist-test-1000-images-idx3-ubyte.gz").write_bytes(gzip.compress(hdr + img[16 : 16 + n * 784], 9, mtime=0))
hdr = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big")
(dst / "mnist-test-1000-labels-idx1-ubyte.gz").write_bytes(gzip.compress(hdr + lab[8 : 8 + n], 9, mtime=0))

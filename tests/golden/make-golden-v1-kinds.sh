#!/usr/bin/env bash
# Makes version-1 golden files of the other model kinds: a convolutional autoencoder (an
# architecture file with a top-k code) and a dense classifier, with their expected outputs.
# They were made once with the last hourglass that wrote version 1 (commit 8aa2f35, built with
# `cargo build --release`), and must keep loading and giving the same outputs forever:
#   HOURGLASS=/path/to/v1/hourglass bash tests/golden/make-golden-v1-kinds.sh
set -euo pipefail
cd "$(dirname "$0")"
hg="${HOURGLASS:?the path of a version-1 hourglass binary}"
python3 - <<'PY'
import math, struct
# 12 images of 8x8: a bright bar whose position and angle move from image to image.
n, h, w = 12, 8, 8
vals = []
for i in range(n):
    a = i / n * math.pi
    for y in range(h):
        for x in range(w):
            d = abs((x - 3.5) * math.sin(a) - (y - 3.5) * math.cos(a))
            vals.append(max(0.0, 1.0 - d / 2.0))
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (n, h, w)
header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
with open("images.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack("<%df" % len(vals), *vals))
open("labels.csv", "w").write("label\n" + "".join(f"{'ab'[i % 2]}\n" for i in range(24)))
PY
$hg train images.npy --arch conv.toml --epochs 3 --batch-size 4 --seed 3 -q -o conv_v1.safetensors
$hg encode conv_v1.safetensors images.npy -o expected_conv_codes.csv
$hg reconstruct conv_v1.safetensors images.npy -o expected_conv_reconstruction.csv
$hg finetune model_v1.safetensors input.csv --labels labels.csv --epochs 5 --batch-size 8 \
  --freeze-epochs 1 --seed 4 -q -o classifier_v1.safetensors
$hg predict classifier_v1.safetensors input.csv -o expected_classifier.csv

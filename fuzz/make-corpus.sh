#!/usr/bin/env bash
# Rebuilds the committed seed corpus (fuzz/corpus/TARGET/) from the test fixtures and from small
# files made by the CLI itself: one valid example of every input kind each target reads.
# Needs a release build of the CLI and Python with Pillow (bench/.venv has it).
set -euo pipefail
cd "$(dirname "$0")/.."
H=target/release/hourglass
PY=${PYTHON:-bench/.venv/bin/python}
C=fuzz/corpus
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
rm -rf "$C"
mkdir -p "$C"/{csv,npy,idx,model,hgh,arch,images,labels,parquet,text}
cp tests/data/*.parquet "$C/parquet/"   # pyarrow-written: every column kind, every codec
sel() { { printf "\\x$1"; cat "$2"; } > "$3"; }   # a selector byte, then the file

# Data: 40 MNIST rows (IDX, NPY, CSV), and a table with categories and missing values.
$H select tests/data/mnist-test-1000-images-idx3-ubyte.gz --labels tests/data/mnist-test-1000-labels-idx1-ubyte.gz \
  --rows 0..40 -o "$W/x.npy" --labels-output "$W/y.csv" >/dev/null
$H select tests/data/mnist-test-1000-images-idx3-ubyte.gz --rows 0..3 -o "$W/x3.csv" >/dev/null
printf 'a,b,colour,label\n1,2.5,red,x\n3,,blue,y\n,4,red,x\n5,6,NA,z\n' > "$W/table.csv"
cp tests/golden/images.npy "$C/npy/images.npy"
cp "$W/x.npy" "$C/npy/mnist40.npy"
$PY - "$W" "$C" <<'PY'
import gzip, struct, sys, numpy as np
w, c = sys.argv[1], sys.argv[2]
x = (np.load(f"{w}/x.npy") * 255).round().astype(np.uint8).reshape(-1, 28, 28)[:4]
idx = struct.pack(">BBBBIII", 0, 0, 8, 3, len(x), 28, 28) + x.tobytes()
open(f"{c}/idx/mnist4-idx3", "wb").write(idx)
open(f"{c}/idx/mnist4-idx3.gz", "wb").write(gzip.compress(idx, mtime=0))
open(f"{c}/idx/labels-idx1", "wb").write(struct.pack(">BBBBI", 0, 0, 8, 1, 4) + bytes([7, 2, 1, 0]))
np.save(f"{c}/npy/small-f64.npy", np.arange(12, dtype=np.float64).reshape(3, 4))
np.save(f"{c}/npy/small-u8-images.npy", np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3))
from PIL import Image
img = Image.fromarray(x[0])
img.save(f"{w}/a.png"); img.convert("RGB").save(f"{w}/a-rgb.png"); img.save(f"{w}/a.jpg", quality=80)
PY
for f in input.csv labels.csv; do sel 00 "tests/golden/$f" "$C/csv/$f"; done
sel 00 "$W/x3.csv" "$C/csv/mnist3.csv"
sel 04 "$W/table.csv" "$C/csv/table-label.csv"
sel 00 "$W/table.csv" "$C/csv/table.csv"
sel 00 "$W/a.png" "$C/images/gray.png"; sel 06 "$W/a-rgb.png" "$C/images/rgb-resize.png"
sel 01 "$W/a.jpg" "$C/images/two.jpg"
sel 28 "$W/y.csv" "$C/labels/mnist40.csv"; sel 03 tests/golden/labels.csv "$C/labels/golden.csv"
sel 04 tests/golden/image_labels.csv "$C/labels/images.csv"

# Models: the golden files, and small ones of every other kind the CLI writes.
cp tests/golden/*.safetensors "$C/model/"
$H train "$W/x.npy" --hidden 4 --code 2 --epochs 1 --seed 1 -o "$W/m.safetensors" >/dev/null 2>&1
$H calibrate --contamination 0.1 "$W/m.safetensors" "$W/x.npy" >/dev/null 2>&1; cp "$W/m.safetensors" "$C/model/calibrated.safetensors"
$H train "$W/table.csv" --label-column label --categorical auto --impute mean --hidden 4 --code 2 --epochs 1 --seed 1 -o "$C/model/tabular.safetensors" >/dev/null 2>&1
$H pca "$W/x.npy" --components 3 -o "$C/model/pca.safetensors" >/dev/null 2>&1
$H train "$W/x.npy" --hidden 4 --code 8 --activation sigmoid --epochs 1 --seed 1 -o "$W/h.safetensors" >/dev/null 2>&1
$H hash "$W/h.safetensors" "$W/x.npy" -o "$C/hgh/codes.hgh" >/dev/null 2>&1
$H pca "$W/x.npy" --components 70 --itq 5 -o "$W/itq.safetensors" >/dev/null 2>&1
$H hash "$W/itq.safetensors" "$W/x.npy" -o "$C/hgh/codes-wide.hgh" >/dev/null 2>&1 || true

# Architecture files, with the data kind as the first byte (0 flat 784, 1 image 1x28x28, 2 image 3x8x8).
for f in examples/*.toml; do sel 01 "$f" "$C/arch/$(basename "$f")"; done
sel 01 tests/golden/conv.toml "$C/arch/golden-conv.toml"
printf 'activation = "relu"\n[[encoder]]\ntype = "dense"\nunits = 64\n[[encoder]]\ntype = "dense"\nunits = 8\n[[decoder]]\ntype = "dense"\nunits = 64\n[[decoder]]\ntype = "dense"\nunits = 784\n' > "$W/dense.toml"
sel 00 "$W/dense.toml" "$C/arch/dense.toml"
# Texts, the tokens chosen by the first byte (bit 0 words, bit 1 lower-cased, the rest the
# vocabulary's size).
head -c 2000 README.md > "$W/readme.txt"
sel 50 "$W/readme.txt" "$C/text/readme-chars.txt"
sel 53 "$W/readme.txt" "$C/text/readme-words.txt"
printf 'Ünïcode — ça va?\n\tdon'"'"'t stop, l'"'"'eau!\n\n' > "$W/utf8.txt"
sel 04 "$W/utf8.txt" "$C/text/utf8.txt"
printf 'ab\ncd\xff' > "$W/bad.txt"
sel 00 "$W/bad.txt" "$C/text/not-utf8.txt"

ls "$C"/* | head -100
du -sh "$C"

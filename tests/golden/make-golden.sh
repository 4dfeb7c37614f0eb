#!/usr/bin/env bash
# Makes the golden v1 model and its expected outputs. Run once per format version; the files
# it writes are committed and must keep loading and giving the same outputs forever.
#   bash tests/golden/make-golden.sh
set -euo pipefail
cd "$(dirname "$0")"
python3 - <<'PY'
import math
rows = ["x0,x1,x2,x3,x4,x5,x6,x7"]
for i in range(24):
    t = i / 23
    vals = [math.sin(3 * t + k) * (1 + 0.1 * k) + 0.05 * k * t for k in range(8)]
    rows.append(",".join(f"{v:.5f}" for v in vals))
open("input.csv", "w").write("\n".join(rows) + "\n")
PY
hg="cargo run -q --release --bin hourglass --"
$hg train input.csv --hidden 6 --code 3 --activation tanh --code-activation identity \
  --output-activation identity --epochs 30 --batch-size 8 --lr 0.01 --scale standard --seed 7 \
  -q -o model_v1.safetensors
$hg reconstruct model_v1.safetensors input.csv -o expected_reconstruction.csv
$hg encode model_v1.safetensors input.csv -o expected_codes.csv

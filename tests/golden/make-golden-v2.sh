#!/usr/bin/env bash
# Makes version-2 golden files: a dense autoencoder with regularizers on two layers (top-k and
# decorrelation on the code, L1 on a hidden layer), and a classifier on a convolutional encoder
# (a kind version 1 could not store), with their expected outputs. Run once for version 2 (after
# make-golden-v1-kinds.sh, whose inputs it reuses); the files must keep loading and giving the
# same outputs forever.
#   bash tests/golden/make-golden-v2.sh
set -euo pipefail
cd "$(dirname "$0")"
hg="cargo run -q --release --bin hourglass --"
printf 'label\n' > image_labels.csv
for i in $(seq 0 11); do echo $(( (i / 3) % 2 )) >> image_labels.csv; done
$hg train input.csv --hidden 6 --code 4 --activation tanh --code-activation relu \
  --output-activation identity --topk 2 --decov 0.1 --hidden-reg 0:l1=0.001 --epochs 30 \
  --batch-size 8 --lr 0.01 --scale standard --seed 7 -q -o model_v2.safetensors
$hg encode model_v2.safetensors input.csv -o expected_v2_codes.csv
$hg reconstruct model_v2.safetensors input.csv -o expected_v2_reconstruction.csv
$hg finetune conv_v1.safetensors images.npy --labels image_labels.csv --epochs 5 --batch-size 4 \
  --dropout 0.25 --seed 5 -q -o conv_classifier_v2.safetensors
$hg predict conv_classifier_v2.safetensors images.npy -o expected_conv_classifier.csv

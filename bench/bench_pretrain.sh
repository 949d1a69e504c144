#!/usr/bin/env bash
# Issue 24's evidence in one run: the dot stage (cpu_dots) fine-tuned from an encoder pre-trained by
# masked image modelling near the arteries (aneura pretrain -c cpu_dots) against the same stage
# trained from scratch, on the same held-out series, per aneurysm size band, for several seeds.
#   bench/bench_pretrain.sh [SEED...]          (default: 7 2)
# Everything lives under BENCH_DIR (default /tmp/aneura_bench_pretrain) and is reused when there:
#   DTR  aneura synth --n 240 --size medium --seed 21 -> its CTA/TOF series (168), W at 0.5 mm
#   DUN  aneura synth --n 150 --size medium --seed 11 -> its CTA/TOF series (103) without labels, WPRE
#   DTE  aneura synth --n 100 --size medium --seed 3  -> its CTA/TOF series (76), predicted end to end
#   pre-training: aneura pretrain WPRE -c cpu_dots --plans W/plans.json --epochs 60 --time-budget 900
#   per seed S: runs/scratch_S = train W -c cpu_dots --seed S within the plans' budget (its epoch
#     count E); runs/pretrained_S = the same seed with --init-encoder for exactly E epochs (no
#     budget: the machine's speed does not change the pair, only the encoder's first weights
#     differ); aneura predict + evaluate on DTE.
# Prints each run's score, Present AUC and bands, then bench/finetune_curves.py over the pairs.
# Hours on 2 cores (each run ~30 min, the pre-training ~15 min); the data take ~12 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."
R=$(pwd)
A=$R/build/apps/aneura/aneura
B=${BENCH_DIR:-/tmp/aneura_bench_pretrain}
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(7 2)
mkdir -p "$B/runs"
cd "$B"

data() {  # NAME N SEED SUBSET_FLAGS...
  local name=$1 n=$2 seed=$3
  shift 3
  [ -d "$name" ] && return
  "$A" synth "all_$name" --n "$n" --size medium --seed "$seed" --force -q > /dev/null
  /usr/bin/python3 "$R/bench/subset.py" "all_$name" "$name" CTA,MRA "$@"
}
data DTR 240 21
data DUN 150 11 --unlabelled
data DTE 100 3
[ -f W/plans.json ] || { "$A" preprocess DTR W --spacing 0.5 -q && "$A" fingerprint W > /dev/null && "$A" plan W > /dev/null; }
[ -d WPRE/cases ] || "$A" preprocess DUN WPRE --spacing 0.5 -q
ENC=WPRE/pretrain/cpu_dots/last.pt
[ -f "$ENC" ] || "$A" pretrain WPRE -c cpu_dots --plans W/plans.json --epochs 60 --time-budget 900 --seed 42 \
  > pretrain.log 2>&1

run() {  # TAG SEED TRAIN_ARGS...: trains into runs/TAG, predicts and evaluates DTE
  local tag=$1 seed=$2
  shift 2
  [ -f "runs/$tag/eval.txt" ] && return
  rm -rf W/runs/cpu_dots/fold_0
  "$A" train W -c cpu_dots --fold 0 --seed "$seed" "$@" > "train_$tag.log" 2>&1
  rm -rf "runs/$tag" && mkdir -p "runs/$tag"
  mv W/runs/cpu_dots/fold_0 "runs/$tag/"
  cp W/runs/cpu_dots/model.json W/runs/cpu_dots/candidates.json "runs/$tag/"
  "$A" predict "runs/$tag" --data DTE -o "runs/$tag/p.csv" -q > "runs/$tag/predict.log" 2>&1
  "$A" evaluate "runs/$tag/p.csv" DTE/train.csv --points "runs/$tag/p_points" --data DTE > "runs/$tag/eval.txt"
}
epochs_of() { grep -c '"epoch"' "$1/fold_0/log.jsonl"; }  # RUN: its epochs, a log.jsonl line each
pairs=()
for s in "${SEEDS[@]}"; do
  run "scratch_$s" "$s"
  run "pretrained_$s" "$s" --epochs "$(epochs_of "runs/scratch_$s")" --time-budget 100000 --init-encoder "$ENC"
  pairs+=("runs/scratch_$s" "runs/pretrained_$s")
done

echo "== the $(($(wc -l < DTE/train.csv) - 1)) held-out CTA/TOF series of DTE (aneura predict + evaluate)"
for p in "${pairs[@]}"; do
  echo "-- $p ($(epochs_of "$p") epochs)"
  grep -E "^competition score|^Aneurysm Present  |by the largest" "$p/eval.txt"
done
echo "== fine-tuning losses"
/usr/bin/python3 "$R/bench/finetune_curves.py" "${pairs[@]}"

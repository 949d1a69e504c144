#!/usr/bin/env bash
# Data-parallel scaling on this machine: training samples/s of one process against `aneura launch
# --nproc 2` (Gloo), one LibTorch thread and no loader thread per process, the same plans (the demo's
# cpu_demo on the small preset at 1.5 mm), in one run. Prints both and the scaling efficiency
# (samples/s of 2 ranks / twice that of 1). Epoch 1 is left out (set-up, first allocations).
#   bench/bench_ddp.sh            EPOCHS=4 N=24 by default
set -euo pipefail
cd "$(dirname "$0")/.."
A=build/apps/aneura/aneura
EPOCHS=${EPOCHS:-4}
W=${BENCH_DIR:-/tmp/aneura_bench_ddp}
mkdir -p "$W"
if [ ! -f "$W/work/plans.json" ]; then
  "$A" synth "$W/data" --n "${N:-24}" --size small --seed 1 -q --force > /dev/null
  "$A" preprocess "$W/data" "$W/work" --spacing 1.5 -q > /dev/null 2>&1
  "$A" fingerprint "$W/work" > /dev/null 2>&1
  "$A" plan "$W/work" > /dev/null 2>&1
fi
run() {  # NAME launcher-args...: a fresh copy of the work folder, trained; prints the mean samples/s after epoch 1
  local name=$1
  shift
  rm -rf "$W/$name"
  mkdir -p "$W/$name"
  cp -r "$W/work/cases" "$W/work/plans.json" "$W/work/preprocess.json" "$W/$name/"
  "$@" train "$W/$name" -c cpu_demo --epochs "$EPOCHS" --time-budget 0 --threads 1 --workers 0 > "$W/$name.log" 2>&1
  python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$W/$name/runs/cpu_demo/fold_0/log.jsonl')][1:]
print(sum(r['samples_per_s'] for r in rows) / len(rows))"
}
one=$(run one "$A")
two=$(run two "$A" launch --nproc 2 --)
printf "%-34s %7.1f samples/s\n" "1 process, 1 thread" "$one"
printf "%-34s %7.1f samples/s   efficiency %.2f\n" "aneura launch --nproc 2, 1 thread each" "$two" \
  "$(echo "$two / (2 * $one)" | bc -l)"

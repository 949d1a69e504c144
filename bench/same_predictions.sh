#!/usr/bin/env bash
# Shows that two aneura binaries train and predict the same, bit for bit: a refactoring of the
# trainer or the predictor must not change a number. Both run the same small synthetic chain
# (synth -> preprocess -> plan -> train 3 epochs, one thread, no time budget -> predict with flip
# TTA and maps), then the training logs (without their timings), predictions.csv, the per-series
# JSON (without timings) and the maps are compared byte for byte.
#   bench/same_predictions.sh OUT BINARY_A BINARY_B
# Exit 0 when everything is identical, 1 otherwise. A binary's run is kept in OUT/a, OUT/b and
# reused when OUT/<x>/done exists (so the reference run of an older binary is made once).
set -euo pipefail
OUT=$1; A=$2; B=$3
run() {  # binary, folder
  local bin=$1 dir=$2
  [ -f "$dir/done" ] && return 0
  rm -rf "$dir"; mkdir -p "$dir"
  "$bin" synth "$dir/data" --n 24 --size small --seed 1 --force > /dev/null
  "$bin" synth "$dir/test" --n 8 --size small --seed 2 --cover-locations --force > /dev/null
  "$bin" preprocess "$dir/data" "$dir/work" --spacing 1.5 > /dev/null 2>&1
  "$bin" fingerprint "$dir/work" > /dev/null
  "$bin" plan "$dir/work" > /dev/null
  "$bin" train "$dir/work" --fold 0 --epochs 3 --time-budget 0 --threads 1 --seed 42 > "$dir/train.log" 2>&1
  local cfg; cfg=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['default_configuration'])" "$dir/work/plans.json")
  "$bin" predict "$dir/work/runs/$cfg" --data "$dir/test" -o "$dir/predictions.csv" --heatmaps -q --threads 1 2> "$dir/predict.log" || true
  touch "$dir/done"
}
run "$A" "$OUT/a"
run "$B" "$OUT/b"
python3 - "$OUT/a" "$OUT/b" <<'PY'
import json, sys, pathlib, filecmp
a, b = map(pathlib.Path, sys.argv[1:3])
bad = 0
def same(what, x, y):
    global bad
    if x != y:
        bad += 1
        print(f"DIFFERENT: {what}")
TIMING = {"samples_per_s", "loader_wait_s", "epoch_s", "elapsed_s", "timing_s"}
def strip(j):
    if isinstance(j, dict): return {k: strip(v) for k, v in j.items() if k not in TIMING}
    if isinstance(j, list): return [strip(v) for v in j]
    return j
logs = sorted(a.glob("work/runs/*/fold_0/log.jsonl"))
same("a training log exists", len(logs), 1)
for la in logs:
    lb = b / la.relative_to(a)
    ja = [strip(json.loads(l)) for l in la.read_text().splitlines()]
    jb = [strip(json.loads(l)) for l in lb.read_text().splitlines()]
    same(f"training log {la.relative_to(a)} ({len(ja)} epochs)", ja, jb)
    ma, mb = la.parent.parent / "model.json", lb.parent.parent / "model.json"
    # (the plans' global section records the machine's free RAM and disk at planning time)
    ja, jb = json.loads(ma.read_text()), json.loads(mb.read_text())
    for j in (ja, jb): j["plans"].pop("global")
    same("model.json", ja, jb)
same("predictions.csv", (a / "predictions.csv").read_bytes(), (b / "predictions.csv").read_bytes())
files = sorted(p.name for p in (a / "predictions_points").iterdir())
same("the per-series files", files, sorted(p.name for p in (b / "predictions_points").iterdir()))
for name in files:
    pa, pb = a / "predictions_points" / name, b / "predictions_points" / name
    if name.endswith(".json"):
        same(name, strip(json.loads(pa.read_text())) | {"folder": "", "model": ""},
             strip(json.loads(pb.read_text())) | {"folder": "", "model": ""})
    else:
        same(name, pa.read_bytes(), pb.read_bytes())
rows = len((a / "predictions.csv").read_text().splitlines()) - 1
print(f"compared: {len(files)} per-series files, {rows} prediction rows: " + ("identical" if not bad else f"{bad} difference(s)"))
sys.exit(1 if bad else 0)
PY

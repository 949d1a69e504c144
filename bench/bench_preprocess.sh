#!/usr/bin/env bash
# aneura preprocess vs the Python pipeline the seeds describe (bench/peers/python_pipeline.py),
# on the same CTA-sized synthetic series (400 x 512 x 512), same machine, same run.
# aneura: read + RAS + 1 mm linear resampling + CT normalization + writing the case (no crop, so
# both resample the whole field of view); the peer: read + HU + window + 32x384x384 resize, and
# RAS + 1 mm resampling (no writing). COPIES series are processed, with 1 and then 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${BENCH_DIR:-/tmp/aneura_bench}
COPIES=${COPIES:-4}
A=build/apps/aneura/aneura
[ -d "$W/cta" ] || build/bench/aneura_make_series "$W" --cta
rm -rf "$W/prep" && mkdir -p "$W/prep/data/series"
for i in $(seq "$COPIES"); do ln -s "$W/cta" "$W/prep/data/series/1.2.826.0.1.3680043.8.498.9$i"; done
cat "$W"/cta/*.dcm > /dev/null  # warm page cache for both
t() { local s=$(date +%s.%N); "$@" > /dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }
a1=$(t "$A" preprocess "$W/prep/data" "$W/prep/w1" --workers 1 --no-crop --qa 0 -q)
a2=$(t "$A" preprocess "$W/prep/data" "$W/prep/w2" --workers 2 --no-crop --qa 0 -q)
p=$( { /usr/bin/python3 bench/peers/python_pipeline.py "$W/cta" | tee /dev/stderr | awk '/mean/ {print $4}'; } )
per1=$(echo "$a1 / $COPIES" | bc -l); per2=$(echo "$a2 / $COPIES" | bc -l)
echo "series: 400 x 512 x 512 CTA-sized; cores: $(nproc); copies: $COPIES"
printf "python peer (1 process)      %.2f s per series\n" "$p"
printf "aneura preprocess, 1 worker  %.2f s per series   %.1fx faster\n" "$per1" "$(echo "$p / $per1" | bc -l)"
printf "aneura preprocess, 2 workers %.2f s per series   %.1fx faster; 1 -> 2 workers: %.2fx throughput\n" \
  "$per2" "$(echo "$p / $per2" | bc -l)" "$(echo "$a1 / $a2" | bc -l)"

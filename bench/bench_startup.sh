#!/usr/bin/env bash
# Start-up against dcm2niix's: `aneura version` (the program alone: no GDCM, ITK or LibTorch) and
# `aneura info` on one series (its module loads GDCM, not ITK or LibTorch); the median wall time of
# RUNS runs and the median peak memory, in one run on the same machine.
#   bench/bench_startup.sh [SERIES_DIR]     (default: a small synthetic series made here)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-11}
A=build/apps/aneura/aneura
S=${1:-}
if [ -z "$S" ]; then
  W=${BENCH_DIR:-/tmp/aneura_bench_startup}
  mkdir -p "$W"
  [ -d "$W/data" ] || "$A" synth "$W/data" --n 1 --size small --seed 1 -q > /dev/null
  S="$W/data/series/$(ls "$W/data/series" | head -1)"
fi
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() {  # prints "seconds peak_kB" (medians; time from the clock in ns, memory from GNU time)
  for i in $(seq "$RUNS"); do
    local t0 t1 kb
    t0=$(date +%s%N)
    "$@" > /dev/null 2>&1 || true
    t1=$(date +%s%N)
    kb=$(/usr/bin/time -f "%M" "$@" 2>&1 > /dev/null | tail -1)
    echo "$(echo "($t1 - $t0) / 1000000000" | bc -l) $kb"
  done > /tmp/startup.$$
  echo "$(cut -d' ' -f1 /tmp/startup.$$ | median) $(cut -d' ' -f2 /tmp/startup.$$ | median)"
  rm -f /tmp/startup.$$
}
read -r dv dm <<< "$(measure dcm2niix -v)"
read -r vv vm <<< "$(measure "$A" version)"
read -r hv hm <<< "$(measure "$A" info --help)"
read -r iv im <<< "$(measure "$A" info "$S")"
printf "%-28s %6.3f s %7.1f MB\n" "dcm2niix -v" "$dv" "$(echo "$dm / 1024" | bc -l)"
printf "%-28s %6.3f s %7.1f MB   ratio %.2f\n" "aneura version" "$vv" "$(echo "$vm / 1024" | bc -l)" "$(echo "$vv / $dv" | bc -l)"
printf "%-28s %6.3f s %7.1f MB   (its module loaded, GDCM's dictionaries built)\n" "aneura info --help" "$hv" "$(echo "$hm / 1024" | bc -l)"
printf "%-28s %6.3f s %7.1f MB\n" "aneura info (one series)" "$iv" "$(echo "$im / 1024" | bc -l)"

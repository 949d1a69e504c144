#!/usr/bin/env bash
# aneura convert vs dcm2niix on the same CTA-sized series (400 slices of 512 x 512, 16-bit,
# uncompressed), same machine, same run, both writing uncompressed .nii. Prints the median of
# RUNS wall-clock times and the ratio aneura/dcm2niix (< 1 means aneura is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
W=${BENCH_DIR:-/tmp/aneura_bench}
A=build/apps/aneura/aneura
[ -d "$W/cta" ] || build/bench/aneura_make_series "$W" --cta
rm -rf "$W/out" && mkdir -p "$W/out"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local s=$(date +%s.%N); "$@" > /dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }
cat "$W"/cta/*.dcm > /dev/null  # same warm page cache for both
# Each run starts with no output file (dcm2niix would otherwise add a suffix instead of
# replacing it, and aneura would pay for freeing the old file): removal is not timed.
fresh() { rm -f "$W"/out/*; sync; }
d=$(for i in $(seq "$RUNS"); do fresh; t dcm2niix -z n -f d2n -o "$W/out" "$W/cta"; done | median)
a1=$(for i in $(seq "$RUNS"); do fresh; t "$A" convert -q --threads 1 "$W/cta" -o "$W/out/aneura1.nii"; done | median)
a=$(for i in $(seq "$RUNS"); do fresh; t "$A" convert -q "$W/cta" -o "$W/out/aneura.nii"; done | median)
dcm2niix -z n -f d2n -o "$W/out" "$W/cta" > /dev/null 2>&1
# The floor of writing: `cat` of the same bytes (dcm2niix's file, in the page cache) to a new file,
# against aneura's own write step (its split, median of RUNS runs, 1 thread).
cat "$W/out/d2n.nii" > /dev/null
f=$(for i in $(seq "$RUNS"); do rm -f "$W/out/floor.nii"; sync; t sh -c "cat '$W/out/d2n.nii' > '$W/out/floor.nii'"; done | median)
w=$(for i in $(seq "$RUNS"); do fresh; "$A" convert --threads 1 "$W/cta" -o "$W/out/aneura1.nii" 2>&1 | sed -n 's/.*write \([0-9.e-]*\)).*/\1/p'; done | median)
rm -f "$W/out/floor.nii"; fresh; "$A" convert -q "$W/cta" -o "$W/out/aneura.nii"
dcm2niix -z n -f d2n -o "$W/out" "$W/cta" > /dev/null 2>&1
echo "series: $(ls "$W/cta" | wc -l) files, 512x512, $(du -sh "$W/cta" | cut -f1); cores: $(nproc)"
printf "dcm2niix            %.3f s\n" "$d"
printf "aneura (all cores)  %.3f s   ratio %.2f\n" "$a" "$(echo "$a / $d" | bc -l)"
printf "aneura (1 thread)   %.3f s   ratio %.2f\n" "$a1" "$(echo "$a1 / $d" | bc -l)"
printf "writing: aneura's write step %.3f s, cat of the same bytes %.3f s   ratio %.2f\n" "$w" "$f" "$(echo "$w / $f" | bc -l)"
/usr/bin/python3 bench/compare_nifti.py "$W/out/aneura.nii" "$W/out/d2n.nii"

#!/usr/bin/env python3
"""A candidate stage's reach: for every aneurysm of a synthetic dataset, the rank of the first candidate
within its radius + 1 mm, by radius band (how many a stage judging the top K could find).

    bench/dot_reach.py CANDIDATES_JSON DATA

CANDIDATES_JSON is aneura_bench_dots' output ({id: {"candidates": [[x, y, z, strength], ...]}}, world
LPS, strongest first); DATA the synthetic dataset (its truth.json). Cases of other modalities than
CTA and MRA, and series not in the JSON, are left out.
"""
import json
import os
import sys

import numpy as np

cands = json.load(open(sys.argv[1]))
truth = json.load(open(os.path.join(sys.argv[2], "truth.json")))
rows = []
for s in truth["series"]:
    c = cands.get(s["series_uid"])
    if c is None or s["modality"] not in ("CTA", "MRA"):
        continue
    pts = np.array([p[:3] for p in c["candidates"]]).reshape(-1, 3)
    for a in s["aneurysms"]:
        d = np.linalg.norm(pts - np.array(a["centre_lps_mm"]), axis=1) if len(pts) else np.array([])
        near = np.where(d <= a["radius_mm"] + 1.0)[0]
        rows.append((a["radius_mm"], int(near[0]) + 1 if len(near) else 10**6))
ks = (4, 8, 16, 32, 64)
print("radius band  aneurysms  " + "  ".join(f"top{k:<3d}" for k in ks))
for lo, hi in [(0, 2), (2, 3), (3, 99)]:
    r = [x for x in rows if lo <= x[0] < hi]
    print(f"{lo}-{hi if hi < 99 else ''} mm".ljust(13) + f"{len(r):9d}  " + "  ".join(f"{sum(x[1] <= k for x in r):6d}" for k in ks))
secs = [v["seconds"] for v in cands.values() if "seconds" in v]
print(f"{len(cands)} cases, {np.mean(secs):.2f} s per case" if secs else "")

#!/usr/bin/python3
"""Readings of a dot-candidate stage's Present (`cpu_dots`, candidate_source "dots"), replayed from the
series JSON of one prediction.

    bench/dots_sweep.py POINTS_DIR DATA [JUDGED_JSON]

POINTS_DIR holds `aneura predict WORK/runs/cpu_dots ...` output (<uid>.json with "candidates": world
LPS, strongest dot-filter response first, and the stage's judgements: fine, fine_centre), DATA the
synthetic dataset predicted (truth.json). For the CTA/TOF series: the reach (aneurysms per radius
band with a candidate within radius + 1 mm among the first 8 / 16 / 32), then the Present AUC and its
bands (< 2 / 2-3 / >= 3 mm) for each reading: the largest fine_centre (the map), the largest
fine (the whole window), and the same over the first 16 candidates only; then how the judgements
split between candidates at an aneurysm and the others. The label head's Present per window (`head`)
is a reading too when the JSON has it; JUDGED_JSON (aneura_bench_judge's output: the same
candidates judged again on the cached cases) replaces each candidate's fine_centre and head.
Needs numpy (Debian: python3-numpy).
"""
import json
import sys

import numpy as np

from candidate_sweep import BANDS, cta_tof_predictions
from component_sweep import band_auc
from heatmap_ranks import auc


def main(points, data, judged=None):
    judged = json.load(open(judged)) if judged else {}
    rows, at_aneurysm, others, head_at, head_others = [], [], [], [], []
    reach = {b: [0, 0, 0, 0] for b in BANDS}  # within the first 8, 16, 32; count
    for uid, s, j in cta_tof_predictions(points, data):
        cands = j.get("candidates", [])
        if uid in judged:
            for c, r in zip(cands, judged[uid]):
                c.update(r)
        pts = np.array([c["world_lps_mm"] for c in cands]).reshape(-1, 3)
        hit = np.zeros(len(cands), bool)
        for a in s["aneurysms"]:
            d = np.linalg.norm(pts - np.array(a["centre_lps_mm"]), axis=1) if len(pts) else np.array([])
            near = np.where(d <= a["radius_mm"] + 1.0)[0]
            hit[near] = True
            b = next(b for b in BANDS if b[0] <= a["radius_mm"] < b[1])
            first = near[0] + 1 if len(near) else 10**6
            for i, k in enumerate((8, 16, 32)):
                reach[b][i] += first <= k
            reach[b][3] += 1
        for c, h in zip(cands, hit):
            (at_aneurysm if h else others).append(c["fine_centre"])
        radius = max([a["radius_mm"] for a in s["aneurysms"]], default=0.0)
        fc = [c["fine_centre"] for c in cands] or [0.0]
        fw = [c["fine"] for c in cands] or [0.0]
        hd = [c.get("head", -1) for c in cands] or [-1]
        rows.append((int(bool(s["aneurysms"])), radius, max(fc), max(fw), max(fc[:16]), max(fw[:16]), max(hd), max(hd[:16])))
        for c, h in zip(cands, hit):
            (head_at if h else head_others).append(c.get("head", -1))
    print("reach (aneurysms with a candidate within radius + 1 mm among the first 8 / 16 / 32)")
    for b in BANDS:
        print(f"  {b[0]}-{b[1] if b[1] < 99 else ''} mm: {reach[b][0]} / {reach[b][1]} / {reach[b][2]} of {reach[b][3]}")
    y = [r[0] for r in rows]
    rad = [r[1] for r in rows]
    print(f"\n{len(rows)} CTA/TOF series, {sum(y)} positive")
    print("reading                           Present   <2 / 2-3 / >=3 mm")
    for name, k in (("largest fine_centre (the map)", 2), ("largest fine (whole window)", 3),
                    ("largest fine_centre, first 16", 4), ("largest fine, first 16", 5),
                    ("largest label head (the default)", 6), ("largest head, first 16", 7)):
        s = [r[k] for r in rows]
        bands = " / ".join(f"{band_auc(y, s, rad, lo, hi):.3f}" for lo, hi in BANDS)
        print(f"{name:32s}  {auc(y, s):.3f}    {bands}")
    a, o = np.array(at_aneurysm), np.array(others)
    if len(a) and len(o):
        print(f"\njudgement (fine_centre) at aneurysms: {len(a)} candidates, median {np.median(a):.3f}, >= 0.5: {(a >= 0.5).mean():.0%}")
        print(f"elsewhere: {len(o)} candidates, median {np.median(o):.3f}, 90th percentile {np.percentile(o, 90):.3f}, >= 0.5: {(o >= 0.5).mean():.1%}")
    a, o = np.array(head_at), np.array(head_others)
    if len(a) and len(o) and a.min() >= 0:
        print(f"label head at aneurysms: median {np.median(a):.3f}, >= 0.5: {(a >= 0.5).mean():.0%}; elsewhere: median "
              f"{np.median(o):.3f}, 90th percentile {np.percentile(o, 90):.3f}, >= 0.5: {(o >= 0.5).mean():.1%}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)

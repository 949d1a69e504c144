#!/usr/bin/python3
"""Readings of a candidate stage's Present, replayed from the series JSON of one prediction.

    bench/candidate_sweep.py POINTS_DIR DATA WEIGHT [K ...]

POINTS_DIR holds `aneura predict CANDIDATE_MODEL ...` output (<uid>.json with "candidates": world
LPS, the coarse model's heatmap there and the candidate stage's judgements), DATA the synthetic
dataset predicted (truth.json), WEIGHT the --candidate-weight of that prediction (the coarse model's
own Present is recovered from it: P = (1 - w) coarse + w max sqrt(coarse x fine)). For each K (default: every
candidate), the K strongest candidates only (they are listed strongest first, so one prediction with
`--candidates 64` replays 8, 16, 32): for the CTA/TOF series, how many aneurysms per radius band
have a candidate within 4 mm (the stage's reach), then the Present AUC and its bands for each
reading: the coarse model's, the largest judgement, their mixes, and the largest per-candidate
geometric mean of coarse and fine. Needs numpy (Debian: python3-numpy).
"""
import json
import os
import sys

import numpy as np

from component_sweep import band_auc
from heatmap_ranks import auc

BANDS = ((0, 2), (2, 3), (3, 99))


def cta_tof_predictions(points, data):
    """(uid, truth series, series JSON) for every CTA/TOF series of DATA predicted into POINTS."""
    truth = json.load(open(os.path.join(data, "truth.json")))["series"]
    for s in truth:
        path = os.path.join(points, s["series_uid"] + ".json")
        if s["modality"] in ("CTA", "MRA") and os.path.exists(path):
            yield s["series_uid"], s, json.load(open(path))


def main(points, data, weight, top=None):
    rows = []
    reach = {b: [0, 0] for b in BANDS}
    for uid, s, j in cta_tof_predictions(points, data):
        cands = j.get("candidates", [])
        if j.get("fallback") or not cands:
            continue
        present = j["probabilities"]["Aneurysm Present"]
        agreed = max(np.sqrt(max(c["coarse"], 0) * c["fine"]) for c in cands)
        coarse = (present - weight * agreed) / (1 - weight) if weight < 1 else float("nan")
        cands = cands[:top]
        fine = np.array([c["fine"] for c in cands])
        centre = np.array([c.get("fine_centre", c["fine"]) for c in cands])
        coarse_k = np.clip(np.array([c["coarse"] for c in cands]), 0, None)
        where = np.array([c["world_lps_mm"] for c in cands])
        for a in s["aneurysms"]:
            band = next(b for b in BANDS if b[0] <= a["radius_mm"] < b[1])
            reach[band][1] += 1
            reach[band][0] += int(np.linalg.norm(where - np.array(a["centre_lps_mm"]), axis=1).min() <= 4)
        radius = max([a["radius_mm"] for a in s["aneurysms"]], default=0.0)
        rows.append((int(bool(s["aneurysms"])), radius, coarse, fine.max(), centre.max(),
                     float(np.sqrt(coarse_k * fine).max()), float(np.sqrt(coarse_k * centre).max())))
    print(f"== {top or 'all'} candidates")
    print("candidates within 4 mm of an aneurysm: " + ", ".join(f"{lo}-{hi} mm {h}/{n}" for (lo, hi), (h, n) in reach.items()))
    y = np.array([r[0] for r in rows])
    radius = np.array([r[1] for r in rows])
    coarse, fine, centre, geo, geo_centre = (np.array([r[k] for r in rows]) for k in (2, 3, 4, 5, 6))
    readings = [("coarse model", coarse), ("largest judgement", fine), ("largest centre judgement", centre)]
    readings += [("max sqrt(coarse x fine)", geo), ("max sqrt(coarse x centre)", geo_centre)]
    readings += [(f"mix w = {w}", (1 - w) * coarse + w * geo) for w in (0.25, 0.5, 0.75)]
    print(f"{len(rows)} CTA/TOF series\nreading                     Present  < 2 / 2-3 / >= 3 mm")
    for name, s in readings:
        bands = " / ".join(f"{band_auc(y, s, radius, lo, hi):.3f}" for lo, hi in BANDS)
        print(f"{name:26s}  {auc(y, s):7.3f}  {bands}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    for k in [int(a) for a in sys.argv[4:]] or [None]:
        main(sys.argv[1], sys.argv[2], float(sys.argv[3]), k)

#!/usr/bin/python3
"""Present AUC per modality group and per aneurysm size band from a predictions CSV.

    bench/bands.py PREDICTIONS_CSV DATA [PREDICTIONS_CSV ...]

DATA is the synthetic dataset predicted (train.csv's Aneurysm Present, truth.json's modalities and
radii). For each CSV: the Present AUC pooled, for CTA/TOF and for T2/T1post, and per radius band of
each positive's largest aneurysm (< 2 / 2-3 / >= 3 mm: the share of the group's negatives it
outranks, ties half), for CTA/TOF and for T2/T1post. The tables of docs/EXPERIMENTS.md.
Needs numpy (Debian: python3-numpy).
"""
import csv
import json
import os
import sys

import numpy as np

from component_sweep import band_auc
from heatmap_ranks import auc


def main(data, csvs):
    truth = {s["series_uid"]: s for s in json.load(open(os.path.join(data, "truth.json")))["series"]}
    labels = {r["SeriesInstanceUID"]: int(r["Aneurysm Present"]) for r in csv.DictReader(open(os.path.join(data, "train.csv")))}
    groups = {"CTA/TOF": ("CTA", "MRA"), "T2/T1post": ("MRI T2", "MRI T1post")}
    print("predictions                 Present  CTA/TOF  T2/T1post   CTA/TOF <2 / 2-3 / >=3 mm   T2/T1post <2 / 2-3 / >=3 mm")
    for path in csvs:
        pred = {r["SeriesInstanceUID"]: float(r["Aneurysm Present"]) for r in csv.DictReader(open(path))}
        uids = [u for u in truth if u in pred]
        y = np.array([labels[u] for u in uids])
        s = np.array([pred[u] for u in uids])
        mod = [truth[u]["modality"] for u in uids]
        radius = np.array([max([a["radius_mm"] for a in truth[u]["aneurysms"]], default=0.0) for u in uids])
        cols, bands = [auc(y, s)], []
        for g, members in groups.items():
            idx = [i for i, m in enumerate(mod) if m in members]
            cols.append(auc(y[idx], s[idx]))
            bands.append(" / ".join(f"{band_auc(y[idx], s[idx], radius[idx], lo, hi):.3f}" for lo, hi in ((0, 2), (2, 3), (3, 99))))
        print(f"{os.path.basename(path):26s}  " + "  ".join(f"{c:7.3f}" for c in cols) + "   " + "   ".join(bands))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[2], [sys.argv[1]] + sys.argv[3:])

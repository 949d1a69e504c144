#!/usr/bin/python3
"""Which component clean-up helps: the Present AUC when aneurysm components under a size are dropped.

    bench/component_sweep.py POINTS_DIR DATA

POINTS_DIR holds `aneura predict --heatmaps` output (<uid>_heatmap.nii: 1 - p(background) after the
field-edge and vessel-stage damping, the map `predict --min-component-mm3` cleans), DATA the
synthetic dataset predicted (train.csv's Aneurysm Present, truth.json's modalities and radii). For
each threshold and minimum size, every component (face-connected voxels above the threshold) under
the size is set to 0, as `predict` does, and the series' Present probability is the map's maximum.
Prints the Present AUC pooled and per modality group, and per radius band for CTA/TOF (each
positive's largest aneurysm; the share of negatives it outranks). Replay only: the location columns
(the other half of the score) need a real `predict --min-component-mm3` run.
Needs numpy, scipy and nibabel (Debian: python3-numpy python3-scipy python3-nibabel).
"""
import csv
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

from heatmap_ranks import auc  # Mann-Whitney, ties half


def band_auc(y, s, radius, lo, hi):
    y, s, radius = np.asarray(y), np.asarray(s, dtype=float), np.asarray(radius)
    n = s[y == 0]
    pos = [v for v, yy, r in zip(s, y, radius) if yy == 1 and lo <= r < hi]
    if not pos or len(n) == 0:
        return float("nan")
    return np.mean([((v > n).sum() + 0.5 * (v == n).sum()) / len(n) for v in pos])


def main(points_dir, data):
    truth = {s["series_uid"]: s for s in json.load(open(os.path.join(data, "truth.json")))["series"]}
    labels = {r["SeriesInstanceUID"]: int(r["Aneurysm Present"]) for r in csv.DictReader(open(os.path.join(data, "train.csv")))}
    series = []
    for uid, t in truth.items():
        img = nib.load(os.path.join(points_dir, uid + "_heatmap.nii"))
        heat = np.asarray(img.dataobj, dtype=np.float32)
        radius = max([a["radius_mm"] for a in t["aneurysms"]], default=0.0)
        series.append((uid, t["modality"], radius, heat, float(np.prod(img.header.get_zooms()[:3]))))
    y = [labels[s[0]] for s in series]
    groups = {"all": lambda m: True, "CTA/TOF": lambda m: m in ("CTA", "MRA"), "T2/T1post": lambda m: m not in ("CTA", "MRA")}
    print("threshold  min_mm3  " + "  ".join(f"{g:>9}" for g in groups) + "   CTA/TOF <2 / 2-3 / >=3 mm   dropped/series")
    for threshold in (0.3, 0.5, 0.7):
        for min_mm3 in (0, 2, 5, 10, 20, 40):
            present, dropped = [], 0
            for uid, m, r, heat, voxel in series:
                h = heat.copy()
                if min_mm3 > 0:
                    lab, n = ndimage.label(h > threshold)
                    if n:
                        sizes = ndimage.sum_labels(np.ones_like(h), lab, index=np.arange(1, n + 1)) * voxel
                        small = np.nonzero(sizes < min_mm3)[0] + 1
                        dropped += len(small)
                        h[np.isin(lab, small)] = 0
                present.append(float(h.max()))
            cols = []
            for g, keep in groups.items():
                idx = [i for i, s in enumerate(series) if keep(s[1])]
                cols.append(auc([y[i] for i in idx], [present[i] for i in idx]))
            idx = [i for i, s in enumerate(series) if s[1] in ("CTA", "MRA")]
            yy, ss, rr = [y[i] for i in idx], [present[i] for i in idx], [series[i][2] for i in idx]
            bands = [band_auc(yy, ss, rr, lo, hi) for lo, hi in ((0, 2), (2, 3), (3, 99))]
            print(f"{threshold:9.1f}  {min_mm3:7g}  " + "  ".join(f"{c:9.3f}" for c in cols) + "   " +
                  " / ".join(f"{b:.3f}" for b in bands) + f"   {dropped / len(series):.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])

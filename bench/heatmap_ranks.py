#!/usr/bin/env python3
"""Where the model looks, per modality: the analysis behind the README's "What the demo reaches".

    bench/heatmap_ranks.py POINTS_DIR DATA PREDICTIONS_CSV

POINTS_DIR holds `aneura predict --heatmaps` output (<uid>_heatmap.nii, <uid>_roi.nii), DATA is the
synthetic dataset predicted (its truth.json has every aneurysm's centre and radius), PREDICTIONS_CSV
the predictions. Prints, for every aneurysm, the heatmap (1 - p(background)) near its centre (the
largest value within 2 voxels) and the share of ROI voxels above that value (0: the aneurysm holds
the maximum), then the Present AUC per modality and pooled, from the predicted probability and
from the heatmap's maximum, then by aneurysm size: for each positive series (its largest
aneurysm's radius) the share of negative series its predicted probability outranks (ties half),
averaged per radius band - the Present AUC restricted to that band's positives. Needs numpy and nibabel (Debian: python3-numpy python3-nibabel).
"""
import csv
import json
import os
import sys

import nibabel as nib
import numpy as np


def auc(y, s):
    """Mann-Whitney AUC with ties counted half; nan when one class is missing."""
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    p, n = s[y == 1], s[y == 0]
    if len(p) == 0 or len(n) == 0:
        return float("nan")
    return ((p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()) / (len(p) * len(n))


def main(points_dir, data, predictions):
    truth = json.load(open(os.path.join(data, "truth.json")))
    present = {r["SeriesInstanceUID"]: float(r["Aneurysm Present"]) for r in csv.DictReader(open(predictions))}
    rows = []
    print("modality    radius_mm  heat_at  heat_max  share_above")
    for s in truth["series"]:
        uid = s["series_uid"]
        path = os.path.join(points_dir, uid + "_heatmap.nii")
        if not os.path.exists(path):
            continue
        img = nib.load(path)
        heat = img.get_fdata()
        to_index = np.linalg.inv(img.affine)  # NIfTI affine: voxel -> RAS mm
        for a in s["aneurysms"]:
            lps = a["centre_lps_mm"]
            ijk = np.round((to_index @ np.array([-lps[0], -lps[1], lps[2], 1.0]))[:3]).astype(int)
            if not all(0 <= i < n for i, n in zip(ijk, heat.shape)):
                print(f"{s['modality']:10s}  {a['radius_mm']:5.1f}  outside the ROI")
                continue
            near = heat[tuple(slice(max(i - 2, 0), i + 3) for i in ijk)].max()
            print(f"{s['modality']:10s}  {a['radius_mm']:9.1f}  {near:7.3f}  {heat.max():8.3f}  {(heat > near).mean():11.4f}")
        rows.append((s["modality"], int(bool(s["aneurysms"])), present[uid], heat.max()))
    print("\nmodality    series  positive  Present AUC (probability)  (heatmap max)")
    for m in ["all", "CTA", "MRA", "MRI T2", "MRI T1post"]:
        r = [x for x in rows if m == "all" or x[0] == m]
        y = [x[1] for x in r]
        print(f"{m:10s}  {len(r):6d}  {sum(y):8d}  {auc(y, [x[2] for x in r]):25.3f}  {auc(y, [x[3] for x in r]):13.3f}")
    negatives = np.array([present[s["series_uid"]] for s in truth["series"] if not s["aneurysms"] and s["series_uid"] in present])
    print("\nradius_mm   positives  Present AUC against all negatives")
    for lo, hi in [(0, 2), (2, 3), (3, 100)]:
        ranks = [((negatives < present[s["series_uid"]]).sum() + 0.5 * (negatives == present[s["series_uid"]]).sum()) / len(negatives)
                 for s in truth["series"]
                 if s["aneurysms"] and s["series_uid"] in present and lo <= max(a["radius_mm"] for a in s["aneurysms"]) < hi]
        band = f"{lo}-{hi}" if hi < 100 else f">= {lo}"
        print(f"{band:10s}  {len(ranks):9d}  {np.mean(ranks) if ranks else float('nan'):.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])

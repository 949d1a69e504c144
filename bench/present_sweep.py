#!/usr/bin/python3
"""How a series' "Aneurysm Present" could be read off its saved heatmap, replayed offline.

    bench/present_sweep.py POINTS_DIR DATA

POINTS_DIR holds `aneura predict --heatmaps` output (<uid>_heatmap.nii, <uid>_roi.nii), DATA the
synthetic dataset predicted (truth.json). For every series with a heatmap, Present is computed as
the heatmap's maximum (what predict does), the mean of its top 8 / 27 / 125 voxels, the maximum
after Gaussian smoothing (sigma 1 and 2 voxels), and the maximum inside a brightness gate (voxels
within 1 or 2 voxels of an image value above q x the ROI's 99.5th percentile: contrast-filled
lumen on CTA/TOF); then the Present AUC and the per-band ranks (each positive's rank among the
negatives, averaged by its largest aneurysm's radius < 2 / 2-3 / >= 3 mm), as bands.py. Also
the negatives' heatmap maxima and where they lie. Needs numpy, scipy and nibabel.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

from heatmap_ranks import auc


def main(points_dir, data):
    truth = json.load(open(os.path.join(data, "truth.json")))["series"]
    cases = []
    for s in truth:
        path = os.path.join(points_dir, s["series_uid"] + "_heatmap.nii")
        if not os.path.exists(path):
            continue
        heat = nib.load(path).get_fdata().astype(np.float32)
        roi = nib.load(os.path.join(points_dir, s["series_uid"] + "_roi.nii")).get_fdata().astype(np.float32)
        radius = max([a["radius_mm"] for a in s["aneurysms"]], default=0.0)
        cases.append((int(bool(s["aneurysms"])), radius, heat, roi))
    y = np.array([c[0] for c in cases])
    radius = np.array([c[1] for c in cases])
    print(f"{len(cases)} series, {y.sum()} positive")

    def report(name, values):
        v = np.array(values)
        neg = v[y == 0]

        def band(lo, hi):
            pos = v[(y == 1) & (radius >= lo) & (radius < hi)]
            return np.mean([((neg < p).sum() + 0.5 * (neg == p).sum()) / len(neg) for p in pos]) if len(pos) else float("nan")

        print(f"{name:26s} AUC {auc(y, v):.3f}   < 2 {band(0, 2):.3f}   2-3 {band(2, 3):.3f}   >= 3 {band(3, 99):.3f}")

    report("max (predict's)", [c[2].max() for c in cases])
    for k in (8, 27, 125):
        report(f"mean of top {k}", [np.sort(c[2].ravel())[-k:].mean() for c in cases])
    for sigma in (1.0, 2.0):
        report(f"max after smoothing {sigma:g}", [ndimage.gaussian_filter(c[2], sigma).max() for c in cases])
    for size in (3, 5):
        for q in (0.3, 0.5, 0.7):
            report(f"bright gate {size} q {q}",
                   [(c[2] * (ndimage.maximum_filter(c[3], size=size) >= q * np.percentile(c[3], 99.5))).max() for c in cases])
    neg = [c for c in cases if not c[0]]
    top = np.array([c[2].max() for c in neg])
    comps = [ndimage.label(c[2] > 0.5)[1] for c in neg]
    on_lumen = sum(c[3][np.unravel_index(np.argmax(c[2]), c[2].shape)] > np.percentile(c[3], 99.5) for c in neg)
    print(f"negatives: heatmap maximum median {np.median(top):.3f}, > 0.9 in {(top > 0.9).sum()} of {len(neg)}, "
          f"> 0.5 in {(top > 0.5).sum()}; components > 0.5 per series: median {np.median(comps):g}; "
          f"the maximum on an image value above the ROI's 99.5th percentile in {on_lumen}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])

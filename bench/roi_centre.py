#!/usr/bin/env python3
"""How well the ROI finder (find_roi_centre, src/train/data.hpp) places the ROI on synthetic heads.

    bench/roi_centre.py POINTS_DIR DATA [POINTS_DIR ...]

POINTS_DIR holds `aneura predict --heatmaps` output (<uid>_roi.nii: the ROI grid, centred on the
found centre); DATA is the synthetic dataset predicted. Its truth.json gives each head's centre; the
generator puts the Circle of Willis 8 mm below it (subject (0, 0, -8) mm; the head's small random
rotation moves that by under 1 mm). Prints, per modality and for all series, the mean and standard
deviation of the ROI centre minus that point along L, P and S (LPS mm), then the spread (sd) of the
true aneurysm centres around the ROI centre per location column: what the location prior and the
coordinate channels see. Needs numpy and nibabel (Debian: python3-numpy python3-nibabel).
"""
import collections
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np


def roi_centres(points_dir):
    out = {}
    for f in glob.glob(os.path.join(points_dir, "*_roi.nii")):
        uid = os.path.basename(f)[: -len("_roi.nii")]
        im = nib.load(f)
        n = np.array(im.shape[:3], dtype=float)
        c = im.affine[:3, :3] @ ((n - 1) / 2) + im.affine[:3, 3]
        c[:2] *= -1  # RAS -> LPS
        out[uid] = c
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    data = sys.argv[2]
    truth = {s["series_uid"]: s for s in json.load(open(os.path.join(data, "truth.json")))["series"]}
    for points_dir in [sys.argv[1]] + sys.argv[3:]:
        centres = roi_centres(points_dir)
        if not centres:
            sys.exit(f"{points_dir}: no <uid>_roi.nii (run aneura predict --heatmaps)")
        err = collections.defaultdict(list)
        spread = collections.defaultdict(list)
        for uid, c in centres.items():
            s = truth[uid]
            cow = np.array(s["head_centre_lps_mm"]) + np.array([0, 0, -8.0])
            err[s["modality"]].append(c - cow)
            err["all"].append(c - cow)
            for a in s["aneurysms"]:
                spread[a["column"]].append(np.array(a["centre_lps_mm"]) - c)
        print(f"{points_dir}: ROI centre minus the CoW (head centre - 8 mm S), LPS mm, {len(centres)} series")
        for k in sorted(err, key=lambda k: (k == "all", k)):
            e = np.array(err[k])
            print(f"  {k:12s} n={len(e):3d}  mean {np.round(e.mean(0), 1)}  sd {np.round(e.std(0), 1)}  max |S| {np.abs(e[:, 2]).max():.1f}")
        sds = [np.array(v).std(0) for k, v in sorted(spread.items()) if len(v) > 1]
        if sds:
            print(f"  aneurysm centres around the ROI centre, per location (mean sd over {len(sds)} columns): {np.round(np.mean(sds, 0), 1)}")


if __name__ == "__main__":
    main()

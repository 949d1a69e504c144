#!/usr/bin/python3
"""The Python preprocessing the seeds describe, as the peer of `aneura preprocess`.

For each series folder given: read every slice with pydicom, sort by ImagePositionPatient along the
slice normal, apply RescaleSlope/Intercept (HU), then
  (a) a common RSNA 2025 baseline's path: brain window, resize to 32 x 384 x 384 (scipy.ndimage.zoom, linear);
  (b) the MONAI/nibabel path: RAS orientation (nibabel.as_closest_canonical) and 1 mm isotropic
      linear resampling (scipy.ndimage.zoom, order 1).
Prints one line per series with the seconds of each stage, and the mean total.
"""
import pathlib
import sys
import time

import nibabel as nib
import numpy as np
import pydicom
from scipy import ndimage


def read_series(folder):
    dss = [pydicom.dcmread(f) for f in sorted(pathlib.Path(folder).glob("*.dcm"))]
    iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
    vol = np.stack([d.pixel_array.astype(np.float32) * float(getattr(d, "RescaleSlope", 1))
                    + float(getattr(d, "RescaleIntercept", 0)) for d in dss])  # (slices, rows, cols)
    ps = [float(x) for x in dss[0].PixelSpacing]
    p0 = np.array(dss[0].ImagePositionPatient, dtype=float)
    p1 = np.array(dss[-1].ImagePositionPatient, dtype=float)
    dz = float(np.dot(p1 - p0, normal)) / max(len(dss) - 1, 1)
    # LPS affine for (col, row, slice) indices, then RAS for nibabel
    affine = np.eye(4)
    affine[:3, 0] = iop[:3] * ps[1]
    affine[:3, 1] = iop[3:] * ps[0]
    affine[:3, 2] = normal * dz
    affine[:3, 3] = p0
    affine = np.diag([-1, -1, 1, 1]) @ affine
    return vol, affine


def main():
    totals = []
    for folder in sys.argv[1:]:
        t0 = time.perf_counter()
        vol, affine = read_series(folder)
        t1 = time.perf_counter()
        win = np.clip((vol - 0.0) / 80.0, 0, 1)
        small = ndimage.zoom(win, (32 / vol.shape[0], 384 / vol.shape[1], 384 / vol.shape[2]), order=1)
        t2 = time.perf_counter()
        img = nib.as_closest_canonical(nib.Nifti1Image(np.transpose(vol, (2, 1, 0)), affine))
        zooms = img.header.get_zooms()[:3]
        iso = ndimage.zoom(np.asanyarray(img.dataobj, dtype=np.float32), zooms, order=1)
        t3 = time.perf_counter()
        totals.append(t3 - t0)
        print(f"{folder}: read {t1 - t0:.2f} s, window+resize {small.shape} {t2 - t1:.2f} s, "
              f"RAS+1mm {iso.shape} {t3 - t2:.2f} s, total {t3 - t0:.2f} s", flush=True)
    print(f"python peer: mean {np.mean(totals):.2f} s per series")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Compare two NIfTI files as nibabel sees them: affine (qform and sform) and voxels."""
import sys
import nibabel as nib
import numpy as np

a, b = nib.load(sys.argv[1]), nib.load(sys.argv[2])
da, db = a.get_fdata(), b.get_fdata()
print(f"shapes {a.shape} vs {b.shape}")
print(f"max |sform difference| {np.abs(a.get_sform() - b.get_sform()).max():.2e} mm, "
      f"max |qform difference| {np.abs(a.get_qform() - b.get_qform()).max():.2e} mm")
print(f"max |voxel difference| {np.abs(da - db).max() if da.shape == db.shape else 'shape differs'}")

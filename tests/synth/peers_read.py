#!/usr/bin/python3
"""pydicom reads every file of a synthetic dataset: headers always, pixels where pydicom 2.3
decodes them without extra plugins (uncompressed, RLE). Prints 'N passed, M failed'."""
import pathlib
import sys

import pydicom

root = pathlib.Path(sys.argv[1])
passed = failed = 0
for f in sorted(root.glob("series/*/*.dcm")):
    try:
        ds = pydicom.dcmread(f)
        assert ds.SOPInstanceUID == f.stem, "file name is not the SOPInstanceUID"
        assert ds.SeriesInstanceUID == f.parent.name, "folder is not the SeriesInstanceUID"
        ts = ds.file_meta.TransferSyntaxUID
        if not ts.is_compressed or ts == pydicom.uid.RLELossless:
            arr = ds.pixel_array
            frames = int(getattr(ds, "NumberOfFrames", 1))
            expected = (ds.Rows, ds.Columns) if frames == 1 else (frames, ds.Rows, ds.Columns)
            assert arr.shape == expected, f"pixel array {arr.shape} != {expected}"
        passed += 1
    except Exception as e:  # report and go on
        print(f"{f}: {e}")
        failed += 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)

#!/usr/bin/python3
"""A modality subset of an RSNA-layout dataset, by symbolic links (no copies of the DICOM files).

    bench/subset.py SRC DST [MODALITIES] [--unlabelled]

MODALITIES is a comma-separated list of train.csv Modality values (default "CTA,MRA": the series
that the dot stage `cpu_dots` learns from). DST gets the rows of train.csv and train_localizers.csv
of those series and links to their series/ and segmentations/ folders; with --unlabelled it gets
the series folders alone (no train.csv, localizers, segmentations or truth.json): an unlabelled
corpus for `aneura pretrain`. Prints how many series were kept.
"""
import csv
import os
import sys


def write_rows(path, fieldnames, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fieldnames)
        w.writeheader()
        w.writerows(rows)


def main(argv):
    unlabelled = "--unlabelled" in argv
    args = [a for a in argv if a != "--unlabelled"]
    if len(args) not in (2, 3):
        sys.exit(__doc__)
    src, dst = args[0], args[1]
    mods = set(args[2].split(",")) if len(args) == 3 else {"CTA", "MRA"}
    rows = list(csv.DictReader(open(os.path.join(src, "train.csv"))))
    keep = [r for r in rows if r["Modality"] in mods]
    uids = {r["SeriesInstanceUID"] for r in keep}
    os.makedirs(dst, exist_ok=True)
    subs = ("series",) if unlabelled else ("series", "segmentations")
    if not unlabelled:
        write_rows(os.path.join(dst, "train.csv"), rows[0].keys(), keep)
        loc = os.path.join(src, "train_localizers.csv")
        if os.path.exists(loc):
            lr = list(csv.DictReader(open(loc)))
            write_rows(os.path.join(dst, "train_localizers.csv"), lr[0].keys(),
                       [r for r in lr if r["SeriesInstanceUID"] in uids])
        for n in os.listdir(src):  # truth.json and the rest
            if n not in ("train.csv", "train_localizers.csv", "series", "segmentations"):
                os.symlink(os.path.abspath(os.path.join(src, n)), os.path.join(dst, n))
    for sub in subs:
        if not os.path.isdir(os.path.join(src, sub)):
            continue
        os.makedirs(os.path.join(dst, sub), exist_ok=True)
        for n in os.listdir(os.path.join(src, sub)):
            if n.split("_")[0] in uids or n in uids:
                os.symlink(os.path.abspath(os.path.join(src, sub, n)), os.path.join(dst, sub, n))
    print(f"{len(keep)} of {len(rows)} series" + (" (unlabelled)" if unlabelled else ""))


if __name__ == "__main__":
    main(sys.argv[1:])

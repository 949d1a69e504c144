#!/usr/bin/python3
"""Readings of the 13 location columns from a candidate stage's judged candidates, scored.

    bench/location_sweep.py JUDGED_JSON DATA [JUDGED_JSON ...]

JUDGED_JSON is aneura_bench_judge's output (per series, per candidate: the label head's Present
`head`, its 13 location outputs `head_locations`, the classes' maxima in the window's centre
`fine_locations`, the location prior's p(column | offset) `prior_locations`). DATA is the synthetic
dataset those series come from (train.csv). Present is the strongest candidate's head in every
reading; the location columns differ:

  fine        max over candidates of the class maximum (what predict does today)
  head        max over candidates of the head's location output
  P*fine      max over candidates of head Present x the candidate's share of each class maximum
  P*head      max over candidates of head Present x the share of each head location output
  P*prior     max over candidates of head Present x the location prior
  P*head*prior, P*fine*prior   the same with the shares multiplied by the prior, renormalised
  P*(head+prior)/2             the share and the prior averaged

For each: the AUC of every location column that has positives and negatives, their mean, and the
competition score over the defined columns (Present weighted 13, each location 1). Needs numpy.
"""
import csv
import json
import os
import sys

import numpy as np

from heatmap_ranks import auc

LOCATIONS = 13


def share(v):
    v = np.asarray(v, dtype=float)
    s = v.sum()
    return v / s if s > 0 else np.full(len(v), 1.0 / len(v))


def readings(cands):
    """{name: 13 location probabilities} for one series' judged candidates."""
    P = np.array([c["head"] for c in cands])
    head = np.array([c["head_locations"] for c in cands])
    fine = np.array([c["fine_locations"] for c in cands])
    prior = np.array([c["prior_locations"] for c in cands])
    head_s = np.array([share(h) for h in head])
    fine_s = np.array([share(f) for f in fine])
    return {
        "fine": fine.max(0),
        "head": head.max(0),
        "P*fine": (P[:, None] * fine_s).max(0),
        "P*head": (P[:, None] * head_s).max(0),
        "P*prior": (P[:, None] * prior).max(0),
        "P*head*prior": (P[:, None] * np.array([share(h * p) for h, p in zip(head_s, prior)])).max(0),
        "P*fine*prior": (P[:, None] * np.array([share(f * p) for f, p in zip(fine_s, prior)])).max(0),
        "P*(head+prior)/2": (P[:, None] * (head_s + prior) / 2).max(0),
    }


def main(data, paths):
    rows = {r["SeriesInstanceUID"]: r for r in csv.DictReader(open(os.path.join(data, "train.csv")))}
    names = list(rows[next(iter(rows))].keys())[4:4 + LOCATIONS]
    for path in paths:
        judged = json.load(open(path))
        uids = [u for u in judged if u in rows and judged[u]]
        y = np.array([[int(rows[u][n]) for n in names] + [int(rows[u]["Aneurysm Present"])] for u in uids])
        present = np.array([max(c["head"] for c in judged[u]) for u in uids])
        per = [readings(judged[u]) for u in uids]
        p_auc = auc(y[:, LOCATIONS], present)
        print(f"{path}: {len(uids)} series, {int(y[:, LOCATIONS].sum())} positive, Present AUC {p_auc:.3f}")
        print(f"  {'reading':18s} {'locations':>9s} {'score':>6s}  per defined column")
        for name in per[0]:
            s = np.array([r[name] for r in per])
            cols = [(k, auc(y[:, k], s[:, k])) for k in range(LOCATIONS) if 0 < y[:, k].sum() < len(uids)]
            mean = np.mean([a for _, a in cols])
            score = (13 * p_auc + sum(a for _, a in cols)) / (13 + len(cols))
            print(f"  {name:18s} {mean:9.3f} {score:6.3f}  " + " ".join(f"{a:.2f}" for _, a in cols))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[2], [sys.argv[1]] + sys.argv[3:])

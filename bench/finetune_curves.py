#!/usr/bin/python3
"""Fine-tuning from a pre-trained encoder against training from scratch: the training loss per epoch
of paired runs (the same plans, seed, cases and samples; only the encoder's initial weights differ).

    bench/finetune_curves.py SCRATCH_RUN PRETRAINED_RUN [SCRATCH_RUN PRETRAINED_RUN ...]

Each RUN is a run folder (WORK/runs/<configuration>, or a copy of it) with fold_0/log.jsonl. For each
pair: the train_loss of every epoch side by side, the mean over the first five epochs and over all,
and the first epoch at which each run's loss falls below the scratch run's final loss (x 1.05).
Then, over the pairs: the mean difference (pre-trained - scratch) of the first five epochs' mean
loss and of the last epoch's. The validation numbers of log.jsonl are not used: held-out scoring is
bench/dots_sweep.py's or `aneura evaluate`'s.
"""
import json
import sys


def losses(run):
    rows = [json.loads(line) for line in open(f"{run}/fold_0/log.jsonl") if line.strip()]
    return [r["train_loss"] for r in sorted(rows, key=lambda r: r["epoch"])]


def first_below(curve, level):
    return next((e + 1 for e, x in enumerate(curve) if x <= level), None)


def main(runs):
    if len(runs) < 2 or len(runs) % 2:
        sys.exit(__doc__)
    early, late = [], []
    for scratch_run, pre_run in zip(runs[0::2], runs[1::2]):
        a, b = losses(scratch_run), losses(pre_run)
        n = min(len(a), len(b))
        print(f"scratch    {scratch_run}\npre-trained {pre_run}")
        print("epoch  scratch  pre-trained")
        for e in range(n):
            print(f"{e + 1:5d}  {a[e]:7.4f}  {b[e]:7.4f}")
        level = 1.05 * a[n - 1]
        mean5 = (sum(a[:5]) / 5, sum(b[:5]) / 5) if n >= 5 else (float("nan"), float("nan"))
        print(f"mean of epochs 1-5: {mean5[0]:.4f} / {mean5[1]:.4f};  mean of all {n}: "
              f"{sum(a[:n]) / n:.4f} / {sum(b[:n]) / n:.4f};  last: {a[n - 1]:.4f} / {b[n - 1]:.4f}")
        print(f"first epoch at or below 1.05 x the scratch run's last loss ({level:.4f}): "
              f"{first_below(a[:n], level)} / {first_below(b[:n], level)}\n")
        early.append(mean5[1] - mean5[0])
        late.append(b[n - 1] - a[n - 1])
    k = len(early)
    print(f"{k} pair(s): pre-trained - scratch, mean of epochs 1-5: "
          + " ".join(f"{d:+.4f}" for d in early) + f" (mean {sum(early) / k:+.4f});  last epoch: "
          + " ".join(f"{d:+.4f}" for d in late) + f" (mean {sum(late) / k:+.4f})")


if __name__ == "__main__":
    main(sys.argv[1:])

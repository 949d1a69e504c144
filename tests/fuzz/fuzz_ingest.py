#!/usr/bin/env python3
"""Ingestion under damaged files: mutate DICOM series and check that aneura never crashes, hangs or
leaves a partial output, that every refusal names the file, and that a batch finishes the others.

    tests/fuzz/fuzz_ingest.py ANEURA [--runs N] [--seed S] [--sources DIR...] [--timeout SEC] [--keep DIR]
                              [--model RUN_DIR] [--kinds KIND...] [--max-mb MB]

Each run copies one source series (a folder of .dcm files; by default a tiny synthetic series that
`aneura synth` writes, plus every series folder under the --sources given, e.g. ../shared/realdata),
damages one of its files with one mutation, and runs on the copy:

  info DIR                                      exit 0 or a documented code (2-10), never a signal
  convert DIR -o OUT.nii                        the same; no OUT.nii unless it exited 0
  convert --skip-corrupt DIR -o OUT.nii         the same
  preprocess DATA WORK (every --batch-every-th run) over an RSNA-layout folder holding the damaged
                                                series and two intact ones: exit 0 or 8, the intact
                                                series built, the damaged one built or failed in
                                                the manifest with its reason
  predict MODEL --data DATA (with --model, in the same batch runs): exit 0 or 8, predictions.csv
                                                written with a row for every series (the damaged
                                                one predicted or a fallback row)

A refusal (exit 3, 4, 6 or 10) must name the damaged folder or a file in it. Mutations (seeded):
  flip     4 random bytes between offset 128 and 2048 (the meta group and the first elements)
  trunc    the file cut at a random offset
  length   a 4-byte value length field after a tag in the first 2 KB set to a random or huge value
  tag      4 random bytes written over a tag position in the first 2 KB
  dup      a chunk of 8-200 bytes of the first 2 KB repeated in place
  deep     8 random bytes anywhere after offset 128 (pixel data and compressed streams included)
Prints one line per problem and a summary table; exits 1 when any run crashed, hung, left a
partial output, refused without naming the file, printed a sanitizer's report (a build with
ANEURA_SANITIZE: scripts/sanitize) or peaked above --max-mb of memory (2000), 0 otherwise.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 8, 9, 10}
REFUSALS = {3, 4, 6, 10}


def series_folders(root):
    out = []
    for d, _, files in os.walk(root):
        dcm = [f for f in files if f.lower().endswith(".dcm") or "." not in f]
        if dcm and len(dcm) <= 400 and sum(os.path.getsize(os.path.join(d, f)) for f in dcm) < 50e6:
            out.append(d)
    return sorted(out)


def mutate(data, kind, rng):
    b = bytearray(data)
    n = len(b)
    head = min(n, 2048)
    if kind == "flip":
        for _ in range(4):
            if head > 128:
                b[rng.randrange(128, head)] = rng.randrange(256)
    elif kind == "trunc":
        del b[rng.randrange(0, n):]
    elif kind == "length":
        # a tag's value length: explicit VR short form at +6, long form at +8, implicit at +4
        if head > 140:
            at = rng.randrange(132, head - 8) & ~1
            off = rng.choice([4, 6, 8])
            value = rng.choice([0xFFFFFFFF, 0xFFFF, rng.randrange(1 << 32), n * 3])
            size = 2 if off == 6 else 4
            b[at + off:at + off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    elif kind == "tag":
        if head > 136:
            at = rng.randrange(132, head - 4) & ~1
            b[at:at + 4] = bytes(rng.randrange(256) for _ in range(4))
    elif kind == "dup":
        if head > 140:
            at = rng.randrange(128, head - 8)
            size = rng.randrange(8, min(200, n - at) + 1) if n - at > 8 else 8
            b[at:at] = b[at:at + size]
    elif kind == "deep":
        for _ in range(8):
            if n > 128:
                b[rng.randrange(128, n)] = rng.randrange(256)
    return bytes(b)


def run(cmd, timeout):
    """(exit code or "hang", output, the child's peak memory in MB)"""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()))
    reader.start()
    deadline = time.monotonic() + timeout
    while True:  # reaped here, not by Popen, to keep the child's resource usage
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            os.wait4(p.pid, 0)
            p.returncode = -9
            reader.join()
            return "hang", "", 0
        time.sleep(0.005)
    reader.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, b"".join(chunks).decode("utf-8", "replace"), usage.ru_maxrss // 1024


def trouble(code, text, peak_mb, max_mb, allowed):
    """What went wrong in any run whatever the command, or None."""
    if code == "hang":
        return "hang"
    if "Sanitizer:" in text or "runtime error:" in text:
        return "sanitizer report"
    if code not in allowed:
        return "crash"
    if peak_mb > max_mb:
        return f"memory ({peak_mb} MB)"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("aneura")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sources", nargs="*", default=[])
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--max-mb", type=int, default=2000, help="a run whose peak memory is larger is a problem")
    ap.add_argument("--batch-every", type=int, default=5)
    ap.add_argument("--keep", help="copy each problem run's damaged series here")
    ap.add_argument("--model", help="a trained run folder (WORK/runs/CONFIG): predict each batch too")
    ap.add_argument("--kinds", nargs="*", default=["flip", "trunc", "length", "tag", "dup", "deep"])
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix="aneura_fuzz_")
    try:
        synth = os.path.join(tmp, "synth")
        code, out, _ = run([a.aneura, "synth", synth, "--n", "3", "--size", "tiny", "--seed", str(a.seed), "-q"],
                           a.timeout)
        if code != 0:
            sys.exit("aneura synth failed: " + out)
        intact = [os.path.join(synth, "series", u) for u in sorted(os.listdir(os.path.join(synth, "series")))]
        sources = list(intact)
        for s in a.sources:
            sources += series_folders(s)
        kinds = a.kinds
        counts, problems = {}, []

        def note(cmd, outcome):
            counts.setdefault(cmd, {}).setdefault(outcome, 0)
            counts[cmd][outcome] += 1

        for r in range(a.runs):
            src = rng.choice(sources)
            kind = rng.choice(kinds)
            work = os.path.join(tmp, f"run{r}")
            data = os.path.join(work, "data")
            series = os.path.join(data, "series", "1.2.826.0.1.3680043.8.498.77." + str(r + 1))
            shutil.copytree(src, series, symlinks=False)
            files = sorted(f for f in os.listdir(series) if os.path.isfile(os.path.join(series, f)))
            victim = os.path.join(series, rng.choice(files))
            with open(victim, "rb") as f:
                original = f.read()
            with open(victim, "wb") as f:
                f.write(mutate(original, kind, rng))
            label = f"run {r} ({kind} of {os.path.relpath(victim, work)} from {src})"

            def check(name, cmd, output=None):
                code, text, peak = run(cmd, a.timeout)
                bad = trouble(code, text, peak, a.max_mb, DOCUMENTED)
                if bad:
                    outcome = bad
                elif output and code != 0 and os.path.exists(output):
                    outcome = "partial output"
                elif code in REFUSALS and series not in text:
                    outcome = "unnamed refusal"
                else:
                    outcome = "exit %d" % code
                note(name, outcome)
                if not outcome.startswith("exit"):
                    problems.append(f"{name}: {outcome} (exit {code}) on {label}: {text.strip()[-300:]}")
                    if a.keep:
                        shutil.copytree(series, os.path.join(a.keep, f"run{r}_{name}"), dirs_exist_ok=True)
                return code, text

            check("info", [a.aneura, "info", series])
            out_nii = os.path.join(work, "out.nii")
            check("convert", [a.aneura, "convert", "-q", series, "-o", out_nii], out_nii)
            if os.path.exists(out_nii):
                os.remove(out_nii)
            check("convert --skip-corrupt", [a.aneura, "convert", "-q", "--skip-corrupt", series, "-o", out_nii], out_nii)
            if a.batch_every > 0 and r % a.batch_every == 0:
                # a batch: the damaged series beside two intact ones
                for i, s in enumerate(intact[:2]):
                    shutil.copytree(s, os.path.join(data, "series", os.path.basename(s)))
                with open(os.path.join(synth, "train.csv")) as f:
                    header, row = f.readline(), f.readline().rstrip("\n").split(",")
                with open(os.path.join(data, "train.csv"), "w") as f:
                    f.write(header)
                    for u in sorted(os.listdir(os.path.join(data, "series"))):
                        f.write(",".join([u] + row[1:]) + "\n")
                wdir = os.path.join(work, "w")
                code, text, peak = run([a.aneura, "preprocess", data, wdir, "--spacing", "4", "--workers", "1", "-q"],
                                       a.timeout)
                outcome = trouble(code, text, peak, a.max_mb, (0, 8)) or "exit %d" % code
                if outcome.startswith("exit"):
                    lines = [json.loads(x) for x in open(os.path.join(wdir, "manifest.jsonl"))]
                    by_id = {x["id"]: x for x in lines}
                    for s in intact[:2]:
                        if by_id.get(os.path.basename(s), {}).get("status") != "ok":
                            outcome = "intact series not built"
                    damaged = by_id.get(os.path.basename(series))
                    if damaged is None or (damaged["status"] == "failed" and not damaged["reason"]):
                        outcome = "damaged series not recorded"
                note("preprocess batch", outcome)
                if not outcome.startswith("exit"):
                    problems.append(f"preprocess batch: {outcome} (exit {code}) on {label}: {text.strip()[-300:]}")
                if a.model:
                    csv = os.path.join(work, "pred.csv")
                    code, text, peak = run([a.aneura, "predict", a.model, "--data", data, "-o", csv, "--no-tta", "-q"],
                                           a.timeout)
                    outcome = trouble(code, text, peak, a.max_mb, (0, 8)) or "exit %d" % code
                    if outcome.startswith("exit"):
                        # (a row is named by the files' SeriesInstanceUID, which a copied source keeps)
                        rows = open(csv).read().splitlines()[1:] if os.path.exists(csv) else []
                        if len(rows) != len(os.listdir(os.path.join(data, "series"))):
                            outcome = "missing prediction rows"
                    note("predict batch", outcome)
                    if not outcome.startswith("exit"):
                        problems.append(f"predict batch: {outcome} (exit {code}) on {label}: {text.strip()[-300:]}")
            shutil.rmtree(work, ignore_errors=True)
        for p in problems:
            print(p)
        print(f"\n{a.runs} runs, seed {a.seed}, {len(sources)} source series")
        for cmd, c in counts.items():
            print(f"{cmd:24s} " + ", ".join(f"{k}: {v}" for k, v in sorted(c.items())))
        return 1 if problems else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

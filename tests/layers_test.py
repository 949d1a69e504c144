#!/usr/bin/env python3
"""The library layering: every `#include "<module>/..."` in src/<m>/ names a module that <m>'s
CMakeLists links (directly or through another aneura library), and the link graph has no cycle.
docs/ARCHITECTURE.md states the order; this test keeps the code to it.
Usage: layers_test.py SOURCE_DIR"""
import pathlib, re, sys

src = pathlib.Path(sys.argv[1]) / "src"
modules = sorted(p.name for p in src.iterdir() if (p / "CMakeLists.txt").exists())
links = {}
for m in modules:
    text = (src / m / "CMakeLists.txt").read_text()
    deps = set()
    for block in re.findall(r"target_link_libraries\(aneura_%s\b(.*?)\)" % m, text, re.S):
        deps |= {d for d in re.findall(r"\baneura_(\w+)", block) if d in modules and d != m}
    links[m] = deps

def reach(m, seen=None):
    seen = set() if seen is None else seen
    for d in links[m]:
        if d not in seen:
            seen.add(d)
            reach(d, seen)
    return seen

bad = []
for m in modules:
    if m in reach(m):
        bad.append(f"{m}: its link dependencies lead back to it (a cycle)")
for m in modules:
    allowed = reach(m) | {m}
    for f in sorted((src / m).glob("*.[ch]pp")):
        for inc in re.findall(r'#include "(\w+)/', f.read_text()):
            if inc in modules and inc not in allowed:
                bad.append(f"{f.relative_to(src.parent)} includes {inc}/ but aneura_{m} does not link aneura_{inc}")
for line in bad:
    print("layering:", line)
print(f"layering: {len(modules)} modules, " + ("every include follows the link order" if not bad else f"{len(bad)} violation(s)"))
sys.exit(1 if bad else 0)

#!/usr/bin/env python3
"""p50 and p99 of every benchmark in package-benchmark text outputs, side by side.

  swift package --scratch-path .build-O --disable-sandbox benchmark --target Engine --no-progress > O.txt
  TALLY_UNCHECKED=1 swift package --scratch-path .build-unchecked … > unchecked.txt
  python3 compare.py O.txt unchecked.txt [more.txt …]      # label = file name without .txt

Timings are printed in µs; the ratio column is the first file's p50 over the second's. With
files given as alternating pairs (A1 B1 A2 B2 …), the geometric mean of A's p50 over B's across
the timed benchmarks is printed for each pair and for the runs pooled (each benchmark's p50
averaged over a variant's runs).
"""
import math
import os
import re
import sys

UNITS = {"ns": 1e-3, "μs": 1.0, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}


def parse(path):
    out, name = {}, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line and not line.startswith(("│", "╒", "╞", "╘", "├", "=", " ")) and "│" not in line:
            name = line.strip()
            continue
        m = re.match(r"│ ([^│]+?)(?: \((\S+)\))?\s*\*?\s*│(.*)", line)
        if m and name and not m.group(1).startswith("Metric"):
            cells = [c.strip() for c in m.group(3).split("│") if c.strip()]
            if len(cells) >= 8:
                metric, unit = m.group(1).strip(), m.group(2) or ""
                scale = UNITS.get(unit)
                p50, p99 = float(cells[2]), float(cells[5])
                if metric.startswith("Time") and scale:
                    out[name] = (p50 * scale, p99 * scale, "µs")
                elif not metric.startswith(("Time", "Malloc", "Memory", "Throughput", "Instructions", "Releases", "Retains")):
                    out[name] = (p50, p99, metric + (f" ({unit})" if unit else ""))
    return out


def main():
    runs = [(os.path.basename(p).rsplit(".", 1)[0], parse(p)) for p in sys.argv[1:]]
    names = [n for n in runs[0][1]]
    head = "| benchmark | " + " | ".join(f"{l} p50 | {l} p99" for l, _ in runs)
    if len(runs) >= 2:
        head += f" | {runs[0][0]} / {runs[1][0]} (p50)"
    print(head + " |")
    print("| --- |" + " ---: |" * (2 * len(runs) + (1 if len(runs) >= 2 else 0)))
    for n in names:
        row = [n]
        for _, r in runs:
            v = r.get(n)
            row += [f"{v[0]:.1f}", f"{v[1]:.1f}"] if v else ["", ""]
        if len(runs) >= 2 and n in runs[1][1] and runs[1][1][n][0]:
            row.append(f"{runs[0][1][n][0] / runs[1][1][n][0]:.2f}")
        print("| " + " | ".join(row) + " |")
    if len(runs) >= 2 and len(runs) % 2 == 0:
        timed = [n for n in names if all(n in r and r[n][2] == "µs" for _, r in runs)]

        def geomean(xs):
            return math.exp(sum(math.log(x) for x in xs) / len(xs))
        for k in range(0, len(runs), 2):
            (la, a), (lb, b) = runs[k], runs[k + 1]
            print(f"geometric mean of p50 {la} / {lb}: {geomean([a[n][0] / b[n][0] for n in timed]):.3f} ({len(timed)} benchmarks)")
        pa = {n: sum(r[n][0] for _, r in runs[0::2]) for n in timed}
        pb = {n: sum(r[n][0] for _, r in runs[1::2]) for n in timed}
        print(f"pooled: geometric mean of p50 {runs[0][0]}… / {runs[1][0]}…: {geomean([pa[n] / pb[n] for n in timed]):.3f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Chart of req/s against requests in flight, HTTP (wrk) and the binary protocol (both formats),
from the output of tools/load/run_binary.sh. Needs matplotlib (pip).

Usage: tools/load/run_binary.sh 10 4 16 64 | tee /tmp/rps.txt; python3 tools/load/chart_rps.py /tmp/rps.txt OUT.png"""
import re
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    text = open(sys.argv[1]).read()
    series = {"HTTP (wrk)": {}, "binary, JSON": {}, "binary, compact": {}}
    current = None
    for line in text.splitlines():
        m = re.match(r"== HTTP \(wrk\), mix \w+, (\d+) connections", line)
        if m:
            current = ("HTTP (wrk)", int(m.group(1)))
            continue
        m = re.match(r"== binary \((json|compact)\), mix \w+, (\d+) connections × (\d+) in flight", line)
        if m:
            current = ("binary, JSON" if m.group(1) == "json" else "binary, compact", int(m.group(2)) * int(m.group(3)))
            continue
        m = re.search(r"Requests/sec:\s+([\d.]+)", line)
        if m and current:
            series[current[0]][current[1]] = float(m.group(1))
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for name, points in series.items():
        xs = sorted(points)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("requests in flight")
    ax.set_ylabel("req/s")
    ax.set_title("Dashboard mix, 20,000-user client, 2 cores")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2])
    print("wrote", sys.argv[2])


if __name__ == "__main__":
    main()

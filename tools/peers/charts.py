#!/usr/bin/env python3
"""Charts from a compare.py results JSON: latency against period length, Tally and each peer.

    python3 tools/peers/charts.py [results/latest.json] [--out tools/peers/out]

Writes (PNG, small enough for docs/):
Tally appears twice: over HTTP (the Python client, every page of 200) and in process (`tally bench`).

- latency_vs_period.png        one panel per endpoint: the largest client, with comparison, no
                               filter; median ms (log scale) at 30 and 366 days, one line per engine
- latency_vs_period_gmean.png  geometric mean over every query of each period length, without and
                               with comparison
"""
from __future__ import annotations

import argparse
import json
import math
import os
from collections import defaultdict

COLORS = {"tally": "#d62728", "tally_inproc": "#8c1010", "duckdb": "#1f77b4", "chdb": "#ff7f0e", "postgres": "#2ca02c"}
NAMES = {"tally": "Tally (HTTP)", "tally_inproc": "Tally (in process)", "duckdb": "DuckDB", "chdb": "chDB", "postgres": "PostgreSQL 15"}


def _engines(results):
    seen = []
    for c in results["cases"]:
        for n in c["ms"]:
            if not n.endswith("_page1") and n not in seen:
                seen.append(n)
    own = [n for n in ("tally", "tally_inproc") if n in seen]
    return own + [n for n in seen if n not in own]


STYLE = {"tally_inproc": "--"}


def make(results: dict, out: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    engines = _engines(results)
    cases = [c for c in results["cases"] if c["ms"]]
    lengths = sorted({c["days"] for c in cases})
    rows = results.get("usage_rows", 0)
    title = f"{os.path.basename(results['dump'].rstrip('/'))}, {rows:,} usage rows"
    written = []

    # 1. per endpoint, largest client, with comparison, no filter
    eps = sorted({c["endpoint"] for c in cases})
    cols = 4
    nrows = math.ceil(len(eps) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False)
    for i, ep in enumerate(eps):
        ax = axes[i // cols][i % cols]
        sel = [c for c in cases if c["endpoint"] == ep and c["client_label"] == "largest" and c["compare"]
               and c["filter"] == "none"]
        for n in engines:
            pts = sorted((c["days"], c["ms"][n]) for c in sel if n in c["ms"])
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=COLORS.get(n), linestyle=STYLE.get(n, "-"),
                        label=NAMES.get(n, n))
        ax.set_yscale("log")
        ax.set_xticks(lengths)
        ax.set_title(f"{ep} {sel[0]['path'] if sel else ''}", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, which="both", alpha=0.3)
        if i % cols == 0:
            ax.set_ylabel("ms (median, warm)", fontsize=8)
        ax.set_xlabel("period days", fontsize=8)
    for j in range(len(eps), nrows * cols):
        axes[j // cols][j % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if len(eps) < nrows * cols:
        axes[-1][-1].legend(handles, labels, loc="center", fontsize=9)
    else:
        fig.legend(handles, labels, loc="lower right", fontsize=9)
    fig.suptitle(f"Latency against period length — largest client, with comparison ({title})", fontsize=10)
    fig.tight_layout()
    p = os.path.join(out, "latency_vs_period.png")
    fig.savefig(p, dpi=80)
    plt.close(fig)
    written.append(p)

    # 2. geometric mean over all queries
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, cmp in zip(axes, (False, True)):
        for n in engines:
            g = defaultdict(list)
            for c in cases:
                if c["compare"] == cmp and n in c["ms"] and c["ms"][n] > 0:
                    g[c["days"]].append(math.log(c["ms"][n]))
            pts = sorted((k, math.exp(sum(v) / len(v))) for k, v in g.items())
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=COLORS.get(n), linestyle=STYLE.get(n, "-"),
                        label=NAMES.get(n, n))
        ax.set_yscale("log")
        ax.set_xticks(lengths)
        ax.set_xlabel("period days")
        ax.set_title("with comparison period" if cmp else "no comparison", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms, geometric mean over queries")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Latency against period length, all queries ({title})", fontsize=10)
    fig.tight_layout()
    p = os.path.join(out, "latency_vs_period_gmean.png")
    fig.savefig(p, dpi=80)
    plt.close(fig)
    written.append(p)
    return written


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="?", default=os.path.join(here, "results", "latest.json"))
    ap.add_argument("--out", default=os.path.join(here, "out"))
    a = ap.parse_args()
    with open(a.results) as f:
        r = json.load(f)
    for p in make(r, a.out):
        print(p, os.path.getsize(p), "bytes")


if __name__ == "__main__":
    main()

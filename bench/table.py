#!/usr/bin/env python3
"""Prints the Markdown table of a bench run from its measurements TSV.

    table.py RESULTS.tsv [--floor LABEL] [--peer LABEL] [--main LABEL ...]

TSV rows: label, run, wall_s, cpu_s, maxrss_kb, exit (written by lib.sh's
`measure`). Medians over the runs that exited 0; peak RSS is the maximum.
"""

import argparse
import statistics
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tsv")
    ap.add_argument("--floor", default="parse floor")
    ap.add_argument("--peer", default="feedgen peer")
    ap.add_argument("--main", action="append", default=[])
    ap.add_argument("--ratio-title", default="wall ratio vs parse floor")
    a = ap.parse_args()

    rows = {}
    order = []
    for line in open(a.tsv, encoding="utf-8"):
        label, run, wall, cpu, rss, rc = line.rstrip("\n").split("\t")
        if label not in rows:
            rows[label] = []
            order.append(label)
        rows[label].append((float(wall), float(cpu), float(rss), int(rc)))

    stats = {}
    for label, runs in rows.items():
        ok = [r for r in runs if r[3] == 0]
        failed = len(runs) - len(ok)
        if not ok:
            stats[label] = None
            continue
        walls = [r[0] for r in ok]
        stats[label] = {
            "wall": statistics.median(walls),
            "cpu": statistics.median(r[1] for r in ok),
            "rss": max(r[2] for r in ok) / 1024,
            "min": min(walls),
            "max": max(walls),
            "n": len(ok),
            "failed": failed,
        }

    floor = stats.get(a.floor)
    out = sys.stdout
    out.write(f"| tool | median wall s | median CPU s | peak RSS MB | {a.ratio_title} | wall min–max s (runs) |\n")
    out.write("| --- | ---: | ---: | ---: | ---: | --- |\n")
    for label in order:
        s = stats[label]
        if s is None:
            codes = sorted({r[3] for r in rows[label]})
            out.write(f"| {label} | FAILED (exit {', '.join(map(str, codes))}) | | | | |\n")
            continue
        ratio = f"{s['wall'] / floor['wall']:.1f}×" if floor else "n/a"
        note = f" ({s['n']} ok, {s['failed']} failed)" if s["failed"] else f" ({s['n']})"
        out.write(f"| {label} | {s['wall']:.2f} | {s['cpu']:.2f} | {s['rss']:.0f} | {ratio} | "
                  f"{s['min']:.2f}–{s['max']:.2f}{note} |\n")
    peer = stats.get(a.peer)
    out.write("\n")
    for label in a.main:
        s = stats.get(label)
        if s and peer:
            def cmp(mine, theirs, unit):
                r = theirs / max(mine, 1e-9)
                return (f"{mine:.2f} vs {theirs:.2f} {unit}: " +
                        (f"{r:.1f}× less" if r >= 1 else f"{1 / r:.1f}× MORE"))
            out.write(f"- {label} vs {a.peer}: wall {cmp(s['wall'], peer['wall'], 's')}; "
                      f"CPU {cmp(s['cpu'], peer['cpu'], 's')}; "
                      f"peak RSS {cmp(s['rss'], peer['rss'], 'MB')}\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Passes stdin through, timing lines that contain the word PREFIX (default
"sent ") at the start or after a log prefix.

    COMMAND -v 2>&1 | stamp_lines.py [PREFIX]

At the end prints one line: when the first and the last matching line came
(seconds since this script started, i.e. about since COMMAND started), how
many there were, and the rate between the first and the last: for
`bulletin digest --send -v`, the delivery phase alone.
"""
import re
import sys
import time

start = time.monotonic()
prefix = sys.argv[1] if len(sys.argv) > 1 else "sent "
# The word anywhere after a log prefix (time, level, target) is fine too.
pattern = re.compile(r"(^|[\s:\]])" + re.escape(prefix))
first = last = None
count = 0
for line in sys.stdin:
    if pattern.search(line):
        now = time.monotonic() - start
        if first is None:
            first = now
        last = now
        count += 1
    else:
        sys.stdout.write(line)
if count:
    span = last - first
    rate = (count - 1) / span if span > 0 else float("inf")
    print(f"stamp: {count} '{prefix.strip()}' lines, first at {first:.2f} s, last at {last:.2f} s: "
          f"{rate:.0f}/s between them")
else:
    print(f"stamp: no '{prefix.strip()}' lines")

#!/usr/bin/env python3
"""Read every feed bulletin wrote with Python's feedparser, a common reader.

Usage: python3 tests/support/feedparser_check.py DIR

Parses every *.xml file under DIR (recursively) with feedparser and prints one
line per file. A feed is bad when feedparser flags it "bozo" (not well-formed,
wrong encoding, undeclared entity, ...) or does not recognise it as RSS or
Atom at all. Exit status: 0 when every feed is fine, 1 when any is bad (or no
*.xml file was found), 2 on usage errors or when feedparser is not installed
(install it with `pip install feedparser`).
"""

import pathlib
import sys

try:
    import feedparser
except ImportError:
    print(
        "feedparser_check: the 'feedparser' package is not installed; "
        "install it with: pip install feedparser",
        file=sys.stderr,
    )
    sys.exit(2)


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    root = pathlib.Path(argv[1])
    if not root.is_dir():
        print(f"feedparser_check: {root} is not a folder", file=sys.stderr)
        return 2
    files = sorted(root.rglob("*.xml"))
    if not files:
        print(f"feedparser_check: no *.xml file under {root}")
        return 1
    bad = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        # Bytes, not a path: feedparser must not guess anything from a URL.
        parsed = feedparser.parse(path.read_bytes())
        if parsed.bozo:
            bad += 1
            error = parsed.get("bozo_exception")
            print(f"BOZO {rel}: {type(error).__name__}: {error}")
        elif not parsed.version:
            bad += 1
            print(f"UNKNOWN {rel}: feedparser does not recognise it as RSS or Atom")
        else:
            print(f"ok {rel}: {parsed.version}, {len(parsed.entries)} entries")
    print(f"{len(files)} feeds, {bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env bash
# CI smoke test of the benchmark path (never a timing): generate a 10,000-
# article corpus, build it, and check the output is complete: one RSS and
# one Atom feed for the site and for every section, plus the OPML index,
# every feed well-formed and holding items.
#
#   bench/smoke.sh [BULLETIN_BINARY]     default: target/debug/bulletin
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/debug/bulletin}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
SECTIONS=20
python3 bench/gen_corpus.py 10000 "$SECTIONS" "$WORK" --subscribers 50 >/dev/null
"$BIN" -q build --config "$WORK/feeds.toml" --now 2026-11-01T00:00:00+08:00
python3 - "$WORK/public/feeds" "$SECTIONS" <<'PY'
import glob, os, sys, xml.dom.minidom
feeds, sections = sys.argv[1], int(sys.argv[2])
rss = glob.glob(os.path.join(feeds, "**", "rss.xml"), recursive=True)
atom = glob.glob(os.path.join(feeds, "**", "atom.xml"), recursive=True)
expected = sections + 1
problems = []
if len(rss) != expected or len(atom) != expected:
    problems.append(f"expected {expected} RSS and Atom feeds, found {len(rss)} and {len(atom)}")
if not os.path.exists(os.path.join(feeds, "index.opml")):
    problems.append("no index.opml")
items = 0
for path in rss + atom:
    doc = xml.dom.minidom.parse(path)  # expat: strict, refuses control characters
    items += len(doc.getElementsByTagName("item")) + len(doc.getElementsByTagName("entry"))
site = xml.dom.minidom.parse(os.path.join(feeds, "rss.xml"))
if len(site.getElementsByTagName("item")) != 50:
    problems.append("the site feed does not hold 50 items")
if problems:
    sys.exit("bench smoke: " + "; ".join(problems))
print(f"bench smoke: {len(rss)} RSS + {len(atom)} Atom feeds, {items} items, all well-formed")
PY

#!/usr/bin/env bash
# The upgrade of a big state database from schema 5 to schema 6.
#
#   bench/migrate.sh [ROWS] [RUNS]      default: 1000000 1
#
# bench/gen_state_v5.py writes a version 5 database of ROWS delivery rows
# (ROWS / 30 recipients times 30 daily issues, 25 article ids each, as the
# last release before schema 6 kept them); then `bulletin suppressions
# remove nobody@example.invalid`, the cheapest command that opens the state
# for writing, upgrades it (one transaction), under /usr/bin/time. While it
# runs, the write-ahead log's size is sampled every 50 ms. Afterwards
# bench/state_stats.py reads the result (VACUUM INTO a copy for the compact
# size), and the articles of 1,000 random rows are compared with the
# version 5 copy (a check, not a timing).
#
# Environment: CORPUS_ROOT ($BENCH: where the databases go; about 1.2 KB a
# row while both copies exist), SKIP_BUILD=1, BULLETIN_BIN.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

ROWS="${1:-1000000}"
RUNS="${2:-1}"
CORPUS_ROOT="${CORPUS_ROOT:-$BENCH}"
DIR="$CORPUS_ROOT/migrate-$ROWS"
ensure_time
if [[ -n "${BULLETIN_BIN:-}" ]]; then BULLETIN="$BULLETIN_BIN"
elif [[ "${SKIP_BUILD:-}" == 1 ]]; then use_bulletin; else ensure_bulletin; fi

mkdir -p "$DIR"
# A config for the command: a tiny corpus's, its state pointed at the copy.
ensure_corpus "$CORPUS_ROOT/corpus-1000-s10" 1000 10
sed -e "s|^paths = .*|paths = [\"$CORPUS_ROOT/corpus-1000-s10/articles.jsonl\"]|" \
    -e 's|^subscribers = .*|subscribers = "'"$CORPUS_ROOT"'/corpus-1000-s10/subscribers.toml"|' \
    -e 's|^state = .*|state = "state.sqlite"|' "$CORPUS_ROOT/corpus-1000-s10/feeds.toml" >"$DIR/feeds.toml"
if [[ ! -f "$DIR/v5.sqlite" ]]; then
  say "writing a version 5 database of $ROWS rows ..."
  "$PYTHON" "$BENCH/gen_state_v5.py" "$DIR/v5.sqlite" "$ROWS" >&2 || die "gen_state_v5.py failed"
fi

RESULTS="$BENCH/results/migrate-$ROWS-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
TSV="$RESULTS/measurements.tsv"
: >"$TSV"
INFO="$(machine_info)"
for run in $(seq "$RUNS"); do
  rm -f "$DIR"/state.sqlite*
  cp "$DIR/v5.sqlite" "$DIR/state.sqlite"
  cat "$DIR/state.sqlite" >/dev/null
  (peak=0; while sleep 0.05; do
     size=$(stat -c %s "$DIR/state.sqlite-wal" 2>/dev/null || echo 0)
     ((size > peak)) && peak=$size && echo "$peak" >"$RESULTS/wal-peak.$run"
   done) &
  WATCH=$!
  measure "$TSV" "upgrade 5 -> 6" "$run" -- \
    "$BULLETIN" suppressions --config "$DIR/feeds.toml" remove nobody@example.invalid
  kill "$WATCH" 2>/dev/null; wait "$WATCH" 2>/dev/null
done
BEFORE="$("$PYTHON" "$BENCH/state_stats.py" "$DIR/v5.sqlite" 2026-10-30)"
AFTER="$("$PYTHON" "$BENCH/state_stats.py" "$DIR/state.sqlite" 2026-10-30 --vacuum "$DIR/vacuumed.sqlite")"
CHECK="$("$PYTHON" - "$DIR/v5.sqlite" "$DIR/state.sqlite" <<'EOF'
import random, sqlite3, sys
old, new = (sqlite3.connect(f"file:{p}?mode=ro", uri=True) for p in sys.argv[1:3])
rows = old.execute("SELECT issue, recipient, status, articles FROM deliveries").fetchall()
wrong = 0
for issue, recipient, status, text in random.Random(1).sample(rows, min(1000, len(rows))):
    got = new.execute(
        "SELECT l.status, d.articles FROM delivery_log l JOIN issues i ON i.key = l.issue "
        "JOIN recipients r ON r.key = l.recipient JOIN deliveries d ON d.issue = i.id AND d.recipient = r.id "
        "WHERE l.issue = ? AND l.recipient = ?", (issue, recipient)).fetchone()
    numbers, value, shift, previous = [], 0, 0, 0
    for byte in got[1]:
        value |= (byte & 0x7f) << shift
        shift += 7
        if byte < 0x80:
            previous += value
            numbers.append(previous)
            value = shift = 0
    ids = sorted(new.execute(f"SELECT article FROM articles WHERE id IN ({','.join('?' * len(numbers))})",
                             numbers).fetchall()) if numbers else []
    if got[0] != status or [i for (i,) in ids] != sorted(text.splitlines()):
        wrong += 1
count_old = old.execute("SELECT count(*) FROM deliveries").fetchone()[0]
count_new = new.execute("SELECT count(*) FROM deliveries").fetchone()[0]
print(f"{count_old} rows before, {count_new} after; {wrong} of 1000 sampled rows differ")
EOF
)"
rm -f "$DIR/vacuumed.sqlite"
{
  echo "### Upgrade of the state database from schema 5 to 6: $ROWS rows"
  echo
  echo "| run | wall s | CPU s | peak RSS MB | rows/s | peak WAL MB | exit |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  while IFS=$'\t' read -r label run wall cpu rss rc; do
    wal="$(cat "$RESULTS/wal-peak.$run" 2>/dev/null || echo 0)"
    printf '| %s | %.2f | %.2f | %.0f | %.0f | %.1f | %s |\n' "$run" "$wall" "$cpu" "$(echo "$rss / 1024" | bc -l)" \
      "$(echo "$ROWS / $wall" | bc -l)" "$(echo "$wal / 1000000" | bc -l)" "$rc"
  done <"$TSV"
  echo
  "$PYTHON" - "$BEFORE" "$AFTER" "$ROWS" <<'EOF'
import sys
before, after = ([int(x) for x in s.split("\t")] for s in sys.argv[1:3])
rows = int(sys.argv[3])
print("| | schema | file MB | in use MB | record tables MB | bytes per row (record tables) | after VACUUM MB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
print(f"| before | {before[0]} | {before[3] / 1e6:.1f} | {before[4] / 1e6:.1f} | {before[5] / 1e6:.1f} | {before[5] / rows:.0f} | |")
print(f"| after | {after[0]} | {after[3] / 1e6:.1f} | {after[4] / 1e6:.1f} | {after[5] / 1e6:.1f} | {after[5] / rows:.0f} | {after[6] / 1e6:.1f} |")
EOF
  echo
  echo "- check: $CHECK"
  echo "- the old tables' pages are free space inside the file after the upgrade (reused by later issues; VACUUM returns them)"
  echo "$INFO"
} | tee "$RESULTS/table.md"
say "results in $RESULTS"

#!/usr/bin/env bash
# How much the state database grows per recipient per issue: the record of
# what was sent to whom (the history that keeps an article from being sent
# to anyone twice).
#
#   bench/state_growth.sh [RECIPIENTS] [ISSUES]     default: 10000 10
#
# ISSUES daily `bulletin digest --send` runs (08:00 each day, ending on the
# corpus's last day) to Postfix `smtp-sink` on a free local port, each with a
# fresh look at RECIPIENTS subscribers; after each, bench/state_stats.py reads
# the database: messages and items of the issue, file size, bytes in use
# (the file less its free pages), and the pages of the record's tables.
# Growth per recipient per issue is taken from issue 2 on (issue 1 also
# numbers every recipient once, and fills the pages the first issue's
# messages freed): (used after the last - used after the first) / messages
# of issues 2..ISSUES. Also the whole file after `VACUUM INTO` / every
# message, and the record's tables alone.
#
# BASELINE=PATH measures another build the same way, in the same run (for
# the reference: the last release before schema 6). ORDER=shuffled shuffles
# the subscriber file before every issue (a CMS export in no stable order).
#
# Corpus: $CORPUS_ROOT/corpus-$ARTICLES-s$SECTIONS (default 200000 articles
# over three years, ~180 a day, 10 sections; window 7d, max_items 30).
# Environment: ARTICLES, SECTIONS (10), SEED (1), ORDER (stable), BASELINE,
# CORPUS_ROOT ($BENCH), SKIP_BUILD=1, BULLETIN_BIN (a binary to measure
# instead of a fresh release build: the sizes do not depend on the build).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

RECIPIENTS="${1:-10000}"
ISSUES="${2:-10}"
ARTICLES="${ARTICLES:-200000}"
SECTIONS="${SECTIONS:-10}"
ORDER="${ORDER:-stable}"
CORPUS_ROOT="${CORPUS_ROOT:-$BENCH}"
CORPUS="$CORPUS_ROOT/corpus-$ARTICLES-s$SECTIONS"
SITE="$CORPUS/growth-$RECIPIENTS"
SINK=/usr/sbin/smtp-sink

if [[ ! -x "$SINK" ]]; then
  say "installing postfix (for smtp-sink) ..."
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null || die "cannot install postfix"
fi
ensure_time
ensure_corpus "$CORPUS" "$ARTICLES" "$SECTIONS"
ensure_corpus "$SITE" "$ARTICLES" "$SECTIONS" --subscribers "$RECIPIENTS" --no-articles --articles-path ../articles.jsonl
if [[ -n "${BULLETIN_BIN:-}" ]]; then BULLETIN="$BULLETIN_BIN"  # a given binary (e.g. a debug build)
elif [[ "${SKIP_BUILD:-}" == 1 ]]; then use_bulletin; else ensure_bulletin; fi

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$SINK" -u nobody 127.0.0.1:"$PORT" 256 &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null' EXIT
for _ in $(seq 50); do
  "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null && break
  sleep 0.1
done
say "smtp-sink (pid $SINK_PID) on 127.0.0.1:$PORT"

RESULTS="$BENCH/results/state-growth-$RECIPIENTS-$ISSUES-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
TSV="$RESULTS/growth.tsv"
: >"$TSV"
INFO="$(machine_info)"

# The issues: 08:00 on each of the ISSUES days before the corpus ends
# (2026-11-01, +08:00).
mapfile -t DAYS < <("$PYTHON" - "$ISSUES" <<'EOF'
import sys
from datetime import date, timedelta
n = int(sys.argv[1])
for k in range(n, 0, -1):
    print((date(2026, 11, 1) - timedelta(days=k)).isoformat())
EOF
)

shuffle_subscribers() {  # shuffle_subscribers DIR SEED: the [[subscribers]] blocks in a new order
  "$PYTHON" - "$1/subscribers.toml" "$2" <<'EOF'
import random, sys
path, seed = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
head, *blocks = text.split("[[subscribers]]\n")
random.Random(seed).shuffle(blocks)
open(path, "w", encoding="utf-8").write(head + "".join("[[subscribers]]\n" + b for b in blocks))
EOF
}

run_tool() {  # run_tool LABEL BINARY
  local label="$1" bin="$2" dir="$SITE/run-$1"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$SITE/subscribers.toml" "$dir/"
  sed -e "s/^port = .*/port = $PORT/" -e 's|^state = .*|state = "state/state.sqlite"|' \
      -e 's|^paths = .*|paths = ["../../articles.jsonl"]|' "$SITE/feeds.toml" >"$dir/feeds.toml"
  local k=0 day
  for day in "${DAYS[@]}"; do
    k=$((k + 1))
    [[ "$ORDER" == shuffled ]] && shuffle_subscribers "$dir" "$day"
    say "$label: issue $day ..."
    measure "$RESULTS/times.tsv" "$label $day" 1 -- \
      "$bin" digest --config "$dir/feeds.toml" --send --now "${day}T08:00:00+08:00"
    local vacuum=()
    [[ $k == "$ISSUES" ]] && vacuum=(--vacuum "$dir/vacuumed.sqlite")
    printf '%s\t%s\t%s\n' "$label" "$day" \
      "$("$PYTHON" "$BENCH/state_stats.py" "$dir/state/state.sqlite" "$day" "${vacuum[@]}")" >>"$TSV"
  done
  rm -f "$dir/vacuumed.sqlite"
}

run_tool bulletin "$BULLETIN"
if [[ -n "${BASELINE:-}" ]]; then
  [[ -x "$BASELINE" ]] || die "BASELINE=$BASELINE is not an executable"
  run_tool baseline "$BASELINE"
fi

{
  echo "### State growth: $RECIPIENTS recipients, $ISSUES daily issues (${DAYS[0]} to ${DAYS[-1]}), $ARTICLES articles, $SECTIONS sections, subscriber order $ORDER"
  echo
  "$PYTHON" - "$TSV" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, day, *nums = line.rstrip("\n").split("\t")
    rows.setdefault(label, []).append((day, [int(x) for x in nums]))
print("| build | schema | issue | messages | items/message | used MB | growth, bytes/message | record tables MB |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
summary = []
for label, issues in rows.items():
    previous = None
    for day, (version, messages, items, file_bytes, used, record, *vac) in issues:
        growth = f"{(used - previous) / messages:.0f}" if previous is not None and messages else ""
        print(f"| {label} | {version} | {day} | {messages} | {items / max(messages, 1):.1f} | "
              f"{used / 1e6:.2f} | {growth} | {record / 1e6:.2f} |")
        previous = used
    first, last = issues[0][1], issues[-1][1]
    later = sum(n[1] for _, n in issues[1:])
    total = sum(n[1] for _, n in issues)
    items = sum(n[2] for _, n in issues)
    steady = (last[4] - first[4]) / later if later else float("nan")
    record_steady = (last[5] - first[5]) / later if later else float("nan")
    vacuumed = last[6] / total if len(last) > 6 else float("nan")
    summary.append((label, last[0], steady, record_steady, vacuumed, last[3] / total, items / total))
print()
print("| build | schema | bytes per recipient per issue (used, issues 2..N) | record tables only | whole file after VACUUM / messages | file / messages | items/message |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for label, version, steady, record, vacuumed, whole, items in summary:
    print(f"| {label} | {version} | **{steady:.0f}** | {record:.0f} | {vacuumed:.0f} | {whole:.0f} | {items:.1f} |")
EOF
  echo
  echo "- growth: bytes in use (page_count - freelist_count, times the page size) after an issue less after the one before, per message of that issue; the first issue also numbers every recipient once and reuses the pages of the messages it sent"
  echo "- every send exited: $(cut -f6 "$RESULTS/times.tsv" | sort | uniq -c | tr '\n' ' ')(count, exit code); wall seconds per issue: $(cut -f1,3 "$RESULTS/times.tsv" | awk -F'\t' '{split($1, a, " "); s[a[1]] += $2; n[a[1]]++} END {for (k in s) printf "%s %.1f  ", k, s[k] / n[k]}')"
  echo "$INFO"
  [[ -n "${BASELINE:-}" ]] && echo "- baseline: $BASELINE"
} | tee "$RESULTS/table.md"
say "results in $RESULTS"

#!/usr/bin/env bash
# Feed-building benchmark: bulletin vs a Python feedgen script vs the parse floor.
#
#   bench/run.sh N [RUNS]        e.g. bench/run.sh 100000 3
#
# 1. (re)generates bench/corpus-N/ (N articles, $SECTIONS sections, default
#    100) unless it is there from the same generator and arguments;
# 2. builds bulletin (cargo build --release at the repo root) and
#    bench/parse-floor; installs feedgen if missing;
# 3. warms the page cache with the JSONL, then runs RUNS rounds (default 3),
#    each: parse floor, bulletin build into an empty output folder without a
#    build cache ("cold"), bulletin build again over that output ("rebuild,
#    unchanged inputs": output and cache in place), the same with --no-cache
#    (when the binary has that flag), feedgen peer; each under
#    /usr/bin/time -v;
# 4. prints a Markdown table (also saved in bench/results/N-<time>/table.md).
#
# Environment: SECTIONS (100), SEED (1), NOW (2026-11-01T00:00:00+08:00),
# ORDER (shuffled, or chronological: the lines in publication order, as CMSs
# export), CORPUS_ROOT (where corpora live, default bench/), SKIP_BUILD=1 to
# use the binaries as they are.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

N="${1:?usage: bench/run.sh N [RUNS]}"
RUNS="${2:-3}"
SECTIONS="${SECTIONS:-100}"
NOW="${NOW:-$NOW_DEFAULT}"
CORPUS="$(corpus_dir "$N" "$SECTIONS")"

ensure_time
ensure_corpus "$CORPUS" "$N" "$SECTIONS"
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
  ensure_bulletin
  ensure_floor
else
  use_bulletin
  [[ -x "$FLOOR" ]] || ensure_floor
fi
ensure_feedgen

RESULTS="$BENCH/results/$N-$ORDER-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
TSV="$RESULTS/measurements.tsv"
: >"$TSV"
INFO="$(machine_info)"

JSONL="$CORPUS/articles.jsonl"
HAS_NO_CACHE=""
"$BULLETIN" build --help 2>&1 | grep -q -- --no-cache && HAS_NO_CACHE=1
say "warming the page cache ($(du -h "$JSONL" | cut -f1)) ..."
cat "$JSONL" >/dev/null

for run in $(seq 1 "$RUNS"); do
  say "round $run/$RUNS ..."
  cat "$JSONL" >/dev/null
  measure "$TSV" "parse floor" "$run" -- "$FLOOR" "$JSONL"
  measure "$TSV" "serde_json parse only" "$run" -- "$FLOOR" "$JSONL" 0
  # Cold: empty output folder and no build cache (output.cache, default
  # .bulletin/cache beside the config).
  rm -rf "$CORPUS/public" "$CORPUS/.bulletin/cache"
  measure "$TSV" "bulletin build (cold)" "$run" -- \
    "$BULLETIN" build --config "$CORPUS/feeds.toml" --now "$NOW"
  measure "$TSV" "bulletin build (rebuild, unchanged)" "$run" -- \
    "$BULLETIN" build --config "$CORPUS/feeds.toml" --now "$NOW"
  if [[ -n "$HAS_NO_CACHE" ]]; then
    measure "$TSV" "bulletin build --no-cache (rebuild, unchanged)" "$run" -- \
      "$BULLETIN" build --config "$CORPUS/feeds.toml" --now "$NOW" --no-cache
  fi
  rm -rf "$CORPUS/out-feedgen"
  measure "$TSV" "feedgen peer" "$run" -- \
    "$PYTHON" "$BENCH/peer_feedgen.py" "$CORPUS" "$CORPUS/out-feedgen" --now "$NOW"
done

{
  echo "### $N articles ($(du -h "$JSONL" | cut -f1) JSONL, $ORDER lines, $SECTIONS sections), $RUNS runs each, interleaved"
  echo
  "$PYTHON" "$BENCH/table.py" "$TSV" --main "bulletin build (cold)" --main "bulletin build (rebuild, unchanged)" --main "bulletin build --no-cache (rebuild, unchanged)"
  echo
  "$PYTHON" - "$TSV" <<'EOF'
import statistics, sys
walls = {}
for line in open(sys.argv[1], encoding="utf-8"):
    label, run, wall, cpu, rss, rc = line.rstrip("\n").split("\t")
    if rc == "0":
        walls.setdefault(label, []).append(float(wall))
median = {label: statistics.median(w) for label, w in walls.items()}
cold = median.get("bulletin build (cold)")
parse = median.get("serde_json parse only")
if cold and parse:
    print(f"- cold build / serde_json parse only (no selection): {cold:.2f} / {parse:.2f} s = {cold / parse:.2f} ×")
EOF
  echo "$INFO"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- bulletin says: $(cat "$RESULTS/bulletin build (cold).1.out" "$RESULTS/bulletin build (cold).1.err" | tail -1)"
  echo "- bulletin rebuild says: $(cat "$RESULTS/bulletin build (rebuild, unchanged).1.out" "$RESULTS/bulletin build (rebuild, unchanged).1.err" | tail -1)"
  echo "- parse floor says: $(tail -1 "$RESULTS/parse floor.1.out")"
  echo "- files: bulletin $(find "$CORPUS/public" -type f 2>/dev/null | wc -l) ($(du -sh "$CORPUS/public" 2>/dev/null | cut -f1)), feedgen $(find "$CORPUS/out-feedgen" -type f 2>/dev/null | wc -l) ($(du -sh "$CORPUS/out-feedgen" 2>/dev/null | cut -f1))"
  echo "- raw measurements: ${RESULTS#"$ROOT"/}/measurements.tsv"
} | tee "$RESULTS/table.md"

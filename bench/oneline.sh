#!/usr/bin/env bash
# One JSON array on one line vs the same array pretty-printed: `bulletin check`.
#
#   bench/oneline.sh ["N ..."] [RUNS]     e.g. bench/oneline.sh "12500 50000 200000" 3
#
# A JSON array on one line is what `json.dumps`, `JSON.stringify`, `jq -c`
# and most CMS exports write. Every record's position (line and column, in
# characters) must cost the same there as in a pretty-printed file: the
# column was once counted from the line's start for every record, so 50,000
# one-line articles took 24–51 s instead of 0.11 s (issue #17).
#
# For each N: the corpus of bench/corpus-N[-sS]/ (gen_corpus.py) written as
# `oneline/articles.json` (the JSON Lines records joined on one line, as
# json.dumps writes them) and `pretty/articles.json` (indent=2), each with a
# feeds.toml; then RUNS timed runs of `bulletin check` on each (hyperfine
# when installed, else /usr/bin/time). Prints a Markdown table with the time
# per 1,000 records (flat when growth is linear) and saves it under
# bench/results/oneline-<time>/.
#
# Environment: SECTIONS (100), SEED (1), SKIP_BUILD=1; BASELINE=PATH adds one
# run of another bulletin binary on the one-line files (an older build, to
# compare), cut off after BASELINE_TIMEOUT seconds (default 300).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

SIZES="${1:-12500 50000 200000}"
RUNS="${2:-3}"
SECTIONS="${SECTIONS:-100}"
BASELINE="${BASELINE:-}"
BASELINE_TIMEOUT="${BASELINE_TIMEOUT:-300}"

ensure_time
if [[ "${SKIP_BUILD:-}" == 1 ]]; then use_bulletin; else ensure_bulletin; fi
HYPERFINE="$(command -v hyperfine || true)"

RESULTS="$BENCH/results/oneline-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
INFO="$(machine_info)"
ROWS="$RESULTS/rows.tsv"
: >"$ROWS"

# write_json JSONL OUT_DIR: OUT_DIR/oneline/articles.json and
# OUT_DIR/pretty/articles.json, streamed (a 200,000-record corpus is 420 MB).
write_json() {
  "$PYTHON" - "$1" "$2" <<'EOF'
import json, os, sys
src, out = sys.argv[1:]
for kind in ("oneline", "pretty"):
    os.makedirs(os.path.join(out, kind), exist_ok=True)
with open(src, encoding="utf-8") as lines, \
     open(os.path.join(out, "oneline", "articles.json"), "w", encoding="utf-8") as one, \
     open(os.path.join(out, "pretty", "articles.json"), "w", encoding="utf-8") as pretty:
    one.write("[")
    pretty.write("[\n")
    for i, line in enumerate(lines):
        line = line.rstrip("\n")
        if not line:
            continue
        # gen_corpus writes each record as json.dumps does: ", " and ": ".
        one.write((", " if i else "") + line)
        record = json.dumps(json.loads(line), ensure_ascii=False, indent=2)
        pretty.write((",\n" if i else "") + "\n".join("  " + l for l in record.split("\n")))
    one.write("]\n")
    pretty.write("\n]\n")
EOF
}

# seconds KIND N BIN LABEL: median wall seconds of `check` over RUNS runs.
seconds() {
  local dir="$1" label="$2" bin="$3"
  if [[ -n "$HYPERFINE" ]]; then
    "$HYPERFINE" --runs "$RUNS" --warmup 1 --style none -N \
      --export-json "$RESULTS/$label.json" \
      "$bin check --config $dir/feeds.toml" >"$RESULTS/$label.out" 2>&1 \
      || { say "  $label failed (see $RESULTS/$label.out)"; echo nan; return; }
    "$PYTHON" -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$RESULTS/$label.json"
  else
    local tsv="$RESULTS/$label.tsv"; : >"$tsv"
    for run in $(seq 1 "$RUNS"); do
      measure "$tsv" "$label" "$run" -- "$bin" check --config "$dir/feeds.toml"
    done
    "$PYTHON" -c 'import statistics,sys; print("%.3f" % statistics.median(float(l.split("\t")[2]) for l in open(sys.argv[1])))' "$tsv"
  fi
}

for n in $SIZES; do
  corpus="$(corpus_dir "$n" "$SECTIONS")"
  ensure_corpus "$corpus" "$n" "$SECTIONS"
  json="$corpus/json"
  if [[ ! -f "$json/.from-hash" || "$(cat "$json/.from-hash")" != "$(cat "$corpus/.gen-hash")" ]]; then
    say "writing $json/{oneline,pretty}/articles.json ..."
    rm -rf "$json"
    write_json "$corpus/articles.jsonl" "$json" || die "cannot write the JSON files"
    cp "$corpus/.gen-hash" "$json/.from-hash"
  fi
  for kind in oneline pretty; do
    sed 's|^paths = .*|paths = ["articles.json"]|' "$corpus/feeds.toml" >"$json/$kind/feeds.toml"
    cp "$corpus/subscribers.toml" "$json/$kind/"
    cat "$json/$kind/articles.json" >/dev/null
  done
  say "N=$n: check, pretty-printed ..."
  pretty_s="$(seconds "$json/pretty" "pretty-$n" "$BULLETIN")"
  say "N=$n: check, one line ..."
  oneline_s="$(seconds "$json/oneline" "oneline-$n" "$BULLETIN")"
  base_s=""
  if [[ -n "$BASELINE" ]]; then
    say "N=$n: baseline $BASELINE on one line (cut off after $BASELINE_TIMEOUT s) ..."
    t0=$(date +%s.%N)
    timeout "$BASELINE_TIMEOUT" "$BASELINE" check --config "$json/oneline/feeds.toml" \
      >"$RESULTS/baseline-$n.out" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    if [[ $rc == 124 ]]; then
      base_s="> $BASELINE_TIMEOUT"
    else
      base_s="$("$PYTHON" -c "print('%.3f' % ($t1 - $t0))")"
    fi
  fi
  line_bytes="$(stat -c %s "$json/oneline/articles.json")"
  printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$line_bytes" "$pretty_s" "$oneline_s" "$base_s" >>"$ROWS"
done

{
  echo "### bulletin check: one JSON array on one line vs pretty-printed ($RUNS runs each, median wall)"
  echo
  "$PYTHON" - "$ROWS" "${BASELINE:+yes}" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8")]
baseline = len(sys.argv) > 2 and sys.argv[2] == "yes"
head = ["records", "one-line file", "pretty s", "one-line s", "one-line / pretty", "one-line ms per 1,000 records"]
if baseline:
    head.append("baseline one-line s")
print("| " + " | ".join(head) + " |")
print("|" + "---:|" * len(head))
for n, size, pretty, one, base in rows:
    n, pretty_f, one_f = int(n), float(pretty), float(one)
    cells = [f"{n:,}", f"{int(size) / 1e6:.0f} MB", f"{pretty_f:.2f}", f"{one_f:.2f}",
             f"{one_f / pretty_f:.2f}", f"{one_f / n * 1e6:.1f}"]
    if baseline:
        cells.append(base or "-")
    print("| " + " | ".join(cells) + " |")
EOF
  echo
  echo "$INFO"
  [[ -n "$HYPERFINE" ]] && echo "- timed with $("$HYPERFINE" --version)" || echo "- timed with /usr/bin/time"
  [[ -n "$BASELINE" ]] && echo "- baseline: $BASELINE, one run, cut off after $BASELINE_TIMEOUT s"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RESULTS/table.md"
